# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)
"""Verifier checks of the policy lines (targets openshell_host, openshell_0_1), read from the gateway's active policy:
the sandbox's creation policy makes Landlock a hard requirement (L1.landlock_hard_requirement), and every L7 rule is
enforced rather than only audited (L4.l7_policy_enforced).

`landlock.compatibility` is `best_effort` by default on every line: when Landlock cannot apply the filesystem rules
(a Docker Desktop kernel without it, a listed path that cannot be opened) the sandbox runs WITHOUT them and only logs
it (crates/openshell-sandbox/src/sandbox/linux/landlock.rs @v0.0.111 L150-300; 0.1.x schema.mdx@0b37da61, ref
openshell-current.md 4.3); `hard_requirement` refuses to start instead. L1.landlock proves the rules hold in the
sandbox today; this check proves the sandbox will not come back without them after a kernel or image change. The
field is static (fixed at creation), so the hardening role sets it by re-creating the sandbox (backend policy, l1).

L7 rules (endpoints with `protocol: rest` or `sql`) default to `enforcement: audit`, which only logs what the rules
would deny: an agent on a read-only endpoint can still POST (openshell-policy @v0.0.111; 0.1.x schema.mdx@0b37da61;
NemoClaw's blueprint leaves them audited, openshell-current.md 2.4). L4.l7_enforcement proves it by writing through
the proxy where the line has one; this check reads the configuration itself, so it holds on 0.1.x too (no proxy to
probe) and on a host whose verify run has no read-only endpoint to try.

The values are read on the host from the gateway's active policy (`openshell policy get <sandbox> --full --output
json`, the target's `sandbox.policy`, by sandbox_verify's host mode) and handed to these checks as
``policy_landlock_compatibility`` and ``policy_l7_endpoints`` (with ``policy_revision``: version and hash): no agent
process can change what the gateway reports. Same contract as _verify_proxy (CHECKS, plan(params)); the probe
contacts nothing.
"""

from __future__ import annotations

from ansible_collections.agentsec.nemoclaw.plugins.module_utils._verify import FAIL, PASS

CHECKS = {
    "L1.landlock_hard_requirement": (
        "L1", "Landlock is a hard requirement of the sandbox's policy", "medium",
        "landlock.compatibility: hard_requirement in the gateway's active policy for this sandbox",
        "Create the sandbox with landlock.compatibility: hard_requirement (hardening role, backend policy, l1, "
        "re-creates it): with the default best_effort a kernel without Landlock runs the agent without filesystem "
        "rules."),
    "L4.l7_policy_enforced": (
        "L4", "Every L7 rule of the sandbox's policy is enforced, not only audited", "high",
        "enforcement: enforce on every endpoint with protocol rest or sql in the gateway's active policy",
        "Set enforcement: enforce on every L7 endpoint (hardening role, backend policy, l4: `openshell policy set "
        "--wait`): with the default audit the rules only log what they would deny, and the agent's request goes through."),
}


def decide_hard_requirement(obs, _v):
    if obs.get("compatibility") == "hard_requirement":
        return PASS, obs
    return FAIL, {**obs, "reason": f"landlock.compatibility is {obs.get('compatibility')}: without Landlock the sandbox "
                                   "starts anyway, with no filesystem rules"}


def decide_l7_enforced(obs, _v):
    audited = [e for e in obs["endpoints"] if e["enforcement"] != "enforce"]
    if audited:
        names = ", ".join(f"{e['rule']}:{e['host']}:{e['port']} ({e['enforcement']})" for e in audited[:8])
        reason = f"{len(audited)} of {len(obs['endpoints'])} L7 endpoints are not enforced: {names}"
        return FAIL, {**obs, "audited": audited, "reason": reason}
    return PASS, obs


def plan(params):
    value = params.get("policy_landlock_compatibility")
    endpoints = params.get("policy_l7_endpoints")
    source = {"source": "openshell policy get --full, read on the host", "revision": params.get("policy_revision")}

    def probe():
        if value is None:
            return {"skip": "the sandbox's policy was not read (set the target's sandbox.policy / verify_policy_command)"}
        return {"compatibility": value, **source}

    def probe_l7():
        if endpoints is None:
            return {"skip": "the L7 rules were not read (the target's sandbox.policy must print `policy get --full "
                            "--output json`)"}
        return {"endpoints": endpoints, "count": len(endpoints), **source}

    return {"L1.landlock_hard_requirement": (probe, decide_hard_requirement),
            "L4.l7_policy_enforced": (probe_l7, decide_l7_enforced)}
