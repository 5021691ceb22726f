"""gateway.toml as the stand-in gateway reads it: schema v1 for 0.0.116, schema v2 for 0.1.x. Pure, unit-tested.

Schema v1 (what 0.0.116 reads): crates/openshell-server/src/config_file.rs @111 - SCHEMA_VERSION = 1 (L38),
deny_unknown_fields on every table (L44-189), versions above 1 rejected at load (L376-393), `database_url` rejected
with "set it via env/CLI" (L395-399), `compute_drivers` a list (L104); the Docker driver table is
DockerComputeConfig (crates/openshell-driver-docker/src/lib.rs @111 L86-134, deny_unknown_fields). Schema v2 was
introduced by #2814 (2026-09-04), after 0.0.116 (2026-08-28, PyPI), so 0.0.116 reads v1 (inference from the dates;
the 0.1.5 formula still migrates the exact v1 defaults, release_formula_test.py L83-101).

Schema v2 (0.1.x): ref 2.6 (docs/how-it-works/gateways/configuration.mdx@018726aa) and the 0.1.5 wheel
(gateway_config_fixture_test.py L26-72, rpm_gateway_config_migration_test.py L103-116): `[openshell] version = 2`
mandatory, v1 rejected as category legacy_schema_v1, `compute_driver` a scalar, `compute_drivers` and
`sandbox_namespace` rejected (renamed `sandbox_label`), pull policies always|if_not_present|never, an explicit 0 for
gateway_jwt.ttl_secs / sandbox_pids_limit / health_check_interval_secs invalid, driver options only in
[openshell.drivers.<name>].
"""
from __future__ import annotations

import ipaddress
import tomllib

DRIVERS = ("docker", "podman", "kubernetes", "vm")  # sandbox-compute-drivers.mdx@0186da1e (mxc: Windows only)
# config_file.rs @111 L90-189 GatewayFileSection
V1_GATEWAY_KEYS = frozenset({
    "bind_address", "health_bind_address", "metrics_bind_address", "log_level", "compute_drivers", "credential_drivers",
    "default_credential_driver", "credential_storage", "sandbox_namespace", "ssh_session_ttl_secs",
    "grpc_rate_limit_requests", "grpc_rate_limit_window_seconds", "policy_validation_failure_mode", "server_sans",
    "enable_loopback_service_http", "default_image", "supervisor_image", "client_tls_secret_name",
    "service_account_name", "host_gateway_ip", "enable_user_namespaces", "sa_token_ttl_secs", "guest_tls_ca",
    "guest_tls_cert", "guest_tls_key", "disable_tls", "tls", "oidc", "auth", "interceptors", "provider_profile_sources",
    "mtls_auth", "gateway_jwt", "otlp", "database_url"})
# lib.rs @111 L86-134 DockerComputeConfig
V1_DOCKER_KEYS = frozenset({
    "socket_path", "default_image", "image_pull_policy", "sandbox_namespace", "grpc_endpoint", "supervisor_bin",
    "supervisor_image", "guest_tls_ca", "guest_tls_cert", "guest_tls_key", "network_name", "host_gateway_ip",
    "ssh_socket_path", "sandbox_pids_limit", "enable_bind_mounts"})
# schema v2: the v1 listener/auth keys with the scalar driver; driver defaults no longer live at gateway level (ref 2.6)
V2_GATEWAY_KEYS = frozenset({
    "bind_address", "health_bind_address", "metrics_bind_address", "log_level", "compute_driver", "credential_drivers",
    "default_credential_driver", "credential_storage", "ssh_session_ttl_secs", "grpc_rate_limit_requests",
    "grpc_rate_limit_window_seconds", "policy_validation_failure_mode", "server_sans", "enable_loopback_service_http",
    "disable_tls", "tls", "oidc", "auth", "interceptors", "provider_profile_sources", "mtls_auth", "gateway_jwt",
    "otlp", "database_url"})
V2_DOCKER_KEYS = (V1_DOCKER_KEYS - {"sandbox_namespace"}) | {"sandbox_label", "sandbox_runtime_image"}
V1_RENAMED = {"sandbox_namespace": "sandbox_label", "sandbox_ssh_socket_path": "ssh_socket_path",
              "compute_drivers": "compute_driver"}
PULL_POLICIES_V2 = ("always", "if_not_present", "never")
FAILURE_MODES = ("fail_closed", "retain_last_valid")  # ref 2.6 "Gateway policy switch"


class ConfigError(ValueError):
    def __init__(self, category: str, message: str):
        super().__init__(message)
        self.category = category


def parse(text: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("syntax", f"gateway config is not valid TOML: {exc}") from exc


def _unknown(table: dict, allowed: frozenset, where: str, schema: int) -> None:
    for key in table:
        if key not in allowed:
            hint = f"; schema v2 renamed it to {V1_RENAMED[key]}" if schema == 2 and key in V1_RENAMED else ""
            raise ConfigError("unknown_field", f"unknown field `{key}` in [{where}]{hint}")


def _bind(value, where):
    try:
        host, _sep, port = str(value).rpartition(":")
        ipaddress.ip_address(host.strip("[]"))
        port = int(port)
        assert 0 < port < 65536
    except (ValueError, AssertionError) as exc:
        raise ConfigError("invalid_value", f"{where} {value!r} is not a socket address (IP:PORT)") from exc
    return host.strip("[]"), port


def validate(doc: dict, version: str) -> dict:
    """Check one parsed gateway.toml against the schema of `version`; return the settings the stand-in uses:
    {schema, bind: (host, port) | None, drivers: [..] | None, docker: {...}, failure_mode, disable_tls}."""
    from osh_standin import is_v01  # noqa: PLC0415 - sibling module

    schema = 2 if is_v01(version) else 1
    for key in doc:
        if key != "openshell":
            raise ConfigError("unknown_field", f"unknown top-level table `{key}` (the file is rooted at [openshell])")
    root = doc.get("openshell") or {}
    _unknown(root, frozenset({"version", "gateway", "supervisor", "drivers", "credential_drivers"}), "openshell", schema)
    file_version = root.get("version")
    if schema == 1:
        if file_version is not None and (not isinstance(file_version, int) or file_version > 1):
            raise ConfigError("unsupported_version",
                              f"unsupported gateway config version {file_version}; this build only supports version 1")
    elif file_version != 2:
        raise ConfigError("legacy_schema_v1" if file_version in (None, 1) else "unsupported_version",
                          f"gateway config schema version {file_version!r} is not supported; set [openshell] version = 2 "
                          "(category=legacy_schema_v1: migrate the file, see docs/upgrade/0-1-0)")
    gw = root.get("gateway") or {}
    _unknown(gw, V1_GATEWAY_KEYS if schema == 1 else V2_GATEWAY_KEYS, "openshell.gateway", schema)
    if "database_url" in gw:  # config_file.rs @111 L395-399
        raise ConfigError("disallowed_field", "database_url cannot be set in the config file; set OPENSHELL_DB_URL or --db-url")
    out = {"schema": schema, "bind": _bind(gw["bind_address"], "bind_address") if "bind_address" in gw else None,
           "failure_mode": gw.get("policy_validation_failure_mode", "fail_closed"), "disable_tls": bool(gw.get("disable_tls")),
           "drivers": None, "docker": {}}
    if out["failure_mode"] not in FAILURE_MODES:
        raise ConfigError("invalid_value", f"policy_validation_failure_mode {out['failure_mode']!r}: one of {', '.join(FAILURE_MODES)}")
    if schema == 1 and "compute_drivers" in gw:
        drivers = gw["compute_drivers"]
        if not isinstance(drivers, list) or not all(isinstance(d, str) for d in drivers):
            raise ConfigError("invalid_value", "compute_drivers must be a list of driver names")
        out["drivers"] = drivers
    if schema == 2 and "compute_driver" in gw:
        if not isinstance(gw["compute_driver"], str):
            raise ConfigError("invalid_value", "compute_driver is a single driver name (schema v2), not a list")
        out["drivers"] = [gw["compute_driver"]]
    for name in out["drivers"] or []:
        if name not in DRIVERS:
            raise ConfigError("invalid_value", f"unknown compute driver {name!r}; built-in: {', '.join(DRIVERS)}")
    jwt = gw.get("gateway_jwt") or {}
    if schema == 2 and jwt.get("ttl_secs") == 0:
        raise ConfigError("invalid_value", "gateway_jwt.ttl_secs = 0 is invalid; omit the key for non-expiring local tokens")
    drivers = root.get("drivers") or {}
    docker = dict(drivers.get("docker") or {})
    if schema == 1:  # shared defaults are inherited into the driver table (config_file.rs @111 L1-20 driver_table)
        for key in ("default_image", "supervisor_image", "host_gateway_ip", "sandbox_namespace"):
            if key in gw and key not in docker:
                docker[key] = gw[key]
    _unknown(docker, V1_DOCKER_KEYS if schema == 1 else V2_DOCKER_KEYS, "openshell.drivers.docker", schema)
    if schema == 2:
        for key in ("sandbox_pids_limit", "health_check_interval_secs"):
            if docker.get(key) == 0:
                raise ConfigError("invalid_value", f"{key} = 0 is invalid in schema v2; omit the key for the default")
        if "image_pull_policy" in docker and docker["image_pull_policy"] not in PULL_POLICIES_V2:
            raise ConfigError("invalid_value", f"image_pull_policy {docker['image_pull_policy']!r}: one of "
                              f"{', '.join(PULL_POLICIES_V2)}")
    out["docker"] = docker
    return out


def load_text(text: str, version: str) -> dict:
    return validate(parse(text), version)
