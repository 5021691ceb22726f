"""`make lab LINE=openshell_host|openshell_0_1`: the before/after table of one of the current OpenShell lines on a
local stand-in host, through the same playbooks a fleet runs.

The host is the integration tests' stand-in of a Linux fleet host (tests/integration/_openshell_host_env.py: a Debian
container with the systemd --user stand-in, the line's deb from the stand-in release of roles/lab/files/openshell-host,
this machine's real Docker engine behind the gateway's Docker driver) and an outside world (allowed.lab, denied.lab,
DNS) on the driver's network. Then, as on a real host: the gateway role of the line's target (openshell_service)
installs and starts the gateway, one sandbox `lab` is created with the lab's policy through `openshell sandbox create`,
and playbooks/harden.yml runs verify -> harden -> verify against the host over the community.docker connection. The
tables of both verify runs are printed side by side; reports go to reports/lab-<line>/{before,after}/.

Everything is named agentsec-h5-lab<n>-... and removed at the end (and before the start, if an earlier run was
interrupted); AGENTSEC_LAB_KEEP=1 leaves it up and prints how to remove it. Nothing here talks to anything but those
containers and loopback.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests/integration"))
import _openshell_host_env as E  # noqa: E402  (the stand-in host of the integration tests)

# line -> (OpenShell version of the stand-in release, world subnet octet (E.SUBNET_PREFIX.<n>.0/24, unused by the tests), ident)
LINES = {"openshell_host": ("0.0.116", 88, "lab116"), "openshell_0_1": ("0.1.5", 89, "lab015")}
SANDBOX = "lab"
ROLE = [{"name": "The line's gateway role", "ansible.builtin.include_role": {"name": "agentsec.nemoclaw.openshell_service"}}]


def step(name, func, *args):
    start = time.monotonic()
    print(f"==> {name}", flush=True)
    out = func(*args)
    print(f"==> {name}: ok in {time.monotonic() - start:.0f}s", flush=True)
    return out


def contract(line):
    from ansible_collections.agentsec.nemoclaw.plugins.lookup import target as T  # noqa: PLC0415

    return T.resolve(T.load(line), "Linux", "/home/studio", None)


def bring_up(line, work):
    version, octet, ident = LINES[line]
    E.cleanup(ident)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    E.ensure_image()
    E.build_release(work / "release", (version,))
    world = E.World(ident, work, octet)
    world.start()
    host = E.Host(ident, "linux", work / "release", world)
    host.start()
    return host


def install_gateway(host, line, work):
    rc, out = E.playbook(work, host, ROLE, host.gateway_vars(LINES[line][0]))
    if rc != 0:
        raise SystemExit(f"the gateway role failed (rc {rc}):\n{out[-4000:]}")


def create_sandbox(host, line):
    # the 0.1.x stand-in has no connect broker (its workload has no network to police) and runs the default image; the
    # policy still carries the lab's L7 rule, audited by default, which the gateway's policy shows and the hardening
    # enforces (L4.l7_policy_enforced)
    v01 = line == "openshell_0_1"
    E.put_file(host, "/tmp/lab-policy.yaml", json.dumps(host.world.policy()))
    host.openshell("sandbox", "create", "--name", SANDBOX, "--policy", "/tmp/lab-policy.yaml",
                   *([] if v01 else ["--from", E.IMAGE]))


def inventory(host, line, work):
    world = host.world
    hostvars = {"ansible_connection": "community.docker.docker", "ansible_host": host.name, "ansible_user": "studio",
                "ansible_python_interpreter": "/usr/bin/python3", "ansible_pipelining": True}
    group = {"nemoclaw_target": line, "verify_egress_target": f"{world.address}:443", "verify_dns_resolver": world.address,
             "hardening_policy_recreate": True, "hardening_policy_images": {SANDBOX: E.IMAGE},
             "hardening_ollama_firewall_enabled": False}  # no Ollama on this stand-in host (as in the k3s lab)
    if line == "openshell_host":  # the proxy's policy: allowed.lab (read-only REST on 443), nothing else
        group.update({"verify_allowed_host": "allowed.lab:443", "verify_denied_host": "denied.lab:443",
                      "verify_allowed_ip": world.address, "verify_l7_readonly_host": "allowed.lab:443"})
    inv = {"all": {"children": {"nemoclaw_hosts": {"hosts": {host.name: hostvars}, "vars": group}}}}
    path = work / "inventory.json"
    path.write_text(json.dumps(inv))
    return path


def harden(inv, work, reports):
    env = dict(os.environ, ANSIBLE_LOCAL_TEMP=str(work / "t"))
    proc = subprocess.run(["ansible-playbook", "-i", str(inv), str(ROOT / "playbooks/harden.yml"),
                           "-e", f"nemoclaw_harden_report_dir={reports}"], env=env, cwd=ROOT, check=False, timeout=1800)
    return proc.returncode


def main(line):
    if line not in LINES:
        print(f"ERROR: LINE={line!r} is not a line this lab has; choose one of: openshell_k3s (the default lab, "
              f"`make lab`), {', '.join(LINES)}", file=sys.stderr)
        return 2
    if not E.docker_available():
        print("ERROR: no Docker engine answers (scripts/lib.sh ensure_docker)", file=sys.stderr)
        return 1
    work, reports = ROOT / ".build" / f"lab-{line}", ROOT / "reports" / f"lab-{line}"
    shutil.rmtree(reports, ignore_errors=True)
    version, _octet, ident = LINES[line]
    print(f"lab for target {line}: OpenShell {version} stand-in ({contract(line)['description']})")
    try:
        host = step("host and world up", bring_up, line, work)
        step(f"gateway installed by role openshell_service (OpenShell {version})", install_gateway, host, line, work)
        step(f"sandbox {SANDBOX!r} created through `openshell sandbox create`", create_sandbox, host, line)
        inv = inventory(host, line, work)
        rc = step("verify -> harden -> verify (playbooks/harden.yml)", harden, inv, work, reports)
        table = subprocess.run([sys.executable, str(ROOT / "scripts/side_by_side.py"), str(reports / "before/verify.json"),
                                str(reports / "after/verify.json"), f"before ({line} defaults)"], check=False)
        print(f"reports: {reports}/before and {reports}/after (verify.json, verify.junit.xml, verify.sarif, verify.txt)")
        return rc or table.returncode
    finally:
        if os.environ.get("AGENTSEC_LAB_KEEP") == "1":
            print(f"left up (AGENTSEC_LAB_KEEP=1): inventory {work / 'inventory.json'}; remove with "
                  f"`python scripts/lab_line.py --down {line}`")
        else:
            E.cleanup(ident)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--down" and sys.argv[2] in LINES:
        E.cleanup(LINES[sys.argv[2]][2])
        sys.exit(0)
    if len(sys.argv) != 2:
        print("usage: lab_line.py LINE | --down LINE", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
