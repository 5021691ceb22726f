"""Report rendering: Table 4 per host, fleet summary with unreachable hosts, and parseable JSON/JUnit/SARIF."""
from __future__ import annotations

import json
from xml.etree import ElementTree as ET

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


def test_table_like_the_paper():
    text = R.verify_table(RESULTS["mac01/sb"], "mac01/sb")
    lines = text.splitlines()
    assert lines[0] == "Sandbox mac01/sb"
    assert lines[1].split() == ["Layer", "Tests", "Result", "Evidence"]
    assert any(line.startswith("L1: Filesystem") and "1/2" in line and "PARTIAL" in line for line in lines)
    assert "UNREACHABLE" in R.verify_table(RESULTS["mac03/sb"], "mac03/sb")


def test_fleet_summary_marks_unreachable_hosts():
    rows = R.verify_fleet_summary(RESULTS).splitlines()
    assert rows[0].split()[:7] == ["host", "L1", "L2", "L3", "L4", "L5", "L6"]
    mac1 = next(r for r in rows if r.startswith("mac01"))
    assert "PARTIAL 1/2" in mac1 and "L1.landlock" in mac1
    mac3 = next(r for r in rows if r.startswith("mac03"))
    assert mac3.count("UNREACHABLE") == 6


def test_json_report_roundtrips():
    doc = json.loads(json.dumps(R.verify_json(RESULTS)))
    assert doc["schema"] == "agentsec.nemoclaw/verify-report/v1"
    assert doc["hosts"]["mac03/sb"]["state"] == "UNREACHABLE"
    assert doc["hosts"]["mac02/sb"]["failed_checks"] == ["L2.af_netlink"]


def test_junit_counts_and_structure():
    root = ET.fromstring(R.verify_junit(RESULTS).split("?>", 1)[1])
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert suites["mac01/sb"].get("tests") == "4" and suites["mac01/sb"].get("failures") == "1"
    assert suites["mac01/sb"].get("skipped") == "1"
    assert suites["mac02/sb"].get("errors") == "1"
    assert suites["mac03/sb"].get("errors") == "1"
    failure = suites["mac01/sb"].find("testcase/failure")
    assert failure.get("type") == "high" and "fix it" in failure.text


def test_sarif_has_rules_and_one_result_per_bad_finding():
    sarif = json.loads(json.dumps(R.verify_sarif(RESULTS)))
    assert sarif["version"] == "2.1.0"
    run = sarif["runs"][0]
    rule_ids = {r["id"] for r in run["tool"]["driver"]["rules"]}
    assert {"L1.landlock", "L2.af_netlink", "sandbox.unreachable"} <= rule_ids
    results = [(r["ruleId"], r["locations"][0]["logicalLocations"][0]["name"]) for r in run["results"]]
    assert sorted(results) == [("L1.landlock", "mac01/sb"), ("L2.af_netlink", "mac02/sb"), ("sandbox.unreachable", "mac03/sb")]
    assert next(r for r in run["results"] if r["ruleId"] == "L1.landlock")["level"] == "error"


def test_text_report_has_every_host_and_the_summary():
    text = R.verify_text(RESULTS)
    assert text.index("Sandbox mac01/sb") < text.index("Sandbox mac02/sb") < text.index("Fleet summary")
