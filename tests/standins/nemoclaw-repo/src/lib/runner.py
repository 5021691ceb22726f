"""Shared plumbing of the stand-in CLI: output, the openshell/docker runners, ports, sleeps, names.

Every behaviour cites NemoClaw at the v0.0.21 tag (commit db3453b5, see tests/standins/README.md "NemoClaw"):
`NemoClaw <path>:<line> @db3453b5`. What the stand-in does differently is marked "stand-in:" and listed in the
README's implementation notes.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

DIST = Path(__file__).resolve().parent.parent  # dist/ (src/ when run from the source tree)
ROOT = DIST.parent  # the checkout (NemoClaw src/lib/runner.ts:9 @db3453b5: ROOT = two levels above the module)
SCRIPTS = ROOT / "scripts"
for _candidate in (ROOT / "bin", ROOT.parent):  # bin/_standin.py (build_artifacts.py) or tests/standins/
    if (_candidate / "_standin.py").is_file():
        sys.path.insert(0, str(_candidate))
        break
import _standin as S  # noqa: E402

ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07]*(?:\x07|\x1b\\)|[@-_])")  # src/lib/onboard.ts:28
RULE = "─" * 50
GATEWAY_NAME = "nemoclaw"  # src/lib/onboard.ts:118 @db3453b5
USE_COLOR = not os.environ.get("NO_COLOR") and sys.stdout.isatty()  # src/lib/onboard.ts:112-114


class Exit(Exception):
    """process.exit(code) of the upstream CLI."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


def say(*lines) -> None:
    if lines:
        print(*lines, sep="\n", flush=True)


def err(*lines) -> None:
    sys.stdout.flush()
    print(*lines, sep="\n", file=sys.stderr, flush=True)


def fail(*lines, code: int = 1):
    err(*lines)
    raise Exit(code)


def note(message: str) -> None:
    """Dimmed informational line (src/lib/onboard.ts:245-249 @db3453b5)."""
    say(f"\x1b[2m{message}\x1b[0m" if USE_COLOR else message)


def step(n: int, total: int, msg: str) -> None:
    """src/lib/onboard.ts:452-456 @db3453b5."""
    say("", f"  [{n}/{total}] {msg}", f"  {RULE}")


def sleep(seconds: float) -> None:
    """Upstream's sleep(seconds) (src/lib/onboard.ts:2207). stand-in: scaled by AGENTSEC_STANDIN_TIME_SCALE
    (default 1 = upstream's timing) so tests need not wait out the real 2-5 s polls."""
    time.sleep(max(0.0, seconds * time_scale()))


def time_scale() -> float:
    """stand-in only: AGENTSEC_STANDIN_TIME_SCALE (1 = upstream's timing; a bad value reads as 1)."""
    try:
        return float(os.environ.get("AGENTSEC_STANDIN_TIME_SCALE", "1"))
    except ValueError:
        return 1.0


def env_int(name: str, fallback: int) -> int:
    """src/lib/onboard.ts:17-22 @db3453b5."""
    raw = os.environ.get(name)
    try:
        return max(0, round(float(raw))) if raw not in (None, "") else fallback
    except ValueError:
        return fallback


def port(env_var: str, fallback: int) -> int:
    """src/lib/ports.ts parsePort @db3453b5: every port can be overridden through the environment."""
    raw = os.environ.get(env_var, "")
    if raw == "":
        return fallback
    text = raw.strip()
    if not text.isdigit() or not 1024 <= int(text) <= 65535:
        fail(f'Invalid port: {env_var}="{raw}" — must be an integer between 1024 and 65535')
    return int(text)


def gateway_port() -> int:
    return port("NEMOCLAW_GATEWAY_PORT", 8080)


def dashboard_port() -> int:
    return port("NEMOCLAW_DASHBOARD_PORT", 18789)


def vllm_port() -> int:
    return port("NEMOCLAW_VLLM_PORT", 8000)


def ollama_port() -> int:
    return port("NEMOCLAW_OLLAMA_PORT", 11434)


def ollama_proxy_port() -> int:
    return port("NEMOCLAW_OLLAMA_PROXY_PORT", 11435)


def nemoclaw_dir() -> Path:
    return S.home() / ".nemoclaw"


def write_private(path: Path, text: str) -> None:
    """0600 file in a 0700 directory (src/lib/config-io.ts writeConfigFile @db3453b5: tmp + rename)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    os.chmod(path, 0o600)


# ---- running tools ----------------------------------------------------------------------------------------

def resolve_openshell() -> str | None:
    """src/lib/resolve-openshell.ts @db3453b5: `command -v openshell`, then ~/.local/bin, /usr/local/bin, /usr/bin."""
    found = shutil.which("openshell")
    if found and found.startswith("/"):
        return found
    for candidate in (f"{S.home()}/.local/bin/openshell", "/usr/local/bin/openshell", "/usr/bin/openshell"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def redact(text: str) -> str:
    """src/lib/runner.ts:263-270 + secret-patterns.ts @db3453b5 (nvapi- keys and bearer tokens, first 4 chars kept)."""
    def keep4(m):
        return m.group(0)[:4] + "*" * min(len(m.group(0)) - 4, 20)
    text = re.sub(r"nvapi-[A-Za-z0-9_-]{10,}", keep4, text or "")
    return re.sub(r"(?<=Bearer )[A-Za-z0-9._~+/=-]{8,}", keep4, text)


def run(argv, *, env=None, check=True, stdin=None, show=True, capture=True) -> subprocess.CompletedProcess:
    """run() of src/lib/runner.ts:69-120 @db3453b5: output (redacted) passes through; a failure exits with the
    command's status unless check=False (upstream's ignoreError). cwd is the checkout, like upstream's."""
    sys.stdout.flush()
    full_env = {**os.environ, **(env or {})}
    try:
        res = subprocess.run([str(a) for a in argv], cwd=ROOT, env=full_env, text=True, check=False, input=stdin,
                             stdin=None if stdin is not None else subprocess.DEVNULL,
                             capture_output=capture)
    except OSError as e:
        res = subprocess.CompletedProcess(argv, 127, "", str(e))
        if check:
            fail(f"  Command failed: {redact(' '.join(map(str, argv)))[:80]}: {e}")
    if capture and show:
        sys.stdout.write(redact(res.stdout or ""))
        sys.stderr.write(redact(res.stderr or ""))
        sys.stdout.flush()
        sys.stderr.flush()
    if check and res.returncode != 0:
        err(f"  Command failed (exit {res.returncode}): {redact(' '.join(map(str, argv)))[:80]}")
        if Path(str(argv[0])).name == "openshell":
            err("  This error originated from the OpenShell runtime layer.", "  Docs: https://github.com/NVIDIA/OpenShell")
        raise Exit(res.returncode or 1)
    return res


def capture(argv, env=None) -> str:
    """runCapture(argv, {ignoreError: true}) of src/lib/runner.ts:178-218: trimmed stdout, '' on any failure."""
    try:
        res = subprocess.run([str(a) for a in argv], cwd=ROOT, env={**os.environ, **(env or {})}, text=True,
                             capture_output=True, check=False, stdin=subprocess.DEVNULL)
    except OSError:
        return ""
    return (res.stdout or "").strip() if res.returncode == 0 else ""


def openshell_bin() -> str:
    found = resolve_openshell()
    if not found:
        fail("openshell CLI not found. Install OpenShell before using sandbox commands.")
    return found


def openshell(*args, **kw) -> subprocess.CompletedProcess:
    return run([openshell_bin(), *args], **kw)


def openshell_capture(*args, env=None) -> str:
    return capture([openshell_bin(), *args], env=env)


def openshell_quiet(*args, env=None) -> int:
    """runOpenshell(args, {ignoreError: true, stdio: [ignore, ignore, ignore]}): only the status."""
    try:
        return subprocess.run([openshell_bin(), *args], cwd=ROOT, env={**os.environ, **(env or {})},
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              check=False).returncode
    except OSError:
        return 127


def http_ok(url: str, timeout: float = 5) -> bytes | None:
    """`curl -sf <url>` (loopback probes of the host's Ollama/vLLM): the body on 2xx, else None."""
    try:
        status, body = S.http("GET", url, timeout=timeout)
    except OSError:
        return None
    return body if 200 <= status < 300 else None


# ---- names (src/lib/runner.ts:318-331 validateName, src/lib/onboard.ts:2895-2908 @db3453b5) ---------------

NAME = re.compile(r"^[a-z]([a-z0-9-]*[a-z0-9])?$")
RESERVED_NAMES = frozenset("onboard list deploy setup setup-spark start stop status debug uninstall credentials help".split())


def validate_name(name: str, label: str = "name") -> str:
    """Raises ValueError with upstream's message; returns the name."""
    if not name:
        raise ValueError(f"{label} is required")
    if len(name) > 63:
        raise ValueError(f"{label} too long (max 63 chars): '{name[:20]}...'")
    if not NAME.match(name):
        raise ValueError(f"Invalid {label}: '{name}'. Must start with a letter and contain only lowercase alphanumerics "
                         "with optional internal hyphens.")
    return name
