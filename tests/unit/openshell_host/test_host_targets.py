"""Targets openshell_host and openshell_0_1: the keys the roles read (the same as openshell_k3s's), resolved on both
platforms; paths and defaults against upstream; residual and skipped checks are real check ids of the verifier."""
from __future__ import annotations

import re

import _host_upstream as U
import pytest
from ansible_collections.agentsec.nemoclaw.plugins.lookup import target as T
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _verify

ROLE_KEYS = ("openshell.version", "openshell.bin", "openshell.gateway", "openshell.environment", "docker.socket",
             "sandbox.discover", "sandbox.exec", "sandbox.python", "sandbox.proxy", "sandbox.ca_path", "hardening.backend",
             "hardening.state_dir", "layers", "residual", "service.endpoint", "service.config_path", "service.env_path",
             "service.config_schema", "service.version_pattern", "verify.skip_checks")


def contract(name, platform):
    return T.resolve(T.load(name), platform, "/Users/studio" if platform == "Darwin" else "/home/studio", None)


@pytest.mark.oracle("ansible-core")
@pytest.mark.parametrize("name", ["openshell_host", "openshell_0_1"])
@pytest.mark.parametrize("platform", ["Darwin", "Linux"])
def test_keys_resolve(name, platform):
    c = contract(name, platform)
    for key in ROLE_KEYS:
        T.dig(c, key)
    assert c["sandbox"]["exec"][0] == c["openshell"]["bin"]
    assert not re.search(r"\{(home|gateway|lab_dir|openshell)\}", str(c))  # every placeholder filled
    assert set(c["layers"]) == {"L1", "L2", "L3", "L4", "L5", "L6"}
    shared = set(T.load("openshell_k3s")) - {"cluster", "line", "name", "description"}
    assert shared <= set(c), shared - set(c)


@pytest.mark.oracle("upstream")
def test_0_0_116_paths_are_upstreams():
    paths = U.upstream("crates/openshell-core/src/container_paths.rs")
    assert f'SUPERVISOR_CA_CERT_PATH: &str = "{contract("openshell_host", "Linux")["sandbox"]["ca_path"]}"' in paths
    netns = U.upstream("crates/openshell-supervisor-process/src/netns/mod.rs")
    assert 'SUBNET_PREFIX: &str = "10.200.0"' in netns and contract("openshell_host", "Linux")["sandbox"]["proxy"] == "10.200.0.1:3128"
    install = U.upstream("install.sh")
    assert 'LOCAL_GATEWAY_PORT="17670"' in install and 'HOMEBREW_TAP="nvidia/openshell"' in install
    assert contract("openshell_host", "Darwin")["service"]["tap"] == "nvidia/openshell"


@pytest.mark.oracle("upstream")
def test_0_1_ca_path_is_the_reference_sheets():
    assert "/run/openshell-supervisor-ca/material/ca.crt" in U.reference()
    assert contract("openshell_0_1", "Linux")["sandbox"]["ca_path"] == "/run/openshell-supervisor-ca/material/ca.crt"


@pytest.mark.oracle("self")
@pytest.mark.parametrize("name", ["openshell_host", "openshell_0_1"])
def test_residual_and_skipped_ids_exist(name):
    saved = list(_verify.EXTENSIONS)  # before the import: importing a line's extension registers it
    from ansible_collections.agentsec.nemoclaw.plugins.modules import sandbox_verify  # noqa: PLC0415

    try:
        c = contract(name, "Linux")
        # the checks sandbox_verify registers for this target (the core probes, proxy, isolation and the line's own)
        _verify.EXTENSIONS[:] = sandbox_verify.probe_modules((c.get("verify") or {}).get("extensions") or [])[1:]
        known = _verify.catalogue()
        assert set(c["residual"]) <= set(known), set(c["residual"]) - set(known)
        _verify.select_checks([], c["verify"]["skip_checks"])  # raises on an unknown id
    finally:
        _verify.EXTENSIONS[:] = saved
