"""agentsec stand-in for the NemoClaw v0.0.21 CLI (NemoClaw src/nemoclaw.ts @db3453b5): command dispatch, `list`,
`<sandbox> status|logs|destroy`, `--version`. Onboarding is lib/onboard.py. Contract: tests/standins/README.md."""
from __future__ import annotations

import json
import re
import subprocess
import sys

from lib import onboard
from lib import runner as R
from lib import state

S = R.S
# src/nemoclaw.ts:78-97: dispatched before any sandbox name
GLOBAL_COMMANDS = ("onboard list deploy setup setup-spark start stop status debug uninstall credentials backup-all "
                   "upgrade-sandboxes help --help -h --version -v").split()


def version() -> str:
    """src/lib/version.ts @db3453b5: `git describe --tags --match v*` of the checkout, then .version, then
    package.json (which says 0.1.0 at v0.0.21)."""
    described = R.capture(["git", "-C", str(R.ROOT), "describe", "--tags", "--match", "v*"])
    if described:
        return described.removeprefix("v")
    try:
        text = (R.ROOT / ".version").read_text().strip()
        if text:
            return text
    except OSError:
        pass
    return json.loads((R.ROOT / "package.json").read_text())["version"]


def help_text() -> None:
    R.say("", f"  NemoClaw  v{version()}  (agentsec stand-in)", "",
          "  nemoclaw onboard [--non-interactive] [--recreate-sandbox] [--yes-i-accept-third-party-software]",
          "  nemoclaw list | status | --version", "  nemoclaw <name> status | logs [--follow] | destroy [--yes|--force]", "")


def list_sandboxes() -> int:
    """src/lib/inventory-commands.ts:56-104 (without the live-session marker)."""
    data = state.load()
    if not data["sandboxes"]:
        R.say("", "  No sandboxes registered. Run `nemoclaw onboard` to get started.", "")
        return 0
    R.say("", "  Sandboxes:")
    for sb in data["sandboxes"].values():
        mark = " *" if sb["name"] == data.get("defaultSandbox") else ""
        R.say(f"    {sb['name']}{mark}", f"      model: {sb.get('model') or 'unknown'}  provider: "
              f"{sb.get('provider') or 'unknown'}  {'GPU' if sb.get('gpuEnabled') else 'CPU'}  policies: "
              f"{', '.join(sb.get('policies') or []) or 'none'}")
    R.say("", "  * = default sandbox", "")
    return 0


def show_status() -> int:
    """inventory-commands.ts:108-120."""
    data = state.load()
    rows = []
    for n, sb in data["sandboxes"].items():
        model = f" ({sb['model']})" if sb.get("model") else ""
        rows.append(f"    {n}{' *' if n == data.get('defaultSandbox') else ''}{model}")
    R.say("", "  Sandboxes:", *rows, "")
    return 0


def sandbox_status(name: str, sb: dict) -> int:
    """src/nemoclaw.ts:1300-1370 (the lines the stand-in can know)."""
    R.say("", f"  Sandbox: {name}", f"    Model:    {sb.get('model') or 'unknown'}",
          f"    Provider: {sb.get('provider') or 'unknown'}", f"    GPU:      {'yes' if sb.get('gpuEnabled') else 'no'}",
          f"    Policies: {', '.join(sb.get('policies') or []) or 'none'}")
    R.openshell("sandbox", "get", name, check=False)
    R.say("    NIM:      not running", "")
    return 0


def destroy(name: str, args) -> int:
    """src/nemoclaw.ts:1854-1933 sandboxDestroy: delete the sandbox (an absent one counts as gone), remove its
    messaging providers and the registry entry; when it was the last sandbox and the gateway lists none, stop the
    dashboard forward and destroy the `nemoclaw` gateway with its volumes (cleanupGatewayAfterLastSandbox,
    nemoclaw.ts:137-144). The Ollama auth proxy is left running."""
    if not {"--yes", "--force"} & set(args):
        R.say(f"  Destroy sandbox '{name}'?", "  This will permanently delete the sandbox and all workspace files inside it.",
              "  This cannot be undone.")
        answer = sys.stdin.readline() if not sys.stdin.isatty() else input("  Type 'yes' to confirm, or press Enter to cancel [y/N]: ")
        if answer.strip().lower() not in ("y", "yes"):
            R.say("  Cancelled.")
            return 0
    R.say(f"  Stopping NIM for '{name}'...", f"  Deleting sandbox '{name}'...")
    res = R.openshell("sandbox", "delete", name, check=False, show=False)
    output = state.strip((res.stdout or "") + (res.stderr or "")).strip()
    missing = (r"\bNotFound\b|\bNot Found\b|sandbox not found|sandbox .* not found|sandbox .* not present|"
               r"sandbox does not exist|no such sandbox")
    gone = res.returncode != 0 and bool(re.search(missing, output, re.I))
    if res.returncode != 0 and not gone:  # nemoclaw.ts:160-166 getSandboxDeleteOutcome
        R.fail(*([f"  {output}"] if output else []), f"  Failed to destroy sandbox '{name}'.", code=res.returncode or 1)
    for suffix in ("telegram-bridge", "discord-bridge", "slack-bridge"):  # nemoclaw.ts:1847-1850
        R.openshell("provider", "delete", f"{name}-{suffix}", check=False)
    removed = state.remove(name)
    if removed and not state.load()["sandboxes"]:
        listing = subprocess.run([R.openshell_bin(), "sandbox", "list"], capture_output=True, text=True, check=False)
        if listing.returncode == 0 and not state.live_sandbox_names(listing.stdout):
            R.openshell("forward", "stop", str(R.dashboard_port()), check=False)
            R.openshell("gateway", "destroy", "-g", R.GATEWAY_NAME, check=False)
            onboard.remove_gateway_volumes()
    if gone:
        R.say(f"  Sandbox '{name}' was already absent from the live gateway.")
    R.say(f"  ✓ Sandbox '{name}' destroyed")
    return 0


def sandbox_command(name: str, args) -> int:
    sb = state.get(name)
    if sb is None:  # nemoclaw.ts:2781-2794
        names = list(state.load()["sandboxes"])
        R.fail(f"  Unknown command: {name}", "", *([f"  Registered sandboxes: {', '.join(names)}",
                                                   "  Try: nemoclaw <sandbox-name> connect", ""] if names else []),
               "  Run 'nemoclaw help' for usage.")
    try:
        R.validate_name(name, "sandbox name")
    except ValueError as e:
        R.fail(f"  {e}")
    action, rest = (args[0], args[1:]) if args else ("connect", [])
    if action == "status":
        return sandbox_status(name, sb)
    if action == "destroy":
        return destroy(name, rest)
    if action == "logs":
        return R.openshell("logs", name, *(["--tail"] if "--follow" in rest else []), check=False, capture=False).returncode
    if action in ("connect", "policy-add", "policy-remove", "policy-list", "skill", "snapshot", "rebuild", "shields", "config"):
        R.fail(f"  nemoclaw (agentsec stand-in): '{action}' is not emulated.")
    R.fail(f"  Unknown action: {action}", "  Valid actions: connect, status, logs, policy-add, policy-remove, policy-list, "
           "skill, snapshot, rebuild, shields, config, destroy")
    return 1


def main(argv) -> int:
    S.record("nemoclaw", argv)
    cmd, args = (argv[0], argv[1:]) if argv else (None, [])
    try:
        if cmd in (None, "help", "--help", "-h"):
            help_text()
            return 0
        if cmd in GLOBAL_COMMANDS:
            if cmd in ("--version", "-v"):
                R.say(f"nemoclaw v{version()}")
                return 0
            if cmd == "onboard":
                return onboard.onboard(args)
            if cmd == "list":
                return list_sandboxes()
            if cmd == "status":
                return show_status()
            if cmd == "uninstall":
                R.fail("  nemoclaw (agentsec stand-in): `nemoclaw uninstall` is recorded and refused (the collection must "
                       "not call it).", code=3)
            R.fail(f"  nemoclaw (agentsec stand-in): '{cmd}' is not emulated.")
        return sandbox_command(cmd, args)
    except R.Exit as e:
        return e.code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
