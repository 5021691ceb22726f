"""The Debian host after check, converge, idempotence and the side effect (pod re-created behind our back, check mode
on the converged host, preflight in the inner Docker, Ollama stopped and the sandbox deleted, both repaired by
site.yml, a second sandbox kept hardened when the first was uninstalled, the last uninstall with the gateway), the
verification reports of every phase, and the stand-ins' call history."""
from __future__ import annotations

import json
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "shared"))
import fleet_reports  # noqa: E402  (molecule/shared/fleet_reports.py)

HOME = "/home/agent"
STATE = "/var/lib/agentsec-standins"


@pytest.fixture(scope="module")
def calls(host):
    return [json.loads(line) for line in host.check_output(f"cat {STATE}/calls.jsonl").splitlines() if line.strip()]


def _find(calls, *words):
    return [c for c in calls if all(w in [c["tool"], *c["argv"]] for w in words)]


def test_docker_engine_installed_running_and_usable_by_the_user(host):
    assert host.package("docker.io").is_installed
    docker = host.service("docker")
    assert docker.is_running and docker.is_enabled
    assert "docker" in host.user("agent").groups
    assert host.run("docker info --format '{{.ServerVersion}}'").rc == 0  # as agent, no sudo
    # the preflight's kernel probe ran in a container of this engine (side effect)
    assert "debian" in host.check_output("docker images --format '{{.Repository}}:{{.Tag}}'")


def test_nodejs_from_the_checksum_verified_tarball(host):
    assert host.check_output("/usr/local/bin/node --version") == "v22.22.0"
    assert host.file("/usr/local/bin/node").linked_to == "/usr/local/lib/nodejs/node-v22.22.0-linux-x64/bin/node"
    assert host.check_output("/usr/local/bin/npm --version").startswith("10.")
    assert not host.file("/tmp/node-v22.22.0-linux-x64.tar.xz").exists


def test_ollama_under_systemd_repaired_after_drift(host, calls):
    svc = host.service("ollama")
    assert svc.is_running and svc.is_enabled
    assert svc.systemd_properties["User"] == "ollama" and svc.systemd_properties["NoNewPrivileges"] == "yes"
    assert host.socket("tcp://0.0.0.0:11434").is_listening
    assert "nemotron-3-nano:30b" in host.check_output("OLLAMA_HOST=127.0.0.1:11434 /usr/local/bin/ollama list")
    assert len(_find(calls, "ollama", "pull")) == 1  # pulled once over converge, idempotence and the side effect


def test_ollama_firewall_rolled_back_by_uninstall(host):
    with host.sudo():
        tables = host.check_output("nft list tables")
    assert "agentsec_ollama" not in tables
    assert not host.file("/etc/nftables.d/agentsec-ollama.nft").exists


@pytest.mark.parametrize("phase", ["site/canary", "recreated-pod", "repaired/canary", "second", "pair"])
def test_every_phase_verified_every_layer(phase):
    fleet_reports.check_phase(phase)


def test_two_sandboxes_probed_each_other():
    fleet_reports.check_pair()


def test_onboarding_repairs_and_scoped_uninstall(host, calls):
    onboards = _find(calls, "nemoclaw", "onboard")
    # converge, the repair after the sandbox was deleted behind our back, the second sandbox; idempotence and check
    # mode onboarded nothing
    assert [o["env"].get("NEMOCLAW_SANDBOX_NAME") for o in onboards] == ["my-assistant", "my-assistant", "second"]
    assert all(o["env"]["NEMOCLAW_PROVIDER"] == "ollama" and o["uid"] != 0 for o in onboards)
    assert len(_find(calls, "nemoclaw", "my-assistant", "destroy", "--yes")) == 1
    assert len(_find(calls, "nemoclaw", "second", "destroy", "--yes")) == 1
    assert _find(calls, "openshell", "gateway", "destroy", "-g", "nemoclaw")
    assert not _find(calls, "nemoclaw", "uninstall") and not _find(calls, "openshell", "sandbox", "delete", "--all")
    # the CLI this collection installed is gone with the gateway; NemoClaw's checkout stays (user data)
    assert not host.file(f"{HOME}/.local/bin/openshell").exists
    assert not host.file(f"{HOME}/.local/bin/.openshell-installed-by-agentsec").exists
    assert "my-assistant" not in json.loads(host.file(f"{HOME}/.nemoclaw/sandboxes.json").content_string)["sandboxes"]
