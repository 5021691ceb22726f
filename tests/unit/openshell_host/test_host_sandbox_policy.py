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


@pytest.mark.oracle("upstream")
def test_limits_are_refused_as_the_cli_refuses_them():
    """run.rs @v0.0.111's own tests (build_sandbox_resource_limits_sets_limits_only / _rejects_invalid_quantities) are
    the oracle for what `sandbox create --cpu/--memory` takes: the module refuses the same values before it re-creates
    anything, naming them."""
    import re

    run = U.upstream("crates/openshell-cli/src/run.rs")
    refused = re.findall(r'build_sandbox_resource_limits\((None|Some\("([^"]*)"\)), (None|Some\("([^"]*)"\))\)\.is_err\(\)', run)
    accepted = re.findall(r'build_sandbox_resource_limits\(Some\("([^"]*)"\), Some\("([^"]*)"\)\)\s*\.(?:unwrap|expect)', run)
    assert len(refused) >= 4 and accepted, (refused, accepted)
    for _c, cpu, _m, memory in refused:
        limits = {**({"cpu": cpu} if cpu else {}), **({"memory": memory} if memory else {})}
        problems = P.resource_problems(limits)
        assert problems and all(repr(v) in " ".join(problems) for v in limits.values()), (limits, problems)
    for cpu, memory in accepted:
        assert P.resource_problems({"cpu": cpu, "memory": memory}) == []
    assert P.resource_problems({"ephemeral-storage": "1Gi"}) == [
        "resources: unknown limit 'ephemeral-storage' (the line's sandbox create takes memory and cpu)"]


@pytest.mark.oracle("upstream")
def test_limits_label_and_create_arguments():
    """The label value is a valid Kubernetes label value, which the gateway requires (validation.rs @v0.0.111
    validate_label_value: at most 63 characters, alphanumerics, '-', '_', '.', alphanumeric at both ends)."""
    import re

    validation = U.upstream("crates/openshell-server/src/grpc/validation.rs")
    assert "fn validate_label_value" in validation and "63" in validation
    for limits in ({"memory": "4Gi"}, {"cpu": "500m", "memory": "512Mi"}, {"cpu": "2.5"}):
        value = P.limits_label(limits)
        assert len(value) <= 63 and re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", value), value
    assert P.limits_label({"cpu": "500m", "memory": "512Mi"}) == "cpu-500m_memory-512Mi"
    assert P.create_limit_args({"memory": "4Gi"}) == ["--memory", "4Gi", "--label", f"{P.LIMITS_LABEL}=memory-4Gi"]
    assert P.create_limit_args({}) == [] and P.limits_label({}) == ""


@pytest.mark.oracle("upstream")
def test_read_paths_are_a_static_change_added_once():
    hardened = P.harden(POLICY, read_paths=["/sys/fs/cgroup"])
    assert hardened["filesystem_policy"]["read_only"] == ["/usr", "/sys/fs/cgroup"]
    assert P.diff(POLICY, hardened)["static"] == ["filesystem_policy", "landlock"]
    # the gateway would take an added path live (validation.rs refuses only removals), but the supervisor builds its
    # Landlock ruleset once at start, so the backend re-creates; what it submits live leaves the static part alone
    assert PM.static_change_error(POLICY, P.live_document(POLICY, hardened)) is None
    assert P.harden(hardened, read_paths=["/sys/fs/cgroup"]) == hardened  # idempotent
    covered = copy.deepcopy(POLICY)
    covered["filesystem_policy"]["read_only"].append("/sys")
    assert P.harden(covered, read_paths=["/sys/fs/cgroup"])["filesystem_policy"] == covered["filesystem_policy"]
    assert "filesystem_policy" not in P.harden({"landlock": {}}, read_paths=["/sys/fs/cgroup"])


@pytest.mark.oracle("upstream")
def test_the_stand_in_gateway_validates_labels_as_upstream_does():
    """validation.rs @v0.0.111's own tests are the oracle: every literal validate_label_key / validate_label_value
    case there that is_ok() is accepted by the stand-in gateway and every unwrap_err() one refused - and the limits
    label the policy backend writes is a valid label."""
    import re

    source = U.upstream("crates/openshell-server/src/grpc/validation.rs")
    cases = re.findall(r'validate_label_(key|value)\("([^"]*)"\)\.(is_ok|unwrap_err)\(\)', source)
    assert len(cases) >= 30, len(cases)
    for kind, text, outcome in cases:
        problem = PM.label_error(text, "v") if kind == "key" else PM.label_error("k", text)
        assert (problem is None) == (outcome == "is_ok"), (kind, text, outcome, problem)
    for limits in ({"memory": "4Gi"}, {"cpu": "500m", "memory": "512Mi"}):
        assert PM.label_error(P.LIMITS_LABEL, P.limits_label(limits)) is None
    assert PM.label_error("a" * 64, "") and PM.label_error("k", "v" * 64) and PM.label_error("x/" + "a" * 63, "") is None
