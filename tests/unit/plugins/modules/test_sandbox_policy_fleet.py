"""sandbox_policy on a host with several sandboxes (the host-service lines' JSON CLI): one sandbox that cannot be
hardened or restored must not stop the others. The failing sandbox is reported under its name (`failed`, `msg`) and in
`failed_sandboxes`, the others are still changed, and `changed` says that something was. The CLI below is a stand-in of
the 0.0.116 CLI's `sandbox list --output json`, `policy get --full --output json` (run.rs @v0.0.111 L6505-6569),
`policy set --wait --timeout` (a live landlock change is refused, validation.rs @v0.0.111 L872-937), `sandbox delete`
and `sandbox create --policy`; marker files in a sandbox's directory make one step fail for that sandbox only."""
from __future__ import annotations

import json
import textwrap

import pytest
from ansible_collections.agentsec.nemoclaw.plugins.modules import sandbox_policy as M

POLICY = {"version": 1, "filesystem_policy": {"include_workdir": True, "read_only": ["/usr"], "read_write": ["/sandbox"]},
          "landlock": {"compatibility": "best_effort"}, "process": {"run_as_user": "sandbox", "run_as_group": "sandbox"},
          "network_policies": {"web": {"name": "web", "endpoints": [
              {"host": "api.example", "port": 443, "protocol": "rest", "access": "read-only"},
              {"host": "git.example", "port": 22}]}}}

CLI = textwrap.dedent("""\
    #!/usr/bin/env python3
    import json, pathlib, sys
    state = pathlib.Path(sys.argv[0]).parent
    a = sys.argv[1:]
    with open(state / "calls.jsonl", "a") as fh:
        fh.write(json.dumps(a) + "\\n")
    names = json.loads((state / "names.json").read_text())

    def revs(name):
        return sorted((state / name).glob("rev-*.json"))

    def add_revision(name, policy):
        (state / name).mkdir(exist_ok=True)
        (state / name / f"rev-{len(revs(name)) + 1:03d}.json").write_text(json.dumps(policy))

    if a == ["sandbox", "list", "--output", "json"]:
        print(json.dumps([{"name": n, "phase": "Ready"} for n in names]))
    elif a[:2] == ["policy", "get"] and a[3:] == ["--full", "--output", "json"] and a[2] in names:
        if (state / a[2] / "garbled").exists():
            print("{\\"sandbox\\": \\"" + a[2] + "\\", \\"version\\": ")  # cut off
            sys.exit(0)
        n = len(revs(a[2]))
        print(json.dumps({"sandbox": a[2], "version": n, "hash": "abc", "status": "loaded", "active_version": n,
                          "policy": json.loads(revs(a[2])[-1].read_text())}))
    elif a[:2] == ["policy", "set"] and a[2] in names and a[3] == "--policy" and a[5:] == ["--wait", "--timeout", "60"]:
        new = json.loads(pathlib.Path(a[4]).read_text())
        if new.get("landlock") != json.loads(revs(a[2])[-1].read_text()).get("landlock"):
            print("Error: landlock policy cannot be changed on a live sandbox (applied at startup)", file=sys.stderr)
            sys.exit(1)
        if (state / a[2] / "refuse-set").exists():
            print(f"Error: policy revision {len(revs(a[2])) + 1} failed to load: supervisor rejected it", file=sys.stderr)
            sys.exit(1)
        add_revision(a[2], new)
        print(f"Policy version {len(revs(a[2]))} loaded", file=sys.stderr)
    elif a[:2] == ["sandbox", "delete"] and a[2:3] and a[2] in names:
        names.remove(a[2])
        (state / "names.json").write_text(json.dumps(names))
        print(f"Sandbox {a[2]} deletion accepted")
    elif a[:2] == ["sandbox", "get"] and a[3:] == ["--output", "json"] and a[2] in names:
        labels = state / a[2] / "labels.json"
        print(json.dumps({"name": a[2], "phase": "Ready",
                          "labels": json.loads(labels.read_text()) if labels.exists() else {}}))
    elif len(a) >= 11 and a[:3] == ["sandbox", "create", "--name"] and a[4] == "--from" and \\
            a[6:10] == ["--detach", "--output", "json", "--policy"]:
        if a[3] in names or (state / a[3] / "refuse-create").exists():
            print(f"Error: sandbox {a[3]} failed to start", file=sys.stderr)
            sys.exit(1)
        for old in revs(a[3]):
            old.unlink()
        add_revision(a[3], json.loads(pathlib.Path(a[10]).read_text()))
        extra, labels, limits = a[11:], {}, {}
        while extra:  # --label k=v, --memory M, --cpu C (main.rs @v0.0.111 L1386-1446)
            flag, value, extra = extra[0], extra[1], extra[2:]
            if flag == "--label":
                labels[value.partition("=")[0]] = value.partition("=")[2]
            elif flag in ("--memory", "--cpu"):
                limits[flag[2:]] = value
            else:
                print(f"error: unexpected argument {flag}", file=sys.stderr)
                sys.exit(2)
        (state / a[3] / "labels.json").write_text(json.dumps(labels))
        (state / a[3] / "limits.json").write_text(json.dumps(limits))
        (state / "names.json").write_text(json.dumps(names + [a[3]]))
        print(json.dumps({"name": a[3], "phase": "Ready"}))
    else:
        print(f"error: unexpected argument {a}", file=sys.stderr)
        sys.exit(2)
    """)


@pytest.fixture
def host(tmp_path):
    binary = tmp_path / "openshell"
    binary.write_text(CLI)
    binary.chmod(0o755)
    (tmp_path / "names.json").write_text(json.dumps(["a", "b", "c"]))
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "rev-001.json").write_text(json.dumps(POLICY))
    return tmp_path


def args(host, **extra):
    return {"openshell": str(host / "openshell"), "backup_dir": str(host / "backup"), "landlock_hard_requirement": False,
            **extra}


def active(host, name):
    return json.loads(sorted((host / name).glob("rev-*.json"))[-1].read_text())


def enforcement(host, name):
    return active(host, name)["network_policies"]["web"]["endpoints"][0].get("enforcement")


def policy_gets(host, name):
    calls = [json.loads(line) for line in (host / "calls.jsonl").read_text().splitlines()]
    return sum(1 for c in calls if c[:3] == ["policy", "get", name])


def assert_only_a_failed(res, total):
    assert res["failed_sandboxes"] == ["a"], res
    assert res["msg"].startswith(f"sandbox_policy failed on 1 of {total} sandboxes: a: sandbox 'a'"), res["msg"]
    assert res["sandboxes"]["a"]["failed"] is True and "'a'" in res["sandboxes"]["a"]["msg"], res["sandboxes"]["a"]
    assert res["changed"] is True, res  # the sandboxes after it were changed
    assert not any(res["sandboxes"][n].get("failed") for n in res["sandboxes"] if n != "a"), res


@pytest.mark.oracle("self")
@pytest.mark.parametrize("fault, reason", [("refuse-set", "the new policy revision failed to load"),
                                           ("garbled", "the policy command printed no policy")])
def test_first_sandbox_failing_does_not_stop_the_others(host, module_runner, fault, reason):
    (host / "a" / fault).touch()
    ok, res = module_runner(M.main, args(host))
    assert not ok, res
    assert [enforcement(host, n) for n in ("a", "b", "c")] == [None, "enforce", "enforce"], res  # b and c still hardened
    assert_only_a_failed(res, 3)
    assert reason in res["sandboxes"]["a"]["msg"], res["sandboxes"]["a"]
    assert enforcement(host, "a") is None and len(list((host / "a").glob("rev-*"))) == 1  # a is as it was
    for name in ("b", "c"):  # hardened although a, before them, failed
        assert res["sandboxes"][name]["live_changed"] and res["sandboxes"][name]["after"]["l7_enforce"] == 1, res
        assert enforcement(host, name) == "enforce"
        assert (host / "backup" / f"{name}.json").is_file()
    (host / "a" / fault).unlink()
    (host / "calls.jsonl").unlink()
    ok, res = module_runner(M.main, args(host))
    assert ok and res["changed"] and "failed_sandboxes" not in res, res
    assert res["sandboxes"]["a"]["live_changed"] and res["sandboxes"]["a"]["after"]["l7_enforce"] == 1
    assert not res["sandboxes"]["b"]["live_changed"] and enforcement(host, "a") == "enforce"
    # b's "after" follows b's own change (none), not a's: its policy is read once, not again for "after"
    assert policy_gets(host, "b") == 1 and policy_gets(host, "a") == 2
    ok, res = module_runner(M.main, args(host))
    assert ok and not res["changed"], res


@pytest.mark.oracle("self")
def test_restoring_goes_on_past_a_sandbox_that_cannot_be_restored(host, module_runner):
    assert module_runner(M.main, args(host))[0]
    (host / "a" / "refuse-set").touch()
    ok, res = module_runner(M.main, args(host, state="absent"))
    assert not ok, res
    assert [enforcement(host, n) for n in ("a", "b", "c")] == ["enforce", None, None], res  # b and c still restored
    assert_only_a_failed(res, 3)
    assert enforcement(host, "a") == "enforce" and (host / "backup" / "a.json").is_file()  # kept for the next try
    for name in ("b", "c"):
        assert res["sandboxes"][name]["live_changed"] and enforcement(host, name) is None
        assert not (host / "backup" / f"{name}.json").exists()


@pytest.mark.oracle("self")
@pytest.mark.parametrize("check_mode", [False, True])
def test_a_missing_image_fails_that_sandbox_only(host, module_runner, check_mode):
    ok, res = module_runner(M.main, args(host, sandboxes=["a", "b"], landlock_hard_requirement=True, recreate=True,
                                         images={"b": "ghcr.io/example/agent@sha256:0123"}), check_mode=check_mode)
    assert not ok, res
    assert_only_a_failed(res, 2)
    assert "give its image in images" in res["sandboxes"]["a"]["msg"]
    assert res["sandboxes"]["b"]["recreated"], res
    assert active(host, "a")["landlock"] == {"compatibility": "best_effort"}
    assert active(host, "b")["landlock"] == {"compatibility": "best_effort" if check_mode else "hard_requirement"}


@pytest.mark.oracle("self")
def test_a_failed_recreation_after_the_delete_counts_as_changed(host, module_runner):
    (host / "a" / "refuse-create").touch()
    ok, res = module_runner(M.main, args(host, sandboxes=["a"], landlock_hard_requirement=True, recreate=True,
                                         images={"a": "ghcr.io/example/agent@sha256:0123"}))
    assert not ok and res["failed_sandboxes"] == ["a"], res
    assert res["changed"] is True, res  # the sandbox was deleted
    assert "could not be re-created" in res["sandboxes"]["a"]["msg"] and res["sandboxes"]["a"]["rc"] == 1, res
    assert json.loads((host / "names.json").read_text()) == ["b", "c"]


@pytest.mark.oracle("self")
def test_a_gateway_that_cannot_list_its_sandboxes_fails_before_any_sandbox(host, module_runner):
    (host / "names.json").unlink()  # the CLI stand-in then dies on every call
    ok, res = module_runner(M.main, args(host))
    assert not ok and "failed_sandboxes" not in res and "sandboxes" not in res, res
    assert "`" in res["msg"] and "exited 1" in res["msg"], res["msg"]
    assert not (host / "backup").exists()


@pytest.mark.oracle("self")
def test_limits_go_with_the_re_creation_and_are_not_repeated(host, module_runner):
    """With resources, a sandbox without the limits label is re-created with --memory and the label (its other labels
    kept), a second run does nothing, a bad quantity fails before any sandbox is touched, recreate=false reports it
    pending, and state=absent re-creates it without limits."""
    (host / "a" / "labels.json").write_text(json.dumps({"team": "ml"}))
    hard = args(host, sandboxes=["a"], resources={"memory": "4Gi"}, recreate=True, images={"a": "img"})
    ok, res = module_runner(M.main, {**hard, "resources": {"memory": "1.5Gi"}})
    assert not ok and "resources.memory '1.5Gi'" in res["msg"] and not (host / "backup").exists(), res
    ok, res = module_runner(M.main, args(host, sandboxes=["a"], resources={"memory": "4Gi"}))
    assert ok and res["sandboxes"]["a"]["static_pending"] == ["resources"] and not res["sandboxes"]["a"]["recreated"], res
    ok, res = module_runner(M.main, hard, check_mode=True)
    assert ok and res["changed"] and res["sandboxes"]["a"]["recreated"], res
    assert not (host / "a" / "limits.json").exists()  # check mode re-created nothing
    ok, res = module_runner(M.main, hard)
    assert ok and res["changed"] and res["sandboxes"]["a"]["recreated"], res
    assert json.loads((host / "a" / "limits.json").read_text()) == {"memory": "4Gi"}
    assert json.loads((host / "a" / "labels.json").read_text()) == {"team": "ml", "agentsec.nemoclaw/limits": "memory-4Gi"}
    assert res["sandboxes"]["a"]["before"]["limits"] == "" and res["sandboxes"]["a"]["after"]["limits"] == "memory-4Gi"
    ok, res = module_runner(M.main, hard)
    assert ok and not res["changed"], res
    ok, res = module_runner(M.main, {**hard, "state": "absent"})
    assert ok and res["changed"] and res["sandboxes"]["a"]["recreated"], res
    assert json.loads((host / "a" / "limits.json").read_text()) == {}
    assert json.loads((host / "a" / "labels.json").read_text()) == {"team": "ml"}
    assert not (host / "backup" / "a.json").exists()
