"""Fleet benchmark report: markdown table (hosts, fleet median, paper last), JSON document, failed/unreachable hosts.

benchmark.md is read back by a GitHub-flavoured-markdown table parser (markdown-it-py's table rule, which follows the
GFM spec's tables extension: a row is split at unescaped pipes, `\\|` is a literal pipe in a cell), and the
playbook's own report block is run by ansible-playbook, so ansible-core's templating and to_nice_json write the files."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest
import yaml
from markdown_it import MarkdownIt

from ansible_collections.agentsec.nemoclaw.plugins.filter import benchmark_report as R
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _metrics as M

CLUSTER = "openshell-cluster-nemoclaw"


def result(cold_ms, pod_s, cluster_mb, dd_mb, dd_count, gw_mb, ollama_mb, errors=()):
    """A stack_metrics result built the way the module builds it."""
    def group(count, mb):
        return {"count": count, "pids": list(range(count)), "rss_mb": mb}
    processes = {"docker_desktop": group(dd_count, dd_mb), "openclaw_gateway": group(1 if gw_mb else 0, gw_mb or 0.0),
                 "ollama": group(1, ollama_mb)}
    containers = {CLUSTER: {"state": "running", "mem_mb": cluster_mb}} if cluster_mb else {CLUSTER: {"state": "missing"}}
    flat = M.flat_metrics(processes, containers, CLUSTER, cold_ms, pod_s)
    return {"changed": False, "metrics": dict(flat, processes=processes, containers=containers, pods=[]), "paper": dict(M.PAPER),
            "comparison": M.compare(flat), "errors": list(errors),
            "cold_start": {"sandbox": "agentsec-bench", "skipped": cold_ms is None, "reason": "check mode" if cold_ms is None else ""},
            "pod_start": {"sandbox": "agentsec-bench", "fresh": pod_s is not None}}


RESULTS = {
    "studio-02": result(47000, 12.0, 700.0, 1000.0, 7, 560.0, 70.0),
    "studio-01": result(52000, 15.0, 760.0, 1100.0, 8, 600.0, 75.0),
    "studio-03": result(None, 13.0, 740.0, 1050.0, 7, None, 72.0, errors=["docker stats other: boom | bang"]),
    "studio-04": {"unreachable": True, "msg": "Failed to connect to the host via ssh: Connection timed out"},
    "studio-05": {"failed": True, "msg": "cold_start_sandbox 'agentsec-bench' already exists (phase Ready)"},
}


def rows(text):
    return [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines() if line.startswith("|")]


@pytest.mark.oracle("self")
def test_table_has_hosts_then_fleet_median_then_the_paper():
    table = rows(R.benchmark_table(RESULTS))
    header, body = table[0], table[2:]
    assert header[:2] == ["host", "state"] and header[2:] == list(M.METRICS.values())
    assert [r[0] for r in body] == ["studio-01", "studio-02", "studio-03", "studio-04", "studio-05",
                                    "fleet median (3 of 5 hosts)", "paper (Table 6)"]
    paper = body[-1]
    for key, cell in zip(M.METRICS, paper[2:], strict=True):
        assert float(cell.replace(",", "")) == M.PAPER[key]


@pytest.mark.oracle("self")
def test_cells_show_value_and_ratio():
    table = {r[0]: dict(zip(["host", "state", *M.METRICS], r, strict=True)) for r in rows(R.benchmark_table(RESULTS))[2:]}
    s1 = RESULTS["studio-01"]["metrics"]
    assert table["studio-01"]["cold_start_ms"] == f"{52000:,} ({52000 / M.PAPER['cold_start_ms']:.2f}x)"
    assert table["studio-01"]["pod_start_s"] == f"15.0 ({15.0 / 14.5:.2f}x)"
    assert table["studio-01"]["stack_total_mb"] == f"{s1['stack_total_mb']:,.0f} ({s1['stack_total_mb'] / 2436:.2f}x)"
    assert table["studio-03"]["cold_start_ms"] == "-" and table["studio-03"]["openclaw_gateway_mb"] == "-"
    s3 = RESULTS["studio-03"]["metrics"]["stack_total_mb"]
    assert table["studio-03"]["stack_total_mb"] == f"{s3:,.0f} (partial)"
    complete = sorted(RESULTS[h]["metrics"]["stack_total_mb"] for h in ("studio-01", "studio-02"))
    assert table["fleet median (3 of 5 hosts)"]["stack_total_mb"].startswith(f"{sum(complete) / 2:,.0f} (")
    medians = sorted(RESULTS[h]["metrics"]["pod_start_s"] for h in ("studio-01", "studio-02", "studio-03"))[1]
    assert table["fleet median (3 of 5 hosts)"]["pod_start_s"].startswith(f"{medians:.1f} (")


@pytest.mark.oracle("self")
def test_unreachable_and_failed_hosts_keep_their_row_and_a_note():
    text = R.benchmark_table(RESULTS)
    table = {r[0]: r for r in rows(text)}
    assert table["studio-04"][1] == "UNREACHABLE" and set(table["studio-04"][2:]) == {"-"}
    assert table["studio-05"][1] == "FAILED"
    assert "- studio-04: UNREACHABLE: Failed to connect to the host via ssh" in text
    assert "- studio-05: FAILED: cold_start_sandbox 'agentsec-bench' already exists" in text
    assert "- studio-03: partial full stack, without openclaw_gateway_mb (not measured); no ratio" in text
    assert "- studio-03: docker stats other: boom \\| bang" in text  # a pipe would break the table
    assert "- studio-03: cold start skipped (check mode)" in text


@pytest.mark.oracle("self")
def test_json_document():
    doc = json.loads(json.dumps(R.benchmark_json(RESULTS)))
    assert doc["schema"] == "agentsec.nemoclaw/benchmark-report/v1" and doc["paper"] == M.PAPER
    assert doc["hosts"]["studio-04"] == {"state": "UNREACHABLE", "msg": RESULTS["studio-04"]["msg"]}
    assert doc["hosts"]["studio-05"]["state"] == "FAILED"
    assert doc["hosts"]["studio-01"]["comparison"]["cold_start_ms"]["ratio"] == round(52000 / M.PAPER["cold_start_ms"], 3)
    fleet = doc["fleet"]["cold_start_ms"]
    assert (fleet["hosts"], fleet["min"], fleet["median"], fleet["max"]) == (2, 47000, (47000 + 52000) / 2, 52000)
    assert doc["fleet"]["openclaw_gateway_mb"]["hosts"] == 2 and doc["fleet"]["stack_total_mb"]["hosts"] == 2
    assert doc["hosts"]["studio-03"]["comparison"]["stack_total_mb"]["ratio"] is None


@pytest.mark.oracle("self")
def test_no_result_and_skipped_hosts():
    doc = R.benchmark_json({"a": None, "b": {"skipped": True, "msg": "skipped"}, "c": {"changed": False}})
    assert [doc["hosts"][h]["state"] for h in "abc"] == ["UNREACHABLE", "SKIPPED", "ERROR"]
    assert "fleet median (0 of 3 hosts)" in R.benchmark_table({"a": None, "b": {"skipped": True}, "c": {}})


ROOT = pathlib.Path(__file__).resolve().parents[4]
MD = MarkdownIt("commonmark").enable("table")
PIPES = dict(RESULTS, **{"rack|07": {"failed": True, "msg": "docker | stats failed"}})


def plain(inline):
    """The text a reader sees of one inline token (escapes resolved)."""
    return "".join(c.content for c in inline.children or [] if c.type in ("text", "text_special", "code_inline"))


def gfm(text):
    """-> (tables as lists of rows of cell texts, list item texts), as a GFM renderer sees them."""
    tables, items, row, in_item = [], [], None, False
    for t in MD.parse(text):
        if t.type == "table_open":
            tables.append([])
        elif t.type == "tr_open":
            row = []
            tables[-1].append(row)
        elif t.type == "tr_close":
            row = None
        elif t.type in ("list_item_open", "list_item_close"):
            in_item = t.type == "list_item_open"
        elif t.type == "inline" and row is not None:
            row.append(plain(t))
        elif t.type == "inline" and in_item:
            items.append(plain(t))
    return tables, items


@pytest.mark.oracle("upstream")
def test_the_table_is_one_gfm_table_with_the_cells_we_meant():
    (table,), items = gfm(R.benchmark_table(PIPES))
    header, body = table[0], table[1:]
    assert header == ["host", "state", *M.METRICS.values()]
    assert [r[0] for r in body] == ["rack|07", "studio-01", "studio-02", "studio-03", "studio-04", "studio-05",
                                    "fleet median (3 of 6 hosts)", "paper (Table 6)"]
    rows = {r[0]: dict(zip(header, r, strict=True)) for r in body}
    assert rows["rack|07"]["state"] == "FAILED" and rows["studio-04"]["state"] == "UNREACHABLE"
    assert rows["studio-01"][M.METRICS["cold_start_ms"]] == f"52,000 ({52000 / M.PAPER['cold_start_ms']:.2f}x)"
    assert rows["paper (Table 6)"][M.METRICS["stack_total_mb"]] == "2,436"
    assert "rack|07: FAILED: docker | stats failed" in items
    assert "studio-03: docker stats other: boom | bang" in items


@pytest.mark.oracle("upstream")
def test_the_gfm_referee_can_fail():
    """Without the escaping an inventory name with a pipe splits its row: the parser sees host 'rack', state '07'."""
    (table,), dummy = gfm(R.benchmark_table(PIPES).replace("\\|", "|"))
    assert [r[:2] for r in table if r[0].startswith("rack")] == [["rack", "07"]]


@pytest.mark.oracle("ansible-core", "upstream")
def test_the_benchmark_playbooks_report_files_read_back(tmp_path):
    """playbooks/benchmark.yml's own report block, written by ansible-core, read back as JSON and as GFM."""
    out = tmp_path / "reports"
    play = yaml.safe_load((ROOT / "playbooks" / "benchmark.yml").read_text())[0]
    block = next(t for t in play["tasks"] if t.get("name") == "Write the fleet report on the controller")
    book = [{"name": "Report", "hosts": "all", "gather_facts": False, "vars": {"__benchmark_report_dir": str(out)}, "tasks": [block]}]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(book, sort_keys=False))
    hosts = {h: {"__benchmark_result": r, "ansible_connection": "local", "ansible_python_interpreter": sys.executable}
             for h, r in PIPES.items()}
    (tmp_path / "inventory.json").write_text(json.dumps({"all": {"hosts": hosts}}))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".build" / "collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "local-tmp"), ANSIBLE_LOCALHOST_WARNING="False")
    run = subprocess.run([str(pathlib.Path(sys.executable).with_name("ansible-playbook")), "-i", str(tmp_path / "inventory.json"),
                          str(tmp_path / "play.yml")], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert json.loads((out / "benchmark.json").read_text()) == json.loads(json.dumps(R.benchmark_json(PIPES)))
    md = (out / "benchmark.md").read_text()
    assert md.startswith("# NemoClaw stack benchmark\n")
    assert gfm(md) == gfm(R.benchmark_table(PIPES))  # the same one table and notes, nothing else became a table
