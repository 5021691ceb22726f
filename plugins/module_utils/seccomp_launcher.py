# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)
"""seccomp-launch: install a compiled seccomp filter (and optionally a Landlock ruleset), then exec a command.

Single file, standard library only, so the hardening role can copy it into a sandbox as it is.
The same file is the collection's classic-BPF core (decode, validate, interpret), imported by
``_bpf.py``, so the launcher and the compiler can never disagree about what a valid filter is.

Usage (always through an isolated interpreter; the installed file's shebang is ``#!/usr/bin/python3 -IS``)::

    python3 -I -S /path/seccomp-launch --filter FILE [--allow-unchecked-arch]
                   [--landlock-ro PATH ...] [--landlock-rw PATH ...] [--landlock-required]
                   [--no-landlock-scope] [--check] -- COMMAND [ARG ...]

Start-up integrity: the launcher runs with the agent's environment and HOME, before the sandbox exists. A plain
``python3`` would run the agent's user site-packages (``.pth`` files, ``usercustomize``), ``sitecustomize``,
PYTHON* variables and modules in the current directory first. ``-I`` (isolated: no PYTHON* variables, no user site,
no script or current directory on sys.path) and ``-S`` (no ``site`` at all) leave only the standard library in
/usr; the launcher refuses to go on (exit 7) when it finds it was started without them. It imports everything it
needs before the sandbox is applied, so an interpreter outside the Landlock paths still works.

Order of operations (the same as OpenShell's pre_exec): PR_SET_NO_NEW_PRIVS, Landlock (when paths are given;
with ABI >= 6 also scoped: no signals to and no abstract unix sockets of processes outside the new domain, unless
--no-landlock-scope), seccomp() with SECCOMP_FILTER_FLAG_TSYNC, a check of /proc/self/status (``Seccomp: 2`` and
a raised ``Seccomp_filters``; read through a descriptor opened before Landlock, so /proc need not be in the
ruleset), then execvp(COMMAND). If an outer filter refuses seccomp(SECCOMP_SET_MODE_FILTER) (OpenShell v0.0.26
blocks it for agents) and the process is single-threaded, the launcher falls back to prctl(PR_SET_SECCOMP), which
installs the same filter for the calling thread, and says so on stderr (unless --quiet, which silences notes
but never failures).

Every failure is one line on stderr (``seccomp-launch: ...``) and one of these exit codes:
  2 bad usage or unreadable filter file      3 invalid filter
  4 filter for another architecture, or without an architecture check (unless --allow-unchecked-arch)
  5 the sandbox could not be applied (the kernel refused the filter or Landlock, Landlock missing with
    --landlock-required, no C library interface)
  6 the post-install check failed              7 started without isolation (not python3 -I -S)
  8 any other unexpected error                 126/127 COMMAND cannot be executed / not found
otherwise the exit status is the command's own.
"""
import errno as _errno
import posix as os  # the C module behind `os`: without `site`, importing `os` itself costs ~0.8 ms per process
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
SYS_GETPID = {"x86_64": 39, "aarch64": 172}
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
    return normalize_arch(os.uname().machine)


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
    ret = interpret(program, seccomp_data(SYS_GETPID[arch], AUDIT_ARCH[arch]))[0]
    if ret & SECCOMP_RET_ACTION_FULL != SECCOMP_RET_ALLOW:
        raise FilterError(f"filter does not allow getpid() on {arch} ({action_name(ret)}); wrong architecture?")


# --- kernel side (ctypes' core module only: the full ``ctypes`` package costs ~2.5 ms of start-up) -----------
PR_GET_SECCOMP = 21
SOCK_FPROG = struct.Struct("=HxxxxxxQ")  # struct sock_fprog on LP64: u16 len, 6 bytes padding, pointer


class _Libc:
    """syscall() and prctl() from the running process's C library, every argument passed as a C long."""

    def __init__(self):
        import _ctypes  # noqa: PLC0415 - only the kernel side needs it; imported before any sandbox is applied

        class Long(_ctypes._SimpleCData):
            _type_ = "l"

        class Char(_ctypes._SimpleCData):
            _type_ = "c"

        class Function(_ctypes.CFuncPtr):
            _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
            _restype_ = Long

        handle = _ctypes.dlopen(None, _ctypes.RTLD_LOCAL)
        self._ct, self._long, self._char = _ctypes, Long, Char
        self._syscall = Function(_ctypes.dlsym(handle, "syscall"))
        self._prctl = Function(_ctypes.dlsym(handle, "prctl"))

    def _args(self, args):
        return [a if isinstance(a, bytes) else self._long(0 if a is None else a) for a in args]

    def syscall(self, nr, *args):
        """Return (result, errno); bytes arguments are passed as pointers to their contents."""
        self._ct.set_errno(0)
        rc = self._syscall(self._long(nr), *self._args(args))
        return (rc, self._ct.get_errno()) if rc < 0 else (rc, 0)

    def prctl(self, option, *args):
        self._ct.set_errno(0)
        args = (list(args) + [0, 0, 0, 0])[:4]
        rc = self._prctl(self._long(option), *self._args(args))
        return (rc, self._ct.get_errno()) if rc < 0 else (rc, 0)

    def buffer(self, data):
        """A C copy of `data` (kept alive by the caller) and its address."""
        array = type("Buffer", (self._ct.Array,), {"_type_": self._char, "_length_": len(data)})
        buf = array.from_buffer_copy(data)
        return buf, self._ct.addressof(buf)


_LIBC = []


def _libc():
    if not _LIBC:
        _LIBC.append(_Libc())
    return _LIBC[0]


def _oserror(err, what):
    return OSError(err, f"{what}: {os.strerror(err)}")


def parse_status(data):
    fields = {}
    for line in data.decode("ascii", "replace").splitlines():
        key, _sep, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def proc_status(fd=None):
    """/proc/self/status as a dict; through `fd` (opened earlier, e.g. before Landlock) when given."""
    if fd is not None:
        return parse_status(os.pread(fd, 65536, 0))
    with open("/proc/self/status", "rb") as fh:
        return parse_status(fh.read())


def set_no_new_privs(libc=None):
    rc, err = (libc or _libc()).prctl(PR_SET_NO_NEW_PRIVS, 1)
    if rc != 0:
        raise _oserror(err, "prctl(PR_SET_NO_NEW_PRIVS)")


def install_filter(raw, arch=None, threads=None):
    """NO_NEW_PRIVS + seccomp(SET_MODE_FILTER, TSYNC); prctl fallback when seccomp() is filtered. Returns the method.

    `threads` is this process's thread count (the prctl fallback only covers the calling thread); None reads it
    from /proc/self/status."""
    arch = arch or native_arch()
    libc = _libc()
    buf, addr = libc.buffer(raw)  # `buf` keeps the C copy alive until both calls below are done
    prog = SOCK_FPROG.pack(len(raw) // INSN.size, addr)
    set_no_new_privs(libc)
    rc, err = libc.syscall(SYS_SECCOMP[arch], SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, prog)
    if rc == 0:
        return "seccomp(SECCOMP_SET_MODE_FILTER, TSYNC)"
    if rc > 0:
        raise OSError(_errno.EBUSY, f"TSYNC could not synchronise thread {rc}")
    if threads is None:
        threads = int(proc_status().get("Threads", "0") or 0)
    if err in (_errno.EPERM, _errno.EACCES, _errno.ENOSYS) and threads == 1:
        rc2, err2 = libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog)
        if rc2 != 0:
            raise _oserror(err2, "prctl(PR_SET_SECCOMP) fallback")
        return f"prctl(PR_SET_SECCOMP) fallback (seccomp() refused: {os.strerror(err)})"
    raise OSError(err, f"seccomp(SECCOMP_SET_MODE_FILTER): {os.strerror(err)} (threads: {threads})")


# Landlock (linux/landlock.h): filesystem rights by ABI, and (ABI >= 6) scopes.
LL_EXECUTE, LL_WRITE_FILE, LL_READ_FILE, LL_READ_DIR = 1, 2, 4, 8
LL_ABI_V1_ALL = (1 << 13) - 1
LL_REFER, LL_TRUNCATE, LL_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
LL_FILE_RIGHTS = LL_EXECUTE | LL_WRITE_FILE | LL_READ_FILE | LL_TRUNCATE | LL_IOCTL_DEV
LL_RO_RIGHTS = LL_EXECUTE | LL_READ_FILE | LL_READ_DIR
LL_SCOPE_ABSTRACT_UNIX_SOCKET, LL_SCOPE_SIGNAL = 1, 2
LANDLOCK_CREATE_RULESET_VERSION, LANDLOCK_RULE_PATH_BENEATH = 1, 1
S_IFMT, S_IFDIR = 0o170000, 0o040000


def landlock_abi():
    """Kernel Landlock ABI version, or 0 when not built in / disabled."""
    rc, _err = _libc().syscall(SYS_LANDLOCK_CREATE_RULESET, None, 0, LANDLOCK_CREATE_RULESET_VERSION)
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


def landlock_scopes(abi, scope=True):
    """The `scoped` bits this kernel supports (ABI >= 6), or 0."""
    return LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL if scope and abi >= 6 else 0


def landlock_ruleset_attr(abi, scope=True):
    """struct landlock_ruleset_attr, only as long as this ABI knows it (handled_access_fs[, _net, scoped])."""
    scoped = landlock_scopes(abi, scope)
    if scoped:
        return struct.pack("=QQQ", landlock_handled(abi), 0, scoped)
    return struct.pack("=Q", landlock_handled(abi))


def apply_landlock(ro_paths, rw_paths, required=False, scope=True):
    """Restrict this process (and its future children) to the given paths. Returns (abi, skipped paths).

    With `scope` (the default) and Landlock ABI >= 6 the new domain is also scoped: its processes can neither
    signal nor connect to abstract unix sockets of processes outside it (another exec session, the supervisor)."""
    libc = _libc()
    abi = landlock_abi()
    if abi == 0:
        if required:
            raise OSError(_errno.EOPNOTSUPP, "Landlock is not available in this kernel and --landlock-required was given")
        return 0, []
    handled = landlock_handled(abi)
    attr = landlock_ruleset_attr(abi, scope)
    fd, err = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, attr, len(attr), 0)
    if fd < 0:
        raise _oserror(err, "landlock_create_ruleset")
    skipped = []
    try:
        for paths, rights in ((ro_paths, LL_RO_RIGHTS), (rw_paths, handled)):
            for path in paths:
                if not _add_path_rule(libc, fd, path, rights & handled):
                    skipped.append(path)
        set_no_new_privs(libc)
        rc, err = libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, fd, 0)
        if rc != 0:
            raise _oserror(err, "landlock_restrict_self")
    finally:
        os.close(fd)
    return abi, skipped


def _add_path_rule(libc, ruleset_fd, path, allowed):
    try:
        pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if os.fstat(pfd).st_mode & S_IFMT != S_IFDIR:
            allowed &= LL_FILE_RIGHTS
        rule = struct.pack("=Qi", allowed, pfd)
        rc, err = libc.syscall(SYS_LANDLOCK_ADD_RULE, ruleset_fd, LANDLOCK_RULE_PATH_BENEATH, rule, 0)
        if rc != 0:
            raise _oserror(err, f"landlock_add_rule({path})")
    finally:
        os.close(pfd)
    return True


# --- command line ----------------------------------------------------------------------------------------
USAGE = ("usage: seccomp-launch --filter FILE [--allow-unchecked-arch] [--landlock-ro PATH]... [--landlock-rw PATH]... "
         "[--landlock-required] [--no-landlock-scope] [--quiet] [--check] -- COMMAND [ARG...]")
FLAGS = {"--allow-unchecked-arch": "allow_unchecked_arch", "--landlock-required": "landlock_required",
         "--no-landlock-scope": "no_landlock_scope", "--check": "check", "--quiet": "quiet"}
VALUED = {"--filter": "filter", "--landlock-ro": "landlock_ro", "--landlock-rw": "landlock_rw"}
EXIT_USAGE, EXIT_INVALID, EXIT_ARCH, EXIT_APPLY, EXIT_CHECK, EXIT_NOT_ISOLATED, EXIT_INTERNAL = 2, 3, 4, 5, 6, 7, 8


class UsageError(ValueError):
    """Bad command line; the message says what is wrong."""


def parse_args(argv):
    """argv -> (options dict, command). Small on purpose: argparse alone costs more than the whole launcher."""
    opts = {"filter": None, "landlock_ro": [], "landlock_rw": [], **dict.fromkeys(FLAGS.values(), False), "help": False}
    if "--" in argv:
        split = argv.index("--")
        argv, command = argv[:split], argv[split + 1:]
    else:
        command = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if arg in ("-h", "--help"):
            opts["help"] = True
        elif arg in FLAGS:
            opts[FLAGS[arg]] = True
        elif name in VALUED:
            if not eq:
                i += 1
                if i >= len(argv):
                    raise UsageError(f"{name} needs a value")
                value = argv[i]
            if name == "--filter":
                opts["filter"] = value
            else:
                opts[VALUED[name]].append(value)
        else:
            raise UsageError(f"unknown argument {arg!r}" + ("" if command else " (put the command after --)"))
        i += 1
    if opts["help"]:
        return opts, command
    if not opts["filter"] and not (opts["landlock_ro"] or opts["landlock_rw"]):
        raise UsageError("nothing to do: give --filter and/or --landlock-ro/--landlock-rw")
    if opts["check"] and not opts["filter"]:
        raise UsageError("--check needs --filter")
    if not opts["check"] and not command:
        raise UsageError("missing command after --")
    return opts, command


def isolation_problem(flags=None, modules=None):
    """Why this interpreter may already have run code the agent can write, or None."""
    flags = sys.flags if flags is None else flags
    modules = sys.modules if modules is None else modules
    missing = [opt for opt, on in (("-I", flags.isolated), ("-S", flags.no_site)) if not on]
    loaded = [name for name in ("site", "sitecustomize", "usercustomize") if name in modules]
    if not missing and not loaded:
        return None
    why = f"missing {' '.join(missing)}" if missing else f"{', '.join(loaded)} loaded"
    return (f"started without isolation ({why}): the agent's user site (.pth files, usercustomize), sitecustomize "
            "and PYTHON* variables may already have run; start it as 'python3 -I -S seccomp-launch ...'")


def _fail(code, message):
    sys.stderr.write(f"seccomp-launch: {message}\n")
    return code


QUIET = []  # set by --quiet: informational notes are not written (failures always are)


def _note(message):
    if not QUIET:
        sys.stderr.write(f"seccomp-launch: {message}\n")


def _load_filter(opts):
    """Read, decode and check the filter: (raw, program) or an exit code."""
    path = opts["filter"]
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        return _fail(EXIT_USAGE, f"cannot read filter {path!r}: {exc.strerror}")
    try:
        program = decode(raw)
        validate(program)
    except FilterError as exc:
        return _fail(EXIT_INVALID, f"invalid filter {path!r}: {exc}")
    try:
        check_for_this_machine(program, allow_unchecked_arch=opts["allow_unchecked_arch"])
    except FilterError as exc:
        return _fail(EXIT_ARCH, f"refusing filter {path!r}: {exc}")
    return raw, program


def _open_status():
    try:
        return os.open("/proc/self/status", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None


def _filters_in_force(status_fd, libc):
    """(seccomp mode, filter count or None); through the pre-opened status, else prctl(PR_GET_SECCOMP)."""
    if status_fd is not None:
        status = proc_status(status_fd)
        return status.get("Seccomp"), int(status.get("Seccomp_filters", "0") or 0)
    rc, _err = libc.prctl(PR_GET_SECCOMP)
    return str(rc), None


def _sandbox(opts, raw, status_fd, libc):
    """Landlock then seccomp, then the in-force check; an exit code on failure, else None."""
    if opts["landlock_ro"] or opts["landlock_rw"]:
        try:
            abi, skipped = apply_landlock(opts["landlock_ro"], opts["landlock_rw"], opts["landlock_required"],
                                          scope=not opts["no_landlock_scope"])
        except OSError as exc:
            return _fail(EXIT_APPLY, f"Landlock: {exc.strerror or exc}")
        if skipped:
            _note(f"Landlock: skipped missing paths {', '.join(skipped)}")
        if abi == 0:
            _note("Landlock is not available in this kernel; continuing without it")
    if raw is None:
        return None
    _mode, before = _filters_in_force(status_fd, libc)
    threads = int(proc_status(status_fd).get("Threads", "0") or 0) if status_fd is not None else None
    try:
        method = install_filter(raw, threads=threads)
    except OSError as exc:
        return _fail(EXIT_APPLY, f"kernel refused the filter: {exc.strerror or exc}")
    mode, after = _filters_in_force(status_fd, libc)
    if mode != "2" or (before is not None and after <= before):
        return _fail(EXIT_CHECK, f"filter not in force after install (Seccomp: {mode}, Seccomp_filters: {after}, "
                                 f"before: {before})")
    if method.startswith("prctl"):
        _note(f"installed with {method}")
    return None


def execvp(file, args):
    """os.execvp without os.py: the PATH search of execvp(3); the first error other than 'not there' wins."""
    if "/" in file:
        os.execv(file, args)
    path = os.environ.get(b"PATH", b"/usr/local/bin:/usr/bin:/bin").decode("utf-8", "surrogateescape")
    first = last = None
    for directory in path.split(":"):
        try:
            os.execv(f"{directory or '.'}/{file}", args)
        except OSError as exc:
            last = exc
            if exc.errno not in (_errno.ENOENT, _errno.ENOTDIR) and first is None:
                first = exc
    raise first or last or OSError(_errno.ENOENT, os.strerror(_errno.ENOENT))


def _run(argv):
    problem = isolation_problem()
    if problem:
        return _fail(EXIT_NOT_ISOLATED, f"refusing to run: {problem}")
    try:
        opts, command = parse_args(argv)
    except UsageError as exc:
        return _fail(EXIT_USAGE, f"{exc}; {USAGE}")
    if opts["help"]:
        sys.stdout.write(USAGE + "\n")
        return 0
    if opts["quiet"]:
        QUIET.append(True)
    raw = None
    if opts["filter"]:
        loaded = _load_filter(opts)
        if isinstance(loaded, int):
            return loaded
        raw, program = loaded
        if opts["check"]:
            sys.stdout.write(f"{opts['filter']}: {len(program)} instructions, valid for {native_arch()}\n")
            return 0
    try:
        libc = _libc()  # everything imported before the sandbox: an interpreter outside the Landlock paths works
    except (ImportError, OSError, AttributeError) as exc:
        return _fail(EXIT_APPLY, f"no C library interface (_ctypes): {exc}")
    status_fd = _open_status()
    try:
        code = _sandbox(opts, raw, status_fd, libc)
    finally:
        if status_fd is not None:
            os.close(status_fd)
    if code is not None:
        return code
    try:
        execvp(command[0], command)
    except OSError as exc:
        code = 127 if exc.errno == _errno.ENOENT else 126
        return _fail(code, f"cannot execute {command[0]!r}: {exc.strerror}")
    return 0  # not reached


def main(argv=None):
    try:
        return _run(sys.argv[1:] if argv is None else list(argv))
    except Exception as exc:  # noqa: BLE001 - every failure is one line and a documented code, never a traceback
        return _fail(EXIT_INTERNAL, f"unexpected error: {type(exc).__name__}: {exc}")


if __name__ == "__main__":
    raise SystemExit(main())
