# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)
"""Verifier check of the policy lines (targets openshell_host, openshell_0_1): the sandbox's creation policy makes
Landlock a hard requirement.

`landlock.compatibility` is `best_effort` by default on every line: when Landlock cannot apply the filesystem rules
(a Docker Desktop kernel without it, a listed path that cannot be opened) the sandbox runs WITHOUT them and only logs
it (crates/openshell-sandbox/src/sandbox/linux/landlock.rs @v0.0.111 L150-300; 0.1.x schema.mdx@0b37da61, ref
openshell-current.md 4.3); `hard_requirement` refuses to start instead. L1.landlock proves the rules hold in the
sandbox today; this check proves the sandbox will not come back without them after a kernel or image change. The
field is static (fixed at creation), so the hardening role sets it by re-creating the sandbox (backend policy, l1).

The value is read on the host from the gateway's active policy (`openshell policy get <sandbox> --full`, the target's
`sandbox.policy`, by sandbox_verify's host mode) and handed to this check as ``policy_landlock_compatibility``: no
agent process can change what the gateway reports. Same contract as _verify_proxy (CHECKS, plan(params)); the probe
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
}


def decide_hard_requirement(obs, _v):
    if obs.get("compatibility") == "hard_requirement":
        return PASS, obs
    return FAIL, {**obs, "reason": f"landlock.compatibility is {obs.get('compatibility')}: without Landlock the sandbox "
                                   "starts anyway, with no filesystem rules"}


def plan(params):
    value = params.get("policy_landlock_compatibility")

    def probe():
        if value is None:
            return {"skip": "the sandbox's policy was not read (set the target's sandbox.policy / verify_policy_command)"}
        return {"compatibility": value, "source": "openshell policy get --full, read on the host"}

    return {"L1.landlock_hard_requirement": (probe, decide_hard_requirement)}
