# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)
"""Turn sandbox_verify results from many hosts into tables, a fleet summary, JSON, JUnit XML and SARIF."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

LAYERS = ("L1", "L2", "L3", "L4", "L5", "L6")
LAYER_NAMES = {"L1": "Filesystem", "L2": "Seccomp", "L3": "Network", "L4": "Policy (L4)", "L5": "TLS (L7)", "L6": "Inference"}
SARIF_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}


def _state(result):
    if not isinstance(result, dict) or result.get("unreachable"):
        return "UNREACHABLE"
    if "findings" not in result:
        return "ERROR"
    return "OK"


def verify_flatten(host_results):
    """{inventory host: sandbox_verify result (host mode)} -> {"host/sandbox": result}. A host whose run could not
    start (unreachable, discovery failed, no sandbox found) keeps one entry under its own name saying why."""
    out = {}
    for host in sorted(host_results):
        res = host_results[host] or {}
        sandboxes = res.get("sandboxes") or {}
        for name in sorted(sandboxes):
            sb = sandboxes[name]
            out[f"{host}/{name}"] = {"unreachable": sb.get("unreachable", False), "msg": sb["error"]} if "error" in sb else sb
        if res.get("skipped") and not sandboxes:  # check mode on a host not deployed yet (role verify)
            out[host] = {"unreachable": False, "msg": "not verified: the target is not deployed yet (check mode)"}
        elif res.get("errors") and not sandboxes:
            out[host] = {"unreachable": False, "msg": "; ".join(res["errors"])}
        elif "sandboxes" not in res:
            out[host] = {"unreachable": True, "msg": res.get("msg") or "no result (host unreachable or the task did not run)"}
    return out


def verify_table(result, host=None):
    """One host, like the paper's Table 4."""
    title = f"Sandbox {host}" if host else "Sandbox"
    state = _state(result)
    if state != "OK":
        msg = (result or {}).get("msg", "no result") if isinstance(result, dict) else "no result"
        return f"{title}: {state} ({msg})"
    rows = [("Layer", "Tests", "Result", "Evidence")]
    for layer in LAYERS:
        s = result.get("layers", {}).get(layer)
        if s:
            rows.append((f"{layer}: {LAYER_NAMES[layer]}", f"{s['passed']}/{s['total']}", s["result"], s["evidence"]))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [title]
    for r in rows:
        lines.append("  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3])
    return "\n".join(lines)


def verify_fleet_summary(results):
    """Hosts x layers: PASS / PARTIAL n/m / FAIL / ERROR / SKIPPED / UNREACHABLE."""
    header = ["host", *LAYERS, "failed checks"]
    rows = [header]
    for host in sorted(results):
        res = results[host]
        state = _state(res)
        if state != "OK":
            rows.append([host, *([state] * len(LAYERS)), ""])
            continue
        cells = []
        for layer in LAYERS:
            s = res.get("layers", {}).get(layer)
            if not s:
                cells.append("-")
            elif s["result"] == "PARTIAL":
                cells.append(f"PARTIAL {s['passed']}/{s['total']}")
            else:
                cells.append(s["result"])
        rows.append([host, *cells, ",".join(res.get("failed_checks", []))])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join("  ".join(r[i].ljust(widths[i]) for i in range(len(header))).rstrip() for r in rows)


def verify_text(results):
    """Every host's table followed by the fleet summary, for the text report."""
    tables = [verify_table(results[host], host) for host in sorted(results)]
    return "\n\n".join([*tables, "Fleet summary", verify_fleet_summary(results)]) + "\n"


def verify_json(results):
    """A stable report document: per host the layers, findings and vantage, or why there is no result."""
    hosts = {}
    for host in sorted(results):
        res = results[host]
        state = _state(res)
        if state != "OK":
            hosts[host] = {"state": state, "msg": (res or {}).get("msg", "") if isinstance(res, dict) else ""}
        else:
            hosts[host] = {"state": state, "layers": res["layers"], "findings": res["findings"], "vantage": res.get("vantage", {}),
                           "failed_checks": res.get("failed_checks", []), "duration_ms": res.get("duration_ms"),
                           "peer_addresses": res.get("peer_addresses", [])}
    return {"schema": "agentsec.nemoclaw/verify-report/v1", "hosts": hosts}


def verify_junit(results):
    """JUnit XML: one testsuite per host, one testcase per finding; unreachable hosts are one erroring testcase."""
    suites = ET.Element("testsuites", name="agentsec.nemoclaw sandbox verification")
    for host in sorted(results):
        res = results[host]
        suite = ET.SubElement(suites, "testsuite", name=host)
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        if _state(res) != "OK":
            case = ET.SubElement(suite, "testcase", classname=host, name="sandbox reachable")
            ET.SubElement(case, "error", message=_state(res)).text = json.dumps(res if isinstance(res, dict) else {}, default=str)[:2000]
            counts["tests"], counts["errors"] = 1, 1
        else:
            for f in res["findings"]:
                case = ET.SubElement(suite, "testcase", classname=f"{host}.{f['layer']}", name=f"{f['id']} {f['title']}",
                                     time=f"{f.get('duration_ms', 0) / 1000:.3f}")
                counts["tests"] += 1
                detail = json.dumps({"expected": f["expected"], "observed": f["observed"], "remediation": f["remediation"],
                                     **{k: f[k] for k in ("fix", "residual") if k in f}}, default=str)
                if f["status"] == "fail":
                    ET.SubElement(case, "failure", message=f"{f['severity']}: {f['title']}", type=f["severity"]).text = detail
                    counts["failures"] += 1
                elif f["status"] == "error":
                    ET.SubElement(case, "error", message=f["title"]).text = detail
                    counts["errors"] += 1
                elif f["status"] == "skipped":
                    ET.SubElement(case, "skipped", message=str(f["observed"].get("reason", "")))
                    counts["skipped"] += 1
        for key, value in counts.items():
            suite.set(key, str(value))
    return ET.tostring(suites, encoding="unicode", xml_declaration=True)


def verify_sarif(results):
    """SARIF 2.1.0: one rule per check id, one result per failing or erroring finding (and per unreachable host)."""
    rules, seen, out = [], set(), []
    for host in sorted(results):
        res = results[host]
        if _state(res) != "OK":
            out.append({"ruleId": "sandbox.unreachable", "level": "error",
                        "message": {"text": f"{host}: sandbox not verified ({_state(res)})"},
                        "locations": [{"logicalLocations": [{"name": host, "kind": "host"}]}]})
            if "sandbox.unreachable" not in seen:
                seen.add("sandbox.unreachable")
                rules.append({"id": "sandbox.unreachable", "shortDescription": {"text": "Sandbox could not be verified"}})
            continue
        for f in res["findings"]:
            if f["id"] not in seen:
                seen.add(f["id"])
                rules.append({"id": f["id"], "shortDescription": {"text": f["title"]}, "help": {"text": f["remediation"] or f["expected"]},
                              "properties": {"layer": f["layer"], "severity": f["severity"]}})
            if f["status"] in ("fail", "error"):
                out.append({"ruleId": f["id"], "level": SARIF_LEVEL[f["severity"]] if f["status"] == "fail" else "warning",
                            "message": {"text": f"{host}: {f['title']} - {f['status']}: {json.dumps(f['observed'], default=str)[:500]}"},
                            "locations": [{"logicalLocations": [{"name": host, "kind": "host"}]}],
                            "properties": {"status": f["status"], "expected": f["expected"], "remediation": f["remediation"],
                                           **{k: f[k] for k in ("fix", "residual") if k in f}}})
    return {"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0",
            "runs": [{"tool": {"driver": {"name": "agentsec.nemoclaw.sandbox_verify", "version": "0.1.0", "rules": rules}},
                      "results": out}]}


class FilterModule:
    def filters(self):
        return {
            "verify_flatten": verify_flatten,
            "verify_table": verify_table,
            "verify_fleet_summary": verify_fleet_summary,
            "verify_text": verify_text,
            "verify_json": verify_json,
            "verify_junit": verify_junit,
            "verify_sarif": verify_sarif,
        }
