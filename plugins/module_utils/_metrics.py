# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)
"""Pure parsing and aggregation for the stack_metrics module (the paper's Table 6 on every host).

Every parser takes the text a command printed and either returns plain data or raises ValueError naming the text it
could not read. Memory is in MiB throughout (``ps`` reports KiB, ``docker stats`` binary units), labelled MB like
the paper.
"""

from __future__ import annotations

import json
import re
import statistics

from ansible_collections.agentsec.nemoclaw.plugins.module_utils._fleet import strip_ansi

# The paper's Table 6 (Mac Studio M4 Max 64 GB, Docker Desktop 4.68.0, OpenShell 0.0.26).
PAPER = {
    "cold_start_ms": 50753,
    "pod_start_s": 14.5,
    "cluster_container_mb": 732,
    "docker_desktop_mb": 1052,
    "docker_desktop_processes": 7,
    "openclaw_gateway_mb": 579,
    "ollama_mb": 73,
    "stack_total_mb": 2436,
}

# key -> column label; the order is the report's column order.
METRICS = {
    "cold_start_ms": "sandbox cold start (ms)",
    "pod_start_s": "k3s pod start (s)",
    "cluster_container_mb": "cluster container (MB)",
    "docker_desktop_mb": "Docker Desktop (MB)",
    "docker_desktop_processes": "Docker Desktop processes",
    "openclaw_gateway_mb": "OpenClaw gateway (MB)",
    "ollama_mb": "Ollama (MB)",
    "stack_total_mb": "full stack (MB)",
}

# The four parts of the paper's "full stack overhead".
STACK_PARTS = ("docker_desktop_mb", "cluster_container_mb", "openclaw_gateway_mb", "ollama_mb")

# Regexes matched (re.search) against the full command line from `ps axww -o pid=,rss=,args=`.
DEFAULT_PROCESS_GROUPS = {
    "docker_desktop": [
        r"com\.docker\.(backend|build|virtualization|krun|vmnetd|socket)\b",
        r"/Docker Desktop\.app/",
    ],
    "openclaw_gateway": [
        r"(^|/)openclaw-gateway\b",
        r"\bopenclaw\S*\s+gateway\b",
    ],
    "ollama": [
        r"(^|/)ollama\s+serve\b",
    ],
}

PS_LINE = re.compile(r"^\s*(\d+)\s+(\d+)\s+(.*)$")
SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kKMGTP]?i?B)\s*$")
UNITS = {"B": 1, "kB": 1000, "KB": 1000, "KiB": 1024, "MB": 1000**2, "MiB": 1024**2, "GB": 1000**3, "GiB": 1024**3,
         "TB": 1000**4, "TiB": 1024**4, "PB": 1000**5, "PiB": 1024**5}
GO_DURATION_PART = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
# klog header (Lmmdd hh:mm:ss.uuuuuu threadid file:line]) followed by the kubelet's structured message.
KUBELET_STARTUP = re.compile(r"[IWE](\d{4} \d{2}:\d{2}:\d{2}\.\d+)\s+\d+\s+\S+\]\s+\"Observed pod startup duration\"(.*)$")


def mib(nbytes):
    return round(nbytes / 1024**2, 1)


# --------------------------------------------------------------------------------------------------------------
# processes

def compile_groups(groups):
    """{name: [regex, ...]} -> {name: [compiled, ...]}; ValueError names the group and the pattern."""
    compiled = {}
    for name, patterns in groups.items():
        if isinstance(patterns, str) or not isinstance(patterns, list) or not patterns:
            raise ValueError(f"process_groups.{name} must be a non-empty list of regular expressions, got {patterns!r}")
        compiled[name] = []
        for pattern in patterns:
            try:
                compiled[name].append(re.compile(str(pattern)))
            except re.error as exc:
                raise ValueError(f"process_groups.{name}: invalid regular expression {pattern!r}: {exc}") from None
    return compiled


def parse_ps(text, exclude_pids=()):
    """`ps axww -o pid=,rss=,args=` (macOS and procps) -> [(pid, rss_kib, args)]."""
    procs = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = PS_LINE.match(line)
        if not m:
            raise ValueError(f"ps output line {number} is not 'pid rss args': {line[:200]!r}")
        pid = int(m.group(1))
        if pid not in exclude_pids:
            procs.append((pid, int(m.group(2)), m.group(3)))
    return procs


def group_processes(procs, compiled):
    """Each process counts in the first group (in option order) one of whose patterns it matches."""
    groups = {name: {"count": 0, "pids": [], "rss_mb": 0.0} for name in compiled}
    rss = dict.fromkeys(compiled, 0)
    for pid, rss_kib, args in procs:
        for name, patterns in compiled.items():
            if any(p.search(args) for p in patterns):
                groups[name]["count"] += 1
                groups[name]["pids"].append(pid)
                rss[name] += rss_kib
                break
    for name, total in rss.items():
        groups[name]["rss_mb"] = mib(total * 1024)
    return groups


# --------------------------------------------------------------------------------------------------------------
# containers

def size_to_mb(text):
    """'732MiB', '1.2GiB', '512kB', '0B' -> MiB (float)."""
    m = SIZE.match(text or "")
    if not m or m.group(2) not in UNITS:
        raise ValueError(f"cannot read the size {text!r}")
    return mib(float(m.group(1)) * UNITS[m.group(2)])


def parse_docker_stats(text):
    """`docker stats --no-stream --format '{{json .}}'` -> {name: {mem_mb, mem_limit_mb, mem_usage, cpu_perc}}.

    Each row is stored under its Name and under the Container field (the name or id the caller asked for).
    A row without figures - "-- / --" (the CLI's stats call failed or timed out) or a 0B limit (the daemon sent no
    memory stats; a running container always has a limit) - is state "error" with mem_mb None, not 0 MiB
    (docker/cli v28.2.2 cli/command/container/formatter_stats.go:192-193, stats_helpers.go:252-253).
    """
    rows = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise ValueError(f"docker stats printed a line that is not JSON: {line[:200]!r}") from None
        usage = str(row.get("MemUsage", ""))
        used, dummy, limit = usage.partition("/")
        if used.strip() == "--" or (limit.strip() and size_to_mb(limit) == 0):
            entry = {"state": "error", "mem_mb": None, "mem_limit_mb": None, "mem_usage": usage, "cpu_perc": row.get("CPUPerc"),
                     "msg": f"docker stats reported no memory figures ({usage!r}); the container's memory was not measured"}
        else:
            entry = {"state": "running", "mem_mb": size_to_mb(used), "mem_limit_mb": size_to_mb(limit) if limit.strip() else None,
                     "mem_usage": usage, "cpu_perc": row.get("CPUPerc")}
        for key in (row.get("Name"), row.get("Container")):
            if key:
                rows[str(key).lstrip("/")] = entry
    return rows


# --------------------------------------------------------------------------------------------------------------
# kubelet pod start latency

def go_duration(text):
    """A Go time.Duration string ('14.5s', '1m2.5s', '850ms', '1h0m0s') -> seconds."""
    s = text.strip()
    sign = -1.0 if s.startswith("-") else 1.0
    s = s.lstrip("+-")
    if s == "0":
        return 0.0
    parts = GO_DURATION_PART.findall(s)
    if not s or "".join(n + u for n, u in parts) != s:
        raise ValueError(f"cannot read the duration {text!r}")
    return sign * sum(float(n) * GO_UNITS[u] for n, u in parts)


def parse_pod_startups(text):
    """kubelet 'Observed pod startup duration' lines -> [{pod, namespace, name, e2e_s, slo_s, time, line}] in log order.

    `time` is the klog header (MMDD hh:mm:ss.micro, no year). e2e_s is podStartE2EDuration (null on kubelets that
    do not log it), slo_s is podStartSLOduration (excludes image pulls).
    """
    out = []
    for line in strip_ansi(text).splitlines():
        m = KUBELET_STARTUP.search(line)
        if not m:
            continue
        fields = m.group(2)
        pod = re.search(r'\bpod="([^"]*)"', fields)
        if not pod:
            raise ValueError(f"kubelet startup line without pod=\"ns/name\": {line[:300]!r}")
        e2e = re.search(r'\bpodStartE2EDuration="([^"]*)"', fields)
        slo = re.search(r"\bpodStartSLOduration=(\S+)", fields)
        try:
            slo_s = float(slo.group(1)) if slo else None
        except ValueError:
            raise ValueError(f"cannot read podStartSLOduration in kubelet line: {line[:300]!r}") from None
        namespace, dummy, name = pod.group(1).rpartition("/")
        out.append({"pod": pod.group(1), "namespace": namespace, "name": name,
                    "e2e_s": round(go_duration(e2e.group(1)), 6) if e2e else None,
                    "slo_s": slo_s, "time": m.group(1), "line": line.strip()})
    return out


def latest_for(observations, sandbox, exclude_lines=()):
    """The newest observation (by klog time, then log order) of the pod named `sandbox` in any namespace."""
    mine = [o for o in observations if o["name"] == sandbox and o["line"] not in exclude_lines]
    return sorted(mine, key=lambda o: o["time"])[-1] if mine else None


def public(observation):
    """An observation without its raw line."""
    return {k: v for k, v in observation.items() if k != "line"} if observation else None


# --------------------------------------------------------------------------------------------------------------
# aggregation

def flat_metrics(processes, containers, cluster, cold_start_ms, pod_start_s):
    """Table-6 shaped figures; a figure is None when it was not measured (process not running, container missing)."""
    def group(name, key):
        g = processes.get(name)
        return g[key] if g and g["count"] else None

    cluster_entry = containers.get(cluster) or {}
    flat = {
        "cold_start_ms": cold_start_ms,
        "pod_start_s": pod_start_s,
        "cluster_container_mb": cluster_entry.get("mem_mb"),
        "docker_desktop_mb": group("docker_desktop", "rss_mb"),
        "docker_desktop_processes": group("docker_desktop", "count"),
        "openclaw_gateway_mb": group("openclaw_gateway", "rss_mb"),
        "ollama_mb": group("ollama", "rss_mb"),
    }
    parts = [k for k in STACK_PARTS if flat[k] is not None]
    flat["stack_total_mb"] = round(sum(flat[k] for k in parts), 1) if parts else None
    flat["stack_components"] = {"included": parts, "missing": [k for k in STACK_PARTS if k not in parts]}
    return flat


def comparable(flat, key):
    """The measured value when it can be set against the paper's: not None, and a stack total only when complete."""
    if key == "stack_total_mb" and (flat.get("stack_components") or {}).get("missing"):
        return None
    return flat.get(key)


def compare(flat):
    """{metric: {measured, paper, ratio}}; ratio = measured / paper, null when not measured (or the total is partial)."""
    out = {}
    for key, paper in PAPER.items():
        value = comparable(flat, key)
        out[key] = {"measured": flat.get(key), "paper": paper, "ratio": round(value / paper, 3) if value is not None else None}
    return out


def fleet_summary(per_host):
    """{host: flat metrics} -> {metric: {hosts, min, median, max, paper, median_ratio}} over the hosts that measured it."""
    out = {}
    for key, paper in PAPER.items():
        values = [comparable(m, key) for m in per_host.values() if comparable(m, key) is not None]
        med = statistics.median(values) if values else None
        out[key] = {"hosts": len(values), "min": min(values) if values else None, "median": med,
                    "max": max(values) if values else None, "paper": paper,
                    "median_ratio": round(med / paper, 3) if med is not None else None}
    return out
