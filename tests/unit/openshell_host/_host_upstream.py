"""Read upstream files for the oracle tests of the host-service stand-ins (helper, no tests here): OpenShell at tag
v0.0.111 from the fetched snapshot (git dir /work/.mirror/NVIDIA+OpenShell/repo), the reference sheet
/work/shared/reference/openshell-current.md, and the PyPI wheel openshell==0.1.5 (its repo tests pin 0.1.5 packaging
facts). Tests skip with the reason when a source is not on this machine; nothing is copied into the project."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
STANDIN = ROOT / "roles/lab/files/openshell-host"
MIRROR = pathlib.Path(os.environ.get("AGENTSEC_OPENSHELL_MIRROR", "/work/.mirror/NVIDIA+OpenShell/repo"))
REFERENCE = pathlib.Path("/work/shared/reference/openshell-current.md")
CACHE = pathlib.Path(os.environ.get("AGENTSEC_CACHE_DIR") or pathlib.Path.home() / ".cache/agentsec-nemoclaw") / "wheels"
WHEEL = "openshell-0.1.5-py3-none-any.whl"


def lib_path():
    for sub in ("lib", "supervisor-0.0", "supervisor-0.1"):
        path = str(STANDIN / sub)
        if path not in sys.path:
            sys.path.insert(0, path)


def upstream(path: str, tag: str = "v0.0.111") -> str:
    if not MIRROR.is_dir():
        pytest.skip(f"the OpenShell snapshot ({MIRROR}) is not on this machine")
    proc = subprocess.run(["git", "-C", str(MIRROR), "show", f"{tag}:{path}"], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"{path}@{tag} is not in the snapshot: {proc.stderr.strip()}")
    return proc.stdout


def reference() -> str:
    if not REFERENCE.is_file():
        pytest.skip(f"{REFERENCE} is not on this machine")
    return REFERENCE.read_text()


def wheel_dir() -> pathlib.Path:
    """The unpacked 0.1.5 wheel; downloaded once with pip (PyPI) into the cache, skipped when that is not possible."""
    target = CACHE / "openshell-0.1.5"
    if (target / "openshell" / "gateway_config_fixture_test.py").is_file():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    if not (CACHE / WHEEL).is_file():
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "openshell==0.1.5", "-d",
                               str(CACHE)], capture_output=True, text=True, timeout=120, check=False)
        if proc.returncode != 0 or not (CACHE / WHEEL).is_file():
            pytest.skip(f"openshell==0.1.5 could not be downloaded from PyPI: {proc.stderr.strip()[-200:]}")
    with zipfile.ZipFile(CACHE / WHEEL) as whl:
        whl.extractall(target)
    return target
