"""Module agentsec.nemoclaw.openshell_sandbox on the OpenShell 0.1.5 stand-in host (tests/integration/
_openshell_host_env.py): the declared sandboxes of a line without NemoClaw are created through `openshell sandbox
create --from <image> --detach` as REAL containers on this machine's engine (the stand-in Docker driver's RFC 0012
layout), idempotently, check-mode safe, and deleted again with state absent; a bad declaration is refused before the
gateway is asked anything."""
from __future__ import annotations

import json

import _openshell_host_env as E
import pytest

pytestmark = [pytest.mark.skipif(not E.docker_available(), reason="needs a Docker engine"),
              pytest.mark.oracle("docker", "ansible-core", "upstream")]


@pytest.fixture(scope="module")
def host():
    with E.stand_in("linux", versions=("0.1.5",), world=False, subnet_octet=86) as h:
        E.quick_gateway(h, "0.1.5")
        yield h


def task(sandboxes, state="present", openshell="/usr/bin/openshell"):
    return [{"name": "Sandboxes", "agentsec.nemoclaw.openshell_sandbox": {
        "openshell": openshell, "sandboxes": sandboxes, "state": state}, "register": "r"},
        {"name": "Show", "ansible.builtin.debug": {"var": "r"}}]


def result(out):
    start = out.index('"r": {')
    return json.JSONDecoder().raw_decode(out[start + 5:])[0]


def listed(host):
    return {s["name"]: s["phase"] for s in json.loads(host.openshell("sandbox", "list", "--output", "json").stdout)}


def test_bad_declarations_are_refused_before_the_gateway_is_asked(host, tmp_path):
    for bad, want in (([{"name": "Work"}], "DNS-1123"), ([{"name": "a"}, {"name": "a"}], "declared more than once"),
                      ([{"name": "x" * 64}], "DNS-1123"),
                      ([{"name": "w", "resources": {"memory": "1.5Gi"}}], "sandboxes[w].resources.memory '1.5Gi'"),
                      ([{"name": "w", "resources": {"pids": "10"}}], "unknown limit 'pids'")):
        rc, out = E.playbook(tmp_path, host, task(bad))
        assert rc != 0 and want in out, out[-2000:]
    assert listed(host) == {}


def test_create_idempotent_check_mode_and_absent(host, tmp_path):
    # the lab's filesystem rules (roles/lab/templates/lab-policy.yaml.j2): fewer paths and the workload cannot start
    policy = {"version": 1, "filesystem_policy": {"include_workdir": True,
                                                  "read_only": ["/usr", "/lib", "/proc", "/dev/urandom", "/etc", "/var/log"],
                                                  "read_write": ["/sandbox", "/tmp", "/dev/null"]},
              "process": {"run_as_user": "sandbox", "run_as_group": "sandbox"},
              "network_policies": {"pypi": {"name": "pypi", "endpoints": [
                  {"host": "pypi.org", "port": 443, "protocol": "rest", "access": "read-only"}]}}}
    # work: its image and the team's policy; spare: the gateway's default_image and the line's default policy
    decl = [{"name": "work", "image": E.IMAGE, "policy": policy, "resources": {"memory": "768Mi"}}, {"name": "spare"}]
    rc, out = E.playbook(tmp_path, host, task(decl), check=True)
    assert rc == 0 and result(out)["sandboxes"] == {"work": {"action": "created"}, "spare": {"action": "created"}}, out[-2000:]
    assert listed(host) == {}  # check mode created nothing

    rc, out = E.playbook(tmp_path, host, task(decl))
    assert rc == 0, out[-3000:]
    assert {n: r["phase"] for n, r in result(out)["sandboxes"].items()} == {"work": "Ready", "spare": "Ready"}
    assert listed(host) == {"work": "Ready", "spare": "Ready"}
    # real containers: the workload and its supervisor companion for each (driver README @03c8c5f8)
    ids = E.docker("ps", "-q", "--filter", "label=openshell.ai/sandbox-name=work").stdout.split()
    assert len(ids) == 2, ids
    image = {json.loads(E.docker("inspect", i).stdout)[0]["Config"]["Image"] for i in ids}
    assert image == {E.IMAGE}
    # the declared limit is the workload container's (Docker says so), and the label records it for the hardening
    memory = {json.loads(E.docker("inspect", i).stdout)[0]["HostConfig"]["Memory"] for i in ids
              if not json.loads(E.docker("inspect", i).stdout)[0]["Name"].endswith("-supervisor")}
    assert memory == {768 * 1024 ** 2}, memory
    labels = json.loads(host.openshell("sandbox", "get", "work", "--output", "json").stdout)["labels"]
    assert labels.get("agentsec.nemoclaw/limits") == "memory-768Mi", labels
    active = json.loads(host.openshell("policy", "get", "work", "--full", "--output", "json").stdout)["policy"]
    assert active["network_policies"]["pypi"]["endpoints"][0]["host"] == "pypi.org"  # created with the declared policy
    assert active.get("landlock", {}).get("compatibility", "best_effort") == "best_effort"  # OpenShell's default kept

    rc, out = E.playbook(tmp_path, host, task(decl))
    assert rc == 0 and E.changed_tasks(out) == [], E.changed_tasks(out)
    rc, out = E.playbook(tmp_path, host, task(decl), check=True)
    assert rc == 0 and E.changed_tasks(out) == [], E.changed_tasks(out)

    rc, out = E.playbook(tmp_path, host, task([{"name": "spare"}], state="absent"), check=True)
    assert rc == 0 and result(out)["sandboxes"] == {"spare": {"action": "deleted"}} and "spare" in listed(host)
    rc, out = E.playbook(tmp_path, host, task([{"name": "spare"}], state="absent"))
    assert rc == 0 and "spare" not in listed(host) and "work" in listed(host), out[-2000:]
    rc, out = E.playbook(tmp_path, host, task([{"name": "spare"}], state="absent"))
    assert rc == 0 and E.changed_tasks(out) == [], E.changed_tasks(out)


def test_absent_without_the_cli_and_check_mode_before_the_gateway(host, tmp_path):
    rc, out = E.playbook(tmp_path, host, task([{"name": "work"}], state="absent", openshell="/opt/none/openshell"))
    assert rc == 0 and E.changed_tasks(out) == [], out[-2000:]
    # check mode on a fresh host (no CLI yet): every declared sandbox is planned, with a warning; a real run fails
    rc, out = E.playbook(tmp_path, host, task([{"name": "new"}], openshell="/opt/none/openshell"), check=True)
    assert rc == 0 and result(out)["sandboxes"] == {"new": {"action": "created"}} and "no gateway" in out, out[-2000:]
    rc, out = E.playbook(tmp_path, host, task([{"name": "new"}], openshell="/opt/none/openshell"))
    assert rc != 0 and "/opt/none/openshell" in out, out[-2000:]
