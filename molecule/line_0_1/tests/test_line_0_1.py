"""State of the OpenShell 0.1.x fleet host after check, converge (site.yml), idempotence and the side effect (check
mode on the converged host, the sandbox re-created with the line's defaults and caught by the verifier, site.yml's
repair), and the reports of every phase. testinfra runs on the controller, where MOLECULE_EPHEMERAL_DIRECTORY holds
the reports; commands run on the host as the user `studio` (in the Docker socket's group).

Oracles: docker (the sandbox is two real containers on this machine's engine, created by the stand-in gateway's
Docker driver, and their settings are read back from the engine), ansible-core (molecule's idempotence and the
check-mode recap), upstream (the RFC 0012 container contract, crates/openshell-driver-docker/README.md @03c8c5f8,
and the schema-v2 gateway.toml, configuration.mdx@018726aa, as cited in roles/lab/files/openshell-host)."""
from __future__ import annotations

import json
import os
import pathlib

REPORTS = pathlib.Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "reports"
SANDBOX = "work"
HOME = "/home/studio"
CLI = "NO_COLOR=1 /usr/bin/openshell"


def _report(phase):
    return json.loads((REPORTS / phase / "verify.json").read_text())["hosts"]


def _statuses(entry):
    return {f["id"]: f["status"] for f in entry["findings"]}


def _open(entry):
    """Failed or errored findings that are not residuals the line declares."""
    return {f["id"] for f in entry["findings"] if f["status"] in ("fail", "error") and not f.get("residual")}


def test_gateway_installed_with_a_schema_v2_config(host):
    assert host.run("dpkg-query -W -f '${Version}' openshell").stdout == "0.1.5-1"
    assert host.file("/var/lib/systemd/linger/studio").exists
    assert host.run("systemctl --user is-active openshell-gateway").stdout.strip() == "active"
    toml = host.file(f"{HOME}/.config/openshell/gateway.toml").content_string
    assert "version = 2" in toml and 'compute_driver = "docker"' in toml and "compute_drivers" not in toml, toml
    env = host.file(f"{HOME}/.config/openshell/gateway.env").content_string
    assert "DOCKER_HOST=unix:///var/run/docker.sock" in env and "OPENSHELL_TELEMETRY_ENABLED=false" in env
    assert "Version: 0.1.5" in host.check_output(f"{CLI} status")


def test_declared_sandbox_ready_and_hardened(host):
    listed = json.loads(host.check_output(f"{CLI} sandbox list --output json"))
    assert [(s["name"], s["phase"]) for s in listed] == [(SANDBOX, "Ready")]
    policy = json.loads(host.check_output(f"{CLI} policy get {SANDBOX} --full --output json"))["policy"]
    assert policy["landlock"]["compatibility"] == "hard_requirement", policy.get("landlock")
    rest = [(e["host"], e.get("enforcement", "audit")) for r in (policy.get("network_policies") or {}).values()
            for e in r.get("endpoints", []) if e.get("protocol") in ("rest", "sql")]
    assert rest == [("pypi.org", "enforce")], rest  # the declared policy's L7 rule, enforced by the hardening


def test_two_containers_with_the_rfc_0012_contract(host):
    """The workload: network none, a non-root user, every capability dropped, no-new-privileges; the supervisor
    companion: non-root, no capability either (read back from the engine, not from our own inventory)."""
    # this host's containers only (the gateway prefixes its Docker objects, molecule.yml): the engine is shared with
    # whatever else runs on the machine, other sandboxes named `work` included
    ids = host.check_output(f"docker ps -q --filter label=openshell.ai/sandbox-name={SANDBOX} "
                            "--filter name=^agentsec-m01-linux-").split()
    assert len(ids) == 2, ids
    shapes = {}
    for cid in ids:
        info = json.loads(host.check_output(f"docker inspect {cid}"))[0]
        shapes[info["Config"]["Labels"]["agentsec.standin/role"]] = info
    workload, supervisor = shapes["workload"], shapes["supervisor"]
    assert workload["HostConfig"]["NetworkMode"] == "none"
    for info in (workload, supervisor):
        user = info["Config"]["User"].split(":")[0]
        assert user not in ("", "0", "root"), info["Config"]["User"]
        assert info["HostConfig"]["CapDrop"] == ["ALL"] and not info["HostConfig"]["CapAdd"]
        assert "no-new-privileges" in info["HostConfig"]["SecurityOpt"]


def test_the_attack_was_caught():
    """The sandbox re-created from the team's policy file: both of the line's open defaults are back and reported."""
    report = _report("attack")
    assert [n.split("/")[0] for n in report] == ["agentsec-m01-linux"], sorted(report)
    for name, entry in report.items():
        # exactly what the attack undid fails; everything else is as hardened (or a residual the line declares)
        assert _open(entry) == {"L1.landlock_hard_requirement", "L1.memory_limit", "L1.pids_limit",
                                "L4.l7_policy_enforced"}, (name, _open(entry))


def test_the_0_1_verify_profile_holds_after_the_repair():
    """What the line should look like, from the agent's vantage point: only lo and no route, no proxy variables, the
    CA at the supervisor's 0.1.x path, inference.local gone, no capability - and nothing open but residuals."""
    for phase in ("site/canary", "site/fleet", "check/fleet"):
        for name, entry in _report(phase).items():
            if phase.startswith("check"):
                assert _open(entry) == set(), (phase, name, _open(entry))
                continue
            statuses = _statuses(entry)
            for check in ("L3.v01_no_route", "L3.v01_no_proxy_env", "L5.v01_ca_env", "L6.v01_no_inference_local",
                          "L1.v01_identity", "L1.landlock_hard_requirement", "L4.l7_policy_enforced"):
                assert statuses.get(check) == "pass", (phase, name, check, statuses.get(check))
            assert _open(entry) == set(), (phase, name, _open(entry))
            assert {f["id"] for f in entry["findings"] if f.get("residual")} >= {"L2.af_netlink"}, (phase, name)
