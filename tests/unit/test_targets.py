"""The target contract: every target file resolves, per platform, with its placeholders; roles derive from it; the
pinned CRD of the 0.0.26 line is the upstream one."""
from __future__ import annotations

import os
import pathlib

import pytest
import yaml
from ansible.errors import AnsibleLookupError

from ansible_collections.agentsec.nemoclaw.plugins.lookup import target as T

ROOT = pathlib.Path(__file__).resolve().parents[2]
UPSTREAM = pathlib.Path(os.environ.get("AGENTSEC_UPSTREAM_DIR") or ROOT.parent / "shared" / "upstream")
REQUIRED = ("name", "line", "openshell.bin", "openshell.gateway", "openshell.environment", "sandbox.discover", "sandbox.exec",
            "sandbox.python", "sandbox.proxy", "sandbox.ca_path", "hardening.backend", "hardening.state_dir", "layers")


@pytest.mark.oracle("self")
@pytest.mark.parametrize("name", T.available())
@pytest.mark.parametrize("platform", ["Darwin", "Linux"])
def test_every_target_resolves_every_required_key(name, platform):
    contract = T.resolve(T.load(name), platform, "/Users/agentsec", "")
    for key in REQUIRED:
        T.dig(contract, key)
    assert "{" not in yaml.safe_dump(contract).replace("{}", "").replace("{sandbox}", ""), "a placeholder was left unresolved"
    assert set(contract["layers"]) == {"L1", "L2", "L3", "L4", "L5", "L6"}
    assert any("{sandbox}" in part for part in contract["sandbox"]["exec"])


@pytest.mark.oracle("self")
def test_platform_values_and_placeholders():
    mac = T.resolve(T.load("openshell_k3s"), "Darwin", "/Users/agentsec", "")
    linux = T.resolve(T.load("openshell_k3s"), "Linux", "/home/agent", "nemoclaw")
    assert mac["docker"]["socket"] == "unix:///Users/agentsec/.docker/run/docker.sock"
    assert linux["docker"]["socket"] == "unix:///var/run/docker.sock"
    assert linux["cluster"]["container"] == "openshell-cluster-nemoclaw"
    assert T.resolve(T.load("lab"), "Linux", "", "other")["openshell"]["gateway"] == "other"
    assert linux["sandbox"]["exec"][0] == "/home/agent/.local/bin/openshell"
    lab = T.resolve(T.load("lab"), "Linux", "", "", "/var/lib/agentsec-x")
    assert lab["openshell"]["environment"] == {"DOCKER_HOST": "unix:///var/run/docker.sock", "XDG_CONFIG_HOME": "/var/lib/agentsec-x/config"}
    assert lab["cluster"]["crd"] == mac["cluster"]["crd"]  # extends: the lab is the same interface


@pytest.mark.oracle("self")
def test_bad_names_and_missing_facts_are_refused():
    with pytest.raises(AnsibleLookupError, match="nemoclaw_target is not set"):
        T.load("")
    with pytest.raises(AnsibleLookupError, match="not a known target; choose one of"):
        T.load("openshell_k8s")
    with pytest.raises(AnsibleLookupError, match="gather facts"):
        T.resolve(T.load("openshell_k3s"), None, "/Users/x", "")
    with pytest.raises(AnsibleLookupError, match="nemoclaw_user_home"):
        T.resolve(T.load("openshell_k3s"), "Darwin", "", "")


@pytest.mark.oracle("self")
@pytest.mark.parametrize("name", T.available())
@pytest.mark.parametrize(("platform", "home"), [(None, ""), (None, "/Users/x"), ("Darwin", ""), ("Linux", "/home/x"),
                                                ("Darwin", "/Users/x")])
def test_needs_facts_says_exactly_when_resolving_would_fail_without_them(name, platform, home):
    # verify.yml gathers the minimum of facts only when this says so (the lab resolves without any); the referee is
    # resolve() itself: it raises for a missing platform or home exactly when needs_facts is true
    try:
        T.resolve(T.load(name), platform, home, "")
        fails = False
    except AnsibleLookupError as exc:
        assert "gather facts" in str(exc) or "nemoclaw_user_home" in str(exc), exc
        fails = True
    assert T.needs_facts(T.load(name), platform, home) is fails
    if platform and home:
        assert fails is False


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize("name", ["openshell_k3s", "lab"])
def test_the_pinned_crd_is_openshell_v0026s(name):
    crd = yaml.safe_load((UPSTREAM / "openshell-v0.0.26" / "sandboxes.agents.x-k8s.io.crd.yaml").read_text())
    pinned = T.resolve(T.load(name), "Linux", "/h", "")["cluster"]["crd"]
    assert pinned["name"] == crd["metadata"]["name"]
    assert pinned["group"] == crd["spec"]["group"]
    assert pinned["version"] in [v["name"] for v in crd["spec"]["versions"] if v["served"]]
    assert pinned["kind"] == crd["spec"]["names"]["kind"]


@pytest.mark.oracle("self")
def test_roles_take_target_facts_from_the_lookup_only():
    """One owner per concept: no role default spells a CLI path, Docker socket or gateway name of its own."""
    for defaults in [*ROOT.glob("roles/*/defaults/main.yml"), *ROOT.glob("roles/*/vars/*.yml")]:
        text = "\n".join(line.split("#", 1)[0] for line in defaults.read_text().splitlines())
        for literal in (".local/bin/openshell", ".docker/run/docker.sock", "openshell-cluster-{{"):
            assert literal not in text, f"{defaults.relative_to(ROOT)} hard-codes {literal!r}; derive it from the target"
