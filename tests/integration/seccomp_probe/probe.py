"""One probe per run, acting as the agent, for tests that load a seccomp filter / Landlock ruleset in a child process.

Usage: probe.py NAME [ARG...]. Prints {"probe": NAME, "result": "ok" | "<ERRNO name>" | ..., ...}; a filter that
kills the process leaves no output and the parent sees SIGSYS. Sockets are only created and closed: never
connected, bound or used (AF_VSOCK included); the abstract-socket probe connects only to the name the test gives it.
Stdlib only, no site: run it as ``python3 -I -S probe.py NAME``.
"""
import ctypes
import errno
import json
import os
import platform
import socket
import struct
import subprocess
import sys
import threading

SYS = {
    "x86_64": {"socket": 41, "io_uring_setup": 425, "clone": 56, "clone3": 435, "unshare": 272, "setns": 308,
               "add_key": 248, "keyctl": 250, "ptrace": 101, "bpf": 321, "personality": 135},
    "aarch64": {"socket": 198, "io_uring_setup": 425, "clone": 220, "clone3": 435, "unshare": 97, "setns": 268,
                "add_key": 217, "keyctl": 219, "ptrace": 117, "bpf": 280, "personality": 92},
}[platform.machine()]
CLONE_NEWUSER, SIGCHLD = 0x10000000, 17
KEY_SPEC_PROCESS_KEYRING = -2
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def _arg(a):
    return a if isinstance(a, (bytes, ctypes.Array)) else ctypes.c_long(a)


def call(nr, *args):
    """(return value, errno name or None) of a raw syscall."""
    rc = libc.syscall(ctypes.c_long(nr), *(_arg(a) for a in args))
    return rc, (errno.errorcode[ctypes.get_errno()] if rc < 0 else None)


def raw(nr, *args):
    rc, err = call(nr, *args)
    if err:
        return err
    os.close(rc)
    return "ok"


def sock(family, type_, proto=0):
    try:
        socket.socket(family, type_, proto).close()
        return "ok"
    except OSError as exc:
        return errno.errorcode[exc.errno]


def io_uring():
    params = ctypes.create_string_buffer(120)
    return raw(SYS["io_uring_setup"], 4, params)


def cap_eff():
    with open("/proc/self/status") as fh:
        return next(line.split()[1] for line in fh if line.startswith("CapEff:"))


def drop_to_nobody():
    """The agent has no capabilities: become uid/gid 65534 first when started as root."""
    if os.geteuid() == 0:
        os.setgroups([])
        os.setresgid(65534, 65534, 65534)
        os.setresuid(65534, 65534, 65534)


def _forked(rc, err, write_fd, read_fd):
    """Shared tail of clone()/clone3() used as fork: the child reports its CapEff through a pipe and exits."""
    if err:
        os.close(write_fd)
        os.close(read_fd)
        return {"result": err}
    if rc == 0:  # child: a copy of this single-threaded process; report and leave without running any cleanup
        try:
            os.write(write_fd, cap_eff().encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    caps = os.read(read_fd, 64).decode()
    os.close(read_fd)
    os.waitpid(rc, 0)
    return {"result": "ok", "child_cap_eff": caps}


def clone_newuser():
    drop_to_nobody()
    before = cap_eff()
    r, w = os.pipe()
    rc, err = call(SYS["clone"], CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0)
    return {**_forked(rc, err, w, r), "cap_eff_before": before}


def clone_high_bits():
    """clone(0x1_00000000 | SIGCHLD): the kernel reads lower_32_bits(flags), so this is a plain fork."""
    r, w = os.pipe()
    rc, err = call(SYS["clone"], 0x1_00000000 | SIGCHLD, 0, 0, 0, 0)
    return _forked(rc, err, w, r)["result"]


def clone3_newuser():
    drop_to_nobody()
    args = ctypes.create_string_buffer(struct.pack("=8Q", CLONE_NEWUSER, 0, 0, 0, SIGCHLD, 0, 0, 0), 64)
    r, w = os.pipe()
    rc, err = call(SYS["clone3"], args, 64)
    return _forked(rc, err, w, r)


def unshare_newuser():
    drop_to_nobody()
    before = cap_eff()
    _rc, err = call(SYS["unshare"], CLONE_NEWUSER)
    return {"result": err or "ok", "cap_eff_before": before, "cap_eff_after": cap_eff()}


def setns_own_userns():
    fd = os.open("/proc/self/ns/user", os.O_RDONLY)
    _rc, err = call(SYS["setns"], fd, CLONE_NEWUSER)
    os.close(fd)
    return err or "ok"  # EINVAL from the kernel (already in it) when the filter lets it through


def threads_and_children():
    """What an agent runtime does all the time: a thread (pthread_create -> clone3 or clone) and a child process."""
    out = []
    t = threading.Thread(target=out.append, args=("thread",))
    t.start()
    t.join(10)
    child = subprocess.run(["/bin/sh", "-c", "exit 3"], check=False, timeout=30).returncode
    return "ok" if out == ["thread"] and child == 3 else f"broken: {out} {child}"


def add_key():
    rc, err = call(SYS["add_key"], b"user\0", b"agentsec-h1-probe\0", b"x", 1, KEY_SPEC_PROCESS_KEYRING)
    return err or "ok"


def keyctl_get_keyring():
    _rc, err = call(SYS["keyctl"], 0, KEY_SPEC_PROCESS_KEYRING, 1, 0, 0)  # KEYCTL_GET_KEYRING_ID, create
    return err or "ok"


def ptrace_invalid():
    _rc, err = call(SYS["ptrace"], 0xFFFF, 0, 0, 0)  # an unknown request on pid 0: ESRCH from the kernel, EPERM from a filter
    return err or "ok"


def personality(persona):
    rc, err = call(SYS["personality"], persona)
    if err:
        return err
    call(SYS["personality"], rc)  # restore
    return "ok"


def signal(pid):
    try:
        os.kill(int(pid), 0)  # signal 0: permission check only, nothing is delivered
        return "ok"
    except OSError as exc:
        return errno.errorcode[exc.errno]


def signal_own_child():
    """Signals inside the agent's own domain keep working (the agent killing its own tool processes)."""
    child = subprocess.Popen(["/bin/sleep", "30"])
    try:
        os.kill(child.pid, 15)
        return "ok" if child.wait(10) == -15 else "not killed"
    except OSError as exc:
        child.kill()
        child.wait(10)
        return errno.errorcode[exc.errno]


def abstract_connect(name):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect("\0" + name)
        return "ok"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc))
    finally:
        s.close()


PROBES = {
    "af_packet": lambda: sock(17, 15),            # type 15 >= SOCK_MAX: EINVAL unfiltered, EPERM only from a filter
    "af_netlink": lambda: sock(16, 15),
    "af_packet_raw": lambda: sock(17, socket.SOCK_RAW),
    "af_netlink_route": lambda: sock(16, socket.SOCK_RAW, 0),
    "af_netlink_sock_diag": lambda: sock(16, socket.SOCK_RAW, 4),
    "af_netlink_audit": lambda: sock(16, socket.SOCK_RAW, 9),
    "af_inet": lambda: sock(socket.AF_INET, socket.SOCK_STREAM),
    "af_inet6": lambda: sock(socket.AF_INET6, socket.SOCK_STREAM),
    "af_unix": lambda: sock(socket.AF_UNIX, socket.SOCK_STREAM),
    "af_vsock": lambda: sock(40, socket.SOCK_STREAM),  # create and close only
    "af_alg": lambda: sock(38, socket.SOCK_SEQPACKET),
    "high_bit_vsock": lambda: raw(SYS["socket"], 0x1_00000028, 1, 0),
    "sock_packet": lambda: sock(socket.AF_INET, 10, 0x0300),  # SOCK_PACKET, ETH_P_ALL (htons)
    "high_bit_netlink": lambda: raw(SYS["socket"], 0x1_00000010, 3, 0),
    "io_uring_setup": io_uring,
    "x32_socket": lambda: raw(0x40000000 | SYS["socket"], 16, 3, 0),
    "clone_newuser": clone_newuser,
    "clone3_newuser": clone3_newuser,
    "clone_high_bits": clone_high_bits,
    "unshare_newuser": unshare_newuser,
    "setns": setns_own_userns,
    "threads_and_children": threads_and_children,
    "add_key": add_key,
    "keyctl": keyctl_get_keyring,
    "ptrace": ptrace_invalid,
    "signal_own_child": signal_own_child,
    "personality_no_randomize": lambda: personality(0x0040000),
    "personality_linux": lambda: personality(0),
    "signal": signal,
    "abstract_connect": abstract_connect,
}

if __name__ == "__main__":
    name, args = sys.argv[1], sys.argv[2:]
    out = PROBES[name](*args)
    out = out if isinstance(out, dict) else {"result": out}
    print(json.dumps({"probe": name, **out}), flush=True)
