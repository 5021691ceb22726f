# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)
"""Pure helpers for the fleet roles (PRIVATE to the collection).

Input validation that must fail before any change (sandbox names, the OpenShell/NemoClaw version pair, the
provider and its secrets), parsers for the OpenShell v0.0.26 CLI's human output (it has no JSON output apart from
``settings get --json``) and the NemoClaw registry. Facts come from ``docs/upstream-review.md``.
"""

from __future__ import annotations

import json
import re

# Any CSI escape (colours, cursor moves), as OpenShell v0.0.26 prints them even when piped (owo-colors).
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
SANDBOX_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
# `nemoclaw <cmd>` dispatches these before sandbox names (bin/nemoclaw.js GLOBAL_COMMANDS), so a sandbox with one
# of these names could never be reached with `nemoclaw <sandbox> status|destroy`.
NEMOCLAW_VERBS = frozenset(
    "onboard list deploy setup setup-spark start stop status debug uninstall help".split())
PROVIDERS = ("cloud", "ollama", "vllm", "nim")
POLICY_PRESETS = frozenset("pypi npm telegram slack discord docker huggingface jira outlook".split())
SECRET_NAMES = ("NVIDIA_API_KEY", "TELEGRAM_BOT_TOKEN", "SLACK_BOT_TOKEN", "DISCORD_BOT_TOKEN")
# First OpenShell release without `gateway start/stop/destroy` (the k3s cluster image was removed).
OPENSHELL_HOST_SERVICE = (0, 0, 37)
# NemoClaw releases from which non-interactive installs must accept the third-party notice.
NEMOCLAW_THIRD_PARTY_NOTICE = (0, 0, 34)


def version_tuple(text):
    """'v0.0.26', 'openshell 0.0.26', '0.0.7.1' -> (0, 0, 26) / (0, 0, 7, 1); None when there is no version."""
    m = re.search(r"(\d+)\.(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    if not m:
        return None
    return tuple(int(g) for g in m.groups() if g is not None)


def _fmt(v):
    return ".".join(str(p) for p in v)


def sandbox_name_problems(name):
    """Why NemoClaw/OpenShell would reject (or mangle) this sandbox name; empty when it is fine."""
    if not isinstance(name, str) or not name:
        return ["the sandbox name is empty"]
    problems = []
    if name != name.lower():
        problems.append(f"sandbox name '{name}' has upper-case letters (NemoClaw lower-cases it, so the registered name would differ)")
    if not SANDBOX_NAME.match(name.lower()):
        problems.append(f"sandbox name '{name}' is not an RFC 1123 label (lower-case letters, digits and '-', starting and ending "
                        "with a letter or digit)")
    if len(name) > 63:
        problems.append(f"sandbox name '{name}' is longer than 63 characters")
    if name.lower() in NEMOCLAW_VERBS:
        problems.append(f"sandbox name '{name}' is a nemoclaw command; `nemoclaw {name} status` would run the command instead")
    return problems


def version_pair_problems(openshell, nemoclaw, system):
    """Known-bad OpenShell/NemoClaw pairs for this platform (``system`` is ansible_facts.system)."""
    osv, ncv = version_tuple(openshell), version_tuple(nemoclaw)
    problems = []
    if osv is None:
        problems.append(f"OpenShell version '{openshell}' is not a version (expected e.g. 0.0.26)")
    if ncv is None:
        problems.append(f"NemoClaw version '{nemoclaw}' is not a version (expected e.g. 0.0.21)")
    if problems:
        return problems
    if osv >= OPENSHELL_HOST_SERVICE:
        problems.append(
            f"OpenShell {openshell}: from 0.0.37 on there is no k3s cluster and no `openshell gateway start`; this release "
            "installs the legacy (<= 0.0.36) flavour only - pin openshell_cluster_version to 0.0.26")
    if ncv[:3] == (0, 0, 7) and osv >= (0, 0, 26):
        if system == "Darwin":
            problems.append(
                f"NemoClaw {nemoclaw} with OpenShell {openshell} hangs in onboarding preflight on macOS (NemoClaw#1810); "
                "use a NemoClaw release between v0.0.8 and v0.0.21 with OpenShell 0.0.26")
        elif len(ncv) > 3:
            problems.append(f"NemoClaw {nemoclaw} caps OpenShell at 0.0.25 (NemoClaw#1810); it refuses OpenShell {openshell}")
    if ncv >= (0, 0, 22) and osv < (0, 0, 29):
        problems.append(
            f"NemoClaw {nemoclaw} requires OpenShell >= 0.0.29 (NemoClaw#2141/#2307); OpenShell {openshell} is refused by its preflight")
    if ncv >= (0, 0, 39) and osv < OPENSHELL_HOST_SERVICE:
        problems.append(f"NemoClaw {nemoclaw} drives the OpenShell >= 0.0.37 Docker-driver gateway (NemoClaw#3383); it cannot onboard "
                        f"onto OpenShell {openshell}")
    return problems


def onboard_problems(provider, secrets, system, experimental=False, policy_mode="suggested", policy_presets=(),
                     nemoclaw_version=None, accept_third_party=False):
    """Problems with the onboarding inputs that NemoClaw would only report after destroying the gateway."""
    problems = []
    secrets = secrets or {}
    if provider not in PROVIDERS:
        problems.append(f"provider '{provider}' is not one of {', '.join(PROVIDERS)}")
    if provider == "cloud" and not secrets.get("NVIDIA_API_KEY"):
        problems.append("provider 'cloud' needs NVIDIA_API_KEY: set nemoclaw_onboard_nvidia_api_key (from a vaulted variable)")
    if provider in ("vllm", "nim") and not experimental:
        problems.append(f"provider '{provider}' is experimental in NemoClaw: set nemoclaw_onboard_experimental=true")
    if provider == "nim" and system == "Darwin":
        problems.append("provider 'nim' needs an NVIDIA GPU; Apple Silicon has none (use ollama or cloud)")
    unknown = sorted(set(secrets) - set(SECRET_NAMES))
    if unknown:
        problems.append(f"unknown secret names {unknown}; supported: {', '.join(SECRET_NAMES)}")
    if policy_mode not in ("suggested", "custom", "skip"):
        problems.append(f"policy mode '{policy_mode}' is not one of suggested, custom, skip")
    bad = sorted(set(policy_presets or ()) - POLICY_PRESETS)
    if bad:
        problems.append(f"unknown policy presets {bad}; known: {', '.join(sorted(POLICY_PRESETS))}")
    if policy_mode == "custom" and not policy_presets:
        problems.append("policy mode 'custom' needs a non-empty preset list (nemoclaw_onboard_policy_presets)")
    ncv = version_tuple(nemoclaw_version) if nemoclaw_version else None
    if ncv and ncv >= NEMOCLAW_THIRD_PARTY_NOTICE and not accept_third_party:
        problems.append(f"NemoClaw {nemoclaw_version} refuses non-interactive installs until the third-party software notice is "
                        "accepted: set nemoclaw_onboard_accept_third_party_software=true after reading it")
    return problems


def strip_ansi(text):
    return ANSI.sub("", text or "")


def parse_sandbox_list(text):
    """`openshell sandbox list` (v0.0.26 table NAME NAMESPACE CREATED PHASE, CREATED being two words, possibly
    coloured) -> {name: phase}. 'No sandboxes found.' -> {}. A row of another shape raises ValueError: an
    unexpected CLI must not be read as "sandbox missing"."""
    rows = {}
    for line in strip_ansi(text).splitlines():
        cols = line.split()
        if not cols or cols[0] == "NAME" or line.strip().startswith("No sandboxes"):
            continue
        if len(cols) < 5:
            raise ValueError(f"unexpected 'openshell sandbox list' row: {line.strip()[:200]!r}")
        rows[cols[0]] = cols[-1]
    return rows


def parse_labelled_block(text):
    """`openshell status` / `inference get` blocks ('  Provider: ollama-local') -> {'provider': 'ollama-local', ...}."""
    out = {}
    for line in strip_ansi(text).splitlines():
        m = re.match(r"^\s+([A-Za-z][A-Za-z ]*?):\s+(.*\S)\s*$", line)
        if m:
            out[m.group(1).strip().lower().replace(" ", "_")] = m.group(2)
    return out


def parse_inference(text):
    """`openshell inference get` (v0.0.26 prints a 'Gateway inference:' and a 'System inference:' block) ->
    {'configured': bool, 'provider': ..., 'model': ...} of the gateway route, the one sandboxes use."""
    gateway = strip_ansi(text).split("System inference:")[0]
    fields = parse_labelled_block(gateway)
    configured = "Not configured" not in gateway and bool(fields.get("provider"))
    return {"configured": configured, "provider": fields.get("provider"), "model": fields.get("model")}


def gateway_connected(status_text):
    """True when `openshell status` reports the gateway as Connected: gRPC health answered. 'Connected (HTTP)' means
    only the HTTP health check did, and the CLI's gRPC calls (sandbox create, inference set) would fail."""
    return parse_labelled_block(status_text).get("status") == "Connected"


def load_registry(text):
    """~/.nemoclaw/sandboxes.json content -> {'sandboxes': {...}, 'defaultSandbox': ...} (empty when absent/broken)."""
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        data = {}
    if not isinstance(data, dict) or not isinstance(data.get("sandboxes"), dict):
        return {"sandboxes": {}, "defaultSandbox": None}
    return data


def model_ids(models_json):
    """Body of GET /v1/models (OpenAI shape) -> list of model ids; [] when it is not that shape."""
    try:
        data = json.loads(models_json)
    except (TypeError, ValueError):
        return []
    items = data.get("data") if isinstance(data, dict) else None
    return [m.get("id") for m in items if isinstance(m, dict) and m.get("id")] if isinstance(items, list) else []
