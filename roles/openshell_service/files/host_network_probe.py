#!/usr/bin/env python3
"""Docker Desktop host-networking probe of role agentsec.nemoclaw.openshell_service (read-only, bounded, loopback only).

Like `openshell doctor check` on 0.1.x (crates/openshell-cli/src/commands/doctor/docker.rs@afd8aad8, ref
openshell-current.md 2.5): a listener on this host's 127.0.0.1, and a container on the `--network` given (host on
Docker Desktop) that must connect to it. Docker Desktop reaches the Mac's loopback from a --network host container only
when host networking is enabled in its settings, and never with Enhanced Container Isolation on. Prints one JSON line;
exits 0 when the container connected, 1 when not, 2 when Docker could not run the probe.
Usage: host_network_probe.py IMAGE NETWORK [TIMEOUT]
"""
import json
import os
import socket
import subprocess
import sys
import threading

image, network = sys.argv[1], sys.argv[2]
timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 30.0
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(1)
listener.settimeout(timeout)
port = listener.getsockname()[1]
seen = threading.Event()


def accept():
    try:
        conn = listener.accept()[0]
        conn.close()
        seen.set()
    except OSError:
        pass


threading.Thread(target=accept, daemon=True).start()
argv = ["docker", "run", "--rm", "--network", network, "--entrypoint", "bash", image, "-c",
        f"exec 3<>/dev/tcp/127.0.0.1/{port}"]
try:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 30, check=False, env=os.environ)
except (OSError, subprocess.TimeoutExpired) as exc:
    print(json.dumps({"reachable": False, "error": str(exc)}))
    sys.exit(2)
seen.wait(2)
result = {"reachable": seen.is_set(), "rc": proc.returncode, "stderr": proc.stderr.strip()[-300:], "port": port}
print(json.dumps(result))
sys.exit(0 if seen.is_set() else (2 if proc.returncode == 125 else 1))
