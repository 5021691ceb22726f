"""The OpenShell 0.1.x verify profile on the 0.1.5 stand-in host: the workload container the stand-in Docker driver
creates (network_mode=none, non-root, cap_drop ALL, no-new-privileges; a supervisor companion beside it) is verified
from the agent's vantage through `openshell sandbox exec`, with target openshell_0_1's skip list, residuals and the
_verify_v01 checks.

The probes can fail: the same payload run with `docker exec` straight into the workload container (a shell the
sandbox did not spawn - no child filter, no broker decisions, no Landlock baseline) must fail the v01 filter checks,
which is also why a verifier must never be run that way (openshell-current.md 4.5)."""
from __future__ import annotations

import json
import os

import _openshell_host_env as E
import pytest

pytestmark = [pytest.mark.skipif(not E.docker_available(), reason="needs a Docker engine"),
              pytest.mark.oracle("kernel", "docker", "upstream")]


def target():
    from ansible_collections.agentsec.nemoclaw.plugins.lookup import target as T

    return T.resolve(T.load("openshell_0_1"), "Linux", "/home/studio", None)


def profile_params(host):
    """The probes sandbox_verify pipes in for this target (its probe_modules and entry module), with its skip list."""
    from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _verify
    from ansible_collections.agentsec.nemoclaw.plugins.modules import sandbox_verify

    contract = target()
    extensions = contract["verify"]["extensions"]
    modules = sandbox_verify.probe_modules(extensions)
    E.use_extensions(*modules[1:])
    params = E.verify_params(host, ca_path=contract["sandbox"]["ca_path"], allowed_host=None, denied_host=None,
                             allowed_ip=None, skip_checks=contract["verify"]["skip_checks"])
    params["checks"] = _verify.select_checks([], params["skip_checks"])
    return params, modules, sandbox_verify.entry_module(extensions)


@pytest.fixture(scope="module")
def host():
    with E.stand_in("linux", versions=("0.1.5",), subnet_octet=85) as h:
        E.quick_gateway(h, "0.1.5")
        # created as the hardening's policy backend re-creates one: a memory limit, and its cgroup readable
        policy = h.world.policy(network_policies={})
        policy["filesystem_policy"]["read_only"].append("/sys/fs/cgroup")
        E.put_file(h, "/tmp/v01.yaml", json.dumps(policy))
        h.openshell("sandbox", "create", "--name", "w1", "--policy", "/tmp/v01.yaml", "--memory", "1Gi")
        yield h


def test_two_containers_as_rfc_0012_describes(host):
    names = E.docker("ps", "--filter", "label=openshell.ai/sandbox-name=w1", "--format", "{{.Names}}").stdout.split()
    workload = [n for n in names if not n.endswith("-supervisor")]
    companion = [n for n in names if n.endswith("-supervisor")]
    assert len(workload) == 1 and len(companion) == 1, names
    w = json.loads(E.docker("inspect", workload[0]).stdout)[0]
    c = json.loads(E.docker("inspect", companion[0]).stdout)[0]
    assert w["HostConfig"]["NetworkMode"] == "none" and w["HostConfig"]["CapDrop"] in (["ALL"], ["CAP_ALL"])
    assert "no-new-privileges" in w["HostConfig"]["SecurityOpt"] and w["Config"]["User"] not in ("", "0", "root")
    assert c["HostConfig"]["CapDrop"] in (["ALL"], ["CAP_ALL"]) and "no-new-privileges" in c["HostConfig"]["SecurityOpt"]
    assert w["HostConfig"]["Memory"] == 1024 ** 3 and w["HostConfig"]["PidsLimit"] == 2048  # --memory 1Gi; the driver's
    env = dict(e.split("=", 1) for e in w["Config"]["Env"])
    assert "OPENSHELL_ENDPOINT" not in env and "OPENSHELL_SANDBOX_ID" not in env  # only the companion holds them
    cenv = dict(e.split("=", 1) for e in c["Config"]["Env"])
    assert cenv["OPENSHELL_ENDPOINT"].startswith("https://127.0.0.1:")
    got = json.loads(host.openshell("sandbox", "get", "w1", "--output", "json").stdout)
    assert any(x["type"] == "WorkloadIdentity" and x["message"] != "0:0" for x in got["conditions"]), got["conditions"]


def test_v01_profile_through_sandbox_exec(host):
    from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _verify

    params, modules, main = profile_params(host)
    result = E.verify_payload_run(host, "w1", params, modules, main)
    assert "error" not in result, result
    st = E.statuses(result)
    for cid in ("L1.v01_identity", "L1.v01_landlock_abi", "L1.non_root", "L1.no_capabilities", "L1.landlock",
                "L2.v01_broker_families", "L2.v01_child_filter", "L2.seccomp_mode", "L2.io_uring",
                "L3.v01_no_route", "L3.v01_no_proxy_env", "L3.direct_egress", "L3.dns_leak", "L5.ca_file", "L5.ca_cert",
                "L5.v01_ca_env", "L6.v01_no_inference_local", "L6.no_secrets",
                "L1.memory_limit", "L1.pids_limit"):
        assert st[cid] == "pass", (cid, next(f for f in result["findings"] if f["id"] == cid))
    observed = {f["id"]: f["observed"] for f in result["findings"]}
    # the limits Docker holds (test above), read from inside the workload through its cgroup
    assert (observed["L1.memory_limit"]["limit"], observed["L1.pids_limit"]["limit"]) == (1024 ** 3, 2048), observed
    assert st["L2.af_netlink"] == "fail"  # any netlink protocol opens: the declared residual of the line
    _verify.mark_residual(result["findings"], target()["residual"])
    assert _verify.failing(result["findings"], "high") == []
    assert _verify.failing(result["findings"], "any") == [], [f["id"] for f in result["findings"]
                                                              if f["status"] != "pass" and not f.get("residual")]


def test_the_probes_fail_outside_the_sandbox(host):
    """Gap variant: the workload container entered with `docker exec` - same uid, but none of openshell-sandbox's
    per-child confinement."""
    from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _sandbox_exec

    params, modules, main = profile_params(host)
    params["checks"] = ["L2.v01_child_filter", "L2.v01_broker_families", "L1.landlock"]
    workload = [n for n in E.docker("ps", "--filter", "label=openshell.ai/sandbox-name=w1", "--format",
                                    "{{.Names}}").stdout.split() if not n.endswith("-supervisor")][0]
    data = _sandbox_exec.payload(modules, main, "sandbox_main", params)
    result = _sandbox_exec.run_one(["docker", "exec", "-i", workload], "w1", "/usr/bin/python3", data, dict(os.environ), 60)
    st = E.statuses(result)
    assert st == {"L2.v01_child_filter": "fail", "L2.v01_broker_families": "fail", "L1.landlock": "fail"}, st
