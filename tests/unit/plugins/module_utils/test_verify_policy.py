"""The policy lines' checks L1.landlock_hard_requirement and L4.l7_policy_enforced (plugins/module_utils/
_verify_policy.py): decided from the gateway's active policy, read on the host (sandbox_verify.policy_params), never
from inside the sandbox."""
from __future__ import annotations

import sys

import pytest

from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _verify as V
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _verify_policy as VP


def run(params):
    probe, decide = VP.plan(params)["L1.landlock_hard_requirement"]
    obs = probe()
    return "skipped" if "skip" in obs else decide(obs, {})[0]


@pytest.mark.oracle("self")
def test_catalogue_has_the_verify_format():
    for cid, meta in VP.CHECKS.items():
        assert len(meta) == 5 and meta[0] in V.LAYERS and cid.startswith(meta[0] + ".") and meta[2] in V.SEVERITY_RANK


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize(("value", "want"), [("hard_requirement", V.PASS), ("best_effort", V.FAIL), (None, "skipped")])
def test_decision(value, want):
    assert run({"policy_landlock_compatibility": value} if value else {}) == want


def run_l7(params):
    probe, decide = VP.plan(params)["L4.l7_policy_enforced"]
    obs = probe()
    return ("skipped", obs) if "skip" in obs else decide(obs, {})


# `policy get --full --output json` as run.rs @v0.0.111 L6505-6569 prints it (scope, sandbox, version, hash, status,
# active_version, policy), with NemoClaw's blueprint shape: L7 endpoints (protocol rest) without enforcement = audit
POLICY_JSON = {"scope": "sandbox", "sandbox": "sb", "version": 2, "hash": "ab12", "status": "loaded", "active_version": 2,
               "policy": {"version": 1, "filesystem_policy": {"include_workdir": True, "read_only": ["/usr"],
                                                              "read_write": ["/tmp"]},
                          "landlock": {"compatibility": "best_effort"},
                          "network_policies": {
                              "pypi": {"name": "pypi", "endpoints": [{"host": "pypi.org", "port": 443, "protocol": "rest",
                                                                      "access": "read-only"},
                                                                     {"host": "files.pythonhosted.org", "port": 443}]},
                              "db": {"name": "db", "endpoints": [{"host": "db.internal", "port": 5432, "protocol": "sql",
                                                                  "enforcement": "enforce"}]}}}}


@pytest.mark.oracle("upstream")
def test_l7_audit_fails_enforce_passes_and_unread_skips():
    import json  # noqa: PLC0415

    from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _policy  # noqa: PLC0415

    policy, revision = _policy.policy_json(json.dumps(POLICY_JSON))
    assert revision == {"version": 2, "hash": "ab12", "status": "loaded"}
    endpoints = _policy.l7_endpoints(policy)
    # the plain L4 endpoint has no L7 rules to enforce; the unset enforcement reads as OpenShell's default, audit
    want = [("db", "db.internal", "enforce"), ("pypi", "pypi.org", "audit")]
    assert [(e["rule"], e["host"], e["enforcement"]) for e in endpoints] == want
    status, obs = run_l7({"policy_l7_endpoints": endpoints})
    assert status == V.FAIL and [e["host"] for e in obs["audited"]] == ["pypi.org"] and "1 of 2" in obs["reason"]
    enforced = [{**e, "enforcement": "enforce"} for e in endpoints]
    assert run_l7({"policy_l7_endpoints": enforced})[0] == V.PASS
    assert run_l7({"policy_l7_endpoints": []})[0] == V.PASS  # no L7 rule: nothing is merely audited
    assert run_l7({})[0] == "skipped"


@pytest.mark.oracle("self")
def test_policy_params_read_the_json_form(tmp_path):
    import json  # noqa: PLC0415

    from ansible_collections.agentsec.nemoclaw.plugins.modules import sandbox_verify  # noqa: PLC0415

    out = tmp_path / "policy.json"
    out.write_text(json.dumps(POLICY_JSON))
    params = {"policy_command": [sys.executable, "-c", f"print(open({str(out)!r}).read())", "{sandbox}"],
              "exec_timeout": 30, "workdir": "/sandbox", "extensions": ["_verify_policy"]}
    found = sandbox_verify.policy_params(params, "sb", {})
    assert found["policy_landlock_compatibility"] == "best_effort" and found["policy_revision"]["hash"] == "ab12"
    assert len(found["policy_l7_endpoints"]) == 2
    assert found["policy_read_only"] == ["/usr"] and found["writable_paths"] == ["/tmp", "/sandbox"]
    # without the extension only the filesystem part is read; no revision (nothing on stdout) means no override
    assert set(sandbox_verify.policy_params({**params, "extensions": []}, "sb", {})) == {"policy_read_only", "writable_paths"}
    empty = {**params, "policy_command": [sys.executable, "-c", "pass"]}
    assert sandbox_verify.policy_params(empty, "sb", {}) == {}


@pytest.mark.oracle("self")
def test_policy_params_hand_the_value_from_the_policy_command(tmp_path):
    from ansible_collections.agentsec.nemoclaw.plugins.modules import sandbox_verify  # noqa: PLC0415

    out = tmp_path / "policy.txt"
    out.write_text("Version: 3\n---\nversion: 1\nfilesystem_policy:\n  include_workdir: true\n  read_only:\n  - /usr\n"
                   "  read_write:\n  - /tmp\nlandlock:\n  compatibility: hard_requirement\n")
    params = {"policy_command": [sys.executable, "-c", f"print(open({str(out)!r}).read())", "{sandbox}"],
              "exec_timeout": 30, "workdir": "/sandbox", "extensions": ["_verify_policy"]}
    found = sandbox_verify.policy_params(params, "sb", {})
    assert found["policy_landlock_compatibility"] == "hard_requirement"
    assert found["policy_read_only"] == ["/usr"] and "/tmp" in found["writable_paths"]


@pytest.mark.oracle("upstream")
def test_policy_params_read_the_v0026_form_without_a_yaml_library(tmp_path, monkeypatch):
    # the k3s line's `openshell policy get <sb> --full`: status lines, `---`, serde_yml's block style (run.rs @v0.0.26
    # L4551-4601; NetworkEndpointDef fields in struct order, openshell-policy lib.rs @v0.0.26 L81-103). The REST
    # endpoint has no enforcement, so it is audited (l7/mod.rs @v0.0.26 L120-122)
    import builtins  # noqa: PLC0415

    from ansible_collections.agentsec.nemoclaw.plugins.modules import sandbox_verify  # noqa: PLC0415

    out = tmp_path / "policy.txt"
    out.write_text("Version:      3\nHash:         9f2e\nStatus:       Loaded\nActive:       3\nCreated:      1712 ms\n---\n"
                   "version: 1\nfilesystem_policy:\n  include_workdir: true\n  read_only:\n  - /usr\n  read_write:\n  - /tmp\n"
                   "landlock:\n  compatibility: best_effort\nnetwork_policies:\n  lab_allowed:\n    name: lab_allowed\n"
                   "    endpoints:\n    - host: allowed.lab\n      port: 443\n      protocol: rest\n      tls: terminate\n"
                   "      access: read-only\n    - host: plain.lab\n      port: 80\n    binaries:\n    - path: /usr/bin/curl\n")
    real_import = builtins.__import__

    def no_yaml(name, *args, **kwargs):  # a Mac's /usr/bin/python3 has no YAML library
        if name == "yaml":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_yaml)
    params = {"policy_command": [sys.executable, "-c", f"print(open({str(out)!r}).read())", "{sandbox}"],
              "exec_timeout": 30, "workdir": "/sandbox", "extensions": ["_verify_l7", "_verify_policy"]}
    found = sandbox_verify.policy_params(params, "sb", {})
    assert found["policy_l7_endpoints"] == [{"rule": "lab_allowed", "host": "allowed.lab", "port": 443, "protocol": "rest",
                                             "enforcement": "audit"}]
    assert found["policy_revision"] == {"version": 3, "hash": "9f2e", "status": "Loaded"}
    assert found["policy_read_only"] == ["/usr"] and found["writable_paths"] == ["/tmp", "/sandbox"]
    status, obs = run_l7(found)
    assert status == V.FAIL and "allowed.lab:443 (audit)" in obs["reason"]


@pytest.mark.oracle("self")
def test_the_landlock_block_is_read_only_where_its_check_runs(tmp_path):
    # a target without the policy extension does not depend on the landlock block's form: an unreadable value there
    # fails only the target whose check reads it
    from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _policy  # noqa: PLC0415
    from ansible_collections.agentsec.nemoclaw.plugins.modules import sandbox_verify  # noqa: PLC0415

    out = tmp_path / "policy.txt"
    out.write_text("---\nversion: 1\nfilesystem_policy:\n  read_only:\n  - /usr\nlandlock:\n  compatibility: sometimes\n")
    params = {"policy_command": [sys.executable, "-c", f"print(open({str(out)!r}).read())"],
              "exec_timeout": 30, "workdir": "/sandbox", "extensions": []}
    found = sandbox_verify.policy_params(params, "sb", {})
    assert "policy_landlock_compatibility" not in found and found["policy_read_only"] == ["/usr"]
    with pytest.raises(_policy.PolicyError, match="sometimes"):
        sandbox_verify.policy_params({**params, "extensions": ["_verify_policy"]}, "sb", {})


@pytest.mark.oracle("kernel")
@pytest.mark.parametrize(("argv", "want"), [([sys.executable, "-c", "import sys; sys.stderr.write('denied'); sys.exit(4)"],
                                             "exited 4: denied"),
                                            (["/nonexistent/openshell"], "failed: [Errno 2]"),
                                            ([sys.executable, "-c", "import time; time.sleep(5)"], "timed out")])
def test_a_failing_host_command_names_what_it_was(argv, want):
    from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _sandbox_exec  # noqa: PLC0415

    with pytest.raises(_sandbox_exec.ExecError) as err:
        _sandbox_exec.host_command(argv, None, 0.5, "the policy command")
    assert str(err.value).startswith("the policy command") and want in str(err.value), err.value


@pytest.mark.oracle("ansible-core")
def test_every_targets_extensions_pass_the_verify_roles_argument_spec():
    # the role validates verify_extensions against its choices before any task (ansible-core's role argument
    # validation); a new extension missing there stopped the migrate playbook on the openshell_host line
    import pathlib  # noqa: PLC0415

    import yaml  # noqa: PLC0415

    from ansible_collections.agentsec.nemoclaw.plugins.modules import sandbox_verify  # noqa: PLC0415

    root = pathlib.Path(__file__).resolve().parents[4]
    spec = yaml.safe_load((root / "roles/verify/meta/argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    choices = spec["verify_extensions"]["choices"]
    assert sorted(choices) == sorted(sandbox_verify.LINE_EXTENSIONS)
    for path in (root / "targets").glob("*.yml"):
        extensions = ((yaml.safe_load(path.read_text()).get("verify") or {}).get("extensions")) or []
        assert set(extensions) <= set(choices), (path.name, extensions)
