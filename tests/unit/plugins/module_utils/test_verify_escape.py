"""Decisions of the escape probes (_verify_escape) and of L2.outlived_processes on observations shaped like the
probes' (the probes themselves run against the kernel in tests/integration/test_verify_escape_live.py and against the
lab in tests/adversarial). The process-tree cases are built from /proc fields as the kernel reports them: PPid 0 for a
process entered from outside the PID namespace (proc(5), "PPid"), start time in clock ticks after boot (field 22 of
/proc/<pid>/stat).
"""
from __future__ import annotations

import os
import struct

import pytest

from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _verify as V
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _verify_escape as E

pytestmark = pytest.mark.oracle("self", "kernel")
FILTERED = {"seccomp": "2"}


def test_every_family_refused_passes_and_one_that_reaches_the_kernel_fails():
    refused = {f: "EPERM" for f in range(3, 46) if f not in E.ALLOWED_FAMILIES}
    assert V.PASS == E.decide_socket_families({"results": refused}, FILTERED)[0]
    broker = {f: "EAFNOSUPPORT" for f in refused}  # 0.1.x's broker answer
    assert V.PASS == E.decide_socket_families({"results": broker}, FILTERED)[0]
    status, observed = E.decide_socket_families({"results": {**refused, 38: "EINVAL"}}, FILTERED)
    assert status == V.FAIL and observed["reached_kernel"] == {"ALG(38)": "EINVAL"}
    assert E.decide_socket_families({"results": {**refused, 38: "created"}}, FILTERED)[0] == V.FAIL
    # refusals with no filter on the process are not the filter's; an unknown answer is an error, never a pass
    assert E.decide_socket_families({"results": refused}, {"seccomp": "0"})[0] == V.ERROR
    assert E.decide_socket_families({"results": {**refused, 40: "ENOMEM"}}, FILTERED)[0] == V.ERROR


def test_the_family_probe_never_asks_for_an_allowed_family():
    asked = set(E.probe_socket_families()["results"])
    assert asked == set(range(1, E.AF_MAX)) - E.ALLOWED_FAMILIES and 40 in asked  # AF_VSOCK, with type 15 only


@pytest.mark.parametrize("obs, status", [
    ({"clone": "EPERM", "clone3": "ENOSYS", "unshare": "EPERM"}, V.PASS),
    ({"clone": "EPERM", "clone3": "EPERM", "unshare": "EPERM"}, V.PASS),
    ({"clone": "created", "clone3": "ENOSYS", "unshare": "EPERM"}, V.FAIL),
    ({"clone": "EPERM", "clone3": "ENOSYS", "unshare": "created"}, V.FAIL),
    ({"error": "child exited 1"}, V.ERROR),
])
def test_user_namespace_on_every_entry_point(obs, status):
    assert E.decide_user_namespace(obs, {})[0] == status


def test_route_requests_are_well_formed_rtnetlink_messages_no_handler_takes():
    for request in E.route_requests().values():
        length, kind, flags, _seq, _pid = struct.unpack_from("=IHHII", request)
        assert length == len(request) and kind in (E.RTM_NEWNDUSEROPT, E.RTM_NEWCACHEREPORT)
        assert flags == E.NLM_F_REQUEST | E.NLM_F_ACK


@pytest.mark.parametrize("obs, status", [
    ({"socket": "ok", "newnduseropt": "EPERM", "newcachereport": "EPERM"}, V.PASS),
    ({"socket": "EPERM"}, V.PASS),
    ({"socket": "ok", "newnduseropt": "ENOTSUP", "newcachereport": "ENOTSUP"}, V.FAIL),
    ({"socket": "ok", "newnduseropt": "EPERM", "newcachereport": "ok"}, V.FAIL),
    ({"socket": "ok", "newnduseropt": "EPERM", "newcachereport": "unexpected answer type 3"}, V.ERROR),
    ({"socket": "ok", "error": "TimeoutError: timed out"}, V.ERROR),
])
def test_route_change(obs, status):
    assert E.decide_route_change(obs, {})[0] == status


@pytest.mark.parametrize("signals, abstract, status", [
    ({"24": "EPERM"}, {"victim": "EPERM"}, V.PASS),
    ({"24": "sent"}, {}, V.FAIL),
    ({"24": "EPERM"}, {"victim": "connected"}, V.FAIL),
    ({}, {}, V.SKIPPED),
    ({"24": "ESRCH"}, {"gone": "ECONNREFUSED"}, V.SKIPPED),  # nothing that could show a scope was probed
])
def test_landlock_scope(signals, abstract, status):
    assert E.decide_landlock_scope({"landlock_abi": 6, "signals": signals, "abstract": abstract}, {})[0] == status


def test_listening_abstract_sockets_are_read_from_proc_net_unix(tmp_path):
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "unix").write_text(
        "Num       RefCount Protocol Flags    Type St Inode Path\n"
        "0000000000000000: 00000002 00000000 00010000 0001 01 1001 @victim\n"  # listening, abstract
        "0000000000000000: 00000002 00000000 00000000 0001 03 1002 @connected-only\n"  # not listening
        "0000000000000000: 00000002 00000000 00010000 0001 01 1003 /run/sock\n"  # a path, not abstract
        "0000000000000000: 00000002 00000000 00010000 0005 01 1004 @seq\n")
    assert E.abstract_listeners(str(tmp_path)) == [("victim", 1), ("seq", 5)]


# ---- L2.outlived_processes ------------------------------------------------------------------------------------
TICKS = 100


def proc(pid, ppid, start, in_session=False, cmd="x"):
    return {"pid": pid, "ppid": ppid, "start": start, "in_session": in_session, "cmd": cmd, "no_new_privs": "1",
            "seccomp": "2", "seccomp_filters": 2}


def observation(processes, me=900, supervisor=1, supervisor_start=1000):
    return {"processes": processes, "me": me, "supervisor": supervisor, "supervisor_start": supervisor_start,
            "ticks": TICKS, "session_filters": 2, "session_no_new_privs": "1"}


def test_the_entry_point_tree_and_this_session_are_not_outlived():
    obs = observation([proc(24, 1, 1050, cmd="nemoclaw-start"), proc(30, 24, 1100, cmd="openclaw gateway run"),
                       proc(880, 1, 90000, in_session=True, cmd="bash"), proc(905, 880, 90010, cmd="sibling in pipe"),
                       proc(950, 900, 90020, cmd="our probe child")])
    status, observed = V.decide_outlived_processes(obs, {})
    assert (status, observed["entry_point"], observed["outlived"]) == (V.PASS, 24, [])


def test_a_process_an_earlier_session_left_behind_fails():
    left = proc(700, 1, 60000, cmd="sleep 600")
    status, observed = V.decide_outlived_processes(observation([proc(24, 1, 1050), left,
                                                                proc(880, 1, 90000, in_session=True)]), {})
    assert status == V.FAIL and [p["pid"] for p in observed["outlived"]] == [700]
    # a left-behind child of it too
    status, observed = V.decide_outlived_processes(observation([proc(24, 1, 1050), left, proc(701, 700, 60001)]), {})
    assert [p["pid"] for p in observed["outlived"]] == [700, 701]


def test_without_an_entry_point_started_with_the_supervisor_every_outsider_counts():
    # the oldest agent child started 2 minutes after the supervisor: it is no entry point, it is left over
    late = proc(700, 1, 1000 + 120 * TICKS)
    status, observed = V.decide_outlived_processes(observation([late]), {})
    assert status == V.FAIL and observed["entry_point"] is None


def test_the_supervisor_and_processes_entered_from_outside_the_namespace_are_not_outlived():
    # 0.1.x: PID 1 is the supervisor with the agent's uid; docker/kubectl exec: PPid 0
    obs = observation([proc(1, 0, 1000), proc(9, 1, 1010), proc(10, 0, 5000, cmd="openshell-sandbox --exec-client")])
    assert V.decide_outlived_processes(obs, {})[0] == V.PASS


def test_start_ticks_reads_field_22_past_a_name_with_spaces_and_parens(tmp_path):
    (tmp_path / "42").mkdir()
    fields = ["S", "1", "42", "42"] + ["0"] * 15 + ["123456"] + ["0"] * 10  # fields 3-6, 7-21, 22 (starttime)
    (tmp_path / "42" / "stat").write_text("42 (a (b) c) " + " ".join(fields) + "\n")
    assert V._start_ticks(str(tmp_path), 42) == 123456
    assert V._start_ticks(str(tmp_path), 43) is None


def test_this_process_started_after_boot_and_before_now():
    with open("/proc/uptime", encoding="ascii") as fh:
        uptime_ticks = float(fh.read().split()[0]) * os.sysconf("SC_CLK_TCK")
    start = V._start_ticks("/proc", os.getpid())
    assert 0 < start <= uptime_ticks + 1
