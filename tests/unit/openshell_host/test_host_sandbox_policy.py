"""The policy backend's builders (_sandbox_policy): what `policy set` can carry must pass the gateway's live-update
rule (validation.rs @v0.0.111 L872-937, as the stand-in gateway implements it), the static part must be reported."""
from __future__ import annotations

import copy

import _host_upstream as U
import pytest
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _sandbox_policy as P

U.lib_path()
import policy_model as PM  # noqa: E402

POLICY = {"version": 1, "filesystem_policy": {"include_workdir": True, "read_only": ["/usr"], "read_write": ["/sandbox"]},
          "landlock": {"compatibility": "best_effort"}, "process": {"run_as_user": "sandbox", "run_as_group": "sandbox"},
          "network_policies": {"web": {"name": "web", "endpoints": [
              {"host": "api.example", "port": 443, "protocol": "rest", "access": "read-only"},
              {"host": "git.example", "port": 22}]}}}


@pytest.mark.oracle("upstream")
def test_harden_splits_into_live_and_static():
    hardened = P.harden(POLICY)
    assert P.diff(POLICY, hardened) == {"live": True, "static": ["landlock"]}
    live = P.live_document(POLICY, hardened)
    assert PM.static_change_error(POLICY, live) is None  # the gateway accepts it live
    assert PM.static_change_error(POLICY, hardened) == "landlock policy cannot be changed on a live sandbox (applied at startup)"
    eps = hardened["network_policies"]["web"]["endpoints"]
    assert eps[0]["enforcement"] == "enforce" and "enforcement" not in eps[1]  # L4-only endpoints stay as they are
    assert P.harden(hardened) == hardened  # idempotent
    assert P.diff(hardened, P.harden(hardened)) == {"live": False, "static": []}


@pytest.mark.oracle("self")
def test_defaults_compare_equal_and_toggles():
    spelled = copy.deepcopy(POLICY)
    spelled["network_policies"]["web"]["endpoints"][0]["enforcement"] = "audit"
    assert P.diff(POLICY, spelled) == {"live": False, "static": []}
    assert P.diff(POLICY, P.harden(POLICY, l7_enforce=False)) == {"live": False, "static": ["landlock"]}
    assert P.diff(POLICY, P.harden(POLICY, landlock_hard=False)) == {"live": True, "static": []}
    assert P.summary(P.harden(POLICY)) == {"landlock": "hard_requirement", "l7_enforce": 1, "l7_audit": 0, "l4_endpoints": 1}
