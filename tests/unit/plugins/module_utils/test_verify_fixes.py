"""Findings link to the target's fix of their layer (issue 10: the check catalogue links each probe to its fix)."""
from __future__ import annotations

import pathlib

import pytest
import yaml

from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _verify, _verify_isolation, _verify_proxy

ROOT = pathlib.Path(__file__).resolve().parents[4]
TARGETS = sorted((ROOT / "targets").glob("*.yml"))


@pytest.fixture
def extensions(monkeypatch):
    """The catalogue as sandbox_verify sees it (its extensions registered), without leaking into other tests."""
    monkeypatch.setattr(_verify, "EXTENSIONS", [])
    _verify.register(_verify_proxy)
    _verify.register(_verify_isolation)


def _contract(path):
    data = yaml.safe_load(path.read_text())
    while "layers" not in data and data.get("extends"):
        data = {**yaml.safe_load((ROOT / "targets" / f"{data['extends']}.yml").read_text()), **{k: v for k, v in data.items() if k != "extends"}}
    return data


@pytest.mark.oracle("self")
@pytest.mark.parametrize("target", TARGETS, ids=lambda p: p.stem)
def test_every_catalogue_layer_has_a_fix_entry_in_every_target(target, extensions):
    layers = _contract(target)["layers"]
    assert {meta[0] for meta in _verify.catalogue().values()} <= set(layers)
    for layer, fix in layers.items():
        assert {"fixable", "toggle", "tag", "fix"} <= set(fix), (target.stem, layer)
        assert bool(fix["toggle"]) == bool(fix["fixable"]) == bool(fix["tag"]), (target.stem, layer, fix)


@pytest.mark.oracle("self")
def test_findings_carry_their_layers_fix_and_unknown_layers_none():
    findings = [{"id": "L3.direct_egress", "layer": "L3", "status": "fail"}, {"id": "X.y", "layer": "X", "status": "pass"}]
    fixes = {"L3": {"fixable": True, "toggle": "hardening_l3_enabled", "tag": "l3", "fix": "init container", "extra": 1}}
    _verify.mark_fixes(findings, fixes)
    assert findings[0]["fix"] == {"fixable": True, "toggle": "hardening_l3_enabled", "tag": "l3", "fix": "init container"}
    assert "fix" not in findings[1]


@pytest.mark.oracle("self")
def test_dns_leak_probe_asks_for_the_allowed_host_by_default(monkeypatch):
    asked = []
    monkeypatch.setattr(_verify, "probe_dns", lambda ip, port, name, timeout: asked.append(name) or {"answered": False})
    params = {k: None for k in ("allowed_host", "denied_host", "tls_host", "egress_target", "dns_resolver", "dns_query_name",
                                "expected_model", "ca_mode", "allowed_http", "denied_http", "allowed_ip")}
    params.update(proxy="10.200.0.1:3128", dns_resolver="198.51.100.10", allowed_host="pypi.org:443", timeout=1,
                  egress_timeout=1, ca_path="/nonexistent", inference_host="inference.local", ro_paths=[], writable_paths=[],
                  landlock_probe_paths=[], config_scan_paths=[], hook_scan_paths=[], unlisted_port=8443, peer_addresses=[])
    table = _verify.plan(params, {})
    table["L3.dns_leak"][0]()
    assert asked == ["pypi.org"]
