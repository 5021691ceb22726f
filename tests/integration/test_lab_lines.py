"""`make lab LINE=...` (scripts/lab_line.py): playbooks/harden.yml - verify.yml, the hardening role's main entry, verify
again - run over Ansible's docker connection against a stand-in host of each current line, as a fleet runs them.

Until this test, both lines were proven only through the roles' task files and the module's payload: the playbooks
themselves failed on these targets (verify.yml gathers no facts, so the per-platform contract could not resolve; the
hardening role's defaults required the k3s cluster keys). The attack comes first: before hardening, the line's own
defaults leave Landlock best effort and L7 rules audit-only (on 0.0.116 a POST the rules forbid gets through; on
both the gateway's policy says `audit`), and the verifier must say so."""
from __future__ import annotations

import json
import subprocess
import sys

import _openshell_host_env as E
import pytest

pytestmark = [pytest.mark.skipif(not E.docker_available(), reason="needs a Docker engine"),
              pytest.mark.oracle("docker", "ansible-core", "upstream")]

# line -> the checks the line's defaults fail and the hardening (backend policy) fixes
FIXED = {"openshell_host": {"L1.landlock_hard_requirement", "L4.l7_enforcement", "L4.l7_policy_enforced"},
         "openshell_0_1": {"L1.landlock_hard_requirement", "L4.l7_policy_enforced"}}
# checks whose probe cannot read what it needs under the line's defaults (the agent has no /sys: error) and that pass
# once the hardening re-created the sandbox with a memory limit and its cgroup readable
UNREADABLE = {"L1.memory_limit", "L1.pids_limit"}


def statuses(path):
    hosts = json.loads(path.read_text())["hosts"]
    assert len(hosts) == 1, hosts.keys()  # one host, one sandbox `lab`, found by the target's discovery
    (name, host), = hosts.items()
    assert name.endswith("/lab") and host["state"] == "OK", (name, host.get("state"))
    return {f["id"]: (f["status"], bool(f.get("residual"))) for f in host["findings"]}


def observed(path, cid):
    """What the probe saw, for a failure message (CI keeps only its first line)."""
    (_name, host), = json.loads(path.read_text())["hosts"].items()
    return json.dumps([f.get("observed") for f in host["findings"] if f["id"] == cid])[:300]


@pytest.mark.parametrize("line", sorted(FIXED))
def test_harden_playbook_on_the_line(line):
    proc = subprocess.run([sys.executable, str(E.ROOT / "scripts/lab_line.py"), line], capture_output=True, text=True,
                          check=False, timeout=1200, cwd=E.ROOT)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    assert "every layer passes after hardening, but for the line's declared residuals" in out, out[-3000:]
    reports = E.ROOT / "reports" / f"lab-{line}"
    before, after = statuses(reports / "before/verify.json"), statuses(reports / "after/verify.json")
    for cid in FIXED[line]:
        assert before[cid] == ("fail", False), (cid, before.get(cid), observed(reports / "before/verify.json", cid))
        assert after[cid] == ("pass", False), (cid, after.get(cid), observed(reports / "after/verify.json", cid))
    for cid in UNREADABLE:
        assert before[cid] == ("error", False), (cid, before.get(cid), observed(reports / "before/verify.json", cid))
        assert after[cid] == ("pass", False), (cid, after.get(cid), observed(reports / "after/verify.json", cid))
    # after hardening nothing fails that is not a declared residual of the line, and the residuals did not change
    bad = [c for c, (st, residual) in after.items() if st in ("fail", "error") and not residual]
    assert bad == [], [(c, observed(reports / "after/verify.json", c)) for c in bad]
    assert {c for c, (_st, r) in before.items() if r} == {c for c, (_st, r) in after.items() if r}
    # everything it created is gone again
    left = E.docker("ps", "-aq", "--filter", f"name={E.PREFIX}-lab").stdout.split()
    assert left == [], left
