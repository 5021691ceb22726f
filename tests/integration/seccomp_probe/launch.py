"""Helpers shared by the live seccomp/Landlock/launcher tests: run the launcher and the probe in child processes."""
from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess

HERE = pathlib.Path(__file__).resolve().parent
PROBE = str(HERE / "probe.py")
SYSTEM_PYTHON = "/usr/bin/python3"  # a Python under /usr, inside the Landlock read-only list
KILLED = "KILLED(SIGSYS)"
LANDLOCK_RO = [p for p in ("/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc", "/proc", "/dev/urandom") if os.path.exists(p)]


def launcher_path():
    from ansible_collections.agentsec.nemoclaw.plugins.module_utils import seccomp_launcher  # noqa: PLC0415

    return seccomp_launcher.__file__


def launcher_cmd(filter_path=None, extra=(), python=SYSTEM_PYTHON, isolated=True, launcher=None):
    cmd = [python, *(["-I", "-S"] if isolated else []), launcher or launcher_path()]
    if filter_path:
        cmd += ["--filter", str(filter_path)]
    return [*cmd, *extra, "--"]


def landlock_args(ro=(), rw=()):
    out = []
    for path in [*LANDLOCK_RO, str(HERE), *ro]:
        out += ["--landlock-ro", path]
    for path in rw:
        out += ["--landlock-rw", str(path)]
    return out


def probe_cmd(name, *args):
    return [SYSTEM_PYTHON, "-I", "-S", PROBE, name, *map(str, args)]


def run_probe(prefix, name, *args, env=None, timeout=60):
    """Run probe NAME under `prefix` (a launcher command ending in --, or [] for none): its JSON, or KILLED."""
    proc = subprocess.run([*prefix, *probe_cmd(name, *args)], capture_output=True, text=True, timeout=timeout,
                          check=False, env=env)
    if proc.returncode == -signal.SIGSYS:
        return {"result": KILLED}
    assert proc.returncode == 0, (prefix, name, proc.returncode, proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])
