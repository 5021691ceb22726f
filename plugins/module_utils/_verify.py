# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)
"""Six-layer sandbox verifier: probes that run as the agent and pure decisions that turn observations into findings.

Every probe returns an *observation* (a dict). Each check has a pure ``decide_*`` function that turns the
observation and the vantage into ``(status, observed_summary)``. A probe that cannot reach what it needs
reports an error observation, and every decision maps errors to ``error`` - never ``pass``.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import errno as _errno
import ipaddress
import json
import os
import platform
import re
import socket
import ssl
import stat
import struct
import sys
import threading
import time
import uuid

PASS, FAIL, ERROR, SKIPPED = "pass", "fail", "error", "skipped"
SEVERITY_RANK = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
SYS_SOCKET = {"x86_64": 41, "aarch64": 198}
SYS_IO_URING_SETUP = 425
EINVAL_TYPE = 15  # >= SOCK_MAX: the kernel answers EINVAL unless a seccomp filter answers first
# include/uapi/linux/netlink.h (protocol numbers; MAX_LINKS 32 in include/linux/netlink.h). The payload runs without
# the collection's other module_utils, so the names live here; tests/unit check them against _seccomp_tables.
NETLINK_NAMES = {0: "NETLINK_ROUTE", 1: "NETLINK_UNUSED", 2: "NETLINK_USERSOCK", 3: "NETLINK_FIREWALL", 4: "NETLINK_SOCK_DIAG",
                 5: "NETLINK_NFLOG", 6: "NETLINK_XFRM", 7: "NETLINK_SELINUX", 8: "NETLINK_ISCSI", 9: "NETLINK_AUDIT",
                 10: "NETLINK_FIB_LOOKUP", 11: "NETLINK_CONNECTOR", 12: "NETLINK_NETFILTER", 13: "NETLINK_IP6_FW",
                 14: "NETLINK_DNRTMSG", 15: "NETLINK_KOBJECT_UEVENT", 16: "NETLINK_GENERIC", 18: "NETLINK_SCSITRANSPORT",
                 19: "NETLINK_ECRYPTFS", 20: "NETLINK_RDMA", 21: "NETLINK_CRYPTO", 22: "NETLINK_SMC"}
NETLINK_MAX_LINKS = 32
SOCK_PACKET_PROBE_TYPE = 10 | 0x10  # SOCK_PACKET plus an invalid flag bit: EINVAL from the kernel, EPERM only from a filter

KEY_PATTERNS = [
    re.compile(r"nvapi-[A-Za-z0-9_\-]{16,}"),
    re.compile(r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_\-]{16,}"),
    re.compile(r"\b(?:xox[abpr]|ghp|gho|github_pat)_?[A-Za-z0-9_\-]{16,}"),
    re.compile(r"\b[0-9]{8,10}:[A-Za-z0-9_\-]{35}\b"),  # Telegram bot token
]
KEY_ASSIGNMENT = re.compile(r"\b([A-Z0-9_]*(?:API_KEY|APIKEY|TOKEN|SECRET|PASSWORD))=([^\s\"']+)")
PLACEHOLDERS = re.compile(r"^(?:openshell:resolve:env:.*|empty|dummy|none|null|changeme|ollama|x+|\*+|<.*>|\$\{.*\})$", re.I)


# ---------------------------------------------------------------------------------------------------------------
# check catalogue: id -> (layer, title, severity, expected, remediation)
CHECKS = {
    "L1.ro_root": ("L1", "Root filesystem is read-only", "high", "EROFS on every probed system path",
                   "Set readOnlyRootFilesystem: true with emptyDir /tmp, /run, /var/log, /var/tmp (hardening role, l1)."),
    "L1.landlock": ("L1", "Landlock is enforced", "high", "EACCES writing to a world-writable path outside the allow-list",
                    "Apply a Landlock ruleset per process (hardening role launcher) or upgrade OpenShell to >= 0.0.29."),
    "L1.writable_paths": ("L1", "Allowed write paths work", "medium", "files can be created in every allowed path",
                          "Mount the allowed paths (emptyDir/tmpfs) and allow them in the Landlock ruleset."),
    "L1.policy_read_only": ("L1", "The policy's read-only paths refuse writes", "high",
                            "EACCES/EPERM/EROFS creating a file in every read-only path of the sandbox's policy that its"
                            " permissions would let the agent write",
                            "Enforce the policy's filesystem part with Landlock (hardening role, l1, "
                            "hardening_landlock_from_policy) or upgrade OpenShell to >= 0.0.29."),
    "L1.non_root": ("L1", "Agent is not uid 0", "high", "uid != 0", "Run the agent as the policy user (run_as_user: sandbox)."),
    "L1.no_capabilities": ("L1", "Agent has no effective capabilities", "high", "CapEff 0",
                           "Drop capabilities for the agent process (setuid to a non-root user clears them)."),
    "L1.startup_hooks": ("L1", "No interpreter start-up hooks in agent-writable paths", "medium",
                         "no .pth, sitecustomize or usercustomize file in the agent's writable paths",
                         "Remove them and start interpreters isolated (python3 -I); the launcher already is."),
    "L2.seccomp_mode": ("L2", "Seccomp filter mode is active", "high", "Seccomp: 2 with at least one filter",
                        "Start the agent under a seccomp filter (OpenShell supervisor or the hardening launcher)."),
    "L2.af_packet": ("L2", "socket(AF_PACKET) refused by seccomp", "high", "EPERM for socket(17, 15, 0) (EINVAL without a filter)",
                     "Install the hardened seccomp filter (agentsec.nemoclaw.seccomp_filter) through the launcher."),
    "L2.af_netlink": ("L2", "socket(AF_NETLINK) refused by seccomp for every protocol beyond the allowed ones", "medium",
                      "EPERM for socket(16, 15, p) for every netlink protocol p from 1 to 31 not in netlink_allowed_protocols"
                      " (default: only NETLINK_ROUTE, 0, is allowed; EINVAL without a filter)",
                      "Install the hardened seccomp filter (it allows NETLINK_ROUTE only)."),
    "L2.af_inet": ("L2", "socket(AF_INET) still works", "medium", "an AF_INET stream socket can be created",
                   "Do not deny AF_INET: the agent reaches the proxy over TCP."),
    "L2.sock_packet": ("L2", "socket(AF_INET, SOCK_PACKET) bypass closed", "high", "EPERM for a SOCK_PACKET type (EINVAL without a rule)",
                       "Use the hardened filter: it denies (type & 0xf) == SOCK_PACKET for AF_INET."),
    "L2.high_bit_family": ("L2", "Family with high bits set is refused", "medium",
                           "EPERM for socket(0x1_00000028, 15, 0) - AF_VSOCK with bit 32 set - (EINVAL without a filter)",
                           "Compare only the low 32 bits of the family (the hardened filter does)."),
    "L2.io_uring": ("L2", "io_uring is unavailable", "high", "io_uring_setup refused",
                    "Deny io_uring_setup/enter/register in seccomp or set kernel.io_uring_disabled=2."),
    "L2.inherited_sockets": ("L2", "No inherited packet/netlink sockets", "medium", "no open fd is an AF_PACKET or AF_NETLINK socket",
                             "Close netlink/packet sockets before starting the agent (they bypass seccomp)."),
    "L2.agent_processes": ("L2", "Every agent process is confined like this session", "high",
                           "every process of the agent's uid has NoNewPrivs 1 and at least this session's seccomp filters",
                           "Restart the sandbox after hardening so no process started before it survives (hardening role, l2)."),
    "L2.outlived_processes": ("L2", "No agent process outlives its session", "high",
                              "every process of the agent's uid is this session's, or the sandbox's entry point and its "
                              "children (the supervisor's first agent child, started with the supervisor)",
                              "Re-create the sandbox (or kill the listed processes): a process an earlier session left "
                              "behind can watch and race every later session, the verifier's included."),
    "L3.default_route": ("L3", "Default route goes via the proxy", "medium", "default via the proxy address",
                         "The supervisor routes the agent namespace via its veth to the proxy: another route means the"
                         " session is not in that namespace - re-create the sandbox (hardening l3 turns forwarding off in"
                         " the pod namespace, it does not set routes)."),
    "L3.direct_egress": ("L3", "Direct egress is blocked", "critical", "a direct TCP connect fails (refused, unreachable or timeout)",
                         "Reject everything but the proxy port in the agent namespace (bypass rules) and fix the route."),
    "L3.dns_leak": ("L3", "DNS outside the proxy does not leak", "high", "no answer from an outside resolver",
                    "Reject UDP/TCP 53 from the agent namespace; resolve through the proxy."),
    "L4.denied_host": ("L4", "Proxy refuses a host the policy does not allow", "high", "HTTP 403 to CONNECT",
                       "Keep the default-deny network policy; remove the host from the allow-list."),
    "L4.allowed_host": ("L4", "Proxy allows a host the policy allows", "medium", "HTTP 2xx to CONNECT",
                        "Add the endpoint to the sandbox network policy."),
    "L5.ca_file": ("L5", "Sandbox CA certificate is installed", "medium", "CA file present with the expected mode",
                   "Give the supervisor a writable /etc/openshell-tls so it can write the CA it generates (hardening role,"
                   " l5, with a read-only root); without it TLS termination is off."),
    "L5.ca_cert": ("L5", "CA file holds a CA certificate", "medium", "PEM certificate with basicConstraints CA:TRUE",
                   "Mount the sandbox CA certificate, not a leaf or a bundle."),
    "L5.mitm_chain": ("L5", "TLS through the proxy is signed by the sandbox CA", "high",
                      "the served chain verifies against the sandbox CA alone",
                      "Make sure the proxy terminates TLS for every tunnel (no tls: skip) with the sandbox CA."),
    "L6.inference_dns": ("L6", "inference.local resolves", "medium", "getaddrinfo(inference.local) succeeds",
                         "Add inference.local to the sandbox's resolver (CoreDNS hosts entry or /etc/hosts; hardening role, l6)."),
    "L6.inference_models": ("L6", "Inference works without a key", "medium", "GET /v1/models lists the expected model, sent without a key",
                            "Configure the inference route (openshell inference set) so the proxy injects the key."),
    "L6.no_secrets": ("L6", "No API keys visible to the agent", "critical", "no key-shaped value in readable environments or config files",
                      "Keep provider keys in the gateway; never pass them into the sandbox environment or files."),
}
LAYERS = ("L1", "L2", "L3", "L4", "L5", "L6")
EXTENSIONS = []  # further probe modules with their own CHECKS and plan(params), e.g. _verify_proxy


def register(module):
    """Add a probe module's checks (its CHECKS catalogue and plan(params)) to every run."""
    if module not in EXTENSIONS:
        EXTENSIONS.append(module)


def catalogue():
    merged = dict(CHECKS)
    for ext in EXTENSIONS:
        merged.update(ext.CHECKS)
    ordered = {}
    for layer in LAYERS:  # keep the report order by layer
        ordered.update({cid: meta for cid, meta in merged.items() if meta[0] == layer})
    return ordered


def select_checks(checks, skip_checks):
    """Resolve ids and layer names; raise ValueError naming unknown ones."""
    def expand(items):
        out, unknown = [], []
        known = catalogue()
        for item in items or []:
            if item in known:
                out.append(item)
            elif item in LAYERS:
                out.extend(c for c in known if c.startswith(item + "."))
            else:
                unknown.append(item)
        return out, unknown
    known = catalogue()
    chosen, unknown = expand(checks) if checks else (list(known), [])
    skipped, unknown_skip = expand(skip_checks)
    bad = unknown + unknown_skip
    if bad:
        raise ValueError(f"unknown check ids or layers: {', '.join(bad)} (valid: {', '.join(LAYERS)} or ids like L1.ro_root)")
    return [c for c in known if c in chosen and c not in skipped]


def parse_hostport(value, what, default_port=None):
    """'host:port' or '[v6]:port' -> (host, port); raise ValueError naming `what` and the value."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} {value!r} is not host:port")
    m = re.fullmatch(r"\[([0-9a-fA-F:.]+)\](?::(\d+))?|([A-Za-z0-9_.\-]+)(?::(\d+))?", value.strip())
    if not m:
        raise ValueError(f"{what} {value!r} is not host:port")
    host = m.group(1) or m.group(3)
    port = m.group(2) or m.group(4) or default_port
    if port is None:
        raise ValueError(f"{what} {value!r} has no port")
    port = int(port)
    if not 0 < port < 65536:
        raise ValueError(f"{what} {value!r} has port {port} out of range")
    return host, port


# ---------------------------------------------------------------------------------------------------------------
# vantage and small system readers (all take a proc root so tests can use a fake /proc)
def read_status(proc="/proc", pid="self"):
    fields = {}
    with open(os.path.join(proc, str(pid), "status"), encoding="utf-8", errors="replace") as fh:
        for line in fh:
            key, sep, value = line.partition(":")
            if sep:
                fields[key] = value.strip()
    return fields


def vantage(proc="/proc"):
    try:
        status = read_status(proc)
    except OSError as exc:
        status = {"error": exc.strerror}
    try:
        netns = os.stat(os.path.join(proc, "self", "ns", "net")).st_ino
    except OSError:
        netns = None
    return {
        "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "pid": os.getpid(),
        "seccomp": status.get("Seccomp"), "seccomp_filters": status.get("Seccomp_filters"),
        "no_new_privs": status.get("NoNewPrivs"), "cap_eff": status.get("CapEff"), "netns_inode": netns,
        "landlock_abi": landlock_abi(), "machine": platform.machine(),
    }


def landlock_abi():
    try:
        rc = ctypes.CDLL(None, use_errno=True).syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    except (OSError, AttributeError):
        return 0
    return rc if rc > 0 else 0


def _errname(num):
    return _errno.errorcode.get(num, str(num))


# ---------------------------------------------------------------------------------------------------------------
# L1 probes and decisions
def probe_create(directory):
    """Try to create (then remove) a unique file in `directory`. Returns {'path', 'result': 'ok'|ERRNO}."""
    path = os.path.join(directory, f".agentsec-verify-{uuid.uuid4().hex[:12]}")
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except OSError as exc:
        return {"path": directory, "result": _errname(exc.errno)}
    os.close(fd)
    try:
        os.unlink(path)
    except OSError:
        pass
    return {"path": directory, "result": "ok"}


def probe_ro(directory):
    """Create probe; when DAC refuses first (EACCES on a directory the agent cannot search), ask statvfs."""
    entry = probe_create(directory)
    if entry["result"] in ("EACCES", "EPERM"):
        try:
            if os.statvfs(directory).f_flag & os.ST_RDONLY:
                entry["result"] = "EROFS"
                entry["evidence"] = "statvfs ST_RDONLY (DAC refused the write first)"
        except OSError:
            pass
    return entry


def decide_ro_root(obs, _vantage):
    results = {o["path"]: o["result"] for o in obs["probes"]}
    if all(r == "EROFS" for r in results.values()):
        return PASS, results
    if any(r == "ok" for r in results.values()):
        return FAIL, results
    if any(r in ("ENOENT", "ENOTDIR") for r in results.values()):
        return ERROR, results
    return FAIL, results  # EACCES/EPERM: writes are refused, but not because the root filesystem is read-only


def decide_landlock(obs, _vantage):
    """EACCES on a world-writable directory proves a Landlock (or other LSM) denial; DAC would allow it."""
    usable = [o for o in obs["probes"] if o.get("world_writable")]
    results = {o["path"]: o["result"] for o in obs["probes"]}
    if not usable:
        return ERROR, {"probes": results, "reason": "no world-writable probe directory exists, so DAC cannot be ruled out"}
    if any(o["result"] == "ok" for o in usable):
        return FAIL, {"probes": results, "reason": "a write outside the allow-list succeeded"}
    if any(o["result"] == "EACCES" for o in usable):
        return PASS, {"probes": results}
    return ERROR, {"probes": results, "reason": "no probe was conclusive (EROFS/ENOENT do not prove Landlock)"}


def probe_landlock_dirs(paths):
    out = []
    for path in paths:
        try:
            mode = os.stat(path).st_mode
        except OSError as exc:
            out.append({"path": path, "result": _errname(exc.errno), "world_writable": False})
            continue
        entry = probe_create(path)
        entry["world_writable"] = bool(mode & 0o002)
        out.append(entry)
    return {"probes": out}


def decide_writable(obs, _vantage):
    """Every allowed path that exists takes a new file. A path that does not exist is listed (ENOENT) and not counted:
    OpenShell skips missing paths of a policy too (best_effort)."""
    results = {o["path"]: o["result"] for o in obs["probes"]}
    present = {p: r for p, r in results.items() if r != "ENOENT"}
    if not present:
        return (SKIPPED if results else FAIL), results
    return (PASS if all(r == "ok" for r in present.values()) else FAIL), results


def probe_policy_read_only(paths, writable):
    """Each read-only directory of the policy that DAC would let this process write (os.access W_OK), and that is not
    itself one of the policy's writable paths: a file must not be creatable in it. Directories the permissions refuse
    already are listed as `dac` (Landlock is not what keeps them safe, so they prove nothing here)."""
    probes = []
    for path in paths or []:
        if path in (writable or []) or not os.path.isdir(path):
            continue
        if not os.access(path, os.W_OK):
            probes.append({"path": path, "result": "dac"})
            continue
        probes.append(probe_create(path))
    return {"probes": probes}


def decide_policy_read_only(obs, _vantage):
    results = {o["path"]: o["result"] for o in obs["probes"]}
    tested = {p: r for p, r in results.items() if r != "dac"}
    if not tested:
        return SKIPPED, {"reason": "no read-only path of the policy is writable by permissions alone", "paths": results}
    return (PASS if all(r in ("EACCES", "EPERM", "EROFS") for r in tested.values()) else FAIL), results


def decide_non_root(_obs, v):
    return (PASS if v["euid"] != 0 else FAIL), {"uid": v["uid"], "euid": v["euid"]}


def decide_no_caps(_obs, v):
    cap = v.get("cap_eff")
    if cap is None:
        return ERROR, {"reason": "CapEff missing from /proc/self/status"}
    return (PASS if int(cap, 16) == 0 else FAIL), {"CapEff": cap}


# ---------------------------------------------------------------------------------------------------------------
# L2 probes and decisions
def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def probe_socket(family, type_, proto=0):
    try:
        socket.socket(family, type_, proto).close()
        return {"result": "ok"}
    except OSError as exc:
        return {"result": _errname(exc.errno)}


def probe_raw_socket(family, type_, proto=0):
    nr = SYS_SOCKET.get(platform.machine())
    if nr is None:
        return {"result": "unsupported-arch", "error": f"no socket syscall number for {platform.machine()}"}
    libc = _libc()
    fd = libc.syscall(ctypes.c_long(nr), ctypes.c_long(family), ctypes.c_long(type_), ctypes.c_long(proto))
    if fd < 0:
        return {"result": _errname(ctypes.get_errno())}
    os.close(fd)
    return {"result": "ok"}


def probe_io_uring(proc="/proc"):
    libc = _libc()
    params = ctypes.create_string_buffer(120)
    fd = libc.syscall(ctypes.c_long(SYS_IO_URING_SETUP), ctypes.c_long(1), params)
    out = {"result": "ok" if fd >= 0 else _errname(ctypes.get_errno())}
    if fd >= 0:
        os.close(fd)
    try:
        with open(os.path.join(proc, "sys", "kernel", "io_uring_disabled"), encoding="ascii") as fh:
            out["io_uring_disabled"] = int(fh.read().strip())
    except (OSError, ValueError):
        out["io_uring_disabled"] = None
    return out


def decide_seccomp_mode(_obs, v):
    observed = {"Seccomp": v.get("seccomp"), "Seccomp_filters": v.get("seccomp_filters"), "NoNewPrivs": v.get("no_new_privs")}
    if v.get("seccomp") is None:
        return ERROR, observed
    ok = v["seccomp"] == "2" and int(v.get("seccomp_filters") or 0) >= 1
    return (PASS if ok else FAIL), observed


def decide_filtered_socket(obs, v):
    """EPERM proves a filter only when the unfiltered kernel answer would differ (EINVAL) and a filter exists."""
    result = obs["result"]
    observed = {"result": result}
    if result == "EPERM":
        if v.get("seccomp") != "2":
            return ERROR, {**observed, "reason": "EPERM without a seccomp filter on this process is not attributable"}
        return PASS, observed
    if result in ("ok", "EINVAL"):
        return FAIL, {**observed, "reason": "no seccomp rule answered; the kernel did"}
    return ERROR, {**observed, "reason": f"unexpected {result}: cannot tell whether a filter is present"}


def probe_netlink_protocols(allowed):
    """socket(AF_NETLINK, 15, p) for every protocol below MAX_LINKS that is not allowed. The invalid type makes the
    kernel answer EINVAL (__sock_create checks the type before it looks up the family), so no socket is ever created
    and only a filter that looks at the protocol can answer EPERM. Returns {'protocols': {p: result}, 'allowed': [...]}."""
    allowed = sorted({int(p) for p in allowed})
    return {"allowed": allowed,
            "protocols": {str(p): probe_socket(16, EINVAL_TYPE, p)["result"] for p in range(NETLINK_MAX_LINKS) if p not in allowed}}


def decide_netlink_protocols(obs, v):
    """Every probed protocol must be refused by the filter (EPERM with a filter present)."""
    results = obs["protocols"]
    observed = {"allowed": [NETLINK_NAMES.get(p, str(p)) for p in obs["allowed"]], "probed": len(results)}
    if not results:
        return SKIPPED, {**observed, "reason": "every netlink protocol is allowed (netlink_allowed_protocols)"}
    open_ = [NETLINK_NAMES.get(int(p), p) for p, r in results.items() if r in ("ok", "EINVAL")]
    odd = {NETLINK_NAMES.get(int(p), p): r for p, r in results.items() if r not in ("ok", "EINVAL", "EPERM")}
    if open_:
        return FAIL, {**observed, "open": open_, "reason": f"{len(open_)} netlink protocols reach the kernel unfiltered: "
                                                           f"{', '.join(open_[:8])}{' ...' if len(open_) > 8 else ''}"}
    if odd:
        return ERROR, {**observed, "unexpected": odd, "reason": "unexpected answers: cannot tell whether a filter is present"}
    if v.get("seccomp") != "2":
        return ERROR, {**observed, "reason": "EPERM without a seccomp filter on this process is not attributable"}
    return PASS, observed


def decide_af_inet(obs, _v):
    return (PASS if obs["result"] == "ok" else FAIL), obs


def decide_io_uring(obs, v):
    if obs["result"] == "ok":
        return FAIL, obs
    via = "seccomp" if obs["result"] == "EPERM" and v.get("seccomp") == "2" and not obs.get("io_uring_disabled") else "kernel"
    return PASS, {**obs, "refused_by": via}


def probe_inherited_sockets(proc="/proc", max_fd=4096):
    """Open descriptors that are AF_PACKET or AF_NETLINK sockets (opened before the filter, or passed in), found by
    asking each descriptor itself (SO_DOMAIN) - /proc/self/fd is root-owned once the verifier is non-dumpable."""
    found, sockets = [], 0
    for fd in range(3, max_fd):
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            continue
        if not stat.S_ISSOCK(mode):
            continue
        sockets += 1
        try:
            sock = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        with sock:
            family = sock.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN)
        if family in (16, 17):
            found.append({"fd": fd, "family": {16: "netlink", 17: "packet"}[family]})
    return {"sockets": sockets, "suspicious": found}


def decide_inherited(obs, _v):
    return (FAIL if obs["suspicious"] else PASS), obs


# ---------------------------------------------------------------------------------------------------------------
# L3
def read_default_route(proc="/proc"):
    with open(os.path.join(proc, "self", "net", "route"), encoding="ascii") as fh:
        fh.readline()
        for line in fh:
            parts = line.split()
            if len(parts) >= 8 and parts[1] == "00000000" and parts[7] == "00000000":
                gateway = socket.inet_ntoa(struct.pack("<I", int(parts[2], 16)))
                return {"interface": parts[0], "gateway": gateway}
    return {"interface": None, "gateway": None}


def decide_route(obs, _v, proxy_host):
    if obs.get("error"):
        return ERROR, obs
    return (PASS if obs.get("gateway") == proxy_host else FAIL), {**obs, "expected_gateway": proxy_host}


def probe_tcp_connect(host, port, timeout):
    start = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return {"result": "connected", "elapsed_ms": int((time.monotonic() - start) * 1000)}
    except TimeoutError:
        return {"result": "timeout", "elapsed_ms": int((time.monotonic() - start) * 1000)}
    except OSError as exc:
        return {"result": _errname(exc.errno) if exc.errno else type(exc).__name__, "elapsed_ms": int((time.monotonic() - start) * 1000)}


def probe_direct_egress(host, port, timeout, control=None):
    """A direct connect to the egress target; a timeout is tried once more with a fresh connect before it counts.
    A blocked route (a DROP rule, forwarding off without an ICMP answer) times out both times; an open route whose
    first SYN was dropped (a full accept queue, a loaded host: TCP would retransmit only after 1 s) answers the
    second, so a congested open route does not read as blocked. control (host, port): a path that must answer (the
    proxy), connected while the second attempt runs - a timeout counts as blocked only when the control answered in
    the same time, else nothing told a dropped route from a host too loaded to answer anything."""
    first = probe_tcp_connect(host, port, timeout)
    if first["result"] != "timeout":
        return first
    checked, runner = {}, None
    if control is not None:
        runner = threading.Thread(target=lambda: checked.update(probe_tcp_connect(control[0], control[1], timeout)),
                                  daemon=True)
        try:
            runner.start()
        except RuntimeError:  # no threads in this sandbox (0.1.x's clone3 answer): the control runs afterwards
            runner = None
    second = probe_tcp_connect(host, port, timeout)
    obs = {**second, "attempts": [first, second]}
    if control is not None:
        if runner is None:
            checked.update(probe_tcp_connect(control[0], control[1], timeout))
        else:
            runner.join(timeout + 1)
        obs["control"] = {"target": f"{control[0]}:{control[1]}", **(checked or {"result": "no answer"})}
    return obs


def decide_egress(obs, _v):
    if obs["result"] == "connected":
        return FAIL, obs
    if obs["result"] == "timeout" and obs.get("control", {}).get("result", "connected") != "connected":
        return ERROR, {**obs, "reason": "the direct connect timed out, but so did the proxy (the control): a timeout "
                                        "proves nothing when nothing answers"}
    if obs["result"] in ("timeout", "ECONNREFUSED", "ENETUNREACH", "EHOSTUNREACH", "EPERM", "EACCES", "ETIMEDOUT"):
        return PASS, obs
    return ERROR, obs


def dns_query(name):
    qid = int.from_bytes(os.urandom(2), "big")
    labels = b"".join(bytes([len(p)]) + p.encode("ascii") for p in name.rstrip(".").split("."))
    return qid, struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + b"\x00" + struct.pack(">HH", 1, 1)


def probe_dns(resolver, port, name, timeout):
    qid, packet = dns_query(name)
    family = socket.AF_INET6 if ":" in resolver else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(packet, (resolver, port))
            data, _addr = s.recvfrom(2048)
        except TimeoutError:
            return {"result": "timeout"}
        except OSError as exc:
            return {"result": _errname(exc.errno)}
    answered = len(data) >= 12 and struct.unpack(">H", data[:2])[0] == qid
    return {"result": "answered" if answered else "garbage", "bytes": len(data)}


def decide_dns(obs, _v):
    if obs["result"] in ("answered", "garbage"):
        return FAIL, obs
    return PASS, obs


# ---------------------------------------------------------------------------------------------------------------
# L4-L6: the proxy
def proxy_connect(proxy, target_host, target_port, timeout):
    """Open a CONNECT tunnel. Returns (socket or None, observation)."""
    try:
        sock = socket.create_connection(proxy, timeout=timeout)
    except OSError as exc:
        return None, {"result": "proxy-unreachable", "error": _errname(exc.errno) if exc.errno else str(exc)}
    try:
        sock.sendall(f"CONNECT {target_host}:{target_port} HTTP/1.1\r\nHost: {target_host}:{target_port}\r\n\r\n".encode("ascii"))
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 16384:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
    except OSError as exc:
        sock.close()
        return None, {"result": "proxy-error", "error": _errname(exc.errno) if exc.errno else str(exc)}
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    m = re.match(r"HTTP/\d\.\d (\d{3})", line)
    if not m:
        sock.close()
        return None, {"result": "proxy-error", "error": f"not an HTTP answer: {line[:80]!r}"}
    status = int(m.group(1))
    if 200 <= status < 300:
        return sock, {"result": "tunnel", "status": status}
    sock.close()
    return None, {"result": "refused", "status": status}


def decide_denied(obs, _v):
    if obs["result"] in ("proxy-unreachable", "proxy-error"):
        return ERROR, obs
    return (PASS if obs.get("status") == 403 else FAIL), obs


def decide_allowed(obs, _v):
    if obs["result"] in ("proxy-unreachable", "proxy-error"):
        return ERROR, obs
    return (PASS if obs["result"] == "tunnel" else FAIL), obs


def probe_ca_file(path):
    try:
        st = os.stat(path)
        with open(path, "rb") as fh:
            data = fh.read(65536)
    except OSError as exc:
        return {"result": _errname(exc.errno), "path": path}
    return {"result": "ok", "path": path, "mode": f"{st.st_mode & 0o7777:04o}", "size": st.st_size, "uid": st.st_uid, "pem": data}


def decide_ca_file(obs, _v, expected_mode):
    observed = {k: v for k, v in obs.items() if k != "pem"}
    if obs["result"] != "ok":
        return FAIL, observed
    mode = int(obs["mode"], 8)
    if expected_mode is not None:
        return (PASS if mode == expected_mode else FAIL), {**observed, "expected_mode": f"{expected_mode:04o}"}
    return (PASS if not mode & 0o022 else FAIL), {**observed, "reason": "must not be writable by group or others"}


def pem_to_der(pem):
    m = re.search(rb"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", pem, re.S)
    if not m:
        return None
    import base64  # noqa: PLC0415 - only needed here

    return base64.b64decode(b"".join(m.group(1).split()))


def cert_is_ca(der):
    """basicConstraints cA=TRUE, read with cryptography when available, else from the DER encoding."""
    try:
        from cryptography import x509  # noqa: PLC0415 - optional in a sandbox image

        cert = x509.load_der_x509_certificate(der)
        try:
            bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            return False, cert.subject.rfc4514_string()
        return bool(bc.ca), cert.subject.rfc4514_string()
    except ImportError:
        pass
    idx = der.find(b"\x06\x03\x55\x1d\x13")  # OID 2.5.29.19
    if idx < 0:
        return False, None
    window = der[idx + 5: idx + 20]
    return b"\x01\x01\xff" in window, None


def decide_ca_cert(obs, _v):
    if obs.get("result") != "ok":
        return FAIL, {"result": obs.get("result")}
    der = pem_to_der(obs["pem"])
    if der is None:
        return FAIL, {"reason": "no PEM certificate in the file"}
    is_ca, subject = cert_is_ca(der)
    return (PASS if is_ca else FAIL), {"basic_constraints_ca": is_ca, "subject": subject}


def response_complete(data):
    """True once `data` holds a whole HTTP response (Content-Length reached, or the last chunk)."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    text = head.decode("latin-1").lower()
    length = re.search(r"^content-length:\s*(\d+)", text, re.M)
    if length:
        return len(body) >= int(length.group(1))
    if re.search(r"^transfer-encoding:\s*chunked", text, re.M):
        return body.endswith(b"0\r\n\r\n")
    return False


def read_response(sock, limit=1 << 20, timeout_left=None):
    """One HTTP response: up to its end (a proxy may keep the connection open after it), EOF, or the socket timeout.

    timeout_left: a callable giving each recv's timeout (a probe's shared deadline); without it the socket's own."""
    data = b""
    while len(data) < limit and not response_complete(data):
        try:
            if timeout_left is not None:
                sock.settimeout(timeout_left())
            chunk = sock.recv(65536)
        except (TimeoutError, ssl.SSLError, OSError):
            break
        if not chunk:
            break
        data += chunk
    return data


def tls_through_proxy(proxy, host, port, cafile, timeout, request=None):
    if cafile and not os.path.isfile(cafile):
        return {"result": "no-ca", "error": f"CA file {cafile} is missing, so the served chain cannot be checked against it"}
    sock, obs = proxy_connect(proxy, host, port, timeout)
    if sock is None:
        return obs
    # with cafile, create_default_context trusts that file alone (no system roots)
    ctx = ssl.create_default_context(cafile=cafile) if cafile else ssl.create_default_context()
    try:
        with ctx.wrap_socket(sock, server_hostname=host) as tls:
            cert = tls.getpeercert()
            issuer = ", ".join("=".join(x) for rdn in cert.get("issuer", ()) for x in rdn)
            out = {"result": "verified", "issuer": issuer}
            if request:
                tls.sendall(request)
                out["response"] = read_response(tls)
            return out
    except ssl.SSLCertVerificationError as exc:
        return {"result": "untrusted", "error": exc.verify_message or str(exc)}
    except (ssl.SSLError, OSError) as exc:
        return {"result": "tls-error", "error": str(exc)}
    finally:
        sock.close()


def decide_mitm(obs, _v):
    if obs["result"] == "verified":
        return PASS, obs
    if obs["result"] == "untrusted":
        return FAIL, obs
    return ERROR, obs


def probe_resolve(name):
    try:
        infos = socket.getaddrinfo(name, 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        return {"result": "unresolved", "error": str(exc)}
    return {"result": "resolved", "addresses": sorted({i[4][0] for i in infos})}


def decide_resolve(obs, _v):
    return (PASS if obs["result"] == "resolved" else FAIL), obs


def parse_http_response(raw):
    head, _sep, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/\d(?:\.\d)? (\d{3})", lines[0] if lines else "")
    status = int(m.group(1)) if m else None
    headers = {k.strip().lower(): v.strip() for k, _s, v in (line.partition(":") for line in lines[1:])}
    if headers.get("transfer-encoding", "").lower() == "chunked":
        out, rest = b"", body
        while rest:
            size_line, _s, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0] or b"0", 16)
            if size == 0:
                break
            out, rest = out + rest[:size], rest[size + 2:]
        body = out
    return status, headers, body


def decide_models(obs, _v, expected_model):
    if obs["result"] in ("proxy-unreachable", "proxy-error", "tls-error", "no-ca"):
        return ERROR, {k: v for k, v in obs.items() if k != "response"}
    if obs["result"] != "verified":
        return FAIL, {k: v for k, v in obs.items() if k != "response"}
    status, _headers, body = parse_http_response(obs.get("response", b""))
    observed = {"status": status}
    if status != 200:
        return FAIL, {**observed, "reason": "inference.local did not answer 200 without a key"}
    try:
        ids = [m.get("id") for m in json.loads(body).get("data", [])]
    except (ValueError, AttributeError):
        return FAIL, {**observed, "reason": "response is not an OpenAI-style model list"}
    observed["models"] = ids
    return (PASS if expected_model in ids else FAIL), {**observed, "expected_model": expected_model}


def mask(value):
    return f"{value[:4]}…({len(value)} chars)"


def find_secrets(text):
    hits = []
    for pattern in KEY_PATTERNS:
        hits.extend(m.group(0) for m in pattern.finditer(text))
    for name, value in KEY_ASSIGNMENT.findall(text):
        if not PLACEHOLDERS.match(value):
            hits.append(f"{name}={value}")
    return sorted(set(hits))


def probe_secrets(proc="/proc", paths=()):
    findings, scanned, unreadable = [], 1, 0
    own = "\n".join(f"{k}={v}" for k, v in os.environ.items())
    findings.extend({"where": "environment of this session", "value": mask(hit)} for hit in find_secrets(own))
    for entry in os.listdir(proc):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(os.path.join(proc, entry, "environ"), "rb") as fh:
                text = fh.read().replace(b"\x00", b"\n").decode("utf-8", "replace")
        except OSError:
            unreadable += 1
            continue
        scanned += 1
        for hit in find_secrets(text):
            findings.append({"where": f"/proc/{entry}/environ", "value": mask(hit)})
    files = 0
    for path in paths:
        candidates = []
        if os.path.isdir(path):
            for root, _dirs, names in os.walk(path):
                candidates.extend(os.path.join(root, n) for n in names)
                if len(candidates) > 500:
                    break
        elif os.path.isfile(path):
            candidates.append(path)
        for cand in candidates[:500]:
            try:
                with open(cand, "rb") as fh:
                    text = fh.read(262144).decode("utf-8", "replace")
            except OSError:
                continue
            files += 1
            for hit in find_secrets(text):
                findings.append({"where": cand, "value": mask(hit)})
    return {"environ_scanned": scanned, "environ_unreadable": unreadable, "files_scanned": files, "found": findings}


def decide_secrets(obs, _v):
    if obs["environ_scanned"] == 0:
        return ERROR, {**obs, "reason": "no process environment was readable"}
    return (FAIL if obs["found"] else PASS), obs


# ---------------------------------------------------------------------------------------------------------------
# integrity of the session: every agent process confined, nothing planted to run before confinement
def _status_of(proc, pid):
    try:
        return read_status(proc, pid)
    except OSError:
        return None


def _ancestry(proc, pid):
    """pids from `pid` up to 1 (our session's chain)."""
    chain = []
    for _dummy in range(64):
        status = _status_of(proc, pid)
        if status is None:
            break
        chain.append(int(pid))
        parent = int(status.get("PPid", "0") or 0)
        if parent <= 1:
            break
        pid = parent
    return chain


def _start_ticks(proc, pid):
    """Field 22 of /proc/<pid>/stat (start time in clock ticks after boot); the name in field 2 may hold spaces."""
    try:
        with open(os.path.join(proc, str(pid), "stat"), "rb") as fh:
            return int(fh.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


ENTRYPOINT_WINDOW_S = 60  # the entry point starts with its supervisor (v0.0.26: right after the netns and the proxy)


def probe_agent_processes(proc="/proc", me=None):
    """Every process of our uid (the agent's): its NoNewPrivs, seccomp filter count, start time and parent, and
    whether it belongs to this session. A process with fewer filters than this session was started outside the
    hardening (before it, or by a path that bypasses it). The supervisor is our nearest ancestor of another uid (PID 1
    when there is none, as on 0.1.x); its oldest agent child, when it started within ENTRYPOINT_WINDOW_S of the
    supervisor, is the sandbox's entry point."""
    me = me or os.getpid()
    mine = read_status(proc, me)
    uid = mine.get("Uid", "").split()[0] if mine.get("Uid") else str(os.getuid())
    own_filters = int(mine.get("Seccomp_filters") or 0)
    chain = _ancestry(proc, me)
    supervisor = 1
    for pid in chain[1:]:
        status = _status_of(proc, pid)
        if status is not None and status.get("Uid", "").split()[:1] != [uid]:
            supervisor = pid
            break
    chain = set(chain)
    others = []
    for entry in os.listdir(proc):
        if not entry.isdigit() or int(entry) == me:
            continue
        status = _status_of(proc, entry)
        if status is None or status.get("Uid", "").split()[:1] != [uid]:
            continue
        try:
            with open(os.path.join(proc, entry, "cmdline"), "rb") as fh:
                cmd = fh.read(200).replace(b"\x00", b" ").decode(errors="replace").strip()
        except OSError:
            cmd = ""
        others.append({"pid": int(entry), "ppid": int(status.get("PPid", "0") or 0), "cmd": cmd or status.get("Name", ""),
                       "no_new_privs": status.get("NoNewPrivs"), "seccomp": status.get("Seccomp"),
                       "seccomp_filters": int(status.get("Seccomp_filters") or 0), "in_session": int(entry) in chain,
                       "start": _start_ticks(proc, entry)})
    return {"uid": uid, "session_filters": own_filters, "session_no_new_privs": mine.get("NoNewPrivs"), "processes": others,
            "me": me, "supervisor": supervisor, "supervisor_start": _start_ticks(proc, supervisor),
            "ticks": os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100}


def decide_agent_processes(obs, _v):
    nnp = obs.get("session_no_new_privs") == "1"
    weaker = [p for p in obs["processes"] if (nnp and p["no_new_privs"] != "1") or p["seccomp_filters"] < obs["session_filters"]]
    observed = {"session_filters": obs["session_filters"], "agent_processes": len(obs["processes"]), "weaker": weaker[:20]}
    return (FAIL if weaker else PASS), observed


def outlived(obs):
    """(entry point pid or None, processes that are neither this session's nor the entry point's tree)."""
    procs = {p["pid"]: p for p in obs["processes"]}
    children = sorted((p for p in procs.values() if p["ppid"] == obs["supervisor"] and not p["in_session"]
                       and p["start"] is not None), key=lambda p: (p["start"], p["pid"]))
    entry = None
    if children and obs.get("supervisor_start") is not None and \
            children[0]["start"] - obs["supervisor_start"] <= ENTRYPOINT_WINDOW_S * obs.get("ticks", 100):
        entry = children[0]["pid"]

    anchors = {entry, obs.get("me"), *(p["pid"] for p in procs.values() if p["in_session"])} - {None}

    def anchored(pid):
        """Whether pid is, or descends from, the entry point or this session (its ancestors' other children too)."""
        for _dummy in range(64):
            if pid in anchors:
                return True
            if pid not in procs:
                return False
            pid = procs[pid]["ppid"]
        return False

    # Not left over: the supervisor itself (0.1.x runs it as the agent's uid), and processes whose parent is outside
    # this PID namespace (PPid 0: entered with docker/kubectl exec or nsenter - an operator's session or an exec
    # transport; no process of the sandbox can make one, and L2.agent_processes judges their confinement)
    return entry, [p for p in procs.values() if p["pid"] != obs["supervisor"] and p["ppid"] != 0 and not anchored(p["pid"])]


def decide_outlived_processes(obs, _v):
    entry, left = outlived(obs)
    observed = {"entry_point": entry, "supervisor": obs["supervisor"],
                "outlived": [{k: p[k] for k in ("pid", "ppid", "cmd")} for p in left][:20]}
    if left:
        return FAIL, {**observed, "reason": "agent processes outside this session and outside the entry point's tree "
                                            "(left by an earlier session, or another session running now)"}
    return PASS, observed


HOOK_NAMES = re.compile(r"(?:\.pth|^sitecustomize\.py|^usercustomize\.py)$")


def probe_startup_hooks(paths, limit=5000):
    """Python start-up hooks (site's .pth files, sitecustomize, usercustomize) under the agent-writable paths;
    they run in any non-isolated interpreter before its first line - e.g. in a launcher started as the agent."""
    found, seen = [], 0
    for top in paths:
        for root, dirs, names in os.walk(top):
            dirs[:] = [d for d in dirs if d not in ("node_modules", ".git", "proc")]
            seen += len(names)
            found.extend(os.path.join(root, n) for n in names if HOOK_NAMES.search(n))
            if seen > limit:
                return {"found": found[:50], "scanned": seen, "truncated": True}
    return {"found": found[:50], "scanned": seen, "truncated": False}


def decide_startup_hooks(obs, _v):
    return (FAIL if obs["found"] else PASS), obs


def harden_self():
    """Make this process non-dumpable: /proc/<pid>/mem, /proc/<pid>/fd and ptrace attach then need CAP_SYS_PTRACE,
    so another process of the agent's uid cannot rewrite the verifier while it runs."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0
        return True
    except (OSError, AttributeError):
        return False


def sandbox_main(params):
    """Entry point when the verifier is piped into a sandbox (`python3 -I -S`, code and parameters on stdin)."""
    dumpable_off = harden_self()
    package = __name__.rsplit(".", 1)[0] + "."
    for name, mod in sorted(sys.modules.items()):  # every probe extension piped in with us (_verify_proxy, ...)
        if name.startswith(package + "_verify_") and hasattr(mod, "CHECKS") and hasattr(mod, "plan"):
            register(mod)
    check_ids = select_checks(params.get("checks"), params.get("skip_checks"))
    start = time.monotonic()
    findings, v = run_checks(params, check_ids)
    v["dumpable_off"] = dumpable_off
    return {"findings": findings, "layers": summarize(findings), "vantage": v, "failed_checks": failing(findings, "any"),
            "duration_ms": int((time.monotonic() - start) * 1000)}


# ---------------------------------------------------------------------------------------------------------------
def default_expected_mode(value):
    if value in (None, ""):
        return None
    try:
        return int(str(value), 8)
    except ValueError as exc:
        raise ValueError(f"ca_mode {value!r} is not an octal mode") from exc


def plan(params, vantage_info):
    """Map each check id to a zero-argument probe and a decision. Raises ValueError on bad parameters."""
    proxy = parse_hostport(params["proxy"], "proxy")
    allowed = parse_hostport(params["allowed_host"], "allowed_host", 443) if params.get("allowed_host") else None
    denied = parse_hostport(params["denied_host"], "denied_host", 443) if params.get("denied_host") else None
    tls_host = parse_hostport(params["tls_host"], "tls_host", 443) if params.get("tls_host") else allowed
    egress = parse_hostport(params["egress_target"], "egress_target") if params.get("egress_target") else None
    resolver = parse_hostport(params["dns_resolver"], "dns_resolver", 53) if params.get("dns_resolver") else None
    dns_name = params.get("dns_query_name") or (allowed[0] if allowed else "example.com")
    try:
        ipaddress.ip_address(proxy[0])
        proxy_is_ip = True
    except ValueError:
        proxy_is_ip = False
    model = params.get("expected_model")
    if model is not None and not re.fullmatch(r"[A-Za-z0-9._:/\-]+", model):
        raise ValueError(f"expected_model {model!r} is not a valid model id")
    ca_mode = default_expected_mode(params.get("ca_mode"))
    proc = params.get("proc_root", "/proc")
    t, et = params["timeout"], params["egress_timeout"]
    ca = params["ca_path"]
    inference = params["inference_host"]
    models_req = f"GET /v1/models HTTP/1.1\r\nHost: {inference}\r\nAccept: application/json\r\nConnection: close\r\n\r\n".encode("ascii")

    def skip(reason):
        return lambda: {"skip": reason}

    return {
        "L1.ro_root": (lambda: {"probes": [probe_ro(p) for p in params["ro_paths"]]}, decide_ro_root),
        "L1.landlock": (lambda: probe_landlock_dirs(params["landlock_probe_paths"]), decide_landlock),
        "L1.writable_paths": (lambda: {"probes": [probe_create(p) for p in params["writable_paths"]]}, decide_writable),
        "L1.policy_read_only": ((lambda: probe_policy_read_only(params.get("policy_read_only"), params["writable_paths"]))
                                if params.get("policy_read_only") else skip("no policy read-only paths (policy_command)"),
                                decide_policy_read_only),
        "L1.non_root": (dict, decide_non_root),
        "L1.no_capabilities": (dict, decide_no_caps),
        "L1.startup_hooks": (lambda: probe_startup_hooks(params.get("hook_scan_paths") or ["/sandbox", "/tmp", "/var/tmp"]),
                             decide_startup_hooks),
        "L2.seccomp_mode": (dict, decide_seccomp_mode),
        "L2.af_packet": (lambda: probe_socket(17, EINVAL_TYPE), decide_filtered_socket),
        "L2.af_netlink": (lambda: probe_netlink_protocols(params.get("netlink_allowed_protocols", [0])), decide_netlink_protocols),
        "L2.af_inet": (lambda: probe_socket(socket.AF_INET, socket.SOCK_STREAM), decide_af_inet),
        "L2.sock_packet": (lambda: probe_socket(socket.AF_INET, SOCK_PACKET_PROBE_TYPE), decide_filtered_socket),
        "L2.high_bit_family": (lambda: probe_raw_socket(0x1_00000028, EINVAL_TYPE), decide_filtered_socket),
        "L2.io_uring": (lambda: probe_io_uring(proc), decide_io_uring),
        "L2.inherited_sockets": (lambda: probe_inherited_sockets(proc), decide_inherited),
        "L2.agent_processes": (lambda: probe_agent_processes(proc), decide_agent_processes),
        "L2.outlived_processes": (lambda: probe_agent_processes(proc), decide_outlived_processes),
        "L3.default_route": (lambda: read_default_route(proc),
                             (lambda o, v: decide_route(o, v, proxy[0])) if proxy_is_ip else None),
        "L3.direct_egress": ((lambda: probe_direct_egress(egress[0], egress[1], et, proxy)) if egress
                             else skip("set egress_target to an address outside the sandbox"), decide_egress),
        "L3.dns_leak": ((lambda: probe_dns(resolver[0], resolver[1], dns_name, et)) if resolver
                        else skip("set dns_resolver to a resolver outside the sandbox"), decide_dns),
        "L4.denied_host": ((lambda: proxy_connect(proxy, denied[0], denied[1], t)[1]) if denied
                           else skip("set denied_host"), decide_denied),
        "L4.allowed_host": ((lambda: _close_tunnel(proxy_connect(proxy, allowed[0], allowed[1], t))) if allowed
                            else skip("set allowed_host"), decide_allowed),
        "L5.ca_file": (lambda: probe_ca_file(ca), lambda o, v: decide_ca_file(o, v, ca_mode)),
        "L5.ca_cert": (lambda: probe_ca_file(ca), decide_ca_cert),
        "L5.mitm_chain": ((lambda: tls_through_proxy(proxy, tls_host[0], tls_host[1], ca, t)) if tls_host
                          else skip("set tls_host or allowed_host"), decide_mitm),
        "L6.inference_dns": (lambda: probe_resolve(inference), decide_resolve),
        "L6.inference_models": ((lambda: tls_through_proxy(proxy, inference, 443, ca, t, models_req)) if model
                                else skip("set expected_model"), lambda o, v: decide_models(o, v, model)),
        "L6.no_secrets": (lambda: probe_secrets(proc, params["config_scan_paths"]), decide_secrets),
    }


def _close_tunnel(result):
    sock, obs = result
    if sock is not None:
        sock.close()
    return obs


# checks whose probe reads the verifier process's own state, which the other probes change while they run
RUN_FIRST = frozenset({"L2.inherited_sockets"})


def run_checks(params, check_ids, max_workers=8):
    """Run the selected checks concurrently; every probe has its own deadline. Returns (findings, vantage)."""
    v = vantage(params.get("proc_root", "/proc"))
    probes = plan(params, v)
    for ext in EXTENSIONS:
        probes.update(ext.plan(params))
    known = catalogue()
    findings = {}
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max_workers)
    deadline_pad = max(params["timeout"], params["egress_timeout"]) * 2 + 1
    try:
        # the checks that describe this process's own descriptors finish before any other probe opens one
        started = {cid: (pool.submit(_timed, probes[cid][0]), time.monotonic()) for cid in check_ids if cid in RUN_FIRST}
        concurrent.futures.wait([pair[0] for pair in started.values()], timeout=deadline_pad)
        started.update({cid: (pool.submit(_timed, probes[cid][0]), time.monotonic()) for cid in check_ids
                        if cid not in started})
        for cid, (future, start) in started.items():
            layer, title, severity, expected, remediation = known[cid]
            decide = probes[cid][1]
            remaining = max(0.0, start + deadline_pad - time.monotonic())
            try:
                obs, elapsed = future.result(timeout=remaining)
                if "skip" in obs:
                    status, observed = SKIPPED, {"reason": obs["skip"]}
                elif decide is None:
                    status, observed = SKIPPED, {"reason": "proxy is a name; give its IP address to check the route"}
                else:
                    status, observed = decide(obs, v)
            except concurrent.futures.TimeoutError:
                status, observed, elapsed = ERROR, {"reason": f"probe timed out after {deadline_pad:.1f}s"}, deadline_pad
            except Exception as exc:  # noqa: BLE001 - a broken probe is an error finding, never a pass
                status, observed, elapsed = ERROR, {"reason": f"{type(exc).__name__}: {exc}"}, time.monotonic() - start
            findings[cid] = {
                "id": cid, "layer": layer, "title": title, "status": status, "severity": severity,
                "expected": expected, "observed": observed, "vantage": v,
                "remediation": "" if status == PASS else remediation, "duration_ms": int(elapsed * 1000),
            }
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return [findings[c] for c in check_ids], v


def _timed(fn):
    start = time.monotonic()
    obs = fn()
    return obs, time.monotonic() - start


def summarize(findings):
    """Per-layer result like the paper's tables: passed/total, PASS/PARTIAL/FAIL/ERROR, one evidence line."""
    layers = {}
    for layer in LAYERS:
        fs = [f for f in findings if f["layer"] == layer and f["status"] != SKIPPED]
        if not fs:
            if any(f["layer"] == layer for f in findings):
                layers[layer] = {"passed": 0, "total": 0, "result": "SKIPPED", "evidence": "all checks skipped"}
            continue
        passed = sum(f["status"] == PASS for f in fs)
        errors = sum(f["status"] == ERROR for f in fs)
        if passed == len(fs):
            result = "PASS"
        elif errors and passed + errors == len(fs):
            result = "ERROR"
        elif passed:
            result = "PARTIAL"
        else:
            result = "FAIL"
        bad = [f["id"] for f in fs if f["status"] != PASS]
        evidence = ("; ".join(f"{f['id'].split('.', 1)[1]}={'residual ' if f.get('residual') else ''}{f['status']}" for f in fs)
                    if bad else ", ".join(f["title"] for f in fs))
        layers[layer] = {"passed": passed, "total": len(fs), "result": result, "evidence": evidence}
    return layers


def mark_residual(findings, residual):
    """Annotate failing findings the target declares residual (open by design of the line, with its reason)."""
    for finding in findings:
        if finding["id"] in (residual or {}) and finding["status"] in (FAIL, ERROR):
            finding["residual"] = residual[finding["id"]]
    return findings


def mark_fixes(findings, fixes):
    """Link each finding to the target's fix of its layer: {fixable, toggle, tag, fix} (the target contract's layers)."""
    for finding in findings:
        fix = (fixes or {}).get(finding["layer"])
        if isinstance(fix, dict):
            finding["fix"] = {k: fix[k] for k in ("fixable", "toggle", "tag", "fix") if k in fix}
    return findings


def failing(findings, fail_on):
    findings = [f for f in findings if not f.get("residual")]
    if fail_on == "none":
        return []
    if fail_on == "any":
        return [f["id"] for f in findings if f["status"] in (FAIL, ERROR)]
    return [f["id"] for f in findings if f["status"] == FAIL and SEVERITY_RANK[f["severity"]] >= SEVERITY_RANK["high"]]
