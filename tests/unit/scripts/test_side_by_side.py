"""scripts/side_by_side.py (`make lab`'s closing table): a declared residual is shown with its reason and does not fail
the run; any other failure or error after hardening does. Oracle: self (the script's own contract)."""
from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]


def _host(*findings):
    layers = {f"L{i}": {"result": "PASS", "passed": 1, "total": 1} for i in range(1, 7)}
    return {"state": "OK", "layers": layers, "findings": list(findings), "failed_checks": [f["id"] for f in findings]}


def _run(tmp_path, after):
    before = tmp_path / "before.json"
    before.write_text(json.dumps({"hosts": {"h/sb": _host()}}))
    after_path = tmp_path / "after.json"
    after_path.write_text(json.dumps({"hosts": {"h/sb": after}}))
    return subprocess.run([sys.executable, str(ROOT / "scripts/side_by_side.py"), str(before), str(after_path)],
                          capture_output=True, text=True, check=False, timeout=60)


@pytest.mark.oracle("self")
def test_a_declared_residual_is_reported_not_counted(tmp_path):
    proc = _run(tmp_path, _host({"id": "L6.route_traversal", "status": "fail", "residual": "open on this line"}))
    assert proc.returncode == 0, proc.stdout
    assert "residual of the line (not fixable here): L6.route_traversal - open on this line" in proc.stdout


@pytest.mark.oracle("self")
@pytest.mark.parametrize("status", ["fail", "error"])
def test_any_other_failure_fails_make_lab(tmp_path, status):
    proc = _run(tmp_path, _host({"id": "L1.landlock", "status": status},
                                {"id": "L6.route_traversal", "status": "fail", "residual": "open on this line"}))
    assert proc.returncode == 1 and "still failing after hardening: L1.landlock" in proc.stdout


@pytest.mark.oracle("self")
def test_a_sandbox_without_a_result_fails(tmp_path):
    assert _run(tmp_path, {"state": "UNREACHABLE"}).returncode == 1
