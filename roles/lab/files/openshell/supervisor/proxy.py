"""The lab's sandbox proxy: a re-implementation of OpenShell v0.0.26's CONNECT / forward proxy.

The supervisor stand-in starts it inside the pod network namespace, listening on the host side of the agent's veth
pair (upstream: ``10.200.0.1:3128``)::

    python3 -I proxy.py --listen 10.200.0.1:3128 --policy /run/openshell-supervisor/policy.yaml \
        --ca-cert CA.pem --ca-key CA.key --upstream-ca WORLD-CA.pem \
        --inference /run/openshell-supervisor/inference.json [--gap NAME]... [--resolve HOST=IP]... [--log FILE]

Every behaviour cites the upstream source at tag v0.0.26 of NVIDIA/OpenShell (commit f92923e06). Abbreviations:
``sb/X`` = crates/openshell-sandbox/src/X, ``rego:N`` = crates/openshell-sandbox/data/sandbox-policy.rego line N,
``router/X`` = crates/openshell-router/src/X, ``core/inference.rs`` = crates/openshell-core/src/inference.rs,
``server/inference.rs`` = crates/openshell-server/src/inference.rs. Where this program deviates on purpose (bounded
time, a lab resolver, the policy from a file instead of the gateway) the comment says "lab:"; where no upstream line
backs a choice it says "unverified".

Gaps (``--gap``, each off by default; each reproduces one defect a red team found in the old mitmproxy lab proxy):
``port_any`` (the L4 decision ignores the port), ``host_header`` (a forward-proxy request is decided on its Host
header but sent to the URI authority), ``tls_strict_detect`` (only a ClientHello record with version 0x0301 is
intercepted, any other one is relayed raw), ``inference_models_any`` (the provider key is injected for any method on
any path under /v1/models/).

Only the standard library, python3-cryptography and python3-yaml (Debian bookworm: cryptography 38) are used.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import http.client
import ipaddress
import json
import os
import re
import select
import socket
import ssl
import sys
import tempfile
import threading
import time

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519
from cryptography.x509.oid import ExtensionOID, NameOID

GAPS = ("port_any", "host_header", "tls_strict_detect", "inference_models_any")

MAX_HEADER_BYTES = 8192  # sb/proxy.rs:27
INFERENCE_LOCAL_HOST = "inference.local"  # sb/proxy.rs:28
MAX_STREAMING_BODY = 32 * 1024 * 1024  # sb/proxy.rs:31
CHUNK_IDLE_TIMEOUT = 30.0  # sb/proxy.rs:34
MAX_INFERENCE_BUF = 10 * 1024 * 1024  # sb/proxy.rs:991
INITIAL_INFERENCE_BUF = 65536  # sb/proxy.rs:994
BLOCKED_CONTROL_PLANE_PORTS = (2379, 2380, 6443, 10250, 10255)  # sb/proxy.rs:1610-1616
MIN_SAFE_PREFIX_LEN = 16  # sb/proxy.rs:1605
L7_MAX_HEADER_BYTES = 16384  # sb/l7/rest.rs:17
RELAY_BUF_SIZE = 8192  # sb/l7/rest.rs:18
RELAY_EOF_IDLE_TIMEOUT = 5.0  # sb/l7/rest.rs:22
MAX_CHUNKED_BODY = 10 * 1024 * 1024  # sb/l7/inference.rs:199
MAX_CHUNK_COUNT = 4096  # sb/l7/inference.rs:203
MAX_CACHED_CERTS = 256  # sb/l7/tls.rs:23
DEFAULT_ROUTE_TIMEOUT = 60.0  # router/config.rs:12
POLICY_POLL_INTERVAL = 10.0  # sb/lib.rs:725-728 (OPENSHELL_POLICY_POLL_INTERVAL_SECS, default 10)
ROUTE_REFRESH_INTERVAL = 5.0  # sb/lib.rs:105,132-155 (OPENSHELL_ROUTE_REFRESH_INTERVAL_SECS, default 5)
# lab: upstream has no timeout on these; a lab proxy must not hold threads forever.
HEAD_TIMEOUT = 60.0
IDLE_TIMEOUT = 300.0
CONNECT_TIMEOUT = 30.0
MAX_CONNECTIONS = 512

# core/inference.rs:50-57 (protocols per provider profile; server/inference.rs:272 copies them into the route)
OPENAI_PROTOCOLS = ("openai_chat_completions", "openai_completions", "openai_responses", "model_discovery")
ANTHROPIC_PROTOCOLS = ("anthropic_messages", "model_discovery")
PROVIDER_PROFILES = {  # core/inference.rs:59-100: (protocols, auth header, default headers)
    "openai": (OPENAI_PROTOCOLS, "bearer", ()),
    "anthropic": (ANTHROPIC_PROTOCOLS, "x-api-key", (("anthropic-version", "2023-06-01"),)),
    "nvidia": (OPENAI_PROTOCOLS, "bearer", ()),
}
# sb/l7/inference.rs:20-59: (method, path glob, protocol, kind)
INFERENCE_PATTERNS = (
    ("POST", "/v1/chat/completions", "openai_chat_completions", "chat_completion"),
    ("POST", "/v1/completions", "openai_completions", "completion"),
    ("POST", "/v1/responses", "openai_responses", "responses"),
    ("POST", "/v1/messages", "anthropic_messages", "messages"),
    ("GET", "/v1/models", "model_discovery", "models_list"),
    ("GET", "/v1/models/*", "model_discovery", "models_get"),
)
HOP_BY_HOP = ("connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te",
              "trailer", "transfer-encoding", "upgrade")  # sb/proxy.rs:1345-1358
HTTP_METHODS = (b"GET ", b"HEAD ", b"POST ", b"PUT ", b"DELETE ", b"PATCH ", b"OPTIONS ", b"CONNECT ", b"TRACE ")  # sb/l7/rest.rs:831-844


class ProxyError(Exception):
    """A failure that ends one connection (upstream: an Err returned from the connection task)."""


class PolicyError(ValueError):
    """The policy file cannot be loaded (upstream: OpaEngine::from_strings / reload errors)."""


# ---------------------------------------------------------------------------------------------------------------
# logging: one line per decision
class Log:
    def __init__(self, path=None):
        self.lock = threading.Lock()
        self.fh = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115 - lives as long as the process

    def __call__(self, event, **fields):
        parts = [datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), event]
        for key, value in fields.items():
            text = "-" if value is None or value == "" else str(value)
            if re.search(r"[\s\"=]", text):
                text = json.dumps(text)
            parts.append(f"{key}={text}")
        line = " ".join(parts) + "\n"
        with self.lock:
            sys.stdout.write(line)
            sys.stdout.flush()
            if self.fh:
                self.fh.write(line)
                self.fh.flush()


LOG = Log()


# ---------------------------------------------------------------------------------------------------------------
# glob.match as regorus 0.9 evaluates it (microsoft/regorus src/builtins/glob.rs: delimiters become "/" for the wax
# glob crate; an empty delimiter list means ["."]). The wax grammar is approximated: "*" and "?" stay inside a
# component, "**" spans components, [..] classes and {a,b} alternatives (edge cases of wax: unverified).
def _glob_prepare(text, delimiters):
    if delimiters is None:
        return text.replace("/", "\0")
    delims = [d[0] for d in delimiters if d] or ["."]
    if "/" not in delims:
        text = text.replace("/", "\0")
    for d in delims:
        if d == ":":
            text = text.replace(":", "\0")
        elif d != "/":
            text = text.replace(d, f"/{d}/")
    return text


def _glob_regex(pattern):
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("**", i):
            before = i == 0 or pattern[i - 1] == "/"
            after = pattern[i + 2:i + 3]
            if before and after == "/":
                out.append("(?:.*/)?")
                i += 3
                continue
            if i > 0 and pattern[i - 1] == "/" and after == "" and out and out[-1] == "/":
                out[-1] = "(?:/.*)?"
                i += 2
                continue
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise PolicyError(f"invalid glob {pattern!r}")
            body = pattern[i + 1:end]
            neg = body.startswith("!") or body.startswith("^")
            body = body[1:] if neg else body
            out.append("[" + ("^" if neg else "") + body.replace("\\", "\\\\").replace("/", "") + "]")
            i = end + 1
        elif c == "{":
            end = pattern.find("}", i + 1)
            if end < 0:
                raise PolicyError(f"invalid glob {pattern!r}")
            out.append("(?:" + "|".join(_glob_regex(alt) for alt in pattern[i + 1:end].split(",")) + ")")
            i = end + 1
        elif c == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


def glob_match(pattern, delimiters, value):
    return re.fullmatch(_glob_regex(_glob_prepare(pattern, delimiters)), _glob_prepare(value, delimiters), re.S) is not None


# ---------------------------------------------------------------------------------------------------------------
# policy loading as a gateway-managed v0.0.26 sandbox gets it: the YAML is parsed with openshell-policy's strict serde
# schema (crates/openshell-policy/src/lib.rs:27-140, to_proto 156-250), converted to the OPA data document
# (sb/opa.rs:612-748), validated (sb/l7/mod.rs:206-460) and its access presets expanded (sb/l7/mod.rs:465-521).
def _s(obj, key):
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, str) else ""


def _uint(value):
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _fields(obj, where, allowed, required=()):
    """serde(deny_unknown_fields) plus required fields; edge cases of serde_yml (null for a defaulted field): unverified."""
    if not isinstance(obj, dict):
        raise PolicyError(f"failed to parse sandbox policy YAML: {where}: expected a mapping")
    unknown = [k for k in obj if k not in allowed]
    if unknown:
        raise PolicyError(f"failed to parse sandbox policy YAML: {where}: unknown field `{unknown[0]}`")
    for key in required:
        if key not in obj:
            raise PolicyError(f"failed to parse sandbox policy YAML: {where}: missing field `{key}`")
    return obj


def _typed(obj, key, where, kind, default):
    if key not in obj:
        return default
    value = obj[key]
    ok = {"str": isinstance(value, str), "u16": _uint(value) is not None and value <= 65535,
          "list": isinstance(value, list), "bool": isinstance(value, bool), "map": isinstance(value, dict)}[kind]
    if not ok:
        raise PolicyError(f"failed to parse sandbox policy YAML: {where}.{key}: invalid type, expected {kind}")
    return value


def _endpoint_to_opa(ep, where):
    """to_proto (openshell-policy lib.rs:170-221) then proto_to_opa_data_json (sb/opa.rs:657-723)."""
    _fields(ep, where, ("host", "port", "ports", "protocol", "tls", "enforcement", "access", "rules", "allowed_ips"))
    port = _typed(ep, "port", where, "u16", 0)
    ports = _typed(ep, "ports", where, "list", [])
    for i, p in enumerate(ports):
        if _uint(p) is None or p > 65535:
            raise PolicyError(f"failed to parse sandbox policy YAML: {where}.ports[{i}]: invalid type, expected u16")
    ports = list(ports) if ports else ([port] if port > 0 else [])  # ports wins over port (lib.rs:172-179)
    out = {"host": _typed(ep, "host", where, "str", ""), "ports": ports}
    for key in ("protocol", "tls", "enforcement", "access"):
        value = _typed(ep, key, where, "str", "")
        if value:
            out[key] = value
    rules = []
    for i, rule in enumerate(_typed(ep, "rules", where, "list", [])):
        rwhere = f"{where}.rules[{i}]"
        allow = _fields(_fields(rule, rwhere, ("allow",), ("allow",))["allow"], rwhere + ".allow", ("method", "path", "command", "query"))
        entry = {k: _typed(allow, k, rwhere + ".allow", "str", "") for k in ("method", "path", "command")}
        query = {}
        for qkey, matcher in _typed(allow, "query", rwhere + ".allow", "map", {}).items():
            if isinstance(matcher, str):  # QueryMatcherDef::Glob (lib.rs:121-126, 195-199)
                query[str(qkey)] = {"glob": matcher} if matcher else {}
                continue
            anys = _fields(matcher, f"{rwhere}.allow.query.{qkey}", ("any",)).get("any", [])
            if not isinstance(anys, list) or not all(isinstance(a, str) for a in anys):
                raise PolicyError(f"failed to parse sandbox policy YAML: {rwhere}.allow.query.{qkey}.any: expected a list of strings")
            query[str(qkey)] = {"any": list(anys)} if anys else {}
        if query:
            entry["query"] = query
        rules.append({"allow": entry})
    if rules:
        out["rules"] = rules
    ips = _typed(ep, "allowed_ips", where, "list", [])
    if not all(isinstance(v, str) for v in ips):
        raise PolicyError(f"failed to parse sandbox policy YAML: {where}.allowed_ips: expected a list of strings")
    if ips:
        out["allowed_ips"] = list(ips)
    return out


def policy_to_opa_data(doc):
    """The OPA data document of a policy YAML document (raises PolicyError)."""
    _fields(doc, "policy", ("version", "filesystem_policy", "landlock", "process", "network_policies"), ("version",))
    version = doc["version"]
    if _uint(version) is None or version > 0xFFFFFFFF:
        raise PolicyError("failed to parse sandbox policy YAML: version: invalid type, expected u32")
    for key, allowed in (("filesystem_policy", ("include_workdir", "read_only", "read_write")), ("landlock", ("compatibility",)),
                         ("process", ("run_as_user", "run_as_group"))):
        if doc.get(key) is not None:
            _fields(doc[key], key, allowed)
    policies = {}
    for key, rule in _typed(doc, "network_policies", "policy", "map", {}).items():
        where = f"network_policies.{key}"
        _fields(rule, where, ("name", "endpoints", "binaries"))
        binaries = []
        for i, b in enumerate(_typed(rule, "binaries", where, "list", [])):
            _fields(b, f"{where}.binaries[{i}]", ("path", "harness"), ("path",))
            binaries.append({"path": _typed(b, "path", f"{where}.binaries[{i}]", "str", "")})
        policies[str(key)] = {
            "name": _typed(rule, "name", where, "str", "") or str(key),  # lib.rs:162-166
            "endpoints": [_endpoint_to_opa(ep, f"{where}.endpoints[{i}]") for i, ep in enumerate(_typed(rule, "endpoints", where, "list", []))],
            "binaries": binaries,
        }
    return {"network_policies": policies}


def _check_glob_syntax(pattern):
    """sb/l7/mod.rs:164-200."""
    depth = 0
    for c in pattern:
        if c == "[":
            depth += 1
        elif c == "]":
            if depth == 0:
                return f"glob pattern '{pattern}' has unmatched ']'"
            depth -= 1
    if depth:
        return f"glob pattern '{pattern}' has unclosed '['"
    depth = 0
    for c in pattern:
        if c == "{":
            depth += 1
        elif c == "}":
            if depth == 0:
                return f"glob pattern '{pattern}' has unmatched '}}'"
            depth -= 1
    if depth:
        return f"glob pattern '{pattern}' has unclosed '{{'"
    return None


def _validate_query(loc, rule_idx, query, errors, warnings):
    """sb/l7/mod.rs:350-452 (query matchers of a REST rule)."""
    if not isinstance(query, dict):
        errors.append(f"{loc}.rules[{rule_idx}].allow.query: expected map of query matchers")
        return
    for param, matcher in query.items():
        where = f"{loc}.rules[{rule_idx}].allow.query.{param}"
        if isinstance(matcher, str):
            w = _check_glob_syntax(matcher)
            if w:
                warnings.append(f"{where}: {w}")
            continue
        if not isinstance(matcher, dict):
            errors.append(f"{where}: expected string glob or object with `any`")
            continue
        if any(k not in ("any", "glob") for k in matcher):
            errors.append(f"{where}: unknown matcher keys; only `glob` or `any` are supported")
        elif "glob" in matcher and "any" in matcher:
            errors.append(f"{where}: matcher cannot specify both `glob` and `any`")
        elif "glob" not in matcher and "any" not in matcher:
            errors.append(f"{where}: object matcher requires `glob` string or non-empty `any` list")
        elif "glob" in matcher:
            if not isinstance(matcher["glob"], str):
                errors.append(f"{where}.glob: expected glob string")
            elif _check_glob_syntax(matcher["glob"]):
                warnings.append(f"{where}.glob: {_check_glob_syntax(matcher['glob'])}")
        elif not isinstance(matcher["any"], list):
            errors.append(f"{where}.any: expected array of glob strings")
        elif not matcher["any"]:
            errors.append(f"{where}.any: list must not be empty")
        elif any(not isinstance(v, str) for v in matcher["any"]):
            errors.append(f"{where}.any: all values must be strings")


def validate_l7_policies(data):
    """sb/l7/mod.rs:206-460: (errors, warnings)."""
    errors, warnings = [], []
    policies = data.get("network_policies")
    if not isinstance(policies, dict):
        return errors, warnings
    for name, policy in policies.items():
        endpoints = policy.get("endpoints") if isinstance(policy, dict) else None
        if not isinstance(endpoints, list):
            continue
        for i, raw_ep in enumerate(endpoints):
            ep = raw_ep if isinstance(raw_ep, dict) else {}
            protocol, tls, enforcement, access, host = (_s(ep, k) for k in ("protocol", "tls", "enforcement", "access", "host"))
            rules = ep.get("rules")
            has_rules = isinstance(rules, list) and bool(rules)
            ports = [p for p in ep["ports"] if _uint(p) is not None] if isinstance(ep.get("ports"), list) else []
            if not ports and (_uint(ep.get("port")) or 0) > 0:
                ports = [ep["port"]]
            loc = f"{name}.endpoints[{i}]"
            if "*" in host:
                if host in ("*", "**"):
                    errors.append(f"{loc}: host wildcard '{host}' matches all hosts; use specific patterns like '*.example.com'")
                elif not host.startswith(("*.", "**.")):
                    errors.append(f"{loc}: host wildcard must start with '*.' or '**.' (e.g., '*.example.com'), got '{host}'")
                elif len(host.split(".")) <= 2:
                    warnings.append(f"{loc}: host wildcard '{host}' is very broad (covers all subdomains of a TLD)")
            if (_uint(ep.get("port")) or 0) > 0 and isinstance(ep.get("ports"), list) and ep["ports"]:
                errors.append(f"{loc}: port and ports are mutually exclusive; use ports for multiple ports")
            if has_rules and access:
                errors.append(f"{loc}: rules and access are mutually exclusive")
            if protocol and not has_rules and not access:
                errors.append(f"{loc}: protocol requires rules or access to define allowed traffic")
            if tls in ("terminate", "passthrough"):
                warnings.append(f"{loc}: 'tls: {tls}' is deprecated; TLS termination is now automatic. Use 'tls: skip' to disable.")
            if tls == "skip" and protocol and 443 in ports:
                warnings.append(f"{loc}: 'tls: skip' with L7 rules on port 443 - L7 inspection cannot work on encrypted traffic")
            if protocol == "sql" and enforcement == "enforce":
                errors.append(f"{loc}: SQL enforcement requires full SQL parsing (not available in v1). Use `enforcement: audit`.")
            if isinstance(rules, list) and not rules:
                errors.append(f"{loc}: rules list cannot be empty (would deny all traffic). Use `access: full` or remove rules.")
            if has_rules and protocol == "rest":
                for rule_idx, rule in enumerate(rules):
                    allow = rule.get("allow") if isinstance(rule, dict) else None
                    allow = allow if isinstance(allow, dict) else {}
                    method = _s(allow, "method")
                    if method and method.upper() not in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "*"):
                        warnings.append(f"{loc}: Unknown HTTP method '{method}'. Standard methods: GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS.")
                    if allow.get("query") is not None:
                        _validate_query(loc, rule_idx, allow["query"], errors, warnings)
    return errors, warnings


def _rule(method, path):
    return {"allow": {"method": method, "path": path}}


ACCESS_PRESETS = {  # sb/l7/mod.rs:498-513
    "read-only": [_rule("GET", "**"), _rule("HEAD", "**"), _rule("OPTIONS", "**")],
    "read-write": [_rule(m, "**") for m in ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH")],
    "full": [_rule("*", "**")],
}


def expand_access_presets(data):
    """sb/l7/mod.rs:465-521."""
    for policy in (data.get("network_policies") or {}).values():
        if not isinstance(policy, dict) or not isinstance(policy.get("endpoints"), list):
            continue
        for ep in policy["endpoints"]:
            if not isinstance(ep, dict):
                continue
            access = _s(ep, "access")
            if not access or (isinstance(ep.get("rules"), list) and ep["rules"]):
                continue
            if access in ACCESS_PRESETS:
                ep["rules"] = json.loads(json.dumps(ACCESS_PRESETS[access]))


def load_policy_text(text):
    """Parse, convert, validate and expand a sandbox policy YAML document. Raises PolicyError."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"failed to parse sandbox policy YAML: {exc}") from exc
    data = policy_to_opa_data(doc if doc is not None else {})
    errors, warnings = validate_l7_policies(data)  # sb/opa.rs:121-139
    for w in warnings:
        LOG("POLICY_WARNING", detail=w)
    if errors:
        raise PolicyError("L7 policy validation failed:\n" + "\n".join(errors))
    expand_access_presets(data)  # sb/opa.rs:141-142
    return data


# ---------------------------------------------------------------------------------------------------------------
# the Rego decisions, written out (rego line numbers per rule)
def _ports(ep):
    return [p for p in ep.get("ports", []) if _uint(p) is not None] if isinstance(ep.get("ports"), list) else []


def _port_ok(ep, port, ignore_port):
    # rego:100,111,122 `endpoint.ports[_] == network.port`; gap port_any drops this conjunct
    return ignore_port or port in _ports(ep)


def _host_match(ep, host):
    ep_host = ep.get("host")
    if not isinstance(ep_host, str):
        return False
    if "*" not in ep_host:
        return ep_host.lower() == host.lower()  # rego:98-99
    return glob_match(ep_host.lower(), ["."], host.lower())  # rego:109-110


def endpoint_matches(ep, host, port, ignore_port=False):
    """rego:95-123 endpoint_allowed / rego:324-342 endpoint_matches_request (same three cases)."""
    if not isinstance(ep, dict):
        return False
    if _host_match(ep, host) and _port_ok(ep, port, ignore_port):
        return True
    hostless = ep.get("host", "") == ""  # rego:120 object.get(endpoint, "host", "") == ""
    allowed_ips = ep.get("allowed_ips", [])
    return hostless and isinstance(allowed_ips, list) and len(allowed_ips) > 0 and _port_ok(ep, port, ignore_port)


def endpoint_allowed(policy, host, port, ignore_port=False):
    return any(endpoint_matches(ep, host, port, ignore_port) for ep in _endpoints(policy))


def _endpoints(policy):
    eps = policy.get("endpoints") if isinstance(policy, dict) else None
    return eps if isinstance(eps, list) else []


def binary_allowed(policy, exec_info):
    """rego:128-153: exact exe or ancestor path, or a "/"-delimited glob over exe + ancestors (never cmdline)."""
    bins = policy.get("binaries") if isinstance(policy, dict) else None
    if not isinstance(bins, list):
        return False
    path, ancestors = exec_info.get("path", ""), exec_info.get("ancestors", [])
    for b in bins:
        bpath = b.get("path") if isinstance(b, dict) else None
        if not isinstance(bpath, str):
            continue
        if "*" not in bpath:
            if bpath == path or bpath in ancestors:
                return True
        elif any(glob_match(bpath, ["/"], p) for p in [path, *ancestors]):
            return True
    return False


def _policies(data):
    pols = data.get("network_policies")
    return {k: pols[k] for k in sorted(pols)} if isinstance(pols, dict) else {}  # regorus objects iterate in key order


def evaluate_network(data, host, port, exec_info, ignore_port=False):
    """sb/opa.rs:224-280 network_action + matched_network_policy + deny_reason (rego:18-92, 161-166).

    Returns (action, matched_policy, reason)."""
    pols = _policies(data)
    matching = [n for n, p in pols.items() if endpoint_allowed(p, host, port, ignore_port) and binary_allowed(p, exec_info)]
    if matching:
        return "allow", min(matching), ""  # rego:78-80 min(_matching_policy_names)
    if not pols:
        return "deny", None, "network connections not allowed by policy"  # rego:57-62
    misses = [f"endpoint {host}:{port} not in policy '{n}'" for n, p in pols.items() if not endpoint_allowed(p, host, port, ignore_port)]
    anc = " -> ".join(exec_info.get("ancestors", []))
    cmd = ", ".join(exec_info.get("cmdline_paths", []))
    misses += [f"binary '{exec_info.get('path', '')}' (ancestors: [{anc}], cmdline: [{cmd}]) not allowed in policy '{n}'"
               for n, p in pols.items() if endpoint_allowed(p, host, port, ignore_port) and not binary_allowed(p, exec_info)]
    return "deny", None, "; ".join(misses)  # rego:33-55


def _truthy(ep, key):
    return key in ep and ep[key] is not False  # Rego: a defined value other than false is true


def matched_endpoint_config(data, host, port, exec_info, ignore_port=False):
    """rego:302-321: first endpoint with protocol / allowed_ips / tls among the matching policies, in name order."""
    for policy in _policies(data).values():
        if not (endpoint_allowed(policy, host, port, ignore_port) and binary_allowed(policy, exec_info)):
            continue
        for ep in _endpoints(policy):
            if not endpoint_matches(ep, host, port, ignore_port):
                continue
            ips = ep.get("allowed_ips", [])
            if _truthy(ep, "protocol") or (isinstance(ips, list) and ips) or _truthy(ep, "tls"):
                return ep
    return None


def l7_config(ep):
    """sb/l7/mod.rs:87-130: (protocol, tls, enforcement) or None without a known protocol."""
    if not ep:
        return None
    protocol = _s(ep, "protocol").lower()
    if protocol not in ("rest", "sql"):
        return None
    tls = "skip" if _s(ep, "tls") == "skip" else "auto"
    enforcement = "enforce" if _s(ep, "enforcement") == "enforce" else "audit"  # sb/l7/mod.rs:120-123: default audit
    return {"protocol": protocol, "tls": tls, "enforcement": enforcement}


def tls_mode(ep):
    return "skip" if ep and _s(ep, "tls") == "skip" else "auto"  # sb/l7/mod.rs:136-142, sb/proxy.rs:1416-1443


def allowed_ips_of(ep):
    ips = ep.get("allowed_ips") if ep else None
    return [v for v in ips if isinstance(v, str)] if isinstance(ips, list) else []  # sb/opa.rs:413-418,468-486


def _method_matches(actual, expected):
    return expected == "*" or actual.upper() == expected.upper()  # rego:224-229


def _path_matches(actual, pattern):
    if not isinstance(pattern, str):
        return False
    return pattern == "**" or glob_match(pattern, ["/"], actual)  # rego:232-237


def _query_value_matches(value, matcher):
    """rego:268-286."""
    if isinstance(matcher, str):
        return glob_match(matcher, [], value)
    if isinstance(matcher, dict):
        if isinstance(matcher.get("glob"), str) and matcher["glob"]:
            return glob_match(matcher["glob"], [], value)
        anys = matcher.get("any")
        return isinstance(anys, list) and any(isinstance(a, str) and glob_match(a, [], value) for a in anys)
    return False


def _query_match(request, rule):
    """rego:243-266: every configured key must be present and all its values must match."""
    rules = rule["allow"].get("query") or {}
    if not isinstance(rules, dict):
        return True
    params = request.get("query_params", {})
    for key, matcher in rules.items():
        values = params.get(key)
        if not values or not all(_query_value_matches(v, matcher) for v in values):
            return False
    return True


def _request_allowed_for_endpoint(request, ep):
    """rego:205-221 (REST rules; SQL command rules never match a REST request)."""
    rules = ep.get("rules")
    if not isinstance(rules, list):
        return False
    for rule in rules:
        allow = rule.get("allow") if isinstance(rule, dict) else None
        if not isinstance(allow, dict) or not allow.get("method") or not isinstance(allow["method"], str):
            continue
        if _method_matches(request["method"], allow["method"]) and _path_matches(request["path"], allow.get("path")) \
                and _query_match(request, {"allow": allow}):
            return True
    return False


def evaluate_l7(data, host, port, exec_info, request, ignore_port=False):
    """sb/l7/relay.rs:312-361 with rego:179-201: (allowed, reason)."""
    for policy in _policies(data).values():
        if not (endpoint_allowed(policy, host, port, ignore_port) and binary_allowed(policy, exec_info)):
            continue
        if any(endpoint_matches(ep, host, port, ignore_port) and _request_allowed_for_endpoint(request, ep) for ep in _endpoints(policy)):
            return True, ""
    return False, f"{request['method']} {request['path']} not permitted by policy"


# ---------------------------------------------------------------------------------------------------------------
# SSRF guard: sb/proxy.rs:1445-1600 with Rust's std::net semantics (not Python's wider is_private)
_V4_LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
_V4_PRIVATE = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_V4_LINK_LOCAL = ipaddress.ip_network("169.254.0.0/16")


def _v4_internal(ip, include_private):
    return ip in _V4_LOOPBACK or ip in _V4_LINK_LOCAL or ip == ipaddress.IPv4Address("0.0.0.0") \
        or (include_private and any(ip in n for n in _V4_PRIVATE))


def _v6_internal(ip, include_private):
    if ip == ipaddress.IPv6Address("::1") or ip == ipaddress.IPv6Address("::"):
        return True
    first = int(ip) >> 112
    if first & 0xFFC0 == 0xFE80:  # fe80::/10
        return True
    if include_private and first & 0xFE00 == 0xFC00:  # fc00::/7
        return True
    if ip.ipv4_mapped is not None:
        return _v4_internal(ip.ipv4_mapped, include_private)
    return False


def is_internal_ip(ip):
    """sb/proxy.rs:1452-1479."""
    ip = ipaddress.ip_address(ip)
    return _v4_internal(ip, True) if ip.version == 4 else _v6_internal(ip, True)


def is_always_blocked_ip(ip):
    """sb/proxy.rs:1530-1548: loopback, link-local, unspecified (also for allowed_ips)."""
    ip = ipaddress.ip_address(ip)
    return _v4_internal(ip, False) if ip.version == 4 else _v6_internal(ip, False)


def parse_allowed_ips(raw):
    """sb/proxy.rs:1623-1664 (CIDR or bare IP; broad CIDRs only warned about)."""
    nets, errors = [], []
    for entry in raw:
        try:
            net = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            errors.append(f"invalid CIDR/IP in allowed_ips: {entry}")
            continue
        if net.prefixlen < MIN_SAFE_PREFIX_LEN:
            LOG("POLICY_WARNING", detail=f"allowed_ips entry has a very broad CIDR {net} (/{net.prefixlen}) < /{MIN_SAFE_PREFIX_LEN}")
        nets.append(net)
    if errors:
        raise ValueError("; ".join(errors))
    return nets


def implicit_allowed_ips_for_ip_host(host):
    """sb/proxy.rs:1486-1492."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return []
    return [host]


class Resolver:
    """tokio::net::lookup_host (getaddrinfo) as upstream uses it (sb/proxy.rs:1502,1562); lab: --resolve pins a name."""

    def __init__(self, pins):
        self.pins = pins

    def lookup(self, host, port):
        pinned = self.pins.get(host.lower())
        if pinned:
            return [(ip, port) for ip in pinned]
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise ValueError(f"DNS resolution failed for {host}:{port}: {exc}") from exc
        out = []
        for info in infos:
            addr = (info[4][0], port)
            if addr not in out:
                out.append(addr)
        return out


def resolve_and_reject_internal(resolver, host, port):
    """sb/proxy.rs:1498-1523."""
    addrs = resolver.lookup(host, port)
    if not addrs:
        raise ValueError(f"DNS resolution returned no addresses for {host}:{port}")
    for ip, _port in addrs:
        if is_internal_ip(ip):
            raise ValueError(f"{host} resolves to internal address {ip}, connection rejected")
    return addrs


def resolve_and_check_allowed_ips(resolver, host, port, nets):
    """sb/proxy.rs:1557-1600."""
    addrs = resolver.lookup(host, port)
    if not addrs:
        raise ValueError(f"DNS resolution returned no addresses for {host}:{port}")
    if port in BLOCKED_CONTROL_PLANE_PORTS:
        raise ValueError(f"port {port} is a blocked control-plane port, connection rejected")
    for ip, _port in addrs:
        if is_always_blocked_ip(ip):
            raise ValueError(f"{host} resolves to always-blocked address {ip}, connection rejected")
        if not any(ipaddress.ip_address(ip) in net for net in nets):
            raise ValueError(f"{host} resolves to {ip} which is not in allowed_ips, connection rejected")
    return addrs


def ssrf_addresses(resolver, host, port, raw_allowed_ips):
    """sb/proxy.rs:475-601 / 2213-2341: (addresses, None) or (None, (stage, reason))."""
    raw = raw_allowed_ips or implicit_allowed_ips_for_ip_host(host)
    try:
        if raw:
            try:
                nets = parse_allowed_ips(raw)
            except ValueError as exc:
                return None, ("invalid allowed_ips", str(exc))
            return resolve_and_check_allowed_ips(resolver, host, port, nets), None
        return resolve_and_reject_internal(resolver, host, port), None
    except ValueError as exc:
        return None, ("allowed_ips" if raw else "internal address", str(exc))


def connect_any(addrs):
    """TcpStream::connect(&[SocketAddr]): the first address that connects wins (sb/proxy.rs:487,563,2344)."""
    last = None
    for ip, port in addrs:
        try:
            return socket.create_connection((ip, port), timeout=CONNECT_TIMEOUT)
        except OSError as exc:
            last = exc
    raise ProxyError(f"upstream connect failed: {last}")


# ---------------------------------------------------------------------------------------------------------------
# process identity: sb/procfs.rs and sb/identity.rs. Upstream reads /proc/<entrypoint>/net/tcp of the agent netns;
# this stand-in has no entrypoint pid, so it looks for the socket in the tcp table of every network namespace it can
# see (the agent lives in another netns of the same PID namespace). unverified: that search replaces the entrypoint
# lookup and also requires the socket's remote end to be this proxy's listen address.
def _decode_proc_addr(text):
    """An address of /proc/net/tcp{,6}: 32-bit words printed in host byte order (little-endian here)."""
    hexip, hexport = text.split(":")
    raw = bytes.fromhex(hexip)
    if sys.byteorder == "little":
        raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    ip = ipaddress.ip_address(raw)
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip), int(hexport, 16)


def find_socket_inode(proc, peer, listen):
    """sb/procfs.rs:176-222 (ESTABLISHED rows of tcp and tcp6)."""
    seen = set()
    own = _netns(proc, "self")
    pids = sorted((int(p) for p in os.listdir(proc) if p.isdigit()), reverse=True)
    for pid in pids:
        ns = _netns(proc, pid)
        if ns is None or ns in seen:
            continue
        seen.add(ns)
        for suffix in ("tcp", "tcp6"):
            try:
                with open(f"{proc}/{pid}/net/{suffix}", encoding="ascii") as fh:
                    rows = fh.read().splitlines()[1:]
            except OSError:
                continue
            for row in rows:
                fields = row.split()
                if len(fields) < 10 or fields[3] != "01":
                    continue
                try:
                    local, remote = _decode_proc_addr(fields[1]), _decode_proc_addr(fields[2])
                except ValueError:
                    continue
                if local == peer and (remote == listen or (remote[1] == listen[1] and ns == own)):
                    inode = int(fields[9])
                    if inode:
                        return inode, ns
    raise ValueError(f"No ESTABLISHED TCP connection found for {peer[0]}:{peer[1]} in any /proc/<pid>/net/tcp{{,6}}")


def _netns(proc, pid):
    try:
        return os.readlink(f"{proc}/{pid}/ns/net")
    except OSError:
        return None


def find_pid_by_socket_inode(proc, inode, netns):
    """sb/procfs.rs:230-284: the process holding socket:[inode] (processes of the socket's netns first)."""
    target = f"socket:[{inode}]"
    pids = [int(p) for p in os.listdir(proc) if p.isdigit()]
    pids.sort(key=lambda p: _netns(proc, p) != netns)
    for pid in pids:
        try:
            fds = os.listdir(f"{proc}/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"{proc}/{pid}/fd/{fd}") == target:
                    return pid
            except OSError:
                continue
    raise ValueError(f"No process found owning socket inode {inode}")


def binary_path(proc, pid):
    """sb/procfs.rs:25-33 (never argv[0])."""
    try:
        return os.readlink(f"{proc}/{pid}/exe")
    except OSError as exc:
        raise ValueError(f"Failed to read /proc/{pid}/exe: {exc}. Cannot determine binary identity - denying request.") from exc


def read_ppid(proc, pid):
    try:
        with open(f"{proc}/{pid}/status", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("PPid:"):
                    return int(line.split(":", 1)[1])
    except (OSError, ValueError):
        return None
    return None


def _parent_chain(proc, pid, netns):
    """PPid walk of sb/procfs.rs:76-99 (64 levels). Upstream stops at the entrypoint pid (included) or PID 1; this
    stand-in has no entrypoint pid and stops before the first parent outside the agent's network namespace (the
    entrypoint's parent is the supervisor, outside it). lab/unverified: upstream also lists PID 1 (the supervisor) for
    processes started by its SSH server; here a process whose chain leaves the namespace never lists it."""
    chain, current = [], pid
    for _attempt in range(64):
        ppid = read_ppid(proc, current)
        if not ppid or ppid == current or _netns(proc, ppid) != netns:
            break
        chain.append(ppid)
        if ppid == 1:
            break
        current = ppid
    return chain


def collect_ancestors(proc, pid, netns):
    ancestors = []
    for ppid in _parent_chain(proc, pid, netns):
        try:
            ancestors.append(binary_path(proc, ppid))
        except ValueError:
            pass
    return ancestors


def collect_cmdline_paths(proc, pid, netns, exclude):
    """sb/procfs.rs:109-159 (logging only: the Rego never grants on cmdline paths, rego:145-146)."""
    out = []
    for p in [pid, *_parent_chain(proc, pid, netns)]:
        try:
            with open(f"{proc}/{p}/cmdline", "rb") as fh:
                args = fh.read().split(b"\0")
        except OSError:
            continue
        for arg in args:
            if arg.startswith(b"/"):
                path = arg.decode("utf-8", "replace")
                if path not in exclude and path not in out:
                    out.append(path)
    return out


class IdentityCache:
    """sb/identity.rs:77-165: SHA-256 trust on first use, re-hashed when the file's fingerprint changes."""

    def __init__(self):
        self.lock = threading.Lock()
        self.cache = {}

    def verify_or_cache(self, path):
        try:
            st = os.stat(path)
        except OSError as exc:
            raise ValueError(f"Failed to stat {path}: {exc}") from exc
        fingerprint = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_dev, st.st_ino)
        with self.lock:
            cached = self.cache.get(path)
        if cached and cached[0] == fingerprint:
            return cached[1]
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(65536), b""):
                digest.update(block)
        current = digest.hexdigest()
        with self.lock:
            existing = self.cache.get(path)
            if existing and existing[1] != current:
                raise ValueError(f"Binary integrity violation: {path} hash changed (cached: {existing[1]}, current: {current})")
            self.cache[path] = (fingerprint, current)
        return current


class IdentityError(ValueError):
    def __init__(self, reason, exec_info=None, pid=None):
        super().__init__(reason)
        self.exec_info = exec_info or {"path": "", "ancestors": [], "cmdline_paths": []}
        self.pid = pid


def resolve_identity(proc, cache, peer, listen):
    """sb/proxy.rs:847-967 evaluate_opa_tcp up to the Rego input: (exec_info, pid) or raises IdentityError."""
    try:
        inode, netns = find_socket_inode(proc, peer, listen)
        pid = find_pid_by_socket_inode(proc, inode, netns)
        path = binary_path(proc, pid)
    except (ValueError, OSError) as exc:
        raise IdentityError(f"failed to resolve peer binary: {exc}") from exc
    info = {"path": path, "ancestors": [], "cmdline_paths": []}
    try:
        cache.verify_or_cache(path)
    except (ValueError, OSError) as exc:
        raise IdentityError(f"binary integrity check failed: {exc}", info, pid) from exc
    info["ancestors"] = collect_ancestors(proc, pid, netns)
    for anc in info["ancestors"]:
        try:
            cache.verify_or_cache(anc)
        except (ValueError, OSError) as exc:
            raise IdentityError(f"ancestor integrity check failed for {anc}: {exc}", info, pid) from exc
    info["cmdline_paths"] = collect_cmdline_paths(proc, pid, netns, [*info["ancestors"], path])
    return info, pid


# ---------------------------------------------------------------------------------------------------------------
# TLS: sb/l7/tls.rs. Leaf certificates like rcgen 0.13's defaults (rustls/rcgen rcgen/src/certificate.rs
# CertificateParams::default/new, read at the index's HEAD, not at 0.13.2: unverified): P-256 key, SAN = the name
# (an IP SAN for an IP literal), CN = the name, authority key identifier, validity 1975-01-01..4096-01-01, serial from
# SHA-256 of the public key, no basicConstraints/keyUsage.
class CertAuthority:
    def __init__(self, cert_path, key_path):
        with open(cert_path, "rb") as fh:
            self.ca_pem = fh.read()
        with open(key_path, "rb") as fh:
            self.ca_key = serialization.load_pem_private_key(fh.read(), password=None)
        self.ca_cert = x509.load_pem_x509_certificate(self.ca_pem)
        self.dir = tempfile.mkdtemp(prefix="openshell-proxy-leaves-")
        os.chmod(self.dir, 0o700)
        self.lock = threading.Lock()
        self.contexts = {}
        try:
            ski = self.ca_cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_KEY_IDENTIFIER).value
            self.aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
        except x509.ExtensionNotFound:
            self.aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_cert.public_key())

    def _sign_hash(self):
        return None if isinstance(self.ca_key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)) else hashes.SHA256()

    def _leaf(self, hostname):
        key = ec.generate_private_key(ec.SECP256R1())
        point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        serial = bytearray(hashlib.sha256(point).digest()[:20])
        serial[0] &= 0x7F
        try:
            san = x509.IPAddress(ipaddress.ip_address(hostname))
        except ValueError:
            san = x509.DNSName(hostname)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
                .issuer_name(self.ca_cert.subject)
                .public_key(key.public_key())
                .serial_number(int.from_bytes(bytes(serial), "big") or 1)
                .not_valid_before(datetime.datetime(1975, 1, 1))
                .not_valid_after(datetime.datetime(4096, 1, 1))
                .add_extension(self.aki, critical=False)
                .add_extension(x509.SubjectAlternativeName([san]), critical=False)
                .sign(self.ca_key, self._sign_hash()))
        return cert, key

    def server_context(self, hostname):
        """sb/l7/tls.rs:94-112,154-162: one leaf per name (cache of 256, cleared when full), chain leaf + CA, ALPN http/1.1."""
        with self.lock:
            ctx = self.contexts.get(hostname)
            if ctx is not None:
                return ctx
            if len(self.contexts) >= MAX_CACHED_CERTS:
                self.contexts.clear()
            cert, key = self._leaf(hostname)
            fd, path = tempfile.mkstemp(dir=self.dir, suffix=".pem")
            with os.fdopen(fd, "wb") as fh:
                fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
                fh.write(cert.public_bytes(serialization.Encoding.PEM))
                fh.write(self.ca_cert.public_bytes(serialization.Encoding.PEM))
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # rustls with features tls12 + tls13 (Cargo.toml:37)
            ctx.load_cert_chain(path)
            os.unlink(path)
            ctx.set_alpn_protocols(["http/1.1"])
            self.contexts[hostname] = ctx
            return ctx


def upstream_context(cafile):
    """sb/l7/tls.rs:200-211: verify the real server (upstream: webpki roots only; lab: the world's "public" CA)."""
    ctx = ssl.create_default_context(cafile=cafile) if cafile else ssl.create_default_context()
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def looks_like_tls(peek, strict=False):
    """sb/l7/tls.rs:271-285: >= 3 bytes, 0x16, major 3, minor <= 4. Gap tls_strict_detect: exactly 16 03 01."""
    if strict:
        return peek[:3] == b"\x16\x03\x01"
    return len(peek) >= 3 and peek[0] == 0x16 and peek[1] == 0x03 and peek[2] <= 0x04


def looks_like_http(peek):
    return any(peek.startswith(m) for m in HTTP_METHODS)  # sb/l7/rest.rs:831-844


# ---------------------------------------------------------------------------------------------------------------
# byte streams (plain or TLS sockets)
def recv_some(sock, n):
    try:
        return sock.recv(n)
    except (ConnectionResetError, BrokenPipeError):
        return b""
    except ssl.SSLEOFError:
        return b""
    except ssl.SSLZeroReturnError:
        return b""


def copy_bidirectional(a, b, idle=IDLE_TIMEOUT):
    """tokio::io::copy_bidirectional in one thread (TLS objects are never used from two threads)."""
    peer = {a: b, b: a}
    readers = [a, b]
    for s in readers:
        s.settimeout(idle)
    while readers:
        ready = [s for s in readers if isinstance(s, ssl.SSLSocket) and s.pending()]
        if not ready:
            try:
                ready, _w, _x = select.select(readers, [], [], idle)
            except (OSError, ValueError):
                return
            if not ready:
                return  # lab: idle timeout
        for s in ready:
            try:
                data = s.recv(65536)
            except ssl.SSLWantReadError:
                continue
            except (OSError, ssl.SSLError):
                data = b""
            if not data:
                readers.remove(s)
                other = peer[s]
                if not isinstance(other, ssl.SSLSocket):
                    try:
                        other.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                continue
            try:
                peer[s].sendall(data)
            except OSError:
                return


def close_all(*socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


# ---------------------------------------------------------------------------------------------------------------
# HTTP/1.1 parsing and relaying for L7 inspection: sb/l7/rest.rs
def rust_lines(text):
    """str::lines(): split on "\n", drop one trailing "\r" per line and a final empty line (not str.splitlines)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def parse_body_length(header_str):
    """sb/l7/rest.rs:388-429: ('cl', n) | ('chunked', None) | ('none', None); CL+TE is an error."""
    chunked, cl = False, None
    for line in rust_lines(header_str)[1:]:
        lower = line.lower()
        if lower.startswith("transfer-encoding:"):
            if any(enc.strip() == "chunked" for enc in lower.split(":", 1)[1].strip().split(",")):
                chunked = True
        if lower.startswith("content-length:"):
            val = lower.split(":", 1)[1].strip()
            if not val.isdigit():
                raise ProxyError("Request contains invalid Content-Length value")
            if cl is not None and cl != int(val):
                raise ProxyError(f"Request contains multiple Content-Length headers with differing values ({cl} vs {val})")
            cl = int(val)
    if chunked and cl is not None:
        raise ProxyError("Request contains both Transfer-Encoding and Content-Length headers")
    if chunked:
        return ("chunked", None)
    return ("cl", cl) if cl is not None else ("none", None)


def _hexval(c):
    return int(c, 16) if c in "0123456789abcdefABCDEF" else None


def decode_query_component(text):
    """sb/l7/rest.rs:200-231 ('+' is a space, %XX strict, the result must be UTF-8)."""
    raw, out, i = text.encode("utf-8"), bytearray(), 0
    while i < len(raw):
        b = raw[i]
        if b == 0x2B:
            out.append(0x20)
            i += 1
        elif b != 0x25:
            out.append(b)
            i += 1
        else:
            if i + 2 >= len(raw):
                raise ProxyError("Invalid percent-encoding in query component")
            hi, lo = _hexval(chr(raw[i + 1])), _hexval(chr(raw[i + 2]))
            if hi is None or lo is None:
                raise ProxyError("Invalid percent-encoding in query component")
            out.append(hi << 4 | lo)
            i += 3
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProxyError("Query component is not valid UTF-8") from exc


def parse_target_query(target):
    """sb/l7/rest.rs:163-191."""
    path, sep, query = target.partition("?")
    params = {}
    if sep and query:
        for pair in query.split("&"):
            if not pair:
                continue
            key, _eq, value = pair.partition("=")
            params.setdefault(decode_query_component(key), []).append(decode_query_component(value))
    return path, params


def parse_http_request(stream):
    """sb/l7/rest.rs:81-161: one request, read a byte at a time (no over-read); None on a clean close."""
    buf = bytearray()
    while True:
        if len(buf) > L7_MAX_HEADER_BYTES:
            raise ProxyError(f"HTTP request headers exceed {L7_MAX_HEADER_BYTES} bytes")
        byte = recv_some(stream, 1)
        if not byte:
            if not buf:
                return None
            raise ProxyError("client disconnected mid-request")
        buf += byte
        if buf.endswith(b"\r\n\r\n"):
            break
    for i, b in enumerate(buf):
        if b == 0x0A and (i == 0 or buf[i - 1] != 0x0D):
            raise ProxyError("HTTP headers contain bare LF (line feed without carriage return)")
    try:
        header_str = bytes(buf).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProxyError("HTTP headers contain invalid UTF-8") from exc
    parts = rust_lines(header_str)[0].split() if rust_lines(header_str) else []
    if len(parts) < 3:
        raise ProxyError("Missing HTTP method, path or version")
    if parts[2] not in ("HTTP/1.1", "HTTP/1.0"):
        raise ProxyError(f"Unsupported HTTP version: {parts[2]}")
    body = parse_body_length(header_str)
    path, query = parse_target_query(parts[1])
    return {"method": parts[0], "path": path, "query_params": query, "raw": bytes(buf), "body": body}


def relay_fixed(reader, writer, length):
    """sb/l7/rest.rs:432-453."""
    remaining = length
    while remaining > 0:
        data = recv_some(reader, min(RELAY_BUF_SIZE, remaining))
        if not data:
            raise ProxyError(f"Connection closed with {remaining} bytes remaining")
        writer.sendall(data)
        remaining -= len(data)


def relay_chunked(reader, writer, already):
    """sb/l7/rest.rs:464-566: copy verbatim while parsing chunk boundaries; stop at the end of the message."""
    parse_buf, pos = bytearray(already), 0

    def more(why):
        data = recv_some(reader, RELAY_BUF_SIZE)
        if not data:
            raise ProxyError(why)
        writer.sendall(data)
        parse_buf.extend(data)

    while True:
        while parse_buf.find(b"\r\n", pos) < 0:
            more("Chunked body ended before chunk-size line")
        end = parse_buf.find(b"\r\n", pos)
        token = bytes(parse_buf[pos:end]).decode("utf-8", "replace").split(";", 1)[0].strip()
        try:
            size = int(token, 16)
        except ValueError as exc:
            raise ProxyError(f"Invalid chunk size token: {token!r}") from exc
        pos = end + 2
        if size == 0:
            while True:
                while parse_buf.find(b"\r\n", pos) < 0:
                    more("Chunked body ended before trailer terminator")
                end = parse_buf.find(b"\r\n", pos)
                line, pos = parse_buf[pos:end], end + 2
                if not line:
                    return
        while len(parse_buf) < pos + size + 2:
            more("Chunked body ended mid-chunk")
        if parse_buf[pos + size:pos + size + 2] != b"\r\n":
            raise ProxyError("Chunk missing terminating CRLF")
        pos += size + 2
        if pos > RELAY_BUF_SIZE * 4:
            del parse_buf[:pos]
            pos = 0


def relay_until_eof(reader, writer):
    """sb/l7/rest.rs:806-826 (5 s idle ends the body)."""
    reader.settimeout(RELAY_EOF_IDLE_TIMEOUT)
    try:
        while True:
            data = recv_some(reader, RELAY_BUF_SIZE)
            if not data:
                return
            writer.sendall(data)
    except TimeoutError:
        return
    finally:
        reader.settimeout(IDLE_TIMEOUT)


def _status_code(header_str):
    try:
        return int(rust_lines(header_str)[0].split()[1])
    except (IndexError, ValueError):
        return 200  # sb/l7/rest.rs:632 unwrap_or(200)


def _connection_close(header_str):
    for line in rust_lines(header_str)[1:]:
        lower = line.lower()
        if lower.startswith("connection:"):
            return "close" in lower.split(":", 1)[1].strip()  # sb/l7/rest.rs:753-762: the first Connection header decides
    return False


def client_requested_upgrade(header_str):
    """sb/l7/rest.rs:770-789."""
    upgrade = conn_upgrade = False
    for line in rust_lines(header_str)[1:]:
        lower = line.lower()
        if lower.startswith("upgrade:"):
            upgrade = True
        if lower.startswith("connection:") and any(t.strip() == "upgrade" for t in lower.split(":", 1)[1].strip().split(",")):
            conn_upgrade = True
    return upgrade and conn_upgrade


def relay_response(method, upstream, client):
    """sb/l7/rest.rs:594-741: 'reusable' | 'consumed' | ('upgraded', overflow)."""
    buf = bytearray()
    while b"\r\n\r\n" not in buf:
        if len(buf) > L7_MAX_HEADER_BYTES:
            raise ProxyError("HTTP response headers exceed limit")
        data = recv_some(upstream, 1024)
        if not data:
            if buf:
                client.sendall(bytes(buf))
            return "consumed"
        buf += data
    header_end = buf.find(b"\r\n\r\n") + 4
    header_str = bytes(buf[:header_end]).decode("utf-8", "replace")
    status, close = _status_code(header_str), _connection_close(header_str)
    kind, length = parse_body_length(header_str)
    if status == 101:
        client.sendall(bytes(buf[:header_end]))
        return ("upgraded", bytes(buf[header_end:]))
    if method.upper() == "HEAD" or 100 <= status < 200 or status in (204, 304):  # sb/l7/rest.rs:793-798
        client.sendall(bytes(buf[:header_end]))
        return "consumed" if close else "reusable"
    if kind == "none":
        if close:
            client.sendall(bytes(buf[:header_end - 2]) + b"Connection: close\r\n\r\n" + bytes(buf[header_end:]))
            relay_until_eof(upstream, client)
            return "consumed"
        client.sendall(bytes(buf[:header_end]))
        return "reusable"
    client.sendall(bytes(buf))
    overflow = len(buf) - header_end
    if kind == "cl":
        if length > overflow:
            relay_fixed(upstream, client, length - overflow)
    else:
        relay_chunked(upstream, client, bytes(buf[header_end:]))
    return "reusable"  # sb/l7/rest.rs:734-740: explicit framing is always reported reusable


def relay_http_request(req, client, upstream):
    """sb/l7/rest.rs:258-342 (no credential placeholders in the lab: the header block goes out unchanged)."""
    upstream.sendall(req["raw"])
    kind, length = req["body"]
    if kind == "cl" and length:
        relay_fixed(client, upstream, length)
    elif kind == "chunked":
        relay_chunked(client, upstream, b"")
    outcome = relay_response(req["method"], upstream, client)
    if isinstance(outcome, tuple) and not client_requested_upgrade(req["raw"].decode("utf-8", "replace")):
        LOG("L7_UNSOLICITED_101", detail=f"{req['method']} {req['path']}")  # sb/l7/rest.rs:309-338
        return "consumed"
    return outcome


def send_deny_response(req, policy_name, reason, client):
    """sb/l7/rest.rs:348-381."""
    body = json.dumps({"detail": reason, "error": "policy_denied", "policy": policy_name,
                       "rule": f"{req['method']} {req['path']}"}, separators=(",", ":"))
    client.sendall((f"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: {len(body.encode())}\r\n"
                    f"X-OpenShell-Policy: {policy_name}\r\nConnection: close\r\n\r\n{body}").encode())


# ---------------------------------------------------------------------------------------------------------------
# inference.local: sb/l7/inference.rs, sb/proxy.rs:996-1366, crates/openshell-router
def detect_inference_pattern(method, path, models_any=False):
    """sb/l7/inference.rs:62-83 (query stripped, method case-insensitive). Gap inference_models_any: any method on
    a path under /v1/models/ is routed as model discovery (the old lab's rule)."""
    path_only = path.split("?", 1)[0]
    if models_any and path_only.startswith("/v1/models/"):
        return ("*", "/v1/models/*", "model_discovery", "models_get")
    for pattern in INFERENCE_PATTERNS:
        pmethod, glob = pattern[0], pattern[1]
        if method.upper() != pmethod:
            continue
        if glob.endswith("/*"):
            prefix = glob[:-2]
            if path_only == prefix or (path_only.startswith(prefix) and path_only[len(prefix):].startswith("/")):
                return pattern
        elif path_only == glob:
            return pattern
    return None


def normalize_inference_path(path):
    """sb/proxy.rs:1709-1718."""
    idx = path.find("://")
    if idx >= 0:
        rest = path[idx + 3:]
        slash = rest.find("/")
        return rest[slash:] if slash >= 0 else "/"
    return path


def _parse_chunked_body(buf, start):
    """sb/l7/inference.rs:209-261: (body, consumed) or None (incomplete or over the limits)."""
    pos, body, count = start, bytearray(), 0
    while True:
        count += 1
        if count > MAX_CHUNK_COUNT:
            return None
        end = buf.find(b"\r\n", pos)
        if end < 0:
            return None
        try:
            size = int(bytes(buf[pos:end]).decode("utf-8").split(";", 1)[0].strip(), 16)
        except (UnicodeDecodeError, ValueError):
            return None
        pos = end + 2
        if size == 0:
            while True:
                end = buf.find(b"\r\n", pos)
                if end < 0:
                    return None
                line, pos = buf[pos:end], end + 2
                if not line:
                    return bytes(body), pos
        if size > len(buf) - pos or len(body) + size > MAX_CHUNKED_BODY or len(buf) < pos + size + 2:
            return None
        if buf[pos + size:pos + size + 2] != b"\r\n":
            return None
        body += buf[pos:pos + size]
        pos += size + 2


def try_parse_http_request(buf):
    """sb/l7/inference.rs:107-195: ('complete', request, consumed) | ('incomplete',) | ('invalid', reason)."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return ("incomplete",)
    try:
        header_str = bytes(buf[:end]).decode("utf-8")
    except UnicodeDecodeError:
        return ("incomplete",)
    lines = header_str.split("\r\n")
    parts = lines[0].split()
    if len(parts) < 2:
        return ("incomplete",)
    headers, length, has_cl, chunked = [], 0, False, False
    for line in lines[1:]:
        if not line:
            break
        if ":" not in line:
            continue
        name, value = (x.strip() for x in line.split(":", 1))
        if name.lower() == "content-length":
            if not value.isdigit():
                return ("invalid", f"invalid Content-Length value: {value}")
            if has_cl and int(value) != length:
                return ("invalid", f"duplicate Content-Length headers with differing values ({length} vs {value})")
            length, has_cl = int(value), True
        if name.lower() == "transfer-encoding" and any(e.strip().lower() == "chunked" for e in value.split(",")):
            chunked = True
        headers.append((name, value))
    if chunked and has_cl:
        return ("invalid", "Request contains both Transfer-Encoding and Content-Length headers")
    start = end + 4
    if chunked:
        parsed = _parse_chunked_body(buf, start)
        if parsed is None:
            return ("incomplete",)
        body, consumed = parsed
    else:
        if len(buf) < start + length:
            return ("incomplete",)
        body, consumed = bytes(buf[start:start + length]), start + length
    return ("complete", {"method": parts[0], "path": parts[1], "headers": headers, "body": body}, consumed)


_STATUS_TEXT = {200: "OK", 400: "Bad Request", 403: "Forbidden", 411: "Length Required", 413: "Payload Too Large",
                500: "Internal Server Error", 502: "Bad Gateway"}  # sb/l7/inference.rs:274-283 (no 503 here)


def format_http_response(status, headers, body):
    """sb/l7/inference.rs:271-301."""
    out = f"HTTP/1.1 {status} {_STATUS_TEXT.get(status, 'Unknown')}\r\n"
    for name, value in headers:
        out += f"{name}: {value}\r\n"
    if not any(n.lower() == "content-length" for n, _v in headers):
        out += f"content-length: {len(body)}\r\n"
    return (out + "\r\n").encode("latin-1") + body


def format_http_response_header(status, headers):
    """sb/l7/inference.rs:310-338 (this table knows 503)."""
    text = {**_STATUS_TEXT, 503: "Service Unavailable"}.get(status, "Unknown")
    out = f"HTTP/1.1 {status} {text}\r\n"
    for name, value in headers:
        if name.lower() not in ("content-length", "transfer-encoding"):
            out += f"{name}: {value}\r\n"
    return (out + "transfer-encoding: chunked\r\n\r\n").encode("latin-1")


def _json_body(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()  # serde_json without preserve_order


def _should_strip_request_header(name):
    lower = name.lower()
    return lower in ("authorization", "x-api-key", "host", "content-length") or lower in HOP_BY_HOP  # sb/proxy.rs:1332-1338


_DOT = re.compile(r"^(?:\.|%2e)$", re.I)
_DOTDOT = re.compile(r"^(?:\.|%2e){2}$", re.I)


def _url_path_normalize(path):
    """What reqwest's url::Url::parse does to a special-scheme path (WHATWG URL Standard, path state): backslashes are
    separators and "."/".." segments (also percent-encoded) are resolved. reqwest 0.12 with url 2.5 (Cargo.lock)."""
    segs, out = path.replace("\\", "/").split("/")[1:], []
    for i, seg in enumerate(segs):
        last = i == len(segs) - 1
        if _DOTDOT.match(seg):
            if out:
                out.pop()
            if last:
                out.append("")
        elif _DOT.match(seg):
            if last:
                out.append("")
        else:
            out.append(seg)
    return "/" + "/".join(out)


def build_backend_url(endpoint, path):
    """router/backend.rs:421-428 (a base ending in /v1 swallows the request's /v1 prefix)."""
    base = endpoint.rstrip("/")
    if base.endswith("/v1") and (path == "/v1" or path.startswith("/v1/")):
        return base + path[3:]
    return base + path


class Routes:
    """The route cache of the inference context (sb/proxy.rs:65-87), refreshed from the route file like the gateway
    bundle is polled (sb/lib.rs:1067-1126): a missing file is an empty bundle, a broken one keeps the stale routes."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.routes = []
        self.refresh()

    def refresh(self):
        if not self.path or not os.path.exists(self.path):
            new = []  # server/inference.rs:382-417: no route configured -> an empty bundle
        else:
            try:
                new = [self._route(self.path)]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                LOG("INFERENCE_ROUTES", action="stale", reason=f"keeping stale routes: {exc}")
                return
        with self.lock:
            changed = [r["endpoint"] for r in new] != [r["endpoint"] for r in self.routes] or \
                [r["api_key"] for r in new] != [r["api_key"] for r in self.routes]
            self.routes = new
        if changed:
            LOG("INFERENCE_ROUTES", action="updated", routes=len(new), endpoint=",".join(r["endpoint"] for r in new))

    @staticmethod
    def _route(path):
        with open(path, encoding="utf-8") as fh:
            spec = json.load(fh)
        provider = str(spec.get("provider_type", "openai")).strip().lower()
        if provider not in PROVIDER_PROFILES:  # server/inference.rs:234-243: unsupported provider types are refused
            raise ValueError(f"unsupported provider type {provider!r} (supported: openai, anthropic, nvidia)")
        protocols, auth, default_headers = PROVIDER_PROFILES[provider]
        with open(spec["api_key_file"], encoding="utf-8") as fh:
            api_key = fh.read().strip()
        base_url = str(spec["base_url"]).strip()
        if not base_url:
            raise ValueError("empty base_url")  # server/inference.rs:258-263
        timeout = float(spec.get("timeout") or 0) or DEFAULT_ROUTE_TIMEOUT  # sb/lib.rs:1042-1046: 0 -> 60 s
        return {"name": INFERENCE_LOCAL_HOST, "endpoint": base_url, "model": str(spec.get("model", "")), "api_key": api_key,
                "protocols": protocols, "auth": auth, "default_headers": default_headers, "timeout": timeout}

    def get(self):
        with self.lock:
            return list(self.routes)


class RouterError(Exception):
    def __init__(self, kind, detail):
        super().__init__(detail)
        self.kind = kind


def router_error_to_http(kind):
    """sb/proxy.rs:1302-1315."""
    return {"no_compatible": (400, "no compatible inference route available"),
            "unavailable": (503, "inference service unavailable")}.get(kind, (502, "inference service error"))


def send_backend_request(route, method, path, headers, body, upstream_ca):
    """router/backend.rs:90-163: key injected by the route's auth style, authorization/x-api-key/host stripped,
    default headers unless the client sent them, the JSON "model" set to the route's model."""
    url = build_backend_url(route["endpoint"], path)
    m = re.match(r"^(https?)://([^/?#]+)([^?#]*)(\?[^#]*)?", url, re.I)
    if not m:
        raise RouterError("internal", f"invalid backend URL {url}")
    scheme, authority, upath, query = m.group(1).lower(), m.group(2), m.group(3) or "/", m.group(4) or ""
    target = _url_path_normalize(upath or "/") + query
    if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", method):
        raise RouterError("internal", f"invalid HTTP method: {method}")
    host, _sep, port = authority.rpartition(":") if re.search(r":\d+$", authority) else (authority, "", "")
    port = int(port) if port else (443 if scheme == "https" else 80)
    out = [("authorization", f"Bearer {route['api_key']}")] if route["auth"] == "bearer" else [(route["auth"], route["api_key"])]
    out += [(n, v) for n, v in headers if n.lower() not in ("authorization", "x-api-key", "host")]
    out += [(n, v) for n, v in route["default_headers"] if not any(h.lower() == n for h, _v in headers)]
    if not any(n.lower() == "accept" for n, _v in out):
        out.append(("accept", "*/*"))  # reqwest's default header (unverified at 0.12.28)
    try:
        obj = json.loads(body)
        if isinstance(obj, dict):
            obj["model"] = route["model"]
            body = json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
    except (ValueError, UnicodeDecodeError):
        pass
    timeout = route["timeout"]
    if scheme == "https":
        conn = http.client.HTTPSConnection(host.strip("[]"), port, timeout=timeout, context=upstream_context(upstream_ca))
    else:
        conn = http.client.HTTPConnection(host.strip("[]"), port, timeout=timeout)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        conn.putheader("host", authority)
        for name, value in out:
            conn.putheader(name, value)
        conn.putheader("content-length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
    except TimeoutError as exc:
        conn.close()
        raise RouterError("unavailable", f"request to {url} timed out") from exc
    except (ConnectionRefusedError, socket.gaierror, OSError) as exc:
        conn.close()
        if isinstance(exc, (ConnectionRefusedError, socket.gaierror)) or getattr(exc, "errno", None) in (101, 111, 113):
            raise RouterError("unavailable", f"failed to connect to {url}: {exc}") from exc
        raise RouterError("internal", f"HTTP request failed: {exc}") from exc
    except http.client.HTTPException as exc:
        conn.close()
        raise RouterError("internal", f"HTTP request failed: {exc}") from exc
    return conn, resp


class Inference:
    def __init__(self, routes, certs, upstream_ca, gaps):
        self.routes, self.certs, self.upstream_ca, self.gaps = routes, certs, upstream_ca, gaps

    def intercept(self, client, port):
        """sb/proxy.rs:1004-1118: TLS-terminate with a leaf for inference.local, then parse and route requests."""
        try:
            tls = self.certs.server_context(INFERENCE_LOCAL_HOST).wrap_socket(client, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            return f"TLS handshake failed: {exc}"
        tls.settimeout(IDLE_TIMEOUT)
        buf, routed_any = bytearray(), False
        try:
            while True:
                room = (INITIAL_INFERENCE_BUF if len(buf) < INITIAL_INFERENCE_BUF else MAX_INFERENCE_BUF) - len(buf)
                if room <= 0:
                    tls.sendall(format_http_response(413, [], b"Payload Too Large"))
                    return None if routed_any else "payload too large"
                try:
                    data = tls.recv(min(room, 65536))
                except (OSError, ssl.SSLError) as exc:
                    return None if routed_any else f"I/O error: {exc}"
                if not data:
                    return None if routed_any else "client closed connection"
                buf += data
                parsed = try_parse_http_request(buf)  # one parse per read, as upstream (sb/proxy.rs:1064-1114)
                if parsed[0] == "invalid":
                    LOG("INFERENCE", action="reject", port=port, reason=f"malformed inference request: {parsed[1]}")
                    tls.sendall(format_http_response(400, [], b"Bad Request"))
                    return parsed[1]
                if parsed[0] == "complete":
                    _kind, request, consumed = parsed
                    if self.route(request, tls):
                        routed_any = True
                    elif not routed_any:
                        return "connection not allowed by policy"
                    del buf[:consumed]
        finally:
            close_all(tls)

    def route(self, request, tls):
        """sb/proxy.rs:1124-1295."""
        path = normalize_inference_path(request["path"])
        pattern = detect_inference_pattern(request["method"], path, "inference_models_any" in self.gaps)
        if pattern is None:
            LOG("INFERENCE", action="deny", method=request["method"], path=path, reason="connection not allowed by policy")
            tls.sendall(format_http_response(403, [("content-type", "application/json")],
                                             _json_body({"error": "connection not allowed by policy"})))
            return False
        routes = self.routes.get()
        if not routes:  # sb/proxy.rs:1157-1170
            LOG("INFERENCE", action="unconfigured", method=request["method"], path=path)
            tls.sendall(format_http_response(503, [("content-type", "application/json")], _json_body(
                {"error": "cluster inference is not configured", "hint": "run: openshell cluster inference set --help"})))
            return True
        headers = [(n, v) for n, v in request["headers"] if not _should_strip_request_header(n)]
        route = next((r for r in routes if pattern[2] in r["protocols"]), None)  # router/lib.rs:112-116
        try:
            if route is None:
                raise RouterError("no_compatible", f"no compatible route for protocol '{pattern[2]}'")
            conn, resp = send_backend_request(route, request["method"], path, headers, request["body"], self.upstream_ca)
        except RouterError as exc:
            status, msg = router_error_to_http(exc.kind)
            LOG("INFERENCE", action="error", method=request["method"], path=path, status=status, reason=str(exc))
            tls.sendall(format_http_response(status, [("content-type", "application/json")], _json_body({"error": msg})))
            return True
        LOG("INFERENCE", action="route", method=request["method"], path=path, protocol=pattern[2], kind=pattern[3],
            endpoint=route["endpoint"], status=resp.status)
        try:
            resp_headers = [(n.lower(), v) for n, v in resp.getheaders()
                            if n.lower() != "content-length" and n.lower() not in HOP_BY_HOP]  # sb/proxy.rs:1340-1343
            tls.sendall(format_http_response_header(resp.status, resp_headers))
            total, deadline = 0, time.monotonic() + route["timeout"]
            while True:
                if conn.sock is not None:
                    conn.sock.settimeout(max(0.1, min(CHUNK_IDLE_TIMEOUT, deadline - time.monotonic())))
                try:
                    chunk = resp.read1(65536)
                except (OSError, http.client.HTTPException) as exc:
                    LOG("INFERENCE", action="stream-error", reason=str(exc))
                    break
                if not chunk:
                    break
                total += len(chunk)
                if total > MAX_STREAMING_BODY:
                    LOG("INFERENCE", action="truncate", reason=f"streaming response exceeded {MAX_STREAMING_BODY} bytes")
                    break
                tls.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")  # sb/l7/inference.rs:343-348
            tls.sendall(b"0\r\n\r\n")
        finally:
            conn.close()
        return True


# ---------------------------------------------------------------------------------------------------------------
# the proxy
def parse_target(target):
    """sb/proxy.rs:2419-2427: split at the FIRST ':' (so "[v6]:443" fails and the connection is dropped)."""
    host, sep, port = target.partition(":")
    if not sep:
        raise ProxyError(f"CONNECT target missing port: {target}")
    if not port.isdigit() or int(port) > 65535:
        raise ProxyError(f"Invalid port in CONNECT target: {target}")
    return host, int(port)


def parse_proxy_uri(uri):
    """sb/proxy.rs:1758-1825: (scheme, host, port, path)."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        raise ProxyError(f"Missing scheme in proxy URI: {uri}")
    scheme = scheme.lower()
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            raise ProxyError(f"Unclosed IPv6 bracket in URI: {uri}")
        slash = rest.find("/", end + 1)
        authority, path = (rest[:slash], rest[slash:]) if slash >= 0 else (rest, "/")
        host, port_str = authority[1:authority.find("]")], authority[authority.find("]") + 1:]
        if port_str.startswith(":"):
            if not port_str[1:].isdigit() or int(port_str[1:]) > 65535:
                raise ProxyError(f"Invalid port in URI: {uri}")
            port = int(port_str[1:])
        else:
            port = 443 if scheme == "https" else 80
    else:
        slash = rest.find("/")
        authority, path = (rest[:slash], rest[slash:]) if slash >= 0 else (rest, "/")
        if ":" in authority:
            host, _c, port_str = authority.rpartition(":")
            if not port_str.isdigit() or int(port_str) > 65535:
                raise ProxyError(f"Invalid port in URI: {uri}")
            port = int(port_str)
        else:
            host, port = authority, 443 if scheme == "https" else 80
    if not host:
        raise ProxyError(f"Empty host in URI: {uri}")
    return scheme, host, port, path or "/"


def rewrite_forward_request(raw, path):
    """sb/proxy.rs:1833-1928: origin-form request line, proxy hop-by-hop headers dropped, Connection: close, Via."""
    end = raw.find(b"\r\n\r\n")
    header_end = end + 4 if end >= 0 else len(raw)
    lines = raw[:header_end].decode("utf-8", "replace").split("\r\n")
    out, has_conn, has_via = [], False, False
    for i, line in enumerate(lines):
        if i == 0:
            parts = line.split(" ", 2)
            out.append(f"{parts[0]} {path} {parts[2]}" if len(parts) == 3 else line)
            continue
        if not line:
            break
        lower = line.lower()
        if lower.startswith(("proxy-connection:", "proxy-authorization:", "proxy-authenticate:")):
            continue
        if lower.startswith("connection:"):
            has_conn = True
            out.append("Connection: close")
            continue
        out.append(line)
        has_via = has_via or lower.startswith("via:")
    if not has_conn:
        out.append("Connection: close")
    if not has_via:
        out.append("Via: 1.1 openshell-sandbox")
    return ("\r\n".join(out) + "\r\n\r\n").encode("utf-8") + raw[header_end:]


def host_header(raw):
    """gap host_header: the Host header as (host, port); port 80 when absent."""
    for line in raw.decode("latin-1").split("\r\n")[1:]:
        if not line:
            break
        name, _c, value = line.partition(":")
        if name.strip().lower() == "host":
            value = value.strip()
            m = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?|([^:]*)(?::(\d+))?", value)
            if m:
                return (m.group(1) or m.group(3) or "").lower(), int(m.group(2) or m.group(4) or 80)
    return None


class Proxy:
    def __init__(self, args):
        self.listen = args.listen
        self.policy_path = args.policy
        self.gaps = set(args.gap or [])
        self.resolver = Resolver(args.resolve)
        self.certs = CertAuthority(args.ca_cert, args.ca_key)
        self.upstream_ca = args.upstream_ca
        self.upstream_ctx = upstream_context(args.upstream_ca)
        self.identity = IdentityCache()
        self.proc = args.proc
        self.inference = Inference(Routes(args.inference), self.certs, args.upstream_ca, self.gaps)
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.data_lock = threading.Lock()
        with open(self.policy_path, encoding="utf-8") as fh:
            text = fh.read()
        self.data = load_policy_text(text)  # a policy that does not load at start is fatal (sb/lib.rs load_policy)
        self.policy_digest = hashlib.sha256(text.encode()).hexdigest()
        self.status_path = getattr(args, "status", None)
        self.write_status(True, "")

    def write_status(self, loaded, error):
        """lab: the supervisor's policy poll and the policy engine are two processes here (one in upstream, where the
        poll loop reports the reload's outcome itself, sb/lib.rs @v0.0.26 L1925-1985): the outcome of loading the
        current policy file, for the supervisor to report to the gateway."""
        if not self.status_path:
            return
        tmp = f"{self.status_path}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"digest": self.policy_digest, "loaded": loaded, "error": error}, fh)
        os.replace(tmp, self.status_path)

    # -- background refresh ---------------------------------------------------------------------------------------
    def poll_policy(self, interval):
        """sb/lib.rs:1843-1990: poll, reload on change, keep the last-known-good policy when the new one fails."""
        while True:
            time.sleep(interval)
            try:
                with open(self.policy_path, encoding="utf-8") as fh:
                    text = fh.read()
            except OSError as exc:
                LOG("POLICY_RELOAD", action="keep", reason=f"cannot read {self.policy_path}: {exc}")
                continue
            digest = hashlib.sha256(text.encode()).hexdigest()
            if digest == self.policy_digest:
                continue
            try:
                data = load_policy_text(text)
            except PolicyError as exc:
                LOG("POLICY_RELOAD", action="keep", reason=f"Policy reload failed, keeping last-known-good policy: {exc}")
                self.policy_digest = digest
                self.write_status(False, str(exc))
                continue
            with self.data_lock:
                self.data, self.policy_digest = data, digest
            LOG("POLICY_RELOAD", action="loaded", policy_hash=digest[:16])
            self.write_status(True, "")

    def poll_routes(self, interval):
        while True:
            time.sleep(interval)
            self.inference.routes.refresh()

    def policy(self):
        with self.data_lock:
            return self.data

    # -- accept loop ------------------------------------------------------------------------------------------------
    def serve(self, sock):
        while True:
            client, addr = sock.accept()
            if not self.slots.acquire(blocking=False):  # lab: a bound upstream does not have
                LOG("PROXY", action="shed", peer=f"{addr[0]}:{addr[1]}", reason=f"more than {MAX_CONNECTIONS} connections")
                close_all(client)
                continue
            threading.Thread(target=self._connection, args=(client,), daemon=True).start()

    def _connection(self, client):
        try:
            self.handle(client)
        except (ProxyError, OSError, ssl.SSLError, ValueError) as exc:
            LOG("PROXY_ERROR", detail=str(exc))  # sb/proxy.rs:185-198: the task ends, the connection is dropped
        finally:
            close_all(client)
            self.slots.release()

    def handle(self, client):
        """sb/proxy.rs:291-843."""
        client.settimeout(HEAD_TIMEOUT)
        buf = bytearray()
        while True:
            if len(buf) >= MAX_HEADER_BYTES:
                client.sendall(b"HTTP/1.1 431 Request Header Fields Too Large\r\n\r\n")  # sb/proxy.rs:305-312
                return
            data = recv_some(client, MAX_HEADER_BYTES - len(buf))
            if not data:
                return
            buf += data
            if b"\r\n\r\n" in buf:
                break
        request_line = bytes(buf).decode("utf-8", "replace").split("\r\n", 1)[0].split()
        method = request_line[0] if request_line else ""
        target = request_line[1] if len(request_line) > 1 else ""
        if method != "CONNECT":
            self.forward(method, target, bytes(buf), client)
            return
        host, port = parse_target(target)
        host_lc = host.lower()
        if host_lc == INFERENCE_LOCAL_HOST:  # sb/proxy.rs:351-374: before OPA, on ANY port at v0.0.26
            client.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            reason = self.inference.intercept(client, port)
            if reason:
                LOG("CONNECT", action="deny", host=host_lc, port=port, stage="inference", reason=f"Inference interception denied: {reason}")
            return
        peer = client.getpeername()[:2]
        decision = self.decide(host_lc, port, peer)
        if decision["action"] != "allow":
            self._log_decision("CONNECT", "deny", host_lc, port, decision, stage="connect")
            client.sendall(b"HTTP/1.1 403 Forbidden\r\n\r\n")  # sb/proxy.rs:439-468
            return
        data, exec_info, ignore_port = self.policy(), decision["exec"], "port_any" in self.gaps
        ep = matched_endpoint_config(data, host_lc, port, exec_info, ignore_port)
        addrs, blocked = ssrf_addresses(self.resolver, host, port, allowed_ips_of(ep))
        if blocked:
            self._log_decision("CONNECT", "deny", host_lc, port, decision, stage="ssrf", reason=f"{blocked[0]}: {blocked[1]}")
            client.sendall(b"HTTP/1.1 403 Forbidden\r\n\r\n")  # sb/proxy.rs:482-601
            return
        upstream = connect_any(addrs)  # a failure drops the connection without an answer (sb/proxy.rs:487-489,563-565)
        try:
            client.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")  # sb/proxy.rs:608
            l7 = l7_config(ep)
            self._log_decision("CONNECT_L7" if l7 else "CONNECT", "allow", host_lc, port, decision)  # sb/proxy.rs:615-637
            self.tunnel(client, upstream, host_lc, port, ep, l7, decision)
        finally:
            close_all(upstream)

    def tunnel(self, client, upstream, host_lc, port, ep, l7, decision):
        """sb/proxy.rs:639-843: tls: skip -> raw; else peek once, TLS -> terminate, HTTP -> inspect, other -> raw."""
        if tls_mode(ep) == "skip":
            copy_bidirectional(client, upstream)
            return
        client.settimeout(IDLE_TIMEOUT)
        peek = client.recv(8, socket.MSG_PEEK)  # sb/proxy.rs:681-682: ONE peek of up to 8 bytes, whatever has arrived
        if not peek:
            return
        if looks_like_tls(peek, strict="tls_strict_detect" in self.gaps):
            try:
                tls_client = self.certs.server_context(host_lc).wrap_socket(client, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                LOG("TLS", action="error", host=host_lc, port=port, reason=f"client handshake: {exc}")
                return
            try:
                tls_client.settimeout(IDLE_TIMEOUT)
                try:
                    tls_up = self.upstream_ctx.wrap_socket(upstream, server_hostname=host_lc)
                except (ssl.SSLError, OSError) as exc:
                    LOG("TLS", action="error", host=host_lc, port=port, reason=f"upstream handshake: {exc}")
                    return
                try:
                    LOG("TLS", action="terminate", host=host_lc, port=port, record=peek[:3].hex())
                    self.relay_http(tls_client, tls_up, host_lc, port, l7, decision)
                finally:
                    close_all(tls_up)
            finally:
                close_all(tls_client)
        elif looks_like_http(peek):
            self.relay_http(client, upstream, host_lc, port, l7, decision)
        else:
            LOG("TUNNEL", action="raw", host=host_lc, port=port, first_bytes=peek.hex())  # sb/proxy.rs:830-840
            copy_bidirectional(client, upstream)

    def relay_http(self, client, upstream, host_lc, port, l7, decision):
        """sb/l7/relay.rs:120-289 relay_rest (with L7 config) / 368-463 relay_passthrough_with_credentials."""
        exec_info, count = decision["exec"], 0
        while True:
            try:
                req = parse_http_request(client)
            except ProxyError as exc:
                LOG("L7", action="parse-error", host=host_lc, port=port, reason=str(exc))
                return
            if req is None:
                return
            count += 1
            if l7 and l7["protocol"] == "rest":
                request = {"method": req["method"], "path": req["path"], "query_params": req["query_params"]}
                allowed, reason = evaluate_l7(self.policy(), host_lc, port, exec_info, request, "port_any" in self.gaps)
                verdict = "allow" if allowed else ("audit" if l7["enforcement"] == "audit" else "deny")
                LOG("L7_REQUEST", action=verdict, method=req["method"], host=host_lc, port=port, path=req["path"],
                    policy=decision["policy"], reason=reason)
                if verdict == "deny":
                    send_deny_response(req, decision["policy"] or "", reason, client)
                    return
            elif l7:  # sql: sb/l7/relay.rs:60-75 falls back to a raw relay
                upstream.sendall(req["raw"])
                copy_bidirectional(client, upstream)
                return
            else:
                LOG("HTTP_REQUEST", method=req["method"], host=host_lc, port=port, path=req["path"], request_num=count)
            outcome = relay_http_request(req, client, upstream)
            if outcome == "consumed":
                return
            if isinstance(outcome, tuple):  # sb/l7/relay.rs:85-117: after 101 the tunnel is raw
                if outcome[1]:
                    client.sendall(outcome[1])
                copy_bidirectional(client, upstream)
                return

    def decide(self, host_lc, port, peer):
        """sb/proxy.rs:847-967: identity binding, then the Rego decision."""
        listen = self.listen
        try:
            exec_info, pid = resolve_identity(self.proc, self.identity, peer, listen)
        except IdentityError as exc:
            return {"action": "deny", "policy": None, "reason": str(exc), "exec": exc.exec_info, "pid": exc.pid}
        action, matched, reason = evaluate_network(self.policy(), host_lc, port, exec_info, "port_any" in self.gaps)
        return {"action": action, "policy": matched, "reason": reason, "exec": exec_info, "pid": pid}

    def _log_decision(self, event, action, host, port, decision, stage=None, reason=None):
        LOG(event, action=action, host=host, port=port, binary=decision["exec"].get("path"), pid=decision.get("pid"),
            ancestors=" -> ".join(decision["exec"].get("ancestors", [])), policy=decision.get("policy"), stage=stage,
            reason=reason if reason is not None else decision.get("reason"))

    def forward(self, method, target, raw, client):
        """sb/proxy.rs:1936-2417: absolute-form forward proxying of plain HTTP."""
        try:
            scheme, host, port, path = parse_proxy_uri(target)
        except ProxyError as exc:
            LOG("FORWARD", action="reject", target=target, reason=str(exc))
            client.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")  # sb/proxy.rs:1949-1962
            return
        host_lc = host.lower()
        if scheme == "https":  # sb/proxy.rs:1966-1987 (the Content-Length is one more than the body, as upstream)
            LOG("FORWARD", action="reject", host=host_lc, port=port, reason="HTTPS requires CONNECT")
            client.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 27\r\n\r\nUse CONNECT for HTTPS URLs")
            return
        # upstream decides on the URI authority and forwards the Host header untouched (sb/proxy.rs:1997-2008,1833-1901)
        d_host, d_port = host_lc, port
        if "host_header" in self.gaps:
            hh = host_header(raw)
            if hh is not None:
                d_host, d_port = hh
        peer = client.getpeername()[:2]
        decision = self.decide(d_host, d_port, peer)
        if decision["action"] != "allow":
            self._log_decision("FORWARD", "deny", d_host, d_port, decision, stage="forward")
            client.sendall(b"HTTP/1.1 403 Forbidden\r\n\r\n")  # sb/proxy.rs:2039-2077
            return
        data, exec_info, ignore_port = self.policy(), decision["exec"], "port_any" in self.gaps
        ep = matched_endpoint_config(data, d_host, d_port, exec_info, ignore_port)
        l7 = l7_config(ep)
        if l7:  # sb/proxy.rs:2083-2205: one request per connection, evaluated once
            try:
                tpath, query = parse_target_query(path)
            except ProxyError:
                tpath, query = path, {}
            allowed, reason = evaluate_l7(data, d_host, d_port, exec_info, {"method": method, "path": tpath, "query_params": query},
                                          ignore_port)
            verdict = "allow" if allowed else ("audit" if l7["enforcement"] == "audit" else "deny")
            LOG("FORWARD_L7", action=verdict, method=method, host=d_host, port=d_port, path=path, reason=reason)
            if verdict == "deny":
                client.sendall(b"HTTP/1.1 403 Forbidden\r\n\r\n")
                return
        addrs, blocked = ssrf_addresses(self.resolver, host, port, allowed_ips_of(ep))
        if blocked:
            self._log_decision("FORWARD", "deny", host_lc, port, decision, stage="ssrf", reason=f"{blocked[0]}: {blocked[1]}")
            client.sendall(b"HTTP/1.1 403 Forbidden\r\n\r\n")  # sb/proxy.rs:2218-2341
            return
        try:
            upstream = connect_any(addrs)
        except ProxyError as exc:
            LOG("FORWARD", action="error", host=host_lc, port=port, reason=str(exc))
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")  # sb/proxy.rs:2344-2369
            return
        try:
            self._log_decision("FORWARD", "allow", host_lc, port, decision, reason=f"{method} {path}")
            upstream.sendall(rewrite_forward_request(raw, path))
            copy_bidirectional(client, upstream)  # sb/proxy.rs:2411-2414
        finally:
            close_all(upstream)


# ---------------------------------------------------------------------------------------------------------------
def _hostport(value):
    host, _c, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{value!r} is not IP:PORT")
    return host.strip("[]"), int(port)


def _pin(value):
    name, sep, ip = value.partition("=")
    try:
        ipaddress.ip_address(ip)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--resolve {value!r} is not HOST=IP") from exc
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"--resolve {value!r} is not HOST=IP")
    return name.lower(), ip


def parse_args(argv):
    p = argparse.ArgumentParser(prog="proxy.py", description="OpenShell v0.0.26 sandbox proxy (lab re-implementation)")
    p.add_argument("--listen", type=_hostport, required=True, help="IP:PORT to listen on (upstream: 10.200.0.1:3128)")
    p.add_argument("--policy", required=True, help="sandbox policy YAML (version 1), re-read when it changes")
    p.add_argument("--ca-cert", required=True, help="the per-sandbox CA certificate (PEM)")
    p.add_argument("--ca-key", required=True, help="the per-sandbox CA private key (PEM, unencrypted)")
    p.add_argument("--upstream-ca", help="CA bundle the real servers are verified against (upstream: webpki roots)")
    p.add_argument("--inference", help="inference route JSON; absent file = no route configured")
    p.add_argument("--gap", action="append", choices=GAPS, help="reproduce one lab deviation (repeatable)")
    p.add_argument("--resolve", action="append", type=_pin, default=[], help="tests only: HOST=IP pins a name (repeatable)")
    p.add_argument("--log", help="also append the decision log to this file")
    p.add_argument("--status", help="lab: write the outcome of each policy load here (JSON: digest, loaded, error)")
    p.add_argument("--proc", default="/proc", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    pins = {}
    for name, ip in args.resolve:
        pins.setdefault(name, []).append(ip)
    args.resolve = pins
    return args


def _interval(env, default):
    try:
        value = float(os.environ.get(env, ""))
    except ValueError:
        return default
    return value if value > 0 else default  # sb/lib.rs:132-155: zero or invalid -> the default


def main(argv=None):
    global LOG  # noqa: PLW0603 - the one process-wide log
    args = parse_args(argv)
    LOG = Log(args.log)
    try:
        proxy = Proxy(args)
    except (OSError, PolicyError, ValueError) as exc:
        LOG("PROXY", action="fatal", reason=str(exc))
        return 2
    family = socket.AF_INET6 if ":" in args.listen[0] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(args.listen)
    except OSError as exc:
        LOG("PROXY", action="fatal", reason=f"bind {args.listen[0]}:{args.listen[1]}: {exc}")
        return 2
    sock.listen(128)
    threading.Thread(target=proxy.poll_policy, args=(_interval("OPENSHELL_POLICY_POLL_INTERVAL_SECS", POLICY_POLL_INTERVAL),),
                     daemon=True).start()
    threading.Thread(target=proxy.poll_routes, args=(_interval("OPENSHELL_ROUTE_REFRESH_INTERVAL_SECS", ROUTE_REFRESH_INTERVAL),),
                     daemon=True).start()
    LOG("PROXY", action="listen", address=f"{args.listen[0]}:{args.listen[1]}", gaps=",".join(sorted(proxy.gaps)) or None)
    try:
        proxy.serve(sock)
    except KeyboardInterrupt:
        return 0
    except OSError as exc:  # sb/proxy.rs:201-210: an accept error ends the accept loop
        LOG("PROXY", action="fatal", reason=f"Proxy accept error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
