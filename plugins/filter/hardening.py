# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)
"""Filters exposing the hardening role's pure builders."""

from __future__ import annotations

import base64

from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _k8s_patches as K
from ansible_collections.agentsec.nemoclaw.plugins.module_utils._docker_hardening import docker_spec

SERVER_FIELDS = ("resourceVersion", "uid", "managedFields", "creationTimestamp", "generation", "selfLink")


def hardening_docker_spec(inspect, options, state="present"):
    """docker inspect of a sandbox container -> {params, changes, original, changed} for community.docker.docker_container."""
    return docker_spec(inspect, options, state)


def hardening_k8s_sandbox(sandbox, options, state="present"):
    """A Sandbox CR from the API -> the object to apply: hardened (present) or restored (absent), server fields dropped."""
    cr = K.harden_sandbox(sandbox, options) if state == "present" else K.restore_sandbox(sandbox, options)
    cr.pop("status", None)
    for field in SERVER_FIELDS:
        cr.get("metadata", {}).pop(field, None)
    return cr


def hardening_k8s_seccomp_configmap(name, namespace, filter_b64, launcher_b64):
    """ConfigMap with the filter and launcher, from slurped (base64) files."""
    return K.seccomp_configmap(name, namespace, base64.b64decode(filter_b64), base64.b64decode(launcher_b64).decode("utf-8"))


def hardening_k8s_coredns(address, host="inference.local"):
    return K.coredns_custom_configmap(address, host)


class FilterModule:
    def filters(self):
        return {
            "hardening_docker_spec": hardening_docker_spec,
            "hardening_k8s_sandbox": hardening_k8s_sandbox,
            "hardening_k8s_seccomp_configmap": hardening_k8s_seccomp_configmap,
            "hardening_k8s_coredns": hardening_k8s_coredns,
        }
