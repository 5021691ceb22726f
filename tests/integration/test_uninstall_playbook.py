"""playbooks/uninstall.yml is scoped (issue 10 item 4): removing one sandbox rolls back only that sandbox's hardening,
keeps the others and the gateway, keeps the host-wide Ollama firewall until the gateway itself goes, and a name the
gateway does not list - or a bad switch - fails the run before any change.

The playbook runs for real against this host (localhost) with the stateful OpenShell v0.0.26 and Docker stand-ins of
tests/standins (their contract: tests/standins/README.md) as the target's CLI, in a private state directory and fake
root: the sandboxes are really listed with `openshell sandbox list --names` and really deleted in the stand-in's
state, and its call log shows every command the playbook ran. The hardening role runs with `hardening_backend: none`
(its documented host-only mode): restoring a Sandbox resource needs the k3s API (molecule/hardening and the
sandbox_harden tests cover that); what is checked here is what the role is asked to act on (its report) and whether
its Ollama firewall tasks run. The firewall removal itself runs in check mode only (it would change this host's
nftables), where it reads the loaded table and changes nothing.
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
STANDINS = ROOT / "tests" / "standins" / "bin"
COLLECTIONS = ROOT / ".build" / "collections"
PLAYBOOK = ROOT / "playbooks" / "uninstall.yml"
REPORT = "agentsec.nemoclaw.hardening : Report what hardening found and did"
FIREWALL = "roles/hardening/tasks/ollama_linux.yml"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the hardening role's firewall tasks use become (su as root)")


class World:
    """A host with the stand-in Docker (running) and OpenShell CLI in ~/.local/bin, as the target openshell_k3s has it."""

    def __init__(self, base: pathlib.Path):
        self.base, self.state, self.root, self.home = base, base / "state", base / "root", base / "home"
        self.bin = self.home / ".local" / "bin"
        for d in (self.state, self.root / "var" / "run", self.bin):
            d.mkdir(parents=True)
        (self.root / "var" / "run" / "docker.sock").touch()  # the stand-in's daemon check (fake root)
        for tool in ("openshell", "docker"):
            (self.bin / tool).symlink_to(STANDINS / tool)
        # Docker Desktop "running" straight through the state, as tests/unit/standins/test_standins.py does.
        (self.state / "docker.json").write_text(json.dumps({"desktop": {"running": True, "installed_version": "4.68.0"}}))
        self.env = {**os.environ, "AGENTSEC_STANDIN_DIR": str(self.state), "AGENTSEC_STANDIN_ROOT": str(self.root),
                    "AGENTSEC_CONSOLE_USER": "root", "HOME": str(self.home), "PATH": f"{self.bin}:{os.environ['PATH']}",
                    "ANSIBLE_CONFIG": str(base / "ansible.cfg"), "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
                    "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCAL_TEMP": str(base / "t-local"),
                    "ANSIBLE_REMOTE_TEMP": str(base / "t-remote")}
        (base / "ansible.cfg").write_text(
            f"[defaults]\ncollections_path = {COLLECTIONS}\ninject_facts_as_vars = false\nretry_files_enabled = false\n")
        (base / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"nemoclaw_hosts": {"hosts": {"fleet-host": {
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
            "ansible_become_method": "su",  # root already; this host has no sudo
            "nemoclaw_target": "openshell_k3s", "nemoclaw_user_home": str(self.home),
            "nemoclaw_onboard_npm_prefix": str(self.home / ".local"),
            "hardening_backend": "none", "hardening_ollama_firewall_enabled": True}}}}}}))

    def openshell(self, *args, check=True):
        run = subprocess.run([str(self.bin / "openshell"), *args], env=self.env, capture_output=True, text=True,
                             timeout=60, check=False)
        assert not check or run.returncode == 0, (args, run.stdout, run.stderr)
        return run

    def connected(self):
        """`openshell status` says the gateway is Connected (colours stripped, run.rs prints them)."""
        return "Status: Connected" in re.sub(r"\x1b\[[0-9;]*m", "", self.openshell("status").stdout)

    def sandboxes(self):
        return self.openshell("sandbox", "list", "--names").stdout.split()

    def calls(self):
        path = self.state / "calls.jsonl"
        return [json.loads(line)["argv"] for line in path.read_text().splitlines()] if path.exists() else []

    def uninstall(self, check=False, playbook=PLAYBOOK, **extra):
        cmd = ["ansible-playbook", "-i", str(self.base / "hosts.yml"), str(playbook), "-e", json.dumps(extra)]
        run = subprocess.run(cmd + (["--check"] if check else []), env=self.env, capture_output=True, text=True,
                             cwd=self.base, timeout=300, check=False)
        assert run.stdout.strip().startswith("{"), run.stdout[-2000:] + run.stderr[-3000:]
        out = json.loads(run.stdout)
        tasks = [(t["task"]["name"], t["task"]["path"], t["hosts"].get("fleet-host", {})) for p in out["plays"] for t in p["tasks"]]
        return run.returncode, tasks, out["stats"]["fleet-host"]


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    w.openshell("gateway", "start", "--name", "nemoclaw")
    for name in ("a", "b"):
        w.openshell("sandbox", "create", "--name", name)
    return w


def failure(tasks):
    """(name, message) of the first failed task; a loop's message joins the messages of its failed items."""
    for name, _path, res in tasks:
        if res.get("failed"):
            items = [r.get("msg", "") for r in res.get("results", []) if r.get("failed")]
            return name, " | ".join(items) if items else res.get("msg", "")
    return None, ""


def result(tasks, name):
    return next(res for n, _p, res in tasks if n == name)


def firewall_ran(tasks):
    return [n for n, path, res in tasks if FIREWALL in path and not res.get("skipped")]


def changing(calls_before, calls_after):
    """The stand-in calls the run made that change something (anything but reads)."""
    reads = (["sandbox", "list"], ["sandbox", "get"], ["status"], ["inspect"], ["ps"], ["info"], ["gateway", "info"])
    return [argv for argv in calls_after[len(calls_before):] if not any(argv[:len(r)] == r for r in reads)]


def scoping_problems(tasks, named):
    """What is wrong with the hardening roll-back of a run that removes `named` while other sandboxes remain."""
    report = result(tasks, REPORT)["msg"]
    problems = [] if report["state"] == "absent" else [f"hardening state {report['state']}"]
    if report["requested"] != named:
        problems.append(f"rolls back {report['requested']}, not only {named}")
    if report["ollama_firewall"] is not False or firewall_ran(tasks):
        problems.append(f"removes the host's Ollama firewall ({firewall_ran(tasks)})")
    return problems


@pytest.fixture
def unscoped(tmp_path):
    """The gap: uninstall.yml as it was before it was scoped - the hardening role without the sandbox list and the
    firewall decision, i.e. every sandbox and the firewall rolled back."""
    book = yaml.safe_load(PLAYBOOK.read_text())
    task = next(t for t in book[0]["tasks"] if t["name"].startswith("Roll the hardening"))
    for key in ("hardening_sandboxes", "hardening_ollama_firewall_enabled"):
        task["vars"].pop(key)
    (tmp_path / "gap" / "playbooks").mkdir(parents=True)
    (tmp_path / "gap" / "targets").symlink_to(ROOT / "targets")
    path = tmp_path / "gap" / "playbooks" / "uninstall.yml"
    path.write_text(yaml.safe_dump(book, sort_keys=False))
    return path


@pytest.mark.oracle("ansible-core", "self")
def test_the_unscoped_roll_back_is_caught(world, unscoped):
    rc, tasks, _stats = world.uninstall(check=True, playbook=unscoped, nemoclaw_uninstall_sandboxes=["a"])  # check: firewall
    assert rc == 0, failure(tasks)
    problems = scoping_problems(tasks, ["a"])
    assert any("rolls back every sandbox" in p for p in problems) and any("Ollama firewall" in p for p in problems), problems


@pytest.mark.oracle("ansible-core", "self")
def test_removing_one_sandbox_keeps_the_others_hardened_and_the_gateway_up(world):
    before = world.calls()
    rc, tasks, stats = world.uninstall(nemoclaw_uninstall_sandboxes=["a"])
    assert rc == 0, failure(tasks)
    assert scoping_problems(tasks, ["a"]) == []
    assert world.sandboxes() == ["b"]
    assert world.connected()
    assert changing(before, world.calls()) == [["sandbox", "delete", "a"]]
    assert stats["changed"] == 1


@pytest.mark.oracle("ansible-core", "self")
def test_the_last_sandbox_going_keeps_the_ollama_firewall_and_the_gateway(world):
    world.openshell("sandbox", "delete", "b")
    rc, tasks, _stats = world.uninstall(nemoclaw_uninstall_sandboxes=["a"])
    assert rc == 0, failure(tasks)
    assert result(tasks, REPORT)["msg"]["ollama_firewall"] is False
    assert not firewall_ran(tasks)
    assert world.sandboxes() == []
    assert world.connected()


@pytest.mark.oracle("ansible-core", "self")
def test_the_gateway_going_takes_the_ollama_firewall_with_it(world):
    before = world.calls()
    rc, tasks, _stats = world.uninstall(check=True, nemoclaw_uninstall_sandboxes=["a", "b"], nemoclaw_uninstall_gateway=True)
    assert rc == 0, failure(tasks)
    report = result(tasks, REPORT)["msg"]
    assert report["ollama_firewall"] is True and report["requested"] == ["a", "b"], report
    assert "agentsec.nemoclaw.hardening : Read the loaded Ollama table" in firewall_ran(tasks)
    destroy = result(tasks, "agentsec.nemoclaw.openshell_cluster : Destroy the gateway")
    assert destroy["cmd"][-3:] == ["destroy", "-g", "nemoclaw"] and "not in check mode" in destroy["msg"], destroy
    assert world.sandboxes() == ["a", "b"]  # check mode
    assert changing(before, world.calls()) == []


@pytest.mark.oracle("ansible-core", "self")
@pytest.mark.parametrize(("extra", "fragment"), [
    ({"nemoclaw_uninstall_sandboxes": ["a", "ghost"]}, "names ['ghost'], which gateway 'nemoclaw' does not have (it has ['a', 'b'])"),
    ({"nemoclaw_uninstall_sandboxes": ["a"], "nemoclaw_uninstall_gateway": True},
     "nemoclaw_uninstall_gateway=true, but the gateway also runs ['b']"),
], ids=["unknown-sandbox", "gateway-with-others"])
def test_refused_after_listing_before_any_change(world, extra, fragment):
    before = world.calls()
    rc, tasks, stats = world.uninstall(**extra)
    assert rc != 0
    name, msg = failure(tasks)
    assert fragment in msg and "nothing was changed" in msg, (name, msg)
    assert world.calls()[len(before):] == [["sandbox", "list", "--names"]]
    assert world.sandboxes() == ["a", "b"] and stats["changed"] == 0
    assert not any("hardening" in n or "nemoclaw_onboard" in n for n, _p, _r in tasks)


@pytest.mark.oracle("ansible-core")
@pytest.mark.parametrize(("extra", "fragment"), [
    ({"nemoclaw_uninstall_sandboxes": "a"}, "nemoclaw_uninstall_sandboxes=a: set a list"),
    ({"nemoclaw_uninstall_sandboxes": []}, "nemoclaw_uninstall_sandboxes=[]: set a list"),
    ({"nemoclaw_uninstall_sandboxes": ["a", "a"]}, "set a list of one or more distinct, valid sandbox names"),
    ({"nemoclaw_uninstall_sandboxes": ["Not_Valid"]}, "set a list of one or more distinct, valid sandbox names"),
    ({"nemoclaw_uninstall_gateway": "maybe"}, "nemoclaw_uninstall_gateway=maybe: set true or false"),
    ({"nemoclaw_uninstall_hardening": 2}, "nemoclaw_uninstall_hardening=2: set true or false"),
    ({"nemoclaw_target": "nope"}, "nemoclaw_target=nope: set nemoclaw_target for every nemoclaw host to one of"),
], ids=["string", "empty", "duplicate", "invalid-name", "gateway-not-bool", "hardening-not-bool", "unknown-target"])
def test_a_bad_switch_is_refused_before_anything_runs(world, extra, fragment):
    before = world.calls()
    rc, tasks, stats = world.uninstall(**extra)
    assert rc != 0
    name, msg = failure(tasks)
    assert name.startswith("Refuse a bad switch") and fragment in msg, (name, msg)
    assert world.calls() == before and stats["changed"] == 0  # not even the listing ran


@pytest.mark.oracle("ansible-core", "self")
def test_a_gateway_that_cannot_be_listed_is_refused(tmp_path):
    w = World(tmp_path)  # no gateway started: the CLI has no active gateway
    rc, tasks, stats = w.uninstall(nemoclaw_uninstall_sandboxes=["a"])
    assert rc != 0
    name, msg = failure(tasks)
    assert name == "Refuse a gateway whose sandboxes cannot be listed", (name, msg)
    assert "sandbox list --names' failed" in msg and "nothing was changed" in msg, msg
    assert w.calls() == [["sandbox", "list", "--names"]] and stats["changed"] == 0
