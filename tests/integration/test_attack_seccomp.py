"""Attack-first tests of the hardened seccomp filter, acting as the agent inside the launcher (issue 13, classes 1-3).

Every attack runs twice: against the filter as shipped in 0.1 ("old", kept as data in seccomp_probe/old_filters.py)
where the attack must work - so the test keeps proving it can fail - and against today's default ("new"), where
the kernel must refuse it. Nothing is connected, bound or sent on AF_VSOCK: sockets are only created and closed.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import runpy
import shutil
import subprocess
import sys
import textwrap

import pytest

from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _seccomp_policy as P
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import seccomp_launcher as L

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "seccomp_probe"))
import launch as H  # noqa: E402  (tests/integration/seccomp_probe/launch.py)

pytestmark = [
    pytest.mark.live_kernel,
    pytest.mark.oracle("kernel"),
    pytest.mark.skipif(sys.platform != "linux" or platform.machine() != "x86_64", reason="live probes are written for Linux x86_64"),
]
OLD = runpy.run_path(str(H.HERE / "old_filters.py"))
FULL_CAPS = "000001ffffffffff"  # CapEff of a process with every capability (41 caps on 6.x kernels)


@pytest.fixture(scope="module")
def filters(tmp_path_factory):
    d = tmp_path_factory.mktemp("filters")
    old_raw = L.encode(OLD["OLD_HARDENED"]["x86_64"])
    assert hashlib.sha256(old_raw).hexdigest() == OLD["OLD_SHA256"]["x86_64"]
    out = {"old": d / "old.bpf", "new": d / "new.bpf"}
    out["old"].write_bytes(old_raw)
    out["new"].write_bytes(P.compile_policy("x86_64").raw)
    return out


def probe(filters, variant, name, *args):
    return H.run_probe(H.launcher_cmd(filters[variant]), name, *args)


VARIANTS = ["old", "new"]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", ["af_vsock", "high_bit_vsock", "af_alg", "af_netlink_sock_diag", "af_netlink_audit"])
def test_families_outside_the_allow_list_never_reach_the_kernel(filters, variant, name):
    """AF_VSOCK (also as 0x1_00000028), AF_ALG and non-ROUTE netlink: the old deny-list let VSOCK and ALG through."""
    got = probe(filters, variant, name)["result"]
    if variant == "new":
        assert got == "EPERM"
    elif name.startswith("af_netlink"):
        assert got == "EPERM"  # the old filter refused all of netlink (and so broke Node.js, see below)
    else:
        assert got != "EPERM", f"{name} was already refused by the old filter ({got})"


@pytest.mark.parametrize("variant", VARIANTS)
def test_netlink_route_works_while_other_netlink_protocols_are_refused(filters, variant):
    route = probe(filters, variant, "af_netlink_route")["result"]
    diag = probe(filters, variant, "af_netlink_sock_diag")["result"]
    if variant == "old":
        assert (route, diag) == ("EPERM", "EPERM")  # getifaddrs() fails: OpenClaw's gateway does not start
    else:
        assert (route, diag) == ("ok", "EPERM")


@pytest.mark.parametrize("name", ["af_unix", "af_inet", "af_inet6"])
def test_allowed_families_still_work(filters, name):
    assert probe(filters, "new", name)["result"] == "ok"


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", ["clone_newuser", "unshare_newuser"])
def test_a_new_user_namespace_gives_the_agent_no_capabilities(filters, variant, name):
    """As uid 65534 with no capabilities, clone()/unshare() with CLONE_NEWUSER hands out a full capability set."""
    out = probe(filters, variant, name)
    assert out["cap_eff_before"] == "0000000000000000"
    if variant == "old":
        assert out["result"] == "ok"
        assert out.get("child_cap_eff", out.get("cap_eff_after")) == FULL_CAPS
    else:
        assert out["result"] == "EPERM"


@pytest.mark.parametrize("variant", VARIANTS)
def test_clone3_is_enosys_and_threads_and_children_still_work(filters, variant):
    out = probe(filters, variant, "clone3_newuser")
    if variant == "old":
        assert out == {"probe": "clone3_newuser", "result": "ok", "child_cap_eff": FULL_CAPS}
    else:
        assert out["result"] == "ENOSYS"
    # glibc 2.34+ creates threads and posix_spawn children with clone3 and falls back to clone on ENOSYS
    assert probe(filters, variant, "threads_and_children")["result"] == "ok"


@pytest.mark.parametrize("variant", VARIANTS)
def test_setns_is_refused(filters, variant):
    assert probe(filters, variant, "setns")["result"] == ("EINVAL" if variant == "old" else "EPERM")


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", ["add_key", "keyctl"])
def test_the_kernel_keyring_is_out_of_reach(filters, variant, name):
    """The keyring is shared by every process of the uid, across sandboxes (only the process keyring is touched)."""
    assert probe(filters, variant, name)["result"] == ("ok" if variant == "old" else "EPERM")


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize(("name", "old", "new"), [
    ("ptrace", "ESRCH", "EPERM"), ("personality_no_randomize", "ok", "EPERM"), ("personality_linux", "ok", "ok"),
])
def test_process_access_and_odd_personas_are_refused(filters, variant, name, old, new):
    assert probe(filters, variant, name)["result"] == (old if variant == "old" else new)


NODE_AGENT = textwrap.dedent("""
    const os = require('os'), fs = require('fs'), http = require('http'), cp = require('child_process');
    const { Worker } = require('worker_threads'), dns = require('dns'), path = require('path');
    const out = {};
    try { out.interfaces = Object.keys(os.networkInterfaces()).length > 0; } catch (e) { out.interfaces = e.code || String(e); }
    // OpenClaw 2026.9.6's child shim (dist/linux-oom-score-*.mjs): raise the child's OOM score, then exec
    out.oom_shim = cp.spawnSync('/bin/sh', ['-c', 'echo 1000 > /proc/self/oom_score_adj 2>/dev/null; exec "$0" "$@"',
                                'true']).status;
    const db = path.join(process.argv[2], 'agentsec-h1.db');
    fs.writeFileSync(db, 'x'); out.var_tmp = fs.readFileSync(db, 'utf8') === 'x';
    new Worker('require("worker_threads").parentPort.postMessage(6 * 7)', { eval: true }).on('message', (m) => {
      out.worker = m;
      dns.lookup('localhost', (err) => {
        out.dns = err ? err.code : 'ok';
        const srv = http.createServer((req, res) => res.end('pong')).listen(0, '127.0.0.1', () => {
          http.get({ host: '127.0.0.1', port: srv.address().port }, (res) => {
            let body = ''; res.on('data', (c) => body += c);
            res.on('end', () => { out.http = body; srv.close(); console.log(JSON.stringify(out)); });
          });
        });
      });
    });
""")


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_node_agent_still_works_under_filter_and_landlock(filters, variant, tmp_path):
    """What OpenClaw's gateway needs: interfaces (NETLINK_ROUTE), a worker thread, child processes, loopback HTTP,
    DNS for localhost and a writable /var/tmp-like directory, with Landlock (/proc read-only) and the filter."""
    node = shutil.which("node")
    if not node or not node.startswith(("/usr/", "/bin/")):
        pytest.skip("Node.js under /usr is not installed")
    var_tmp = tmp_path / "var-tmp"
    var_tmp.mkdir()
    script = tmp_path / "agent.js"
    script.write_text(NODE_AGENT)
    cmd = H.launcher_cmd(filters[variant], H.landlock_args(ro=[str(script)], rw=[var_tmp, "/dev/null"]))
    proc = subprocess.run([*cmd, node, str(script), str(var_tmp)], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if variant == "old":
        assert out["interfaces"] is not True  # getifaddrs() needs NETLINK_ROUTE: the old filter broke the gateway
    else:
        assert out["interfaces"] is True
    assert out["oom_shim"] == 0  # the write is refused by Landlock (/proc read-only) but the shim goes on to exec
    assert (out["var_tmp"], out["worker"], out["dns"], out["http"]) == (True, 42, "ok", "pong")
