"""Class 4 - Landlock scopes between two sessions of the SAME sandbox: a process left running by one session (an
abstract unix socket listener that counts SIGUSR1s) must be out of reach of the next session: no connect to its
abstract socket, no signal. Both sessions share the agent network namespace, uid and PID namespace, so only a
Landlock scope (ABI >= 6, LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL, applied per session by the
launcher) separates them. gap: sb-u (v0.0.26: no Landlock at all - OpenShell #803 - and no scopes in its ABI V2
ruleset); hardened: sb-a.
"""
import secrets

import pytest
from conftest import GAP, HARDENED

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
