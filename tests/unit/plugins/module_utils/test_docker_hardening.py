"""The docker backend's pure builder: hardened spec, idempotent re-application, exact rollback, per-layer toggles."""
from __future__ import annotations

import copy
import json
import pathlib

import pytest

from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _docker_hardening as H

FIXTURE = pathlib.Path(__file__).parents[2] / "fixtures" / "lab-sandbox-0.0.26.inspect.json"
ALL = {"l1": True, "l2": True, "l3": True, "l5": True, "l6": True, "tmpfs": ["/tmp:mode=1777", "/run", "/var/log"],
       "landlock_ro": ["/usr", "/etc"], "landlock_rw": ["/sandbox", "/tmp"], "inference_local_address": "10.200.0.1",
       "ca_host_path": "", "files_dir": "/var/lib/agentsec-hardening/nemoclaw-lab-lab-sb1"}


@pytest.fixture
def inspect():
    return json.loads(FIXTURE.read_text())


def as_inspected(inspect, params):
    """What `docker inspect` shows after docker_container applied `params`."""
    out = copy.deepcopy(inspect)
    out["HostConfig"]["ReadonlyRootfs"] = params["read_only"]
    out["HostConfig"]["Tmpfs"] = {t.split(":", 1)[0]: (t.split(":", 1)[1] if ":" in t else "") for t in params["tmpfs"]}
    out["HostConfig"]["ExtraHosts"] = [f"{h}:{a}" for h, a in params["etc_hosts"].items()]
    out["HostConfig"]["Mounts"] = [{"Type": m["type"], "Source": m["source"], "Target": m["target"], "ReadOnly": m["read_only"]}
                                   for m in params["mounts"]]
    out["Config"]["Env"] = [f"{k}={v}" for k, v in params["env"].items()] + ["PATH=/usr/bin:/bin"]
    out["Config"]["Labels"] = params["labels"]
    return out


def test_present_builds_every_fix_and_keeps_the_rest(inspect):
    spec = H.docker_spec(inspect, ALL)
    p = spec["params"]
    assert spec["changed"] and p["read_only"] is True
    assert {"/tmp:mode=1777", "/run", "/var/log"} <= set(p["tmpfs"])
    targets = {m["target"]: m for m in p["mounts"]}
    assert targets[H.LAUNCHER]["read_only"] and targets[H.FILTER]["source"].endswith("/agent.bpf")
    assert targets[H.HOOK_DIR]["source"].endswith("/agent-netns.d")
    assert targets[H.CA_PATH]["source"] == inspect["Config"]["Labels"]["agentsec.nemoclaw/lab-ca-host-path"]
    assert p["etc_hosts"] == {"inference.local": "10.200.0.1"}
    wrapper = json.loads(p["env"][H.WRAPPER_ENV])
    assert wrapper[0] == H.LAUNCHER and wrapper[-1] == "--"
    assert ["--filter", H.FILTER] == wrapper[1:3] and "--landlock-rw" in wrapper and "/sandbox" in wrapper
    # everything OpenShell/the lab set is carried over
    assert p["capabilities"] == sorted(inspect["HostConfig"]["CapAdd"])
    assert p["volumes"] == inspect["HostConfig"]["Binds"] and p["sysctls"] == inspect["HostConfig"]["Sysctls"]
    assert p["env"]["LAB_GAPS"] == dict(e.split("=", 1) for e in inspect["Config"]["Env"])["LAB_GAPS"]
    assert json.loads(p["labels"][H.ORIGINAL_LABEL])["read_only"] is False
    assert p["labels"][H.APPLIED_LABEL] == "l1,l2,l3,l5,l6"
    assert len(spec["changes"]) == 6


def test_reapplying_to_a_hardened_container_changes_nothing(inspect):
    first = H.docker_spec(inspect, ALL)["params"]
    again = H.docker_spec(as_inspected(inspect, first), ALL)
    assert not again["changed"]
    assert again["params"] == first


def test_rollback_restores_exactly_the_original(inspect):
    hardened = as_inspected(inspect, H.docker_spec(inspect, ALL)["params"])
    back = H.docker_spec(hardened, ALL, state="absent")
    assert back["changed"]
    p = back["params"]
    assert p["read_only"] is False and p["tmpfs"] == [] and p["etc_hosts"] == {} and p["mounts"] == []
    assert p["env"][H.WRAPPER_ENV] == ""
    assert p["labels"][H.ORIGINAL_LABEL] == "" and p["labels"][H.APPLIED_LABEL] == ""
    # rolling back an unhardened container is a no-op apart from the empty bookkeeping labels
    assert H.docker_spec(inspect, ALL, state="absent")["changes"] == []


@pytest.mark.parametrize(("layer", "field"), [("l1", "read_only"), ("l6", "etc_hosts")])
def test_one_toggle_one_fix(inspect, layer, field):
    only = {**ALL, **{k: False for k in ("l1", "l2", "l3", "l5", "l6")}, layer: True}
    p = H.docker_spec(inspect, only)["params"]
    base = H.docker_spec(inspect, {**only, layer: False})["params"]
    assert p[field] != base[field]
    if layer == "l6":
        assert p["mounts"] == [] and p["env"][H.WRAPPER_ENV] == ""


def test_ca_is_only_mounted_when_missing(inspect):
    inspect["HostConfig"]["Mounts"] = [{"Type": "bind", "Source": "/x/ca.crt", "Target": H.CA_PATH, "ReadOnly": True}]
    p = H.docker_spec(inspect, ALL)["params"]
    assert [m["source"] for m in p["mounts"] if m["target"] == H.CA_PATH] == ["/x/ca.crt"]
