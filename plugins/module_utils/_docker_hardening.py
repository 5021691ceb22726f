# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)
"""Pure builder for the hardening role's docker backend: `docker inspect` of a sandbox container -> the parameters
of community.docker.docker_container that recreate it hardened (or restored), plus a list of the changes.

The fields hardening touches are saved, as they were before the first hardening, in the label
``agentsec.nemoclaw/hardening-original``; rolling back restores exactly those and leaves everything else alone.
"""

from __future__ import annotations

import json

ORIGINAL_LABEL = "agentsec.nemoclaw/hardening-original"
APPLIED_LABEL = "agentsec.nemoclaw/hardening"
WRAPPER_ENV = "OPENSHELL_AGENT_WRAPPER"
LAUNCHER = "/opt/agentsec/bin/seccomp-launch"
FILTER = "/opt/agentsec/etc/agent.bpf"
HOOK_DIR = "/etc/openshell/agent-netns.d"
CA_PATH = "/etc/openshell-tls/openshell-ca.pem"


def _pairs(items, sep):
    """["K=V", ...] or ["host:ip", ...] -> dict (docker inspect's Env and ExtraHosts)."""
    return dict(item.partition(sep)[::2] for item in items or [])


def _env(inspect):
    return _pairs(inspect.get("Config", {}).get("Env"), "=")


def _mounts(inspect):
    return [{"type": m.get("Type", "bind"), "source": m.get("Source"), "target": m.get("Target"), "read_only": bool(m.get("ReadOnly"))}
            for m in (inspect.get("HostConfig", {}).get("Mounts") or [])]


def _tmpfs(inspect):
    tmpfs = inspect.get("HostConfig", {}).get("Tmpfs") or {}
    return [f"{path}:{opts}" if opts else path for path, opts in sorted(tmpfs.items())]


def _hosts(inspect):
    return _pairs(inspect.get("HostConfig", {}).get("ExtraHosts"), ":")


def current_state(inspect):
    """The fields hardening manages, as they are now."""
    return {
        "read_only": bool(inspect.get("HostConfig", {}).get("ReadonlyRootfs")),
        "tmpfs": _tmpfs(inspect),
        "etc_hosts": _hosts(inspect),
        "mounts": _mounts(inspect),
        "wrapper": _env(inspect).get(WRAPPER_ENV, ""),
    }


def base_params(inspect):
    """Everything else about the container, carried over unchanged."""
    host = inspect.get("HostConfig", {})
    config = inspect.get("Config", {})
    networks = sorted((inspect.get("NetworkSettings", {}).get("Networks") or {}).keys())
    env = {k: v for k, v in _env(inspect).items() if k not in ("PATH",)}
    return {
        "name": inspect["Name"].lstrip("/"),
        "image": config.get("Image"),
        "command": config.get("Cmd"),
        "capabilities": sorted(host.get("CapAdd") or []),
        "security_opts": host.get("SecurityOpt") or [],
        "sysctls": host.get("Sysctls") or {},
        "volumes": host.get("Binds") or [],
        "env": env,
        "labels": dict(config.get("Labels") or {}),
        "networks": [{"name": n} for n in networks],
        "networks_cli_compatible": True,
        "network_mode": networks[0] if networks else "default",
        "restart_policy": (host.get("RestartPolicy") or {}).get("Name") or "no",
        "state": "started",
    }


def hardened_fields(original, options, ca_host_path):
    """Apply the enabled fixes on top of the original fields. Returns (fields, changes)."""
    fields = json.loads(json.dumps(original))
    changes = []
    if options.get("l1"):
        fields["read_only"] = True
        existing = {t.split(":", 1)[0] for t in fields["tmpfs"]}
        fields["tmpfs"] = fields["tmpfs"] + [t for t in options["tmpfs"] if t.split(":", 1)[0] not in existing]
        changes.append("L1: read-only root filesystem with tmpfs " + ", ".join(t.split(":", 1)[0] for t in options["tmpfs"]))
    wrapper = []
    if options.get("l2") or options.get("l1"):
        wrapper = [LAUNCHER]
        if options.get("l2"):
            wrapper += ["--filter", FILTER]
            changes.append("L2: hardened seccomp filter installed per agent process by the launcher")
        if options.get("l1"):
            for path in options["landlock_ro"]:
                wrapper += ["--landlock-ro", path]
            for path in options["landlock_rw"]:
                wrapper += ["--landlock-rw", path]
            changes.append("L1: Landlock ruleset applied per agent process by the launcher")
        wrapper.append("--")
        fields["mounts"] = fields["mounts"] + [
            {"type": "bind", "source": options["files_dir"] + "/seccomp-launch", "target": LAUNCHER, "read_only": True},
            {"type": "bind", "source": options["files_dir"] + "/agent.bpf", "target": FILTER, "read_only": True},
        ]
    fields["wrapper"] = json.dumps(wrapper) if wrapper else original["wrapper"]
    if options.get("l3"):
        fields["mounts"].append({"type": "bind", "source": options["files_dir"] + "/agent-netns.d", "target": HOOK_DIR, "read_only": True})
        changes.append("L3: agent namespace route via the proxy and bypass rules, applied by the supervisor at every start")
    if options.get("l5") and ca_host_path and not any(m["target"] == CA_PATH for m in original["mounts"]):
        fields["mounts"].append({"type": "bind", "source": ca_host_path, "target": CA_PATH, "read_only": True})
        changes.append(f"L5: sandbox CA mounted at {CA_PATH}")
    if options.get("l6"):
        fields["etc_hosts"] = {**fields["etc_hosts"], "inference.local": options["inference_local_address"]}
        changes.append(f"L6: inference.local -> {options['inference_local_address']}")
    return fields, changes


def docker_spec(inspect, options, state="present"):
    """Parameters for community.docker.docker_container, the changes made, and whether the spec differs from now."""
    base = base_params(inspect)
    labels = dict(base["labels"])
    now = current_state(inspect)
    saved = labels.get(ORIGINAL_LABEL)
    original = json.loads(saved) if saved else now
    if state == "absent":
        fields, changes = original, ([] if not saved else ["restored the container as it was before hardening"])
        labels[ORIGINAL_LABEL] = ""
        labels[APPLIED_LABEL] = ""
    else:
        fields, changes = hardened_fields(original, options, options.get("ca_host_path") or labels.get("agentsec.nemoclaw/lab-ca-host-path"))
        labels[ORIGINAL_LABEL] = json.dumps(original, sort_keys=True)
        labels[APPLIED_LABEL] = ",".join(layer for layer in ("l1", "l2", "l3", "l4", "l5", "l6") if options.get(layer))
    params = dict(base)
    params.update(read_only=fields["read_only"], tmpfs=fields["tmpfs"], etc_hosts=fields["etc_hosts"], mounts=fields["mounts"])
    params["env"] = {**base["env"], WRAPPER_ENV: fields["wrapper"]}
    params["labels"] = labels
    differs = _normalize(fields) != _normalize(now) or labels != base["labels"]
    return {"params": params, "changes": changes, "original": original, "changed": differs}


def _normalize(fields):
    return {
        "read_only": fields["read_only"],
        "tmpfs": sorted(fields["tmpfs"]),
        "etc_hosts": dict(sorted(fields["etc_hosts"].items())),
        "mounts": sorted((m["target"], m["source"], m["read_only"]) for m in fields["mounts"]),
        "wrapper": fields["wrapper"] or "",
    }
