#!/usr/bin/python
# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: sandbox_harden
short_description: Harden (or restore) OpenShell v0.0.26 sandboxes through the Kubernetes API of their k3s gateway
version_added: 0.2.0
description:
  - Runs on the host of an OpenShell 0.0.26 gateway (a Mac Studio with Docker Desktop, or Linux) and reaches the k3s API
    the way the paper did, from that host - C(kubectl) inside the cluster container C(openshell-cluster-<gateway>)
    through C(docker exec) - so the host needs only the Docker CLI and Python's standard library.
  - For each Sandbox resource (C(agents.x-k8s.io/v1alpha1), namespace C(openshell)) it replaces the pod template with
    the hardened one built by the collection's pure builders (docs/layers.md), keeping the original in an annotation
    for an exact rollback, and then rolls the sandbox's pod, because the agent-sandbox controller v0.1.0 creates a pod
    only when none exists and never updates one (kubernetes-sigs/agent-sandbox controllers/sandbox_controller.go
    @v0.1.0 L364-383). A pod that still runs an older template (re-created or left behind) is rolled too.
  - Before any change it checks the cluster container, C(kubectl) in it, the Sandbox CRD version and the named
    sandboxes, and fails naming what is wrong. A sandbox whose hardened pod does not become Ready is rolled back and
    reported; the others are kept.
  - In check mode every replacement is sent as a server-side dry run, so the API server validates it, and nothing
    changes.
author: agentsec.nemoclaw contributors (@agentsec)
extends_documentation_fragment:
  - agentsec.nemoclaw.attributes
attributes:
  check_mode:
    support: full
    details: Server-side dry run of every replacement; reports what would change.
  diff_mode:
    support: full
    details: The pod template fields that change, per sandbox.
  idempotent:
    support: full
    details:
      - harden() starts from the pod template kept before the first hardening, so a second run replaces nothing.
options:
  state:
    description: V(present) hardens, V(absent) restores the sandboxes as they were before hardening.
    type: str
    choices: [present, absent]
    default: present
  cluster_container:
    description: The gateway's cluster container (C(openshell-cluster-<gateway>)).
    type: str
    required: true
  kubectl:
    description: The kubectl command inside the cluster container.
    type: list
    elements: str
    default: [kubectl, --kubeconfig, /etc/rancher/k3s/k3s.yaml]
  docker:
    description: The Docker CLI on the host.
    type: str
    default: docker
  environment:
    description: Environment of the Docker CLI (C(DOCKER_HOST) for Docker Desktop's socket).
    type: dict
    default: {}
  crd:
    description: The Sandbox CRD the target pins (C(name), C(group), C(version), C(resource), C(namespace)).
    type: dict
    default: {name: sandboxes.agents.x-k8s.io, group: agents.x-k8s.io, version: v1alpha1, resource: sandboxes.agents.x-k8s.io,
              namespace: openshell}
  sandboxes:
    description: Sandboxes to act on; empty means every Sandbox in the namespace.
    type: list
    elements: str
    default: []
  container:
    description: The agent container of the pod template.
    type: str
    default: agent
  l1:
    description: Read-only root filesystem with emptyDirs, and Landlock per session.
    type: bool
    default: true
  l2:
    description: The hardened seccomp filter per session and for the entrypoint.
    type: bool
    default: true
  l3:
    description: No forwarding in the pod network namespace (init container).
    type: bool
    default: true
  l5:
    description: A writable /etc/openshell-tls so the supervisor can write its CA under a read-only root.
    type: bool
    default: true
  l6:
    description: inference.local in the pod's hostAliases and in CoreDNS.
    type: bool
    default: true
  filter_path:
    description: The compiled filter on this host (from M(agentsec.nemoclaw.seccomp_filter)); needed when O(l2) is on.
    type: path
  launcher_path:
    description:
      - The launcher on this host (M(agentsec.nemoclaw.seccomp_filter)
        O(agentsec.nemoclaw.seccomp_filter#module:launcher_dest)); needed when O(l1) or O(l2) is on.
    type: path
  landlock_ro:
    description: Read-only paths of the launcher's Landlock ruleset when it does not come from the sandbox's policy.
    type: list
    elements: str
    default: []
  landlock_rw:
    description: Read-write paths of the launcher's Landlock ruleset when it does not come from the sandbox's policy.
    type: list
    elements: str
    default: []
  landlock_extra_ro:
    description: >-
      Read-only paths added to a ruleset that comes from the sandbox's policy (O(policy_command)), e.g.
      V(/sys/fs/cgroup) so Node.js sees its container memory limit.
    type: list
    elements: str
    default: []
  landlock_extra_rw:
    description: Read-write paths added to a ruleset that comes from the sandbox's policy, e.g. V(/var/tmp) (an emptyDir).
    type: list
    elements: str
    default: []
  policy_command:
    description:
      - >-
        The command that prints a sandbox's policy (the target contract's C(sandbox.policy), e.g.
        V([openshell, policy, get, "{sandbox}", --full]); C({sandbox}) is replaced). When set, each sandbox's Landlock
        ruleset is its policy's C(filesystem_policy) - C(read_only), C(read_write) and the working directory when
        C(include_workdir) (OpenShell v0.0.26 never applied it, #803) - plus O(landlock_extra_ro)/O(landlock_extra_rw).
        A sandbox without a policy revision gets O(landlock_ro)/O(landlock_rw). A policy that cannot be read fails
        the run before any change.
    type: list
    elements: str
    default: []
  workdir:
    description: The sandbox's working directory, read-write when its policy has C(include_workdir) (target C(sandbox.workdir)).
    type: str
    default: /sandbox
  inference_address:
    description: Address inference.local is given (the proxy intercepts the name; the address is only resolved).
    type: str
    default: 10.200.0.1
  resources:
    description:
      - >-
        Limits of the agent container (C(resources.limits) of the pod template, e.g. V({memory: 2Gi, cpu: "2"})), so
        one sandbox cannot take the memory or CPU of the other sandboxes on the same Docker VM. Empty sets none.
        Kubernetes has no per-pod pids limit field (the kubelet's C(podPidsLimit) is node-wide).
    type: dict
    default: {}
  ready_timeout:
    description: Seconds a rolled sandbox has to become Ready again.
    type: int
    default: 180
  check_only:
    description:
      - Only check what a change needs (the cluster container runs, C(kubectl) answers in it, the pinned Sandbox CRD is
        served, every named sandbox exists) and change nothing. The hardening role runs this before its L4 policy step,
        which comes before the pod template change, so a wrong cluster is refused before any change.
      - In check mode a cluster container that does not exist yet is reported in RV(pending) instead of failing.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Harden every sandbox of the nemoclaw gateway
  agentsec.nemoclaw.sandbox_harden:
    cluster_container: openshell-cluster-nemoclaw
    environment: {DOCKER_HOST: "unix://{{ ansible_facts['user_dir'] }}/.docker/run/docker.sock"}
    filter_path: /var/lib/agentsec-hardening/agent.bpf
    launcher_path: /var/lib/agentsec-hardening/seccomp-launch
    landlock_ro: [/usr, /lib, /etc, /proc, /dev/urandom]
    landlock_rw: [/sandbox, /tmp, /var/tmp, /dev/null]

- name: Check the cluster and the sandboxes, change nothing
  agentsec.nemoclaw.sandbox_harden:
    cluster_container: openshell-cluster-nemoclaw
    check_only: true

- name: Restore one sandbox, leave the others hardened
  agentsec.nemoclaw.sandbox_harden:
    cluster_container: openshell-cluster-nemoclaw
    state: absent
    sandboxes: [my-assistant]
"""

RETURN = r"""
sandboxes:
  description: Per sandbox what happened (C(action) V(hardened), V(restored), V(rolled), V(unchanged), or V(checked) with O(check_only); C(changes), the
    pod template fields that changed; C(ready); C(error) when the sandbox could not be hardened and was rolled back).
  returned: always
  type: dict
landlock:
  description: Per sandbox the Landlock ruleset its sessions run under (C(ro), C(rw), C(source) V(policy) or V(options)).
  returned: when O(state=present) and O(l1)
  type: dict
configmaps:
  description: >-
    The ConfigMaps created, updated or removed (C(namespace/name action)): one per hardened sandbox,
    C(agentsec-hardening-<sandbox>), holding the launcher, the filter and that sandbox's session hooks.
  returned: always
  type: list
  elements: str
failed_sandboxes:
  description: Sandboxes that could not be changed (rolled back where a change had been made).
  returned: always
  type: list
  elements: str
pending:
  description: With O(check_only) in check mode, why the cluster could not be checked yet (its container does not run).
  returned: when O(check_only) and the cluster container does not run in check mode
  type: str
"""

import copy
import json
import os
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _k8s_patches as K
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _policy

SERVER_META = ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields", "selfLink")


class Kube:
    def __init__(self, module):
        p = module.params
        self.m, self.p = module, p
        self.env = {**os.environ, **{k: str(v) for k, v in p["environment"].items()}}
        self.base = [p["docker"], "exec", "-i", p["cluster_container"], *p["kubectl"]]

    def run(self, args, stdin=None):
        try:
            proc = subprocess.run([*self.base, *args], input=stdin, capture_output=True, text=True, env=self.env,
                                  timeout=300, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.m.fail_json(msg=f"cannot run {self.p['docker']!r} to reach {self.p['cluster_container']}: {exc}")
        return proc.returncode, proc.stdout, proc.stderr.strip()

    def get(self, *args):
        rc, out, err = self.run(["get", *args, "-o", "json"])
        return json.loads(out) if rc == 0 else None, err

    def write(self, verb, obj, dry_run):
        args = [verb, "-f", "-", "-o", "json"] + (["--dry-run=server"] if dry_run else [])
        rc, out, err = self.run(args, json.dumps(obj))
        return (json.loads(out) if rc == 0 and out.strip() else None), err


def preflight(kube, module, pending_ok=False):
    """Everything the change needs, before any change; one line per problem naming what to do. With `pending_ok` (check
    mode of check_only) a cluster container that does not run yet ends the run with `pending` instead."""
    p = module.params
    try:
        probe = subprocess.run([p["docker"], "inspect", "--format", "{{.State.Running}}", p["cluster_container"]],
                               capture_output=True, text=True, env=kube.env, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        if pending_ok:  # check mode on a host not deployed yet: no Docker CLI either
            module.exit_json(changed=False, sandboxes={}, configmaps=[], failed_sandboxes=[],
                             pending=f"docker CLI {p['docker']!r} cannot run yet ({exc}): the sandboxes are checked once it is installed")
        module.fail_json(msg=f"docker CLI {p['docker']!r} cannot run ({exc}); install Docker or set the target's Docker socket")
    if (probe.returncode != 0 or probe.stdout.strip() != "true") and pending_ok:
        module.exit_json(changed=False, sandboxes={}, configmaps=[], failed_sandboxes=[],
                         pending=f"{p['cluster_container']} does not run yet: the sandboxes are checked once the gateway is deployed")
    if probe.returncode != 0:
        module.fail_json(msg=f"cluster container {p['cluster_container']} not found ({probe.stderr.strip()[-200:]}): start the "
                             "OpenShell gateway (openshell gateway start) or set nemoclaw_gateway to the gateway's name")
    if probe.stdout.strip() != "true":
        module.fail_json(msg=f"cluster container {p['cluster_container']} is not running: start it (openshell gateway start)")
    rc, _out, err = kube.run(["version", "-o", "json"])
    if rc != 0:
        module.fail_json(msg=f"kubectl does not run in {p['cluster_container']} ({err[-200:]}): this is not an OpenShell "
                             "0.0.26 (k3s) gateway - check nemoclaw_target")
    crd, err = kube.get("customresourcedefinitions", p["crd"]["name"])
    if crd is None:
        module.fail_json(msg=f"CRD {p['crd']['name']} not found in {p['cluster_container']} ({err[-200:]}): the gateway has no "
                             "agent-sandbox controller - check nemoclaw_target")
    served = [v["name"] for v in crd["spec"].get("versions", []) if v.get("served")]
    if crd["spec"].get("group") != p["crd"]["group"] or p["crd"]["version"] not in served:
        module.fail_json(msg=f"CRD {p['crd']['name']} serves {crd['spec'].get('group')}/{served}, not the pinned "
                             f"{p['crd']['group']}/{p['crd']['version']}: this OpenShell is not the pinned version - stop "
                             "and review targets/ before hardening it")
    listing, err = kube.get(p["crd"]["resource"], "-n", p["crd"]["namespace"])
    if listing is None:
        module.fail_json(msg=f"cannot list {p['crd']['resource']} in namespace {p['crd']['namespace']}: {err[-300:]}")
    found = {item["metadata"]["name"]: item for item in listing.get("items", [])}
    missing = [n for n in p["sandboxes"] if n not in found]
    if missing:
        module.fail_json(msg=f"sandbox(es) {', '.join(missing)} not found on gateway {p['cluster_container']} "
                             f"(it has: {', '.join(sorted(found)) or 'none'})")
    return found


def options(p, name, rules):
    ro, rw = rules.get(name, {}).get("ro", p["landlock_ro"]), rules.get(name, {}).get("rw", p["landlock_rw"])
    return {"l1": p["l1"], "l2": p["l2"], "l3": p["l3"], "l5": p["l5"], "l6": p["l6"], "container": p["container"],
            "landlock_ro": ro, "landlock_rw": rw, "inference_address": p["inference_address"],
            "configmap": K.sandbox_configmap(name), "resources": {k: str(v) for k, v in p["resources"].items()}}


def landlock_rules(module, names, env):
    """Per sandbox {ro, rw, source}: its policy's filesystem part plus the extra paths (policy_command set), else the
    paths given. Every policy is read before any change; one that cannot be read fails the run."""
    p = module.params
    rules = {}
    for name in names:
        if not p["policy_command"]:
            rules[name] = {"ro": p["landlock_ro"], "rw": p["landlock_rw"], "source": "options"}
            continue
        argv = [part.replace("{sandbox}", name) for part in p["policy_command"]]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            module.fail_json(msg=f"sandbox {name}: cannot read its policy with {argv[0]!r} ({exc}); set policy_command or "
                                 "check the target's CLI")
        if proc.returncode != 0:
            module.fail_json(msg=f"sandbox {name}: `{' '.join(argv)}` exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
        try:
            parsed = _policy.policy_output(proc.stdout)
            fs = _policy.filesystem_from(parsed[0]) if parsed else None
        except _policy.PolicyError as exc:
            module.fail_json(msg=f"sandbox {name}: its policy cannot be read ({exc}); nothing was changed")
        if fs is None:
            rules[name] = {"ro": p["landlock_ro"], "rw": p["landlock_rw"], "source": "options (no policy revision)"}
            continue
        ro, rw = _policy.landlock_lists(fs, p["workdir"], p["landlock_extra_ro"], p["landlock_extra_rw"])
        rules[name] = {"ro": ro, "rw": rw, "source": "policy"}
    return rules


def comparable(cr):
    out = copy.deepcopy(cr)
    out.pop("status", None)
    for field in SERVER_META:
        out.get("metadata", {}).pop(field, None)
    return out


def pod_hash(pod):
    return ((pod or {}).get("metadata", {}).get("annotations") or {}).get(K.HASH)


def roll(kube, name, want_hash, timeout):
    """Delete the pod so the controller re-creates it from the current template; wait until it runs that template."""
    ns = kube.p["crd"]["namespace"]
    kube.run(["delete", "pod", name, "-n", ns, "--ignore-not-found", "--wait=true", "--timeout", "120"])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pod, _err = kube.get("pod", name, "-n", ns)
        sb, _err = kube.get(kube.p["crd"]["resource"], name, "-n", ns)
        conds = ((sb or {}).get("status") or {}).get("conditions") or []
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)
        if pod and pod_hash(pod) == want_hash and ready and not pod["metadata"].get("deletionTimestamp"):
            return True
        time.sleep(1)
    return False


def configmap_plan(kube, module, plans, rules, others):
    """The ConfigMaps the sandboxes need after this run: (object, action) pairs - one per hardened sandbox with its own
    session hooks (its Landlock ruleset), deleted with its restore; the shared ConfigMap of earlier releases goes once
    no Sandbox uses it."""
    p, ns = module.params, module.params["crd"]["namespace"]
    listing, _err = kube.get("configmap", "-n", ns, "-l", "app.kubernetes.io/managed-by=agentsec.nemoclaw")
    current = {c["metadata"]["name"]: c for c in (listing or {}).get("items", [])}
    out = []
    needs_launcher = p["state"] == "present" and (p["l1"] or p["l2"])
    launcher = filter_bytes = None
    if needs_launcher:
        missing = [w for w in ("launcher_path",) + (("filter_path",) if p["l2"] else ()) if not p[w] or not os.path.isfile(p[w])]
        if missing and module.check_mode:  # check mode on a fresh host: the role's compile step did not write them
            out += [({"metadata": {"name": K.sandbox_configmap(n), "namespace": ns}}, "create (not compiled yet in check mode)")
                    for n in plans if K.sandbox_configmap(n) not in current]
            needs_launcher = False
        else:
            for what in missing:
                module.fail_json(msg=f"{what} {p[what]!r} is not a file on this host: compile it first with agentsec.nemoclaw.seccomp_filter")
            with open(p["launcher_path"], encoding="utf-8") as fh:
                launcher = fh.read()
            filter_bytes = b""
            if p["l2"]:
                with open(p["filter_path"], "rb") as fh:
                    filter_bytes = fh.read()
    for name, plan in plans.items():
        cm_name = K.sandbox_configmap(name)
        have = current.get(cm_name)
        if needs_launcher:
            want = K.hardening_configmap(ns, filter_bytes, launcher, K.launcher_flags(options(p, name, rules)), name=cm_name)
            if have is None or {k: have.get(k) for k in ("data", "binaryData")} != {k: want.get(k) for k in ("data", "binaryData")}:
                out.append((want, "replace" if have else "create"))
        elif have is not None and not K.is_hardened(plan["after"]):
            out.append((have, "delete"))
    legacy = current.get(K.CONFIGMAP)
    users = [plan["after"] for plan in plans.values()] + list(others.values())
    if legacy is not None and not any(K.uses_configmap(cr, K.CONFIGMAP) for cr in users):
        out.append((legacy, "delete"))
    return out


def coredns_plan(kube, p, hardened_after):
    """Our key in kube-system/coredns-custom (other keys are left alone)."""
    plans = []
    coredns, _err = kube.get("configmap", "coredns-custom", "-n", "kube-system")
    entry = K.coredns_custom(p["inference_address"])
    key = next(iter(entry["data"]))
    data = dict((coredns or {}).get("data") or {})
    if p["state"] == "present" and p["l6"] and data.get(key) != entry["data"][key]:
        data[key] = entry["data"][key]
    elif (p["state"] == "absent" or not p["l6"]) and not hardened_after and key in data:
        data.pop(key)
    else:
        return plans
    obj = {**entry, "data": data}
    if coredns:
        obj["metadata"] = {**entry["metadata"], "resourceVersion": coredns["metadata"]["resourceVersion"]}
    plans.append((obj, "replace" if coredns else "create"))
    return plans


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", default="present", choices=["present", "absent"]),
            cluster_container=dict(type="str", required=True),
            kubectl=dict(type="list", elements="str", default=["kubectl", "--kubeconfig", "/etc/rancher/k3s/k3s.yaml"]),
            docker=dict(type="str", default="docker"),
            environment=dict(type="dict", default={}),
            crd=dict(type="dict", default={"name": "sandboxes.agents.x-k8s.io", "group": "agents.x-k8s.io", "version": "v1alpha1",
                                           "resource": "sandboxes.agents.x-k8s.io", "namespace": "openshell"}),
            sandboxes=dict(type="list", elements="str", default=[]),
            container=dict(type="str", default="agent"),
            l1=dict(type="bool", default=True),
            l2=dict(type="bool", default=True),
            l3=dict(type="bool", default=True),
            l5=dict(type="bool", default=True),
            l6=dict(type="bool", default=True),
            filter_path=dict(type="path"),
            launcher_path=dict(type="path"),
            landlock_ro=dict(type="list", elements="str", default=[]),
            landlock_rw=dict(type="list", elements="str", default=[]),
            landlock_extra_ro=dict(type="list", elements="str", default=[]),
            landlock_extra_rw=dict(type="list", elements="str", default=[]),
            policy_command=dict(type="list", elements="str", default=[]),
            workdir=dict(type="str", default="/sandbox"),
            inference_address=dict(type="str", default="10.200.0.1"),
            resources=dict(type="dict", default={}),
            ready_timeout=dict(type="int", default=180),
            check_only=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    for key in ("name", "group", "version", "resource", "namespace"):
        if not p["crd"].get(key):
            module.fail_json(msg=f"crd.{key} is required (the target contract's cluster.crd)")
    bad = sorted(k for k in p["resources"] if k not in ("memory", "cpu", "ephemeral-storage"))
    if bad:
        module.fail_json(msg=f"resources: unknown limit(s) {', '.join(bad)}; use memory, cpu or ephemeral-storage")
    kube = Kube(module)
    found = preflight(kube, module, pending_ok=p["check_only"] and module.check_mode)
    if p["check_only"]:
        module.exit_json(changed=False, sandboxes={n: {"action": "checked"} for n in (p["sandboxes"] or sorted(found))},
                         configmaps=[], failed_sandboxes=[])
    names = p["sandboxes"] or sorted(found)
    ns = p["crd"]["namespace"]
    rules = landlock_rules(module, names, kube.env) if p["state"] == "present" and p["l1"] else {}
    plans = {}
    for name in names:
        cr = found[name]
        try:
            want = K.harden(cr, options(p, name, rules)) if p["state"] == "present" else K.restore(cr)
        except K.PatchError as exc:
            module.fail_json(msg=f"sandbox {name}: {exc}")
        pod, _err = kube.get("pod", name, "-n", ns)
        changed_cr = comparable(want) != comparable(cr)
        stale_pod = pod is not None and pod_hash(pod) != K.template_hash(want)
        plans[name] = {"before": cr, "after": want, "changed_cr": changed_cr, "stale_pod": stale_pod}
    hardened_after = any(K.is_hardened(pl["after"]) for pl in plans.values()) or any(
        K.is_hardened(cr) for n, cr in found.items() if n not in plans)
    others = {n: cr for n, cr in found.items() if n not in plans}
    cm_plans = configmap_plan(kube, module, plans, rules, others)
    cm_plans += coredns_plan(kube, p, hardened_after)
    report, failed, cms, diffs = {}, [], [], []
    for obj, action in cm_plans:
        cms.append(f"{obj['metadata'].get('namespace')}/{obj['metadata']['name']} {action}")
    # server-side dry run of every change first: the API server validates it, whether or not we are in check mode
    for name, pl in plans.items():
        if pl["changed_cr"]:
            _obj, err = kube.write("replace", pl["after"], dry_run=True)
            if _obj is None:
                module.fail_json(msg=f"sandbox {name}: the API server refuses the {'hardened' if p['state'] == 'present' else 'restored'} "
                                     f"Sandbox (server dry run, nothing changed): {err[-600:]}", configmaps=cms)
    for obj, action in cm_plans:
        if action in ("create", "replace"):
            _obj, err = kube.write(action, obj, dry_run=True)
            if _obj is None:
                module.fail_json(msg=f"ConfigMap {obj['metadata']['name']}: the API server refuses it (dry run): {err[-400:]}")
    changed = bool(cm_plans) or any(pl["changed_cr"] or pl["stale_pod"] for pl in plans.values())
    for name, pl in plans.items():
        changes = K.spec_changes(pl["before"], pl["after"]) if pl["changed_cr"] else []
        action = ("hardened" if p["state"] == "present" else "restored") if pl["changed_cr"] else ("rolled" if pl["stale_pod"] else "unchanged")
        report[name] = {"action": action, "changes": changes, "pod_rolled": False, "ready": None}
        if pl["changed_cr"]:
            diffs.append({"before_header": f"{ns}/{name} (before)", "after_header": f"{ns}/{name} (after)",
                          "before": json.dumps(pl["before"]["spec"]["podTemplate"], indent=1, sort_keys=True) + "\n",
                          "after": json.dumps(pl["after"]["spec"]["podTemplate"], indent=1, sort_keys=True) + "\n"})
    if module.check_mode or not changed:
        module.exit_json(changed=changed, sandboxes=report, configmaps=cms, failed_sandboxes=[], diff=diffs, landlock=rules)
    if p["state"] == "present":
        for obj, action in cm_plans:
            if action != "delete" and kube.write(action, obj, dry_run=False)[0] is None:
                module.fail_json(msg=f"ConfigMap {obj['metadata']['name']} could not be written; no sandbox was changed")
    for name, pl in plans.items():
        if not (pl["changed_cr"] or pl["stale_pod"]):
            continue
        if pl["changed_cr"]:
            stored, err = kube.write("replace", pl["after"], dry_run=False)
            if stored is None:
                failed.append(name)
                report[name].update(error=f"replace refused: {err[-400:]}", action="unchanged")
                continue
        ok = roll(kube, name, K.template_hash(pl["after"]), p["ready_timeout"])
        report[name].update(pod_rolled=True, ready=ok)
        if not ok and p["state"] == "present" and pl["changed_cr"]:
            # keep nothing half-applied: put the sandbox back as it was and roll it once more
            current, _err = kube.get(p["crd"]["resource"], name, "-n", ns)
            back = K.restore(current) if current else None
            if back is not None:
                kube.write("replace", back, dry_run=False)
                roll(kube, name, K.template_hash(back), p["ready_timeout"])
            failed.append(name)
            report[name].update(error=f"hardened pod not Ready within {p['ready_timeout']}s; rolled back", action="rolled back")
    # after the pods rolled: ConfigMaps no Sandbox uses any more go (and, restoring, CoreDNS loses our key)
    for obj, action in cm_plans:
        if action == "delete":
            kube.run(["delete", "configmap", obj["metadata"]["name"], "-n", obj["metadata"]["namespace"], "--ignore-not-found"])
        elif p["state"] == "absent":
            kube.write(action, obj, dry_run=False)
    result = dict(changed=True, sandboxes=report, configmaps=cms, failed_sandboxes=failed, diff=diffs, landlock=rules)
    if failed:
        module.fail_json(msg=f"sandbox(es) {', '.join(failed)} could not be {'hardened' if p['state'] == 'present' else 'restored'}", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
