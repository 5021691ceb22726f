# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)
"""Verifier probes for the sandbox proxy's scope: port, request authority, IP literals, TLS detection, inference routes.

Each check is a probe (runs in the sandbox as the agent, standard library only, bounded time, traffic only to the
configured proxy) and a pure decision ``decide_*(observation, vantage) -> (status, observed)``. Observations that
cannot tell are ``error``, never ``pass``. The expected answers are OpenShell v0.0.26's (NVIDIA/OpenShell
crates/openshell-sandbox/src/proxy.rs, l7/tls.rs, l7/inference.rs at tag v0.0.26; see docs/proxy.md), except the two
``*_evasion``/``*_traversal`` checks, which v0.0.26 itself fails.
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
import json
import os
import re
import socket
import ssl
import time

from ansible_collections.agentsec.nemoclaw.plugins.module_utils._verify import (
    ERROR,
    FAIL,
    PASS,
    parse_hostport,
    parse_http_response,
    read_response,
)

SPLIT_DELAY = 0.5  # seconds between the two TCP segments of a split ClientHello
DEFAULT_UNLISTED_PORT = 8443
ROUTE_SCOPE_PROBES = (("POST", "/v1/models/agentsec-probe"), ("DELETE", "/v1/models/agentsec-probe"),
                      ("GET", "/v1/modelsagentsec-probe"), ("PUT", "/v1/chat/completions"))
ROUTE_TRAVERSAL_PROBES = (("GET", "/v1/models/../../agentsec-probe"), ("GET", "/v1/models/..\\..\\agentsec-probe"),
                          ("GET", "/v1/models/%2e%2e/%2e%2e/agentsec-probe"))
CLIENTHELLO_VARIANTS = ((b"\x03\x00", None), (b"\x03\x02", None), (b"\x03\x03", None), (b"\x03\x04", None), (None, 5))
CLIENTHELLO_EVASIONS = ((b"\x03\x05", None), (None, 1))

# check catalogue: id -> (layer, title, severity, expected, remediation), the format of _verify.CHECKS
CHECKS = {
    "L4.port_scope": ("L4", "Proxy decides on host and port", "high",
                      "HTTP 403 to CONNECT <allowed host>:<a port the policy does not list>",
                      "Match the endpoint port as well as the host (OpenShell's Rego does: endpoint.ports[_] == network.port)."),
    "L4.authority": ("L4", "Forward proxy decides on the request URI, not the Host header", "high",
                     "HTTP 403 to GET http://<denied host>/ with Host: <allowed host>",
                     "Decide and connect on the absolute URI's authority (OpenShell v0.0.26 proxy.rs handle_forward_proxy)."),
    "L4.ip_literal": ("L4", "An allowed host's IP literal is not allowed", "high",
                      "HTTP 403 to CONNECT <IP of the allowed host>:<port>",
                      "Match policy hosts by name only; list an IP (with allowed_ips) only when it is meant to be reachable."),
    "L5.clienthello": ("L5", "TLS is intercepted for every ClientHello record version", "high",
                       "the served chain verifies against the sandbox CA for record versions 0x0300-0x0304 and a hello split "
                       "after its record header",
                       "Detect TLS like OpenShell (0x16, major 3, minor <= 4) instead of one exact record version."),
    "L5.clienthello_evasion": ("L5", "No raw TLS tunnel for an odd first TLS record", "high",
                               "the served chain verifies against the sandbox CA for record version 0x0305 and for a hello whose "
                               "first TCP segment carries one byte",
                               "Wait for 3 bytes and treat any 0x16 0x03 xx record as TLS (OpenShell peeks once: fixed in "
                               "v0.0.68 for split records); or set tls: skip nowhere and refuse uninspectable tunnels."),
    "L6.route_scope": ("L6", "inference.local routes only the inference request shapes", "high",
                       "HTTP 403 (not routed) for POST/DELETE /v1/models/x, GET /v1/modelsx and PUT /v1/chat/completions",
                       "Route only POST /v1/{chat/completions,completions,responses,messages} and GET /v1/models[/*]."),
    "L6.route_traversal": ("L6", "No provider key for a dot-segment path out of /v1/models", "medium",
                           "HTTP 403 (not routed) for GET /v1/models/../../x and its backslash and %2e variants",
                           "Normalise the path before matching the route shapes (OpenShell v0.0.26 matches the raw path and "
                           "reqwest resolves the dot segments afterwards)."),
}


class _Budget:
    """One deadline for all sub-probes of a check, so a check never outlives its share of run_checks' padding."""

    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def left(self):
        return self.end - time.monotonic()

    def timeout(self, per_step):
        return max(0.05, min(per_step, self.left()))


def _errtext(exc):
    return f"{type(exc).__name__}: {exc}"


def send_to_proxy(proxy, payload, timeout):
    """Connect to the proxy, send one request head and read the answer head. Returns (socket or None, observation).

    result: answered (with status), closed (EOF before any byte), proxy-unreachable, proxy-error."""
    try:
        sock = socket.create_connection(proxy, timeout=timeout)
    except OSError as exc:
        return None, {"result": "proxy-unreachable", "error": _errtext(exc)}
    head = b""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(payload)
        while b"\r\n\r\n" not in head and len(head) < 16384:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
    except OSError as exc:
        sock.close()
        return None, {"result": "proxy-error", "error": _errtext(exc)}
    if not head:
        sock.close()
        return None, {"result": "closed"}
    m = re.match(rb"HTTP/\d(?:\.\d)? (\d{3})", head)
    if not m:
        sock.close()
        return None, {"result": "proxy-error", "error": f"not an HTTP answer: {head[:60]!r}"}
    return sock, {"result": "answered", "status": int(m.group(1)), "head": head.split(b"\r\n\r\n", 1)[0].decode("latin-1")[:300]}


def connect_request(host, port):
    return f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode("ascii")


def probe_connect(proxy, host, port, timeout):
    sock, obs = send_to_proxy(proxy, connect_request(host, port), timeout)
    if sock is not None:
        sock.close()
    return {"target": f"{host}:{port}", **{k: v for k, v in obs.items() if k != "head"}}


def decide_connect_refused(obs, _v):
    """403 passes; a tunnel or any other answer fails; a connection the proxy accepted and closed without answering fails
    too (OpenShell does that only after its policy allowed the CONNECT and the upstream connect failed)."""
    if obs.get("result") in ("proxy-unreachable", "proxy-error"):
        return ERROR, obs
    if obs.get("result") == "closed":
        return FAIL, {**obs, "reason": "the proxy accepted the CONNECT and hung up without an answer: its policy allowed it"}
    return (PASS if obs.get("status") == 403 else FAIL), obs


def probe_authority(proxy, allowed_http, denied_http, allowed_connect, denied_connect, timeout):
    """Two absolute-URI requests whose Host header names the other host."""
    budget = _Budget(timeout * 2)
    out = {}
    for key, uri_host, host_header in (("denied_uri", denied_http, allowed_connect), ("allowed_uri", allowed_http, denied_connect)):
        req = (f"GET http://{uri_host[0]}:{uri_host[1]}/agentsec-authority-probe HTTP/1.1\r\n"
               f"Host: {host_header[0]}:{host_header[1]}\r\nConnection: close\r\n\r\n").encode("ascii")
        sock, obs = send_to_proxy(proxy, req, budget.timeout(timeout))
        if sock is not None:
            sock.close()
        out[key] = {"uri": f"http://{uri_host[0]}:{uri_host[1]}/", "host_header": f"{host_header[0]}:{host_header[1]}",
                    **{k: v for k, v in obs.items() if k != "head"}}
    return out


def decide_authority(obs, _v):
    """The request to the denied URI authority must be refused with 403 whatever its Host header says. The reverse
    request (allowed URI, denied Host) is evidence only: OpenShell forwards it to the URI authority."""
    denied = obs["denied_uri"]
    if denied.get("result") != "answered":
        return ERROR, obs
    if denied["status"] == 403:
        return PASS, obs
    return FAIL, {**obs, "reason": f"the proxy answered {denied['status']} for a denied URI authority with an allowed Host header"}


# ---------------------------------------------------------------------------------------------------------------
# TLS with a rewritten first record
def tls_handshake(sock, host, cafile, deadline, record_version=None, split=None):
    """Handshake over an open tunnel, trusting the sandbox CA alone. The first record (the ClientHello) can carry
    another record-layer version (the handshake transcript does not cover it) and can be sent as two TCP segments."""
    ctx = ssl.create_default_context(cafile=cafile)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=host)
    first, sent_record = True, None
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            try:
                obj.do_handshake()
            except ssl.SSLWantReadError:
                data = outgoing.read()
                if data and first:
                    first = False
                    if record_version is not None and len(data) >= 5:
                        data = data[:1] + record_version + data[3:]
                    sent_record = data[:3].hex()
                    if split:
                        sock.sendall(data[:split])
                        time.sleep(SPLIT_DELAY)
                        data = data[split:]
                if data:
                    sock.sendall(data)
                sock.settimeout(deadline.timeout(deadline.left()))
                chunk = sock.recv(65536)
                if not chunk:
                    return {"result": "closed", "record": sent_record}
                incoming.write(chunk)
                continue
            rest = outgoing.read()
            if rest:
                sock.sendall(rest)
            cert = obj.getpeercert() or {}
            issuer = ", ".join("=".join(x) for rdn in cert.get("issuer", ()) for x in rdn)
            return {"result": "intercepted", "record": sent_record, "issuer": issuer, "version": obj.version()}
    except ssl.SSLCertVerificationError as exc:
        return {"result": "untrusted", "record": sent_record, "error": exc.verify_message or str(exc)}
    except ssl.SSLError as exc:
        return {"result": "tls-error", "record": sent_record, "error": _errtext(exc)}
    except OSError as exc:
        return {"result": "tls-error", "record": sent_record, "error": _errtext(exc)}


def _clienthello_variant(proxy, host, port, cafile, timeout, budget, record_version, split):
    label = (f"record {record_version.hex()}" if record_version else "record as sent") + (f", split after {split} byte(s)" if split else "")
    sock, obs = send_to_proxy(proxy, connect_request(host, port), budget.timeout(timeout))
    if sock is None or obs.get("status", 0) // 100 != 2:
        if sock is not None:
            sock.close()
        return {"variant": label, "result": "no-tunnel", **{k: v for k, v in obs.items() if k != "head"}}
    try:
        return {"variant": label, **tls_handshake(sock, host, cafile, budget, record_version, split)}
    finally:
        sock.close()


def probe_clienthello(proxy, host, port, cafile, timeout, variants):
    """One tunnel and handshake per variant, all at once within one budget: one after another they took longer than the
    check's deadline on a loaded host (molecule lab in CI, `L5.clienthello` error), and each is independent."""
    if not cafile or not os.path.isfile(cafile):
        return {"result": "no-ca", "error": f"CA file {cafile} is missing, so the served chain cannot be checked against it"}
    budget = _Budget(timeout * 2)
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(variants) or 1) as pool:
        probes = list(pool.map(lambda v: _clienthello_variant(proxy, host, port, cafile, timeout, budget, *v), variants))
    return {"target": f"{host}:{port}", "probes": probes}


def decide_clienthello(obs, _v):
    """Every variant intercepted (the leaf chains to the sandbox CA) passes; a leaf from anyone else fails; anything
    that leaves the question open (no tunnel, a TLS alert, a closed tunnel) is an error."""
    if "probes" not in obs:
        return ERROR, obs
    results = [p["result"] for p in obs["probes"]]
    if "untrusted" in results:
        bad = [p["variant"] for p in obs["probes"] if p["result"] == "untrusted"]
        return FAIL, {**obs, "reason": "not intercepted (a chain that does not verify against the sandbox CA) for: " + "; ".join(bad)}
    if results and all(r == "intercepted" for r in results):
        return PASS, obs
    return ERROR, obs


# ---------------------------------------------------------------------------------------------------------------
# inference.local request shapes
def probe_route(proxy, inference_host, cafile, method, path, deadline, step):
    sock, obs = send_to_proxy(proxy, connect_request(inference_host, 443), deadline.timeout(step))
    if sock is None or obs.get("status", 0) // 100 != 2:
        if sock is not None:
            sock.close()
        return {"request": f"{method} {path}", "result": "no-tunnel", **{k: v for k, v in obs.items() if k != "head"}}
    ctx = ssl.create_default_context(cafile=cafile)
    body = b'{"model":"agentsec-probe"}' if method in ("POST", "PUT") else b""
    req = (f"{method} {path} HTTP/1.1\r\nHost: {inference_host}\r\nAccept: application/json\r\n"
           f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode("latin-1") + body
    try:
        sock.settimeout(deadline.timeout(step))
        with ctx.wrap_socket(sock, server_hostname=inference_host) as tls:
            tls.sendall(req)
            raw = read_response(tls, timeout_left=lambda: deadline.timeout(deadline.left()))
    except ssl.SSLCertVerificationError as exc:
        return {"request": f"{method} {path}", "result": "untrusted", "error": exc.verify_message or str(exc)}
    except (ssl.SSLError, OSError) as exc:
        return {"request": f"{method} {path}", "result": "tls-error", "error": _errtext(exc)}
    finally:
        sock.close()
    if not raw:
        return {"request": f"{method} {path}", "result": "closed"}
    status, headers, payload = parse_http_response(raw)
    out = {"request": f"{method} {path}", "result": "answered", "status": status,
           "routed": headers.get("transfer-encoding", "").lower() == "chunked"}
    try:
        err = json.loads(payload).get("error")
        if isinstance(err, str):
            out["error_body"] = err[:120]
    except (ValueError, AttributeError):
        pass
    return out


def probe_routes(proxy, inference_host, cafile, timeout, shapes):
    if not cafile or not os.path.isfile(cafile):
        return {"result": "no-ca", "error": f"CA file {cafile} is missing, so inference.local's chain cannot be checked"}
    budget = _Budget(timeout * 2)
    return {"probes": [probe_route(proxy, inference_host, cafile, m, p, budget, timeout) for m, p in shapes]}


def decide_routes(obs, _v):
    """Each request must be refused by the proxy itself: HTTP 403 in a plain (Content-Length) answer. OpenShell sends
    every routed answer chunked (l7/inference.rs format_http_response_header), so a chunked or non-403 answer means the
    request reached the inference backend with the provider key."""
    if "probes" not in obs:
        return ERROR, obs
    bad = [p["request"] for p in obs["probes"] if p["result"] == "answered" and (p["status"] != 403 or p["routed"])]
    if bad:
        return FAIL, {**obs, "reason": "routed to the inference backend (with the provider key): " + "; ".join(bad)}
    if all(p["result"] == "answered" for p in obs["probes"]) and obs["probes"]:
        return PASS, obs
    return ERROR, obs


# ---------------------------------------------------------------------------------------------------------------
def _port_param(value, what):
    try:
        port = int(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} {value!r} is not a port number") from exc
    if not 0 < port < 65536:
        raise ValueError(f"{what} {value!r} is out of range")
    return port


def plan(params):
    """Map each check id to (probe, decision). Raises ValueError naming a bad parameter.

    Uses proxy, allowed_host, denied_host, tls_host, ca_path, inference_host, timeout (as _verify.plan) and
    unlisted_port (default 8443), allowed_http / denied_http (default: the allowed/denied host name on port 80) and
    allowed_ip (no default: the probe never resolves names itself, L4.ip_literal is skipped without it)."""
    proxy = parse_hostport(params["proxy"], "proxy")
    allowed = parse_hostport(params["allowed_host"], "allowed_host", 443) if params.get("allowed_host") else None
    denied = parse_hostport(params["denied_host"], "denied_host", 443) if params.get("denied_host") else None
    tls_host = parse_hostport(params["tls_host"], "tls_host", 443) if params.get("tls_host") else allowed
    allowed_http = parse_hostport(params["allowed_http"], "allowed_http", 80) if params.get("allowed_http") else \
        ((allowed[0], 80) if allowed else None)
    denied_http = parse_hostport(params["denied_http"], "denied_http", 80) if params.get("denied_http") else \
        ((denied[0], 80) if denied else None)
    unlisted = _port_param(params.get("unlisted_port") or DEFAULT_UNLISTED_PORT, "unlisted_port")
    if allowed and unlisted == allowed[1]:
        raise ValueError(f"unlisted_port {unlisted} is the allowed_host port; give a port the policy does not list")
    allowed_ip = params.get("allowed_ip")
    if allowed_ip:
        try:
            ipaddress.ip_address(allowed_ip)
        except ValueError as exc:
            raise ValueError(f"allowed_ip {allowed_ip!r} is not an IP address") from exc
    t, ca, inference = float(params["timeout"]), params["ca_path"], params.get("inference_host") or "inference.local"

    def skip(reason):
        return lambda: {"skip": reason}

    def ip_literal():
        host = f"[{allowed_ip}]" if ":" in allowed_ip else allowed_ip
        return probe_connect(proxy, host, allowed[1], t)

    return {
        "L4.port_scope": ((lambda: probe_connect(proxy, allowed[0], unlisted, t)) if allowed else skip("set allowed_host"),
                          decide_connect_refused),
        "L4.authority": ((lambda: probe_authority(proxy, allowed_http, denied_http, allowed, denied, t)) if allowed and denied
                         else skip("set allowed_host and denied_host"), decide_authority),
        "L4.ip_literal": (ip_literal if allowed and allowed_ip else skip("set allowed_host and allowed_ip (the allowed host's address)"),
                          decide_connect_refused),
        "L5.clienthello": ((lambda: probe_clienthello(proxy, tls_host[0], tls_host[1], ca, t, CLIENTHELLO_VARIANTS)) if tls_host
                           else skip("set tls_host or allowed_host"), decide_clienthello),
        "L5.clienthello_evasion": ((lambda: probe_clienthello(proxy, tls_host[0], tls_host[1], ca, t, CLIENTHELLO_EVASIONS))
                                   if tls_host else skip("set tls_host or allowed_host"), decide_clienthello),
        "L6.route_scope": (lambda: probe_routes(proxy, inference, ca, t, ROUTE_SCOPE_PROBES), decide_routes),
        "L6.route_traversal": (lambda: probe_routes(proxy, inference, ca, t, ROUTE_TRAVERSAL_PROBES), decide_routes),
    }
