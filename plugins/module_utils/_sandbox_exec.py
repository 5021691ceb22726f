# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)
"""Run collection code inside sandboxes from the sandbox host: discover sandboxes, pipe a payload into each one
through the target's exec command (`openshell sandbox exec -n NAME -- ...`), collect one JSON result per sandbox.

The payload never touches the sandbox's disk: the sources and the parameters travel on stdin to
`python3 -I -S -c BOOT`, an isolated interpreter (no site, no user site, no PYTHON* variables, no current directory on
sys.path), so nothing the agent can write (its home, workspace, environment, .pth files) runs before or inside it.
Standard library only: this runs on a Mac's /usr/bin/python3 as well.
"""
from __future__ import annotations

import concurrent.futures
import inspect
import json
import subprocess

from ansible_collections.agentsec.nemoclaw.plugins.module_utils._fleet import strip_ansi

# One line (the gateway refuses newlines in exec arguments, grpc/sandbox.rs @v0.0.26 L770-772).
# The first statement makes the verifier undumpable (PR_SET_DUMPABLE 0) before it reads anything, so another process of
# the agent's uid cannot open its /proc/<pid>/mem or ptrace it from then on (docs/adversarial.md, class 2b).
BOOT = ("import ctypes;getattr(ctypes.CDLL(None),'prctl',lambda *a:0)(4,0,0,0,0);"
        "import json,sys,types;d=json.loads(sys.stdin.buffer.read());"
        "[sys.modules.setdefault(p,types.ModuleType(p)).__dict__.setdefault('__path__',[]) for p in d['packages']];"
        "[(sys.modules.__setitem__(n,types.ModuleType(n)),exec(compile(s,n,'exec'),sys.modules[n].__dict__)) for n,s in d['modules']];"
        "r=getattr(sys.modules[d['main']],d['entry'])(d['params']);"
        "sys.stdout.write('\\n@@agentsec-result@@'+json.dumps(r))")
MARKER = "@@agentsec-result@@"


class ExecError(Exception):
    pass


def payload(modules, main, entry, params):
    """modules: imported module objects in dependency order; their source is read from the collection."""
    names = [m.__name__ for m in modules]
    packages = sorted({".".join(n.split(".")[:i]) for n in names for i in range(1, n.count(".") + 1)})
    return json.dumps({"packages": packages, "modules": [[m.__name__, inspect.getsource(m)] for m in modules],
                       "main": main.__name__, "entry": entry, "params": params}).encode()


def expand(argv, sandbox):
    return [part.replace("{sandbox}", sandbox) for part in argv]


def host_command(argv, env, timeout, what):
    """stdout of one of the target's host commands (discovery, pod list, policy); ExecError naming `what`, the argv
    and the tail of its stderr when it cannot run, times out or exits non-zero."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ExecError(f"{what} {argv[0]!r} failed: {exc}") from exc
    if proc.returncode != 0:
        raise ExecError(f"{what} `{' '.join(argv)}` exited {proc.returncode}: "
                        f"{strip_ansi(proc.stderr).strip()[-500:]}")
    return proc.stdout


def discover(argv, env, timeout):
    """Sandbox names, one per line of the discovery command's output (`openshell sandbox list --names`)."""
    out = host_command(argv, env, timeout, "sandbox discovery")
    return [n for n in (strip_ansi(line).strip() for line in out.splitlines()) if n]


def run_one(prefix, sandbox, python, data, env, timeout):
    argv = [*expand(prefix, sandbox), python, "-I", "-S", "-c", BOOT]
    try:
        proc = subprocess.run(argv, input=data, capture_output=True, env=env, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"no result within {timeout:.0f}s", "unreachable": True}
    except OSError as exc:
        return {"error": f"cannot run {argv[0]!r}: {exc.strerror}", "unreachable": True}
    out = proc.stdout.decode(errors="replace")
    err = strip_ansi(proc.stderr.decode(errors="replace")).strip()
    if MARKER not in out:
        return {"error": f"no result from sandbox {sandbox!r} (exit {proc.returncode}): {err[-800:] or out[-800:]}",
                "unreachable": proc.returncode != 0 and not out.strip(), "rc": proc.returncode}
    try:
        result = json.loads(out.rsplit(MARKER, 1)[1])
    except ValueError as exc:
        return {"error": f"unreadable result from sandbox {sandbox!r}: {exc}", "rc": proc.returncode}
    if err:
        result["stderr"] = err[-2000:]
    return result


def run_all(prefix, sandboxes, python, data, env, timeout, workers=8):
    """{sandbox: result}; sandboxes run concurrently (a fleet host may hold several). `data` is one payload for all,
    or {sandbox: payload} when each sandbox is probed with its own parameters (its policy)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(workers, len(sandboxes)))) as pool:
        futures = {name: pool.submit(run_one, prefix, name, python, data[name] if isinstance(data, dict) else data, env, timeout)
                   for name in sandboxes}
        return {name: future.result() for name, future in futures.items()}
