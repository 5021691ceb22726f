"""Shared helpers for the stand-ins (contract: README.md next to this file).

State directory, locked JSON state, call log, secret fingerprints, and the few path/user/process/HTTP helpers
that several tools need. Standard library only (Python 3.11); imported by every bin/<tool> through the tool's
own realpath, or carried inside a self-contained copy made by bundle().
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import pwd
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent  # the stand-in tree: bin/ sits next to this file
BIN = HERE / "bin"
DEFAULT_DIR = "/var/lib/agentsec-standins"
LOGGED_ENV = (
    "DOCKER_HOST", "OPENSHELL_CLUSTER_IMAGE", "IMAGE_TAG", "OLLAMA_HOST", "NEMOCLAW_NON_INTERACTIVE",
    "NEMOCLAW_SANDBOX_NAME", "NEMOCLAW_PROVIDER", "NEMOCLAW_MODEL", "NEMOCLAW_POLICY_MODE", "NEMOCLAW_POLICY_PRESETS",
    "NEMOCLAW_RECREATE_SANDBOX", "NEMOCLAW_EXPERIMENTAL", "NEMOCLAW_ACCEPT_THIRD_PARTY_SOFTWARE", "CHAT_UI_URL",
    "HOME", "USER",
)
SECRET_SUFFIXES = ("_KEY", "_TOKEN", "_SECRET", "_PASSWORD")
BAKED: dict = {}  # constants a bundled copy carries (bundle()), e.g. the openshell version of a release tarball


# ---- state directory, locked state, call log ---------------------------------------------------------------

def state_dir() -> Path:
    d = Path(os.environ.get("AGENTSEC_STANDIN_DIR") or DEFAULT_DIR)
    if not d.is_dir():
        d.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            d.chmod(0o777)
    return d


def _open_shared(path: Path, flags: int) -> int:
    """Open (creating mode 0666) a file that root and the Mac user must both be able to use."""
    fd = os.open(path, flags | os.O_CREAT, 0o666)
    with contextlib.suppress(OSError):
        os.fchmod(fd, 0o666)
    return fd


@contextlib.contextmanager
def state(tool: str):
    """Yield <dir>/<tool>.json as a dict under an exclusive lock; written back atomically on normal exit only."""
    d = state_dir()
    fd = _open_shared(d / f"{tool}.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        path = d / f"{tool}.json"
        data = json.loads(path.read_text()) if path.exists() else {}
        yield data
        tmp = d / f".{tool}.json.{os.getpid()}"
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        tmp.chmod(0o666)
        os.replace(tmp, path)
    finally:
        os.close(fd)


def peek(tool: str) -> dict:
    """Read-only snapshot of a tool's state (shared lock, nothing written)."""
    d = state_dir()
    fd = _open_shared(d / f"{tool}.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        path = d / f"{tool}.json"
        return json.loads(path.read_text()) if path.exists() else {}
    finally:
        os.close(fd)


def record(tool: str, argv) -> None:
    """Append one JSON line per call to <dir>/calls.jsonl (non-secret env values, secret env names only)."""
    env = {k: os.environ[k] for k in LOGGED_ENV if k in os.environ}
    secret = sorted(k for k in os.environ if k not in LOGGED_ENV and k.endswith(SECRET_SUFFIXES))
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = None
    entry = {"t": time.time(), "tool": tool, "argv": list(argv), "uid": os.getuid(), "cwd": cwd, "env": env,
             "secret_env": secret}
    fd = _open_shared(state_dir() / "calls.jsonl", os.O_WRONLY | os.O_APPEND)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, (json.dumps(entry) + "\n").encode())
    finally:
        os.close(fd)


def fingerprint(value: str) -> str:
    """The only form in which a stand-in keeps a credential."""
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:16]


# ---- command line ----------------------------------------------------------------------------------------

def parser(prog: str, **kw) -> argparse.ArgumentParser:
    """argparse behaves like clap for the contract: unknown sub-command/option -> usage on stderr, exit 2."""
    return argparse.ArgumentParser(prog=prog, allow_abbrev=False, **kw)


def die(msg: str, code: int = 1):
    print(msg, file=sys.stderr)
    raise SystemExit(code)


def usage(prog: str, text: str, problem: str):
    die(f"usage: {prog} {text}\n{prog}: error: {problem}", 2)


# ---- paths and users -------------------------------------------------------------------------------------

def rooted(path: str) -> Path:
    """A macOS path (/opt/homebrew, /Applications, /Library, /var/run/docker.sock, ...) under
    $AGENTSEC_STANDIN_ROOT (empty = the real root); only the unit tests set it."""
    return Path(os.environ.get("AGENTSEC_STANDIN_ROOT", "").rstrip("/") + path)


def current_user() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def console_user() -> str:
    return os.environ.get("AGENTSEC_CONSOLE_USER") or "studio"


def user_home(name: str) -> Path:
    if name == current_user() and os.environ.get("HOME"):
        return Path(os.environ["HOME"])
    try:
        return Path(pwd.getpwnam(name).pw_dir)
    except KeyError:
        return Path("/Users") / name


def home() -> Path:
    return Path(os.environ.get("HOME") or user_home(current_user()))


def as_user(user: str) -> dict:
    """subprocess keyword arguments that run a child as `user` (caller must be root)."""
    pw = pwd.getpwnam(user)
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": os.getgrouplist(user, pw.pw_gid)}


def chown(path: Path, user: str, recursive: bool = False) -> None:
    pw = pwd.getpwnam(user)
    paths = [path]
    if recursive and path.is_dir() and not path.is_symlink():
        paths += list(path.rglob("*"))
    for p in paths:
        os.lchown(p, pw.pw_uid, pw.pw_gid)


def link(dest: Path, target: Path, owner: str | None = None) -> None:
    """Install `target` as `dest` through a symlink (tools import _standin through their realpath)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_symlink() or dest.exists():
        dest.unlink()
    dest.symlink_to(target)
    if owner:
        chown(dest, owner)


def bundle(tool: Path, baked: dict | None = None) -> str:
    """A self-contained copy of bin/<tool> (this module embedded), for release tarballs that are unpacked anywhere."""
    source = tool.read_text()
    shebang, dummy, body = source.partition("\n")
    return (f"{shebang}\n# Self-contained copy of the agentsec stand-in '{tool.name}' (tests/standins, built by build_artifacts.py).\n"
            "import sys as _sys, types as _types\n"
            "_m = _types.ModuleType('_standin')\n"
            f"_m.__file__ = __file__\n"
            f"exec(compile({(HERE / '_standin.py').read_text()!r}, '_standin.py', 'exec'), _m.__dict__)\n"
            f"_m.BAKED.update({baked or {}!r})\n"
            "_sys.modules['_standin'] = _m\n"
            f"{body}")


# ---- processes, versions, HTTP ---------------------------------------------------------------------------

def run(argv, env=None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=env, text=True, capture_output=True, check=False, **kw)


def pid_alive(pid) -> bool:
    """True while the process exists and is not a zombie (a container's PID 1 may never reap it)."""
    if not pid:
        return False
    try:
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
    except (OSError, ValueError):
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def spawn(argv, env=None, stdout=None, stderr=None, **kw) -> subprocess.Popen:
    """Start a detached process (own session, stdin from /dev/null)."""
    return subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                            stdout=stdout if stdout is not None else subprocess.DEVNULL,
                            stderr=stderr if stderr is not None else subprocess.DEVNULL,
                            start_new_session=True, close_fds=True, **kw)


def vtuple(version: str) -> tuple:
    return tuple(int(x) for x in re.findall(r"\d+", version)[:3])


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def http(method: str, url: str, body=None, headers=None, timeout: float = 10.0) -> tuple[int, bytes]:
    """(status, body); raises OSError when nothing answers. Never through a proxy (loopback services)."""
    import urllib.error  # imported here: most calls of most tools never need HTTP
    import urllib.request
    headers = dict(headers or {})
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    if data is not None:
        headers.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def ollama_address(server: bool = False) -> tuple[str, int]:
    """$OLLAMA_HOST like Ollama reads it (default 127.0.0.1:11434); a client maps 0.0.0.0 to 127.0.0.1."""
    raw = os.environ.get("OLLAMA_HOST", "").strip().split("://")[-1].rstrip("/")
    host, sep, port = raw.rpartition(":")
    if not sep:
        host, port = raw, ""
    host = host or "127.0.0.1"
    if not server and host == "0.0.0.0":
        host = "127.0.0.1"
    return host, int(port or 11434)
