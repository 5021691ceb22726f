"""State of both fleet hosts of the OpenShell 0.0.116 line after check, converge (site.yml), idempotence and the side
effect (check mode on the converged fleet, the sandbox re-onboarded with NemoClaw's defaults and caught by the
verifier, site.yml's repair), and the reports of every phase. testinfra runs on the controller, where
MOLECULE_EPHEMERAL_DIRECTORY holds the reports; commands run on the host as the user `studio`.

Oracles: docker (the sandbox containers are real containers on this machine's engine, created by the stand-in
gateway's Docker driver), ansible-core (molecule's idempotence and the check-mode recap), upstream (the stand-ins'
shapes are cited in roles/lab/files/openshell-host and tests/standins/nemoclaw-repo-0.0.13x)."""
from __future__ import annotations

import json
import os
import pathlib

import pytest

REPORTS = pathlib.Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "reports"
SANDBOX = "assistant"
HOME = "/home/studio"


@pytest.fixture(name="flavour")
def _flavour(host):
    return host.ansible.get_variables()["__molecule_flavour"]


def _cli(flavour):
    return "/usr/bin/openshell" if flavour == "linux" else "/opt/homebrew/bin/openshell"


def _report(phase):
    return json.loads((REPORTS / phase / "verify.json").read_text())["hosts"]


def _statuses(entry):
    return {f["id"]: f["status"] for f in entry["findings"]}


def test_gateway_installed_the_platform_way_and_serving(host, flavour):
    if flavour == "linux":  # the release deb and the systemd user unit, lingering so it outlives the session
        assert host.run("dpkg-query -W -f '${Version}' openshell").stdout == "0.0.116-1"
        assert host.file("/var/lib/systemd/linger/studio").exists
        assert host.run("systemctl --user is-active openshell-gateway").stdout.strip() == "active"
    else:  # the formula from the local tap, run by brew services under launchd's label
        brew = "/opt/homebrew/bin/brew"
        assert host.check_output(f"{brew} list --versions nvidia/openshell/openshell") == "openshell 0.0.116"
        assert "openshell 0.0.116" in host.check_output(f"{brew} list --versions").splitlines()  # every formula
        assert host.run(f"{brew} services list").stdout.split("\n")[1].split()[:2] == ["openshell", "started"]
        assert host.file("/opt/homebrew/Library/Taps/nvidia/homebrew-openshell/Formula/openshell.rb").exists
        assert host.run("launchctl print gui/1001/homebrew.mxcl.openshell").rc == 0
    env = host.file(f"{HOME}/.config/openshell/gateway.env").content_string
    socket = "/var/run/docker.sock" if flavour == "linux" else f"{HOME}/.docker/run/docker.sock"
    assert f"DOCKER_HOST=unix://{socket}" in env and "OPENSHELL_TELEMETRY_ENABLED=false" in env
    assert "Version: 0.0.116" in host.check_output(f"NO_COLOR=1 {_cli(flavour)} status")


def test_onboarded_by_nemoclaw_and_ready(host, flavour):
    listing = json.loads(host.check_output(f"{HOME}/.local/bin/nemoclaw list --json"))
    assert [s["name"] for s in listing["sandboxes"]] == [SANDBOX]
    got = json.loads(host.check_output(f"NO_COLOR=1 {_cli(flavour)} sandbox get {SANDBOX} --output json"))
    assert got["phase"] == "Ready"


def test_policy_hardened_through_the_line_interface(host, flavour):
    """After the repair: Landlock a hard requirement and every REST endpoint enforced (NemoClaw's blueprint leaves
    both open: best effort, audit - openshell-current.md 2.4)."""
    out = host.check_output(f"NO_COLOR=1 {_cli(flavour)} policy get {SANDBOX} --full --output json")
    policy = json.loads(out)["policy"]
    assert policy["landlock"]["compatibility"] == "hard_requirement", policy.get("landlock")
    rest = {e.get("enforcement", "audit") for r in policy["network_policies"].values() for e in r["endpoints"]
            if e.get("protocol") == "rest"}
    assert rest == {"enforce"}, rest


def test_the_attack_was_caught_on_every_host():
    report = _report("attack")
    assert sorted(n.split("/")[0] for n in report) == ["agentsec-mh-linux", "agentsec-mh-mac"], sorted(report)
    for name, entry in report.items():
        # exactly what the attack undid fails; everything else is as hardened (or a residual the line declares)
        open_ = {f["id"] for f in entry["findings"] if f["status"] in ("fail", "error") and not f.get("residual")}
        assert open_ == {"L1.landlock_hard_requirement", "L1.memory_limit", "L1.pids_limit",
                         "L4.l7_policy_enforced"}, (name, open_)


@pytest.mark.parametrize("phase", ["site/canary", "site/fleet", "check/fleet"])
def test_every_phase_reported_and_the_repaired_fleet_passes(phase):
    report = _report(phase)
    expected = ["agentsec-mh-linux"] if phase == "site/canary" else ["agentsec-mh-linux", "agentsec-mh-mac"]
    assert sorted(n.split("/")[0] for n in report) == expected, sorted(report)
    for name, entry in report.items():
        assert name.endswith(f"/{SANDBOX}") and entry["state"] == "OK", (phase, name, entry.get("state"))
        statuses = _statuses(entry)
        assert statuses["L1.landlock_hard_requirement"] == "pass", (phase, name)
        high = [f["id"] for f in entry["findings"] if f["status"] in ("fail", "error") and f.get("severity") == "high"
                and not f.get("residual")]
        assert high == [], (phase, name, high)
