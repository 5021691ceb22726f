"""The stand-in Docker compute driver's pure parts (lib/docker_driver.py) against v0.0.111's driver source and tests."""
from __future__ import annotations

import re

import _host_upstream as U
import pytest

U.lib_path()
import docker_driver as D  # noqa: E402


@pytest.mark.oracle("upstream")
def test_container_names_as_upstream_tests_expect():
    """crates/openshell-driver-docker/src/tests.rs @v0.0.111 L2315-2366."""
    source = U.upstream("crates/openshell-driver-docker/src/tests.rs")
    assert '"openshell-default---sbx-abc"' in source
    assert D.container_name("default", "", "sbx-abc") == "openshell-default---sbx-abc"
    first = D.container_name("default", "a" * 253, "sbx-first-1234567890")
    second = D.container_name("default", "a" * 253, "sbx-second-0987654321")
    assert len(first) <= D.MAX_CONTAINER_NAME_LEN and first.endswith("sbx-first-1234567890") and first != second
    assert D.container_name("default", "My Sandbox", "id1") == "openshell-default--my-sandbox-id1"


@pytest.mark.oracle("upstream")
def test_labels_and_network_names_are_upstreams():
    utils = U.upstream("crates/openshell-core/src/driver_utils.rs")
    for const, value in (("LABEL_MANAGED_BY", D.LABEL_MANAGED_BY), ("LABEL_SANDBOX_ID", D.LABEL_SANDBOX_ID),
                         ("LABEL_SANDBOX_NAME", D.LABEL_SANDBOX_NAME), ("LABEL_SANDBOX_NAMESPACE", D.LABEL_SANDBOX_NAMESPACE),
                         ("LABEL_SANDBOX_WORKSPACE", D.LABEL_SANDBOX_WORKSPACE)):
        assert f'pub const {const}: &str = "{value}";' in utils
    assert 'DEFAULT_DOCKER_NETWORK_NAME: &str = "openshell-docker"' in U.upstream("crates/openshell-core/src/config.rs")
    paths = U.upstream("crates/openshell-core/src/container_paths.rs")
    assert f'SUPERVISOR_CONTAINER_DIR: &str = "{D.SUPERVISOR_DIR_V0}"' in paths


@pytest.mark.oracle("upstream")
def test_v0_create_arguments_follow_the_container_contract():
    lib = U.upstream("crates/openshell-driver-docker/src/lib.rs")
    block = lib[lib.index("cap_add: Some(vec!["):lib.index("security_opt: Some(vec![")]
    assert tuple(re.findall(r'"([A-Z_]+)"\.to_string\(\)', block)) == D.SUPERVISOR_CAPS_V0
    assert 'user: Some("0".to_string())' in lib and '"apparmor=unconfined"' in lib
    sandbox = {"id": "i", "name": "sb", "workspace": "default", "labels": {}, "image": "img"}
    cfg = {"network_name": "openshell-docker", "sandbox_pids_limit": 2048, "host_alias_ip": "172.18.0.1", "namespace": "default"}
    args = D.create_args_v0(sandbox, cfg, {"OPENSHELL_SANDBOX_ID": "i"}, "openshell-default--sb-i", None)
    pairs = list(zip(args, args[1:], strict=False))
    assert ("--user", "0") in pairs and ("--network", "openshell-docker") in pairs and ("--pids-limit", "2048") in pairs
    assert ("--security-opt", "apparmor=unconfined") in pairs and ("--cap-add", "SYS_ADMIN") in pairs
    assert ("--add-host", "host.openshell.internal:172.18.0.1") in pairs
    assert ("--label", f"{D.LABEL_MANAGED_BY}=openshell") in pairs
    assert args[-3:] == ["img", "--workdir", "/sandbox"]  # cmd --workdir <workspace> (lib.rs @v0.0.111 L2630)


@pytest.mark.oracle("upstream")
def test_v1_workload_contract():
    """crates/openshell-driver-docker/README.md @03c8c5f8 Container Contract: non-root exact user, cap_drop ALL,
    no-new-privileges, network_mode=none, /run tmpfs, restart no."""
    sandbox = {"id": "i", "name": "sb", "workspace": "default", "labels": {}, "image": "img"}
    cfg = {"sandbox_pids_limit": 2048, "namespace": "default"}
    args = D.create_args_v1_workload(sandbox, cfg, {}, "w", 998, 998, "vol", None)
    pairs = list(zip(args, args[1:], strict=False))
    assert ("--network", "none") in pairs and ("--cap-drop", "ALL") in pairs and ("--user", "998") in pairs
    assert ("--security-opt", "no-new-privileges") in pairs and ("--restart", "no") in pairs
    assert "--cap-add" not in args
    companion = D.create_args_v1_supervisor(sandbox, {**cfg, "host_network": "container:h"}, {"OPENSHELL_ENDPOINT": "x"},
                                            "w-supervisor", "vol", 999)
    pairs = list(zip(companion, companion[1:], strict=False))
    assert "--cap-drop" in companion and ("--volume", f"vol:{D.CHANNEL_DIR_V1}:ro") in pairs


@pytest.mark.oracle("self")
def test_landlock_enosys_profile_blocks_only_landlock():
    profile = D.landlock_enosys_profile()
    assert profile["defaultAction"] == "SCMP_ACT_ALLOW"
    assert profile["syscalls"] == [{"names": list(D.LANDLOCK_SYSCALLS), "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]


@pytest.mark.oracle("upstream")
def test_resource_limits_follow_the_driver_s_own_tests():
    """The driver's unit tests at v0.0.111 (tests.rs parse_cpu_limit_supports_cores_and_millicores,
    parse_memory_limit_supports_binary_quantities) are the oracle: every assert_eq! / is_err there holds for the
    stand-in's parsers, which give `docker create` its --cpus and --memory (HostConfig NanoCpus / Memory, L2632-2634)."""
    tests = U.upstream("crates/openshell-driver-docker/src/tests.rs")
    pairs = re.findall(r'assert_eq!\(parse_(cpu|memory)_limit\("([^"]*)"\)\.unwrap\(\), Some\(([0-9_]+)\)\);', tests)
    errors = re.findall(r'assert!\(parse_(cpu|memory)_limit\("([^"]*)"\)\.is_err\(\)\);', tests)
    assert len(pairs) >= 4 and len(errors) >= 2, (pairs, errors)
    parse = {"cpu": D.parse_cpu_limit, "memory": D.parse_memory_limit}
    for kind, value, expected in pairs:
        assert parse[kind](value) == int(expected.replace("_", "")), (kind, value)
    for kind, value in errors:
        with pytest.raises(D.DriverError):
            parse[kind](value)
    sandbox = {"id": "i", "name": "sb", "workspace": "default", "labels": {}, "image": "img",
               "resources": {"limits": {"memory": "4Gi", "cpu": "1500m"}}}
    cfg = {"network_name": "openshell-docker", "sandbox_pids_limit": 2048, "host_alias_ip": "172.18.0.1", "namespace": "default"}
    for args in (D.create_args_v0(sandbox, cfg, {}, "n", None), D.create_args_v1_workload(sandbox, cfg, {}, "w", 998, 998, "v", None)):
        pairs_ = list(zip(args, args[1:], strict=False))
        assert ("--memory", "4294967296b") in pairs_ and ("--cpus", "1.5") in pairs_
    assert "--memory" not in D.create_args_v0({**sandbox, "resources": {}}, cfg, {}, "n", None)
    with pytest.raises(D.DriverError, match="requests"):
        D.resource_args({"resources": {"requests": {"cpu": "250m"}}})
