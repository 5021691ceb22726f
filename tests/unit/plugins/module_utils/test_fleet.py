"""Fleet input validation and OpenShell v0.0.26 output parsers."""
from __future__ import annotations

import base64
import json
import plistlib

import pytest

from ansible_collections.agentsec.nemoclaw.plugins.filter import fleet as FF
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _fleet as F

# `openshell sandbox list` as printed by v0.0.26 (run.rs sandbox_list), with the colours it emits.
SANDBOX_LIST = (
    "\x1b[1mNAME\x1b[0m          \x1b[1mNAMESPACE\x1b[0m  \x1b[1mCREATED\x1b[0m              \x1b[1mPHASE\x1b[0m\n"
    "my-assistant  openshell  2026-04-16 10:12:13  \x1b[32mReady\x1b[0m\n"
    "other         openshell  2026-04-16 10:13:00  \x1b[33mProvisioning\x1b[0m\n"
)
# `openshell inference get` at v0.0.26 (run.rs gateway_inference_get): the gateway route, then the system route.
INFERENCE = (
    "\x1b[36;1mGateway inference:\x1b[0m\n\n"
    "  \x1b[2mProvider:\x1b[0m ollama-local\n  \x1b[2mModel:\x1b[0m nemotron-3-nano:30b\n"
    "  \x1b[2mVersion:\x1b[0m 2\n  \x1b[2mTimeout:\x1b[0m 60s\n\n"
    "\x1b[36;1mSystem inference:\x1b[0m\n\n  \x1b[2mProvider:\x1b[0m nvidia-prod\n  \x1b[2mModel:\x1b[0m other\n"
    "  \x1b[2mVersion:\x1b[0m 1\n"
)


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize("name", ["my-assistant", "a", "agent-01", "a" + "x" * 62])
def test_good_sandbox_names(name):
    # NemoClaw v0.0.21 validateName: ^[a-z]([a-z0-9-]*[a-z0-9])?$, at most 63 (src/lib/runner.ts:318-331 @db3453b5)
    assert F.sandbox_name_problems(name) == []


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize(("name", "fragment"), [
    ("My-Assistant", "upper-case"),  # v0.0.21 only trims the name; validateName refuses capitals
    ("1agent", "starts with a digit"),  # an RFC 1123 label, but v0.0.21 needs a letter first
    ("-agent", "RFC 1123"),
    ("agent-", "RFC 1123"),
    ("agent_1", "RFC 1123"),
    ("a" * 64, "longer than 63"),
    ("status", "nemoclaw command"),
    ("credentials", "reserved name"),  # src/lib/onboard.ts:2895-2908 RESERVED_NAMES
    ("backup-all", "would run the command"),  # src/nemoclaw.ts:78-97 GLOBAL_COMMANDS
    ("", "empty"),
])
def test_bad_sandbox_names_name_the_value(name, fragment):
    problems = F.sandbox_name_problems(name)
    assert problems and any(fragment in p for p in problems)
    if name:
        assert all(name in p for p in problems)


@pytest.mark.oracle("upstream")
def test_version_pairs():
    assert F.version_pair_problems("0.0.26", "0.0.21", "Darwin") == []
    assert F.version_pair_problems("0.0.24", "0.0.21", "Linux") == []
    # v0.0.21's blueprint accepts OpenShell 0.0.24-0.0.26 (nemoclaw-blueprint/blueprint.yaml:5-6 @db3453b5)
    for outside in ("0.0.23", "0.0.29"):
        problems = F.version_pair_problems(outside, "0.0.21", "Darwin")
        assert len(problems) == 1 and "0.0.24 to 0.0.26" in problems[0] and outside in problems[0]
    assert F.version_pair_problems("0.0.26", "v0.0.15", "Linux") == []
    hang = F.version_pair_problems("0.0.26", "0.0.7", "Darwin")
    assert len(hang) == 1 and "#1810" in hang[0] and "0.0.7" in hang[0]
    assert F.version_pair_problems("0.0.26", "0.0.7", "Linux") == []  # the hang was macOS-only
    assert "caps OpenShell at 0.0.25" in F.version_pair_problems("0.0.26", "0.0.7.1", "Linux")[0]
    assert "0.0.29" in F.version_pair_problems("0.0.26", "0.0.22", "Darwin")[0]
    assert F.version_pair_problems("0.0.32", "0.0.30", "Linux") == []
    future = F.version_pair_problems("0.0.37", "0.0.40", "Darwin")
    assert len(future) == 1 and "gateway start" in future[0]
    assert any("#3383" in p for p in F.version_pair_problems("0.0.36", "0.0.40", "Linux"))
    assert "not a version" in F.version_pair_problems("latest", "0.0.21", "Linux")[0]


CONSENT = {"accept_third_party": True, "nemoclaw_version": "0.0.21"}


@pytest.mark.oracle("upstream")
def test_onboard_problems():
    assert F.onboard_problems("ollama", {}, "Darwin", **CONSENT) == []
    assert F.onboard_problems("cloud", {"NVIDIA_API_KEY": True}, "Darwin", **CONSENT) == []
    missing = F.onboard_problems("cloud", {"NVIDIA_API_KEY": False}, "Darwin", **CONSENT)
    assert len(missing) == 1 and "nemoclaw_onboard_nvidia_api_key" in missing[0]
    assert "OPENAI_API_KEY" in F.onboard_problems("openai", {}, "Linux", **CONSENT)[0]
    assert F.onboard_problems("openai", {"OPENAI_API_KEY": True}, "Linux", **CONSENT) == []
    custom = F.onboard_problems("custom", {"COMPATIBLE_API_KEY": True}, "Linux", **CONSENT)
    assert len(custom) == 1 and "nemoclaw_onboard_endpoint_url" in custom[0]
    assert F.onboard_problems("custom", {"COMPATIBLE_API_KEY": True}, "Linux", endpoint_url="http://127.0.0.1:9/v1",
                              **CONSENT) == []
    assert "GPU" in " ".join(F.onboard_problems("nim", {}, "Darwin", experimental=True, **CONSENT))
    assert "experimental" in F.onboard_problems("vllm", {}, "Linux", **CONSENT)[0]
    assert "gemini" in F.onboard_problems("gemini", {}, "Linux", **CONSENT)[0]
    assert "'bogus' is not one of" in F.onboard_problems("bogus", {}, "Linux", **CONSENT)[0]
    # the presets v0.0.21 ships (nemoclaw-blueprint/policies/presets/*.yaml @db3453b5): no `docker`, but github etc.
    assert "['docker', 'pipy']" in F.onboard_problems("ollama", {}, "Linux", policy_presets=["pipy", "docker", "npm"], **CONSENT)[0]
    assert F.onboard_problems("ollama", {}, "Linux", policy_presets=["github", "local-inference", "brave"], **CONSENT) == []
    assert "non-empty" in F.onboard_problems("ollama", {}, "Linux", policy_mode="custom", **CONSENT)[0]
    assert "policy tier 'wide'" in F.onboard_problems("ollama", {}, "Linux", policy_tier="wide", **CONSENT)[0]
    assert "BOGUS_TOKEN" in F.onboard_problems("ollama", {"BOGUS_TOKEN": True}, "Linux", **CONSENT)[0]


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize(("version", "accepted", "refused"), [
    ("0.0.21", False, True),  # ensureUsageNoticeConsent exits 1 (src/lib/onboard.ts:5913-5920 @db3453b5)
    ("0.0.21", True, False),
    ("0.0.40", False, True),
    ("0.0.3", False, False),  # cut 2026-04-01, the day before the gate (#1290) was merged
])
def test_third_party_notice_consent(version, accepted, refused):
    problems = F.onboard_problems("ollama", {}, "Linux", nemoclaw_version=version, accept_third_party=accepted)
    assert bool(problems) is refused
    if refused:
        assert "nemoclaw_onboard_accept_third_party_software" in problems[0] and version in problems[0]


@pytest.mark.oracle("upstream")
def test_provider_names_are_v0021s():
    # src/lib/onboard.ts:160-234 REMOTE_PROVIDER_CONFIG and 4331-4490 @db3453b5
    assert FF.nemoclaw_openshell_provider("cloud") == FF.nemoclaw_openshell_provider("build") == "nvidia-prod"
    assert FF.nemoclaw_openshell_provider("ollama") == "ollama-local"
    assert FF.nemoclaw_openshell_provider("nim") == FF.nemoclaw_openshell_provider("vllm") == "vllm-local"
    assert (FF.nemoclaw_openshell_provider("openai"), FF.nemoclaw_openshell_provider("gemini")) == ("openai-api", "gemini-api")
    assert FF.nemoclaw_openshell_provider("nvidia-nim") == ""


@pytest.mark.oracle("upstream")
def test_filter_never_puts_a_secret_in_a_message():
    sentinel = "nvapi-SENTINEL-0123456789"
    problems = FF.nemoclaw_onboard_problems("cloud", {"NVIDIA_API_KEY": sentinel, "BAD_TOKEN": sentinel}, "Linux")
    assert problems and sentinel not in json.dumps(problems)
    # v0.0.21 refuses a key without the nvapi- prefix (src/lib/validation.ts:72-80 @db3453b5)
    wrong = "sk-SENTINEL-not-an-nvidia-key"
    problems = FF.nemoclaw_onboard_problems("cloud", {"NVIDIA_API_KEY": wrong}, "Linux", nemoclaw_version="0.0.21",
                                            accept_third_party=True)
    assert len(problems) == 1 and "nvapi-" in problems[0] and wrong not in json.dumps(problems)


@pytest.mark.oracle("upstream")
def test_mask_output_hides_secrets_and_the_dashboard_token():
    # v0.0.21's summary prints the OpenClaw gateway token in the dashboard URL (src/lib/onboard.ts:5806-5815)
    text = "key nvapi-SENTINEL-42\n  Dashboard: http://127.0.0.1:18789/#token=3f2a9c0d11\nAuthorization: Bearer abcdef123456\n"
    masked = F.mask_output(text, ["nvapi-SENTINEL-42", ""])
    assert "SENTINEL" not in masked and "3f2a9c0d11" not in masked and "abcdef123456" not in masked
    assert "#token=********" in masked


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize(("listing", "label"), [
    ("* Label: Command Line Tools for Xcode-16.3\n\tTitle: Command Line Tools for Xcode, Version: 16.3, Size: 1K, Recommended: YES,\n",
     "Command Line Tools for Xcode-16.3"),
    # Xcode 26: a space and a version range (microsoft/macos-cookbook#300)
    ("* Label: Command Line Tools for Xcode 26.0-26.0\n\tTitle: Command Line Tools for Xcode 26.0, Version: 26.0,\n",
     "Command Line Tools for Xcode 26.0-26.0"),
    ("* Label: Command Line Tools for Xcode-16.4\n* Label: Command Line Tools for Xcode 26.1-26.1\n"
     "* Label: Command Line Tools for Xcode-16.10\n", "Command Line Tools for Xcode 26.1-26.1"),
    ("* Label: Command Line Tools for Xcode-16.4\n* Label: Command Line Tools for Xcode-16.10\n", "Command Line Tools for Xcode-16.10"),
    ("* Label: macOS Tahoe 26.1-25B78\n", ""),
    ("No new software available.\n", ""),
])
def test_clt_label_takes_the_newest_of_either_format(listing, label):
    assert FF.clt_label(listing) == label


@pytest.mark.oracle("upstream")
def test_parsers():
    assert F.parse_sandbox_list(SANDBOX_LIST) == {"my-assistant": "Ready", "other": "Provisioning"}
    assert F.parse_sandbox_list("No sandboxes found.\n") == {}
    assert F.parse_inference(INFERENCE) == {"configured": True, "provider": "ollama-local", "model": "nemotron-3-nano:30b"}
    unset = "Gateway inference:\n\n  Not configured\n\nSystem inference:\n\n  Provider: nvidia-nim\n  Model: m\n"
    assert F.parse_inference(unset) == {"configured": False, "provider": None, "model": None}
    status = "Server Status\n\n  Gateway: nemoclaw\n  Server: https://127.0.0.1:8080\n  Status: \x1b[32mConnected\x1b[0m\n  Version: 0.0.26\n"
    assert F.gateway_connected(status)
    assert not F.gateway_connected(status.replace("Connected", "Disconnected"))
    assert not F.gateway_connected(status.replace("Connected", "Connected (HTTP)"))
    assert F.load_registry("not json") == {"sandboxes": {}, "defaultSandbox": None}
    assert F.load_registry('{"sandboxes": {"a": {"name": "a"}}, "defaultSandbox": "a"}')["sandboxes"]["a"]["name"] == "a"
    assert F.model_ids('{"object": "list", "data": [{"id": "nemotron-3-nano:30b"}, {"id": "x"}]}') == ["nemotron-3-nano:30b", "x"]
    assert F.model_ids("<html>") == [] and F.model_ids('{"data": "x"}') == []
    assert F.version_tuple("openshell 0.0.26") == (0, 0, 26) and F.version_tuple("nemoclaw v0.0.7.1") == (0, 0, 7, 1)
    assert FF.version_tuple_text("ollama version is 0.20.5") == "0.20.5" and FF.version_tuple_text("m-dev") == ""


@pytest.mark.oracle("self")
@pytest.mark.parametrize("fmt", [plistlib.FMT_XML, plistlib.FMT_BINARY])
def test_plist_decode(fmt):
    raw = plistlib.dumps({"CFBundleShortVersionString": "4.68.0"}, fmt=fmt)
    assert FF.plist_decode(base64.b64encode(raw).decode())["CFBundleShortVersionString"] == "4.68.0"
    with pytest.raises(Exception, match="not a property list"):
        FF.plist_decode(base64.b64encode(b"nope").decode())
