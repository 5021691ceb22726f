"""The verifier's escape probes (_verify_escape, L2.outlived_processes) in real child processes: every answer here is
the kernel's. Each variant runs in a private PID and network namespace (`unshare -p -n -f --mount-proc`), so the
probes see only the processes and abstract sockets this test made, and no rtnetlink request reaches the host's
namespace. Inside, the verifier runs as nobody, unconfined or under the launcher, next to a "victim" left by another
session (nobody too: an abstract unix listener that counts connections and signals).

The variants are the attack's before and after: "unconfined" (no filter, no Landlock), "gap" (the launcher without
its scopes and with the paper's deny-list filter: AF_PACKET/AF_NETLINK only, profile paper_translated), "hardened"
(the launcher's defaults), and "netadmin" (root of a private user and network namespace: CAP_NET_ADMIN in it).
The sandbox's entry point is a nobody `sleep` started first, as the supervisor's first agent child.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import textwrap

import pytest

from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _seccomp_policy as P
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _verify as V
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import seccomp_launcher as L

COLLECTIONS = str(pathlib.Path(V.__file__).parents[5])
ABI = L.landlock_abi() if sys.platform == "linux" else 0
pytestmark = [pytest.mark.live_kernel, pytest.mark.oracle("kernel"),
              pytest.mark.skipif(sys.platform != "linux" or os.geteuid() != 0 or not shutil.which("unshare")
                                 or not shutil.which("setpriv"), reason="needs Linux, root, unshare and setpriv")]
CHECKS = ["L2.socket_families", "L2.user_namespace", "L3.route_change", "L1.landlock_scope", "L2.outlived_processes"]
NOBODY = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]
PYTHON = "/usr/bin/python3"  # the system's: nobody cannot read the test venv under /root

# runs inside the private namespaces: starts the victim, then the verifier, prints both as one JSON line
DRIVER = textwrap.dedent(r"""
    import json, os, subprocess, sys, time
    nobody, verifier, state = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
    victim_code = '''
    import json, os, socket, sys, time
    state = sys.argv[1]
    seen = {"connections": 0, "pid": os.getpid()}
    def save():
        with open(state + ".tmp", "w") as fh:
            json.dump(seen, fh)
        os.replace(state + ".tmp", state)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind("\\0agentsec-escape-victim")
    srv.listen(8)
    srv.settimeout(0.2)
    save()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            srv.accept()[0].close()
            seen["connections"] += 1
        except OSError:
            pass
        save()
    '''
    entry = subprocess.Popen([*nobody, "sleep", "90"])  # the entry point: the supervisor's first agent child
    time.sleep(0.1)
    # the victim's session ends at once (setsid + a parent that exits): it is left behind, reparented to PID 1
    subprocess.run([*nobody, "setsid", "-f", "/usr/bin/python3", "-I", "-S", "-c", victim_code, state], check=True)
    for _ in range(100):
        if os.path.exists(state):
            break
        time.sleep(0.05)
    proc = subprocess.run(verifier, capture_output=True, text=True, timeout=120)
    time.sleep(0.4)
    entry.kill()
    print(json.dumps({"rc": proc.returncode, "out": proc.stdout, "err": proc.stderr[-2000:],
                      "victim": json.load(open(state)), "entry": entry.pid}))
""")

VERIFIER = textwrap.dedent("""
    import json, sys
    from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _verify as V
    from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _verify_escape  # noqa: F401 (registers)
    params = dict(checks=[], skip_checks=[], timeout=2.0, egress_timeout=1.0, proxy="127.0.0.1:9", allowed_host=None,
                  denied_host=None, tls_host=None, egress_target=None, dns_resolver=None, dns_query_name="x", ca_path="/x",
                  ca_mode=None, inference_host="inference.local", expected_model=None, ro_paths=[], landlock_probe_paths=[],
                  writable_paths=[], config_scan_paths=[], proc_root="/proc")
    findings, _v = V.run_checks(params, json.loads(sys.argv[1]))
    print(json.dumps({f["id"]: [f["status"], f["observed"]] for f in findings}))
""")


@pytest.fixture(scope="module")
def work():
    path = pathlib.Path(tempfile.mkdtemp(prefix="agentsec-escape-"))  # /tmp itself: nobody cannot enter pytest's 0700 base
    path.chmod(0o755)
    (path / "state").mkdir(mode=0o777)
    (path / "state").chmod(0o1777)
    for name, policy in {"hardened.bpf": P.compile_policy(L.native_arch()),
                         "gap.bpf": P.compile_policy(L.native_arch(), profile="paper_translated")}.items():
        (path / name).write_bytes(policy.raw)
        (path / name).chmod(0o644)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def launcher(work, bpf, *extra):
    return [PYTHON, "-I", "-S", L.__file__, "--filter", str(work / bpf), "--landlock-ro", "/", "--landlock-rw",
            str(work / "state"), *extra, "--"]


def variant_command(work, variant):
    python = [PYTHON, "-c", VERIFIER, json.dumps(CHECKS)]
    return {
        "unconfined": [*NOBODY, *python],
        "gap": [*NOBODY, *launcher(work, "gap.bpf", "--no-landlock-scope", "--allow-unchecked-arch"), *python],
        "hardened": [*NOBODY, *launcher(work, "hardened.bpf"), *python],
        "netadmin": ["unshare", "-Urn", *python],
    }[variant]


def run_variant(work, variant):
    state = work / "state" / f"victim-{variant}.json"
    env = dict(os.environ, PYTHONPATH=COLLECTIONS)
    proc = subprocess.run(["unshare", "-p", "-n", "-f", "--mount-proc", sys.executable, "-I", "-c", DRIVER,
                           json.dumps(NOBODY), json.dumps(variant_command(work, variant)), str(state)],
                          capture_output=True, text=True, timeout=180, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["rc"] == 0, out
    return json.loads(out["out"].strip().splitlines()[-1]), {**out["victim"], "entry": out["entry"]}


@pytest.fixture(scope="module")
def results(work):
    return {v: run_variant(work, v) for v in ("unconfined", "gap", "hardened", "netadmin")}


def status(results, variant):
    return {cid: got[0] for cid, got in results[variant][0].items()}


def test_unconfined_agent_gets_through_and_the_verifier_says_so(results):
    got = status(results, "unconfined")
    assert got["L2.socket_families"] == V.FAIL and got["L2.user_namespace"] == V.FAIL, results["unconfined"][0]
    assert got["L1.landlock_scope"] == V.FAIL and got["L2.outlived_processes"] == V.FAIL, results["unconfined"][0]
    assert_victim_is_the_outlived_one(results, "unconfined")
    assert got["L3.route_change"] == V.PASS  # nobody has no CAP_NET_ADMIN, filter or not
    assert results["unconfined"][1]["connections"] >= 1  # the scope probe reached the victim's socket


def test_gap_filter_and_unscoped_landlock_are_reported(results):
    got, observed = status(results, "gap"), results["gap"][0]
    assert got["L2.socket_families"] == V.FAIL, observed["L2.socket_families"]
    assert "ALG(38)" in observed["L2.socket_families"][1]["reached_kernel"]
    assert "PACKET(17)" not in observed["L2.socket_families"][1]["reached_kernel"]
    assert got["L2.user_namespace"] == V.FAIL
    assert got["L1.landlock_scope"] == V.FAIL, observed["L1.landlock_scope"]
    assert got["L2.outlived_processes"] == V.FAIL
    assert_victim_is_the_outlived_one(results, "gap")


def assert_victim_is_the_outlived_one(results, variant):
    observed, victim = results[variant][0]["L2.outlived_processes"][1], results[variant][1]
    assert observed["entry_point"] == victim["entry"], observed
    assert [p["pid"] for p in observed["outlived"]] == [victim["pid"]], (observed, victim)


@pytest.mark.skipif(ABI < 6, reason=f"Landlock scopes need ABI >= 6 (this kernel: {ABI})")
def test_hardened_launcher_holds_and_the_verifier_passes_it(results):
    got, observed = status(results, "hardened"), results["hardened"][0]
    assert got["L2.socket_families"] == V.PASS, observed["L2.socket_families"]
    assert got["L2.user_namespace"] == V.PASS, observed["L2.user_namespace"]
    assert observed["L2.user_namespace"][1] == {"clone": "EPERM", "clone3": "ENOSYS", "unshare": "EPERM"}
    assert got["L3.route_change"] == V.PASS
    assert got["L1.landlock_scope"] == V.PASS, observed["L1.landlock_scope"]
    scope, victim = observed["L1.landlock_scope"][1], results["hardened"][1]
    assert scope["abstract"] == {"agentsec-escape-victim": "EPERM"}, scope
    assert scope["signals"][str(victim["pid"])] == scope["signals"][str(victim["entry"])] == "EPERM", scope
    assert victim["connections"] == 0
    # the victim is still left over: confinement does not make it go away, and the verifier keeps reporting it
    assert got["L2.outlived_processes"] == V.FAIL
    assert_victim_is_the_outlived_one(results, "hardened")


def test_cap_net_admin_in_the_agent_namespace_is_reported(results):
    got, observed = status(results, "netadmin"), results["netadmin"][0]
    assert got["L3.route_change"] == V.FAIL, observed["L3.route_change"]
    assert set(observed["L3.route_change"][1].values()) >= {"ENOTSUP"}
