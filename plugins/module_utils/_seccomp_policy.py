# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)
"""Compile a socket-family seccomp policy (the paper's L2 fix, hardened) into classic BPF.

Hardened layout (default-ALLOW deny-list, like OpenShell's own filter)::

    ld arch; jeq AUDIT_ARCH_<arch> else <mismatched_arch_action>
    ld nr; [x86_64] jge 0x40000000 -> x32 (nr == -1 allowed, like libseccomp; anything else killed)
    jge <lowest interesting nr> else ALLOW            (most syscalls stop here)
    jgt <socketpair> -> high; jeq socket -> SOCKET; jeq socketpair -> SOCKET; ALLOW
    high: jge io_uring_setup else ALLOW; jgt io_uring_register -> ALLOW else DENY(io_uring)
    SOCKET: ld args[0] low word only (the kernel reads an int), deny families,
            netlink only for allowed protocols, AF_INET + (type & 0xf) == SOCK_PACKET denied
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
DEFAULT_DENY = ("AF_PACKET", "AF_NETLINK")


class PolicyError(ValueError):
    """Bad policy input; the message names the offending value."""


class Compiled:
    """Result of a compilation: program, listing, raw bytes and a JSON-able rule summary."""

    def __init__(self, arch, profile, program, comments, rules):
        self.arch, self.profile, self.program, self.rules = arch, profile, program, rules
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


def compile_policy(arch, profile="hardened", deny_families=DEFAULT_DENY, allow_netlink_protocols=(), errno="EPERM",
                   mismatched_arch_action="kill_process", deny_io_uring=True):
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
    families = _resolve_list(deny_families, T.ADDRESS_FAMILIES, "address family")
    protocols = _resolve_list(allow_netlink_protocols, T.NETLINK_PROTOCOLS, "netlink protocol")
    if protocols and T.ADDRESS_FAMILIES["AF_NETLINK"] not in families:
        raise PolicyError("allow_netlink_protocols needs AF_NETLINK in deny_families (otherwise all netlink is allowed)")
    return _hardened(arch, families, protocols, err, MISMATCH_ACTIONS[mismatched_arch_action], deny_io_uring)


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
    return Compiled(arch, profile, program, comments, rules)


def _hardened(arch, families, protocols, err, mismatch, deny_io_uring):
    nrs = T.SYSCALLS[arch]
    sock, pair = nrs["socket"], nrs["socketpair"]
    ur_lo, ur_hi = nrs["io_uring_setup"], nrs["io_uring_register"]
    deny = SECCOMP_RET_ERRNO | err
    af_inet, af_netlink = T.ADDRESS_FAMILIES["AF_INET"], T.ADDRESS_FAMILIES["AF_NETLINK"]
    asm = Assembler()
    asm.load(T.OFF_ARCH, "load arch")
    asm.jump("JEQ", AUDIT_ARCH[arch], None, "badarch", f"AUDIT_ARCH_{arch.upper()}? else mismatched-arch action")
    asm.load(T.OFF_NR, "load syscall number")
    if arch == "x86_64":
        asm.jump("JGE", T.X32_SYSCALL_BIT, "x32", None, "x32 ABI bit set?")
    lowest = min(sock, pair, ur_lo) if deny_io_uring else min(sock, pair)
    asm.jump("JGE", lowest, None, "allow", f"nr < {lowest}: ALLOW (common path)")
    asm.jump("JGT", pair, "high" if deny_io_uring else "allow", None, f"nr > socketpair({pair})?")
    asm.jump("JEQ", sock, "socket", None, f"socket({sock})?")
    asm.jump("JEQ", pair, "socket", "allow", f"socketpair({pair})? same family rules")
    if deny_io_uring:
        asm.label("high")
        asm.jump("JGE", ur_lo, None, "allow", f"io_uring_setup({ur_lo})..io_uring_register({ur_hi})?")
        asm.jump("JGT", ur_hi, "allow", "deny", "io_uring_*: DENY (IORING_OP_SOCKET makes sockets without socket())")
    asm.label("socket")
    asm.load(T.arg_low(0), "load args[0] low word (family is an int: high word ignored by the kernel)")
    for fam in families:
        target = "netlink" if fam == af_netlink and protocols else "deny"
        asm.jump("JEQ", fam, target, None, f"{T.family_name(fam)}?")
    asm.jump("JEQ", af_inet, None, "allow", "AF_INET? check for SOCK_PACKET")
    asm.load(T.arg_low(1), "load args[1] low word (type)")
    asm.and_(T.SOCK_TYPE_MASK, "type & SOCK_TYPE_MASK (drop SOCK_NONBLOCK/SOCK_CLOEXEC)")
    asm.jump("JEQ", T.SOCKET_TYPES["SOCK_PACKET"], "deny", "allow", "AF_INET + SOCK_PACKET is AF_PACKET in the kernel")
    if protocols:
        asm.label("netlink")
        asm.load(T.arg_low(2), "load args[2] low word (netlink protocol)")
        for i, proto in enumerate(protocols):
            last = i == len(protocols) - 1
            asm.jump("JEQ", proto, "allow", "deny" if last else None, f"{T.netlink_name(proto)} allowed")
    if arch == "x86_64":
        asm.label("x32")
        asm.jump("JEQ", 0xFFFFFFFF, "allow", "badarch", "nr == -1 (tracer skip) allowed, x32 killed")
    asm.label("allow")
    asm.ret(SECCOMP_RET_ALLOW, "ALLOW")
    asm.label("deny")
    asm.ret(deny, f"ERRNO({_errno.errorcode.get(err, err)})")
    asm.label("badarch")
    asm.ret(mismatch, "mismatched arch / x32")
    program, comments = asm.assemble()
    text = [f"arch != {arch} -> {_action(mismatch)}"]
    if arch == "x86_64":
        text.append("x32 syscall numbers (nr >= 0x40000000, except -1) -> " + _action(mismatch))
    fam_names = [T.family_name(f) for f in families]
    text.append(f"socket()/socketpair() with family (low 32 bits) in {fam_names} -> ERRNO({err})")
    if protocols:
        text.append(f"  except AF_NETLINK with protocol in {[T.netlink_name(p) for p in protocols]} -> ALLOW")
    text.append(f"socket(AF_INET, SOCK_PACKET) -> ERRNO({err})")
    if deny_io_uring:
        text.append(f"io_uring_setup/enter/register -> ERRNO({err})")
    text.append("everything else: ALLOW")
    rules = {"default": "allow", "arch_check": True, "mismatched_arch_action": _action(mismatch),
             "x32_guard": arch == "x86_64", "socket_deny_families": fam_names,
             "allow_netlink_protocols": [T.netlink_name(p) for p in protocols], "deny_sock_packet": True,
             "deny_io_uring": bool(deny_io_uring), "errno": err, "text": text}
    return Compiled(arch, "hardened", program, comments, rules)


def _action(ret):
    return {SECCOMP_RET_KILL_PROCESS: "KILL_PROCESS", SECCOMP_RET_KILL_THREAD: "KILL_THREAD",
            SECCOMP_RET_TRAP: "TRAP"}.get(ret & SECCOMP_RET_ACTION_FULL, hex(ret))
