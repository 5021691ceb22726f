"""sandbox_harden check_only: what the hardening role runs on the kubernetes backend before its L4 policy step, so a
wrong cluster is refused before any change. A fake `docker` answers `inspect` and `exec ... kubectl get` and records
every call; a write (apply, replace, patch, delete, rollout) would fail the test. The CRD it serves has the shape of
the Sandbox CRD of OpenShell v0.0.26 (group agents.x-k8s.io, version v1alpha1 served; tests/unit/test_targets.py checks
the pin against the CRD file)."""
from __future__ import annotations

import json
import textwrap

import pytest
from ansible_collections.agentsec.nemoclaw.plugins.modules import sandbox_harden as M

DOCKER = textwrap.dedent("""\
    #!/usr/bin/env python3
    import json, pathlib, sys
    state = pathlib.Path(sys.argv[0]).parent
    a = sys.argv[1:]
    with open(state / "calls.jsonl", "a") as fh:
        fh.write(json.dumps(a) + "\\n")
    running = (state / "running").read_text().strip() if (state / "running").exists() else None
    if a[:1] == ["inspect"]:
        if running is None:
            print("Error: No such object: " + a[-1], file=sys.stderr)
            sys.exit(1)
        print(running)
        sys.exit(0)
    kubectl = a[a.index("kubectl") + 3:] if "kubectl" in a else []
    if kubectl[:1] == ["version"]:
        print(json.dumps({"serverVersion": {"gitVersion": "v1.35.3+k3s1"}}))
    elif kubectl[:2] == ["get", "customresourcedefinitions"]:
        print((state / "crd.json").read_text())
    elif kubectl[:2] == ["get", "sandboxes.agents.x-k8s.io"]:
        print(json.dumps({"items": [{"metadata": {"name": "sb1"}}, {"metadata": {"name": "sb2"}}]}))
    else:
        print("unexpected: " + " ".join(a), file=sys.stderr)
        sys.exit(3)
    """)
CRD = {"spec": {"group": "agents.x-k8s.io", "versions": [{"name": "v1alpha1", "served": True}]}}
OTHER_VERSION = {"spec": {"group": "agents.x-k8s.io", "versions": [{"name": "v1beta1", "served": True}]}}


@pytest.fixture
def docker(tmp_path):
    binary = tmp_path / "docker"
    binary.write_text(DOCKER)
    binary.chmod(0o755)
    (tmp_path / "running").write_text("true")
    (tmp_path / "crd.json").write_text(json.dumps(CRD))
    return tmp_path


def args(docker, **extra):
    return {"cluster_container": "openshell-cluster-nemoclaw", "docker": str(docker / "docker"), "check_only": True,
            **extra}


def calls(docker):
    return [json.loads(line) for line in (docker / "calls.jsonl").read_text().splitlines()]


def writes(docker):
    verbs = {"apply", "replace", "patch", "delete", "create", "rollout"}
    return [c for c in calls(docker) if verbs & set(c)]


@pytest.mark.oracle("self")
def test_a_sound_cluster_passes_and_nothing_is_changed(docker, module_runner):
    ok, res = module_runner(M.main, args(docker, sandboxes=["sb2"]))
    assert ok and not res["changed"], res
    assert res["sandboxes"] == {"sb2": {"action": "checked"}} and writes(docker) == []


@pytest.mark.oracle("self")
@pytest.mark.parametrize(("setup", "fragment"), [
    (lambda d: (d / "running").unlink(), "not found"),
    (lambda d: (d / "running").write_text("false"), "is not running"),
    (lambda d: (d / "crd.json").write_text(json.dumps(OTHER_VERSION)), "not the pinned"),
])
def test_a_wrong_cluster_is_refused_with_what_to_do(docker, module_runner, setup, fragment):
    setup(docker)
    ok, res = module_runner(M.main, args(docker))
    assert not ok and fragment in res["msg"], res
    assert writes(docker) == []


@pytest.mark.oracle("self")
def test_an_unknown_sandbox_is_refused(docker, module_runner):
    ok, res = module_runner(M.main, args(docker, sandboxes=["nope"]))
    assert not ok and "nope not found" in res["msg"] and "sb1, sb2" in res["msg"], res


@pytest.mark.oracle("self")
def test_check_mode_on_a_host_without_the_gateway_reports_pending(docker, module_runner):
    (docker / "running").unlink()
    ok, res = module_runner(M.main, args(docker), check_mode=True)
    assert ok and not res["changed"] and "does not run yet" in res["pending"], res
    ok, res = module_runner(M.main, args(docker))  # a real run still refuses
    assert not ok and "not found" in res["msg"]


@pytest.mark.oracle("self")
def test_check_mode_on_a_host_without_docker_reports_pending(docker, module_runner):
    # molecule fleet's check on the fresh host: Docker is not installed yet (CI of d55062d failed there)
    ok, res = module_runner(M.main, {**args(docker), "docker": str(docker / "no-such-docker")}, check_mode=True)
    assert ok and not res["changed"] and "cannot run yet" in res["pending"], res
    ok, res = module_runner(M.main, {**args(docker), "docker": str(docker / "no-such-docker")})
    assert not ok and "install Docker" in res["msg"]
