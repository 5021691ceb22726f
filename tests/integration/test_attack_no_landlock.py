"""Attack-first test of the L1 launcher on a kernel without Landlock (issue 13 class 1, issue 10 L1 on the k3s line).

OpenShell applies Landlock `best_effort` by default: where the kernel has none, the sandbox starts WITHOUT filesystem
rules and only logs it (crates/openshell-sandbox/src/sandbox/linux/landlock.rs @v0.0.111 L150-300). On the k3s line
the hardening launcher applies the sandbox's Landlock rules to every session (module sandbox_harden, flags from
_k8s_patches.launcher_flags); if it did so best effort as well, an agent on a host whose kernel lost Landlock (a
Docker Desktop kernel update, a boot parameter) would run with no filesystem rules while the hardening reports done.

The kernel here has Landlock, so "no Landlock" is made the way such a kernel answers: an outer seccomp filter returns
ENOSYS for landlock_create_ruleset (the launcher's probe, landlock_abi(), then reads ABI 0, as on a kernel built
without it - Documentation/userspace-api/landlock.rst: ENOSYS when Landlock is not supported). The session must then
not start (the launcher's exit 5), rather than run the command unconfined.
"""
from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _k8s_patches as K
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import seccomp_launcher as L
from ansible_collections.agentsec.nemoclaw.plugins.module_utils._bpf import Assembler

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "seccomp_probe"))
import launch as H  # noqa: E402  (tests/integration/seccomp_probe/launch.py)

pytestmark = [
    pytest.mark.live_kernel,
    pytest.mark.oracle("kernel"),
    pytest.mark.skipif(sys.platform != "linux" or L.landlock_abi() < 1, reason="needs a kernel with Landlock to take it away"),
]
SYS_LANDLOCK_CREATE_RULESET = 444  # the same number on x86_64 and aarch64 (asm-generic and syscall_64.tbl)


def no_landlock_filter(path):
    """A filter that answers landlock_create_ruleset with ENOSYS and allows everything else."""
    asm = Assembler()
    asm.load(4, "arch")
    asm.jump("JEQ", L.AUDIT_ARCH[L.native_arch()], None, "allow")
    asm.load(0, "nr")
    asm.jump("JEQ", SYS_LANDLOCK_CREATE_RULESET, "enosys", None)
    asm.label("allow")
    asm.ret(L.SECCOMP_RET_ALLOW)
    asm.label("enosys")
    asm.ret(L.SECCOMP_RET_ERRNO | errno.ENOSYS)
    program, _comments = asm.assemble()
    path.write_bytes(L.encode(program))
    return path


def session(tmp_path, inner_flags, *command):
    """The kernel without Landlock (outer launcher, filter only), then the hardening launcher with `inner_flags`."""
    outer = H.launcher_cmd(no_landlock_filter(tmp_path / "no-landlock.bpf"))
    inner = [H.SYSTEM_PYTHON, "-I", "-S", H.launcher_path(), *inner_flags, "--"]
    return subprocess.run([*outer, *inner, *command], capture_output=True, text=True, timeout=60, check=False)


def test_the_stand_in_kernel_has_no_landlock(tmp_path):
    # the premise: behind the outer filter the launcher's own probe finds no Landlock
    probe = [H.SYSTEM_PYTHON, "-I", "-S", "-c",
             f"import sys; sys.path.insert(0, {os.path.dirname(L.__file__)!r}); import seccomp_launcher as L; "
             "print(L.landlock_abi())"]
    outer = H.launcher_cmd(no_landlock_filter(tmp_path / "no-landlock.bpf"))
    res = subprocess.run([*outer, *probe], capture_output=True, text=True, timeout=60, check=False)
    assert (res.returncode, res.stdout.strip()) == (0, "0"), res.stderr


def test_a_hardened_session_does_not_start_without_landlock(tmp_path):
    # the flags the kubernetes backend gives every session when L1 is enabled
    flags = K.launcher_flags({"l1": True, "landlock_ro": H.LANDLOCK_RO, "landlock_rw": ["/tmp"]})
    res = session(tmp_path, flags, "/bin/echo", "ran unconfined")
    assert "ran unconfined" not in res.stdout, "the session ran with no filesystem rules on a kernel without Landlock"
    assert res.returncode == 5, (res.returncode, res.stderr)
    assert "Landlock is not available" in res.stderr


def test_best_effort_is_still_there_for_who_asks(tmp_path):
    # the launcher's own default (no --landlock-required) stays best effort: the attack above works against it
    res = session(tmp_path, ["--quiet", "--landlock-ro", "/usr", "--landlock-rw", "/tmp"], "/bin/echo", "ran")
    assert (res.returncode, res.stdout.strip()) == (0, "ran"), res.stderr
