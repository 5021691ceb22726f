"""The hardening role's Ollama ruleset, rendered by Ansible and loaded for real into network namespaces this test
creates: loopback and an allowed source connect, another source is dropped - for Ollama (11434) and for NemoClaw
v0.0.21's Ollama auth proxy (11435, which listens on 0.0.0.0: NemoClaw scripts/ollama-auth-proxy.js @db3453b5). The
`gap` case renders the rules with Ollama's port only (the collection before the proxy was covered) and shows the
hostile neighbour reaching the proxy. No other address is touched."""
from __future__ import annotations

import json
import os
import re
import pathlib
import shutil
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "roles" / "hardening" / "templates" / "ollama.nft.j2"
NS = {"srv": "agentsec-fw-srv", "ok": "agentsec-fw-ok", "no": "agentsec-fw-no"}

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("ip"),
                                reason="needs root, nftables and iproute2 to build network namespaces")


def sh(*cmd, check=True):
    return subprocess.run(cmd, capture_output=True, text=True, check=check)


PORTS = (11434, 11435)


def render(tmp_path, sources, ports=None):
    out = tmp_path / "ollama.nft"
    extra = tmp_path / "vars.json"
    chosen = {"hardening_ollama_ports": list(ports)} if ports else {}  # None: the role's default
    defaults = (ROOT / "roles" / "hardening" / "defaults" / "main.yml").read_text()
    default_ports = json.loads(re.search(r"^hardening_ollama_ports: (\[.*\])$", defaults, re.M).group(1))
    extra.write_text(json.dumps({"hardening_ollama_ports": default_ports, **chosen, "hardening_ollama_allowed_sources": sources}))
    sh("ansible", "localhost", "-c", "local", "-m", "ansible.builtin.template", "-a", f"src={TEMPLATE} dest={out} mode=0644",
       "-e", f"@{extra}")
    return out


@pytest.fixture
def namespaces():
    for ns in NS.values():
        sh("ip", "netns", "del", ns, check=False)
    for ns in NS.values():
        sh("ip", "netns", "add", ns)
    for peer, net in (("ok", "10.251.1"), ("no", "10.251.2")):
        a, b = f"afw-s-{peer}", f"afw-{peer}"
        sh("ip", "link", "add", a, "netns", NS["srv"], "type", "veth", "peer", "name", b, "netns", NS[peer])
        sh("ip", "-n", NS["srv"], "addr", "add", f"{net}.1/24", "dev", a)
        sh("ip", "-n", NS[peer], "addr", "add", f"{net}.2/24", "dev", b)
        sh("ip", "-n", NS["srv"], "link", "set", a, "up")
        sh("ip", "-n", NS[peer], "link", "set", b, "up")
    for ns in NS.values():
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    servers = [subprocess.Popen(["ip", "netns", "exec", NS["srv"], sys.executable, "-c",
                                 f"import socket\ns = socket.create_server(('0.0.0.0', {port}))\n"
                                 "while True:\n    c, _ = s.accept(); c.close()\n"]) for port in PORTS]
    time.sleep(0.5)
    yield
    for server in servers:
        server.kill()
        server.wait()
    for ns in NS.values():
        sh("ip", "netns", "del", ns, check=False)


def connect(ns, addr, port=11434):
    code = (f"import socket\ntry:\n    socket.create_connection(({addr!r}, {port}), timeout=1).close(); print('ok')\n"
            "except OSError as e:\n    print(type(e).__name__)")
    return sh("ip", "netns", "exec", NS[ns], sys.executable, "-c", code).stdout.strip()


@pytest.mark.oracle("kernel", "upstream")
@pytest.mark.parametrize(("ports", "proxy_exposed"), [(None, False), ((11434,), True)], ids=["role-default", "gap"])
def test_only_loopback_and_allowed_sources_reach_ollama_and_its_proxy(tmp_path, namespaces, ports, proxy_exposed):
    for port in PORTS:
        assert connect("no", "10.251.2.1", port) == "ok"  # nothing loaded yet: both ports are open to everyone
    rules = render(tmp_path, ["10.251.1.0/24"], ports)
    sh("nft", "-c", "-f", str(rules))
    sh("ip", "netns", "exec", NS["srv"], "nft", "-f", str(rules))
    sh("ip", "netns", "exec", NS["srv"], "nft", "-f", str(rules))  # reloading replaces the table atomically
    for port in PORTS:
        assert connect("ok", "10.251.1.1", port) == "ok"
        assert connect("srv", "127.0.0.1", port) == "ok"
    assert connect("no", "10.251.2.1", 11434) in ("TimeoutError", "timeout")
    # the hostile neighbour and NemoClaw's proxy on 0.0.0.0:11435: reachable only when the rules leave its port out
    assert (connect("no", "10.251.2.1", 11435) == "ok") is proxy_exposed
    listing = sh("ip", "netns", "exec", NS["srv"], "nft", "list", "table", "inet", "agentsec_ollama").stdout
    assert listing.count("chain input") == 1 and "10.251.1.0/24" in listing
    assert ("11435" in listing) is not proxy_exposed
