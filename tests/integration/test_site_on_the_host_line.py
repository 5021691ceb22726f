"""playbooks/site.yml, the fleet's one command, on the OpenShell 0.0.116 line (target openshell_host) of a stand-in
Linux host (tests/integration/_openshell_host_env.py): the switches and preflight, then the canary deployed by the
target contract's `deploy` (prerequisites, role openshell_service with the deb and the systemd user unit, NemoClaw
v0.0.13x onboarding through its JSON interfaces, hardening through `openshell policy set`), the canary verified through
`openshell sandbox exec`, the fleet verified and reported. Run twice (nothing changes the second time) and in check
mode (nothing changes, nothing fails).

Until this test the line was deployed only role by role (test_openshell_host_flow, test_nemoclaw_current_on_host) or
by migrate.yml; site.yml itself had never run against it.

The attack is the line's own default: NemoClaw's presets leave L7 rules audit-only (`enforcement` absent means audit,
openshell-current.md 2.4), so the policy the onboarding created forwards a POST the preset makes read-only. After
site.yml, every REST endpoint of the sandbox's policy says `enforce` and the canary's report has no failing high
check. Docker, Node.js and Ollama are the stand-in host's own (the machine's engine through its socket, the stand-in
Node.js, no Ollama): prerequisites_{docker,nodejs,ollama}_enabled are off here, and their installation on Linux is
molecule/fleet_linux's to prove."""
from __future__ import annotations

import json
import os
import subprocess

import _openshell_host_env as E
import pytest

pytestmark = [pytest.mark.skipif(not E.docker_available(), reason="needs a Docker engine"),
              pytest.mark.oracle("docker", "ansible-core", "upstream")]

SITE = E.ROOT / "playbooks/site.yml"
SANDBOX = "assistant"


def site_vars(host, reports):
    role_vars = host.gateway_vars("0.0.116")
    return {**role_vars,
            "nemoclaw_site_report_dir": str(reports),
            "prerequisites_docker_enabled": False, "prerequisites_nodejs_enabled": False,
            "prerequisites_ollama_enabled": False,
            # this build machine boots cgroup v1 (stat -f /sys/fs/cgroup: tmpfs); the role refuses that by default
            "prerequisites_cgroup_v2_required": False,
            "nemoclaw_onboard_version": "0.0.132", "nemoclaw_onboard_sandbox_name": SANDBOX,
            "nemoclaw_onboard_provider": "ollama", "nemoclaw_onboard_model": "nemotron-3-nano:30b",
            "nemoclaw_onboard_policy_presets": ["pypi"], "nemoclaw_onboard_accept_third_party_software": True,
            "nemoclaw_onboard_from_image": E.IMAGE, "nemoclaw_onboard_nemoclaw_bin": "/home/studio/.local/bin/nemoclaw",
            # the stand-in Node.js first; on a Mac the Homebrew prefix carries the openshell CLI
            "nemoclaw_onboard_path": [*(["/opt/homebrew/bin"] if host.flavour == "mac" else []), "/opt/standins/node/bin",
                                      "/usr/bin", "/bin"],
            "hardening_policy_recreate": True, "hardening_policy_images": {SANDBOX: E.IMAGE},
            "hardening_ollama_firewall_enabled": False}


def site_book(tmp_path, host):
    """site.yml itself on Linux; on the Mac-playing host, one play first that reports macOS facts (as molecule's
    fleet_macos converge does), then site.yml."""
    if host.flavour == "linux":
        return SITE
    book = tmp_path / "site-mac.yml"
    book.write_text(json.dumps([{"name": "Present the container as a Mac Studio", "hosts": "nemoclaw_hosts",
                                 "gather_facts": True, "tasks": [{"name": "macOS facts", "macsim_facts": {}}]},
                                {"ansible.builtin.import_playbook": str(SITE)}]))
    return book


def run_site(tmp_path, host, extra, check=False):
    inv = {"all": {"children": {"nemoclaw_hosts": {"hosts": {host.name: {
        "ansible_connection": "community.docker.docker", "ansible_host": host.name, "ansible_user": "studio",
        "ansible_python_interpreter": "/usr/bin/python3", "ansible_pipelining": True}}}}}}
    (tmp_path / "inventory.json").write_text(json.dumps(inv))
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(tmp_path / "t"), ANSIBLE_CALLBACK_RESULT_FORMAT="json",
               ANSIBLE_LIBRARY=str(E.MACSIM))
    cmd = ["ansible-playbook", "-i", str(tmp_path / "inventory.json"), str(site_book(tmp_path, host)), "-e", json.dumps(extra)]
    proc = subprocess.run(cmd + (["--check"] if check else []), env=env, capture_output=True, text=True, cwd=tmp_path,
                          timeout=1200, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def rest_enforcement(host):
    policy = json.loads(host.openshell("policy", "get", SANDBOX, "--full", "--output", "json").stdout)["policy"]
    return {e.get("enforcement", "audit") for r in policy["network_policies"].values() for e in r["endpoints"]
            if e.get("protocol") == "rest"}


def findings(report_dir):
    (_name, entry), = json.loads((report_dir / "verify.json").read_text())["hosts"].items()
    return {f["id"]: f["status"] for f in entry["findings"]}


@pytest.mark.parametrize("flavour", ["linux", "mac"])
def test_site_on_the_openshell_host_line(tmp_path, flavour):
    with E.stand_in(flavour, versions=("0.0.116",), world=False) as host:
        host.user("sh", "-c", "mkdir -p ~/.local/bin && ln -s /opt/standins/nemoclaw-repo-0.0.13x/bin/nemoclaw ~/.local/bin/nemoclaw")
        if flavour == "mac":  # the tools macOS ships, where macOS has them (as molecule/fleet_macos/prepare.yml does)
            host.root("sh", "-c", "for t in xcode-select softwareupdate; do ln -sf /opt/standins/bin/$t /usr/local/sbin/$t; done; "
                      # Docker Desktop links its CLI there (the engine is the machine's, behind Docker Desktop's socket path)
                      "ln -sf /usr/bin/docker /usr/local/bin/docker")
        reports = tmp_path / "reports"
        extra = site_vars(host, reports)

        # the attack first: the line as NemoClaw leaves it (site.yml without the hardening) - the verifier must fail it
        rc, out = run_site(tmp_path, host, {**extra, "nemoclaw_site_harden": False, "nemoclaw_site_verify_fail_on": "none"})
        assert rc == 0, out[-6000:]
        before = findings(reports / "canary")
        assert before.get("L1.landlock_hard_requirement") == "fail", before
        assert "audit" in rest_enforcement(host)

        rc, out = run_site(tmp_path, host, extra)
        assert rc == 0, out[-6000:]
        recap = E.recap(out)
        assert recap.get("failed") == 0 and recap.get("unreachable") == 0, recap
        # deployed: the gateway answers, NemoClaw's registry has the sandbox, the sandbox is Ready
        assert "Version: 0.0.116" in host.openshell("status").stdout
        listing = json.loads(host.user("/home/studio/.local/bin/nemoclaw", "list", "--json").stdout)
        assert [s["name"] for s in listing["sandboxes"]] == [SANDBOX]
        assert json.loads(host.openshell("sandbox", "get", SANDBOX, "--output", "json").stdout)["phase"] == "Ready"
        # hardened through the line's interface: every REST endpoint enforced (NemoClaw's presets leave them audit-only)
        assert rest_enforcement(host) == {"enforce"}
        # verified: the canary and the fleet reports name the host's sandbox, and no high check fails after hardening
        for stage in ("canary", "fleet"):
            report = json.loads((reports / stage / "verify.json").read_text())
            (name, entry), = report["hosts"].items()
            assert name.endswith(f"/{SANDBOX}") and entry["state"] == "OK", (stage, name, entry.get("state"))
            high = [f["id"] for f in entry["findings"] if f["status"] in ("fail", "error") and f.get("severity") == "high"
                    and not f.get("residual")]
            assert high == [], (stage, high)
            by_id = {f["id"]: f["status"] for f in entry["findings"]}
            assert by_id.get("L1.landlock_hard_requirement") == "pass", by_id

        rc, out = run_site(tmp_path, host, extra)
        assert rc == 0 and E.changed_tasks(out) == [], E.changed_tasks(out) or out[-4000:]
        rc, out = run_site(tmp_path, host, extra, check=True)
        assert rc == 0 and E.changed_tasks(out) == [], E.changed_tasks(out) or out[-4000:]
        assert rest_enforcement(host) == {"enforce"}


def test_site_refuses_a_bad_pair_before_any_change(tmp_path):
    """NemoClaw v0.0.21 does not run on the 0.0.116 line: site.yml's preflight says so before the canary is touched
    (before the fix, the preflight ran the v0.0.21 check on this line and refused every current pair instead)."""
    with E.stand_in("linux", versions=("0.0.116",), world=False) as host:
        extra = {**site_vars(host, tmp_path / "reports"), "nemoclaw_onboard_version": "0.0.21"}
        rc, out = run_site(tmp_path, host, extra)
        assert rc != 0 and "must be v0.0.130-v0.0.132" in out, out[-3000:]
        assert E.changed_tasks(out) == [] and "Preflight" in out and "Deploy the canary" not in out, out[-3000:]
        assert host.root("test", "-e", "/usr/bin/openshell", check=False).returncode != 0  # nothing installed


def test_site_on_the_openshell_0_1_line(tmp_path):
    """OpenShell 0.1.x has no NemoClaw release (target openshell_0_1, deploy.onboard none): site.yml installs and
    runs the gateway, and the sandboxes are the user's own (`openshell sandbox create`). Attack first: a sandbox
    created with the line's default policy (Landlock best effort) fails L1.landlock_hard_requirement; site.yml's
    hardening re-creates it with hard_requirement through the line's interface, and the report passes it."""
    with E.stand_in("linux", versions=("0.1.5",), world=False) as host:
        reports = tmp_path / "reports"
        extra = {**host.gateway_vars("0.1.5"), "nemoclaw_site_report_dir": str(reports),
                 "prerequisites_docker_enabled": False, "prerequisites_nodejs_enabled": False,
                 "prerequisites_ollama_enabled": False, "prerequisites_cgroup_v2_required": False,
                 "hardening_policy_recreate": True, "hardening_policy_images": {"work": E.IMAGE},
                 "hardening_ollama_firewall_enabled": False}
        rc, out = run_site(tmp_path, host, {**extra, "nemoclaw_site_harden": False, "nemoclaw_site_verify": False})
        assert rc == 0, out[-6000:]
        assert "Version: 0.1.5" in host.openshell("status").stdout
        host.openshell("sandbox", "create", "--name", "work")

        rc, out = run_site(tmp_path, host, {**extra, "nemoclaw_site_harden": False, "nemoclaw_site_verify_fail_on": "none"})
        assert rc == 0, out[-6000:]
        assert findings(reports / "canary").get("L1.landlock_hard_requirement") == "fail"

        rc, out = run_site(tmp_path, host, extra)
        assert rc == 0, out[-6000:]
        for stage in ("canary", "fleet"):
            by_id = findings(reports / stage)
            assert by_id.get("L1.landlock_hard_requirement") == "pass", (stage, by_id)
        rc, out = run_site(tmp_path, host, extra)
        assert rc == 0 and E.changed_tasks(out) == [], E.changed_tasks(out) or out[-4000:]
        rc, out = run_site(tmp_path, host, extra, check=True)
        assert rc == 0 and E.changed_tasks(out) == [], E.changed_tasks(out) or out[-4000:]
