"""Benchmark the verifier on a private lab (run in the toolchain environment: `source scripts/lib.sh && ensure_venv`).

Brings up a lab of its own (role lab: gateway --gateway, state in --lab-dir, network --subnet, N sandboxes of the
`fixed` profile), then measures in ONE run, interleaved (each repeat runs every figure once, in a rotating order, so
load on the machine hits all of them alike), the median of --repeat wall times of the whole `ansible-playbook`
command (start-up, inventory, every task, the callback's output) of:
  a. benchmarks/baseline.yml - one task (ansible.builtin.ping) on the same inventory: the controller's floor;
  b. playbooks/verify.yml for one sandbox (verify_sandboxes: [b1]);
  c. playbooks/verify.yml for all N sandboxes (verify_sandboxes: [b1..bN], the same path as b);
  p. with --per-check: benchmarks/per_check.yml, one sandbox_verify task run per check for b1 (the paper's way);
and from the reports of b the module's own duration_ms (all probes inside the sandbox, concurrently), and from the
profile_tasks output the wall time of the sandbox_verify task; per run also the CPU seconds of everything
ansible-playbook started and of the lab's containers (where every exec runs), which the load of other processes does
not inflate the way it inflates wall time. Prints the figures, the ratios b/a and c/b, the load average and every
failing or erroring check per figure. Takes the lab down at the end unless --keep. Only the lab's own containers are
contacted.
"""
import argparse
import datetime
import json
import os
import pathlib
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
INVENTORY = ROOT / "inventories/lab/hosts.yml"
TASK_TIME = re.compile(r"^agentsec\.nemoclaw\.verify : Verify every sandbox .*?-+ (\d+\.\d+)s$", re.M)
TARGETS = {"a": "one-task playbook (ping)", "b": "verify.yml, 1 sandbox", "c": "verify.yml, {n} sandboxes",
           "p": "one task per check, 1 sandbox"}


def lab_vars(opts, reports):
    world = opts.subnet.rsplit(".", 1)[0] + ".10"
    names = [f"b{i}" for i in range(1, opts.sandboxes + 1)]
    images = {kind: f"{opts.images}/{image}:0.0.26" for kind, image in
              (("cluster", "openshell-cluster-standin"), ("sandbox", "openshell-sandbox-base"), ("world", "openshell-world-standin"))}
    return names, {
        "nemoclaw_gateway": opts.gateway, "nemoclaw_lab_dir": opts.lab_dir, "lab_subnet": opts.subnet, "lab_world_address": world,
        "lab_images": images, "lab_sandboxes": [{"name": n, "profile": "fixed"} for n in names],
        # the probe targets of this lab (inventories/lab/group_vars name the default lab's world)
        "verify_allowed_ip": world, "verify_egress_target": f"{world}:443", "verify_dns_resolver": world,
        # every figure must be a clean run; what the probes found is printed from the reports
        "verify_fail_on": "none", "nemoclaw_report_dir": str(reports),
    }


def playbook(path, extra, *more, timeout=900):
    """One ansible-playbook run; returns (wall seconds, stdout). Any failure stops the benchmark."""
    cmd = [shutil.which("ansible-playbook") or "ansible-playbook", "-i", str(INVENTORY), str(path), "-e", f"@{extra}", *more]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed (rc {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    return elapsed, proc.stdout


def lab_cpu(gateway):
    """A function returning the CPU seconds used so far by the lab's containers (cluster, world, pods: every exec into
    them runs in their cgroup), or None when their cgroups cannot be read (cgroup v1 cpuacct or v2 cpu.stat)."""
    ids = set()
    for label in (f"standin.openshell/cluster={gateway}", f"openshell.ai/gateway={gateway}"):
        ids |= set(subprocess.run(["docker", "ps", "-q", "--no-trunc", "--filter", f"label={label}"], capture_output=True, text=True,
                                  check=False).stdout.split())
    files = []
    for cid in sorted(ids):
        pid = subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", cid], capture_output=True, text=True, check=False).stdout.strip()
        try:
            lines = pathlib.Path(f"/proc/{pid}/cgroup").read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            _num, controllers, path = line.split(":", 2)
            if "cpuacct" in controllers.split(","):
                files.append((pathlib.Path(f"/sys/fs/cgroup/cpuacct{path}/cpuacct.usage"), 1e-9))
            elif controllers == "" and pathlib.Path(f"/sys/fs/cgroup{path}/cpu.stat").is_file():
                files.append((pathlib.Path(f"/sys/fs/cgroup{path}/cpu.stat"), 1e-6))
    if not files:
        return None

    def used():
        total = 0.0
        for path, unit in files:
            text = path.read_text()
            value = text.split()[1] if text.startswith("usage_usec") else text.split()[0]
            total += int(value) * unit
        return total
    return used


def idle_cpu(gateway, seconds=5.0):
    """CPU seconds per second the lab's containers use while nothing is asked of them (the cluster's own loops), or
    None when their cgroups cannot be read; measured once, before the runs."""
    used = lab_cpu(gateway)
    if used is None:
        return None
    start = used()
    time.sleep(seconds)
    return (used() - start) / seconds


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def read_report(reports):
    return json.loads((reports / "verify" / "verify.json").read_text())["hosts"]


def checks_catalogue():
    from ansible_collections.agentsec.nemoclaw.plugins.modules import sandbox_verify  # noqa: PLC0415, F401 - registers the extensions
    from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _verify  # noqa: PLC0415

    return sorted(_verify.catalogue())


def measure(opts, names, extra, reports):
    """Interleaved repeats; returns {figure: [seconds]}, the module's duration_ms per run of b, the sandbox_verify task
    wall time per run of b and c, the findings seen, and the 1-minute load average before each run."""
    figures = {
        "a": (ROOT / "benchmarks/baseline.yml", []),
        "b": (ROOT / "playbooks/verify.yml", ["-e", json.dumps({"verify_sandboxes": names[:1]})]),
        "c": (ROOT / "playbooks/verify.yml", ["-e", json.dumps({"verify_sandboxes": names})]),
    }
    if opts.per_check:
        figures["p"] = (ROOT / "benchmarks/per_check.yml", ["-e", json.dumps({"verify_sandboxes": names[:1],
                                                                              "benchmark_checks": checks_catalogue()})])
    order = list(figures)
    times = {k: [] for k in figures}
    cpu = {k: {"controller": [], "lab": []} for k in figures}
    module_ms, probe_ms, task_s, loads, failing = [], {}, {"b": [], "c": []}, [], {}
    lab = lab_cpu(opts.gateway)
    for key in order:  # warm-up (page cache, .pyc, the lab's first exec), not counted
        playbook(figures[key][0], extra, *figures[key][1])
    for run in range(opts.repeat):
        for key in order[run % len(order):] + order[:run % len(order)]:
            loads.append(os.getloadavg()[0])
            before = (children_cpu(), lab() if lab else 0.0)
            elapsed, out = playbook(figures[key][0], extra, *figures[key][1])
            times[key].append(elapsed)
            cpu[key]["controller"].append(children_cpu() - before[0])
            if lab:
                cpu[key]["lab"].append(lab() - before[1])
            if key in task_s:
                task_s[key] += [float(x) for x in TASK_TIME.findall(out)]
                hosts = read_report(reports)
                bad = [n for n, h in hosts.items() if h["state"] != "OK"]
                if bad:
                    sys.exit(f"figure {key}: no result for {bad}: {[hosts[n]['msg'] for n in bad]}")
                for host in hosts.values():
                    for finding in host["findings"]:
                        if finding["status"] in ("fail", "error"):
                            what = f"{key}:{finding['id']}={finding['status']}{' (residual)' if finding.get('residual') else ''}"
                            failing[what] = failing.get(what, 0) + 1
                if key == "b":
                    host = next(iter(hosts.values()))
                    module_ms.append(host["duration_ms"])
                    for finding in host["findings"]:
                        probe_ms.setdefault(finding["id"], []).append(finding.get("duration_ms", 0))
    return times, (module_ms, probe_ms), task_s, failing, loads, cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--sandboxes", type=int, default=10, help="sandboxes of the lab (figure c verifies all)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each figure (median reported)")
    parser.add_argument("--per-check", action="store_true", help="also time one task per check (slow: one exec per check)")
    parser.add_argument("--gateway", default="bench")
    parser.add_argument("--lab-dir", default="/var/lib/agentsec-bench")
    parser.add_argument("--subnet", default="172.30.96.0/24")
    parser.add_argument("--images", default="agentsec", help="image prefix of the lab's stand-in images (role lab's lab_images)")
    parser.add_argument("--no-lab-up", action="store_true", help="the lab is already up with these names (e.g. after --keep)")
    parser.add_argument("--keep", action="store_true", help="leave the lab running")
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON as well")
    opts = parser.parse_args()
    if opts.sandboxes < 2 or opts.repeat < 1:
        parser.error("--sandboxes must be at least 2 and --repeat at least 1")
    with tempfile.TemporaryDirectory(prefix="agentsec-verify-bench.") as tmp:
        reports = pathlib.Path(tmp, "reports")
        extra = pathlib.Path(tmp, "vars.json")
        names, variables = lab_vars(opts, reports)
        extra.write_text(json.dumps(variables))
        up = 0.0
        if not opts.no_lab_up:
            up, _out = playbook(ROOT / "playbooks/lab.yml", extra, timeout=1800)
        try:
            idle = idle_cpu(opts.gateway)
            load_before = os.getloadavg()
            times, (module_ms, probe_ms), task_s, failing, loads, cpu = measure(opts, names, extra, reports)
            load_after = os.getloadavg()
        finally:
            if not opts.keep:
                playbook(ROOT / "playbooks/lab.yml", extra, "-e", "lab_state=absent")
    med = {k: statistics.median(v) for k, v in times.items()}
    n = opts.sandboxes
    print(f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, kernel {os.uname().release}, "
          f"{opts.repeat} interleaved runs per figure (median), lab up in {up:.0f}s")
    print(f"load average (1/5/15 min) before {load_before[0]:.2f}/{load_before[1]:.2f}/{load_before[2]:.2f}, "
          f"after {load_after[0]:.2f}/{load_after[1]:.2f}/{load_after[2]:.2f}; 1-min load at the runs' start: "
          f"min {min(loads):.2f}, median {statistics.median(loads):.2f}, max {max(loads):.2f}")
    for key, values in times.items():
        label = TARGETS[key].format(n=n)
        print(f"{key}. {label:34} {med[key]:6.2f} s   (runs: {', '.join(f'{v:.2f}' for v in values)})")
    print(f"d. module duration_ms, 1 sandbox (probes)  {statistics.median(module_ms):6.0f} ms  (runs: {', '.join(map(str, module_ms))})")
    slowest = sorted(probe_ms.items(), key=lambda item: -statistics.median(item[1]))[:6]
    print("   slowest probes in b (median ms; they run concurrently, 8 at a time): "
          + ", ".join(f"{cid} {statistics.median(ms):.0f}" for cid, ms in slowest))
    for key, values in task_s.items():
        if values:
            print(f"   sandbox_verify task wall time, {key}: median {statistics.median(values):.2f} s "
                  f"(runs: {', '.join(f'{v:.2f}' for v in values)})")
    print("CPU seconds per run (median): controller = ansible-playbook and everything it started (CLI, docker clients); "
          "lab = the lab's containers (the execs run there; Docker's daemons are not counted)")
    for key, use in cpu.items():
        lab_s = f"{statistics.median(use['lab']):.2f}" if use["lab"] else "n/a"
        print(f"   {key}: controller {statistics.median(use['controller']):.2f}, lab {lab_s}")
    print(f"lab idle (nothing running): {'-' if idle is None else f'{idle:.3f}'} CPU-s per second ({n} sandboxes)")
    print(f"ratio b/a (1 sandbox / one-task playbook): {med['b'] / med['a']:.2f}x   (target <= 2x)")
    print(f"ratio c/b ({n} sandboxes / 1 sandbox):     {med['c'] / med['b']:.2f}x   (target <= 1.5x)")
    if "p" in med:
        print(f"ratio p/b (one task per check / one call): {med['p'] / med['b']:.2f}x")
    print(f"failing or erroring checks seen (figure:check=status, count of sandbox-runs out of {opts.repeat} runs of b "
          f"and {opts.repeat * n} sandbox-runs of c):")
    print("   " + ("\n   ".join(f"{c} x{k}" for c, k in sorted(failing.items())) or "none"))
    if opts.json:
        print(json.dumps({"times_s": times, "median_s": med, "module_ms": module_ms, "probe_ms": probe_ms, "task_s": task_s,
                          "failing": failing, "cpu_s": cpu, "idle_cpu_per_s": idle,
                          "load_at_runs": loads, "load_before": load_before, "load_after": load_after}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
