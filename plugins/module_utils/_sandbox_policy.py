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

Limits are not part of the policy: `sandbox create --memory M --cpu C` (crates/openshell-cli/src/main.rs @v0.0.111
L1386-1392; run.rs L225-260 builds `resources.limits`, validated by L278-335) and the Docker driver turns them into the
container's Memory and NanoCpus (crates/openshell-driver-docker/src/lib.rs @v0.0.111 L2634, L2923-2946, L3004-3046).
`sandbox get --output json` does not show them (run.rs L2088-2106), so the backend marks the sandboxes it created with
limits by a label (LIMITS_LABEL, shown in the `labels` of that output) and the verifier's L1.memory_limit checks the
limit itself from inside the sandbox.
"""

from __future__ import annotations

import copy
import json
import re

STATIC_KEYS = ("filesystem_policy", "landlock", "process")
LIVE_KEYS = ("network_policies", "network_middlewares")
L7_PROTOCOLS = ("rest", "sql")
LIMITS_LABEL = "agentsec.nemoclaw/limits"
# run.rs @v0.0.111 L278-335: --memory is whole bytes or a whole number with a binary or decimal suffix; --cpu is
# positive cores (a decimal) or whole millicores
_MEMORY = re.compile(r"^([0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|K|M|G|T|P|E)?$")
_CPU = re.compile(r"^(?:[0-9]+m|[0-9]*\.?[0-9]+)$")


def _canon(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def is_l7(endpoint):
    return str(endpoint.get("protocol") or "").lower() in L7_PROTOCOLS


def resource_problems(resources):
    """What is wrong with a limits mapping for `sandbox create` (memory, cpu), as messages naming the value; [] if
    nothing. The Docker driver refuses requests, so only limits exist (lib.rs @v0.0.111 L2929-2938)."""
    problems = [f"resources: unknown limit {key!r} (the line's sandbox create takes memory and cpu)"
                for key in sorted(resources or {}) if key not in ("memory", "cpu")]
    memory, cpu = (resources or {}).get("memory"), (resources or {}).get("cpu")
    if memory is not None and (not _MEMORY.match(str(memory)) or int(_MEMORY.match(str(memory)).group(1)) == 0):
        problems.append(f"resources.memory {memory!r} is not a positive quantity such as 512Mi, 4Gi or 8G")
    if cpu is not None and (not _CPU.match(str(cpu)) or float(str(cpu).rstrip("m") or 0) <= 0):
        problems.append(f"resources.cpu {cpu!r} is not positive cores or millicores such as 2, 0.5 or 500m")
    return problems


def limits_label(resources):
    """The LIMITS_LABEL value that records the limits a sandbox was created with ('' for none): `cpu-2_memory-4Gi`,
    a valid Kubernetes label value (the gateway validates labels as Kubernetes does, validation.rs @v0.0.111 L587-660)."""
    return "_".join(f"{key}-{resources[key]}" for key in sorted(resources or {}))


def create_limit_args(resources):
    """The `sandbox create` arguments that set these limits and record them."""
    args = []
    for key in sorted(resources or {}):
        args += [f"--{key}", str(resources[key])]
    return [*args, "--label", f"{LIMITS_LABEL}={limits_label(resources)}"] if args else []


def _covered(path, entries):
    return any(path == e.rstrip("/") or path.startswith(e.rstrip("/") + "/") for e in entries if e)


def harden(policy, l7_enforce=True, landlock_hard=True, read_paths=()):
    """The hardened copy of a policy document: every L7 endpoint `enforcement: enforce`,
    `landlock.compatibility: hard_requirement`, and each of read_paths read-only in a filesystem policy that does not
    already reach it. L4-only endpoints and everything else stay as they are."""
    out = copy.deepcopy(policy or {})
    fs = out.get("filesystem_policy")
    if isinstance(fs, dict):
        reach = list(fs.get("read_only") or []) + list(fs.get("read_write") or [])
        added = [p for p in read_paths if not _covered(p.rstrip("/"), reach)]
        if added:
            fs["read_only"] = list(fs.get("read_only") or []) + added
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
