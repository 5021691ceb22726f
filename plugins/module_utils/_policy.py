# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)
"""An OpenShell sandbox policy read from `openshell policy get <sandbox> --full` (policy_output: the JSON form of the
host-service lines, or v0.0.26's YAML read by policy_document): its filesystem part, its Landlock mode, its L7 endpoints.

OpenShell v0.0.26 prints the active revision's status lines, then `---` and the policy as YAML written by
openshell_policy::serialize_sandbox_policy (crates/openshell-cli/src/run.rs L4551-4601, crates/openshell-policy/src/
lib.rs L375-380: serde_yml of PolicyFile, fields in struct order L27-50 - version, filesystem_policy {include_workdir,
read_only, read_write}, landlock, process, network_policies). Without a revision it prints
"No policy history found for sandbox '<name>'" on stderr and nothing on stdout.

The hardening launcher enforces this part with Landlock (OpenShell v0.0.26 never applied it, #803), and the verifier
proves it: NemoClaw's policy makes /sandbox read-only so the agent cannot change its own start-up environment or its
gateway configuration (nemoclaw-blueprint/policies/openclaw-sandbox.yaml @db3453b5, NemoClaw #514 and #804).

Only the block style serde_yml writes is read (mapping keys, `- item` sequences at the key's indentation or deeper,
plain or quoted scalars); anything else is refused with a message rather than guessed - the hosts this runs on (a
Mac's /usr/bin/python3) have no YAML library.
"""

from __future__ import annotations

import json
import re


class PolicyError(ValueError):
    """The policy text is not in the form OpenShell prints."""


def _scalar(text):
    text = text.strip()
    if text.startswith(("[", "{", "&", "*", "!", "|", ">")):
        raise PolicyError(f"unsupported YAML form {text[:40]!r} (expected the block style OpenShell writes)")
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        body = text[1:-1]
        if "\\" in body:
            raise PolicyError(f"escaped double-quoted scalar {text[:40]!r} is not supported")
        return body
    if " #" in text:
        text = text.split(" #", 1)[0].rstrip()
    return text


def policy_yaml(output):
    """The YAML after the `---` line of `policy get --full`, or None when the sandbox has no policy revision."""
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "---":
            return "\n".join(lines[i + 1:])
    return None


def policy_json(output):
    """`policy get <sandbox> --full --output json` (the host-service lines' sandbox.policy) -> (policy, revision) where
    revision is {version, hash, status}; None when the sandbox has no policy revision (the CLI then prints nothing on
    stdout). The JSON object is run.rs @v0.0.111 L6505-6569 (scope, sandbox, version, hash, status, active_version,
    policy); on 0.0.116/0.1.x it is unverified and the canary checks it."""
    if not output.strip():
        return None
    try:
        doc = json.loads(output)
    except ValueError as exc:
        raise PolicyError(f"`policy get --output json` printed no JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("policy"), dict):
        raise PolicyError("`policy get --full --output json` has no policy object (was --full given?)")
    return doc["policy"], {k: doc.get(k) for k in ("version", "hash", "status")}


_DOC_KEY = re.compile(r"^(?P<key>'[^']*'|\"[^\"]*\"|[^\s'\"#\-?:][^:#]*?|-[^\s:#][^:#]*?)\s*:(?:\s+(?P<value>.*))?$")
_INT = re.compile(r"^[-+]?[0-9]+$")


def _typed(text):
    """A scalar of the block style: quoted -> str; plain true/false, null/~, integers -> their type; `[]`, `{}` and a
    flow sequence of plain or quoted scalars without commas inside (`[/usr, /lib]`) -> list/dict; else str."""
    text = text.strip()
    if text in ("[]", "{}"):
        return [] if text == "[]" else {}
    if text.startswith("[") and text.endswith("]") and not any(c in text[1:-1] for c in "[]{}"):
        return [_typed(part) for part in text[1:-1].split(",") if part.strip()]
    quoted = len(text) >= 2 and text[0] == text[-1] and text[0] in "'\""
    value = _scalar(text)
    if quoted:
        return value
    if value in ("true", "false"):
        return value == "true"
    if value in ("null", "~", ""):
        return None
    return int(value) if _INT.match(value) else value


def _lines(text):
    out = []
    for raw in text.splitlines():
        body = raw.lstrip(" ")
        if not body.strip() or body.startswith("#"):
            continue
        if body.startswith("\t"):
            raise PolicyError(f"tab indentation in {raw.strip()[:60]!r}")
        out.append([len(raw) - len(body), body.rstrip()])
    return out


def _is_item(body):
    return body == "-" or body.startswith("- ")


def _node(lines, pos, indent):
    if _is_item(lines[pos][1]):
        return _sequence(lines, pos, indent)
    return _mapping(lines, pos, indent)


def _mapping(lines, pos, indent):
    out = {}
    while pos < len(lines) and lines[pos][0] == indent and not _is_item(lines[pos][1]):
        match = _DOC_KEY.match(lines[pos][1])
        if not match:
            raise PolicyError(f"unreadable policy line {lines[pos][1][:60]!r}")
        key, rest = _scalar(match.group("key")), match.group("value")
        pos += 1
        if rest is not None and rest.strip() and not rest.lstrip().startswith("#"):
            value = _typed(rest)
        elif pos < len(lines) and (lines[pos][0] > indent or (lines[pos][0] == indent and _is_item(lines[pos][1]))):
            value, pos = _node(lines, pos, lines[pos][0])  # a sequence may sit at its key's indentation (libyaml)
        else:
            value = None
        if key in out:
            raise PolicyError(f"duplicate key {key!r}")
        out[key] = value
    if pos < len(lines) and lines[pos][0] > indent:
        raise PolicyError(f"unexpected indentation at {lines[pos][1][:60]!r}")
    return out, pos


def _sequence(lines, pos, indent):
    out = []
    while pos < len(lines) and lines[pos][0] == indent and _is_item(lines[pos][1]):
        rest = lines[pos][1][1:].lstrip(" ")
        if not rest:
            pos += 1
            if pos >= len(lines) or lines[pos][0] <= indent:
                out.append(None)
                continue
            value, pos = _node(lines, pos, lines[pos][0])
        elif _DOC_KEY.match(rest):
            # `- key: value` opens a mapping whose keys are aligned with `key`
            lines[pos] = [indent + len(lines[pos][1]) - len(rest), rest]
            value, pos = _mapping(lines, pos, lines[pos][0])
        else:
            value, pos = _typed(rest), pos + 1
        out.append(value)
    return out, pos


def policy_document(text):
    """The whole policy document of `policy get --full` (the YAML after `---`) as dicts, lists and scalars - the block
    style serde_yml writes, plus flow sequences of scalars; PolicyError for anything else. For the hosts without a
    YAML library (a Mac's /usr/bin/python3); tests/unit compare it with PyYAML."""
    lines = _lines(text)
    if not lines:
        return None
    value, pos = _node(lines, 0, lines[0][0])
    if pos != len(lines):
        raise PolicyError(f"unreadable policy line {lines[pos][1][:60]!r}")
    return value


_STATUS = re.compile(r"^(Version|Hash|Status):\s+(.*)$")


def status_revision(output):
    """{version, hash, status} from the status lines v0.0.26 prints before `---` (run.rs @v0.0.26 L4568-4571:
    `Version:`, `Hash:`, `Status:` - the PolicyStatus name, e.g. Loaded)."""
    found = {}
    for line in output.splitlines():
        if line.strip() == "---":
            break
        match = _STATUS.match(line.strip())
        if match:
            found[match.group(1).lower()] = match.group(2).strip()
    version = found.get("version")
    return {"version": int(version) if version and version.isdigit() else version, "hash": found.get("hash"),
            "status": found.get("status")}


def policy_output(output):
    """(policy, revision) of a policy command's output in either form the lines print: the JSON object of
    `policy get --full --output json` (policy_json), or v0.0.26's status lines, `---` and YAML, read by policy_document
    (no YAML library needed). None when the sandbox has no policy revision; PolicyError when it cannot be read."""
    if output.lstrip().startswith("{"):
        return policy_json(output)
    text = policy_yaml(output)
    if text is None:
        return None
    doc = policy_document(text)
    if doc is None:
        return None
    if not isinstance(doc, dict):
        raise PolicyError("the policy after `---` is not a mapping")
    return doc, status_revision(output)


def filesystem_from(policy):
    """The filesystem part of a policy document: {include_workdir, read_only, read_write}, or None when it has none.
    Fields outside FilesystemDef (openshell-policy lib.rs @v0.0.26 L42-50, deny_unknown_fields) and paths that are not absolute are refused."""
    fs = policy.get("filesystem_policy")
    if fs is None:
        return None
    if not isinstance(fs, dict):
        raise PolicyError("filesystem_policy is not a mapping")
    unknown = sorted(set(fs) - {"include_workdir", "read_only", "read_write"})
    if unknown:
        raise PolicyError(f"unknown filesystem_policy field {unknown[0]!r}")
    include = fs.get("include_workdir", False)
    if not isinstance(include, bool):
        raise PolicyError(f"include_workdir {include!r} is not a boolean")
    out = {"include_workdir": include, "read_only": [], "read_write": []}
    for key in ("read_only", "read_write"):
        paths = fs.get(key) or []
        if not isinstance(paths, list):
            raise PolicyError(f"filesystem_policy.{key} is not a sequence")
        for path in paths:
            if not isinstance(path, str) or not path.startswith("/"):
                raise PolicyError(f"filesystem_policy.{key}: {path!r} is not an absolute path")
            out[key].append(path)
    return out


def landlock_from(policy):
    """The policy's landlock.compatibility: `best_effort` when unset, OpenShell's default (crates/openshell-policy:
    Landlock compatibility defaults to best_effort; 0.1.x schema.mdx@0b37da61)."""
    value = (policy.get("landlock") or {}).get("compatibility") or "best_effort"
    if value not in ("best_effort", "hard_requirement"):
        raise PolicyError(f"landlock.compatibility {value!r} is neither best_effort nor hard_requirement")
    return value


def l7_endpoints(policy):
    """Every endpoint with L7 rules (protocol rest or sql) as {rule, host, port, protocol, enforcement}; enforcement
    `audit` when unset, OpenShell's default (openshell-policy @v0.0.111 NetworkEndpoint.enforcement; 0.1.x
    schema.mdx@0b37da61): audit only logs what the rules would deny."""
    out = []
    for rule_name, rule in sorted((policy.get("network_policies") or {}).items()):
        for ep in (rule or {}).get("endpoints") or []:
            if isinstance(ep, dict) and ep.get("protocol") in ("rest", "sql"):
                # `port`, or `ports` for several (NetworkEndpointDef, openshell-policy lib.rs @v0.0.26 L81-103)
                out.append({"rule": rule_name, "host": ep.get("host", ""), "port": ep.get("port") or ep.get("ports"),
                            "protocol": ep["protocol"], "enforcement": ep.get("enforcement") or "audit"})
    return out


def landlock_lists(fs, workdir, extra_ro=(), extra_rw=()):
    """The Landlock ruleset OpenShell derives from a filesystem policy (read_only, read_write, and the working
    directory read-write when include_workdir - crates/openshell-sandbox/src/sandbox/linux/landlock.rs @v0.0.26
    L15-24), plus
    what the hardening itself adds. Order kept, duplicates dropped."""
    ro = [*fs["read_only"], *extra_ro]
    rw = [*fs["read_write"], *([workdir] if fs["include_workdir"] and workdir else []), *extra_rw]
    return list(dict.fromkeys(ro)), list(dict.fromkeys(rw))
