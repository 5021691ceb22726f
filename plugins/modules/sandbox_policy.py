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
  - "On the k3s line (OpenShell v0.0.26) the hardening role uses only the live part: C(policy set --wait --timeout) is
    on that CLI (crates/openshell-cli/src/main.rs @v0.0.26 L1405-1432) and L7 enforcement defaults to audit there too
    (crates/openshell-sandbox/src/l7/mod.rs @v0.0.26 L120-122). Its CLI has no C(--output json): give O(discover) and
    O(policy_command) (the target's C(sandbox.discover) and C(sandbox.policy)); the YAML after C(---) is then read
    in the block style serde_yml writes, without a YAML library (a Mac's /usr/bin/python3 has none); other YAML
    forms are refused with a message."
  - O(state=absent) restores each sandbox's policy from the copy taken before the first change (O(backup_dir)) and
    removes the copy; a sandbox this module never changed is left alone.
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
      description: Static keys that differ but were not applied (O(recreate=false)).
      type: list
      elements: str
    before:
      description: Landlock compatibility and L7 endpoints by enforcement before.
      type: dict
    after:
      description: The same after (equal to RV(sandboxes.before) in check mode).
      type: dict
changed:
  description: Whether any sandbox changed (or would, in check mode).
  returned: always
  type: bool
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


class Cli(C.Cli):
    """The shared CLI (module_utils/_openshell_cli) and what only the policy backend asks of it."""

    def __init__(self, module, binary, environment, names_command=None, policy_command=None):
        super().__init__(module, binary, environment, names_command)
        self.policy_command = list(policy_command or [])

    def policy(self, name):
        argv = [part.replace("{sandbox}", name) for part in self.policy_command] or \
            [self.binary, "policy", "get", name, "--full", "--output", "json"]
        rc, out, err = self.module.run_command(argv, environ_update=self.env)
        if rc != 0:
            self.module.fail_json(msg=f"sandbox {name!r}: `{' '.join(argv)}` exited {rc}: {(err or out).strip()[-600:]}", rc=rc)
        return read_policy(self.module, name, out)

    def policy_set(self, name, policy, timeout):
        def submit(path):
            return self.run("policy", "set", name, "--policy", path, "--wait", "--timeout", str(timeout), check=False)

        rc, out, err = self.with_policy_file(policy, submit)
        if rc != 0:
            what = {1: "failed to load", 124: "did not load in time"}.get(rc, f"exited {rc}")
            self.module.fail_json(msg=f"sandbox {name!r}: the new policy revision {what}: {(err or out).strip()[-600:]}", rc=rc)

    def recreate(self, name, image, policy, timeout):
        self.delete(name, timeout)
        rc, out, err = self.with_policy_file(policy, lambda p: self.create(name, image, "--policy", p))
        if rc != 0:
            self.module.fail_json(msg=f"sandbox {name!r} could not be re-created with the hardened policy (it is deleted; "
                                      f"re-run with state=absent to restore it): {(err or out).strip()[-600:]}", rc=rc)


def read_policy(module, name, output):
    """The policy document of a policy command's output: the JSON form, or the YAML after `---` (v0.0.26)."""
    try:
        parsed = _policy.policy_output(output)
    except ValueError as exc:
        module.fail_json(msg=f"sandbox {name!r}: the policy command printed no policy: {exc}")
    doc = parsed[0] if parsed else None
    if not isinstance(doc, dict):
        module.fail_json(msg=f"sandbox {name!r}: the policy command printed no policy revision: {output.strip()[:300]!r}")
    return doc


def backup_path(directory, name):
    return os.path.join(directory, f"{name}.json")


def read_backup(directory, name):
    try:
        with open(backup_path(directory, name), encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return None


def write_backup(directory, name, policy):
    os.makedirs(directory, mode=0o700, exist_ok=True)
    fd = os.open(backup_path(directory, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(policy, fh, indent=1, sort_keys=True)


def apply(module, cli, name, current, wanted, params, report):
    """Submit the live part, re-create for the static part when allowed; fill `report`. Returns changed."""
    plan = P.diff(current, wanted)
    report["static_pending"] = []
    changed = False
    if plan["static"] and params["recreate"]:
        image = params["images"].get(name)
        if not image:
            module.fail_json(msg=f"sandbox {name!r}: {', '.join(plan['static'])} can only change by re-creating it; give its "
                                 f"image in images (name -> image reference) or set recreate=false")
        if not module.check_mode:
            cli.recreate(name, image, wanted, params["wait_timeout"])
        report["recreated"], changed = True, True
    else:
        report["static_pending"] = plan["static"]
        if plan["live"]:
            if not module.check_mode:
                cli.policy_set(name, P.live_document(current, wanted), params["wait_timeout"])
            report["live_changed"], changed = True, True
    return changed


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
    cli = Cli(module, params["openshell"], params["environment"], params["discover"], params["policy_command"])
    present, problem = cli.sandboxes_for_plan()
    if problem:
        module.exit_json(changed=False, sandboxes={}, skipped_reason=problem)
    names = params["sandboxes"] or present
    missing = [n for n in names if n not in present]
    if missing and params["state"] == "present":
        module.fail_json(msg=f"no such sandbox: {', '.join(missing)} (the gateway has: {', '.join(present) or 'none'})")
    results, changed = {}, False
    for name in names:
        if name not in present:
            continue
        current = cli.policy(name)
        report = {"live_changed": False, "recreated": False, "before": P.summary(current)}
        if params["state"] == "present":
            wanted = P.harden(current, params["l7_enforce"], params["landlock_hard_requirement"])
            if read_backup(params["backup_dir"], name) is None and P.diff(current, wanted) != {"live": False, "static": []}:
                if not module.check_mode:
                    write_backup(params["backup_dir"], name, current)
        else:
            wanted = read_backup(params["backup_dir"], name)
            if wanted is None:
                results[name] = {**report, "static_pending": [], "after": report["before"], "note": "not changed by this module"}
                continue
        changed |= apply(module, cli, name, current, wanted, params, report)
        if params["state"] == "absent" and not report["static_pending"] and not module.check_mode:
            os.unlink(backup_path(params["backup_dir"], name))
        report["after"] = report["before"] if module.check_mode or not changed else P.summary(cli.policy(name))
        results[name] = report
    module.exit_json(changed=changed, sandboxes=results)


if __name__ == "__main__":
    main()
