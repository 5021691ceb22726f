"""Class 5 - the proxy's layers, attacked from inside a sandbox through 10.200.0.1:3128. The verifier has a check for
each (L4.port_scope, L4.authority, L4.ip_literal, L5.clienthello, L6.route_scope); here the attack itself is shown to
work against the matching gap of the lab proxy (sb-p: port_any, host_header, tls_strict_detect, inference_models_any)
and to fail against the faithful v0.0.26 proxy (sb-u, as shipped, and sb-a, hardened - hardening does not touch
the proxy). Oracle: upstream (crates/openshell-sandbox/src/proxy.rs, l7/tls.rs, l7/inference.rs @v0.0.26, which
proxy.py follows - docs/proxy.md).
"""
import pytest
from conftest import CA, GAP, HARDENED, PROXY, PROXY_GAP, WORLD

pytestmark = [pytest.mark.adversarial, pytest.mark.oracle("upstream")]
CONFIGS = {"gap": PROXY_GAP, "default": GAP[0], "hardened": HARDENED[0]}


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_port_scope_connect_to_an_unlisted_port_of_an_allowed_host(lab, config):
    # allowed.lab is allowed on 80 and 443 only; its host also serves the inference backend on 8000
    got = lab.agent(CONFIGS[config], "proxy_connect", proxy=PROXY, target="allowed.lab:8000")
    if config == "gap":
        assert got["result"] == "tunnel", got
    else:
        assert (got["result"], got.get("status")) == ("refused", 403), got


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("authority", ["denied.lab:80", f"{WORLD}:80"])
def test_authority_a_denied_or_ip_literal_uri_with_an_allowed_host_header(lab, config, authority):
    got = lab.agent(CONFIGS[config], "proxy_forward", proxy=PROXY, uri_authority=authority, host_header="allowed.lab:80")
    if config == "gap":
        assert got.get("status") == 200, got
    else:
        assert got.get("status") == 403, got


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_ip_literal_connect(lab, config):
    got = lab.agent(CONFIGS[config], "proxy_connect", proxy=PROXY, target=f"{WORLD}:443", tls=True)
    assert (got["result"], got.get("status")) == ("refused", 403), got  # no gap of the lab opens this one


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("record", ["0300", "0302", "0303"])
def test_clienthello_with_another_record_version_is_still_intercepted(lab, config, record):
    got = lab.agent(CONFIGS[config], "tls_variant", proxy=PROXY, target="allowed.lab:443", record=record)
    assert got["result"] == "handshake", got
    assert got["issuer"] == ("world-ca" if config == "gap" else "sandbox-ca"), got


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize(("method", "path"), [("POST", "/v1/models/agentsec-adv"), ("DELETE", "/v1/models/agentsec-adv")])
def test_inference_route_scope(lab, config, method, path):
    got = lab.agent(CONFIGS[config], "inference", proxy=PROXY, ca=CA, method=method, path=path)
    assert got["result"] == "answered", got
    if config == "gap":
        assert got["routed"], got  # sent to the provider with the provider key injected
    else:
        assert (got["status"], got["routed"]) == (403, False), got
