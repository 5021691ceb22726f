"""Benchmark the per-process cost of the seccomp launcher (run from scripts/lib.sh ensure_venv's environment).

Measures, in one run and interleaved (so load on the machine hits every command alike), the median wall time of
--runs executions of:
  1. `true`; 2. `python3 -I -S -c pass` (the interpreter's own start-up, the launcher's floor);
  3. `true` through the launcher (filter only); 4. `true` through the launcher with the hardening role's Landlock
  lists (filter + Landlock, what every agent process pays); 5./6. `node -e 0` plain and through the launcher,
  when Node.js is installed;
  and for comparison the 0.1 launcher (from git history, started the 0.1 way) with --old-launcher, and the
  launcher byte-compiled by the same interpreter (no source compile per process) with --pyc.
Prints a table of medians, the launcher's added time (wrapped - plain) and ratios; --json for the raw figures.
Numbers go to docs/performance.md ("Launcher overhead"). Nothing leaves the machine.
"""
import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
PY = "/usr/bin/python3"
RO = ["/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc", "/proc", "/dev/urandom", "/sys/fs/cgroup"]
RW = ["/tmp", "/var/tmp", "/dev/null"]


def compile_filter(directory):
    from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _seccomp_policy as P  # noqa: PLC0415
    from ansible_collections.agentsec.nemoclaw.plugins.module_utils import seccomp_launcher as L  # noqa: PLC0415

    path = pathlib.Path(directory) / "agent.bpf"
    path.write_bytes(P.compile_policy(L.native_arch()).raw)
    return str(path), L.__file__


def commands(filter_path, launcher, old_launcher=None, pyc=None):
    landlock = [a for p in RO if os.path.exists(p) for a in ("--landlock-ro", p)]
    landlock += [a for p in RW if os.path.exists(p) for a in ("--landlock-rw", p)]
    new = [PY, "-I", "-S", launcher, "--filter", filter_path]
    cmds = {
        "true": ["/bin/true"],
        "python3 -I -S -c pass": [PY, "-I", "-S", "-c", "pass"],
        "launcher(filter) true": [*new, "--", "/bin/true"],
        "launcher(filter+landlock) true": [*new, *landlock, "--", "/bin/true"],
    }
    node = shutil.which("node")
    if node:
        cmds["node -e 0"] = [node, "-e", "0"]
        cmds["launcher(filter+landlock) node -e 0"] = [*new, *landlock, "--", node, "-e", "0"]
    if pyc:
        cmds["launcher .pyc(filter+landlock) true"] = [PY, "-I", "-S", pyc, "--filter", filter_path, *landlock, "--", "/bin/true"]
    if old_launcher:
        cmds["0.1 launcher(filter+landlock) true"] = [PY, old_launcher, "--filter", filter_path, *landlock, "--", "/bin/true"]
    return cmds


def measure(cmds, runs):
    times = {name: [] for name in cmds}
    for cmd in cmds.values():  # warm-up (page cache, .pyc)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _run in range(runs):
        for name, cmd in cmds.items():
            start = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def report(med):
    base = med["true"]
    rows = [(name, ms, ms / base) for name, ms in med.items()]
    lines = [f"{'command':42} {'median ms':>10} {'x true':>8}"]
    lines += [f"{name:42} {ms:10.2f} {ratio:8.1f}" for name, ms, ratio in rows]
    added = {"launcher added to true (filter)": med["launcher(filter) true"] - base,
             "launcher added to true (filter+landlock)": med["launcher(filter+landlock) true"] - base,
             "launcher minus python3 -I -S -c pass": med["launcher(filter+landlock) true"] - med["python3 -I -S -c pass"]}
    if "node -e 0" in med:
        added["launcher added to node -e 0"] = med["launcher(filter+landlock) node -e 0"] - med["node -e 0"]
        added["ratio wrapped/plain node -e 0"] = med["launcher(filter+landlock) node -e 0"] / med["node -e 0"]
    if "launcher .pyc(filter+landlock) true" in med:
        added["launcher .pyc added to true"] = med["launcher .pyc(filter+landlock) true"] - base
    if "0.1 launcher(filter+landlock) true" in med:
        added["0.1 launcher added to true"] = med["0.1 launcher(filter+landlock) true"] - base
    lines += [f"{name:55} {value:8.2f}" for name, value in added.items()]
    return "\n".join(lines), added


def old_launcher_file(directory):
    proc = subprocess.run(["git", "-C", str(ROOT), "show", "7f6e271:plugins/module_utils/seccomp_launcher.py"],
                          capture_output=True, check=False)
    if proc.returncode:
        sys.exit("the 0.1 launcher (7f6e271) is not in this checkout's history")
    path = pathlib.Path(directory) / "seccomp-launch-0.1"
    path.write_bytes(proc.stdout)
    return str(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=50, help="runs per command (median reported)")
    parser.add_argument("--old-launcher", action="store_true", help="also time the 0.1 launcher from git history")
    parser.add_argument("--pyc", action="store_true",
                        help="also time the launcher byte-compiled by /usr/bin/python3 (what skipping the compile saves)")
    parser.add_argument("--json", action="store_true", help="print the medians as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="agentsec-launcher-bench.") as tmp:
        filter_path, launcher = compile_filter(tmp)
        pyc = None
        if args.pyc:
            pyc = str(pathlib.Path(tmp) / "seccomp-launch.pyc")
            subprocess.run([PY, "-c", "import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)",
                            launcher, pyc], check=True)
        cmds = commands(filter_path, launcher, old_launcher_file(tmp) if args.old_launcher else None, pyc)
        med = measure(cmds, args.runs)
    text, added = report(med)
    if args.json:
        print(json.dumps({"runs": args.runs, "median_ms": med, "derived": added}, indent=2))
    else:
        print(f"runs per command: {args.runs}, {os.cpu_count()} CPUs, kernel {os.uname().release}")
        print(text)


if __name__ == "__main__":
    main()
