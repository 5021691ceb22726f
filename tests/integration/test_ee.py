"""The execution environment for AWX / Automation Platform, built for real by ``scripts/ee.sh build`` from
execution-environment.yml (ansible-builder, then Docker, offline) and used the two ways a job runs: ``ansible-playbook``
in the image, and ``ansible-runner run <private data dir>`` in the image as AWX does, with the job's result read from
the runner's artifacts (``artifacts/<ident>/status``, ``rc``, ``job_events/*.json``).

The playbooks need nothing outside the container (``--network none``): the collection's seccomp compiler writes its
filter in check mode (nothing written), then for real, then again (idempotent), and a filter from a dependency
collection runs on the runtime Python requirements. A job with a bad module input must come back ``failed`` with the
module's message in its events, so the artifact checks can fail.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sysconfig

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
EE_SH = ROOT / "scripts" / "ee.sh"
VERSION = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
IMAGE = os.environ.get("AGENTSEC_EE_IMAGE", f"agentsec-nemoclaw-ee:{VERSION}")
SITE_COLLECTIONS = pathlib.Path(sysconfig.get_paths()["purelib"]) / "ansible_collections"


def _docker_answers() -> bool:
    return bool(shutil.which("docker")) and subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


SMOKE = """\
- name: EE smoke
  hosts: all
  gather_facts: false
  tasks:
    - name: Compile in check mode
      agentsec.nemoclaw.seccomp_filter:
        arch: x86_64
        dest: "{{ out }}/agent.bpf"
      check_mode: true
    - name: Nothing written in check mode
      ansible.builtin.stat:
        path: "{{ out }}/agent.bpf"
      register: after_check
    - name: Install
      agentsec.nemoclaw.seccomp_filter:
        arch: x86_64
        dest: "{{ out }}/agent.bpf"
    - name: Again
      agentsec.nemoclaw.seccomp_filter:
        arch: x86_64
        dest: "{{ out }}/agent.bpf"
    - name: A dependency collection's filter on the runtime requirements (jmespath)
      ansible.builtin.set_fact:
        picked: "{{ {'a': [{'n': 1}, {'n': 2}]} | community.general.json_query('a[].n') }}"
    - name: Report
      ansible.builtin.debug:
        msg: "{{ {'existed_after_check': after_check.stat.exists, 'picked': picked} }}"
"""

BAD_INPUT = """\
- name: EE bad input
  hosts: all
  gather_facts: false
  tasks:
    - name: An architecture the module does not know
      agentsec.nemoclaw.seccomp_filter:
        arch: sparc
        dest: "{{ out }}/agent.bpf"
"""


@pytest.fixture(scope="module")
def image():
    """Builds (or, with the Docker cache, re-uses) the EE image once for this module."""
    if not _docker_answers():
        pytest.skip("needs a Docker engine (scripts/test.sh's docker stage starts one)")
    env = {**os.environ, "AGENTSEC_EE_IMAGE": IMAGE}
    done = subprocess.run(["bash", str(EE_SH), "build"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    print(done.stdout)
    return IMAGE


def _private_data_dir(path: pathlib.Path, playbook: str) -> pathlib.Path:
    """A private data dir laid out as AWX writes one: project/, inventory/hosts, env/extravars, env/envvars."""
    for sub in ("project", "inventory", "env", "out"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    (path / "project" / "job.yml").write_text(playbook)
    (path / "inventory" / "hosts").write_text("localhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n")
    (path / "env" / "extravars").write_text(json.dumps({"out": "/runner/out"}))
    (path / "env" / "envvars").write_text(json.dumps({"ANSIBLE_NOCOLOR": "1"}))
    return path


def _runner(pdd: pathlib.Path, ident: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "AGENTSEC_EE_IMAGE": IMAGE}
    return subprocess.run(["bash", str(EE_SH), "runner", str(pdd), "job.yml", ident], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600, check=False)


def _events(artifacts: pathlib.Path) -> list[dict]:
    """ansible-runner's job events, in counter order (files are named <counter>-<uuid>.json)."""
    files = sorted((artifacts / "job_events").glob("*.json"), key=lambda p: int(p.name.split("-", 1)[0]))
    return [json.loads(p.read_text()) for p in files]


def _task_results(events: list[dict]) -> dict[str, dict]:
    return {e["event_data"]["task"]: e for e in events if e["event"] in ("runner_on_ok", "runner_on_failed")}


@pytest.mark.docker
@pytest.mark.oracle("docker", "ansible-core")
def test_image_holds_the_collections_at_the_staged_versions(image):
    out = subprocess.run(["docker", "run", "--rm", "--network", "none", image, "ansible-galaxy", "collection", "list", "--format", "json"],
                         capture_output=True, text=True, check=True).stdout
    listed = json.loads(out)
    installed = listed["/usr/share/ansible/collections/ansible_collections"]
    assert installed["agentsec.nemoclaw"]["version"] == VERSION
    definition = yaml.safe_load((ROOT / "execution-environment.yml").read_text())
    for entry in definition["dependencies"]["galaxy"]["collections"]:
        ns, name = pathlib.PurePath(entry["name"]).name.removesuffix(".tar.gz").split("-", 1)
        shipped = json.loads((SITE_COLLECTIONS / ns / name / "MANIFEST.json").read_text())["collection_info"]["version"]
        assert installed[f"{ns}.{name}"]["version"] == shipped, f"{ns}.{name}"


@pytest.mark.docker
@pytest.mark.oracle("docker")
def test_image_is_an_ee_without_the_build_only_offline_config(image):
    inspect = json.loads(subprocess.run(["docker", "image", "inspect", image], capture_output=True, text=True, check=True).stdout)[0]
    assert inspect["Config"]["Labels"].get("ansible-execution-environment") == "true"
    assert inspect["Config"]["User"] == "1000"
    probe = "test ! -e /wheels && test ! -e /etc/pip.conf && ansible-runner --version && ansible --version | head -n1"
    done = subprocess.run(["docker", "run", "--rm", "--network", "none", image, "bash", "-c", probe], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2.4.3" in done.stdout and "core 2.19.14" in done.stdout


@pytest.mark.docker
@pytest.mark.oracle("docker", "ansible-core")
def test_ansible_playbook_in_the_image(image, tmp_path):
    pdd = _private_data_dir(tmp_path / "direct", SMOKE)
    os.chmod(pdd / "out", 0o777)
    env = {**os.environ, "AGENTSEC_EE_IMAGE": image,
           "AGENTSEC_EE_RUN_OPTS": f"-v {pdd}:/runner -e ANSIBLE_STDOUT_CALLBACK=json -e ANSIBLE_NOCOLOR=1"}
    done = subprocess.run(["bash", str(EE_SH), "playbook", "-i", "/runner/inventory/hosts", "-e", "out=/runner/out", "/runner/project/job.yml"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    report = json.loads(done.stdout[done.stdout.index("{"):done.stdout.rindex("}") + 1])
    tasks = {t["task"]["name"]: t["hosts"]["localhost"] for t in report["plays"][0]["tasks"]}
    assert tasks["Compile in check mode"]["changed"] is True
    assert tasks["Nothing written in check mode"]["stat"]["exists"] is False
    assert tasks["Install"]["changed"] is True and tasks["Again"]["changed"] is False
    assert tasks["Report"]["msg"]["picked"] == [1, 2]
    assert report["stats"]["localhost"]["failures"] == 0 and report["stats"]["localhost"]["changed"] == 2
    assert (pdd / "out" / "agent.bpf").stat().st_size % 8 == 0  # whole struct sock_filter entries


@pytest.mark.docker
@pytest.mark.oracle("docker", "ansible-core")
def test_ansible_runner_job_as_awx_runs_it(image, tmp_path):
    pdd = _private_data_dir(tmp_path / "job", SMOKE)
    done = _runner(pdd, "smoke")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    artifacts = pdd / "artifacts" / "smoke"
    assert (artifacts / "status").read_text() == "successful"
    assert (artifacts / "rc").read_text() == "0"
    events = _events(artifacts)
    assert events[0]["event"] == "playbook_on_start" and events[-1]["event"] == "playbook_on_stats"
    results = _task_results(events)
    assert results["Compile in check mode"]["event_data"]["res"]["changed"] is True
    assert results["Nothing written in check mode"]["event_data"]["res"]["stat"]["exists"] is False
    assert results["Install"]["event_data"]["res"]["changed"] is True
    assert results["Again"]["event_data"]["res"]["changed"] is False
    assert results["Report"]["event_data"]["res"]["msg"] == {"existed_after_check": False, "picked": [1, 2]}
    stats = events[-1]["event_data"]
    assert stats["changed"] == {"localhost": 2} and stats["failures"] == {}
    assert all(e["event"] != "runner_on_failed" for e in events)
    assert "PLAY RECAP" in (artifacts / "stdout").read_text()


@pytest.mark.docker
@pytest.mark.oracle("docker", "ansible-core")
def test_ansible_runner_reports_a_failed_job(image, tmp_path):
    pdd = _private_data_dir(tmp_path / "bad", BAD_INPUT)
    done = _runner(pdd, "bad")
    assert done.returncode != 0
    artifacts = pdd / "artifacts" / "bad"
    assert (artifacts / "status").read_text() == "failed"
    assert (artifacts / "rc").read_text() == "2"
    failed = [e for e in _events(artifacts) if e["event"] == "runner_on_failed"]
    assert len(failed) == 1
    msg = failed[0]["event_data"]["res"]["msg"]
    assert "arch" in msg and "sparc" in msg
    assert not (pdd / "out" / "agent.bpf").exists()


@pytest.mark.oracle("upstream")
def test_collection_ee_metadata_declares_its_requirements(tmp_path):
    """ansible-builder's introspection (what builds an EE that pulls agentsec.nemoclaw from Galaxy) finds the
    collection's Python and system requirements through meta/execution-environment.yml."""
    link = tmp_path / "ansible_collections" / "agentsec" / "nemoclaw"
    link.parent.mkdir(parents=True)
    link.symlink_to(ROOT)
    done = subprocess.run(["ansible-builder", "introspect", str(tmp_path)], capture_output=True, text=True, check=True)
    found = yaml.safe_load(done.stdout)
    python = [r.split("#")[0].strip() for r in found["python"]]
    system = [r.split("#")[0].strip() for r in found["system"]]
    pinned = [line for line in (ROOT / "requirements" / "runtime.txt").read_text().splitlines()
              if line and not line.startswith("#") and not line.startswith("ansible-core")]
    bindep = [line for line in (ROOT / "bindep.txt").read_text().splitlines() if line and not line.startswith("#")]
    assert python == pinned and system == bindep, done.stdout
