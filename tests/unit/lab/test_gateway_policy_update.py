"""The k3s stand-in gateway's live policy update follows OpenShell v0.0.26's rule (crates/openshell-server/src/grpc/
policy.rs L515-517, validation.rs L291-345 and its tests L815-930): against the creation policy, filesystem paths may
only be added, include_workdir, landlock and process must stay as they are; network_policies change freely."""
from __future__ import annotations

import pathlib
import sys

import pytest

CLUSTER = pathlib.Path(__file__).resolve().parents[3] / "roles/lab/files/openshell/cluster"

BASE = """version: 1
filesystem_policy:
  include_workdir: true
  read_only: [/usr, /lib]
  read_write: [/sandbox, /tmp]
landlock:
  compatibility: best_effort
process:
  run_as_user: sandbox
  run_as_group: sandbox
network_policies:
  web:
    endpoints:
    - {host: api.example, port: 443, protocol: rest, access: read-only}
"""


@pytest.fixture
def gateway(monkeypatch):
    monkeypatch.syspath_prepend(str(CLUSTER))
    for name in ("validate", "store", "gateway"):
        sys.modules.pop(name, None)
    import gateway as G  # noqa: PLC0415

    return G


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize(("change", "error"), [
    (lambda t: t, None),                                                              # validation.rs L820
    (lambda t: t.replace("[/usr, /lib]", "[/usr, /lib, /opt]"), None),                # additive, L841
    (lambda t: t.replace("access: read-only}", "access: read-only, enforcement: enforce}"), None),  # live part
    (lambda t: t.replace("[/usr, /lib]", "[/usr]"), "read_only path '/lib' cannot be removed"),      # L862
    (lambda t: t.replace("include_workdir: true", "include_workdir: false"), "include_workdir cannot be changed"),
    (lambda t: t.replace("best_effort", "hard_requirement"), "landlock policy cannot be changed"),   # L924
    (lambda t: t.replace("run_as_user: sandbox", "run_as_user: root"), "process policy cannot be changed"),
])
def test_live_updates_keep_the_static_part(gateway, change, error):
    got = gateway.static_change_error(BASE, change(BASE))
    assert (got is None) if error is None else (error in (got or "")), got


@pytest.mark.oracle("upstream")
def test_a_set_revision_is_pending_until_the_supervisor_reports_it(gateway, monkeypatch, tmp_path):
    # version 1 (creation) is loaded (grpc/policy.rs @v0.0.26 L120-140); `policy set` adds a pending revision
    # (sqlite.rs L207-208); ReportPolicyStatus makes it loaded and supersedes the older ones (policy.rs L675-735,
    # sqlite.rs L331-341) or failed with the load error. `policy set --wait` polls exactly this (run.rs L4487-4549).
    monkeypatch.setattr(gateway, "DB", str(tmp_path / "gateway.json"))
    with gateway.db() as data:
        data["sandboxes"]["sb"] = {"id": "0f0f", "name": "sb", "policies": [gateway._revision(1, BASE)]}
    enforced = BASE.replace("access: read-only}", "access: read-only, enforcement: enforce}")
    rev = gateway.v_policy_set({"name": "sb", "policy": enforced})
    assert (rev["version"], rev["status"]) == (2, "Pending")
    got = gateway.v_policy_get({"name": "sb", "rev": 2})["policy"]
    assert (got["status"], got["active_version"]) == ("Pending", 1)
    assert gateway.supervisor_report("0f0f", 3, True) is False  # no such revision: NotFound upstream
    assert gateway.supervisor_report("0f0f", 2, True) is True
    assert gateway.v_policy_get({"name": "sb", "rev": 2})["policy"]["active_version"] == 2
    assert [gateway.v_policy_get({"name": "sb", "rev": v})["policy"]["status"] for v in (1, 2)] == ["Superseded", "Loaded"]
    third = gateway.v_policy_set({"name": "sb", "policy": enforced.replace("api.example", "api2.example")})
    assert gateway.supervisor_report("0f0f", third["version"], False, "L7 validation error") is True
    failed = gateway.v_policy_get({"name": "sb", "rev": 3})["policy"]
    assert (failed["status"], failed["load_error"], failed["active_version"]) == ("Failed", "L7 validation error", 2)
