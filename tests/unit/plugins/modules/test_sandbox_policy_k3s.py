"""sandbox_policy on the k3s line (OpenShell v0.0.26): the CLI there has no `--output json`, so the module lists the
sandboxes with the target's discovery command and reads the policy as the status lines, `---` and the YAML that
`policy get --full` prints (crates/openshell-cli/src/run.rs @v0.0.26 L4551-4601); `policy set NAME --policy FILE --wait
--timeout N` is that CLI's (main.rs @v0.0.26 L1405-1432). The CLI below prints exactly that shape and records what it
is asked; the hardening role passes landlock_hard_requirement=false there (L1 is the kubernetes backend's). No YAML
library is needed on the host (a Mac's /usr/bin/python3 has none)."""
from __future__ import annotations

import json
import sys
import textwrap

import pytest
import yaml
from ansible_collections.agentsec.nemoclaw.plugins.modules import sandbox_policy as M

# serde_yml of PolicyFile, field order of openshell-policy lib.rs @v0.0.26 L27-50: what `policy get --full` prints
YAML = """\
version: 1
filesystem_policy:
  include_workdir: true
  read_only:
  - /usr
  - /lib
  read_write:
  - /sandbox
  - /tmp
landlock:
  compatibility: best_effort
process:
  run_as_user: sandbox
  run_as_group: sandbox
network_policies:
  lab_allowed:
    name: lab-allowed-hosts
    endpoints:
    - host: allowed.lab
      port: 443
      protocol: rest
      access: read-only
      allowed_ips:
      - 172.30.99.0/24
    - host: allowed.lab
      port: 80
    binaries:
    - path: /usr/bin/*
"""

CLI = textwrap.dedent("""\
    #!/usr/bin/env python3
    import json, pathlib, sys
    import yaml
    state = pathlib.Path(sys.argv[0]).parent
    a = sys.argv[1:]
    with open(state / "calls.jsonl", "a") as fh:
        fh.write(json.dumps(a) + "\\n")
    if a[:3] == ["sandbox", "list", "--names"]:
        print("\\x1b[1mwork\\x1b[0m")
    elif a[:2] == ["policy", "get"] and a[2:] == ["work", "--full"]:
        revs = sorted(state.glob("rev-*"))
        if not revs:  # run.rs @v0.0.26 L4596-4598: nothing on stdout
            print("No policy history found for sandbox 'work'", file=sys.stderr)
            sys.exit(0)
        print(f"Version:      {len(revs)}\\nHash:         abc\\nStatus:       Loaded\\nActive:       {len(revs)}")
        print("---")
        print(revs[-1].read_text(), end="")
    elif a[:2] == ["policy", "set"] and a[2] == "work" and a[3] == "--policy" and a[5:] == ["--wait", "--timeout", "60"]:
        n = len(list(state.glob("rev-*"))) + 1
        # the gateway keeps the parsed policy and prints it back in serde_yml's block style (lib.rs @v0.0.26 L375-380)
        doc = yaml.safe_load(pathlib.Path(a[4]).read_text())
        (state / f"rev-{n:03d}").write_text(yaml.safe_dump(doc, sort_keys=False, default_flow_style=False))
        print(f"Policy version {n} loaded", file=sys.stderr)
    else:
        print(f"error: unexpected argument {a}", file=sys.stderr)
        sys.exit(2)
    """)


@pytest.fixture
def cli(tmp_path):
    binary = tmp_path / "openshell"
    binary.write_text(CLI)
    binary.chmod(0o755)
    (tmp_path / "rev-001").write_text(YAML)
    return tmp_path


def args(cli, **extra):
    binary = str(cli / "openshell")
    return {"openshell": binary, "discover": [binary, "sandbox", "list", "--names"],
            "policy_command": [binary, "policy", "get", "{sandbox}", "--full"], "landlock_hard_requirement": False,
            "backup_dir": str(cli / "backup"), **extra}


def calls(cli):
    return [json.loads(line) for line in (cli / "calls.jsonl").read_text().splitlines()]


def revisions(cli):
    return sorted(cli.glob("rev-*"))


@pytest.mark.oracle("upstream")
def test_enforces_the_l7_rule_through_policy_set_and_is_idempotent(cli, module_runner):
    ok, res = module_runner(M.main, args(cli))
    assert ok, res
    assert res["changed"] and res["sandboxes"]["work"]["live_changed"] and not res["sandboxes"]["work"]["recreated"]
    assert res["sandboxes"]["work"]["before"]["l7_audit"] == 1 and res["sandboxes"]["work"]["after"]["l7_enforce"] == 1
    assert res["sandboxes"]["work"]["static_pending"] == []  # landlock left to the kubernetes backend
    assert not any(c[:1] == ["sandbox"] and "--output" in c for c in calls(cli))  # v0.0.26 has no --output
    submitted = yaml.safe_load(revisions(cli)[-1].read_text())
    eps = submitted["network_policies"]["lab_allowed"]["endpoints"]
    assert eps[0]["enforcement"] == "enforce" and "enforcement" not in eps[1]
    assert submitted["landlock"] == {"compatibility": "best_effort"}  # the static part is what the sandbox has
    assert json.loads((cli / "backup" / "work.json").read_text())["network_policies"]["lab_allowed"]["endpoints"][0] \
        .get("enforcement") is None  # the copy taken before the change
    ok, again = module_runner(M.main, args(cli))
    assert ok and not again["changed"] and len(revisions(cli)) == 2


@pytest.mark.oracle("upstream")
def test_check_mode_plans_without_submitting_and_absent_restores(cli, module_runner):
    ok, res = module_runner(M.main, args(cli), check_mode=True)
    assert ok and res["changed"] and len(revisions(cli)) == 1 and not (cli / "backup").exists()
    assert module_runner(M.main, args(cli))[0]
    ok, res = module_runner(M.main, args(cli, state="absent"))
    assert ok and res["changed"], res
    restored = yaml.safe_load(revisions(cli)[-1].read_text())
    assert restored["network_policies"]["lab_allowed"]["endpoints"][0].get("enforcement") is None
    assert not (cli / "backup" / "work.json").exists()


@pytest.mark.oracle("upstream")
def test_no_yaml_library_is_needed_and_what_cannot_be_read_is_a_clear_failure(cli, module_runner, monkeypatch):
    monkeypatch.setitem(sys.modules, "yaml", None)  # a Mac's /usr/bin/python3: `import yaml` fails
    ok, res = module_runner(M.main, args(cli), check_mode=True)
    assert ok and res["changed"], res
    (cli / "rev-001").write_text(YAML.replace("version: 1", "version: 1\nnote: |\n  block text"))
    ok, res = module_runner(M.main, args(cli))
    assert not ok and "'work'" in res["msg"] and "unsupported YAML form" in res["msg"], res
    (cli / "rev-001").unlink()
    ok, res = module_runner(M.main, args(cli))
    assert not ok and "no policy revision" in res["msg"], res
