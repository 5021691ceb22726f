# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)
"""Turn stack_metrics results from many hosts into a markdown fleet table and a JSON fleet document."""

from __future__ import annotations

from ansible_collections.agentsec.nemoclaw.plugins.module_utils._metrics import METRICS, PAPER, comparable, fleet_summary


def _state(result):
    if not isinstance(result, dict) or result.get("unreachable"):
        return "UNREACHABLE"
    if result.get("skipped"):
        return "SKIPPED"
    if result.get("failed"):
        return "FAILED"
    if not isinstance(result.get("metrics"), dict):
        return "ERROR"
    return "OK"


def _msg(result):
    return str(result.get("msg", "no result")) if isinstance(result, dict) else "no result"


def _number(key, value):
    if value is None:
        return "-"
    if key == "pod_start_s":
        return f"{value:,.1f}"
    return f"{value:,.0f}"


def _cell(key, value, metrics=None):
    if value is None:
        return "-"
    if metrics is not None and comparable(metrics, key) is None:
        return f"{_number(key, value)} (partial)"
    return f"{_number(key, value)} ({value / PAPER[key]:.2f}x)"


def _md(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def benchmark_table(results):
    """{host: stack_metrics result} -> markdown: one row per host, the fleet median, the paper's Table 6 last.

    Each measured cell shows the value and its ratio to the paper (1.00x = the paper's figure); '-' is not measured,
    and a full stack total that misses a part is marked partial (no ratio, left out of the fleet median).
    Hosts that were unreachable or failed keep their row, and a note below the table says why.
    """
    keys = list(METRICS)
    lines = ["| host | state | " + " | ".join(METRICS[k] for k in keys) + " |", "|---|---|" + "---:|" * len(keys)]
    notes, measured = [], {}
    for host in sorted(results):
        res = results[host]
        state = _state(res)
        if state != "OK":
            lines.append(f"| {_md(host)} | {state} | " + " | ".join("-" for dummy in keys) + " |")
            notes.append(f"- {_md(host)}: {state}: {_md(_msg(res))}")
            continue
        m = res["metrics"]
        measured[host] = m
        lines.append(f"| {_md(host)} | OK | " + " | ".join(_cell(k, m.get(k), m) for k in keys) + " |")
        missing = (m.get("stack_components") or {}).get("missing") or []
        if missing and m.get("stack_total_mb") is not None:
            notes.append(f"- {_md(host)}: partial full stack, without {', '.join(missing)} (not measured); no ratio")
        for error in res.get("errors") or []:
            notes.append(f"- {_md(host)}: {_md(error)}")
        cold = res.get("cold_start") or {}
        if cold.get("skipped") and cold.get("sandbox"):
            notes.append(f"- {_md(host)}: cold start skipped ({_md(cold.get('reason', ''))})")
    fleet = fleet_summary(measured)
    lines.append(f"| fleet median ({len(measured)} of {len(results)} hosts) | | "
                 + " | ".join(_cell(k, fleet[k]["median"]) for k in keys) + " |")
    lines.append("| paper (Table 6) | | " + " | ".join(_number(k, PAPER[k]) for k in keys) + " |")
    text = "\n".join(lines) + "\n"
    if notes:
        text += "\n" + "\n".join(notes) + "\n"
    return text


def benchmark_json(results):
    """A stable fleet document: per host the metrics and comparison (or why there are none), fleet statistics, the paper."""
    hosts, measured = {}, {}
    for host in sorted(results):
        res = results[host]
        state = _state(res)
        if state != "OK":
            hosts[host] = {"state": state, "msg": _msg(res)}
            continue
        measured[host] = res["metrics"]
        hosts[host] = {"state": state, "metrics": res["metrics"], "comparison": res.get("comparison", {}),
                       "cold_start": res.get("cold_start", {}), "pod_start": res.get("pod_start", {}),
                       "errors": res.get("errors", [])}
    return {"schema": "agentsec.nemoclaw/benchmark-report/v1", "metrics": dict(METRICS), "paper": dict(PAPER),
            "fleet": fleet_summary(measured), "hosts": hosts}


class FilterModule:
    def filters(self):
        return {
            "benchmark_table": benchmark_table,
            "benchmark_json": benchmark_json,
        }
