#!/usr/bin/python
# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: sandbox_policy
short_description: Harden OpenShell sandboxes through their policy (every line; on the k3s line the L4 part only)
version_added: 0.3.0
description:
  - The C(policy) backend of the hardening role. Changes sandboxes only through the OpenShell CLI of the host - never
    the containers the gateway owns.
  - "Live part: every L7 endpoint (C(protocol: rest|sql)) gets C(enforcement: enforce) (the default is C(audit), which
    only logs what the rules deny), applied with C(openshell policy set <sandbox> --policy <file> --wait)."
  - "Static part: C(landlock.compatibility: hard_requirement) (the default C(best_effort) runs without filesystem rules
    when Landlock cannot apply them). The gateway refuses to change landlock on a live sandbox
    (crates/openshell-server/src/grpc/validation.rs @v0.0.111 L872-937), so it is applied by re-creating the sandbox
    with C(openshell sandbox create --name <sandbox> --from <image> --policy <file>) when O(recreate=true) - which
    discards the sandbox's writable state - and otherwise reported in RV(sandboxes.static_pending)."
  - "Limits (O(resources)): the gateway sets a sandbox's memory and CPU limit only from its create request
    (C(sandbox create --memory M --cpu C), crates/openshell-cli/src/main.rs @v0.0.111 L1386-1392; the Docker driver's
    Memory and NanoCpus, crates/openshell-driver-docker/src/lib.rs @v0.0.111 L2634, L2923-2946), so they are part of the
    re-creation too. C(sandbox get --output json) does not show them; a sandbox re-created with limits carries the
    label C(agentsec.nemoclaw/limits) (for example C(memory-4Gi)), and a sandbox without that label or with other
    limits is re-created. The verifier's C(L1.memory_limit) checks the limit itself, from inside the sandbox."
  - "O(read_paths) are added read-only to a filesystem policy that does not reach them yet (a static change, so also
    applied by re-creation), e.g. C(/sys/fs/cgroup): Node.js sizes its heap from the container's memory limit there, and
    the verifier reads the sandbox's memory and process limits there."
  - "On the k3s line (OpenShell v0.0.26) the hardening role uses only the live part: C(policy set --wait --timeout) is
    on that CLI (crates/openshell-cli/src/main.rs @v0.0.26 L1405-1432) and L7 enforcement defaults to audit there too
    (crates/openshell-sandbox/src/l7/mod.rs @v0.0.26 L120-122). Its CLI has no C(--output json): give O(discover) and
    O(policy_command) (the target's C(sandbox.discover) and C(sandbox.policy)); the YAML after C(---) is then read
    in the block style serde_yml writes, without a YAML library (a Mac's /usr/bin/python3 has none); other YAML
    forms are refused with a message."
  - O(state=absent) restores each sandbox's policy from the copy taken before the first change (O(backup_dir)) and
    removes the copy; a sandbox this module never changed is left alone.
  - Each sandbox is handled on its own - read, copy kept, C(policy set) or re-creation, read again. When one of these
    steps fails for a sandbox (its policy cannot be read, its revision does not load, its re-creation fails or has no
    image in O(images)), that sandbox is reported with RV(sandboxes.failed) and RV(sandboxes.msg) and the module goes
    on with the next one; at the end it fails naming every failed sandbox (RV(failed_sandboxes)), with RV(changed)
    true when any sandbox was changed. Wrong parameters (O(wait_timeout), a sandbox in O(sandboxes) the gateway does
    not have with O(state=present)) and a gateway that cannot list its sandboxes fail before any sandbox is touched.
  - Idempotent (a second run changes nothing) and check-mode safe (the plan is reported, nothing is submitted).
author: agentsec.nemoclaw contributors (@agentsec)
extends_documentation_fragment:
  - agentsec.nemoclaw.attributes
  - agentsec.nemoclaw.openshell_cli
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - A second run with the same arguments submits nothing and re-creates nothing.
options:
  sandboxes:
    description: Sandboxes to act on; empty means every sandbox C(openshell sandbox list -o json) shows.
    type: list
    elements: str
    default: []
  discover:
    description:
      - Command (whole argv) printing the gateway's sandbox names one per line, e.g. C([openshell, sandbox, list,
        --names]) on v0.0.26; empty means C(openshell sandbox list --output json).
    type: list
    elements: str
    default: []
  policy_command:
    description:
      - Command (whole argv, C({sandbox}) replaced by the name) printing a sandbox's active policy - either the JSON
        object of C(policy get --full --output json) or the status lines, C(---) and the YAML of v0.0.26's
        C(policy get --full) (run.rs @v0.0.26 L4551-4601). Empty means C(openshell policy get <sandbox> --full
        --output json).
    type: list
    elements: str
    default: []
  state:
    description: Harden, or restore what this module changed.
    type: str
    choices: [present, absent]
    default: present
  l7_enforce:
    description: Set C(enforcement enforce) on every L7 endpoint (the L4 fix of this line).
    type: bool
    default: true
  landlock_hard_requirement:
    description: Make C(landlock.compatibility hard_requirement) the sandbox's creation policy (the L1 fix).
    type: bool
    default: true
  recreate:
    description: Re-create sandboxes whose static part must change (deletes and creates them; their files are lost).
    type: bool
    default: false
  resources:
    description:
      - "Limits each sandbox is created with (C(memory), C(cpu); Kubernetes-style quantities as C(sandbox create
        --memory/--cpu) takes them, e.g. V({memory: 4Gi})). With O(state=absent), a sandbox carrying the limits label
        is re-created without limits. V({}) leaves limits alone (no label is read)."
    type: dict
    default: {}
  read_paths:
    description: Paths to add read-only to each sandbox's filesystem policy where it does not reach them.
    type: list
    elements: str
    default: []
  images:
    description: Image to re-create each sandbox from (C(name -> image)); required for every sandbox that is re-created.
    type: dict
    default: {}
  backup_dir:
    description: Where the policy of each sandbox is kept before the first change (one C(<sandbox>.json), mode 0600).
    type: path
    required: true
  wait_timeout:
    description:
      - Seconds C(policy set --wait) waits for the sandbox to load a revision, and a re-creation waits for the
        deleted sandbox to leave the gateway's list.
    type: int
    default: 60
"""

EXAMPLES = r"""
- name: Enforce L7 rules everywhere and re-create sandboxes with Landlock as a hard requirement
  agentsec.nemoclaw.sandbox_policy:
    openshell: /usr/bin/openshell
    backup_dir: "{{ ansible_facts['user_dir'] }}/.local/state/agentsec/hardening/policy"
    recreate: true
    images: {my-assistant: "ghcr.io/example/agent@sha256:0123..."}
    resources: {memory: 4Gi}
    read_paths: [/sys/fs/cgroup]

- name: Put the policies back as they were
  agentsec.nemoclaw.sandbox_policy:
    backup_dir: "{{ ansible_facts['user_dir'] }}/.local/state/agentsec/hardening/policy"
    state: absent
    recreate: true
    images: {my-assistant: "ghcr.io/example/agent@sha256:0123..."}
"""

RETURN = r"""
sandboxes:
  description: Per sandbox what was found and done.
  returned: always
  type: dict
  contains:
    live_changed:
      description: A new policy revision with the live part was submitted (and loaded).
      type: bool
    recreated:
      description: The sandbox was re-created with the static part.
      type: bool
    static_pending:
      description:
        - Static keys that differ but were not applied (O(recreate=false)); C(resources) when the limits differ.
      type: list
      elements: str
    before:
      description:
        - Landlock compatibility and L7 endpoints by enforcement before, and C(limits), the limits label's value
          (C('') for none) when O(resources) is given.
      type: dict
    after:
      description: The same after (equal to RV(sandboxes.before) in check mode and when nothing changed).
      type: dict
      returned: when the sandbox did not fail
    note:
      description: With O(state=absent), why the sandbox was left alone (this module never changed it).
      type: str
      returned: when O(state=absent) and the sandbox has no policy copy in O(backup_dir)
    failed:
      description:
        - The sandbox could not be hardened or restored; the other keys say what was done before the failure
          (RV(sandboxes.live_changed) and RV(sandboxes.recreated) are true only for a step that completed).
      type: bool
      returned: when this sandbox failed
      sample: true
    msg:
      description: Why this sandbox failed.
      type: str
      returned: when this sandbox failed
    rc:
      description: The exit status of the OpenShell command that failed.
      type: int
      returned: when this sandbox failed on a command's exit status
changed:
  description:
    - Whether any sandbox changed (or would, in check mode) - also when the module fails because another sandbox
      failed. A sandbox deleted for a re-creation that then failed counts as changed.
  returned: always
  type: bool
failed_sandboxes:
  description: The sandboxes that failed, in the order they were handled; the module then fails after handling the rest.
  returned: when a sandbox failed
  type: list
  elements: str
  sample: [my-assistant]
skipped_reason:
  description: In check mode only, why no sandbox could be read (no CLI or no gateway yet, as on a fresh host).
  returned: when the gateway could not list its sandboxes in check mode
  type: str
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _openshell_cli as C
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _policy
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _sandbox_policy as P


class SandboxError(Exception):
    """One sandbox could not be hardened or restored: main() reports it under that sandbox and goes on with the next.
    changed: the sandbox was changed before the failure (deleted by a re-creation whose create failed)."""

    def __init__(self, msg, rc=None, changed=False):
        super().__init__(msg)
        self.msg, self.rc, self.changed = msg, rc, changed


class Cli(C.Cli):
    """The shared CLI (module_utils/_openshell_cli) and what only the policy backend asks of it. What it does for one
    sandbox raises SandboxError instead of failing the module."""

    def __init__(self, module, binary, environment, names_command=None, policy_command=None):
        super().__init__(module, binary, environment, names_command)
        self.policy_command = list(policy_command or [])

    def policy(self, name):
        argv = [part.replace("{sandbox}", name) for part in self.policy_command] or \
            [self.binary, "policy", "get", name, "--full", "--output", "json"]
        rc, out, err = self.module.run_command(argv, environ_update=self.env)
        if rc != 0:
            raise SandboxError(f"sandbox {name!r}: `{' '.join(argv)}` exited {rc}: {C.tail(out, err)}", rc)
        return read_policy(name, out)

    def policy_set(self, name, policy, timeout):
        def submit(path):
            return self.run("policy", "set", name, "--policy", path, "--wait", "--timeout", str(timeout), check=False)

        rc, out, err = self.with_policy_file(policy, submit)
        if rc != 0:
            what = {1: "failed to load", 124: "did not load in time"}.get(rc, f"exited {rc}")
            raise SandboxError(f"sandbox {name!r}: the new policy revision {what}: {C.tail(out, err)}", rc)

    def fail(self, msg, **extra):
        """A failed shared step (run, sandboxes, delete) fails this sandbox only."""
        raise SandboxError(msg, extra.get("rc"))

    def labels(self, name):
        """The sandbox's labels (`sandbox get <name> --output json`, sandbox_to_json: run.rs @v0.0.111 L2088-2106)."""
        rc, out, err = self.run("sandbox", "get", name, "--output", "json", check=False)
        if rc != 0:
            raise SandboxError(f"sandbox {name!r}: `openshell sandbox get {name} --output json` exited {rc}: "
                               f"{C.tail(out, err)}", rc)
        try:
            labels = json.loads(out).get("labels")
        except (ValueError, AttributeError):
            labels = None
        if not isinstance(labels, dict):
            raise SandboxError(f"sandbox {name!r}: `openshell sandbox get --output json` printed no labels: {out[:300]!r}")
        return labels

    def recreate(self, name, image, policy, timeout, extra=()):
        try:
            self.delete(name, timeout)
        except SandboxError as exc:
            # no exit status: `sandbox delete` was accepted and the wait for the gateway failed - the sandbox is gone
            # or going, so it changed
            raise SandboxError(exc.msg, exc.rc, changed=exc.rc is None) from None
        rc, out, err = self.with_policy_file(policy, lambda p: self.create(name, image, "--policy", p, *extra))
        if rc != 0:
            raise SandboxError(f"sandbox {name!r} could not be re-created with the hardened policy (it is deleted; "
                               f"re-run with state=absent to restore it): {C.tail(out, err)}", rc, changed=True)


def read_policy(name, output):
    """The policy document of a policy command's output: the JSON form, or the YAML after `---` (v0.0.26)."""
    try:
        parsed = _policy.policy_output(output)
    except ValueError as exc:
        raise SandboxError(f"sandbox {name!r}: the policy command printed no policy: {exc}") from None
    doc = parsed[0] if parsed else None
    if not isinstance(doc, dict):
        raise SandboxError(f"sandbox {name!r}: the policy command printed no policy revision: {output.strip()[:300]!r}")
    return doc


def backup_path(directory, name):
    return os.path.join(directory, f"{name}.json")


def read_backup(directory, name):
    try:
        with open(backup_path(directory, name), encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise SandboxError(f"sandbox {name!r}: its policy copy {backup_path(directory, name)} cannot be read: {exc}") from None


def write_backup(directory, name, policy):
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd = os.open(backup_path(directory, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(policy, fh, indent=1, sort_keys=True)
    except OSError as exc:
        raise SandboxError(f"sandbox {name!r}: its policy could not be kept in {backup_path(directory, name)} "
                           f"(nothing changed): {exc}") from None


def apply(module, cli, name, current, wanted, params, report, labels=None):
    """Submit the live part, re-create for the static part when allowed; fill `report` (a flag once its step is done).
    labels: the sandbox's labels when its limits are managed (None: not). Returns changed."""
    plan = P.diff(current, wanted)
    extra = []
    if labels is not None:
        limits = params["resources"] if params["state"] == "present" else {}
        if limits_differ(labels, limits):
            plan["static"].append("resources")
        # the sandbox's other labels survive the re-creation; the limits label says what it is created with
        for key, value in sorted(labels.items()):
            if key != P.LIMITS_LABEL:
                extra += ["--label", f"{key}={value}"]
        extra += P.create_limit_args(limits)
    changed = False
    if plan["static"] and params["recreate"]:
        image = params["images"].get(name)
        if not image:
            raise SandboxError(f"sandbox {name!r}: {', '.join(plan['static'])} can only change by re-creating it; give its "
                               f"image in images (name -> image reference) or set recreate=false")
        if not module.check_mode:
            cli.recreate(name, image, wanted, params["wait_timeout"], extra)
        report["recreated"], changed = True, True
    else:
        report["static_pending"] = plan["static"]
        if plan["live"]:
            if not module.check_mode:
                cli.policy_set(name, P.live_document(current, wanted), params["wait_timeout"])
            report["live_changed"], changed = True, True
    return changed


def one_sandbox(module, cli, name, params, report):
    """Harden or restore one sandbox, filling `report`. Returns changed; raises SandboxError."""
    current = cli.policy(name)
    labels = cli.labels(name) if params["resources"] else None
    report["before"] = summary(current, labels)
    if params["state"] == "present":
        wanted = P.harden(current, params["l7_enforce"], params["landlock_hard_requirement"], params["read_paths"])
        if read_backup(params["backup_dir"], name) is None and (
                (labels is not None and limits_differ(labels, params["resources"]))
                or P.diff(current, wanted) != {"live": False, "static": []}):
            if not module.check_mode:
                write_backup(params["backup_dir"], name, current)
    else:
        wanted = read_backup(params["backup_dir"], name)
        if wanted is None:
            report.update(after=report["before"], note="not changed by this module")
            return False
    changed = apply(module, cli, name, current, wanted, params, report, labels)
    if params["state"] == "absent" and not report["static_pending"] and not module.check_mode:
        try:
            os.unlink(backup_path(params["backup_dir"], name))
        except OSError as exc:
            raise SandboxError(f"sandbox {name!r}: restored, but its policy copy could not be removed: {exc}") from None
    if module.check_mode or not changed:
        report["after"] = report["before"]
    else:
        report["after"] = summary(cli.policy(name), cli.labels(name) if labels is not None else None)
    return changed


def limits_differ(labels, limits):
    """The sandbox's limits label does not record these limits (it is re-created to get them)."""
    return labels.get(P.LIMITS_LABEL, "") != P.limits_label(limits)


def summary(policy, labels):
    out = P.summary(policy)
    if labels is not None:
        out["limits"] = labels.get(P.LIMITS_LABEL, "")
    return out


def main():
    module = AnsibleModule(
        argument_spec=dict(
            **C.ARGUMENT_SPEC,
            sandboxes=dict(type="list", elements="str", default=[]),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            l7_enforce=dict(type="bool", default=True),
            landlock_hard_requirement=dict(type="bool", default=True),
            recreate=dict(type="bool", default=False),
            images=dict(type="dict", default={}),
            resources=dict(type="dict", default={}),
            read_paths=dict(type="list", elements="str", default=[]),
            discover=dict(type="list", elements="str", default=[]),
            policy_command=dict(type="list", elements="str", default=[]),
            backup_dir=dict(type="path", required=True),
            wait_timeout=dict(type="int", default=60),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if not 0 < params["wait_timeout"] <= 3600:
        module.fail_json(msg=f"wait_timeout {params['wait_timeout']} must be between 1 and 3600 seconds")
    problems = P.resource_problems(params["resources"])
    problems += [f"read_paths: {p!r} is not an absolute path" for p in params["read_paths"] if not p.startswith("/")]
    if problems:
        module.fail_json(msg="; ".join(problems))
    cli = Cli(module, params["openshell"], params["environment"], params["discover"], params["policy_command"])
    try:
        present, problem = cli.sandboxes_for_plan()
    except SandboxError as exc:  # no sandbox list: nothing was touched
        module.fail_json(msg=exc.msg)
    if problem:
        module.exit_json(changed=False, sandboxes={}, skipped_reason=problem)
    names = params["sandboxes"] or present
    missing = [n for n in names if n not in present]
    if missing and params["state"] == "present":
        module.fail_json(msg=f"no such sandbox: {', '.join(missing)} (the gateway has: {', '.join(present) or 'none'})")
    # each sandbox on its own: one that fails is reported and the next is still hardened (or restored)
    results, changed, failed = {}, False, []
    for name in names:
        if name not in present or name in results:
            continue
        report = results[name] = {"live_changed": False, "recreated": False, "static_pending": []}
        try:
            changed |= one_sandbox(module, cli, name, params, report)
        except SandboxError as exc:
            changed |= report["live_changed"] or report["recreated"] or exc.changed
            report.update(failed=True, msg=exc.msg, **({} if exc.rc is None else {"rc": exc.rc}))
            failed.append(name)
    if failed:
        module.fail_json(msg=f"sandbox_policy failed on {len(failed)} of {len(results)} sandboxes: "
                             + "; ".join(f"{n}: {results[n]['msg']}" for n in failed),
                         changed=changed, sandboxes=results, failed_sandboxes=failed)
    module.exit_json(changed=changed, sandboxes=results)


if __name__ == "__main__":
    main()
