"""The OpenShell 0.0.116 line end to end on a stand-in Linux host (tests/integration/_openshell_host_env.py): role
openshell_service installs the deb and runs the systemd user unit, the gateway's Docker driver creates a real sandbox
container, the verifier runs inside it through `openshell sandbox exec`, the hardening backend `policy` closes what
the line's interfaces can close, and everything is idempotent, check-mode safe and removable.

The attack comes first: before hardening, a POST the sandbox policy forbids (access: read-only) reaches the server,
because L7 `enforcement` defaults to `audit` - L4.l7_enforcement fails, and so does L4.l7_policy_enforced, which reads
the same gap from the gateway's policy on the host (two oracles: the server that got the POST, and the gateway's
own policy); after `enforcement: enforce` is set through `openshell policy set` both pass, and state absent brings
the gap back (the test keeps proving it can fail).
"""
from __future__ import annotations

import json
import time

import pytest

import _openshell_host_env as E

pytestmark = [pytest.mark.skipif(not E.docker_available(), reason="needs a Docker engine"),
              pytest.mark.oracle("docker", "upstream")]

ROLE = [{"name": "OpenShell host service", "ansible.builtin.include_role": {"name": "agentsec.nemoclaw.openshell_service"}}]
HARDEN = [{"name": "Harden", "ansible.builtin.include_role": {"name": "agentsec.nemoclaw.hardening", "tasks_from": "policy"}}]


def target(name):
    from ansible_collections.agentsec.nemoclaw.plugins.lookup import target as T

    return T.resolve(T.load(name), "Linux", "/home/studio", None)


def verify(host, sandbox):
    from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _verify
    from ansible_collections.agentsec.nemoclaw.plugins.modules import sandbox_verify

    extensions = target("openshell_host")["verify"]["extensions"]  # what the module pipes in for this line's target
    modules = sandbox_verify.probe_modules(extensions)
    E.use_extensions(*modules[1:])
    params = {**E.verify_params(host), **E.policy_overrides(host, sandbox, extensions=extensions)}
    params["checks"] = _verify.select_checks([], target("openshell_host")["verify"]["skip_checks"])  # as the role does
    result = E.verify_payload_run(host, sandbox, params, modules, sandbox_verify.entry_module(extensions))
    assert "error" not in result, result
    _verify.mark_residual(result["findings"], target("openshell_host")["residual"])
    return result, _verify.failing(result["findings"], "high")


def _container_memory():
    """HostConfig.Memory of the sandbox `sb`'s container, found by the driver's labels (lib.rs @v0.0.111 L2580-2597)."""
    names = E.docker("ps", "--filter", "label=openshell.ai/sandbox-name=sb", "--filter",
                     "label=openshell.ai/managed-by=openshell", "--format", "{{.Names}}").stdout.split()
    assert len(names) == 1, names
    return json.loads(E.docker("inspect", names[0]).stdout)[0]["HostConfig"]["Memory"]


def test_openshell_host_site_flow(tmp_path):
    with E.stand_in("linux", versions=("0.0.116",), subnet_octet=82) as host:
        role_vars = host.gateway_vars("0.0.116")
        rc, out = E.playbook(tmp_path, host, ROLE, role_vars)
        assert rc == 0, out[-4000:]
        rc, out = E.playbook(tmp_path, host, ROLE, role_vars)
        assert rc == 0 and E.changed_tasks(out) == [], E.changed_tasks(out) or out[-3000:]
        rc, out = E.playbook(tmp_path, host, ROLE, role_vars, check=True)
        assert rc == 0 and E.changed_tasks(out) == [], E.changed_tasks(out) or out[-3000:]

        # the registration and the status as install.sh reads them (commands/gateway.rs @v0.0.111 L1359-1372)
        gateways = json.loads(host.openshell("gateway", "list", "--output", "json").stdout)
        assert [(g["name"], g["endpoint"], g["type"], g["auth"], g["active"]) for g in gateways] == [
            ("openshell", "https://127.0.0.1:17670", "local", "mtls", True)]
        assert "Version: 0.0.116" in host.openshell("status").stdout
        info = json.loads(host.openshell("gateway", "info", "--output", "json").stdout)
        assert info["telemetry_enabled"] is False and info["schema_version"] == 1  # gateway.env and gateway.toml v1 took effect

        policy = tmp_path / "policy.json"
        policy.write_text(json.dumps(host.world.policy()))
        host.root("sh", "-c", "cat > /tmp/policy.yaml", data=policy.read_text())
        created = json.loads(host.openshell("sandbox", "create", "--name", "sb", "--policy", "/tmp/policy.yaml",
                                            "--from", E.IMAGE, "--output", "json").stdout)
        assert created["phase"] == "Ready"

        # a real container with upstream's name, labels and contract (crates/openshell-driver-docker/src/lib.rs @v0.0.111)
        ctr = E.docker("ps", "--filter", "label=openshell.ai/sandbox-name=sb", "--filter",
                       "label=openshell.ai/managed-by=openshell", "--format", "{{.Names}}").stdout.split()
        assert len(ctr) == 1 and ctr[0] == f"{E.PREFIX}-{host.ident}-openshell-default--sb-{created['id']}", ctr
        inspect = json.loads(E.docker("inspect", ctr[0]).stdout)[0]
        hc = inspect["HostConfig"]
        assert sorted(hc["CapAdd"]) == ["CAP_NET_ADMIN", "CAP_SYSLOG", "CAP_SYS_ADMIN", "CAP_SYS_PTRACE"] or \
            sorted(hc["CapAdd"]) == ["NET_ADMIN", "SYSLOG", "SYS_ADMIN", "SYS_PTRACE"]
        assert "apparmor=unconfined" in hc["SecurityOpt"] and hc["PidsLimit"] == 2048
        assert hc["NetworkMode"] == host.world.network and inspect["Config"]["User"] == "0"
        assert inspect["Config"]["Entrypoint"] == ["/opt/openshell/bin/openshell-sandbox"]

        before, failing = verify(host, "sb")
        passing = ("L1.landlock L1.writable_paths L1.non_root L1.no_capabilities L1.startup_hooks L2.seccomp_mode L2.af_packet "
                   "L2.af_netlink L2.af_inet L2.high_bit_family L2.io_uring L2.inherited_sockets L2.agent_processes "
                   "L3.default_route L3.direct_egress L3.dns_leak L4.denied_host L4.allowed_host L4.port_scope L4.authority "
                   "L4.ip_literal L5.ca_file L5.ca_cert L5.mitm_chain L5.clienthello L6.no_secrets L6.route_scope "
                   "L1.pid_namespace L2.keyring L2.outlived_processes L2.user_namespace L3.route_change").split()
        expected = {**dict.fromkeys(passing, "pass"), "L4.l7_enforcement": "fail", "L4.l7_policy_enforced": "fail",
                    "L1.ro_root": "fail",
                    # created best_effort (the default): read from the gateway's policy on the host; medium, not counted
                    "L1.landlock_hard_requirement": "fail",
                    "L2.sock_packet": "fail", "L6.inference_dns": "fail", "L6.route_traversal": "fail",
                    # the line's residuals: an ABI V2 ruleset without scopes, a deny-list family filter (targets/openshell_host.yml)
                    "L1.landlock_scope": "fail", "L2.socket_families": "fail",
                    # NemoClaw's policy gives the agent no read access to /sys, so neither limit can be read from
                    # inside (error, medium: not counted); the host sees PidsLimit 2048 and no Memory (checked below)
                    "L1.memory_limit": "error", "L1.pids_limit": "error",
                    "L5.clienthello_evasion": "error", "L6.inference_models": "skipped",
                    # this policy's read-only paths are root-owned: nothing the agent could write by permissions alone
                    "L1.policy_read_only": "skipped", "L3.peer_direct": "skipped", "L4.peer_via_proxy": "skipped"}
        assert E.statuses(before) == expected, {k: v for k, v in E.statuses(before).items() if expected.get(k) != v}
        # the attack: a POST the read-only policy forbids reached allowed.lab (L7 enforcement defaults to audit), and it is
        # the only failure the thresholds count - every other one is a declared residual of the line
        assert failing == ["L4.l7_enforcement", "L4.l7_policy_enforced"], failing
        audited = next(f for f in before["findings"] if f["id"] == "L4.l7_policy_enforced")["observed"]["audited"]
        assert [(e["rule"], e["enforcement"]) for e in audited] == [("lab_allowed", "audit")], audited
        assert {f["id"] for f in before["findings"] if f.get("residual")} == {
            "L1.ro_root", "L2.sock_packet", "L6.inference_dns", "L6.route_traversal", "L5.clienthello_evasion",
            "L1.landlock_scope", "L2.socket_families"}
        assert hc["Memory"] == 0  # created without --memory: no limit (lib.rs @v0.0.111 L2634, L2926-2928)

        harden_vars = {"nemoclaw_target": "openshell_host", "hardening_policy_recreate": True,
                       "hardening_policy_images": {"sb": E.IMAGE}}
        rc, out = E.playbook(tmp_path, host, HARDEN, harden_vars)
        assert rc == 0, out[-4000:]
        after, failing = verify(host, "sb")
        assert E.statuses(after)["L4.l7_enforcement"] == "pass" and failing == [], failing
        assert E.statuses(after)["L4.l7_policy_enforced"] == "pass"
        assert E.statuses(after)["L1.landlock_hard_requirement"] == "pass"  # re-created with hard_requirement
        # re-created with --memory 4Gi (hardening_resources) and its cgroup readable: Docker holds the limit, and the
        # verifier reads the same limit (and the driver's process limit) from inside the sandbox
        assert _container_memory() == 4 * 1024 ** 3
        observed = {f["id"]: f["observed"] for f in after["findings"]}
        assert E.statuses(after)["L1.memory_limit"] == "pass" and observed["L1.memory_limit"]["limit"] == 4 * 1024 ** 3, \
            observed["L1.memory_limit"]
        assert E.statuses(after)["L1.pids_limit"] == "pass" and observed["L1.pids_limit"]["limit"] == 2048, \
            observed["L1.pids_limit"]
        got = json.loads(host.openshell("sandbox", "get", "sb", "--output", "json").stdout)
        assert got["labels"].get("agentsec.nemoclaw/limits") == "memory-4Gi", got["labels"]
        status = json.loads(host.openshell("policy", "get", "sb", "--full", "--output", "json").stdout)
        assert status["policy"]["landlock"]["compatibility"] == "hard_requirement"
        assert {e["enforcement"] for e in status["policy"]["network_policies"]["lab_allowed"]["endpoints"]
                if e.get("protocol") == "rest"} == {"enforce"}
        rc, out = E.playbook(tmp_path, host, HARDEN, harden_vars)
        assert rc == 0 and E.changed_tasks(out) == [], E.changed_tasks(out)
        rc, out = E.playbook(tmp_path, host, HARDEN, harden_vars, check=True)
        assert rc == 0 and E.changed_tasks(out) == [], E.changed_tasks(out)

        # the limits label is only what was asked: a sandbox re-created by hand with the hardened policy and the label
        # but without --memory is not repaired by the hardening (nothing it can read differs), and the verifier, which
        # reads the cgroup, fails it
        host.root("sh", "-c", "cat > /tmp/hardened.yaml", data=json.dumps(status["policy"]))
        host.openshell("sandbox", "delete", "sb")
        for _attempt in range(120):
            if "sb" not in [s["name"] for s in json.loads(host.openshell("sandbox", "list", "--output", "json").stdout)]:
                break
            time.sleep(0.5)
        host.openshell("sandbox", "create", "--name", "sb", "--from", E.IMAGE, "--policy", "/tmp/hardened.yaml",
                       "--label", "agentsec.nemoclaw/limits=memory-4Gi", "--output", "json")
        assert _container_memory() == 0
        forged, _failing = verify(host, "sb")
        forged_memory = next(f for f in forged["findings"] if f["id"] == "L1.memory_limit")
        assert forged_memory["status"] == "fail" and forged_memory["observed"]["limit"] == "unlimited", forged_memory
        rc, out = E.playbook(tmp_path, host, HARDEN, harden_vars)
        assert rc == 0 and E.changed_tasks(out) == [], E.changed_tasks(out)

        rc, out = E.playbook(tmp_path, host, HARDEN, {**harden_vars, "hardening_state": "absent"})
        assert rc == 0, out[-3000:]
        restored, _failing = verify(host, "sb")
        assert E.statuses(restored)["L4.l7_enforcement"] == "fail"  # restored exactly: the gap is back
        assert E.statuses(restored)["L4.l7_policy_enforced"] == "fail"
        assert _container_memory() == 0 and E.statuses(restored)["L1.memory_limit"] == "error"  # no limit, no cgroup read

        rc, out = E.playbook(tmp_path, host, ROLE, {**role_vars, "openshell_service_state": "absent"})
        assert rc == 0, out[-3000:]
        left = host.root("sh", "-c", "ls /usr/bin/openshell /home/studio/.config/openshell/gateway.env "
                         "/var/lib/systemd/linger/studio 2>&1; dpkg-query -W openshell 2>&1", check=False).stdout
        assert left.count("No such file") == 3 and "no packages found" in left, left
