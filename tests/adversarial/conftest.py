"""The adversarial suite (issue 13): the hostile agent, through `openshell sandbox exec`, against a lab of its own.

The session fixture `lab` brings up a private lab (gateway `adv`, /var/lib/agentsec-adv, 172.30.77.0/24, the lab's
images) with playbooks/lab.yml and playbooks/harden.yml, and takes it down at the end (`lab_state=absent`).
scripts/adversarial.sh does the same around pytest and sets AGENTSEC_ADV_LAB=up, so the fixture only checks the lab.
Names can be changed with AGENTSEC_ADV_GATEWAY, AGENTSEC_ADV_DIR, AGENTSEC_ADV_SUBNET (the world is .10 there).

Sandboxes of the lab (every one starts from OpenShell v0.0.26's lab profile):
  sb-a, sb-b  hardened by playbooks/harden.yml (with hardening_resources) - the "hardened" configuration
  sb-u, sb-v  left as v0.0.26 made them - the "gap" configuration
  sb-p        v0.0.26 plus the proxy gaps port_any, host_header, tls_strict_detect, inference_models_any
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
KIT = (pathlib.Path(__file__).parent / "agent_kit.py").read_text()
GATEWAY = os.environ.get("AGENTSEC_ADV_GATEWAY", "adv")
LAB_DIR = os.environ.get("AGENTSEC_ADV_DIR", "/var/lib/agentsec-adv")
SUBNET = os.environ.get("AGENTSEC_ADV_SUBNET", "172.30.77.0/24")
WORLD = SUBNET.rsplit(".", 1)[0] + ".10"
PREFIX = os.environ.get("AGENTSEC_ADV_PREFIX", "agentsec-adv")
IMAGES = os.environ.get("AGENTSEC_ADV_IMAGES", "agentsec")  # the lab's own images (one build cache); a prefix keeps them apart
HARDENED, GAP, PROXY_GAP = ("sb-a", "sb-b"), ("sb-u", "sb-v"), "sb-p"
PROXY_GAPS = ["port_any", "host_header", "tls_strict_detect", "inference_models_any"]
V0026 = ["landlock_unenforced", "netlink_open", "clone_newuser", "clone3_open", "missing_blocks", "no_sock_packet",
         "inference_dns", "writable_root", "direct_egress"]  # roles/lab/defaults/main.yml lab_profiles openshell-0.0.26
RESOURCES = {"memory": "512Mi", "cpu": "500m"}
PROXY = "10.200.0.1:3128"
CA = "/etc/openshell-tls/openshell-ca.pem"
SSH_PORT = 2222  # OPENSHELL_SSH_LISTEN_ADDR 0.0.0.0:2222 of every pod (crates/openshell-server/src/sandbox/mod.rs @v0.0.26 L1222)
CLI = f"{LAB_DIR}/bin/openshell"
CLI_ENV = {**os.environ, "XDG_CONFIG_HOME": f"{LAB_DIR}/config", "DOCKER_HOST": "unix:///var/run/docker.sock"}


def pytest_configure(config):
    config.addinivalue_line("markers", "adversarial: acts as the hostile agent against the suite's own lab (tests/adversarial)")


def lab_vars(state="present"):
    return {
        "nemoclaw_gateway": GATEWAY, "nemoclaw_lab_dir": LAB_DIR, "lab_subnet": SUBNET, "lab_world_address": WORLD,
        "lab_state": state,
        "lab_images": {"cluster": f"{IMAGES}/openshell-cluster-standin:0.0.26", "sandbox": f"{IMAGES}/openshell-sandbox-base:0.0.26",
                       "world": f"{IMAGES}/openshell-world-standin:0.0.26"},
        "lab_sandboxes": [*({"name": n, "profile": "openshell-0.0.26"} for n in (*HARDENED, *GAP)),
                          {"name": PROXY_GAP, "gaps": V0026 + PROXY_GAPS}],
        "verify_allowed_ip": WORLD, "verify_egress_target": f"{WORLD}:443", "verify_dns_resolver": WORLD,
        "nemoclaw_report_dir": f"/tmp/{PREFIX}-reports",
        "hardening_sandboxes": list(HARDENED), "verify_sandboxes": list(HARDENED), "hardening_resources": RESOURCES,
    }


def playbook(name, state, timeout):
    path = pathlib.Path(f"/tmp/{PREFIX}-adv-vars.json")
    path.write_text(json.dumps(lab_vars(state)))
    env = {**os.environ, "AGENTSEC_UPSTREAM_DIR": os.environ.get("AGENTSEC_UPSTREAM_DIR", str(ROOT.parent / "shared" / "upstream"))}
    if not pathlib.Path(env["AGENTSEC_UPSTREAM_DIR"]).is_dir() and pathlib.Path("/work/shared/upstream").is_dir():
        env["AGENTSEC_UPSTREAM_DIR"] = "/work/shared/upstream"
    proc = subprocess.run([shutil.which("ansible-playbook") or "ansible-playbook", "-i", str(ROOT / "inventories/lab/hosts.yml"),
                           str(ROOT / "playbooks" / name), "-e", f"@{path}"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)
    if proc.returncode:
        raise RuntimeError(f"{name} (lab_state={state}) failed rc={proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")


def run(argv, stdin=None, timeout=60, env=None, check=True):
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout, env=env or CLI_ENV, check=False)
    if check and proc.returncode:
        raise RuntimeError(f"{argv[:6]} exited {proc.returncode}: {proc.stderr.strip()[-1500:]}")
    return proc


class Lab:
    """How the hostile agent and the test harness reach the lab."""

    kubectl = ["docker", "exec", "-i", f"openshell-cluster-{GATEWAY}", "kubectl", "--kubeconfig", "/etc/rancher/k3s/k3s.yaml"]

    def exec_prefix(self, sandbox):
        return [CLI, "sandbox", "exec", "-n", sandbox, "--no-tty", "--"]

    def agent(self, sandbox, attack, timeout=60, **params):
        """One attack as the agent of `sandbox`: a fresh `openshell sandbox exec` session, kit on stdin."""
        proc = run([*self.exec_prefix(sandbox), "python3", "-I", "-", attack, json.dumps(params)], stdin=KIT, timeout=timeout)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        if not lines:
            raise RuntimeError(f"{sandbox} {attack}: no result (stdout {proc.stdout[-500:]!r}, stderr {proc.stderr[-800:]!r})")
        return json.loads(lines[-1])

    def shell(self, sandbox, command, timeout=60):
        return run([*self.exec_prefix(sandbox), "bash", "-c", command], timeout=timeout, check=False)

    def container(self, sandbox):
        ids = run(["docker", "ps", "-q", "--filter", f"label=standin.openshell/cluster={GATEWAY}", "--filter",
                   f"label=io.kubernetes.pod.name={sandbox}", "--filter", "label=io.kubernetes.container.name=agent"]).stdout.split()
        if len(ids) != 1:
            raise RuntimeError(f"agent container of {sandbox}: {ids}")
        return ids[0]

    def pod_exec(self, sandbox, argv, user=None, stdin=None, detach=False, timeout=60):
        """The harness (or an operator's `kubectl exec`): a process in the pod, outside the supervisor's sessions."""
        opts = ["-d"] if detach else ["-i"]
        return run(["docker", "exec", *opts, *(["-u", user] if user else []), self.container(sandbox), *argv], stdin=stdin,
                   timeout=timeout)

    def pod_ip(self, sandbox):
        pod = json.loads(run([*self.kubectl, "get", "pod", sandbox, "-n", "openshell", "-o", "json"]).stdout)
        return pod["status"]["podIP"]

    def ready(self, names, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            listing = run([CLI, "sandbox", "list"], check=False).stdout
            if all(any(line.split()[:1] == [n] and "Ready" in line for line in listing.splitlines()) for n in names):
                return True
            time.sleep(1)
        raise RuntimeError(f"sandboxes {names} not Ready within {timeout}s:\n{listing}")

    def verify(self, sandbox, checks=(), naive=False, **extra):
        """The verifier as sandbox_verify's host mode runs it (probes piped into python3 -I -S); naive=True runs the
        same payload in a plain `python3 -c` (what a verifier that trusts the sandbox's interpreter set-up would do)."""
        from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _sandbox_exec, _verify  # noqa: PLC0415
        from ansible_collections.agentsec.nemoclaw.plugins.modules import sandbox_verify  # noqa: PLC0415

        params = verify_params(list(checks), **extra)
        data = _sandbox_exec.payload(sandbox_verify.probe_modules(), _verify, "sandbox_main", params)
        if not naive:
            return _sandbox_exec.run_one(self.exec_prefix("{sandbox}"), sandbox, "/usr/bin/python3", data, CLI_ENV, 120)
        proc = subprocess.run([*self.exec_prefix(sandbox), "/usr/bin/python3", "-c", _sandbox_exec.BOOT], input=data,
                              capture_output=True, env=CLI_ENV, timeout=120, check=False)
        out = proc.stdout.decode(errors="replace")
        return json.loads(out.rsplit(_sandbox_exec.MARKER, 1)[1]) if _sandbox_exec.MARKER in out else {"error": out[-500:]}


def verify_params(checks, **extra):
    """sandbox_verify's option defaults (its argument_spec) with the lab's probe targets."""
    params = {
        "checks": checks, "skip_checks": [], "timeout": 2.0, "egress_timeout": 1.0, "proxy": PROXY,
        "allowed_host": "allowed.lab:443", "denied_host": "denied.lab:443", "tls_host": None,
        "egress_target": f"{WORLD}:443", "dns_resolver": WORLD, "dns_query_name": "allowed.lab", "ca_path": CA,
        "ca_mode": None, "inference_host": "inference.local", "expected_model": "nemotron-3-nano:30b",
        "ro_paths": ["/usr", "/root", "/etc"], "landlock_probe_paths": ["/dev/shm"], "writable_paths": ["/sandbox", "/tmp"],
        "config_scan_paths": ["/sandbox/.openclaw", "/sandbox/.nemoclaw", "/sandbox/.config", "/tmp"],
        "hook_scan_paths": ["/sandbox", "/tmp", "/var/tmp"], "unlisted_port": 8443, "allowed_http": None,
        "denied_http": None, "allowed_ip": WORLD, "peer_addresses": [],
    }
    params.update(extra)
    return params


def statuses(result):
    return {f["id"]: f["status"] for f in result["findings"]}


@pytest.fixture(scope="session")
def lab():
    if shutil.which("docker") is None or subprocess.run(["docker", "info"], capture_output=True, check=False).returncode:
        pytest.skip("no Docker engine answers: the adversarial suite needs the lab")
    brought_up = os.environ.get("AGENTSEC_ADV_LAB") != "up"
    if brought_up:
        playbook("lab.yml", "present", 1500)
        playbook("harden.yml", "present", 900)
    handle = Lab()
    handle.ready([*HARDENED, *GAP, PROXY_GAP])
    yield handle
    if brought_up and os.environ.get("AGENTSEC_ADV_KEEP") != "1":
        playbook("lab.yml", "absent", 600)


@pytest.fixture(scope="session")
def peer_listeners(lab):
    """Every pod's supervisor listens on :2222 in the pod network namespace (the lab's supervisor stand-in does,
    as v0.0.26 does); the tests only read the pod IPs."""
    return {name: lab.pod_ip(name) for name in (*HARDENED, *GAP, PROXY_GAP)}
