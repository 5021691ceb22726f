#!/usr/bin/python
# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: seccomp_filter
short_description: Compile a socket-family seccomp BPF filter and install it (and its launcher) on disk
version_added: 0.1.0
description:
  - Compiles the paper's L2 fix (a seccomp filter that makes C(socket(AF_PACKET)) and C(socket(AF_NETLINK)) fail) for
    a target architecture and writes the raw C(struct sock_filter) array to O(dest), atomically.
  - The default O(profile=hardened) filter checks C(seccomp_data.arch) first, rejects x32 syscall numbers on x86_64,
    compares only the low 32 bits of the family argument, denies C(socket(AF_INET, SOCK_PACKET)), applies the same
    family rules to C(socketpair()), and denies C(io_uring_setup/enter/register). Everything else is allowed.
  - O(profile=paper) emits exactly the paper's 7-instruction aarch64 program, for comparison and audit.
  - The output is compatible with C(bwrap --seccomp FD) and with the collection's launcher (O(launcher_dest)), which
    installs it per process before executing the agent.
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
  deny_families:
    description:
      - Address families whose C(socket)/C(socketpair) calls are refused, as names (V(AF_PACKET), V(packet)) or numbers.
    type: list
    elements: raw
    default: [AF_PACKET, AF_NETLINK]
  allow_netlink_protocols:
    description:
      - Netlink protocols still allowed when V(AF_NETLINK) is denied, e.g. V(NETLINK_ROUTE), which Node.js needs for
        C(os.networkInterfaces()) (OpenShell relaxed its filter the same way in v0.0.55).
      - Trade-off - NETLINK_ROUTE also lets a process read (not change, without CAP_NET_ADMIN) routes and addresses.
    type: list
    elements: raw
    default: []
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
    type: path
notes:
  - The filter is a deny-list by design (like OpenShell's own); C(seccomp-tools audit) reports that as a permissive default.
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

- name: Keep NETLINK_ROUTE for Node.js agents
  agentsec.nemoclaw.seccomp_filter:
    arch: aarch64
    dest: /opt/agentsec/etc/agent.bpf
    allow_netlink_protocols: [NETLINK_ROUTE]

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
  sample: 21
sha256:
  description: SHA-256 of the compiled bytes.
  returned: always
  type: str
common_path_instructions:
  description: Instructions executed for a common non-socket syscall (C(getpid)); the paper's filter takes 3.
  returned: always
  type: int
  sample: 6
max_non_socket_path_instructions:
  description: Longest path any syscall other than socket/socketpair/io_uring takes.
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
from ansible_collections.agentsec.nemoclaw.plugins.module_utils._seccomp_policy import PolicyError, compile_policy

SPECIAL = ("socket", "socketpair", "io_uring_setup", "io_uring_enter", "io_uring_register")


def launcher_source():
    """The launcher's own source (plus a shebang), also when running from an AnsiballZ zip."""
    loader = getattr(seccomp_launcher, "__loader__", None)
    source = loader.get_source(seccomp_launcher.__name__) if loader is not None else None
    if source is None:
        with open(seccomp_launcher.__file__, "rb") as fh:
            source = fh.read()
    if isinstance(source, str):
        source = source.encode("utf-8")
    return b"#!/usr/bin/env python3\n" + source


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
            deny_families=dict(type="list", elements="raw", default=["AF_PACKET", "AF_NETLINK"]),
            allow_netlink_protocols=dict(type="list", elements="raw", default=[]),
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
                                  p["mismatched_arch_action"], p["deny_io_uring"])
    except PolicyError as exc:
        module.fail_json(msg=str(exc))

    others = [n for n in T.SYSCALLS[arch] if n not in SPECIAL]
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
