#!/usr/bin/python
# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: openshell_sandbox
short_description: Declare the sandboxes an OpenShell host-service gateway runs (0.0.116, 0.1.x)
version_added: 0.3.0
description:
  - Creates the declared sandboxes that the gateway does not list yet with
    C(openshell sandbox create --name <name> --from <image> [--provider <p>]... --detach --output json), and with
    O(state=absent) deletes them (C(openshell sandbox delete <name>), waiting until the gateway no longer lists them).
  - For the lines where no NemoClaw release creates the sandbox (OpenShell 0.1.x, target C(openshell_0_1)), or for
    extra sandboxes beside NemoClaw's on 0.0.116. A sandbox the gateway already lists is left as it is - its policy
    is the hardening role's (backend C(policy), module M(agentsec.nemoclaw.sandbox_policy)), and its image is not
    compared (the gateway's C(sandbox list -o json) does not report it, run.rs @v0.0.111 L2088-2106).
  - The sandbox is created with its declared policy (or the line's default); the hardening role then re-creates it
    with Landlock as a hard requirement and enforces its L7 rules.
  - With O(state=absent) on a host without the CLI (O(openshell) an absolute path that does not exist) there is
    nothing to delete; a CLI whose gateway does not answer fails the task.
  - Idempotent and check-mode safe. In check mode on a host whose gateway is not installed yet, it warns and reports
    every declared sandbox as to be created.
author: agentsec.nemoclaw contributors (@agentsec)
extends_documentation_fragment:
  - agentsec.nemoclaw.attributes
  - agentsec.nemoclaw.openshell_cli
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  sandboxes:
    description: The sandboxes this host runs.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Sandbox name, a DNS-1123 label of at most 63 characters (openshell-current.md 3.2).
        type: str
        required: true
      image:
        description:
          - OCI image reference of the workload (C(--from)). 0.1.x takes an image reference only - no Dockerfile or
            directory (#3214). Empty means the gateway's C(default_image).
        type: str
        default: ""
      providers:
        description: Providers to attach at creation (C(--provider), each named explicitly as 0.1.x requires).
        type: list
        elements: str
        default: []
      policy:
        description:
          - The sandbox's policy document at creation (C(--policy), written to a private temporary file; the OpenShell
            policy schema - version, filesystem_policy, landlock, process, network_policies). Empty means the line's
            default policy.
          - Used only when the sandbox is created; the policy of a running sandbox is the hardening role's to change.
        type: dict
      resources:
        description:
          - "Limits at creation (C(--memory), C(--cpu); e.g. V({memory: 4Gi})): the Docker driver sets the container's
            Memory and NanoCpus only from the create request (crates/openshell-driver-docker/src/lib.rs @v0.0.111
            L2634, L2923-2946). The sandbox also gets the label C(agentsec.nemoclaw/limits), which the hardening
            role's policy backend compares with its C(hardening_resources). Used only when the sandbox is created."
        type: dict
        default: {}
  state:
    description: C(present) creates the missing sandboxes, C(absent) deletes the declared ones that exist.
    type: str
    choices: [present, absent]
    default: present
  timeout:
    description: Seconds to wait for a deleted sandbox to leave the gateway's list.
    type: int
    default: 120
"""

EXAMPLES = r"""
- name: The sandboxes of an OpenShell 0.1.x host
  agentsec.nemoclaw.openshell_sandbox:
    openshell: /usr/bin/openshell
    sandboxes:
      - name: work
        image: ghcr.io/example/agent@sha256:0123...
        providers: [ollama]
        resources: {memory: 4Gi}
        policy:
          version: 1
          filesystem_policy: {include_workdir: true, read_only: [/usr, /lib, /proc, /etc], read_write: [/sandbox, /tmp, /dev/null]}
          network_policies:
            pypi:
              name: pypi
              endpoints: [{host: pypi.org, port: 443, protocol: rest, access: read-only}]

- name: Remove them
  agentsec.nemoclaw.openshell_sandbox:
    openshell: /usr/bin/openshell
    sandboxes: [{name: work}]
    state: absent
"""

RETURN = r"""
sandboxes:
  description: Per declared sandbox what was done.
  returned: always
  type: dict
  sample: {work: {action: created, phase: Ready}}
  contains:
    action:
      description: C(created), C(deleted), C(none) (already as declared) - or, in check mode, what would be done.
      type: str
    phase:
      description: The phase C(sandbox create --output json) reported (created sandboxes only).
      type: str
changed:
  description: Whether a sandbox was (or, in check mode, would be) created or deleted.
  returned: always
  type: bool
"""

import json
import os
import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _openshell_cli as C
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _sandbox_policy as P

NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")  # DNS-1123 label (openshell-current.md 3.2)


def check_inputs(module, sandboxes):
    names = [s["name"] for s in sandboxes]
    bad = [n for n in names if not NAME.match(n or "")]
    if bad:
        module.fail_json(msg=f"sandboxes: {', '.join(repr(n) for n in bad)} - a sandbox name must be a DNS-1123 label "
                             "(lower-case letters, digits and inner '-', at most 63 characters)")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        module.fail_json(msg=f"sandboxes: {', '.join(twice)} declared more than once")
    for s in sandboxes:
        if any(not p or not isinstance(p, str) for p in s["providers"]):
            module.fail_json(msg=f"sandboxes[{s['name']}].providers: every provider needs a name")
        problems = P.resource_problems(s["resources"])
        if problems:
            module.fail_json(msg=f"sandboxes[{s['name']}]." + f"; sandboxes[{s['name']}].".join(problems))


def create(cli, sandbox):
    """`sandbox create` of one declared sandbox -> (rc, out, err)."""
    extra = [arg for provider in sandbox["providers"] for arg in ("--provider", provider)]
    extra += P.create_limit_args(sandbox["resources"])
    if not sandbox["policy"]:
        return cli.create(sandbox["name"], sandbox["image"], *extra)
    return cli.with_policy_file(sandbox["policy"],
                                lambda path: cli.create(sandbox["name"], sandbox["image"], "--policy", path, *extra))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            **C.ARGUMENT_SPEC,
            sandboxes=dict(type="list", elements="dict", required=True, options=dict(
                name=dict(type="str", required=True),
                image=dict(type="str", default=""),
                providers=dict(type="list", elements="str", default=[]),
                policy=dict(type="dict"),
                resources=dict(type="dict", default={}),
            )),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            timeout=dict(type="int", default=120),
        ),
        supports_check_mode=True,
    )
    p = module.params
    check_inputs(module, p["sandboxes"])
    if not 0 < p["timeout"] <= 3600:
        module.fail_json(msg=f"timeout {p['timeout']} must be between 1 and 3600 seconds")
    cli = C.Cli(module, p["openshell"], p["environment"])
    if p["state"] == "absent" and os.path.isabs(p["openshell"]) and not os.path.exists(p["openshell"]):
        # no CLI on the host: OpenShell was never installed here (or is gone), so there is no sandbox to delete
        module.exit_json(changed=False, sandboxes={s["name"]: {"action": "none"} for s in p["sandboxes"]})
    present, problem = cli.sandboxes_for_plan()
    if problem:
        present = []  # check mode before the gateway exists: nothing is there yet
    results, before, after = {}, sorted(present), set(present)
    for s in p["sandboxes"]:
        name = s["name"]
        if p["state"] == "present" and name not in present:
            results[name] = {"action": "created"}
            after.add(name)
            if not module.check_mode:
                rc, out, err = create(cli, s)
                if rc != 0:
                    module.fail_json(msg=f"sandbox {name!r} could not be created: {C.tail(out, err)}", rc=rc,
                                     sandboxes=results)
                try:
                    results[name]["phase"] = json.loads(out).get("phase", "")
                except (ValueError, AttributeError):
                    results[name]["phase"] = ""
        elif p["state"] == "absent" and name in present:
            results[name] = {"action": "deleted"}
            after.discard(name)
            if not module.check_mode:
                cli.delete(name, p["timeout"])
        else:
            results[name] = {"action": "none"}
    changed = any(r["action"] != "none" for r in results.values())
    diff = {"before": "\n".join(before) + "\n", "after": "\n".join(sorted(after)) + "\n",
            "before_header": "openshell sandbox list", "after_header": "openshell sandbox list"}
    module.exit_json(changed=changed, sandboxes=results, diff=diff)


if __name__ == "__main__":
    main()
