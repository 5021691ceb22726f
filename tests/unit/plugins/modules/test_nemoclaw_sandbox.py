"""nemoclaw_sandbox: the outside guard around `nemoclaw onboard`, the post-onboarding assertions, check mode,
removal, bad input and secret handling, with the CLIs answered by a scripted fake (real output formats)."""
from __future__ import annotations

import json
import pathlib

import pytest
from ansible.module_utils import basic

from ansible_collections.agentsec.nemoclaw.plugins.modules import nemoclaw_sandbox

READY = "NAME          NAMESPACE  CREATED              PHASE\nmy-assistant  openshell  2026-04-16 10:12:13  Ready\n"
ROUTE = ("Gateway inference:\n\n  Provider: ollama-local\n  Model: nemotron-3-nano:30b\n  Version: 1\n  Timeout: 60s\n\n"
         "System inference:\n\n  Not configured\n")
MODELS = json.dumps({"object": "list", "data": [{"id": "nemotron-3-nano:30b", "object": "model"}]})
SENTINEL = "nvapi-SENTINEL-do-not-print-0123456789"
GATEWAY_TOKEN = "9c1e5f0a77d24b6e8f31"  # the OpenClaw gateway token v0.0.21's summary prints in the dashboard URL


class World:
    """Answers the module's commands; onboarding registers and readies the sandbox like NemoClaw does."""

    def __init__(self, tmp_path, listed=None, registered=False, onboard_rc=0, route=ROUTE, models=MODELS, probe_rc=0):
        self.registry = tmp_path / "sandboxes.json"
        self.listed = listed
        self.onboard_rc, self.route, self.models, self.probe_rc = onboard_rc, route, models, probe_rc
        self.calls = []
        if registered:
            self.register()

    def register(self):
        self.registry.write_text(json.dumps({"sandboxes": {"my-assistant": {"name": "my-assistant", "provider": "ollama-local"}},
                                             "defaultSandbox": "my-assistant"}))

    def __call__(self, args, environ_update=None, **kw):
        argv = [str(a) for a in args]
        self.calls.append((argv, dict(environ_update or {})))
        tail = argv[1:]
        if tail[:2] == ["sandbox", "list"]:
            return 0, READY if self.listed == "Ready" else ("No sandboxes found.\n" if not self.listed else READY.replace("Ready", self.listed)), ""
        if tail[:1] == ["onboard"]:
            if self.onboard_rc:
                return (self.onboard_rc, f"  [6/8] Creating sandbox\n  key {SENTINEL}\n",
                        "  Sandbox 'my-assistant' already exists but is not ready.\n")
            self.listed = "Ready"
            self.register()
            # the tail of v0.0.21's summary (src/lib/onboard.ts:5826-5833 @db3453b5)
            return 0, (f"  [1/8] Preflight checks\n  using key {SENTINEL}\n  [8/8] Policy presets\n"
                       "  OpenClaw UI (tokenized URL; treat it like a password)\n"
                       f"  Dashboard: http://127.0.0.1:18789/#token={GATEWAY_TOKEN}\n"), ""
        if tail[:2] == ["inference", "get"]:
            return 0, self.route, ""
        if tail[:2] == ["sandbox", "exec"]:
            return self.probe_rc, self.models if not self.probe_rc else "", "curl: (7) Failed to connect" if self.probe_rc else ""
        if tail[1:3] == ["destroy", "--yes"] or tail[:2] == ["sandbox", "delete"]:
            self.listed = None
            self.registry.write_text(json.dumps({"sandboxes": {}, "defaultSandbox": None}))
            return 0, "", ""
        raise AssertionError(f"unexpected command {argv}")

    def ran(self, word):
        return [c for c in self.calls if word in c[0]]


@pytest.fixture
def bins(tmp_path):
    """Executable files standing for the CLIs (the module checks they exist; the World answers their calls)."""
    paths = {}
    for name in ("nemoclaw", "openshell"):
        exe = tmp_path / "bin" / name
        exe.parent.mkdir(exist_ok=True)
        exe.write_text("#!/bin/sh\nexit 99\n")
        exe.chmod(0o755)
        paths[name] = str(exe)
    return paths


@pytest.fixture
def run(module_runner, monkeypatch, bins):
    def go(world, args, **kw):
        monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda module, cmd, **kw: world([pathlib.Path(cmd[0]).name, *cmd[1:]], **kw))
        base = {"name": "my-assistant", "registry": str(world.registry), "nemoclaw_bin": bins["nemoclaw"], "openshell_bin": bins["openshell"],
                "expected_provider": "ollama-local", "model": "nemotron-3-nano:30b"}
        return module_runner(nemoclaw_sandbox.main, {**base, **args}, **kw)
    return go


@pytest.mark.oracle("upstream", "ansible-core")
def test_onboards_once_then_leaves_a_ready_registered_sandbox_alone(run, tmp_path):
    world = World(tmp_path)
    ok, res = run(world, {"secrets": {"NVIDIA_API_KEY": SENTINEL}, "policy_presets": ["pypi", "npm"], "docker_host": "unix:///d.sock"})
    assert ok and res["changed"] and res["action"] == "onboarded", res
    argv, env = world.ran("onboard")[0]
    assert argv == ["nemoclaw", "onboard", "--non-interactive"]
    assert env["NEMOCLAW_SANDBOX_NAME"] == "my-assistant" and env["NEMOCLAW_PROVIDER"] == "ollama"
    assert env["NEMOCLAW_POLICY_PRESETS"] == "pypi,npm" and env["NEMOCLAW_NON_INTERACTIVE"] == "1"
    assert env["NVIDIA_API_KEY"] == SENTINEL and "NEMOCLAW_RECREATE_SANDBOX" not in env
    assert env["DOCKER_HOST"] == "unix:///d.sock" and env["OPENSHELL_GATEWAY"] == "nemoclaw"
    assert all(SENTINEL not in " ".join(a) for a, dummy in world.calls), "a secret must never be on a command line"
    assert res["inference"]["provider"] == "ollama-local" and res["models"] == ["nemotron-3-nano:30b"]
    ok, res = run(world, {"secrets": {"NVIDIA_API_KEY": SENTINEL}})
    assert ok and not res["changed"] and res["action"] == "none"
    assert len(world.ran("onboard")) == 1, "a Ready, registered sandbox must not be onboarded again"


@pytest.mark.oracle("upstream", "ansible-core")
def test_registered_but_missing_sandbox_is_recreated(run, tmp_path):
    world = World(tmp_path, listed=None, registered=True)
    ok, res = run(world, {})
    assert ok and res["action"] == "recreated" and "phase is missing" in res["reason"]
    assert world.ran("onboard")[0][1]["NEMOCLAW_RECREATE_SANDBOX"] == "1"


@pytest.mark.oracle("upstream", "ansible-core")
def test_a_live_unregistered_sandbox_is_recreated_so_it_gets_registered(run, tmp_path):
    # v0.0.21 reuses a live Ready sandbox without registering it (src/lib/onboard.ts:3088-3096 @db3453b5)
    world = World(tmp_path, listed="Ready", registered=False)
    ok, res = run(world, {})
    assert ok and res["action"] == "recreated" and "not registered" in res["reason"]
    assert world.ran("onboard")[0][1]["NEMOCLAW_RECREATE_SANDBOX"] == "1"


@pytest.mark.oracle("upstream", "ansible-core")
def test_recreate_forces_onboarding(run, tmp_path):
    world = World(tmp_path, listed="Ready", registered=True)
    ok, res = run(world, {"recreate": True})
    assert ok and res["changed"] and res["action"] == "recreated"


@pytest.mark.oracle("upstream", "ansible-core")
def test_check_mode_runs_nothing(run, tmp_path):
    world = World(tmp_path)
    ok, res = run(world, {}, check_mode=True)
    assert ok and res["changed"] and res["action"] == "onboarded"
    assert not world.ran("onboard") and not world.registry.exists()


@pytest.mark.oracle("upstream", "ansible-core")
def test_failed_onboarding_masks_the_secret(run, tmp_path):
    world = World(tmp_path, registered=False, onboard_rc=1)
    ok, res = run(world, {"secrets": {"NVIDIA_API_KEY": SENTINEL}})
    assert not ok and "exit code 1" in res["msg"] and "already exists but is not ready" in res["msg"]
    # AnsibleModule masks no_log values when it serialises; the fake fail_json sees the raw text, so check the
    # module never adds the secret itself beyond NemoClaw's echo, and that ansible's masking covers the echo.
    from ansible.module_utils.common.parameters import remove_values
    masked = remove_values(res, {SENTINEL})
    assert SENTINEL not in json.dumps(masked)


@pytest.mark.oracle("upstream", "ansible-core")
def test_swallowed_route_errors_fail_the_task(run, tmp_path):
    world = World(tmp_path, route="Gateway inference:\n\n  Not configured\n\nSystem inference:\n\n  Not configured\n")
    ok, res = run(world, {})
    assert not ok and "no inference route" in res["msg"]
    world = World(tmp_path, listed="Ready", registered=True, models=json.dumps({"data": [{"id": "other"}]}))
    ok, res = run(world, {})
    assert not ok and "not 'nemotron-3-nano:30b'" in res["msg"]
    world = World(tmp_path, listed="Ready", registered=True, probe_rc=7)
    ok, res = run(world, {})
    assert not ok and "probe inside 'my-assistant' failed (exit 7)" in res["msg"]
    world = World(tmp_path, listed="Ready", registered=True, route=ROUTE.replace("ollama-local", "nvidia-prod"))
    ok, res = run(world, {})
    assert not ok and "provider is 'nvidia-prod', expected 'ollama-local'" in res["msg"]


@pytest.mark.oracle("upstream", "ansible-core")
def test_onboard_exit_0_without_a_ready_sandbox_fails(run, tmp_path):
    class Lazy(World):  # NemoClaw exits 0 but the sandbox never became Ready
        def __call__(self, args, **kw):
            rc, out, err = super().__call__(args, **kw)
            if "onboard" in args:
                self.listed = "Provisioning"
            return rc, out, err
    ok, res = run(Lazy(tmp_path), {})
    assert not ok and "not Ready and registered" in res["msg"]


@pytest.mark.oracle("upstream", "ansible-core")
def test_absent(run, tmp_path):
    world = World(tmp_path, listed="Ready", registered=True)
    ok, res = run(world, {"state": "absent"}, check_mode=True)
    assert ok and res["changed"] and res["action"] == "destroyed" and not world.ran("destroy")
    ok, res = run(world, {"state": "absent"})
    assert ok and res["changed"] and world.ran("destroy")[0][0] == ["nemoclaw", "my-assistant", "destroy", "--yes"]
    assert not res["sandbox"]["registered"]
    ok, res = run(world, {"state": "absent"})
    assert ok and not res["changed"]
    world = World(tmp_path, listed="Ready", registered=False)
    world.registry.unlink(missing_ok=True)
    ok, res = run(world, {"state": "absent"})
    assert ok and res["action"] == "deleted" and world.ran("delete")[0][0] == ["openshell", "sandbox", "delete", "my-assistant"]
    assert not world.ran("uninstall")


@pytest.mark.oracle("upstream", "ansible-core")
@pytest.mark.parametrize(("args", "fragment"), [
    ({"name": "Bad_Name"}, "Bad_Name"),
    ({"provider": "cloud"}, "NVIDIA_API_KEY"),
    ({"provider": "openai"}, "OPENAI_API_KEY"),
    ({"provider": "custom", "secrets": {"COMPATIBLE_API_KEY": "k"}}, "NEMOCLAW_ENDPOINT_URL"),
    ({"name": "1agent"}, "starts with a digit"),
    ({"policy_presets": ["pypi", "pipy"]}, "pipy"),
    ({"secrets": {"AWS_SECRET": "x"}}, "AWS_SECRET"),
    ({"env": {"NVIDIA_API_KEY": "x"}}, "look like secrets"),
])
@pytest.mark.oracle("upstream", "ansible-core")
def test_bad_input_fails_before_any_command(run, tmp_path, args, fragment):
    world = World(tmp_path)
    ok, res = run(world, args)
    assert not ok and fragment in res["msg"] and world.calls == []


@pytest.mark.oracle("upstream", "ansible-core")
@pytest.mark.parametrize("masked", [False, True], ids=["gap-raw-output", "module-result"])
def test_the_dashboard_token_never_reaches_the_result(run, tmp_path, masked):
    world = World(tmp_path)
    ok, res = run(world, {})
    assert ok and res["action"] == "onboarded"
    if not masked:  # the detector: NemoClaw's own output carries the gateway token (what an unmasked tail would show)
        assert GATEWAY_TOKEN in world(["nemoclaw", "onboard"])[1]
        return
    tail = "\n".join(res["onboard"]["output_tail"])
    assert GATEWAY_TOKEN not in json.dumps(res) and "#token=********" in tail


@pytest.mark.oracle("upstream", "ansible-core")
def test_check_mode_on_a_host_without_the_clis(run, tmp_path):
    world = World(tmp_path)
    missing = {"nemoclaw_bin": str(tmp_path / "none" / "nemoclaw"), "openshell_bin": str(tmp_path / "none" / "openshell")}
    ok, res = run(world, missing, check_mode=True)
    assert ok and res["changed"] and res["action"] == "onboarded" and world.calls == []
    ok, res = run(world, missing)
    assert not ok and "nemoclaw_bin" in res["msg"] and "is not an executable" in res["msg"] and world.calls == []


@pytest.mark.oracle("upstream", "ansible-core")
def test_a_provisioning_sandbox_is_waited_for_not_destroyed(run, tmp_path, monkeypatch):
    monkeypatch.setattr(nemoclaw_sandbox.time, "sleep", lambda s: None)

    class Booting(World):  # after a reboot the pod needs two more looks to become Ready
        looks = 0

        def __call__(self, args, **kw):
            if args[1:3] == ["sandbox", "list"]:
                self.looks += 1
                self.listed = "Ready" if self.looks >= 3 else "Provisioning"
            return super().__call__(args, **kw)
    world = Booting(tmp_path, listed="Provisioning", registered=True)
    ok, res = run(world, {})
    assert ok and not res["changed"] and res["action"] == "none" and not world.ran("onboard")
    stuck = World(tmp_path, listed="Provisioning", registered=True)
    ok, res = run(stuck, {"ready_timeout": 0})
    assert ok and res["action"] == "recreated" and "phase is Provisioning" in res["reason"]
    ok, res = run(World(tmp_path), {"ready_timeout": -1})
    assert not ok and "ready_timeout -1" in res["msg"]
