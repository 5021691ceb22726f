"""The nemoclaw_onboard role's Ollama auth proxy service launcher (roles/nemoclaw_onboard/templates/ollama-proxy.sh.j2),
rendered by Ansible and run for real on loopback ports this test picks, in front of the Ollama stand-in and with the
stand-in NemoClaw's proxy script (our implementation of NemoClaw v0.0.21's scripts/ollama-auth-proxy.js).

NemoClaw v0.0.21 only starts the proxy detached during onboarding, and a re-onboarding leaves that proxy running with
a fresh token while the token file and the gateway's provider keep the previous one (src/lib/onboard.ts:1904-1935,
4455-4462 @db3453b5; fixed later upstream, NVIDIA/NemoClaw#2553): the `gap` case is that state, where the route's
credential gets 401. The service launcher serves the persisted token, stands by while NemoClaw's own proxy lives and
takes over once the role stops it."""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
STANDINS = ROOT / "tests" / "standins"
TEMPLATE = ROOT / "roles" / "nemoclaw_onboard" / "templates" / "ollama-proxy.sh.j2"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="the proxy runs on Node.js")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status(port, token=None, path="/v1/models"):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=2) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def _wait(predicate, seconds=20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def setup(tmp_path):
    home = tmp_path / "home"
    (home / ".nemoclaw").mkdir(parents=True)
    ports = {"ollama": _free_port(), "proxy": _free_port()}
    env = dict(os.environ, HOME=str(home), AGENTSEC_STANDIN_DIR=str(tmp_path / "state"),
               OLLAMA_HOST=f"127.0.0.1:{ports['ollama']}")
    procs = [subprocess.Popen([STANDINS / "bin" / "ollama", "serve"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]
    assert _wait(lambda: _status(ports["ollama"], path="/api/version") == 200)
    launcher = tmp_path / "agentsec-nemoclaw-ollama-proxy"
    variables = {"__nemoclaw_onboard_proxy_pidfile": str(home / ".nemoclaw/ollama-auth-proxy.pid"),
                 "__nemoclaw_onboard_proxy_token": str(home / ".nemoclaw/ollama-proxy-token"),
                 "nemoclaw_onboard_ollama_proxy_port": ports["proxy"], "nemoclaw_onboard_ollama_port": ports["ollama"],
                 "nemoclaw_onboard_node_bin": shutil.which("node"),
                 "nemoclaw_onboard_source_dir": str(STANDINS / "nemoclaw-repo")}
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    subprocess.run(["ansible", "localhost", "-c", "local", "-m", "ansible.builtin.template", "-a",
                    f"src={TEMPLATE} dest={launcher} mode=0755", "-e", f"@{tmp_path / 'vars.json'}"],
                   check=True, capture_output=True, env=dict(os.environ, ANSIBLE_LOCAL_TEMP=str(tmp_path / "t")))
    yield {"home": home, "ports": ports, "env": env, "launcher": launcher, "procs": procs}
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=5)


def _nemoclaw_proxy(s, token):
    """The proxy as NemoClaw v0.0.21 starts it: node, the token and ports in the environment, pid in the pid file."""
    env = dict(s["env"], OLLAMA_PROXY_TOKEN=token, OLLAMA_PROXY_PORT=str(s["ports"]["proxy"]),
               OLLAMA_BACKEND_PORT=str(s["ports"]["ollama"]))
    proc = subprocess.Popen([shutil.which("node"), STANDINS / "nemoclaw-repo/scripts/ollama-auth-proxy.js"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    s["procs"].append(proc)
    (s["home"] / ".nemoclaw/ollama-auth-proxy.pid").write_text(f"{proc.pid}\n")
    assert _wait(lambda: _status(s["ports"]["proxy"], path="/api/tags") == 200)
    return proc


@pytest.mark.oracle("upstream", "self")
@pytest.mark.parametrize("service", [False, True], ids=["gap-nemoclaw-detached-proxy", "role-service"])
def test_the_service_serves_the_persisted_token_and_takes_over(setup, service):
    s = setup
    port = s["ports"]["proxy"]
    persisted = "a" * 48  # what the token file and the gateway's ollama-local provider hold after re-onboarding
    (s["home"] / ".nemoclaw/ollama-proxy-token").write_text(persisted)
    detached = _nemoclaw_proxy(s, "b" * 48)  # ... while NemoClaw's respawned proxy checks a fresh token
    assert _status(port, persisted) == 401  # the route's credential is refused
    if not service:
        return
    launcher = subprocess.Popen([s["launcher"]], env=s["env"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
    s["procs"].append(launcher)
    time.sleep(1)
    assert launcher.poll() is None  # it stands by instead of failing on the taken port
    assert _status(port, persisted) == 401
    detached.terminate()  # the role's hand-over stops NemoClaw's detached proxy
    detached.wait(timeout=5)
    assert _wait(lambda: _status(port, persisted) == 200, 15), launcher.stderr.read() if launcher.poll() is not None else ""
    assert _status(port) == 401 and _status(port, "b" * 48) == 401
    # the pid file names the service's process, so NemoClaw's ensureOllamaAuthProxy leaves it alone
    assert int((s["home"] / ".nemoclaw/ollama-auth-proxy.pid").read_text()) == launcher.pid
    assert "ollama-auth-proxy.js" in pathlib.Path(f"/proc/{launcher.pid}/cmdline").read_text()


@pytest.mark.oracle("self")
def test_the_launcher_refuses_without_a_token(setup):
    res = subprocess.run([setup["launcher"]], env=setup["env"], capture_output=True, text=True, timeout=30, check=False)
    assert res.returncode == 1 and "no token in" in res.stderr
