#!/usr/bin/env python3
"""Test bridge (oracle: self) between NemoClaw v0.0.21's CLI contract and the current openshell/docker stand-ins.

NemoClaw v0.0.21 onboarding uses a few OpenShell v0.0.26 and Docker CLI verbs that tests/standins/bin/openshell and
tests/standins/bin/docker do not serve yet (the lead is replacing both with a k3s stand-in that creates real
sandboxes). Installed as `openshell` and `docker` in a directory that comes before the stand-ins on PATH, this script
serves exactly those verbs and hands every other call to the next `openshell`/`docker` on PATH unchanged. Each gap is
served only while the stand-in behind it rejects the verb (`<verb> --help` fails), so the bridge steps aside by
itself once the new stand-ins land - then delete this file.

  openshell sandbox connect <name>           stdin runs as a bash script with HOME=<state>/sandbox-homes/<name> (the
                                             sandbox user's home), after `openshell sandbox get <name>` succeeded
  openshell doctor exec -- kubectl -n openshell get pod <name> -o jsonpath={.status.phase}
                                             "Running" while `openshell sandbox list` shows <name> Ready
  openshell sandbox download ...             exit 1 (onboarding tolerates it: the dashboard token is then not shown)
  docker run --rm --add-host host.openshell.internal:host-gateway --entrypoint curl <image> -sf <url>
                                             the GET from the host, host.openshell.internal -> 127.0.0.1
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "standins"))
import _standin  # noqa: E402  (the served calls go into the same call log the stand-ins write)


def real_tool(name: str) -> str:
    """$OPENSHELL_GAPS_<NAME> when set (a test whose PATH is fixed by a role), else the next `name` on PATH after the
    directory this bridge was called from."""
    override = os.environ.get(f"OPENSHELL_GAPS_{name.upper()}")
    if override:
        return override
    own = Path(sys.argv[0]).absolute().parent
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(entry) / name
        if Path(entry).absolute() != own and candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    sys.exit(f"openshell_gaps: no {name} behind the bridge on PATH")


def supports(real: str, *verb) -> bool:
    """Whether the stand-in behind the bridge knows the verb (asked with a throw-away state dir, so the question
    leaves no trace in the test's call log)."""
    with tempfile.TemporaryDirectory(prefix="openshell-gaps-") as scratch:
        env = {**os.environ, "AGENTSEC_STANDIN_DIR": scratch}
        return subprocess.run([real, *verb, "--help"], capture_output=True, env=env, check=False).returncode == 0


def state_dir() -> Path:
    return Path(os.environ.get("AGENTSEC_STANDIN_DIR") or "/var/lib/agentsec-standins")


def serve(tool: str, args: list) -> None:
    _standin.record(tool, args)


def openshell(real: str, args: list) -> int | None:
    words = [a for a in args if not a.startswith("-")]
    if words[:2] == ["sandbox", "connect"] and not supports(real, "sandbox", "connect"):
        serve("openshell", args)
        name = words[2]
        got = subprocess.run([real, "sandbox", "get", name], capture_output=True, text=True, check=False)
        if got.returncode != 0:
            sys.stderr.write(got.stderr)
            return got.returncode
        home = state_dir() / "sandbox-homes" / name
        home.mkdir(parents=True, exist_ok=True)
        return subprocess.run(["bash", "-s"], env={**os.environ, "HOME": str(home)}, check=False).returncode
    if words[:2] == ["doctor", "exec"] and not supports(real, "doctor"):
        serve("openshell", args)
        cmd = args[args.index("--") + 1:] if "--" in args else []
        if cmd[:5] == ["kubectl", "-n", "openshell", "get", "pod"] and len(cmd) > 5:
            listing = subprocess.run([real, "sandbox", "list"], capture_output=True, text=True, check=False).stdout
            ready = any(re.sub(r"\x1b\[[0-9;]*m", "", line).split()[:1] == [cmd[5]] and "Ready" in line
                        for line in listing.splitlines())
            print("Running" if ready else "Pending", end="")
            return 0
        return 2
    if words[:2] == ["sandbox", "download"] and not supports(real, "sandbox", "download"):
        serve("openshell", args)
        print("openshell_gaps: sandbox download is not served", file=sys.stderr)
        return 1
    return None


def docker(real: str, args: list) -> int | None:
    if args[:1] == ["run"] and not supports(real, "run"):
        serve("docker", args)
        if "--add-host" not in args or "--entrypoint" not in args:
            return 125
        url = args[-1].replace("host.openshell.internal", "127.0.0.1")
        try:
            with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=10) as resp:
                sys.stdout.write(resp.read().decode(errors="replace"))
            return 0
        except OSError:
            return 22
    return None


def main() -> int:
    tool = Path(sys.argv[0]).name
    real = real_tool(tool)
    served = (openshell if tool == "openshell" else docker)(real, sys.argv[1:])
    if served is not None:
        return served
    os.execv(real, [real, *sys.argv[1:]])
    return 127


if __name__ == "__main__":
    sys.exit(main())
