# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)
"""Compile the agent seccomp policy (the paper's L2 fix, hardened) into classic BPF.

Hardened layout (syscalls default-ALLOW with targeted denials; socket families an ALLOW-list)::

    ld arch; jeq AUDIT_ARCH_<arch> else <mismatched_arch_action>
    ld nr; [x86_64] jge 0x40000000 -> x32 (nr == -1 allowed, like libseccomp; anything else killed)
    binary search (jge) over the syscall numbers that have a rule; every other number ends in ALLOW
    socket/socketpair: ld args[0] low word; ALLOW only the allowed families; AF_INET + SOCK_PACKET refused;
                       AF_NETLINK only for the allowed protocols (args[2] low word)
    clone: args[0] low word & CLONE_NEW* -> refused;  unshare: the same plus CLONE_NEWTIME;  clone3 -> ENOSYS
    personality: only the personas Docker's default profile allows
    the deny groups (namespaces, keyring, process access, kernel interfaces, mounts, modules, system) -> ERRNO

Every argument compare loads the low 32-bit word of the argument: the kernel reads these arguments as int
(socket) or through lower_32_bits() (clone), so the high word is garbage the kernel ignores - and so must we.
"""

from __future__ import annotations

import errno as _errno

from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _seccomp_tables as T
from ansible_collections.agentsec.nemoclaw.plugins.module_utils._bpf import Assembler, disassemble
from ansible_collections.agentsec.nemoclaw.plugins.module_utils.seccomp_launcher import (
    AUDIT_ARCH,
    SECCOMP_RET_ACTION_FULL,
    SECCOMP_RET_ALLOW,
    SECCOMP_RET_ERRNO,
    SECCOMP_RET_KILL_PROCESS,
    SECCOMP_RET_KILL_THREAD,
    SECCOMP_RET_TRAP,
    encode,
    interpret,
    seccomp_data,
)

ARCHES = ("aarch64", "x86_64")
MISMATCH_ACTIONS = {"kill_process": SECCOMP_RET_KILL_PROCESS, "kill_thread": SECCOMP_RET_KILL_THREAD,
                    "trap": SECCOMP_RET_TRAP}
DEFAULT_ALLOW_FAMILIES = ("AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK")
DEFAULT_NETLINK_PROTOCOLS = ("NETLINK_ROUTE",)
IO_URING = ("io_uring_setup", "io_uring_enter", "io_uring_register")
# Unconditional denials, by group. The reason for each call (and what Docker's default profile and OpenShell do)
# is in docs/seccomp.md, "What the hardened filter refuses". Names missing from an arch's table are skipped there.
DENY_GROUPS = {
    "namespaces": ("setns",),  # plus clone/unshare with CLONE_NEW* and clone3 -> ENOSYS (conditional rules)
    "keyring": ("add_key", "keyctl", "request_key"),
    "process_access": ("ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "process_madvise"),
    "kernel_interfaces": ("bpf", "perf_event_open", "userfaultfd"),
    "mounts": ("mount", "umount2", "pivot_root", "chroot", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount",
               "open_tree", "mount_setattr"),
    "modules": ("init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load"),
    "system": ("reboot", "swapon", "swapoff", "acct", "settimeofday", "clock_settime", "sethostname",
               "setdomainname", "syslog", "quotactl", "vhangup", "open_by_handle_at", "lookup_dcookie", "nfsservctl",
               "iopl", "ioperm", "uselib", "_sysctl"),
    "personality": (),  # personality() outside T.PERSONALITY_ALLOWED (conditional rule)
}
ALL_GROUPS = tuple(DENY_GROUPS)


class PolicyError(ValueError):
    """Bad policy input; the message names the offending value."""


class Compiled:
    """Result of a compilation: program, listing, raw bytes and a JSON-able rule summary."""

    def __init__(self, arch, profile, program, comments, rules, special=()):
        self.arch, self.profile, self.program, self.rules = arch, profile, program, rules
        self.special = frozenset(special)  # syscall names that have a rule (the rest take the common path)
        self.listing = disassemble(program, comments)
        self.raw = encode(program)

    def run(self, nr, args=(), arch_token=None):
        return interpret(self.program, seccomp_data(nr, AUDIT_ARCH[self.arch] if arch_token is None else arch_token, args))

    def path_length(self, syscall):
        return self.run(T.SYSCALLS[self.arch][syscall])[1]

    def summary_text(self):
        return "\n".join([f"arch: {self.arch}", f"profile: {self.profile}"] + [f"- {r}" for r in self.rules["text"]]) + "\n"


def resolve_errno(value):
    if isinstance(value, str) and not value.strip().isdigit():
        num = getattr(_errno, value.strip().upper(), None)
        if not isinstance(num, int):
            raise PolicyError(f"unknown errno name {value!r}")
    else:
        try:
            num = int(value)
        except (TypeError, ValueError) as exc:
            raise PolicyError(f"errno {value!r} is not a name or number") from exc
    if not 1 <= num <= 4095:
        raise PolicyError(f"errno {value!r} is out of range (1..4095)")
    return num


def _resolve_list(values, table, what):
    out = []
    for value in values:
        try:
            num = T.resolve(value, table, what)
        except ValueError as exc:
            raise PolicyError(str(exc)) from exc
        if num not in out:
            out.append(num)
    return out


def _groups(values):
    groups = []
    for value in values:
        name = str(value).strip().lower()
        if name not in DENY_GROUPS:
            raise PolicyError(f"unknown deny group {value!r}; expected some of {', '.join(ALL_GROUPS)}")
        if name not in groups:
            groups.append(name)
    return groups


def socket_families(allow_families, deny_families, allow_netlink_protocols):
    """(allowed families, allowed netlink protocols) from the options; see docs/seccomp.md for the 0.1 compatibility."""
    allowed = _resolve_list(allow_families, T.ADDRESS_FAMILIES, "address family")
    denied = _resolve_list(deny_families, T.ADDRESS_FAMILIES, "address family")
    explicit = allow_netlink_protocols is not None
    protocols = _resolve_list(DEFAULT_NETLINK_PROTOCOLS if not explicit else allow_netlink_protocols,
                              T.NETLINK_PROTOCOLS, "netlink protocol")
    netlink = T.ADDRESS_FAMILIES["AF_NETLINK"]
    if netlink in denied:
        # 0.1 meaning of deny_families: AF_NETLINK refused except the protocols listed explicitly
        denied.remove(netlink)
        protocols = protocols if explicit else []
        if protocols and netlink not in allowed:
            allowed.append(netlink)
    allowed = [f for f in allowed if f not in denied]
    if netlink not in allowed:
        if explicit and protocols:
            raise PolicyError("allow_netlink_protocols lists protocols but AF_NETLINK is not in allow_families")
        protocols = []
    elif not protocols:
        allowed.remove(netlink)
    return allowed, protocols


def compile_policy(arch, profile="hardened", deny_families=(), allow_netlink_protocols=None, errno="EPERM",
                   mismatched_arch_action="kill_process", deny_io_uring=True, allow_families=DEFAULT_ALLOW_FAMILIES,
                   deny_groups=ALL_GROUPS):
    if arch not in ARCHES:
        raise PolicyError(f"unknown arch {arch!r}; expected one of {', '.join(ARCHES)}")
    err = resolve_errno(errno)
    if profile == "paper":
        if arch != "aarch64":
            raise PolicyError(f"profile 'paper' is the paper's aarch64 listing; arch {arch!r} is not aarch64 "
                              "(use profile 'paper_translated' to compare on x86_64)")
        return _paper(arch, T.SYSCALLS[arch]["socket"], err, "paper")
    if profile == "paper_translated":
        return _paper(arch, T.SYSCALLS[arch]["socket"], err, profile)
    if profile != "hardened":
        raise PolicyError(f"unknown profile {profile!r}; expected hardened, paper or paper_translated")
    if mismatched_arch_action not in MISMATCH_ACTIONS:
        raise PolicyError(f"unknown mismatched_arch_action {mismatched_arch_action!r}; expected one of {', '.join(MISMATCH_ACTIONS)}")
    families, protocols = socket_families(allow_families, deny_families, allow_netlink_protocols)
    return _hardened(arch, families, protocols, err, MISMATCH_ACTIONS[mismatched_arch_action], bool(deny_io_uring),
                     _groups(deny_groups))


def _paper(arch, socket_nr, err, profile):
    asm = Assembler()
    asm.load(T.OFF_NR, "Load syscall number")
    asm.jump("JEQ", socket_nr, None, "allow", "If socket(), continue; else ALLOW")
    asm.load(T.arg_low(0), "Load args[0] (address family)")
    asm.jump("JEQ", 17, "deny", None, "If AF_PACKET, DENY")
    asm.jump("JEQ", 16, "deny", None, "If AF_NETLINK, DENY")
    asm.label("allow")
    asm.ret(SECCOMP_RET_ALLOW, "ALLOW")
    asm.label("deny")
    asm.ret(SECCOMP_RET_ERRNO | err, f"ERRNO({_errno.errorcode.get(err, err)})")
    program, comments = asm.assemble()
    rules = {"default": "allow", "arch_check": False, "x32_guard": False, "socket_deny_families": ["AF_PACKET", "AF_NETLINK"],
             "errno": err, "text": [f"socket(AF_PACKET|AF_NETLINK) -> ERRNO({err}) (socket = {socket_nr})",
                                    "no architecture check, no x32 guard, no SOCK_PACKET or io_uring rule", "everything else: ALLOW"]}
    return Compiled(arch, profile, program, comments, rules, {"socket"})


def _handlers(arch, io_uring, groups):
    """Syscall name -> handler label for everything that has a rule on this arch."""
    nrs = T.SYSCALLS[arch]
    out = {"socket": "socket", "socketpair": "socket"}
    if io_uring:
        out.update(dict.fromkeys(IO_URING, "deny"))
    for group in groups:
        out.update({name: "deny" for name in DENY_GROUPS[group] if name in nrs})
    if "namespaces" in groups:
        out.update({"clone": "clone", "unshare": "unshare", "clone3": "enosys"})
    if "personality" in groups:
        out["personality"] = "personality"
    return out


def _segments(arch, handlers):
    """Piecewise-constant map of syscall numbers to labels: [(first nr, label), ...] from 0; gaps are 'allow'."""
    by_nr = {T.SYSCALLS[arch][name]: label for name, label in handlers.items()}
    segs, nxt = [], 0
    for nr in sorted(by_nr):
        if nr > nxt:
            segs.append((nxt, "allow"))
        segs.append((nr, by_nr[nr]))
        nxt = nr + 1
    segs.append((nxt, "allow"))
    return _merge(segs)


def _merge(segs):
    """Drop zero-width segments (same start: the later wins) and join neighbours with the same label."""
    out = []
    for start, label in segs:
        if out and out[-1][0] == start:
            out[-1] = (start, label)
        elif out and out[-1][1] == label:
            continue
        else:
            out.append((start, label))
    return out


def _names_at(arch):
    return {nr: name for name, nr in T.SYSCALLS[arch].items()}


def _emit_tree(asm, segs, names, counter, here=None):
    """Balanced binary search over the segments (pre-order, forward jumps only); leaves are handler labels."""
    if len(segs) == 1:
        return segs[0][1]
    mid = len(segs) // 2
    left, right = segs[:mid], segs[mid:]
    if here is not None:
        asm.label(here)
    counter[0] += 1
    lbl_left = left[0][1] if len(left) == 1 else f"t{counter[0]}l"
    lbl_right = right[0][1] if len(right) == 1 else f"t{counter[0]}r"
    k = right[0][0]
    asm.jump("JGE", k, lbl_right, lbl_left, f"nr >= {k}{' (' + names[k] + ')' if k in names else ''}?")
    if len(left) > 1:
        _emit_tree(asm, left, names, counter, lbl_left)
    if len(right) > 1:
        _emit_tree(asm, right, names, counter, lbl_right)
    return None


def _emit_socket(asm, families, protocols, deny):
    af_inet, af_netlink = T.ADDRESS_FAMILIES["AF_INET"], T.ADDRESS_FAMILIES["AF_NETLINK"]
    asm.label("socket")
    asm.load(T.arg_low(0), "load args[0] low word (family is an int: the kernel ignores the high word, so do we)")
    for i, fam in enumerate(families):
        target = {af_inet: "inet", af_netlink: "netlink"}.get(fam, "allow")
        last = i == len(families) - 1
        asm.jump("JEQ", fam, target, "deny" if last else None, f"{T.family_name(fam)}? (allow-list)")
    if not families:
        asm.ret(deny, "no family allowed: every socket()/socketpair() refused")
    if af_inet in families:
        asm.label("inet")
        asm.load(T.arg_low(1), "load args[1] low word (type)")
        asm.and_(T.SOCK_TYPE_MASK, "type & SOCK_TYPE_MASK (drop SOCK_NONBLOCK/SOCK_CLOEXEC)")
        asm.jump("JEQ", T.SOCKET_TYPES["SOCK_PACKET"], "deny", "allow", "AF_INET + SOCK_PACKET is AF_PACKET in the kernel")
    if af_netlink in families:
        asm.label("netlink")
        asm.load(T.arg_low(2), "load args[2] low word (netlink protocol)")
        for i, proto in enumerate(protocols):
            last = i == len(protocols) - 1
            asm.jump("JEQ", proto, "allow", "deny" if last else None, f"{T.netlink_name(proto)} allowed")


def _emit_conditionals(asm, labels):
    if "clone" in labels:
        asm.label("clone")
        asm.load(T.arg_low(0), "load args[0] low word (clone flags; kernel: lower_32_bits)")
        asm.jump("JSET", T.CLONE_NAMESPACE_MASK, "deny", "allow", "any CLONE_NEW* flag? refuse (threads pass)")
    if "unshare" in labels:
        asm.label("unshare")
        asm.load(T.arg_low(0), "load args[0] low word (unshare flags)")
        asm.jump("JSET", T.UNSHARE_NAMESPACE_MASK, "deny", "allow", "any CLONE_NEW* flag (incl. NEWTIME)? refuse")
    if "personality" in labels:
        asm.label("personality")
        asm.load(T.arg_low(0), "load args[0] (persona, an unsigned int)")
        for i, persona in enumerate(T.PERSONALITY_ALLOWED):
            last = i == len(T.PERSONALITY_ALLOWED) - 1
            asm.jump("JEQ", persona, "allow", "deny" if last else None, f"persona 0x{persona:x} allowed")


def _hardened(arch, families, protocols, err, mismatch, io_uring, groups):
    deny = SECCOMP_RET_ERRNO | err
    handlers = _handlers(arch, io_uring, groups)
    labels = set(handlers.values())
    asm = Assembler()
    asm.load(T.OFF_ARCH, "load arch")
    asm.jump("JEQ", AUDIT_ARCH[arch], None, "badarch", f"AUDIT_ARCH_{arch.upper()}? else mismatched-arch action")
    asm.load(T.OFF_NR, "load syscall number")
    if arch == "x86_64":
        asm.jump("JGE", T.X32_SYSCALL_BIT, "x32", None, "x32 ABI bit set?")
    _emit_tree(asm, _segments(arch, handlers), _names_at(arch), [0])
    _emit_socket(asm, families, protocols, deny)
    _emit_conditionals(asm, labels)
    if arch == "x86_64":
        asm.label("x32")
        asm.jump("JEQ", 0xFFFFFFFF, "allow", "badarch", "nr == -1 (tracer skip) allowed, x32 killed")
    asm.label("allow")
    asm.ret(SECCOMP_RET_ALLOW, "ALLOW")
    asm.label("deny")
    asm.ret(deny, f"ERRNO({_errno.errorcode.get(err, err)})")
    if "enosys" in labels:
        asm.label("enosys")
        asm.ret(SECCOMP_RET_ERRNO | _errno.ENOSYS, "ERRNO(ENOSYS): clone3's flags sit behind a pointer; glibc falls back to clone")
    asm.label("badarch")
    asm.ret(mismatch, "mismatched arch / x32")
    program, comments = asm.assemble()
    return Compiled(arch, "hardened", program, comments, _rules(arch, families, protocols, err, mismatch, io_uring, groups, handlers),
                    handlers)


def _rules(arch, families, protocols, err, mismatch, io_uring, groups, handlers):
    fam_names = [T.family_name(f) for f in families]
    proto_names = [T.netlink_name(p) for p in protocols]
    denied = {g: [n for n in DENY_GROUPS[g] if n in T.SYSCALLS[arch]] for g in groups}
    text = [f"arch != {arch} -> {_action(mismatch)}"]
    if arch == "x86_64":
        text.append("x32 syscall numbers (nr >= 0x40000000, except -1) -> " + _action(mismatch))
    text.append(f"socket()/socketpair(): only families (low 32 bits) {fam_names} -> ALLOW, every other family -> ERRNO({err})")
    if "AF_NETLINK" in fam_names:
        text.append(f"  AF_NETLINK only with protocol (low 32 bits) in {proto_names}")
    if "AF_INET" in fam_names:
        text.append(f"  socket(AF_INET, SOCK_PACKET) -> ERRNO({err})")
    if "namespaces" in groups:
        text.append(f"clone() with any CLONE_NEW* flag, unshare() with any CLONE_NEW* flag (incl. NEWTIME), setns() -> ERRNO({err})")
        text.append("clone3() -> ERRNO(ENOSYS) (glibc falls back to clone(), whose flags the filter can read)")
    if "personality" in groups:
        text.append(f"personality() other than {', '.join(hex(p) for p in T.PERSONALITY_ALLOWED)} -> ERRNO({err})")
    if io_uring:
        text.append(f"io_uring_setup/enter/register -> ERRNO({err})")
    for group, names in denied.items():
        if names:
            text.append(f"{group}: {', '.join(names)} -> ERRNO({err})")
    text.append("everything else: ALLOW")
    return {"default": "allow", "arch_check": True, "mismatched_arch_action": _action(mismatch),
            "x32_guard": arch == "x86_64", "socket_allow_families": fam_names, "allow_netlink_protocols": proto_names,
            "deny_sock_packet": "AF_INET" in fam_names, "deny_io_uring": io_uring, "deny_groups": denied,
            "namespaces": "namespaces" in groups, "errno": err, "special_syscalls": sorted(handlers), "text": text}


def _action(ret):
    return {SECCOMP_RET_KILL_PROCESS: "KILL_PROCESS", SECCOMP_RET_KILL_THREAD: "KILL_THREAD",
            SECCOMP_RET_TRAP: "TRAP"}.get(ret & SECCOMP_RET_ACTION_FULL, hex(ret))
