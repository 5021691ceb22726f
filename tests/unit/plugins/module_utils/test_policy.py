"""Reading the filesystem part of `openshell policy get --full` (v0.0.26 run.rs L4551-4601, serde_yml of PolicyFile)."""
from __future__ import annotations

import json
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


def _gateway():
    """The k3s stand-in's gateway module: its canonical_policy prints a policy as `policy get --full` does."""
    import sys  # noqa: PLC0415

    sys.path.insert(0, str(ROOT / "roles/lab/files/openshell/cluster"))
    try:
        import gateway  # noqa: PLC0415
    finally:
        sys.path.pop(0)
    return gateway


def _fs(text):
    return P.filesystem_from(P.policy_document(text))


@pytest.mark.oracle("upstream")
def test_reads_the_canonical_form():
    doc, revision = P.policy_output(CANONICAL)
    assert P.filesystem_from(doc) == {"include_workdir": False, "read_only": ["/usr", "/sandbox", "/odd path"],
                                      "read_write": ["/tmp", "/sandbox/.openclaw-data"]}
    # the status lines before `---` (run.rs @v0.0.26 L4568-4571; Status is the PolicyStatus name)
    assert revision == {"version": 2, "hash": "0f3c", "status": "Loaded"}


@pytest.mark.oracle("upstream")
def test_agrees_with_a_yaml_parser_on_nemoclaws_policy_file():
    # NemoClaw v0.0.21's policy file (stand-in copy of nemoclaw-blueprint/policies/openclaw-sandbox.yaml @db3453b5)
    # as the gateway prints it back (block style; the file itself has flow mappings, which no gateway output has);
    # PyYAML is the referee for what the file says
    text = NEMOCLAW_POLICY.read_text()
    want = yaml.safe_load(text)["filesystem_policy"]
    got = _fs(_gateway().canonical_policy(text))
    assert got == {"include_workdir": want.get("include_workdir", False), "read_only": want["read_only"],
                   "read_write": want["read_write"]}
    assert "/sandbox" in got["read_only"] and "/sandbox" not in got["read_write"]


@pytest.mark.oracle("upstream")
def test_no_revision_and_no_filesystem_part():
    assert P.policy_output("") is None  # "No policy history found" goes to stderr (run.rs L4597)
    assert P.policy_output("Version:      3\nHash:         ab\n") is None  # no --full: status lines only
    assert P.filesystem_from(P.policy_document("version: 1\nnetwork_policies: {}\n")) is None


@pytest.mark.oracle("self")
@pytest.mark.parametrize("text, fragment", [
    ("filesystem_policy:\n  read_only: /usr\n", "not a sequence"),
    ("filesystem_policy:\n  read_only:\n  - usr\n", "absolute path"),
    ("filesystem_policy:\n  writable:\n  - /x\n", "unknown filesystem_policy field"),  # deny_unknown_fields
    ("filesystem_policy:\n  include_workdir: maybe\n", "not a boolean"),
    ("filesystem_policy: {read_only: [/usr]}\n", "unsupported YAML form"),  # serde_yml writes no flow mapping
    ("filesystem_policy: /usr\n", "not a mapping"),
])
def test_refuses_what_it_cannot_read(text, fragment):
    with pytest.raises(P.PolicyError, match=fragment):
        _fs(text)


@pytest.mark.oracle("upstream")
def test_the_json_form_reads_the_same_policy():
    # the host-service lines print the same PolicyFile as JSON (run.rs @v0.0.111 L6505-6569), which policy_output takes too
    doc = P.policy_document(CANONICAL.split("---\n", 1)[1])
    output = json.dumps({"sandbox": "s", "version": 2, "hash": "0f3c", "status": "loaded", "policy": doc})
    assert P.policy_output(output) == (doc, {"version": 2, "hash": "0f3c", "status": "loaded"})


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
    ("landlock:\n  compatibility: 'hard_requirement'\n", "hard_requirement"),
    ("", "best_effort"),                                                      # no landlock block: OpenShell's default
])
def test_landlock_compatibility(landlock, want):
    text = P.policy_yaml(CANONICAL.replace("landlock:\n  compatibility: best_effort\n", landlock))
    assert P.landlock_from(P.policy_document(text)) == want
    if landlock:  # the same answer a YAML parser gives
        assert yaml.safe_load(text)["landlock"]["compatibility"] == want


@pytest.mark.oracle("self")
def test_landlock_compatibility_refuses_an_unknown_value():
    with pytest.raises(P.PolicyError, match="neither best_effort nor hard_requirement"):
        P.landlock_from(P.policy_document("landlock:\n  compatibility: strict\n"))


# --- the whole document (policy_document): what sandbox_policy reads on hosts without a YAML library -----------------

POLICY_FILES = sorted((ROOT / "tests/standins").rglob("policies/**/*.yaml")) + [ROOT / "roles/lab/files/openshell/sandbox/policy.yaml"]


class _Indented(yaml.SafeDumper):
    """Block style with sequences indented under their key (the other layout a YAML writer may choose)."""

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


def _canonical_forms():
    """Every policy file of the stand-ins (NemoClaw's baseline and presets, the lab image's policy) as the k3s stand-in's
    gateway prints it for `policy get --full` (serde_yml's block style: sequences at the key's indentation), and with
    indented sequences; PyYAML reads each to the same document."""
    gateway = _gateway()
    import jinja2  # noqa: PLC0415

    template = (ROOT / "roles/lab/templates/lab-policy.yaml.j2").read_text()
    sources = [(str(path.relative_to(ROOT)), path.read_text()) for path in POLICY_FILES]
    sources.append(("lab-policy.yaml.j2", jinja2.Template(template).render(lab_allowed_hosts=["allowed.lab", "b.lab"],
                                                                           lab_subnet="172.30.99.0/24")))
    forms = []
    for name, source in sources:
        doc = yaml.safe_load(source)
        if not isinstance(doc, dict) or "version" not in doc:
            continue  # presets are fragments, not whole policies
        text = gateway.canonical_policy(source)
        forms += [pytest.param(text, id=name), pytest.param(yaml.dump(yaml.safe_load(text), Dumper=_Indented, sort_keys=False,
                                                                      default_flow_style=False), id=name + " indented")]
    return forms


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize("text", _canonical_forms())
def test_the_whole_document_reads_as_pyyaml_reads_it(text):
    assert P.policy_document(text) == yaml.safe_load(text)


@pytest.mark.oracle("self")
def test_the_whole_document_reader_types_and_refusals():
    text = ("version: 1\nnetwork_policies:\n  web-api:\n    name: 'web: api'\n    endpoints:\n    - host: api.example\n"
            "      port: 443\n      protocol: rest\n      access: read-only\n      allowed_ips: [10.0.0.0/8, '192.168.0.0/16']\n"
            "    - {}\n    binaries:\n    - path: /usr/bin/*\nlandlock:\n  compatibility: hard_requirement\nprocess: {}\n")
    assert P.policy_document(text) == yaml.safe_load(text)
    assert P.policy_document(CANONICAL.split("---\n", 1)[1]) == yaml.safe_load(CANONICAL.split("---\n", 1)[1])
    assert P.policy_document("") is None
    for bad in ("version: 1\n  stray: 2\n", "a: 1\na: 2\n", "a: |\n  text\n", "a: {b: 1}\n", "a: \"x\\ny\"\n",
                "a:\n\t- b\n"):
        with pytest.raises(P.PolicyError):
            P.policy_document(bad)
