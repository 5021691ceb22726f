"""Landlock on a kernel without it, OpenShell 0.0.116 stand-in: `best_effort` (the default) runs the agent WITHOUT
filesystem rules - the hostile agent writes outside its allow-list (L1.landlock fails); `hard_requirement`, which
the hardening backend `policy` puts into the creation policy, makes the sandbox refuse to start instead
(sandbox/linux/landlock.rs @v0.0.111 L150-186). The kernel without Landlock is played by the stand-in Docker
driver's OPENSHELL_STANDIN_KERNEL=no-landlock (a seccomp profile on which every landlock_* syscall is ENOSYS, as on
gVisor or a guest without Landlock, OpenShell #3095)."""
from __future__ import annotations

import json

import _openshell_host_env as E
import pytest

pytestmark = [pytest.mark.skipif(not E.docker_available(), reason="needs a Docker engine"),
              pytest.mark.oracle("kernel", "docker", "upstream")]


@pytest.fixture(scope="module")
def host():
    with E.stand_in("linux", versions=("0.0.116",), subnet_octet=83) as h:
        E.quick_gateway(h, "0.0.116", OPENSHELL_STANDIN_KERNEL="no-landlock")
        yield h


def landlock_check(host, sandbox):
    from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _verify

    params = E.verify_params(host, checks=["L1.landlock", "L1.writable_paths"])
    result = E.verify_payload_run(host, sandbox, params, [_verify], _verify)
    assert "error" not in result, result
    return E.statuses(result), result["vantage"]


@pytest.mark.parametrize("compatibility", ["best_effort", "hard_requirement"])
def test_no_landlock_kernel(host, tmp_path, compatibility):
    name = f"ll-{compatibility[:4]}"
    E.put_file(host, f"/tmp/{name}.yaml", json.dumps(host.world.policy(landlock={"compatibility": compatibility})))
    created = host.openshell("sandbox", "create", "--name", name, "--policy", f"/tmp/{name}.yaml", "--output", "json",
                             check=False)
    if compatibility == "best_effort":
        assert created.returncode == 0, created.stderr
        statuses, vantage = landlock_check(host, name)
        assert vantage["landlock_abi"] == 0  # the kernel (profile) offers no Landlock
        assert statuses["L1.landlock"] == "fail"  # the agent wrote to /dev/shm: no filesystem rules at all
        assert statuses["L1.writable_paths"] == "pass"
    else:
        assert created.returncode == 1, created.stdout
        assert "LandlockUnavailable" in created.stderr and "hard_requirement" in created.stderr, created.stderr
        got = json.loads(host.openshell("sandbox", "get", name, "--output", "json").stdout)
        assert got["phase"] == "Error"
        assert E.docker("ps", "-q", "--filter", f"label=openshell.ai/sandbox-name={name}").stdout.strip() == ""  # exited


def test_hardening_recreation_fails_closed(host, tmp_path):
    """The backend's re-creation with hard_requirement on that kernel: the module fails naming the reason and the
    sandbox does not come back unconfined."""
    E.put_file(host, "/tmp/rc.yaml", json.dumps(host.world.policy()))
    host.openshell("sandbox", "create", "--name", "rc", "--policy", "/tmp/rc.yaml")
    rc, out = E.playbook(tmp_path, host, [{"name": "Harden", "agentsec.nemoclaw.sandbox_policy": {
        "openshell": "/usr/bin/openshell", "backup_dir": "/home/studio/.local/state/agentsec/hardening/policy",
        "sandboxes": ["rc"], "recreate": True, "images": {"rc": E.IMAGE}}}], {})
    assert rc != 0 and "could not be re-created with the hardened policy" in out and "Landlock unavailable" in out, out[-3000:]
    phase = json.loads(host.openshell("sandbox", "get", "rc", "--output", "json").stdout)["phase"]
    assert phase == "Error"
