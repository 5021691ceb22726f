"""sandbox_verify's peer discovery (option peer_command, target key sandbox.peers): every sandbox of a host is probed
against every *other* sandbox pod's address, taken from the cluster's pod list and never from a sandbox.

The pod list has the shape of the Kubernetes API (core/v1 PodList: items[].metadata.name, status.podIP and
status.podIPs[].ip; the agent-sandbox controller names each pod after its Sandbox, kubernetes-sigs/agent-sandbox
v0.1.0 controllers/sandbox_controller.go L386-431). The "sandboxes" here are this machine reached through a plain
exec prefix, and the peers are loopback addresses with a listener the test opens itself, so the probe's outcome is
the kernel's: a real connection FAILs L3.peer_direct, a refused one passes.
"""
from __future__ import annotations

import json
import socket
import sys
import threading

import pytest

from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _verify_isolation as VI

# loopback only: OPEN has a listener on the pod SSH port, CLOSED none
OPEN = "127.83.41.7"
CLOSED = "127.83.41.8"


def pod(name, ip=None, ips=None, kind="Pod"):
    status = {"phase": "Running"}
    if ip:
        status["podIP"] = ip
    if ips:
        status["podIPs"] = [{"ip": i} for i in ips]
    meta = {"name": name, "namespace": "openshell", "labels": {"agents.x-k8s.io/sandbox-name-hash": "1"}}
    return {"apiVersion": "v1", "kind": kind, "metadata": meta, "status": status}


def pod_list(*items):
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(items), "metadata": {"resourceVersion": ""}})


@pytest.mark.oracle("upstream")
def test_pod_list_gives_each_sandbox_its_addresses():
    text = pod_list(pod("sb-a", "10.42.0.5"), pod("sb-b", "10.42.0.6", ips=["10.42.0.6", "fd00::6"]), pod("pending"))
    assert VI.peers_from_pods(text) == {"sb-a": ["10.42.0.5"], "sb-b": ["10.42.0.6", "fd00::6"]}


@pytest.mark.oracle("self")
@pytest.mark.parametrize(("text", "match"), [
    ("not json", "not JSON"),
    (json.dumps({"kind": "SandboxList", "items": []}), "not a Kubernetes pod list"),
    (pod_list(pod("sb-a", "sb-a.openshell.svc")), "not an IP address"),
    (pod_list(pod("sb-a", "10.42.0.5", kind="Service")), "not a named pod"),
])
def test_what_is_not_a_pod_list_is_refused_by_name(text, match):
    with pytest.raises(ValueError, match=match):
        VI.peers_from_pods(text)


@pytest.mark.oracle("self")
def test_a_sandbox_is_never_its_own_peer_and_given_addresses_come_first():
    pods = {"sb-a": ["10.42.0.5"], "sb-b": ["10.42.0.6"], "sb-c": ["10.42.0.7", "10.42.0.6"]}
    assert VI.peers_of("sb-a", pods) == ["10.42.0.6", "10.42.0.7"]
    assert VI.peers_of("sb-b", pods, ["127.0.0.9:80"]) == ["127.0.0.9:80", "10.42.0.5", "10.42.0.7"]
    assert VI.peers_of("lonely", {}) == []


@pytest.fixture
def listener():
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((OPEN, VI.PEER_PORT))
    srv.listen(8)
    srv.settimeout(0.2)
    stop = threading.Event()

    def serve():
        for _attempt in range(600):  # bounded: at most ~120 s
            if stop.is_set():
                return
            try:
                conn, _addr = srv.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(b"SSH-2.0-peer\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(5)
    srv.close()


@pytest.fixture
def sandbox_verify():
    # imported when a test runs, not at collection: importing the module registers the proxy probes in _verify's
    # catalogue, which test_verify.py expects to hold only the core checks when it runs
    from ansible_collections.agentsec.nemoclaw.plugins.modules import sandbox_verify as module  # noqa: PLC0415

    return module


def host_args(tmp_path, pods_text, rc=0):
    cmd = tmp_path / "pods.py"
    cmd.write_text(f"import sys\nsys.stdout.write({pods_text!r})\nsys.exit({rc})\n")
    return {"exec": ["env", "AGENTSEC_SANDBOX={sandbox}"], "sandboxes": ["sb-a", "sb-b"], "python": sys.executable,
            "checks": ["L3.peer_direct"], "peer_command": [sys.executable, str(cmd)], "fail_on": "none"}


@pytest.mark.oracle("kernel", "upstream")
def test_each_sandbox_is_probed_against_the_other_pods_and_the_probe_can_fail(module_runner, tmp_path, listener, sandbox_verify):
    # sb-a's peer is sb-b at OPEN (a listener answers: a direct connection opens -> fail); sb-b's peer is sb-a at
    # CLOSED (nothing listens -> refused -> pass). Neither is probed against its own address.
    text = pod_list(pod("sb-a", CLOSED), pod("sb-b", OPEN))
    ok, res = module_runner(sandbox_verify.main, host_args(tmp_path, text))
    assert ok, res
    got = {n: {f["id"]: f["status"] for f in r["findings"]} for n, r in res["sandboxes"].items()}
    assert got == {"sb-a": {"L3.peer_direct": "fail"}, "sb-b": {"L3.peer_direct": "pass"}}
    assert res["sandboxes"]["sb-a"]["peer_addresses"] == [OPEN]
    assert res["sandboxes"]["sb-b"]["peer_addresses"] == [CLOSED]


@pytest.mark.oracle("self")
def test_a_host_with_one_sandbox_skips_the_peer_checks_saying_why(module_runner, tmp_path, sandbox_verify):
    args = {**host_args(tmp_path, pod_list(pod("sb-a", CLOSED))), "sandboxes": ["sb-a"]}
    ok, res = module_runner(sandbox_verify.main, args)
    finding = res["sandboxes"]["sb-a"]["findings"][0]
    assert ok and finding["status"] == "skipped", res
    assert "no other sandbox of this host has a pod address" in json.dumps(finding)


@pytest.mark.oracle("self")
def test_a_failing_peer_command_is_a_verifier_error_not_a_skip(module_runner, tmp_path, sandbox_verify):
    ok, res = module_runner(sandbox_verify.main, host_args(tmp_path, "", rc=3))
    assert not ok and "peer discovery" in res["msg"] and "exited 3" in res["msg"], res
    # and the peer check of each sandbox says why it could not run, not that there is no other sandbox
    assert all("peer discovery" in json.dumps(r["findings"]) for r in res["sandboxes"].values()), res["sandboxes"]


@pytest.mark.oracle("self")
def test_one_discovered_sandbox_needs_no_pod_list(module_runner, tmp_path, sandbox_verify):
    # discovery lists one sandbox: there is no peer, so the pod list is not read (a failing peer command stays unrun)
    args = {**host_args(tmp_path, "", rc=3), "sandboxes": [], "discover": [sys.executable, "-c", "print('sb-a')"]}
    ok, res = module_runner(sandbox_verify.main, args)
    assert ok, res
    assert res["sandboxes"]["sb-a"]["findings"][0]["status"] == "skipped"
    assert "no other sandbox on this host" in json.dumps(res["sandboxes"]["sb-a"]["findings"][0])
