"""The real agent under the hardening: OpenClaw from the npm registry, run by the collection's launcher in a read-only
container whose network namespace has only loopback (issue 13, "The real agent still works").

What runs: ``openclaw gateway run`` and ``openclaw agent --agent main`` (openclaw@2026.3.11 on Node 22.22.0, the
release NemoClaw's sandbox image installs, and openclaw@2026.9.6 on Node 24.16.0), each started through the same
launcher the hardened pod template puts in front of the agent's entry (built here from ``_k8s_patches``), with the
filter file and launcher written by the role's own module
(``agentsec.nemoclaw.seccomp_filter``, run through ansible-core at test time, so the test follows whatever the
worktree's compiler and launcher are). The model is ``openclaw/fake_model.py`` on 127.0.0.1 in the same namespace: it
asks for one ``exec`` tool call that prints ``/proc/self/status`` fields, ``id -u`` and ``openclaw/netprobe.py``.

Configurations (the Landlock lists and the netlink protocols are read from roles/hardening/defaults/main.yml at run
time, so "shipped" is exactly what the role ships):
- ``shipped``: the role's defaults as they are. Asserts the agent works; it fails until the defaults carry the fixes
  below (that is the point of the case: it is the attack run against the current configuration).
- ``recommended``: the role's defaults plus /var/tmp read-write, /sys/fs/cgroup read-only and NETLINK_ROUTE allowed.
- gap variants that keep proving the test can fail: ``unhardened`` (no wrapper: Seccomp 0, sockets open),
  ``netlink-refused`` (every AF_NETLINK socket refused: the 2026.3.11 gateway dies in os.networkInterfaces()),
  ``var-tmp-missing`` (/var/tmp not read-write: the 2026.9.6 agent turn fails while /healthz says live),
  ``no-cgroup`` (Node loses the container memory limit).

Cold cost: scripts/openclaw_bundle.sh fetches the npm packages (npm cache 206 MB for 2026.3.11, 358 MB for both) and
two Node.js builds once into ~/.cache/agentsec-nemoclaw/artifacts (about 60 s per release here); later runs are
offline. docs/openclaw.md has the measured numbers.
"""
from __future__ import annotations

import functools
import json
import os
import pathlib
import platform
import re
import subprocess
import sys
import uuid

import pytest
import yaml
from _docker_base import BASE_IMAGE, base_image_problem

from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _k8s_patches as K

ROOT = pathlib.Path(__file__).resolve().parents[2]
HERE = pathlib.Path(__file__).resolve().parent / "openclaw"
ROLE_DEFAULTS = ROOT / "roles" / "hardening" / "defaults" / "main.yml"
PREFIX = os.environ.get("AGENTSEC_DOCKER_PREFIX", "agentsec-openclaw")
# openclaw version -> Node.js version (package.json engines: 2026.3.11 ">=22.12.0", 2026.9.6 ">=24.16.0 <25 || >=26.1.0")
NODE_FOR = {"2026.3.11": "22.22.0", "2026.9.6": "24.16.0"}
AGENT_UID = 65534  # nobody: not root, has a passwd entry in the image (os.userInfo() works)
BUNDLE_MOUNT = "/usr/local/openclaw"  # under /usr, which every Landlock read-only list carries
TEST_MOUNT = "/usr/local/lib/agentsec-test"  # under /usr, in every Landlock read-only list (like the launcher)
NODE = f"{BUNDLE_MOUNT}/node/bin/node"
OPENCLAW = f"{BUNDLE_MOUNT}/app/node_modules/openclaw/openclaw.mjs"
TOOL_COMMAND = f"grep -E 'Seccomp|NoNewPrivs' /proc/self/status; id -u; python3 -I {TEST_MOUNT}/netprobe.py"
# Environment for every OpenClaw process (citations: files inside the npm package openclaw@2026.3.11).
OPENCLAW_ENV = {
    "HOME": "/sandbox",  # NemoClaw's sandbox user home; ~/.openclaw is the state dir (docs/help/faq.md, docs/install/docker.md)
    "PATH": f"{BUNDLE_MOUNT}/node/bin:/usr/local/bin:/usr/bin:/bin",
    "OPENCLAW_DISABLE_BONJOUR": "1",  # docs/gateway/bonjour.md:168
    "OPENCLAW_SKIP_CANVAS_HOST": "1",  # docs/gateway/configuration-reference.md (Canvas host)
    "OPENCLAW_SKIP_GMAIL_WATCHER": "1",  # docs/automation/gmail-pubsub.md:125
    "OPENCLAW_SKIP_CRON": "1",  # docs/automation/cron-jobs.md:444
    "OPENCLAW_NO_RESPAWN": "1",  # docs/vps.md:63-69
    "OPENCLAW_HIDE_BANNER": "1",  # docs/gateway/configuration-reference.md (CLI)
    "NO_COLOR": "1",
}

pytestmark = [
    pytest.mark.docker,
    pytest.mark.live_kernel,
    pytest.mark.oracle("kernel", "upstream"),
    pytest.mark.skipif(sys.platform != "linux" or platform.machine() != "x86_64", reason="the bundle script fetches linux-x64 Node.js"),
]


# --- configuration -------------------------------------------------------------------------------------------------

WRAPPER_ENV = "AGENTSEC_TEST_WRAPPER"  # the driver starts the agent processes behind this JSON argv prefix


@functools.cache
def role_defaults():
    return yaml.safe_load(ROLE_DEFAULTS.read_text())


def landlock_lists(case):
    """(ro, rw, reasons) for a configuration; reasons name why each added entry is there."""
    d = role_defaults()
    ro, rw = list(d["hardening_landlock_ro"]), list(d["hardening_landlock_rw"])
    if case in ("shipped", "unhardened"):
        return ro, rw
    add_ro = {"/sys/fs/cgroup": "Node reads its cgroup memory limit (libuv uv_get_constrained_memory) to size the heap"}
    add_rw = {"/var/tmp": "an emptyDir the hardened pod mounts; SQLite puts temp files there, 2026.9.6 fails without it"}
    if case == "var-tmp-missing":  # the controls take the entry out again (the shipped defaults carry both now)
        rw = [p for p in rw if p not in add_rw]
        add_rw = {}
    if case == "no-cgroup":
        ro = [p for p in ro if p not in add_ro]
        add_ro = {}
    ro += [p for p in add_ro if p not in ro]
    rw += [p for p in add_rw if p not in rw]
    return ro, rw


def netlink_protocols(case):
    if case in ("shipped", "unhardened"):
        return list(role_defaults()["hardening_seccomp_allow_netlink_protocols"])
    if case == "netlink-refused":
        return []
    return ["NETLINK_ROUTE"]


# --- fixtures ------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def docker_ready():
    reason = base_image_problem(BASE_IMAGE)
    if reason:
        pytest.skip(reason)


@functools.cache
def _bundle(version):
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "openclaw_bundle.sh"), version, NODE_FOR[version]],
                          capture_output=True, text=True, timeout=1800, check=False)
    if proc.returncode:
        return None, proc.stderr.strip().splitlines()[-1:] or ["no output"]
    return pathlib.Path(proc.stdout.strip().splitlines()[-1]), None


def bundle(version):
    path, err = _bundle(version)
    if path is None:
        pytest.skip(f"openclaw@{version} bundle unavailable (first run needs registry.npmjs.org): {err[0]}")
    return path


@pytest.fixture(scope="session")
def files_root(tmp_path_factory):
    return tmp_path_factory.mktemp("openclaw-hardening")


@functools.cache
def _files_dir(root, protocols):
    """Filter and launcher written by the role's module (ansible-core runs agentsec.nemoclaw.seccomp_filter)."""
    d = pathlib.Path(root) / ("netlink-" + ("-".join(map(str, protocols)) or "none"))
    d.mkdir(exist_ok=True)
    args = {"arch": "x86_64", "dest": str(d / "agent.bpf"), "mode": "0444", "launcher_dest": str(d / "seccomp-launch"),
            "allow_netlink_protocols": list(protocols)}
    ansible = pathlib.Path(sys.executable).with_name("ansible")
    cmd = [str(ansible) if ansible.exists() else "ansible", "localhost", "-c", "local", "-m", "agentsec.nemoclaw.seccomp_filter",
           "-a", json.dumps(args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return d


def hardened_fields(root, case, bundle_dir):
    """What the hardened pod template gives the agent (plugins/module_utils/_k8s_patches.py): a read-only root with
    writable /tmp /run /var/log /var/tmp, the filter and launcher mounted read-only at /usr/local/lib/agentsec, and the
    agent's entry started through the launcher with the role's Landlock lists."""
    ro, rw = landlock_lists(case)
    files = _files_dir(str(root), tuple(netlink_protocols(case)))
    tmpfs = [f"/sandbox:uid={AGENT_UID},gid={AGENT_UID},mode=0700", *(f"{path}:mode=1777" for path in K.EMPTY_DIRS)]
    mounts = [{"type": "bind", "source": str(bundle_dir), "target": BUNDLE_MOUNT, "read_only": True},
              {"type": "bind", "source": str(HERE), "target": TEST_MOUNT, "read_only": True},
              {"type": "bind", "source": str(files), "target": K.MOUNT_DIR, "read_only": True}]
    wrapper = [] if case == "unhardened" else [K.LAUNCHER, *K.launcher_flags({"l1": True, "l2": True, "landlock_ro": ro,
                                                                              "landlock_rw": rw}), "--"]
    return {"read_only": True, "tmpfs": tmpfs, "mounts": mounts, "wrapper": json.dumps(wrapper)}


def docker_run(fields, command, extra=(), timeout=300):
    name = f"{PREFIX}-{uuid.uuid4().hex[:10]}"
    cmd = ["docker", "run", "--rm", "--name", name, "--network", "none", "--user", f"{AGENT_UID}:{AGENT_UID}",
           # Docker's own seccomp profile off, so the only filter in the agent is the launcher's (Seccomp_filters 1)
           "--security-opt", "seccomp=unconfined", "--cap-drop", "ALL", "--pids-limit", "512"]
    if fields["read_only"]:
        cmd.append("--read-only")
    for t in fields["tmpfs"]:
        cmd += ["--tmpfs", t]
    for m in fields["mounts"]:
        cmd += ["--mount", f"type=bind,source={m['source']},target={m['target']}" + (",readonly" if m["read_only"] else "")]
    env = {**OPENCLAW_ENV, WRAPPER_ENV: fields["wrapper"]}
    for k, v in env.items():
        cmd += ["-e", f"{k}={v}"]
    cmd += [*extra, BASE_IMAGE, *command]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
        raise


def wrapped(fields, argv):
    return [*json.loads(fields["wrapper"] or "[]"), *argv]


# --- parsing -------------------------------------------------------------------------------------------------------

def status_fields(text):
    return {k: v.strip() for k, v in re.findall(r"^(Seccomp|Seccomp_filters|NoNewPrivs):\s*(\S+)", text, re.M)}


def probe_result(text):
    m = re.search(r"AGENTSEC_PROBE (\{.*\})", text)
    return json.loads(m.group(1)) if m else None


def agent_turn(version, case, files_root):
    return _agent_turn(version, case, str(files_root))


@functools.cache
def _agent_turn(version, case, files_root):
    """One container run of the driver (cached: several tests assert on the same turn)."""
    bundle_dir = bundle(version)
    fields = hardened_fields(files_root, case, bundle_dir)
    proc = docker_run(fields, ["python3", "-I", f"{TEST_MOUNT}/driver.py", "--node", NODE, "--openclaw", OPENCLAW,
                               "--config", f"{TEST_MOUNT}/openclaw-{version}.json5", "--command", TOOL_COMMAND])
    assert proc.stdout.strip(), f"driver printed nothing (rc {proc.returncode}): {proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def tool_output(result):
    outputs = [m for r in result["model_requests"] for m in r["tool_messages"]]
    return outputs[-1] if outputs else ""


def _diagnose(result):
    return json.dumps({k: result.get(k) for k in ("gateway_healthy", "healthz", "gateway_exit", "agent", "model_requests")},
                      indent=1)[-6000:] + "\n--- gateway log ---\n" + result.get("gateway_log", "")[-4000:]


# --- tests ---------------------------------------------------------------------------------------------------------

TURN_CASES = [
    ("2026.3.11", "shipped"), ("2026.3.11", "recommended"),
    ("2026.9.6", "shipped"), ("2026.9.6", "recommended"),
]


def filter_verdict(files_dir, family, type_, proto=0):
    """What the compiled filter answers for socket(family, type, proto): "EPERM" or None (the kernel decides)."""
    from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _seccomp_tables as T
    from ansible_collections.agentsec.nemoclaw.plugins.module_utils import seccomp_launcher as L

    program = L.decode((files_dir / "agent.bpf").read_bytes())
    ret = L.interpret(program, L.seccomp_data(T.SYSCALLS["x86_64"]["socket"], L.AUDIT_ARCH["x86_64"], (family, type_, proto)))[0]
    return "EPERM" if ret & L.SECCOMP_RET_ACTION_FULL == L.SECCOMP_RET_ERRNO else None


def known_cause(case, r):
    """A one-line reading of a failed run, naming the role default that causes it."""
    text = r.get("gateway_log", "") + json.dumps(r.get("agent") or {}) + r.get("openclaw_log", "")
    if "uv_interface_addresses" in text:
        return (f"[{case}] os.networkInterfaces() failed: AF_NETLINK is refused; the agent needs NETLINK_ROUTE "
                "(hardening_seccomp_allow_netlink_protocols: [NETLINK_ROUTE])")
    if "unable to open database file" in text:
        return f"[{case}] SQLite could not open its temp file: /var/tmp is a tmpfs but not in hardening_landlock_rw"
    return f"[{case}] {run_summary(r)}; the driver output is below"


def _last_line(text):
    lines = [ln.strip() for ln in str(text or "").splitlines() if ln.strip()]
    return lines[-1][:120] if lines else "-"


def run_summary(r):
    """The facts of one run on one line: CI keeps only the first line of a failure's message (scripts/count_results.py)."""
    agent = r.get("agent") or {}
    answers = [q.get("answer") for q in r.get("model_requests") or []]
    return (f"gateway {'live' if r.get('gateway_healthy') else 'NOT live'} after {r.get('gateway_seconds')}s "
            f"(exit {r.get('gateway_exit')}); agent rc {agent.get('rc', '-')} after {agent.get('seconds', '-')}s; "
            f"model answers {answers}; agent stderr: {_last_line(agent.get('stderr'))}; "
            f"gateway log: {_last_line(r.get('gateway_log'))}; total {r.get('total_seconds')}s")


@pytest.mark.parametrize(("version", "case"), TURN_CASES)
def test_agent_turn_under_hardening(version, case, docker_ready, files_root):
    r = agent_turn(version, case, files_root)
    why = known_cause(case, r) + "\n" + _diagnose(r)
    # (a) the gateway is up and answering on loopback (GET /healthz: openclaw dist/gateway-cli-*.js,
    # GATEWAY_PROBE_STATUS_BY_PATH -> {"ok": true, "status": "live"})
    assert r["gateway_healthy"], why
    assert json.loads(r["healthz"][1]) == {"ok": True, "status": "live"}
    # (b) one agent turn completed: the model was asked twice (tool call, then the final answer with the tool output)
    # and the CLI returned the final text.
    assert r["agent"]["rc"] == 0, why
    answers = [q["answer"] for q in r["model_requests"]]
    assert answers[:1] == ["tool_call"] and "final" in answers, why
    reply = json.loads(r["agent"]["stdout"][r["agent"]["stdout"].index("{"):])
    texts = [p.get("text") or "" for p in reply["result"]["payloads"]]
    assert any(t.startswith("AGENTSEC_FINAL") for t in texts), why
    # (c) the tool ran under the launcher: seccomp filter mode, no_new_privs, not root ...
    out = tool_output(r)
    st = status_fields(out)
    assert st.get("Seccomp") == "2" and st.get("NoNewPrivs") == "1" and int(st.get("Seccomp_filters", 0)) >= 1, out
    uid_lines = [ln for ln in out.splitlines() if ln.strip().isdigit()]
    assert uid_lines and uid_lines[0].strip() != "0", out
    # ... and the kernel refuses inside the tool what the filter refuses (the unhardened case shows the kernel's
    # own answers: EINVAL for type 15, ok for NETLINK_KOBJECT_UEVENT).
    probe = probe_result(out)
    assert probe is not None, out
    assert probe["af_packet_t15"] == "EPERM" and probe["netlink_uevent"] == "EPERM", probe
    assert probe["af_inet"] == "ok" and probe["af_unix"] == "ok", probe
    files_dir = _files_dir(str(files_root), tuple(netlink_protocols(case)))
    for key, args in (("af_vsock_t15", (40, 15)), ("af_alg_t15", (38, 15)), ("netlink_route", (16, 3, 0))):
        assert probe[key] == (filter_verdict(files_dir, *args) or ("EINVAL" if key.endswith("t15") else "ok")), (key, probe)
    if probe["netlink_route"] == "ok":  # reading works, changing needs CAP_NET_ADMIN
        assert isinstance(probe["getlink_dump"], int) and probe["getlink_dump"] >= 1, probe
        assert (probe["newaddr"], probe["newroute"]) == ("EPERM", "EPERM"), probe
    assert r["gateway_alive_after_turn"]


def test_unhardened_control_shows_what_the_assertions_catch(docker_ready, files_root):
    """Same container, no launcher: the same turn works, and every hardening assertion above would fail."""
    r = agent_turn("2026.3.11", "unhardened", files_root)
    assert r["gateway_healthy"] and r["agent"]["rc"] == 0, _diagnose(r)
    out = tool_output(r)
    st = status_fields(out)
    assert (st.get("Seccomp"), st.get("NoNewPrivs")) == ("0", "0"), out
    probe = probe_result(out)
    assert probe["af_packet_t15"] == "EINVAL" and probe["netlink_uevent"] == "ok", out
    assert probe["af_vsock_t15"] == "EINVAL" and probe["af_alg_t15"] == "EINVAL", out


def test_netlink_refused_kills_the_2026_3_11_gateway(docker_ready, files_root):
    """With AF_NETLINK refused entirely, os.networkInterfaces() throws and the gateway never answers."""
    r = agent_turn("2026.3.11", "netlink-refused", files_root)
    assert not r["gateway_healthy"], _diagnose(r)
    assert r["gateway_exit"] not in (None, 0), _diagnose(r)
    assert "uv_interface_addresses" in r["gateway_log"] or "networkInterfaces" in r["gateway_log"], r["gateway_log"]
    assert "agent" not in r


def test_var_tmp_missing_breaks_2026_9_6_turns_while_gateway_reports_live(docker_ready, files_root):
    r = agent_turn("2026.9.6", "var-tmp-missing", files_root)
    assert r["gateway_healthy"], _diagnose(r)
    assert r["agent"]["rc"] != 0 and "AGENTSEC_FINAL" not in r["agent"]["stdout"], _diagnose(r)
    assert "unable to open database file" in r["agent"]["stdout"] + r["agent"]["stderr"], _diagnose(r)
    assert [q["answer"] for q in r["model_requests"]] == [], "the turn failed before the model was asked"
    assert json.loads(r["healthz_after_turn"][1]) == {"ok": True, "status": "live"}


VAR_TMP = ("import os, errno\nw = os.access('/var/tmp', os.W_OK)\ntry:\n    open('/var/tmp/agentsec-probe', 'w').close(); o = 'ok'\n"
           "except OSError as e:\n    o = errno.errorcode[e.errno]\nprint(w, o)")


def test_var_tmp_looks_writable_but_open_is_denied(docker_ready, files_root):
    """Why SQLite picks /var/tmp and then fails: access(W_OK) says yes (tmpfs mode 1777; Landlock does not answer
    access(2)), open() is refused by Landlock. SQLite tries SQLITE_TMPDIR, TMPDIR, /var/tmp, /usr/tmp, /tmp in that
    order (https://www.sqlite.org/tempfiles.html, "Temporary File Storage Locations")."""
    for case, expected in (("var-tmp-missing", "True EACCES"), ("recommended", "True ok")):
        fields = hardened_fields(files_root, case, bundle("2026.9.6"))
        proc = docker_run(fields, wrapped(fields, ["python3", "-I", "-c", VAR_TMP]))
        assert proc.stdout.split() == expected.split(), (case, proc.stdout, proc.stderr)


def test_2026_9_6_needs_no_netlink(docker_ready, files_root):
    """2026.9.6 starts and completes the turn with every AF_NETLINK socket refused: only 2026.3.11 needs NETLINK_ROUTE."""
    r = agent_turn("2026.9.6", "netlink-refused", files_root)
    assert r["gateway_healthy"] and r["agent"]["rc"] == 0, known_cause("netlink-refused", r) + _diagnose(r)
    assert probe_result(tool_output(r))["netlink_route"] == "EPERM"


def test_rtnetlink_changes_need_cap_net_admin(docker_ready, files_root):
    """The probe's RTM_NEWADDR/RTM_NEWROUTE are valid requests: root with CAP_NET_ADMIN (no launcher) applies them in
    the container's own loopback-only namespace; the sandboxed agent gets EPERM from the kernel (not the filter)."""
    fields = hardened_fields(files_root, "recommended", bundle("2026.3.11"))
    control = dict(fields, wrapper="[]")
    proc = docker_run(control, ["python3", "-I", f"{TEST_MOUNT}/netprobe.py"], extra=["--user", "0:0", "--cap-add", "NET_ADMIN"])
    probe = probe_result(proc.stdout)
    assert probe and probe["newaddr"] == "ok" and probe["newroute"] == "ok", proc.stdout + proc.stderr
    proc = docker_run(fields, wrapped(fields, ["python3", "-I", f"{TEST_MOUNT}/netprobe.py"]))
    probe = probe_result(proc.stdout)
    assert probe and probe["netlink_route"] == "ok" and isinstance(probe["getlink_dump"], int), proc.stdout + proc.stderr
    assert (probe["newaddr"], probe["newroute"]) == ("EPERM", "EPERM"), probe


HEAP = "const v8=require('v8');console.log(JSON.stringify({heap:v8.getHeapStatistics().heap_size_limit,constrained:process.constrainedMemory()}))"
MEMORY = 1 << 30


@pytest.mark.parametrize("case", ["shipped", "recommended", "no-cgroup"])
def test_node_sees_the_container_memory_limit(case, docker_ready, files_root):
    """Node sizes its heap from the cgroup limit; without /sys/fs/cgroup readable it falls back to host memory."""
    fields = hardened_fields(files_root, case, bundle("2026.3.11"))
    extra = ["--memory", str(MEMORY)]
    control = json.loads(docker_run(dict(fields, wrapper="[]"), [NODE, "-e", HEAP], extra=extra).stdout)
    got = json.loads(docker_run(fields, wrapped(fields, [NODE, "-e", HEAP]), extra=extra).stdout)
    assert control["constrained"] == MEMORY and control["heap"] < MEMORY
    if case == "no-cgroup":
        assert got["constrained"] != MEMORY and got["heap"] > control["heap"], (got, control)
    else:
        assert got == control, (got, control)


def test_oom_score_adj_write_is_denied_by_landlock(docker_ready, files_root):
    """openclaw@2026.9.6 raises its children's oom_score_adj (dist/linux-oom-score-*.mjs: "echo 1000 >
    /proc/self/oom_score_adj 2>/dev/null"); under Landlock (/proc read-only) the write fails, without it it works."""
    fields = hardened_fields(files_root, "recommended", bundle("2026.3.11"))
    script = "echo 1000 > /proc/self/oom_score_adj && cat /proc/self/oom_score_adj"
    control = docker_run(dict(fields, wrapper="[]"), ["sh", "-c", script])
    assert control.returncode == 0 and control.stdout.strip() == "1000", control.stderr
    got = docker_run(fields, wrapped(fields, ["sh", "-c", script]))
    assert got.returncode != 0 and "Permission denied" in got.stderr, (got.returncode, got.stdout, got.stderr)


def test_2026_9_6_exec_children_cannot_raise_their_oom_score(docker_ready, files_root):
    """The same denial seen from the agent: 2026.9.6 starts every exec child through its oom_score_adj shim, and under
    Landlock the shell reports the failed redirect at the top of the tool output the model reads."""
    out = tool_output(agent_turn("2026.9.6", "recommended", files_root))
    assert "cannot create /proc/self/oom_score_adj: Permission denied" in out, out
