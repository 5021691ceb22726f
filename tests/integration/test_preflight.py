"""The preflight's kernel probe (roles/preflight/files/kernel_probe.pl) against this kernel, in an image like the one
a Mac pulls, and the preflight playbook refusing a taken port (a listener this test opens on 127.0.0.1).

The official debian:bookworm-slim (preflight_image) has perl-base and no python3, while this machine's image of that
tag is a local debootstrap import that includes python3. So the probe is run in agentsec/bookworm-minbase-nopython:1
(scripts/lib.sh ensure_nopython_image: Debian minbase, no python3), and the `gap` case shows the former python3 probe
command failing there."""
from __future__ import annotations

import ctypes
import errno
import json
import os
import pathlib
import shutil
import socket
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROBE = ROOT / "roles" / "preflight" / "files" / "kernel_probe.pl"
NOPYTHON = os.environ.get("AGENTSEC_NOPYTHON_IMAGE", "agentsec/bookworm-minbase-nopython:1")


def _docker_up():
    return bool(shutil.which("docker")) and subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


needs_docker = pytest.mark.skipif(not _docker_up(), reason="needs a Docker engine")


def kernel_facts():
    """What the kernel says, asked directly with ctypes (independent of the probe)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    rc = libc.syscall(ctypes.c_long(444), None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    abi = rc if rc > 0 else 0
    state = "available" if rc > 0 else {errno.ENOSYS: "not built in", errno.EOPNOTSUPP: "disabled at boot"}.get(ctypes.get_errno())
    ns = {n: os.path.exists(f"/proc/self/ns/{n}") for n in ("net", "mnt", "pid", "user", "uts", "ipc", "cgroup")}
    try:
        io_uring = int(pathlib.Path("/proc/sys/kernel/io_uring_disabled").read_text())
    except (OSError, ValueError):
        io_uring = None
    return {"kernel": os.uname().release, "machine": os.uname().machine, "landlock": {"abi": abi, "state": state},
            "namespaces": ns, "io_uring": {"io_uring_disabled": io_uring},
            "cgroup_version": 2 if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else 1}


def check_report(report, facts):
    assert report["seccomp_filter"] == {"supported": True, "exit": 0}
    for key in ("kernel", "machine", "landlock", "io_uring"):
        assert report[key] == facts[key], key
    assert set(report["namespaces"]) == set(facts["namespaces"])
    assert report["namespaces"]["net"] and report["namespaces"]["mnt"] and report["namespaces"]["pid"]


@pytest.fixture(scope="module")
def nopython_image():
    if not _docker_up():
        pytest.skip("needs a Docker engine")
    res = subprocess.run(["bash", "-c", "source scripts/lib.sh; ensure_nopython_image"], cwd=ROOT, capture_output=True,
                         text=True, check=False, timeout=1200)
    if res.returncode != 0:
        pytest.skip(f"could not build {NOPYTHON}: {(res.stderr or res.stdout).strip()[-300:]}")
    return NOPYTHON


@pytest.mark.oracle("kernel")
@pytest.mark.skipif(shutil.which("perl") is None, reason="needs perl")
def test_probe_reports_this_kernel():
    report = json.loads(subprocess.run(["perl", str(PROBE)], capture_output=True, text=True, check=True).stdout)
    check_report(report, kernel_facts())
    assert report["cgroup_version"] == kernel_facts()["cgroup_version"]


@pytest.mark.oracle("kernel", "docker")
@pytest.mark.parametrize("probe", ["perl", "python3"], ids=["perl-probe", "gap-python3-probe"])
def test_probe_runs_in_an_image_without_python(nopython_image, probe):
    tools = subprocess.run(["docker", "run", "--rm", "--network=none", nopython_image, "sh", "-c",
                            "command -v perl; command -v python3 || echo no-python3"], capture_output=True, text=True,
                           check=True).stdout.split()
    assert tools == ["/usr/bin/perl", "no-python3"]  # like the official debian:bookworm-slim
    argv = ["docker", "run", "--rm", "--network=none", "--security-opt=seccomp=unconfined", nopython_image]
    if probe == "python3":  # the probe command before this fix (`python3 -c <kernel_probe.py>`)
        res = subprocess.run([*argv, "python3", "-c", "print('{}')"], capture_output=True, text=True, check=False)
        assert res.returncode == 127 and "python3" in res.stderr
        return
    res = subprocess.run([*argv, "perl", "-e", PROBE.read_text()], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    check_report(json.loads(res.stdout), kernel_facts())  # the container shares this kernel


@pytest.mark.oracle("ansible-core", "kernel")
@needs_docker
def test_preflight_playbook_passes_then_refuses_a_taken_port(nopython_image):
    cmd = ["ansible-playbook", "-i", str(ROOT / "inventories/lab/hosts.yml"), str(ROOT / "playbooks/preflight.yml"), "--check",
           "-e", json.dumps({"preflight_image": nopython_image})]
    ok = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    assert ok.returncode == 0, ok.stdout[-2000:]
    assert "changed=0" in ok.stdout
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        taken = subprocess.run([*cmd, "-e", json.dumps({"preflight_ports": [port]})], capture_output=True, text=True, cwd=ROOT,
                               check=False)
    assert taken.returncode != 0 and f"ports in use [{port}]" in taken.stdout
