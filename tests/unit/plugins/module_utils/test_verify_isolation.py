"""The cross-sandbox isolation checks (plugins/module_utils/_verify_isolation.py): catalogue, parameters, decisions,
and the probes against this machine's kernel and loopback-only servers the test starts itself. The live behaviour
against two lab sandboxes is in tests/adversarial/test_class6_multi_sandbox.py.
"""
from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
import threading
import time

import pytest

from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _verify as V
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _verify_isolation as VI

BASE = {"proxy": "10.200.0.1:3128", "allowed_host": "allowed.lab:443", "timeout": 1.0, "egress_timeout": 0.5}


@pytest.mark.oracle("self")
def test_catalogue_has_the_verify_format_and_registers_itself():
    assert VI in V.EXTENSIONS  # importing the module registers it (as it does when piped into a sandbox)
    for cid, meta in VI.CHECKS.items():
        assert len(meta) == 5 and meta[0] in V.LAYERS and cid.startswith(meta[0] + ".") and meta[2] in V.SEVERITY_RANK
    assert set(VI.CHECKS) <= set(V.select_checks([], []))
    assert set(VI.plan(BASE)) == set(VI.CHECKS)


@pytest.mark.oracle("self")
def test_peer_checks_are_skipped_without_peer_addresses():
    probes = VI.plan(BASE)
    assert "skip" in probes["L3.peer_direct"][0]() and "skip" in probes["L4.peer_via_proxy"][0]()


@pytest.mark.oracle("self")
@pytest.mark.parametrize(("value", "want"), [("172.30.77.5", ("172.30.77.5", 2222)), ("172.30.77.5:80", ("172.30.77.5", 80)),
                                             ("[fd00::5]:2222", ("fd00::5", 2222)), ("fd00::5", ("fd00::5", 2222))])
def test_peer_addresses(value, want):
    assert VI.parse_peers([value]) == [want]


@pytest.mark.oracle("self")
@pytest.mark.parametrize("value", ["sb-b.openshell.svc", "sb-b:2222", "172.30.77.5:0", ""])
def test_peer_addresses_refuse_names_and_bad_ports(value):
    with pytest.raises(ValueError, match="peer_addresses"):
        VI.parse_peers([value])


@pytest.mark.oracle("self")
def test_decisions():
    assert VI.decide_keyring({"result": "usable", "keyring": 5}, {})[0] == V.FAIL
    assert VI.decide_keyring({"result": "EPERM"}, {})[0] == V.PASS
    assert VI.decide_keyring({"result": "ENOSYS"}, {})[0] == V.ERROR
    assert VI.decide_peer_direct({"probes": [{"peer": "a:1", "result": "ECONNREFUSED"}, {"peer": "b:1", "result": "timeout"}]}, {})[0] == V.PASS
    assert VI.decide_peer_direct({"probes": [{"peer": "a:1", "result": "connected"}]}, {})[0] == V.FAIL
    assert VI.decide_peer_direct({"probes": []}, {})[0] == V.ERROR
    refused = {"result": "answered", "status": 403}
    assert VI.decide_peer_via_proxy({"probes": [{"peer": "a:1", "request": "connect", **refused}]}, {})[0] == V.PASS
    assert VI.decide_peer_via_proxy({"probes": [{"peer": "a:1", "request": "forward", "result": "answered", "status": 502}]}, {})[0] == V.FAIL
    assert VI.decide_peer_via_proxy({"probes": [{"peer": "a:1", "request": "forward", "result": "closed"}]}, {})[0] == V.FAIL
    assert VI.decide_peer_via_proxy({"probes": [{"peer": "a:1", "request": "connect", "result": "proxy-unreachable"}]}, {})[0] == V.ERROR
    raw = {"peer": "a:1", "request": "forward", "result": "proxy-error", "error": "not an HTTP answer: b'ERR\\n'"}
    assert VI.decide_peer_via_proxy({"probes": [raw]}, {})[0] == V.FAIL
    ok = {"result": "read", "init": ["/usr/bin/python3", "/opt/openshell/bin/openshell-sandbox"], "foreign": []}
    assert VI.decide_pid_namespace(ok, {})[0] == V.PASS
    assert VI.decide_pid_namespace({**ok, "init": ["/sbin/init"]}, {})[0] == V.FAIL
    assert VI.decide_pid_namespace({**ok, "foreign": [42]}, {})[0] == V.FAIL


@pytest.mark.oracle("kernel")
@pytest.mark.skipif(sys.platform != "linux", reason="Linux keyctl")
def test_keyring_probe_asks_the_kernel():
    """Outside any filter the uid's user keyring answers with an id (no key is created); under a seccomp filter that
    denies keyctl with EPERM - the hardened one - the probe sees EPERM."""
    assert VI.probe_keyring()["result"] in ("usable", "EPERM")  # EPERM where the test runner is itself filtered
    code = ("import seccomp,errno,sys;f=seccomp.SyscallFilter(seccomp.ALLOW);f.add_rule(seccomp.ERRNO(errno.EPERM),'keyctl');"
            "f.load();sys.path[:0]=sys.argv[1:];from ansible_collections.agentsec.nemoclaw.plugins.module_utils import "
            "_verify_isolation as VI;print(VI.probe_keyring()['result'])")
    collections = str(pathlib.Path(__file__).resolve().parents[4] / ".build" / "collections")  # plain namespace packages
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    out = subprocess.run(["/usr/bin/python3", "-I", "-c", code, collections], capture_output=True, text=True, env=env, timeout=60,
                         check=False)
    if out.returncode and "ModuleNotFoundError" in out.stderr:
        pytest.skip(f"the system python3 lacks a module: {out.stderr.strip().splitlines()[-1]} (python3-seccomp)")
    assert out.stdout.strip() == "EPERM", out.stderr[-500:]


@pytest.mark.oracle("kernel")
def test_pid_namespace_probe_reads_this_machine():
    obs = VI.probe_pid_namespace()
    assert obs["result"] == "read" and obs["readable"] >= 1 and os.getpid() not in obs["foreign"]


def _listener(backlog):
    """A TCP listener on a free loopback port: (socket, port)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(backlog)
    return srv, srv.getsockname()[1]


@pytest.mark.oracle("kernel")
def test_peer_direct_probe_against_a_loopback_listener():
    srv, port = _listener(4)

    def answer():
        conn, dummy = srv.accept()
        conn.recv(64)
        conn.sendall(b"ERR\n")
        conn.close()

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    reached = VI.probe_peer_direct([("127.0.0.1", port)], 2.0)
    srv.close()
    thread.join(5)
    assert reached["probes"][0] == {"peer": f"127.0.0.1:{port}", "result": "connected", "answer": "ERR\n"}
    closed = VI.probe_peer_direct([("127.0.0.1", port)], 2.0)
    assert closed["probes"][0]["result"] == "ECONNREFUSED"
    assert VI.decide_peer_direct(reached, {})[0] == V.FAIL and VI.decide_peer_direct(closed, {})[0] == V.PASS


@pytest.mark.oracle("kernel")
def test_peer_direct_probe_waits_one_timeout_for_all_dropped_peers():
    # A listener whose accept queue is full: the kernel drops further SYNs (tcp_abort_on_overflow 0), so a connect
    # neither opens nor is refused - what a peer behind a DROP looks like. Five such peers cost one timeout, not five.
    srv, port = _listener(0)
    fillers = []
    for _attempt in range(8):  # bounded: fill the accept queue (backlog 0 holds one, the SYN queue a little more)
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(("127.0.0.1", port))
        fillers.append(c)
    time.sleep(0.2)
    start = time.monotonic()
    got = VI.probe_peer_direct([("127.0.0.1", port)] * 5 + [("127.0.0.1", 1)], 0.6)
    took = time.monotonic() - start
    for c in fillers:
        c.close()
    srv.close()
    results = [p["result"] for p in got["probes"]]
    assert results[-1] == "ECONNREFUSED" and results[:5] == ["timeout"] * 5, results
    assert took < 1.5, took
    assert VI.decide_peer_direct(got, {})[0] == V.PASS


def _cgroup_tree(tmp_path, self_cgroup, files):
    proc, root = tmp_path / "proc", tmp_path / "cgroup"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "cgroup").write_text(self_cgroup)
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return str(root), str(proc)


@pytest.mark.oracle("self")
@pytest.mark.parametrize(("self_cgroup", "files", "controller", "status", "limit"), [
    # v2, a namespaced cgroup (its own root): the word "max" is unlimited
    ("0::/\n", {"memory.max": "max\n", "pids.max": "2048\n"}, "memory", V.FAIL, "unlimited"),
    ("0::/\n", {"memory.max": "max\n", "pids.max": "2048\n"}, "pids", V.PASS, 2048),
    # v2 in the host's cgroup namespace: the sandbox's own level, else the smallest visible ancestor
    ("0::/kubepods/pod1/c1\n", {"kubepods/pod1/c1/memory.max": "max\n", "kubepods/pod1/memory.max": "536870912\n",
                                "kubepods/memory.max": "8589934592\n"}, "memory", V.PASS, 536870912),
    # v1: the controller's own hierarchy; PAGE_COUNTER_MAX rounded to pages is unlimited
    ("4:memory:/docker/abc\n5:pids:/docker/abc\n0::/\n", {"memory/memory.limit_in_bytes": "9223372036854771712\n"},
     "memory", V.FAIL, "unlimited"),
    ("4:memory:/docker/abc\n", {"memory/memory.limit_in_bytes": "268435456\n"}, "memory", V.PASS, 268435456),
    # nothing readable (Landlock, or no such controller): an error, never a pass
    ("0::/\n", {}, "memory", V.ERROR, None),
    ("4:memory:/docker/abc\n", {"memory/memory.limit_in_bytes": "1\n"}, "pids", V.ERROR, None),
])
def test_cgroup_limits(tmp_path, self_cgroup, files, controller, status, limit):
    root, proc = _cgroup_tree(tmp_path, self_cgroup, files)
    obs = VI.probe_cgroup_limit(controller, root, proc)
    assert VI.decide_cgroup_limit(obs, {})[0] == status, obs
    assert obs.get("limit") == limit


@pytest.mark.oracle("self")
def test_cgroup_limit_without_proc_self_cgroup_is_an_error(tmp_path):
    obs = VI.probe_cgroup_limit("memory", str(tmp_path), str(tmp_path / "nothing"))
    assert obs["result"] == "unreadable" and VI.decide_cgroup_limit(obs, {})[0] == V.ERROR
