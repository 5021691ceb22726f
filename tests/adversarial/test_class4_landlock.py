"""Class 4 - Landlock scopes between two sessions of the SAME sandbox: a process left running by one session (an
abstract unix socket listener that counts SIGUSR1s) must be out of reach of the next session: no connect to its
abstract socket, no signal. Both sessions share the agent network namespace, uid and PID namespace, so only a
Landlock scope (ABI >= 6, LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL, applied per session by the
launcher) separates them. gap: sb-u (v0.0.26: no Landlock at all - OpenShell #803 - and no scopes in its ABI V2
ruleset); hardened: sb-a. The verifier then runs in a third session with the victim still there and must say so:
L1.landlock_scope fails on the gap and passes hardened (its own signal-0 and connect probes get EPERM), and
L2.outlived_processes fails on both, naming the victim.
"""
import secrets

import pytest
from conftest import GAP, HARDENED, statuses

pytestmark = [pytest.mark.adversarial, pytest.mark.oracle("kernel")]
CONFIGS = {"gap": GAP[0], "hardened": HARDENED[0]}


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_one_session_cannot_reach_a_process_of_another_session(lab, config):
    sandbox, tag = CONFIGS[config], secrets.token_hex(4)
    state, name = f"/tmp/agentsec-adv-victim-{tag}.json", f"agentsec-adv-victim-{tag}"
    victim = lab.agent(sandbox, "victim", state=state, abstract=name, seconds=20)
    assert victim["result"] == "listening", victim
    connect = lab.agent(sandbox, "abstract_connect", abstract=name)["result"]
    sig = lab.agent(sandbox, "signal", pid=victim["pid"])["result"]
    after = lab.agent(sandbox, "read_state", state=state)
    if config == "gap":
        assert (connect, sig) == ("connected", "sent")
        assert after["connections"] >= 1 and after["signals"] >= 1, after
    else:
        assert (connect, sig) == ("EPERM", "EPERM")
        assert after["connections"] == 0 and after["signals"] == 0, after
    report = lab.verify(sandbox, ["L1.landlock_scope", "L2.outlived_processes"])
    got = statuses(report)
    found = {f["id"]: f["observed"] for f in report["findings"]}
    assert victim["pid"] in [p["pid"] for p in found["L2.outlived_processes"]["outlived"]], found
    assert got["L2.outlived_processes"] == "fail"
    scope = found["L1.landlock_scope"]
    if config == "gap":
        assert got["L1.landlock_scope"] == "fail" and scope["abstract"].get(name) == "connected", scope
    else:
        assert got["L1.landlock_scope"] == "pass", scope
        assert scope["abstract"].get(name) == "EPERM" and scope["signals"].get(str(victim["pid"])) == "EPERM", scope
