"""One socket-creation probe per run, for tests that load a seccomp filter in a child process.

Usage: probe.py NAME. Prints {"probe": NAME, "result": "ok" | "<ERRNO name>"}; a filter that kills the
process leaves no output and the parent sees SIGSYS.
"""
import ctypes
import errno
import json
import os
import platform
import socket
import sys

SYS = {"x86_64": {"socket": 41, "io_uring_setup": 425}, "aarch64": {"socket": 198, "io_uring_setup": 425}}[platform.machine()]
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def raw(nr, *args):
    rc = libc.syscall(ctypes.c_long(nr), *(ctypes.c_long(a) for a in args))
    if rc < 0:
        return errno.errorcode[ctypes.get_errno()]
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
    rc = libc.syscall(ctypes.c_long(SYS["io_uring_setup"]), ctypes.c_long(4), params)
    if rc < 0:
        return errno.errorcode[ctypes.get_errno()]
    os.close(rc)
    return "ok"


PROBES = {
    "af_packet": lambda: sock(17, 15),            # type 15 >= SOCK_MAX: EINVAL unfiltered, EPERM only from a filter
    "af_netlink": lambda: sock(16, 15),
    "af_packet_raw": lambda: sock(17, socket.SOCK_RAW),
    "af_netlink_route": lambda: sock(16, socket.SOCK_RAW, 0),
    "af_inet": lambda: sock(socket.AF_INET, socket.SOCK_STREAM),
    "af_unix": lambda: sock(socket.AF_UNIX, socket.SOCK_STREAM),
    "sock_packet": lambda: sock(socket.AF_INET, 10, 0x0300),  # SOCK_PACKET, ETH_P_ALL (htons)
    "high_bit_netlink": lambda: raw(SYS["socket"], 0x1_00000010, 3, 0),
    "io_uring_setup": io_uring,
    "x32_socket": lambda: raw(0x40000000 | SYS["socket"], 16, 3, 0),
}

if __name__ == "__main__":
    name = sys.argv[1]
    print(json.dumps({"probe": name, "result": PROBES[name]()}), flush=True)
