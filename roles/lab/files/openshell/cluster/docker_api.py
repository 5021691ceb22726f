"""A small Docker Engine API client over the unix socket (stdlib only), for the k3s stand-in's kubelet.

The stand-in models k3s started with `--docker` (cri-dockerd): pods are containers of the engine the cluster container
runs on, named the way cri-dockerd names them (`k8s_<container>_<pod>_<namespace>_<uid>_<attempt>`, and
`k8s_POD_...` for the sandbox that holds the pod's network namespace). Engine API reference: Docker Engine API v1.41
(the oldest engine the lab supports is 20.10): /containers/create, /containers/{id}/start|stop|wait, DELETE
/containers/{id}, /containers/json?filters=..., /volumes/{name}, /networks/{name}.
"""
from __future__ import annotations

import http.client
import json
import os
import socket
import urllib.parse

API = "/v1.41"


class DockerError(RuntimeError):
    def __init__(self, status, message):
        super().__init__(f"docker API {status}: {message}")
        self.status = status


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class Docker:
    def __init__(self, host=None, timeout=60):
        host = host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        if not host.startswith("unix://"):
            raise ValueError(f"only unix:// Docker sockets are supported, got {host!r}")
        self.path, self.timeout = host[len("unix://"):], timeout

    def call(self, method, path, body=None, query=None, expect=(200, 201, 204, 304), timeout=None):
        url = API + path + ("?" + urllib.parse.urlencode(query) if query else "")
        conn = _UnixConnection(self.path, timeout or self.timeout)
        try:
            payload = None if body is None else json.dumps(body).encode()
            headers = {"Content-Type": "application/json"} if payload is not None else {}
            conn.request(method, url, body=payload, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        if resp.status not in expect:
            try:
                message = json.loads(data).get("message", data.decode(errors="replace"))
            except ValueError:
                message = data.decode(errors="replace")
            raise DockerError(resp.status, message)
        return json.loads(data) if data.strip() else None

    # -- containers -----------------------------------------------------------------------------------------
    def containers(self, labels=None, all_=True):
        filters = {"label": [f"{k}={v}" if v is not None else k for k, v in (labels or {}).items()]}
        return self.call("GET", "/containers/json", query={"all": "1" if all_ else "0", "filters": json.dumps(filters)})

    def inspect(self, name):
        try:
            return self.call("GET", f"/containers/{name}/json")
        except DockerError as exc:
            if exc.status == 404:
                return None
            raise

    def create(self, name, config):
        return self.call("POST", "/containers/create", body=config, query={"name": name})["Id"]

    def start(self, cid):
        self.call("POST", f"/containers/{cid}/start")

    def stop(self, cid, grace=5):
        self.call("POST", f"/containers/{cid}/stop", query={"t": str(grace)}, timeout=grace + 30)

    def remove(self, cid):
        try:
            self.call("DELETE", f"/containers/{cid}", query={"force": "1", "v": "0"})
        except DockerError as exc:
            if exc.status != 404:
                raise

    def wait(self, cid, timeout):
        return self.call("POST", f"/containers/{cid}/wait", timeout=timeout)["StatusCode"]

    def logs(self, cid, tail=50):
        conn = _UnixConnection(self.path, self.timeout)
        try:
            conn.request("GET", f"{API}/containers/{cid}/logs?stdout=1&stderr=1&tail={tail}")
            raw = conn.getresponse().read()
        finally:
            conn.close()
        out, pos = [], 0
        while pos + 8 <= len(raw):  # multiplexed stream: 8-byte header (stream, 0, 0, 0, size BE)
            size = int.from_bytes(raw[pos + 4:pos + 8], "big")
            out.append(raw[pos + 8:pos + 8 + size])
            pos += 8 + size
        return b"".join(out).decode(errors="replace")

    # -- volumes and networks --------------------------------------------------------------------------------
    def volume(self, name):
        return self.call("GET", f"/volumes/{name}")

    def create_volume(self, name, labels=None):
        return self.call("POST", "/volumes/create", body={"Name": name, "Labels": labels or {}})

    def remove_volume(self, name):
        try:
            self.call("DELETE", f"/volumes/{name}")
        except DockerError as exc:
            if exc.status != 404:
                raise

    def network(self, name):
        return self.call("GET", f"/networks/{name}")
