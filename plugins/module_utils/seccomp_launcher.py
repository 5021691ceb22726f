# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)
"""seccomp-launch: install a compiled seccomp filter (and optionally a Landlock ruleset), then exec a command.

Single file, standard library only, so the hardening role can copy it into a sandbox as it is.
The same file is the collection's classic-BPF core (decode, validate, interpret), imported by
``_bpf.py``, so the launcher and the compiler can never disagree about what a valid filter is.

Usage::

    seccomp-launch --filter FILE [--allow-unchecked-arch]
                   [--landlock-ro PATH ...] [--landlock-rw PATH ...] [--landlock-required]
                   [--check] -- COMMAND [ARG ...]

Order of operations (the same as OpenShell's pre_exec): PR_SET_NO_NEW_PRIVS, Landlock (when asked),
seccomp() with SECCOMP_FILTER_FLAG_TSYNC, a check of /proc/self/status (``Seccomp: 2`` and a raised
``Seccomp_filters``), then execvp(COMMAND). If an outer filter refuses seccomp(SECCOMP_SET_MODE_FILTER)
(OpenShell v0.0.26 blocks it for agents) and the process is single-threaded, the launcher falls back to
prctl(PR_SET_SECCOMP), which installs the same filter for the calling thread, and says so on stderr.

Exit codes: 2 bad usage or unreadable file, 3 invalid filter, 4 filter for another architecture,
5 the kernel refused the filter or Landlock, 6 the post-install check failed; otherwise the exec'd command's.
"""
from __future__ import annotations

import ctypes
import errno as _errno
import os
import platform
import struct
import sys

# --- classic BPF (linux/filter.h, linux/bpf_common.h) -------------------------------------------------
BPF_LD, BPF_ALU, BPF_JMP, BPF_RET = 0x00, 0x04, 0x05, 0x06
BPF_W, BPF_ABS, BPF_K = 0x00, 0x20, 0x00
BPF_AND = 0x50
BPF_JA, BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET = 0x00, 0x10, 0x20, 0x30, 0x40
BPF_MAXINSNS = 4096
INSN = struct.Struct("=HBBI")  # struct sock_filter: u16 code, u8 jt, u8 jf, u32 k (native byte order)

OP_LD_W_ABS = BPF_LD | BPF_W | BPF_ABS
OP_RET_K = BPF_RET | BPF_K
OP_AND_K = BPF_ALU | BPF_AND | BPF_K
JUMPS = {BPF_JMP | BPF_JA: "JA", BPF_JMP | BPF_JEQ | BPF_K: "JEQ", BPF_JMP | BPF_JGT | BPF_K: "JGT",
         BPF_JMP | BPF_JGE | BPF_K: "JGE", BPF_JMP | BPF_JSET | BPF_K: "JSET"}
ALLOWED_OPS = {OP_LD_W_ABS, OP_RET_K, OP_AND_K, *JUMPS}

# --- seccomp (linux/seccomp.h, linux/audit.h) -----------------------------------------------------------
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_KILL_THREAD = 0x00000000
SECCOMP_RET_TRAP = 0x00030000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_USER_NOTIF = 0x7FC00000
SECCOMP_RET_TRACE = 0x7FF00000
SECCOMP_RET_LOG = 0x7FFC0000
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ACTION_FULL = 0xFFFF0000
SECCOMP_RET_DATA = 0x0000FFFF
ACTION_NAMES = {SECCOMP_RET_KILL_PROCESS: "KILL_PROCESS", SECCOMP_RET_KILL_THREAD: "KILL_THREAD",
                SECCOMP_RET_TRAP: "TRAP", SECCOMP_RET_ERRNO: "ERRNO", SECCOMP_RET_USER_NOTIF: "USER_NOTIF",
                SECCOMP_RET_TRACE: "TRACE", SECCOMP_RET_LOG: "LOG", SECCOMP_RET_ALLOW: "ALLOW"}
SECCOMP_DATA_SIZE = 64  # int nr; u32 arch; u64 instruction_pointer; u64 args[6]

AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7, "i386": 0x40000003, "arm": 0x40000028}
MACHINE_ALIASES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}
SYS_SECCOMP = {"x86_64": 317, "aarch64": 277}
SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC = 1, 1


class FilterError(ValueError):
    """A filter that the kernel would refuse, or that does not fit this machine."""


def normalize_arch(machine):
    arch = MACHINE_ALIASES.get(str(machine).lower())
    if arch is None:
        raise FilterError(f"unsupported architecture {machine!r}; supported: aarch64, x86_64")
    return arch


def native_arch():
    return normalize_arch(platform.machine())


def decode(data):
    """Raw `struct sock_filter` bytes -> list of (code, jt, jf, k)."""
    if not data:
        raise FilterError("filter is empty")
    if len(data) % INSN.size:
        raise FilterError(f"filter length {len(data)} is not a multiple of {INSN.size} bytes (truncated?)")
    return [INSN.unpack_from(data, off) for off in range(0, len(data), INSN.size)]


def encode(program):
    return b"".join(INSN.pack(*insn) for insn in program)


def validate(program):
    """Enforce what the kernel's seccomp_check_filter/bpf_check_classic enforce for our instruction subset."""
    if not 1 <= len(program) <= BPF_MAXINSNS:
        raise FilterError(f"filter has {len(program)} instructions; the kernel accepts 1..{BPF_MAXINSNS}")
    last = len(program) - 1
    for pc, (code, jt, jf, k) in enumerate(program):
        if code not in ALLOWED_OPS:
            raise FilterError(f"instruction {pc}: opcode 0x{code:02x} is not allowed in a seccomp filter here")
        if code == OP_LD_W_ABS and (k % 4 or k >= SECCOMP_DATA_SIZE):
            raise FilterError(f"instruction {pc}: load offset {k} must be 4-byte aligned and inside seccomp_data (<64)")
        if code in JUMPS:
            targets = (pc + 1 + k,) if code == BPF_JMP | BPF_JA else (pc + 1 + jt, pc + 1 + jf)
            if any(t > last for t in targets):
                raise FilterError(f"instruction {pc}: jump past the end of the program")
        elif code != OP_RET_K and not 0 <= jt == jf == 0:
            raise FilterError(f"instruction {pc}: jt/jf must be 0 outside jumps")
    if program[last][0] != OP_RET_K:
        raise FilterError("the last instruction must be a return (a path would run off the end)")
    return True


def seccomp_data(nr, arch, args=(), ip=0):
    """Pack a struct seccomp_data (native byte order) for the interpreter."""
    vals = list(args) + [0] * (6 - len(args))
    return struct.pack("=iIQ6Q", nr if nr < 0x80000000 else nr - (1 << 32), arch, ip, *(v & (2**64 - 1) for v in vals))


def interpret(program, data):
    """Run a validated program on packed seccomp_data; return (return value, instructions executed)."""
    acc, pc, steps = 0, 0, 0
    while True:
        code, jt, jf, k = program[pc]
        steps += 1
        if code == OP_RET_K:
            return k, steps
        if code == OP_LD_W_ABS:
            acc = struct.unpack_from("=I", data, k)[0]
            pc += 1
        elif code == OP_AND_K:
            acc &= k
            pc += 1
        elif code == BPF_JMP | BPF_JA:
            pc += 1 + k
        else:
            op = JUMPS[code]
            hit = {"JEQ": acc == k, "JGT": acc > k, "JGE": acc >= k, "JSET": bool(acc & k)}[op]
            pc += 1 + (jt if hit else jf)


def action_name(ret):
    name = ACTION_NAMES.get(ret & SECCOMP_RET_ACTION_FULL, f"0x{ret:08x}")
    if (ret & SECCOMP_RET_ACTION_FULL) == SECCOMP_RET_ERRNO:
        num = ret & SECCOMP_RET_DATA
        return f"ERRNO({_errno.errorcode.get(num, num)})"
    return name


def filter_arch(program):
    """The architecture a filter checks in its prologue (ld [4]; jeq TOKEN), or None when it checks none."""
    if len(program) >= 2 and program[0] == (OP_LD_W_ABS, 0, 0, 4) and program[1][0] == BPF_JMP | BPF_JEQ | BPF_K:
        for name, token in AUDIT_ARCH.items():
            if token == program[1][3]:
                return name
        return f"0x{program[1][3]:08x}"
    return None


def check_for_this_machine(program, arch=None, allow_unchecked_arch=False):
    """Refuse a filter compiled for another architecture, or one that would kill ordinary native calls."""
    arch = arch or native_arch()
    checked = filter_arch(program)
    if checked is None and not allow_unchecked_arch:
        raise FilterError("filter has no architecture check (ld [4]; jeq AUDIT_ARCH); refusing it "
                          "(pass --allow-unchecked-arch to load it anyway)")
    if checked is not None and checked != arch:
        raise FilterError(f"filter was compiled for {checked}, this machine is {arch}")
    ret = interpret(program, seccomp_data(39 if arch == "x86_64" else 172, AUDIT_ARCH[arch]))[0]  # getpid
    if ret & SECCOMP_RET_ACTION_FULL != SECCOMP_RET_ALLOW:
        raise FilterError(f"filter does not allow getpid() on {arch} ({action_name(ret)}); wrong architecture?")


# --- kernel side -----------------------------------------------------------------------------------------
class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def proc_status():
    fields = {}
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            key, _sep, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def _raise_errno(what):
    err = ctypes.get_errno()
    raise OSError(err, f"{what}: {os.strerror(err)}")


def install_filter(raw, arch=None):
    """NO_NEW_PRIVS + seccomp(SET_MODE_FILTER, TSYNC); prctl fallback when seccomp() is filtered. Returns the method."""
    arch = arch or native_arch()
    libc = _libc()
    buf = ctypes.create_string_buffer(raw, len(raw))
    prog = _SockFprog(len(raw) // INSN.size, ctypes.cast(buf, ctypes.c_void_p))
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        _raise_errno("prctl(PR_SET_NO_NEW_PRIVS)")
    rc = libc.syscall(SYS_SECCOMP[arch], SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, ctypes.byref(prog))
    if rc == 0:
        return "seccomp(SECCOMP_SET_MODE_FILTER, TSYNC)"
    err = ctypes.get_errno()
    if rc > 0:
        raise OSError(_errno.EBUSY, f"TSYNC could not synchronise thread {rc}")
    threads = len(os.listdir("/proc/self/task"))
    if err in (_errno.EPERM, _errno.EACCES, _errno.ENOSYS) and threads == 1:
        if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
            _raise_errno("prctl(PR_SET_SECCOMP) fallback")
        return f"prctl(PR_SET_SECCOMP) fallback (seccomp() refused: {os.strerror(err)})"
    raise OSError(err, f"seccomp(SECCOMP_SET_MODE_FILTER): {os.strerror(err)} (threads: {threads})")


# Landlock (linux/landlock.h): filesystem rights by ABI.
LL_EXECUTE, LL_WRITE_FILE, LL_READ_FILE, LL_READ_DIR = 1, 2, 4, 8
LL_ABI_V1_ALL = (1 << 13) - 1
LL_REFER, LL_TRUNCATE, LL_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
LL_FILE_RIGHTS = LL_EXECUTE | LL_WRITE_FILE | LL_READ_FILE | LL_TRUNCATE | LL_IOCTL_DEV
LL_RO_RIGHTS = LL_EXECUTE | LL_READ_FILE | LL_READ_DIR


def landlock_abi():
    """Kernel Landlock ABI version, or 0 when not built in / disabled."""
    rc = _libc().syscall(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return rc if rc > 0 else 0


def landlock_handled(abi):
    handled = LL_ABI_V1_ALL
    if abi >= 2:
        handled |= LL_REFER
    if abi >= 3:
        handled |= LL_TRUNCATE
    if abi >= 5:
        handled |= LL_IOCTL_DEV
    return handled


def apply_landlock(ro_paths, rw_paths, required=False):
    """Restrict this process (and its future children) to the given paths. Returns (abi, skipped paths)."""
    abi = landlock_abi()
    if abi == 0:
        if required:
            raise OSError(_errno.EOPNOTSUPP, "Landlock is not available in this kernel and --landlock-required was given")
        return 0, []
    libc = _libc()
    handled = landlock_handled(abi)
    attr = struct.pack("=Q", handled)
    fd = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, attr, ctypes.c_size_t(len(attr)), ctypes.c_uint32(0))
    if fd < 0:
        _raise_errno("landlock_create_ruleset")
    skipped = []
    try:
        for paths, rights in ((ro_paths, LL_RO_RIGHTS), (rw_paths, handled)):
            for path in paths:
                try:
                    pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                except OSError:
                    skipped.append(path)
                    continue
                try:
                    allowed = rights & handled
                    if not os.path.isdir(path):
                        allowed &= LL_FILE_RIGHTS
                    rule = struct.pack("=Qi", allowed, pfd)
                    if libc.syscall(SYS_LANDLOCK_ADD_RULE, fd, ctypes.c_int(1), rule, ctypes.c_uint32(0)) != 0:
                        _raise_errno(f"landlock_add_rule({path})")
                finally:
                    os.close(pfd)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            _raise_errno("prctl(PR_SET_NO_NEW_PRIVS)")
        if libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, fd, ctypes.c_uint32(0)) != 0:
            _raise_errno("landlock_restrict_self")
    finally:
        os.close(fd)
    return abi, skipped


# --- command line ----------------------------------------------------------------------------------------
def _parse(argv):
    import argparse  # noqa: PLC0415 - only the CLI needs it

    if "--" in argv:
        split = argv.index("--")
        opts, command = argv[:split], argv[split + 1:]
    else:
        opts, command = argv, []
    parser = argparse.ArgumentParser(prog="seccomp-launch", description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--filter", help="compiled filter file (raw struct sock_filter array)")
    parser.add_argument("--allow-unchecked-arch", action="store_true",
                        help="load a filter that has no architecture check (e.g. the paper's)")
    parser.add_argument("--landlock-ro", action="append", default=[], metavar="PATH", help="read/execute-only path")
    parser.add_argument("--landlock-rw", action="append", default=[], metavar="PATH", help="read-write path")
    parser.add_argument("--landlock-required", action="store_true", help="fail when the kernel has no Landlock")
    parser.add_argument("--check", action="store_true", help="validate the filter for this machine and exit")
    args = parser.parse_args(opts)
    if not args.filter and not (args.landlock_ro or args.landlock_rw):
        parser.error("nothing to do: give --filter and/or --landlock-ro/--landlock-rw")
    if not args.check and not command:
        parser.error("missing command after --")
    return args, command


def _fail(code, message):
    sys.stderr.write(f"seccomp-launch: {message}\n")
    return code


def main(argv=None):
    args, command = _parse(sys.argv[1:] if argv is None else argv)
    raw = None
    if args.filter:
        try:
            with open(args.filter, "rb") as fh:
                raw = fh.read()
        except OSError as exc:
            return _fail(2, f"cannot read filter {args.filter!r}: {exc.strerror}")
        try:
            program = decode(raw)
            validate(program)
        except FilterError as exc:
            return _fail(3, f"invalid filter {args.filter!r}: {exc}")
        try:
            check_for_this_machine(program, allow_unchecked_arch=args.allow_unchecked_arch)
        except FilterError as exc:
            return _fail(4, f"refusing filter {args.filter!r}: {exc}")
        if args.check:
            sys.stdout.write(f"{args.filter}: {len(program)} instructions, valid for {native_arch()}\n")
            return 0
    if args.landlock_ro or args.landlock_rw:
        try:
            abi, skipped = apply_landlock(args.landlock_ro, args.landlock_rw, args.landlock_required)
        except OSError as exc:
            return _fail(5, f"Landlock: {exc}")
        if skipped:
            sys.stderr.write(f"seccomp-launch: Landlock: skipped missing paths {', '.join(skipped)}\n")
        if abi == 0:
            sys.stderr.write("seccomp-launch: Landlock is not available in this kernel; continuing without it\n")
    if raw is not None:
        before = int(proc_status().get("Seccomp_filters", "0") or 0)
        try:
            method = install_filter(raw)
        except OSError as exc:
            return _fail(5, f"kernel refused the filter: {exc}")
        status = proc_status()
        if status.get("Seccomp") != "2" or int(status.get("Seccomp_filters", "0") or 0) <= before:
            return _fail(6, f"filter not in force after install (Seccomp: {status.get('Seccomp')}, "
                            f"Seccomp_filters: {status.get('Seccomp_filters')}, before: {before})")
        if method.startswith("prctl"):
            sys.stderr.write(f"seccomp-launch: installed with {method}\n")
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        return _fail(127 if exc.errno == _errno.ENOENT else 126, f"cannot execute {command[0]!r}: {exc.strerror}")
    return 0  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
