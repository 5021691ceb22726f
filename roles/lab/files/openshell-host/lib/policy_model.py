"""Sandbox policy documents as the stand-in gateway admits them. Pure, unit-tested.

Schema: openshell.md 4(b) (proto/sandbox.proto, policy-schema.mdx): `version: 1` required, `filesystem_policy`,
`landlock`, `process` static (fixed at creation), `network_policies` dynamic (hot-reloaded by `policy set`, which
replaces the whole policy); 0.1.x adds `network_middlewares`, rejects unknown fields (#3334) and `tls: terminate|
passthrough` (#3187, #3414) (ref 1.1). run_as_user/run_as_group: `sandbox` or a numeric id 1..u32::MAX-1, never root
(crates/openshell-policy/src/lib.rs @HEAD ~L984-1018, openshell.md 4(b); any non-root since v0.0.110 #2785).
Static fields on a live sandbox: crates/openshell-server/src/grpc/validation.rs @111 L872-937
(validate_static_fields_unchanged): filesystem may only grow and include_workdir may not change, landlock and
process may not change at all.
"""
from __future__ import annotations

import json

TOP_V0 = {"version", "filesystem_policy", "landlock", "process", "network_policies"}
TOP_V1 = TOP_V0 | {"network_middlewares"}
ENDPOINT_KEYS = {"host", "port", "ports", "protocol", "tls", "enforcement", "access", "rules", "allowed_ips", "deny_rules",
                 "path", "allow_encoded_slash", "websocket", "json_rpc", "graphql", "credential_rewrite", "name"}
COMPATIBILITY = ("best_effort", "hard_requirement")


class PolicyError(ValueError):
    pass


def parse(text: str) -> dict:
    import yaml  # noqa: PLC0415 - python3-yaml on the stand-in host

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"failed to parse sandbox policy YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise PolicyError("sandbox policy must be a YAML mapping")
    return doc


def _identity(value, what):
    if value is None or value == "sandbox":
        return
    text = str(value)
    if text in ("root", "0") or not text.isdigit() or not 0 < int(text) < 2**32 - 1:
        raise PolicyError(f"process.{what} {value!r} is not allowed: use `sandbox` or a numeric id 1..4294967294 (never root)")


def validate(doc: dict, v01: bool) -> dict:
    """Return the document with defaults filled (landlock best_effort, endpoint enforcement audit); raise PolicyError."""
    if doc.get("version") != 1:
        raise PolicyError("sandbox policy `version: 1` is required")
    unknown = set(doc) - (TOP_V1 if v01 else TOP_V0)
    if unknown:
        raise PolicyError(f"unknown policy field(s): {', '.join(sorted(unknown))}")
    landlock = dict(doc.get("landlock") or {})
    landlock.setdefault("compatibility", "best_effort")  # l7/landlock default (openshell.md 4(b))
    if landlock["compatibility"] not in COMPATIBILITY:
        raise PolicyError(f"landlock.compatibility {landlock['compatibility']!r}: one of {', '.join(COMPATIBILITY)}")
    process = dict(doc.get("process") or {})
    _identity(process.get("run_as_user"), "run_as_user")
    _identity(process.get("run_as_group"), "run_as_group")
    fs = dict(doc.get("filesystem_policy") or {})
    for key in ("read_only", "read_write"):
        for path in fs.get(key) or []:
            if not str(path).startswith("/") or ".." in str(path).split("/"):
                raise PolicyError(f"filesystem_policy.{key}: {path!r} must be an absolute path without '..'")
    if "/" in (fs.get("read_write") or []):
        raise PolicyError("filesystem_policy.read_write: `/` is not allowed")
    networks = {}
    for key, rule in (doc.get("network_policies") or {}).items():
        if not isinstance(rule, dict):
            raise PolicyError(f"network_policies.{key} must be a mapping")
        endpoints = []
        for i, given in enumerate(rule.get("endpoints") or []):
            where = f"network_policies.{key}.endpoints[{i}]"
            if not isinstance(given, dict) or "host" not in given:
                raise PolicyError(f"{where}: an endpoint needs a host")
            if v01 and set(given) - ENDPOINT_KEYS:
                raise PolicyError(f"{where}: unknown field(s) {', '.join(sorted(set(given) - ENDPOINT_KEYS))}")
            if v01 and given.get("tls") in ("terminate", "passthrough"):
                raise PolicyError(f"{where}: tls: {given['tls']} is no longer accepted (omit it to auto-terminate, or skip)")
            ep = dict(given)
            ep.setdefault("enforcement", "audit")  # l7/mod.rs: anything but "enforce" -> Audit (openshell.md Claim 2)
            if ep["enforcement"] not in ("enforce", "audit"):
                raise PolicyError(f"{where}: enforcement {ep['enforcement']!r}: enforce or audit")
            endpoints.append(ep)
        networks[key] = {**rule, "endpoints": endpoints}
    out = {"version": 1, "filesystem_policy": fs, "landlock": landlock, "process": process, "network_policies": networks}
    if v01 and "network_middlewares" in doc:
        out["network_middlewares"] = doc["network_middlewares"]
    return out


def static_change_error(baseline: dict, new: dict) -> str | None:
    """validation.rs @111 L872-937: the message the gateway refuses a live update with, or None."""
    base_fs, new_fs = baseline.get("filesystem_policy") or {}, new.get("filesystem_policy") or {}
    if base_fs and not new.get("filesystem_policy"):
        return "filesystem policy cannot be removed on a live sandbox"
    if base_fs:
        if bool(base_fs.get("include_workdir", True)) != bool(new_fs.get("include_workdir", True)):
            return "filesystem include_workdir cannot be changed on a live sandbox"
        for key in ("read_only", "read_write"):
            for path in base_fs.get(key) or []:
                if path not in (new_fs.get(key) or []):
                    return f"filesystem {key} path '{path}' cannot be removed on a live sandbox"
    if json.dumps(baseline.get("landlock"), sort_keys=True) != json.dumps(new.get("landlock"), sort_keys=True):
        return "landlock policy cannot be changed on a live sandbox (applied at startup)"
    if json.dumps(baseline.get("process"), sort_keys=True) != json.dumps(new.get("process"), sort_keys=True):
        return "process policy cannot be changed on a live sandbox (applied at startup)"
    return None


def _label_name_ok(name: str) -> bool:
    return bool(name) and len(name) <= 63 and all(c.isalnum() or c in "-_." for c in name) and \
        name[0].isalnum() and name[-1].isalnum()


def label_error(key: str, value: str) -> str | None:
    """validate_label_key / validate_label_value (validation.rs @111 L587-740, called for every label of a
    CreateSandbox at sandbox.rs @111 L236-237): Kubernetes label rules; the message, or None."""
    if not key:
        return "label key cannot be empty"
    if len(key) > 253:
        return f"label key exceeds 253 characters: '{key}'"
    head, sep, tail = key.partition("/")  # split_once('/'): an optional prefix, then the name
    prefix, name = (head, tail) if sep else (None, key)
    if not _label_name_ok(name):
        return f"label key name segment is invalid (alphanumeric, '-', '_', '.', at most 63, alphanumeric at both ends): '{key}'"
    if prefix is not None:
        if not prefix or len(prefix) > 253:
            return f"label key prefix is empty or exceeds 253 characters: '{key}'"
        if not all(c.islower() or c.isdigit() or c in "-." for c in prefix) or prefix[0] in "-." or \
                prefix[-1] in "-." or ".." in prefix:
            return f"label key prefix must be a DNS subdomain (lowercase alphanumeric, '-', '.'): '{key}'"
    if value and not _label_name_ok(value):
        return f"label value is invalid (at most 63 characters, alphanumeric, '-', '_', '.', alphanumeric at both ends): '{value}'"
    return None
