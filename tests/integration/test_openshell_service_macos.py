"""Role openshell_service on a stand-in Mac Studio (macOS facts from the fleet_macos test module; Homebrew with local
taps and `brew services`, launchd and the real Docker engine behind Docker Desktop's socket path): the release
formula verified and staged into the local tap nvidia/openshell, installed, the gateway started by brew services
under launchd's label (homebrew.mxcl.openshell, or sh.brew.openshell from Homebrew 6 on - NemoClaw #11111), registered
and healthy; idempotent, check-mode safe, and state absent removes the formula and the tap it created.
A tampered formula (it no longer matches the release checksum file) is refused before anything is installed."""
from __future__ import annotations

import json

import _openshell_host_env as E
import pytest

pytestmark = [pytest.mark.skipif(not E.docker_available(), reason="needs a Docker engine"),
              pytest.mark.oracle("docker", "ansible-core", "upstream")]

ROLE = [{"name": "OpenShell host service", "ansible.builtin.include_role": {"name": "agentsec.nemoclaw.openshell_service"}}]


@pytest.mark.parametrize(("version", "brew", "label"), [
    ("0.0.116", "4.6.0", "homebrew.mxcl.openshell"),
    ("0.1.5", "6.0.0", "sh.brew.openshell"),
])
def test_macos_homebrew_flow(tmp_path, version, brew, label):
    with E.stand_in("mac", versions=(version,), world=False) as host:
        env = {"AGENTSEC_STANDIN_BREW_VERSION": brew}
        role_vars = host.gateway_vars(version)
        rc, out = E.playbook(tmp_path, host, ROLE, role_vars, macos=True, environment=env)
        assert rc == 0, out[-4000:]
        staged = host.root("cat", "/opt/homebrew/Library/Taps/nvidia/homebrew-openshell/Formula/openshell.rb").stdout
        assert "entitlements.atomic_write <<~XML" in staged and "entitlements.write <<~XML" not in staged
        assert host.root("test", "-f", f"/home/studio/Library/LaunchAgents/{label}.plist", check=False).returncode == 0
        printed = host.user("launchctl", "print", f"gui/1001/{label}", check=False)
        assert printed.returncode == 0 and "state = running" in printed.stdout, printed.stdout + printed.stderr
        assert f"Version: {version}" in host.openshell("status").stdout
        toml = host.user("cat", "/home/studio/.config/openshell/gateway.toml").stdout
        assert ("version = 2" in toml and 'compute_driver = "docker"' in toml) if version.startswith("0.1") else \
            ("version = 1" in toml and 'compute_drivers = ["docker"]' in toml)
        envfile = host.user("cat", "/home/studio/.config/openshell/gateway.env").stdout
        assert "DOCKER_HOST=unix:///home/studio/.docker/run/docker.sock" in envfile
        assert "OPENSHELL_TELEMETRY_ENABLED=false" in envfile

        rc, out = E.playbook(tmp_path, host, ROLE, role_vars, macos=True, environment=env)
        assert rc == 0 and E.changed_tasks(out) == [], E.changed_tasks(out) or out[-3000:]
        rc, out = E.playbook(tmp_path, host, ROLE, role_vars, macos=True, environment=env, check=True)
        assert rc == 0 and E.changed_tasks(out) == [], E.changed_tasks(out) or out[-3000:]

        rc, out = E.playbook(tmp_path, host, ROLE, {**role_vars, "openshell_service_state": "absent"}, macos=True,
                             environment=env)
        assert rc == 0, out[-3000:]
        left = host.root("sh", "-c", "ls /opt/homebrew/bin/openshell /opt/homebrew/Cellar/openshell "
                         "/opt/homebrew/Library/Taps/nvidia/homebrew-openshell "
                         f"/home/studio/Library/LaunchAgents/{label}.plist 2>&1", check=False).stdout
        assert left.count("No such file") == 4, left


def test_macos_tampered_formula_refused(tmp_path):
    with E.stand_in("mac", versions=("0.0.116",), world=False) as host:
        formula = host.release / "v0.0.116" / "openshell.rb"
        formula.write_text(formula.read_text().replace('desc "', 'desc "tampered - '))
        rc, out = E.playbook(tmp_path, host, ROLE, host.gateway_vars("0.0.116"), macos=True)
        assert rc != 0 and "checksum" in out.lower(), out[-3000:]
        left = host.root("sh", "-c", "ls /opt/homebrew/Cellar /opt/homebrew/Library/Taps", check=False).stdout
        assert "openshell" not in left and "nvidia" not in left, left


@pytest.mark.parametrize(("facts", "extra", "fragments"), [
    ({"machine": "x86_64"}, {}, ["Intel Mac is refused"]),
    ({}, {"openshell_service_nemoclaw_version": "v0.0.21"}, ["NemoClaw v0.0.21", "needs OpenShell 0.0.26 (target openshell_k3s)"]),
    ({}, {"openshell_service_compute_driver": "podman"}, ["compute driver podman"]),
    ({}, {"openshell_service_version": "0.0.111"}, ["0.0.111 is not on line openshell_host"]),
    ({}, {"nemoclaw_target": "openshell_0_1", "openshell_service_version": "0.1.5",
          "openshell_service_nemoclaw_version": "0.0.132"}, ["no NemoClaw release supports OpenShell 0.1.x"]),
    ({}, {"nemoclaw_target": "openshell_k3s"}, ["installed by openshell_cluster"]),
])
def test_refusals_before_any_change(tmp_path, facts, extra, fragments):
    """Each refusal is one line naming what and what to do, and nothing changed (validate runs on this machine)."""
    import os
    import subprocess

    play = [{"name": "Case", "hosts": "localhost", "connection": "local", "gather_facts": True, "tasks": [
        {"name": "Play a Mac", "macsim_facts": facts},
        {"name": "Validate",
         "ansible.builtin.include_role": {"name": "agentsec.nemoclaw.openshell_service", "tasks_from": "validate"}}]}]
    book = tmp_path / "case.yml"
    book.write_text(json.dumps(play))
    base = {"nemoclaw_target": "openshell_host", "openshell_service_docker_host": "unix:///var/run/docker.sock"}
    env = dict(os.environ, ANSIBLE_LIBRARY=str(E.MACSIM), ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(tmp_path / "t"))
    run = subprocess.run(["ansible-playbook", str(book), "-e", json.dumps({**base, **extra})], env=env, capture_output=True,
                         text=True, cwd=tmp_path, check=False)
    out = run.stdout + run.stderr
    assert run.returncode != 0 and "changed=0" in out, out[-3000:]
    for fragment in fragments:
        assert fragment in out, (fragment, out[-3000:])
