"""scripts/count_results.py (make test's closing lines) counts what pytest itself wrote and names each failed test, so
the tail of a CI log says which test failed. Oracle: upstream (the JUnit XML is written by pytest, not by us)."""
from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.oracle("upstream")

CASES = '''
import pytest

def test_good():
    pass

def test_bad():
    assert 1 == 2, "one is not two"

@pytest.mark.skip(reason="not here")
def test_skipped():
    pass

@pytest.fixture
def broken():
    raise RuntimeError("fixture broke")

def test_errored(broken):
    pass
'''


def test_counts_and_names_failures_from_pytest_junit(tmp_path):
    (tmp_path / "test_cases.py").write_text(CASES)
    reports = tmp_path / "reports"
    reports.mkdir()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", "/dev/null",
                    f"--rootdir={tmp_path}", str(tmp_path / "test_cases.py"), f"--junitxml={reports / 'unit.xml'}"],
                   cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    (reports / "molecule-rest.counts").write_text("3 1 0\n")
    out = subprocess.run([sys.executable, str(ROOT / "scripts/count_results.py"), str(reports)],
                         capture_output=True, text=True, timeout=60, check=True).stdout.splitlines()
    assert out[-1] == "total: 4 passed, 3 failed, 1 skipped"
    named = "\n".join(out[:-1])
    assert "FAILURE [unit] test_cases::test_bad: AssertionError: one is not two" in named
    assert "ERROR [unit] test_cases::test_errored:" in named
    assert "test_good" not in named and "test_skipped" not in named
