"""The proxy checks' decisions and parameters (plugins/module_utils/_verify_proxy.py), and the pure parts of the lab's
sandbox proxy (roles/lab/files/openshell/supervisor/proxy.py) against OpenShell v0.0.26's own test vectors.

``oracle("upstream")`` tests take their inputs and expected answers from the upstream source or its unit tests at
tag v0.0.26 (named next to each case); the live behaviour is in tests/integration/test_proxy_attacks.py.
"""
from __future__ import annotations

import importlib.util
import os
import pathlib
import socket
import sys

import pytest

from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _verify as V
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _verify_proxy as VP

PROXY_PY = pathlib.Path(__file__).resolve().parents[4] / "roles" / "lab" / "files" / "openshell" / "supervisor" / "proxy.py"


@pytest.fixture(scope="module")
def px():
    pytest.importorskip("yaml")
    pytest.importorskip("cryptography")
    spec = importlib.util.spec_from_file_location("lab_openshell_proxy", PROXY_PY)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


BASE = {"proxy": "10.200.0.1:3128", "allowed_host": "allowed.lab:443", "denied_host": "denied.lab:443", "tls_host": None,
        "ca_path": "/etc/openshell-tls/openshell-ca.pem", "inference_host": "inference.local", "timeout": 2.0}


# =====================================================================================================================
# catalogue and plan
@pytest.mark.oracle("self")
def test_catalogue_has_the_format_of_verify_checks_and_new_ids():
    assert set(VP.CHECKS) == {"L4.port_scope", "L4.authority", "L4.ip_literal", "L5.clienthello", "L5.clienthello_evasion",
                              "L6.route_scope", "L6.route_traversal"}
    assert not set(VP.CHECKS) & set(V.CHECKS)
    for cid, (layer, title, severity, expected, remediation) in VP.CHECKS.items():
        assert cid.startswith(layer + ".") and layer in V.LAYERS and severity in V.SEVERITY_RANK
        assert title and expected and remediation


@pytest.mark.oracle("self")
def test_plan_covers_every_check_and_skips_without_hosts():
    probes = VP.plan(BASE)
    assert set(probes) == set(VP.CHECKS)
    bare = VP.plan({**BASE, "allowed_host": None, "denied_host": None})
    for cid in ("L4.port_scope", "L4.authority", "L4.ip_literal", "L5.clienthello", "L5.clienthello_evasion"):
        assert "skip" in bare[cid][0](), cid
    assert "allowed_ip" in probes["L4.ip_literal"][0]()["skip"]  # no name resolution in the probe itself


@pytest.mark.oracle("self")
@pytest.mark.parametrize(("extra", "message"), [
    ({"unlisted_port": 443}, "is the allowed_host port"),
    ({"unlisted_port": 70000}, "out of range"),
    ({"unlisted_port": "x"}, "not a port number"),
    ({"allowed_ip": "allowed.lab"}, "not an IP address"),
    ({"proxy": "nope:"}, "proxy"),
    ({"denied_http": "a b"}, "denied_http"),
])
def test_plan_names_the_bad_parameter(extra, message):
    with pytest.raises(ValueError, match=message):
        VP.plan({**BASE, **extra})


@pytest.mark.oracle("self")
def test_probes_only_talk_to_the_proxy(monkeypatch):
    """Every socket a probe opens goes to the configured proxy (here a closed loopback port)."""
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    port = dead.getsockname()[1]
    dead.close()
    seen = []
    real = socket.create_connection

    def spy(addr, *args, **kwargs):
        seen.append(addr)
        return real(addr, *args, **kwargs)

    monkeypatch.setattr(VP.socket, "create_connection", spy)
    monkeypatch.setattr(VP.os.path, "isfile", lambda _p: True)
    probes = VP.plan({**BASE, "proxy": f"127.0.0.1:{port}", "allowed_ip": "192.0.2.1", "timeout": 0.5})
    for cid, (probe, decide) in probes.items():
        status, _obs = decide(probe(), {})
        assert status == V.ERROR, cid  # an unreachable proxy is never a pass nor a fail
    assert seen and set(seen) == {("127.0.0.1", port)}


# =====================================================================================================================
# decisions
@pytest.mark.oracle("upstream")
@pytest.mark.parametrize(("obs", "status"), [
    ({"result": "answered", "status": 403}, V.PASS),  # sb/proxy.rs:466 (policy) and 521/556/597 (SSRF) answer 403
    ({"result": "answered", "status": 200}, V.FAIL),
    ({"result": "answered", "status": 502}, V.FAIL),
    ({"result": "closed"}, V.FAIL),  # sb/proxy.rs:487-489: allowed, upstream connect failed, dropped without an answer
    ({"result": "proxy-unreachable", "error": "ECONNREFUSED"}, V.ERROR),
    ({"result": "proxy-error", "error": "timeout"}, V.ERROR),
])
def test_decide_connect_refused(obs, status):
    assert VP.decide_connect_refused(obs, {})[0] == status


def _authority(denied, allowed):
    return {"denied_uri": denied, "allowed_uri": allowed}


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize(("obs", "status"), [
    (_authority({"result": "answered", "status": 403}, {"result": "answered", "status": 200}), V.PASS),  # sb/proxy.rs:2039-2077
    (_authority({"result": "answered", "status": 403}, {"result": "answered", "status": 403}), V.PASS),  # stricter is fine
    (_authority({"result": "answered", "status": 200}, {"result": "answered", "status": 403}), V.FAIL),
    (_authority({"result": "answered", "status": 502}, {"result": "answered", "status": 200}), V.FAIL),  # it tried the URI host
    (_authority({"result": "closed"}, {"result": "answered", "status": 200}), V.ERROR),
    (_authority({"result": "proxy-unreachable"}, {"result": "proxy-unreachable"}), V.ERROR),
])
def test_decide_authority(obs, status):
    assert VP.decide_authority(obs, {})[0] == status


def _hello(*results):
    return {"target": "allowed.lab:443", "probes": [{"variant": f"v{i}", "result": r} for i, r in enumerate(results)]}


@pytest.mark.oracle("self")
@pytest.mark.parametrize(("obs", "status"), [
    (_hello("intercepted", "intercepted"), V.PASS),
    (_hello("intercepted", "untrusted"), V.FAIL),
    (_hello("untrusted", "tls-error"), V.FAIL),
    (_hello("intercepted", "tls-error"), V.ERROR),
    (_hello("intercepted", "closed"), V.ERROR),
    (_hello("no-tunnel"), V.ERROR),
    (_hello(), V.ERROR),
    ({"result": "no-ca", "error": "missing"}, V.ERROR),
])
def test_decide_clienthello(obs, status):
    assert VP.decide_clienthello(obs, {})[0] == status


def _route(status, routed, result="answered"):
    return {"request": "X /p", "result": result, "status": status, "routed": routed}


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize(("probes", "status"), [
    ([_route(403, False), _route(403, False)], V.PASS),  # sb/proxy.rs:1285-1293: a plain 403 from the proxy
    ([_route(403, False), _route(404, True)], V.FAIL),  # a chunked answer is a routed one (l7/inference.rs:310-338)
    ([_route(403, True)], V.FAIL),  # the backend's own 403 still got the key
    ([_route(503, False)], V.FAIL),  # routed shape without a route (sb/proxy.rs:1157-1170): the shape was accepted
    ([_route(403, False), {"request": "X", "result": "tls-error"}], V.ERROR),
    ([], V.ERROR),
])
def test_decide_routes(probes, status):
    assert VP.decide_routes({"probes": probes}, {})[0] == status
    assert VP.decide_routes({"result": "no-ca"}, {})[0] == V.ERROR


@pytest.mark.oracle("self")
def test_read_response_stops_at_the_end_of_the_body_within_the_deadline():
    class Fake:
        def __init__(self, parts):
            self.parts, self.timeouts = list(parts), []

        def settimeout(self, t):
            self.timeouts.append(t)

        def recv(self, _n):
            return self.parts.pop(0) if self.parts else b""

    budget = VP._Budget(1)
    chunked = Fake([b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n", b"2\r\n{}\r\n", b"0\r\n\r\n", b"NEVER"])
    assert V.read_response(chunked, timeout_left=lambda: budget.timeout(budget.left())).endswith(b"0\r\n\r\n")
    assert len(chunked.timeouts) == 3 and all(0.05 <= t <= 1 for t in chunked.timeouts)  # each recv within the budget
    plain = Fake([b"HTTP/1.1 403 Forbidden\r\ncontent-length: 2\r\n\r\n{}", b"NEVER"])
    assert V.read_response(plain).endswith(b"{}") and plain.timeouts == []  # no callable: the socket's own timeout


# =====================================================================================================================
# the proxy's pure parts, with upstream's vectors
@pytest.mark.oracle("upstream")
@pytest.mark.parametrize(("peek", "tls"), [
    (b"\x16\x03\x01\x00\x05", True), (b"\x16\x03\x03\x01\x00", True), (b"\x16\x03\x01", True), (b"\x16\x03\x00", True),
    (b"\x16\x03\x04", True),  # tls.rs:338-346 and tls.rs:283-284 (minor <= 4)
    (b"GET / HTTP/1.1", False), (b"POST /api", False), (b"CONNECT host:443", False),  # tls.rs:350-355
    (b"", False), (b"\x16", False), (b"\x16\x03", False),  # tls.rs:357-362: a split record header is "not TLS"
    (b"SSH-2.0-OpenSSH", False), (b"\xff\xfe\x00", False), (b"\x17\x03\x03", False),  # tls.rs:364-369
    (b"\x16\x03\x05", False), (b"\x16\x03\xff", False),  # minor > 4 (servers accept these: the evasion check)
])
def test_looks_like_tls(px, peek, tls):
    assert px.looks_like_tls(peek) is tls
    assert px.looks_like_tls(peek, strict=True) is (peek[:3] == b"\x16\x03\x01")  # gap tls_strict_detect


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize(("method", "path", "protocol"), [
    ("POST", "/v1/chat/completions", "openai_chat_completions"), ("POST", "/v1/responses", "openai_responses"),
    ("POST", "/v1/messages", "anthropic_messages"), ("POST", "/v1/chat/completions?stream=true", "openai_chat_completions"),
    ("GET", "/v1/chat/completions", None), ("GET", "/v1/models", "model_discovery"),
    ("GET", "/v1/models/gpt-4.1", "model_discovery"), ("POST", "/v1/embeddings", None),  # l7/inference.rs tests
    ("get", "/v1/models", "model_discovery"),  # inference.rs:70 eq_ignore_ascii_case
    ("POST", "/v1/models/x", None), ("DELETE", "/v1/models/x", None), ("GET", "/v1/modelsx", None),
    ("PUT", "/v1/chat/completions", None), ("GET", "/v1/models/../../x", "model_discovery"),  # the raw path is matched
])
def test_detect_inference_pattern(px, method, path, protocol):
    got = px.detect_inference_pattern(method, path)
    assert (got[2] if got else None) == protocol


@pytest.mark.oracle("self")
def test_detect_inference_pattern_gap_models_any(px):
    for method in ("POST", "DELETE", "PATCH"):
        assert px.detect_inference_pattern(method, "/v1/models/x", models_any=True)[2] == "model_discovery"
    assert px.detect_inference_pattern("GET", "/v1/modelsx", models_any=True) is None


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize(("ip", "internal"), [
    ("127.0.0.1", True), ("127.0.0.2", True), ("10.0.0.1", True), ("10.255.255.255", True), ("172.16.0.1", True),
    ("172.31.255.255", True), ("192.168.0.1", True), ("169.254.0.1", True), ("0.0.0.0", True),  # proxy.rs:2460-2495
    ("8.8.8.8", False), ("1.1.1.1", False), ("172.32.0.1", False),  # proxy.rs:2500-2508
    ("::1", True), ("::", True), ("fe80::1", True), ("fd00::1", True), ("::ffff:10.0.0.1", True), ("2001:db8::1", False),
    ("100.64.0.1", False), ("198.51.100.10", False),  # CGNAT and TEST-NET were not internal at v0.0.26 (Rust is_private)
])
def test_is_internal_ip(px, ip, internal):
    assert px.is_internal_ip(ip) is internal


@pytest.mark.oracle("upstream")
def test_always_blocked_and_control_plane_ports(px):
    """proxy.rs:1530-1548 and 1557-1616 (resolve_and_check_allowed_ips)."""
    assert px.is_always_blocked_ip("127.0.0.1") and px.is_always_blocked_ip("169.254.169.254") and px.is_always_blocked_ip("::")
    assert not px.is_always_blocked_ip("10.0.5.20")
    resolver = px.Resolver({"svc": ["10.0.5.20"], "meta": ["169.254.169.254"]})
    nets = px.parse_allowed_ips(["10.0.5.0/24"])
    assert px.resolve_and_check_allowed_ips(resolver, "svc", 8080, nets) == [("10.0.5.20", 8080)]
    for port in (2379, 2380, 6443, 10250, 10255):
        with pytest.raises(ValueError, match="blocked control-plane port"):
            px.resolve_and_check_allowed_ips(resolver, "svc", port, nets)
    with pytest.raises(ValueError, match="always-blocked"):
        px.resolve_and_check_allowed_ips(resolver, "meta", 80, px.parse_allowed_ips(["169.254.0.0/16"]))
    with pytest.raises(ValueError, match="not in allowed_ips"):
        px.resolve_and_check_allowed_ips(resolver, "svc", 80, px.parse_allowed_ips(["10.0.6.0/24"]))
    with pytest.raises(ValueError, match="invalid CIDR/IP"):
        px.parse_allowed_ips(["10.0.0.0/24", "nope"])
    assert px.implicit_allowed_ips_for_ip_host("10.1.2.3") == ["10.1.2.3"] and px.implicit_allowed_ips_for_ip_host("h.x") == []


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize(("uri", "parsed"), [
    ("http://10.86.8.223:8000/screenshot/", ("http", "10.86.8.223", 8000, "/screenshot/")),  # proxy.rs:1750-1751
    ("http://example.com/p", ("http", "example.com", 80, "/p")), ("https://example.com/p", ("https", "example.com", 443, "/p")),
    ("http://example.com", ("http", "example.com", 80, "/")), ("http://h:81/a?b=c", ("http", "h", 81, "/a?b=c")),
    ("http://[::1]:8080/x", ("http", "::1", 8080, "/x")),
])
def test_parse_proxy_uri(px, uri, parsed):
    assert px.parse_proxy_uri(uri) == parsed


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize("uri", ["example.com/p", "http:///p", "/just/a/path"])
def test_parse_proxy_uri_rejects(px, uri):
    with pytest.raises(px.ProxyError):
        px.parse_proxy_uri(uri)


@pytest.mark.oracle("upstream")
def test_rewrite_forward_request(px):
    """proxy.rs:1833-1928: origin form, proxy headers dropped, Connection: close, Via added once, body kept, Host kept."""
    raw = (b"POST http://a.test:8080/p?q=1 HTTP/1.1\r\nHost: b.test\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: x\r\n"
           b"Connection: keep-alive\r\nContent-Length: 2\r\n\r\n{}")
    assert px.rewrite_forward_request(raw, "/p?q=1") == (
        b"POST /p?q=1 HTTP/1.1\r\nHost: b.test\r\nConnection: close\r\nContent-Length: 2\r\nVia: 1.1 openshell-sandbox\r\n\r\n{}")
    assert px.rewrite_forward_request(b"GET http://a/ HTTP/1.1\r\nVia: 1.0 other\r\n\r\n", "/").count(b"Via:") == 1


@pytest.mark.oracle("upstream")
def test_parse_target_splits_at_the_first_colon(px):
    """proxy.rs:2419-2427: an IPv6 literal does not parse, the connection is dropped."""
    assert px.parse_target("api.example.com:443") == ("api.example.com", 443)
    for bad in ("[::1]:443", "host", "host:99999", "host:x"):
        with pytest.raises(px.ProxyError):
            px.parse_target(bad)


POLICY = """
version: 1
network_policies:
  wildcard:
    name: wildcard
    endpoints:
      - { host: "*.example.com", port: 443 }
      - { host: "**.deep.test", ports: [443, 8443] }
    binaries:
      - { path: /usr/bin/curl }
  globbed:
    endpoints:
      - { host: example.com, port: 443 }
    binaries:
      - { path: "/usr/bin/*" }
  rest:
    endpoints:
      - { host: api.test, port: 443, protocol: rest, enforcement: enforce, access: read-only }
      - { host: audit.test, port: 443, protocol: rest, rules: [{ allow: { method: POST, path: "/v1/**" } }] }
      - { host: ips.test, port: 80, allowed_ips: ["10.0.5.0/24"] }
      - { port: 5432, allowed_ips: ["10.0.9.0/24"] }
    binaries:
      - { path: /usr/bin/python3.11 }
"""


def _exec(path, ancestors=()):
    return {"path": path, "ancestors": list(ancestors), "cmdline_paths": []}


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize(("host", "port", "binary", "ancestors", "allowed"), [
    ("api.example.com", 443, "/usr/bin/curl", (), True),  # opa.rs wildcard_host_matches_subdomain
    ("deep.sub.example.com", 443, "/usr/bin/curl", (), False),  # opa.rs wildcard_host_rejects_deep_subdomain
    ("example.com", 443, "/usr/bin/curl", (), True),  # allowed by "globbed" (/usr/bin/*), not by the wildcard
    ("API.Example.COM", 443, "/usr/bin/curl", (), True),  # opa.rs wildcard_host_case_insensitive
    ("api.example.com", 8443, "/usr/bin/curl", (), False),  # opa.rs wildcard_host_plus_port: the port counts
    ("a.b.deep.test", 8443, "/usr/bin/curl", (), True), ("deep.test", 443, "/usr/bin/curl", (), False),  # "**." spans labels
    ("example.com", 443, "/usr/bin/node", (), True),  # opa.rs glob_pattern_matches_binary
    ("example.com", 443, "/usr/bin/subdir/node", (), False),  # opa.rs glob_pattern_no_cross_segment
    ("example.com", 443, "/opt/x", ("/usr/bin/node",), True),  # opa.rs glob_pattern_matches_ancestor
    ("api.example.com", 443, "/opt/x", ("/usr/bin/curl",), True),  # opa.rs ancestor_binary_allowed
    ("api.example.com", 443, "/opt/x", (), False),  # opa.rs wrong_binary_denied
    ("db.anything", 5432, "/usr/bin/python3.11", (), True),  # rego:117-123 hostless endpoint with allowed_ips
])
def test_evaluate_network(px, host, port, binary, ancestors, allowed):
    data = px.load_policy_text(POLICY)
    action, matched, reason = px.evaluate_network(data, host, port, _exec(binary, ancestors))
    assert (action == "allow") is allowed, reason
    if allowed:
        assert matched
    else:
        assert reason and matched is None


@pytest.mark.oracle("upstream")
def test_port_any_gap_ignores_the_port(px):
    data = px.load_policy_text(POLICY)
    assert px.evaluate_network(data, "api.example.com", 9, _exec("/usr/bin/curl"))[0] == "deny"
    assert px.evaluate_network(data, "api.example.com", 9, _exec("/usr/bin/curl"), ignore_port=True)[0] == "allow"


@pytest.mark.oracle("upstream")
def test_deny_reason_texts(px):
    """rego:33-62."""
    data = px.load_policy_text(POLICY)
    reason = px.evaluate_network(data, "api.test", 443, _exec("/bin/sh", ["/usr/bin/bash"]))[2]
    assert "endpoint api.test:443 not in policy 'globbed'" in reason
    assert "binary '/bin/sh' (ancestors: [/usr/bin/bash], cmdline: []) not allowed in policy 'rest'" in reason
    empty = px.load_policy_text("version: 1\n")
    assert px.evaluate_network(empty, "a", 1, _exec("/x"))[2] == "network connections not allowed by policy"


@pytest.mark.oracle("upstream")
def test_endpoint_config_l7_and_allowed_ips(px):
    """rego:302-356 and l7/mod.rs:87-130: enforcement defaults to audit; access presets become rules (mod.rs:465-530)."""
    data = px.load_policy_text(POLICY)
    py = _exec("/usr/bin/python3.11")
    api = px.matched_endpoint_config(data, "api.test", 443, py)
    assert px.l7_config(api) == {"protocol": "rest", "tls": "auto", "enforcement": "enforce"}
    assert [r["allow"]["method"] for r in api["rules"]] == ["GET", "HEAD", "OPTIONS"]
    assert px.l7_config(px.matched_endpoint_config(data, "audit.test", 443, py))["enforcement"] == "audit"
    assert px.allowed_ips_of(px.matched_endpoint_config(data, "ips.test", 80, py)) == ["10.0.5.0/24"]
    assert px.matched_endpoint_config(data, "example.com", 443, _exec("/usr/bin/curl")) is None
    assert px.evaluate_l7(data, "api.test", 443, py, {"method": "GET", "path": "/x", "query_params": {}}) == (True, "")
    assert px.evaluate_l7(data, "api.test", 443, py, {"method": "POST", "path": "/x", "query_params": {}}) == (
        False, "POST /x not permitted by policy")
    assert px.evaluate_l7(data, "audit.test", 443, py, {"method": "POST", "path": "/v1/a/b", "query_params": {}})[0]
    assert not px.evaluate_l7(data, "audit.test", 443, py, {"method": "POST", "path": "/v2/a", "query_params": {}})[0]


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize(("text", "message"), [
    ("version: 1\nbogus_field: true\n", "unknown field `bogus_field`"),  # openshell-policy lib.rs parse_rejects_unknown_fields
    ("network_policies: {}\n", "missing field `version`"),
    ("version: 1\nnetwork_policies:\n  a:\n    endpoints: [{host: h, port: 1, protocol: rest}]\n    binaries: [{path: /x}]\n",
     "protocol requires rules or access"),  # l7/mod.rs:289-293
    ("version: 1\nnetwork_policies:\n  a:\n    endpoints: [{host: h, port: 1, protocol: rest, access: full, rules: [{allow: {method: GET}}]}]\n",
     "rules and access are mutually exclusive"),  # l7/mod.rs:284-286
    ("version: 1\nnetwork_policies:\n  a:\n    endpoints: [{host: '*', port: 1}]\n", "matches all hosts"),  # l7/mod.rs:249-252
    ("version: 1\nnetwork_policies:\n  a:\n    endpoints: [{host: 'a*.x', port: 1}]\n", "must start with"),
    ("version: 1\nnetwork_policies:\n  a:\n    endpoints: [{host: h, port: 1, protocol: sql, enforcement: enforce, access: full}]\n",
     "SQL enforcement"),  # l7/mod.rs:310-314
    ("version: 1\nnetwork_policies:\n  a:\n    endpoints: [{host: h, port: 70000}]\n", "expected u16"),
    ("version: 1\nnetwork_policies:\n  a:\n    binaries: [{}]\n", "missing field `path`"),
])
def test_policy_rejections(px, text, message):
    with pytest.raises(px.PolicyError, match=message):
        px.load_policy_text(text)


@pytest.mark.oracle("upstream")
def test_ports_win_over_port_and_name_defaults_to_the_key(px):
    """openshell-policy lib.rs:162-179 (to_proto)."""
    data = px.load_policy_text("version: 1\nnetwork_policies:\n  k:\n    endpoints: [{host: h, port: 1, ports: [2, 3]}]\n")
    assert data["network_policies"]["k"] == {"name": "k", "endpoints": [{"host": "h", "ports": [2, 3]}], "binaries": []}


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize(("endpoint", "path", "url"), [
    ("https://api.openai.com/v1", "/v1/chat/completions", "https://api.openai.com/v1/chat/completions"),  # backend.rs:439-444
    ("https://api.anthropic.com", "/v1/messages", "https://api.anthropic.com/v1/messages"),  # backend.rs:447-452
    ("https://api.openai.com/v1", "/v1", "https://api.openai.com/v1"),  # backend.rs:455-460
])
def test_build_backend_url(px, endpoint, path, url):
    assert px.build_backend_url(endpoint, path) == url


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize(("path", "normal"), [
    ("/v1/models/../../x", "/x"), ("/v1/models/..\\..\\x", "/x"), ("/v1/models/%2e%2e/%2E%2e/x", "/x"),
    ("/v1/models/./a", "/v1/models/a"), ("/v1/models/..", "/v1/"), ("/../../x", "/x"), ("/v1/models/..%2fx", "/v1/models/..%2fx"),
])
def test_url_path_normalize_is_whatwg(px, path, normal):
    """WHATWG URL Standard path state as the url crate (reqwest 0.12 / url 2.5 in Cargo.lock @v0.0.26) applies it."""
    assert px._url_path_normalize(path) == normal


@pytest.mark.oracle("upstream")
def test_inference_request_parsing_and_response_framing(px):
    """l7/inference.rs:107-195, 271-353 (a 503 has no status text in format_http_response)."""
    assert px.try_parse_http_request(b"GET /v1/models HTTP/1.1\r\n") == ("incomplete",)
    one = b"POST /v1/x HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"
    kind, req, used = px.try_parse_http_request(one + b"NEXT")
    assert (kind, req["body"], used) == ("complete", b"{}", len(one))
    assert px.try_parse_http_request(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")[0] == "invalid"
    assert px.try_parse_http_request(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")[0] == "invalid"
    kind, req, _used = px.try_parse_http_request(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
    assert req["body"] == b"{}"
    assert px.format_http_response(503, [], b"x").startswith(b"HTTP/1.1 503 Unknown\r\ncontent-length: 1\r\n")
    head = px.format_http_response_header(200, [("content-type", "a/b"), ("content-length", "9")])
    assert head == b"HTTP/1.1 200 OK\r\ncontent-type: a/b\r\ntransfer-encoding: chunked\r\n\r\n"


@pytest.mark.oracle("upstream")
def test_glob_match_semantics(px):
    """regorus builtins/glob.rs: delimiters become '/', an empty list means ['.']."""
    assert px.glob_match("/usr/bin/python3*", ["/"], "/usr/bin/python3.11")
    assert not px.glob_match("/usr/bin/*", ["/"], "/usr/bin/x/y")
    assert px.glob_match("/usr/**", ["/"], "/usr/bin/x/y")
    assert px.glob_match("*.example.com", ["."], "a.example.com") and not px.glob_match("*.example.com", ["."], "a.b.example.com")
    assert px.glob_match("v*", [], "v1") and not px.glob_match("v*", [], "v1.2")


@pytest.mark.oracle("kernel")
def test_identity_resolves_the_socket_owner_through_proc(px):
    """procfs.rs:176-284 logic against the running kernel: a loopback connection of this process is found in
    /proc/<pid>/net/tcp, the inode is the socket's, its owner is this process and the exe this interpreter."""
    if not os.path.isdir("/proc/self/net"):
        pytest.skip("no /proc")
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    cli = socket.create_connection(srv.getsockname())
    conn, peer = srv.accept()
    try:
        inode, netns = px.find_socket_inode("/proc", peer[:2], srv.getsockname()[:2])
        assert inode == os.fstat(cli.fileno()).st_ino
        assert netns == os.readlink("/proc/self/ns/net")
        pid = px.find_pid_by_socket_inode("/proc", inode, netns)
        assert pid == os.getpid()
        assert px.binary_path("/proc", pid) == os.path.realpath(sys.executable)
        assert px.IdentityCache().verify_or_cache(os.path.realpath(sys.executable))
    finally:
        for s in (conn, cli, srv):
            s.close()


# ---------------------------------------------------------------------------------------------------------------------
# the REST relay over real sockets (vectors of sb/l7/rest.rs's tests)
def _pair():
    a, b = socket.socketpair()
    a.settimeout(2)
    b.settimeout(2)
    return a, b


@pytest.mark.oracle("upstream")
def test_parse_http_request_query_and_no_overread(px):
    """rest.rs parse_target_query_parses_duplicate_values / _decodes_percent_and_plus /
    parse_http_request_does_not_overread_next_request."""
    client, proxy_side = _pair()
    client.sendall(b"GET /p?a=1&a=2&b=x+y%21 HTTP/1.1\r\nHost: h\r\n\r\nPOST /next HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
    req = px.parse_http_request(proxy_side)
    assert (req["method"], req["path"], req["query_params"]) == ("GET", "/p", {"a": ["1", "2"], "b": ["x y!"]})
    assert req["body"] == ("none", None)
    nxt = px.parse_http_request(proxy_side)
    assert (nxt["method"], nxt["path"], nxt["body"]) == ("POST", "/next", ("cl", 0))
    client.close()
    assert px.parse_http_request(proxy_side) is None  # a clean close before any byte
    proxy_side.close()


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize(("raw", "message"), [
    (b"GET / HTTP/1.1\nHost: h\r\n\r\n", "bare LF"),  # rest.rs:111-120
    (b"GET / HTTP/2\r\n\r\n", "Unsupported HTTP version"),  # rest.rs:146-148
    (b"GET /?a=%zz HTTP/1.1\r\n\r\n", "percent-encoding"),  # rest.rs:218-225
    (b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", "both Transfer-Encoding"),  # rest.rs:416-420
    (b"GET / HTTP/1.1\r\nX: \xff\r\n\r\n", "invalid UTF-8"),  # rest.rs:126-127
])
def test_parse_http_request_refuses(px, raw, message):
    client, proxy_side = _pair()
    client.sendall(raw)
    with pytest.raises(px.ProxyError, match=message):
        px.parse_http_request(proxy_side)
    client.close()
    proxy_side.close()


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize(("method", "response", "outcome", "forwarded"), [
    ("GET", b"HTTP/1.1 204 No Content\r\n\r\n", "reusable", b"HTTP/1.1 204 No Content\r\n\r\n"),  # rest.rs relay_response_204_no_body
    ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "reusable", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
    ("GET", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", "reusable",
     b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"),  # ..._chunked_body_complete_in_overflow
    ("GET", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", "reusable",
     b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"),  # ..._connection_close_with_content_length
    ("GET", b"HTTP/1.1 200 OK\r\n\r\n", "reusable", b"HTTP/1.1 200 OK\r\n\r\n"),  # ..._without_connection_close_treats_as_empty
])
def test_relay_response_framing(px, method, response, outcome, forwarded):
    up_server, up_proxy = _pair()
    cl_proxy, cl_agent = _pair()
    up_server.sendall(response)
    assert px.relay_response(method, up_proxy, cl_proxy) == outcome
    cl_proxy.close()
    got = b""
    while True:
        chunk = cl_agent.recv(65536)
        if not chunk:
            break
        got += chunk
    assert got == forwarded
    for s in (up_server, up_proxy, cl_agent):
        s.close()


@pytest.mark.oracle("upstream")
def test_relay_response_without_framing_reads_until_eof_and_101(px):
    """rest.rs relay_response_no_framing_with_connection_close_reads_until_eof / _101_switching_protocols_..."""
    up_server, up_proxy = _pair()
    cl_proxy, cl_agent = _pair()
    up_server.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody")
    up_server.close()
    assert px.relay_response("GET", up_proxy, cl_proxy) == "consumed"
    assert cl_agent.recv(65536) == b"HTTP/1.1 200 OK\r\nConnection: close\r\nConnection: close\r\n\r\nbody"
    up_server, up_proxy = _pair()
    up_server.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\nWS")
    assert px.relay_response("GET", up_proxy, cl_proxy) == ("upgraded", b"WS")
    for s in (up_server, up_proxy, cl_proxy, cl_agent):
        s.close()
