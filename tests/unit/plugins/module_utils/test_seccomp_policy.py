"""The compiler: the paper's golden program, the hardened verdicts per arch, the syscall tables against the kernel
headers and libseccomp, and a differential check against libseccomp (Debian python3-seccomp, system interpreter)
over an edge-value corpus."""
from __future__ import annotations

import errno
import itertools
import json
import os
import pathlib
import re
import subprocess
import textwrap

import pytest

from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _seccomp_policy as P
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _seccomp_tables as T
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import seccomp_launcher as L

ALLOW, KILL = L.SECCOMP_RET_ALLOW, L.SECCOMP_RET_KILL_PROCESS
EPERM = L.SECCOMP_RET_ERRNO | errno.EPERM
ENOSYS = L.SECCOMP_RET_ERRNO | errno.ENOSYS
SYSTEM_PYTHON = "/usr/bin/python3"

# The paper's listing (section 6.2), transcribed instruction by instruction.
PAPER_AARCH64 = [
    (0x20, 0, 0, 0),            # [0] BPF_LD_W_ABS offset=0
    (0x15, 0, 3, 198),          # [1] BPF_JMP_JEQ k=198 jt=0 jf=3
    (0x20, 0, 0, 16),           # [2] BPF_LD_W_ABS offset=16
    (0x15, 2, 0, 17),           # [3] BPF_JMP_JEQ k=17 jt=2 jf=0
    (0x15, 1, 0, 16),           # [4] BPF_JMP_JEQ k=16 jt=1 jf=0
    (0x06, 0, 0, 0x7FFF0000),   # [5] BPF_RET k=0x7fff0000
    (0x06, 0, 0, 0x00050001),   # [6] BPF_RET k=0x00050001
]


def _libseccomp_or_skip():
    if not os.path.exists(SYSTEM_PYTHON) or subprocess.run([SYSTEM_PYTHON, "-c", "import seccomp"], capture_output=True,
                                                           check=False).returncode:
        pytest.skip("libseccomp's Python bindings (Debian python3-seccomp) are not installed for /usr/bin/python3")


@pytest.mark.oracle("self")
def test_paper_profile_is_the_papers_listing_byte_for_byte():
    c = P.compile_policy("aarch64", profile="paper")
    assert c.program == PAPER_AARCH64
    assert c.raw == b"".join(L.INSN.pack(*i) for i in PAPER_AARCH64)
    assert c.path_length("getpid") == 3
    assert c.listing[1] == "[1] BPF_JMP_JEQ k=198 jt=0 jf=3 -- If socket(), continue; else ALLOW"


@pytest.mark.oracle("self")
def test_paper_profile_refuses_x86_64():
    with pytest.raises(P.PolicyError, match="not aarch64"):
        P.compile_policy("x86_64", profile="paper")


NEWUSER, NEWNET, NEWNS = T.CLONE_NAMESPACES["CLONE_NEWUSER"], T.CLONE_NAMESPACES["CLONE_NEWNET"], T.CLONE_NAMESPACES["CLONE_NEWNS"]
SIGCHLD = 17
HARDENED_CASES = {
    # socket families: an allow-list, low 32 bits
    ("socket", (1, 1, 0)): ALLOW, ("socket", (2, 1, 0)): ALLOW, ("socket", (10, 2, 0)): ALLOW,
    ("socket", (17, 3, 0)): EPERM, ("socket", (40, 1, 0)): EPERM, ("socket", (38, 5, 0)): EPERM,  # PACKET, VSOCK, ALG
    ("socket", (44, 3, 0)): EPERM, ("socket", (0, 1, 0)): EPERM, ("socket", (46, 1, 0)): EPERM,    # XDP, UNSPEC, > AF_MAX
    ("socket", (0x1_00000028, 1, 0)): EPERM,   # AF_VSOCK with high bits: the kernel reads the int 40
    ("socket", (0x1_00000001, 1, 0)): ALLOW,   # ... and this is AF_UNIX to the kernel
    ("socket", (0xFFFFFFFF_00000011, 3, 0)): EPERM,
    ("socket", (2, 10, 0)): EPERM, ("socket", (2, 10 | T.SOCK_CLOEXEC, 0)): EPERM,  # AF_INET + SOCK_PACKET
    ("socket", (16, 3, 0)): ALLOW, ("socket", (16, 3, 4)): EPERM, ("socket", (16, 3, 9)): EPERM,  # ROUTE, SOCK_DIAG, AUDIT
    ("socket", (16, 3, 0x1_00000000)): ALLOW,  # protocol is an int too
    ("socketpair", (1, 1, 0)): ALLOW, ("socketpair", (40, 1, 0)): EPERM, ("socketpair", (16, 2, 4)): EPERM,
    # namespaces
    ("clone", (SIGCHLD,)): ALLOW, ("clone", (T.CLONE_THREAD_FLAGS,)): ALLOW,
    ("clone", (NEWUSER | SIGCHLD,)): EPERM, ("clone", (NEWNET,)): EPERM, ("clone", (NEWNS | SIGCHLD,)): EPERM,
    ("clone", (0x1_00000000 | NEWUSER,)): EPERM, ("clone", (0x1_00000000 | SIGCHLD,)): ALLOW,
    ("clone", (SIGCHLD | T.CLONE_NEWTIME,)): ALLOW,  # 0x80 is clone()'s exit-signal byte, not NEWTIME
    ("unshare", (NEWUSER,)): EPERM, ("unshare", (T.CLONE_NEWTIME,)): EPERM, ("unshare", (0x400,)): ALLOW,  # CLONE_FILES
    ("setns", (3, 0)): EPERM, ("clone3", ()): ENOSYS,
    # keyring, process access, kernel interfaces, mounts, modules, system
    ("add_key", ()): EPERM, ("keyctl", ()): EPERM, ("request_key", ()): EPERM,
    ("ptrace", ()): EPERM, ("process_vm_readv", ()): EPERM, ("process_vm_writev", ()): EPERM, ("pidfd_getfd", ()): EPERM,
    ("bpf", ()): EPERM, ("perf_event_open", ()): EPERM, ("userfaultfd", ()): EPERM,
    ("mount", ()): EPERM, ("umount2", ()): EPERM, ("fsopen", ()): EPERM, ("open_tree", ()): EPERM, ("move_mount", ()): EPERM,
    ("init_module", ()): EPERM, ("finit_module", ()): EPERM, ("kexec_load", ()): EPERM, ("kexec_file_load", ()): EPERM,
    ("reboot", ()): EPERM, ("swapon", ()): EPERM, ("settimeofday", ()): EPERM, ("clock_settime", ()): EPERM,
    ("personality", (0,)): ALLOW, ("personality", (0xFFFFFFFF,)): ALLOW, ("personality", (0x0040000,)): EPERM,  # ADDR_NO_RANDOMIZE
    ("io_uring_setup", ()): EPERM, ("io_uring_enter", ()): EPERM, ("io_uring_register", ()): EPERM,
    # the common path, and what an agent needs
    ("getpid", ()): ALLOW, ("read", ()): ALLOW, ("futex", ()): ALLOW, ("seccomp", ()): ALLOW, ("execve", ()): ALLOW,
    ("memfd_create", ()): ALLOW, ("pidfd_open", ()): ALLOW, ("landlock_create_ruleset", ()): ALLOW, ("prctl", ()): ALLOW,
    ("connect", ()): ALLOW, ("kill", ()): ALLOW, ("wait4", ()): ALLOW, ("openat", ()): ALLOW, ("mmap", ()): ALLOW,
}


@pytest.mark.oracle("self")
@pytest.mark.parametrize("arch", P.ARCHES)
def test_hardened_verdicts(arch):
    c = P.compile_policy(arch)
    nr = T.SYSCALLS[arch]
    wrong = [(name, args, L.action_name(c.run(nr[name], args)[0]), L.action_name(want))
             for (name, args), want in HARDENED_CASES.items() if c.run(nr[name], args)[0] != want]
    assert not wrong
    assert c.run(nr["getpid"], arch_token=L.AUDIT_ARCH["i386"])[0] == KILL
    assert c.run(nr["getpid"], arch_token=0xFFFFFFFF)[0] == KILL
    other = "aarch64" if arch == "x86_64" else "x86_64"
    assert c.run(nr["getpid"], arch_token=L.AUDIT_ARCH[other])[0] == KILL


@pytest.mark.oracle("self")
def test_x86_64_x32_numbers_are_killed_but_minus_one_passes():
    c = P.compile_policy("x86_64")
    assert c.run(0x40000000 | 41, (16, 3, 0))[0] == KILL
    assert c.run(0x40000000 | 39)[0] == KILL
    assert c.run(0xFFFFFFFF)[0] == ALLOW


@pytest.mark.oracle("self")
@pytest.mark.parametrize(("arch", "limit"), [("x86_64", 11), ("aarch64", 11)])
def test_common_path_stays_short(arch, limit):
    """A balanced search over the numbers with a rule: about log2(rules) compares for every other syscall."""
    c = P.compile_policy(arch)
    assert c.path_length("getpid") <= limit
    others = [n for n in T.SYSCALLS[arch] if n not in c.special]
    assert max(c.path_length(n) for n in others) <= limit
    assert all(c.run(T.SYSCALLS[arch][n])[0] == ALLOW for n in others)
    assert len(c.program) < 128


@pytest.mark.oracle("self")
def test_netlink_options_and_the_0_1_meaning_of_deny_families():
    sock = T.SYSCALLS["aarch64"]["socket"]
    refuse_all = P.compile_policy("aarch64", allow_netlink_protocols=[])
    assert refuse_all.run(sock, (16, 3, 0))[0] == EPERM and "AF_NETLINK" not in refuse_all.rules["socket_allow_families"]
    two = P.compile_policy("aarch64", allow_netlink_protocols=["route", "NETLINK_KOBJECT_UEVENT"])
    assert two.run(sock, (16, 3, 15))[0] == ALLOW and two.run(sock, (16, 3, 4))[0] == EPERM
    # 0.1 playbooks: deny_families [AF_PACKET, AF_NETLINK] alone refused all netlink; with protocols, only those
    old_default = P.compile_policy("aarch64", deny_families=["AF_PACKET", "AF_NETLINK"])
    assert old_default.run(sock, (16, 3, 0))[0] == EPERM and old_default.run(sock, (2, 1, 0))[0] == ALLOW
    old_route = P.compile_policy("aarch64", deny_families=["AF_PACKET", "AF_NETLINK"], allow_netlink_protocols=["NETLINK_ROUTE"])
    assert old_route.run(sock, (16, 3, 0))[0] == ALLOW and old_route.run(sock, (16, 3, 4))[0] == EPERM
    no_inet6 = P.compile_policy("aarch64", deny_families=["inet6"])
    assert no_inet6.run(sock, (10, 1, 0))[0] == EPERM and no_inet6.run(sock, (16, 3, 0))[0] == ALLOW
    nothing = P.compile_policy("aarch64", allow_families=[], allow_netlink_protocols=[])
    assert nothing.run(sock, (1, 1, 0))[0] == EPERM and nothing.rules["socket_allow_families"] == []


@pytest.mark.oracle("self")
def test_deny_groups_can_be_narrowed():
    c = P.compile_policy("x86_64", deny_groups=["keyring"])
    nr = T.SYSCALLS["x86_64"]
    assert c.run(nr["keyctl"])[0] == EPERM
    assert c.run(nr["ptrace"])[0] == ALLOW and c.run(nr["clone3"])[0] == ALLOW and c.run(nr["clone"], (NEWUSER,))[0] == ALLOW
    assert c.run(nr["socket"], (40, 1, 0))[0] == EPERM  # the family allow-list does not depend on the groups
    assert list(c.rules["deny_groups"]) == ["keyring"]


@pytest.mark.oracle("self")
def test_errno_mismatch_action_and_io_uring_options():
    c = P.compile_policy("x86_64", errno="EACCES", mismatched_arch_action="trap", deny_io_uring=False)
    assert c.run(41, (17, 3, 0))[0] == L.SECCOMP_RET_ERRNO | errno.EACCES
    assert c.run(425)[0] == ALLOW
    assert c.run(39, arch_token=L.AUDIT_ARCH["i386"])[0] == L.SECCOMP_RET_TRAP
    assert c.run(435)[0] == ENOSYS  # clone3 keeps ENOSYS whatever errno says: glibc falls back only on ENOSYS


@pytest.mark.oracle("self")
@pytest.mark.parametrize(("kwargs", "message"), [
    ({"arch": "riscv64"}, "unknown arch 'riscv64'"),
    ({"arch": "x86_64", "deny_families": ["AF_NOPE"]}, "unknown address family 'AF_NOPE'"),
    ({"arch": "x86_64", "allow_families": ["AF_NOPE"]}, "unknown address family 'AF_NOPE'"),
    ({"arch": "x86_64", "errno": 70000}, "out of range"),
    ({"arch": "x86_64", "errno": 0}, "out of range"),
    ({"arch": "x86_64", "errno": "ENOTANERRNO"}, "unknown errno name 'ENOTANERRNO'"),
    ({"arch": "x86_64", "allow_netlink_protocols": ["NETLINK_BOGUS"]}, "unknown netlink protocol"),
    ({"arch": "x86_64", "allow_families": ["AF_UNIX"], "allow_netlink_protocols": [0]}, "AF_NETLINK is not in allow_families"),
    ({"arch": "x86_64", "mismatched_arch_action": "shrug"}, "unknown mismatched_arch_action 'shrug'"),
    ({"arch": "x86_64", "deny_groups": ["everything"]}, "unknown deny group 'everything'"),
])
def test_bad_input_names_the_value(kwargs, message):
    with pytest.raises(P.PolicyError, match=message):
        P.compile_policy(**kwargs)


@pytest.mark.oracle("self")
def test_families_accept_names_short_names_and_numbers():
    a = P.compile_policy("x86_64", allow_families=["AF_UNIX", "inet", 10, 40], allow_netlink_protocols=[])
    assert a.rules["socket_allow_families"] == ["AF_UNIX", "AF_INET", "AF_INET6", "AF_VSOCK"]


# ---- the syscall tables against the kernel's own headers and libseccomp's tables ----
HEADERS = {"x86_64": "/usr/include/x86_64-linux-gnu/asm/unistd_64.h", "aarch64": "/usr/include/asm-generic/unistd.h"}
NR3264 = {"mmap": "mmap", "fcntl": "fcntl"}  # asm-generic names these __NR3264_<name>


@pytest.mark.oracle("kernel")
@pytest.mark.parametrize("arch", P.ARCHES)
def test_tables_match_the_kernel_uapi_headers(arch):
    if not os.path.exists(HEADERS[arch]):
        pytest.skip(f"{HEADERS[arch]} is not installed (linux-libc-dev)")
    text = pathlib.Path(HEADERS[arch]).read_text()
    found = {m.group(2): int(m.group(3)) for m in re.finditer(r"#define __NR(3264)?_(\w+)\s+(\d+)\b", text)}
    wrong = {name: (nr, found.get(name)) for name, nr in T.SYSCALLS[arch].items() if found.get(name, nr) != nr}
    missing = [n for n in T.SYSCALLS[arch] if n not in found]
    assert not wrong
    assert set(missing) <= ({"iopl", "ioperm", "uselib", "_sysctl"} if arch == "aarch64" else set())


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize("arch", P.ARCHES)
def test_tables_match_libseccomp(arch):
    _libseccomp_or_skip()
    script = ("import json, sys, seccomp\na = {'x86_64': seccomp.Arch.X86_64, 'aarch64': seccomp.Arch.AARCH64}[sys.argv[1]]\n"
              "print(json.dumps({n: seccomp.resolve_syscall(a, n) for n in json.loads(sys.argv[2])}))\n")
    out = subprocess.run([SYSTEM_PYTHON, "-c", script, arch, json.dumps(sorted(T.SYSCALLS[arch]))],
                         capture_output=True, text=True, check=True).stdout
    theirs = json.loads(out)
    assert {n: nr for n, nr in T.SYSCALLS[arch].items() if theirs[n] != nr} == {}


# ---- differential: our interpreter on our filter vs. our interpreter on libseccomp's filter ----
LIBSECCOMP = textwrap.dedent("""
    import json, sys, seccomp
    arch, out, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    f.remove_arch(seccomp.Arch.NATIVE)
    f.add_arch({"x86_64": seccomp.Arch.X86_64, "aarch64": seccomp.Arch.AARCH64}[arch])
    f.set_attr(seccomp.Attr.ACT_BADARCH, seccomp.KILL_PROCESS)
    deny = seccomp.ERRNO(1)
    def arg(i, mask, value):
        return seccomp.Arg(i, seccomp.MASKED_EQ, mask, value)
    for sc in ("socket", "socketpair"):
        for mask, value in spec["family_blocks"]:           # every family outside the allow-list
            f.add_rule(deny, sc, arg(0, mask, value))
        f.add_rule(deny, sc, arg(0, 0xffffffff, 2), arg(1, 0xf, 10))  # AF_INET + SOCK_PACKET
        for mask, value in spec["netlink_blocks"]:          # AF_NETLINK with another protocol
            f.add_rule(deny, sc, arg(0, 0xffffffff, 16), arg(2, mask, value))
    for bit in spec["clone_bits"]:
        f.add_rule(deny, "clone", arg(0, bit, bit))
    for bit in spec["unshare_bits"]:
        f.add_rule(deny, "unshare", arg(0, bit, bit))
    for mask, value in spec["personality_blocks"]:
        f.add_rule(deny, "personality", arg(0, mask, value))
    f.add_rule(seccomp.ERRNO(38), "clone3")
    for name in spec["deny"]:
        f.add_rule(deny, name)
    with open(out, "wb") as fh:
        f.export_bpf(fh)
""")


def complement_blocks(allowed, bits=32):
    """(mask, value) prefix blocks that cover every `bits`-wide value except those in `allowed`."""
    out = []

    def cover(prefix, depth):
        inside = [v for v in allowed if v >> (bits - depth) == prefix] if depth else list(allowed)
        if not inside:
            mask = ((1 << depth) - 1) << (bits - depth)
            out.append((mask, prefix << (bits - depth)))
        elif depth < bits:
            cover(prefix << 1, depth + 1)
            cover(prefix << 1 | 1, depth + 1)

    cover(0, 0)
    return out


@pytest.mark.oracle("self")
def test_complement_blocks_cover_exactly_the_complement():
    blocks = complement_blocks({1, 2, 10, 16}, bits=6)
    covered = {v for v in range(64) if any(v & m == val for m, val in blocks)}
    assert covered == set(range(64)) - {1, 2, 10, 16}


def _libseccomp_filter(arch, tmp_path):
    _libseccomp_or_skip()
    c = P.compile_policy(arch)
    families = {T.ADDRESS_FAMILIES[f] for f in c.rules["socket_allow_families"]}
    spec = {"family_blocks": complement_blocks(families), "netlink_blocks": complement_blocks({0}),
            "clone_bits": sorted(T.CLONE_NAMESPACES.values()),
            "unshare_bits": sorted([*T.CLONE_NAMESPACES.values(), T.CLONE_NEWTIME]),
            "personality_blocks": complement_blocks(set(T.PERSONALITY_ALLOWED)),
            "deny": sorted({n for names in c.rules["deny_groups"].values() for n in names} | set(P.IO_URING))}
    out = tmp_path / f"libseccomp-{arch}.bpf"
    subprocess.run([SYSTEM_PYTHON, "-c", LIBSECCOMP, arch, str(out), json.dumps(spec)], check=True)
    return L.decode(out.read_bytes())


def corpus(arch):
    nr = T.SYSCALLS[arch]
    highs = (0, 1, 0xFFFFFFFF)
    types = list(range(0, 12)) + [10 | T.SOCK_NONBLOCK, 1 | T.SOCK_CLOEXEC, 15]
    for sc in ("socket", "socketpair"):
        for fam, high, typ in itertools.product(range(0, 51), highs, types):
            yield nr[sc], L.AUDIT_ARCH[arch], (fam | high << 32, typ, 0)
        for proto, high in itertools.product(range(0, 32), highs):
            yield nr[sc], L.AUDIT_ARCH[arch], (16, 3, proto | high << 32)
        for fam in (0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x10001, 0x10010):
            yield nr[sc], L.AUDIT_ARCH[arch], (fam, 1, 0)
    flags = [0, 17, T.CLONE_THREAD_FLAGS, T.CLONE_NEWTIME, 0x80000000, *T.CLONE_NAMESPACES.values()]
    for sc, a, b, high in itertools.product(("clone", "unshare"), flags, flags, (0, 1)):
        yield nr[sc], L.AUDIT_ARCH[arch], ((a | b) | high << 32,)
    for persona in (*T.PERSONALITY_ALLOWED, 1, 0x40000, 0x400000, 0x20001, 0xFFFFFFFE, 0x1_00000000):
        yield nr["personality"], L.AUDIT_ARCH[arch], (persona,)
    for name in nr:
        yield nr[name], L.AUDIT_ARCH[arch], ()
    for token in (L.AUDIT_ARCH["i386"], L.AUDIT_ARCH["arm"], 0xFFFFFFFF, L.AUDIT_ARCH["x86_64" if arch == "aarch64" else "aarch64"]):
        for name in ("getpid", "socket"):
            yield nr[name], token, (16, 3, 0)
    if arch == "x86_64":
        for name in nr:
            yield nr[name] | T.X32_SYSCALL_BIT, L.AUDIT_ARCH[arch], (16, 3, 0)
        yield 0xFFFFFFFF, L.AUDIT_ARCH[arch], ()
    for raw_nr in (*range(0, 460), 500, 1000, 0x3FFFFFFF):
        yield raw_nr, L.AUDIT_ARCH[arch], ()


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize("arch", P.ARCHES)
def test_differential_against_libseccomp(arch, tmp_path):
    """libseccomp builds the same policy from its own rule language; both programs agree on every input."""
    ours = P.compile_policy(arch).program
    theirs = _libseccomp_filter(arch, tmp_path)
    L.validate(theirs)
    disagreements, checked = [], 0
    for nr, token, args in corpus(arch):
        data = L.seccomp_data(nr, token, args)
        a, b = L.interpret(ours, data)[0], L.interpret(theirs, data)[0]
        checked += 1
        if a != b:
            disagreements.append((hex(nr), hex(token), [hex(x) for x in args], L.action_name(a), L.action_name(b)))
    assert checked > 5000
    assert not disagreements, json.dumps(disagreements[:20])


@pytest.mark.oracle("upstream")
def test_libseccomp_full_64_bit_compare_misses_high_bit_families(tmp_path):
    """Why we compare the low word: libseccomp's plain EQ on a0 lets 0x1_00000028 (AF_VSOCK to the kernel) through."""
    _libseccomp_or_skip()
    script = ("import sys, seccomp\nf = seccomp.SyscallFilter(defaction=seccomp.ALLOW)\n"
              "f.add_rule(seccomp.ERRNO(1), 'socket', seccomp.Arg(0, seccomp.EQ, 40))\n"
              "f.export_bpf(open(sys.argv[1], 'wb'))\n")
    out = tmp_path / "eq.bpf"
    subprocess.run([SYSTEM_PYTHON, "-c", script, str(out)], check=True)
    naive = L.decode(out.read_bytes())
    token = L.AUDIT_ARCH[L.native_arch()]
    socket_nr = T.SYSCALLS[L.native_arch()]["socket"]
    assert L.interpret(naive, L.seccomp_data(socket_nr, token, (40, 1, 0)))[0] == EPERM
    assert L.interpret(naive, L.seccomp_data(socket_nr, token, (0x1_00000028, 1, 0)))[0] == ALLOW
    assert P.compile_policy(L.native_arch()).run(socket_nr, (0x1_00000028, 1, 0))[0] == EPERM


@pytest.mark.oracle("self")
def test_launcher_is_stdlib_only():
    src = pathlib.Path(L.__file__).read_text()
    imports = re.findall(r"^\s*(?:import|from)\s+([\w.]+)", src, re.M)
    assert set(imports) <= {"errno", "posix", "struct", "sys", "_ctypes"}, imports
