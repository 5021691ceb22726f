"""L1.memory_limit and L1.pids_limit against limits Docker itself puts on a container's cgroup (oracle: docker and the
kernel's cgroup files): the probe, run as an unprivileged user inside the container exactly as the verifier pipes it,
must see `docker run --memory/--pids-limit` and must fail a container started without them - the several-sandboxes
attack (one agent exhausts the host's memory or process table for the others) has no other witness inside the
sandbox. Runs the base image the tests build (it has python3), with no network."""
from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import uuid

import pytest
from _docker_base import BASE_IMAGE, base_image_problem

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROBE = """
import json, sys
sys.path.insert(0, "/probe")
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _verify_isolation as I
out = {}
for check in ("L1.memory_limit", "L1.pids_limit"):
    probe, decide = I.plan({"proxy": "127.0.0.1:3128", "timeout": 1, "egress_timeout": 1})[check]
    status, obs = decide(probe(), {})
    out[check] = {"status": status, "limit": obs.get("limit"), "cgroup": obs.get("cgroup")}
print(json.dumps(out))
"""

pytestmark = [pytest.mark.docker]


@pytest.fixture(scope="module")
def probe_dir(tmp_path_factory):
    reason = base_image_problem(BASE_IMAGE)
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("probe")
    dest = root / "ansible_collections" / "agentsec" / "nemoclaw" / "plugins" / "module_utils"
    dest.mkdir(parents=True)
    for name in ("_verify.py", "_verify_isolation.py"):
        shutil.copy(ROOT / "plugins" / "module_utils" / name, dest / name)
    root.chmod(0o755)
    return root


def run(probe_dir, *limits):
    name = f"agentsec-limits-{uuid.uuid4().hex[:8]}"
    cmd = ["docker", "run", "--rm", "--name", name, "--network", "none", "--user", "1000:1000", *limits,
           "-v", f"{probe_dir}:/probe:ro", BASE_IMAGE, "python3", "-I", "-S", "-c", PROBE]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


@pytest.mark.oracle("docker", "kernel")
def test_limits_docker_set_are_seen_and_pass(probe_dir):
    out = run(probe_dir, "--memory", "256m", "--pids-limit", "100")
    assert out["L1.memory_limit"]["status"] == "pass" and out["L1.memory_limit"]["limit"] == 256 * 1024 * 1024, out
    assert out["L1.pids_limit"]["status"] == "pass" and out["L1.pids_limit"]["limit"] == 100, out


@pytest.mark.oracle("docker", "kernel")
def test_a_container_without_limits_fails_both(probe_dir):
    out = run(probe_dir)
    assert out["L1.memory_limit"] == {**out["L1.memory_limit"], "status": "fail", "limit": "unlimited"}, out
    assert out["L1.pids_limit"] == {**out["L1.pids_limit"], "status": "fail", "limit": "unlimited"}, out
