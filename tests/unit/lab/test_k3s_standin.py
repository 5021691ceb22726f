"""The k3s stand-in refuses what a Kubernetes API server would refuse, using the upstream referees (the v0.0.26 CRD,
Kubernetes v1.35's schemas from kubernetes-validate), and keeps the API server's object semantics."""
from __future__ import annotations

import copy
import json
import os
import pathlib
import sys

import kubernetes_validate
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
CLUSTER = ROOT / "roles" / "lab" / "files" / "openshell" / "cluster"
UPSTREAM = pathlib.Path(os.environ.get("AGENTSEC_UPSTREAM_DIR") or ROOT.parent / "shared" / "upstream")
SCHEMAS = pathlib.Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / "v1.35.0-local-strict"


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("STANDIN_CRD_DIR", str(UPSTREAM / "openshell-v0.0.26"))
    monkeypatch.setenv("STANDIN_SCHEMA_DIR", str(SCHEMAS))
    monkeypatch.syspath_prepend(str(CLUSTER))
    for name in ("validate", "store", "gateway"):
        sys.modules.pop(name, None)
    import gateway  # noqa: PLC0415
    import store as S  # noqa: PLC0415

    st = S.Store(str(tmp_path / "db.json"))
    st.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "openshell"}})
    st.gateway = gateway
    return st, S


def sandbox(gateway):
    return gateway.sandbox_cr({"id": "a" * 8 + "-0000-4000-8000-000000000000", "name": "sb1", "image": "img:1",
                               "environment": {}, "gaps": [], "handshake": "x"})


@pytest.mark.oracle("upstream")
def test_the_gateways_sandbox_is_accepted_and_its_unknown_field_pruned(store):
    st, _S = store
    stored, warnings = st.create(sandbox(st.gateway), strict=False)
    assert "logLevel" not in stored["spec"] and warnings == ['unknown field "spec.logLevel"']


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize("mutate, reason, text", [
    (lambda o: o["spec"].update(replicas=2), "Invalid", "less than or equal to 1"),
    (lambda o: o["spec"]["podTemplate"]["spec"]["containers"][0].update(readOnlyRootFileSystem=True), "BadRequest",
     'unknown field "spec.podTemplate.spec.containers[0].readOnlyRootFileSystem"'),
    (lambda o: o["spec"]["podTemplate"]["spec"]["containers"][0].update(args="sleep"), "Invalid", "must be of type array"),
    (lambda o: o["spec"].pop("podTemplate"), "Invalid", "spec.podTemplate: Required value"),
])
def test_strict_create_refuses_what_the_crd_refuses(store, mutate, reason, text):
    st, S = store
    obj = sandbox(st.gateway)
    obj["spec"].pop("logLevel")
    mutate(obj)
    with pytest.raises(S.ApiError) as exc:
        st.create(obj)
    assert exc.value.reason == reason and text in exc.value.message


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize("mutate, text", [
    (lambda p: p["spec"]["containers"][0]["volumeMounts"].append({"name": "nope", "mountPath": "/x"}), 'Not found: "nope"'),
    (lambda p: p["spec"]["containers"][0]["volumeMounts"].append({"name": "workspace", "mountPath": "/sandbox"}), "must be unique"),
    (lambda p: p["spec"]["containers"][0].update(securityContext={"privilegd": True}), 'unknown field'),
])
def test_pods_are_checked_against_kubernetes_schemas_and_semantics(store, mutate, text):
    st, S = store
    spec = copy.deepcopy(sandbox(st.gateway)["spec"]["podTemplate"]["spec"])
    spec["volumes"].append({"name": "workspace", "persistentVolumeClaim": {"claimName": "workspace-sb1"}})
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sb1", "namespace": "openshell"}, "spec": spec}
    st.create(copy.deepcopy(pod))  # the unmodified pod is accepted
    st.delete("Pod", "openshell", "sb1")
    st.finalize("Pod", "openshell", "sb1")
    mutate(pod)
    with pytest.raises(S.ApiError) as exc:
        st.create(pod)
    assert text in exc.value.message


@pytest.mark.oracle("upstream")
def test_replace_with_a_stale_resource_version_is_a_conflict_and_status_is_kept(store):
    st, S = store
    obj = sandbox(st.gateway)
    created, _w = st.create(obj, strict=False)
    with pytest.raises(S.ApiError, match="lastTransitionTime: Required value"):  # the status is validated too
        st.update_status("Sandbox", "openshell", "sb1", {"conditions": [{"type": "Ready", "status": "True"}]})
    st.update_status("Sandbox", "openshell", "sb1", {"replicas": 1, "conditions": [
        {"type": "Ready", "status": "True", "reason": "DependenciesReady", "message": "Pod is Ready",
         "lastTransitionTime": "2026-12-01T00:00:00Z"}]})
    current = st.get("Sandbox", "openshell", "sb1")
    stale = json.loads(json.dumps(current))
    current["spec"]["replicas"] = 1
    replaced, _w, changed = st.replace(current)
    assert changed and replaced["status"]["conditions"][0]["status"] == "True"
    assert replaced["metadata"]["generation"] == created["metadata"]["generation"] + 1
    stale["spec"]["replicas"] = 0
    with pytest.raises(S.ApiError) as exc:
        st.replace(stale)
    assert exc.value.code == 409


@pytest.mark.oracle("upstream")
def test_owned_objects_are_garbage_collected_and_pods_terminate_gracefully(store):
    st, _S = store
    owner, _w = st.create(sandbox(st.gateway), strict=False)
    ref = [{"apiVersion": "agents.x-k8s.io/v1alpha1", "kind": "Sandbox", "name": "sb1", "uid": owner["metadata"]["uid"]}]
    st.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "sb1", "namespace": "openshell", "ownerReferences": ref},
               "spec": {"clusterIP": "None"}})
    spec = copy.deepcopy(owner["spec"]["podTemplate"]["spec"])
    spec["volumes"].append({"name": "workspace", "emptyDir": {}})
    st.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sb1", "namespace": "openshell", "ownerReferences": ref},
               "spec": spec})
    st.delete("Sandbox", "openshell", "sb1")
    assert st.find("Service", "openshell", "sb1") is None
    assert st.get("Pod", "openshell", "sb1")["metadata"]["deletionTimestamp"]  # the kubelet finishes it


@pytest.mark.oracle("upstream")
def test_agent_sandbox_name_hash_is_fnv1a32(store, monkeypatch):
    """kubernetes-sigs/agent-sandbox controllers/sandbox_controller.go @v0.1.0 L234-244: FNV-1a 32-bit, %08x."""
    monkeypatch.setattr(sys, "argv", ["k3s"])
    import importlib  # noqa: PLC0415

    spec = importlib.util.spec_from_file_location("k3s_standin_hash", CLUSTER / "k3s_standin.py")
    source = (CLUSTER / "k3s_standin.py").read_text()
    namespace = {}
    exec(compile(source.split("class Cluster")[0].split("LOG = open")[0] + "\n" +  # noqa: S102 - the pure helper only
                 source[source.index("def fnv1a32"):source.index("def now()")], str(spec.origin), "exec"), namespace)
    assert namespace["fnv1a32"]("my-assistant") == f"{_fnv(b'my-assistant'):08x}"
    assert namespace["fnv1a32"]("") == "811c9dc5"


def _fnv(data):
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 16777619) % 2**32
    return value


@pytest.mark.oracle("self")
def test_a_write_that_changes_nothing_leaves_the_store_file_alone(store):
    """The kubelet loop's idle test (k3s_standin.pass_due) reads the file's stamp: a status written again as it is,
    or a replace with nothing new, must not touch the file; a real change must."""
    st, _S = store
    st.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "openshell"}, "data": {"a": "1"}})
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "openshell"},
           "spec": {"containers": [{"name": "agent", "image": "img:1"}]}}
    st.create(pod)
    st.update_status("Pod", "openshell", "p", {"phase": "Running"})
    before = st.stamp()
    st.update_status("Pod", "openshell", "p", {"phase": "Running"})
    st.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "openshell"}, "data": {"a": "1"}})
    assert st.stamp() == before
    st.update_status("Pod", "openshell", "p", {"phase": "Failed"})
    assert st.stamp() != before and st.get("Pod", "openshell", "p")["status"] == {"phase": "Failed"}


@pytest.mark.oracle("self")
def test_the_kubelet_loop_runs_a_pass_only_when_something_changed():
    source = (CLUSTER / "k3s_standin.py").read_text()
    namespace = {"RESYNC": 10}
    exec(compile(source[source.index("def pass_due"):source.index("def main()")], "k3s_standin.py", "exec"), namespace)  # noqa: S102
    due, settled = namespace["pass_due"], namespace["settled"]
    idle = (("ino", 1, 2), (("c1", "running"), ("c2", "running")), True)
    assert not due(idle, idle, 1.0)                                               # nothing changed: no pass
    assert due(idle, idle, 10.0)                                                  # the periodic resync
    assert due(None, idle, 1.0)                                                   # the engine did not answer
    assert due((("ino", 2, 2), *idle[1:]), idle, 1.0)                             # an API object changed
    exited = (idle[0], (("c1", "exited"), ("c2", "running")), False)
    assert due(exited, exited, 1.0)                                               # restarts and back-off are timed
    assert due((idle[0], (("c1", "running"),), True), idle, 1.0)                  # a container went away
    assert "RESYNC = 10" in source
    # a pass that changed something is followed by another (the fleet's recreated pod: the pass that made the pod
    # Ready ran after the controller step, so the Sandbox stayed Provisioning until the next pass - 10 s later)
    changed = (("ino", 3, 2), *idle[1:])
    assert settled(idle, changed) is None and due(changed, settled(idle, changed), 1.0)
    assert settled(idle, idle) == idle and not due(idle, settled(idle, idle), 1.0)
    assert settled(None, None) is None
