"""The hardening's pure Sandbox builders against OpenShell v0.0.26's shapes.

Referees: the unmodified v0.0.26 Sandbox CRD (../shared/upstream, validated with jsonschema - not with the k3s
stand-in's own validator, so the two implementations check each other) and Kubernetes v1.35's PodTemplateSpec schema
(kubernetes-validate, strict). The input Sandbox is what the gateway stand-in builds from
crates/openshell-server/src/sandbox/mod.rs @v0.0.26 (cited line by line there), in two variants: as `openshell
sandbox create` writes it (no args: the entry is OPENSHELL_SANDBOX_COMMAND) and with an explicit entry.
"""
from __future__ import annotations

import copy
import json
import os
import pathlib
import subprocess
import sys

import jsonschema
import kubernetes_validate
import pytest
import yaml

from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _k8s_patches as K

ROOT = pathlib.Path(__file__).resolve().parents[4]
UPSTREAM = pathlib.Path(os.environ.get("AGENTSEC_UPSTREAM_DIR") or ROOT.parent / "shared" / "upstream")
CRD = UPSTREAM / "openshell-v0.0.26" / "sandboxes.agents.x-k8s.io.crd.yaml"
sys.path.insert(0, str(ROOT / "roles" / "lab" / "files" / "openshell" / "cluster"))
import gateway  # noqa: E402  - the stand-in gateway's sandbox_cr(), cited to mod.rs @v0.0.26

OPTS = {"l1": True, "l2": True, "l3": True, "l5": True, "l6": True, "container": "agent",
        "landlock_ro": ["/usr", "/lib", "/etc", "/proc"], "landlock_rw": ["/sandbox", "/tmp", "/var/tmp"],
        "inference_address": "10.200.0.1"}


def record(**kw):
    return {"id": "3f1c0b5e-0000-4000-8000-000000000001", "name": "my-assistant", "image": "ghcr.io/nvidia/openshell-community/sandboxes/base:latest",
            "environment": {}, "gaps": ["writable_root", "inference_dns"], "handshake": "h" * 32, **kw}


@pytest.fixture(params=["no-args", "with-args"])
def sandbox(request):
    cr = gateway.sandbox_cr(record())
    if request.param == "with-args":
        cr["spec"]["podTemplate"]["spec"]["containers"][0]["args"] = ["env", "CHAT_UI_URL=http://127.0.0.1:18789", "nemoclaw-start"]
    cr["spec"].pop("logLevel")  # written by the gateway, pruned by the API server (not in the v1alpha1 schema)
    return cr


# ---- referees ---------------------------------------------------------------------------------------------------
def openapi_to_jsonschema(node):
    """CRD structural schema -> JSON Schema (draft 2020-12): nullable, int-or-string, and no unknown fields."""
    if isinstance(node, list):
        return [openapi_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: openapi_to_jsonschema(v) for k, v in node.items() if not k.startswith("x-kubernetes") and k != "nullable"}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.pop("anyOf", None)
        out["type"] = ["integer", "string"]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else [*out["type"], "null"]
    if out.get("type") == "object" and "properties" in out and "additionalProperties" not in out \
            and not node.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


@pytest.fixture(scope="module")
def crd_validator():
    if not CRD.is_file():
        pytest.fail(f"upstream CRD missing at {CRD}: set AGENTSEC_UPSTREAM_DIR to the shared/upstream directory")
    doc = yaml.safe_load(CRD.read_text())
    schema = openapi_to_jsonschema(doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = {"type": "object"}
    return jsonschema.Draft202012Validator(schema)


def assert_valid(cr, crd_validator):
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in crd_validator.iter_errors(cr)]
    assert not errors, errors[:5]
    pod_template = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "x"}, "template": cr["spec"]["podTemplate"]}
    kubernetes_validate.validate(pod_template, "1.35.0", strict=True)


# ---- tests --------------------------------------------------------------------------------------------------------
@pytest.mark.oracle("upstream")
def test_input_is_a_valid_v0026_sandbox(sandbox, crd_validator):
    assert_valid(sandbox, crd_validator)


@pytest.mark.oracle("upstream")
def test_hardened_and_restored_sandboxes_pass_the_crd_and_pod_schemas(sandbox, crd_validator):
    hardened = K.harden(sandbox, OPTS)
    assert_valid(hardened, crd_validator)
    assert_valid(K.restore(hardened), crd_validator)


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize("mutate, where", [
    (lambda c: c["spec"]["podTemplate"]["spec"]["containers"][0].update(readOnlyRootFileSystem=True), "readOnlyRootFileSystem"),
    (lambda c: c["spec"].update(replicas=2), "replicas"),
    (lambda c: c["spec"]["podTemplate"]["spec"]["containers"][0]["volumeMounts"].append({"name": "x"}), "mountPath"),
])
def test_the_referees_can_fail(sandbox, crd_validator, mutate, where):
    broken = copy.deepcopy(sandbox)
    mutate(broken)
    with pytest.raises((AssertionError, kubernetes_validate.ValidationError)) as exc:
        assert_valid(broken, crd_validator)
    assert where in str(exc.value)


@pytest.mark.oracle("self")
def test_applying_twice_gives_the_same_object_and_restore_is_exact(sandbox):
    once = K.harden(sandbox, OPTS)
    assert K.harden(once, OPTS) == once
    assert K.restore(once) == K._clean(sandbox)
    assert K.restore(K._clean(sandbox)) == K._clean(sandbox)  # never hardened: unchanged


@pytest.mark.oracle("upstream")
def test_the_entry_is_wrapped_by_the_launcher(sandbox):
    """The supervisor runs its positional args as the entry, else OPENSHELL_SANDBOX_COMMAND (openshell-sandbox main.rs
    @v0.0.26 L24-29, L197-205; the gateway sets `sleep infinity`, mod.rs L1222-1232)."""
    agent = K.agent_container(K.harden(sandbox, OPTS)["spec"]["podTemplate"]["spec"])
    assert agent["command"] == ["/opt/openshell/bin/openshell-sandbox"]  # the supervisor stays PID 1, as root
    assert agent["args"][:4] == [K.LAUNCHER, "--quiet", "--filter", K.FILTER]
    entry = agent["args"][agent["args"].index("--") + 1:]
    before = K.agent_container(sandbox["spec"]["podTemplate"]["spec"])
    assert entry == (before.get("args") or ["sleep", "infinity"])


@pytest.mark.oracle("self")
@pytest.mark.parametrize("layer", ["l1", "l2", "l3", "l5", "l6"])
def test_one_toggle_one_fix(sandbox, layer):
    only = {**OPTS, **{k: k == layer for k in ("l1", "l2", "l3", "l5", "l6")}}
    if layer == "l5":
        only["l1"] = True  # L5 is the TLS directory of the read-only root
    changes = set(K.spec_changes(K._clean(sandbox), K.harden(sandbox, only)))
    expected = {"l1": {"containers", "volumes"}, "l2": {"containers", "volumes"}, "l3": {"initContainers"},
                "l5": {"containers", "volumes"}, "l6": {"hostAliases"}}[layer]
    assert {c.rsplit(".", 1)[1] for c in changes if c.startswith("spec.podTemplate.spec.")} == expected


@pytest.mark.oracle("upstream")
def test_read_only_root_keeps_what_the_supervisor_writes(sandbox):
    """/run (ip netns, paper 6.4 (2)) and /etc/openshell-tls (write_ca_files, lib.rs @v0.0.26 L312-349: a failed
    write disables TLS termination) stay writable; the client TLS secret stays mounted below the latter."""
    agent = K.agent_container(K.harden(sandbox, OPTS)["spec"]["podTemplate"]["spec"])
    mounts = {m["mountPath"]: m for m in agent["volumeMounts"]}
    assert agent["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"/tmp", "/run", "/var/log", "/var/tmp", K.TLS_DIR, "/etc/openshell-tls/client"} <= set(mounts)
    assert mounts[K.PROFILE_HOOK]["subPath"] == "profile.sh" and mounts[K.BASHRC_HOOK]["subPath"] == "bash.bashrc"


@pytest.mark.oracle("self")
def test_no_fix_twice_for_a_path_already_mounted(sandbox):
    pod = sandbox["spec"]["podTemplate"]["spec"]
    pod["volumes"].append({"name": "own-tmp", "emptyDir": {"medium": "Memory"}})
    K.agent_container(pod)["volumeMounts"].append({"name": "own-tmp", "mountPath": "/tmp"})
    mounts = [m["mountPath"] for m in K.agent_container(K.harden(sandbox, OPTS)["spec"]["podTemplate"]["spec"])["volumeMounts"]]
    assert mounts.count("/tmp") == 1


@pytest.mark.oracle("self")
def test_refuses_what_it_does_not_understand(sandbox):
    with pytest.raises(K.PatchError, match="not a Sandbox"):
        K.harden({"apiVersion": "v1", "kind": "Pod"}, OPTS)
    with pytest.raises(K.PatchError, match="no container named 'nope'"):
        K.harden(sandbox, {**OPTS, "container": "nope"})


def run_hooked_session(tmp_path, launcher_ok, command):
    """bash -lc COMMAND with env cleared, the way the v0.0.26 supervisor starts a session (ssh.rs @v0.0.26
    L798-833, L1007-1013), with our profile hook in place of /etc/profile.d and a launcher that works or not."""
    flags = K.launcher_flags(OPTS)
    hook = K.profile_hook(flags).replace(K.LAUNCHER, str(tmp_path / "seccomp-launch"))
    (tmp_path / "profile").write_text(hook)
    if launcher_ok:  # a stand-in launcher that records it ran, then runs the command
        (tmp_path / "seccomp-launch").write_text('#!/bin/sh\nwhile [ "$1" != "--" ]; do shift; done; shift\n'
                                                 'echo LAUNCHED; exec "$@"\n')
        (tmp_path / "seccomp-launch").chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "BASH_ENV": ""}
    return subprocess.run(["bash", "--noprofile", "-c", f"source {tmp_path}/profile; {command}"], capture_output=True,
                          text=True, env=env, timeout=30, check=False)


@pytest.mark.oracle("kernel")
def test_profile_hook_runs_the_session_under_the_launcher(tmp_path):
    proc = run_hooked_session(tmp_path, True, "echo COMMAND-RAN")
    assert proc.stdout.splitlines()[:1] == ["LAUNCHED"]


@pytest.mark.oracle("kernel")
def test_profile_hook_fails_closed_when_the_launcher_cannot_run(tmp_path):
    """Attack: remove (or shadow) the launcher - the session must end, not run unconfined."""
    proc = run_hooked_session(tmp_path, False, "echo COMMAND-RAN")
    assert "COMMAND-RAN" not in proc.stdout
    assert proc.returncode in (126, 127)


@pytest.mark.oracle("self")
def test_configmap_runs_the_launcher_isolated():
    cm = K.hardening_configmap("openshell", b"\x06\x00\x00\x00\x00\x00\xff\x7f", "#!/usr/bin/env python3\nprint(1)\n",
                               K.launcher_flags(OPTS))
    assert cm["data"]["seccomp-launch"].splitlines()[0] == "#!/usr/bin/python3 -IS"
    assert json.dumps(cm).count("/usr/bin/env") == 0
    assert cm["binaryData"]["agent.bpf"] == "BgAAAAAA/38="
