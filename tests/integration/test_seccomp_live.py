"""Live kernel tests: filters loaded through the launcher into child processes, never into pytest itself.

The bypass table these tests assert is the one in docs/seccomp.md.
"""
from __future__ import annotations

import json
import os
import pathlib
import platform
import shutil
import signal
import subprocess
import sys

import pytest

from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _seccomp_policy as P
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import seccomp_launcher as L
from ansible_collections.agentsec.nemoclaw.plugins.module_utils._bpf import Assembler

pytestmark = [
    pytest.mark.live_kernel,
    pytest.mark.oracle("kernel"),
    pytest.mark.skipif(sys.platform != "linux" or platform.machine() != "x86_64", reason="live probes are written for Linux x86_64"),
]

HERE = pathlib.Path(__file__).parent / "seccomp_probe"
LAUNCHER = L.__file__
PROBE = str(HERE / "probe.py")
KILLED = "KILLED(SIGSYS)"
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
ISOLATED = [PY, "-I", "-S"]  # how the launcher must be started (it refuses otherwise, exit 7)


@pytest.fixture(scope="module")
def filters(tmp_path_factory):
    d = tmp_path_factory.mktemp("filters")
    out = {}
    for name, kwargs in {"hardened": {}, "paper_translated": {"profile": "paper_translated"}}.items():
        path = d / f"{name}.bpf"
        path.write_bytes(P.compile_policy("x86_64", **kwargs).raw)
        out[name] = str(path)
    return out


@pytest.fixture(scope="module")
def i386_helper(tmp_path_factory):
    if not shutil.which("gcc"):
        pytest.skip("gcc is not installed")
    exe = tmp_path_factory.mktemp("i386") / "socketcall_i386"
    build = subprocess.run(["gcc", "-m32", "-static", "-O0", "-o", str(exe), str(HERE / "socketcall_i386.c")],
                           capture_output=True, text=True, check=False)
    if build.returncode:
        pytest.skip(f"cannot build a 32-bit helper (install gcc-multilib): {build.stderr.strip()[:200]}")
    return str(exe)


def run(filter_path, command, extra=()):
    cmd = list(command) if filter_path is None else [*ISOLATED, LAUNCHER, "--filter", filter_path, *extra, "--", *command]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode == -signal.SIGSYS:
        return KILLED, proc
    assert proc.returncode == 0, (cmd, proc.returncode, proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])["result"], proc


def probe(filter_path, name, extra=()):
    return run(filter_path, [*ISOLATED, PROBE, name], extra)[0]


ROOT = os.geteuid() == 0
# probe -> (unfiltered, paper filter translated to x86_64, our hardened filter)
TABLE = {
    "af_packet": ("EINVAL", "EPERM", "EPERM"),
    "af_netlink": ("EINVAL", "EPERM", "EINVAL"),  # protocol 0 = NETLINK_ROUTE: allowed, the kernel answers
    "af_netlink_sock_diag": ("ok", "EPERM", "EPERM"),
    "af_netlink_route": ("ok", "EPERM", "ok"),
    "af_vsock": ("ok", "ok", "EPERM"),  # created and closed only
    "high_bit_vsock": ("ok", "ok", "EPERM"),
    "af_inet": ("ok", "ok", "ok"),
    "af_inet6": ("ok", "ok", "ok"),
    "af_unix": ("ok", "ok", "ok"),
    "sock_packet": ("ok" if ROOT else "EPERM", "ok" if ROOT else "EPERM", "EPERM"),
    "high_bit_netlink": ("ok", "EPERM", "ok"),  # 0x1_00000010 is AF_NETLINK (ROUTE) to the kernel: allowed like it
    "io_uring_setup": ("ok", "ok", "EPERM"),
    "clone_high_bits": ("ok", "ok", "ok"),  # the kernel ignores the high word of clone()'s flags, as our filter does
    "x32_socket": (None, None, KILLED),  # None: ENOSYS when the kernel has no x32 ABI, ok when it has one
}


@pytest.mark.parametrize("name", sorted(TABLE))
def test_bypass_table(name, filters):
    unfiltered, paper, ours = TABLE[name]
    got = (probe(None, name), probe(filters["paper_translated"], name, ["--allow-unchecked-arch"]), probe(filters["hardened"], name))
    if unfiltered is None:
        assert got[0] in ("ENOSYS", "ok") and got[1] == got[0]
        unfiltered, paper = got[0], got[1]
    assert got == (unfiltered, paper, ours)


def test_i386_int80_socketcall_is_killed_only_with_an_arch_check(filters, i386_helper):
    assert run(None, [i386_helper])[0] == "ok"
    assert run(filters["paper_translated"], [i386_helper], ["--allow-unchecked-arch"])[0] == "ok"
    assert run(filters["hardened"], [i386_helper])[0] == KILLED


def test_launcher_reports_filter_in_force(filters):
    out = subprocess.run([*ISOLATED, LAUNCHER, "--filter", filters["hardened"], "--", "cat", "/proc/self/status"],
                         capture_output=True, text=True, check=True).stdout
    fields = dict(line.split(":\t", 1) for line in out.splitlines() if ":\t" in line)
    assert fields["Seccomp"].strip() == "2" and int(fields["Seccomp_filters"]) >= 1 and fields["NoNewPrivs"].strip() == "1"


def test_prctl_fallback_under_an_outer_filter_that_blocks_seccomp(filters, tmp_path):
    asm = Assembler()
    asm.load(4)
    asm.jump("JEQ", L.AUDIT_ARCH["x86_64"], None, "allow")
    asm.load(0)
    asm.jump("JEQ", 317, None, "allow", "seccomp()")
    asm.load(16)
    asm.jump("JEQ", 1, "deny", "allow", "SECCOMP_SET_MODE_FILTER")
    asm.label("allow")
    asm.ret(L.SECCOMP_RET_ALLOW)
    asm.label("deny")
    asm.ret(L.SECCOMP_RET_ERRNO | 1)
    outer = tmp_path / "outer.bpf"
    outer.write_bytes(L.encode(asm.assemble()[0]))
    result, proc = run(str(outer), [*ISOLATED, LAUNCHER, "--filter", filters["hardened"], "--", *ISOLATED, PROBE, "af_vsock"])
    assert result == "EPERM"
    assert "prctl(PR_SET_SECCOMP) fallback" in proc.stderr
    # without the inner launcher the outer filter alone leaves AF_VSOCK alone
    assert run(str(outer), [*ISOLATED, PROBE, "af_vsock"])[0] == "ok"


@pytest.mark.skipif(L.landlock_abi() == 0, reason="kernel without Landlock")
def test_launcher_landlock_denies_writes_outside_rw_paths_even_for_root(tmp_path):
    allowed = tmp_path / "rw"
    allowed.mkdir()
    code = ("import errno, json\nres = {}\n"
            "for p in (%r, '/dev/shm/agentsec-landlock-probe'):\n"
            "    try:\n        open(p, 'w').close(); res[p] = 'ok'\n"
            "    except OSError as e:\n        res[p] = errno.errorcode[e.errno]\n"
            "print(json.dumps({'result': res}))\n") % str(allowed / "f")
    ro = [p for p in ("/usr", "/lib", "/lib64", "/bin", "/etc", "/proc", "/dev") if os.path.exists(p)]
    cmd = [*ISOLATED, LAUNCHER, "--landlock-required"] + [a for p in ro for a in ("--landlock-ro", p)]
    cmd += ["--landlock-rw", str(allowed), "--", "/usr/bin/python3", "-c", code]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    res = json.loads(out)["result"]
    assert res[str(allowed / "f")] == "ok"
    assert res["/dev/shm/agentsec-landlock-probe"] == "EACCES"
    assert not os.path.exists("/dev/shm/agentsec-landlock-probe")


@pytest.mark.parametrize(("content", "code", "message"), [
    (b"\x06\x00\x00\x00\x00\x00", 3, "not a multiple of 8"),
    (None, 4, "compiled for aarch64"),
    (b"", 3, "empty"),
])
def test_launcher_refuses_bad_filters(tmp_path, content, code, message):
    path = tmp_path / "f.bpf"
    path.write_bytes(P.compile_policy("aarch64").raw if content is None else content)
    proc = subprocess.run([*ISOLATED, LAUNCHER, "--filter", str(path), "--", "true"], capture_output=True, text=True, check=False)
    assert proc.returncode == code and message in proc.stderr and str(path) in proc.stderr


def test_launcher_refuses_filter_without_arch_check_unless_told(filters):
    cmd = [*ISOLATED, LAUNCHER, "--filter", filters["paper_translated"], "--", "true"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 4 and "no architecture check" in proc.stderr
    cmd.insert(-2, "--allow-unchecked-arch")
    assert subprocess.run(cmd, check=False).returncode == 0


def test_launcher_missing_file_and_check_mode(filters, tmp_path):
    proc = subprocess.run([*ISOLATED, LAUNCHER, "--filter", str(tmp_path / "nope.bpf"), "--", "true"], capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and "nope.bpf" in proc.stderr
    proc = subprocess.run([*ISOLATED, LAUNCHER, "--filter", filters["hardened"], "--check"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and "valid for x86_64" in proc.stdout
