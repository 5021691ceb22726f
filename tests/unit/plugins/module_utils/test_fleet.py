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
    "\x1b[36;1mSystem inference:\x1b[0m\n\n  \x1b[2mProvider:\x1b[0m nvidia-nim\n  \x1b[2mModel:\x1b[0m other\n"
    "  \x1b[2mVersion:\x1b[0m 1\n"
)


@pytest.mark.parametrize("name", ["my-assistant", "a", "agent-01", "x" * 63])
def test_good_sandbox_names(name):
    assert F.sandbox_name_problems(name) == []


@pytest.mark.parametrize(("name", "fragment"), [
    ("My-Assistant", "upper-case"),
    ("-agent", "RFC 1123"),
    ("agent-", "RFC 1123"),
    ("agent_1", "RFC 1123"),
    ("x" * 64, "longer than 63"),
    ("status", "nemoclaw command"),
    ("", "empty"),
])
def test_bad_sandbox_names_name_the_value(name, fragment):
    problems = F.sandbox_name_problems(name)
    assert problems and any(fragment in p for p in problems)
    if name:
        assert all(name in p for p in problems)


def test_version_pairs():
    assert F.version_pair_problems("0.0.26", "0.0.21", "Darwin") == []
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


def test_onboard_problems():
    assert F.onboard_problems("ollama", {}, "Darwin") == []
    assert F.onboard_problems("cloud", {"NVIDIA_API_KEY": True}, "Darwin") == []
    missing = F.onboard_problems("cloud", {"NVIDIA_API_KEY": False}, "Darwin")
    assert len(missing) == 1 and "nemoclaw_onboard_nvidia_api_key" in missing[0]
    assert "GPU" in " ".join(F.onboard_problems("nim", {}, "Darwin", experimental=True))
    assert "experimental" in F.onboard_problems("vllm", {}, "Linux")[0]
    assert "gemini" in F.onboard_problems("gemini", {}, "Linux")[0]
    assert "['pipy']" in F.onboard_problems("ollama", {}, "Linux", policy_presets=["pipy", "npm"])[0]
    assert "non-empty" in F.onboard_problems("ollama", {}, "Linux", policy_mode="custom")[0]
    assert "OPENAI_API_KEY" in F.onboard_problems("ollama", {"OPENAI_API_KEY": True}, "Linux")[0]
    assert "third-party" in F.onboard_problems("ollama", {}, "Linux", nemoclaw_version="0.0.40")[0]
    assert F.onboard_problems("ollama", {}, "Linux", nemoclaw_version="0.0.40", accept_third_party=True) == []


def test_filter_never_puts_a_secret_in_a_message():
    sentinel = "nvapi-SENTINEL-0123456789"
    problems = FF.nemoclaw_onboard_problems("cloud", {"NVIDIA_API_KEY": sentinel, "BAD_TOKEN": sentinel}, "Linux")
    assert problems and sentinel not in json.dumps(problems)


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


@pytest.mark.parametrize("fmt", [plistlib.FMT_XML, plistlib.FMT_BINARY])
def test_plist_decode(fmt):
    raw = plistlib.dumps({"CFBundleShortVersionString": "4.68.0"}, fmt=fmt)
    assert FF.plist_decode(base64.b64encode(raw).decode())["CFBundleShortVersionString"] == "4.68.0"
    with pytest.raises(Exception, match="not a property list"):
        FF.plist_decode(base64.b64encode(b"nope").decode())
