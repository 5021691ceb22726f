"""Role openshell_service's gateway.toml and gateway.env, rendered by ansible-core's templating: schema v1 for 0.0.116
(the stand-in gateway's v1 loader, whose fields are checked against config_file.rs @v0.0.111), schema v2 for 0.1.x
judged by upstream's own test - the 0.1.5 wheel's test_e2e_gateway_fixtures_use_schema_v2_scalar_driver runs on our
file, as the reviewer of #2814 asked for Ansible-written configs."""
from __future__ import annotations

import importlib.util
import sys
import types

import _host_upstream as U
import pytest
from ansible.template import Templar, trust_as_template

U.lib_path()
import gateway_config as GC  # noqa: E402

ROLE = U.ROOT / "roles/openshell_service"


def render(name, **variables):
    base = {"openshell_service_version": "0.0.116", "openshell_service_compute_driver": "docker",
            "openshell_service_docker_host": "unix:///var/run/docker.sock", "openshell_service_gateway_settings": {},
            "openshell_service_docker_settings": {}, "openshell_service_telemetry_enabled": False,
            "openshell_service_gateway_env": {}, "__openshell_service_schema": 1}
    base.update(variables)
    templar = Templar(loader=None, variables=base)
    return templar.template(trust_as_template((ROLE / "templates" / name).read_text()))


@pytest.mark.oracle("ansible-core", "upstream")
def test_v1_for_0_0_116():
    text = render("gateway.toml.j2", openshell_service_docker_settings={"default_image": "img", "network_name": "n"})
    cfg = GC.load_text(text, "0.0.116")
    assert cfg["schema"] == 1 and cfg["drivers"] == ["docker"]
    assert cfg["docker"] == {"socket_path": "/var/run/docker.sock", "default_image": "img", "network_name": "n"}


@pytest.mark.oracle("ansible-core", "upstream")
def test_v2_for_0_1_passes_upstreams_own_schema_test(tmp_path, monkeypatch):
    text = render("gateway.toml.j2", openshell_service_version="0.1.5", __openshell_service_schema=2,
                  openshell_service_gateway_settings={"policy_validation_failure_mode": "fail_closed"})
    assert GC.load_text(text, "0.1.5")["drivers"] == ["docker"]
    source = U.wheel_dir() / "openshell" / "gateway_config_fixture_test.py"
    sys.modules.setdefault("yaml", types.ModuleType("yaml"))  # imported by the test module, not used by this test
    spec = importlib.util.spec_from_file_location("upstream_gateway_fixture_test", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (tmp_path / "docker.toml").write_text(text)
    monkeypatch.setattr(module, "FIXTURE_DIR", tmp_path)
    module.test_e2e_gateway_fixtures_use_schema_v2_scalar_driver("docker.toml", "docker")


@pytest.mark.oracle("ansible-core")
def test_env_file():
    text = render("gateway.env.j2", openshell_service_gateway_env={"EXTRA_SETTING": "1"})
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines == ["DOCKER_HOST=unix:///var/run/docker.sock", "OPENSHELL_TELEMETRY_ENABLED=false", "EXTRA_SETTING=1"]
