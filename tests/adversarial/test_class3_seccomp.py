"""Class 3 - the seccomp allow-list, as the agent of a session: families outside the allow-list, netlink beyond
NETLINK_ROUTE, user namespaces through clone/clone3/unshare, the keyring. Socket probes use an invalid type (15 >=
SOCK_MAX), so the kernel answers EINVAL before creating anything and only a filter answers EPERM; AF_VSOCK is never
created, connected, bound or sent on.

pod: `docker exec -u <agent uid>` into the agent container (what `kubectl exec` gives an operator: no agent filter) -
the probes' negative control; gap: sb-u, v0.0.26's deny-list filter (upstream_filter.py); hardened: sb-a.
"""
import pytest
from conftest import GAP, HARDENED, KIT, statuses

pytestmark = [pytest.mark.adversarial, pytest.mark.oracle("kernel", "upstream")]
# attack -> (kit call, params, {config: expected}); "created" = the attack worked
ATTACKS = {
    "af_vsock": ("socket", {"family": 40}, {"pod": "EINVAL", "gap": "EPERM", "hardened": "EPERM"}),
    "high_bit_vsock": ("socket", {"family": (1 << 32) | 40}, {"pod": "EINVAL", "gap": "EPERM", "hardened": "EPERM"}),
    "af_alg": ("socket", {"family": 38}, {"pod": "EINVAL", "gap": "EINVAL", "hardened": "EPERM"}),
    "af_key": ("socket", {"family": 15}, {"pod": "EINVAL", "gap": "EINVAL", "hardened": "EPERM"}),
    "netlink_sock_diag": ("socket", {"family": 16, "proto": 4}, {"pod": "EINVAL", "gap": "EINVAL", "hardened": "EPERM"}),
    "netlink_route": ("socket", {"family": 16, "proto": 0}, {"pod": "EINVAL", "gap": "EINVAL", "hardened": "EINVAL"}),
    "af_inet_stream": ("socket", {"family": 2, "type": 1}, {"pod": "created", "gap": "created", "hardened": "created"}),
    "clone_newuser": ("clone_newuser", {}, {"pod": "created", "gap": "created", "hardened": "EPERM"}),
    "clone3_newuser": ("clone3_newuser", {}, {"pod": "created", "gap": "created", "hardened": "ENOSYS"}),
    "unshare_newuser": ("unshare_newuser", {}, {"pod": "created", "gap": "EPERM", "hardened": "EPERM"}),
    "keyring": ("keyring", {}, {"pod": "usable", "gap": "usable", "hardened": "EPERM"}),
}


def attack(lab, config, name):
    call, params, dummy = ATTACKS[name]
    if config == "pod":
        import json  # noqa: PLC0415

        proc = lab.pod_exec(GAP[0], ["python3", "-I", "-", call, json.dumps(params)], user="sandbox", stdin=KIT)
        return json.loads(proc.stdout.splitlines()[-1])["result"]
    return lab.agent(GAP[0] if config == "gap" else HARDENED[0], call, **params)["result"]


@pytest.mark.parametrize("config", ["pod", "gap", "hardened"])
@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_seccomp_allow_list(lab, config, name):
    assert attack(lab, config, name) == ATTACKS[name][2][config]


@pytest.mark.parametrize("config", ["gap", "hardened"])
def test_the_verifier_reports_what_the_attacks_found(lab, config):
    """The same questions through the verifier (_verify_escape): a gap the attacks above get through must fail."""
    report = lab.verify(GAP[0] if config == "gap" else HARDENED[0], ["L2.socket_families", "L2.user_namespace", "L3.route_change"])
    got, found = statuses(report), {f["id"]: f["observed"] for f in report["findings"]}
    if config == "gap":
        assert got["L2.socket_families"] == "fail" and "ALG(38)" in found["L2.socket_families"]["reached_kernel"], found
        assert got["L2.user_namespace"] == "fail" and found["L2.user_namespace"]["clone"] == "created", found
    else:
        assert got["L2.socket_families"] == "pass" and got["L2.user_namespace"] == "pass", found
        assert found["L2.user_namespace"] == {"clone": "EPERM", "clone3": "ENOSYS", "unshare": "EPERM"}
    # neither configuration gives the agent CAP_NET_ADMIN (the FAIL side: tests/integration/test_verify_escape_live.py)
    assert got["L3.route_change"] == "pass", found["L3.route_change"]
