"""Docker Desktop stand-in backed by a real Docker Engine (contract: README.md, "Docker Desktop").

Docker Desktop runs the Docker Engine in a Linux VM and serves it to the Mac user on a per-user socket,
~/.docker/run/docker.sock, owned by that user; privileged steps go through its privileged helper. Here the "VM" is a
real dockerd (Debian's docker.io, binaries kept off the PATH in $AGENTSEC_ENGINE_DIR/bin, default
/opt/agentsec-engine/bin) started as root - through `sudo -n` when the caller is the Mac user, as the privileged
helper would - with its own data root, exec root and pidfile. Starting it records the resource settings of
settings-store.json as applied (they are not enforced: `docker info` reports the machine's CPUs and memory), creates
the CLI context Docker Desktop uses, and then runs the test machine's boot hooks.

Imported by bin/open and bin/docker-desktop-cli (through their realpath, like _standin). Standard library only.
"""
from __future__ import annotations

import contextlib
import fcntl
import grp
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import _standin as S

STATE = "docker-desktop"
CLI = S.BIN / "docker-desktop-cli"
SETTINGS = "Library/Group Containers/group.com.docker/settings-store.json"
SETTING_KEYS = ("Cpus", "MemoryMiB", "DiskSizeMiB")
CONTEXT = "desktop-linux"
PASSED_ENV = ("AGENTSEC_STANDIN_DIR", "AGENTSEC_STANDIN_ROOT", "AGENTSEC_CONSOLE_USER", "AGENTSEC_ENGINE_DIR",
              "AGENTSEC_DESKTOP_START_TIMEOUT", "AGENTSEC_DESKTOP_STOP_TIMEOUT", "AGENTSEC_DOCKER_HOOK_TIMEOUT",
              "AGENTSEC_DESKTOP_CGROUP_PARENT")


# ---- where things are --------------------------------------------------------------------------------------

def engine_bin(name: str) -> Path:
    """A binary of the engine (dockerd, docker, containerd, runc, docker-init, docker-proxy)."""
    return Path(os.environ.get("AGENTSEC_ENGINE_DIR") or "/opt/agentsec-engine") / "bin" / name


def seconds(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name) or default)
    except ValueError:
        return default


def desktop_user() -> str:
    """Docker Desktop runs for the user who opened it; a root caller acts for the console user."""
    return S.console_user() if os.getuid() == 0 else S.current_user()


def socket_path(user: str) -> Path:
    # Docker Desktop's per-user socket (docs.docker.com/desktop/setup/install/mac-permission-requirements/, and
    # docker/for-mac#6529: the sockets moved to user-owned directories); not under $AGENTSEC_STANDIN_ROOT (a home).
    return S.user_home(user) / ".docker/run/docker.sock"


def paths() -> dict:
    """The engine's own directories (the VM's disk and run dir): nothing the Mac user or the roles see."""
    run = S.rooted("/var/run/docker-desktop")
    logs = S.rooted("/var/log/agentsec-standin")
    return {"data_root": S.rooted("/var/lib/docker"), "exec_root": run, "pidfile": run / "dockerd.pid",
            "log": logs / "dockerd.log", "hook_dir": S.rooted("/etc/agentsec-standin/docker-started.d"),
            "hook_log": logs / "docker-started.log"}


# ---- is it up ----------------------------------------------------------------------------------------------

def ping(sock: Path, timeout: float = 2.0) -> bool:
    """GET /_ping on the engine's socket answers 200 "OK" (Docker Engine API v1.41, "Ping")."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(sock))
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            reply = b""
            while chunk := s.recv(4096):
                reply += chunk
    except OSError:
        return False
    head, _sep, body = reply.partition(b"\r\n\r\n")
    return head.split(b" ", 2)[1:2] == [b"200"] and body.strip() == b"OK"


def status(st: dict | None = None) -> bool:
    """Running = the recorded dockerd is alive and answers on the socket (a caller that may not open the socket
    - another user - sees it running while the process lives and the socket exists)."""
    st = S.peek(STATE) if st is None else st
    if not S.pid_alive(st.get("pid")) or not st.get("socket"):
        return False
    sock = Path(st["socket"])
    if os.getuid() == 0 or (sock.exists() and os.stat(sock).st_uid == os.getuid()):
        return ping(sock)
    return sock.exists()


# ---- the privileged helper ---------------------------------------------------------------------------------

def privileged(verb: str, *extra: str, detach: bool = False) -> int:
    """Run `docker-desktop-cli __engine <verb> --user <desktop user> ...` as root: directly when we are root, else
    through `sudo -n` (Docker Desktop's privileged helper does the root work; the scenario's Mac user has
    password-less sudo). The AGENTSEC_* knobs are passed explicitly because sudo resets the environment."""
    argv = [sys.executable, str(CLI), "__engine", verb, "--user", desktop_user(), *extra]
    if os.getuid() != 0:
        if shutil.which("sudo") is None:
            S.die("Docker Desktop: the privileged helper needs root and `sudo` is not installed")
        env = [f"{k}={os.environ[k]}" for k in PASSED_ENV if k in os.environ]
        argv = ["sudo", "-n", "--", "/usr/bin/env", *env, *argv]
    if detach:
        S.spawn(argv)
        return 0
    return subprocess.run(argv, stdin=subprocess.DEVNULL, check=False).returncode


@contextlib.contextmanager
def engine_lock():
    """One start/stop at a time (separate from the state lock: hooks may ask for the state meanwhile)."""
    fd = S._open_shared(S.state_dir() / f"{STATE}-engine.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def read_settings(user: str) -> dict:
    try:
        settings = json.loads((S.user_home(user) / SETTINGS).read_text())
    except (OSError, ValueError):
        return {}
    return {k: settings[k] for k in SETTING_KEYS if isinstance(settings, dict) and k in settings}


def owned_dir(path: Path, user: str) -> None:
    """mkdir -p, every created level owned by the user (the Mac user's home holds only the user's files)."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir()
        S.chown(d, user)


def cgroup_parent() -> list[str]:
    """Where the engine's containers' cgroups go. In a Docker container (the scenario's Mac: /.dockerenv) they nest
    under the Mac's own cgroup, e.g. /docker/<mac container>/docker-desktop - the VM's resources are the Mac's, and
    they go away with it; elsewhere dockerd keeps its default parent (/docker). $AGENTSEC_DESKTOP_CGROUP_PARENT
    overrides (empty: dockerd's default)."""
    if "AGENTSEC_DESKTOP_CGROUP_PARENT" in os.environ:
        chosen = os.environ["AGENTSEC_DESKTOP_CGROUP_PARENT"]
        return ["--cgroup-parent", chosen] if chosen else []
    if not Path("/.dockerenv").exists():
        return []
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        _hierarchy, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(",") or (controllers == "" and len(lines) == 1):
            return [] if path in ("", "/") else ["--cgroup-parent", f"{path.rstrip('/')}/docker-desktop"]
    return []


def dockerd_argv(user: str, sock: Path, p: dict) -> list[str]:
    group = grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name
    daemon_json = S.user_home(user) / ".docker/daemon.json"  # Docker Desktop's "Docker Engine" settings (unverified path)
    # dockerd runs under docker-init (tini) as a child subreaper (`-s`, krallin/tini README "Subreaping"): it reaps
    # the engine's orphans (exited containerd shims), which the Mac container's PID 1 (`sleep infinity`) never does,
    # and passes SIGTERM on to dockerd.
    return [str(engine_bin("docker-init")), "-s", "--", str(engine_bin("dockerd")), "--host", f"unix://{sock}", "--group", group,
            "--data-root", str(p["data_root"]), "--exec-root", str(p["exec_root"]), "--pidfile", str(p["pidfile"]),
            "--config-file", str(daemon_json), *cgroup_parent()]


def log_tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def use_context(user: str, sock: Path) -> str | None:
    """The CLI context Docker Desktop creates and selects (`desktop-linux`, endpoint = the per-user socket): written
    by the real client itself, as the user, so the store format is the client's own. Docker Desktop for Linux
    documents this at start (docker/docs#14648: "creates a dedicated context ... and sets it as the current
    context"); that the Mac app does the same is unverified, and so is whether it resets the context on stop (this
    stand-in leaves it)."""
    home = S.user_home(user)
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "USER": user}
    kw = S.as_user(user) if os.getuid() == 0 and user != S.current_user() else {}
    client = str(engine_bin("docker"))
    owned_dir(home / ".docker", user)
    if S.run([client, "context", "inspect", CONTEXT], env=env, **kw).returncode != 0:
        res = S.run([client, "context", "create", CONTEXT, "--description", "Docker Desktop", "--docker",
                     f"host=unix://{sock}"], env=env, **kw)
        if res.returncode != 0:
            return f"docker context create {CONTEXT} failed: {res.stderr.strip()}"
        S.run([client, "context", "use", CONTEXT], env=env, **kw)
    return None


def wait_answer(proc: subprocess.Popen, sock: Path, deadline: float) -> str | None:
    """None when the engine answers before the deadline, else why not."""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"dockerd exited with status {proc.returncode}"
        if ping(sock, timeout=1.0):
            return None
        time.sleep(0.1)
    return "dockerd did not answer in time"


def engine_start(user: str, timeout: float) -> int:
    """Start the engine for `user` (root only). Exit 0 when it answers (also when it already did)."""
    p = paths()
    sock = socket_path(user)
    with engine_lock():
        st = S.peek(STATE)
        if status(st):
            return 0
        if S.pid_alive(st.get("pid")):  # alive but not answering: stop it before starting anew
            stop_pid(st["pid"], seconds("AGENTSEC_DESKTOP_STOP_TIMEOUT", 60))
        missing = [n for n in ("docker-init", "dockerd", "docker") if not os.access(engine_bin(n), os.X_OK)]
        if missing:
            S.die(f"Docker Desktop stand-in: the engine binaries {', '.join(missing)} are missing in {engine_bin('docker').parent}"
                  " (the scenario image puts Debian's docker.io there; $AGENTSEC_ENGINE_DIR overrides)")
        system_containerd = Path("/run/containerd/containerd.sock")
        if system_containerd.exists():
            # dockerd would use a running system containerd instead of its own (moby cmd/dockerd/daemon_unix.go:140-154
            # and daemon.go:746-757 @v20.10.24) and share it with whatever else uses it: refuse, like a stand-in must.
            S.die(f"Docker Desktop stand-in: a system containerd answers at {system_containerd}; start the engine where "
                  "none runs (the scenario's Mac container, or a private mount namespace)")
        owned_dir(sock.parent, user)
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()
        daemon_json = S.user_home(user) / ".docker/daemon.json"
        if not daemon_json.exists():
            daemon_json.write_text("{}\n")
            S.chown(daemon_json, user)
        for d in (p["data_root"], p["exec_root"], p["log"].parent):
            d.mkdir(parents=True, exist_ok=True)
        settings = read_settings(user)
        env = {"PATH": f"{engine_bin('dockerd').parent}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "LANG": "C.UTF-8"}
        begun = time.monotonic()
        with open(p["log"], "ab") as log:
            log.write(f"---- {S.now_iso()} docker desktop start for {user}\n".encode())
            log.flush()
            proc = S.spawn(dockerd_argv(user, sock, p), env=env, stdout=log, stderr=log)
        problem = wait_answer(proc, sock, begun + timeout)
        answered = round(time.monotonic() - begun, 3)
        if not problem:
            pw = pwd.getpwnam(user)
            os.chown(sock, pw.pw_uid, pw.pw_gid)  # the user's own socket, like Docker Desktop's
            problem = use_context(user, sock)
        if problem:
            stop_pid(proc.pid, 10)
            S.die(f"Docker Desktop failed to start: {problem} (log {p['log']}):\n{log_tail(p['log'])}")
        with S.state(STATE) as st:
            st.update(running=True, pid=proc.pid, user=user, socket=str(sock), started_at=S.now_iso(),
                      starts=st.get("starts", 0) + 1, applied_settings=settings, answered_after_s=answered,
                      data_root=str(p["data_root"]), exec_root=str(p["exec_root"]), pidfile=str(p["pidfile"]),
                      log=str(p["log"]))
        hooks = run_hooks(p, user, sock)
        with S.state(STATE) as st:
            st["hooks"] = hooks
    for h in hooks:
        if h["rc"] != 0:
            print(f"docker-started.d/{h['hook']}: {'timed out' if h['rc'] == 'timeout' else 'exit ' + str(h['rc'])}"
                  f" (see {p['hook_log']})", file=sys.stderr)
    return 0


def stop_pid(pid: int, timeout: float) -> int:
    """SIGTERM, wait up to `timeout`, then SIGKILL; the signal that ended it."""
    sig = signal.SIGTERM
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while S.pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if S.pid_alive(pid):
        sig = signal.SIGKILL
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        for _attempt in range(50):
            if not S.pid_alive(pid):
                break
            time.sleep(0.1)
    return int(sig)


def engine_stop(timeout: float, force: bool = False) -> int:
    """Stop the engine (root only): dockerd shuts its containers down and its containerd with it (SIGTERM through
    tini, bounded wait, then SIGKILL - and then also dockerd and the containerd it started, by their pid files)."""
    p = paths()
    with engine_lock():
        st = S.peek(STATE)
        pid = st.get("pid")
        sig = None
        if S.pid_alive(pid):
            sig = stop_pid(pid, 0 if force else timeout)
            if sig == signal.SIGKILL:  # tini went down hard: dockerd and its containerd too (their pid files)
                for pidfile in (p["pidfile"], p["exec_root"] / "containerd/containerd.pid"):
                    with contextlib.suppress(OSError, ValueError):
                        stop_pid(int(pidfile.read_text()), 0)
        if st.get("socket"):
            with contextlib.suppress(FileNotFoundError):
                Path(st["socket"]).unlink()  # dockerd removes it on a clean shutdown; not after SIGKILL
        with S.state(STATE) as st:
            st.update(running=False, pid=None, stopped_at=S.now_iso())
            if sig is not None:
                st["last_stop_signal"] = sig
    return 0


# ---- the boot hooks of the test machine --------------------------------------------------------------------

def run_hooks(p: dict, user: str, sock: Path) -> list[dict]:
    """Every executable file of the hook directory, sorted by name, once the engine answers: as root, cwd /,
    stdin /dev/null, its own process group, bounded by $AGENTSEC_DOCKER_HOOK_TIMEOUT (default 300 s; the whole
    group is killed after it), output appended to the hook log. A failing hook does not fail the start."""
    d = p["hook_dir"]
    if not d.is_dir():
        return []
    limit = seconds("AGENTSEC_DOCKER_HOOK_TIMEOUT", 300)
    env = {"PATH": f"{engine_bin('docker').parent}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "DOCKER_HOST": f"unix://{sock}", "HOME": "/root", "LANG": "C.UTF-8", "AGENTSEC_DESKTOP_USER": user}
    env.update({k: v for k, v in os.environ.items() if k.startswith("AGENTSEC_")})
    results = []
    for hook in sorted(h for h in d.iterdir() if h.is_file() and os.access(h, os.X_OK)):
        begun = time.monotonic()
        with open(p["hook_log"], "ab") as log:
            log.write(f"---- {S.now_iso()} {hook.name}\n".encode())
            log.flush()
            proc = subprocess.Popen([str(hook)], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    env=env, cwd="/", start_new_session=True)
            try:
                rc = proc.wait(timeout=limit)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                rc = "timeout"
            log.write(f"---- {hook.name}: {rc} after {time.monotonic() - begun:.1f}s\n".encode())
        results.append({"hook": hook.name, "rc": rc, "seconds": round(time.monotonic() - begun, 3)})
    return results


# ---- what the Mac user calls -------------------------------------------------------------------------------

def require_app() -> None:
    if not (S.rooted("/Applications/Docker.app") / "Contents/Info.plist").exists():
        S.die("Unable to find application named 'Docker'")


def start(timeout: float | None = None, detach: bool = False) -> int:
    require_app()
    if status():
        return 0  # already running: the app is only brought forward, the settings are not re-read
    extra = ["--timeout", str(timeout)] if timeout else []
    return privileged("start", *extra, detach=detach)


def stop(timeout: float | None = None, force: bool = False, detach: bool = False) -> int:
    extra = (["--timeout", str(timeout)] if timeout else []) + (["--force"] if force else [])
    return privileged("stop", *extra, detach=detach)


def helper_main(argv: list[str]) -> int:
    """`docker-desktop-cli __engine start|stop --user U [--timeout S] [--force]` (root; not in the call log)."""
    p = S.parser("docker-desktop-cli __engine")
    p.add_argument("verb", choices=("start", "stop"))
    p.add_argument("--user", required=True)
    p.add_argument("--timeout", type=float)
    p.add_argument("--force", action="store_true")
    args = p.parse_args(argv)
    if os.getuid() != 0:
        S.die("docker-desktop-cli __engine: must run as root")
    if args.verb == "start":
        return engine_start(args.user, args.timeout or seconds("AGENTSEC_DESKTOP_START_TIMEOUT", 120))
    return engine_stop(args.timeout or seconds("AGENTSEC_DESKTOP_STOP_TIMEOUT", 60), force=args.force)
