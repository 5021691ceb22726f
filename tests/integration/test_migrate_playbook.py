"""playbooks/migrate.yml on stand-in hosts: the old pair is played by the collection's OpenShell 0.0.26 CLI stand-in
(tests/standins/bin/openshell: `gateway start|destroy`, `sandbox delete --all`) with a NemoClaw v0.0.21 registry; the
new pair by the 0.0.116 packages and the NemoClaw v0.0.13x stand-in. Success: the canary is backed up, cleaned up with
the old CLI, moved to the new line, re-onboarded, hardened and verified. Failure on the canary (the new release cannot
be fetched after the old gateway was destroyed): the old gateway comes back with the old CLI, the registry is put back,
the run says the canary is on the old line, and the second host is never touched."""
from __future__ import annotations

import json
import os
import subprocess

import _openshell_host_env as E
import pytest

pytestmark = [pytest.mark.skipif(not E.docker_available(), reason="needs a Docker engine"),
              pytest.mark.oracle("docker", "upstream")]

MIGRATE = E.ROOT / "playbooks/migrate.yml"
OLD_REGISTRY = {"sandboxes": {"my-assistant": {"name": "my-assistant", "model": "nemotron-3-nano:30b",
                                               "provider": "ollama-local", "policies": ["pypi"]}},
                "defaultSandbox": "my-assistant"}


def old_line(host: E.Host) -> None:
    """OpenShell 0.0.26 (CLI stand-in) with its gateway `nemoclaw` and one sandbox, NemoClaw v0.0.21's registry, and
    the NemoClaw v0.0.13x stand-in installed for after the migration."""
    host.user("sh", "-c", "mkdir -p ~/.local/bin ~/.nemoclaw && ln -s /opt/standins/bin/openshell ~/.local/bin/openshell && "
              "ln -s /opt/standins/nemoclaw-repo-0.0.13x/bin/nemoclaw ~/.local/bin/nemoclaw-0.0.13x")
    host.user("sh", "-c", f"printf '%s' '{json.dumps(OLD_REGISTRY)}' > ~/.nemoclaw/sandboxes.json && chmod 600 ~/.nemoclaw/sandboxes.json")
    host.user("/home/studio/.local/bin/openshell", "gateway", "start", "--name", "nemoclaw")
    host.user("/home/studio/.local/bin/openshell", "sandbox", "create", "--name", "my-assistant")


def run_migrate(tmp_path, hosts, extra):
    inv = {"all": {"children": {"nemoclaw_hosts": {"hosts": {h.name: {
        "ansible_connection": "community.docker.docker", "ansible_host": h.name, "ansible_user": "studio",
        "ansible_python_interpreter": "/usr/bin/python3"} for h in hosts}}}}}
    (tmp_path / "inventory.json").write_text(json.dumps(inv))
    host = hosts[0]
    role_vars = host.gateway_vars("0.0.116")
    base = {key: value for key, value in role_vars.items() if key.startswith("openshell_service_")}
    base.update({"migrate_nemoclaw_from_image": E.IMAGE, "migrate_backup_dir": str(tmp_path / "backup"),
                 "nemoclaw_onboard_nemoclaw_bin": "/home/studio/.local/bin/nemoclaw-0.0.13x",
                 "nemoclaw_onboard_path": ["/opt/standins/node/bin", "/usr/bin", "/bin"],
                 "nemoclaw_onboard_sandbox_name": "my-assistant", "nemoclaw_onboard_provider": "ollama",
                 "nemoclaw_onboard_model": "nemotron-3-nano:30b", "nemoclaw_onboard_policy_presets": ["pypi"],
                 "verify_report_dir": str(tmp_path / "reports")})
    base.update(extra)
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(tmp_path / "t"))
    proc = subprocess.run(["ansible-playbook", "-i", str(tmp_path / "inventory.json"), str(MIGRATE), "-e", json.dumps(base)],
                          env=env, capture_output=True, text=True, cwd=tmp_path, timeout=900, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_migrate_the_canary(tmp_path):
    with E.stand_in("linux", versions=("0.0.116",), world=False) as host:
        old_line(host)
        rc, out = run_migrate(tmp_path, [host], {})
        assert rc == 0, out[-5000:]
        assert "migrated to OpenShell 0.0.116 (line new)" in out
        assert json.loads((tmp_path / "backup" / host.name / "sandboxes.json").read_text()) == OLD_REGISTRY
        old = host.user("/home/studio/.local/bin/openshell", "status", check=False).stdout
        assert "No gateway configured" in old or "Disconnected" in old  # the old gateway is gone
        assert "Version: 0.0.116" in host.openshell("status").stdout
        listing = json.loads(host.user("/home/studio/.local/bin/nemoclaw-0.0.13x", "list", "--json").stdout)
        assert [s["name"] for s in listing["sandboxes"]] == ["my-assistant"]
        policy = json.loads(host.openshell("policy", "get", "my-assistant", "--full", "--output", "json").stdout)["policy"]
        assert {e["enforcement"] for r in policy["network_policies"].values() for e in r["endpoints"]
                if e.get("protocol") == "rest"} == {"enforce"}  # hardened through policy set
        report = json.loads((tmp_path / "reports" / "verify.json").read_text())
        assert report, "the verify role wrote no report"


def test_a_failed_canary_stops_the_rollout_on_the_old_line(tmp_path):
    with E.stand_in("linux", versions=("0.0.116",), world=False) as canary, \
            E.stand_in("linux", versions=("0.0.116",), world=False) as second:
        old_line(canary)
        old_line(second)
        rc, out = run_migrate(tmp_path, [canary, second], {
            "openshell_service_release_url": "http://127.0.0.1:8765/openshell/v0.0.999", "migrate_restore_onboard": False})
        assert rc != 0, out[-3000:]
        assert f"{canary.name}: migration failed at" in out and "left on line old (restored)" in out, out[-4000:]
        assert "Connected" in canary.user("/home/studio/.local/bin/openshell", "status").stdout  # the old gateway again
        restored = json.loads(canary.user("cat", "/home/studio/.nemoclaw/sandboxes.json").stdout)
        assert restored == OLD_REGISTRY
        # the second host was checked but never changed: its old gateway and sandbox are still there
        assert "my-assistant" in second.user("/home/studio/.local/bin/openshell", "sandbox", "list").stdout
        assert second.root("test", "-e", "/usr/bin/openshell", check=False).returncode != 0
