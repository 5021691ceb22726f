"""Secrets never leak: the OpenShell and NemoClaw roles run at -vvv, with the NVIDIA key and a bot token taken from an
encrypted vault file, against the stateful stand-ins (tests/standins) on this machine. The sentinel values must
appear nowhere - not in Ansible's output, not in its log file, not in any file written under the test's directories
(home, the stand-ins' state, Ansible's temp dirs) - while the stand-in gateway received exactly that key (by
fingerprint). A control run shows the detector works: the same sentinel passed through a task's `environment:`
with `no_log: true` is printed by ansible-core at -vvv, which is why the roles never do that."""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
STANDINS = ROOT / "tests" / "standins"
KEY = "nvapi-SENTINEL-4f1c9e7a2b6d8e0f3a5c7e9b1d3f5a7c"
TOKEN = "7771234567:SENTINEL-TELEGRAM-bot-token-e3b0c44298fc"


def _port_free(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the stand-ins' Docker Desktop runs as root here"),
    pytest.mark.skipif(not all(shutil.which(t) for t in ("git", "node", "npm")), reason="needs git, node and npm"),
    pytest.mark.skipif(not (_port_free(8080) and _port_free(18789)), reason="NemoClaw's ports 8080/18789 are in use here"),
]

PLAYBOOK = """
- name: OpenShell and NemoClaw from the stand-in release assets
  hosts: localhost
  connection: local
  gather_facts: true
  vars_files: [vault.yml]
  vars:
    openshell_cluster_release_url: "file://{www}/openshell/v0.0.26"
    openshell_cluster_install_dir: "{osbin}"
    openshell_cluster_health_delay: 1
    openshell_cluster_docker_host: ""
    nemoclaw_onboard_git_repo: "{www}/nemoclaw.git"
    nemoclaw_onboard_source_dir: "{home}/.nemoclaw/source"
    nemoclaw_onboard_npm_prefix: "{home}/.local"
    # NemoClaw's openshell: the gaps bridge in front of the installed stand-in (tests/unit/standins/openshell_gaps.py)
    nemoclaw_onboard_openshell_bin: "{home}/.local/bin/openshell"
    nemoclaw_onboard_accept_third_party_software: true
    nemoclaw_onboard_docker_host: ""
    nemoclaw_onboard_provider: cloud
    nemoclaw_onboard_model: nvidia/nemotron-3-super-120b-a12b
    nemoclaw_onboard_policy_presets: [pypi, telegram]
    nemoclaw_onboard_nvidia_api_key: "{{{{ vault_nvidia_api_key }}}}"
    nemoclaw_onboard_telegram_bot_token: "{{{{ vault_telegram_bot_token }}}}"
    # a cloud route would be probed at integrate.api.nvidia.com: tests contact no public address
    nemoclaw_onboard_verify_inference: false
  roles:
    - agentsec.nemoclaw.openshell_cluster
    - agentsec.nemoclaw.nemoclaw_onboard
"""

CONTROL = """
- name: The anti-pattern the roles avoid
  hosts: localhost
  connection: local
  gather_facts: false
  vars_files: [vault.yml]
  tasks:
    - name: A secret in a no_log task's environment
      ansible.builtin.command: "true"
      environment:
        NVIDIA_API_KEY: "{{ vault_nvidia_api_key }}"
      no_log: true
      changed_when: false
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("leak")
    www, home, state, root, bindir = (tmp / d for d in ("www", "home", "state", "root", "bin"))
    for d in (home, state, root / "var/run", bindir, tmp / "ansible-tmp"):
        d.mkdir(parents=True)
    # the state-only OpenShell stand-in world (no cluster container): this test is about what Ansible prints and writes
    subprocess.run([sys.executable, str(STANDINS / "build_artifacts.py"), str(www), "--legacy-openshell"], check=True,
                   capture_output=True)
    (root / "var/run/docker.sock").write_text("")
    os.symlink(STANDINS / "bin" / "docker", bindir / "docker")
    env = dict(os.environ, HOME=str(home), AGENTSEC_STANDIN_DIR=str(state), AGENTSEC_STANDIN_ROOT=str(root),
               PATH=f"{bindir}:{home}/.local/bin:{os.environ['PATH']}", ANSIBLE_LOG_PATH=str(tmp / "ansible.log"),
               ANSIBLE_LOCAL_TEMP=str(tmp / "ansible-tmp"), ANSIBLE_REMOTE_TMP=str(tmp / "ansible-tmp"),
               ANSIBLE_NOCOLOR="1")
    # A Linux host's Docker Engine, played by the stand-in daemon: running, answering on /var/run/docker.sock.
    (state / "docker.json").write_text(json.dumps({"desktop": {"running": True}}))
    (tmp / "vault-pass").write_text("agentsec-test-vault-password\n")
    (tmp / "vault.yml").write_text(f"vault_nvidia_api_key: {KEY}\nvault_telegram_bot_token: '{TOKEN}'\n")
    subprocess.run(["ansible-vault", "encrypt", "--vault-password-file", str(tmp / "vault-pass"), str(tmp / "vault.yml")],
                   env=env, check=True, capture_output=True)
    assert KEY not in (tmp / "vault.yml").read_text()
    # The role fixes the PATH NemoClaw sees (npm prefix, openshell's directory, system dirs): the bridge for the
    # OpenShell/Docker verbs the current stand-ins lack sits in ~/.local/bin as `openshell` and `docker` and hands
    # everything else to the installed openshell stand-in and the docker stand-in.
    gaps = ROOT / "tests" / "unit" / "standins" / "openshell_gaps.py"
    (home / ".local/bin").mkdir(parents=True)
    for tool in ("openshell", "docker"):
        os.symlink(gaps, home / ".local/bin" / tool)
    # openshell_cluster runs `docker` with its own PATH (install dir first, then the system's): the docker stand-in goes
    # into the install dir, so the role never sees this machine's real engine - where a lab gateway container named
    # openshell-cluster-lab (make lab, or another test) made it skip `gateway start` (CI failure 2026-12-02)
    (tmp / "osbin").mkdir()
    os.symlink(STANDINS / "bin" / "docker", tmp / "osbin" / "docker")
    env.update(OPENSHELL_GAPS_OPENSHELL=str(tmp / "osbin" / "openshell"), OPENSHELL_GAPS_DOCKER=str(STANDINS / "bin" / "docker"),
               AGENTSEC_STANDIN_TIME_SCALE="0.01")
    (tmp / "site.yml").write_text(PLAYBOOK.format(www=www, home=home, osbin=tmp / "osbin"))
    (tmp / "control.yml").write_text(CONTROL)

    def play(name):
        return subprocess.run(["ansible-playbook", "-vvv", "--vault-password-file", str(tmp / "vault-pass"), str(tmp / name)],
                              env=env, cwd=tmp, capture_output=True, text=True, check=False)
    yield {"tmp": tmp, "state": state, "play": play}
    # Onboarding leaves the dashboard forward running (a listener on 127.0.0.1:18789, as the real one does): stop every
    # process this test's stand-ins started, so nothing outlives the test.
    marker = f"AGENTSEC_STANDIN_DIR={state}".encode()
    for environ in pathlib.Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker in environ.read_bytes().split(b"\0"):
                os.kill(int(environ.parent.name), 9)
        except (OSError, ValueError):
            pass


@pytest.mark.oracle("ansible-core")
def test_control_the_detector_sees_a_secret_in_a_task_environment(world):
    run = world["play"]("control.yml")
    assert run.returncode == 0, run.stdout[-3000:]
    assert KEY in run.stdout, "ansible-core no longer prints task environments at -vvv; revisit docs/fleet.md"


@pytest.mark.oracle("ansible-core", "upstream")
def test_onboarding_at_vvv_leaks_no_secret(world):
    log = world["tmp"] / "ansible.log"
    log.unlink(missing_ok=True)
    run = world["play"]("site.yml")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "nemoclaw_sandbox" in run.stdout and "onboarded" in run.stdout
    for secret in (KEY, TOKEN):
        assert secret not in run.stdout and secret not in run.stderr
        assert secret not in log.read_text()
        leaked = []
        for path in world["tmp"].rglob("*"):
            if path.is_file() and not path.is_symlink() and path.name != "vault-pass" and path.stat().st_size < 50_000_000:
                if secret.encode() in path.read_bytes():
                    leaked.append(str(path))
        # the only files allowed to hold it: none (the vault file is encrypted, the control run printed to a pipe)
        assert leaked == [], leaked
    # ... and the key did reach NemoClaw and the gateway's provider store (as a fingerprint only)
    calls = [json.loads(line) for line in (world["state"] / "calls.jsonl").read_text().splitlines()]
    onboard = [c for c in calls if c["tool"] == "nemoclaw" and c["argv"][:1] == ["onboard"]]
    assert len(onboard) == 1 and "NVIDIA_API_KEY" in onboard[0]["secret_env"] and "TELEGRAM_BOT_TOKEN" in onboard[0]["secret_env"]
    assert all(KEY not in " ".join(c["argv"]) for c in calls), "the key was on a command line"
    openshell_state = json.loads((world["state"] / "openshell.json").read_text())
    gateway = openshell_state["gateways"]["nemoclaw"]
    # v0.0.21 names the cloud provider nvidia-prod (src/lib/onboard.ts:160-170 @db3453b5) and gives each messaging
    # token its own provider <sandbox>-telegram-bridge (onboard.ts:3032-3053), both credentials by env name only
    assert gateway["providers"]["nvidia-prod"]["credentials"] == {"NVIDIA_API_KEY": "sha256:" + hashlib.sha256(KEY.encode()).hexdigest()[:16]}
    assert gateway["providers"]["my-assistant-telegram-bridge"]["credentials"] == \
        {"TELEGRAM_BOT_TOKEN": "sha256:" + hashlib.sha256(TOKEN.encode()).hexdigest()[:16]}
    create = next(c for c in calls if c["tool"] == "openshell" and c["argv"][:2] == ["sandbox", "create"])
    assert create["secret_env"] == [] and "my-assistant-telegram-bridge" in create["argv"]
