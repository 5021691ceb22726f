# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)
"""Syscall numbers and constants for the seccomp compiler (aarch64 and x86_64, from the kernel uapi headers)."""

from __future__ import annotations

# asm/unistd_64.h (x86_64) and asm-generic/unistd.h (aarch64; mmap/fcntl are its __NR3264_ names), as installed by
# the kernel uapi headers; tests/unit/plugins/module_utils/test_seccomp_policy.py checks them against libseccomp's tables.
# Only the calls the policies name or the tests exercise are listed.
SYSCALLS = {
    "x86_64": {
        "read": 0, "write": 1, "close": 3, "mmap": 9, "mprotect": 10, "munmap": 11, "brk": 12, "rt_sigaction": 13,
        "ioctl": 16, "sched_yield": 24, "madvise": 28, "getpid": 39, "socket": 41, "connect": 42, "sendto": 44,
        "recvfrom": 45, "bind": 49, "listen": 50, "socketpair": 53, "setsockopt": 54, "getsockopt": 55, "clone": 56,
        "execve": 59, "wait4": 61, "kill": 62, "fcntl": 72, "ptrace": 101, "getuid": 102, "syslog": 103,
        "uselib": 134, "personality": 135, "vhangup": 153, "pivot_root": 155, "_sysctl": 156, "prctl": 157,
        "chroot": 161, "acct": 163, "settimeofday": 164, "mount": 165, "umount2": 166, "swapon": 167, "swapoff": 168,
        "reboot": 169, "sethostname": 170, "setdomainname": 171, "iopl": 172, "ioperm": 173, "init_module": 175,
        "delete_module": 176, "quotactl": 179, "nfsservctl": 180, "futex": 202, "lookup_dcookie": 212,
        "clock_settime": 227, "exit_group": 231, "tgkill": 234, "kexec_load": 246, "add_key": 248,
        "request_key": 249, "keyctl": 250, "openat": 257, "unshare": 272, "set_robust_list": 273, "epoll_pwait": 281,
        "accept4": 288, "dup3": 292, "pipe2": 293, "perf_event_open": 298, "open_by_handle_at": 304, "setns": 308,
        "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312, "finit_module": 313, "seccomp": 317,
        "getrandom": 318, "memfd_create": 319, "kexec_file_load": 320, "bpf": 321, "execveat": 322,
        "userfaultfd": 323, "rseq": 334, "pidfd_send_signal": 424, "io_uring_setup": 425, "io_uring_enter": 426,
        "io_uring_register": 427, "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431,
        "fsmount": 432, "fspick": 433, "pidfd_open": 434, "clone3": 435, "pidfd_getfd": 438, "process_madvise": 440,
        "mount_setattr": 442, "landlock_create_ruleset": 444, "landlock_add_rule": 445,
        "landlock_restrict_self": 446,
    },
    "aarch64": {
        "lookup_dcookie": 18, "epoll_pwait": 22, "dup3": 24, "fcntl": 25, "ioctl": 29, "umount2": 39, "mount": 40,
        "pivot_root": 41, "nfsservctl": 42, "chroot": 51, "openat": 56, "close": 57, "vhangup": 58, "pipe2": 59,
        "quotactl": 60, "read": 63, "write": 64, "acct": 89, "personality": 92, "exit_group": 94, "unshare": 97,
        "futex": 98, "set_robust_list": 99, "kexec_load": 104, "init_module": 105, "delete_module": 106,
        "clock_settime": 112, "syslog": 116, "ptrace": 117, "sched_yield": 124, "kill": 129, "tgkill": 131,
        "rt_sigaction": 134, "reboot": 142, "sethostname": 161, "setdomainname": 162, "prctl": 167,
        "settimeofday": 170, "getpid": 172, "getuid": 174, "socket": 198, "socketpair": 199, "bind": 200,
        "listen": 201, "connect": 203, "sendto": 206, "recvfrom": 207, "setsockopt": 208, "getsockopt": 209,
        "brk": 214, "munmap": 215, "add_key": 217, "request_key": 218, "keyctl": 219, "clone": 220, "execve": 221,
        "mmap": 222, "swapon": 224, "swapoff": 225, "mprotect": 226, "madvise": 233, "perf_event_open": 241,
        "accept4": 242, "wait4": 260, "open_by_handle_at": 265, "setns": 268, "process_vm_readv": 270,
        "process_vm_writev": 271, "kcmp": 272, "finit_module": 273, "seccomp": 277, "getrandom": 278,
        "memfd_create": 279, "bpf": 280, "execveat": 281, "userfaultfd": 282, "rseq": 293, "kexec_file_load": 294,
        "pidfd_send_signal": 424, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
        "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
        "pidfd_open": 434, "clone3": 435, "pidfd_getfd": 438, "process_madvise": 440, "mount_setattr": 442,
        "landlock_create_ruleset": 444, "landlock_add_rule": 445, "landlock_restrict_self": 446,
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
# linux/sched.h: the namespace flags. clone() takes them in args[0] on x86_64 and aarch64 alike; the kernel reads
# only its low 32 bits (kernel/fork.c, SYSCALL_DEFINE5(clone): lower_32_bits(clone_flags)). CLONE_NEWTIME (0x80)
# shares clone()'s CSIGNAL byte (the exit signal), so only unshare() and clone3() can ask for it.
CLONE_NAMESPACES = {
    "CLONE_NEWNS": 0x00020000, "CLONE_NEWCGROUP": 0x02000000, "CLONE_NEWUTS": 0x04000000, "CLONE_NEWIPC": 0x08000000,
    "CLONE_NEWUSER": 0x10000000, "CLONE_NEWPID": 0x20000000, "CLONE_NEWNET": 0x40000000,
}
CLONE_NEWTIME = 0x00000080
CLONE_NAMESPACE_MASK = sum(CLONE_NAMESPACES.values())          # 0x7e020000, tested on clone()
UNSHARE_NAMESPACE_MASK = CLONE_NAMESPACE_MASK | CLONE_NEWTIME   # 0x7e020080, tested on unshare()
CLONE_THREAD_FLAGS = 0x003D0F00  # glibc pthread_create: VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|PARENT_SETTID|CHILD_CLEARTID
# linux/personality.h: the personas Docker's default profile lets through (PER_LINUX, PER_LINUX32, UNAME26 with each,
# and 0xffffffff = query); anything else (ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, ...) is refused.
PERSONALITY_ALLOWED = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)
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
