"""The 0.0.116 supervisor stand-in's proxy: the lab's v0.0.26 proxy (proxy.py, roles/lab/files/openshell/supervisor,
imported unmodified; it is staged next to this file) with the later upstream changes the verifier can observe:

1. inference.local is intercepted only on port 443 (INFERENCE_LOCAL_PORT, crates/openshell-supervisor-network/src/
   proxy.rs @v0.0.111 L65-66, L1765; v0.0.33 #869); on another port it is a host like any other (policy decides).
2. The tunnel protocol is classified from a peek loop, not one peek: up to 24 bytes (the HTTP/2 preface length)
   until the bytes are conclusive or 100 ms passed, polling every 5 ms (proxy.rs @v0.0.111 L56-64, L1182-1204,
   classify L1094-1117; TLS detection l7/tls.rs L364-378 - same rule as v0.0.26). A ClientHello split after one
   byte with a longer pause therefore still classifies as "unsupported".
3. An unsupported tunnel protocol on an endpoint with L7 inspection (protocol: rest|sql) is refused with a JSON
   error instead of being relayed raw (proxy.rs @v0.0.111 L1119-1160 inspection_requirement /
   unsupported_l7_tunnel_protocol_detail, L2305-2345); on an L4-only endpoint it is still relayed raw.
Everything else (OPA decisions, SSRF, L7 enforcement default `audit`, TLS termination, the inference router) is the
lab proxy's v0.0.26 behaviour; where 0.0.116 differs beyond the three points above the stand-in does not know it
(unverified, canary checks it) - docs/lines.md lists them.
"""
from __future__ import annotations

import json
import os
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import proxy as P  # noqa: E402 - the lab's proxy, staged alongside

INFERENCE_LOCAL_PORT = 443
PEEK_BYTES = 24  # len(HTTP2_PRIOR_KNOWLEDGE_PREFACE)
PEEK_TIMEOUT = 0.100
PEEK_POLL = 0.005
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def could_be_tls_prefix(peek: bytes) -> bool:
    return peek in (b"\x16", b"\x16\x03")  # proxy.rs @v0.0.111 L1114-1116


def could_be_http_prefix(peek: bytes) -> bool:
    return any(m.startswith(peek) for m in P.HTTP_METHODS) or H2_PREFACE.startswith(peek)


def classify(peek: bytes) -> str:
    if P.looks_like_tls(peek):
        return "tls"
    if P.looks_like_http(peek):
        return "http"
    if peek.startswith(H2_PREFACE[: len(peek)]) and len(peek) >= len(H2_PREFACE):
        return "h2c"
    return "unsupported"


def peek_tunnel_protocol(client: socket.socket):
    deadline = time.monotonic() + PEEK_TIMEOUT
    while True:
        peek = client.recv(PEEK_BYTES, socket.MSG_PEEK)
        if not peek:
            return None, b""
        protocol = classify(peek)
        if (protocol != "unsupported" or not (could_be_tls_prefix(peek) or could_be_http_prefix(peek))
                or len(peek) == PEEK_BYTES or time.monotonic() >= deadline):
            return protocol, peek
        time.sleep(PEEK_POLL)


class HostProxy(P.Proxy):
    def handle(self, client):
        """The lab proxy's handle() with inference.local limited to :443 (point 1)."""
        client.settimeout(P.HEAD_TIMEOUT)
        buf = bytearray()
        while True:
            if len(buf) >= P.MAX_HEADER_BYTES:
                client.sendall(b"HTTP/1.1 431 Request Header Fields Too Large\r\n\r\n")
                return
            data = P.recv_some(client, P.MAX_HEADER_BYTES - len(buf))
            if not data:
                return
            buf += data
            if b"\r\n\r\n" in buf:
                break
        request_line = bytes(buf).decode("utf-8", "replace").split("\r\n", 1)[0].split()
        method = request_line[0] if request_line else ""
        target = request_line[1] if len(request_line) > 1 else ""
        if method != "CONNECT":
            self.forward(method, target, bytes(buf), client)
            return
        host, port = P.parse_target(target)
        host_lc = host.lower()
        if host_lc == P.INFERENCE_LOCAL_HOST and port == INFERENCE_LOCAL_PORT:
            client.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            reason = self.inference.intercept(client, port)
            if reason:
                P.LOG("CONNECT", action="deny", host=host_lc, port=port, stage="inference", reason=reason)
            return
        peer = client.getpeername()[:2]
        decision = self.decide(host_lc, port, peer)
        if decision["action"] != "allow":
            self._log_decision("CONNECT", "deny", host_lc, port, decision, stage="connect")
            client.sendall(b"HTTP/1.1 403 Forbidden\r\n\r\n")
            return
        ep = P.matched_endpoint_config(self.policy(), host_lc, port, decision["exec"], False)
        addrs, blocked = P.ssrf_addresses(self.resolver, host, port, P.allowed_ips_of(ep))
        if blocked:
            self._log_decision("CONNECT", "deny", host_lc, port, decision, stage="ssrf", reason=f"{blocked[0]}: {blocked[1]}")
            client.sendall(b"HTTP/1.1 403 Forbidden\r\n\r\n")
            return
        upstream = P.connect_any(addrs)
        try:
            client.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            l7 = P.l7_config(ep)
            self._log_decision("CONNECT_L7" if l7 else "CONNECT", "allow", host_lc, port, decision)
            self.tunnel(client, upstream, host_lc, port, ep, l7, decision)
        finally:
            P.close_all(upstream)

    def tunnel(self, client, upstream, host_lc, port, ep, l7, decision):
        """Points 2 and 3; TLS termination and the HTTP relay are the lab proxy's."""
        if P.tls_mode(ep) == "skip":
            P.copy_bidirectional(client, upstream)
            return
        client.settimeout(P.IDLE_TIMEOUT)
        protocol, peek = peek_tunnel_protocol(client)
        if protocol is None:
            return
        if protocol == "tls":
            try:
                tls_client = self.certs.server_context(host_lc).wrap_socket(client, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                P.LOG("TLS", action="error", host=host_lc, port=port, reason=f"client handshake: {exc}")
                return
            try:
                tls_client.settimeout(P.IDLE_TIMEOUT)
                try:
                    tls_up = self.upstream_ctx.wrap_socket(upstream, server_hostname=host_lc)
                except (ssl.SSLError, OSError) as exc:
                    P.LOG("TLS", action="error", host=host_lc, port=port, reason=f"upstream handshake: {exc}")
                    return
                try:
                    P.LOG("TLS", action="terminate", host=host_lc, port=port, record=peek[:3].hex())
                    self.relay_http(tls_client, tls_up, host_lc, port, l7, decision)
                finally:
                    P.close_all(tls_up)
            finally:
                P.close_all(tls_client)
        elif protocol == "http":
            self.relay_http(client, upstream, host_lc, port, l7, decision)
        elif l7:
            detail = ("HTTP/2 prior-knowledge (h2c) is not supported for L7-inspected endpoints" if protocol == "h2c"
                      else "Unsupported tunnel protocol for L7-inspected endpoint")
            P.LOG("CONNECT_L7", action="deny", host=host_lc, port=port, reason=detail, first_bytes=peek.hex())
            body = json.dumps({"error": "policy_denied", "detail": detail}).encode()
            client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: "
                           + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
        else:
            P.LOG("TUNNEL", action="raw", host=host_lc, port=port, first_bytes=peek.hex())
            P.copy_bidirectional(client, upstream)


if __name__ == "__main__":
    P.Proxy = HostProxy  # main() instantiates Proxy(args)
    sys.exit(P.main())
