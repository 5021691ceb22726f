"""Benchmark the verifier on the local lab (run from `make venv`'s environment: scripts/lib.sh ensure_venv).

Measures, on a dedicated lab network with N `fixed` sandboxes:
  1. module time of one sandbox_verify call (the module's own duration_ms),
  2. wall time of verify.yml for 1 sandbox and for N sandboxes with forks=N (ratio N/1),
  3. wall time of the same checks run as one task per check (the paper's way) for 1 sandbox (ratio per-check/1).
Each wall time is the median of --repeat runs. Prints a table; numbers go to docs/performance.md.
Only lab-created hosts are contacted.
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
NET, SUBNET, WORLD = "nemoclaw-lab-bench", "172.30.96.0/24", "172.30.96.10"
CHECKS = ["L1.ro_root", "L1.landlock", "L1.writable_paths", "L1.non_root", "L1.no_capabilities", "L2.seccomp_mode", "L2.af_packet",
          "L2.af_netlink", "L2.af_inet", "L2.sock_packet", "L2.high_bit_family", "L2.io_uring", "L2.inherited_sockets",
          "L3.default_route", "L3.direct_egress", "L3.dns_leak", "L4.denied_host", "L4.allowed_host", "L5.ca_file", "L5.ca_cert",
          "L5.mitm_chain", "L6.inference_dns", "L6.inference_models", "L6.no_secrets"]


def playbook(args, extra, label=None):
    cmd = ["ansible-playbook", "-i", str(ROOT / "inventories/lab/hosts.yml"), *args, "-e", f"@{extra}"]
    if label:
        cmd += ["-e", f"verify_lab_filter_label={label}"]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}")
    return elapsed


def median_of(repeat, fn):
    return statistics.median(fn() for _run in range(repeat))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--sandboxes", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="leave the benchmark lab running")
    opts = parser.parse_args()
    n = opts.sandboxes
    with tempfile.TemporaryDirectory() as tmp:
        extra = pathlib.Path(tmp, "vars.json")
        reports = pathlib.Path(tmp, "reports")
        extra.write_text(json.dumps({
            "lab_network": NET, "lab_subnet": SUBNET, "lab_world_address": WORLD, "lab_state_dir": "/var/lib/agentsec-lab-bench",
            "lab_sandboxes": [{"name": f"bench-{i:02d}", "profile": "fixed"} for i in range(1, n + 1)],
            "verify_sandbox_source": "lab", "verify_fail_on": "none", "verify_egress_target": f"{WORLD}:443", "verify_dns_resolver": WORLD,
            "nemoclaw_verify_report_dir": str(reports), "benchmark_checks": CHECKS,
        }))
        playbook([str(ROOT / "playbooks/lab.yml")], extra)
        try:
            one = median_of(opts.repeat, lambda: playbook([str(ROOT / "playbooks/verify.yml")], extra, "agentsec.nemoclaw/lab-sandbox=bench-01"))
            module_ms = json.loads((reports / "verify.json").read_text())["hosts"]
            module_ms = [h["duration_ms"] for h in module_ms.values()][0]
            many = median_of(opts.repeat, lambda: playbook([str(ROOT / "playbooks/verify.yml"), "--forks", str(n)], extra,
                                                           f"agentsec.nemoclaw/lab={NET}"))
            hosts = json.loads((reports / "verify.json").read_text())["hosts"]
            passing = sum(all(layer["result"] == "PASS" for layer in h["layers"].values()) for h in hosts.values())
            per_check = median_of(opts.repeat, lambda: playbook([str(ROOT / "benchmarks/per_check.yml")], extra,
                                                                "agentsec.nemoclaw/lab-sandbox=bench-01"))
        finally:
            if not opts.keep:
                playbook([str(ROOT / "playbooks/lab.yml"), "-e", "lab_state=absent"], extra)
    print(f"cpus: {os.cpu_count()}, checks per sandbox: {len(CHECKS)}, runs per figure: {opts.repeat} (median)")
    print(f"module time, one sandbox (all checks):     {module_ms} ms")
    print(f"verify.yml, 1 sandbox:                      {one:.1f} s")
    print(f"verify.yml, {n} sandboxes, forks={n}:          {many:.1f} s  ({passing}/{n} all layers PASS)")
    print(f"ratio {n} sandboxes / 1 sandbox:             {many / one:.2f}x")
    print(f"one task per check, 1 sandbox:              {per_check:.1f} s")
    print(f"ratio per-check tasks / one module call:    {per_check / one:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
