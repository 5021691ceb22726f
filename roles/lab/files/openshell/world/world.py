"""The lab's outside world: allowed.lab / denied.lab (or the names in LAB_WORLD_NAMES) over HTTP and HTTPS
(certificates from the lab's "public" CA), a DNS resolver (dnsmasq) that answers for them, and an OpenAI-compatible inference stand-in on :8000.

The stand-in runs no model. GET /v1/models lists LAB_MODEL; POST /v1/chat/completions returns a fixed, clearly
labelled reply. Both require the provider key (Authorization: Bearer <key>), which only the sandbox proxy has.
"""
import http.server
import json
import os
import ssl
import subprocess
import threading

MODEL = os.environ.get("LAB_MODEL", "nemotron-3-nano:30b")
with open("/etc/lab-world/inference.key", encoding="ascii") as fh:
    KEY = fh.read().strip()


class Site(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server API
        body = f"hello from {self.headers.get('Host', '?')} (lab world stand-in)\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args):
        pass


class Inference(http.server.BaseHTTPRequestHandler):
    def _reply(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _authorized(self):
        if self.headers.get("Authorization") != f"Bearer {KEY}":
            self._reply(401, {"error": {"message": "missing or wrong provider key"}})
            return False
        return True

    def do_GET(self):  # noqa: N802
        if self._authorized() and self.path.startswith("/v1/models"):
            self._reply(200, {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "lab-stand-in"}]})

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self._authorized():
            self._reply(200, {"id": "lab-0", "object": "chat.completion", "model": MODEL, "choices": [{"index": 0, "finish_reason": "stop",
                              "message": {"role": "assistant", "content": "[lab inference stand-in: no model runs here]"}}]})

    def log_message(self, *_args):
        pass


class Server(http.server.ThreadingHTTPServer):
    """A server as the internet's are: a full accept queue (socketserver's default of 5 overflowed when several
    sandboxes' proxies connected at once: the kernel dropped the SYNs, the clients waited out a 1 s retransmission,
    and a direct-egress probe of a gap sandbox timed out - which reads as "blocked") and the TLS handshake in each
    connection's own thread (wrapping the listening socket did every handshake in the accept loop, one at a time)."""

    request_queue_size = 128
    daemon_threads = True
    tls = None

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def finish_request(self, request, client_address):
        if self.tls is not None:
            request.settimeout(10)
            try:
                request.do_handshake()
            except (ssl.SSLError, OSError):
                return
            request.settimeout(None)
        super().finish_request(request, client_address)


def serve(port, handler, tls=False):
    server = Server(("0.0.0.0", port), handler)
    if tls:
        server.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.tls.load_cert_chain("/etc/lab-world/site.pem")
    threading.Thread(target=server.serve_forever, daemon=True).start()


if __name__ == "__main__":
    serve(80, Site)
    serve(443, Site, tls=True)
    serve(8000, Inference)
    own = os.environ["LAB_WORLD_ADDRESS"]
    names = [n for n in os.environ.get("LAB_WORLD_NAMES", "allowed.lab,denied.lab").split(",") if n]
    subprocess.run(["dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--port=53", "--user=root",
                    *(f"--address=/{name}/{own}" for name in names), "--log-facility=-"], check=False)
