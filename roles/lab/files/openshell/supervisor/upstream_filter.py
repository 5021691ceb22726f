"""The lab's re-creation of the seccomp filter OpenShell v0.0.26 installs for agent children in proxy network mode.

Source: NVIDIA/OpenShell crates/openshell-sandbox/src/sandbox/linux/seccomp.rs @v0.0.26 (cited below as
"seccomp.rs:LINE"), built with seccompiler 0.5.0 (Cargo.lock @v0.0.26: `name = "seccompiler" version = "0.5.0"`;
rust-vmm/seccompiler src/... @v0.5.0 cited as "seccompiler FILE:LINE"). Our own code, written with libseccomp's
Python bindings (Debian python3-seccomp), which the lab image and this host have.

How the upstream filter compares arguments: every condition is `SeccompCmpArgLen::Dword` (seccomp.rs:102, 128, 147),
and seccompiler emits a Dword compare as ONE 32-bit load of the argument's low half - no load of the high half
(seccompiler src/backend/condition.rs:93-110 `into_eq_bpf`, :244-267 `into_masked_eq_bpf`, the `Dword => vec![]`
arms; the low half is at the argument's own offset, :71-79 `get_data_offsets`). So a family with high bits set
(0x1_00000028) is refused like AF_VSOCK: there is no 64-bit-compare gap. libseccomp compares all 64 bits, so every
rule below masks with 0xffffffff (MASKED_EQ) to get the same low-32-bit compare.

`build_upstream_filter(UPSTREAM_GAPS)` is v0.0.26 exactly. Each gap switch reproduces one defect of v0.0.26;
leaving a gap out closes it the way a later upstream version did (or, where marked, the way no upstream version
does - a lab deviation):

- ``netlink_open``: AF_NETLINK is blocked only when !allow_inet (seccomp.rs:53-58), i.e. never in proxy mode.
  Closed: AF_NETLINK refused, as v0.0.33 does (seccomp.rs:115-119 @v0.0.33, #869).
- ``clone_newuser``: only unshare() is checked for CLONE_NEWUSER (seccomp.rs:91-97); clone() is not.
  Closed: clone() with CLONE_NEWUSER refused, as v0.0.29 does (seccomp.rs:185-191 @v0.0.29, #819).
- ``clone3_open``: clone3() has no rule at all (its flags sit behind a pointer). Closed: clone3() -> ENOSYS, as
  v0.0.29's separate clone3 filter does (seccomp.rs:76-93 @v0.0.29); here one filter with an ENOSYS rule.
- ``missing_blocks``: process_vm_writev, pidfd_open/getfd/send_signal, the new mount API, setns, umount2,
  pivot_root, userfaultfd and perf_event_open are not blocked (the list is seccomp.rs:69-79). Closed: blocked, as
  v0.0.29 does (seccomp.rs:138-165 @v0.0.29).
- ``no_sock_packet``: there is no rule for socket(AF_INET, SOCK_PACKET) (only families, seccomp.rs:52-63), which
  the kernel turns into an AF_PACKET socket. Closed: refused - LAB DEVIATION, no upstream version has that rule
  (upstream relies on the agent lacking CAP_NET_RAW).

Other deviations of the re-creation from upstream, independent of the gaps (unverified beyond reading the code):
- x32: a seccompiler filter has no x32 guard (seccompiler src/backend/bpf.rs:73-79 checks only the arch token), so
  on a kernel with x32 enabled an x32 syscall number matches no rule and is allowed. libseccomp's x86_64 filter
  kills x32 numbers instead; the lab is stricter there (most kernels, this one included, have x32 disabled).
- NetworkMode::Allow skips the filter entirely (seccomp.rs:29-31); this module builds the proxy-mode filter only.
"""
from __future__ import annotations

import errno

import seccomp

UPSTREAM_GAPS = frozenset({"netlink_open", "clone_newuser", "clone3_open", "missing_blocks", "no_sock_packet"})
# libc constants (linux/socket.h, linux/sched.h, linux/fcntl.h, linux/seccomp.h)
AF_INET, AF_NETLINK, AF_PACKET, AF_BLUETOOTH, AF_VSOCK = 2, 16, 17, 31, 40
SOCK_PACKET, SOCK_TYPE_MASK = 10, 0xF
CLONE_NEWUSER = 0x10000000
AT_EMPTY_PATH = 0x1000
SECCOMP_SET_MODE_FILTER = 1
LOW32 = 0xFFFFFFFF
# seccomp.rs:69-79 @v0.0.26: blocked unconditionally ("empty rule vec = unconditional EPERM", :66)
UNCONDITIONAL = ("memfd_create", "ptrace", "bpf", "process_vm_readv", "io_uring_setup", "mount")
# seccomp.rs:138-165 @v0.0.29: what v0.0.29 (#819) added to that list
ADDED_IN_V0_0_29 = ("process_vm_writev", "pidfd_open", "pidfd_getfd", "pidfd_send_signal", "fsopen", "fsconfig",
                    "fsmount", "fspick", "move_mount", "open_tree", "setns", "umount2", "pivot_root", "userfaultfd",
                    "perf_event_open")


def _dword_eq(index, value):
    """seccompiler `SeccompCondition::new(i, Dword, Eq, v)`: the low 32 bits equal v (condition.rs:93-110)."""
    return seccomp.Arg(index, seccomp.MASKED_EQ, LOW32, value)


def _dword_masked_eq(index, mask):
    """seccompiler `Dword, MaskedEq(m), m`: (low 32 bits & m) == m (condition.rs:244-267; seccomp.rs:140-156)."""
    return seccomp.Arg(index, seccomp.MASKED_EQ, mask, mask)


def build_upstream_filter(gaps: set[str]) -> seccomp.SyscallFilter:
    """The v0.0.26 proxy-mode agent filter with the named gaps open (see the module docstring)."""
    unknown = set(gaps) - UPSTREAM_GAPS
    if unknown:
        raise ValueError(f"unknown gap(s) {sorted(unknown)}; known: {sorted(UPSTREAM_GAPS)}")
    # SeccompFilter::new(rules, mismatch_action = Allow, match_action = Errno(EPERM), arch): seccomp.rs:114-119;
    # argument order of seccompiler 0.5: src/backend/filter.rs:85-89
    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    # a foreign arch token is killed: seccompiler src/backend/bpf.rs:73-79 (SECCOMP_RET_KILL_PROCESS)
    f.set_attr(seccomp.Attr.ACT_BADARCH, seccomp.KILL_PROCESS)
    deny = seccomp.ERRNO(errno.EPERM)
    # socket domain blocks, proxy mode (allow_inet = true, seccomp.rs:33): seccomp.rs:53-63, rule :126-133
    families = [AF_PACKET, AF_BLUETOOTH, AF_VSOCK] + ([] if "netlink_open" in gaps else [AF_NETLINK])
    for family in families:
        f.add_rule(deny, "socket", _dword_eq(0, family))
    if "no_sock_packet" not in gaps:  # lab deviation (see docstring): AF_INET + SOCK_PACKET
        f.add_rule(deny, "socket", _dword_eq(0, AF_INET), seccomp.Arg(1, seccomp.MASKED_EQ, SOCK_TYPE_MASK, SOCK_PACKET))
    for name in UNCONDITIONAL + (() if "missing_blocks" in gaps else ADDED_IN_V0_0_29):
        f.add_rule(deny, name)
    # execveat + AT_EMPTY_PATH (flags are args[4]): seccomp.rs:84-89
    f.add_rule(deny, "execveat", _dword_masked_eq(4, AT_EMPTY_PATH))
    # unshare + CLONE_NEWUSER: seccomp.rs:92-97
    f.add_rule(deny, "unshare", _dword_masked_eq(0, CLONE_NEWUSER))
    if "clone_newuser" not in gaps:  # v0.0.29: seccomp.rs:185-191 @v0.0.29
        f.add_rule(deny, "clone", _dword_masked_eq(0, CLONE_NEWUSER))
    if "clone3_open" not in gaps:  # v0.0.29: seccomp.rs:76-93 @v0.0.29 (Errno(ENOSYS))
        f.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    # seccomp(SECCOMP_SET_MODE_FILTER): seccomp.rs:99-108
    f.add_rule(deny, "seccomp", _dword_eq(0, SECCOMP_SET_MODE_FILTER))
    return f
