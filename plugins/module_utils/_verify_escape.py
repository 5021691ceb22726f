# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)
"""Verifier probes for the ways out of the sandbox that need no network (issue 13, classes 3 and 4): socket families
outside the allow-list, new user namespaces on every entry point, route and address changes through NETLINK_ROUTE,
and the Landlock scopes that keep one session away from the processes and abstract sockets of another.

Same contract as _verify_proxy: CHECKS (id -> (layer, title, severity, expected, remediation)) and
``plan(params) -> {id: (probe, decide)}``. Every probe is built so that it cannot change the sandbox:

- socket families are asked with an invalid type (15 >= SOCK_MAX): the kernel answers EINVAL before it looks the
  family up (net/socket.c __sock_create: the type check precedes the family lookup and request_module), so nothing
  is created - AF_VSOCK included - and any other answer comes from a filter in front of the kernel;
- user namespaces are tried in a throw-away child interpreter (``python3 -I -S``), whose children exit at once;
- route and address changes are asked with rtnetlink requests that need CAP_NET_ADMIN but that no handler exists for
  (see route_requests): EPERM without the capability, EOPNOTSUPP with it, and nothing changes either way (a deletion
  of a "surely absent" route is not safe: the TEST-NET you pick may be the host's own link);
- the scope probe sends signal 0 (no signal is delivered, only the permission is checked: kernel/signal.c
  check_kill_permission calls security_task_kill for it) and opens, then closes at once, connections to abstract
  unix sockets of this network namespace that are listening; it sends no data.
"""

from __future__ import annotations

import errno as _errno
import json
import os
import socket
import struct
import subprocess
import sys

from ansible_collections.agentsec.nemoclaw.plugins.module_utils._verify import (
    ERROR, FAIL, PASS, SKIPPED, _ancestry, _status_of, landlock_abi)

EINVAL_TYPE = 15
# Families the default filter allows (docs/seccomp.md): AF_UNIX, AF_INET, AF_INET6, and AF_NETLINK (NETLINK_ROUTE
# only, checked by L2.af_netlink). Every other family below AF_MAX (46, include/linux/socket.h) must be refused.
ALLOWED_FAMILIES = frozenset({1, 2, 10, 16})
AF_MAX = 46
FAMILY_NAMES = {3: "AX25", 4: "IPX", 5: "APPLETALK", 6: "NETROM", 7: "BRIDGE", 8: "ATMPVC", 9: "X25", 11: "ROSE",
                12: "DECnet", 13: "NETBEUI", 14: "SECURITY", 15: "KEY", 17: "PACKET", 18: "ASH", 19: "ECONET",
                20: "ATMSVC", 21: "RDS", 22: "SNA", 23: "IRDA", 24: "PPPOX", 25: "WANPIPE", 26: "LLC", 27: "IB",
                28: "MPLS", 29: "CAN", 30: "TIPC", 31: "BLUETOOTH", 32: "IUCV", 33: "RXRPC", 34: "ISDN", 35: "PHONET",
                36: "IEEE802154", 37: "CAIF", 38: "ALG", 39: "NFC", 40: "VSOCK", 41: "KCM", 42: "QIPCRTR", 43: "SMC",
                44: "XDP", 45: "MCTP"}
CLONE_NEWUSER = 0x10000000
# rtnetlink (linux/rtnetlink.h, linux/netlink.h)
RTM_NEWNDUSEROPT, RTM_NEWCACHEREPORT, NLMSG_ERROR = 68, 96, 2
NLM_F_REQUEST, NLM_F_ACK = 1, 4
MAX_TARGETS = 20

CHECKS = {
    "L2.socket_families": ("L2", "Socket families outside the allow-list are refused", "high",
                           "socket(family, 15, 0) refused by a filter (EPERM, or EAFNOSUPPORT from a broker) for every "
                           "family below AF_MAX but AF_UNIX, AF_INET, AF_INET6 and AF_NETLINK (EINVAL without a filter)",
                           "Install the hardened filter (an allow-list of families, compared on the low 32 bits) through "
                           "the launcher (hardening role, l2)."),
    "L2.user_namespace": ("L2", "No new user namespace on any entry point", "critical",
                          "clone(CLONE_NEWUSER), clone3(CLONE_NEWUSER) and unshare(CLONE_NEWUSER) all refused",
                          "Install the hardened filter (it refuses CLONE_NEWUSER on clone and unshare and answers clone3 "
                          "with ENOSYS; hardening role, l2)."),
    "L3.route_change": ("L3", "Routes and addresses cannot be changed", "high",
                        "EPERM for rtnetlink requests that need CAP_NET_ADMIN (or NETLINK_ROUTE refused altogether)",
                        "Start the agent without CAP_NET_ADMIN in its network namespace (no capabilities after the "
                        "privilege drop, no user namespace of its own)."),
    "L1.landlock_scope": ("L1", "Other sessions' processes and abstract sockets are out of reach", "high",
                          "EPERM for signal 0 to every agent process outside this session and for a connect to every "
                          "listening abstract unix socket (Landlock ABI >= 6 scopes)",
                          "Run each session under the launcher on a kernel with Landlock ABI >= 6 (it scopes signals and "
                          "abstract unix sockets unless --no-landlock-scope; hardening role, l1)."),
}


def _errname(num):
    return _errno.errorcode.get(num, str(num))


# ---------------------------------------------------------------------------------------------------------------
def probe_socket_families(families=None):
    results = {}
    for family in families or [f for f in range(1, AF_MAX) if f not in ALLOWED_FAMILIES]:
        try:
            socket.socket(family, EINVAL_TYPE, 0).close()
            results[family] = "created"
        except OSError as exc:
            results[family] = _errname(exc.errno)
    return {"results": results}


def decide_socket_families(obs, v):
    """EINVAL (or a socket) means the call reached the kernel: nothing in front of it refused the family."""
    reached = {f"{FAMILY_NAMES.get(int(f), f)}({f})": r for f, r in obs["results"].items() if r in ("EINVAL", "created")}
    odd = {f"{FAMILY_NAMES.get(int(f), f)}({f})": r for f, r in obs["results"].items()
           if r not in ("EINVAL", "created", "EPERM", "EAFNOSUPPORT")}
    observed = {"probed": len(obs["results"]), "reached_kernel": reached, "other": odd}
    if reached:
        return FAIL, {**observed, "reason": "these families are not refused before the kernel"}
    if odd:
        return ERROR, {**observed, "reason": "unexpected answers: cannot tell whether a filter refused them"}
    if v.get("seccomp") != "2":
        return ERROR, {**observed, "reason": "refusals without a seccomp filter on this process are not attributable"}
    return PASS, observed


# ---------------------------------------------------------------------------------------------------------------
# One throw-away interpreter tries the three entry points; every child it gets (if any) exits at once. Standard
# library only; prints one JSON object.
USERNS_CHILD = r"""
import ctypes, json, os, platform, struct
NR = {"x86_64": {"clone": 56, "unshare": 272, "clone3": 435}, "aarch64": {"clone": 220, "unshare": 97, "clone3": 435}}
nr = NR.get(platform.machine())
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def call(name, *args):
    ctypes.set_errno(0)
    rc = libc.syscall(ctypes.c_long(nr[name]), *args)
    return rc, ctypes.get_errno()
def spawned(rc, err):
    if rc == 0:
        os._exit(0)
    if rc > 0:
        os.waitpid(rc, 0)
        return "created"
    return err
out = {}
if nr is None:
    out = {"error": "no syscall numbers for " + platform.machine()}
else:
    out["clone"] = spawned(*call("clone", ctypes.c_ulong(0x10000000 | 17), ctypes.c_ulong(0), ctypes.c_ulong(0),
                                 ctypes.c_ulong(0), ctypes.c_ulong(0)))
    args = struct.pack("=8Q", 0x10000000, 0, 0, 0, 17, 0, 0, 0)
    buf = ctypes.create_string_buffer(args, len(args))
    out["clone3"] = spawned(*call("clone3", buf, ctypes.c_size_t(len(args))))
    pid = os.fork()
    if pid == 0:
        rc, err = call("unshare", ctypes.c_ulong(0x10000000))
        os._exit(0 if rc == 0 else min(max(err, 1), 250))
    status = os.waitpid(pid, 0)[1]
    code = os.waitstatus_to_exitcode(status)
    out["unshare"] = "created" if code == 0 else code
print(json.dumps(out))
"""


def probe_user_namespace(timeout=10.0, python=None):
    try:
        proc = subprocess.run([python or sys.executable, "-I", "-S", "-c", USERNS_CHILD], capture_output=True, text=True,
                              timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    try:
        raw = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": f"child exited {proc.returncode}: {proc.stderr.strip()[-300:]}"}
    if "error" in raw:
        return raw
    return {name: value if isinstance(value, str) else _errname(value) for name, value in raw.items()}


def decide_user_namespace(obs, _v):
    if "error" in obs:
        return ERROR, obs
    created = sorted(name for name, result in obs.items() if result == "created")
    if created:
        return FAIL, {**obs, "reason": f"a new user namespace (a full capability set inside it) through {', '.join(created)}"}
    return PASS, obs


# ---------------------------------------------------------------------------------------------------------------
def route_requests():
    """Two rtnetlink requests that need CAP_NET_ADMIN and that no family handles: RTM_NEWNDUSEROPT (68) and
    RTM_NEWCACHEREPORT (96) are only ever sent by the kernel. The capability check comes first
    (net/core/rtnetlink.c rtnetlink_rcv_msg: every request that is not a GET), so without it the answer is EPERM,
    and with it EOPNOTSUPP (no doit) - and nothing in the namespace can change either way."""
    body = struct.pack("=BBHI", socket.AF_INET, 0, 0, 0)
    return {name: struct.pack("=IHHII", 16 + len(body), kind, NLM_F_REQUEST | NLM_F_ACK, seq, 0) + body
            for seq, (name, kind) in enumerate((("newnduseropt", RTM_NEWNDUSEROPT), ("newcachereport", RTM_NEWCACHEREPORT)), 1)}


def probe_route_change(timeout=2.0):
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    except OSError as exc:
        return {"socket": _errname(exc.errno)}
    out = {"socket": "ok"}
    try:
        sock.settimeout(timeout)
        sock.bind((0, 0))
        for name, request in route_requests().items():
            sock.send(request)
            answer = sock.recv(65536)
            kind = struct.unpack_from("=H", answer, 4)[0] if len(answer) >= 16 else None
            if kind != NLMSG_ERROR or len(answer) < 20:
                out[name] = f"unexpected answer type {kind}"
                continue
            code = -struct.unpack_from("=i", answer, 16)[0]
            out[name] = "ok" if code == 0 else _errname(code)
    except OSError as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        sock.close()
    return out


def decide_route_change(obs, _v):
    if obs["socket"] != "ok":
        return PASS, {**obs, "reason": "NETLINK_ROUTE itself is refused"}
    if "error" in obs:
        return ERROR, obs
    answers = {k: obs.get(k) for k in route_requests()}
    if all(a == "EPERM" for a in answers.values()):
        return PASS, obs
    if any(a in ("ok", "EOPNOTSUPP", "ENOTSUP") for a in answers.values()):  # errno 95 has both names
        return FAIL, {**obs, "reason": "the request got past the kernel's CAP_NET_ADMIN check: the agent can change routes "
                                       "and addresses in its network namespace"}
    return ERROR, {**obs, "reason": "unexpected answers"}


# ---------------------------------------------------------------------------------------------------------------
def session_outsiders(proc="/proc", me=None):
    """Processes of our uid that are neither this session's ancestors nor its descendants."""
    me = me or os.getpid()
    mine = _status_of(proc, me) or {}
    uid = (mine.get("Uid") or str(os.getuid())).split()[0]
    chain = set(_ancestry(proc, me))
    parents = {}
    for entry in os.listdir(proc):
        if entry.isdigit():
            status = _status_of(proc, entry)
            if status is not None and status.get("Uid", "").split()[:1] == [uid]:
                parents[int(entry)] = int(status.get("PPid", "0") or 0)

    def descends(pid):
        for _dummy in range(64):
            if pid == me:
                return True
            pid = parents.get(pid, 0)
            if pid <= 1:
                return False
        return False

    return sorted(p for p in parents if p not in chain and not descends(p))


def abstract_listeners(proc="/proc"):
    """(name, type) of every listening abstract unix socket in this network namespace (/proc/net/unix)."""
    found = []
    try:
        with open(os.path.join(proc, "net", "unix"), encoding="utf-8", errors="replace") as fh:
            next(fh, None)
            for line in fh:
                parts = line.split()
                if len(parts) >= 8 and parts[7].startswith("@") and int(parts[3], 16) & 0x10000:
                    found.append((parts[7][1:], int(parts[4], 16)))
    except OSError:
        return None
    return found


def probe_landlock_scope(proc="/proc", timeout=1.0):
    out = {"landlock_abi": landlock_abi(), "signals": {}, "abstract": {}}
    for pid in session_outsiders(proc)[:MAX_TARGETS]:
        try:
            os.kill(pid, 0)
            out["signals"][pid] = "sent"
        except OSError as exc:
            out["signals"][pid] = _errname(exc.errno)
    listeners = abstract_listeners(proc)
    out["abstract_listed"] = listeners is not None
    for name, kind in (listeners or [])[:MAX_TARGETS]:
        sock = socket.socket(socket.AF_UNIX, {2: socket.SOCK_DGRAM, 5: socket.SOCK_SEQPACKET}.get(kind, socket.SOCK_STREAM))
        sock.settimeout(timeout)
        try:
            sock.connect("\0" + name)
            out["abstract"][name] = "connected"
        except OSError as exc:
            out["abstract"][name] = _errname(exc.errno) if exc.errno else type(exc).__name__
        finally:
            sock.close()
    return out


def decide_landlock_scope(obs, _v):
    reached = {**{f"pid {p}": r for p, r in obs["signals"].items() if r == "sent"},
               **{f"@{n}": r for n, r in obs["abstract"].items() if r == "connected"}}
    # ESRCH: the process is gone; ECONNREFUSED/EAGAIN: the listener went away or its backlog is full - neither tells
    # whether a scope stood in the way, so only EPERM and a success count as probed
    probed = [r for r in (*obs["signals"].values(), *obs["abstract"].values()) if r in ("EPERM", "sent", "connected")]
    observed = {"landlock_abi": obs["landlock_abi"], "signals": obs["signals"], "abstract": obs["abstract"]}
    if reached:
        why = "" if (obs["landlock_abi"] or 0) >= 6 else f" (Landlock ABI {obs['landlock_abi']}: scopes need ABI >= 6)"
        return FAIL, {**observed, "reached": reached, "reason": "this session reached what another session left" + why}
    if not probed:
        return SKIPPED, {**observed,
                         "reason": "nothing outside this session to probe: no other agent process and no listening abstract "
                                   "unix socket"}
    return PASS, observed


def plan(params):
    """Uses timeout and proc_root; the user-namespace child is the interpreter the verifier runs in."""
    t, proc = float(params["timeout"]), params.get("proc_root", "/proc")

    return {
        "L2.socket_families": (probe_socket_families, decide_socket_families),
        "L2.user_namespace": (lambda: probe_user_namespace(max(t, 5.0)), decide_user_namespace),
        "L3.route_change": (lambda: probe_route_change(t), decide_route_change),
        "L1.landlock_scope": (lambda: probe_landlock_scope(proc, t), decide_landlock_scope),
    }


def _self_register():
    """Piped into a sandbox, this module registers itself (as _verify_isolation does)."""
    from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _verify  # noqa: PLC0415

    _verify.register(sys.modules[__name__])


_self_register()
