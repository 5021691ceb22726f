"""Attack-first tests of the launcher's Landlock scoping (issue 13, class 3): one exec session must not signal or
reach abstract unix sockets of processes outside its Landlock domain (another session, the supervisor).

"old" is the launcher with --no-landlock-scope, which applies the filesystem ruleset only, as 0.1 did: the attack
works there. "new" is the default on Landlock ABI >= 6.
"""
from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys

import pytest

from ansible_collections.agentsec.nemoclaw.plugins.module_utils import seccomp_launcher as L

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "seccomp_probe"))
import launch as H  # noqa: E402  (tests/integration/seccomp_probe/launch.py)

ABI = L.landlock_abi() if sys.platform == "linux" else 0
pytestmark = [
    pytest.mark.live_kernel,
    pytest.mark.oracle("kernel"),
    pytest.mark.skipif(ABI < 6, reason=f"Landlock scopes need ABI >= 6 (this kernel: {ABI})"),
]
VARIANTS = {"old": ["--no-landlock-scope"], "new": []}


def session(variant):
    return H.launcher_cmd(None, [*H.landlock_args(rw=["/tmp"]), *VARIANTS[variant]])


@pytest.fixture
def victim():
    """A process outside any Landlock domain: another session's tool, or the supervisor."""
    proc = subprocess.Popen(["/bin/sleep", "60"])
    yield proc
    proc.kill()
    proc.wait(10)


@pytest.fixture
def abstract_listener():
    name = f"agentsec-h1-{os.getpid()}-{secrets.token_hex(4)}"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind("\0" + name)
    srv.listen(4)
    yield name
    srv.close()


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_a_session_cannot_signal_a_process_outside_its_domain(variant, victim):
    got = H.run_probe(session(variant), "signal", victim.pid)["result"]
    assert got == ("ok" if variant == "old" else "EPERM")
    assert victim.poll() is None


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_a_session_cannot_reach_an_abstract_unix_socket_from_outside_its_domain(variant, abstract_listener):
    got = H.run_probe(session(variant), "abstract_connect", abstract_listener)["result"]
    assert got == ("ok" if variant == "old" else "EPERM")


def test_signals_inside_the_domain_still_work():
    assert H.run_probe(session("new"), "signal_own_child")["result"] == "ok"


def test_two_sessions_are_two_domains(abstract_listener, tmp_path):
    """Session B (a second launcher, like a second `sandbox exec`) cannot signal session A's process."""
    a = subprocess.Popen([*session("new"), "/bin/sleep", "60"])
    try:
        got = H.run_probe(session("new"), "signal", a.pid)["result"]
        assert got == "EPERM"
        assert a.poll() is None
    finally:
        a.kill()
        a.wait(10)


@pytest.mark.oracle("self")
def test_ruleset_attr_is_sized_to_the_abi():
    """ABI < 6 gets the 8-byte v1 struct (a longer one with zero tail would also do), >= 6 the 24-byte one."""
    assert len(L.landlock_ruleset_attr(5)) == 8 and len(L.landlock_ruleset_attr(6)) == 24
    assert len(L.landlock_ruleset_attr(7, scope=False)) == 8
    assert L.landlock_scopes(ABI) == L.LL_SCOPE_ABSTRACT_UNIX_SOCKET | L.LL_SCOPE_SIGNAL
