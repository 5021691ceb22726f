"""Module behaviour: compile, write atomically, idempotence, check mode, diff, launcher install, bad input."""
from __future__ import annotations

import hashlib
import os
import platform

import pytest

from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _seccomp_policy as P
from ansible_collections.agentsec.nemoclaw.plugins.modules import seccomp_filter


@pytest.fixture
def run(module_runner):
    return lambda args, **kw: module_runner(seccomp_filter.main, args, **kw)


@pytest.mark.oracle("self")
def test_writes_filter_then_is_idempotent(run, tmp_path):
    dest = tmp_path / "agent.bpf"
    ok, res = run({"dest": str(dest), "arch": "x86_64"})
    assert ok and res["changed"]
    raw = P.compile_policy("x86_64").raw
    assert dest.read_bytes() == raw
    assert res["sha256"] == hashlib.sha256(raw).hexdigest()
    assert res["instructions"] == len(raw) // 8
    assert res["common_path_instructions"] <= 11
    assert res["rules"]["x32_guard"] is True
    ok, res = run({"dest": str(dest), "arch": "x86_64"})
    assert ok and not res["changed"]


@pytest.mark.oracle("self")
def test_check_mode_writes_nothing_and_diff_shows_rules_not_bytes(run, tmp_path):
    dest = tmp_path / "agent.bpf"
    ok, res = run({"dest": str(dest), "arch": "aarch64"}, check_mode=True, diff=True)
    assert ok and res["changed"] and not dest.exists()
    assert "socket()/socketpair()" in res["diff"]["after"] and res["diff"]["before"] == ""
    run({"dest": str(dest), "arch": "aarch64"})
    n = len(P.compile_policy("aarch64").program)
    ok, res = run({"dest": str(dest), "arch": "aarch64", "allow_netlink_protocols": []}, check_mode=True, diff=True)
    assert res["changed"] and f"existing filter: {n} instructions, arch check: aarch64" in res["diff"]["before"]
    assert "NETLINK" not in res["diff"]["after"] and "AF_NETLINK" not in str(res["rules"]["socket_allow_families"])
    assert dest.read_bytes() == P.compile_policy("aarch64").raw


@pytest.mark.oracle("self")
def test_mode_and_launcher(run, tmp_path):
    dest, launcher = tmp_path / "agent.bpf", tmp_path / "seccomp-launch"
    ok, res = run({"dest": str(dest), "arch": "x86_64", "mode": "0444", "launcher_dest": str(launcher)})
    assert ok and res["changed"]
    assert oct(os.stat(dest).st_mode & 0o777) == "0o444"
    assert oct(os.stat(launcher).st_mode & 0o777) == "0o755"
    assert b"def install_filter" in launcher.read_bytes()
    assert launcher.read_bytes().startswith(b"#!/usr/bin/python3 -IS\n")  # isolated, no site
    ok, res = run({"dest": str(dest), "arch": "x86_64", "mode": "0444", "launcher_dest": str(launcher)})
    assert not res["changed"]


@pytest.mark.oracle("self")
def test_auto_arch_and_paper_profile(run):
    ok, res = run({"profile": "paper", "arch": "aarch64"})
    assert ok and res["instructions"] == 7 and res["common_path_instructions"] == 3
    if platform.machine() in ("x86_64", "aarch64"):
        ok, res = run({})
        assert ok and res["arch"] == platform.machine()


@pytest.mark.oracle("self")
@pytest.mark.parametrize(("args", "message"), [
    ({"deny_families": ["AF_BOGUS"]}, "unknown address family 'AF_BOGUS'"),
    ({"errno": 99999}, "errno 99999 is out of range"),
    ({"profile": "paper", "arch": "x86_64"}, "not aarch64"),
    ({"allow_families": ["AF_UNIX"], "allow_netlink_protocols": ["NETLINK_ROUTE"]}, "AF_NETLINK is not in allow_families"),
    ({"deny_groups": ["keyring", "everything"]}, "everything"),
])
@pytest.mark.oracle("self")
def test_bad_input(run, args, message):
    ok, res = run({"arch": "x86_64", **args})
    assert not ok and message in res["msg"]


@pytest.mark.oracle("self")
def test_allow_list_options_reach_the_filter(run):
    ok, res = run({"arch": "x86_64", "allow_families": ["unix", "inet"], "allow_netlink_protocols": [],
                   "deny_groups": ["keyring"]})
    assert ok and res["rules"]["socket_allow_families"] == ["AF_UNIX", "AF_INET"]
    assert list(res["rules"]["deny_groups"]) == ["keyring"] and res["rules"]["namespaces"] is False
    ok, res = run({"arch": "x86_64"})
    assert res["rules"]["socket_allow_families"] == ["AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"]
    assert res["rules"]["allow_netlink_protocols"] == ["NETLINK_ROUTE"] and res["rules"]["namespaces"] is True


@pytest.mark.oracle("self")
def test_unknown_arch_is_refused_by_the_argument_spec(run):
    ok, res = run({"arch": "sparc"})
    assert not ok and "sparc" in res["msg"]


@pytest.mark.oracle("self")
def test_unwritable_dest_fails_and_leaves_no_partial_file(run, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ok, res = run({"dest": str(tmp_path / "missing" / "f.bpf"), "arch": "x86_64"})
    assert not ok and "does not exist" in res["msg"]
    # sysfs refuses new files even for root; as a normal user a 0500 directory does the same
    target = "/sys/kernel" if os.geteuid() == 0 and os.path.isdir("/sys/kernel") else str(ro)
    ro.chmod(0o500)
    ok, res = run({"dest": f"{target}/agent.bpf", "arch": "x86_64"})
    assert not ok and "is not writable" in res["msg"] and f"{target}/agent.bpf" in res["msg"]
    assert not os.path.exists(f"{target}/agent.bpf")
    assert list(ro.iterdir()) == []
