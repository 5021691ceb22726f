"""Consistency checks across the collection's metadata, modules and roles.

These run in `make test` so drift between what is declared and what exists fails CI: the action group
must list exactly the modules, every role needs argument specs that cover its public defaults, and public
role variables carry the role's name as prefix.
"""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

ROOT = pathlib.Path(__file__).resolve().parents[2]
ROLES = sorted(p for p in (ROOT / "roles").glob("*") if p.is_dir()) if (ROOT / "roles").is_dir() else []


def _yaml(path: pathlib.Path):
    return yaml.safe_load(path.read_text()) or {}


@pytest.mark.oracle("self")
def test_action_group_lists_exactly_the_modules():
    runtime = _yaml(ROOT / "meta" / "runtime.yml")
    modules = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if not p.stem.startswith("_"))
    assert sorted(runtime["action_groups"]["nemoclaw"]) == modules


@pytest.mark.oracle("self")
def test_requires_ansible_matches_pinned_core():
    runtime = _yaml(ROOT / "meta" / "runtime.yml")
    pinned = next(
        line.split("==", 1)[1].strip()
        for line in (ROOT / "requirements" / "runtime.txt").read_text().splitlines()
        if line.startswith("ansible-core==")
    )
    major_minor = ".".join(pinned.split(".")[:2])
    assert f">={major_minor}.0" in runtime["requires_ansible"], (runtime["requires_ansible"], pinned)


@pytest.mark.oracle("self")
def test_galaxy_dependencies_match_requirements_yml():
    galaxy = _yaml(ROOT / "galaxy.yml")
    reqs = {c["name"]: c["version"] for c in _yaml(ROOT / "requirements.yml")["collections"]}
    assert galaxy["dependencies"] == reqs
    assert all(v.startswith(">=") for v in reqs.values()), "dependencies are floor-pinned"
    assert galaxy["version"] == "0.1.0" and galaxy["license"] == ["Apache-2.0"]
    for ignored in ("tests", "molecule", ".ci"):
        assert ignored in galaxy["build_ignore"]


@pytest.mark.oracle("self")
def test_every_galaxy_dependency_is_used_by_the_collection():
    # a dependency nothing calls only costs users an install (kubernetes.core was one: the kubernetes backend runs
    # kubectl inside the cluster container, so a Mac needs no Python Kubernetes client)
    shipped = [p for d in ("roles", "playbooks", "plugins") for p in (ROOT / d).rglob("*") if p.suffix in (".yml", ".py")]
    shipped.append(ROOT / "ansible.cfg")  # the checkout's own configuration (callbacks_enabled: ansible.posix.profile_tasks)
    text = "\n".join(p.read_text(errors="replace") for p in shipped)
    unused = [dep for dep in _yaml(ROOT / "galaxy.yml")["dependencies"] if f"{dep}." not in text]
    assert not unused, f"galaxy.yml depends on collections nothing uses: {unused}"


@pytest.mark.oracle("self")
@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_role_has_argument_specs_covering_defaults(role):
    specs_file = role / "meta" / "argument_specs.yml"
    assert specs_file.is_file(), f"{role.name}: meta/argument_specs.yml is required"
    assert (role / "meta" / "main.yml").is_file(), f"{role.name}: meta/main.yml is required"
    specs = _yaml(specs_file)["argument_specs"]
    assert "main" in specs, f"{role.name}: argument_specs needs a 'main' entry point"
    options = {}
    for entry in specs.values():
        options.update(entry.get("options") or {})
    defaults_file = role / "defaults" / "main.yml"
    defaults = _yaml(defaults_file) if defaults_file.is_file() else {}
    undocumented = sorted(set(defaults) - set(options))
    assert not undocumented, f"{role.name}: defaults not in argument_specs: {undocumented}"
    for name, spec in options.items():
        if "default" in spec and name in defaults:
            assert spec["default"] == defaults[name], f"{role.name}: {name} default differs between defaults/ and argument_specs"


@pytest.mark.oracle("self")
@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_public_role_variables_are_prefixed(role):
    prefix = role.name.lstrip("_") + "_"
    defaults_file = role / "defaults" / "main.yml"
    if not defaults_file.is_file():
        pytest.skip(f"{role.name} has no defaults")
    bad = sorted(k for k in _yaml(defaults_file) if not (k.startswith(prefix) or k.startswith("__" + prefix)))
    assert not bad, f"{role.name}: public variables must start with {prefix!r}: {bad}"


@pytest.mark.oracle("ansible-core")
def test_role_specs_as_ansible_core_reads_and_validates_them():
    """ansible-doc (ansible-core's role documentation loader) reads every role's meta/argument_specs.yml, and
    ansible-core's ArgumentSpecValidator - what the role's argument validation runs at the start of every role - accepts
    every literal default of defaults/main.yml against its own spec (templated defaults are checked at run time)."""
    names = [f"agentsec.nemoclaw.{r.name}" for r in ROLES]
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".build" / "collections"), ANSIBLE_NOCOLOR="1")
    run = subprocess.run([str(pathlib.Path(sys.executable).with_name("ansible-doc")), "-t", "role", "-j", *names],
                         capture_output=True, text=True, env=env, timeout=120, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    docs = json.loads(run.stdout)
    assert sorted(docs) == sorted(names)
    for role in ROLES:
        entry_points = docs[f"agentsec.nemoclaw.{role.name}"]["entry_points"]
        assert "main" in entry_points, role.name
        defaults_file = role / "defaults" / "main.yml"
        defaults = _yaml(defaults_file) if defaults_file.is_file() else {}
        for name, entry in entry_points.items():
            options = entry.get("options") or {}
            literal = {k: v for k, v in defaults.items() if k in options and not (isinstance(v, str) and "{{" in v)}
            spec = {k: {kk: vv for kk, vv in o.items() if not (kk == "default" and isinstance(vv, str) and "{{" in vv)}
                    for k, o in options.items()}
            errors = [str(e) for e in ArgumentSpecValidator(spec).validate(literal).errors]
            assert not errors, f"{role.name}:{name}: {errors}"
    verify = docs["agentsec.nemoclaw.verify"]["entry_points"]["main"]["options"]
    assert ArgumentSpecValidator(verify).validate({"verify_timeout": "soon"}).errors  # the referee can fail
