"""The hardening filters: the object applied to the API has no server-owned fields, and absent restores it."""
from __future__ import annotations

import base64
import json
import pathlib

from ansible_collections.agentsec.nemoclaw.plugins.filter import hardening as F

SANDBOX = json.loads((pathlib.Path(__file__).parents[2] / "fixtures" / "sandbox-0.0.26.json").read_text())
OPTS = {"l1": True, "l2": True, "l5": True, "container": "agent", "configmap": "agentsec-seccomp", "ca_secret": "openshell-client-tls",
        "ca_key": "ca.crt", "landlock_ro": ["/usr"], "landlock_rw": ["/sandbox"]}


def test_applied_object_drops_server_fields_and_round_trips():
    live = json.loads(json.dumps(SANDBOX))
    live["metadata"].update(resourceVersion="42", uid="u-1", managedFields=[{}], generation=3)
    live["status"] = {"replicas": 1}
    hardened = F.hardening_k8s_sandbox(live, OPTS)
    assert not {"resourceVersion", "uid", "managedFields", "generation"} & set(hardened["metadata"]) and "status" not in hardened
    restored = F.hardening_k8s_sandbox(hardened, OPTS, "absent")
    assert restored == SANDBOX


def test_configmap_from_slurped_files():
    cm = F.hardening_k8s_seccomp_configmap("agentsec-seccomp", "openshell", base64.b64encode(b"\x06" * 8).decode(),
                                           base64.b64encode(b"#!/usr/bin/env python3\n").decode())
    assert cm["data"]["seccomp-launch"].startswith("#!") and base64.b64decode(cm["binaryData"]["agent.bpf"]) == b"\x06" * 8
    assert F.hardening_k8s_coredns("192.168.65.254")["metadata"] == {"name": "coredns-custom", "namespace": "kube-system"}
