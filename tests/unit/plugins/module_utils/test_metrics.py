"""Parsers and aggregation behind stack_metrics: ps, docker stats, kubelet lines, openshell sandbox list, Table 6 maths."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _fleet as F
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _metrics as M


@pytest.mark.oracle("self")
def test_default_groups_sort_a_mac_process_table(macos_ps):
    groups = M.group_processes(M.parse_ps(macos_ps.text), M.compile_groups(M.DEFAULT_PROCESS_GROUPS))
    for name, exp in macos_ps.groups.items():
        assert groups[name]["count"] == exp["count"], name
        assert groups[name]["pids"] == exp["pids"], name
        assert groups[name]["rss_mb"] == round(exp["kib"] / 1024, 1), name


@pytest.mark.oracle("self")
def test_first_matching_group_wins_and_exclusions():
    procs = [(10, 2048, "ollama serve"), (11, 1024, "ollama runner --model x"), (12, 512, "ollama serve --verbose")]
    compiled = M.compile_groups({"serve": [r"ollama serve"], "all_ollama": [r"ollama"]})
    groups = M.group_processes(procs, compiled)
    assert groups["serve"]["pids"] == [10, 12] and groups["all_ollama"]["pids"] == [11]
    assert groups["serve"]["rss_mb"] == round((2048 + 512) / 1024, 1)
    assert M.parse_ps(" 10 2048 ollama serve\n 11 5 x\n", exclude_pids={10}) == [(11, 5, "x")]


# the process table procps reads from this kernel's /proc, and this process's own pid
@pytest.mark.oracle("kernel")
def test_ps_parser_reads_this_machines_procps_output():
    ps = shutil.which("ps")
    if not ps:
        pytest.skip("no ps on this machine")
    out = subprocess.run([ps, "axww", "-o", "pid=,rss=,args="], capture_output=True, text=True, check=True).stdout
    procs = {pid: (rss, args) for pid, rss, args in M.parse_ps(out)}
    assert os.getpid() in procs
    assert procs[os.getpid()][0] > 0 and "py" in procs[os.getpid()][1]


@pytest.mark.oracle("self")
def test_ps_parse_error_names_the_line():
    with pytest.raises(ValueError, match=r"line 2 .*'PID RSS COMMAND'"):
        M.parse_ps(" 1 100 /sbin/init\nPID RSS COMMAND\n")


@pytest.mark.oracle("self")
@pytest.mark.parametrize(("groups", "message"), [
    ({"ollama": ["(unclosed"]}, r"process_groups\.ollama: invalid regular expression '\(unclosed'"),
    ({"docker_desktop": "com.docker"}, r"process_groups\.docker_desktop must be a non-empty list"),
    ({"empty": []}, r"process_groups\.empty must be a non-empty list"),
])
def test_bad_process_groups(groups, message):
    with pytest.raises(ValueError, match=message):
        M.compile_groups(groups)


# What docker/cli v28.2.2 prints: MemUsage through go-units v0.5.0 BytesSize ("%.4g" + B/KiB/MiB/GiB..., size.go:37,72-73),
# NetIO/BlockIO through HumanSizeWithPrecision(x, 3) (B/kB/MB/GB..., size.go:36,59-61); formatter_stats.go:198,212,219.
DOCKER_PRINTS = pytest.mark.oracle("upstream")


@pytest.mark.parametrize(("text", "nbytes"), [
    pytest.param("732MiB", 732 * 1024**2, marks=DOCKER_PRINTS),
    pytest.param("1.2GiB", 1.2 * 1024**3, marks=DOCKER_PRINTS),
    pytest.param("512kB", 512 * 1000, marks=DOCKER_PRINTS),
    pytest.param("15.6GiB", 15.6 * 1024**3, marks=DOCKER_PRINTS),
    pytest.param("1.055MiB", 1.055 * 1024**2, marks=DOCKER_PRINTS),
    pytest.param("0B", 0, marks=DOCKER_PRINTS),
    pytest.param("51200KiB", 51200 * 1024, marks=pytest.mark.oracle("self")),  # BytesSize would print 50MiB: our own leniency
    pytest.param(" 2.5GB ", 2.5 * 1000**3, marks=pytest.mark.oracle("self")),  # padding is ours; the CLI prints none
])
def test_sizes_are_mib(text, nbytes):
    assert M.size_to_mb(text) == round(nbytes / 1024**2, 1)


@pytest.mark.oracle("self")
@pytest.mark.parametrize("text", ["", "lots", "12 parsecs", "5XiB", "--"])
def test_bad_sizes(text):
    with pytest.raises(ValueError, match="cannot read the size"):
        M.size_to_mb(text)


# the row reproduces docker/cli v28.2.2 `--format '{{json .}}'` (cli/command/container/formatter_stats.go:162-226: the
# keys BlockIO CPUPerc Container ID MemPerc MemUsage Name NetIO PIDs; MemUsage is BytesSize(used) + " / " + BytesSize(limit),
# :198); the error text is the daemon's 404 as that CLI prints it (seen on this machine's engine, see test_stack_metrics_docker)
@pytest.mark.oracle("upstream")
def test_docker_stats_rows_by_name_and_requested_name():
    line = {"BlockIO": "0B / 0B", "CPUPerc": "3.12%", "Container": "openshell-cluster-nemoclaw", "ID": "112baa0544d8",
            "MemPerc": "4.58%", "MemUsage": "732MiB / 15.6GiB", "Name": "openshell-cluster-nemoclaw", "NetIO": "646B / 0B", "PIDs": "97"}
    by_id = dict(line, Container="112baa0544d8", Name="other", MemUsage="1.2GiB / 62.7GiB")
    rows = M.parse_docker_stats(json.dumps(line) + "\n\n" + json.dumps(by_id) + "\n")
    assert rows["openshell-cluster-nemoclaw"]["mem_mb"] == 732.0
    assert rows["openshell-cluster-nemoclaw"]["mem_limit_mb"] == round(15.6 * 1024, 1)
    assert rows["openshell-cluster-nemoclaw"]["cpu_perc"] == "3.12%"
    assert rows["112baa0544d8"] is rows["other"] and rows["other"]["mem_mb"] == round(1.2 * 1024, 1)
    with pytest.raises(ValueError, match="not JSON"):
        M.parse_docker_stats("Error: no such container\n")
    with pytest.raises(ValueError, match="cannot read the size 'lots '"):
        M.parse_docker_stats(json.dumps(dict(line, MemUsage="lots / 15GiB")))


# docker/cli v28.2.2 prints no figure it has not got: "-- / --" when the stats call failed or timed out
# (formatter_stats.go:192-193, stats_helpers.go:137-140), and "0B / 0B" when the daemon answered without memory stats -
# "MemoryStats.Limit will never be 0 unless the container is not running and we haven't got any data from cgroup"
# (stats_helpers.go:252-253; this machine's engine answers so, see tests/integration/test_stack_metrics_docker.py).
# Neither is a measured 0 MiB.
@pytest.mark.oracle("upstream")
@pytest.mark.parametrize("usage", ["-- / --", "0B / 0B"])
def test_docker_stats_without_figures_is_not_a_measurement(usage):
    row = {"Name": "openshell-cluster-nemoclaw", "Container": "openshell-cluster-nemoclaw", "MemUsage": usage, "CPUPerc": "--"}
    entry = M.parse_docker_stats(json.dumps(row))["openshell-cluster-nemoclaw"]
    assert entry["state"] == "error" and entry["mem_mb"] is None and entry["mem_limit_mb"] is None
    assert f"docker stats reported no memory figures ({usage!r})" in entry["msg"]
    flat = M.flat_metrics({}, {"openshell-cluster-nemoclaw": entry}, "openshell-cluster-nemoclaw", None, None)
    assert flat["cluster_container_mb"] is None and "cluster_container_mb" in flat["stack_components"]["missing"]


# Go's time.Duration.String forms (golang/go src/time/time.go `func (d Duration) String`: 14.5s, 1m2.5s, 850ms, 1h0m0s,
# 1.5µs with U+00B5, -2s, 0s), which klog prints for podStartE2EDuration (see K3S_LOG below)
@pytest.mark.oracle("upstream")
@pytest.mark.parametrize(("text", "seconds"), [
    ("14.5s", 14.5), ("1m2.5s", 62.5), ("850ms", 0.85), ("14.512345678s", 14.512345678), ("1h0m0s", 3600.0),
    ("1m8.818440372s", 68.818440372), ("0s", 0.0), ("1.5µs", 1.5e-6), ("-2s", -2.0),
])
def test_go_durations(text, seconds):
    assert M.go_duration(text) == pytest.approx(seconds)


# none of these is a form Duration.String prints (a number always carries a unit, units are ns/µs/ms/s/m/h, no spaces);
# that Go's time.ParseDuration refuses them too is unverified here (its source was not read)
@pytest.mark.oracle("upstream")
@pytest.mark.parametrize("text", ["", "14.5", "abc", "1x", "1m 2s", "s"])
def test_bad_go_durations(text):
    with pytest.raises(ValueError, match="cannot read the duration"):
        M.go_duration(text)


def kubelet(time, pod, e2e=None, slo=None):
    """The kubelet's startup line: klog.InfoS("Observed pod startup duration", "pod", klog.KObj(pod), "podStartSLOduration",
    float, "podStartE2EDuration", time.Duration, "podCreationTimestamp", ..., "firstStartedPulling", ...) at
    kubernetes pkg/kubelet/util/pod_startup_latency_tracker.go:104 (the version the code index holds, commit 0028b26b;
    that it is the same line in v1.35.3, the kubelet of OpenShell v0.0.26's k3s v1.35.3-k3s1 per
    deploy/docker/Dockerfile.images:18, is unverified), in klog v2.130.1's text format: header "Lmmdd hh:mm:ss.uuuuuu
    threadid file:line] " with the thread id padded to 7 (internal/buffer/buffer.go:132-147), then key=value with
    Stringers (KObj, Duration, Time) quoted and floats bare (internal/serialize/keyvalues_slog.go:33-70)."""
    fields = f'pod="{pod}" podStartSLOduration={slo if slo is not None else e2e.rstrip("s")}'
    if e2e is not None:
        fields += f' podStartE2EDuration="{e2e}"'
    return (f'I{time}      71 pod_startup_latency_tracker.go:104] "Observed pod startup duration" {fields} '
            'podCreationTimestamp="2026-04-16 10:11:58 +0000 UTC" firstStartedPulling="0001-01-01 00:00:00 +0000 UTC"')


K3S_LOG = "\n".join([
    'time="2026-04-16T10:11:01Z" level=info msg="Starting k3s v1.33.4+k3s1 (d9d4a3a2)"',
    kubelet("0416 10:11:40.100000", "kube-system/coredns-64fd4b4794-q2x7z", "2.038986014s"),
    'I0416 10:11:41.000001      71 kubelet.go:2465] "SyncLoop (PLEG): event for pod" pod="openshell/my-assistant"',
    kubelet("0416 10:12:13.123456", "openshell/my-assistant", "14.5s"),
    # an older kubelet format without the E2E figure, and the pre-1.27 overflowed SLO value (this line's shape is
    # unverified: no kubelet version that printed it was read)
    'I0416 10:13:00.000000      71 pod_startup_latency_tracker.go:102] "Observed pod startup duration" '
    'pod="kube-system/metrics-server-1" podStartSLOduration=-9.223372029479458e+09 pod.CreationTimestamp="2026-04-16 10:12:55 +0000 UTC"',
    kubelet("0416 11:40:02.000000", "openshell/my-assistant", "1m2.5s", slo=60.25),
])


@pytest.mark.oracle("upstream")
def test_kubelet_lines_in_k3s_log():
    obs = M.parse_pod_startups(K3S_LOG)
    assert [o["pod"] for o in obs] == [
        "kube-system/coredns-64fd4b4794-q2x7z", "openshell/my-assistant", "kube-system/metrics-server-1", "openshell/my-assistant"]
    assert obs[0]["e2e_s"] == pytest.approx(2.038986014) and obs[0]["namespace"] == "kube-system"
    assert obs[2]["e2e_s"] is None and obs[2]["slo_s"] < 0
    latest = M.latest_for(obs, "my-assistant")
    assert latest["e2e_s"] == pytest.approx(62.5) and latest["slo_s"] == 60.25 and latest["time"] == "0416 11:40:02.000000"
    assert M.latest_for(obs, "my-assistant", exclude_lines={latest["line"]})["e2e_s"] == pytest.approx(14.5)
    assert M.latest_for(obs, "nobody") is None
    assert "line" not in M.public(latest) and M.public(None) is None


@pytest.mark.oracle("self")
def test_latest_is_by_klog_time_not_stream_order():
    newer, older = kubelet("0416 12:00:00.000000", "openshell/sb", "3s"), kubelet("0416 09:00:00.000000", "openshell/sb", "9s")
    assert M.latest_for(M.parse_pod_startups(newer + "\n" + older), "sb")["e2e_s"] == 3.0


@pytest.mark.oracle("self")
def test_kubelet_parse_errors():
    with pytest.raises(ValueError, match="cannot read the duration 'soon'"):
        M.parse_pod_startups(kubelet("0416 10:12:13.123456", "openshell/x", "soon", slo=1))
    with pytest.raises(ValueError, match="without pod="):
        M.parse_pod_startups('I0416 10:12:13.123456 71 x.go:1] "Observed pod startup duration" podStartSLOduration=1')


def render_sandbox_list(rows):
    """`openshell sandbox list` as crates/openshell-cli/src/run.rs@v0.0.26 prints it: "No sandboxes found." (:2887), widths
    max(4, names) / max(9, namespaces) / 19 (:2907-2919), header cells padded inside their bold codes (:2922-2928), phase
    green/red/yellow/dimmed by phase (:2933-2939). owo-colors (Cargo.lock: 4.3.0; read at 4.2.0, jam1garner/owo-colors
    6d12fd4) wraps bold/dimmed in ESC[1m|2m ... ESC[0m (src/styles.rs:15,381) and colours in ESC[3Xm ... ESC[39m
    (src/colors.rs:137); the padding lands inside the codes because they forward the formatter to the inner value."""
    if not rows:
        return "No sandboxes found.\n"
    nw = max(4, *(len(r[0]) for r in rows))
    ns = max(9, *(len(r[1]) for r in rows))
    colour = {"Ready": ("32", "39"), "Error": ("31", "39"), "Provisioning": ("33", "39"), "Deleting": ("2", "0")}
    header = ["NAME".ljust(nw), "NAMESPACE".ljust(ns), "CREATED".ljust(19), "PHASE"]
    lines = ["  ".join(f"\x1b[1m{h}\x1b[0m" for h in header)]
    for name, namespace, created, phase in rows:
        on, off = colour.get(phase, (None, None))
        shown = f"\x1b[{on}m{phase}\x1b[{off}m" if on else phase
        lines.append(f"{name:<{nw}}  {namespace:<{ns}}  {created:<19}  {shown}")
    return "\n".join(lines) + "\n"


@pytest.mark.oracle("upstream")
def test_sandbox_list_table():
    rows = [("my-assistant", "openshell", "2026-04-16 10:11:58", "Ready"),
            ("agentsec-bench", "openshell", "2026-04-16 12:00:00", "Provisioning"),
            ("old", "openshell", "2026-04-16 09:00:00", "Deleting"),
            ("x", "openshell", "2026-04-16 12:00:01", "Unknown")]
    assert F.parse_sandbox_list(render_sandbox_list(rows)) == {r[0]: r[3] for r in rows}
    assert F.parse_sandbox_list(render_sandbox_list([])) == {}
    with pytest.raises(ValueError, match="unexpected 'openshell sandbox list' row"):
        F.parse_sandbox_list("NAME  NAMESPACE  CREATED  PHASE\nbroken row\n")


@pytest.mark.oracle("self")
def test_flat_metrics_total_and_comparison(macos_ps):
    processes = M.group_processes(M.parse_ps(macos_ps.text), M.compile_groups(M.DEFAULT_PROCESS_GROUPS))
    containers = {"openshell-cluster-nemoclaw": {"state": "running", "mem_mb": 700.5}}
    flat = M.flat_metrics(processes, containers, "openshell-cluster-nemoclaw", 48210, 12.25)
    parts = [processes["docker_desktop"]["rss_mb"], 700.5, processes["openclaw_gateway"]["rss_mb"], processes["ollama"]["rss_mb"]]
    assert flat["stack_total_mb"] == round(sum(parts), 1)
    assert flat["docker_desktop_processes"] == macos_ps.groups["docker_desktop"]["count"]
    assert flat["stack_components"]["missing"] == []
    cmp = M.compare(flat)
    assert set(cmp) == set(M.PAPER)
    assert cmp["cold_start_ms"] == {"measured": 48210, "paper": M.PAPER["cold_start_ms"], "ratio": round(48210 / M.PAPER["cold_start_ms"], 3)}
    assert cmp["pod_start_s"]["ratio"] == round(12.25 / 14.5, 3)


@pytest.mark.oracle("self")
def test_unmeasured_parts_are_null_and_left_out_of_the_total():
    processes = {"docker_desktop": {"count": 0, "pids": [], "rss_mb": 0.0}, "ollama": {"count": 1, "pids": [5], "rss_mb": 70.0}}
    flat = M.flat_metrics(processes, {"openshell-cluster-nemoclaw": {"state": "missing"}}, "openshell-cluster-nemoclaw", None, None)
    assert flat["docker_desktop_mb"] is None and flat["cluster_container_mb"] is None and flat["openclaw_gateway_mb"] is None
    assert flat["stack_total_mb"] == 70.0
    assert flat["stack_components"] == {"included": ["ollama_mb"],
                                        "missing": ["docker_desktop_mb", "cluster_container_mb", "openclaw_gateway_mb"]}
    assert M.compare(flat)["docker_desktop_mb"] == {"measured": None, "paper": 1052, "ratio": None}
    assert M.compare(flat)["stack_total_mb"] == {"measured": 70.0, "paper": 2436, "ratio": None}  # partial: no ratio
    assert M.flat_metrics({}, {}, "c", None, None)["stack_total_mb"] is None


@pytest.mark.oracle("self")
def test_fleet_summary_median_over_measuring_hosts():
    hosts = {"a": {"pod_start_s": 10.0}, "b": {"pod_start_s": 20.0}, "c": {"pod_start_s": 12.0}, "d": {"pod_start_s": None}}
    s = M.fleet_summary(hosts)["pod_start_s"]
    assert (s["hosts"], s["min"], s["median"], s["max"]) == (3, 10.0, 12.0, 20.0)
    assert s["median_ratio"] == round(12.0 / M.PAPER["pod_start_s"], 3)
    assert M.fleet_summary(hosts)["ollama_mb"]["median"] is None
