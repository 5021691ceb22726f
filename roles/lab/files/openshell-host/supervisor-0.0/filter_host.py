"""The agent seccomp filters of the OpenShell 0.0.116 supervisor stand-in, re-created with libseccomp.

Source: NVIDIA/OpenShell crates/openshell-supervisor-process/src/sandbox/linux/seccomp.rs @v0.0.111 (the newest tag
in the snapshot; "seccomp.rs:LINE" below). 0.0.116 is assumed to carry the same list (unverified, canary checks it).
Two filters, applied in this order (seccomp.rs:175-182 apply_runtime_filters): one that answers clone3 with ENOSYS
so glibc falls back to clone (seccomp.rs:162-166), then the main filter - default ALLOW, EPERM on a match
(seccomp.rs:137-149, with PR_SET_NO_NEW_PRIVS seccomp.rs:123-135):
- socket() of AF_PACKET, AF_BLUETOOTH, AF_VSOCK (seccomp.rs:188-203; AF_INET/AF_INET6 only in Block mode, and
  gateway-managed sandboxes are Proxy mode, seccomp.rs:195-198);
- socket(AF_NETLINK, *, protocol != 0): every netlink protocol except NETLINK_ROUTE (seccomp.rs:215, 310-336; since
  v0.0.55, #1568);
- unconditionally memfd_create, ptrace, bpf, process_vm_readv/writev, pidfd_open/getfd/send_signal,
  io_uring_setup, mount, fsopen, fsconfig, fsmount, fspick, move_mount, open_tree, setns, umount2, pivot_root,
  userfaultfd, perf_event_open (seccomp.rs:221-255);
- execveat with AT_EMPTY_PATH, unshare and clone with CLONE_NEWUSER (seccomp.rs:259-281), seccomp(SET_MODE_FILTER)
  (seccomp.rs:284-293).
Every condition is a Dword compare (the low 32 bits, as seccompiler emits it; see the lab's upstream_filter.py), so
each rule masks with 0xffffffff. Not in the list (so open on 0.0.116): socket(AF_INET, SOCK_PACKET) (relies on the
agent lacking CAP_NET_RAW), io_uring_enter/register, keyctl/add_key/request_key, personality (openshell.md 6(d)).
"""
from __future__ import annotations

import errno

import seccomp

AF_NETLINK, AF_PACKET, AF_BLUETOOTH, AF_VSOCK = 16, 17, 31, 40
CLONE_NEWUSER = 0x10000000
AT_EMPTY_PATH = 0x1000
SECCOMP_SET_MODE_FILTER = 1
LOW32 = 0xFFFFFFFF
UNCONDITIONAL = ("memfd_create", "ptrace", "bpf", "process_vm_readv", "process_vm_writev", "pidfd_open", "pidfd_getfd",
                 "pidfd_send_signal", "io_uring_setup", "mount", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount",
                 "open_tree", "setns", "umount2", "pivot_root", "userfaultfd", "perf_event_open")


def _eq(index, value):
    return seccomp.Arg(index, seccomp.MASKED_EQ, LOW32, value)


def _flag(index, bit):
    return seccomp.Arg(index, seccomp.MASKED_EQ, bit, bit)


def clone3_filter() -> seccomp.SyscallFilter:
    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    f.set_attr(seccomp.Attr.ACT_BADARCH, seccomp.KILL_PROCESS)
    f.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    return f


def main_filter() -> seccomp.SyscallFilter:
    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    f.set_attr(seccomp.Attr.ACT_BADARCH, seccomp.KILL_PROCESS)
    deny = seccomp.ERRNO(errno.EPERM)
    for family in (AF_PACKET, AF_BLUETOOTH, AF_VSOCK):
        f.add_rule(deny, "socket", _eq(0, family))
    # arg0 == AF_NETLINK AND arg2 != 0 (seccomp.rs:320-336). libseccomp has no masked "not equal", so the protocol is
    # compared on 64 bits: a protocol with only high bits set (which the kernel reads as 0, NETLINK_ROUTE) is refused
    # here and allowed upstream - the stand-in is stricter in that one corner.
    f.add_rule(deny, "socket", _eq(0, AF_NETLINK), seccomp.Arg(2, seccomp.NE, 0))
    for name in UNCONDITIONAL:
        f.add_rule(deny, name)
    f.add_rule(deny, "execveat", _flag(4, AT_EMPTY_PATH))
    f.add_rule(deny, "unshare", _flag(0, CLONE_NEWUSER))
    f.add_rule(deny, "clone", _flag(0, CLONE_NEWUSER))
    f.add_rule(deny, "seccomp", _eq(0, SECCOMP_SET_MODE_FILTER))
    return f


def load_agent_filters() -> None:
    """Install both filters in the calling process (after the privilege drop; NoNewPrivs is set by libseccomp)."""
    clone3_filter().load()
    main_filter().load()
