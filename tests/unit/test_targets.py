"""The target contract: every target file resolves, per platform, with its placeholders; roles derive from it; the
pinned CRD of the 0.0.26 line is the upstream one."""
from __future__ import annotations

import os
import pathlib
import re

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
    lab = T.resolve(T.load("lab"), "Linux", "", "", {"nemoclaw_lab_dir": "/var/lib/agentsec-x"})
    assert lab["openshell"]["environment"] == {"DOCKER_HOST": "unix:///var/run/docker.sock", "XDG_CONFIG_HOME": "/var/lib/agentsec-x/config"}
    assert lab["cluster"]["crd"] == mac["cluster"]["crd"]  # extends: the lab is the same interface
    # {docker_socket}: the CLI's DOCKER_HOST is the target's one docker.socket, per platform
    assert mac["openshell"]["environment"] == {"DOCKER_HOST": "unix:///Users/agentsec/.docker/run/docker.sock"}
    assert linux["openshell"]["environment"] == {"DOCKER_HOST": linux["docker"]["socket"]}


@pytest.mark.oracle("self")
def test_docker_socket_is_written_once_per_target():
    for name in T.available():
        with open(f"{T.TARGETS_DIR}/{name}.yml", encoding="utf-8") as fh:
            values = [line for line in fh if "docker.sock" in line and not line.lstrip().startswith("#")]
        assert len(values) <= 2, (name, values)  # the Darwin and Linux values of docker.socket, nothing else
    bad = {"name": "x", "openshell": {"bin": "/o", "gateway": "g", "environment": {"DOCKER_HOST": "{docker_socket}"}}}
    with pytest.raises(AnsibleLookupError, match="has no docker.socket"):
        T.resolve(bad, "Linux", "", "")
    with pytest.raises(AnsibleLookupError, match="resolved from"):
        T.resolve({**bad, "docker": {"socket": "{docker_socket}"}}, "Linux", "", "")


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


def _target(**extra):
    """A minimal contract as load() returns it, with the keys resolve() reads."""
    return {"name": "t", "openshell": {"bin": "/usr/bin/openshell", "gateway": "g"}, **extra}


@pytest.mark.oracle("self")
def test_a_declared_placeholder_comes_from_its_variable_else_its_default():
    spec = {"data": {"variable": "my_data_dir", "default": "/srv/data"}}
    contract = _target(placeholders=spec, where={"state": "{data}/state", "cmd": ["{openshell}", "{data}", "{sandbox}"]})
    assert T.resolve(contract, "Linux", "", "", {"my_data_dir": "/x"})["where"] == {"state": "/x/state",
                                                                                    "cmd": ["/usr/bin/openshell", "/x", "{sandbox}"]}
    assert T.resolve(contract, "Linux", "", "", {})["where"]["state"] == "/srv/data/state"
    assert T.resolve(contract, "Linux", "", "", {"my_data_dir": ""})["where"]["state"] == "/srv/data/state"  # empty: the default
    assert T.resolve(contract, "Linux", "", "", {"my_data_dir": 8080})["where"]["state"] == "8080/state"
    per_platform = _target(placeholders={"data": {"variable": "v", "default": {"Darwin": "/mac", "Linux": "/lin"}}}, d="{data}")
    assert T.resolve(per_platform, "Darwin", "", "")["d"] == "/mac"
    assert T.needs_facts(per_platform, None, "/h") is True


@pytest.mark.oracle("self")
def test_the_lab_targets_directory_is_its_declared_placeholder():
    """nemoclaw_lab_dir, else /var/lib/agentsec-lab: what lab_state_dir and the lab's paths were before the target
    declared {lab_dir} (the lookup once knew it by name)."""
    lab = T.resolve(T.load("lab"), "Linux", "", "")
    assert lab["lab"] == {"default_dir": "/var/lib/agentsec-lab", "state_dir": "/var/lib/agentsec-lab"}
    assert lab["openshell"]["bin"] == "/var/lib/agentsec-lab/bin/openshell"
    assert lab["hardening"]["state_dir"] == "/var/lib/agentsec-lab/hardening"
    assert lab["sandbox"]["exec"][0] == "/var/lib/agentsec-lab/bin/openshell"  # {openshell} is the resolved CLI
    mine = T.resolve(T.load("lab"), "Darwin", "", "", {"nemoclaw_lab_dir": "/tmp/lab2"})
    assert mine["lab"] == {"default_dir": "/var/lib/agentsec-lab", "state_dir": "/tmp/lab2"}
    assert mine["openshell"]["environment"]["XDG_CONFIG_HOME"] == "/tmp/lab2/config"
    assert mine["docker"]["socket"] == "unix:///var/run/docker.sock"  # lab's plain value replaces the per-platform one
    assert T.load("openshell_k3s").get("placeholders") is None  # extends: the child's declaration, the parent has none


@pytest.mark.oracle("self")
def test_a_declared_placeholder_without_value_or_default_is_an_error_naming_it():
    contract = _target(placeholders={"data": {"variable": "my_data_dir"}}, where="{data}/state")
    for variables in (None, {}, {"my_data_dir": ""}, {"my_data_dir": None}):
        with pytest.raises(AnsibleLookupError, match=r"target 't' needs the placeholder \{data\} .*where.*: set my_data_dir"):
            T.resolve(contract, "Linux", "", "", variables)
    assert T.resolve(_target(placeholders={"data": {"variable": "my_data_dir"}}), "Linux", "", "")["name"] == "t"  # unused: fine
    assert T.resolve(contract, "Linux", "", "", {"my_data_dir": "/d"})["where"] == "/d/state"


@pytest.mark.oracle("self")
@pytest.mark.parametrize(("extra", "message"), [
    ({"where": "{dat}/x"}, r"uses the placeholder \{dat\} in where .*does not declare"),
    ({"where": ["a", {"b": "{lab_dir}"}]}, r"placeholder \{lab_dir\} in where\[1\]\.b"),
    ({"placeholders": {"Data": {"variable": "v"}}}, "lower-case identifier"),
    ({"placeholders": {"home": {"variable": "v"}}}, r"\{home\} is the lookup's own placeholder"),
    ({"placeholders": {"sandbox": {"variable": "v"}}}, r"\{sandbox\} is the lookup's own placeholder"),
    ({"placeholders": {"d": "/x"}}, "declare it as"),
    ({"placeholders": {"d": {"default": "/x"}}}, "declare it as"),
    ({"placeholders": {"d": {"variable": "v", "value": "/x"}}}, "declare it as"),
    ({"placeholders": {"d": {"variable": "my-var"}}}, "variable must be an inventory variable's name"),
    ({"placeholders": {"d": {"variable": ["v"]}}}, "variable must be an inventory variable's name"),
    ({"placeholders": {"d": {"variable": "v", "default": ""}}}, "default must be a non-empty string"),
    ({"placeholders": {"d": {"variable": "v", "default": 3}}}, "default must be a non-empty string"),
    ({"placeholders": {"d": {"variable": "v", "default": "{home}/d"}}}, "contains a placeholder"),
    ({"placeholders": [{"d": {"variable": "v"}}]}, "placeholders must be a mapping"),
])
def test_placeholder_declarations_and_uses_are_checked(extra, message):
    with pytest.raises(AnsibleLookupError, match=message):
        T.resolve(_target(**extra), "Linux", "/h", "")


@pytest.mark.oracle("self")
def test_placeholder_values_are_used_as_they_are():
    contract = _target(placeholders={"data": {"variable": "my_data_dir", "default": "/d"}}, where="{data}")
    with pytest.raises(AnsibleLookupError, match=r"my_data_dir='\{home\}/d' \(placeholder \{data\}\) contains the placeholder \{home\}"):
        T.resolve(contract, "Linux", "/h", "", {"my_data_dir": "{home}/d"})
    with pytest.raises(AnsibleLookupError, match="must be a string, not list"):
        T.resolve(contract, "Linux", "/h", "", {"my_data_dir": ["/d"]})
    shell = _target(where="${HOME}/x {{ jinja }}")  # neither is a placeholder of the lookup
    assert T.resolve(shell, "Linux", "/h", "")["where"] == "${HOME}/x {{ jinja }}"


@pytest.mark.oracle("self")
def test_the_lookup_knows_no_target_by_name():
    """Production files hold no lab-only path, label or variable: a target's own placeholders are declared in its file."""
    source = (ROOT / "plugins" / "lookup" / "target.py").read_text()
    for word in ("nemoclaw_lab_dir", "lab_dir", "default_dir", "agentsec-lab", "state_dir"):
        assert word not in source, f"plugins/lookup/target.py names {word!r}; declare it under the target's placeholders"
    assert not re.search(r"\blab\b", source), "plugins/lookup/target.py names the lab target"
    assert "placeholders" in yaml.safe_load(T.DOCUMENTATION)["description"][2]  # ansible-doc reads it; the key is documented
