"""NemoClaw v0.0.13x on the OpenShell 0.0.116 stand-in host: roles/nemoclaw_onboard/tasks/current.yml (module
nemoclaw_current) reads the host probe, the registry and the onboarding events as JSON, onboards once (a real sandbox
container, a provider and an inference route in the gateway, the presets applied with `policy set --wait`), leaves a
matching sandbox alone, plans in check mode, and removes only its sandbox. The stand-in NemoClaw
(tests/standins/nemoclaw-repo-0.0.13x) checks Node.js >= 22.19 and the exact OpenShell pin like the real one; a host
whose Node is too old is refused from `nemoclaw host probe --json` before anything is created (check mode plans it
and warns)."""
from __future__ import annotations

import json

import _openshell_host_env as E
import pytest

pytestmark = [pytest.mark.skipif(not E.docker_available(), reason="needs a Docker engine"),
              pytest.mark.oracle("docker", "upstream")]

CURRENT = [{"name": "Onboard",
            "ansible.builtin.include_role": {"name": "agentsec.nemoclaw.nemoclaw_onboard", "tasks_from": "current"}}]


def onboard_vars(**extra):
    base = {"nemoclaw_target": "openshell_host", "nemoclaw_onboard_version": "0.0.132", "nemoclaw_onboard_sandbox_name": "assistant",
            "nemoclaw_onboard_provider": "ollama", "nemoclaw_onboard_model": "nemotron-3-nano:30b",
            "nemoclaw_onboard_policy_presets": ["pypi"], "nemoclaw_onboard_accept_third_party_software": True,
            "nemoclaw_onboard_from_image": E.IMAGE, "nemoclaw_onboard_nemoclaw_bin": "/home/studio/.local/bin/nemoclaw",
            "nemoclaw_onboard_path": ["/opt/standins/node/bin", "/usr/bin", "/bin"]}
    base.update(extra)
    return base


@pytest.fixture(scope="module")
def host():
    with E.stand_in("linux", versions=("0.0.116",), world=False) as h:
        E.quick_gateway(h, "0.0.116")
        h.user("sh", "-c", "mkdir -p ~/.local/bin && ln -s /opt/standins/nemoclaw-repo-0.0.13x/bin/nemoclaw ~/.local/bin/nemoclaw")
        yield h


def test_onboard_idempotent_check_absent(host, tmp_path):
    rc, out = E.playbook(tmp_path, host, CURRENT, onboard_vars())
    assert rc == 0, out[-4000:]
    listing = json.loads(host.user("/home/studio/.local/bin/nemoclaw", "list", "--json").stdout)
    entry = listing["sandboxes"][0]
    expected = ("assistant", "ollama-local", "nemotron-3-nano:30b", ["pypi"])
    assert (entry["name"], entry["provider"], entry["model"], entry["policies"]) == expected
    assert json.loads(host.openshell("sandbox", "get", "assistant", "--output", "json").stdout)["phase"] == "Ready"
    policy = json.loads(host.openshell("policy", "get", "assistant", "--full", "--output", "json").stdout)["policy"]
    assert "pypi" in policy["network_policies"] and "nvidia" in policy["network_policies"]  # blueprint + preset
    assert "Model: nemotron-3-nano:30b" in host.openshell("inference", "get").stdout
    consent = host.user("cat", "/home/studio/.nemoclaw/usage-notice.json").stdout
    assert json.loads(consent)["accepted"] is True

    rc, out = E.playbook(tmp_path, host, CURRENT, onboard_vars())
    assert rc == 0 and E.changed_tasks(out) == [], E.changed_tasks(out)
    rc, out = E.playbook(tmp_path, host, CURRENT, onboard_vars(nemoclaw_onboard_policy_presets=["pypi", "npm"]), check=True)
    assert rc == 0 and len(E.changed_tasks(out)) == 1 and "recreate" in out, out[-2000:]
    assert json.loads(host.user("/home/studio/.local/bin/nemoclaw", "list", "--json").stdout)["sandboxes"][0]["policies"] == ["pypi"]

    rc, out = E.playbook(tmp_path, host, CURRENT, onboard_vars(nemoclaw_onboard_state="absent"))
    assert rc == 0, out[-3000:]
    assert json.loads(host.user("/home/studio/.local/bin/nemoclaw", "list", "--json").stdout)["sandboxes"] == []
    assert json.loads(host.openshell("sandbox", "list", "--output", "json").stdout) == []


def test_old_node_refused_by_the_host_probe(host, tmp_path):
    rc, out = E.playbook(tmp_path, host, CURRENT, onboard_vars(nemoclaw_onboard_sandbox_name="second"),
                         environment={"AGENTSEC_STANDIN_NODE_VERSION": "v22.16.0"})
    assert rc != 0 and "incompatible" in out and "Node.js >= 22.19.0 required (found v22.16.0)" in out, out[-3000:]
    assert json.loads(host.openshell("sandbox", "list", "--output", "json").stdout) == []
    # check mode cannot tell a host the earlier roles only simulated from one that stays unsupported: it plans the
    # onboarding and warns with the probe's words (site.yml --check on a fresh host), the real run above refuses it
    rc, out = E.playbook(tmp_path, host, CURRENT, onboard_vars(nemoclaw_onboard_sandbox_name="second"), check=True,
                         environment={"AGENTSEC_STANDIN_NODE_VERSION": "v22.16.0"})
    assert rc == 0 and "incompatible" in out and "a real run refuses it" in out and len(E.changed_tasks(out)) == 1, out[-3000:]
    assert json.loads(host.openshell("sandbox", "list", "--output", "json").stdout) == []


@pytest.mark.parametrize(("extra", "fragment"), [
    ({"nemoclaw_onboard_version": "0.0.21"}, "must be v0.0.130-v0.0.132"),
    ({"nemoclaw_onboard_accept_third_party_software": False}, "accept_third_party_software=true"),
    ({"nemoclaw_target": "openshell_0_1"}, "on target openshell_host"),
])
def test_refused_inputs(host, tmp_path, extra, fragment):
    rc, out = E.playbook(tmp_path, host, CURRENT, onboard_vars(**extra))
    assert rc != 0 and fragment in out and E.changed_tasks(out) == [], out[-2000:]
