"""The policy lines' check L1.landlock_hard_requirement (plugins/module_utils/_verify_policy.py): decided from the
gateway's active policy, read on the host (sandbox_verify.policy_params), never from inside the sandbox."""
from __future__ import annotations

import sys

import pytest

from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _verify as V
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _verify_policy as VP


def run(params):
    probe, decide = VP.plan(params)["L1.landlock_hard_requirement"]
    obs = probe()
    return "skipped" if "skip" in obs else decide(obs, {})[0]


@pytest.mark.oracle("self")
def test_catalogue_has_the_verify_format():
    for cid, meta in VP.CHECKS.items():
        assert len(meta) == 5 and meta[0] in V.LAYERS and cid.startswith(meta[0] + ".") and meta[2] in V.SEVERITY_RANK


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize(("value", "want"), [("hard_requirement", V.PASS), ("best_effort", V.FAIL), (None, "skipped")])
def test_decision(value, want):
    assert run({"policy_landlock_compatibility": value} if value else {}) == want


@pytest.mark.oracle("self")
def test_policy_params_hand_the_value_from_the_policy_command(tmp_path):
    from ansible_collections.agentsec.nemoclaw.plugins.modules import sandbox_verify  # noqa: PLC0415

    out = tmp_path / "policy.txt"
    out.write_text("Version: 3\n---\nversion: 1\nfilesystem_policy:\n  include_workdir: true\n  read_only:\n  - /usr\n"
                   "  read_write:\n  - /tmp\nlandlock:\n  compatibility: hard_requirement\n")
    params = {"policy_command": [sys.executable, "-c", f"print(open({str(out)!r}).read())", "{sandbox}"],
              "exec_timeout": 30, "workdir": "/sandbox", "extensions": ["_verify_policy"]}
    found = sandbox_verify.policy_params(params, "sb", {})
    assert found["policy_landlock_compatibility"] == "hard_requirement"
    assert found["policy_read_only"] == ["/usr"] and "/tmp" in found["writable_paths"]


@pytest.mark.oracle("self")
def test_the_landlock_block_is_read_only_where_its_check_runs(tmp_path):
    # a target without the policy lines' extension (k3s, lab) does not depend on the landlock block's form: an
    # unreadable value there fails only the target whose check reads it
    from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _policy  # noqa: PLC0415
    from ansible_collections.agentsec.nemoclaw.plugins.modules import sandbox_verify  # noqa: PLC0415

    out = tmp_path / "policy.txt"
    out.write_text("---\nversion: 1\nfilesystem_policy:\n  read_only:\n  - /usr\nlandlock:\n  compatibility: sometimes\n")
    params = {"policy_command": [sys.executable, "-c", f"print(open({str(out)!r}).read())"],
              "exec_timeout": 30, "workdir": "/sandbox", "extensions": []}
    found = sandbox_verify.policy_params(params, "sb", {})
    assert "policy_landlock_compatibility" not in found and found["policy_read_only"] == ["/usr"]
    with pytest.raises(_policy.PolicyError, match="sometimes"):
        sandbox_verify.policy_params({**params, "extensions": ["_verify_policy"]}, "sb", {})


@pytest.mark.oracle("kernel")
@pytest.mark.parametrize(("argv", "want"), [([sys.executable, "-c", "import sys; sys.stderr.write('denied'); sys.exit(4)"],
                                             "exited 4: denied"),
                                            (["/nonexistent/openshell"], "failed: [Errno 2]"),
                                            ([sys.executable, "-c", "import time; time.sleep(5)"], "timed out")])
def test_a_failing_host_command_names_what_it_was(argv, want):
    from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _sandbox_exec  # noqa: PLC0415

    with pytest.raises(_sandbox_exec.ExecError) as err:
        _sandbox_exec.host_command(argv, None, 0.5, "the policy command")
    assert str(err.value).startswith("the policy command") and want in str(err.value), err.value


@pytest.mark.oracle("ansible-core")
def test_every_targets_extensions_pass_the_verify_roles_argument_spec():
    # the role validates verify_extensions against its choices before any task (ansible-core's role argument
    # validation); a new extension missing there stopped the migrate playbook on the openshell_host line
    import pathlib  # noqa: PLC0415

    import yaml  # noqa: PLC0415

    from ansible_collections.agentsec.nemoclaw.plugins.modules import sandbox_verify  # noqa: PLC0415

    root = pathlib.Path(__file__).resolve().parents[4]
    spec = yaml.safe_load((root / "roles/verify/meta/argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    choices = spec["verify_extensions"]["choices"]
    assert sorted(choices) == sorted(sandbox_verify.LINE_EXTENSIONS)
    for path in (root / "targets").glob("*.yml"):
        extensions = ((yaml.safe_load(path.read_text()).get("verify") or {}).get("extensions")) or []
        assert set(extensions) <= set(choices), (path.name, extensions)
