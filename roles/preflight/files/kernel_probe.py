"""Report the kernel features OpenShell's layers depend on, from inside a container (on macOS: inside the Docker VM).

Prints one JSON object. Standard library only: it runs in any image with python3.
"""
import ctypes
import errno
import json
import os
import platform
import struct

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
SYS_SECCOMP = {"x86_64": 317, "aarch64": 277}.get(platform.machine())


def landlock_abi():
    rc = libc.syscall(ctypes.c_long(444), None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    if rc > 0:
        return {"abi": rc, "state": "available"}
    err = ctypes.get_errno()
    return {"abi": 0, "state": {errno.ENOSYS: "not built in", errno.EOPNOTSUPP: "disabled at boot"}.get(err, errno.errorcode.get(err, str(err)))}


def seccomp_filter():
    """Install an allow-all filter in a forked child; success proves CONFIG_SECCOMP_FILTER."""
    if SYS_SECCOMP is None:
        return {"supported": None, "reason": f"unknown arch {platform.machine()}"}
    pid = os.fork()
    if pid == 0:
        allow = struct.pack("=HBBI", 0x06, 0, 0, 0x7FFF0000)
        buf = ctypes.create_string_buffer(allow)

        class Prog(ctypes.Structure):
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

        prog = Prog(1, ctypes.cast(buf, ctypes.c_void_p))
        libc.prctl(38, 1, 0, 0, 0)
        rc = libc.syscall(ctypes.c_long(SYS_SECCOMP), ctypes.c_long(1), ctypes.c_long(0), ctypes.byref(prog))
        os._exit(0 if rc == 0 else 10 + ctypes.get_errno() % 100)
    _pid, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return {"supported": code == 0, "exit": code}


def namespaces():
    return {ns: os.path.exists(f"/proc/self/ns/{ns}") for ns in ("net", "mnt", "pid", "user", "uts", "ipc", "cgroup")}


def io_uring():
    try:
        with open("/proc/sys/kernel/io_uring_disabled", encoding="ascii") as fh:
            return {"io_uring_disabled": int(fh.read())}
    except (OSError, ValueError):
        return {"io_uring_disabled": None}


def cgroup_version():
    return 2 if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else 1


print(json.dumps({
    "kernel": platform.release(), "machine": platform.machine(), "landlock": landlock_abi(),
    "seccomp_filter": seccomp_filter(), "namespaces": namespaces(), "io_uring": io_uring(), "cgroup_version": cgroup_version(),
}))
