#!/usr/bin/python
# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: nemoclaw_sandbox
short_description: Onboard (or remove) one NemoClaw sandbox unattended, guarded from outside
version_added: 0.1.0
description:
  - Runs C(nemoclaw onboard --non-interactive) only when it is needed. NemoClaw v0.0.21 (with OpenShell v0.0.26) keeps
    a healthy C(nemoclaw) gateway across onboardings and reuses a registered, Ready sandbox of the same name, but
    every run still restarts the Ollama auth proxy with a new token, rewrites the inference route and re-applies
    policy presets; a registered sandbox that is not Ready makes it exit 1 unless C(NEMOCLAW_RECREATE_SANDBOX=1).
    So the guard stays outside NemoClaw.
  - The sandbox counts as present when C(openshell sandbox list) shows it C(Ready) B(and) it is registered in
    C(~/.nemoclaw/sandboxes.json). Otherwise it is onboarded (with C(NEMOCLAW_RECREATE_SANDBOX=1) when the name is
    registered, i.e. the sandbox went missing or is not Ready, or when openshell lists it but it is not registered,
    which v0.0.21 would reuse without registering). O(recreate=true) forces a new onboarding, which deletes and
    recreates the sandbox.
  - NemoClaw's own output is returned with the given secrets, Bearer tokens and the dashboard's C(#token=...) (the
    OpenClaw gateway token its summary prints) masked.
  - Onboarding can leave a route that does not work (v0.0.21 checks only that one is configured), so afterwards
    the module asserts the route with C(openshell inference get) and lists the models through
    C(https://inference.local) from inside the sandbox (C(openshell sandbox exec)); a mismatch fails the task.
  - Secrets (NVIDIA or other provider API key, bot tokens) are module options marked C(no_log) and reach NemoClaw
    only through the environment of its process. They are never put on a command line or in the task's
    C(environment) (which ansible-core prints at C(-vvv) even with C(no_log)). NemoClaw v0.0.21 itself puts the
    provider key on C(curl)'s command line while it validates a remote endpoint (see docs/fleet.md).
  - O(state=absent) runs C(nemoclaw <name> destroy --yes) for a registered sandbox, or C(openshell sandbox delete
    <name>) for an unregistered one. At v0.0.21 destroying the last registered sandbox also stops the dashboard
    forward and destroys the C(nemoclaw) gateway (when OpenShell lists no other sandbox); the Ollama auth proxy keeps
    running. Never NemoClaw's host-wide C(uninstall).
author: agentsec.nemoclaw contributors (@agentsec)
extends_documentation_fragment:
  - agentsec.nemoclaw.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reports whether onboarding (or removal) would run, without running it.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  name:
    description: Sandbox name (RFC 1123 label, lower case).
    type: str
    required: true
  state:
    description: V(present) onboards when needed, V(absent) removes the sandbox.
    type: str
    choices: [present, absent]
    default: present
  provider:
    description:
      - C(NEMOCLAW_PROVIDER) as NemoClaw v0.0.21 accepts it (V(cloud) and V(nim) are its aliases of V(build) and
        V(nim-local)). V(ollama) is only offered by NemoClaw when Ollama is installed or answers on the host.
    type: str
    choices: [build, openai, anthropic, anthropicCompatible, gemini, custom, ollama, vllm, nim-local, cloud, nim]
    default: ollama
  model:
    description: C(NEMOCLAW_MODEL). Empty lets NemoClaw choose (ollama picks C(nemotron-3-nano:30b) when pulled).
    type: str
    default: ""
  policy_mode:
    description: C(NEMOCLAW_POLICY_MODE).
    type: str
    choices: [suggested, custom, skip]
    default: suggested
  policy_presets:
    description: C(NEMOCLAW_POLICY_PRESETS) (for example V(pypi), V(npm), V(telegram)).
    type: list
    elements: str
    default: []
  recreate:
    description: Onboard again even when the sandbox is Ready and registered (destroys the gateway's sandboxes).
    type: bool
    default: false
  ready_timeout:
    description:
      - Seconds to wait for a registered sandbox that is still C(Provisioning) (for example after a reboot) to become
        C(Ready) before deciding to onboard again, which would destroy it. 0 decides at once.
    type: int
    default: 300
  secrets:
    description:
      - Credentials for NemoClaw, by environment variable name (V(NVIDIA_API_KEY), V(OPENAI_API_KEY),
        V(ANTHROPIC_API_KEY), V(COMPATIBLE_ANTHROPIC_API_KEY), V(GEMINI_API_KEY), V(COMPATIBLE_API_KEY),
        V(TELEGRAM_BOT_TOKEN), V(SLACK_BOT_TOKEN), V(SLACK_APP_TOKEN), V(DISCORD_BOT_TOKEN)). Empty values are dropped.
        Pass them from vaulted variables.
    type: dict
    default: {}
  env:
    description:
      - Further non-secret environment for C(nemoclaw onboard), for example C(NEMOCLAW_EXPERIMENTAL),
        C(NEMOCLAW_ACCEPT_THIRD_PARTY_SOFTWARE), C(NEMOCLAW_POLICY_TIER), C(NEMOCLAW_ENDPOINT_URL), C(CHAT_UI_URL),
        C(PATH). Keys named like a secret are refused.
    type: dict
    default: {}
  docker_host:
    description: C(DOCKER_HOST) for NemoClaw and OpenShell (Docker Desktop on macOS - C(unix://~/.docker/run/docker.sock)).
    type: str
    default: ""
  gateway:
    description: OpenShell gateway NemoClaw onboards onto (C(OPENSHELL_GATEWAY)).
    type: str
    default: nemoclaw
  nemoclaw_bin:
    description: The nemoclaw executable.
    type: path
    default: nemoclaw
  openshell_bin:
    description: The openshell executable.
    type: path
    default: openshell
  registry:
    description: NemoClaw's sandbox registry.
    type: path
    default: ~/.nemoclaw/sandboxes.json
  verify_inference:
    description: After onboarding (and when the sandbox already exists) assert the inference route and probe it from inside.
    type: bool
    default: true
  expected_provider:
    description: OpenShell provider the route must use (V(ollama-local), V(nvidia-prod) ...). Empty skips the comparison.
    type: str
    default: ""
  expected_model:
    description: Model the route must use and C(/v1/models) must list. Defaults to O(model) when that is set.
    type: str
    default: ""
  probe_command:
    description: Command run inside the sandbox to list models through inference.local.
    type: list
    elements: str
    default: [curl, -sfS, -m, "60", https://inference.local/v1/models]
notes:
  - Runs as the user that owns NemoClaw's registry (C(~/.nemoclaw)); do not use C(become) to another user.
seealso:
  - module: agentsec.nemoclaw.sandbox_verify
"""

EXAMPLES = r"""
- name: Onboard the assistant sandbox with local inference through Ollama
  agentsec.nemoclaw.nemoclaw_sandbox:
    name: my-assistant
    provider: ollama
    model: nemotron-3-nano:30b
    policy_mode: custom
    policy_presets: [pypi, npm]
    docker_host: "unix://{{ ansible_facts['user_dir'] }}/.docker/run/docker.sock"
    expected_provider: ollama-local

- name: Onboard with NVIDIA cloud inference (key from the vault)
  agentsec.nemoclaw.nemoclaw_sandbox:
    name: cloud-agent
    provider: cloud
    secrets:
      NVIDIA_API_KEY: "{{ vault_nvidia_api_key }}"
    expected_provider: nvidia-prod

- name: Remove one sandbox (the gateway goes too when it was the last one)
  agentsec.nemoclaw.nemoclaw_sandbox:
    name: old-agent
    state: absent
"""

RETURN = r"""
action:
  description: What the module did (or would do in check mode).
  returned: always
  type: str
  sample: onboarded
  choices: [none, onboarded, recreated, destroyed, deleted]
reason:
  description: Why it acted (or did not).
  returned: always
  type: str
  sample: sandbox 'my-assistant' is registered but not listed by openshell (phase missing)
sandbox:
  description: State after the run.
  returned: always
  type: dict
  contains:
    name:
      description: Sandbox name.
      type: str
      returned: always
    phase:
      description: Phase from C(openshell sandbox list), or null when it is not listed.
      type: str
      returned: always
    registered:
      description: Whether NemoClaw's registry has it.
      type: bool
      returned: always
    entry:
      description: The registry entry (model, provider, policies).
      type: dict
      returned: always
inference:
  description: The gateway's inference route from C(openshell inference get).
  returned: when verify_inference and state is present
  type: dict
  sample: {configured: true, provider: ollama-local, model: "nemotron-3-nano:30b"}
models:
  description: Model ids listed through C(https://inference.local/v1/models) from inside the sandbox.
  returned: when verify_inference and state is present and not in check mode before onboarding
  type: list
  elements: str
onboard:
  description: Exit code and the last lines of NemoClaw's output when onboarding ran (secrets and tokens masked).
  returned: when onboarding ran
  type: dict
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _fleet as F


# Phases of `openshell sandbox list` that settle by themselves (run.rs phase_name at v0.0.26).
TRANSIENT = ("Provisioning",)


class Sandbox:
    def __init__(self, module):
        self.m = module
        p = module.params
        self.name = p["name"]
        env = {"OPENSHELL_GATEWAY": p["gateway"]}
        if p["docker_host"]:
            env["DOCKER_HOST"] = p["docker_host"]
        self.base_env = env

    def run(self, argv, env=None, check=True):
        full = dict(self.base_env, **(env or {}))
        rc, out, err = self.m.run_command(argv, environ_update=full)
        if check and rc != 0:
            self.m.fail_json(msg=f"'{' '.join(argv)}' failed with exit code {rc}: {(err or out).strip()[-2000:]}",
                             rc=rc, stdout=out, stderr=err)
        return rc, out, err

    def tool(self, option):
        """Path of an executable option, or None when it is not installed (check mode on a fresh host)."""
        path = self.m.params[option]
        found = path if os.path.isabs(path) else self.m.get_bin_path(path)
        return found if found and os.access(found, os.X_OK) else None

    def require(self, option):
        if not self.tool(option):
            self.m.fail_json(msg=f"{option} '{self.m.params[option]}' is not an executable; install it first "
                                 "(roles openshell_cluster and nemoclaw_onboard)")

    def observe(self):
        path = self.m.params["registry"]
        text = ""
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                text = f.read()
        entry = F.load_registry(text)["sandboxes"].get(self.name)
        phase = None
        if self.tool("openshell_bin"):
            argv = [self.m.params["openshell_bin"], "sandbox", "list"]
            dummy, out, dummy2 = self.run(argv, check=False)
            try:
                phase = F.parse_sandbox_list(out).get(self.name)
            except ValueError as exc:
                self.m.fail_json(msg=f"'{' '.join(argv)}': {exc}")
        return {"name": self.name, "phase": phase, "registered": entry is not None, "entry": entry or {}}

    def onboard_env(self, recreate):
        p = self.m.params
        env = {k: str(v) for k, v in p["env"].items()}
        env.update({k: str(v) for k, v in p["secrets"].items() if v})
        env.update({
            "NEMOCLAW_NON_INTERACTIVE": "1",
            "NEMOCLAW_SANDBOX_NAME": self.name,
            "NEMOCLAW_PROVIDER": p["provider"],
            "NEMOCLAW_POLICY_MODE": p["policy_mode"],
        })
        if p["model"]:
            env["NEMOCLAW_MODEL"] = p["model"]
        if p["policy_presets"]:
            env["NEMOCLAW_POLICY_PRESETS"] = ",".join(p["policy_presets"])
        if recreate:
            env["NEMOCLAW_RECREATE_SANDBOX"] = "1"
        return env

    def verify(self, result):
        p = self.m.params
        dummy, out, dummy2 = self.run([p["openshell_bin"], "inference", "get"], check=False)
        inference = F.parse_inference(out)
        result["inference"] = inference
        expected_model = p["expected_model"] or p["model"]
        problems = []
        if not inference["configured"]:
            problems.append("the gateway has no inference route (openshell inference get: not configured)")
        if p["expected_provider"] and inference["provider"] != p["expected_provider"]:
            problems.append(f"inference provider is '{inference['provider']}', expected '{p['expected_provider']}'")
        if expected_model and inference["model"] != expected_model:
            problems.append(f"inference model is '{inference['model']}', expected '{expected_model}'")
        rc, out, err = self.run([p["openshell_bin"], "sandbox", "exec", "-n", self.name, "--no-tty", "--", *p["probe_command"]],
                                check=False)
        result["models"] = F.model_ids(out) if rc == 0 else []
        if rc != 0:
            problems.append(f"inference.local probe inside '{self.name}' failed (exit {rc}): {(err or out).strip()[-500:]}")
        elif expected_model and expected_model not in result["models"]:
            problems.append(f"inference.local lists {result['models']}, not '{expected_model}'")
        if problems:
            self.m.fail_json(msg=f"sandbox '{self.name}': " + "; ".join(problems), **result)


def main():
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "provider": {"type": "str", "choices": list(F.PROVIDERS), "default": "ollama"},
            "model": {"type": "str", "default": ""},
            "policy_mode": {"type": "str", "choices": ["suggested", "custom", "skip"], "default": "suggested"},
            "policy_presets": {"type": "list", "elements": "str", "default": []},
            "recreate": {"type": "bool", "default": False},
            "ready_timeout": {"type": "int", "default": 300},
            "secrets": {"type": "dict", "default": {}, "no_log": True},
            "env": {"type": "dict", "default": {}},
            "docker_host": {"type": "str", "default": ""},
            "gateway": {"type": "str", "default": "nemoclaw"},
            "nemoclaw_bin": {"type": "path", "default": "nemoclaw"},
            "openshell_bin": {"type": "path", "default": "openshell"},
            "registry": {"type": "path", "default": "~/.nemoclaw/sandboxes.json"},
            "verify_inference": {"type": "bool", "default": True},
            "expected_provider": {"type": "str", "default": ""},
            "expected_model": {"type": "str", "default": ""},
            "probe_command": {"type": "list", "elements": "str",
                              "default": ["curl", "-sfS", "-m", "60", "https://inference.local/v1/models"]},
        },
        supports_check_mode=True,
    )
    p = module.params
    problems = F.sandbox_name_problems(p["name"])
    problems += F.onboard_problems(p["provider"], {k: bool(v) for k, v in p["secrets"].items()}, None, experimental=True,
                                   policy_mode=p["policy_mode"], policy_presets=p["policy_presets"],
                                   endpoint_url=str(p["env"].get("NEMOCLAW_ENDPOINT_URL", "")),
                                   policy_tier=str(p["env"].get("NEMOCLAW_POLICY_TIER", "balanced")))
    secretish = sorted(k for k in p["env"] if k.endswith(("_KEY", "_TOKEN", "_SECRET", "_PASSWORD")))
    if secretish:
        problems.append(f"env {secretish} look like secrets; pass them in secrets (no_log) instead")
    if p["ready_timeout"] < 0:
        problems.append(f"ready_timeout {p['ready_timeout']} must not be negative")
    if problems:
        module.fail_json(msg="; ".join(problems))

    sb = Sandbox(module)
    before = sb.observe()
    deadline = time.monotonic() + p["ready_timeout"]
    while p["state"] == "present" and before["registered"] and before["phase"] in TRANSIENT and time.monotonic() < deadline:
        time.sleep(2)  # a pod coming up after a restart: onboarding now would destroy it
        before = sb.observe()
    result = {"changed": False, "action": "none", "sandbox": before}

    if p["state"] == "absent":
        if before["registered"]:
            result.update(action="destroyed", reason=f"'{sb.name}' is registered with NemoClaw")
            argv = [p["nemoclaw_bin"], sb.name, "destroy", "--yes"]
        elif before["phase"]:
            result.update(action="deleted", reason=f"'{sb.name}' is listed by openshell but not registered with NemoClaw")
            argv = [p["openshell_bin"], "sandbox", "delete", sb.name]
        else:
            result["reason"] = f"'{sb.name}' does not exist"
            module.exit_json(**result)
        result["changed"] = True
        if not module.check_mode:
            sb.require("nemoclaw_bin" if argv[0] == p["nemoclaw_bin"] else "openshell_bin")
            sb.run(argv)
            result["sandbox"] = sb.observe()
        module.exit_json(**result)

    ready = before["phase"] == "Ready" and before["registered"]
    if ready and not p["recreate"]:
        result["reason"] = f"'{sb.name}' is Ready and registered"
        if p["verify_inference"]:
            sb.verify(result)
        module.exit_json(**result)

    # A live but unregistered sandbox needs the recreate too: NemoClaw v0.0.21 would reuse it as it is and never
    # register it (src/lib/onboard.ts:3088-3096 returns before registerSandbox @db3453b5).
    recreate = before["registered"] or bool(before["phase"]) or p["recreate"]
    if p["recreate"]:
        reason = "recreate was requested"
    elif before["registered"]:
        reason = f"'{sb.name}' is registered but its phase is {before['phase'] or 'missing'}"
    elif before["phase"]:
        reason = f"'{sb.name}' is listed by openshell ({before['phase']}) but not registered with NemoClaw"
    else:
        reason = f"'{sb.name}' is not registered with NemoClaw"
    result.update(changed=True, action="recreated" if recreate else "onboarded", reason=reason)
    if module.check_mode:
        module.exit_json(**result)

    sb.require("nemoclaw_bin")
    sb.require("openshell_bin")
    rc, out, err = sb.run([p["nemoclaw_bin"], "onboard", "--non-interactive"], env=sb.onboard_env(recreate), check=False)
    lines = F.mask_output(out + err, [v for v in p["secrets"].values() if v]).splitlines()
    result["onboard"] = {"rc": rc, "output_tail": lines[-40:]}
    if rc != 0:
        module.fail_json(msg=f"nemoclaw onboard for '{sb.name}' failed with exit code {rc}: " + " | ".join(lines[-8:]), **result)
    after = sb.observe()
    result["sandbox"] = after
    if not (after["phase"] == "Ready" and after["registered"]):
        module.fail_json(msg=f"nemoclaw onboard exited 0 but '{sb.name}' is not Ready and registered "
                             f"(phase {after['phase']}, registered {after['registered']})", **result)
    if p["verify_inference"]:
        sb.verify(result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
