#!/usr/bin/python
# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: nemoclaw_current
short_description: Onboard one sandbox with NemoClaw v0.0.130-v0.0.132 from its machine-readable interfaces
version_added: 0.3.0
description:
  - For the NemoClaw releases that pin OpenShell 0.0.116 (target C(openshell_host)). Reads state only from NemoClaw's
    machine-readable outputs - C(nemoclaw host probe --json) (exit 0 supported, 2 incompatible, 3 inconclusive),
    C(nemoclaw list --json), C(openshell sandbox list --output json) - and onboards with
    C(nemoclaw onboard --non-interactive --events=jsonl), following its JSON Lines events.
  - Idempotent from outside - a sandbox registered and Ready with the wanted provider, model and presets is left alone;
    otherwise it is onboarded, or re-onboarded with C(--recreate-sandbox) (which replaces it). Check mode reports the plan.
  - Secrets reach NemoClaw only in the environment of its process (O(secrets), no_log), never argv or a file.
  - O(state=absent) removes this sandbox with C(nemoclaw <name> destroy --yes), never NemoClaw's host-wide uninstall.
author: agentsec.nemoclaw contributors (@agentsec)
extends_documentation_fragment:
  - agentsec.nemoclaw.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - A registered, Ready sandbox with the wanted provider, model and presets is left alone.
options:
  name:
    description: The sandbox (1-19 characters, a lower-case letter first, no C(--)).
    type: str
    required: true
  state:
    description: Onboarded, or removed.
    type: str
    choices: [present, absent]
    default: present
  version:
    description: The NemoClaw release that must be installed (C(0.0.130), C(0.0.131) or C(0.0.132)).
    type: str
    required: true
  nemoclaw_bin:
    description: The NemoClaw CLI.
    type: path
    default: nemoclaw
  openshell_bin:
    description: The OpenShell CLI (for the sandbox phase).
    type: path
    default: openshell
  from_image:
    description: The sandbox image (C(--from-image), a C(repo@sha256:digest) reference for a pinned fleet).
    type: str
  provider:
    description: C(NEMOCLAW_PROVIDER) (for example V(ollama) or V(build)).
    type: str
    default: ollama
  model:
    description: C(NEMOCLAW_MODEL); empty lets NemoClaw choose its default for the provider.
    type: str
    default: ""
  policy_presets:
    description: Presets (C(NEMOCLAW_POLICY_PRESETS)) the sandbox must have.
    type: list
    elements: str
    default: []
  recreate:
    description: Re-onboard even a sandbox that is registered and Ready (replaces it).
    type: bool
    default: false
  accept_third_party_software:
    description: Accept NemoClaw's third-party software notice (required for non-interactive onboarding).
    type: bool
    default: false
  secrets:
    description: Credential environment variables for onboarding (for example C(NVIDIA_API_KEY)); never logged.
    type: dict
    default: {}
  environment:
    description: Further non-secret environment for NemoClaw (for example C(PATH) with Node.js and openshell).
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Onboard the assistant with NemoClaw v0.0.132 on OpenShell 0.0.116
  agentsec.nemoclaw.nemoclaw_current:
    name: my-assistant
    version: "0.0.132"
    from_image: "ghcr.io/example/openclaw@sha256:0123..."
    provider: ollama
    model: "nemotron-3-nano:30b"
    policy_presets: [pypi, npm]
    accept_third_party_software: true
"""

RETURN = r"""
action:
  description: V(none), V(onboard), V(recreate) or V(remove) (what was done, or would be in check mode).
  returned: always
  type: str
reason:
  description: Why.
  returned: always
  type: str
probe:
  description: The document of C(nemoclaw host probe --json).
  returned: when state is present
  type: dict
events:
  description: The onboarding events (JSON Lines of C(--events=jsonl)).
  returned: when onboarding ran
  type: list
  elements: dict
sandbox:
  description: The sandbox's entry of C(nemoclaw list --json) afterwards, with its OpenShell C(phase).
  returned: when state is present
  type: dict
"""

import json

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _nemoclaw_current as N


def run(module, argv, env, check=False):
    rc, out, err = module.run_command(argv, environ_update=env)
    if check and rc != 0:
        module.fail_json(msg=f"`{' '.join(argv)}` exited {rc}: {(err or out).strip()[-500:]}", rc=rc)
    return rc, out, err


def read_json(module, argv, env):
    rc, out, err = run(module, argv, env)
    try:
        return json.loads(out)
    except ValueError:
        module.fail_json(msg=f"`{' '.join(argv)}` (exit {rc}) printed no JSON: {(out or err)[-300:]!r}")
    return None


def phase_of(module, params, env):
    listing = read_json(module, [params["openshell_bin"], "sandbox", "list", "--output", "json"], env)
    return next((s.get("phase") for s in listing if s.get("name") == params["name"]), None)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            version=dict(type="str", required=True),
            nemoclaw_bin=dict(type="path", default="nemoclaw"),
            openshell_bin=dict(type="path", default="openshell"),
            from_image=dict(type="str"),
            provider=dict(type="str", default="ollama"),
            model=dict(type="str", default=""),
            policy_presets=dict(type="list", elements="str", default=[]),
            recreate=dict(type="bool", default=False),
            accept_third_party_software=dict(type="bool", default=False),
            secrets=dict(type="dict", default={}, no_log=True),
            environment=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    p = module.params
    problem = N.name_problem(p["name"])
    if problem:
        module.fail_json(msg=problem)
    if p["version"].lstrip("v") not in N.LINE:
        module.fail_json(msg=f"version {p['version']!r}: this module drives NemoClaw {', '.join(N.LINE)} (OpenShell 0.0.116)")
    env = {k: str(v) for k, v in p["environment"].items()}
    env["NO_COLOR"] = "1"
    _rc, out, _err = run(module, [p["nemoclaw_bin"], "--version"], env, check=True)
    installed = N.version_text(out)
    if installed != p["version"].lstrip("v"):
        module.fail_json(msg=f"NemoClaw {installed or '?'} is installed at {p['nemoclaw_bin']}, the pinned release is "
                             f"{p['version']} - install the pinned tag first")
    listing = read_json(module, [p["nemoclaw_bin"], "list", "--json"], env)
    entry = N.registered(listing, p["name"])
    if p["state"] == "absent":
        if entry is None:
            module.exit_json(changed=False, action="none", reason="not registered with NemoClaw")
        if not module.check_mode:
            run(module, [p["nemoclaw_bin"], p["name"], "destroy", "--yes"], env, check=True)
        module.exit_json(changed=True, action="remove", reason="registered")
    rc, out, _err = run(module, [p["nemoclaw_bin"], "host", "probe", "--json"], env)
    status, problems, probe = N.probe_verdict(rc, out)
    if status != "supported":
        why = "; ".join(problems) or "the gateway does not answer"
        if module.check_mode:
            # check mode on a host the earlier roles only simulated (no OpenShell CLI or gateway yet): the real run
            # installs them first, so this is what would be done, and the real run still refuses a host that stays so
            module.warn(f"`nemoclaw host probe` says this host is {status} ({why}); in check mode that is expected before "
                        "the gateway is installed, a real run refuses it")
            module.exit_json(changed=entry is None, action="onboard" if entry is None else "none",
                             reason=f"host probe {status} in check mode", probe=probe, sandbox=entry or {})
        module.fail_json(msg=f"`nemoclaw host probe` says this host is {status}: {why}"
                             " - fix that before onboarding (role openshell_service runs the gateway)", probe=probe)
    wanted = {"provider": N.PROVIDER_NAMES.get(p["provider"], p["provider"]), "model": p["model"] or None,
              "policies": p["policy_presets"]}
    action, reason = N.decide(entry, phase_of(module, p, env) if entry else None, wanted, p["recreate"])
    if action == "none" or module.check_mode:
        module.exit_json(changed=action != "none", action=action, reason=reason, probe=probe,
                         sandbox={**(entry or {}), "phase": phase_of(module, p, env) if entry else None})
    if not p["accept_third_party_software"]:
        module.fail_json(msg="non-interactive onboarding requires accepting NemoClaw's third-party software notice: set "
                             "accept_third_party_software (nemoclaw_onboard_accept_third_party_software) to true")
    if not p["from_image"]:
        module.fail_json(msg="from_image is required: the sandbox image NemoClaw creates the sandbox from (--from-image)")
    argv = [p["nemoclaw_bin"], "onboard", "--non-interactive", "--events=jsonl", "--name", p["name"], "--from-image",
            p["from_image"], "--yes-i-accept-third-party-software"]
    if action == "recreate":
        argv.append("--recreate-sandbox")
    onboard_env = {**env, "NEMOCLAW_PROVIDER": p["provider"], "NEMOCLAW_POLICY_PRESETS": ",".join(p["policy_presets"]),
                   **({"NEMOCLAW_MODEL": p["model"]} if p["model"] else {}), **{k: str(v) for k, v in p["secrets"].items()}}
    rc, out, err = module.run_command(argv, environ_update=onboard_env)
    events, result = N.parse_events(out)
    if rc != 0 or not result or result.get("status") != "ok":
        step, message = N.failed_step(events)
        module.fail_json(msg=f"nemoclaw onboard failed at step {step or '?'} (exit {rc}): {message or err.strip()[-400:]}",
                         events=events, rc=rc)
    entry = N.registered(read_json(module, [p["nemoclaw_bin"], "list", "--json"], env), p["name"])
    phase = phase_of(module, p, env)
    if entry is None or phase != "Ready":
        module.fail_json(msg=f"onboarding reported ok but {p['name']} is {'not registered' if entry is None else phase}",
                         events=events)
    module.exit_json(changed=True, action=action, reason=reason, probe=probe, events=events,
                     sandbox={**entry, "phase": phase})


if __name__ == "__main__":
    main()
