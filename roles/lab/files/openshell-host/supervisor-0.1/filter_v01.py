"""The seccomp filters of the OpenShell 0.1.x workload stand-in, built with libseccomp.

1. The child self-protection filter (crates/openshell-isolation-interface/src/linux/child_seccomp.rs @25670ec2; list in
   /work/shared/reference/openshell-current.md 4.2 item 3): EPERM, unconditionally, for ptrace, process_vm_readv/
   writev, pidfd_open/getfd/send_signal, kcmp, process_madvise, process_mrelease, tkill, unshare, setns, mount,
   umount2, pivot_root, chroot, fsopen, fsconfig, fsmount, fspick, move_mount, open_tree, bpf, perf_event_open,
   userfaultfd, io_uring_setup/enter/register, capset, the set*id family, setgroups, sethostname, setdomainname,
   setpriority, ioprio_set, clone3 (EPERM, not 0.0.x's ENOSYS); conditionally kill/tgkill/rt_(tg)sigqueueinfo aimed at
   the sandbox TGID (PID 1 in its container) and kill(-1)/rt_sigqueueinfo(-1), a non-zero pid in prlimit64 /
   sched_setaffinity / sched_setparam / sched_setscheduler, seccomp(SET_MODE_FILTER) and prctl(PR_SET_SECCOMP),
   close_range(CLOSE_RANGE_UNSHARE), fcntl(F_SETOWN|F_SETSIG|F_SETOWN_EX), ioctl(FIOSETOWN|SIOCSPGRP). Foreign
   arch and x32 numbers are killed (libseccomp's native filter does both).
2. The broker's socket-family decisions (crates/openshell-sandbox/src/network_broker.rs @0448e4f7 create_socket, ref
   4.2 item 2), emulated STATICALLY: every family but AF_UNIX, AF_INET, AF_INET6 and AF_NETLINK -> EAFNOSUPPORT, and an
   AF_INET/AF_INET6 type other than SOCK_STREAM/SOCK_DGRAM -> EPROTONOSUPPORT; AF_NETLINK of any protocol and AF_UNIX
   continue natively. Not emulated (the stand-in has no broker): the per-connection decision of the supervisor for
   INET sockets, SO_BINDTODEVICE to lo, the denied setsockopt list, the 30 s decision timeout. In the stand-in an INET
   connect simply meets network_mode=none (only lo), the "mandatory outer fence" of ref 4.1.
"""
from __future__ import annotations

import errno

import seccomp

LOW32 = 0xFFFFFFFF
UNCONDITIONAL = ("ptrace", "process_vm_readv", "process_vm_writev", "pidfd_open", "pidfd_getfd", "pidfd_send_signal",
                 "kcmp", "process_madvise", "process_mrelease", "tkill", "unshare", "setns", "mount", "umount2",
                 "pivot_root", "chroot", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "bpf",
                 "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register", "capset",
                 "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setfsuid", "setfsgid", "setgroups",
                 "sethostname", "setdomainname", "setpriority", "ioprio_set", "clone3")
AF_UNIX, AF_INET, AF_INET6, AF_NETLINK = 1, 2, 10, 16
NATIVE_FAMILIES = (AF_UNIX, AF_INET, AF_INET6, AF_NETLINK)
SOCK_STREAM, SOCK_DGRAM, SOCK_TYPE_MASK = 1, 2, 0xF
SANDBOX_TGID = 1  # openshell-sandbox is PID 1 of the workload container
SECCOMP_SET_MODE_FILTER, PR_SET_SECCOMP = 1, 22
CLOSE_RANGE_UNSHARE = 1 << 1
F_SETOWN, F_SETSIG, F_SETOWN_EX = 8, 10, 15
FIOSETOWN, SIOCSPGRP = 0x8901, 0x8902


def _eq(index, value):
    return seccomp.Arg(index, seccomp.MASKED_EQ, LOW32, value)


def child_filter() -> seccomp.SyscallFilter:
    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    f.set_attr(seccomp.Attr.ACT_BADARCH, seccomp.KILL_PROCESS)
    deny = seccomp.ERRNO(errno.EPERM)
    for name in UNCONDITIONAL:
        f.add_rule(deny, name)
    for name in ("kill", "rt_sigqueueinfo"):
        f.add_rule(deny, name, _eq(0, SANDBOX_TGID))
        f.add_rule(deny, name, _eq(0, LOW32))  # -1 as a 32-bit pid
    for name in ("tgkill", "rt_tgsigqueueinfo"):
        f.add_rule(deny, name, _eq(0, SANDBOX_TGID))
    for name in ("prlimit64", "sched_setaffinity", "sched_setparam", "sched_setscheduler"):
        f.add_rule(deny, name, seccomp.Arg(0, seccomp.NE, 0))
    f.add_rule(deny, "seccomp", _eq(0, SECCOMP_SET_MODE_FILTER))
    f.add_rule(deny, "prctl", _eq(0, PR_SET_SECCOMP))
    f.add_rule(deny, "close_range", seccomp.Arg(2, seccomp.MASKED_EQ, CLOSE_RANGE_UNSHARE, CLOSE_RANGE_UNSHARE))
    for cmd in (F_SETOWN, F_SETSIG, F_SETOWN_EX):
        f.add_rule(deny, "fcntl", _eq(1, cmd))
    for cmd in (FIOSETOWN, SIOCSPGRP):
        f.add_rule(deny, "ioctl", _eq(1, cmd))
    return f


def broker_filter() -> seccomp.SyscallFilter:
    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    f.set_attr(seccomp.Attr.ACT_BADARCH, seccomp.KILL_PROCESS)
    no_family = seccomp.ERRNO(errno.EAFNOSUPPORT)
    for family in range(64):
        if family not in NATIVE_FAMILIES:
            f.add_rule(no_family, "socket", _eq(0, family))
    f.add_rule(no_family, "socket", seccomp.Arg(0, seccomp.GE, 64))
    no_proto = seccomp.ERRNO(errno.EPROTONOSUPPORT)
    for family in (AF_INET, AF_INET6):
        for sock_type in range(16):
            if sock_type not in (SOCK_STREAM, SOCK_DGRAM):
                f.add_rule(no_proto, "socket", _eq(0, family), seccomp.Arg(1, seccomp.MASKED_EQ, SOCK_TYPE_MASK, sock_type))
    return f


def load_child_filters() -> None:
    """Install both filters in the calling (already non-root, no_new_privs) process."""
    broker_filter().load()
    child_filter().load()
