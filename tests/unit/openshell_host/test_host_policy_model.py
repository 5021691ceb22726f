"""Policy admission of the stand-in gateway (lib/policy_model.py). The refusal messages for a live update of static
fields are the gateway's own (crates/openshell-server/src/grpc/validation.rs @v0.0.111 L872-937)."""
from __future__ import annotations

import copy

import _host_upstream as U
import pytest

U.lib_path()
import policy_model as PM  # noqa: E402

BASE = {"version": 1, "filesystem_policy": {"include_workdir": True, "read_only": ["/usr"], "read_write": ["/tmp"]},
        "landlock": {"compatibility": "best_effort"}, "process": {"run_as_user": "sandbox", "run_as_group": "sandbox"},
        "network_policies": {"a": {"endpoints": [{"host": "x", "port": 443, "protocol": "rest"}]}}}


def changed(**kw):
    doc = copy.deepcopy(BASE)
    for key, value in kw.items():
        doc[key] = value
    return doc


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize(("new", "message"), [
    (changed(landlock={"compatibility": "hard_requirement"}), "landlock policy cannot be changed on a live sandbox (applied at startup)"),
    (changed(process={"run_as_user": "1000"}), "process policy cannot be changed on a live sandbox (applied at startup)"),
    (changed(filesystem_policy={"include_workdir": False, "read_only": ["/usr"], "read_write": ["/tmp"]}),
     "filesystem include_workdir cannot be changed on a live sandbox"),
    (changed(filesystem_policy={"include_workdir": True, "read_only": [], "read_write": ["/tmp"]}),
     "filesystem read_only path '/usr' cannot be removed on a live sandbox"),
])
def test_static_changes_refused_with_upstream_messages(new, message):
    source = U.upstream("crates/openshell-server/src/grpc/validation.rs")
    template = message.replace("'/usr'", "'{path}'")
    assert template in source, "the message is not upstream's"
    assert PM.static_change_error(BASE, new) == message


@pytest.mark.oracle("upstream")
def test_additive_filesystem_and_network_changes_are_live():
    grown = changed(filesystem_policy={"include_workdir": True, "read_only": ["/usr", "/opt"], "read_write": ["/tmp"]},
                    network_policies={})
    assert PM.static_change_error(BASE, grown) is None


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize("user", ["root", "0", "-1", "4294967295", "nobody"])
def test_root_and_names_other_than_sandbox_refused(user):
    """openshell.md 4(b): run_as_user is `sandbox` or a numeric id 1..u32::MAX-1; root is rejected."""
    with pytest.raises(PM.PolicyError):
        PM.validate(changed(process={"run_as_user": user}), v01=False)


@pytest.mark.oracle("upstream")
def test_defaults_and_0_1_strictness():
    doc = PM.validate(copy.deepcopy(BASE), v01=False)
    assert doc["network_policies"]["a"]["endpoints"][0]["enforcement"] == "audit"  # l7/mod.rs default
    with pytest.raises(PM.PolicyError):  # 0.1.x rejects tls: terminate (#3187) and unknown fields (#3334)
        PM.validate(changed(network_policies={"a": {"endpoints": [{"host": "x", "port": 443, "tls": "terminate"}]}}), v01=True)
    with pytest.raises(PM.PolicyError):
        PM.validate(changed(extra_field=1), v01=True)
