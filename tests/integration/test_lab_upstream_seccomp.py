"""The lab's re-creation of OpenShell v0.0.26's agent seccomp filter (roles/lab/files/openshell/supervisor/
upstream_filter.py), loaded into forked children and probed; every expectation cites the upstream line it comes from
(crates/openshell-sandbox/src/sandbox/linux/seccomp.rs @v0.0.26 unless another tag is named).
"""
from __future__ import annotations

import json
import os
import pathlib
import platform
import subprocess
import sys
import textwrap

import pytest

from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _seccomp_tables as T
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import seccomp_launcher as L

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "seccomp_probe"))
import launch as H  # noqa: E402  (tests/integration/seccomp_probe/launch.py)

SUPERVISOR = pathlib.Path(__file__).resolve().parents[2] / "roles/lab/files/openshell/supervisor"
pytestmark = [
    pytest.mark.oracle("upstream", "kernel"),
    pytest.mark.skipif(sys.platform != "linux" or platform.machine() != "x86_64", reason="probes are written for Linux x86_64"),
]
# Loads the filter in this (forked) child, then execs the probe under it.
DRIVER = textwrap.dedent("""
    import json, os, sys
    sys.path.insert(0, sys.argv[1])
    import upstream_filter as U
    U.build_upstream_filter(set(json.loads(sys.argv[2]))).load()
    os.execv(sys.argv[3], sys.argv[3:])
""")
EXPORT = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[1])
    import upstream_filter as U
    U.build_upstream_filter(set(json.loads(sys.argv[2]))).export_bpf(open(sys.argv[3], "wb"))
""")


@pytest.fixture(scope="module", autouse=True)
def _libseccomp():
    if not os.path.exists(H.SYSTEM_PYTHON) or subprocess.run([H.SYSTEM_PYTHON, "-c", "import seccomp"], capture_output=True,
                                                             check=False).returncode:
        pytest.skip("libseccomp's Python bindings (Debian python3-seccomp) are not installed for /usr/bin/python3")


def probe(gaps, name):
    prefix = [H.SYSTEM_PYTHON, "-c", DRIVER, str(SUPERVISOR), json.dumps(sorted(gaps))]
    return H.run_probe(prefix, name)


ALL = {"netlink_open", "clone_newuser", "clone3_open", "missing_blocks", "no_sock_packet"}


@pytest.mark.live_kernel
@pytest.mark.parametrize(("name", "want", "source"), [
    ("af_packet_raw", "EPERM", "seccomp.rs:53"),
    ("af_vsock", "EPERM", "seccomp.rs:53"),
    ("high_bit_vsock", "EPERM", "Dword = low 32 bits: seccompiler condition.rs:93-110"),
    ("af_netlink_route", "ok", "seccomp.rs:54-58: AF_NETLINK only blocked when !allow_inet"),
    ("af_netlink_sock_diag", "ok", "seccomp.rs:54-58"),
    ("sock_packet", "ok", "no SOCK_PACKET rule (seccomp.rs:52-63); root in the test has CAP_NET_RAW"),
    ("unshare_newuser", "EPERM", "seccomp.rs:92-97"),
    ("clone_newuser", "ok", "only unshare is checked (seccomp.rs:91-97)"),
    ("clone3_newuser", "ok", "no clone3 rule"),
    ("setns", "EINVAL", "setns not blocked at v0.0.26 (added v0.0.29, seccomp.rs:158 @v0.0.29)"),
    ("ptrace", "EPERM", "seccomp.rs:71"),
    ("io_uring_setup", "EPERM", "seccomp.rs:77"),
    ("af_inet", "ok", "proxy mode: seccomp.rs:33, 54"),
    ("threads_and_children", "ok", "clone without CLONE_NEWUSER is allowed"),
])
def test_v0_0_26_exactly(name, want, source):
    assert probe(ALL, name)["result"] == want, source


@pytest.mark.live_kernel
@pytest.mark.parametrize(("gap", "name", "open_result", "closed_result"), [
    ("netlink_open", "af_netlink_route", "ok", "EPERM"),        # closed as v0.0.33 seccomp.rs:115-119
    ("clone_newuser", "clone_newuser", "ok", "EPERM"),          # closed as v0.0.29 seccomp.rs:185-191
    ("clone3_open", "clone3_newuser", "ok", "ENOSYS"),          # closed as v0.0.29 seccomp.rs:76-93
    ("missing_blocks", "setns", "EINVAL", "EPERM"),             # closed as v0.0.29 seccomp.rs:158
    ("no_sock_packet", "sock_packet", "ok", "EPERM"),           # lab deviation: no upstream version closes it
])
def test_each_gap_switch_opens_exactly_its_defect(gap, name, open_result, closed_result):
    assert probe(ALL, name)["result"] == open_result
    assert probe(ALL - {gap}, name)["result"] == closed_result
    if gap == "clone3_open":  # glibc falls back to clone() on ENOSYS: threads and children keep working
        assert probe(ALL - {gap}, "threads_and_children")["result"] == "ok"


@pytest.mark.parametrize("gaps", [ALL, set()])
def test_exported_program_compares_low_32_bits_and_kills_foreign_arches(gaps, tmp_path):
    """The exported BPF, run through the collection's interpreter: Dword compares (high bits ignored, like
    seccompiler) and KILL_PROCESS for another arch token (seccompiler src/backend/bpf.rs:73-79)."""
    out = tmp_path / "upstream.bpf"
    subprocess.run([H.SYSTEM_PYTHON, "-c", EXPORT, str(SUPERVISOR), json.dumps(sorted(gaps)), str(out)], check=True)
    program = L.decode(out.read_bytes())
    L.validate(program)
    nr, token = T.SYSCALLS["x86_64"], L.AUDIT_ARCH["x86_64"]

    def run(name, *args, arch=token):
        return L.action_name(L.interpret(program, L.seccomp_data(nr[name], arch, args))[0])

    assert run("socket", 40, 1, 0) == run("socket", 0x1_00000028, 1, 0) == "ERRNO(EPERM)"
    assert run("socket", 0x1_00000002, 1, 0) == "ALLOW"
    assert run("getpid", arch=L.AUDIT_ARCH["i386"]) == "KILL_PROCESS"
    assert run("seccomp", 1, 0, 0) == "ERRNO(EPERM)" and run("seccomp", 0x1_00000001) == "ERRNO(EPERM)"
    assert run("execveat", 3, 0, 0, 0, 0x1000) == "ERRNO(EPERM)" and run("execveat", 3, 0, 0, 0, 0) == "ALLOW"
    assert run("memfd_create") == "ERRNO(EPERM)" and run("keyctl") == "ALLOW"  # seccomp.rs:69; no keyring rule
    assert run("socket", 16, 3, 0) == ("ALLOW" if gaps else "ERRNO(EPERM)")
    assert run("clone3") == ("ALLOW" if gaps else "ERRNO(ENOSYS)")


@pytest.mark.oracle("self")
def test_unknown_gap_is_refused():
    proc = subprocess.run([H.SYSTEM_PYTHON, "-c", EXPORT, str(SUPERVISOR), json.dumps(["filter_bypasses"]), "/dev/null"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode != 0 and "unknown gap(s) ['filter_bypasses']" in proc.stderr
