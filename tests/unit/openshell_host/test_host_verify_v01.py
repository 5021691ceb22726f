"""_verify_v01's decisions (pure) and its probes on this unconfined test process, where every filter, broker and
network check must FAIL - the probes can fail, so a pass in a sandbox means something."""
from __future__ import annotations

import pytest
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _verify, _verify_v01 as V


@pytest.mark.oracle("kernel")
def test_probes_fail_outside_a_0_1_sandbox():
    vantage = _verify.vantage()
    results = {cid: decide(probe(), vantage)[0] for cid, (probe, decide) in V.plan({}).items()
               if cid in ("L2.v01_broker_families", "L2.v01_child_filter", "L3.v01_no_route")}
    assert results == {"L2.v01_broker_families": "fail", "L2.v01_child_filter": "fail", "L3.v01_no_route": "fail"}


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize(("obs", "status"), [
    ({"AF_PACKET": "EAFNOSUPPORT", "AF_BLUETOOTH": "EAFNOSUPPORT", "AF_ALG": "EAFNOSUPPORT", "AF_VSOCK": "EAFNOSUPPORT",
      "AF_XDP": "EAFNOSUPPORT", "AF_CAN": "EAFNOSUPPORT", "AF_INET/SOCK_RAW": "EPROTONOSUPPORT"}, "pass"),
    ({"AF_PACKET": "EINVAL", "AF_BLUETOOTH": "EAFNOSUPPORT", "AF_ALG": "EAFNOSUPPORT", "AF_VSOCK": "EAFNOSUPPORT",
      "AF_XDP": "EAFNOSUPPORT", "AF_CAN": "EAFNOSUPPORT", "AF_INET/SOCK_RAW": "EPROTONOSUPPORT"}, "fail"),
    ({"AF_PACKET": "EPERM", "AF_BLUETOOTH": "EAFNOSUPPORT", "AF_ALG": "EAFNOSUPPORT", "AF_VSOCK": "EAFNOSUPPORT",
      "AF_XDP": "EAFNOSUPPORT", "AF_CAN": "EAFNOSUPPORT", "AF_INET/SOCK_RAW": "ok"}, "fail"),
])
def test_broker_decision(obs, status):
    """network_broker.rs @0448e4f7 create_socket: other families EAFNOSUPPORT, non-stream/dgram INET EPROTONOSUPPORT."""
    assert V.decide_broker_families(obs, {})[0] == status


@pytest.mark.oracle("self")
def test_route_and_identity_decisions():
    assert V.decide_routes({"routes": [], "interfaces": ["lo"]}, {})[0] == "pass"
    assert V.decide_routes({"routes": ["eth0 00000000"], "interfaces": ["eth0", "lo"]}, {})[0] == "fail"
    ok = {"CapEff": "0000000000000000", "CapPrm": "0000000000000000", "CapBnd": "0000000000000000", "NoNewPrivs": "1", "uid": 998}
    assert V.decide_identity(ok, {})[0] == "pass"
    assert V.decide_identity({**ok, "CapBnd": "000001ffffffffff"}, {})[0] == "fail"
    assert V.decide_identity({**ok, "uid": 0}, {})[0] == "fail"
    assert V.decide_no_inference({"result": "resolved", "addresses": ["10.200.0.1"]}, {})[0] == "fail"
    assert V.decide_landlock_abi({}, {"landlock_abi": 2})[0] == "fail"


@pytest.mark.oracle("self")
def test_ca_env_decision():
    env = {k: f"{V.CA_DIR}/{v}" for k, v in V.CA_VARS.items()}
    good = {"env": env, "files": {"ca.crt": True, "ca-bundle.crt": True}, "dir": V.CA_DIR}
    assert V.decide_ca_env(good, {})[0] == "pass"
    assert V.decide_ca_env({**good, "env": {**env, "SSL_CERT_FILE": "/etc/openshell-tls/ca-bundle.pem"}}, {})[0] == "fail"


@pytest.mark.oracle("kernel")
def test_inline_executor_runs_the_probes_without_threads():
    future = V.InlineExecutor().submit(lambda a: a + 1, 1)
    assert future.result(timeout=0) == 2
    assert V.threads_work() is True  # this process may start threads
