#!/usr/bin/python
# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: sandbox_verify
short_description: Verify the six security layers of an OpenShell sandbox from the agent's own vantage point
version_added: 0.1.0
description:
  - Probes each layer by behaviour from inside a sandbox, as the agent user, in the agent's network namespace and under
    its Landlock and seccomp domain, in one call with the probes running concurrently.
  - "On the sandbox host (the usual way): with O(exec), the module runs on the host through Ansible's own connection and
    pipes the probes into every sandbox through the target's exec command (C(openshell sandbox exec -n NAME --)): code
    and parameters travel on stdin to C(python3 -I -S), so nothing is written into the sandbox and nothing the agent can
    write runs in the verifier. Sandboxes come from O(sandboxes) or from the O(discover) command; they are verified
    concurrently and the result has one entry per sandbox."
  - Without O(exec), the probes run in the module's own process (for a task that already runs as the agent, e.g. through
    the P(agentsec.nemoclaw.openshell#connection) connection plugin).
  - L1 filesystem (read-only root, Landlock proven by EACCES on a world-writable path, allowed paths, no root, no
    capabilities), L2 seccomp (filter mode, AF_PACKET/AF_NETLINK refused with probes that only a filter answers with
    EPERM, AF_INET allowed, SOCK_PACKET/high-bit/io_uring bypasses, inherited sockets), L3 network (route via the
    proxy, direct egress blocked, no DNS leak), L4 proxy policy (403 for a denied host, tunnel for an allowed one), L5
    TLS interception (CA file and a chain signed by it), L6 inference (inference.local resolves and answers without
    a key; no key-shaped values readable by the agent).
  - Every address a probe contacts is an option; nothing is contacted unless given.
  - Never changes anything. O(fail_on) decides whether failing findings fail the task.
author: agentsec.nemoclaw contributors (@agentsec)
extends_documentation_fragment:
  - agentsec.nemoclaw.attributes
  - agentsec.nemoclaw.attributes.INFO_MODULE
options:
  checks:
    description: Check ids (V(L1.ro_root)) or layers (V(L2)) to run. Default all.
    type: list
    elements: str
    default: []
  skip_checks:
    description: Check ids or layers to leave out.
    type: list
    elements: str
    default: []
  fail_on:
    description:
      - V(none) never fails the task, V(high) fails on failing checks of severity high or critical, V(any) fails on any
        failing or erroring check.
    type: str
    choices: [none, high, any]
    default: high
  timeout:
    description: Timeout in seconds of each proxy/TLS probe.
    type: float
    default: 2.0
  egress_timeout:
    description: Timeout in seconds of the direct-egress and DNS-leak probes (a blocked connection may only time out).
    type: float
    default: 1.0
  proxy:
    description: The sandbox proxy as C(ip:port). Its IP is also the expected default gateway.
    type: str
    default: 10.200.0.1:3128
  allowed_host:
    description: A C(host[:port]) the network policy allows (a tunnel through the proxy must open).
    type: str
  denied_host:
    description: A C(host[:port]) the network policy does not allow (the proxy must answer 403).
    type: str
  tls_host:
    description: An allowed C(host[:port]) serving TLS, for the interception check. Defaults to O(allowed_host).
    type: str
  egress_target:
    description: A C(host:port) outside the sandbox that a direct TCP connection must not reach. Required for L3.direct_egress.
    type: str
  dns_resolver:
    description: A resolver C(ip[:port]) outside the sandbox that must not answer. Required for L3.dns_leak.
    type: str
  dns_query_name:
    description: Name asked in the DNS leak probe (default the host of O(allowed_host), else C(example.com)).
    type: str
  ca_path:
    description: Where the sandbox CA certificate must be.
    type: path
    default: /etc/openshell-tls/openshell-ca.pem
  ca_mode:
    description: Expected octal mode of the CA file. When unset, any mode not writable by group or others passes.
    type: str
  inference_host:
    description: The virtual inference host.
    type: str
    default: inference.local
  expected_model:
    description: Model id that C(GET /v1/models) must list. Required for L6.inference_models.
    type: str
  ro_paths:
    description: Paths on the root filesystem where a create must fail with EROFS.
    type: list
    elements: path
    default: [/usr, /root, /etc]
  landlock_probe_paths:
    description: World-writable directories outside the Landlock allow-list; a create must fail with EACCES.
    type: list
    elements: path
    default: [/dev/shm]
  writable_paths:
    description: Paths the agent must be able to write.
    type: list
    elements: path
    default: [/sandbox, /tmp]
  config_scan_paths:
    description: Files or directories scanned for key-shaped values, besides every readable C(/proc/*/environ).
    type: list
    elements: path
    default: [/sandbox/.openclaw, /sandbox/.nemoclaw, /sandbox/.config, /tmp]
  exec:
    description:
      - Command prefix that runs its arguments inside a sandbox, with C({sandbox}) for the sandbox name, e.g.
        C([openshell, sandbox, exec, -n, "{sandbox}", --no-tty, --]) (the target contract's C(sandbox.exec)).
        Enables host mode.
    type: list
    elements: str
    default: []
  sandboxes:
    description: Sandboxes to verify in host mode. Empty means every sandbox O(discover) lists.
    type: list
    elements: str
    default: []
  discover:
    description: Command that prints the host's sandbox names, one per line (C(openshell sandbox list --names)).
    type: list
    elements: str
    default: []
  allow_empty:
    description: In host mode, succeed when no sandbox is found (otherwise that is an error naming the host).
    type: bool
    default: false
  python:
    description: The interpreter inside the sandboxes.
    type: str
    default: /usr/bin/python3
  environment:
    description: Environment for the exec and discovery commands (e.g. C(DOCKER_HOST)); nothing secret belongs here.
    type: dict
    default: {}
  exec_timeout:
    description: Seconds one sandbox may take to answer.
    type: float
    default: 120
  residual:
    description:
      - Check ids the target leaves open by design (the target contract's C(residual)), each with the reason. Such a
        finding keeps its status, gets a C(residual) field with the reason, and does not count for O(fail_on).
    type: dict
    default: {}
  policy_command:
    description:
      - >-
        Host mode: the command that prints a sandbox's policy (the target contract's C(sandbox.policy), C({sandbox})
        replaced). Each sandbox is then probed against its own policy: O(writable_paths) become the policy's
        C(read_write) directories (the working directory too with C(include_workdir)), and L1.policy_read_only tries
        to write in every C(read_only) directory its permissions would allow. A policy that cannot be read is an error
        of that sandbox.
    type: list
    elements: str
    default: []
  workdir:
    description: The sandboxes' working directory (read-write when the policy has C(include_workdir)).
    type: str
    default: /sandbox
  extensions:
    description:
      - >-
        Probe extensions of the target's line (the target contract's C(verify.extensions)) - V(_verify_l7) (OpenShell
        0.0.116, L4.l7_enforcement), V(_verify_v01) (0.1.x, the companion supervisor's sandbox model) and
        V(_verify_policy) (the policy lines - L1.landlock_hard_requirement, from the policy O(policy_command) reads on
        the host); see docs/lines.md.
    type: list
    elements: str
    choices: [_verify_l7, _verify_policy, _verify_v01]
    default: []
  l7_readonly_host:
    description: An allowed host whose L7 rules are read-only (GET only), for L4.l7_enforcement (C(_verify_l7)).
    type: str
  v01_ca_dir:
    description: Where the 0.1.x supervisor keeps its CA material (C(_verify_v01); the target contract's C(verify.ca_dir)).
    type: str
  policy_read_only:
    description: Sandbox mode (or set per sandbox from O(policy_command)) - the policy's read-only directories L1.policy_read_only probes.
    type: list
    elements: path
    default: []
  fixes:
    description:
      - How the target fixes each layer (the target contract's C(layers)) - per layer C(fixable), C(toggle) (the
        hardening role's switch), C(tag) and C(fix). Every finding of that layer carries it as C(fix), so a report
        links a failing probe to the switch and tag that close it.
    type: dict
    default: {}
  unlisted_port:
    description: A port the policy does not list for O(allowed_host); a CONNECT to it must be refused (L4.port_scope).
    type: int
    default: 8443
  allowed_http:
    description: The allowed host on plain HTTP (C(host[:port]), default O(allowed_host) on port 80), for L4.authority.
    type: str
  denied_http:
    description: The denied host on plain HTTP (default O(denied_host) on port 80), for L4.authority.
    type: str
  allowed_ip:
    description: The address O(allowed_host) resolves to; a CONNECT to the literal must be refused (L4.ip_literal).
    type: str
  peer_addresses:
    description:
      - >-
        Pod addresses of the host's other sandboxes (C(ip), port 2222 - every pod's SSH listener - or C(ip:port)). A
        direct connection to each must not open (L3.peer_direct) and the proxy must refuse to relay to each
        (L4.peer_via_proxy); both are skipped without it. Names are never resolved.
    type: list
    elements: str
    default: []
  peer_command:
    description:
      - >-
        Host mode only. A command run on the host (with O(environment)) that lists the host's sandbox pods as a
        Kubernetes pod list (C(kubectl get pods -o json); the pod is named after its sandbox). Each sandbox is then
        probed against every other sandbox pod's address, after O(peer_addresses). Addresses come from the cluster's
        API, not from any sandbox. The target contract's C(sandbox.peers); empty turns discovery off.
      - A failing command or an output that is not a pod list is a verifier error (the run cannot complete).
    type: list
    elements: str
    default: []
  hook_scan_paths:
    description: Agent-writable paths searched for interpreter start-up hooks (L1.startup_hooks).
    type: list
    elements: path
    default: [/sandbox, /tmp, /var/tmp]
  netlink_allowed_protocols:
    description:
      - Netlink protocols (numbers, 0-31; 0 is NETLINK_ROUTE) the sandbox's seccomp filter is meant to allow.
        L2.af_netlink asks for every other protocol below MAX_LINKS (32) and passes only when the filter refuses each.
      - The default is what the hardening launcher's filter and upstream's filter from v0.0.55 (#1568) allow
        (C(NETLINK_ROUTE), for C(getifaddrs)); an empty list expects AF_NETLINK refused entirely.
    type: list
    elements: int
    default: [0]
notes:
  - Landlock is invisible in C(/proc); only behaviour proves it. The kernel's Landlock ABI is reported in the vantage
    as information, never as enforcement.
  - Results taken from a C(kubectl exec) or C(docker exec) shell describe the pod, not the agent; the vantage of
    every finding (uid, seccomp mode and filter count, network namespace) shows where it was measured.
seealso:
  - name: docs/verify.md
    description: Check catalogue, vantage rules and report formats.
    link: https://github.com/agentsec/nemoclaw/blob/main/docs/verify.md
"""

EXAMPLES = r"""
- name: Verify every sandbox of this OpenShell host from the host (how the verify role does it)
  agentsec.nemoclaw.sandbox_verify:
    exec: "{{ lookup('agentsec.nemoclaw.target', 'sandbox.exec') }}"
    discover: "{{ lookup('agentsec.nemoclaw.target', 'sandbox.discover') }}"
    environment: "{{ lookup('agentsec.nemoclaw.target', 'openshell.environment') }}"
    allowed_host: pypi.org:443
    expected_model: nemotron-3-nano:30b
    fail_on: none
  register: verify

- name: The same, each sandbox also probed against the host's other sandboxes (addresses from the cluster's API)
  agentsec.nemoclaw.sandbox_verify:
    exec: "{{ lookup('agentsec.nemoclaw.target', 'sandbox.exec') }}"
    discover: "{{ lookup('agentsec.nemoclaw.target', 'sandbox.discover') }}"
    environment: "{{ lookup('agentsec.nemoclaw.target', 'openshell.environment') }}"
    peer_command: "{{ lookup('agentsec.nemoclaw.target', 'sandbox.peers') }}"
    allowed_host: pypi.org:443
    checks: [L3.peer_direct, L4.peer_via_proxy]
  register: verify_peers

- name: Verify a lab sandbox (run through the openshell connection plugin)
  agentsec.nemoclaw.sandbox_verify:
    proxy: 10.200.0.1:3128
    allowed_host: allowed.lab:443
    denied_host: denied.lab:443
    egress_target: 172.30.99.10:443
    dns_resolver: 172.30.99.10
    expected_model: nemotron-3-nano:30b
    fail_on: none
  register: verify

- name: Only the seccomp layer, failing on anything
  agentsec.nemoclaw.sandbox_verify:
    checks: [L2]
    fail_on: any
"""

RETURN = r"""
sandboxes:
  description:
    - Host mode only. One entry per sandbox with its C(findings), C(layers), C(vantage), C(failed_checks),
      C(duration_ms) and C(peer_addresses) (the other sandboxes it was probed against), or with C(error) (and
      C(unreachable)) when no result came back.
  returned: when O(exec) is set
  type: dict
errors:
  description: Host mode only. One line per sandbox without a result (the sandbox, then why), and the discovery failure.
  returned: when O(exec) is set
  type: list
  elements: str
findings:
  description: One entry per check (local mode).
  returned: when O(exec) is not set
  type: list
  elements: dict
  contains:
    id:
      description: Check id.
      type: str
      sample: L2.af_netlink
    layer:
      description: Layer, V(L1) to V(L6).
      type: str
    title:
      description: What the check proves.
      type: str
    status:
      description: V(pass), V(fail), V(error) or V(skipped).
      type: str
    severity:
      description: V(info), V(low), V(medium), V(high) or V(critical).
      type: str
    expected:
      description: What a passing observation looks like.
      type: str
    observed:
      description: What the probe saw (errno names, values); secrets are masked.
      type: dict
    vantage:
      description: Where the probe ran (uid, pid, seccomp mode and filters, NoNewPrivs, CapEff, netns inode, Landlock ABI).
      type: dict
    remediation:
      description: How to fix a finding that did not pass.
      type: str
    duration_ms:
      description: Probe duration.
      type: int
layers:
  description: Per-layer summary like the paper's Table 4 (passed, total, result, evidence).
  returned: when O(exec) is not set
  type: dict
vantage:
  description: The vantage of this run.
  returned: when O(exec) is not set
  type: dict
failed_checks:
  description: Check ids that made (or would make, with another O(fail_on)) the task fail; C(<sandbox>:<id>) in host mode.
  returned: always
  type: list
  elements: str
duration_ms:
  description: Wall time of all probes.
  returned: always
  type: int
"""

import concurrent.futures
import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import (
    _policy, _sandbox_exec, _verify, _verify_escape, _verify_isolation, _verify_l7, _verify_policy, _verify_proxy, _verify_v01)

_verify.register(_verify_proxy)
_verify.register(_verify_isolation)
_verify.register(_verify_escape)

HOST_ONLY = ("exec", "sandboxes", "discover", "allow_empty", "python", "environment", "exec_timeout", "residual", "fixes",
             "policy_command", "workdir", "extensions", "peer_command")
# Probe extensions of the newer lines (docs/lines.md), chosen by the target contract's verify.extensions.
LINE_EXTENSIONS = {"_verify_l7": _verify_l7, "_verify_v01": _verify_v01, "_verify_policy": _verify_policy}


def probe_modules(extensions=()):
    """The modules piped into a sandbox, in import order: the core probes, the proxy, isolation and escape probes, the
    line's."""
    return [_verify, _verify_proxy, _verify_isolation, _verify_escape, *(LINE_EXTENSIONS[n] for n in extensions)]


def entry_module(extensions=()):
    """The module whose sandbox_main runs in the sandbox (0.1.x's installs its no-thread fallback first)."""
    return _verify_v01 if "_verify_v01" in extensions else _verify


def policy_params(params, name, env):
    """Probe parameters from a sandbox's own policy: its writable directories and its read-only ones, and for the
    policy lines' extension what the gateway says about Landlock and the L7 rules. The policy command prints either
    the JSON object of `policy get --full --output json` (host-service lines) or status lines, `---` and YAML."""
    argv = _sandbox_exec.expand(params["policy_command"], name)
    output = _sandbox_exec.host_command(argv, env, params["exec_timeout"], "the policy command")
    parsed = _policy.policy_output(output)
    if parsed is None:
        return {}
    doc, revision = parsed
    # read only where a check uses it (the policy extension), so no other target depends on those parts of the policy
    found = ({"policy_landlock_compatibility": _policy.landlock_from(doc), "policy_l7_endpoints": _policy.l7_endpoints(doc),
              "policy_revision": revision} if "_verify_policy" in params["extensions"] else {})
    fs = _policy.filesystem_from(doc)
    if fs is None:
        return found
    _ro, rw = _policy.landlock_lists(fs, params["workdir"])
    return {**found, "writable_paths": [p for p in rw if not p.startswith("/dev/")], "policy_read_only": fs["read_only"]}


def read_policies(params, names, env):
    """{sandbox: probe parameters from its policy, or the PolicyError / ExecError that reading it raised}, the policy
    commands run side by side (each is a CLI start of its own: ten sandboxes read one after another cost ten)."""
    if not params["policy_command"] or not names:
        return {}
    out = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, len(names))) as pool:
        futures = {name: pool.submit(policy_params, params, name, env) for name in names}
        for name, future in futures.items():
            try:
                out[name] = future.result()
            except (_policy.PolicyError, _sandbox_exec.ExecError) as exc:
                out[name] = exc
    return out


def peer_pods(argv, env, timeout):
    """{sandbox: [pod IPs]} of every sandbox pod on this host, from the target's peer command (a pod list)."""
    return _verify_isolation.peers_from_pods(_sandbox_exec.host_command(argv, env, timeout, "the pod list"))


def host_mode(module, params, check_ids):
    env = {**os.environ, **{k: str(v) for k, v in params["environment"].items()}}
    errors = []
    names = list(params["sandboxes"])
    if not names and params["discover"]:
        try:
            names = _sandbox_exec.discover(params["discover"], env, params["exec_timeout"])
        except _sandbox_exec.ExecError as exc:
            errors.append(str(exc))
    if not names and not errors and not params["allow_empty"]:
        errors.append(f"no sandbox found on this host ({' '.join(params['discover']) or 'no sandboxes given'})")
    pods, peer_error = {}, None
    # the pod list is read only when a peer check is selected and the host can have a peer: not when discovery found
    # one sandbox only (then there is no other to probe, and the skip says so without the extra command)
    alone = not params["sandboxes"] and len(names) == 1
    discover_peers = bool(params["peer_command"] and names and not alone and _verify_isolation.PEER_CHECKS & set(check_ids))
    if discover_peers:
        try:
            pods = peer_pods(params["peer_command"], env, params["exec_timeout"])
        except (ValueError, _sandbox_exec.ExecError) as exc:
            peer_error = f"peer discovery: {exc}"
            errors.append(peer_error)
    probe_params = {k: v for k, v in params.items() if k not in HOST_ONLY and k != "fail_on"}
    probe_params["checks"] = check_ids
    start = time.monotonic()
    data, policy_errors, peers_used = {}, {}, {}
    policies = read_policies(params, names, env)
    for name in names:
        override = policies.get(name, {})
        if isinstance(override, Exception):
            policy_errors[name] = {"error": f"its policy cannot be read: {override}"}
            continue
        override = dict(override)
        if alone and params["peer_command"] and not params["peer_addresses"]:
            override["peer_skip_reason"] = "no other sandbox on this host (the target's discovery lists this one only)"
        if discover_peers:
            override["peer_addresses"] = peers_used[name] = _verify_isolation.peers_of(name, pods, params["peer_addresses"])
            override["peer_skip_reason"] = peer_error or (f"no other sandbox of this host has a pod address "
                                                          f"(`{' '.join(params['peer_command'])}`)")
        data[name] = _sandbox_exec.payload(probe_modules(params["extensions"]), entry_module(params["extensions"]),
                                           "sandbox_main", {**probe_params, **override})
    results = _sandbox_exec.run_all(params["exec"], list(data), params["python"], data, env, params["exec_timeout"]) if data else {}
    results.update(policy_errors)
    for name, res in results.items():
        if "error" in res:
            errors.append(f"{name}: {res['error']}")
        else:
            res["peer_addresses"] = peers_used.get(name, params["peer_addresses"])
            _verify.mark_residual(res["findings"], params["residual"])
            _verify.mark_fixes(res["findings"], params["fixes"])
            res["layers"] = _verify.summarize(res["findings"])
    failed = [f"{n}:{c}" for n, r in results.items() for c in r.get("failed_checks", [])]
    bad = [f"{n}:{c}" for n, r in results.items() for c in _verify.failing(r.get("findings", []), params["fail_on"])]
    result = dict(changed=False, sandboxes=results, errors=errors, failed_checks=failed,
                  duration_ms=int((time.monotonic() - start) * 1000))
    if errors:
        module.fail_json(msg="sandbox verification could not complete: " + "; ".join(errors), **result)
    if bad:
        module.fail_json(msg=f"sandbox verification failed (fail_on={params['fail_on']}): {', '.join(bad)}", **result)
    module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            checks=dict(type="list", elements="str", default=[]),
            skip_checks=dict(type="list", elements="str", default=[]),
            fail_on=dict(type="str", default="high", choices=["none", "high", "any"]),
            timeout=dict(type="float", default=2.0),
            egress_timeout=dict(type="float", default=1.0),
            proxy=dict(type="str", default="10.200.0.1:3128"),
            allowed_host=dict(type="str"),
            denied_host=dict(type="str"),
            tls_host=dict(type="str"),
            egress_target=dict(type="str"),
            dns_resolver=dict(type="str"),
            dns_query_name=dict(type="str"),
            ca_path=dict(type="path", default="/etc/openshell-tls/openshell-ca.pem"),
            ca_mode=dict(type="str"),
            inference_host=dict(type="str", default="inference.local"),
            expected_model=dict(type="str"),
            ro_paths=dict(type="list", elements="path", default=["/usr", "/root", "/etc"]),
            landlock_probe_paths=dict(type="list", elements="path", default=["/dev/shm"]),
            writable_paths=dict(type="list", elements="path", default=["/sandbox", "/tmp"]),
            config_scan_paths=dict(type="list", elements="path", default=["/sandbox/.openclaw", "/sandbox/.nemoclaw", "/sandbox/.config", "/tmp"]),
            hook_scan_paths=dict(type="list", elements="path", default=["/sandbox", "/tmp", "/var/tmp"]),
            netlink_allowed_protocols=dict(type="list", elements="int", default=[0]),
            exec=dict(type="list", elements="str", default=[]),
            sandboxes=dict(type="list", elements="str", default=[]),
            discover=dict(type="list", elements="str", default=[]),
            allow_empty=dict(type="bool", default=False),
            python=dict(type="str", default="/usr/bin/python3"),
            environment=dict(type="dict", default={}),
            exec_timeout=dict(type="float", default=120),
            residual=dict(type="dict", default={}),
            fixes=dict(type="dict", default={}),
            policy_command=dict(type="list", elements="str", default=[]),
            workdir=dict(type="str", default="/sandbox"),
            extensions=dict(type="list", elements="str", default=[], choices=sorted(LINE_EXTENSIONS)),
            l7_readonly_host=dict(type="str"),
            v01_ca_dir=dict(type="str"),
            policy_read_only=dict(type="list", elements="path", default=[]),
            unlisted_port=dict(type="int", default=8443),
            allowed_http=dict(type="str"),
            denied_http=dict(type="str"),
            allowed_ip=dict(type="str"),
            peer_addresses=dict(type="list", elements="str", default=[]),
            peer_command=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    params = dict(module.params)
    for name in ("timeout", "egress_timeout"):
        if not 0 < params[name] <= 60:
            module.fail_json(msg=f"{name} {params[name]!r} must be between 0 and 60 seconds")
    bad = [p for p in params["netlink_allowed_protocols"] if not 0 <= p < 32]
    if bad:
        module.fail_json(msg=f"netlink_allowed_protocols: {bad} are not netlink protocols (0-31)")
    for name in params["extensions"]:
        _verify.register(LINE_EXTENSIONS[name])
    try:
        check_ids = _verify.select_checks(params["checks"], params["skip_checks"])
        _verify.plan(params, {})  # validates addresses and the model id before any probe runs
        _verify_isolation.plan(params)  # and the peer addresses
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    if params["exec"]:
        host_mode(module, params, check_ids)
    start = time.monotonic()
    findings, vantage = _verify.run_checks(params, check_ids)
    _verify.mark_residual(findings, params["residual"])
    _verify.mark_fixes(findings, params["fixes"])
    result = dict(
        changed=False,
        findings=findings,
        layers=_verify.summarize(findings),
        vantage=vantage,
        failed_checks=_verify.failing(findings, "any"),
        duration_ms=int((time.monotonic() - start) * 1000),
    )
    bad = _verify.failing(findings, params["fail_on"])
    if bad:
        module.fail_json(msg=f"sandbox verification failed (fail_on={params['fail_on']}): {', '.join(bad)}", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
