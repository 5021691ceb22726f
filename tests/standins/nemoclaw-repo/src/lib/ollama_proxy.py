"""The Ollama auth proxy's lifecycle as onboarding drives it (NemoClaw src/lib/onboard.ts:1790-1950 @db3453b5):
a detached `node scripts/ollama-auth-proxy.js` on 0.0.0.0:$NEMOCLAW_OLLAMA_PROXY_PORT (11435) in front of Ollama on
127.0.0.1:$NEMOCLAW_OLLAMA_PORT (11434), its token in ~/.nemoclaw/ollama-proxy-token and its pid in
~/.nemoclaw/ollama-auth-proxy.pid. Nothing restarts it after a reboot except `nemoclaw <sb> connect`
(src/nemoclaw.ts:1244): the nemoclaw_onboard role adds a launchd/systemd service for that."""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import time
from pathlib import Path

from lib import runner as R

_TOKEN_IN_MEMORY: list = []  # onboard.ts:1802 `let ollamaProxyToken`


def token_path() -> Path:
    return R.nemoclaw_dir() / "ollama-proxy-token"  # onboard.ts:1799


def pid_path() -> Path:
    return R.nemoclaw_dir() / "ollama-auth-proxy.pid"  # onboard.ts:1800


def persist_token(token: str) -> None:
    """onboard.ts:1810-1815: written 0600 (and chmod-ed if it existed)."""
    R.write_private(token_path(), token)


def persisted_token():
    try:
        return token_path().read_text().strip() or None
    except OSError:
        return None


def persisted_pid():
    try:
        pid = int(pid_path().read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid > 0 else None


def is_proxy_process(pid) -> bool:
    """onboard.ts:1857-1861: `ps -p <pid> -o args=` mentions ollama-auth-proxy.js."""
    if not pid:
        return False
    try:
        args = Path(f"/proc/{int(pid)}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, ValueError):
        args = R.capture(["ps", "-p", str(pid), "-o", "args="])
    return R.S.pid_alive(pid) and "ollama-auth-proxy.js" in args


def spawn(token: str):
    """onboard.ts:1863-1877: node (the one running the CLI) detached, token and ports in its environment only."""
    node = os.environ.get("AGENTSEC_STANDIN_NODE") or shutil.which("node") or "node"
    env = {**os.environ, "OLLAMA_PROXY_TOKEN": token, "OLLAMA_PROXY_PORT": str(R.ollama_proxy_port()),
           "OLLAMA_BACKEND_PORT": str(R.ollama_port())}
    try:
        child = R.S.spawn([node, str(R.SCRIPTS / "ollama-auth-proxy.js")], env=env, cwd=R.ROOT)
    except OSError:
        return None
    R.nemoclaw_dir().mkdir(mode=0o700, parents=True, exist_ok=True)
    R.write_private(pid_path(), f"{child.pid}\n")
    return child.pid


def listeners_on_proxy_port() -> list:
    """The pids `lsof -ti :<port>` would list (onboard.ts:1890): sockets in LISTEN on the port, from /proc."""
    port_hex = f"{R.ollama_proxy_port():04X}"
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) > 9 and cols[1].endswith(f":{port_hex}") and cols[3] == "0A":
                inodes.add(cols[9])
    pids = []
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            links = {os.readlink(fd) for fd in fd_dir.iterdir()}
        except OSError:
            continue
        if any(link == f"socket:[{inode}]" for inode in inodes for link in links):
            pids.append(int(fd_dir.parent.name))
    return pids


def kill_stale() -> None:
    """onboard.ts:1879-1902: kill the recorded proxy, then any proxy process listening on the port."""
    pid = persisted_pid()
    if is_proxy_process(pid):
        _kill(pid)
    pid_path().unlink(missing_ok=True)
    listeners = listeners_on_proxy_port()
    for other in listeners:
        if is_proxy_process(other):
            _kill(other)
    if listeners:
        R.sleep(1)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError:
        pass


def listening_within_upstream_grace() -> None:
    """stand-in only. Upstream gives the proxy its full 1 s before anything connects to it (onboard.ts:1904-1925); a
    scaled sleep (AGENTSEC_STANDIN_TIME_SCALE < 1, the tests) cuts that to milliseconds, and on a loaded machine node
    was not listening yet when the container probe came (CI 2026-12-03: "containers cannot reach the auth proxy").
    So with scaled time, wait - never longer than upstream's unscaled second - until the port accepts a connection
    on loopback. Unscaled runs keep upstream's timing exactly."""
    if R.time_scale() >= 1:
        return
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            probe.settimeout(0.1)
            if probe.connect_ex(("127.0.0.1", R.ollama_proxy_port())) == 0:
                return
        time.sleep(0.02)


def start() -> bool:
    """onboard.ts:1904-1925: a fresh 24-byte hex token (kept in memory until the provider is confirmed)."""
    kill_stale()
    token = secrets.token_hex(24)
    _TOKEN_IN_MEMORY[:] = [token]
    pid = spawn(token)
    R.sleep(1)
    listening_within_upstream_grace()
    if not is_proxy_process(pid):
        port = R.ollama_proxy_port()
        R.err(f"  Error: Ollama auth proxy failed to start on :{port}",
              "  Containers will not be able to reach Ollama without the proxy.",
              f"  Check if port {port} is already in use: lsof -ti :{port}")
        return False
    return True


def ensure() -> None:
    """onboard.ts:1927-1943: restart the proxy with the persisted token when it is not running."""
    token = persisted_token()
    if not token:
        return
    if is_proxy_process(persisted_pid()):
        _TOKEN_IN_MEMORY[:] = [token]
        return
    kill_stale()
    _TOKEN_IN_MEMORY[:] = [token]
    spawn(token)
    R.sleep(1)


def current_token():
    """onboard.ts:1945-1950."""
    if _TOKEN_IN_MEMORY:
        return _TOKEN_IN_MEMORY[0]
    token = persisted_token()
    if token:
        _TOKEN_IN_MEMORY[:] = [token]
    return token
