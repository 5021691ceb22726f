#!/usr/bin/env python3
"""agentsec stand-in for the `openclaw` CLI inside the NemoClaw v0.0.21 sandbox image (the real one is npm's
openclaw@2026.4.2, installed in NemoClaw's sandbox-base image; NemoClaw Dockerfile:44-70 @db3453b5). Installed as
/usr/local/bin/openclaw by the stand-in Dockerfile. Standard library only.

  openclaw --version                 `openclaw 2026.4.2` (unverified: the real CLI's exact wording; upstream's
                                     Dockerfile only takes the second word, Dockerfile:58)
  openclaw gateway run --port N      the OpenClaw gateway as far as onboarding probes it: an HTTP server on
                                     127.0.0.1:N that answers `GET /` with 200 (onboarding's readiness check is
                                     `curl -sf http://localhost:<port>/`, src/lib/onboard.ts:3515-3531) and
                                     `GET /health` with {"ok": true} (unverified: the real gateway's health route);
                                     everything else 404. It reads ~/.openclaw/openclaw.json and refuses to start
                                     without a gateway auth token (the baked config always has one, Dockerfile:276).
  openclaw plugins install DIR       copies the plugin into ~/.openclaw/extensions/<id> (unverified: the real layout)
  openclaw doctor --fix              exit 0
"""
import http.server
import json
import os
import shutil
import sys
from pathlib import Path

VERSION = "2026.4.2"


def config_path() -> Path:
    return Path(os.environ.get("HOME") or "/sandbox") / ".openclaw" / "openclaw.json"


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "openclaw-gateway-standin"

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path.split("?")[0] == "/health":
            body, kind = json.dumps({"ok": True, "standin": True}).encode(), "application/json"
        elif self.path.split("?")[0] == "/":
            body, kind = b"<!doctype html><title>OpenClaw Control UI (agentsec stand-in)</title>\n", "text/html"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write("[gateway] " + (fmt % args) + "\n")


def gateway_run(args) -> int:
    port = int(args[args.index("--port") + 1]) if "--port" in args else 18789
    try:
        config = json.loads(config_path().read_text())
    except (OSError, ValueError) as e:
        print(f"openclaw gateway: cannot read {config_path()}: {e}", file=sys.stderr)
        return 1
    if not (config.get("gateway", {}).get("auth", {}).get("token")):
        print("openclaw gateway: gateway.auth.token is not set", file=sys.stderr)
        return 1
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"[gateway] listening on http://127.0.0.1:{port}/ (model {config['agents']['defaults']['model']['primary']})",
          file=sys.stderr, flush=True)
    server.serve_forever()
    return 0


def plugins_install(source: str) -> int:
    src = Path(source)
    manifest = json.loads((src / "openclaw.plugin.json").read_text())
    dest = config_path().parent / "extensions" / manifest["id"]
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("node_modules"))
    print(f"Installed plugin {manifest['id']} into {dest}")
    return 0


def main(argv) -> int:
    if argv[:1] in (["--version"], ["-V"]):
        print(f"openclaw {VERSION}")
        return 0
    if argv[:2] == ["gateway", "run"]:
        return gateway_run(argv[2:])
    if argv[:2] == ["plugins", "install"] and len(argv) > 2:
        return plugins_install(argv[2])
    if argv[:1] == ["doctor"]:
        return 0
    print(f"openclaw (agentsec stand-in): '{' '.join(argv)}' is not emulated", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
