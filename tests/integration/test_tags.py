"""Every documented tag selects its tasks (issue 10 item 6), and only those of its phase.

The documented tags are read from the docs: the "Tags" table of docs/fleet.md is the list, and every other place
that names a tag (README.md, docs/*.md, the roles' argument specs, the playbooks' header comments) must name one of
its rows; every tag in the code must be in the table too. Each row is a test case here, so a tag documented without
an expectation in EXPECT fails the suite.

Oracle ansible-core: the selection is ansible-core's own. Where the tasks are imported, `ansible-playbook --list-tasks
--tags X` lists them; where a platform file is chosen at run time (`include_tasks` + `apply`), --list-tasks cannot see
inside it, so the role runs for real (`--check`, localhost, facts set so the include chooses the platform, inside a
network namespace that has only loopback; downloads come from a loopback server in it) and the ansible.posix.json
callback reports which tasks started. For each tag: (a) its expected tasks are selected, (b) no selected task belongs
to an unrelated phase - the phase of a task comes from the file it is in (FILE_PHASE), not from its tags - and (c) the
tasks that run under every tag (`always`) are checks, and every check carries `always`.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
TABLE = ROOT / "docs" / "fleet.md"
COLLECTIONS = ROOT / ".build" / "collections"
NOT_TAGS = {"always", "never"}
INCLUDES = ("ansible.builtin.include_tasks", "include_tasks", "ansible.builtin.include_role", "include_role")

# The phase of every task, from the file it is in; TASK_PHASE overrides single tasks of a file that mixes phases.
ROLE_PHASE = {"prerequisites": "base", "preflight": "preflight", "openshell_cluster": "openshell_install",
              "nemoclaw_onboard": "nemoclaw_onboard", "hardening": "sandbox", "verify": "verify", "lab": "lab"}
FILE_PHASE = {
    ("prerequisites", "tasks/validate.yml"): "check",
    ("prerequisites", "tasks/main.yml"): "dispatch",
    ("prerequisites", "tasks/macos.yml"): "nodejs",
    ("prerequisites", "tasks/macos_clt.yml"): "base",
    ("prerequisites", "tasks/macos_homebrew.yml"): "base",
    ("prerequisites", "tasks/macos_docker.yml"): "docker",
    ("prerequisites", "tasks/macos_ollama.yml"): "ollama",
    ("prerequisites", "tasks/linux.yml"): "docker",
    ("prerequisites", "tasks/linux_nodejs.yml"): "nodejs",
    ("prerequisites", "tasks/nodejs_check.yml"): "nodejs",
    ("prerequisites", "tasks/linux_ollama.yml"): "ollama",
    ("prerequisites", "tasks/ollama_models.yml"): "ollama",
    ("prerequisites", "tasks/preflight.yml"): "preflight",
    ("prerequisites", "handlers/main.yml"): "ollama",
    ("preflight", "tasks/main.yml"): "preflight",
    ("openshell_cluster", "tasks/validate.yml"): "check",
    ("openshell_cluster", "tasks/main.yml"): "check",
    ("openshell_cluster", "tasks/install.yml"): "openshell_install",
    ("openshell_cluster", "tasks/legacy_k3s.yml"): "openshell_gateway",
    ("openshell_cluster", "tasks/absent.yml"): "openshell_absent",
    ("nemoclaw_onboard", "tasks/validate.yml"): "check",
    ("nemoclaw_onboard", "tasks/validate_current.yml"): "check",
    ("nemoclaw_onboard", "tasks/main.yml"): "nemoclaw_onboard",
    ("nemoclaw_onboard", "tasks/install.yml"): "nemoclaw_install",
    ("nemoclaw_onboard", "tasks/ollama_proxy.yml"): "nemoclaw_ollama_proxy",
    ("nemoclaw_onboard", "tasks/ollama_proxy_stop.yml"): "nemoclaw_ollama_proxy",
    ("hardening", "tasks/validate.yml"): "check",
    ("hardening", "tasks/main.yml"): "ollama_firewall",
    ("hardening", "tasks/kubernetes.yml"): "sandbox",
    ("hardening", "tasks/ollama_linux.yml"): "ollama_firewall",
    ("hardening", "tasks/ollama_macos.yml"): "ollama_firewall",
    ("hardening", "tasks/policy.yml"): "sandbox",
    ("openshell_service", "tasks/main.yml"): "check",
    ("openshell_service", "tasks/validate.yml"): "check",
    ("openshell_service", "tasks/linux.yml"): "openshell_install",
    ("openshell_service", "tasks/macos.yml"): "openshell_install",
    ("openshell_service", "tasks/configure.yml"): "openshell_config",
    ("openshell_service", "tasks/service.yml"): "openshell_service",
    ("openshell_service", "tasks/register.yml"): "openshell_register",
    ("openshell_service", "tasks/sandboxes.yml"): "openshell_sandboxes",
    ("openshell_service", "tasks/absent.yml"): "openshell_absent",
    ("nemoclaw_onboard", "tasks/current.yml"): "nemoclaw_onboard",
    ("verify", "tasks/main.yml"): "verify",
    ("verify", "tasks/facts.yml"): "verify",
    ("verify", "tasks/report.yml"): "verify",
}
TASK_PHASE = {
    ("prerequisites", "Gather the platform facts the role dispatches on"): "check",
    ("prerequisites", "Install the base toolchain"): "base",
    ("prerequisites", "Restart Docker Desktop so it applies its settings"): "docker",
    ("nemoclaw_onboard", "Gather the platform facts the role needs"): "check",
    ("nemoclaw_onboard", "Check the inputs of the current NemoClaw line before any change"): "check",
    ("hardening", "Publish what hardening found and did (the role's output, hardening_report)"): "check",
    ("hardening", "Report what hardening found and did"): "check",
    # the read-only cluster check before the L4 policy step: part of every layer fix of the kubernetes backend
    ("hardening", "Check the cluster before the policy step changes anything (kubernetes backend)"): "sandbox",
}
PLAYBOOK_PHASE = {"site.yml": "check", "verify.yml": "check"}  # tasks of the plays themselves: the switch checks
ARG_SPEC_TASK = "Validating arguments against arg spec"

# What each documented tag must select, per playbook of its row, and the phases it may select at all. `run`: the tasks
# a real run must start per platform, for tags whose tasks sit in a platform file chosen at run time; `may_fail`: the
# one task of such a run allowed to fail (a macOS command this Linux host does not have).
PREREQ_PHASES = {"dispatch", "base", "docker", "nodejs", "ollama", "preflight"}
LAYER = {"phases": {"sandbox"},
         "listed": {"site": ["hardening : Harden (or restore) the sandboxes' pod templates and roll their pods"],
                    "harden": ["hardening : Harden (or restore) the sandboxes' pod templates and roll their pods"]}}
EXPECT = {
    "prerequisites": {
        "phases": PREREQ_PHASES,
        "listed": {"site": ["prerequisites : Prepare a Linux host", "prerequisites : Prepare a macOS host",
                            "prerequisites : List the models Ollama has", "preflight : Probe the kernel the sandboxes run on (inside the Docker VM on macOS)"]},
        "run": {"Linux": ["Install the base toolchain", "Install Docker Engine", "Download the Node.js tarball",
                          "Write the Ollama systemd unit"],
                "Darwin": ["Look for the Xcode Command Line Tools"]},
        "may_fail": {"Darwin": "List the offered updates"},
    },
    "docker": {
        "phases": {"dispatch", "docker"},
        "listed": {"site": ["prerequisites : Prepare a Linux host", "prerequisites : Prepare a macOS host"]},
        "run": {"Linux": ["Install Docker Engine", "Start Docker Engine now and at boot", "Wait for the Docker daemon"],
                "Darwin": ["Download the Docker Desktop DMG", "Merge the resource settings", "Start Docker Desktop headless"]},
    },
    "nodejs": {
        "phases": {"dispatch", "nodejs"},
        "listed": {"site": ["prerequisites : Prepare a Linux host", "prerequisites : Prepare a macOS host"]},
        "run": {"Linux": ["Read the installed Node.js version", "Download the Node.js tarball", "Read the Node.js version"],
                "Darwin": ["Install Node.js with Homebrew", "Read the Node.js version"]},
    },
    "ollama": {
        "phases": {"dispatch", "ollama", "ollama_firewall"},
        "listed": {"site": ["prerequisites : List the models Ollama has", "prerequisites : Prepare a Linux host",
                            "hardening : Write the Ollama exposure ruleset", "hardening : Write the Ollama anchor"],
                   "harden": ["hardening : Write the Ollama exposure ruleset", "hardening : Write the Ollama anchor"]},
        "run": {"Linux": ["Read the installed Ollama version", "Write the Ollama systemd unit", "List the models Ollama has"],
                "Darwin": ["Install Ollama with Homebrew", "Write the Ollama LaunchDaemon", "List the models Ollama has"]},
    },
    "preflight": {
        "phases": {"preflight"},
        "listed": {"site": ["prerequisites : See whether an OpenShell cluster container is already running",
                            "preflight : Probe the kernel the sandboxes run on (inside the Docker VM on macOS)"],
                   "preflight": ["preflight : Probe the kernel the sandboxes run on (inside the Docker VM on macOS)",
                                 "preflight : Require what the layers depend on"]},
    },
    "openshell": {
        "phases": {"openshell_install", "openshell_gateway", "openshell_absent", "openshell_config", "openshell_service",
                   "openshell_register", "openshell_sandboxes"},
        "listed": {"site": ["openshell_cluster : Put the CLI in place", "openshell_cluster : Start, resume or recreate the gateway",
                            "openshell_cluster : Destroy the gateway"]},
    },
    "openshell_install": {
        "phases": {"openshell_install"},
        "listed": {"site": ["openshell_cluster : Download the release tarball (checksum verified)", "openshell_cluster : Put the CLI in place"]},
    },
    "openshell_config": {
        "phases": {"openshell_config"},
        "listed": {"site": ["openshell_service : Write gateway.env (DOCKER_HOST, telemetry off)"]},
    },
    "openshell_service": {
        "phases": {"openshell_service"},
        "listed": {"site": ["openshell_service : Run the gateway's systemd user unit (restarted when the package or its "
                            "configuration changed)"]},
    },
    "openshell_register": {
        "phases": {"openshell_register"},
        "listed": {"site": ["openshell_service : Register the local gateway (gateway add --local imports the service's mTLS bundle)"]},
    },
    "openshell_sandboxes": {
        "phases": {"openshell_sandboxes"},
        "listed": {"site": ["openshell_service : Create or delete the declared sandboxes"]},
    },
    "openshell_gateway": {
        "phases": {"openshell_gateway"},
        "listed": {"site": ["openshell_cluster : Start, resume or recreate the gateway",
                            "openshell_cluster : Wait until the gateway reports Connected"]},
    },
    "nemoclaw": {
        "phases": {"nemoclaw_install", "nemoclaw_onboard", "nemoclaw_ollama_proxy"},
        "listed": {"site": ["nemoclaw_onboard : Check out NemoClaw at {{ nemoclaw_onboard_git_ref }}",
                            "nemoclaw_onboard : Onboard (or remove) the sandbox", "nemoclaw_onboard : Write the proxy's systemd unit"]},
    },
    "nemoclaw_install": {
        "phases": {"nemoclaw_install"},
        "listed": {"site": ["nemoclaw_onboard : Check out NemoClaw at {{ nemoclaw_onboard_git_ref }}",
                            "nemoclaw_onboard : Link the nemoclaw CLI into the npm prefix (its lifecycle scripts do not run)"]},
    },
    "nemoclaw_onboard": {
        "phases": {"nemoclaw_onboard", "nemoclaw_ollama_proxy"},
        "listed": {"site": ["nemoclaw_onboard : Onboard (or remove) the sandbox", "nemoclaw_onboard : Report the sandbox"]},
    },
    "nemoclaw_ollama_proxy": {
        "phases": {"nemoclaw_ollama_proxy"},
        "listed": {"site": ["nemoclaw_onboard : Write the Ollama auth proxy launcher",
                            "nemoclaw_onboard : Keep the proxy service started and enabled at boot (systemd)"]},
    },
    "harden": {
        "phases": {"sandbox", "ollama_firewall"},
        "listed": {"site": ["hardening : Harden (or restore) the sandboxes' pod templates and roll their pods",
                            "hardening : Load the Ollama exposure ruleset"],
                   "harden": ["hardening : Harden (or restore) the sandboxes' pod templates and roll their pods",
                              "hardening : Load the Ollama anchor"]},
    },
    "l1": LAYER, "l2": LAYER, "l3": LAYER, "l5": LAYER,
    "l4": {"phases": {"sandbox"},
           "listed": {pb: ["hardening : Harden (or restore) every sandbox through its OpenShell policy"] for pb in ("site", "harden")}},
    "l6": {"phases": {"sandbox", "ollama_firewall"},
           "listed": {pb: LAYER["listed"][pb] + ["hardening : Load the Ollama exposure ruleset"] for pb in ("site", "harden")}},
    "verify": {
        "phases": {"verify"},
        "listed": {pb: ["verify : Verify every sandbox of this host from the agent's vantage point (probes piped through the "
                        "target's exec command)", "verify : Write the reports on the controller, show the tables and the fleet "
                        "summary, apply the failure threshold"]
                   for pb in ("site", "verify", "harden")},
    },
    "lab": {"phases": {"lab"}, "listed": {"lab": ["lab : Check the lab sandboxes"]}},
}


# ---- what the docs say ----------------------------------------------------------------------------------------------

def tag_table() -> dict:
    """The "Tags" table of docs/fleet.md: {tag: (playbooks, how)}."""
    section = TABLE.read_text().split("\n## Tags\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        m = re.match(r"^\|\s*`([a-z][a-z0-9_]*)`\s*\|([^|]*)\|[^|]*\|\s*(\w+)\s*\|\s*$", line)
        if m:
            rows[m.group(1)] = (tuple(p.strip() for p in m.group(2).split(",")), m.group(3))
    return rows


MENTIONS = (
    re.compile(r"--(?:skip-)?tags[ =]([a-z0-9_,]+)"),
    re.compile(r"\btags?\s+((?:`[a-z][a-z0-9_]*`(?:\s*,\s*|\s+and\s+|\s+or\s+)?)+)"),
    re.compile(r"`\w+_enabled` / `([a-z][a-z0-9_]*)`"),
    re.compile(r"\btags? C\(([a-z][a-z0-9_]*)\)"),
)


def mentioned_tags() -> dict:
    """Every tag named outside the table: {tag: [where]}."""
    found = {}

    def note(text, where):
        for pattern in MENTIONS:
            for m in pattern.finditer(text):
                for tag in re.findall(r"[a-z][a-z0-9_]*", m.group(1).replace("`", " ")):
                    if tag not in ("and", "or"):
                        found.setdefault(tag, []).append(where)

    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text()
        if path == TABLE:
            text = text.split("\n## Tags\n", 1)[0] + "\n## " + text.split("\n## Tags\n", 1)[1].split("\n## ", 1)[1]
        note(text, path.name)
    for path in sorted(ROOT.glob("roles/*/meta/argument_specs.yml")):
        note(path.read_text(), str(path.relative_to(ROOT)))
    for path in sorted((ROOT / "playbooks").glob("*.yml")):
        header = " ".join(line[1:].strip() for line in path.read_text().splitlines() if line.startswith("#"))
        for m in re.finditer(r"\bTags\b[^:]*:\s*(.+?)\.(?:\s|$)", header):
            for tag in re.findall(r"[a-z][a-z0-9_]*", m.group(1)):
                found.setdefault(tag, []).append(path.name)
    return found


def _tasks(node):
    """Every task (and play) mapping of a YAML task file or playbook, through blocks."""
    if isinstance(node, list):
        for item in node:
            yield from _tasks(item)
    elif isinstance(node, dict):
        yield node
        for key in ("block", "rescue", "always", "tasks", "pre_tasks", "post_tasks", "handlers"):
            yield from _tasks(node.get(key))


def _as_list(value):
    return [value] if isinstance(value, str) else list(value or [])


def code_files():
    return [*sorted(ROOT.glob("roles/*/tasks/*.yml")), *sorted(ROOT.glob("roles/*/handlers/*.yml")),
            *sorted((ROOT / "playbooks").glob("*.yml"))]


def code_tags() -> dict:
    """Every tag the code sets (tasks, includes' apply, roles of a play): {tag: [file]}."""
    found = {}
    for path in code_files():
        for task in _tasks(yaml.safe_load(path.read_text())):
            tags = _as_list(task.get("tags"))
            for key in INCLUDES:
                if isinstance(task.get(key), dict):
                    tags += _as_list((task[key].get("apply") or {}).get("tags"))
            for role in task.get("roles") or []:
                if isinstance(role, dict):
                    tags += _as_list(role.get("tags"))
            for tag in set(tags) - NOT_TAGS:
                found.setdefault(tag, []).append(str(path.relative_to(ROOT)))
    return found


@functools.cache
def task_files() -> dict:
    """(role, task name) -> {file relative to the role}; (None, name) -> {playbook} for the plays' own tasks."""
    index = {}
    for path in code_files():
        rel = path.relative_to(ROOT).parts
        role, where = (rel[1], "/".join(rel[2:])) if rel[0] == "roles" else (None, rel[-1])
        for task in _tasks(yaml.safe_load(path.read_text())):
            if "name" in task and "hosts" not in task and not any(k.endswith("import_playbook") for k in task):
                index.setdefault((role, task["name"]), set()).add(where)
    return index


def phase(role, name, where=None) -> str:
    """The phase of a task from its file (or, listed by name only, from every file that has a task of that name)."""
    if name.startswith(ARG_SPEC_TASK):
        return "check"
    if (role, name) in TASK_PHASE:
        return TASK_PHASE[(role, name)]
    if role is None:
        files = {where} if where else task_files().get((None, name), set()) & set(PLAYBOOK_PHASE)
        phases = {PLAYBOOK_PHASE.get(f, f"unclassified playbook task {f}") for f in files} or {"unclassified playbook task"}
    else:
        files = {where} if where else task_files().get((role, name), set())
        phases = {FILE_PHASE.get((role, f), ROLE_PHASE.get(role, f"unclassified role {role}")) for f in files}
    assert len(phases) == 1, f"{role} : {name} is in {sorted(files)} with phases {sorted(phases)}: classify or rename it"
    return phases.pop()


# ---- ansible-playbook -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    base = tmp_path_factory.mktemp("tags")
    (base / "ansible.cfg").write_text(
        f"[defaults]\ncollections_path = {COLLECTIONS}\ninject_facts_as_vars = false\nretry_files_enabled = false\n"
        "interpreter_python = auto_silent\nstdout_callback = default\n")
    (base / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"nemoclaw_hosts": {"hosts": {
        "host-a": {"ansible_connection": "local"}, "host-b": {"ansible_connection": "local"}}}}}}))
    return base


def ansible_env(base, **extra):
    return {**os.environ, "ANSIBLE_CONFIG": str(base / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_LOCAL_TEMP": str(base / "tmp-local"), "ANSIBLE_REMOTE_TEMP": str(base / "tmp-remote"), **extra}


_LISTED = {}


def list_tasks(base, playbook, tag, collections=COLLECTIONS):
    """`ansible-playbook --list-tasks --tags TAG`: [(role or None, name, {tags})]."""
    key = (playbook, tag, collections)
    if key not in _LISTED:
        book = collections / "ansible_collections" / "agentsec" / "nemoclaw" / "playbooks" / f"{playbook}.yml"
        run = subprocess.run(["ansible-playbook", "-i", str(base / "hosts.yml"), str(book), "--list-tasks", "--tags", tag],
                             env=ansible_env(base, ANSIBLE_COLLECTIONS_PATH=str(collections)), capture_output=True,
                             text=True, cwd=base, check=False, timeout=300)
        assert run.returncode == 0, run.stdout + run.stderr
        rows = []
        for line in run.stdout.splitlines():
            if "\tTAGS: [" not in line or line.strip().startswith("play #"):
                continue
            name, tags = line.strip().split("\tTAGS: [", 1)
            m = re.match(r"^agentsec\.nemoclaw\.(\w+) : (.*)$", name)
            rows.append((m.group(1), m.group(2)) if m else (None, name))
            rows[-1] += ({t.strip() for t in tags.rstrip("]").split(",") if t.strip()},)
        _LISTED[key] = rows
    return _LISTED[key]


def label(role, name):
    return f"{role} : {name}" if role else name


def listing_problems(rows, tag, playbook) -> list:
    """What is wrong with the tasks --list-tasks --tags TAG selects: (a) expected ones missing, (b) an unrelated
    phase selected, (c) an `always` task that is not a check or a check without `always`."""
    expect = EXPECT[tag]
    listed = {label(role, name) for role, name, _tags in rows}
    problems = [f"does not select {name}" for name in expect["listed"].get(playbook, []) if name not in listed]
    if not [row for row in rows if "always" not in row[2]]:
        problems.append("selects no task of its own")
    for role, name, tags in rows:
        where = phase(role, name)
        if "always" in tags and where != "check":
            problems.append(f"{label(role, name)} runs under every tag (always) but is not a check ({where})")
        elif "always" not in tags and where == "check":
            problems.append(f"{label(role, name)} is a check without `always`: --tags {tag} would skip it")
        elif "always" not in tags and where not in expect["phases"]:
            problems.append(f"also selects {label(role, name)} ({where})")
    return problems


def run_problems(plays, stats, tag, platform) -> list:
    """The same for a real run, from the tasks the ansible.posix.json callback saw start (with their files)."""
    expect = EXPECT[tag]
    ours = [(t["task"]["name"].split(" : ", 1)[-1], t["task"]["path"], t["hosts"].get("localhost", {}))
            for p in plays for t in p["tasks"] if "/roles/" in t["task"]["path"]]
    names = {name for name, _path, _res in ours}
    problems = [f"{name} did not run" for name in expect["run"][platform] if name not in names]
    may_fail = expect.get("may_fail", {}).get(platform)
    for name, path, res in ours:
        rel = pathlib.PurePath(path.rsplit(":", 1)[0]).parts
        role, where = rel[rel.index("roles") + 1], "/".join(rel[rel.index("roles") + 2:])
        got = phase(role, name, where)
        if got != "check" and got not in expect["phases"]:
            problems.append(f"also ran {role} : {name} ({got})")
        if res.get("failed") and name != may_fail:
            problems.append(f"{name} failed: {res.get('msg')}")
    if stats["localhost"]["failures"] != (1 if may_fail else 0):
        problems.append(f"failures: {stats['localhost']}")
    return problems


DOCUMENTED = tag_table()
CASES = [(tag, pb) for tag, (playbooks, _how) in DOCUMENTED.items() for pb in playbooks]
RUNS = [(tag, platform) for tag, (_p, how) in sorted(DOCUMENTED.items()) if how == "apply" for platform in ("Linux", "Darwin")]
# The gap: the collection with every import turned into an include without `apply` - what ansible-core does with the
# tags of an include. The checks must find it on these cases (the Linux platform file's own top-level tasks carry
# their tags themselves, so --tags docker on Linux did work before: it is not a gap case).
GAP_LISTS = [("openshell_install", "site"), ("nemoclaw_install", "site"), ("nemoclaw_ollama_proxy", "site"),
             ("preflight", "site"), ("l1", "harden"), ("ollama", "harden")]
GAP_RUNS = [("nodejs", "Linux"), ("ollama", "Linux"), ("docker", "Darwin")]


@pytest.mark.oracle("ansible-core")
@pytest.mark.parametrize(("tag", "playbook"), CASES, ids=[f"{t}-{p}" for t, p in CASES])
def test_tag_selects_its_tasks_in_the_task_list(workdir, tag, playbook):
    assert tag in EXPECT, f"tag {tag!r} is documented in docs/fleet.md but test_tags.EXPECT has no expectation for it"
    problems = listing_problems(list_tasks(workdir, playbook, tag), tag, playbook)
    assert not problems, f"--tags {tag} on {playbook}.yml: {problems}"


@pytest.mark.oracle("ansible-core")
@pytest.mark.parametrize(("tag", "playbook"), GAP_LISTS, ids=[f"gap-{t}-{p}" for t, p in GAP_LISTS])
def test_the_task_list_check_finds_the_gap(workdir, gap_collections, tag, playbook):
    problems = listing_problems(list_tasks(workdir, playbook, tag, gap_collections), tag, playbook)
    assert any(p.startswith("does not select") for p in problems), problems


@pytest.mark.oracle("ansible-core")
@pytest.mark.parametrize(("tag", "platform"), RUNS, ids=[f"{t}-{p}" for t, p in RUNS])
def test_tag_reaches_into_the_platform_file(workdir, tmp_path, tag, platform):
    assert "run" in EXPECT[tag] and platform in EXPECT[tag]["run"], f"{tag!r} is documented as `apply` but EXPECT has no run"
    plays, stats = run_prerequisites(workdir, tmp_path, tag, platform)
    problems = run_problems(plays, stats, tag, platform)
    assert not problems, f"--tags {tag} on {platform}: {problems}"


@pytest.mark.oracle("ansible-core")
@pytest.mark.parametrize(("tag", "platform"), GAP_RUNS, ids=[f"gap-{t}-{p}" for t, p in GAP_RUNS])
def test_the_run_check_finds_the_gap(workdir, gap_collections, tmp_path, tag, platform):
    plays, stats = run_prerequisites(workdir, tmp_path, tag, platform, gap_collections)
    problems = run_problems(plays, stats, tag, platform)
    assert any(p.endswith("did not run") for p in problems), problems


def _gapped(node):
    """A task list with every import as an include and no tags in `apply` (in place; `become`, which an include
    does not take, moves into its `apply`)."""
    for task in _tasks(node):
        for static, dynamic in (("import_tasks", "include_tasks"), ("import_role", "include_role")):
            for prefix in ("ansible.builtin.", ""):
                if prefix + static in task:
                    spec = task.pop(prefix + static)
                    task[prefix + dynamic] = spec if isinstance(spec, dict) else {"file": spec}
        for key in INCLUDES:
            if isinstance(task.get(key), dict):
                apply = task[key].pop("apply", None) or {}
                apply.pop("tags", None)
                apply.update({k: task.pop(k) for k in ("become", "become_user") if k in task})
                if apply:
                    task[key]["apply"] = apply
    return node


@pytest.fixture(scope="module")
def gap_collections(tmp_path_factory):
    """A collection tree whose roles' task files are gapped; everything else links to the checkout."""
    base = tmp_path_factory.mktemp("gap")
    coll = base / "ansible_collections" / "agentsec" / "nemoclaw"
    coll.mkdir(parents=True)
    for entry in ROOT.iterdir():
        if entry.name not in ("roles", ".build", ".git", "tests", "molecule"):
            (coll / entry.name).symlink_to(entry)
    for role in (ROOT / "roles").iterdir():
        (coll / "roles" / role.name).mkdir(parents=True)
        for part in role.iterdir():
            if part.name != "tasks":
                (coll / "roles" / role.name / part.name).symlink_to(part)
        (coll / "roles" / role.name / "tasks").mkdir()
        for task_file in (role / "tasks").glob("*.yml"):
            gapped = _gapped(yaml.safe_load(task_file.read_text()))
            (coll / "roles" / role.name / "tasks" / task_file.name).write_text(yaml.safe_dump(gapped, sort_keys=False))
    return base


PLAY = """
- name: The prerequisites role on this host, as another platform when asked
  hosts: localhost
  connection: local
  gather_facts: true
  gather_subset: [min]
  pre_tasks:
    - name: Play the other platform
      ansible.builtin.set_fact:
        system: "{{ agentsec_test_system }}"
        os_family: "{{ agentsec_test_system }}"
        machine: arm64
        cacheable: true
      when: agentsec_test_system != ansible_facts['system']
      tags: [always]
  roles:
    - role: agentsec.nemoclaw.prerequisites
"""

# Runs inside the private network namespace: loopback up, a file server on it for the downloads, then the command.
NETNS = """
import functools, http.server, subprocess, sys, threading
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
server = http.server.ThreadingHTTPServer(("127.0.0.1", 8765), functools.partial(
    http.server.SimpleHTTPRequestHandler, directory=sys.argv[1]))
threading.Thread(target=server.serve_forever, daemon=True).start()
sys.exit(subprocess.run(sys.argv[2:], timeout=300).returncode)
"""


def run_prerequisites(base, tmp, tag, platform, collections=COLLECTIONS):
    """The real role in check mode with --tags TAG, in a network namespace with only loopback: (plays, stats) from the
    ansible.posix.json callback. Downloads come from a file server on that loopback; Homebrew, Node.js and Ollama
    would go to directories under tmp; check mode writes nothing."""
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        pytest.skip("needs root, unshare and ip for a network namespace with only loopback")
    www, home = tmp / "www", tmp / "home"
    www.mkdir()
    home.mkdir()
    files = {"node.tar.xz": b"node", "ollama.tgz": b"ollama", "Docker.dmg": b'{"product": "Docker Desktop"}',
             "Homebrew.pkg": b'{"product": "Homebrew"}'}
    for name, data in files.items():
        (www / name).write_bytes(data)
    sums = {name: "sha256:" + hashlib.sha256(data).hexdigest() for name, data in files.items()}
    url = "http://127.0.0.1:8765"
    extra = {
        "agentsec_test_system": platform, "nemoclaw_target": "openshell_k3s", "nemoclaw_user_home": str(home),
        "prerequisites_home": str(home), "ansible_python_interpreter": sys.executable,
        "ansible_become_method": "su",  # root already; this host has no sudo
        "prerequisites_cgroup_v2_required": False, "prerequisites_preflight_enabled": False,
        "prerequisites_homebrew_prefix": str(tmp / "homebrew"), "prerequisites_nodejs_install_dir": str(tmp / "nodejs"),
        "prerequisites_ollama_install_dir": str(tmp / "ollama"),
        "prerequisites_nodejs_url": f"{url}/node.tar.xz", "prerequisites_nodejs_checksum": sums["node.tar.xz"],
        "prerequisites_ollama_url": f"{url}/ollama.tgz", "prerequisites_ollama_checksum": sums["ollama.tgz"],
        "prerequisites_docker_desktop_url": f"{url}/Docker.dmg", "prerequisites_docker_desktop_checksum": sums["Docker.dmg"],
        "prerequisites_homebrew_pkg_url": f"{url}/Homebrew.pkg", "prerequisites_homebrew_pkg_checksum": sums["Homebrew.pkg"],
    }
    (tmp / "extra.json").write_text(json.dumps(extra))
    (tmp / "play.yml").write_text(PLAY)
    cmd = ["unshare", "--net", "--", sys.executable, "-c", NETNS, str(www),
           "ansible-playbook", "-i", "localhost,", str(tmp / "play.yml"), "--check", "--tags", tag, "-e", f"@{tmp / 'extra.json'}"]
    env = ansible_env(base, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_COLLECTIONS_PATH=str(collections))
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp, check=False, timeout=360)
    assert run.stdout.strip().startswith("{"), run.stdout[-2000:] + run.stderr[-3000:]
    out = json.loads(run.stdout)
    return out["plays"], out["stats"]


# ---- the docs, the tests and the code name the same tags ----------------------------------------------------------------

@pytest.mark.oracle("self")
def test_the_tag_table_is_what_the_tests_expect():
    assert DOCUMENTED, "docs/fleet.md has no Tags table"
    assert set(EXPECT) == set(DOCUMENTED), (sorted(set(EXPECT) - set(DOCUMENTED)), sorted(set(DOCUMENTED) - set(EXPECT)))
    for tag, (playbooks, how) in DOCUMENTED.items():
        assert how in ("import", "apply"), (tag, how)
        assert set(playbooks) == set(EXPECT[tag]["listed"]), (tag, playbooks, sorted(EXPECT[tag]["listed"]))
        assert (how == "apply") == ("run" in EXPECT[tag]), f"{tag}: documented as {how}"
        for pb in playbooks:
            assert (ROOT / "playbooks" / f"{pb}.yml").is_file(), (tag, pb)


@pytest.mark.oracle("self")
def test_every_tag_named_in_the_docs_is_in_the_table():
    mentioned = mentioned_tags()
    assert {"prerequisites", "docker", "l1", "verify"} <= set(mentioned), sorted(mentioned)  # the collector finds them
    stray = {tag: where for tag, where in mentioned.items() if tag not in DOCUMENTED}
    assert not stray, f"tags named in the docs but missing from the Tags table of docs/fleet.md: {stray}"


@pytest.mark.oracle("self")
def test_every_tag_in_the_code_is_documented():
    in_code = code_tags()
    assert set(in_code) == set(DOCUMENTED), {
        "in the code, not in the table": {t: w for t, w in in_code.items() if t not in DOCUMENTED},
        "in the table, not in the code": sorted(set(DOCUMENTED) - set(in_code))}


@pytest.mark.oracle("self")
def test_a_dynamic_include_hands_its_tags_on():
    """ansible-core does not give an include's tags to the included tasks; `apply` must (or an import instead)."""
    offenders = []
    for path in code_files():
        for task in _tasks(yaml.safe_load(path.read_text())):
            for key in INCLUDES:
                if key not in task:
                    continue
                tags = set(_as_list(task.get("tags"))) - NOT_TAGS
                spec = task[key] if isinstance(task[key], dict) else {}
                applied = set(_as_list((spec.get("apply") or {}).get("tags")))
                if "always" in _as_list(task.get("tags")) and "always" not in applied:
                    offenders.append(f"{path.relative_to(ROOT)}: {task.get('name')} is `always` but its tasks are not")
                if tags and not (applied and applied <= tags):
                    offenders.append(f"{path.relative_to(ROOT)}: {task.get('name')} tags {sorted(tags)}, apply {sorted(applied)}")
    assert not offenders, offenders


@pytest.mark.oracle("self")
def test_the_phase_map_classifies_every_task():
    """Every task of a tagged role has exactly one phase (a renamed or new file must be classified)."""
    for (role, name), files in task_files().items():
        if role is not None and role in ROLE_PHASE:
            phase(role, name)
        for where in files:
            if role is not None:
                assert (role, where) in FILE_PHASE or role == "lab", f"roles/{role}/{where} is not in FILE_PHASE"
