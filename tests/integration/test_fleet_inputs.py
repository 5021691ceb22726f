"""Bad input and failure for the fleet roles: each case runs the real role tasks with ansible-playbook on this host and
must fail before any change, with one message naming the value and the fix. Platform facts of a Mac (or an Intel Mac,
or another system) come from the fleet_macos scenario's test module; the cgroup case uses this host's real kernel."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "molecule" / "fleet_macos" / "library"

PLAY = """
- name: Case
  hosts: localhost
  connection: local
  gather_facts: true
  tasks:
    - name: Play another platform
      macsim_facts: {facts}
      when: {fake}
    - name: Run the role part under test
      ansible.builtin.include_role:
        name: agentsec.nemoclaw.{role}
        tasks_from: {tasks_from}
"""


def run_case(tmp_path, role, tasks_from="validate", facts=None, extra=None):
    book = tmp_path / "case.yml"
    book.write_text(PLAY.format(facts=json.dumps(facts or {}), fake=facts is not None, role=role, tasks_from=tasks_from))
    env = dict(os.environ, ANSIBLE_LIBRARY=str(LIBRARY), ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(tmp_path / "t"))
    cmd = ["ansible-playbook", str(book), "-e", json.dumps(extra or {})]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp_path, check=False)


def failed_with(run, *fragments):
    out = run.stdout + run.stderr
    assert run.returncode != 0, out[-3000:]
    assert "changed=0" in out, "a refused input must not have changed anything"
    for fragment in fragments:
        assert fragment in out, (fragment, out[-3000:])


@pytest.mark.oracle("ansible-core")
def test_intel_mac_refused(tmp_path):
    failed_with(run_case(tmp_path, "prerequisites", facts={"machine": "x86_64"}), "Darwin x86_64", "Intel Macs are refused")


@pytest.mark.oracle("ansible-core")
def test_unsupported_system_refused(tmp_path):
    failed_with(run_case(tmp_path, "prerequisites", facts={"system": "FreeBSD", "machine": "amd64"}), "FreeBSD amd64 (FreeBSD) is not supported")


@pytest.mark.oracle("ansible-core")
def test_cgroup_v1_refused_unless_accepted(tmp_path):
    if pathlib.Path("/sys/fs/cgroup/cgroup.controllers").exists():
        pytest.skip("this host runs cgroup v2; the refusal path needs a v1 host")
    failed_with(run_case(tmp_path, "prerequisites"), "(cgroup v1)", "prerequisites_cgroup_v2_required=false")
    ok = run_case(tmp_path, "prerequisites", extra={"prerequisites_cgroup_v2_required": False})
    assert ok.returncode == 0, ok.stdout[-2000:]


@pytest.mark.oracle("ansible-core")
def test_mac_without_docker_desktop_needs_a_pinned_dmg(tmp_path):
    if pathlib.Path("/Applications/Docker.app").exists():
        pytest.skip("Docker Desktop is installed here")
    extra = {"prerequisites_homebrew_pkg_checksum": "sha256:" + "0" * 64, "prerequisites_homebrew_prefix": str(tmp_path / "brew")}
    failed_with(run_case(tmp_path, "prerequisites", facts={}, extra=extra),
                "Docker Desktop 4.68.0 is needed", "(found 0)", "prerequisites_docker_desktop_url")


@pytest.mark.oracle("ansible-core")
def test_missing_homebrew_needs_a_checksum(tmp_path):
    failed_with(run_case(tmp_path, "prerequisites", facts={}, extra={"prerequisites_homebrew_prefix": str(tmp_path / "brew")}),
                "Homebrew is missing", "prerequisites_homebrew_pkg_checksum")


ACCEPT = {"nemoclaw_onboard_accept_third_party_software": True}


@pytest.mark.oracle("upstream", "ansible-core")
@pytest.mark.parametrize(("extra", "fragments"), [
    ({"nemoclaw_onboard_version": "0.0.7"}, ["NemoClaw 0.0.7 with OpenShell 0.0.26 hangs", "#1810"]),
    ({"nemoclaw_onboard_version": "0.0.22"}, ["requires OpenShell >= 0.0.29"]),
    ({"nemoclaw_onboard_openshell_version": "0.0.29"}, ["NemoClaw 0.0.21 accepts OpenShell 0.0.24 to 0.0.26 only"]),
    ({"nemoclaw_onboard_sandbox_name": "My_Agent"}, ["sandbox name 'My_Agent' has upper-case letters", "RFC 1123"]),
    ({"nemoclaw_onboard_sandbox_name": "1agent"}, ["'1agent' starts with a digit"]),
    ({"nemoclaw_onboard_sandbox_name": "status"}, ["'status' is a nemoclaw command"]),
    ({"nemoclaw_onboard_provider": "cloud"}, ["provider 'cloud' needs NVIDIA_API_KEY", "nemoclaw_onboard_nvidia_api_key"]),
    ({"nemoclaw_onboard_provider": "cloud", "nemoclaw_onboard_nvidia_api_key": "sk-SENTINEL-wrong-vendor"},
     ["does not start with 'nvapi-'"]),
    ({"nemoclaw_onboard_provider": "openai"}, ["needs OPENAI_API_KEY", "nemoclaw_onboard_provider_api_key"]),
    ({"nemoclaw_onboard_provider": "custom", "nemoclaw_onboard_provider_api_key": "k"}, ["nemoclaw_onboard_endpoint_url"]),
    ({"nemoclaw_onboard_provider": "nim", "nemoclaw_onboard_experimental": True}, ["needs an NVIDIA GPU"]),
    ({"nemoclaw_onboard_policy_presets": ["pypi", "pipy"]}, ["unknown policy presets ['pipy']"]),
    ({"nemoclaw_onboard_policy_presets": ["docker"]}, ["unknown policy presets ['docker']"]),  # not shipped at v0.0.21
])
def test_onboarding_inputs_refused_on_a_mac(tmp_path, extra, fragments):
    run = run_case(tmp_path, "nemoclaw_onboard", facts={}, extra={**ACCEPT, **extra})
    failed_with(run, *fragments)
    assert "SENTINEL" not in run.stdout + run.stderr


@pytest.mark.oracle("upstream", "ansible-core")
def test_third_party_notice_must_be_accepted(tmp_path):
    # NemoClaw v0.0.21 exits 1 in non-interactive onboarding without the acceptance (src/lib/onboard.ts:5913-5920,
    # src/lib/usage-notice.ts:129-135 @db3453b5): the role refuses first and names the variable
    failed_with(run_case(tmp_path, "nemoclaw_onboard", facts={}),
                "NemoClaw 0.0.21 refuses non-interactive onboarding", "nemoclaw_onboard_accept_third_party_software=true")
    ok = run_case(tmp_path, "nemoclaw_onboard", facts={}, extra=ACCEPT)
    assert ok.returncode == 0, ok.stdout[-2000:]
    gone = run_case(tmp_path, "nemoclaw_onboard", facts={}, extra={"nemoclaw_onboard_state": "absent"})
    assert gone.returncode == 0, gone.stdout[-2000:]  # removal needs no consent


@pytest.mark.oracle("ansible-core")
def test_openshell_host_service_release_refused(tmp_path):
    failed_with(run_case(tmp_path, "openshell_cluster", tasks_from="main", facts={},
                         extra={"openshell_cluster_version": "0.0.37"}), "version '0.0.37'", "`openshell gateway start` no longer exists")


@pytest.mark.oracle("ansible-core")
def test_checksum_mismatch_installs_nothing(tmp_path):
    www = tmp_path / "www"
    subprocess.run([sys.executable, str(ROOT / "tests/standins/build_artifacts.py"), str(www)], check=True, capture_output=True)
    bindir = tmp_path / "bin"
    run = run_case(tmp_path, "openshell_cluster", tasks_from="install", extra={
        "openshell_cluster_release_url": f"file://{www}/openshell/v0.0.26",
        "openshell_cluster_install_dir": str(bindir),
        "openshell_cluster_checksums": {"x86_64-unknown-linux-musl": "sha256:" + "a" * 64,
                                        "aarch64-unknown-linux-musl": "sha256:" + "a" * 64}})
    out = run.stdout + run.stderr
    assert run.returncode != 0 and "checksum" in out.lower(), out[-2000:]
    assert not (bindir / "openshell").exists() and not pathlib.Path("/tmp/agentsec-openshell-0.0.26").exists()
    # the same download with the release's own checksum file installs and runs
    ok = run_case(tmp_path, "openshell_cluster", tasks_from="install", extra={
        "openshell_cluster_release_url": f"file://{www}/openshell/v0.0.26", "openshell_cluster_install_dir": str(bindir)})
    assert ok.returncode == 0, ok.stdout[-2000:]
    assert subprocess.run([str(bindir / "openshell"), "--version"], capture_output=True, text=True, check=True).stdout.strip() == "openshell 0.0.26"


@pytest.mark.oracle("ansible-core")
@pytest.mark.parametrize("target", ["openshell_host", "openshell_0_1"])
def test_the_kubernetes_backend_is_refused_where_the_target_has_no_cluster(tmp_path, target):
    # the role's defaults resolve on every target (a cluster-less one has no cluster.* keys); asking the host-service
    # lines for the k3s backend is refused before any task, naming the target and its own backend
    extra = {"nemoclaw_target": target, "hardening_backend": "kubernetes", "hardening_ollama_firewall_enabled": False}
    failed_with(run_case(tmp_path, "hardening", extra=extra),
                f"target {target} has none", "choose the target's own backend (policy)")
    ok = run_case(tmp_path, "hardening", extra={**extra, "hardening_backend": "policy"})
    assert ok.returncode == 0, (ok.stdout + ok.stderr)[-3000:]
