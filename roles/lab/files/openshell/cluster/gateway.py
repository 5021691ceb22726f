#!/usr/bin/python3
"""The OpenShell v0.0.26 gateway (openshell-server), as far as the CLI and the supervisors see it.

Runs inside the cluster container. The host CLI stand-in calls it as `docker exec -i openshell-cluster-<gw>
/opt/standin/gateway <verb>` with a JSON request on stdin and prints a JSON reply (in place of the real gRPC API on
127.0.0.1:8080 -> 30051; a stand-in deviation). Supervisors fetch their policy and inference bundle over HTTP from
k3s_standin.py (in place of gRPC with mTLS). State (the gateway's SQLite /var/openshell/openshell.db upstream) is
one JSON file under flock in the cluster volume, so `gateway destroy` (volume removed) forgets everything, as upstream.

What it writes to Kubernetes is what crates/openshell-server/src/sandbox/mod.rs @v0.0.26 writes (cited per line).
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sys
import time
import uuid

sys.path.insert(0, "/opt/standin")
import store as S  # noqa: E402

DB = os.environ.get("STANDIN_GATEWAY_DB", "/var/lib/rancher/k3s/server/openshell-gateway.json")
NAMESPACE = "openshell"  # deploy/helm/openshell/values.yaml:72 server.sandboxNamespace
GRPC_ENDPOINT = "http://openshell.openshell.svc.cluster.local:8080"  # values.yaml:80 (https there; plain HTTP here)
VERSION = os.environ.get("OPENSHELL_STANDIN_VERSION", "0.0.26")
DEFAULT_IMAGE = os.environ.get("OPENSHELL_STANDIN_SANDBOX_IMAGE", "agentsec/openshell-sandbox-base:0.0.26")
COMMUNITY = "ghcr.io/nvidia/openshell-community/sandboxes/"  # the community registry prefix of `--from <name>`
# What OpenShell v0.0.26 itself does, gap by gap (docs/lab.md has each gap's upstream evidence): a sandbox created
# without an explicit gap list - as NemoClaw or a user creates it - behaves like a v0.0.26 sandbox.
V0026_GAPS = ("landlock_unenforced", "netlink_open", "clone_newuser", "clone3_open", "missing_blocks", "no_sock_packet",
              "inference_dns", "writable_root", "direct_egress")
KNOWN_GAPS = {"landlock_unenforced", "netlink_open", "clone_newuser", "clone3_open", "missing_blocks", "no_sock_packet",
              "ca_missing", "inference_dns", "writable_root", "direct_egress", "port_any", "host_header", "tls_strict_detect",
              "inference_models_any"}


class GatewayError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


@contextlib.contextmanager
def db(write=True):
    os.makedirs(os.path.dirname(DB), exist_ok=True)
    with open(DB + ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with open(DB, encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError):
            data = {"sandboxes": {}, "providers": {}, "routes": {}}
        yield data
        if write:
            tmp = f"{DB}.{os.getpid()}.tmp"
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(data, fh)
            os.chmod(tmp, 0o600)
            os.replace(tmp, DB)


def now_ms():
    return int(time.time() * 1000)


def host_gateway_ip():
    return os.environ.get("OPENSHELL_STANDIN_HOST_GATEWAY_IP", "")


# ---- the Sandbox resource, as sandbox_to_k8s_spec() builds it ---------------------------------------------------
def sandbox_cr(record):
    """crates/openshell-server/src/sandbox/mod.rs @v0.0.26: create() L203-273 (metadata, labels L643-651),
    sandbox_to_k8s_spec() L889-995, sandbox_template_to_k8s() L997-1146, apply_supervisor_sideload() L716-787,
    apply_workspace_persistence() L789-870, default_workspace_volume_claim_templates() L872-887, env L1185-1272."""
    gaps = set(record.get("gaps") or [])
    env = [{"name": k, "value": v} for k, v in sorted((record.get("environment") or {}).items())]
    required = {"OPENSHELL_SANDBOX_ID": record["id"], "OPENSHELL_SANDBOX": record["name"],  # apply_required_env L1222
                "OPENSHELL_ENDPOINT": GRPC_ENDPOINT, "OPENSHELL_SANDBOX_COMMAND": "sleep infinity",
                "OPENSHELL_SSH_LISTEN_ADDR": "0.0.0.0:2222", "OPENSHELL_SSH_HANDSHAKE_SECRET": record["handshake"],
                "OPENSHELL_SSH_HANDSHAKE_SKEW_SECS": "300", "OPENSHELL_TLS_CA": "/etc/openshell-tls/client/ca.crt",
                "OPENSHELL_TLS_CERT": "/etc/openshell-tls/client/tls.crt", "OPENSHELL_TLS_KEY": "/etc/openshell-tls/client/tls.key"}
    for name, value in required.items():
        env = [e for e in env if e["name"] != name] + [{"name": name, "value": value}]
    if gaps:  # stand-in only: the lab's gap profile reaches the supervisor stand-in through its environment
        env.append({"name": "OPENSHELL_STANDIN_GAPS", "value": ",".join(sorted(gaps))})
    image = record["image"]
    agent = {
        "name": "agent", "image": image, "env": env,                                        # L1036-1066
        "securityContext": {"capabilities": {"add": ["SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE", "SYSLOG"]},  # L1068-1082
                            "runAsUser": 0},                                                # sideload L755-761
        "volumeMounts": [{"name": "openshell-client-tls", "mountPath": "/etc/openshell-tls/client", "readOnly": True},
                         {"name": "openshell-supervisor-bin", "mountPath": "/opt/openshell/bin", "readOnly": True},
                         {"name": "workspace", "mountPath": "/sandbox"}],                   # workspace L814-819
        "command": ["/opt/openshell/bin/openshell-sandbox"],                                # sideload L745-749
    }
    spec = {"containers": [agent],
            "volumes": [{"name": "openshell-client-tls",                                    # L1104-1114, mode 0400
                         "secret": {"secretName": "openshell-client-tls", "defaultMode": 256}},
                        {"name": "openshell-supervisor-bin",                                # supervisor_volume L683-692
                         "hostPath": {"path": "/opt/openshell/bin", "type": "DirectoryOrCreate"}}],
            "initContainers": [{                                                            # L840-866
                "name": "workspace-init", "image": image, "command": ["sh", "-c", (
                    "if [ ! -f /workspace-pvc/.workspace-initialized ]; then if [ -d /sandbox ]; then "
                    "tar -C /sandbox -cf - . | tar -C /workspace-pvc -xpf -; fi && "
                    "touch /workspace-pvc/.workspace-initialized; fi")],
                "securityContext": {"runAsUser": 0},
                "volumeMounts": [{"name": "workspace", "mountPath": "/workspace-pvc"}]}]}
    aliases = []
    if host_gateway_ip():                                                                   # L1116-1125
        aliases.append({"ip": host_gateway_ip(), "hostnames": ["host.docker.internal", "host.openshell.internal"]})
    if "inference_dns" not in gaps:  # stand-in only: a sandbox without this gap resolves inference.local locally
        aliases.append({"ip": "10.200.0.1", "hostnames": ["inference.local"]})
    if aliases:
        spec["hostAliases"] = aliases
    if "writable_root" not in gaps:  # stand-in only: a sandbox without this gap has a read-only root
        agent["securityContext"]["readOnlyRootFilesystem"] = True
        for i, path in enumerate(("/tmp", "/run", "/var/log", "/var/tmp", "/etc/openshell-tls")):
            spec["volumes"].append({"name": f"standin-rw-{i}", "emptyDir": {}})
            agent["volumeMounts"].append({"name": f"standin-rw-{i}", "mountPath": path})
    return {
        "apiVersion": "agents.x-k8s.io/v1alpha1", "kind": "Sandbox",
        "metadata": {"name": record["name"], "namespace": NAMESPACE,
                     "labels": {"openshell.ai/sandbox-id": record["id"], "openshell.ai/managed-by": "openshell"}},
        "spec": {
            "podTemplate": {"spec": spec},
            # written by the gateway, not in the v1alpha1 schema: pruned by the API server (openshell.md section 5)
            "logLevel": "info",
            "volumeClaimTemplates": [{"metadata": {"name": "workspace"},                    # L872-887
                                      "spec": {"accessModes": ["ReadWriteOnce"],
                                               "resources": {"requests": {"storage": "2Gi"}}}}],
        },
    }


def derive_phase(cr, deleting=False):
    """mod.rs @v0.0.26 derive_phase() L1385-1410 and is_terminal_failure_condition() L1412-1428."""
    if deleting:
        return "Deleting"
    if cr is None:
        return "Unknown"
    status = cr.get("status")
    if status is None:
        return "Unknown"
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Ready":
            value = str(cond.get("status", "")).lower()
            if value == "true":
                return "Ready"
            if value == "false" and str(cond.get("reason", "")).lower() not in ("reconcilererror", "dependenciesnotready"):
                return "Error"
            return "Provisioning"
    return "Provisioning"


def _public(record, cr):
    return {"id": record["id"], "name": record["name"], "namespace": NAMESPACE, "created_at_ms": record["created_at_ms"],
            "phase": derive_phase(cr), "image": record["image"], "providers": record.get("providers", []),
            "policy_version": (record.get("policies") or [{}])[-1].get("version", 0)}


# ---- verbs ------------------------------------------------------------------------------------------------
def v_health(_req):
    return {"status": "SERVING", "version": VERSION}


def v_sandbox_create(req):
    name = req.get("name") or f"sandbox-{uuid.uuid4().hex[:6]}"
    gaps = set(V0026_GAPS if req.get("gaps") is None else req["gaps"])
    if gaps - KNOWN_GAPS:
        raise GatewayError("InvalidArgument", f"unknown stand-in gaps: {sorted(gaps - KNOWN_GAPS)}")
    image = req.get("image") or DEFAULT_IMAGE
    if image.startswith(COMMUNITY) or "/" not in image:
        image = DEFAULT_IMAGE  # a community sandbox name: the stand-in has one base image
    store = S.Store()
    with db() as data:
        if name in data["sandboxes"]:
            raise GatewayError("AlreadyExists", f"sandbox '{name}' already exists")
        for provider in req.get("providers") or []:
            if provider not in data["providers"]:
                raise GatewayError("NotFound", f"provider '{provider}' not found")
        record = {"id": str(uuid.uuid4()), "name": name, "image": image, "created_at_ms": now_ms(),
                  "environment": req.get("environment") or {}, "providers": req.get("providers") or [],
                  "gaps": sorted(gaps), "handshake": uuid.uuid4().hex, "policies": []}
        if req.get("policy"):
            record["policies"].append(_revision(1, req["policy"]))
        try:
            store.create(sandbox_cr(record), strict=False)  # kube-rs PostParams::default(): no strict validation
        except S.ApiError as exc:
            raise GatewayError("Internal", f"failed to create sandbox in Kubernetes: {exc.message}") from None
        data["sandboxes"][name] = record
    return _public(record, None)


def _revision(version, text, status="Loaded"):
    """A policy revision. Version 1, the creation policy, is stored as loaded (grpc/policy.rs @v0.0.26 L120-140); a
    revision from `policy set` starts pending (persistence/sqlite.rs @v0.0.26 L207-208) until the sandbox's
    supervisor reports it loaded or failed (supervisor_report)."""
    return {"version": version, "hash": hashlib.sha256(text.encode()).hexdigest(), "yaml": text,
            "created_at_ms": now_ms(), "status": status}


def v_sandbox_get(req):
    with db(write=False) as data:
        record = data["sandboxes"].get(req["name"])
    if record is None:
        raise GatewayError("NotFound", "sandbox not found")
    out = _public(record, S.Store().find("Sandbox", NAMESPACE, record["name"]))
    out["policy"] = (record.get("policies") or [None])[-1]
    return out


def v_sandbox_list(_req):
    store = S.Store()
    crs = {o["metadata"]["name"]: o for o in store.list("Sandbox", NAMESPACE)}
    with db(write=False) as data:
        records = sorted(data["sandboxes"].values(), key=lambda r: r["created_at_ms"])
    return {"sandboxes": [_public(r, crs.get(r["name"])) for r in records]}


def v_sandbox_delete(req):
    store = S.Store()
    out = []
    with db() as data:
        names = list(data["sandboxes"]) if req.get("all") else req.get("names", [])
        for name in names:
            if data["sandboxes"].pop(name, None) is None:
                out.append({"name": name, "deleted": False})
                continue
            with contextlib.suppress(S.ApiError):
                store.delete("Sandbox", NAMESPACE, name)
            out.append({"name": name, "deleted": True})
    return {"results": out}


def v_sandbox_exec_target(req):
    """What the gateway checks before an exec (grpc/sandbox.rs @v0.0.26 L566-575: sandbox exists and is Ready)."""
    got = v_sandbox_get(req)
    if got["phase"] != "Ready":
        raise GatewayError("FailedPrecondition", f"sandbox '{req['name']}' is not ready (phase: {got['phase']}); "
                           "wait for it to reach Ready state")
    pod = S.Store().find("Pod", NAMESPACE, req["name"])
    uid = pod["metadata"]["uid"] if pod else ""
    # the kubelet stand-in names a restarted container by its attempt (k3s_standin.py cname()); stand-in only: upstream
    # reaches the supervisor's SSH server on the pod, whichever container instance runs it
    statuses = ((pod or {}).get("status") or {}).get("containerStatuses") or []
    attempt = next((s.get("restartCount", 0) for s in statuses if s.get("name") == "agent"), 0)
    return {"id": got["id"], "container": f"k8s_agent_{req['name']}_{NAMESPACE}_{uid}_{attempt}"}


def v_provider_create(req):
    with db() as data:
        if req["name"] in data["providers"]:
            raise GatewayError("AlreadyExists", f"provider '{req['name']}' already exists")
        data["providers"][req["name"]] = {"id": str(uuid.uuid4()), "name": req["name"], "type": req["type"],
                                          "credentials": req.get("credentials") or {}, "config": req.get("config") or {}}
    return {"name": req["name"]}


def v_provider_update(req):
    with db() as data:
        provider = data["providers"].get(req["name"])
        if provider is None:
            raise GatewayError("NotFound", "provider not found")
        provider["credentials"].update(req.get("credentials") or {})
        provider["config"].update(req.get("config") or {})
    return {"name": req["name"]}


def _provider_view(p):
    return {"id": p["id"], "name": p["name"], "type": p["type"], "credential_keys": sorted(p["credentials"]),
            "config_keys": sorted(p["config"]), "config": p["config"]}


def v_provider_list(_req):
    with db(write=False) as data:
        return {"providers": [_provider_view(p) for p in data["providers"].values()]}


def v_provider_get(req):
    with db(write=False) as data:
        p = data["providers"].get(req["name"])
    if p is None:
        raise GatewayError("NotFound", "provider not found")
    return _provider_view(p)


def v_provider_delete(req):
    with db() as data:
        return {"results": [{"name": n, "deleted": data["providers"].pop(n, None) is not None} for n in req["names"]]}


def v_inference_set(req):
    key = "sandbox-system" if req.get("system") else "inference.local"
    with db() as data:
        cur = data["routes"].get(key)
        if req.get("update") and cur is None:
            raise GatewayError("NotFound", f"inference route '{key}' not configured")
        provider = req.get("provider") or cur["provider"]
        if provider not in data["providers"]:
            raise GatewayError("NotFound", f"provider '{provider}' not found")
        route = {"provider": provider, "model": req.get("model") or cur["model"],
                 "timeout": req["timeout"] if req.get("timeout") is not None else (cur or {}).get("timeout", 0),
                 "version": (cur or {}).get("version", 0) + 1}
        data["routes"][key] = route
        return {"route": key, **route, "provider_type": data["providers"][provider]["type"],
                "provider_config": data["providers"][provider]["config"]}


def v_inference_get(_req):
    with db(write=False) as data:
        return {"routes": data["routes"]}


def static_change_error(baseline_text, new_text):
    """grpc/policy.rs @v0.0.26 L515-517 -> validation.rs L291-345 validate_static_fields_unchanged: against the
    sandbox's creation policy, filesystem paths may only be added (include_workdir fixed), landlock and process must be
    equal. None when the update is allowed."""
    import yaml  # noqa: PLC0415 - the cluster image has PyYAML

    base, new = (yaml.safe_load(t) or {} for t in (baseline_text, new_text))
    bfs, nfs = base.get("filesystem_policy"), new.get("filesystem_policy")
    if isinstance(bfs, dict) and isinstance(nfs, dict):
        if bool(bfs.get("include_workdir")) != bool(nfs.get("include_workdir")):
            return "filesystem include_workdir cannot be changed on a live sandbox"
        for key in ("read_only", "read_write"):
            gone = [p for p in bfs.get(key) or [] if p not in (nfs.get(key) or [])]
            if gone:
                return f"filesystem {key} path '{gone[0]}' cannot be removed on a live sandbox"
    elif isinstance(bfs, dict) and nfs is None:
        return "filesystem policy cannot be removed on a live sandbox"
    for key in ("landlock", "process"):
        if (base.get(key) or None) != (new.get(key) or None):
            return f"{key} policy cannot be changed on a live sandbox (applied at startup)"
    return None


def v_policy_set(req):
    with db() as data:
        record = data["sandboxes"].get(req["name"])
        if record is None:
            raise GatewayError("NotFound", "sandbox not found")
        revisions = record.setdefault("policies", [])
        problem = static_change_error(revisions[0]["yaml"], req["policy"]) if revisions else None
        if problem:
            raise GatewayError("InvalidArgument", problem)
        digest = hashlib.sha256(req["policy"].encode()).hexdigest()
        if revisions and revisions[-1]["hash"] == digest:
            return {"unchanged": True, **revisions[-1]}
        revisions.append(_revision(len(revisions) + 1, req["policy"], "Pending"))
        return {"unchanged": False, **revisions[-1]}


def supervisor_report(sandbox_id, version, loaded, error=""):
    """ReportPolicyStatus (grpc/policy.rs @v0.0.26 L675-735): the revision becomes loaded or failed (with the load
    error); a loaded one supersedes every older pending or loaded revision (sqlite.rs @v0.0.26 L331-341). False when
    the sandbox or the revision does not exist (NotFound upstream)."""
    with db() as data:
        record = next((r for r in data["sandboxes"].values() if r["id"] == sandbox_id), None)
        revisions = (record or {}).get("policies") or []
        rev = next((r for r in revisions if r["version"] == version), None)
        if rev is None:
            return False
        rev["status"] = "Loaded" if loaded else "Failed"
        rev["load_error"] = "" if loaded else str(error or "")
        if loaded:
            rev["loaded_at_ms"] = now_ms()
            for older in revisions:
                if older["version"] < version and older["status"] in ("Pending", "Loaded"):
                    older["status"] = "Superseded"
        return True


def canonical_policy(text):
    """The policy as `openshell policy get --full` prints it: openshell_policy::serialize_sandbox_policy (lib.rs
    @v0.0.26 L375-380), serde_yml of PolicyFile with the struct's field order (L27-50 and the *Def structs below it),
    empty fields skipped (skip_serializing_if), network_policies sorted by key (a BTreeMap). Block style with
    sequences at their key's indentation, as libyaml writes them (the exact spacing of serde_yml is unverified)."""
    import yaml  # noqa: PLC0415 - the cluster image has PyYAML

    doc = yaml.safe_load(text) or {}

    def keep(mapping, fields):
        return {k: mapping[k] for k in fields if mapping.get(k) not in (None, "", [], {}, 0) or (k == "include_workdir" and k in mapping)}

    out = {"version": doc.get("version", 1)}
    if isinstance(doc.get("filesystem_policy"), dict):
        fs = doc["filesystem_policy"]
        out["filesystem_policy"] = {"include_workdir": bool(fs.get("include_workdir", False)),
                                    **keep(fs, ("read_only", "read_write"))}
    if isinstance(doc.get("landlock"), dict) and keep(doc["landlock"], ("compatibility",)):
        out["landlock"] = keep(doc["landlock"], ("compatibility",))
    if isinstance(doc.get("process"), dict) and keep(doc["process"], ("run_as_user", "run_as_group")):
        out["process"] = keep(doc["process"], ("run_as_user", "run_as_group"))
    rules = {}
    for key in sorted(doc.get("network_policies") or {}):
        rule = doc["network_policies"][key] or {}
        endpoints = [keep(e, ("host", "port", "ports", "protocol", "tls", "enforcement", "access", "rules", "allowed_ips"))
                     for e in rule.get("endpoints") or []]
        rules[key] = {**keep(rule, ("name",)), **({"endpoints": endpoints} if endpoints else {}),
                      **keep(rule, ("binaries",))}
    if rules:
        out["network_policies"] = rules
    return yaml.safe_dump(out, sort_keys=False, default_flow_style=False)


def v_policy_get(req):
    with db(write=False) as data:
        record = data["sandboxes"].get(req["name"])
    if record is None:
        raise GatewayError("NotFound", "sandbox not found")
    revisions = record.get("policies") or []
    active = max([r["version"] for r in revisions if r["status"] == "Loaded"] or [0])
    if req.get("rev"):
        revisions = [r for r in revisions if r["version"] == req["rev"]]
    if not revisions:
        return {"policy": None}
    return {"policy": {**revisions[-1], "yaml": canonical_policy(revisions[-1]["yaml"]), "active_version": active}}


def supervisor_config(sandbox_id):
    """What GetSandboxPolicy + GetInferenceBundle give a supervisor (the bundle carries the API key; openshell.md
    claim 4). The key leaves the gateway only here, over the pod network, to an authenticated supervisor."""
    with db(write=False) as data:
        record = next((r for r in data["sandboxes"].values() if r["id"] == sandbox_id), None)
        if record is None:
            return None
        route = data["routes"].get("inference.local")
        bundle = None
        if route and route["provider"] in data["providers"]:
            provider = data["providers"][route["provider"]]
            key_name, default_url = {"openai": ("OPENAI_BASE_URL", "https://api.openai.com/v1"),
                                     "anthropic": ("ANTHROPIC_BASE_URL", "https://api.anthropic.com/v1"),
                                     "nvidia": ("NVIDIA_BASE_URL", "https://integrate.api.nvidia.com/v1")
                                     }.get(provider["type"], (None, None))  # openshell-core inference.rs @v0.0.26
            credential = next(iter(provider["credentials"].values()), "")
            bundle = {"base_url": provider["config"].get(key_name) or default_url, "api_key": credential,
                      "model": route["model"], "provider_type": provider["type"], "timeout": route.get("timeout") or 60,
                      "version": route["version"]}
        policy = (record.get("policies") or [None])[-1]
        return {"sandbox": record["name"], "policy": policy, "inference": bundle}


VERBS = {"health": v_health, "sandbox.create": v_sandbox_create, "sandbox.get": v_sandbox_get,
         "sandbox.list": v_sandbox_list, "sandbox.delete": v_sandbox_delete, "sandbox.exec_target": v_sandbox_exec_target,
         "provider.create": v_provider_create, "provider.update": v_provider_update, "provider.list": v_provider_list,
         "provider.get": v_provider_get, "provider.delete": v_provider_delete, "inference.set": v_inference_set,
         "inference.get": v_inference_get, "policy.set": v_policy_set, "policy.get": v_policy_get}


def main(argv):
    verb = argv[0] if argv else ""
    if verb not in VERBS:
        sys.stdout.write(json.dumps({"error": {"code": "Unimplemented", "message": f"unknown gateway verb {verb!r}"}}))
        return 1
    try:
        req = json.loads(sys.stdin.read() or "{}")
        sys.stdout.write(json.dumps({"ok": VERBS[verb](req)}))
        return 0
    except GatewayError as exc:
        sys.stdout.write(json.dumps({"error": {"code": exc.code, "message": exc.message}}))
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
