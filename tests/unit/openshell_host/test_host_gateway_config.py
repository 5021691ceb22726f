"""gateway.toml as the stand-in gateway reads it (roles/lab/files/openshell-host/lib/gateway_config.py): schema v1 for
0.0.116, schema v2 for 0.1.x. Upstream decides: v0.0.111's own example config must load as v1 and be refused as v2
(the 0.1.0 cutover, #2814), and the RPM's shipped v1 default quoted by the 0.1.5 wheel's migration test must be refused
by a 0.1.x gateway as legacy_schema_v1."""
from __future__ import annotations

import re

import _host_upstream as U
import pytest

U.lib_path()
import gateway_config as GC  # noqa: E402


@pytest.mark.oracle("upstream")
def test_v0_0_111_example_config_is_schema_v1():
    text = U.upstream("deploy/docker/gateway.toml")
    cfg = GC.load_text(text, "0.0.116")
    assert cfg["schema"] == 1 and cfg["drivers"] == ["docker"] and cfg["bind"] == ("127.0.0.1", 8080)
    with pytest.raises(GC.ConfigError) as err:
        GC.load_text(text, "0.1.5")
    assert err.value.category == "legacy_schema_v1"


@pytest.mark.oracle("upstream")
def test_rpm_v1_default_is_refused_by_0_1():
    source = (U.wheel_dir() / "openshell/rpm_gateway_config_migration_test.py").read_text()
    shipped = re.search(r'SHIPPED_V1_FIXTURE = b"""(.*?)"""', source, re.S).group(1)
    assert GC.load_text(shipped, "0.0.116")["drivers"] == ["podman"]
    with pytest.raises(GC.ConfigError) as err:
        GC.load_text(shipped, "0.1.5")
    assert err.value.category == "legacy_schema_v1"


@pytest.mark.oracle("upstream")
def test_v1_field_list_matches_the_source():
    """Every field of GatewayFileSection and DockerComputeConfig at v0.0.111 is accepted, and nothing else."""
    gateway = U.upstream("crates/openshell-server/src/config_file.rs")
    section = gateway[gateway.index("pub struct GatewayFileSection"):gateway.index("pub struct OtlpConfig")]
    assert set(re.findall(r"pub (\w+):", section)) == GC.V1_GATEWAY_KEYS
    driver = U.upstream("crates/openshell-driver-docker/src/lib.rs")
    block = driver[driver.index("pub struct DockerComputeConfig"):driver.index("impl Default for DockerComputeConfig")]
    assert set(re.findall(r"pub (\w+):", block)) == GC.V1_DOCKER_KEYS


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize(("text", "version", "category"), [
    ("[openshell]\nversion = 2\n", "0.0.116", "unsupported_version"),  # config_file.rs @v0.0.111 L376-393
    ("[openshell.gateway]\ndatabase_url = 'sqlite:x'\n", "0.0.116", "disallowed_field"),  # L395-399
    ("[openshell.gateway]\nbind = '1'\n", "0.0.116", "unknown_field"),  # deny_unknown_fields
    ("[openshell]\nversion = 2\n[openshell.gateway]\ncompute_drivers = ['docker']\n", "0.1.5", "unknown_field"),
    ("[openshell]\nversion = 2\n[openshell.gateway]\ncompute_driver = ['docker']\n", "0.1.5", "invalid_value"),
    ("[openshell]\nversion = 2\n[openshell.gateway.gateway_jwt]\nttl_secs = 0\n", "0.1.5", "invalid_value"),  # #2814
    ("[openshell]\nversion = 2\n[openshell.drivers.docker]\nsandbox_namespace = 'x'\n", "0.1.5", "unknown_field"),
    ("[openshell]\nversion = 2\n[openshell.drivers.docker]\nimage_pull_policy = 'IfNotPresent'\n", "0.1.5", "invalid_value"),
    ("[openshell]\nversion = 2\n[openshell.drivers.docker]\nsandbox_pids_limit = 0\n", "0.1.5", "invalid_value"),
])
def test_refusals(text, version, category):
    with pytest.raises(GC.ConfigError) as err:
        GC.load_text(text, version)
    assert err.value.category == category, str(err.value)


@pytest.mark.oracle("upstream")
def test_v2_accepts_the_0_1_5_formula_seed():
    """release_formula_test.py (0.1.5 wheel) L73-81: the formula's generated config is version 2 with an empty
    [openshell.gateway] table - a 0.1.x gateway must start on it (driver auto-detected)."""
    assert GC.load_text("[openshell]\nversion = 2\n\n[openshell.gateway]\n", "0.1.5")["drivers"] is None
