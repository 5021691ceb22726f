"""playbooks/site.yml on the target contract (issue 10 item 4): its switches are checked before anything else, one
line per bad switch naming it and what to set; the canary is deployed and verified alone, the rest follows in
batches; the verification runs only when nemoclaw_site_verify is true and writes its reports to
nemoclaw_site_report_dir.

The playbook runs for real on this host: three inventory hosts, all `ansible_connection: local`, target `lab` with a
lab directory under tmp that holds no CLI. Runs that go past the switches use `--tags verify`, so of the deploy roles
only their `always` checks run (read-only) and the verification is real: sandbox_verify discovers with the target's
`openshell sandbox list --names`, which fails here (no CLI), so the canary's verification fails after writing its
reports - which proves where they go and that the run stops at the canary.
"""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / ".build" / "collections"
SITE = ROOT / "playbooks" / "site.yml"
HOSTS = ("h1", "h2", "h3")


@pytest.fixture
def fleet(tmp_path):
    (tmp_path / "ansible.cfg").write_text(
        f"[defaults]\ncollections_path = {COLLECTIONS}\ninject_facts_as_vars = false\nretry_files_enabled = false\n")
    inventory = {"all": {"children": {"nemoclaw_hosts": {"hosts": {h: {} for h in HOSTS}, "vars": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable, "nemoclaw_target": "lab",
        "nemoclaw_lab_dir": str(tmp_path / "lab"), "prerequisites_cgroup_v2_required": False,
        "nemoclaw_onboard_accept_third_party_software": True}}}}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    return tmp_path


def site(base, *args, playbook=SITE, host_vars=None, **extra):
    if host_vars:
        inventory = yaml.safe_load((base / "hosts.yml").read_text())
        inventory["all"]["children"]["nemoclaw_hosts"]["vars"].update(host_vars)
        (base / "hosts.yml").write_text(yaml.safe_dump(inventory))
    env = {**os.environ, "ANSIBLE_CONFIG": str(base / "ansible.cfg"), "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
           "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCAL_TEMP": str(base / "t-local"), "ANSIBLE_REMOTE_TEMP": str(base / "t-remote")}
    cmd = ["ansible-playbook", "-i", str(base / "hosts.yml"), str(playbook), *args, "-e", json.dumps(extra)]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=base, timeout=600, check=False)
    assert run.stdout.strip().startswith("{"), run.stdout[-2000:] + run.stderr[-3000:]
    return run.returncode, json.loads(run.stdout)


def item_failures(out):
    """{host: [message]} of the failed assertions (a loop's failed items each count)."""
    found = {}
    for play in out["plays"]:
        for task in play["tasks"]:
            for host, res in task["hosts"].items():
                if res.get("failed"):
                    items = [r.get("msg", "") for r in res.get("results", []) if r.get("failed")]
                    found.setdefault(host, []).extend(items or [res.get("msg", "")])
    return found


def plays_on(out):
    """[(play name, hosts that ran a task of it)] in the order of the run (a serial batch is a play of its own)."""
    return [(p["play"]["name"], sorted({h for t in p["tasks"] for h in t["hosts"]})) for p in out["plays"]]


BAD = [
    ({"nemoclaw_target": "nope"}, "nemoclaw_target=nope: set nemoclaw_target for every nemoclaw host to one of"),
    ({"nemoclaw_site_harden": "maybe"}, "nemoclaw_site_harden=maybe: set true or false"),
    ({"nemoclaw_site_verify": 3}, "nemoclaw_site_verify=3: set true or false"),
    ({"nemoclaw_site_verify_fail_on": "medium"}, "nemoclaw_site_verify_fail_on=medium: set none, high or any"),
    ({"nemoclaw_site_report_dir": "reports/site"}, "nemoclaw_site_report_dir=reports/site: set an absolute directory"),
    ({"nemoclaw_site_canary": "ghost"}, "nemoclaw_site_canary=ghost (matches []): set one host of this run"),
    ({"nemoclaw_site_canary": "nemoclaw_hosts"}, "nemoclaw_site_canary=nemoclaw_hosts (matches ['h1', 'h2', 'h3'])"),
    ({"nemoclaw_site_serial": 0}, "nemoclaw_site_serial=0: pass it with -e"),
    ({"nemoclaw_site_serial": "150%"}, "nemoclaw_site_serial=150%: pass it with -e"),
    ({"nemoclaw_site_max_fail_percentage": 101}, "nemoclaw_site_max_fail_percentage=101: pass it with -e"),
    ({"nemoclaw_site_max_fail_percentage": "some"}, "nemoclaw_site_max_fail_percentage=some: pass it with -e"),
]


@pytest.mark.oracle("ansible-core")
@pytest.mark.parametrize(("extra", "fragment"), BAD, ids=[f"{next(iter(e))}={next(iter(e.values()))}" for e, _f in BAD])
def test_a_bad_switch_stops_the_run_before_anything_else(fleet, extra, fragment):
    rc, out = site(fleet, **extra)
    assert rc != 0
    failures = item_failures(out)
    assert set(failures) == set(HOSTS), failures
    assert all(any(fragment in m for m in msgs) and len(msgs) == 1 for msgs in failures.values()), failures
    assert [name for name, _hosts in plays_on(out)] == ["Check the run's switches before anything else"]
    assert all(s["changed"] == 0 for s in out["stats"].values())


@pytest.mark.oracle("ansible-core")
def test_every_bad_switch_is_named(fleet):
    rc, out = site(fleet, nemoclaw_site_verify_fail_on="medium", nemoclaw_site_serial="x", nemoclaw_site_harden="maybe")
    assert rc != 0
    messages = item_failures(out)["h1"]
    assert len(messages) == 3 and [m.split(": ", 2)[1].split("=")[0] for m in messages] == [
        "nemoclaw_site_harden", "nemoclaw_site_verify_fail_on", "nemoclaw_site_serial"], messages


@pytest.mark.oracle("ansible-core")
@pytest.mark.parametrize("switch", ["nemoclaw_site_serial", "nemoclaw_site_max_fail_percentage"])
def test_a_play_keyword_switch_in_the_inventory_is_refused(fleet, switch):
    rc, out = site(fleet, host_vars={switch: 1})
    assert rc != 0
    messages = item_failures(out)["h1"]
    assert messages == [f"h1: {switch}=1: pass it with -e (Ansible reads the play keyword "
                        f"{switch.removeprefix('nemoclaw_site_')} from extra vars only, never from the inventory) as "
                        + ("a positive number, a percentage 1%-100% or a list of them" if switch.endswith("serial")
                           else "a number from 0 to 100")], messages


@pytest.mark.oracle("ansible-core")
def test_without_the_check_an_inventory_serial_is_silently_ignored(fleet):
    """The gap the check closes: site.yml without its first play deploys the rest in one batch although the
    inventory says nemoclaw_site_serial: 1 (Ansible templates serial without inventory variables)."""
    book = yaml.safe_load(SITE.read_text())
    name_it = {"name": "Name it", "ansible.builtin.add_host": {"name": "h1", "groups": ["__nemoclaw_site_canary"]},
               "run_once": True, "tags": ["always"]}
    canary = {"name": "Name the canary", "hosts": "nemoclaw_hosts", "gather_facts": False, "tasks": [name_it]}
    gap = fleet / "gap" / "site.yml"
    gap.parent.mkdir()
    (fleet / "gap" / "verify.yml").symlink_to(ROOT / "playbooks" / "verify.yml")
    (fleet / "gap" / "tasks").symlink_to(ROOT / "playbooks" / "tasks")
    gap.write_text(yaml.safe_dump([canary, *book[1:]], sort_keys=False))
    rc, out = site(fleet, "--tags", "verify", playbook=gap, host_vars={"nemoclaw_site_serial": 1}, nemoclaw_site_verify=False)
    assert rc == 0, item_failures(out)
    assert ("Deploy the rest of the fleet", ["h2", "h3"]) in plays_on(out)  # one batch of two, not two of one


@pytest.mark.oracle("ansible-core")
def test_the_canary_goes_alone_then_the_rest_in_batches_and_no_verify_when_off(fleet):
    reports = fleet / "reports"
    rc, out = site(fleet, "--tags", "verify", nemoclaw_site_verify=False, nemoclaw_site_canary="h2", nemoclaw_site_serial=1,
                   nemoclaw_site_report_dir=str(reports))
    assert rc == 0, item_failures(out)
    ran = [(name, hosts) for name, hosts in plays_on(out) if name != "Verify the six layers in every sandbox"]
    assert ran == [("Check the run's switches before anything else", list(HOSTS)),
                   ("Preflight - inputs and platform of every host, before anything changes", list(HOSTS)),
                   ("Deploy the canary", ["h2"]),
                   ("Deploy the rest of the fleet", ["h1"]), ("Deploy the rest of the fleet", ["h3"])], ran
    verify_results = [res for p in out["plays"] if p["play"]["name"] == "Verify the six layers in every sandbox"
                      for t in p["tasks"] for res in t["hosts"].values()]
    assert verify_results and all(res.get("skipped") for res in verify_results)
    assert not reports.exists()


@pytest.mark.oracle("ansible-core")
def test_the_canary_is_verified_alone_into_the_report_dir_and_its_failure_stops_the_run(fleet):
    reports = fleet / "reports"
    rc, out = site(fleet, "--tags", "verify", nemoclaw_site_canary="h2", nemoclaw_site_report_dir=str(reports))
    assert rc != 0
    names = [name for name, _hosts in plays_on(out)]
    assert names[-1] == "Verify the six layers in every sandbox" and "Deploy the rest of the fleet" not in names, names
    failures = item_failures(out)
    assert list(failures) == ["h2"] and "sandbox discovery" in failures["h2"][0], failures
    report = json.loads((reports / "canary" / "verify.json").read_text())
    assert list(report["hosts"]) == ["h2"], report
    assert sorted(p.name for p in (reports / "canary").iterdir()) == ["verify.json", "verify.junit.xml", "verify.sarif", "verify.txt"]
    assert not (reports / "fleet").exists()


def _closed_loopback_port():
    """A loopback TCP port nothing listens on (bound, then released): ssh to it is refused at once."""
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.oracle("ansible-core")
@pytest.mark.parametrize("down", [("h1", "h2", "h3"), ("h1",)], ids=["every-host-down", "one-host-down"])
def test_verify_reports_hosts_unreachable_before_the_role(fleet, down):
    """The openshell_k3s target has per-platform values, so verify.yml reads facts before the role; a host whose
    connection fails there must still be in the reports as unreachable and fail - also when no host is reachable
    (before the fix: no report at all, only ansible-playbook's exit code)."""
    reports = fleet / "reports"
    inventory = yaml.safe_load((fleet / "hosts.yml").read_text())
    group = inventory["all"]["children"]["nemoclaw_hosts"]
    group["vars"]["nemoclaw_target"] = "openshell_k3s"
    port = _closed_loopback_port()
    for host in down:
        group["hosts"][host] = {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": port,
                                "ansible_ssh_common_args": "-o BatchMode=yes -o ConnectTimeout=5"}
    (fleet / "hosts.yml").write_text(yaml.safe_dump(inventory))
    rc, _out = site(fleet, playbook=ROOT / "playbooks" / "verify.yml", nemoclaw_verify_report_dir=str(reports))
    assert rc != 0
    report = json.loads((reports / "verify.json").read_text())
    assert sorted(report["hosts"]) == list(HOSTS), report
    for host in down:
        text = json.dumps(report["hosts"][host])
        assert "unreachable" in text.lower() and str(port) in text, (host, text[:2000])
