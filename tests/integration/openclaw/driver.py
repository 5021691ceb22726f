"""Runs inside the test container (stdlib only): the fake model, the OpenClaw gateway and one agent turn.

The agent processes (``openclaw gateway run`` and ``openclaw agent``) are started through the wrapper in
``AGENTSEC_TEST_WRAPPER`` (a JSON argv prefix: the launcher the hardened pod template puts in front of the agent's
entry, plugins/module_utils/_k8s_patches.py), i.e. under the collection's seccomp/Landlock launcher. The fake
model server is the "outside" inference endpoint and is not wrapped. Every wait is bounded. The last line on stdout is
one JSON object with what happened; the test decides.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent
MODEL_PORT = 18080  # openclaw-*.json5 models.providers.agentsec.baseUrl
GATEWAY_PORT = 18789  # openclaw-*.json5 gateway.port
RUN = pathlib.Path("/tmp/agentsec")


def wait_port(port, deadline):
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.1)
    return False


def http_get(path, timeout=2.0):
    """(status, body) of GET http://127.0.0.1:GATEWAY_PORT<path>; (None, error) when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{GATEWAY_PORT}{path}", timeout=timeout) as resp:  # noqa: S310 - loopback
            return resp.status, resp.read(4096).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(4096).decode(errors="replace")
    except OSError as exc:
        return None, str(exc)


def wait_gateway(proc, deadline):
    """Poll /healthz (openclaw dist/gateway-cli-*.js GATEWAY_PROBE_STATUS_BY_PATH) until it answers 200."""
    last = (None, "not polled")
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False, last
        last = http_get("/healthz")
        if last[0] == 200:
            return True, last
        time.sleep(0.25)
    return False, last


def tail(path, lines=80):
    try:
        return "\n".join(pathlib.Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"<{exc}>"


NET_ERRORS = ("ENETUNREACH", "EAI_AGAIN", "ENOTFOUND", "getaddrinfo", "fetch failed", "ECONNREFUSED")


def network_errors(*paths):
    """Log lines that look like a failed attempt to reach something (the namespace has only loopback)."""
    hits = []
    for path in paths:
        try:
            lines = pathlib.Path(path).read_text(errors="replace").splitlines()
        except OSError:
            continue
        hits += [line[:300] for line in lines if any(marker in line for marker in NET_ERRORS)]
    return hits[:20]


def model_requests(path):
    """The fake model's request log, reduced to what the test needs (the system prompt is large)."""
    out = []
    try:
        rows = [json.loads(line) for line in pathlib.Path(path).read_text().splitlines() if line.strip()]
    except OSError:
        return out
    for row in rows:
        body = row.get("body") or {}
        msgs = body.get("messages") or []
        out.append({"path": row.get("path"), "answer": row.get("answer"), "model": body.get("model"),
                    "stream": body.get("stream"), "n_messages": len(msgs),
                    "tools_offered": sorted((t.get("function") or {}).get("name") or "" for t in body.get("tools") or []),
                    "tool_messages": [m.get("content") for m in msgs if m.get("role") == "tool"]})
    return out


def stop(proc, grace=10):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--node", required=True)
    p.add_argument("--openclaw", required=True, help="path of openclaw.mjs")
    p.add_argument("--config", required=True, help="OpenClaw config template (JSON5), copied to ~/.openclaw/openclaw.json")
    p.add_argument("--command", required=True, help="shell command the fake model asks the exec tool to run")
    p.add_argument("--message", default="Run the diagnostic command and report its output.")
    p.add_argument("--gateway-timeout", type=float, default=90)
    p.add_argument("--turn-timeout", type=float, default=150)
    args = p.parse_args(argv)

    wrapper = json.loads(os.environ.get("AGENTSEC_TEST_WRAPPER") or "[]")
    home = pathlib.Path(os.environ["HOME"])
    (home / ".openclaw").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.config, home / ".openclaw" / "openclaw.json")
    RUN.mkdir(parents=True, exist_ok=True)
    result = {"wrapper": wrapper, "node": args.node, "openclaw": args.openclaw}
    start = time.monotonic()

    model_log = RUN / "model.jsonl"
    fake = subprocess.Popen([sys.executable, "-I", str(HERE / "fake_model.py"), "--port", str(MODEL_PORT), "--log", str(model_log),
                             "--command", args.command, "--max-seconds", str(args.gateway_timeout + args.turn_timeout + 30)])
    result["model_up"] = wait_port(MODEL_PORT, time.monotonic() + 15)

    gw_log = RUN / "gateway.log"
    with open(gw_log, "wb") as fh:
        gateway = subprocess.Popen([*wrapper, args.node, args.openclaw, "gateway", "run", "--port", str(GATEWAY_PORT), "--bind", "loopback"],
                                   stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    healthy, last = wait_gateway(gateway, time.monotonic() + args.gateway_timeout)
    result.update(gateway_healthy=healthy, gateway_seconds=round(time.monotonic() - start, 1), healthz=last,
                  readyz=http_get("/readyz") if healthy else None, gateway_exit=gateway.poll())
    if healthy:
        cmd = [*wrapper, args.node, args.openclaw, "agent", "--agent", "main", "--message", args.message, "--json",
               "--timeout", str(int(args.turn_timeout - 10))]
        t0 = time.monotonic()
        try:
            turn = subprocess.run(cmd, capture_output=True, text=True, timeout=args.turn_timeout, stdin=subprocess.DEVNULL, check=False)
            result["agent"] = {"rc": turn.returncode, "stdout": turn.stdout[-20000:], "stderr": turn.stderr[-8000:]}
        except subprocess.TimeoutExpired as exc:
            result["agent"] = {"rc": None, "stdout": str(exc.stdout or "")[-8000:], "stderr": f"timed out after {args.turn_timeout}s"}
        result["agent"]["seconds"] = round(time.monotonic() - t0, 1)
        result["gateway_alive_after_turn"] = gateway.poll() is None
        result["healthz_after_turn"] = http_get("/healthz")
    result["gateway_rc"] = stop(gateway)
    stop(fake, grace=3)
    result["model_requests"] = model_requests(model_log)
    result["gateway_log"] = tail(gw_log)
    result["openclaw_log"] = tail("/tmp/openclaw/openclaw.log", 60)
    result["network_errors"] = network_errors(gw_log, "/tmp/openclaw/openclaw.log")
    result["total_seconds"] = round(time.monotonic() - start, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
