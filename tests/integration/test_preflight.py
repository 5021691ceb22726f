"""The preflight's kernel probe on this kernel, and the preflight playbook refusing a taken port (a listener this
test opens on 127.0.0.1)."""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROBE = ROOT / "roles" / "preflight" / "files" / "kernel_probe.py"


def test_probe_reports_this_kernel():
    report = json.loads(subprocess.run([sys.executable, str(PROBE)], capture_output=True, text=True, check=True).stdout)
    assert report["seccomp_filter"]["supported"] is True
    assert report["namespaces"]["net"] and report["namespaces"]["mnt"]
    assert report["landlock"]["abi"] >= 0 and report["cgroup_version"] in (1, 2)
    if os.path.exists("/sys/kernel/security/lsm") and "landlock" in pathlib.Path("/sys/kernel/security/lsm").read_text():
        assert report["landlock"]["abi"] >= 1 and report["landlock"]["state"] == "available"


@pytest.mark.skipif(subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0 if shutil.which("docker") else True,
                    reason="needs a Docker engine")
def test_preflight_playbook_passes_then_refuses_a_taken_port(tmp_path):
    cmd = ["ansible-playbook", "-i", str(ROOT / "inventories/lab/hosts.yml"), str(ROOT / "playbooks/preflight.yml"), "--check"]
    ok = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    assert ok.returncode == 0, ok.stdout[-2000:]
    assert "changed=0" in ok.stdout
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        taken = subprocess.run([*cmd, "-e", json.dumps({"preflight_ports": [port]})], capture_output=True, text=True, cwd=ROOT, check=False)
    assert taken.returncode != 0 and f"ports in use [{port}]" in taken.stdout
