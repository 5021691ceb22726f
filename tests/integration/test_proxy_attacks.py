"""Attacks on the lab's sandbox proxy (roles/lab/files/openshell/supervisor/proxy.py), made by a real agent process
in its own network namespace, and the verifier's proxy checks (plugins/module_utils/_verify_proxy.py) run the same way.

Everything is created here and removed in ``finally``; nothing leaves the namespaces (the pod namespace has no
default route)::

    agent ns 10.233.0.2/24 ==veth== 10.233.0.1/24 pod ns (the proxy listens on 10.233.0.1)
    pod ns 198.51.100.1/24 + 10.233.9.1/24 ==veth== world ns: 198.51.100.10 allowed.test / rest.test,
        198.51.100.11 denied.test, 198.51.100.12 the inference backend, 10.233.9.10 internal.test (a private address)

198.51.100.0/24 (TEST-NET-2) is not "internal" for OpenShell v0.0.26's SSRF guard (Rust's Ipv4Addr::is_private:
10/8, 172.16/12, 192.168/16), so the world plays the public internet. The proxy's behaviour is cited to the upstream
source at v0.0.26 in proxy.py; tests that check it against that source carry ``oracle("upstream")``.

This file is also the program of the agent and of the world (``python test_proxy_attacks.py --agent|--world JSON``).
``AGENTSEC_PROXY_PYTHON`` picks the interpreter of the proxy (default: the test's own).
"""
from __future__ import annotations

import contextlib
import datetime
import http.server
import json
import os
import pathlib
import shutil
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import uuid

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROXY = ROOT / "roles" / "lab" / "files" / "openshell" / "supervisor" / "proxy.py"
COLLECTIONS = ROOT / ".build" / "collections"
KEY = "sk-agentsec-h2-test-provider-key-000000000000"
MODEL = "lab-model:1b"
SANDBOX_CA_CN = "agentsec-h2 test sandbox CA"
WORLD_CA_CN = "agentsec-h2 test public CA"
ALLOWED, DENIED, BACKEND, INTERNAL = "198.51.100.10", "198.51.100.11", "198.51.100.12", "10.233.9.10"
PINS = {"allowed.test": ALLOWED, "rest.test": ALLOWED, "audit.test": ALLOWED, "denied.test": DENIED,
        "internal.test": INTERNAL, "internal2.test": INTERNAL}


# =====================================================================================================================
# the world (runs inside the world namespace)
class _Site(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body_in = self.rfile.read(length) if length else b""
        local = self.connection.getsockname()
        body = json.dumps({"served_by": local[0], "port": local[1], "host": self.headers.get("Host"), "method": self.command,
                           "path": self.path, "got": len(body_in)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = _answer  # noqa: N815 - http.server API

    def log_message(self, *_args):
        pass


class _Backend(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    record = None

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body_in = self.rfile.read(length) if length else b""
        auth = self.headers.get("Authorization")
        entry = {"method": self.command, "path": self.path, "authorization": auth, "x_api_key": self.headers.get("x-api-key"),
                 "key": auth == f"Bearer {KEY}", "host": self.headers.get("Host"), "body": body_in.decode("utf-8", "replace")}
        with open(self.record, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")
        if not entry["key"]:
            status, payload = 401, {"error": {"message": "missing or wrong provider key"}}
        elif self.command == "GET" and self.path == "/v1/models":
            status, payload = 200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]}
        elif self.command == "POST" and self.path == "/v1/chat/completions":
            status, payload = 200, {"id": "t-0", "object": "chat.completion", "model": json.loads(body_in or b"{}").get("model")}
        else:
            status, payload = 404, {"error": "backend has no such route", "path": self.path}
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer  # noqa: N815

    def log_message(self, *_args):
        pass


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    tls = None

    def finish_request(self, request, client_address):
        if self.tls is not None:
            request.settimeout(10)
            request = self.tls.wrap_socket(request, server_side=True)  # the handshake runs in the request thread
        self.RequestHandlerClass(request, client_address, self)

    def handle_error(self, request, client_address):
        pass


def world_main(cfg):
    _Backend.record = cfg["record"]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cfg["site_pem"])
    servers = []
    for port, handler, tls in ((80, _Site, None), (8443, _Site, None), (6443, _Site, None), (443, _Site, ctx), (8000, _Backend, None)):
        srv = _Server(("0.0.0.0", port), handler)
        srv.tls = tls
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
    print("world ready", flush=True)
    time.sleep(3600)


# =====================================================================================================================
# the agent (runs inside the agent namespace; only the standard library and the collection's verifier code)
def _recv_all(sock, timeout, limit=1 << 20):
    data, end = b"", time.monotonic() + timeout
    while len(data) < limit and time.monotonic() < end:
        sock.settimeout(max(0.05, end - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, OSError):
            break
        if not chunk:
            break
        data += chunk
    return data


def _issuer_cn(der):
    from cryptography import x509  # noqa: PLC0415 - the test environment has it
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    cert = x509.load_der_x509_certificate(der)
    return cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def agent_tls(a, VP):  # noqa: N803 - module passed in
    """CONNECT, then a TLS session whose first record can be rewritten/split, then one HTTP request."""
    sock, obs = VP.send_to_proxy(tuple(a["proxy"]), VP.connect_request(a["host"], a["port"]), 5)
    if sock is None or obs.get("status") != 200:
        return obs
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # the test wants to see who answered
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=a.get("sni", a["host"]))
    first = True
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(5)
    try:
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                data = outgoing.read()
                if data and first:
                    first = False
                    if a.get("record"):
                        data = data[:1] + bytes.fromhex(a["record"]) + data[3:]
                    if a.get("split"):
                        sock.sendall(data[:a["split"]])
                        time.sleep(0.5)
                        data = data[a["split"]:]
                if data:
                    sock.sendall(data)
                chunk = sock.recv(65536)
                if not chunk:
                    return {"result": "closed"}
                incoming.write(chunk)
    except (ssl.SSLError, OSError) as exc:
        return {"result": "tls-error", "error": str(exc)}
    out = {"result": "handshake", "issuer": _issuer_cn(obj.getpeercert(binary_form=True))}
    pending = outgoing.read()
    if pending:
        sock.sendall(pending)
    if a.get("request"):
        obj.write(a["request"].encode("latin-1"))
        sock.sendall(outgoing.read())
        plain, end = b"", time.monotonic() + 5
        while time.monotonic() < end:
            try:
                plain += obj.read(65536)
                continue
            except ssl.SSLWantReadError:
                pass
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                break
            try:
                sock.settimeout(max(0.05, end - time.monotonic()))
                chunk = sock.recv(65536)
            except (TimeoutError, OSError):
                break
            if not chunk:
                break
            incoming.write(chunk)
            if b"\r\n\r\n" in plain and (plain.endswith(b"}") or plain.endswith(b"0\r\n\r\n")):
                break
        out["response"] = plain.decode("latin-1")
    sock.close()
    return out


def agent_main(actions):
    from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _verify_proxy as VP  # noqa: PLC0415, N812

    results = []
    for a in actions:
        op = a["op"]
        if op == "check":
            obs = VP.plan(a["params"])[a["id"]][0]()
            if "skip" in obs:
                results.append({"status": "skipped", "observed": obs})
            else:
                status, observed = VP.plan(a["params"])[a["id"]][1](obs, {})
                results.append({"status": status, "observed": observed})
        elif op == "checks":  # concurrently, as _verify.run_checks runs probes (8 workers)
            import concurrent.futures  # noqa: PLC0415

            probes = VP.plan(a["params"])
            with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
                futures = {cid: pool.submit(probes[cid][0]) for cid in a["ids"]}
                out = {}
                for cid, future in futures.items():
                    obs = future.result(timeout=60)
                    out[cid] = {"status": "skipped", "observed": obs} if "skip" in obs else dict(
                        zip(("status", "observed"), probes[cid][1](obs, {}), strict=True))
            results.append(out)
        elif op == "raw":  # send bytes to the proxy and read everything it answers
            try:
                sock = socket.create_connection(tuple(a["proxy"]), timeout=5)
            except OSError as exc:
                results.append({"error": str(exc)})
                continue
            sock.sendall(a["send"].encode("latin-1"))
            if a.get("then"):
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = sock.recv(1)
                    if not chunk:
                        break
                    head += chunk
                sock.sendall(a["then"].encode("latin-1"))
                results.append({"data": (head + _recv_all(sock, a.get("wait", 3))).decode("latin-1")})
            else:
                results.append({"data": _recv_all(sock, a.get("wait", 3)).decode("latin-1")})
            sock.close()
        elif op == "tls":
            results.append(agent_tls(a, VP))
        else:
            raise ValueError(op)
    print(json.dumps(results, default=repr))


# =====================================================================================================================
# the test lab (pytest side)
pytestmark = [
    pytest.mark.skipif(sys.platform != "linux", reason="network namespaces are Linux only"),
    pytest.mark.skipif(os.geteuid() != 0, reason="creating network namespaces needs root"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2 (ip) is missing"),
]


def _run(*cmd):
    subprocess.run(cmd, check=True, capture_output=True, timeout=20)


def _make_certs(work):
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415
    import ipaddress  # noqa: PLC0415

    now = datetime.datetime.now(datetime.UTC)

    def cert(name, key, issuer_name, issuer_key, ca, sans=()):
        b = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer_name).public_key(key.public_key())
             .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
             .not_valid_after(now + datetime.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
        if ca:
            b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        else:
            b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return b.sign(issuer_key, hashes.SHA256())

    pem = serialization.Encoding.PEM

    def key_pem(key):
        return key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

    out = {}
    for label, cn in (("sandbox", SANDBOX_CA_CN), ("world", WORLD_CA_CN)):
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        ca = cert(name, key, name, key, True)
        (work / f"{label}-ca.pem").write_bytes(ca.public_bytes(pem))
        (work / f"{label}-ca.key").write_bytes(key_pem(key))
        (work / f"{label}-ca.key").chmod(0o600)
        out[label] = (name, key)
    site_key = ec.generate_private_key(ec.SECP256R1())
    sans = [x509.DNSName(n) for n in PINS] + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in (ALLOWED, DENIED, INTERNAL)]
    site = cert(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "world site")]), site_key, out["world"][0], out["world"][1], False, sans)
    (work / "site.pem").write_bytes(site.public_bytes(pem) + key_pem(site_key))
    (work / "site.pem").chmod(0o600)


class Lab:
    def __init__(self, work):
        self.work = work
        self.tag = uuid.uuid4().hex[:4]
        self.ns = {r: f"agentsec-h2-{self.tag}-{r}" for r in ("agent", "pod", "world")}
        self.procs = []
        self.next_port = 3128
        self.python = os.path.realpath(sys.executable)
        self.record = work / "backend.jsonl"

    # -- namespaces and the world ---------------------------------------------------------------------------------
    def up(self):
        ns, t = self.ns, self.tag
        for name in ns.values():
            _run("ip", "netns", "add", name)
        _run("ip", "link", "add", f"h2{t}pa", "type", "veth", "peer", "name", f"h2{t}ap")
        _run("ip", "link", "add", f"h2{t}pw", "type", "veth", "peer", "name", f"h2{t}wp")
        for dev, where in ((f"h2{t}pa", "pod"), (f"h2{t}ap", "agent"), (f"h2{t}pw", "pod"), (f"h2{t}wp", "world")):
            _run("ip", "link", "set", dev, "netns", ns[where])
        for where, dev, addrs in (("agent", f"h2{t}ap", ["10.233.0.2/24"]), ("pod", f"h2{t}pa", ["10.233.0.1/24"]),
                                  ("pod", f"h2{t}pw", ["198.51.100.1/24", "10.233.9.1/24"]),
                                  ("world", f"h2{t}wp", [f"{ALLOWED}/24", f"{DENIED}/24", f"{BACKEND}/24", f"{INTERNAL}/24"])):
            for addr in addrs:
                _run("ip", "-n", ns[where], "addr", "add", addr, "dev", dev)
            _run("ip", "-n", ns[where], "link", "set", dev, "up")
            _run("ip", "-n", ns[where], "link", "set", "lo", "up")
        _run("ip", "-n", ns["agent"], "route", "add", "default", "via", "10.233.0.1")
        _make_certs(self.work)
        cfg = {"record": str(self.record), "site_pem": str(self.work / "site.pem")}
        world = subprocess.Popen(["ip", "netns", "exec", ns["world"], sys.executable, __file__, "--world", json.dumps(cfg)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.procs.append(world)
        line = world.stdout.readline()
        assert line.startswith("world ready"), world.stderr.read()
        (self.work / "inference.key").write_text(KEY + "\n")
        (self.work / "inference.key").chmod(0o600)

    def down(self):
        for proc in self.procs:
            with contextlib.suppress(OSError):
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        for name in self.ns.values():
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=20, check=False)

    # -- proxies ---------------------------------------------------------------------------------------------------
    def policy(self, extra_hosts=(), binary=None):
        binary = binary or self.python
        eps = [{"host": "allowed.test", "port": 443}, {"host": "allowed.test", "port": 80}, {"host": "internal.test", "port": 80},
               {"host": "internal2.test", "ports": [80, 6443], "allowed_ips": ["10.233.9.0/24"]}, *extra_hosts]
        return {"version": 1, "network_policies": {
            "world": {"name": "world", "endpoints": eps, "binaries": [{"path": binary}]},
            "rest": {"endpoints": [{"host": "rest.test", "ports": [80, 443], "protocol": "rest", "enforcement": "enforce",
                                    "access": "read-only"},
                                   {"host": "audit.test", "port": 443, "protocol": "rest", "access": "read-only"}],
                     "binaries": [{"path": binary}]}}}

    def start_proxy(self, gaps=(), policy=None, inference=True):
        port, self.next_port = self.next_port, self.next_port + 1
        import yaml  # noqa: PLC0415 - ansible-core depends on PyYAML

        pol = self.work / f"policy-{port}.yaml"
        pol.write_text(yaml.safe_dump(policy or self.policy()))
        inf = self.work / f"inference-{port}.json"
        if inference:
            inf.write_text(json.dumps({"base_url": f"http://{BACKEND}:8000/v1", "api_key_file": str(self.work / "inference.key"),
                                       "model": MODEL, "provider_type": "openai", "timeout": 10}))
        log = self.work / f"proxy-{port}.log"
        python = os.environ.get("AGENTSEC_PROXY_PYTHON", sys.executable)  # e.g. Debian's python3 with its cryptography 38
        cmd = ["ip", "netns", "exec", self.ns["pod"], python, "-I", str(PROXY), "--listen", f"10.233.0.1:{port}",
               "--policy", str(pol), "--ca-cert", str(self.work / "sandbox-ca.pem"), "--ca-key", str(self.work / "sandbox-ca.key"),
               "--upstream-ca", str(self.work / "world-ca.pem"), "--inference", str(inf), "--log", str(log)]
        for gap in gaps:
            cmd += ["--gap", gap]
        for name, ip in PINS.items():
            cmd += ["--resolve", f"{name}={ip}"]
        env = dict(os.environ, OPENSHELL_POLICY_POLL_INTERVAL_SECS="0.5", OPENSHELL_ROUTE_REFRESH_INTERVAL_SECS="0.5")
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        self.procs.append(proc)
        for _attempt in range(100):
            if log.exists() and "action=listen" in log.read_text():
                break
            if proc.poll() is not None:
                raise AssertionError(f"proxy exited: {proc.stderr.read()} {log.read_text() if log.exists() else ''}")
            time.sleep(0.1)
        else:
            raise AssertionError("proxy did not start listening within 10 s")
        return {"proxy": ["10.233.0.1", port], "log": log, "policy": pol, "inference": inf, "proc": proc}

    def agent(self, *actions):
        env = dict(os.environ, PYTHONPATH=str(COLLECTIONS))
        proc = subprocess.run(["ip", "netns", "exec", self.ns["agent"], sys.executable, __file__, "--agent", json.dumps(actions)],
                              capture_output=True, text=True, timeout=120, env=env, check=False)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def backend_requests(self):
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines() if line.strip()]

    def params(self, px, **extra):
        return {"proxy": f"{px['proxy'][0]}:{px['proxy'][1]}", "allowed_host": "allowed.test:443", "denied_host": "denied.test:443",
                "tls_host": None, "ca_path": str(self.work / "sandbox-ca.pem"), "inference_host": "inference.local", "timeout": 3.0,
                "unlisted_port": 8443, "allowed_ip": ALLOWED, **extra}

    def check(self, px, check_id, **extra):
        return self.agent({"op": "check", "id": check_id, "params": self.params(px, **extra)})[0]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    pytest.importorskip("cryptography")
    pytest.importorskip("yaml")
    work = tmp_path_factory.mktemp("proxy-attacks")
    work.chmod(0o755)
    lab = Lab(work)
    try:
        lab.up()
        yield lab
    finally:
        lab.down()


@pytest.fixture(scope="module")
def proxies(lab):
    cache = {}

    def get(*gaps):
        key = tuple(sorted(gaps))
        if key not in cache:
            cache[key] = lab.start_proxy(key)
        return cache[key]

    return get


def _status(raw):
    first = raw.split("\r\n", 1)[0]
    return int(first.split()[1]) if first.startswith("HTTP/") and len(first.split()) > 1 else None


def _body_json(raw):
    body = raw.split("\r\n\r\n", 1)[1] if "\r\n\r\n" in raw else ""
    start = body.find("{")
    return json.loads(body[start:body.rfind("}") + 1]) if start >= 0 else None


# =====================================================================================================================
# gap attacks: each one succeeds against its gap and fails against the faithful proxy; the verifier agrees
@pytest.mark.oracle("upstream")
@pytest.mark.parametrize("gap", [None, "port_any"])
def test_attack_connect_to_an_unlisted_port_of_an_allowed_host(lab, proxies, gap):
    """rego:95-101: endpoint_allowed needs host AND port (endpoint.ports[_] == network.port)."""
    px = proxies(*(g for g in [gap] if g))
    got = lab.agent({"op": "raw", "proxy": px["proxy"], "send": "CONNECT allowed.test:8443 HTTP/1.1\r\nHost: allowed.test:8443\r\n\r\n",
                     "then": "GET / HTTP/1.1\r\nHost: allowed.test:8443\r\nConnection: close\r\n\r\n"})[0]["data"]
    verdict = lab.check(px, "L4.port_scope")
    if gap:
        assert _status(got) == 200 and '"port": 8443' in got, got  # the agent reached a port the policy does not list
        assert verdict["status"] == "fail", verdict
    else:
        assert got == "HTTP/1.1 403 Forbidden\r\n\r\n"
        assert verdict["status"] == "pass", verdict


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize("gap", [None, "host_header"])
def test_attack_forward_request_with_a_lying_host_header(lab, proxies, gap):
    """sb/proxy.rs:1949-2008: the forward proxy decides on the absolute URI's authority; rewrite_forward_request
    (1833-1928) leaves the Host header alone, so the reverse request reaches the URI's host with the other Host."""
    px = proxies(*(g for g in [gap] if g))
    to_denied, to_allowed = lab.agent(
        {"op": "raw", "proxy": px["proxy"], "send": "GET http://denied.test:80/secret HTTP/1.1\r\nHost: allowed.test:443\r\n\r\n"},
        {"op": "raw", "proxy": px["proxy"], "send": "GET http://allowed.test:80/ok HTTP/1.1\r\nHost: denied.test:443\r\n\r\n"})
    verdict = lab.check(px, "L4.authority")
    if gap:
        assert _status(to_denied["data"]) == 200 and _body_json(to_denied["data"])["served_by"] == DENIED, to_denied
        assert verdict["status"] == "fail", verdict
    else:
        assert to_denied["data"] == "HTTP/1.1 403 Forbidden\r\n\r\n"
        served = _body_json(to_allowed["data"])
        assert served["served_by"] == ALLOWED and served["host"] == "denied.test:443", to_allowed  # Host passed unchanged
        assert verdict["status"] == "pass", verdict


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize("gap", [None, "tls_strict_detect"])
@pytest.mark.parametrize("record", ["0300", "0303", "0304"])
def test_attack_clienthello_with_another_record_version(lab, proxies, gap, record):
    """sb/l7/tls.rs:271-285: 0x16, major 3 and minor <= 4 is TLS; sb/proxy.rs:690-731 then terminates it."""
    px = proxies(*(g for g in [gap] if g))
    got = lab.agent({"op": "tls", "proxy": px["proxy"], "host": "allowed.test", "port": 443, "record": record})[0]
    assert got["result"] == "handshake", got
    if gap:
        assert got["issuer"] == WORLD_CA_CN  # a raw tunnel: the agent talks TLS to the real server, unseen
    else:
        assert got["issuer"] == SANDBOX_CA_CN


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize("gap", [None, "tls_strict_detect"])
def test_verifier_clienthello_check_against_gap(lab, proxies, gap):
    px = proxies(*(g for g in [gap] if g))
    verdict = lab.check(px, "L5.clienthello")
    assert verdict["status"] == ("fail" if gap else "pass"), verdict


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize("gap", [None, "inference_models_any"])
@pytest.mark.parametrize("method,path", [("POST", "/v1/models/x"), ("DELETE", "/v1/models/x"), ("GET", "/v1/modelsx"),
                                         ("PUT", "/v1/chat/completions")])
def test_attack_inference_route_outside_the_shapes(lab, proxies, gap, method, path):
    """sb/l7/inference.rs:20-83: only six (method, path) shapes; sb/proxy.rs:1268-1294 answers anything else 403."""
    px = proxies(*(g for g in [gap] if g))
    before = len(lab.backend_requests())
    got = lab.agent({"op": "tls", "proxy": px["proxy"], "host": "inference.local", "port": 443,
                     "request": f"{method} {path} HTTP/1.1\r\nHost: inference.local\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"})[0]
    reached = [r for r in lab.backend_requests()[before:] if r["path"].endswith(path.rsplit("/", 1)[1])]
    keyed = gap and path.startswith("/v1/models/")
    if keyed:
        assert reached and reached[0]["method"] == method and reached[0]["key"], (got, reached)
    else:
        assert _status(got["response"]) == 403 and _body_json(got["response"]) == {"error": "connection not allowed by policy"}
        assert not reached


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize("gap", [None, "inference_models_any"])
def test_verifier_route_scope_check_against_gap(lab, proxies, gap):
    px = proxies(*(g for g in [gap] if g))
    before = len(lab.backend_requests())
    verdict = lab.check(px, "L6.route_scope")
    keyed = [r for r in lab.backend_requests()[before:] if r["key"]]
    assert verdict["status"] == ("fail" if gap else "pass"), verdict
    assert bool(keyed) == bool(gap)  # with the gap the provider key reached the backend; without it nothing did


EXPECTED_FAITHFUL = {"L4.port_scope": "pass", "L4.authority": "pass", "L4.ip_literal": "pass", "L5.clienthello": "pass",
                     "L5.clienthello_evasion": "fail", "L6.route_scope": "pass", "L6.route_traversal": "fail"}
GAP_CHECK = {"port_any": "L4.port_scope", "host_header": "L4.authority", "tls_strict_detect": "L5.clienthello",
             "inference_models_any": "L6.route_scope"}


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize("gap", [None, *GAP_CHECK])
def test_verifier_matrix_each_gap_flips_exactly_its_check(lab, proxies, gap):
    """Against the faithful proxy every new check passes except the two that v0.0.26 itself fails; each gap turns
    exactly its own check into a failure and leaves the others alone."""
    px = proxies(*(g for g in [gap] if g))
    got = lab.agent({"op": "checks", "ids": list(EXPECTED_FAITHFUL), "params": lab.params(px)})[0]
    statuses = {cid: r["status"] for cid, r in got.items()}
    expected = dict(EXPECTED_FAITHFUL)
    if gap:
        expected[GAP_CHECK[gap]] = "fail"
    assert statuses == expected, {cid: r["observed"] for cid, r in got.items() if r["status"] != expected[cid]}


# =====================================================================================================================
# upstream's own defects at v0.0.26 (the faithful proxy reproduces them; the verifier must catch them)
@pytest.mark.oracle("upstream")
@pytest.mark.parametrize("variant", [{"record": "0305"}, {"split": 1}, {"split": 2}])
def test_upstream_relays_an_odd_first_record_raw_and_skips_l7(lab, proxies, variant):
    """sb/proxy.rs:680-690 peeks ONCE (up to 8 bytes, whatever has arrived) and sb/l7/tls.rs:271-285 wants >= 3
    bytes with minor <= 4: record version 0x0305 or a first TCP segment of 1-2 bytes is 'not TLS, not HTTP' and goes
    into a raw tunnel (sb/proxy.rs:830-840). Against a read-only, enforcing REST endpoint the POST then goes through."""
    px = proxies()
    post = "POST /write HTTP/1.1\r\nHost: rest.test\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
    normal, odd = lab.agent({"op": "tls", "proxy": px["proxy"], "host": "rest.test", "port": 443, "request": post},
                            {"op": "tls", "proxy": px["proxy"], "host": "rest.test", "port": 443, "request": post, **variant})
    assert normal["issuer"] == SANDBOX_CA_CN and _status(normal["response"]) == 403, normal
    assert _body_json(normal["response"])["error"] == "policy_denied"
    assert odd["issuer"] == WORLD_CA_CN, odd  # not intercepted
    assert _status(odd["response"]) == 200 and _body_json(odd["response"])["method"] == "POST", odd  # L7 enforce bypassed


@pytest.mark.oracle("upstream")
def test_verifier_clienthello_evasion_fails_against_upstream(lab, proxies):
    verdict = lab.check(proxies(), "L5.clienthello_evasion")
    assert verdict["status"] == "fail", verdict
    assert {p["result"] for p in verdict["observed"]["probes"]} == {"untrusted"}


@pytest.mark.oracle("upstream")
def test_upstream_injects_the_key_for_a_dot_segment_path(lab, proxies):
    """sb/l7/inference.rs:74-79 matches GET /v1/models/* on the raw path; router/backend.rs:98-104 builds the URL by
    concatenation and reqwest's url::Url resolves '..', so the key goes with GET to a path outside /v1/models."""
    px = proxies()
    before = len(lab.backend_requests())
    verdict = lab.check(px, "L6.route_traversal")
    reached = {r["path"] for r in lab.backend_requests()[before:] if r["key"]}
    assert verdict["status"] == "fail", verdict
    assert reached == {"/agentsec-probe"}, reached


# =====================================================================================================================
# more of upstream's behaviour (no gap involved)
@pytest.mark.oracle("upstream")
def test_allowed_tunnel_is_intercepted_and_denied_host_gets_403(lab, proxies):
    px = proxies()
    get = "GET /x HTTP/1.1\r\nHost: allowed.test\r\nConnection: close\r\n\r\n"
    ok, denied, literal = lab.agent(
        {"op": "tls", "proxy": px["proxy"], "host": "allowed.test", "port": 443, "request": get},
        {"op": "raw", "proxy": px["proxy"], "send": "CONNECT denied.test:443 HTTP/1.1\r\n\r\n"},
        {"op": "raw", "proxy": px["proxy"], "send": f"CONNECT {ALLOWED}:443 HTTP/1.1\r\n\r\n"})
    assert ok["issuer"] == SANDBOX_CA_CN and _body_json(ok["response"])["served_by"] == ALLOWED
    assert denied["data"] == literal["data"] == "HTTP/1.1 403 Forbidden\r\n\r\n"
    log = px["log"].read_text()
    assert "CONNECT action=deny host=denied.test port=443" in log and f"binary={lab.python}" in log


@pytest.mark.oracle("upstream")
def test_verifier_ip_literal_passes_and_fails_when_the_policy_lists_the_ip(lab):
    """The IP literal is denied because no policy host matches it (rego:95-101); a policy that lists the IP
    (sb/proxy.rs:1486-1492 then allows it implicitly through the SSRF guard) makes the check fail."""
    px = lab.start_proxy(policy=lab.policy(extra_hosts=[{"host": ALLOWED, "port": 443}]))
    assert lab.check(px, "L4.ip_literal")["status"] == "fail"
    assert lab.check(lab.start_proxy(), "L4.ip_literal")["status"] == "pass"


@pytest.mark.oracle("upstream")
def test_ssrf_guard_private_address_allowed_ips_and_control_plane_port(lab, proxies):
    """sb/proxy.rs:1452-1479 (10/8 is internal), 1557-1600 (allowed_ips admits it), 1610-1616 (6443 stays blocked)."""
    px = proxies()
    req = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    internal, internal2, k8s = lab.agent(
        {"op": "raw", "proxy": px["proxy"], "send": "CONNECT internal.test:80 HTTP/1.1\r\n\r\n", "then": req},
        {"op": "raw", "proxy": px["proxy"], "send": "CONNECT internal2.test:80 HTTP/1.1\r\n\r\n", "then": req},
        {"op": "raw", "proxy": px["proxy"], "send": "CONNECT internal2.test:6443 HTTP/1.1\r\n\r\n", "then": req})
    assert internal["data"] == k8s["data"] == "HTTP/1.1 403 Forbidden\r\n\r\n"
    assert internal2["data"].startswith("HTTP/1.1 200 Connection Established") and f'"served_by": "{INTERNAL}"' in internal2["data"]
    log = px["log"].read_text()
    assert "resolves to internal address 10.233.9.10" in log and "port 6443 is a blocked control-plane port" in log


@pytest.mark.oracle("upstream")
def test_rest_rules_enforce_and_audit_default(lab, proxies):
    """sb/l7/relay.rs:202-287 with sb/l7/mod.rs:120-123 (enforcement other than 'enforce' is audit)."""
    px = proxies()
    post = "POST /w HTTP/1.1\r\nHost: {h}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    enforce, get, audit = lab.agent(
        {"op": "tls", "proxy": px["proxy"], "host": "rest.test", "port": 443, "request": post.format(h="rest.test")},
        {"op": "tls", "proxy": px["proxy"], "host": "rest.test", "port": 443, "request": "GET /r HTTP/1.1\r\nHost: rest.test\r\nConnection: close\r\n\r\n"},
        {"op": "tls", "proxy": px["proxy"], "host": "audit.test", "port": 443, "request": post.format(h="audit.test")})
    assert _status(enforce["response"]) == 403
    assert _body_json(enforce["response"]) == {"detail": "POST /w not permitted by policy", "error": "policy_denied", "policy": "rest",
                                               "rule": "POST /w"}
    assert "X-OpenShell-Policy: rest" in enforce["response"]
    assert _status(get["response"]) == 200 and _status(audit["response"]) == 200
    assert "L7_REQUEST action=audit method=POST host=audit.test" in px["log"].read_text()


@pytest.mark.oracle("upstream")
def test_inference_strips_client_credentials_injects_the_key_and_rewrites_the_model(lab, proxies):
    """sb/proxy.rs:1317-1338 and router/backend.rs:106-152; inference.local on a port other than 443 too (v0.0.26)."""
    px = proxies()
    before = len(lab.backend_requests())
    body = '{"model":"agent-choice","messages":[]}'
    chat, models_8080 = lab.agent(
        {"op": "tls", "proxy": px["proxy"], "host": "inference.local", "port": 443,
         "request": f"POST /v1/chat/completions HTTP/1.1\r\nHost: inference.local\r\nAuthorization: Bearer agent-own\r\n"
                    f"x-api-key: agent-own\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}"},
        {"op": "tls", "proxy": px["proxy"], "host": "inference.local", "port": 8080,
         "request": "GET /v1/models HTTP/1.1\r\nHost: inference.local\r\nConnection: close\r\n\r\n"})
    seen = lab.backend_requests()[before:]
    assert chat["issuer"] == SANDBOX_CA_CN and _status(chat["response"]) == 200
    assert "transfer-encoding: chunked" in chat["response"].lower()
    post = next(r for r in seen if r["method"] == "POST")
    assert post["authorization"] == f"Bearer {KEY}" and post["x_api_key"] is None and post["path"] == "/v1/chat/completions"
    assert json.loads(post["body"])["model"] == MODEL
    assert _status(models_8080["response"]) == 200 and MODEL in models_8080["response"]


@pytest.mark.oracle("upstream")
def test_inference_without_a_route_answers_503(lab):
    """sb/proxy.rs:1157-1170 (a cluster sandbox keeps routing enabled with an empty bundle, sb/lib.rs:942-961)."""
    px = lab.start_proxy(inference=False)
    got = lab.agent({"op": "tls", "proxy": px["proxy"], "host": "inference.local", "port": 443,
                     "request": "GET /v1/models HTTP/1.1\r\nHost: inference.local\r\nConnection: close\r\n\r\n"})[0]
    assert got["response"].startswith("HTTP/1.1 503 Unknown\r\n"), got  # format_http_response has no text for 503
    assert _body_json(got["response"]) == {"error": "cluster inference is not configured", "hint": "run: openshell cluster inference set --help"}


@pytest.mark.oracle("upstream")
def test_binary_identity_and_policy_reload(lab):
    """rego:128-153 (the socket's binary must be listed) and sb/lib.rs:1843-1990 (poll, reload, keep the last good)."""
    px = lab.start_proxy(policy=lab.policy(binary="/nonexistent/bin/curl"))
    connect = {"op": "raw", "proxy": px["proxy"], "send": "CONNECT allowed.test:443 HTTP/1.1\r\n\r\n", "wait": 1}
    assert lab.agent(connect)[0]["data"] == "HTTP/1.1 403 Forbidden\r\n\r\n"
    assert f"binary '{lab.python}'" in px["log"].read_text()
    import yaml  # noqa: PLC0415

    px["policy"].write_text(yaml.safe_dump(lab.policy()))
    for _attempt in range(50):
        if "POLICY_RELOAD action=loaded" in px["log"].read_text():
            break
        time.sleep(0.1)
    assert lab.agent(connect)[0]["data"].startswith("HTTP/1.1 200 Connection Established")
    px["policy"].write_text("version: 1\nnetwork_policies:\n  x:\n    endpoints: [{host: a, port: 1, bogus: 1}]\n")
    for _attempt in range(50):
        if "Policy reload failed" in px["log"].read_text():
            break
        time.sleep(0.1)
    assert "unknown field `bogus`" in px["log"].read_text()
    assert lab.agent(connect)[0]["data"].startswith("HTTP/1.1 200 Connection Established")  # last-known-good kept


@pytest.mark.oracle("upstream")
def test_forward_proxy_rejects_https_and_origin_form(lab, proxies):
    """sb/proxy.rs:1949-1987."""
    px = proxies()
    https, origin = lab.agent({"op": "raw", "proxy": px["proxy"], "send": "GET https://allowed.test/ HTTP/1.1\r\n\r\n", "wait": 1},
                              {"op": "raw", "proxy": px["proxy"], "send": "GET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n", "wait": 1})
    assert https["data"] == "HTTP/1.1 400 Bad Request\r\nContent-Length: 27\r\n\r\nUse CONNECT for HTTPS URLs"
    assert origin["data"] == "HTTP/1.1 400 Bad Request\r\n\r\n"


if __name__ == "__main__":
    if sys.argv[1] == "--world":
        world_main(json.loads(sys.argv[2]))
    elif sys.argv[1] == "--agent":
        agent_main(json.loads(sys.argv[2]))
