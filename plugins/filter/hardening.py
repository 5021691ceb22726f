# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)
"""Filters exposing the hardening role's pure builders."""

from __future__ import annotations

from ansible_collections.agentsec.nemoclaw.plugins.module_utils._docker_hardening import docker_spec


def hardening_docker_spec(inspect, options, state="present"):
    """docker inspect of a sandbox container -> {params, changes, original, changed} for community.docker.docker_container."""
    return docker_spec(inspect, options, state)


class FilterModule:
    def filters(self):
        return {"hardening_docker_spec": hardening_docker_spec}
