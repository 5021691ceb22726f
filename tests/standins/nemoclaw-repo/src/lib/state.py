"""~/.nemoclaw state: the sandbox registry, the onboarding session and lock, the usage-notice acceptance, and the
pure classifiers of openshell's output (NemoClaw src/lib/registry.ts, onboard-session.ts, usage-notice.ts,
gateway-state.ts @db3453b5)."""
from __future__ import annotations

import datetime
import json
import os

from lib import runner as R

# ---- registry (src/lib/registry.ts @db3453b5) --------------------------------------------------------------


def registry_path():
    return R.nemoclaw_dir() / "sandboxes.json"


def load() -> dict:
    """registry.ts:132-134: {sandboxes: {}, defaultSandbox: null} when absent or unreadable."""
    try:
        data = json.loads(registry_path().read_text())
    except (OSError, ValueError):
        return {"sandboxes": {}, "defaultSandbox": None}
    if not isinstance(data, dict) or not isinstance(data.get("sandboxes"), dict):
        return {"sandboxes": {}, "defaultSandbox": None}
    return data


def save(data: dict) -> None:
    R.write_private(registry_path(), json.dumps(data, indent=2))


def get(name: str):
    return load()["sandboxes"].get(name) if name else None


def register(entry: dict) -> None:
    """registry.ts:154-178: the entry's fixed field set; the first sandbox becomes the default."""
    data = load()
    data["sandboxes"][entry["name"]] = {
        "name": entry["name"], "createdAt": entry.get("createdAt") or now(), "model": entry.get("model"),
        "nimContainer": entry.get("nimContainer"), "provider": entry.get("provider"),
        "gpuEnabled": bool(entry.get("gpuEnabled")), "policies": entry.get("policies") or [],
        "policyTier": entry.get("policyTier"), "agent": entry.get("agent"), "agentVersion": entry.get("agentVersion"),
        "messagingChannels": entry.get("messagingChannels") or [],
        **({"providerCredentialHashes": entry["providerCredentialHashes"]} if entry.get("providerCredentialHashes") else {}),
    }
    data["defaultSandbox"] = data.get("defaultSandbox") or entry["name"]
    save(data)


def update(name: str, **changes) -> bool:
    """registry.ts:180-191: a silent no-op when the entry is missing."""
    data = load()
    if not name or name not in data["sandboxes"]:
        return False
    data["sandboxes"][name].update(changes)
    save(data)
    return True


def remove(name: str) -> bool:
    """registry.ts:193-205: the default moves to the first remaining sandbox."""
    data = load()
    if name not in data["sandboxes"]:
        return False
    del data["sandboxes"][name]
    if data.get("defaultSandbox") == name:
        data["defaultSandbox"] = next(iter(data["sandboxes"]), None)
    save(data)
    return True


def clear_all() -> None:
    """registry.ts:225-228."""
    save({"sandboxes": {}, "defaultSandbox": None})


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ---- onboarding session and lock (src/lib/onboard-session.ts:17-18 @db3453b5) ----------------------------

STEPS = ("preflight", "gateway", "provider_selection", "inference", "messaging", "sandbox", "openclaw", "policies")


def session_path():
    return R.nemoclaw_dir() / "onboard-session.json"


def load_session():
    try:
        return json.loads(session_path().read_text())
    except (OSError, ValueError):
        return None


def save_session(session: dict) -> None:
    R.write_private(session_path(), json.dumps(session, indent=2))


def new_session(mode: str) -> dict:
    session = {"version": 1, "sessionId": f"session-{os.getpid()}", "resumable": True, "status": "in_progress",
               "mode": mode, "startedAt": now(), "updatedAt": now(), "lastStepStarted": None, "failure": None,
               "sandboxName": None, "provider": None, "model": None, "policyPresets": None,
               "metadata": {"gatewayName": R.GATEWAY_NAME}, "steps": {s: {"status": "pending"} for s in STEPS}}
    save_session(session)
    return session


def mark(step_name: str, status: str, **fields) -> None:
    session = load_session() or new_session("non-interactive")
    session["steps"].setdefault(step_name, {})["status"] = status
    if status == "in_progress":
        session["lastStepStarted"] = step_name
    for key, value in fields.items():
        session[key] = value
    session["updatedAt"] = now()
    save_session(session)


def lock_path():
    return R.nemoclaw_dir() / "onboard.lock"


def acquire_lock(command: str) -> dict:
    """onboard-session.ts acquireOnboardLock: a lock file with the holder's pid; a dead holder's lock is taken over."""
    path = lock_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    for _attempt in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            try:
                holder = json.loads(path.read_text())
            except (OSError, ValueError):
                holder = {}
            if R.S.pid_alive(holder.get("pid")):
                return {"acquired": False, "holderPid": holder.get("pid"), "holderStartedAt": holder.get("startedAt"),
                        "lockFile": str(path)}
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            json.dump({"pid": os.getpid(), "startedAt": now(), "command": command}, f)
        return {"acquired": True}
    return {"acquired": False, "holderPid": None, "holderStartedAt": None, "lockFile": str(path)}


def release_lock() -> None:
    try:
        if json.loads(lock_path().read_text()).get("pid") == os.getpid():
            lock_path().unlink()
    except (OSError, ValueError):
        pass


# ---- usage notice (src/lib/usage-notice.ts @db3453b5) --------------------------------------------------------

NOTICE_ACCEPT_FLAG = "--yes-i-accept-third-party-software"  # usage-notice.ts:10
NOTICE_ACCEPT_ENV = "NEMOCLAW_ACCEPT_THIRD_PARTY_SOFTWARE"  # usage-notice.ts:11


def notice_config() -> dict:
    return json.loads((R.ROOT / "bin" / "lib" / "usage-notice.json").read_text())


def notice_state_path():
    """usage-notice.ts:42-44: $HOME/.nemoclaw/usage-notice.json."""
    return R.nemoclaw_dir() / "usage-notice.json"


def notice_accepted(version: str) -> bool:
    """usage-notice.ts:50-59: accepted only for the notice version recorded."""
    try:
        return json.loads(notice_state_path().read_text()).get("acceptedVersion") == version
    except (OSError, ValueError, AttributeError):
        return False


def save_acceptance(version: str) -> None:
    """usage-notice.ts:61-72: {acceptedVersion, acceptedAt}, file 0600 in a 0700 directory."""
    R.write_private(notice_state_path(), json.dumps({"acceptedVersion": version, "acceptedAt": now()}, indent=2))
    os.chmod(notice_state_path().parent, 0o700)


def ensure_consent(non_interactive: bool, accepted_by_flag: bool, is_tty: bool) -> bool:
    """usage-notice.ts:116-163: a recorded acceptance of this version passes silently; otherwise the notice is
    printed (stderr) and non-interactive runs need the flag or the env variable."""
    config = notice_config()
    if notice_accepted(config["version"]):
        return True
    R.err("", f"  {config['title']}", f"  {R.RULE}", *(f"  {line}" for line in config.get("body", [])), "")
    if non_interactive:
        if not accepted_by_flag:
            R.err(f"  Non-interactive onboarding requires {NOTICE_ACCEPT_FLAG} or {NOTICE_ACCEPT_ENV}=1.")
            return False
        R.err(f"  [non-interactive] Third-party software notice accepted via {NOTICE_ACCEPT_FLAG}.")
        save_acceptance(config["version"])
        return True
    if not is_tty:
        R.err("  Interactive onboarding requires a TTY. Re-run in a terminal or use --non-interactive with "
              f"{NOTICE_ACCEPT_FLAG}.")
        return False
    R.fail("  nemoclaw (agentsec stand-in): the interactive notice prompt is not emulated; use --non-interactive.")
    return False


# ---- classifiers of openshell output (src/lib/gateway-state.ts @db3453b5) -----------------------------------

def strip(text: str) -> str:
    return R.ANSI.sub("", text or "")


def is_sandbox_ready(list_output: str, name: str) -> bool:
    """gateway-state.ts:33-39: first column is the name and the row says Ready (not NotReady)."""
    for line in strip(list_output).splitlines():
        cols = line.split()
        if cols and cols[0] == name and "Ready" in cols and "NotReady" not in cols:
            return True
    return False


def has_stale_gateway(info: str) -> bool:
    """gateway-state.ts:45-52."""
    clean = strip(info)
    return bool(clean) and f"Gateway: {R.GATEWAY_NAME}" in clean and "No gateway metadata found" not in clean


def reported_gateway(output: str):
    """gateway-state.ts:54-59."""
    for line in strip(output).splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "Gateway:":
            return parts[1]
    return None


def gateway_connected(status: str) -> bool:
    """gateway-state.ts:61-66: raw output containing "Connected" - or just the "Server Status" header, which
    openshell prints for any configured gateway (run.rs gateway_status @v0.0.26), even a Disconnected one."""
    return "Connected" in (status or "") or "Server Status" in (status or "")


def has_active_info(active_info: str) -> bool:
    """gateway-state.ts:68-74."""
    return "Gateway endpoint:" in (active_info or "") and "No gateway metadata found" not in (active_info or "")


def gateway_healthy(status: str, info: str, active_info: str) -> bool:
    """gateway-state.ts:80-100."""
    name = reported_gateway(status) or reported_gateway(active_info)
    if gateway_connected(status) and name == R.GATEWAY_NAME:
        return True
    return (not strip(status).strip() and has_stale_gateway(info) and has_active_info(active_info)
            and name == R.GATEWAY_NAME)


def gateway_reuse_state(status: str, info: str, active_info: str) -> str:
    """gateway-state.ts:102-126: healthy | active-unnamed | foreign-active | stale | missing."""
    if gateway_healthy(status, info, active_info):
        return "healthy"
    connected = gateway_connected(status)
    name = reported_gateway(status) or reported_gateway(active_info)
    if connected and name == R.GATEWAY_NAME:
        return "active-unnamed"
    if connected and name and name != R.GATEWAY_NAME:
        return "foreign-active"
    if has_stale_gateway(info):
        return "stale"
    if has_active_info(active_info):
        return "active-unnamed"
    return "missing"


def sandbox_state(name: str, get_output: str, list_output: str) -> str:
    """gateway-state.ts:135-143: missing when `sandbox get` printed nothing, else ready | not_ready."""
    if not name or not get_output:
        return "missing"
    return "ready" if is_sandbox_ready(list_output, name) else "not_ready"


def live_sandbox_names(list_output: str) -> set:
    """src/lib/runtime-recovery.ts:23-37 @db3453b5."""
    names = set()
    for raw in strip(list_output).splitlines():
        line = raw.strip()
        if not line or line.upper().startswith("NAME") or line.startswith("No sandboxes found") or line.startswith("Error:"):
            continue
        names.add(line.split()[0])
    return names
