"""stack_metrics end to end against a simulated host: ps, docker stats/logs and the openshell CLI behind run_command.

The simulated host is our own stand-in, so these tests are "self"; tests/integration/test_stack_metrics_docker.py runs
the module against this machine's real ps and Docker engine."""
from __future__ import annotations

import json
import os

import pytest
from ansible.module_utils import basic

from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _metrics as M
from ansible_collections.agentsec.nemoclaw.plugins.modules import stack_metrics

CLUSTER = "openshell-cluster-nemoclaw"
SOCKET = "unix:///Users/studio/.docker/run/docker.sock"


def kubelet(time, pod, e2e, slo=None):
    """A kubelet line as k3s logs it (klog header, structured fields)."""
    return (f'I{time}      71 pod_startup_latency_tracker.go:104] "Observed pod startup duration" pod="{pod}" '
            f'podStartSLOduration={slo if slo is not None else e2e.rstrip("s")} podStartE2EDuration="{e2e}" '
            'podCreationTimestamp="2026-04-16 10:11:58 +0000 UTC"')


def render_sandbox_list(rows):
    """`openshell sandbox list` as run.rs@v0.0.26 prints it: padded columns, bold header, coloured phase."""
    if not rows:
        return "No sandboxes found.\n"
    nw = max(4, *(len(r[0]) for r in rows))
    header = ["NAME".ljust(nw), "NAMESPACE", "CREATED".ljust(19), "PHASE"]
    lines = ["  ".join(f"\x1b[1m{h}\x1b[0m" for h in header)]
    colour = {"Ready": "32", "Provisioning": "33", "Error": "31"}
    for name, namespace, created, phase in rows:
        lines.append(f"{name:<{nw}}  {namespace:<9}  {created:<19}  \x1b[{colour.get(phase, '0')}m{phase}\x1b[0m")
    return "\n".join(lines) + "\n"


class Clock:
    def __init__(self):
        self.now = 1000.0

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class Host:
    """A Mac with Docker Desktop, the nemoclaw gateway and one NemoClaw sandbox; records every command."""

    def __init__(self, clock, ps):
        self.clock = clock
        self.calls = []
        self.ps = ps
        self.containers = {CLUSTER: "732MiB / 15.6GiB"}
        self.log = [
            'time="2026-04-16T10:11:01Z" level=info msg="Starting k3s v1.33.4+k3s1 (d9d4a3a2)"',
            kubelet("0416 10:12:13.123456", "openshell/my-assistant", "14.5s"),
            kubelet("0416 10:40:00.000000", "kube-system/coredns-64fd4b4794-q2x7z", "850ms", slo=0.85),
        ]
        self.sandboxes = {"my-assistant": ["Ready"]}  # name -> phases shown by successive `sandbox list` calls
        self.provisioning_polls = 1  # `sandbox list` calls that show a new sandbox Provisioning before Ready
        self.create_seconds = 41.5
        self.create_result = (0, "", "")
        self.bench_e2e = "12.25s"
        self.final_phase = "Ready"
        self.daemon_down = False

    def run(self, argv, environ_update=None, **_kw):
        env = dict(environ_update or {})
        self.calls.append((os.path.basename(argv[0]), list(argv[1:]), env))
        tool, args = os.path.basename(argv[0]), argv[1:]
        if tool == "ps":
            assert args == ["axww", "-o", "pid=,rss=,args="]
            return 0, self.ps, ""
        if tool == "docker":
            return self.docker(args, env)
        if tool == "openshell":
            return self.openshell(args, env)
        raise AssertionError(f"unexpected command {argv}")

    def docker(self, args, env):
        assert env.get("DOCKER_HOST") == SOCKET
        if self.daemon_down:
            return 1, "", "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n"
        if args[:4] == ["stats", "--no-stream", "--format", "{{json .}}"]:
            names = args[4:]
            missing = [n for n in names if n not in self.containers]
            if missing:  # the real CLI prints no row at all then
                return 1, "", f"Error response from daemon: No such container: {missing[0]}\n"
            rows = [json.dumps({"Name": n, "Container": n, "ID": "112baa0544d8", "MemUsage": self.containers[n],
                                "CPUPerc": "3.12%", "MemPerc": "4.58%"}) for n in names]
            return 0, "\n".join(rows) + "\n", ""
        if args[:2] == ["logs", "--tail"] and len(args) == 4:
            if args[3] not in self.containers:
                return 1, "", f"Error response from daemon: No such container: {args[3]}\n"
            lines = self.log if args[2] == "all" else self.log[-int(args[2]):]
            return 0, "", "\n".join(lines) + "\n"  # k3s logs the kubelet to stderr
        raise AssertionError(f"unexpected docker {args}")

    def openshell(self, args, env):
        assert env.get("OPENSHELL_GATEWAY") == "nemoclaw" and env.get("DOCKER_HOST") == SOCKET
        if args == ["sandbox", "list"]:
            rows = []
            for name, phases in self.sandboxes.items():
                rows.append((name, "openshell", "2026-04-16 10:11:58", phases[0]))
                if len(phases) > 1:
                    phases.pop(0)
            return 0, render_sandbox_list(rows), ""
        if args[:3] == ["sandbox", "create", "--name"]:
            name = args[3]
            assert args[4:] == ["--from", "base", "--", "true"]
            assert int(env["OPENSHELL_PROVISION_TIMEOUT"]) > 0
            if name in self.sandboxes:
                return 1, "", f"Error:   x status: AlreadyExists, message: \"sandbox '{name}' already exists\"\n"
            rc, out, err = self.create_result
            self.clock.now += self.create_seconds
            if rc == 0:
                self.sandboxes[name] = ["Provisioning"] * self.provisioning_polls + [self.final_phase]
                if self.bench_e2e:
                    self.log.append(kubelet("0416 12:00:41.500000", f"openshell/{name}", self.bench_e2e))
            return rc, out, err
        if args[:2] == ["sandbox", "delete"]:
            self.sandboxes.pop(args[2], None)
            return 0, f"\x1b[32m\x1b[1m✓\x1b[0m Deleted sandbox {args[2]}\n", ""
        raise AssertionError(f"unexpected openshell {args}")

    def commands(self, tool=None):
        return [" ".join([t, *a]) for t, a, dummy in self.calls if tool in (None, t)]


@pytest.fixture
def host(monkeypatch, macos_ps):
    clock = Clock()
    h = Host(clock, macos_ps.text)
    monkeypatch.setattr(stack_metrics, "time", clock)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda self, argv, **kw: h.run(argv, **kw))
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None: f"/fake/bin/{name}")
    return h


@pytest.fixture
def run(module_runner):
    def go(args, **kw):
        return module_runner(stack_metrics.main, {"docker_host": SOCKET, **args}, **kw)
    return go


@pytest.mark.oracle("self")
def test_measures_memory_and_pod_start_without_a_cold_start(run, host, macos_ps):
    ok, res = run({})
    assert ok and res["changed"] is False
    m = res["metrics"]
    for name, exp in macos_ps.groups.items():
        assert m["processes"][name]["pids"] == exp["pids"]
        assert m["processes"][name]["rss_mb"] == round(exp["kib"] / 1024, 1)
    assert m["docker_desktop_processes"] == macos_ps.groups["docker_desktop"]["count"]
    assert m["containers"][CLUSTER]["state"] == "running" and m["cluster_container_mb"] == 732.0
    assert m["pod_start_s"] == 14.5 and res["pod_start"]["sandbox"] == "my-assistant" and not res["pod_start"]["fresh"]
    assert [p["pod"] for p in m["pods"]] == ["openshell/my-assistant", "kube-system/coredns-64fd4b4794-q2x7z"]
    parts = [m["docker_desktop_mb"], m["cluster_container_mb"], m["openclaw_gateway_mb"], m["ollama_mb"]]
    assert m["stack_total_mb"] == round(sum(parts), 1)
    assert res["paper"] == M.PAPER
    assert res["comparison"]["stack_total_mb"]["ratio"] == round(m["stack_total_mb"] / M.PAPER["stack_total_mb"], 3)
    assert res["comparison"]["cold_start_ms"] == {"measured": None, "paper": M.PAPER["cold_start_ms"], "ratio": None}
    assert res["cold_start"]["skipped"] and res["errors"] == []
    assert not host.commands("openshell")
    assert f"docker stats --no-stream --format {{{{json .}}}} {CLUSTER}" in host.commands()
    assert f"docker logs --tail 10000 {CLUSTER}" in host.commands()


@pytest.mark.oracle("self")
def test_cold_start_creates_polls_until_ready_then_deletes(run, host):
    host.log.append(kubelet("0415 09:00:00.000000", "openshell/agentsec-bench", "99s"))  # a previous benchmark run
    ok, res = run({"cold_start_sandbox": "agentsec-bench"})
    assert ok and res["changed"] is False, res
    openshell = host.commands("openshell")
    create = "openshell sandbox create --name agentsec-bench --from base -- true"
    delete = "openshell sandbox delete agentsec-bench"
    assert openshell == ["openshell sandbox list", create, "openshell sandbox list", "openshell sandbox list", delete]
    assert res["cold_start"]["phases"] == ["Provisioning", "Ready"]
    # the fake clock advances by the create time and one poll interval per non-Ready listing
    assert res["cold_start"]["ms"] == int((host.create_seconds + stack_metrics.POLL_SECONDS) * 1000)
    assert res["metrics"]["cold_start_ms"] == res["cold_start"]["ms"] and res["cold_start"]["deleted"]
    assert "agentsec-bench" not in host.sandboxes and "my-assistant" in host.sandboxes
    # the pod start is the line logged during this run, not the stale one from the day before
    assert res["pod_start"]["fresh"] and res["metrics"]["pod_start_s"] == M.go_duration(host.bench_e2e)
    logs_after_ready = [i for i, c in enumerate(host.commands()) if c.startswith("docker logs")][-1]
    assert host.commands().index(create) < logs_after_ready < host.commands().index(delete)
    # memory is read before the benchmark sandbox exists
    assert host.commands().index("docker stats --no-stream --format {{json .}} " + CLUSTER) < host.commands().index(create)


@pytest.mark.oracle("self")
def test_a_stale_kubelet_line_is_not_taken_for_this_cold_start(run, host):
    host.log.append(kubelet("0415 09:00:00.000000", "openshell/agentsec-bench", "99s"))
    host.bench_e2e = None  # the kubelet logged nothing for the new pod within the tail
    ok, res = run({"cold_start_sandbox": "agentsec-bench"})
    assert ok and res["metrics"]["cold_start_ms"] is not None
    assert res["metrics"]["pod_start_s"] is None and res["pod_start"]["observation"] is None
    assert "no new kubelet startup line for pod */agentsec-bench" in res["pod_start"]["reason"]
    assert len([c for c in host.commands() if c.startswith("docker logs")]) == 1 + stack_metrics.LOG_RETRIES


@pytest.mark.oracle("self")
def test_existing_sandbox_is_refused_and_left_alone(run, host):
    host.sandboxes["agentsec-bench"] = ["Ready"]
    ok, res = run({"cold_start_sandbox": "agentsec-bench"})
    assert not ok and "cold_start_sandbox 'agentsec-bench' already exists (phase Ready)" in res["msg"]
    assert host.commands("openshell") == ["openshell sandbox list"]
    assert "agentsec-bench" in host.sandboxes


@pytest.mark.oracle("self")
def test_check_mode_skips_the_cold_start(run, host):
    ok, res = run({"cold_start_sandbox": "agentsec-bench"}, check_mode=True)
    assert ok and res["cold_start"] == {"sandbox": "agentsec-bench", "skipped": True, "reason": "check mode", "ms": None,
                                        "phases": [], "deleted": False}
    assert not host.commands("openshell")
    assert res["metrics"]["cluster_container_mb"] == 732.0 and res["metrics"]["cold_start_ms"] is None
    # without a cold start the pod start is NemoClaw's own sandbox's latest
    assert res["pod_start"]["sandbox"] == "my-assistant" and res["metrics"]["pod_start_s"] == 14.5


@pytest.mark.oracle("self")
def test_failing_create_names_the_command_and_its_stderr(run, host):
    host.create_result = (1, "", "Error:   x Gateway 'nemoclaw' is not reachable.\n")
    ok, res = run({"cold_start_sandbox": "agentsec-bench"})
    assert not ok
    assert "'/fake/bin/openshell sandbox create --name agentsec-bench --from base -- true' failed with exit code 1" in res["msg"]
    assert "Gateway 'nemoclaw' is not reachable" in res["msg"]
    assert "openshell sandbox delete agentsec-bench" not in host.commands()  # it never existed


@pytest.mark.oracle("self")
def test_timeout_deletes_the_half_created_sandbox(run, host):
    host.provisioning_polls = 1000
    ok, res = run({"cold_start_sandbox": "agentsec-bench", "cold_start_timeout": 60})
    assert not ok and "was not Ready within cold_start_timeout=60s (last phase Provisioning)" in res["msg"]
    assert "the sandbox was deleted" in res["msg"] and res["cold_start"]["deleted"]
    assert host.commands("openshell")[-1] == "openshell sandbox delete agentsec-bench"
    assert "agentsec-bench" not in host.sandboxes


@pytest.mark.oracle("self")
def test_error_phase_fails_and_cleans_up(run, host):
    host.final_phase = "Error"
    ok, res = run({"cold_start_sandbox": "agentsec-bench"})
    assert not ok and "sandbox 'agentsec-bench' entered phase Error while provisioning; the sandbox was deleted" in res["msg"]
    assert res["cold_start"]["phases"] == ["Provisioning", "Error"] and "agentsec-bench" not in host.sandboxes


@pytest.mark.oracle("self")
def test_missing_container_is_reported_not_fatal(run, host):
    ok, res = run({"containers": [CLUSTER, "ollama-proxy"]})
    assert ok
    containers = res["metrics"]["containers"]
    assert containers[CLUSTER]["mem_mb"] == 732.0
    assert containers["ollama-proxy"]["state"] == "missing" and "No such container" in containers["ollama-proxy"]["msg"]
    assert res["errors"] == []


@pytest.mark.oracle("self")
def test_no_cluster_container(run, host):
    del host.containers[CLUSTER]
    ok, res = run({})
    assert ok and res["metrics"]["containers"][CLUSTER]["state"] == "missing"
    assert res["metrics"]["cluster_container_mb"] is None and res["metrics"]["pod_start_s"] is None
    assert res["pod_start"]["reason"] == f"the cluster container {CLUSTER} does not exist"
    assert "cluster_container_mb" in res["metrics"]["stack_components"]["missing"]


@pytest.mark.oracle("self")
def test_docker_daemon_down_is_an_error_not_a_missing_container(run, host):
    host.daemon_down = True
    ok, res = run({})
    assert ok and res["metrics"]["containers"][CLUSTER]["state"] == "error"
    assert len(res["errors"]) == 2 and all("Cannot connect to the Docker daemon" in e for e in res["errors"])
    assert res["errors"][1].startswith(f"'/fake/bin/docker logs --tail 10000 {CLUSTER}' failed with exit code 1")
    assert res["metrics"]["pod_start_s"] is None and res["metrics"]["ollama_mb"] is not None


@pytest.mark.oracle("self")
def test_docker_not_found_leaves_docker_figures_unmeasured(run, host, monkeypatch):
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                        lambda self, name, required=False, opt_dirs=None: None if name == "docker" else f"/fake/bin/{name}")
    ok, res = run({})
    assert ok and res["metrics"]["cluster_container_mb"] is None
    assert res["errors"] == ["docker_bin 'docker' not found; container memory and pod start were not measured"]
    assert res["metrics"]["ollama_mb"] is not None and not host.commands("docker")


@pytest.mark.oracle("self")
@pytest.mark.parametrize(("args", "message"), [
    ({"process_groups": {"ollama": ["(^|/)ollama serve"], "gw": ["openclaw-gateway", "(unclosed"]}},
     "process_groups.gw: invalid regular expression '(unclosed'"),
    ({"cold_start_timeout": -5}, "cold_start_timeout -5 must be a positive number of seconds"),
    ({"cold_start_sandbox": "Bench_1"}, "cold_start_sandbox 'Bench_1' is not a valid sandbox name"),
    ({"log_tail": -1}, "log_tail -1 must be 0"),
])
def test_bad_input_is_named(run, host, args, message):
    ok, res = run(args)
    assert not ok and message in res["msg"]
    assert not host.calls


@pytest.mark.oracle("self")
def test_unparseable_output_fails_with_the_command(run, host, macos_ps):
    host.containers[CLUSTER] = "a lot / 15.6GiB"
    ok, res = run({})
    assert not ok and "docker stats" in res["msg"] and "cannot read the size 'a lot '" in res["msg"]
    host.containers[CLUSTER] = "732MiB / 15.6GiB"
    host.ps = "  PID   RSS COMMAND\n" + host.ps
    ok, res = run({})
    assert not ok and "ps axww -o pid=,rss=,args=" in res["msg"] and "line 1" in res["msg"]
    host.ps = macos_ps.text
    host.log.append(kubelet("0416 12:00:00.000000", "openshell/x", "soon", slo=1))
    ok, res = run({})
    assert not ok and f"docker logs --tail 10000 {CLUSTER}" in res["msg"] and "cannot read the duration 'soon'" in res["msg"]


@pytest.mark.oracle("self")
def test_custom_groups_and_whole_log(run, host):
    host.ps = (" 3069  84304 dockerd\n 3084  40996 containerd --config /var/run/docker/containerd/containerd.toml\n"
               f"{os.getpid():5d}  30000 /usr/local/bin/dockerd (this module, never counted)\n")
    ok, res = run({"process_groups": {"docker_desktop": [r"(^|/)dockerd\b", r"(^|/)containerd\b"]}, "log_tail": 0})
    assert ok and res["metrics"]["docker_desktop_processes"] == 2
    assert res["metrics"]["docker_desktop_mb"] == round((84304 + 40996) / 1024, 1)
    assert res["metrics"]["ollama_mb"] is None and "ollama" not in res["metrics"]["processes"]
    assert f"docker logs --tail all {CLUSTER}" in host.commands()


@pytest.mark.oracle("self")
@pytest.mark.parametrize("usage", ["0B / 0B", "-- / --"])
def test_docker_stats_without_figures_is_an_error_not_0_mb(run, host, usage):
    host.containers[CLUSTER] = usage  # what docker/cli prints when it has no figures (see test_metrics)
    ok, res = run({})
    assert ok and res["metrics"]["containers"][CLUSTER]["state"] == "error"
    assert res["metrics"]["cluster_container_mb"] is None and "cluster_container_mb" in res["metrics"]["stack_components"]["missing"]
    assert res["errors"] == [f"docker stats {CLUSTER}: docker stats reported no memory figures ({usage!r}); the container's memory was not measured"]
    assert res["comparison"]["stack_total_mb"]["ratio"] is None  # a partial total gets no ratio
