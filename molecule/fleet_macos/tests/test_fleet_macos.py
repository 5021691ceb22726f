"""State of the simulated Mac Studio after check, converge (site.yml: deployed, hardened, verified), idempotence and
the side effect (check mode on the converged Mac, pod re-created, Docker Desktop restarted, benchmark, sandbox deleted
and repaired, a second sandbox, the first uninstalled, the last one with the gateway), the verification reports of
every phase, and the whole call history the stand-ins recorded."""
from __future__ import annotations

import json
import pathlib
import plistlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "shared"))
import fleet_reports  # noqa: E402  (molecule/shared/fleet_reports.py)

HOME = "/Users/studio"
STATE = "/var/lib/agentsec-standins"
SOCKET = f"{HOME}/.docker/run/docker.sock"
DOCKER = f"DOCKER_HOST=unix://{SOCKET} /usr/local/bin/docker"  # Docker Desktop's CLI, the real engine behind it


@pytest.fixture(scope="module")
def calls(host):
    out = host.check_output(f"cat {STATE}/calls.jsonl")
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _argv(call):
    return [call["tool"], *call["argv"]]


def _find(calls, *words):
    return [c for c in calls if all(w in _argv(c) for w in words)]


def _state(host, tool):
    return json.loads(host.check_output(f"cat {STATE}/{tool}.json"))


def test_command_line_tools_homebrew_and_formulae(host, calls):
    assert host.run("xcode-select -p").stdout.strip() == "/Library/Developer/CommandLineTools"
    assert len(_find(calls, "softwareupdate", "-i")) == 1
    brew = host.file("/opt/homebrew/bin/brew")
    assert brew.exists and host.file("/opt/homebrew").user == "studio"
    assert len(_find(calls, "installer", "-pkg")) == 1
    versions = host.check_output("/opt/homebrew/bin/brew list --versions")
    assert "ollama 0.20.5" in versions and "node@22 22.22.0" in versions
    # Homebrew ran as the user every time, never as root, and each formula was installed once.
    assert all(c["uid"] != 0 for c in calls if c["tool"] == "brew" and c["argv"][:1] != ["--version"])
    assert len(_find(calls, "brew", "install", "ollama")) == 1
    assert len(_find(calls, "brew", "install", "node@22")) == 1
    # keg-only: not linked into /opt/homebrew/bin, used from its opt/ path
    assert not host.file("/opt/homebrew/bin/node").exists
    assert host.check_output("/opt/homebrew/opt/node@22/bin/node --version") == "v22.22.0"


def test_docker_desktop_installed_unattended_and_running_with_our_settings(host, calls):
    info = plistlib.loads(host.file("/Applications/Docker.app/Contents/Info.plist").content)
    assert info["CFBundleShortVersionString"] == "4.68.0"
    assert len(_find(calls, "hdiutil", "attach")) == 1 and len(_find(calls, "hdiutil", "detach")) == 1
    install = [c for c in calls if c["tool"] in ("install", "docker-desktop-install")]
    assert len(install) == 1 and "--accept-license" in install[0]["argv"] and "--user=studio" in install[0]["argv"]
    settings = json.loads(host.file(f"{HOME}/Library/Group Containers/group.com.docker/settings-store.json").content_string)
    assert {k: settings[k] for k in ("Cpus", "MemoryMiB", "DiskSizeMiB")} == {"Cpus": 6, "MemoryMiB": 12288, "DiskSizeMiB": 65536}
    desktop = _state(host, "docker-desktop")
    assert desktop["running"] and desktop["applied_settings"]["MemoryMiB"] == 12288
    # started by `open -g -a Docker` in the first converge, restarted once by the side effect (the "reboot"); the
    # roles never restarted it (idempotence, check mode, the repair run)
    assert desktop["starts"] == 2 and len(_find(calls, "open", "-a", "Docker")) == 1
    assert len(_find(calls, "docker", "desktop", "restart")) == 1
    assert "Status              running" in host.check_output("/usr/local/bin/docker desktop status")
    # a real engine on the user's own socket; no default socket on this Mac; the engine is not on the PATH
    sock = host.file(SOCKET)
    assert sock.is_socket and sock.user == "studio"
    assert host.check_output(f"{DOCKER} info --format '{{{{.Driver}}}}'") == "overlay2"
    assert not host.file("/var/run/docker.sock").exists
    assert host.run("for b in dockerd containerd runc; do if command -v $b; then exit 1; fi; done").rc == 0
    assert not host.file("/tmp/agentsec-Docker.dmg").exists
    zshenv = host.file(f"{HOME}/.zshenv").content_string
    assert zshenv.count("export DOCKER_HOST=\"unix://$HOME/.docker/run/docker.sock\"") == 1


def test_ollama_launchdaemon_runs_as_the_user_and_serves_the_model(host, calls):
    plist = host.file("/Library/LaunchDaemons/com.agentsec.ollama.plist")
    assert plist.user == "root" and plist.mode == 0o644
    job = plistlib.loads(plist.content)
    assert job["UserName"] == "studio" and job["ProgramArguments"] == ["/opt/homebrew/bin/ollama", "serve"]
    assert job["EnvironmentVariables"]["OLLAMA_HOST"] == "0.0.0.0:11434" and job["RunAtLoad"] and job["KeepAlive"]
    with host.sudo():
        listed = host.check_output("launchctl list")
    assert any(line.split("\t")[2] == "com.agentsec.ollama" and line.split("\t")[0] != "-" for line in listed.splitlines()[1:])
    assert "studio" in host.check_output("ps -o user= -C ollama || ps -eo user,args | grep 'ollama serve' | grep -v grep")
    assert "nemotron-3-nano:30b" in host.check_output("OLLAMA_HOST=127.0.0.1:11434 /opt/homebrew/bin/ollama list")
    # pulled once although converge ran three times (converge, idempotence, side effect)
    assert len(_find(calls, "ollama", "pull")) == 1


def test_openshell_gateway_started_on_docker_desktop_with_the_pin(calls):
    # (the gateway and the CLI are gone after the last uninstall; the call log keeps how they were started)
    starts = _find(calls, "openshell", "gateway", "start")
    assert starts, "the gateway was started"
    for call in starts:  # the image pin and Docker Desktop's socket reached OpenShell every time
        assert call["env"].get("OPENSHELL_CLUSTER_IMAGE") == "ghcr.io/nvidia/openshell/cluster:0.0.26"
        assert call["env"].get("DOCKER_HOST") == f"unix://{HOME}/.docker/run/docker.sock"
    assert not _find(calls, "openshell", "gateway", "start", "--recreate")


@pytest.mark.parametrize("phase", ["site/canary", "recreated-pod", "restarted", "repaired/canary", "second", "pair"])
def test_every_phase_verified_every_layer(phase):
    fleet_reports.check_phase(phase)


def test_two_sandboxes_probed_each_other():
    fleet_reports.check_pair()


def test_onboarding_guarded_from_outside(calls):
    onboards = _find(calls, "nemoclaw", "onboard")
    # converge onboarded; idempotence, check mode and the restart did not; after the sandbox was deleted behind our
    # back site.yml onboarded it again with NEMOCLAW_RECREATE_SANDBOX=1 (the name was still registered); then the
    # second sandbox.
    assert [c["env"]["NEMOCLAW_SANDBOX_NAME"] for c in onboards] == ["my-assistant", "my-assistant", "second"], [c["env"] for c in onboards]
    first, again, _second = onboards
    assert "NEMOCLAW_RECREATE_SANDBOX" not in first["env"] and again["env"]["NEMOCLAW_RECREATE_SANDBOX"] == "1"
    for call in onboards:
        assert call["argv"] == ["onboard", "--non-interactive"]
        assert call["env"]["NEMOCLAW_PROVIDER"] == "ollama"
        assert call["env"]["NEMOCLAW_MODEL"] == "nemotron-3-nano:30b" and call["env"]["NEMOCLAW_POLICY_PRESETS"] == "pypi,npm"
    # ordering: Docker answered and the model was pulled before the gateway; the gateway ran before onboarding
    t = {name: min(c["t"] for c in found) for name, found in {
        "docker_ready": _find(calls, "docker", "info"), "pull": _find(calls, "ollama", "pull"),
        "gateway": _find(calls, "openshell", "gateway", "start"), "onboard": onboards}.items()}
    assert t["docker_ready"] < t["gateway"] < t["onboard"] and t["pull"] < t["onboard"]
    # never NemoClaw's host-wide uninstall, never an openshell `sandbox delete --all`
    assert not _find(calls, "nemoclaw", "uninstall") and not _find(calls, "openshell", "sandbox", "delete", "--all")


def test_inference_route_asserted_after_onboarding(calls):
    probes = [c for c in _find(calls, "openshell", "sandbox", "exec") if "https://inference.local/v1/models" in c["argv"]]
    assert len(probes) >= 3  # after each onboarding and on every run that found the sandbox Ready
    assert _find(calls, "openshell", "inference", "get")


def test_pf_firewall_applied_then_rolled_back_by_uninstall(host, calls):
    loads = _find(calls, "pfctl", "-a", "agentsec.ollama", "-f")
    assert len(loads) == 1, "the anchor is loaded once and not reloaded by later runs"
    enables = _find(calls, "pfctl", "-E")
    assert len(enables) == 1
    # uninstall.yml rolled the hardening back: the anchor was flushed and its files removed
    assert _find(calls, "pfctl", "-a", "agentsec.ollama", "-F", "all")
    assert not host.file("/etc/pf.anchors/agentsec.ollama").exists
    assert "agentsec.nemoclaw" not in host.file("/etc/pf.conf").content_string
    assert 'load anchor "com.apple"' in host.file("/etc/pf.conf").content_string


def test_uninstall_removed_only_the_named_sandboxes_then_the_gateway(host, calls):
    # the first uninstall named my-assistant only (second stayed hardened and verified, fleet_repair.yml); the last
    # named second with the gateway: the cluster container and the CLI this collection installed are gone
    assert len(_find(calls, "nemoclaw", "my-assistant", "destroy", "--yes")) == 1
    assert len(_find(calls, "nemoclaw", "second", "destroy", "--yes")) == 1
    registry = json.loads(host.file(f"{HOME}/.nemoclaw/sandboxes.json").content_string)
    assert not {"my-assistant", "second"} & set(registry["sandboxes"])
    assert host.run(f"{DOCKER} inspect --type container openshell-cluster-nemoclaw").rc != 0
    assert not host.file(f"{HOME}/.local/bin/openshell").exists
    # Docker Desktop, Ollama and NemoClaw's own CLI stay
    assert host.file(f"{HOME}/.local/bin/nemoclaw").exists and _state(host, "docker-desktop")["running"]


def test_no_secret_material_or_root_owned_files_in_the_home(host):
    # everything under the user's home belongs to the user (brew, npm, NemoClaw never ran as root there)
    assert host.check_output(f"find {HOME} -not -user studio | head -5") == ""
