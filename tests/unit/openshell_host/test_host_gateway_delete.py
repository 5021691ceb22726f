"""`openshell sandbox delete` while the sandbox is still provisioning, in the host-service stand-in gateway.

Upstream's Docker driver aborts the pending provisioning task and force-removes the managed containers it finds by
their sandbox-id label (delete_sandbox_inner, crates/openshell-driver-docker/src/lib.rs @v0.0.111 L885-947); the
sandbox is then gone from the list. The stand-in used to delete the record while its provisioning thread (and the
supervisor's reports) still held a copy they stored back, so a deleted sandbox could stay listed for good - the CI
failure of f12669e, "sandbox 'spare' is still listed 120 s after `openshell sandbox delete`"."""
from __future__ import annotations

import importlib.machinery
import importlib.util
import pathlib
import subprocess
import sys
import threading

import _host_upstream as U
import pytest

GATEWAY = pathlib.Path(U.STANDIN) / "gateway" / "openshell-gateway"


@pytest.fixture(scope="module")
def G():
    U.lib_path()
    loader = importlib.machinery.SourceFileLoader("standin_openshell_gateway", str(GATEWAY))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    old, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no __pycache__ beside the packaged script
    try:
        loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = old
    return module


class FakeDocker:
    """Records every docker call; `ps`/`volume ls` by label answer with what a provisioning step created."""

    def __init__(self):
        self.calls, self.created = [], []

    def run(self, *args, data=None, check=True, timeout=120):
        self.calls.append(args)
        out = ""
        if args[:2] in (("ps", "-aq"), ("volume", "ls")):
            out = "\n".join(self.created)
        return subprocess.CompletedProcess(args, 0, out.encode(), b"")


def gateway(G, tmp_path):
    gw = G.Gateway.__new__(G.Gateway)  # no Docker engine or settings: only the store, the lock and the driver calls
    gw.store, gw.lock, gw.aborted, gw.docker = G.Store(str(tmp_path / "db.sqlite")), threading.RLock(), set(), FakeDocker()
    return gw


def revision(sandbox_id):
    return {"sandbox_id": sandbox_id, "version": 1, "status": "pending", "hash": "h", "policy": {}, "created_at_ms": 0,
            "load_error": ""}


def put_sandbox(gw, name="spare"):
    sb = {"id": f"id-{name}", "name": name, "workspace": "default", "phase": "Provisioning", "token": "t",
          "containers": [], "resource_version": 1, "conditions": []}
    gw.store.put("sandbox", sb["id"], sb)
    gw.store.put("policy", f"{sb['id']}:1", revision(sb["id"]))
    return sb


@pytest.mark.oracle("upstream")
def test_delete_during_provisioning_aborts_it_and_removes_what_it_created(G, tmp_path, monkeypatch):
    gw = gateway(G, tmp_path)
    sb = put_sandbox(gw)

    def provision_step(record):  # the workload container exists, then the user deletes, then the step records it
        gw.docker.created.append("openshell-spare-workload")
        assert gw.DeleteSandbox({"name": "spare"}) == {"deleted": True}
        gw.record_containers(record["id"], ["openshell-spare-workload"])

    monkeypatch.setattr(gw, "provision_v1", provision_step, raising=False)
    monkeypatch.setattr(gw, "provision_v0", provision_step, raising=False)
    gw.provision(sb["id"])
    assert gw.sandbox_by_name("spare") is None, "the deleted sandbox is listed again"
    removed = [c for c in gw.docker.calls if c[:2] == ("rm", "-f")]
    # removed by label twice: at the delete, and when the aborted provisioning task ends
    assert removed.count(("rm", "-f", "openshell-spare-workload")) >= 2, gw.docker.calls
    assert gw.DeleteSandbox({"name": "spare"}) == {"deleted": False}


@pytest.mark.oracle("upstream")
def test_a_late_policy_report_does_not_bring_a_deleted_sandbox_back(G, tmp_path, monkeypatch):
    gw = gateway(G, tmp_path)
    sb = put_sandbox(gw)
    stale = dict(sb)
    monkeypatch.setattr(gw, "_supervised", lambda req: stale)  # the supervisor authenticated before the delete
    assert gw.DeleteSandbox({"name": "spare"}) == {"deleted": True}
    gw.store.put("policy", f"{sb['id']}:1", revision(sb["id"]))
    gw.ReportPolicyStatus({"version": 1, "loaded": True})
    gw.ReportReady({})
    assert gw.sandbox_by_name("spare") is None
