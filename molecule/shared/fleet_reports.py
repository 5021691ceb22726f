"""The verification reports both fleet scenarios write (molecule/shared/fleet_side_effect.yml, fleet_repair.yml) and
what each phase must show; imported by molecule/fleet_{linux,macos}/tests (testinfra runs on the controller, where
MOLECULE_EPHEMERAL_DIRECTORY holds the reports)."""
from __future__ import annotations

import json
import os
import pathlib

import yaml

REPORTS = pathlib.Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "reports"
# the line's declared residuals (targets/openshell_k3s.yml residual), read from the target file the roles read
RESIDUAL = set(yaml.safe_load((pathlib.Path(__file__).resolve().parents[2] / "targets" / "openshell_k3s.yml").read_text())["residual"])
PEER_CHECKS = {"L3.peer_direct", "L4.peer_via_proxy"}


def hosts(phase):
    return json.loads((REPORTS / phase / "verify.json").read_text())["hosts"]


# L7 on the k3s line, from the traffic (L4.l7_enforcement: a POST to pypi.org:443, which NemoClaw's pypi preset
# allows GET and HEAD only) and from the gateway's policy (L4.l7_policy_enforced): both must pass in every phase
L7_CHECKS = {"L4.l7_enforcement", "L4.l7_policy_enforced"}


def check_phase(phase):
    """The verifier ran in the sandboxes after the phase; everything but the line's declared residuals passed, and
    only the peer checks may be skipped (a host with one sandbox has no peer; phase "pair" has two, check_pair)."""
    report = hosts(phase)
    assert report, f"{phase}: no sandbox verified"
    for name, result in report.items():
        statuses = {f["id"]: f["status"] for f in result["findings"]}
        assert len(statuses) >= 30, (phase, name, len(statuses))
        # on a mismatch, say what each unexpected check saw (fail or error, and its observation): a timeout under
        # load (error) and a hole (fail) need different remedies
        unexpected = [{k: f.get(k) for k in ("id", "status", "observed", "duration_ms")} for f in result["findings"]
                      if (f["status"] in ("fail", "error")) != (f["id"] in RESIDUAL)]
        assert set(result["failed_checks"]) == RESIDUAL, (phase, name, result["failed_checks"], unexpected)
        assert {i for i, s in statuses.items() if s in ("fail", "error")} == RESIDUAL, (phase, name, unexpected)
        assert {i for i, s in statuses.items() if s == "skipped"} <= PEER_CHECKS, (phase, name, statuses)
        assert {c: statuses.get(c) for c in sorted(L7_CHECKS)} == dict.fromkeys(sorted(L7_CHECKS), "pass"), (phase, name)


def check_pair():
    """Two sandboxes on one gateway: each was probed against the other's pod address from the cluster's pod list
    (target key sandbox.peers), directly and through the proxy, and both held."""
    report = hosts("pair")
    assert sorted(h.split("/")[-1] for h in report) == ["my-assistant", "second"], sorted(report)
    addresses = {h.split("/")[-1]: r["peer_addresses"] for h, r in report.items()}
    assert all(len(a) == 1 for a in addresses.values()) and addresses["my-assistant"] != addresses["second"], addresses
    for name, result in report.items():
        statuses = {f["id"]: f["status"] for f in result["findings"]}
        assert {c: statuses[c] for c in sorted(PEER_CHECKS)} == dict.fromkeys(sorted(PEER_CHECKS), "pass"), (name, statuses)
