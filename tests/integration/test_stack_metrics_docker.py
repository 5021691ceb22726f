"""stack_metrics against this machine's real ps and Docker engine: a container of our own (no registry, network none)
stands in for the OpenShell cluster container. It writes a k3s line to stdout and kubelet startup lines to stdout and
stderr, and holds 48 MiB in /dev/shm (shmem is charged to its memory cgroup), under a 128 MiB limit.

The Docker engine decides what `docker stats` and `docker logs` print and which stream a line comes back on; the
engine's raw stats API (docker SDK, not the CLI the module runs) decides whether this engine has memory figures at
all. Some engines have none: this machine's (cgroup v1, 'cannot find cgroup mount destination' in dockerd's log)
answers every container with empty memory_stats, and the CLI then prints '0B / 0B'. The module must then say
"not measured", not 0 MiB.

The only thing the test changes in the module is the cluster container's name (openshell-cluster-<gateway>): the
container here carries this test's name prefix instead.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import pytest
from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.agentsec.nemoclaw.plugins.modules import stack_metrics

IMAGE = os.environ.get("AGENTSEC_BASE_IMAGE", "debian:bookworm-slim")
NAME = f"agentsec-h11-metrics-{os.getpid()}"
ABSENT = f"agentsec-h11-absent-{os.getpid()}"  # never created
SHM_MIB = 48

# The kubelet's startup line in klog's text format (see tests/unit/plugins/module_utils/test_metrics.py kubelet()).
KUBELET = ('I0416 {t}      71 pod_startup_latency_tracker.go:104] "Observed pod startup duration" pod="{pod}" '
           'podStartSLOduration={slo} podStartE2EDuration="{e2e}" podCreationTimestamp="2026-04-16 10:11:58 +0000 UTC"')
STDERR_LINE = KUBELET.format(t="10:12:13.123456", pod="openshell/my-assistant", slo=14.5, e2e="14.5s")
STDOUT_LINE = KUBELET.format(t="10:40:00.000000", pod="kube-system/coredns-64fd4b4794-q2x7z", slo=0.85, e2e="850ms")
K3S_LINE = 'time="2026-04-16T10:11:01Z" level=info msg="Starting k3s v1.35.3+k3s1"'

pytestmark = [pytest.mark.docker]


def _docker(*args, check=True):
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120, check=check)


@pytest.fixture(scope="module")
def container():
    if not shutil.which("docker") or _docker("info", check=False).returncode != 0:
        pytest.skip("needs a Docker engine")
    if _docker("image", "inspect", IMAGE, check=False).returncode != 0:
        pytest.skip(f"needs the local image {IMAGE} (scripts/lib.sh ensure_base_image); there is no registry here")
    script = (f"echo '{K3S_LINE}'; echo '{STDOUT_LINE}'; echo '{STDERR_LINE}' >&2; "
              f"dd if=/dev/zero of=/dev/shm/fill bs=1M count={SHM_MIB} 2>/dev/null; echo filled; exec sleep 600")
    _docker("run", "-d", "--name", NAME, "--network", "none", "--memory", "128m", "--shm-size", "64m", IMAGE, "sh", "-c", script)
    try:
        for _attempt in range(100):  # bounded: 10 s for the shm to be filled
            if "filled" in _docker("logs", NAME, check=False).stdout:
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"{NAME} did not fill /dev/shm within 10 s")
        yield NAME
    finally:
        _docker("rm", "-f", NAME, check=False)


def engine_memory(name):
    """The engine's own stats API answer (not the CLI): memory_stats, {} when the engine has no figures."""
    docker = pytest.importorskip("docker")
    return docker.from_env().containers.get(name).stats(stream=False).get("memory_stats") or {}


def run_module(monkeypatch, args, cluster=None):
    """stack_metrics.main() with the real run_command (ps, docker); -> its exit_json/fail_json result."""
    class Done(Exception):
        pass

    def leave(self, **kw):
        raise Done(kw)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", leave)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", lambda self, **kw: leave(self, failed=True, **kw))
    if cluster:
        init = stack_metrics.Stack.__init__

        def renamed(self, module):
            init(self, module)
            self.cluster = cluster

        monkeypatch.setattr(stack_metrics.Stack, "__init__", renamed)
    payload = {"ANSIBLE_MODULE_ARGS": dict(args, _ansible_remote_tmp="/tmp", _ansible_keep_remote_files=False)}
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps(payload)))
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)
    with pytest.raises(Done) as done:
        stack_metrics.main()
    return done.value.args[0]


@pytest.mark.oracle("docker")
def test_memory_and_pod_start_from_the_real_engine(container, monkeypatch):
    res = run_module(monkeypatch, {"containers": [container, ABSENT]}, cluster=container)
    assert not res.get("failed"), res
    m = res["metrics"]
    # docker logs: the kubelet line the container wrote to stderr comes back on the CLI's stderr, the others on stdout;
    # the module reads both
    assert [p["pod"] for p in m["pods"]] == ["kube-system/coredns-64fd4b4794-q2x7z", "openshell/my-assistant"]
    assert m["pod_start_s"] == 14.5 and res["pod_start"]["sandbox"] == "my-assistant"
    # the absent container: the engine's own 'No such container' makes it missing, not an error
    absent = m["containers"][ABSENT]
    assert absent["state"] == "missing" and "No such container" in absent["msg"]
    mine = m["containers"][container]
    api = engine_memory(container)
    if not api:  # this engine has no memory figures: the CLI says 0B / 0B, the module says "not measured"
        assert mine["mem_usage"] == "0B / 0B" and mine["state"] == "error" and mine["mem_mb"] is None, mine
        assert m["cluster_container_mb"] is None and "cluster_container_mb" in m["stack_components"]["missing"]
        assert res["errors"] == [f"docker stats {container}: {mine['msg']}"]
    else:  # the engine measured: 48 MiB of shmem (and a little more) under the 128 MiB limit
        assert mine["state"] == "running" and mine["mem_limit_mb"] == api["limit"] / 1024**2 == 128.0, mine
        assert SHM_MIB <= mine["mem_mb"] <= SHM_MIB + 16, mine
        assert m["cluster_container_mb"] == mine["mem_mb"] and res["errors"] == []
    # the real ps: this host's processes were read and grouped (nothing of Docker Desktop on Linux)
    assert set(m["processes"]) == {"docker_desktop", "openclaw_gateway", "ollama"}


@pytest.mark.oracle("docker")
def test_a_missing_cluster_container_as_the_engine_reports_it(container, monkeypatch):
    res = run_module(monkeypatch, {"gateway": ABSENT})
    assert not res.get("failed"), res
    cluster = f"openshell-cluster-{ABSENT}"
    assert res["metrics"]["containers"][cluster]["state"] == "missing"
    assert res["pod_start"]["reason"] == f"the cluster container {cluster} does not exist"
    assert res["errors"] == [] and res["metrics"]["pod_start_s"] is None
