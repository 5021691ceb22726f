#!/usr/bin/python
# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: seccomp_filter
short_description: Compile the agent seccomp BPF filter and install it (and its launcher) on disk
version_added: 0.1.0
description:
  - Compiles the paper's L2 fix, hardened, for a target architecture and writes the raw C(struct sock_filter) array
    to O(dest), atomically.
  - The default O(profile=hardened) filter checks C(seccomp_data.arch) first, rejects x32 syscall numbers on x86_64,
    and treats socket address families as an B(allow-list) - C(socket()) and C(socketpair()) succeed only for
    O(allow_families) (default AF_UNIX, AF_INET, AF_INET6 and AF_NETLINK restricted to O(allow_netlink_protocols)),
    comparing the low 32 bits of each argument like the kernel does; C(socket(AF_INET, SOCK_PACKET)) is refused.
  - It refuses new namespaces on every entry point (C(clone) and C(unshare) with any C(CLONE_NEW*) flag, C(setns);
    C(clone3) returns ENOSYS so the C library falls back to C(clone)), the kernel keyring, access to other processes,
    BPF/perf/userfaultfd, io_uring, mounts, modules/kexec and other system-administration calls, and odd
    C(personality) values (O(deny_groups)). Everything else is allowed; threads keep working.
  - O(profile=paper) emits exactly the paper's 7-instruction aarch64 program, for comparison and audit.
  - The output is compatible with C(bwrap --seccomp FD) and with the collection's launcher (O(launcher_dest)), which
    installs it per process (with a Landlock ruleset, scoped on ABI 6 and later) before executing the agent.
author: agentsec.nemoclaw contributors (@agentsec)
extends_documentation_fragment:
  - agentsec.nemoclaw.attributes
  - ansible.builtin.files
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - The diff shows the rule summary, never the binary.
  idempotent:
    support: full
options:
  arch:
    description:
      - Target architecture. V(auto) uses the machine the module runs on.
    type: str
    choices: [auto, aarch64, x86_64]
    default: auto
  dest:
    description:
      - Where to write the compiled filter. Written atomically; never left partial.
      - When omitted, the module only compiles and returns the listing.
    type: path
  profile:
    description:
      - V(hardened) closes the known bypasses of the paper's filter.
      - V(paper) is the paper's listing (aarch64 only).
      - V(paper_translated) is the paper's logic with the target architecture's C(socket) number (for bypass comparisons).
    type: str
    choices: [hardened, paper, paper_translated]
    default: hardened
  allow_families:
    description:
      - The only address families whose C(socket)/C(socketpair) calls succeed, as names (V(AF_UNIX), V(unix)) or
        numbers. Every other family is refused, including families the kernel adds later.
      - V(AF_NETLINK) in the list allows only the protocols in O(allow_netlink_protocols).
    type: list
    elements: raw
    default: [AF_UNIX, AF_INET, AF_INET6, AF_NETLINK]
    version_added: 0.2.0
  deny_families:
    description:
      - Families removed from O(allow_families). Kept for 0.1 playbooks; with the allow-list default it is rarely needed.
      - V(AF_NETLINK) here keeps its 0.1 meaning - netlink is refused except for the protocols listed explicitly in
        O(allow_netlink_protocols).
      - The 0.1 default was V([AF_PACKET, AF_NETLINK]); since 0.2 the default is empty, because everything outside
        O(allow_families) is refused anyway.
    type: list
    elements: raw
    default: []
  allow_netlink_protocols:
    description:
      - Netlink protocols (the third C(socket) argument, low 32 bits) that AF_NETLINK sockets may use.
      - When omitted, V([NETLINK_ROUTE]) - OpenClaw's gateway and Node.js' C(os.networkInterfaces()) need it for
        C(getifaddrs()), and OpenShell allows exactly that since v0.0.55 (#1568). NETLINK_ROUTE lets a process read
        routes and addresses; changing them needs CAP_NET_ADMIN, which the agent does not have.
      - V([]) refuses every netlink socket (then Node.js agents that enumerate interfaces fail to start).
      - When O(deny_families) contains V(AF_NETLINK) and this is omitted, all netlink is refused (0.1 behaviour).
    type: list
    elements: raw
  deny_groups:
    description:
      - Groups of system calls the hardened filter refuses (the reason for each call is in docs/seccomp.md).
      - V(namespaces) - C(clone)/C(unshare) with C(CLONE_NEW*) flags, C(setns), and C(clone3) answered with ENOSYS.
      - V(keyring) - C(add_key), C(keyctl), C(request_key) (the keyring is shared by every process of the uid).
      - V(process_access) - C(ptrace), C(process_vm_readv/writev), C(kcmp), C(pidfd_getfd), C(process_madvise).
      - V(kernel_interfaces) - C(bpf), C(perf_event_open), C(userfaultfd).
      - V(mounts) - C(mount), C(umount2), C(pivot_root), C(chroot) and the new mount API.
      - V(modules) - C(init_module), C(finit_module), C(delete_module), C(kexec_load), C(kexec_file_load).
      - V(system) - C(reboot), C(swapon/off), C(acct), setting the clock, host/domain name, C(syslog), C(quotactl),
        C(vhangup), C(open_by_handle_at) and obsolete calls.
      - V(personality) - C(personality()) other than the values Docker's default profile allows.
    type: list
    elements: str
    choices: [namespaces, keyring, process_access, kernel_interfaces, mounts, modules, system, personality]
    default: [namespaces, keyring, process_access, kernel_interfaces, mounts, modules, system, personality]
    version_added: 0.2.0
  errno:
    description: The errno a denied call returns, as a name or a number in 1..4095.
    type: raw
    default: EPERM
  mismatched_arch_action:
    description: What happens to a syscall made through another ABI (i386 C(int 0x80), AArch32) or with an x32 number.
    type: str
    choices: [kill_process, kill_thread, trap]
    default: kill_process
  deny_io_uring:
    description: Deny C(io_uring_setup), C(io_uring_enter) and C(io_uring_register); io_uring can create sockets without C(socket()).
    type: bool
    default: true
  launcher_dest:
    description:
      - Also install the single-file launcher (C(seccomp-launch)) at this path with mode 0755.
      - Its first line is C(#!/usr/bin/python3 -IS); run it as C(python3 -I -S PATH ...) when the interpreter lives
        elsewhere. It refuses to run (exit 7) without C(-I -S), because a plain C(python3) runs the agent's user
        site (C(.pth) files) and C(PYTHON*) variables before the sandbox exists.
    type: path
notes:
  - Socket families are an allow-list; other system calls are default-allow with targeted denials (like Docker's and
    OpenShell's filters), so C(seccomp-tools audit) reports a permissive default.
  - The kernel documentation warns that system call filtering is not a sandbox by itself; use it with Landlock,
    namespaces and the proxy.
seealso:
  - name: docs/seccomp.md
    description: Listings, bypass table and launcher usage.
    link: https://github.com/agentsec/nemoclaw/blob/main/docs/seccomp.md
"""

EXAMPLES = r"""
- name: Compile the hardened filter for the sandbox's architecture and install the launcher
  agentsec.nemoclaw.seccomp_filter:
    dest: /opt/agentsec/etc/agent.bpf
    launcher_dest: /opt/agentsec/bin/seccomp-launch
    mode: "0444"

- name: Refuse every netlink socket (agents that never enumerate interfaces)
  agentsec.nemoclaw.seccomp_filter:
    arch: aarch64
    dest: /opt/agentsec/etc/agent.bpf
    allow_netlink_protocols: []

- name: Keep ptrace for a debugging session, everything else as hardened
  agentsec.nemoclaw.seccomp_filter:
    dest: /opt/agentsec/etc/agent.bpf
    deny_groups: [namespaces, keyring, kernel_interfaces, mounts, modules, system, personality]

- name: Show the paper's original program for an audit
  agentsec.nemoclaw.seccomp_filter:
    arch: aarch64
    profile: paper
  register: paper_filter
"""

RETURN = r"""
arch:
  description: Architecture the filter was compiled for.
  returned: always
  type: str
  sample: x86_64
disassembly:
  description: Readable listing, one instruction per line.
  returned: always
  type: list
  elements: str
  sample: ["[0] BPF_LD_W_ABS offset=4 -- load arch"]
instructions:
  description: Number of BPF instructions.
  returned: always
  type: int
  sample: 86
sha256:
  description: SHA-256 of the compiled bytes.
  returned: always
  type: str
common_path_instructions:
  description: Instructions executed for a common syscall without a rule (C(getpid)); the paper's filter takes 3.
  returned: always
  type: int
  sample: 10
max_non_socket_path_instructions:
  description: Longest path any syscall without a rule takes (of the syscalls in the collection's table).
  returned: always
  type: int
rules:
  description: Machine-readable rule summary.
  returned: always
  type: dict
dest:
  description: Path of the filter file.
  returned: when O(dest) is set
  type: str
launcher_dest:
  description: Path of the launcher.
  returned: when O(launcher_dest) is set
  type: str
"""

import hashlib
import os
import platform
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _seccomp_tables as T
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import seccomp_launcher
from ansible_collections.agentsec.nemoclaw.plugins.module_utils._seccomp_policy import (
    ALL_GROUPS,
    DEFAULT_ALLOW_FAMILIES,
    PolicyError,
    compile_policy,
)

SHEBANG = b"#!/usr/bin/python3 -IS\n"  # isolated, no site: nothing from HOME, cwd or PYTHON* runs before the sandbox


def launcher_source():
    """The launcher's own source (plus a shebang), also when running from an AnsiballZ zip."""
    loader = getattr(seccomp_launcher, "__loader__", None)
    source = loader.get_source(seccomp_launcher.__name__) if loader is not None else None
    if source is None:
        with open(seccomp_launcher.__file__, "rb") as fh:
            source = fh.read()
    if isinstance(source, str):
        source = source.encode("utf-8")
    return SHEBANG + source


def _read(path):
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        return None


def write_atomic(module, path, data, mode=None):
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        module.fail_json(msg=f"dest {path!r}: directory {directory!r} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".seccomp_filter.", dir=directory)
    except OSError as exc:
        module.fail_json(msg=f"dest {path!r} is not writable: {exc.strerror}")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        if mode is not None:
            os.chmod(tmp, mode)
        module.atomic_move(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def place(module, path, data, mode=None):
    """Write `data` to `path` when it differs (not in check mode); then apply file attributes. Returns changed."""
    changed = _read(path) != data
    if changed and not module.check_mode:
        write_atomic(module, path, data, mode)
    if not module.check_mode or os.path.exists(path):
        file_args = module.load_file_common_arguments(module.params, path=path)
        if mode is not None:
            file_args["mode"] = mode
        changed = module.set_fs_attributes_if_different(file_args, changed)
    return changed


def main():
    module = AnsibleModule(
        argument_spec=dict(
            arch=dict(type="str", default="auto", choices=["auto", "aarch64", "x86_64"]),
            dest=dict(type="path"),
            profile=dict(type="str", default="hardened", choices=["hardened", "paper", "paper_translated"]),
            allow_families=dict(type="list", elements="raw", default=list(DEFAULT_ALLOW_FAMILIES)),
            deny_families=dict(type="list", elements="raw", default=[]),
            allow_netlink_protocols=dict(type="list", elements="raw"),
            deny_groups=dict(type="list", elements="str", default=list(ALL_GROUPS), choices=list(ALL_GROUPS)),
            errno=dict(type="raw", default="EPERM"),
            mismatched_arch_action=dict(type="str", default="kill_process", choices=["kill_process", "kill_thread", "trap"]),
            deny_io_uring=dict(type="bool", default=True),
            launcher_dest=dict(type="path"),
        ),
        add_file_common_args=True,
        supports_check_mode=True,
    )
    p = module.params
    arch = p["arch"]
    if arch == "auto":
        try:
            arch = seccomp_launcher.normalize_arch(platform.machine())
        except seccomp_launcher.FilterError as exc:
            module.fail_json(msg=f"arch=auto: {exc}")
    try:
        compiled = compile_policy(arch, p["profile"], p["deny_families"], p["allow_netlink_protocols"], p["errno"],
                                  p["mismatched_arch_action"], p["deny_io_uring"], allow_families=p["allow_families"],
                                  deny_groups=p["deny_groups"])
    except PolicyError as exc:
        module.fail_json(msg=str(exc))

    others = [n for n in T.SYSCALLS[arch] if n not in compiled.special]
    result = dict(
        changed=False,
        arch=arch,
        disassembly=compiled.listing,
        instructions=len(compiled.program),
        sha256=hashlib.sha256(compiled.raw).hexdigest(),
        common_path_instructions=compiled.path_length("getpid"),
        max_non_socket_path_instructions=max(compiled.path_length(n) for n in others),
        rules=compiled.rules,
    )
    if p["dest"]:
        dest = p["dest"]
        before = _read(dest)
        result["dest"] = dest
        result["changed"] = place(module, dest, compiled.raw)
        if module._diff and before != compiled.raw:
            result["diff"] = dict(before_header=dest, after_header=dest,
                                  before="" if before is None else _describe(before, arch),
                                  after=compiled.summary_text())
    if p["launcher_dest"]:
        result["launcher_dest"] = p["launcher_dest"]
        result["changed"] = place(module, p["launcher_dest"], launcher_source(), mode=0o755) or result["changed"]
    module.exit_json(**result)


def _describe(raw, arch):
    """Summary of an existing filter file for the diff: its size, hash and the arch it checks."""
    try:
        program = seccomp_launcher.decode(raw)
        checks = seccomp_launcher.filter_arch(program) or "no arch check"
        shape = f"{len(program)} instructions, arch check: {checks}"
    except seccomp_launcher.FilterError as exc:
        shape = f"not a valid filter ({exc})"
    return f"existing filter: {shape}, sha256 {hashlib.sha256(raw).hexdigest()} (target arch {arch})\n"


if __name__ == "__main__":
    main()
