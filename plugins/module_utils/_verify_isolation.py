# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)
"""Verifier probes for the isolation of one sandbox from the other sandboxes of the same host (issue 13, class 6).

Same contract as _verify_proxy: CHECKS (id -> (layer, title, severity, expected, remediation)) and
``plan(params) -> {id: (probe, decide)}``. Probes run as the agent inside the sandbox, standard library only, bounded
in time, and send traffic only to the addresses given in ``peer_addresses`` (other sandboxes' pod IPs, optionally
``ip:port``; port 2222 is every OpenShell v0.0.26 pod's SSH listener, OPENSHELL_SSH_LISTEN_ADDR, crates/openshell-
server/src/sandbox/mod.rs @v0.0.26 L1222) and to the proxy. Nothing is created: the keyring probe only asks for the
user keyring's id.
"""

from __future__ import annotations

import ctypes
import errno as _errno
import ipaddress
import json
import os
import platform
import selectors
import socket
import time

from ansible_collections.agentsec.nemoclaw.plugins.module_utils._verify import ERROR, FAIL, PASS, parse_hostport

PEER_PORT = 2222
PEER_CHECKS = frozenset({"L3.peer_direct", "L4.peer_via_proxy"})
SYS_KEYCTL = {"x86_64": 250, "aarch64": 219}
KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING = 0, -4

CHECKS = {
    "L1.pid_namespace": ("L1", "Only this sandbox's processes are visible", "high",
                         "PID 1 is this sandbox's supervisor and every readable process shares this PID namespace",
                         "Keep one PID namespace per sandbox pod (no hostPID, no shared process namespace across sandboxes)."),
    "L2.keyring": ("L2", "The uid's user keyring is not usable", "high",
                   "keyctl(KEYCTL_GET_KEYRING_ID, @u) refused (EPERM)",
                   "Deny add_key/keyctl/request_key (hardened filter, keyring group): every sandbox of one Docker VM runs "
                   "its agent as the same uid and shares that uid's user keyring."),
    "L3.peer_direct": ("L3", "Other sandboxes are not reachable directly", "critical",
                       "no TCP connection to another sandbox's pod address opens",
                       "Turn forwarding off in the pod network namespace (hardening role, l3) and keep the bypass rules."),
    "L4.peer_via_proxy": ("L4", "The proxy does not relay to other sandboxes", "high",
                          "HTTP 403 to CONNECT <peer>:<port> and to GET http://<peer>:<port>/ with an allowed Host header",
                          "Keep pod addresses out of the policy (no allowed_ips covering the gateway's pod network) and decide "
                          "forward requests on the URI authority."),
    "L1.memory_limit": ("L1", "The sandbox has a memory limit of its own", "medium",
                        "the sandbox's cgroup (or a visible ancestor) has a finite memory limit",
                        "Give every sandbox a memory limit (hardening_resources memory, default 4Gi: resources.limits of "
                        "the agent container): without one, one agent can take the host's memory from every other "
                        "sandbox."),
    "L1.pids_limit": ("L1", "The sandbox has a process limit of its own", "medium",
                      "the sandbox's cgroup (or a visible ancestor) has a finite pids.max",
                      "Limit the sandbox's processes (OpenShell's Docker driver sets pids_limit 2048; on Kubernetes "
                      "the kubelet's podPidsLimit): without one, a fork bomb in one sandbox starves the host."),
}
# cgroup files per controller: v2 (unified) name, v1 (controller directory, file); "unlimited" in v1 is a huge
# number (PAGE_COUNTER_MAX pages, rounded: 9223372036854771712 on 4 KiB pages), in v2 the word "max"
CGROUP_LIMITS = {"memory": ("memory.max", ("memory", "memory.limit_in_bytes")), "pids": ("pids.max", ("pids", "pids.max"))}
V1_UNLIMITED = 1 << 62


def _errname(num):
    return _errno.errorcode.get(num, str(num))


def probe_keyring(machine=None):
    nr = SYS_KEYCTL.get(machine or platform.machine())
    if nr is None:
        return {"result": "unsupported", "machine": machine or platform.machine()}
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    ctypes.set_errno(0)
    rc = libc.syscall(ctypes.c_long(nr), ctypes.c_long(KEYCTL_GET_KEYRING_ID), ctypes.c_long(KEY_SPEC_USER_KEYRING), ctypes.c_long(0))
    return {"result": "usable", "keyring": rc} if rc >= 0 else {"result": _errname(ctypes.get_errno())}


def decide_keyring(obs, _v):
    if obs["result"] == "usable":
        return FAIL, {**obs, "reason": "the agent can reach its uid's user keyring, which other sandboxes of this uid share"}
    if obs["result"] == "EPERM":
        return PASS, obs
    return ERROR, obs  # ENOSYS, unsupported: the question stays open


def probe_pid_namespace(proc="/proc"):
    def read(path):
        try:
            with open(path, "rb") as fh:
                return fh.read()
        except OSError:
            return None

    try:
        own = os.readlink(os.path.join(proc, "self", "ns", "pid"))
    except OSError as exc:
        return {"result": "unreadable", "error": exc.strerror}
    init = (read(os.path.join(proc, "1", "cmdline")) or b"").split(b"\0")
    foreign, readable = [], 0
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            ns = os.readlink(os.path.join(proc, entry, "ns", "pid"))
        except OSError:
            continue
        readable += 1
        if ns != own:
            foreign.append(int(entry))
    return {"result": "read", "init": [p.decode(errors="replace") for p in init[:3]], "own_ns": own, "readable": readable,
            "foreign": foreign[:20]}


def _cgroup_paths(proc):
    """{controller or "" (v2): path} from /proc/self/cgroup ("0::/path" on v2, "N:memory,..:/path" on v1)."""
    with open(os.path.join(proc, "self", "cgroup"), encoding="ascii", errors="replace") as fh:
        lines = fh.read().splitlines()
    out = {}
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(",") if parts[1] else [""]:
                out[controller] = parts[2]
    return out


def _limit_at(root, rel, name):
    """The limit in root/rel/name and every visible ancestor up to root: the smallest finite one, "unlimited" when
    every readable level says so, None when no level could be read. A namespaced cgroup (its own root) hides the
    levels above it: a limit set there (e.g. a pod-level one) is not seen."""
    parts = [p for p in rel.split("/") if p]
    levels = [parts[:i] for i in range(len(parts), -1, -1)]  # own level first, the root last
    found, read = None, []
    for level in levels:
        path = os.path.join(root, *level, name)
        try:
            with open(path, encoding="ascii") as fh:
                text = fh.read().strip()
        except OSError as exc:
            read.append({"file": path, "error": _errname(exc.errno)})
            continue
        read.append({"file": path, "value": text})
        if text != "max" and text.isdigit() and int(text) < V1_UNLIMITED:
            found = int(text) if found is None else min(found, int(text))
    if found is not None:
        return found, read
    return ("unlimited" if any("value" in r for r in read) else None), read


def probe_cgroup_limit(controller, root="/sys/fs/cgroup", proc="/proc"):
    """The sandbox's own limit for one controller (memory or pids), from its cgroup as /proc/self/cgroup names it,
    on cgroup v2 or v1. Reads files only."""
    try:
        paths = _cgroup_paths(proc)
    except OSError as exc:
        return {"result": "unreadable", "error": f"{proc}/self/cgroup: {_errname(exc.errno)}"}
    v2_name, (v1_dir, v1_name) = CGROUP_LIMITS[controller]
    if controller in paths:  # a v1 hierarchy for this controller
        limit, read = _limit_at(os.path.join(root, v1_dir), paths[controller], v1_name)
        version = 1
    elif "" in paths:
        limit, read = _limit_at(root, paths[""], v2_name)
        version = 2
    else:
        return {"result": "unreadable", "error": f"no cgroup of {controller} in {proc}/self/cgroup"}
    if limit is None:
        return {"result": "unreadable", "cgroup": version, "files": read[:4]}
    return {"result": "read", "cgroup": version, "limit": limit, "files": read[:4]}


def decide_cgroup_limit(obs, _v):
    if obs.get("result") != "read":
        return ERROR, obs
    if obs["limit"] == "unlimited":
        return FAIL, {**obs, "reason": "no limit on this sandbox's cgroup or any level of it the sandbox can see"}
    return PASS, obs


def decide_pid_namespace(obs, _v):
    if obs.get("result") != "read":
        return ERROR, obs
    supervisor = any(os.path.basename(p) == "openshell-sandbox" for p in obs["init"])
    if obs["foreign"] or not supervisor:
        reason = ("processes of another PID namespace are visible" if obs["foreign"]
                  else "PID 1 is not this sandbox's supervisor: the PID namespace is shared with something else")
        return FAIL, {**obs, "reason": reason}
    return PASS, obs


def probe_peer_direct(peers, timeout):
    """A TCP connect to every peer at once (non-blocking, one deadline): a host with ten sandboxes costs each one
    timeout, not nine - a peer whose packets are dropped only times out. A connection that opens gets one line sent
    and up to 64 bytes read back, as evidence."""
    out = [None] * len(peers)
    pending = {}
    sel = selectors.DefaultSelector()
    for i, (host, port) in enumerate(peers):
        label = f"{host}:{port}"
        try:
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        except OSError as exc:
            out[i] = {"peer": label, "result": _errname(exc.errno) if exc.errno else type(exc).__name__}
            continue
        sock.setblocking(False)
        rc = sock.connect_ex((host, port))
        if rc not in (0, _errno.EINPROGRESS, _errno.EALREADY, _errno.EWOULDBLOCK):
            out[i] = {"peer": label, "result": _errname(rc)}
            sock.close()
            continue
        pending[sock] = (i, label)
        sel.register(sock, selectors.EVENT_WRITE)
    deadline = time.monotonic() + timeout
    opened = []
    while pending and deadline > time.monotonic():
        for key, _events in sel.select(deadline - time.monotonic()):
            sock = key.fileobj
            i, label = pending.pop(sock)
            sel.unregister(sock)
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                out[i] = {"peer": label, "result": _errname(err)}
                sock.close()
            else:
                opened.append((sock, i, label))
    for sock, (i, label) in pending.items():
        out[i] = {"peer": label, "result": "timeout"}
        sock.close()
    sel.close()
    for sock, i, label in opened:
        with sock:
            sock.setblocking(True)
            sock.settimeout(timeout)
            try:
                sock.sendall(b"agentsec-verify\n")
                answer = sock.recv(64).decode("latin-1")
            except OSError:
                answer = ""
        out[i] = {"peer": label, "result": "connected", "answer": answer[:40]}
    return {"probes": out}


def decide_peer_direct(obs, _v):
    if not obs.get("probes"):
        return ERROR, obs
    reached = [p["peer"] for p in obs["probes"] if p["result"] == "connected"]
    if reached:
        return FAIL, {**obs, "reason": "a TCP connection to another sandbox opened: " + ", ".join(reached)}
    return PASS, obs


def probe_peer_via_proxy(proxy, peers, host_header, timeout):
    # imported here: _verify_proxy is an optional sibling extension with the proxy request helpers
    from ansible_collections.agentsec.nemoclaw.plugins.module_utils._verify_proxy import connect_request, send_to_proxy  # noqa: PLC0415

    out = []
    for host, port in peers:
        literal = f"[{host}]" if ":" in host else host
        for kind, payload in (("connect", connect_request(literal, port)),
                              ("forward", (f"GET http://{literal}:{port}/agentsec-verify HTTP/1.1\r\nHost: {host_header}\r\n"
                                           "Connection: close\r\n\r\n").encode("ascii"))):
            sock, obs = send_to_proxy(proxy, payload, timeout)
            if sock is not None:
                sock.close()
            out.append({"peer": f"{host}:{port}", "request": kind, **{k: v for k, v in obs.items() if k != "head"}})
    return {"probes": out}


def decide_peer_via_proxy(obs, _v):
    probes = obs.get("probes") or []
    # bytes that are not an HTTP answer came back: the proxy relayed the peer's own answer (e.g. its SSH listener's ERR)
    raw = [p for p in probes if p["result"] == "proxy-error" and str(p.get("error", "")).startswith("not an HTTP answer")]
    if raw:
        return FAIL, {**obs, "reason": "the proxy relayed another sandbox's raw answer: " + "; ".join(p["peer"] for p in raw)}
    if not probes or any(p["result"] in ("proxy-unreachable", "proxy-error") for p in probes):
        return ERROR, obs
    relayed = [f"{p['request']} {p['peer']}" for p in probes if not (p["result"] == "answered" and p.get("status") == 403)]
    if relayed:
        return FAIL, {**obs, "reason": "the proxy did not refuse (403) a request to another sandbox: " + "; ".join(relayed)}
    return PASS, obs


def parse_peers(values):
    """peer_addresses: IPs (port 2222) or ip:port / [v6]:port; ValueError names the bad one."""
    peers = []
    for value in values or []:
        text = str(value).strip()
        try:
            ipaddress.ip_address(text)
            peers.append((text, PEER_PORT))
            continue
        except ValueError:
            pass
        host, port = parse_hostport(text, "peer_addresses entry")
        try:
            ipaddress.ip_address(host)
        except ValueError as exc:
            raise ValueError(f"peer_addresses entry {value!r} is not an IP address (names are never resolved here)") from exc
        peers.append((host, port))
    return peers


def peers_from_pods(text):
    """{sandbox: [pod IPs]} from a Kubernetes pod list (``kubectl get pods -o json``: kind List/PodList, items[] with
    metadata.name and status.podIPs[].ip / status.podIP, k8s.io/api core/v1 PodStatus). The agent-sandbox controller
    names each sandbox's pod after the Sandbox (kubernetes-sigs/agent-sandbox v0.1.0 controllers/sandbox_controller.go
    L386-431), so the pod name is the sandbox name. Addresses come from the cluster's API, never from a sandbox (a
    hostile agent cannot steer its peers' probes away from itself); a pod without an address yet is left out. ValueError
    names what is not a pod list or not an IP address."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"the peer command's output is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("kind") not in ("List", "PodList") or not isinstance(doc.get("items"), list):
        raise ValueError("the peer command's output is not a Kubernetes pod list (kind List/PodList with items)")
    peers = {}
    for item in doc["items"]:
        meta, status = item.get("metadata") or {}, item.get("status") or {}
        if item.get("kind", "Pod") != "Pod" or not meta.get("name"):
            raise ValueError(f"the peer command listed something that is not a named pod: {str(item)[:120]}")
        ips = [entry.get("ip") for entry in status.get("podIPs") or [] if entry.get("ip")]
        if not ips and status.get("podIP"):
            ips = [status["podIP"]]
        for ip in ips:
            try:
                ipaddress.ip_address(ip)
            except ValueError as exc:
                raise ValueError(f"pod {meta['name']}: {ip!r} is not an IP address") from exc
        if ips:
            peers[meta["name"]] = ips
    return peers


def peers_of(name, pods, given=()):
    """The peer addresses for sandbox ``name``: the ones given, then every other sandbox pod's - never one of its own
    (an address listed for two pods, e.g. a terminating one, is not a peer of the sandbox that holds it)."""
    out, own = list(given), set(pods.get(name, []))
    for other, ips in sorted(pods.items()):
        out += [ip for ip in ips if other != name and ip not in own and ip not in out]
    return out


def plan(params):
    """Uses proxy, timeout, egress_timeout, peer_addresses (no default: the peer checks are skipped without it),
    allowed_http / allowed_host (the Host header of the forward probe: allowed_http, else allowed_host's host on port
    80; without either the forward probe is skipped), proc_root and cgroup_root (tests only)."""
    proxy = parse_hostport(params["proxy"], "proxy")
    peers = parse_peers(params.get("peer_addresses"))
    allowed = params.get("allowed_http") or (f"{parse_hostport(params['allowed_host'], 'allowed_host', 443)[0]}:80"
                                             if params.get("allowed_host") else None)
    t, et, proc = float(params["timeout"]), float(params["egress_timeout"]), params.get("proc_root", "/proc")
    cgroup = params.get("cgroup_root", "/sys/fs/cgroup")

    def skip(reason):
        return lambda: {"skip": reason}

    no_peers = skip(params.get("peer_skip_reason") or "set peer_addresses to the pod addresses of the host's other sandboxes")
    return {
        "L1.pid_namespace": (lambda: probe_pid_namespace(proc), decide_pid_namespace),
        "L1.memory_limit": (lambda: probe_cgroup_limit("memory", cgroup, proc), decide_cgroup_limit),
        "L1.pids_limit": (lambda: probe_cgroup_limit("pids", cgroup, proc), decide_cgroup_limit),
        "L2.keyring": (probe_keyring, decide_keyring),
        "L3.peer_direct": ((lambda: probe_peer_direct(peers, et)) if peers else no_peers, decide_peer_direct),
        "L4.peer_via_proxy": ((lambda: probe_peer_via_proxy(proxy, peers, allowed, t)) if peers and allowed
                              else no_peers if not peers else skip("set allowed_host (or allowed_http): the Host header of "
                                                                   "the forward probe"),
                              decide_peer_via_proxy),
    }


def _self_register():
    """Piped into a sandbox, this module registers itself (sandbox_main registers only _verify_proxy by name)."""
    import sys  # noqa: PLC0415

    from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _verify  # noqa: PLC0415

    _verify.register(sys.modules[__name__])


_self_register()
