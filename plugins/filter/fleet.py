# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)
"""Filters for the fleet roles' input validation (fail before any change, naming the value and the fix)."""

from __future__ import annotations

import base64
import plistlib

from ansible.errors import AnsibleFilterError

from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _fleet as F


def nemoclaw_sandbox_name_problems(name):
    """A sandbox name -> list of reasons NemoClaw/OpenShell would reject it ([] when fine)."""
    return F.sandbox_name_problems(name)


def nemoclaw_version_pair_problems(openshell, nemoclaw, system):
    """OpenShell version, NemoClaw version, ansible_facts.system -> known problems of that pair ([] when none known)."""
    return F.version_pair_problems(str(openshell), str(nemoclaw), system)


def nemoclaw_onboard_problems(provider, secrets=None, system="Linux", experimental=False, policy_mode="suggested",
                              policy_presets=None, nemoclaw_version=None, accept_third_party=False, endpoint_url="",
                              policy_tier="balanced"):
    """Onboarding inputs -> problems NemoClaw would only report after it changed the host. Secrets are tested for
    presence and NemoClaw's own format checks; their values never appear in a message."""
    present = {k: bool(v) for k, v in (secrets or {}).items()}
    return (F.onboard_problems(provider, present, system, experimental, policy_mode, policy_presets or [],
                               nemoclaw_version, accept_third_party, endpoint_url, policy_tier)
            + F.secret_format_problems(secrets))


def nemoclaw_openshell_provider(provider):
    """NEMOCLAW_PROVIDER value -> the OpenShell provider NemoClaw v0.0.21 creates (ollama -> ollama-local,
    cloud -> nvidia-prod, ...); '' when unknown."""
    return F.openshell_provider(provider)


def clt_label(softwareupdate_output):
    """`softwareupdate -l` output -> the newest Command Line Tools label offered ('' when none), in either the
    Xcode <= 16 (`...for Xcode-16.3`) or the Xcode 26 (`...for Xcode 26.0-26.0`) form."""
    return F.clt_label(softwareupdate_output)


def openshell_gateway_connected(status_text):
    """`openshell status` output -> True only for `Status: Connected` (gRPC health answered)."""
    return F.gateway_connected(status_text)


def version_tuple_text(text):
    """'openshell 0.0.26' -> '0.0.26' ('' when no version is in the text)."""
    v = F.version_tuple(text)
    return ".".join(str(p) for p in v) if v else ""


def plist_decode(b64):
    """Base64 of a property list (XML or binary, e.g. slurped Info.plist) -> dict."""
    try:
        return plistlib.loads(base64.b64decode(b64))
    except (ValueError, plistlib.InvalidFileException) as e:
        raise AnsibleFilterError(f"plist_decode: not a property list ({e})") from e


class FilterModule:
    def filters(self):
        return {
            "nemoclaw_sandbox_name_problems": nemoclaw_sandbox_name_problems,
            "nemoclaw_version_pair_problems": nemoclaw_version_pair_problems,
            "nemoclaw_onboard_problems": nemoclaw_onboard_problems,
            "nemoclaw_openshell_provider": nemoclaw_openshell_provider,
            "clt_label": clt_label,
            "version_tuple_text": version_tuple_text,
            "openshell_gateway_connected": openshell_gateway_connected,
            "plist_decode": plist_decode,
        }
