"""Action plugin verify_report (role verify's controller side in one task).

The pure parts (threshold, pending, directory, atomic writes) are checked directly. The behaviour that depends on
ansible-core - which host writes, that every host is failed on its own, that a failed host still gets its reports,
unreachable hosts, check mode, changed=0 - is checked with real `ansible-playbook` runs of playbooks/verify.yml on
this host: sandbox_verify in host mode with `env SB={sandbox}` as the exec prefix, so the probes run here, and only
checks that touch nothing but files given to them and a listener of the test on 127.0.0.1.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import socket
import stat
import subprocess

import pytest
import yaml

from ansible_collections.agentsec.nemoclaw.plugins.action import verify_report as A
from ansible_collections.agentsec.nemoclaw.plugins.filter import verify_report as R

ROOT = pathlib.Path(__file__).resolve().parents[4]


def _finding(cid, status, severity="high", residual=None):
    f = {"id": cid, "layer": cid.split(".")[0], "title": cid, "status": status, "severity": severity, "expected": "x",
         "observed": {}, "vantage": {}, "remediation": "", "duration_ms": 1}
    if residual:
        f["residual"] = residual
    return f


def _host(*findings, errors=()):
    return {"changed": False, "sandboxes": {"sb": {"findings": list(findings), "layers": {}, "failed_checks": [],
                                                   "duration_ms": 5}}, "errors": list(errors), "failed_checks": []}


# ---- pure parts -------------------------------------------------------------------------------------------------
@pytest.mark.oracle("self")
@pytest.mark.parametrize(("fail_on", "expected"), [
    ("none", []),
    ("high", ["failing check L1.landlock", "failing check L3.direct_egress"]),
    ("any", ["failing check L1.landlock", "failing check L3.direct_egress", "failing check L1.writable_paths",
             "failing check L2.af_netlink"]),
])
def test_threshold_counts_severity_and_skips_residual(fail_on, expected):
    result = _host(_finding("L1.landlock", "fail", "high"), _finding("L3.direct_egress", "fail", "critical"),
                   _finding("L1.writable_paths", "fail", "medium"), _finding("L2.af_netlink", "error", "medium"),
                   _finding("L5.clienthello_evasion", "fail", "high", residual="open by design"),
                   _finding("L1.ro_root", "pass"))
    assert A.host_failing(result, fail_on, True) == expected


@pytest.mark.oracle("self")
def test_a_check_failing_in_two_sandboxes_is_named_once():
    result = _host(_finding("L1.landlock", "fail"))
    result["sandboxes"]["sb2"] = {"findings": [_finding("L1.landlock", "fail")]}
    assert A.host_failing(result, "high", True) == ["failing check L1.landlock"]


@pytest.mark.oracle("self")
@pytest.mark.parametrize(("result", "reason"), [
    (None, "host unreachable: no result"),
    ({}, "host unreachable: no result"),
    ({"unreachable": True, "msg": "ssh: connect to host refused"}, "host unreachable: ssh: connect to host refused"),
    ({"sandboxes": {}, "errors": ["no sandbox found on this host (openshell sandbox list --names)"]},
     "no sandbox found on this host (openshell sandbox list --names)"),
    ({"failed": False, "msg": "timeout 99.0 must be between 0 and 60 seconds"}, "no result: timeout 99.0 must be between 0 and 60 seconds"),
    ({"changed": False, "skipped": True}, "no result: sandbox_verify did not run (skipped)"),
])
def test_a_host_without_a_result_fails_unless_fail_on_error_is_off(result, reason):
    assert A.host_failing(result, "high", True) == [reason]
    assert A.host_failing(result, "high", False) == []


@pytest.mark.oracle("self")
def test_errors_of_some_sandboxes_and_findings_of_the_others_both_count():
    result = _host(_finding("L1.landlock", "fail"), errors=["sb2: no result within 120s"])
    assert A.host_failing(result, "high", True) == ["sb2: no result within 120s", "failing check L1.landlock"]
    assert A.host_failing(result, "high", False) == ["failing check L1.landlock"]


@pytest.mark.oracle("self")
def test_pending_only_in_check_mode_and_only_for_a_skipped_verifier():
    skipped = {"changed": False, "skipped": True, "skip_reason": "Conditional result was False"}
    assert A.is_pending(skipped, True)
    assert not A.is_pending(skipped, False)
    assert not A.is_pending(_host(), True)
    assert not A.is_pending(None, True)


@pytest.mark.oracle("self")
def test_report_directory_is_created_and_refused_when_not_a_directory(tmp_path):
    target = tmp_path / "a" / "b"
    assert A.ensure_dir(str(target)) is None
    assert stat.S_IMODE(target.stat().st_mode) == 0o755 & ~_umask()
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o700)
    assert A.ensure_dir(str(mine)) is None and stat.S_IMODE(mine.stat().st_mode) == 0o700  # left as it is
    afile = tmp_path / "file"
    afile.write_text("x")
    assert A.ensure_dir(str(afile)) is not None
    assert A.ensure_dir(str(afile / "sub")) is not None


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.oracle("self")
def test_reports_are_the_filters_output_written_atomically(tmp_path):
    results = R.verify_flatten({"h1": _host(_finding("L1.landlock", "fail")), "h2": {"unreachable": True, "msg": "down"}})
    paths = A.write_reports(str(tmp_path), results)
    assert [pathlib.Path(p).name for p in paths] == ["verify.json", "verify.junit.xml", "verify.sarif", "verify.txt"]
    assert json.loads((tmp_path / "verify.json").read_text()) == R.verify_json(results)
    assert json.loads((tmp_path / "verify.sarif").read_text()) == R.verify_sarif(results)
    assert (tmp_path / "verify.junit.xml").read_text() == R.verify_junit(results)
    assert (tmp_path / "verify.txt").read_text() == R.verify_text(results)
    assert all(stat.S_IMODE(os.stat(p).st_mode) == 0o644 for p in paths)
    assert sorted(os.listdir(tmp_path)) == sorted(pathlib.Path(p).name for p in paths)  # no temporary file left


# ---- real ansible-playbook runs ---------------------------------------------------------------------------------
HERE = {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}


@pytest.fixture(name="world")
def fixture_world(tmp_path):
    """Files and a loopback listener the probes look at: a CA file (L5.ca_file passes), a missing one (fails, medium),
    and a TCP listener that a direct connection reaches (L3.direct_egress fails, critical)."""
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked by L5.ca_file\n")
    ca.chmod(0o644)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield {"ca": str(ca), "missing": str(tmp_path / "missing.pem"), "open": f"127.0.0.1:{listener.getsockname()[1]}"}
    listener.close()


def _sandbox_host(checks, **extra):
    return {**HERE, "verify_exec": [shutil.which("env"), "SB={sandbox}"], "verify_discover": [], "verify_policy_command": [], "verify_peer_command": [],
            "verify_sandboxes": ["sb"],
            "verify_environment": {}, "verify_residual": {}, "verify_checks": checks, **extra}


def run_verify(tmp_path, hosts, *args, report_dir=None, playbook=ROOT / "playbooks/verify.yml"):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"vars": {"nemoclaw_target": "lab"},
                                                 "children": {"nemoclaw_hosts": {"hosts": hosts}}}}))
    report_dir = report_dir or str(tmp_path / "reports")
    config = tmp_path / "ansible.cfg"  # the collection's, but with the JSON callback alone (no profile_tasks lines)
    config.write_text("[defaults]\nstdout_callback = ansible.posix.json\ninterpreter_python = auto_silent\nforks = 10\n"
                      "retry_files_enabled = false\ninject_facts_as_vars = false\nhost_key_checking = false\n")
    env = dict(os.environ, ANSIBLE_CONFIG=str(config), ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(tmp_path / "t"),
               ANSIBLE_SSH_ARGS="-o ConnectTimeout=5 -o BatchMode=yes")
    cmd = [shutil.which("ansible-playbook") or "ansible-playbook", "-i", str(inventory), str(playbook),
           "-e", json.dumps({"nemoclaw_verify_report_dir": report_dir}), *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp_path, timeout=300, check=False)
    try:
        doc = json.loads(proc.stdout[proc.stdout.index("{"):])
    except ValueError:
        pytest.fail(f"no JSON from ansible-playbook (rc {proc.returncode}): {proc.stdout[-2000:]} {proc.stderr[-2000:]}")
    tasks = {}  # the report task is in the play twice (the role's end, and alone for unreachable hosts): merge the
    for play in doc["plays"]:  # hosts that ran it, skipped ones only where nothing else ran
        for t in play["tasks"]:
            merged = tasks.setdefault(t["task"]["name"], {})
            for host, res in t["hosts"].items():
                if host not in merged or merged[host].get("skipped"):
                    merged[host] = res
    report = tasks.get("agentsec.nemoclaw.verify : Write the reports on the controller, show the tables and the fleet summary, "
                       "apply the failure threshold")
    assert report is not None, f"the report task did not run: {list(tasks)} {proc.stderr[-2000:]}"
    return proc, doc["stats"], report, pathlib.Path(report_dir), tasks


FLEET = {
    "h-pass": ("L5.ca_file", {"verify_ca_path": "{ca}"}),
    "h-medium": ("L5.ca_file", {"verify_ca_path": "{missing}"}),
    "h-critical": ("L3.direct_egress", {"verify_egress_target": "{open}"}),
    "h-residual": ("L3.direct_egress", {"verify_egress_target": "{open}", "verify_residual": {"L3.direct_egress": "by design here"}}),
    "h-execerr": ("L5.ca_file", {"verify_exec": ["false"], "verify_ca_path": "{ca}"}),
    "h-discerr": ("L5.ca_file", {"verify_sandboxes": [], "verify_discover": ["false"], "verify_ca_path": "{ca}"}),
    "h-nosb": ("L5.ca_file", {"verify_sandboxes": [], "verify_discover": ["true"], "verify_ca_path": "{ca}"}),
    "h-badinput": ("L5.ca_file", {"verify_timeout": 99, "verify_ca_path": "{ca}"}),
}


def fleet(world, names):
    hosts = {}
    for name in names:
        check, extra = FLEET[name]
        hosts[name] = _sandbox_host([check], **{k: (v.format(**world) if isinstance(v, str) else v) for k, v in extra.items()})
    return hosts


@pytest.mark.oracle("ansible-core")
def test_each_host_fails_on_its_own_and_every_host_is_in_the_reports(tmp_path, world):
    hosts = fleet(world, FLEET)
    hosts["h-unreachable"] = {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": 1}  # refused on loopback
    proc, stats, report, reports, _tasks = run_verify(tmp_path, hosts)
    assert proc.returncode == 2, proc.stderr[-2000:]
    failed = sorted(h for h, s in stats.items() if s["failures"])
    assert failed == ["h-badinput", "h-critical", "h-discerr", "h-execerr", "h-nosb", "h-unreachable"], report
    assert report["h-critical"]["msg"] == "h-critical: failing check L3.direct_egress"
    assert report["h-unreachable"]["failing"][0].startswith("host unreachable: ")
    assert report["h-nosb"]["failing"] == ["no sandbox found on this host (true)"]
    assert report["h-discerr"]["failing"][0].startswith("sandbox discovery `false` exited 1")
    assert report["h-execerr"]["failing"][0].startswith("sb: no result from sandbox 'sb'")
    assert report["h-badinput"]["failing"] == ["no result: timeout 99.0 must be between 0 and 60 seconds"]
    assert report["h-medium"]["failing"] == [] and report["h-residual"]["failing"] == []
    assert all(s["changed"] == 0 for s in stats.values()), stats  # the reports are the controller's record
    writers = [h for h, r in report.items() if "reports" in r]
    assert len(writers) == 1 and "summary" in report[writers[0]]
    doc = json.loads((reports / "verify.json").read_text())
    assert sorted(doc["hosts"]) == ["h-badinput", "h-critical/sb", "h-discerr", "h-execerr/sb", "h-medium/sb", "h-nosb",
                                    "h-pass/sb", "h-residual/sb", "h-unreachable"]
    assert doc["hosts"]["h-unreachable"]["state"] == "UNREACHABLE"
    residual = doc["hosts"]["h-residual/sb"]["findings"][0]
    assert residual["status"] == "fail" and residual["residual"] == "by design here"
    assert (reports / "verify.junit.xml").read_text().startswith("<?xml")
    assert json.loads((reports / "verify.sarif").read_text())["version"] == "2.1.0"
    assert "h-critical/sb" in (reports / "verify.txt").read_text()
    assert report["h-critical"]["tables"][0] == "Sandbox h-critical/sb"


@pytest.mark.oracle("ansible-core")
def test_fail_on_any_counts_medium_and_fail_on_error_off_lets_missing_results_pass(tmp_path, world):
    hosts = fleet(world, ["h-pass", "h-medium", "h-execerr", "h-nosb"])
    proc, stats, report, _reports, _tasks = run_verify(tmp_path, hosts, "-e", "verify_fail_on=any", "-e", "verify_fail_on_error=false")
    assert proc.returncode == 2
    assert sorted(h for h, s in stats.items() if s["failures"]) == ["h-medium"], report
    assert report["h-medium"]["msg"] == "h-medium: failing check L5.ca_file"


@pytest.mark.oracle("ansible-core")
def test_check_mode_reports_a_host_not_deployed_yet_without_failing_it(tmp_path, world):
    hosts = fleet(world, ["h-pass", "h-critical"])
    hosts["h-new"] = _sandbox_host(["L5.ca_file"], verify_exec=[str(tmp_path / "not-installed" / "openshell"), "sandbox", "exec"])
    proc, stats, report, reports, _tasks = run_verify(tmp_path, hosts, "--check")
    assert sorted(h for h, s in stats.items() if s["failures"]) == ["h-critical"], report  # check mode still verifies
    assert proc.returncode == 2
    assert report["h-new"]["pending"] and report["h-new"]["failing"] == []
    assert "not deployed yet" in report["h-new"]["msg"]
    doc = json.loads((reports / "verify.json").read_text())  # written in check mode too
    assert doc["hosts"]["h-new"] == {"state": "ERROR", "msg": "not verified: the target is not deployed yet (check mode)"}
    assert all(s["changed"] == 0 for s in stats.values())


@pytest.mark.oracle("ansible-core")
def test_a_report_directory_that_cannot_be_written_fails_every_host(tmp_path, world):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    proc, stats, report, _reports, _tasks = run_verify(tmp_path, fleet(world, ["h-pass", "h-medium"]), report_dir=str(blocker / "verify"))
    assert proc.returncode == 2
    assert sorted(h for h, s in stats.items() if s["failures"]) == ["h-medium", "h-pass"]
    assert all("cannot be written" in r["msg"] and str(blocker / "verify") in r["msg"] for r in report.values()), report


AFTER = """
- name: The verification
  ansible.builtin.import_playbook: {verify}
- name: A later play of the same run
  hosts: nemoclaw_hosts
  gather_facts: false
  tasks:
    - name: After verification
      ansible.builtin.debug:
        msg: later play ran
"""


@pytest.mark.oracle("ansible-core")
@pytest.mark.parametrize("fatal", [False, True])
def test_any_errors_fatal_switch_stops_the_run_only_when_on(tmp_path, world, fatal):
    book = tmp_path / "site.yml"
    book.write_text(AFTER.format(verify=ROOT / "playbooks/verify.yml"))
    hosts = fleet(world, ["h-pass", "h-critical"])
    proc, stats, report, reports, tasks = run_verify(tmp_path, hosts, "-e", json.dumps({"nemoclaw_verify_any_errors_fatal": fatal}),
                                                     playbook=book)
    assert proc.returncode == 2
    assert report["h-critical"]["failing"] == ["failing check L3.direct_egress"] and report["h-pass"]["failing"] == []
    assert (reports / "verify.json").is_file()  # the reports come first either way
    later = tasks.get("After verification") or {}
    assert sorted(later) == ([] if fatal else ["h-pass"]), later
    assert bool(stats["h-pass"]["failures"]) == fatal


KEYWORD = """
- name: Keyword under test
  hosts: nemoclaw_hosts
  gather_facts: false
  any_errors_fatal: {keyword}
  tasks:
    - name: Reach every host
      ansible.builtin.ping:
      ignore_unreachable: true
    - name: After an ignored unreachable host
      ansible.builtin.debug:
        msg: still running
"""


@pytest.mark.oracle("ansible-core")
@pytest.mark.parametrize(("keyword", "continues"), [("false", True), ('"{{ false }}"', False)], ids=["literal", "gap-template"])
def test_why_verify_yml_keeps_any_errors_fatal_literal(tmp_path, keyword, continues):
    """The gap verify.yml had: a templated any_errors_fatal is not templated for the strategy (always true), so one
    ignored unreachable host ends the play for every host - no reports, no verdicts."""
    book = tmp_path / "keyword.yml"
    book.write_text(KEYWORD.format(keyword=keyword))
    hosts = {"h-local": dict(HERE), "h-unreachable": {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": 1}}
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"nemoclaw_hosts": {"hosts": hosts}}}}))
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(tmp_path / "t"), ANSIBLE_HOST_KEY_CHECKING="false",
               ANSIBLE_SSH_ARGS="-o ConnectTimeout=5 -o BatchMode=yes")
    proc = subprocess.run([shutil.which("ansible-playbook") or "ansible-playbook", "-i", str(inventory), str(book)], env=env,
                          capture_output=True, text=True, cwd=tmp_path, timeout=300, check=False)
    assert ("still running" in proc.stdout) is continues, proc.stdout[-2000:]
