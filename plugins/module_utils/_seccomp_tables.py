# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)
"""Syscall numbers and constants for the seccomp compiler (aarch64 and x86_64, from the kernel uapi headers)."""

from __future__ import annotations

# asm/unistd_64.h (x86_64) and asm-generic/unistd.h (aarch64)
SYSCALLS = {
    "x86_64": {
        "read": 0, "write": 1, "close": 3, "mmap": 9, "getpid": 39, "socket": 41, "connect": 42,
        "socketpair": 53, "execve": 59, "getuid": 102, "prctl": 157, "futex": 202, "seccomp": 317,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    },
    "aarch64": {
        "read": 63, "write": 64, "close": 57, "mmap": 222, "getpid": 172, "socket": 198, "connect": 203,
        "socketpair": 199, "execve": 221, "getuid": 174, "prctl": 167, "futex": 98, "seccomp": 277,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    },
}
# Compat ABIs that reach a 64-bit kernel with their own arch token (and their own numbers).
COMPAT_SYSCALLS = {"i386": {"socketcall": 102, "socket": 359, "getpid": 20}, "arm": {"socket": 281, "getpid": 20}}
X32_SYSCALL_BIT = 0x40000000

# linux/socket.h
ADDRESS_FAMILIES = {
    "AF_UNSPEC": 0, "AF_UNIX": 1, "AF_LOCAL": 1, "AF_INET": 2, "AF_AX25": 3, "AF_IPX": 4, "AF_APPLETALK": 5,
    "AF_NETROM": 6, "AF_BRIDGE": 7, "AF_ATMPVC": 8, "AF_X25": 9, "AF_INET6": 10, "AF_ROSE": 11, "AF_DECnet": 12,
    "AF_NETBEUI": 13, "AF_SECURITY": 14, "AF_KEY": 15, "AF_NETLINK": 16, "AF_ROUTE": 16, "AF_PACKET": 17,
    "AF_ASH": 18, "AF_ECONET": 19, "AF_ATMSVC": 20, "AF_RDS": 21, "AF_SNA": 22, "AF_IRDA": 23, "AF_PPPOX": 24,
    "AF_WANPIPE": 25, "AF_LLC": 26, "AF_IB": 27, "AF_MPLS": 28, "AF_CAN": 29, "AF_TIPC": 30, "AF_BLUETOOTH": 31,
    "AF_IUCV": 32, "AF_RXRPC": 33, "AF_ISDN": 34, "AF_PHONET": 35, "AF_IEEE802154": 36, "AF_CAIF": 37,
    "AF_ALG": 38, "AF_NFC": 39, "AF_VSOCK": 40, "AF_KCM": 41, "AF_QIPCRTR": 42, "AF_SMC": 43, "AF_XDP": 44,
    "AF_MCTP": 45,
}
AF_MAX = 46
# linux/net.h
SOCKET_TYPES = {"SOCK_STREAM": 1, "SOCK_DGRAM": 2, "SOCK_RAW": 3, "SOCK_RDM": 4, "SOCK_SEQPACKET": 5,
                "SOCK_DCCP": 6, "SOCK_PACKET": 10}
SOCK_TYPE_MASK = 0xF
SOCK_NONBLOCK, SOCK_CLOEXEC = 0o4000, 0o2000000
# linux/netlink.h
NETLINK_PROTOCOLS = {
    "NETLINK_ROUTE": 0, "NETLINK_UNUSED": 1, "NETLINK_USERSOCK": 2, "NETLINK_FIREWALL": 3, "NETLINK_SOCK_DIAG": 4,
    "NETLINK_INET_DIAG": 4, "NETLINK_NFLOG": 5, "NETLINK_XFRM": 6, "NETLINK_SELINUX": 7, "NETLINK_ISCSI": 8,
    "NETLINK_AUDIT": 9, "NETLINK_FIB_LOOKUP": 10, "NETLINK_CONNECTOR": 11, "NETLINK_NETFILTER": 12,
    "NETLINK_IP6_FW": 13, "NETLINK_DNRTMSG": 14, "NETLINK_KOBJECT_UEVENT": 15, "NETLINK_GENERIC": 16,
    "NETLINK_SCSITRANSPORT": 18, "NETLINK_ECRYPTFS": 19, "NETLINK_RDMA": 20, "NETLINK_CRYPTO": 21,
    "NETLINK_SMC": 22,
}
# seccomp_data field offsets (little-endian: the low word of args[i] is at 16 + 8*i)
OFF_NR, OFF_ARCH = 0, 4


def arg_low(i):
    return 16 + 8 * i


def resolve(value, table, what):
    """Accept a name from `table` (case-insensitive, prefix optional) or a non-negative integer; raise ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"unknown {what} {value!r}")
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        num = int(value)
        if num < 0 or num > 0xFFFFFFFF:
            raise ValueError(f"{what} {value!r} is out of range")
        return num
    key = str(value).strip().upper()
    for name, num in table.items():
        if key in (name.upper(), name.upper().split("_", 1)[1]):
            return num
    raise ValueError(f"unknown {what} {value!r}")


def family_name(num):
    return next((n for n, v in ADDRESS_FAMILIES.items() if v == num and n not in ("AF_LOCAL", "AF_ROUTE")), str(num))


def netlink_name(num):
    return next((n for n, v in NETLINK_PROTOCOLS.items() if v == num), str(num))
