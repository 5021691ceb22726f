"""The lab's outside world (roles/lab/files/openshell/world/world.py) must answer like an internet server while several
sandboxes' proxies connect at once: clients that have not finished (or never start) their TLS handshake must not
hold up the next one. With the handshake done in the accept loop (the listening socket wrapped), one stalled client
stopped every other, the accept queue of 5 overflowed, and a gap sandbox's direct-egress probe timed out - a
"blocked" reading for a route that was open. Loopback only."""
from __future__ import annotations

import http.server
import pathlib
import socket
import ssl
import subprocess
import threading
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
WORLD = ROOT / "roles" / "lab" / "files" / "openshell" / "world" / "world.py"


@pytest.fixture
def world_server(tmp_path):
    pem = tmp_path / "site.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=allowed.lab",
                    "-keyout", str(pem), "-out", str(pem)], check=True, capture_output=True)
    source = WORLD.read_text()
    namespace = {"http": http, "ssl": ssl, "threading": threading}
    # the server class and serve() only (the module reads the lab's key files at import)
    exec(compile(source[source.index("class Server"):source.index('if __name__ == "__main__"')], str(WORLD), "exec"),  # noqa: S102
         namespace)

    class Site(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_args):
            pass

    server = namespace["Server"](("127.0.0.1", 0), Site)
    server.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.tls.load_cert_chain(str(pem))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server, pem
    server.shutdown()
    server.server_close()


@pytest.mark.oracle("self")
def test_stalled_handshakes_do_not_hold_up_the_next_client(world_server):
    server, pem = world_server
    port = server.server_address[1]
    stalled = [socket.create_connection(("127.0.0.1", port), timeout=2) for _n in range(8)]  # connect, never say hello
    try:
        time.sleep(0.2)
        ctx = ssl.create_default_context(cafile=str(pem))
        start = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=2) as raw, \
                ctx.wrap_socket(raw, server_hostname="allowed.lab") as tls:
            tls.sendall(b"GET / HTTP/1.1\r\nHost: allowed.lab\r\nConnection: close\r\n\r\n")
            answer = tls.recv(4096)
        assert answer.startswith(b"HTTP/1.0 200") or answer.startswith(b"HTTP/1.1 200"), answer
        assert time.monotonic() - start < 1.0
    finally:
        for sock in stalled:
            sock.close()


@pytest.mark.oracle("self")
def test_the_accept_queue_is_an_internet_servers(world_server):
    server, _pem = world_server
    assert server.request_queue_size >= 128 and server.daemon_threads
