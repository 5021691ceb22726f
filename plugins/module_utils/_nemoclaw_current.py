# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)
"""Pure parts of onboarding with NemoClaw v0.0.130-v0.0.132 (the releases that pin OpenShell 0.0.116) from its
machine-readable interfaces (/work/shared/reference/openshell-current.md section 5): `nemoclaw host probe --json`
(exit 0 supported, 2 incompatible, 3 inconclusive), `nemoclaw list --json`, `nemoclaw onboard --non-interactive
--events=jsonl` (JSON Lines, schemaVersion 1) and the sandbox phase from `openshell sandbox list --output json`."""

from __future__ import annotations

import json
import re

LINE = ("0.0.130", "0.0.131", "0.0.132")  # NemoClaw releases pinning exactly OpenShell 0.0.116 (ref 1.2)
PROBE_EXIT = {0: "supported", 2: "incompatible", 3: "inconclusive"}
NAME = re.compile(r"^[a-z][a-z0-9-]{0,18}$")  # 1-19 characters, a letter first, no `--` (commands.mdx 001d266f)


def version_text(output):
    m = re.search(r"\d+\.\d+\.\d+", output or "")
    return m.group(0) if m else ""


def name_problem(name):
    if not NAME.match(name or "") or "--" in name:
        return f"sandbox name {name!r}: 1-19 characters, a lower-case letter first, then letters, digits or '-', no '--'"
    return None


def parse_events(text):
    """(events, result): every JSON line of onboard's stdout with schemaVersion 1, and the final `result` event (or
    None when onboarding ended without one). Non-JSON lines are ignored (a human line on stdout)."""
    events, result = [], None
    for raw in (text or "").splitlines():
        line = raw.strip()
        if not line.startswith("{"):
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict) or event.get("schemaVersion") != 1:
            continue
        events.append(event)
        if event.get("type") == "result":
            result = event
    return events, result


def failed_step(events):
    """The step of the last `failed` step event, with its message."""
    for event in reversed(events):
        if event.get("type") == "step" and event.get("status") == "failed":
            return event.get("step"), event.get("message", "")
    return None, ""


def probe_verdict(rc, stdout):
    """Read `host probe --json`: (status, problems, document). A missing or unreadable document is inconclusive."""
    try:
        doc = json.loads(stdout or "{}")
    except ValueError:
        doc = {}
    status = PROBE_EXIT.get(rc, "inconclusive")
    return status, list(doc.get("problems") or []), doc


def registered(listing, name):
    """The registry entry of `name` from `nemoclaw list --json`, or None."""
    for entry in (listing or {}).get("sandboxes") or []:
        if entry.get("name") == name:
            return entry
    return None


def decide(entry, phase, wanted, recreate=False):
    """(action, reason): `none` when the sandbox is registered, Ready and has the wanted provider, model and presets;
    otherwise `onboard` (not registered) or `recreate` (registered but different, or not Ready)."""
    if entry is None:
        return "onboard", "not registered with NemoClaw"
    if recreate:
        return "recreate", "recreate requested"
    if phase != "Ready":
        return "recreate", f"registered but its sandbox is {phase or 'missing'}"
    for key in ("provider", "model"):
        if wanted.get(key) and entry.get(key) != wanted[key]:
            return "recreate", f"registered with {key} {entry.get(key)!r}, wanted {wanted[key]!r}"
    if sorted(entry.get("policies") or []) != sorted(wanted.get("policies") or []):
        return "recreate", f"registered with presets {entry.get('policies') or []}, wanted {wanted.get('policies') or []}"
    return "none", "registered and Ready with the wanted provider, model and presets"


# NEMOCLAW_PROVIDER value -> the OpenShell provider NemoClaw creates (nemoclaw.md section 2, the later onboard.js table;
# ollama's name as at HEAD); the registry records the latter.
PROVIDER_NAMES = {"build": "nvidia-prod", "cloud": "nvidia-prod", "openai": "openai-api", "anthropic": "anthropic-prod",
                  "gemini": "gemini-api", "custom": "compatible-endpoint", "ollama": "ollama-local"}
