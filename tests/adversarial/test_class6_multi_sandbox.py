"""Class 6 - several sandboxes on one host: with sandboxes A and B on one gateway, A must not reach B (directly or
through the proxy), see B (/proc, files in /tmp, /sandbox and /dev/shm, SysV shared memory, B's workspace PVC),
signal B, or share state with B (the keyring, abstract unix sockets, per-uid counters) - and must not take B's
memory or CPU.

gap: A=sb-u, B=sb-v (v0.0.26 as shipped); hardened: A=sb-a, B=sb-b (hardening with hardening_resources). What
holds already in v0.0.26 (each pod has its own PID, IPC, mount and network namespaces) is checked with a positive
control: the same probe from a second session of B itself must see B's traces, so the probe can fail. Residuals -
what no interface of the target fixes - are asserted as they are (docs/adversarial.md).
"""
import json
import os
import secrets
import subprocess
import sys
import time

import pytest
import yaml
from conftest import CLI_ENV, GAP, GATEWAY, HARDENED, PROXY, PROXY_GAP, RESOURCES, ROOT, SSH_PORT, statuses

pytestmark = [pytest.mark.adversarial]
PAIRS = {"gap": GAP, "hardened": HARDENED}


@pytest.mark.oracle("kernel", "upstream")
@pytest.mark.parametrize("config", sorted(PAIRS))
def test_a_cannot_reach_b_directly(lab, peer_listeners, config):
    a, b = PAIRS[config]
    got = lab.agent(a, "tcp", host=peer_listeners[b], port=SSH_PORT)
    if config == "gap":  # v0.0.26 lab profile direct_egress: the pod namespace forwards the agent's packets
        assert got == {"result": "connected", "answer": "ERR\n"}, got
    else:  # L3: forwarding off in the pod namespace (netguard init container)
        assert got["result"] != "connected", got


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize("config", ["default", "hardened", "host_header_gap"])
def test_a_cannot_reach_b_through_the_proxy(lab, peer_listeners, config):
    a, b = {"default": GAP, "hardened": HARDENED, "host_header_gap": (PROXY_GAP, GAP[1])}[config]
    target = f"{peer_listeners[b]}:{SSH_PORT}"
    connect = lab.agent(a, "proxy_connect", proxy=PROXY, target=target)
    forward = lab.agent(a, "proxy_forward", proxy=PROXY, uri_authority=target, host_header="allowed.lab:80")
    assert (connect["result"], connect.get("status")) == ("refused", 403), connect
    if config == "host_header_gap":
        # decided on the Host header, sent to the URI authority: the peer's SSH listener answers (the lab policy's
        # allowed_ips is the whole gateway subnet, so the SSRF guard lets the peer's pod IP through)
        assert forward.get("status") != 403, forward
    else:
        assert forward.get("status") == 403, forward


@pytest.mark.oracle("kernel", "docker")
@pytest.mark.parametrize("vantage", ["peer", "same-sandbox-control"])
@pytest.mark.parametrize("config", sorted(PAIRS))
def test_a_cannot_see_bs_processes_files_or_shared_memory(lab, config, vantage):
    a, b = PAIRS[config]
    marker, key = f"agentsec-adv-{secrets.token_hex(4)}", 0x4A5E0000 + secrets.randbelow(0xFFFF)
    left = lab.agent(b, "marker", marker=marker, shm_key=key, seconds=30)
    try:
        seen = lab.agent(a if vantage == "peer" else b, "look", marker=marker, shm_key=key, peer=f"workspace-{b}")
    finally:
        lab.agent(b, "cleanup", marker=marker, shm_key=key)
    assert left["files"][f"/tmp/{marker}"] == "written" and left["shm"] == "created", left
    if vantage == "same-sandbox-control":  # the probe sees what is there
        assert seen["processes"] and f"/tmp/{marker}" in seen["files"] and seen["shm"] == "found", seen
    else:  # own PID, mount and IPC namespaces per pod; B's workspace PVC is not mounted in A
        assert seen == {"processes": [], "files": [], "shm": "ENOENT", "peer_mounts": []}, seen


@pytest.mark.oracle("kernel")
@pytest.mark.parametrize("config", sorted(PAIRS))
def test_a_cannot_connect_to_bs_abstract_unix_socket(lab, config):
    a, b = PAIRS[config]
    tag = secrets.token_hex(4)
    victim = lab.agent(b, "victim", state=f"/tmp/agentsec-adv-victim-{tag}.json", abstract=f"agentsec-adv-peer-{tag}", seconds=15)
    assert victim["result"] == "listening", victim
    # abstract names live in the network namespace: A's agent namespace is not B's
    assert lab.agent(a, "abstract_connect", abstract=f"agentsec-adv-peer-{tag}")["result"] == "ECONNREFUSED"


@pytest.mark.oracle("kernel")
@pytest.mark.parametrize("config", sorted(PAIRS))
def test_a_cannot_leave_state_for_b_in_the_keyring(lab, config):
    a, b = PAIRS[config]
    secret = f"agentsec-adv:{secrets.token_hex(6)}"
    put = lab.agent(a, "key_put", desc=secret, seconds=60)
    try:
        got = lab.agent(b, "key_find", prefix=secret, unlink=True)
    finally:
        if put["result"] == "added":
            lab.agent(a, "key_find", prefix=secret, unlink=True)
    if config == "gap":  # one user keyring per uid per user namespace: every sandbox of this uid on the kernel
        assert put["result"] == "added" and any(secret in d for d in got["found"]) and got["unlinked"] == 1, (put, got)
    else:  # hardened filter: add_key/keyctl/request_key -> EPERM
        assert (put["result"], got["result"]) == ("EPERM", "EPERM"), (put, got)


@pytest.mark.oracle("kernel")
@pytest.mark.parametrize("config", sorted(PAIRS))
def test_residual_the_per_uid_process_count_is_shared(lab, config):
    """Residual: every sandbox runs its agent as the same uid in the same (initial) user namespace, and the kernel
    counts processes (RLIMIT_NPROC) and inotify instances/watches (fs.inotify.max_user_*) per uid per user namespace
    (kernel/ucount.c). A measures B's process count through a fork under a lowered RLIMIT_NPROC - an information
    channel across sandboxes - and B could exhaust the uid's inotify instances for A. No field of the Sandbox pod
    template changes the agent's uid mapping on this line (docs/adversarial.md); hardening does not close it."""
    a, b = PAIRS[config]
    sa, sb = lab.agent(a, "status"), lab.agent(b, "status")
    assert sa["Uid"].split()[0] == sb["Uid"].split()[0] and sa["uid_map"] == sb["uid_map"] == "0 0 4294967295", (sa, sb)
    deltas = []
    for _dummy in range(3):  # other labs' processes of this uid come and go: three tries
        before = lab.agent(a, "uid_procs")["count"]
        assert lab.agent(b, "spawn_sleepers", count=30, seconds=12)["count"] == 30
        after = lab.agent(a, "uid_procs")["count"]
        deltas.append(after - before)
        if 25 <= after - before <= 40:
            break
        time.sleep(13)
    assert any(25 <= d <= 40 for d in deltas), deltas


@pytest.mark.oracle("docker", "kernel")
@pytest.mark.parametrize("config", sorted(PAIRS))
def test_a_cannot_take_bs_memory_or_cpu(lab, config):
    a = PAIRS[config][0]
    cg = lab.agent(a, "cgroup")
    hog = lab.agent(a, "memory", mb=768, timeout=120)["result"]
    if config == "gap":
        assert hog == "survived", hog
        assert cg["cpu"] in ("-1", "max 100000"), cg
    else:  # resources.limits from hardening_resources: the OOM killer of the pod's own cgroup ends the hog
        assert hog == "killed:SIGKILL", hog
        assert cg["memory"] in ("536870912", str(512 << 20)) and cg["cpu"] in ("50000", "50000 100000"), (cg, RESOURCES)
    assert cg["pids"] == "max", cg  # residual: no per-pod pids field (the kubelet's podPidsLimit is node-wide)


@pytest.mark.oracle("kernel", "upstream")
@pytest.mark.parametrize("config", ["gap", "hardened", "host_header_gap"])
def test_the_verifier_reports_what_a_can_reach_of_b(lab, peer_listeners, config):
    """The verifier's isolation checks (plugins/module_utils/_verify_isolation.py) agree with the attacks above."""
    a, b = {"gap": GAP, "hardened": HARDENED, "host_header_gap": (PROXY_GAP, GAP[1])}[config]
    checks = ["L1.pid_namespace", "L2.keyring", "L3.peer_direct", "L4.peer_via_proxy"]
    got = statuses(lab.verify(a, checks, peer_addresses=[peer_listeners[b]]))
    want = {"gap": {"L1.pid_namespace": "pass", "L2.keyring": "fail", "L3.peer_direct": "fail", "L4.peer_via_proxy": "pass"},
            "hardened": dict.fromkeys(checks, "pass"),
            "host_header_gap": {"L1.pid_namespace": "pass", "L2.keyring": "fail", "L3.peer_direct": "fail",
                                "L4.peer_via_proxy": "fail"}}[config]
    assert got == want


@pytest.mark.oracle("kernel", "upstream")
def test_the_verifier_finds_every_peer_itself(lab, peer_listeners):
    """Host mode with the target contract's own peer command (targets/openshell_k3s.yml sandbox.peers, run through
    ansible like the verify role runs it): every sandbox is probed against every other sandbox pod of the gateway,
    never its own, with addresses from the cluster's pod list. The hardened pair holds, the gap pair does not."""
    peers = yaml.safe_load((ROOT / "targets" / "openshell_k3s.yml").read_text())["sandbox"]["peers"]
    names = [*HARDENED, *GAP]
    args = {"exec": lab.exec_prefix("{sandbox}"), "sandboxes": names, "environment": {k: CLI_ENV[k] for k in ("XDG_CONFIG_HOME", "DOCKER_HOST")},
            "checks": ["L3.peer_direct"], "peer_command": [p.replace("{gateway}", GATEWAY) for p in peers], "fail_on": "none"}
    proc = subprocess.run(["ansible", "localhost", "-i", "localhost,", "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}",
                           "-m", "agentsec.nemoclaw.sandbox_verify", "-a", json.dumps(args)], capture_output=True, text=True,
                          timeout=600, check=False, cwd=ROOT,
                          env={**os.environ, "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"})
    # ansible.cfg's profile_tasks callback prints its timing lines around the JSON document: read from the first brace
    assert "{" in proc.stdout, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    doc, _end = json.JSONDecoder().raw_decode(proc.stdout[proc.stdout.index("{"):])
    result = doc["plays"][0]["tasks"][0]["hosts"]["localhost"]
    assert not result.get("failed"), result.get("msg")
    by_name = result["sandboxes"]
    for name in names:
        used = by_name[name]["peer_addresses"]
        want = {ip for other, ip in peer_listeners.items() if other != name}
        assert want <= set(used) and peer_listeners[name] not in used, (name, used)
    got = {n: [f["status"] for f in by_name[n]["findings"]] for n in names}
    assert got == {"sb-a": ["pass"], "sb-b": ["pass"], "sb-u": ["fail"], "sb-v": ["fail"]}, got
