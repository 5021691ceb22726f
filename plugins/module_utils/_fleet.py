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
# NemoClaw v0.0.21 validateName (src/lib/runner.ts:318-331 @db3453b5): a lower-case letter first, then lower-case
# letters, digits and inner hyphens, at most 63 characters; the name is only trimmed, never lower-cased.
SANDBOX_NAME = re.compile(r"^[a-z]([a-z0-9-]*[a-z0-9])?$")
# Names onboarding refuses as CLI commands (src/lib/onboard.ts:2895-2908 @db3453b5) ...
NEMOCLAW_RESERVED = frozenset("onboard list deploy setup setup-spark start stop status debug uninstall credentials help".split())
# ... and further global commands `nemoclaw <cmd>` dispatches before sandbox names (src/nemoclaw.ts:78-97), which
# would make `nemoclaw <sandbox> status|destroy` unreachable.
NEMOCLAW_VERBS = NEMOCLAW_RESERVED | {"backup-all", "upgrade-sandboxes"}
# NEMOCLAW_PROVIDER at v0.0.21 (src/lib/onboard.ts:2264-2294, 160-234): the OpenShell provider each one creates and
# the credential it needs. `cloud` and `nim` are upstream's aliases of `build` and `nim-local`.
PROVIDER_ALIASES = {"cloud": "build", "nim": "nim-local"}
PROVIDER_INFO = {
    "build": ("nvidia-prod", "NVIDIA_API_KEY"),
    "openai": ("openai-api", "OPENAI_API_KEY"),
    "anthropic": ("anthropic-prod", "ANTHROPIC_API_KEY"),
    "anthropicCompatible": ("compatible-anthropic-endpoint", "COMPATIBLE_ANTHROPIC_API_KEY"),
    "gemini": ("gemini-api", "GEMINI_API_KEY"),
    "custom": ("compatible-endpoint", "COMPATIBLE_API_KEY"),
    "ollama": ("ollama-local", None),
    "vllm": ("vllm-local", None),
    "nim-local": ("vllm-local", None),
}
PROVIDERS = tuple(PROVIDER_INFO) + tuple(PROVIDER_ALIASES)
# Policy presets shipped at v0.0.21 (nemoclaw-blueprint/policies/presets/*.yaml @db3453b5).
POLICY_PRESETS = frozenset(
    "brave brew discord github huggingface jira local-inference npm outlook pypi slack telegram".split())
POLICY_TIERS = ("restricted", "balanced", "open")  # nemoclaw-blueprint/policies/tiers.yaml @db3453b5
MESSAGING_SECRETS = ("TELEGRAM_BOT_TOKEN", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "DISCORD_BOT_TOKEN")
SECRET_NAMES = tuple(dict.fromkeys([info[1] for info in PROVIDER_INFO.values() if info[1]] + list(MESSAGING_SECRETS)))
# First OpenShell release without `gateway start/stop/destroy` (the k3s cluster image was removed).
OPENSHELL_HOST_SERVICE = (0, 0, 37)
# NemoClaw releases whose non-interactive onboarding exits 1 unless the third-party software notice is accepted
# (ensureUsageNoticeConsent, src/lib/onboard.ts:5913-5920, src/lib/usage-notice.ts:116-141 @db3453b5). The gate came
# with NVIDIA/NemoClaw#1290 (merged 2026-04-02); v0.0.3 was cut the day before (#1291), so v0.0.4 is the first tag
# that can have it (which tag first did is unverified; requiring the consent one release early only asks for it).
NEMOCLAW_THIRD_PARTY_NOTICE = (0, 0, 4)
# The OpenShell range NemoClaw v0.0.21's preflight accepts (nemoclaw-blueprint/blueprint.yaml:5-6 @db3453b5, enforced
# at src/lib/onboard.ts:2374-2422).
NEMOCLAW_BLUEPRINT_RANGES = {(0, 0, 21): ((0, 0, 24), (0, 0, 26))}


def version_tuple(text):
    """'v0.0.26', 'openshell 0.0.26', '0.0.7.1' -> (0, 0, 26) / (0, 0, 7, 1); None when there is no version."""
    m = re.search(r"(\d+)\.(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    if not m:
        return None
    return tuple(int(g) for g in m.groups() if g is not None)


def _fmt(v):
    return ".".join(str(p) for p in v)


def provider_key(provider):
    """NEMOCLAW_PROVIDER value -> NemoClaw's canonical key (aliases resolved); None when unknown."""
    key = PROVIDER_ALIASES.get(provider, provider)
    return key if key in PROVIDER_INFO else None


def openshell_provider(provider):
    """NEMOCLAW_PROVIDER value -> the OpenShell provider NemoClaw v0.0.21 creates for it ('' when unknown)."""
    key = provider_key(provider)
    return PROVIDER_INFO[key][0] if key else ""


def sandbox_name_problems(name):
    """Why NemoClaw v0.0.21 would refuse this sandbox name (or make it unreachable); empty when it is fine."""
    if not isinstance(name, str) or not name:
        return ["the sandbox name is empty"]
    problems = []
    if name != name.lower():
        problems.append(f"sandbox name '{name}' has upper-case letters (NemoClaw v0.0.21 does not lower-case it; its "
                        "validateName refuses it)")
    if name[:1].isdigit():
        problems.append(f"sandbox name '{name}' starts with a digit (NemoClaw v0.0.21 needs a lower-case letter first)")
    if not re.match(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$", name.lower()):
        problems.append(f"sandbox name '{name}' is not an RFC 1123 label (lower-case letters, digits and inner '-')")
    if len(name) > 63:
        problems.append(f"sandbox name '{name}' is longer than 63 characters")
    if name in NEMOCLAW_RESERVED:
        problems.append(f"sandbox name '{name}' is a nemoclaw command; NemoClaw refuses it as a reserved name")
    elif name in NEMOCLAW_VERBS:
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
    blueprint = NEMOCLAW_BLUEPRINT_RANGES.get(ncv[:3])
    if blueprint and not blueprint[0] <= osv[:3] <= blueprint[1]:
        problems.append(f"NemoClaw {nemoclaw} accepts OpenShell {_fmt(blueprint[0])} to {_fmt(blueprint[1])} only (its "
                        f"blueprint.yaml min/max_openshell_version); its preflight refuses OpenShell {openshell}")
    if ncv >= (0, 0, 22) and osv < (0, 0, 29):
        problems.append(
            f"NemoClaw {nemoclaw} requires OpenShell >= 0.0.29 (NemoClaw#2141/#2307); OpenShell {openshell} is refused by its preflight")
    if ncv >= (0, 0, 39) and osv < OPENSHELL_HOST_SERVICE:
        problems.append(f"NemoClaw {nemoclaw} drives the OpenShell >= 0.0.37 Docker-driver gateway (NemoClaw#3383); it cannot onboard "
                        f"onto OpenShell {openshell}")
    return problems


def consent_required(nemoclaw_version):
    """Whether this NemoClaw release's non-interactive onboarding needs the third-party software notice accepted."""
    ncv = version_tuple(nemoclaw_version) if nemoclaw_version else None
    return bool(ncv) and ncv >= NEMOCLAW_THIRD_PARTY_NOTICE


def onboard_problems(provider, secrets, system, experimental=False, policy_mode="suggested", policy_presets=(),
                     nemoclaw_version=None, accept_third_party=False, endpoint_url="", policy_tier="balanced"):
    """Problems with the onboarding inputs that NemoClaw would only report after changing the host (gateway, auth
    proxy) - or never. ``secrets`` maps names to presence (booleans): values are never needed here."""
    problems = []
    secrets = secrets or {}
    key = provider_key(provider)
    if key is None:
        problems.append(f"provider '{provider}' is not one of {', '.join(PROVIDERS)}")
    else:
        credential = PROVIDER_INFO[key][1]
        if credential and not secrets.get(credential):
            variable = "nemoclaw_onboard_nvidia_api_key" if credential == "NVIDIA_API_KEY" else "nemoclaw_onboard_provider_api_key"
            problems.append(f"provider '{provider}' needs {credential}: set {variable} (from a vaulted variable)")
        if key in ("custom", "anthropicCompatible") and not endpoint_url:
            problems.append(f"provider '{provider}' needs NEMOCLAW_ENDPOINT_URL: set nemoclaw_onboard_endpoint_url")
    if key in ("vllm", "nim-local") and not experimental:
        problems.append(f"provider '{provider}' is experimental in NemoClaw: set nemoclaw_onboard_experimental=true")
    if key == "nim-local" and system == "Darwin":
        problems.append(f"provider '{provider}' needs an NVIDIA GPU; Apple Silicon has none (use ollama or cloud)")
    unknown = sorted(set(secrets) - set(SECRET_NAMES))
    if unknown:
        problems.append(f"unknown secret names {unknown}; supported: {', '.join(SECRET_NAMES)}")
    if policy_mode not in ("suggested", "custom", "skip"):
        problems.append(f"policy mode '{policy_mode}' is not one of suggested, custom, skip")
    if policy_tier not in POLICY_TIERS:
        problems.append(f"policy tier '{policy_tier}' is not one of {', '.join(POLICY_TIERS)}")
    bad = sorted(set(policy_presets or ()) - POLICY_PRESETS)
    if bad:
        problems.append(f"unknown policy presets {bad}; NemoClaw v0.0.21 ships: {', '.join(sorted(POLICY_PRESETS))}")
    if policy_mode == "custom" and not policy_presets:
        problems.append("policy mode 'custom' needs a non-empty preset list (nemoclaw_onboard_policy_presets)")
    if consent_required(nemoclaw_version) and not accept_third_party:
        problems.append(f"NemoClaw {nemoclaw_version} refuses non-interactive onboarding (exit 1) until its third-party "
                        "software notice is accepted: read the notice, then set "
                        "nemoclaw_onboard_accept_third_party_software=true (passed as NEMOCLAW_ACCEPT_THIRD_PARTY_SOFTWARE=1)")
    return problems


def secret_format_problems(secrets):
    """Checks on secret values NemoClaw v0.0.21 makes before it touches anything; messages name the variable only."""
    problems = []
    key = (secrets or {}).get("NVIDIA_API_KEY")
    if key and not str(key).startswith("nvapi-"):  # src/lib/validation.ts:72-80 @db3453b5
        problems.append("NVIDIA_API_KEY does not start with 'nvapi-' (NemoClaw refuses it): check nemoclaw_onboard_nvidia_api_key")
    return problems


def mask_output(text, secrets=()):
    """NemoClaw output with the given secret values and the dashboard's `#token=...` (the OpenClaw gateway token
    its summary prints, src/lib/onboard.ts:5806-5815 @db3453b5) and Bearer tokens replaced by '********'."""
    out = text or ""
    for value in secrets or ():
        if value:
            out = out.replace(str(value), "********")
    out = re.sub(r"(#token=)[^\s&]+", r"\1********", out)
    return re.sub(r"(Bearer )[A-Za-z0-9._~+/=-]{8,}", r"\1********", out)


def clt_label(softwareupdate_output):
    """The newest Command Line Tools label `softwareupdate -l` offers, '' when none: `Command Line Tools for
    Xcode-16.3` (Xcode <= 16) or `Command Line Tools for Xcode 26.0-26.0` (Xcode 26, microsoft/macos-cookbook#300)."""
    best = None
    for m in re.finditer(r"^\s*\*\s*Label:\s*(Command Line Tools for Xcode[- ](\d+(?:\.\d+)*)(?:-(\d+(?:\.\d+)*))?)\s*$",
                         softwareupdate_output or "", re.M):
        rank = (tuple(int(x) for x in m.group(2).split(".")), tuple(int(x) for x in (m.group(3) or "0").split(".")))
        if best is None or rank > best[0]:
            best = (rank, m.group(1))
    return best[1] if best else ""


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
