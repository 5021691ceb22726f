"""The hardening role's Ollama ruleset, rendered by Ansible and loaded for real into network namespaces this test
creates: loopback and an allowed source connect, another source is dropped. No other address is touched."""
from __future__ import annotations

import json
import os
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


def render(tmp_path, sources):
    out = tmp_path / "ollama.nft"
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps({"hardening_ollama_port": 11434, "hardening_ollama_allowed_sources": sources}))
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
    server = subprocess.Popen(["ip", "netns", "exec", NS["srv"], sys.executable, "-c",
                               "import socket\ns = socket.create_server(('0.0.0.0', 11434))\n"
                               "while True:\n    c, _ = s.accept(); c.close()\n"])
    time.sleep(0.5)
    yield
    server.kill()
    server.wait()
    for ns in NS.values():
        sh("ip", "netns", "del", ns, check=False)


def connect(ns, addr):
    code = (f"import socket\ntry:\n    socket.create_connection(({addr!r}, 11434), timeout=1).close(); print('ok')\n"
            "except OSError as e:\n    print(type(e).__name__)")
    return sh("ip", "netns", "exec", NS[ns], sys.executable, "-c", code).stdout.strip()


def test_only_loopback_and_allowed_sources_reach_ollama(tmp_path, namespaces):
    assert connect("no", "10.251.2.1") == "ok"  # nothing loaded yet: the port is open to everyone
    rules = render(tmp_path, ["10.251.1.0/24"])
    sh("nft", "-c", "-f", str(rules))
    sh("ip", "netns", "exec", NS["srv"], "nft", "-f", str(rules))
    sh("ip", "netns", "exec", NS["srv"], "nft", "-f", str(rules))  # reloading replaces the table atomically
    assert connect("ok", "10.251.1.1") == "ok"
    assert connect("srv", "127.0.0.1") == "ok"
    assert connect("no", "10.251.2.1") in ("TimeoutError", "timeout")
    listing = sh("ip", "netns", "exec", NS["srv"], "nft", "list", "table", "inet", "agentsec_ollama").stdout
    assert listing.count("chain input") == 1 and "10.251.1.0/24" in listing
