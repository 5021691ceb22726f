"""Reading the filesystem part of `openshell policy get --full` (v0.0.26 run.rs L4551-4601, serde_yml of PolicyFile)."""
from __future__ import annotations

import pathlib

import pytest
import yaml

from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _policy as P

ROOT = pathlib.Path(__file__).resolve().parents[4]
NEMOCLAW_POLICY = ROOT / "tests/standins/nemoclaw-repo/nemoclaw-blueprint/policies/openclaw-sandbox.yaml"

# The shape serialize_sandbox_policy writes: struct field order of PolicyFile/FilesystemDef (openshell-policy lib.rs
# @v0.0.26 L27-50), block style, sequences at the key's indentation (serde_yml / libyaml).
CANONICAL = """Version:      2
Hash:         0f3c
Status:       Loaded
Active:       2
---
version: 1
filesystem_policy:
  include_workdir: false
  read_only:
  - /usr
  - /sandbox
  - '/odd path'
  read_write:
  - /tmp
  - /sandbox/.openclaw-data
landlock:
  compatibility: best_effort
network_policies:
  pypi:
    name: pypi
"""


@pytest.mark.oracle("upstream")
def test_reads_the_canonical_form():
    fs = P.filesystem_policy(P.policy_yaml(CANONICAL))
    assert fs == {"include_workdir": False, "read_only": ["/usr", "/sandbox", "/odd path"],
                  "read_write": ["/tmp", "/sandbox/.openclaw-data"]}


@pytest.mark.oracle("upstream")
def test_agrees_with_a_yaml_parser_on_nemoclaws_policy_file():
    # NemoClaw v0.0.21's policy file (stand-in copy of nemoclaw-blueprint/policies/openclaw-sandbox.yaml @db3453b5),
    # comments and indented sequences included; PyYAML is the referee for what the file says
    text = NEMOCLAW_POLICY.read_text()
    want = yaml.safe_load(text)["filesystem_policy"]
    got = P.filesystem_policy(text)
    assert got == {"include_workdir": want.get("include_workdir", False), "read_only": want["read_only"],
                   "read_write": want["read_write"]}
    assert "/sandbox" in got["read_only"] and "/sandbox" not in got["read_write"]


@pytest.mark.oracle("upstream")
def test_no_revision_and_no_filesystem_part():
    assert P.policy_yaml("") is None  # "No policy history found" goes to stderr (run.rs L4597)
    assert P.filesystem_policy("version: 1\nnetwork_policies: {}\n") is None


@pytest.mark.oracle("self")
@pytest.mark.parametrize("text, fragment", [
    ("filesystem_policy:\n  read_only: [/usr, /lib]\n", "block sequence"),
    ("filesystem_policy:\n  read_only:\n  - usr\n", "absolute path"),
    ("filesystem_policy:\n  writable:\n  - /x\n", "unknown filesystem_policy field"),
    ("filesystem_policy:\n  include_workdir: maybe\n", "not a boolean"),
    ("filesystem_policy: {read_only: [/usr]}\n", "not a block mapping"),
])
def test_refuses_what_it_cannot_read(text, fragment):
    with pytest.raises(P.PolicyError, match=fragment):
        P.filesystem_policy(text)


@pytest.mark.oracle("upstream")
def test_landlock_lists_add_the_workdir_only_with_include_workdir():
    # crates/openshell-sandbox/src/sandbox/linux/landlock.rs @v0.0.26 L15-24
    fs = {"include_workdir": True, "read_only": ["/usr"], "read_write": ["/tmp"]}
    assert P.landlock_lists(fs, "/sandbox", ["/sys/fs/cgroup"], ["/var/tmp", "/tmp"]) == (
        ["/usr", "/sys/fs/cgroup"], ["/tmp", "/sandbox", "/var/tmp"])
    assert P.landlock_lists({**fs, "include_workdir": False}, "/sandbox") == (["/usr"], ["/tmp"])


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize(("landlock", "want"), [
    ("landlock:\n  compatibility: best_effort\n", "best_effort"),           # the canonical block form (serde_yml)
    ("landlock:\n  compatibility: hard_requirement\n", "hard_requirement"),
    ("landlock: {compatibility: 'hard_requirement'}\n", "hard_requirement"),  # a flow mapping, as a user may write it
    ("", "best_effort"),                                                      # no landlock block: OpenShell's default
])
def test_landlock_compatibility(landlock, want):
    text = P.policy_yaml(CANONICAL.replace("landlock:\n  compatibility: best_effort\n", landlock))
    assert P.landlock_compatibility(text) == want
    if landlock:  # the same answer a YAML parser gives
        assert yaml.safe_load(text)["landlock"]["compatibility"] == want


@pytest.mark.oracle("self")
def test_landlock_compatibility_refuses_an_unknown_value():
    with pytest.raises(P.PolicyError, match="neither best_effort nor hard_requirement"):
        P.landlock_compatibility("landlock:\n  compatibility: strict\n")
