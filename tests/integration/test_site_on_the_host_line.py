"""playbooks/site.yml, the fleet's one command, on the stand-in hosts of the host-service lines
(tests/integration/_openshell_host_env.py), for what molecule/host_line (site.yml on the 0.0.116 line on a Linux host
and a Mac-playing host) and molecule/line_0_1 (site.yml on 0.1.5 with a declared sandbox: deploy, harden, verify,
idempotence, check mode, an attack each) do not cover: a pair the 0.0.116 line does not support (NemoClaw v0.0.21)
is refused by the preflight before any change (before the fix the preflight ran the v0.0.21 check there and refused
every supported pair instead).
Docker, Node.js and Ollama are the stand-in host's own: prerequisites_{docker,nodejs,ollama}_enabled are off here, and
their installation is molecule/fleet_linux's and fleet_macos's to prove."""
from __future__ import annotations

import json
import os
import subprocess

import _openshell_host_env as E
import pytest

pytestmark = [pytest.mark.skipif(not E.docker_available(), reason="needs a Docker engine"),
              pytest.mark.oracle("docker", "ansible-core", "upstream")]

SITE = E.ROOT / "playbooks/site.yml"
SANDBOX = "assistant"


def site_vars(host, reports):
    role_vars = host.gateway_vars("0.0.116")
    return {**role_vars,
            "nemoclaw_site_report_dir": str(reports),
            "prerequisites_docker_enabled": False, "prerequisites_nodejs_enabled": False,
            "prerequisites_ollama_enabled": False,
            # this build machine boots cgroup v1 (stat -f /sys/fs/cgroup: tmpfs); the role refuses that by default
            "prerequisites_cgroup_v2_required": False,
            "nemoclaw_onboard_version": "0.0.132", "nemoclaw_onboard_sandbox_name": SANDBOX,
            "nemoclaw_onboard_provider": "ollama", "nemoclaw_onboard_model": "nemotron-3-nano:30b",
            "nemoclaw_onboard_policy_presets": ["pypi"], "nemoclaw_onboard_accept_third_party_software": True,
            "nemoclaw_onboard_from_image": E.IMAGE, "nemoclaw_onboard_nemoclaw_bin": "/home/studio/.local/bin/nemoclaw",
            "nemoclaw_onboard_path": ["/opt/standins/node/bin", "/usr/bin", "/bin"],
            "hardening_policy_recreate": True, "hardening_policy_images": {SANDBOX: E.IMAGE},
            "hardening_ollama_firewall_enabled": False}


def run_site(tmp_path, host, extra, check=False):
    inv = {"all": {"children": {"nemoclaw_hosts": {"hosts": {host.name: {
        "ansible_connection": "community.docker.docker", "ansible_host": host.name, "ansible_user": "studio",
        "ansible_python_interpreter": "/usr/bin/python3", "ansible_pipelining": True}}}}}}
    (tmp_path / "inventory.json").write_text(json.dumps(inv))
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(tmp_path / "t"), ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    cmd = ["ansible-playbook", "-i", str(tmp_path / "inventory.json"), str(SITE), "-e", json.dumps(extra)]
    proc = subprocess.run(cmd + (["--check"] if check else []), env=env, capture_output=True, text=True, cwd=tmp_path,
                          timeout=1200, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def findings(report_dir):
    (_name, entry), = json.loads((report_dir / "verify.json").read_text())["hosts"].items()
    return {f["id"]: f["status"] for f in entry["findings"]}


def test_site_refuses_a_bad_pair_before_any_change(tmp_path):
    """NemoClaw v0.0.21 does not run on the 0.0.116 line: site.yml's preflight says so before the canary is touched
    (before the fix, the preflight ran the v0.0.21 check on this line and refused every current pair instead)."""
    with E.stand_in("linux", versions=("0.0.116",), world=False) as host:
        extra = {**site_vars(host, tmp_path / "reports"), "nemoclaw_onboard_version": "0.0.21"}
        rc, out = run_site(tmp_path, host, extra)
        assert rc != 0 and "must be v0.0.130-v0.0.132" in out, out[-3000:]
        assert E.changed_tasks(out) == [] and "Preflight" in out and "Deploy the canary" not in out, out[-3000:]
        assert host.root("test", "-e", "/usr/bin/openshell", check=False).returncode != 0  # nothing installed
