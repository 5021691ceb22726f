"""The openshell connection plugin driven by ansible-core through a real `docker exec` prefix, as the lab's
[docker, exec, -i, CONTAINER, ...] prefix is (docs/architecture.md "Sandbox addressing"): a container of our own
(network none, uid 998 like the sandbox agent) from the local base image, which has python3.

ansible-core decides whether the module ran and what it answered (ping, the copy/fetch checksums); the Docker engine
decides the identity the command runs with. Without -i docker exec gives the command no stdin: under pipelining the
module never arrives, and ansible-core reports the task failed - the negative control.
"""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
ANSIBLE = pathlib.Path(sys.executable).with_name("ansible")
IMAGE = os.environ.get("AGENTSEC_BASE_IMAGE", "debian:bookworm-slim")
NAME = f"agentsec-h11-conn-{os.getpid()}"

pytestmark = [pytest.mark.docker]


def _docker(*args, check=True):
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120, check=check)


@pytest.fixture(scope="module")
def sandbox():
    if not shutil.which("docker") or _docker("info", check=False).returncode != 0:
        pytest.skip("needs a Docker engine")
    if _docker("image", "inspect", IMAGE, check=False).returncode != 0:
        pytest.skip(f"needs the local image {IMAGE} (scripts/lib.sh ensure_base_image); there is no registry here")
    if _docker("run", "--rm", "--network", "none", IMAGE, "sh", "-c", "command -v python3", check=False).returncode != 0:
        pytest.skip(f"{IMAGE} here has no python3 (the official image has none; scripts/lib.sh builds one with it)")
    _docker("run", "-d", "--name", NAME, "--network", "none", "--user", "998:998", IMAGE, "sleep", "600")
    try:
        yield NAME
    finally:
        _docker("rm", "-f", NAME, check=False)


def adhoc(tmp, prefix, module, args="", pipelining=True):
    """`ansible sb1 -o -m MODULE -a ARGS` through the plugin (sandbox = the container) -> (rc, result line)."""
    inventory = {"all": {"hosts": {"sb1": {
        "ansible_connection": "agentsec.nemoclaw.openshell", "ansible_openshell_exec_prefix": prefix, "ansible_openshell_sandbox": NAME,
        "ansible_python_interpreter": "/usr/bin/python3", "ansible_remote_tmp": "/tmp/ansible-remote"}}}}
    (tmp / "inventory.json").write_text(json.dumps(inventory))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".build" / "collections"), ANSIBLE_PIPELINING=str(pipelining),
               ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(tmp / "local-tmp"))
    run = subprocess.run([str(ANSIBLE), "sb1", "-i", str(tmp / "inventory.json"), "-o", "-m", module, "-a", args],
                         capture_output=True, text=True, env=env, cwd=tmp, timeout=180, check=False)
    line = next((ln for ln in run.stdout.splitlines() if ln.startswith("sb1 | ")), "")
    assert line, run.stdout[-2000:] + run.stderr[-2000:]
    return run.returncode, line


def result(line):
    return json.loads(line.split("=>", 1)[1])


@pytest.mark.oracle("ansible-core", "docker")
@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "put_file"])
def test_ansible_runs_modules_in_the_container_as_its_user(sandbox, tmp_path, pipelining):
    prefix = ["docker", "exec", "-i", "{sandbox}"]
    rc, line = adhoc(tmp_path, prefix, "ansible.builtin.ping", pipelining=pipelining)
    assert rc == 0 and result(line)["ping"] == "pong", line
    rc, line = adhoc(tmp_path, prefix, "ansible.builtin.command", "id -u", pipelining=pipelining)
    assert rc == 0 and line.endswith("(stdout) 998"), line  # the identity docker exec gives: the container's user


@pytest.mark.oracle("ansible-core", "docker")
def test_copy_and_fetch_into_the_container(sandbox, tmp_path):
    payload = bytes(range(256)) * 32
    (tmp_path / "src.bin").write_bytes(payload)
    prefix = ["docker", "exec", "-i", "{sandbox}"]
    rc, line = adhoc(tmp_path, prefix, "ansible.builtin.copy", f"src={tmp_path / 'src.bin'} dest=/tmp/inside.bin mode=0600",
                     pipelining=False)
    assert rc == 0 and result(line)["checksum"] == hashlib.sha1(payload).hexdigest(), line  # ansible-core's checksum
    rc, line = adhoc(tmp_path, prefix, "ansible.builtin.fetch", f"src=/tmp/inside.bin dest={tmp_path / 'back'}/ flat=true")
    assert rc == 0 and (tmp_path / "back" / "inside.bin").read_bytes() == payload, line


@pytest.mark.oracle("ansible-core", "docker")
def test_a_prefix_without_stdin_fails_under_pipelining(sandbox, tmp_path):
    rc, line = adhoc(tmp_path, ["docker", "exec", "{sandbox}"], "ansible.builtin.ping", pipelining=True)
    assert rc != 0 and "pong" not in line, line
