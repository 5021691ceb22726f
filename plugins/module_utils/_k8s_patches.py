# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)
"""Pure builders for the hardening role's kubernetes backend (OpenShell v0.0.26: k3s in Docker, Sandbox CRs in
namespace `openshell`, pod template written by the gateway, supervisor as PID 1).

- harden_sandbox(): the Sandbox CR with its pod template hardened - readOnlyRootFilesystem plus emptyDir /tmp, /run
  (the supervisor's /run/netns; paper 6.4) and /var/log, the CA mounted by subPath from the TLS secret when missing,
  and the agent entry wrapped by the seccomp launcher from a ConfigMap. OpenShell's supervisor runs the container
  `args` as the agent (then OPENSHELL_SANDBOX_COMMAND, then /bin/bash), so wrapping means prefixing the args.
  Everything it changes is saved first in an annotation; applying it again yields the same object.
- restore_sandbox(): the CR as it was before hardening (from that annotation).
- seccomp_configmap(), coredns_custom_configmap(): manifests for the filter/launcher and for inference.local.
- validate_sandbox(): structural check against the Sandbox CRD shape and the Kubernetes core schemas (the
  `kubernetes` client's models).
"""

from __future__ import annotations

import base64
import copy
import json
import shlex

ANNOTATION = "agentsec.nemoclaw/hardening-original"
GROUP_VERSION, KIND = "agents.x-k8s.io/v1alpha1", "Sandbox"
CA_PATH = "/etc/openshell-tls/openshell-ca.pem"
MOUNT_DIR = "/opt/agentsec"
EMPTY_DIRS = {"/tmp": "agentsec-tmp", "/run": "agentsec-run", "/var/log": "agentsec-var-log"}


class PatchError(ValueError):
    """The input is not a Sandbox this builder understands; the message says what is wrong."""


def _agent(pod_spec, name):
    containers = pod_spec.get("containers") or []
    if not containers:
        raise PatchError("Sandbox spec.podTemplate.spec.containers is empty")
    for container in containers:
        if container.get("name") == name:
            return container
    raise PatchError(f"Sandbox pod template has no container named {name!r}")


def _original(cr, container):
    saved = (cr.get("metadata", {}).get("annotations") or {}).get(ANNOTATION)
    if saved:
        return json.loads(saved)
    pod = cr["spec"]["podTemplate"]["spec"]
    return {
        "readOnlyRootFilesystem": (container.get("securityContext") or {}).get("readOnlyRootFilesystem"),
        "args": container.get("args"),
        "volumeMounts": container.get("volumeMounts") or [],
        "volumes": pod.get("volumes") or [],
    }


def _restore_fields(cr, container, original):
    pod = cr["spec"]["podTemplate"]["spec"]
    ctx = container.setdefault("securityContext", {})
    if original["readOnlyRootFilesystem"] is None:
        ctx.pop("readOnlyRootFilesystem", None)
    else:
        ctx["readOnlyRootFilesystem"] = original["readOnlyRootFilesystem"]
    if not ctx:
        container.pop("securityContext")
    for key, value in (("args", original["args"]), ("volumeMounts", original["volumeMounts"] or None)):
        if value is None:
            container.pop(key, None)
        else:
            container[key] = copy.deepcopy(value)
    if original["volumes"]:
        pod["volumes"] = copy.deepcopy(original["volumes"])
    else:
        pod.pop("volumes", None)


def harden_sandbox(sandbox, opts):
    """Return a hardened copy of a Sandbox CR. opts: l1, l2, l5 (bools), container, configmap, ca_secret, ca_key,
    landlock_ro, landlock_rw, default_command (used when the container has no args)."""
    validate_sandbox(sandbox)
    cr = copy.deepcopy(sandbox)
    pod = cr["spec"]["podTemplate"]["spec"]
    container = _agent(pod, opts.get("container", "agent"))
    original = _original(cr, container)
    _restore_fields(cr, container, original)  # start from the original, so applying twice gives the same result
    mounts = container.setdefault("volumeMounts", [])
    volumes = pod.setdefault("volumes", [])
    taken = {m.get("mountPath") for m in original["volumeMounts"]}
    if opts.get("l1"):
        container.setdefault("securityContext", {})["readOnlyRootFilesystem"] = True
        for path, name in EMPTY_DIRS.items():
            if path not in taken:
                volumes.append({"name": name, "emptyDir": {}})
                mounts.append({"name": name, "mountPath": path})
    if opts.get("l5") and CA_PATH not in taken:
        volumes.append({"name": "agentsec-openshell-ca",
                        "secret": {"secretName": opts["ca_secret"], "items": [{"key": opts.get("ca_key", "ca.crt"), "path": "openshell-ca.pem"}]}})
        mounts.append({"name": "agentsec-openshell-ca", "mountPath": CA_PATH, "subPath": "openshell-ca.pem", "readOnly": True})
    if opts.get("l2") or opts.get("l1"):
        volumes.append({"name": "agentsec-seccomp", "configMap": {"name": opts["configmap"], "defaultMode": 0o555}})
        mounts.append({"name": "agentsec-seccomp", "mountPath": MOUNT_DIR, "readOnly": True})
        wrapper = [f"{MOUNT_DIR}/seccomp-launch"]
        if opts.get("l2"):
            wrapper += ["--filter", f"{MOUNT_DIR}/agent.bpf"]
        if opts.get("l1"):
            for path in opts.get("landlock_ro", []):
                wrapper += ["--landlock-ro", path]
            for path in opts.get("landlock_rw", []):
                wrapper += ["--landlock-rw", path]
        agent_argv = original["args"] or shlex.split(opts.get("default_command") or "sleep infinity")
        container["args"] = [*wrapper, "--", *agent_argv]
    if not mounts:
        container.pop("volumeMounts")
    if not volumes:
        pod.pop("volumes")
    cr.setdefault("metadata", {}).setdefault("annotations", {})[ANNOTATION] = json.dumps(original, sort_keys=True)
    validate_sandbox(cr)
    return cr


def restore_sandbox(sandbox, opts=None):
    """The Sandbox CR as it was before harden_sandbox (unchanged when it was never hardened)."""
    validate_sandbox(sandbox)
    cr = copy.deepcopy(sandbox)
    annotations = cr.get("metadata", {}).get("annotations") or {}
    if ANNOTATION not in annotations:
        return cr
    container = _agent(cr["spec"]["podTemplate"]["spec"], (opts or {}).get("container", "agent"))
    _restore_fields(cr, container, json.loads(annotations.pop(ANNOTATION)))
    if not annotations:
        cr["metadata"].pop("annotations")
    return cr


def seccomp_configmap(name, namespace, filter_bytes, launcher_source):
    """ConfigMap with the compiled filter (binaryData) and the launcher (data), mounted read-only by the pod."""
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/managed-by": "agentsec.nemoclaw"}},
        "binaryData": {"agent.bpf": base64.b64encode(filter_bytes).decode("ascii")},
        "data": {"seccomp-launch": launcher_source},
    }


def coredns_custom_configmap(address, host="inference.local", key="agentsec-inference-local.server"):
    """k3s imports /etc/coredns/custom/*.server from ConfigMap kube-system/coredns-custom: a server block for the
    inference host, so it resolves inside sandboxes (the paper mapped it to Docker Desktop's host gateway)."""
    corefile = f"{host}:53 {{\n    hosts {{\n        {address} {host}\n        fallthrough\n    }}\n}}\n"
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "coredns-custom", "namespace": "kube-system"},
            "data": {key: corefile}}


def validate_sandbox(cr):
    """Raise PatchError unless `cr` has the Sandbox CRD's shape and its pod spec uses Kubernetes core field names."""
    if not isinstance(cr, dict) or cr.get("apiVersion") != GROUP_VERSION or cr.get("kind") != KIND:
        raise PatchError(f"not a {KIND} ({GROUP_VERSION}): apiVersion={cr.get('apiVersion') if isinstance(cr, dict) else None!r}")
    spec = cr.get("spec") or {}
    replicas = spec.get("replicas")
    if replicas is not None and replicas not in (0, 1):
        raise PatchError(f"spec.replicas must be 0 or 1, not {replicas!r}")
    template = spec.get("podTemplate")
    if not isinstance(template, dict) or not isinstance(template.get("spec"), dict):
        raise PatchError("spec.podTemplate.spec is required")
    check_fields(template["spec"], "V1PodSpec", "spec.podTemplate.spec")
    for required in ("containers",):
        if not template["spec"].get(required):
            raise PatchError(f"spec.podTemplate.spec.{required} is required")


def check_fields(obj, model, where):
    """Walk `obj` against the kubernetes client's model `model` (field names and nested models)."""
    from kubernetes import client  # noqa: PLC0415 - optional dependency, only needed for validation

    cls = getattr(client, model, None)
    if cls is None:
        raise PatchError(f"{where}: unknown model {model}")
    by_json = {json_name: cls.openapi_types[attr] for attr, json_name in cls.attribute_map.items()}
    for key, value in obj.items():
        if key not in by_json:
            raise PatchError(f"{where}: unknown field {key!r} for {model}")
        kind = by_json[key]
        if kind.lower().startswith("list[v1") and isinstance(value, list):  # "list[V1X]" or "List[V1X]"
            for i, item in enumerate(value):
                check_fields(item, kind[5:-1], f"{where}.{key}[{i}]")
        elif kind.startswith("V1") and isinstance(value, dict):
            check_fields(value, kind, f"{where}.{key}")
