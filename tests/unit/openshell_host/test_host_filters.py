"""The stand-in supervisors' seccomp filters: the rule lists against upstream (seccomp.rs @v0.0.111 for 0.0.116, the
child filter list of 0.1.x quoted in the reference sheet from child_seccomp.rs @25670ec2), and the filters loaded into
a real process (the kernel answers; run with the system python3, which has Debian's libseccomp bindings)."""
from __future__ import annotations

import json
import platform
import re
import shutil
import subprocess

import _host_upstream as U
import pytest

U.lib_path()
SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin")


def have_seccomp():
    return SYSTEM_PYTHON and subprocess.run([SYSTEM_PYTHON, "-c", "import seccomp"], capture_output=True,
                                            check=False).returncode == 0


@pytest.mark.oracle("upstream")
def test_0_0_116_unconditional_list_is_upstreams():
    source = U.upstream("crates/openshell-supervisor-process/src/sandbox/linux/seccomp.rs")
    body = source[source.index("fn build_filter_rules"):source.index("fn add_socket_domain_rule")]
    upstream = re.findall(r"rules\.entry\(libc::SYS_(\w+)\)\.or_default\(\);", body)
    text = (U.STANDIN / "supervisor-0.0/filter_host.py").read_text()
    ours = re.search(r"UNCONDITIONAL = \((.*?)\)\n", text, re.S).group(1)
    assert re.findall(r'"(\w+)"', ours) == upstream
    assert re.findall(r"libc::(AF_\w+),", body[:body.index("if !allow_inet")]) == ["AF_PACKET", "AF_BLUETOOTH", "AF_VSOCK"]


@pytest.mark.oracle("upstream")
def test_0_1_child_list_is_the_reference_sheets():
    sheet = U.reference()
    quoted = sheet[sheet.index("**EPERM, unconditional:**"):sheet.index("**EPERM, conditional:**")]
    upstream = re.findall(r"\b([a-z0-9_]+)\b", quoted.split(":", 1)[1].replace("EPERM", ""))
    text = (U.STANDIN / "supervisor-0.1/filter_v01.py").read_text()
    ours = re.findall(r'"(\w+)"', re.search(r"UNCONDITIONAL = \((.*?)\)\n", text, re.S).group(1))
    assert ours == [n for n in upstream if n]


PROBE_V0 = r"""
import ctypes, errno, socket, sys, threading
sys.path.insert(0, sys.argv[1])
import filter_host
filter_host.load_agent_filters()
libc = ctypes.CDLL(None, use_errno=True)
def sock(*a):
    try:
        socket.socket(*a).close(); return "ok"
    except OSError as e: return errno.errorcode[e.errno]
t = threading.Thread(target=lambda: None); t.start(); t.join()
out = {"memfd": "ok" if libc.syscall(319, b"x", 0) >= 0 else errno.errorcode[ctypes.get_errno()],
       "packet": sock(17, 3, 0), "netlink_route": sock(16, 3, 0), "netlink_diag": sock(16, 3, 4),
       "clone3": errno.errorcode[ctypes.get_errno()] if libc.syscall(435, None, 0) < 0 else "ok", "threads": "ok"}
import json; print(json.dumps(out))
"""

PROBE_V1 = r"""
import ctypes, errno, socket, sys, threading
sys.path.insert(0, sys.argv[1])
import filter_v01
filter_v01.load_child_filters()
libc = ctypes.CDLL(None, use_errno=True)
def sock(*a):
    try:
        socket.socket(*a).close(); return "ok"
    except OSError as e: return errno.errorcode[e.errno]
try:
    t = threading.Thread(target=lambda: None); t.start(); t.join(); threads = "ok"
except RuntimeError: threads = "no-threads"
out = {"packet": sock(17, 15, 0), "raw_inet": sock(2, 3, 1), "tcp": sock(2, 1, 0), "netlink_diag": sock(16, 3, 4),
       "setpriority": "ok" if libc.syscall(141, 0, 0, 0) == 0 else errno.errorcode[ctypes.get_errno()],
       "clone3": errno.errorcode[ctypes.get_errno()] if libc.syscall(435, None, 0) < 0 else "ok", "threads": threads}
import json; print(json.dumps(out))
"""


@pytest.mark.oracle("kernel", "upstream")
@pytest.mark.skipif(not have_seccomp() or platform.machine() != "x86_64",
                    reason="needs /usr/bin/python3 with python3-seccomp on x86_64 (the probe uses x86_64 syscall numbers)")
def test_0_0_116_filter_in_the_kernel():
    out = subprocess.run([SYSTEM_PYTHON, "-c", PROBE_V0, str(U.STANDIN / "supervisor-0.0")], capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out) == {"memfd": "EPERM", "packet": "EPERM", "netlink_route": "ok", "netlink_diag": "EPERM",
                               "clone3": "ENOSYS", "threads": "ok"}


@pytest.mark.oracle("kernel", "upstream")
@pytest.mark.skipif(not have_seccomp() or platform.machine() != "x86_64",
                    reason="needs /usr/bin/python3 with python3-seccomp on x86_64 (the probe uses x86_64 syscall numbers)")
def test_0_1_filters_in_the_kernel():
    out = subprocess.run([SYSTEM_PYTHON, "-c", PROBE_V1, str(U.STANDIN / "supervisor-0.1")], capture_output=True, text=True,
                         check=True).stdout
    # clone3 EPERM (child_seccomp.rs @25670ec2) and glibc's fallback only on ENOSYS: no thread starts
    assert json.loads(out) == {"packet": "EAFNOSUPPORT", "raw_inet": "EPROTONOSUPPORT", "tcp": "ok", "netlink_diag": "ok",
                               "setpriority": "EPERM", "clone3": "EPERM", "threads": "no-threads"}
