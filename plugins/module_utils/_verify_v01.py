# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)
"""Verifier probes for the OpenShell 0.1.x sandbox model (RFC 0012: the workload has no network of its own, no proxy,
no capabilities; a seccomp user-notification broker mediates sockets; the CA lives in a supervisor tmpfs).

Same contract as _verify_proxy: CHECKS (id -> layer, title, severity, expected, remediation) and plan(params) -> {id:
(probe, decision)}; probes run in the sandbox as the agent, standard library only, bounded, and contact nothing
(socket() calls only create and close; no connect, bind or send, never on AF_VSOCK). Sources (ref =
/work/shared/reference/openshell-current.md):
- network: "No proxy environment variable, nftables rule, or workload network namespace setup is part of
  enforcement"; Docker network_mode=none, only `lo` (ref 4.1, crates/openshell-driver-docker/README.md @03c8c5f8);
- broker family decisions: AF_INET/AF_INET6 only SOCK_STREAM/TCP and SOCK_DGRAM/UDP, else EPROTONOSUPPORT; AF_UNIX
  and AF_NETLINK continue natively; every other family EAFNOSUPPORT (crates/openshell-sandbox/src/network_broker.rs
  @0448e4f7 create_socket, ref 4.2 item 2);
- child self-protection filter: EPERM for unshare, setns, kcmp, setpriority, clone3, ... (crates/
  openshell-isolation-interface/src/linux/child_seccomp.rs @25670ec2, ref 4.2 item 3);
- CA: /run/openshell-supervisor-ca/material/{ca.crt,ca-bundle.crt}; NODE_EXTRA_CA_CERTS/DENO_CERT -> ca.crt,
  SSL_CERT_FILE/REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE/GIT_SSL_CAINFO -> the bundle (tls_env_vars, index id 61492413276;
  ref 4.4);
- inference.local removed in 0.1.0 (#3195/#3172): it must not resolve (ref 4.5);
- identity: one non-root UID, cap_drop ALL, no-new-privileges; Landlock ABI >= 3 mandatory (ref 4.1, 4.3).
The probe syscalls are chosen so the kernel's own answer differs from the filter's (EINVAL/EBADF/0 vs EPERM, EINVAL
vs EAFNOSUPPORT): a pass is attributable to the filter or broker, never to a missing feature.
"""

from __future__ import annotations

import ctypes
import errno as _errno
import os
import platform
import socket

from ansible_collections.agentsec.nemoclaw.plugins.module_utils._verify import ERROR, FAIL, PASS

CA_DIR = "/run/openshell-supervisor-ca/material"
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy", "grpc_proxy",
              "NODE_USE_ENV_PROXY")
CA_VARS = {"NODE_EXTRA_CA_CERTS": "ca.crt", "DENO_CERT": "ca.crt", "SSL_CERT_FILE": "ca-bundle.crt",
           "REQUESTS_CA_BUNDLE": "ca-bundle.crt", "CURL_CA_BUNDLE": "ca-bundle.crt", "GIT_SSL_CAINFO": "ca-bundle.crt"}
INVALID_TYPE = 15  # >= SOCK_MAX: the kernel answers EINVAL, so EAFNOSUPPORT can only come from the broker
BROKER_FAMILIES = ((17, "AF_PACKET"), (31, "AF_BLUETOOTH"), (38, "AF_ALG"), (40, "AF_VSOCK"), (44, "AF_XDP"),
                   (29, "AF_CAN"))
SYSCALLS = {"x86_64": {"setpriority": 141, "getpriority": 140, "pidfd_open": 434, "close_range": 436, "prlimit64": 302},
            "aarch64": {"setpriority": 140, "getpriority": 141, "pidfd_open": 434, "close_range": 436, "prlimit64": 261}}
CLOSE_RANGE_UNSHARE = 1 << 1
RLIMIT_NOFILE = 7

CHECKS = {
    "L1.v01_identity": ("L1", "Workload holds no capability and cannot gain one", "high",
                        "CapEff, CapPrm and CapBnd 0 and NoNewPrivs 1 (cap_drop ALL, no-new-privileges)",
                        "Run the 0.1.x Docker driver unchanged (both containers cap_drop ALL, no-new-privileges)."),
    "L1.v01_landlock_abi": ("L1", "Kernel offers the mandatory Landlock ABI >= 3", "high", "landlock_create_ruleset "
                            "reports ABI >= 3", "Use a kernel >= 6.2 (on a Mac: the Docker Desktop VM's kernel)."),
    "L2.v01_broker_families": ("L2", "Socket families outside INET/UNIX/NETLINK are refused by the broker", "high",
                               "EAFNOSUPPORT for AF_PACKET, AF_BLUETOOTH, AF_ALG, AF_VSOCK, AF_XDP, AF_CAN (EINVAL "
                               "without a broker) and EPROTONOSUPPORT for a raw AF_INET socket",
                               "Keep the seccomp user-notification broker (OpenShell 0.1.x network_broker.rs)."),
    "L2.v01_child_filter": ("L2", "The child self-protection filter is installed", "high",
                            "EPERM for setpriority to the current value, pidfd_open(self), close_range(CLOSE_RANGE_UNSHARE), "
                            "fcntl(F_SETOWN) and prlimit64(own pid) - calls the kernel and Docker's default profile allow",
                            "Recreate the sandbox on OpenShell 0.1.x (child_seccomp.rs); a workload started outside "
                            "`openshell-sandbox` (docker exec) has no such filter."),
    "L3.v01_no_route": ("L3", "The workload has no route and no interface but lo", "critical",
                        "no entry in /proc/self/net/route and only lo in /proc/self/net/dev (network_mode=none)",
                        "Use the 0.1.x Docker driver's network_mode=none workload; never attach a network to it."),
    "L3.v01_no_proxy_env": ("L3", "No proxy environment in the workload", "medium",
                            "none of HTTP(S)_PROXY, ALL_PROXY, grpc_proxy, NODE_USE_ENV_PROXY set",
                            "0.1.x mediates sockets in the broker; a proxy variable points at something that does not "
                            "exist here (an image or profile set it)."),
    "L5.v01_ca_env": ("L5", "TLS clients trust the supervisor CA at its 0.1.x path", "medium",
                      f"NODE_EXTRA_CA_CERTS/DENO_CERT -> {CA_DIR}/ca.crt and SSL_CERT_FILE/REQUESTS_CA_BUNDLE/"
                      f"CURL_CA_BUNDLE/GIT_SSL_CAINFO -> {CA_DIR}/ca-bundle.crt, both files present",
                      "Run the workload through openshell-sandbox (it exports the variables) and do not override them."),
    "L6.v01_no_inference_local": ("L6", "inference.local is gone (0.1.0 removed it)", "medium",
                                  "getaddrinfo(inference.local) fails",
                                  "Remove inference.local from /etc/hosts or the image; use an attached provider and "
                                  "its native endpoint (OpenShell 0.1.0, #3195)."),
}


def _errname(num):
    return _errno.errorcode.get(num, str(num))


def read_status(proc="/proc"):
    fields = {}
    with open(os.path.join(proc, "self", "status"), encoding="utf-8", errors="replace") as fh:
        for line in fh:
            key, sep, value = line.partition(":")
            if sep:
                fields[key] = value.strip()
    return fields


def probe_identity(proc="/proc"):
    try:
        st = read_status(proc)
    except OSError as exc:
        return {"error": exc.strerror}
    return {k: st.get(k) for k in ("CapEff", "CapPrm", "CapBnd", "NoNewPrivs")} | {"uid": os.getuid()}


def decide_identity(obs, _v):
    if "error" in obs or obs.get("CapEff") is None:
        return ERROR, obs
    zero = all(int(obs.get(k) or "1", 16) == 0 for k in ("CapEff", "CapPrm", "CapBnd"))
    ok = zero and obs.get("NoNewPrivs") == "1" and obs["uid"] != 0
    return (PASS if ok else FAIL), obs


def decide_landlock_abi(_obs, v):
    abi = v.get("landlock_abi") or 0
    return (PASS if abi >= 3 else FAIL), {"landlock_abi": abi}


def _raw_socket(family, type_, proto=0):
    try:
        socket.socket(family, type_, proto).close()
        return "ok"
    except OSError as exc:
        return _errname(exc.errno)


def probe_broker_families():
    out = {name: _raw_socket(fam, INVALID_TYPE) for fam, name in BROKER_FAMILIES}
    out["AF_INET/SOCK_RAW"] = _raw_socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    return out


def decide_broker_families(obs, _v):
    wrong = {k: r for k, r in obs.items() if k != "AF_INET/SOCK_RAW" and r != "EAFNOSUPPORT"}
    raw = obs.get("AF_INET/SOCK_RAW")
    if raw == "ok":
        wrong["AF_INET/SOCK_RAW"] = raw
    elif raw not in ("EPROTONOSUPPORT", "EPERM", "EACCES"):
        wrong["AF_INET/SOCK_RAW"] = raw
    if not wrong:
        return PASS, obs
    if any(r in ("ok", "EINVAL") for r in wrong.values()):
        return FAIL, {**obs, "reason": "the kernel answered, no broker decided: " + ", ".join(sorted(wrong))}
    return ERROR, {**obs, "reason": "unexpected answers: " + ", ".join(f"{k}={r}" for k, r in sorted(wrong.items()))}


def probe_child_filter():
    """Calls that succeed under the kernel and Docker's default seccomp profile (which already refuses unshare, setns
    and kcmp without capabilities, so those would prove nothing) and that 0.1.x's child filter refuses with EPERM."""
    import fcntl  # noqa: PLC0415

    table = SYSCALLS.get(platform.machine())
    if table is None:
        return {"error": f"no syscall numbers for {platform.machine()}"}
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long

    def call(name, *args):
        rc = libc.syscall(ctypes.c_long(table[name]), *[ctypes.c_long(a) if isinstance(a, int) else a for a in args])
        if rc >= 0 and name == "pidfd_open":
            os.close(rc)
        return "ok" if rc >= 0 else _errname(ctypes.get_errno())

    pid = os.getpid()
    current = libc.syscall(ctypes.c_long(table["getpriority"]), ctypes.c_long(0), ctypes.c_long(0))
    nice = 20 - current if current >= 0 else 0  # the raw syscall returns 20 - nice
    out = {"setpriority(PRIO_PROCESS,0,cur)": call("setpriority", 0, 0, nice), "pidfd_open(self)": call("pidfd_open", pid, 0)}
    read_fd, write_fd = os.pipe()
    try:
        out["close_range(UNSHARE)"] = call("close_range", write_fd + 1000, write_fd + 1000, CLOSE_RANGE_UNSHARE)
        try:
            fcntl.fcntl(read_fd, fcntl.F_SETOWN, pid)
            out["fcntl(F_SETOWN)"] = "ok"
        except OSError as exc:
            out["fcntl(F_SETOWN)"] = _errname(exc.errno)
    finally:
        os.close(read_fd)
        os.close(write_fd)
    old = (ctypes.c_uint64 * 2)()
    out["prlimit64(own pid)"] = call("prlimit64", pid, RLIMIT_NOFILE, None, ctypes.byref(old))
    return out


def decide_child_filter(obs, v):
    if "error" in obs:
        return ERROR, obs
    if v.get("seccomp") != "2":
        return FAIL, {**obs, "reason": "no seccomp filter on this process"}
    missing = {k: r for k, r in obs.items() if r != "EPERM"}
    return (PASS if not missing else FAIL), (obs if not missing else {**obs, "reason": "not refused: " + ", ".join(missing)})


def probe_routes(proc="/proc"):
    out = {}
    try:
        with open(os.path.join(proc, "self", "net", "route"), encoding="ascii") as fh:
            out["routes"] = [line.split()[0] + " " + line.split()[1] for line in fh.readlines()[1:] if line.strip()]
    except OSError as exc:
        out["routes_error"] = exc.strerror
    try:
        with open(os.path.join(proc, "self", "net", "dev"), encoding="ascii") as fh:
            out["interfaces"] = sorted(line.split(":", 1)[0].strip() for line in fh.readlines()[2:] if ":" in line)
    except OSError as exc:
        out["interfaces_error"] = exc.strerror
    return out


def decide_routes(obs, _v):
    if "routes" not in obs or "interfaces" not in obs:
        return ERROR, obs
    ok = not obs["routes"] and obs["interfaces"] == ["lo"]
    return (PASS if ok else FAIL), obs


def probe_proxy_env():
    return {"set": sorted(k for k in PROXY_VARS if os.environ.get(k))}


def decide_proxy_env(obs, _v):
    return (PASS if not obs["set"] else FAIL), obs


def probe_ca_env(ca_dir=CA_DIR):
    env = {k: os.environ.get(k) for k in CA_VARS}
    files = {name: os.path.isfile(os.path.join(ca_dir, name)) for name in ("ca.crt", "ca-bundle.crt")}
    return {"env": env, "files": files, "dir": ca_dir}


def decide_ca_env(obs, _v):
    wrong = {k: v for k, v in obs["env"].items() if v != os.path.join(obs["dir"], CA_VARS[k])}
    missing = [f for f, ok in obs["files"].items() if not ok]
    if not wrong and not missing:
        return PASS, obs
    parts = [("variables " + ", ".join(sorted(wrong))) if wrong else "", ("missing " + ", ".join(missing)) if missing else ""]
    return FAIL, {**obs, "reason": "; ".join(filter(None, parts))}


def probe_no_inference(name="inference.local"):
    try:
        infos = socket.getaddrinfo(name, 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        return {"result": "unresolved", "error": str(exc)}
    return {"result": "resolved", "addresses": sorted({i[4][0] for i in infos})}


def decide_no_inference(obs, _v):
    return (PASS if obs["result"] == "unresolved" else FAIL), obs


def plan(params):
    """Map each check id to (probe, decision). Uses proc_root (default /proc), v01_ca_dir (default the 0.1.x path)
    and inference_host (default inference.local)."""
    proc = params.get("proc_root", "/proc")
    ca_dir = params.get("v01_ca_dir") or CA_DIR
    inference = params.get("inference_host") or "inference.local"
    return {
        "L1.v01_identity": (lambda: probe_identity(proc), decide_identity),
        "L1.v01_landlock_abi": (dict, decide_landlock_abi),
        "L2.v01_broker_families": (probe_broker_families, decide_broker_families),
        "L2.v01_child_filter": (probe_child_filter, decide_child_filter),
        "L3.v01_no_route": (lambda: probe_routes(proc), decide_routes),
        "L3.v01_no_proxy_env": (probe_proxy_env, decide_proxy_env),
        "L5.v01_ca_env": (lambda: probe_ca_env(ca_dir), decide_ca_env),
        "L6.v01_no_inference_local": (lambda: probe_no_inference(inference), decide_no_inference),
        "L2.v01_threads": _plan_threads(globals().get("THREADS_OK", threads_work())),
    }


class InlineExecutor:
    """A ThreadPoolExecutor stand-in that runs each probe at submit time, for a process that cannot start threads."""

    def __init__(self, max_workers=None):
        self.max_workers = max_workers

    def submit(self, fn, *args, **kwargs):
        import concurrent.futures  # noqa: PLC0415

        future = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future
            future.set_exception(exc)
        return future

    def shutdown(self, wait=True, cancel_futures=False):
        return None


def threads_work():
    """False when a thread cannot start: 0.1.x's child filter answers clone3 with EPERM (child_seccomp.rs @25670ec2),
    and glibc >= 2.34 falls back to clone() only on ENOSYS."""
    import threading  # noqa: PLC0415

    try:
        thread = threading.Thread(target=lambda: None)
        thread.start()
        thread.join(5)
        return True
    except RuntimeError:
        return False


CHECKS["L2.v01_threads"] = ("L2", "Threads can be created in the sandbox", "medium",
                            "a new thread starts (clone3 allowed, or refused with ENOSYS so glibc falls back to clone)",
                            "Upstream issue: the 0.1.x child filter returns EPERM for clone3; multi-threaded agents "
                            "(Node.js, Python threads) cannot start threads until it returns ENOSYS.")


def _plan_threads(result):
    return (lambda: {"threads": result}), (lambda obs, _v: ((PASS if obs["threads"] else FAIL), obs))


def sandbox_main(params):
    """Entry point when piped into a sandbox with these probes: registers this module, runs the probes inline when
    the sandbox cannot start threads (see threads_work), and runs _verify.sandbox_main."""
    import concurrent.futures  # noqa: PLC0415
    import sys  # noqa: PLC0415

    from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _verify  # noqa: PLC0415

    ok = threads_work()
    module = sys.modules[__name__]
    module.THREADS_OK = ok
    if not ok:
        concurrent.futures.ThreadPoolExecutor = InlineExecutor
    _verify.register(module)
    return _verify.sandbox_main(params)
