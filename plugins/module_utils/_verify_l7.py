# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)
"""Verifier probe for L7 enforcement on the OpenShell 0.0.x proxy lines (targets openshell_host, openshell_k3s, lab).

An endpoint with `protocol: rest` and `access: read-only` allows GET/HEAD/OPTIONS only (openshell.md 4(b),
policy-schema.mdx); whether a refused method is blocked depends on the endpoint's `enforcement`, which defaults to
`audit` (crates/openshell-sandbox/src/l7/mod.rs: anything but "enforce" -> Audit; the same at v0.0.111,
openshell.md Claim 2): in audit mode the proxy logs the denial and forwards the request anyway. The probe sends a
POST through the proxy to the read-only endpoint named by ``l7_readonly_host`` (TLS terminated by the sandbox CA, as
the agent's traffic is) and looks at who answered: the proxy's deny response is HTTP 403 with a JSON body whose
`error` is `policy_denied` (l7/rest.rs @v0.0.26 L348-381); anything else came from the upstream server.

Same contract as _verify_proxy: CHECKS and plan(params); traffic only to the configured proxy, bounded time.
"""

from __future__ import annotations

import json
import socket
import ssl

from ansible_collections.agentsec.nemoclaw.plugins.module_utils._verify import (
    ERROR,
    FAIL,
    PASS,
    parse_hostport,
    parse_http_response,
    read_response,
)

CHECKS = {
    "L4.l7_enforcement": ("L4", "L7 rules are enforced, not only audited", "high",
                          "HTTP 403 policy_denied from the proxy for a POST to an endpoint whose policy allows read-only access",
                          "Set `enforcement: enforce` on every L7 endpoint (openshell policy set --wait; hardening role, "
                          "backend policy, l4). The default `audit` logs the denial and forwards the request."),
}


def probe_l7_write(proxy, host, port, cafile, timeout, path="/agentsec-l7-probe"):
    try:
        sock = socket.create_connection(proxy, timeout=timeout)
    except OSError as exc:
        return {"result": "proxy-unreachable", "error": f"{type(exc).__name__}: {exc}"}
    try:
        sock.settimeout(timeout)
        sock.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode("ascii"))
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 16384:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
        if not head.startswith(b"HTTP/1.1 200") and not head.startswith(b"HTTP/1.0 200"):
            return {"result": "no-tunnel", "answer": head.split(b"\r\n", 1)[0].decode("latin-1")}
        ctx = ssl.create_default_context(cafile=cafile)
        body = b'{"agentsec": "l7-probe"}'
        request = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode("ascii") + body
        with ctx.wrap_socket(sock, server_hostname=host) as tls:
            tls.sendall(request)
            # up to the end of the response: the proxy may keep its side open after the upstream answered
            raw = read_response(tls, limit=1 << 16)
    except ssl.SSLCertVerificationError as exc:
        return {"result": "untrusted", "error": exc.verify_message or str(exc)}
    except (ssl.SSLError, OSError) as exc:
        return {"result": "tls-error", "error": f"{type(exc).__name__}: {exc}"}
    finally:
        sock.close()
    if not raw:
        return {"result": "closed"}
    status, _headers, payload = parse_http_response(raw)
    try:
        error = json.loads(payload).get("error")
    except (ValueError, AttributeError):
        error = None
    return {"result": "answered", "status": status, "error_body": error}


def decide_l7_write(obs, _v):
    if obs.get("result") != "answered":
        return ERROR, obs
    if obs["status"] == 403 and obs.get("error_body") == "policy_denied":
        return PASS, obs
    reason = f"the upstream answered {obs['status']}: the proxy forwarded a request its policy denies (enforcement: audit)"
    return FAIL, {**obs, "reason": reason}


def plan(params):
    proxy = parse_hostport(params["proxy"], "proxy")
    target = params.get("l7_readonly_host")
    if not target:
        return {"L4.l7_enforcement": ((lambda: {"skip": "set l7_readonly_host (an endpoint with protocol rest, access "
                                                        "read-only)"}), decide_l7_write)}
    host, port = parse_hostport(target, "l7_readonly_host", 443)
    timeout, ca = float(params["timeout"]), params["ca_path"]
    return {"L4.l7_enforcement": ((lambda: probe_l7_write(proxy, host, port, ca, timeout)), decide_l7_write)}


def sandbox_main(params):
    """Entry point when piped into a sandbox with these probes (until sandbox_verify registers line extensions)."""
    import sys  # noqa: PLC0415

    from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _verify  # noqa: PLC0415

    _verify.register(sys.modules[__name__])
    return _verify.sandbox_main(params)
