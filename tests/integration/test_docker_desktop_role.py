"""The prerequisites role's Docker Desktop tasks and the preflight against the Docker Desktop stand-in backed by a real
Docker Engine (tests/standins/README.md, "Docker Desktop"), in a container built from the fleet_macos scenario's image
and run with that scenario's platform settings (molecule/fleet_macos/molecule.yml `platforms`), so what is tested is
the Mac the scenario plays: install from the DMG, `open -g -a Docker` through the privileged helper (sudo -n), the
wait on the user's socket, idempotence, a settings change restarting Docker Desktop through `docker desktop restart`,
check mode, and the kernel preflight measured in a container of that engine.

Needs this machine's Docker (to build and run the Mac container); Docker objects are named $AGENTSEC_DOCKER_PREFIX
(default agentsec-dd) and removed afterwards.
"""
from __future__ import annotations

import ctypes
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import uuid

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "molecule" / "fleet_macos"
PREFIX = os.environ.get("AGENTSEC_DOCKER_PREFIX", "agentsec-dd")
IMAGE = f"{PREFIX}-macsim:dd"
HOME = "/Users/studio"
SOCKET = f"{HOME}/.docker/run/docker.sock"
WWW = "http://127.0.0.1:8765"
NOT_ON_PATH = "for b in {}; do if command -v $b; then exit 1; fi; done"  # dash: `command -v a b` = status of b only

PLAY = """
- name: Docker Desktop tasks of the prerequisites role
  hosts: nemoclaw_hosts
  gather_facts: true
  tasks:
    - name: Report macOS on Apple Silicon
      macsim_facts:
    - name: Check the inputs
      ansible.builtin.include_role:
        name: agentsec.nemoclaw.prerequisites
        tasks_from: validate
    - name: Docker Desktop
      ansible.builtin.include_role:
        name: agentsec.nemoclaw.prerequisites
        tasks_from: macos_docker
"""

PREFLIGHT = """
- name: The preflight
  ansible.builtin.import_playbook: agentsec.nemoclaw.preflight

- name: Hand its report to the test
  hosts: nemoclaw_hosts
  gather_facts: false
  tasks:
    - name: Write preflight_report
      ansible.builtin.copy:
        content: "{{{{ preflight_report | to_json }}}}"
        dest: {report}
        mode: "0644"
      delegate_to: localhost
"""


def _docker(*argv, check=True, **kw):
    return subprocess.run(["docker", *argv], capture_output=True, text=True, check=check, **kw)


def _platform_args() -> list[str]:
    """`docker run` options for the scenario's platform (the same keys molecule's docker driver passes)."""
    platform = yaml.safe_load((SCENARIO / "molecule.yml").read_text())["platforms"][0]
    args = [arg for cap in platform.get("capabilities", []) for arg in ("--cap-add", cap)]
    for opt in platform.get("security_opts", []):
        args += ["--security-opt", opt]
    if platform.get("cgroupns_mode"):
        args += ["--cgroupns", platform["cgroupns_mode"]]
    for vol in platform.get("volumes", []):  # molecule expands its own variables in the platform settings
        args += ["-v", vol.replace("${MOLECULE_PROJECT_DIRECTORY}", str(SCENARIO.parents[1]))]
    for tmpfs in platform.get("tmpfs", []):
        args += ["--tmpfs", tmpfs]
    return args


class Mac:
    def __init__(self, name: str, workdir: pathlib.Path):
        self.name, self.workdir = name, workdir
        self.inventory = workdir / "inventory.yml"
        self.inventory.write_text(yaml.safe_dump({"all": {"children": {"nemoclaw_hosts": {"hosts": {name: {
            "ansible_connection": "community.docker.docker", "ansible_user": "studio",
            "ansible_python_interpreter": "/usr/bin/python3"}}}}}}))

    def sh(self, script: str, user: str = "root", check=True) -> subprocess.CompletedProcess:
        return _docker("exec", "-u", user, "-e", f"HOME={HOME if user == 'studio' else '/root'}", self.name,
                       "sh", "-c", script, check=check)

    def state(self) -> dict:
        return json.loads(self.sh("cat /var/lib/agentsec-standins/docker-desktop.json").stdout)

    def calls(self, tool: str) -> list:
        out = self.sh("cat /var/lib/agentsec-standins/calls.jsonl").stdout
        return [e for e in map(json.loads, out.splitlines()) if e["tool"] == tool]

    def playbook(self, book: str, extra: dict, *options: str) -> subprocess.CompletedProcess:
        env = dict(os.environ, ANSIBLE_LIBRARY=str(SCENARIO / "library"), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_LOCAL_TEMP=str(self.workdir / "t"))
        return subprocess.run(["ansible-playbook", "-i", str(self.inventory), book, "-e", json.dumps(extra), *options],
                              env=env, capture_output=True, text=True, cwd=self.workdir, check=False, timeout=900)


@pytest.fixture(scope="module")
def mac(tmp_path_factory):
    if shutil.which("docker") is None or _docker("info", check=False).returncode != 0:
        pytest.skip("this machine's Docker is needed to build and run the Mac container")
    if _docker("image", "inspect", "debian:bookworm-slim", check=False).returncode != 0:
        pytest.skip("debian:bookworm-slim is needed (scripts/lib.sh ensure_base_image)")
    built = _docker("build", "-q", "-t", IMAGE, "-f", str(SCENARIO / "Dockerfile.j2"), str(SCENARIO), check=False)
    if built.returncode:
        pytest.skip(f"the fleet_macos image does not build here: {built.stderr.strip()[-500:]}")
    name = f"{PREFIX}-mac-{uuid.uuid4().hex[:8]}"
    _docker("run", "-d", "--name", name, *_platform_args(), IMAGE, "sleep", "infinity")
    workdir = tmp_path_factory.mktemp("docker-desktop-role")
    try:
        www = workdir / "www/docker/4.68.0"
        www.mkdir(parents=True)
        dmg = www / "Docker.dmg"
        dmg.write_text(json.dumps({"product": "Docker Desktop", "version": "4.68.0"}))
        (www / "Docker.dmg.sha256").write_text(f"{hashlib.sha256(dmg.read_bytes()).hexdigest()}  Docker.dmg\n")
        _docker("save", "-o", str(workdir / "bookworm-slim.tar"), "debian:bookworm-slim")
        _docker("cp", str(ROOT / "tests/standins"), f"{name}:/opt/agentsec-standins")
        _docker("cp", str(workdir / "www"), f"{name}:/opt/agentsec-www")
        _docker("cp", str(workdir / "bookworm-slim.tar"), f"{name}:/opt/bookworm-slim.tar")
        box = Mac(name, workdir)
        box.sh("mkdir -m 0777 -p /var/lib/agentsec-standins && chmod -R a+rX /opt/agentsec-standins /opt/agentsec-www /opt/bookworm-slim.tar && "
               "for t in hdiutil installer open launchctl; do ln -s /opt/agentsec-standins/bin/$t /usr/local/sbin/$t; done && "
               "(setsid python3 -m http.server --bind 127.0.0.1 --directory /opt/agentsec-www 8765 >/dev/null 2>&1 </dev/null &)"
               " && sleep 1")
        yield box
    finally:
        _docker("rm", "-f", name, check=False)


def _extra(settings: dict) -> dict:
    return {"nemoclaw_target": "openshell_k3s", "prerequisites_homebrew_pkg_checksum": "sha256:" + "0" * 64,
            "prerequisites_docker_desktop_url": f"{WWW}/docker/4.68.0/Docker.dmg",
            "prerequisites_docker_desktop_checksum": f"sha256:{WWW}/docker/4.68.0/Docker.dmg.sha256",
            "prerequisites_docker_desktop_settings": settings}


def _recap(run: subprocess.CompletedProcess) -> str:
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    return next(line for line in run.stdout.splitlines() if "ok=" in line and "changed=" in line)


@pytest.mark.oracle("ansible-core", "docker")
def test_prerequisites_install_start_and_restart_docker_desktop_on_a_real_engine(mac):
    book = mac.workdir / "dd.yml"
    book.write_text(PLAY)
    first = {"Cpus": 6, "MemoryMiB": 12288, "DiskSizeMiB": 65536}
    assert mac.sh(NOT_ON_PATH.format("docker dockerd containerd runc"), user="studio", check=False).returncode == 0
    assert "changed=0" not in _recap(mac.playbook(str(book), _extra(first)))
    st = mac.state()
    assert st["running"] and st["starts"] == 1 and st["applied_settings"] == first and st["user"] == "studio"
    # the user's own socket, a real engine behind it (overlay2 on the scenario's tmpfs), no default socket
    assert mac.sh(f"stat -c '%F %U' {SOCKET}").stdout.strip() == "socket studio"
    info = json.loads(mac.sh(f"DOCKER_HOST=unix://{SOCKET} /usr/local/bin/docker info --format '{{{{json .}}}}'",
                             user="studio").stdout)
    assert info["Driver"] == "overlay2" and info["ServerVersion"].startswith("20.10")
    assert mac.sh("test -e /var/run/docker.sock", check=False).returncode != 0
    assert mac.sh(NOT_ON_PATH.format("dockerd containerd runc"), user="studio", check=False).returncode == 0
    assert mac.sh(f"find {HOME} -not -user studio", user="root").stdout == ""
    # the role opened Docker Desktop once, as the user; the engine's root work went through sudo -n
    opens = mac.calls("open")
    assert [c["argv"] for c in opens] == [["-g", "-a", "Docker"]] and opens[0]["uid"] != 0

    assert "changed=0" in _recap(mac.playbook(str(book), _extra(first)))  # idempotent: nothing restarted
    assert mac.state()["starts"] == 1 and mac.state()["pid"] == st["pid"]
    second = {"Cpus": 4, "MemoryMiB": 8192, "DiskSizeMiB": 65536}
    settings = f"'{HOME}/Library/Group Containers/group.com.docker/settings-store.json'"
    # check mode: reports the settings change (and the restart it would notify) but writes and restarts nothing
    assert "changed=1" in _recap(mac.playbook(str(book), _extra(second), "--check"))
    assert mac.state()["starts"] == 1 and json.loads(mac.sh(f"cat {settings}").stdout)["Cpus"] == 6
    _recap(mac.playbook(str(book), _extra(second)))
    restarted = mac.state()
    assert restarted["starts"] == 2 and restarted["pid"] != st["pid"] and restarted["applied_settings"] == second
    assert [c["argv"] for c in mac.calls("docker") if c["argv"][:1] == ["desktop"]] == [["desktop", "restart"]]
    assert "changed=0" in _recap(mac.playbook(str(book), _extra(second)))


def _landlock_abi() -> int:
    """The running kernel's Landlock ABI: landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)."""
    libc = ctypes.CDLL(None, use_errno=True)
    abi = libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(abi, 0)


@pytest.mark.oracle("kernel", "docker")
def test_preflight_measures_the_kernel_inside_docker_desktops_engine(mac):
    if not mac.sh("test -S " + SOCKET, check=False).returncode == 0:
        pytest.skip("needs the engine the previous test started")
    mac.sh(f"DOCKER_HOST=unix://{SOCKET} /usr/local/bin/docker load -i /opt/bookworm-slim.tar", user="studio")
    book, report_file = mac.workdir / "preflight.yml", mac.workdir / "preflight.json"
    book.write_text(PREFLIGHT.format(report=report_file))
    _recap(mac.playbook(str(book), {"nemoclaw_target": "openshell_k3s", "preflight_docker_bin": "/usr/local/bin/docker",
                                    "preflight_docker_host": f"unix://{SOCKET}", "preflight_ports": [8080]}))
    report = json.loads(report_file.read_text())
    assert report["landlock_abi"] == _landlock_abi() > 0 and report["kernel"] == os.uname().release
    assert report["seccomp_filter"] and report["namespaces"]["net"] and report["namespaces"]["pid"]
    probes = [c for c in mac.calls("docker") if c["argv"][:1] == ["run"]]
    assert probes and probes[-1]["env"]["DOCKER_HOST"] == f"unix://{SOCKET}"
