"""Documented names stay in step with what the collection declares.

1. Every role variable the docs name (`<role>_...` in docs/*.md and README.md) is an option of that role's
   meta/argument_specs.yml (or a plugin of the collection that carries the role's prefix, such as a filter).
2. Every snake_case name the docs write as code (inline `code`, YAML keys and `name=` in fenced blocks) is something
   that exists: a module option, choice or return key (read with ansible-core's own doc loader, doc fragments
   merged), a role option or variable, a plugin, playbook or inventory variable, a function or report key of the
   collection's code, a test, an Ansible keyword, special variable or setting, or one of the few outside names
   listed in EXTERNAL with their source. A miss is reported with its file, line and the closest option names; this is
   what catches a doc naming an option that was renamed (docs/verify.md once said `secret_paths` for
   `config_scan_paths`).
3. Every option of a role's argument specs and of a module's argument spec is named somewhere in docs/ or README.md.
   The options not documented yet are listed in UNDOCUMENTED, a ratchet: a new undocumented option fails, and so
   does a listed option once it is documented (take it off the list).
"""
from __future__ import annotations

import ast
import difflib
import importlib
import os
import pathlib
import re

import ansible.constants as C
import pytest
import yaml
from ansible.playbook.block import Block
from ansible.playbook.play import Play
from ansible.playbook.role_include import IncludeRole
from ansible.playbook.task import Task
from ansible.plugins.loader import fragment_loader
from ansible.utils.plugin_docs import get_docstring

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "meta" / "argument_specs.yml").is_file())
SNAKE = re.compile(r"(?<![\w.$/<-])([a-z][a-z0-9]*(?:_[a-z0-9]+)+)(?![\w.(/>-])")
INLINE = re.compile(r"`([^`]+)`")
FENCE = re.compile(r"^```")
CODE_KEY = re.compile(r"^\s*(?:-\s+)?([a-z][a-z0-9_]*):(?:\s|$)|\b([a-z][a-z0-9_]*)=")

# Names from outside the collection that the docs quote, with where they are defined.
EXTERNAL = {
    "io_uring_setup": "syscall, io_uring_setup(2)",
    "seccomp_data": "struct seccomp_data, include/uapi/linux/seccomp.h",
    "sock_filter": "struct sock_filter, include/uapi/linux/filter.h",
    "landlock_restrict_self": "syscall, landlock_restrict_self(2)",
    "best_effort": "OpenShell's Landlock compatibility mode (crates/openshell-sandbox, v0.0.26)",
    "sandbox_template_to_k8s": "OpenShell v0.0.26 server function (docs/paper-vs-source.md cites it)",
    "remote_tmp": "ansible.cfg [defaults] remote_tmp (shell plugin option)",
    "inventory_hostname": "Ansible special variable",
    "playbook_dir": "Ansible special variable",
    "tasks_from": "ansible.builtin.include_role option",
    "cap_drop": "Docker's container option (docker run --cap-drop; compose and the Docker SDK spell it cap_drop)",
    "posix_spawn": "C library function, posix_spawn(3) (POSIX; glibc implements it with clone)",
    "name_to_handle_at": "syscall, name_to_handle_at(2)",
    "set_mempolicy": "syscall, set_mempolicy(2)",
    "clone_flags": "parameter of SYSCALL_DEFINE5(clone) in the kernel's kernel/fork.c (lower_32_bits(clone_flags))",
    "handled_access_fs": "field of struct landlock_ruleset_attr, include/uapi/linux/landlock.h; landlock(7)",
    "rtnetlink_rcv_msg": "kernel function, net/core/rtnetlink.c",
    "mem_open": "kernel function, fs/proc/base.c (open of /proc/<pid>/mem)",
    "proc_mem_open": "kernel function, fs/proc/base.c (the access check mem_open makes)",
    "max_user_watches": "sysctl fs.inotify.max_user_watches, inotify(7)",
    "uv_interface_addresses": "libuv function, docs.libuv.org misc.html (Node.js os.networkInterfaces() calls it)",
    "uv_get_constrained_memory": "libuv function, docs.libuv.org misc.html (the cgroup memory limit)",
    "standing_intents_fts_config": ("SQLite FTS5 shadow table (<table>_config, sqlite.org/fts5.html) of OpenClaw 2026.9.6's "
                                    "standing_intents_fts (dist/openclaw-agent-board-schema-vd3Vff_q.mjs:3, docs/openclaw.md)"),
    "allow_inet": ("variable of OpenShell crates/openshell-sandbox/src/sandbox/linux/seccomp.rs @v0.0.26 L33, L53-58 "
                   "(roles/lab/files/openshell/supervisor/upstream_filter.py cites it)"),
    "min_openshell_version": "key of NemoClaw's nemoclaw-blueprint/blueprint.yaml (@db3453b5, docs/upstream-review.md)",
    "max_openshell_version": "key of NemoClaw's nemoclaw-blueprint/blueprint.yaml (@db3453b5, docs/upstream-review.md)",
}


# ---- what the collection declares ---------------------------------------------------------------------------

def _keys(tree, out: set, child=("suboptions", "contains", "options")) -> set:
    for name, spec in (tree or {}).items():
        out.add(name)
        if isinstance(spec, dict):
            out.update(spec.get("aliases") or [])
            out.update(str(c) for c in spec.get("choices") or [] if isinstance(c, str))
            for key in child:
                if isinstance(spec.get(key), dict):
                    _keys(spec[key], out, child)
    return out


def _plugin_doc(path: pathlib.Path):
    found = get_docstring(str(path), fragment_loader, collection_name="agentsec.nemoclaw")
    return found[0] or {}, found[2] or {}


def module_options() -> dict[str, set]:
    """Each module's options (fragments merged, suboptions, aliases), as ansible-doc reads them."""
    return {p.stem: _keys(_plugin_doc(p)[0].get("options"), set()) - {"attributes"}
            for p in sorted((ROOT / "plugins" / "modules").glob("*.py"))}


def module_names_and_returns() -> set:
    names = set()
    for path in sorted((ROOT / "plugins" / "modules").glob("*.py")):
        doc, returns = _plugin_doc(path)
        names |= {path.stem} | _keys(doc.get("options"), set()) | _keys(returns, set())
    return names


def role_options() -> dict[str, set]:
    out = {}
    for role in ROLES:
        specs = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
        out[role] = set().union(*(_keys(entry.get("options"), set(), ("options",)) for entry in specs.values()))
    return out


def role_outputs() -> dict[str, set]:
    """What each role hands back to its play: public (not `__`-prefixed) names it registers or sets as facts."""
    out = {}
    for role in ROLES:
        out[role] = set()
        for path in (ROOT / "roles" / role / "tasks").glob("*.yml"):
            stack = list(yaml.safe_load(path.read_text()) or [])
            while stack:
                task = stack.pop()
                if not isinstance(task, dict):
                    continue
                for key in ("block", "rescue", "always"):
                    stack.extend(task.get(key) or [])
                facts = task.get("ansible.builtin.set_fact") or task.get("set_fact")
                names = ([task["register"]] if "register" in task else []) + list(facts if isinstance(facts, dict) else [])
                out[role] |= {n for n in names if not n.startswith("_") and n != "cacheable"}
    return out


def plugin_names() -> set:
    """Filters (FilterModule().filters()), connection plugins and their options and variables."""
    names = set()
    for path in sorted((ROOT / "plugins" / "filter").glob("*.py")):
        module = importlib.import_module(f"ansible_collections.agentsec.nemoclaw.plugins.filter.{path.stem}")
        names |= set(module.FilterModule().filters())
    for path in sorted((ROOT / "plugins" / "connection").glob("*.py")):
        doc = _plugin_doc(path)[0]
        names.add(path.stem)
        for name, spec in (doc.get("options") or {}).items():
            names |= {name} | {v["name"] for v in spec.get("vars") or []}
    return names


def yaml_names() -> set:
    """Every snake_case name in the collection's playbooks, inventories, roles and molecule scenarios (variables,
    keys, Jinja references): a documented name found there exists."""
    names = set()
    for top in ("playbooks", "inventories", "roles", "molecule"):
        for path in (ROOT / top).rglob("*"):
            if path.suffix in (".yml", ".yaml", ".j2") or (path.is_file() and top == "inventories"):
                names |= set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", path.read_text(errors="replace")))
    return names | {p.name for p in (ROOT / "molecule").iterdir() if p.is_dir()} | set(ROLES)


def python_names() -> set:
    """Functions, classes and identifier-shaped string constants (report keys) of the collection's Python, and the
    test functions of tests/."""
    names = set()
    sources = [*(ROOT / "plugins").rglob("*.py"), *(ROOT / "roles").rglob("*.py")]
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and re.fullmatch(r"\w+", node.value):
                names.add(node.value)
    for path in (ROOT / "tests").rglob("test_*.py"):
        names |= set(re.findall(r"^def (test_\w+)", path.read_text(), re.M))
    for path in (ROOT / "scripts").glob("*.sh"):  # shell functions the docs point at (ensure_venv, ...)
        names |= set(re.findall(r"^([a-z_][a-z0-9_]*)\(\)", path.read_text(), re.M))
    return names


def ansible_names() -> set:
    """Playbook keywords (Play, Block, Task, include_role attributes), connection variables and ini settings."""
    names = set(Play.fattributes) | set(Block.fattributes) | set(Task.fattributes) | set(IncludeRole.fattributes)
    names |= {v for values in C.MAGIC_VARIABLE_MAPPING.values() for v in values}
    names |= {i["key"] for d in C.config.get_configuration_definitions().values() for i in d.get("ini") or []}
    return names


@pytest.fixture(scope="module")
def vocabulary() -> set:
    words = module_names_and_returns() | plugin_names() | yaml_names() | python_names() | ansible_names()
    for options in role_options().values():
        words |= options
    return words | set(EXTERNAL)


# ---- what the docs say --------------------------------------------------------------------------------------

def _split(path: pathlib.Path) -> tuple[str, list[tuple[int, str]]]:
    """The text with fenced blocks blanked (newlines kept), and the fenced lines as (line, text)."""
    prose, fenced, inside = [], [], False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if FENCE.match(line):
            inside = not inside
            prose.append("")
        elif inside:
            fenced.append((number, line))
            prose.append("")
        else:
            prose.append(line)
    return "\n".join(prose), fenced


def doc_names(path: pathlib.Path):
    """(line, name) for snake_case names in inline code (a span may wrap onto the next line, as Markdown allows),
    and YAML keys / `name=` in fenced code blocks."""
    prose, fenced = _split(path)
    for match in INLINE.finditer(prose):
        line = prose.count("\n", 0, match.start()) + 1
        for name in SNAKE.findall(match.group(1).replace("\n", " ")):
            yield line, name
    for number, line in fenced:
        for match in CODE_KEY.finditer(line):
            name = match.group(1) or match.group(2)
            if "_" in name:
                yield number, name


def _rel(path: pathlib.Path) -> str:
    return os.path.relpath(path, ROOT)


# ---- the checks ---------------------------------------------------------------------------------------------

@pytest.mark.oracle("ansible-core")
def test_documented_role_variables_are_role_options():
    options, plugins, outputs = role_options(), plugin_names(), role_outputs()
    prefixes = sorted(ROLES, key=len, reverse=True)
    wrong = []
    for path in DOCS:
        for line, name in doc_names(path):
            role = next((r for r in prefixes if name.startswith(f"{r}_")), None)
            if role and name not in options[role] | outputs[role] and name not in plugins:
                close = difflib.get_close_matches(name, options[role], n=2)
                wrong.append(f"{_rel(path)}:{line}: `{name}` is not an option of role {role} (closest: {close})")
    assert not wrong, "\n".join(wrong)


@pytest.mark.oracle("ansible-core")
def test_documented_names_exist(vocabulary):
    every_option = set().union(*module_options().values(), *role_options().values())
    unknown = []
    for path in DOCS:
        for line, name in doc_names(path):
            if name not in vocabulary:
                close = difflib.get_close_matches(name, every_option, n=3, cutoff=0.5)
                unknown.append(f"{_rel(path)}:{line}: `{name}` names nothing the collection declares (closest options: {close})")
    assert not unknown, "\n".join(unknown)


@pytest.mark.oracle("ansible-core")
def test_a_renamed_option_in_a_doc_is_caught(vocabulary, tmp_path):
    """The claim docs/verify.md made before this test (`secret_paths`, the option is `config_scan_paths`)."""
    doc = tmp_path / "verify.md"
    doc.write_text("| `L6.no_secrets` | no key | every readable `/proc/*/environ` and `secret_paths`\n  scanned |\n")
    assert [(line, name) for line, name in doc_names(doc) if name not in vocabulary] == [(1, "secret_paths")]


# Options that no doc names yet (found when this test was written; a doc pass takes them off).
UNDOCUMENTED = {
    "role openshell_cluster": {
        "openshell_cluster_health_delay", "openshell_cluster_health_retries", "openshell_cluster_image",
        "openshell_cluster_port", "openshell_cluster_release_url", "openshell_cluster_start"},
    "role prerequisites": {
        "prerequisites_docker_desktop_checksum", "prerequisites_docker_enabled",
        "prerequisites_docker_packages", "prerequisites_home", "prerequisites_homebrew_pkg_checksum",
        "prerequisites_homebrew_prefix", "prerequisites_homebrew_version", "prerequisites_linux_packages",
        "prerequisites_nodejs_checksum", "prerequisites_nodejs_enabled", "prerequisites_nodejs_formula",
        "prerequisites_nodejs_install_dir", "prerequisites_nodejs_version", "prerequisites_ollama_checksum",
        "prerequisites_ollama_enabled", "prerequisites_ollama_formula", "prerequisites_ollama_install_dir",
        "prerequisites_ollama_launchd_label", "prerequisites_ollama_pull_timeout", "prerequisites_ollama_version",
        "prerequisites_ports", "prerequisites_preflight_enabled"},
    "module nemoclaw_sandbox": {"docker_host", "policy_mode", "probe_command", "registry", "verify_inference"},
    "module seccomp_filter": {"dest"},
    "module stack_metrics": {"docker_bin", "docker_host"},
}
# Options every file module has from ansible.builtin.files; ansible-doc documents them.
FILE_OPTIONS = {"group", "mode", "owner", "selevel", "serole", "setype", "seuser", "unsafe_writes", "attributes"}


def _documented_words() -> set:
    words = set()
    for path in DOCS:
        prose, fenced = _split(path)
        for code in [*INLINE.findall(prose), *(text for number, text in fenced)]:
            words |= set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", code))
    return words


OWNERS = [*(f"role {r}" for r in ROLES), *(f"module {p.stem}" for p in sorted((ROOT / "plugins" / "modules").glob("*.py")))]


def _top_level_options(owner: str) -> set:
    """Role options are top-level names of the argument specs; a module's suboptions and choices are documented
    with the module (ansible-doc), so only its top-level options count here."""
    kind, name = owner.split()
    if kind == "module":
        return set(_plugin_doc(ROOT / "plugins" / "modules" / f"{name}.py")[0]["options"]) - FILE_OPTIONS
    specs = yaml.safe_load((ROOT / "roles" / name / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    return set().union(*(set(entry.get("options") or {}) for entry in specs.values()))


@pytest.mark.oracle("ansible-core")
@pytest.mark.parametrize("owner", OWNERS)
def test_every_option_is_documented(owner):
    missing = _top_level_options(owner) - _documented_words()
    known = UNDOCUMENTED.get(owner, set())
    new, fixed = sorted(missing - known), sorted(known - missing)
    assert not new, f"{owner}: options no doc names (document them in docs/ or README.md): {new}"
    assert not fixed, f"{owner}: now documented, take them off UNDOCUMENTED in this test: {fixed}"
