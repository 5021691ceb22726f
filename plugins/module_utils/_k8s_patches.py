# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)
"""Pure builders of the hardening of OpenShell v0.0.26 Sandbox resources (agents.x-k8s.io/v1alpha1, namespace
`openshell`; the gateway writes the pod template, crates/openshell-server/src/sandbox/mod.rs @v0.0.26 L997-1146).

What the sandbox runs, and where each fix enters (docs/layers.md):
- the container command is the supervisor (/opt/openshell/bin/openshell-sandbox, PID 1, root); its positional
  arguments (the container `args`) are the entrypoint it runs as the agent (openshell-sandbox main.rs @v0.0.26 L24-29,
  L197-205; empty args fall back to OPENSHELL_SANDBOX_COMMAND, which the gateway sets to `sleep infinity`);
- every `openshell sandbox exec`/`create -- CMD`/`connect` session is `/bin/bash -lc CMD` (or `bash -i`) spawned by
  the supervisor with a cleared environment (ssh.rs @v0.0.26 L798-833, L835-1040), so bash reads /etc/profile
  (/etc/profile.d/*.sh) or /etc/bash.bashrc first.
The launcher therefore enters in both places: the entrypoint (args) and, through a profile hook, every session - the
hook re-executes the session under the launcher before the session's own command runs, and fails closed.

harden() starts from the pod template as it was before any hardening (kept in an annotation the first time) and applies
the enabled fixes, so applying twice yields the same object and restore() gives the original back exactly. The result
must pass the API server: the unit tests validate every builder against the v0.0.26 CRD and Kubernetes' schemas.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import shlex

ORIGINAL = "agentsec.nemoclaw/hardening-original"
HASH = "agentsec.nemoclaw/hardening"
GROUP_VERSION, KIND = "agents.x-k8s.io/v1alpha1", "Sandbox"
MOUNT_DIR = "/usr/local/lib/agentsec"  # under /usr: inside upstream's Landlock baseline (lib.rs @v0.0.26 L1141-1149)
LAUNCHER = f"{MOUNT_DIR}/seccomp-launch"
FILTER = f"{MOUNT_DIR}/agent.bpf"
PROFILE_HOOK = "/etc/profile.d/00-agentsec.sh"
BASHRC_HOOK = "/etc/bash.bashrc"
CONFIGMAP = "agentsec-hardening"
EMPTY_DIRS = {"/tmp": "agentsec-tmp", "/run": "agentsec-run", "/var/log": "agentsec-var-log", "/var/tmp": "agentsec-var-tmp"}
TLS_DIR, TLS_VOLUME = "/etc/openshell-tls", "agentsec-openshell-tls"
NETGUARD = "agentsec-netguard"
# The pod network namespace must not forward what the agent namespace sends past the proxy veth (docs/layers.md L3):
# sysctls are per network namespace, /proc/sys is writable only for a privileged container.
NETGUARD_SCRIPT = ("set -e; echo 0 > /proc/sys/net/ipv4/ip_forward; "
                   "if [ -e /proc/sys/net/ipv6/conf/all/forwarding ]; then echo 0 > /proc/sys/net/ipv6/conf/all/forwarding; fi; "
                   "echo forwarding off")


class PatchError(ValueError):
    """The input is not a Sandbox this builder understands; the message says what is wrong."""


def agent_container(pod_spec, name="agent"):
    containers = pod_spec.get("containers") or []
    if not containers:
        raise PatchError("Sandbox spec.podTemplate.spec.containers is empty")
    for container in containers:
        if container.get("name") == name:
            return container
    raise PatchError(f"Sandbox pod template has no container named {name!r}")


def check_sandbox(cr):
    if not isinstance(cr, dict) or cr.get("apiVersion") != GROUP_VERSION or cr.get("kind") != KIND:
        raise PatchError(f"not a {KIND} ({GROUP_VERSION}): apiVersion={cr.get('apiVersion') if isinstance(cr, dict) else None!r}")
    template = (cr.get("spec") or {}).get("podTemplate")
    if not isinstance(template, dict) or not isinstance(template.get("spec"), dict):
        raise PatchError(f"Sandbox {cr.get('metadata', {}).get('name')!r}: spec.podTemplate.spec is missing")


def original_template(cr):
    saved = ((cr.get("metadata") or {}).get("annotations") or {}).get(ORIGINAL)
    return json.loads(saved) if saved else copy.deepcopy(cr["spec"]["podTemplate"])


def entry_argv(container, default="sleep infinity"):
    """What the supervisor will run as the agent's entrypoint (its positional args, else OPENSHELL_SANDBOX_COMMAND)."""
    if container.get("args"):
        return list(container["args"])
    env = {e.get("name"): e.get("value") for e in container.get("env") or []}
    return shlex.split(env.get("OPENSHELL_SANDBOX_COMMAND") or default)


def launcher_flags(opts):
    """The launcher's arguments for the enabled layers; empty when neither L1 nor L2 asks for the launcher."""
    if not (opts.get("l1") or opts.get("l2")):
        return []
    flags = ["--quiet"]  # the prctl fallback note would precede every session's output
    if opts.get("l2"):
        flags += ["--filter", FILTER]
    if opts.get("l1"):
        # required, not best effort: on a kernel without Landlock the session ends (exit 5) instead of running with
        # no filesystem rules (OpenShell's best_effort default, landlock.rs @v0.0.111 L150-300); preflight refuses such
        # a host before any change (preflight_min_landlock_abi). tests/integration/test_attack_no_landlock.py
        flags.append("--landlock-required")
        for path in opts.get("landlock_ro") or []:
            flags += ["--landlock-ro", path]
        for path in opts.get("landlock_rw") or []:
            flags += ["--landlock-rw", path]
    return flags


def profile_hook(flags):
    """/etc/profile.d hook: a login session re-executes itself under the launcher, or ends (fails closed)."""
    launch = " ".join(shlex.quote(a) for a in [LAUNCHER, *flags, "--"])
    return ("# agentsec.nemoclaw (docs/layers.md): OpenShell runs every session as `bash -lc CMD`; re-enter it under the\n"
            "# hardening launcher before CMD runs. If the launcher cannot run, the session ends instead of running unconfined.\n"
            'if [ -n "${BASH_VERSION-}" ] && [ -z "${AGENTSEC_CONFINED-}" ]; then\n'
            "  export AGENTSEC_CONFINED=1\n"
            '  if [ -n "${BASH_EXECUTION_STRING-}" ]; then\n'
            f'    exec {launch} /bin/bash -c "$BASH_EXECUTION_STRING"\n'
            "  fi\n"
            f"  exec {launch} /bin/bash -l\n"
            "  exit 126\n"
            "fi\n")


def bashrc_hook(flags):
    """/etc/bash.bashrc (Debian's bash reads it first in interactive non-login shells: `openshell sandbox connect`)."""
    launch = " ".join(shlex.quote(a) for a in [LAUNCHER, *flags, "--"])
    return ("# agentsec.nemoclaw: interactive sessions (`bash -i`) re-enter themselves under the hardening launcher.\n"
            'if [ -z "${AGENTSEC_CONFINED-}" ]; then\n'
            "  export AGENTSEC_CONFINED=1\n"
            f"  exec {launch} /bin/bash -i\n"
            "  exit 126\n"
            "fi\n")


def _mount(container, volumes, name, source, path, read_only=False, sub_path=None):
    if name not in {v["name"] for v in volumes}:
        volumes.append({"name": name, **source})
    mount = {"name": name, "mountPath": path}
    if sub_path:
        mount["subPath"] = sub_path
    if read_only:
        mount["readOnly"] = True
    container.setdefault("volumeMounts", []).append(mount)


def harden(sandbox, opts):
    """A Sandbox CR -> the same CR with its pod template hardened. opts: l1, l2, l3, l5, l6 (bools), container,
    configmap, landlock_ro, landlock_rw, inference_address, resources (a limits mapping for the agent container,
    e.g. {"memory": "2Gi", "cpu": "2"}; empty sets none). Server-owned fields are dropped (a replace sends
    metadata.resourceVersion back for optimistic concurrency)."""
    check_sandbox(sandbox)
    cr = _clean(sandbox)
    template = original_template(sandbox)
    original = copy.deepcopy(template)
    pod = template["spec"]
    container = agent_container(pod, opts.get("container", "agent"))
    volumes = pod.setdefault("volumes", [])
    taken = {m.get("mountPath") for c in pod.get("containers", []) for m in c.get("volumeMounts") or []}
    flags = launcher_flags(opts)
    if opts.get("l1"):
        container.setdefault("securityContext", {})["readOnlyRootFilesystem"] = True
        for path, name in EMPTY_DIRS.items():
            if path not in taken:
                _mount(container, volumes, name, {"emptyDir": {}}, path)
        if opts.get("l5") and TLS_DIR not in taken:
            # a read-only root makes the supervisor's write_ca_files() fail, which disables TLS termination
            # (lib.rs @v0.0.26 L312-349); the client-TLS secret stays mounted below it at /etc/openshell-tls/client
            _mount(container, volumes, TLS_VOLUME, {"emptyDir": {}}, TLS_DIR)
    if flags:
        cm = {"configMap": {"name": opts.get("configmap", CONFIGMAP), "defaultMode": 0o555}}
        _mount(container, volumes, "agentsec-hardening", cm, MOUNT_DIR, read_only=True)
        _mount(container, volumes, "agentsec-hardening", cm, PROFILE_HOOK, read_only=True, sub_path="profile.sh")
        _mount(container, volumes, "agentsec-hardening", cm, BASHRC_HOOK, read_only=True, sub_path="bash.bashrc")
        container["args"] = [LAUNCHER, *flags, "--", *entry_argv(container)]
    if opts.get("l3"):
        init = [c for c in pod.get("initContainers") or [] if c.get("name") != NETGUARD]
        init.append({"name": NETGUARD, "image": container["image"], "command": ["sh", "-c", NETGUARD_SCRIPT],
                     "securityContext": {"privileged": True, "runAsUser": 0}})
        pod["initContainers"] = init
    if opts.get("resources"):
        # per-sandbox limits (issue 13 class 6): one sandbox cannot take the memory or CPU of the others on the same
        # Docker VM. Only limits are set; a pods limit has no pod field (kubelet's podPidsLimit is node-wide).
        current = container.get("resources") or {}
        container["resources"] = {**current, "limits": {**(current.get("limits") or {}), **opts["resources"]}}
    if opts.get("l6"):
        aliases = pod.setdefault("hostAliases", [])
        if not any("inference.local" in (a.get("hostnames") or []) for a in aliases):
            aliases.append({"ip": opts.get("inference_address", "10.200.0.1"), "hostnames": ["inference.local"]})
    if not volumes:
        pod.pop("volumes")
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:16]
    template.setdefault("metadata", {}).setdefault("annotations", {})[HASH] = digest
    cr["spec"]["podTemplate"] = template
    cr["metadata"].setdefault("annotations", {})[ORIGINAL] = json.dumps(original, sort_keys=True, separators=(",", ":"))
    return cr


def restore(sandbox):
    """The CR as it was before harden() (unchanged, server fields dropped, when it was never hardened)."""
    check_sandbox(sandbox)
    cr = _clean(sandbox)
    annotations = cr["metadata"].get("annotations") or {}
    if ORIGINAL in annotations:
        cr["spec"]["podTemplate"] = json.loads(annotations.pop(ORIGINAL))
        if not annotations:
            cr["metadata"].pop("annotations")
    return cr


def is_hardened(cr):
    return ORIGINAL in ((cr.get("metadata") or {}).get("annotations") or {})


def template_hash(cr):
    return (((cr.get("spec") or {}).get("podTemplate") or {}).get("metadata") or {}).get("annotations", {}).get(HASH)


def _clean(cr):
    out = copy.deepcopy(cr)
    out.pop("status", None)
    meta = out.setdefault("metadata", {})
    for field in ("uid", "managedFields", "creationTimestamp", "generation", "selfLink"):
        meta.pop(field, None)
    return out


def spec_changes(before, after):
    """Human summary of what harden()/restore() changed in the pod template (for the report and --diff)."""
    b, a = before["spec"]["podTemplate"], after["spec"]["podTemplate"]
    out = []
    for key in sorted(set(b.get("spec", {})) | set(a.get("spec", {}))):
        if b.get("spec", {}).get(key) != a.get("spec", {}).get(key):
            out.append(f"spec.podTemplate.spec.{key}")
    if b.get("metadata") != a.get("metadata"):
        out.append("spec.podTemplate.metadata")
    return out


def hardening_configmap(namespace, filter_bytes, launcher_source, flags, name=CONFIGMAP):
    """ConfigMap with the launcher (started as `python3 -IS`: isolated, no site), the filter and the session hooks."""
    lines = launcher_source.splitlines(keepends=True)
    if lines and lines[0].startswith("#!"):
        lines = lines[1:]
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/managed-by": "agentsec.nemoclaw"}},
        "binaryData": {"agent.bpf": base64.b64encode(filter_bytes).decode("ascii")},
        "data": {"seccomp-launch": "#!/usr/bin/python3 -IS\n" + "".join(lines), "profile.sh": profile_hook(flags),
                 "bash.bashrc": bashrc_hook(flags)},
    }


def sandbox_configmap(sandbox):
    """The ConfigMap of one sandbox's hardening: its session hooks carry its own Landlock ruleset."""
    return f"{CONFIGMAP}-{sandbox}"


def uses_configmap(cr, name):
    """Whether a Sandbox's pod template mounts ConfigMap `name`."""
    volumes = ((((cr or {}).get("spec") or {}).get("podTemplate") or {}).get("spec") or {}).get("volumes") or []
    return any((v.get("configMap") or {}).get("name") == name for v in volumes)


def coredns_custom(address, host="inference.local", key="agentsec-inference-local.server"):
    """k3s imports /etc/coredns/custom/*.server from ConfigMap kube-system/coredns-custom (k3s manifests/coredns.yaml):
    the paper's L6 fix, which resolves the name in the pod network namespace."""
    corefile = f"{host}:53 {{\n    hosts {{\n        {address} {host}\n        fallthrough\n    }}\n}}\n"
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "coredns-custom", "namespace": "kube-system"},
            "data": {key: corefile}}
