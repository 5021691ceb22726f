"""Class 2 - verifier integrity: what the agent plants before verification must not change the verdict, and the
verifier must report what was planted.

(a) planted before verification: a .pth in the agent's user site whose code rewrites any verdict it sees ("fail" ->
    "pass"), and a long-lived agent process started outside the hardening (`docker exec -u sandbox` - an operator's
    `kubectl exec`, or anything that survived a restart - with no seccomp filter and no NoNewPrivs).
    gap: the same payload in a plain `python3 -c` (a verifier that trusts the sandbox's interpreter start-up): the
    .pth runs inside it and the planted conditions come back as passes. The collection's verifier (`python3 -I -S`)
    never runs the .pth and reports L1.startup_hooks and L2.agent_processes as failing.
(b) a long-lived agent process that polls /proc for the verifier and, the moment it appears, opens /proc/<pid>/mem
    read-write (writing one byte back unchanged), calls process_vm_writev and ptrace(PTRACE_SEIZE).
    gap: sb-u (v0.0.26: no Landlock, process_vm_writev unfiltered) - the verifier is dumpable until its first
    statements run, and an fd to /proc/<pid>/mem opened in that window stays usable afterwards. hardened: sb-a - the
    watcher and the verifier are in different Landlock domains (each session's launcher creates one), and Landlock
    refuses ptrace-mode access across domains, race or not. In both, the verdict is the same as without the watcher.
"""
import secrets
import time

import pytest
from conftest import GAP, HARDENED, statuses

pytestmark = [pytest.mark.adversarial]


@pytest.fixture
def unconfined_process(lab):
    marker = f"agentsec-adv-unconfined-{secrets.token_hex(3)}"
    lab.pod_exec(HARDENED[0], ["bash", "-c", f"exec -a {marker} sleep 90"], user="sandbox", detach=True)
    yield marker
    lab.pod_exec(HARDENED[0], ["bash", "-c", f"pkill -f ^{marker} || true"])


@pytest.mark.oracle("kernel", "self")
@pytest.mark.parametrize("verifier", ["naive", "isolated"])
def test_planted_hook_and_unconfined_process_are_reported_not_obeyed(lab, verifier, unconfined_process):
    sandbox, log = HARDENED[0], f"/sandbox/.agentsec-adv-plant-{secrets.token_hex(3)}.log"
    checks = ["L1.startup_hooks", "L2.agent_processes", "L2.seccomp_mode", "L1.ro_root", "L1.landlock"]
    plant = lab.agent(sandbox, "plant", log=log, tamper=True)
    try:
        result = lab.verify(sandbox, checks, naive=verifier == "naive")
        ran = lab.agent(sandbox, "read_log", log=log)["entries"]
    finally:
        lab.agent(sandbox, "unplant", pth=plant["pth"], log=log)
    got = statuses(result)
    if verifier == "naive":
        # the attack works: the .pth ran inside the verifier and the planted conditions come back as passes
        assert any("python3 -c" in e.get("argv", "") for e in ran if e["by"] == "pth"), ran
        assert got["L1.startup_hooks"] == "pass" and got["L2.agent_processes"] == "pass", got
    else:
        assert not [e for e in ran if e["by"] == "pth" and "-I -S" in e.get("argv", "")], ran
        assert got["L1.startup_hooks"] == "fail", result
        assert got["L2.agent_processes"] == "fail", result
        weaker = next(f for f in result["findings"] if f["id"] == "L2.agent_processes")["observed"]["weaker"]
        assert any(unconfined_process in p["cmd"] for p in weaker), weaker
        assert {k: got[k] for k in ("L2.seccomp_mode", "L1.ro_root", "L1.landlock")} == dict.fromkeys(
            ("L2.seccomp_mode", "L1.ro_root", "L1.landlock"), "pass")


@pytest.mark.oracle("kernel")
@pytest.mark.parametrize("config", ["gap", "hardened"])
def test_a_racing_agent_process_cannot_reach_the_verifiers_memory(lab, config):
    sandbox = GAP[0] if config == "gap" else HARDENED[0]
    checks = ["L1.ro_root", "L1.landlock", "L2.seccomp_mode", "L2.af_packet", "L2.agent_processes", "L3.default_route",
              "L4.denied_host"]
    reference = statuses(lab.verify(sandbox, checks))
    won, verdicts = [], []
    for attempt in range(3):  # a race: the gap case gets three chances to show it can be won
        state = f"/tmp/agentsec-adv-watch-{secrets.token_hex(3)}.json"
        assert lab.agent(sandbox, "watch_verifier", state=state, needle="agentsec-result", seconds=30, max_hits=2)["result"] == "watching"
        verdicts.append(statuses(lab.verify(sandbox, checks)))
        time.sleep(0.3)
        hits = lab.agent(sandbox, "read_state", state=state).get("hits", [])
        won += [h for h in hits if "ok" in (h.get("mem_open"), h.get("mem_write"), h.get("process_vm_writev"), h.get("ptrace_seize"))]
        if config == "gap" and won:
            break
        assert hits, f"attempt {attempt}: the watcher never saw the verifier"
    assert all(v == reference for v in verdicts), (reference, verdicts)
    if config == "gap":
        assert any(h.get("mem_write") == "ok" for h in won), won
    else:
        assert not won, won
