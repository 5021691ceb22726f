"""mitmproxy addon: the lab proxy's policy (OpenShell's L4 OPA check and inference.local routing, simplified).

- CONNECT to a host outside LAB_ALLOWED_HOSTS -> 403 (default deny); plain HTTP forwarding is checked the same way.
- Every allowed TLS tunnel is intercepted with the sandbox CA (mitmproxy's confdir), like OpenShell's L7 proxy.
- inference.local is handled before the policy: only the OpenAI-style request shapes are accepted, any client
  credential is stripped, the provider key (root-only file, never in the sandbox) is injected, and the request
  goes to the lab's inference stand-in.
"""
import os

from mitmproxy import http

ALLOWED = set(filter(None, os.environ.get("LAB_ALLOWED_HOSTS", "").split(",")))
INFERENCE = "inference.local"
BACKEND_HOST, BACKEND_PORT = os.environ.get("LAB_INFERENCE_BACKEND", "inference-backend.lab:8000").rsplit(":", 1)
SHAPES = {("GET", "/v1/models"), ("POST", "/v1/chat/completions"), ("POST", "/v1/completions"), ("POST", "/v1/responses"),
          ("POST", "/v1/messages")}
with open("/etc/openshell-proxy/inference.key", encoding="ascii") as fh:
    KEY = fh.read().strip()


def _deny(flow, why):
    flow.response = http.Response.make(403, f"denied by sandbox policy: {why}\n".encode(), {"Content-Type": "text/plain"})


class Policy:
    def http_connect(self, flow):
        host = flow.request.host
        if host != INFERENCE and host not in ALLOWED:
            _deny(flow, f"{host}:{flow.request.port} is not in the allow-list")

    def request(self, flow):
        host = flow.request.pretty_host
        if host == INFERENCE:
            path = flow.request.path.split("?", 1)[0]
            if (flow.request.method, path) not in SHAPES and not path.startswith("/v1/models/"):
                _deny(flow, f"{flow.request.method} {path} is not an inference request")
                return
            for header in ("authorization", "x-api-key"):
                flow.request.headers.pop(header, None)
            flow.request.headers["authorization"] = f"Bearer {KEY}"
            flow.request.scheme, flow.request.host, flow.request.port = "http", BACKEND_HOST, int(BACKEND_PORT)
            flow.request.headers["host"] = INFERENCE
        elif host not in ALLOWED:
            _deny(flow, f"{host} is not in the allow-list")


addons = [Policy()]
