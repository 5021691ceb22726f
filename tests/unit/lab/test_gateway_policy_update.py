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
