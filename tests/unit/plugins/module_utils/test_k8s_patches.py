"""Kubernetes backend builders: the hardened Sandbox pod template, idempotent re-application, exact rollback,
ConfigMaps, and validation against the Sandbox CRD shape and the kubernetes client's core models."""
from __future__ import annotations

import base64
import json
import pathlib

import pytest

from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _k8s_patches as K

FIXTURE = pathlib.Path(__file__).parents[2] / "fixtures" / "sandbox-0.0.26.json"
OPTS = {"l1": True, "l2": True, "l5": True, "container": "agent", "configmap": "agentsec-seccomp-my-assistant",
        "ca_secret": "openshell-sandbox-tls", "ca_key": "ca.crt", "landlock_ro": ["/usr", "/etc"], "landlock_rw": ["/sandbox", "/tmp"]}


@pytest.fixture
def sandbox():
    return json.loads(FIXTURE.read_text())


def agent(cr):
    return cr["spec"]["podTemplate"]["spec"]["containers"][0]


def test_hardened_template(sandbox):
    cr = K.harden_sandbox(sandbox, OPTS)
    c = agent(cr)
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["runAsUser"] == 0  # the supervisor stays root; the fix does not depend on the user
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert {"/tmp", "/run", "/var/log", K.CA_PATH, K.MOUNT_DIR} <= set(mounts)
    assert mounts[K.CA_PATH]["subPath"] == "openshell-ca.pem" and mounts[K.MOUNT_DIR]["readOnly"]
    volumes = {v["name"]: v for v in cr["spec"]["podTemplate"]["spec"]["volumes"]}
    assert volumes["agentsec-run"] == {"name": "agentsec-run", "emptyDir": {}}
    assert volumes["agentsec-openshell-ca"]["secret"]["items"] == [{"key": "ca.crt", "path": "openshell-ca.pem"}]
    assert volumes["agentsec-seccomp"]["configMap"]["defaultMode"] == 0o555
    assert c["args"][:3] == ["/opt/agentsec/seccomp-launch", "--filter", "/opt/agentsec/agent.bpf"]
    assert c["args"][-4:] == ["--", "env", "CHAT_UI_URL=http://127.0.0.1:18789", "nemoclaw-start"]
    assert c["command"] == ["/opt/openshell/bin/openshell-sandbox"]  # the supervisor still runs as PID 1
    assert K.ANNOTATION in cr["metadata"]["annotations"]


def test_applying_twice_gives_the_same_object(sandbox):
    once = K.harden_sandbox(sandbox, OPTS)
    assert K.harden_sandbox(once, OPTS) == once


def test_rollback_restores_the_original(sandbox):
    assert K.restore_sandbox(K.harden_sandbox(sandbox, OPTS)) == sandbox
    assert K.restore_sandbox(sandbox) == sandbox


def test_toggles_and_existing_mounts(sandbox):
    only_l1 = K.harden_sandbox(sandbox, {**OPTS, "l2": False, "l5": False})
    assert "--filter" not in agent(only_l1)["args"] and "--landlock-rw" in agent(only_l1)["args"]
    agent(sandbox)["volumeMounts"].append({"name": "ca", "mountPath": K.CA_PATH, "subPath": "ca.crt"})
    cr = K.harden_sandbox(sandbox, {**OPTS, "l1": False, "l2": False})
    assert [m["name"] for m in agent(cr)["volumeMounts"] if m["mountPath"] == K.CA_PATH] == ["ca"]  # CA mounted only when missing
    assert "args" in agent(cr) and agent(cr)["args"] == agent(sandbox)["args"]


def test_default_command_when_the_sandbox_has_no_args(sandbox):
    del agent(sandbox)["args"]
    cr = K.harden_sandbox(sandbox, OPTS)
    assert agent(cr)["args"][-3:] == ["--", "sleep", "infinity"]
    assert "args" not in agent(K.restore_sandbox(cr))


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda cr: cr.update(kind="Pod"), "not a Sandbox"),
    (lambda cr: cr["spec"].update(replicas=3), "replicas must be 0 or 1"),
    (lambda cr: cr["spec"]["podTemplate"]["spec"].update(containres=[]), "unknown field 'containres' for V1PodSpec"),
    (lambda cr: agent(cr)["securityContext"].update(readOnlyRootFS=True), "unknown field 'readOnlyRootFS' for V1SecurityContext"),
    (lambda cr: cr["spec"]["podTemplate"]["spec"].update(containers=[]), "containers"),
])
def test_validation_names_the_bad_field(sandbox, mutate, message):
    mutate(sandbox)
    with pytest.raises(K.PatchError, match=message):
        K.harden_sandbox(sandbox, OPTS)


def test_missing_agent_container(sandbox):
    with pytest.raises(K.PatchError, match="no container named 'openclaw'"):
        K.harden_sandbox(sandbox, {**OPTS, "container": "openclaw"})


def test_configmaps():
    cm = K.seccomp_configmap("agentsec-seccomp-x", "openshell", b"\x06\x00\x00\x00\x00\x00\xff\x7f", "#!/usr/bin/env python3\n")
    assert base64.b64decode(cm["binaryData"]["agent.bpf"]) == b"\x06\x00\x00\x00\x00\x00\xff\x7f"
    assert K.check_fields(cm["metadata"], "V1ObjectMeta", "metadata") is None
    dns = K.coredns_custom_configmap("192.168.65.254")
    corefile = dns["data"]["agentsec-inference-local.server"]
    assert corefile.startswith("inference.local:53 {") and "192.168.65.254 inference.local" in corefile
    assert corefile.count("{") == corefile.count("}")
