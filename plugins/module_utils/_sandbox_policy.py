# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)
"""Pure builders of the `policy` hardening backend: what a sandbox policy becomes when the line's own policy
interfaces harden it, and which part of the change a live `openshell policy set` can carry.

Upstream facts (openshell.md 4(b); crates/openshell-server/src/grpc/validation.rs @v0.0.111 L872-937):
`filesystem_policy`, `landlock` and `process` are static - fixed at sandbox creation, a live update that changes
landlock or process (or removes a filesystem path) is refused; `network_policies` (and `network_middlewares` on 0.1.x)
are dynamic and `policy set` replaces them. L7 `enforcement` defaults to `audit` (l7/mod.rs, also at v0.0.111 and
0.1.5, schema.mdx@0b37da61); `landlock.compatibility` defaults to `best_effort`, which runs WITHOUT filesystem rules
when Landlock cannot apply them (landlock.rs @v0.0.111 L150-300), `hard_requirement` refuses to start instead.
"""

from __future__ import annotations

import copy
import json

STATIC_KEYS = ("filesystem_policy", "landlock", "process")
LIVE_KEYS = ("network_policies", "network_middlewares")
L7_PROTOCOLS = ("rest", "sql")


def _canon(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def is_l7(endpoint):
    return str(endpoint.get("protocol") or "").lower() in L7_PROTOCOLS


def harden(policy, l7_enforce=True, landlock_hard=True):
    """The hardened copy of a policy document: every L7 endpoint `enforcement: enforce`, and
    `landlock.compatibility: hard_requirement`. L4-only endpoints and everything else stay as they are."""
    out = copy.deepcopy(policy or {})
    if l7_enforce:
        for rule in (out.get("network_policies") or {}).values():
            for endpoint in (rule or {}).get("endpoints") or []:
                if is_l7(endpoint):
                    endpoint["enforcement"] = "enforce"
    if landlock_hard:
        landlock = dict(out.get("landlock") or {})
        landlock["compatibility"] = "hard_requirement"
        out["landlock"] = landlock
    return out


def normalized(policy):
    """Fill the defaults the gateway fills (landlock best_effort, endpoint enforcement audit) so documents with and
    without the default spelled out compare equal."""
    out = copy.deepcopy(policy or {})
    landlock = dict(out.get("landlock") or {})
    landlock.setdefault("compatibility", "best_effort")
    out["landlock"] = landlock
    for rule in (out.get("network_policies") or {}).values():
        for endpoint in (rule or {}).get("endpoints") or []:
            endpoint.setdefault("enforcement", "audit")
    return out


def live_document(current, wanted):
    """What `policy set` can carry: the current static part with the wanted live part."""
    out = {k: copy.deepcopy(v) for k, v in (current or {}).items() if k not in LIVE_KEYS}
    for key in LIVE_KEYS:
        if key in (wanted or {}):
            out[key] = copy.deepcopy(wanted[key])
    return out


def diff(current, wanted):
    """{'live': bool, 'static': [keys whose value differs]} between two policy documents (defaults filled)."""
    cur, want = normalized(current), normalized(wanted)
    live = any(_canon(cur.get(k)) != _canon(want.get(k)) for k in LIVE_KEYS)
    static = [k for k in STATIC_KEYS if _canon(cur.get(k)) != _canon(want.get(k))]
    return {"live": live, "static": static}


def summary(policy):
    """Facts a report shows per sandbox: Landlock compatibility and the L7 endpoints by enforcement."""
    doc = normalized(policy)
    counts = {"enforce": 0, "audit": 0, "l4": 0}
    for rule in (doc.get("network_policies") or {}).values():
        for endpoint in (rule or {}).get("endpoints") or []:
            counts[endpoint["enforcement"] if is_l7(endpoint) else "l4"] += 1
    return {"landlock": doc["landlock"]["compatibility"], "l7_enforce": counts["enforce"], "l7_audit": counts["audit"],
            "l4_endpoints": counts["l4"]}
