"""docs/layers.md and the Checks table of docs/verify.md stay in step with the verifier, the targets and the hardening role.

docs/layers.md must name (as inline code) every check id of every verifier module (`_verify*.py`), every residual a
target declares (targets/*.yml), every toggle `hardening_l<N>_enabled` of the hardening role's argument specs and every
layer tag (l1..l6) the hardening role's tasks carry. Its "Every check" table must have one row per check id, with the
module's layer and severity and, per target, what the target does with the check (runs, residual, skipped, or "-" when
the module is not among the target's extensions); it must not name a check id that no module defines. The Checks table
of docs/verify.md must have one row per check id with the module's title, severity and expected text.
"""
from __future__ import annotations

import pathlib
import re

import pytest
import yaml

from ansible_collections.agentsec.nemoclaw.plugins.lookup import target as T
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import (
    _verify,
    _verify_escape,
    _verify_isolation,
    _verify_l7,
    _verify_policy,
    _verify_proxy,
    _verify_v01,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]
LAYERS_DOC = ROOT / "docs" / "layers.md"
VERIFY_DOC = ROOT / "docs" / "verify.md"
MODULES = {m.__name__.rsplit(".", 1)[1]: m for m in (_verify, _verify_proxy, _verify_isolation, _verify_escape, _verify_l7,
                                                     _verify_v01, _verify_policy)}
# what sandbox_verify always pipes in (plugins/modules/sandbox_verify.py probe_modules); the rest come from verify.extensions
BASE_MODULES = ("_verify", "_verify_proxy", "_verify_isolation", "_verify_escape")
CHECK_ID = re.compile(r"`(L[1-6]\.[a-z0-9_]+)`")


def _catalogue() -> dict:
    """check id -> (module name, (layer, title, severity, expected, remediation))."""
    out = {}
    for name, module in MODULES.items():
        for cid, meta in module.CHECKS.items():
            assert cid not in out, f"{cid} is defined by {out[cid][0]} and {name}"
            out[cid] = (name, meta)
    return out


def _code_spans(text: str) -> set:
    return set(re.findall(r"`([^`\n]+)`", text))


def _residuals() -> dict:
    """residual id -> [target files that declare it], read from the files themselves (not through extends)."""
    out = {}
    for path in sorted((ROOT / "targets").glob("*.yml")):
        for cid in (yaml.safe_load(path.read_text()) or {}).get("residual") or {}:
            out.setdefault(cid, []).append(path.name)
    return out


def _toggles() -> set:
    specs = yaml.safe_load((ROOT / "roles" / "hardening" / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    names = set().union(*(set(entry.get("options") or {}) for entry in specs.values()))
    return {n for n in names if re.fullmatch(r"hardening_l[1-6]_enabled", n)}


def _tags(node) -> set:
    found = set()
    if isinstance(node, dict):
        tags = node.get("tags")
        found |= set([tags] if isinstance(tags, str) else tags or [])
        for value in node.values():
            found |= _tags(value)
    elif isinstance(node, list):
        for item in node:
            found |= _tags(item)
    return found


def _layer_tags() -> set:
    tags = set()
    for path in sorted((ROOT / "roles" / "hardening" / "tasks").glob("*.yml")):
        tags |= _tags(yaml.safe_load(path.read_text()))
    return {t for t in tags if re.fullmatch(r"l[1-6]", t)}


def _target_view(name: str) -> dict:
    """check id -> what target `name` does with it: runs, residual, skipped or - (module not registered there)."""
    contract = T.resolve(T.load(name), "Linux", "/home/agent", "")
    verify = contract.get("verify") or {}
    registered = {}
    for module in (*BASE_MODULES, *(verify.get("extensions") or [])):
        registered.update(MODULES[module].CHECKS)
    skipped = set()
    for item in verify.get("skip_checks") or []:
        skipped |= {item} if item in registered else {c for c in registered if c.startswith(item + ".")}
    residual = set(contract.get("residual") or {})
    view = {}
    for cid in _catalogue():
        if cid not in registered:
            view[cid] = "-"
        elif cid in residual:
            view[cid] = "residual"
        elif cid in skipped:
            view[cid] = "skipped"
        else:
            view[cid] = "runs"
    return view


def _table_rows(text: str, first_header: str) -> tuple[list, list]:
    """(header cells, body rows as cell lists) of every Markdown table whose first header cell is `first_header`."""
    header, rows = None, []
    for line in text.splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if cells and cells[0] == first_header:
            header = cells
        elif header and cells and set(cells[0]) <= set("-:"):
            continue
        elif header and cells and cells[0].startswith("`L"):
            rows.append(cells)
    return header, rows


@pytest.mark.oracle("self")
def test_every_verifier_module_is_covered():
    files = {p.stem for p in (ROOT / "plugins" / "module_utils").glob("_verify*.py")}
    assert files == set(MODULES), f"verifier modules on disk {sorted(files)} differ from the ones this test reads {sorted(MODULES)}"


@pytest.mark.oracle("self")
def test_layers_doc_names_every_check_residual_toggle_and_tag():
    text = LAYERS_DOC.read_text()
    spans = _code_spans(text)
    missing = [f"check id {c} ({m})" for c, (m, _meta) in _catalogue().items() if c not in spans]
    missing += [f"residual {c} ({', '.join(files)})" for c, files in _residuals().items() if c not in spans]
    missing += [f"toggle {t}" for t in sorted(_toggles()) if t not in spans]
    missing += [f"layer tag {t}" for t in sorted(_layer_tags()) if t not in spans]
    assert not missing, "docs/layers.md does not mention (as `code`): " + "; ".join(missing)


@pytest.mark.oracle("self")
def test_the_sources_of_the_doc_test_are_not_empty():
    """A broken reader must not make the test above pass vacuously."""
    assert len(_catalogue()) > 40
    assert {"L5.clienthello_evasion", "L6.route_traversal", "L2.v01_threads"} <= set(_residuals())
    assert _toggles() == {f"hardening_l{n}_enabled" for n in range(1, 7)}
    assert _layer_tags() == {f"l{n}" for n in range(1, 7)}


@pytest.mark.oracle("self")
def test_layers_doc_names_no_unknown_check():
    unknown = sorted(set(CHECK_ID.findall(LAYERS_DOC.read_text())) - set(_catalogue()))
    assert not unknown, f"docs/layers.md names check ids no verifier module defines: {unknown}"


def _check_rows(rows, wrong):
    """Each table row naming a known check as (id, cells, catalogue entry); an unknown id goes to `wrong`. Once the
    rows are read, asserts that every check has exactly one row."""
    catalogue = _catalogue()
    seen = []
    for cells in rows:
        cid = cells[0].strip("`")
        seen.append(cid)
        if cid not in catalogue:
            wrong.append(f"{cid}: no such check")
            continue
        yield cid, cells, catalogue[cid]
    assert sorted(seen) == sorted(catalogue), (
        f"rows missing: {sorted(set(catalogue) - set(seen))}; duplicate or unknown: "
        f"{sorted(c for c in set(seen) if seen.count(c) > 1 or c not in catalogue)}")


@pytest.mark.oracle("self")
def test_layers_doc_check_table_matches_modules_and_targets():
    header, rows = _table_rows(LAYERS_DOC.read_text(), "check")
    assert header and header[:5] == ["check", "layer", "module", "what it proves", "severity"], header
    columns = [re.findall(r"`([a-z0-9_]+)`", cell) for cell in header[5:]]
    assert sorted(t for col in columns for t in col) == sorted(T.available()), f"target columns {columns}"
    views = {name: _target_view(name) for name in T.available()}
    wrong = []
    for cid, cells, (module, (layer, _title, severity, _expected, _remediation)) in _check_rows(rows, wrong):
        if (cells[1], cells[2].strip("`"), cells[4]) != (layer, module, severity):
            wrong.append(f"{cid}: row says {cells[1]}/{cells[2]}/{cells[4]}, the module {layer}/{module}/{severity}")
        for targets, cell in zip(columns, cells[5:], strict=True):
            for target in targets:
                if cell.strip("*") != views[target][cid]:
                    wrong.append(f"{cid}: {target} column says {cell!r}, the target {views[target][cid]!r}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.oracle("self")
def test_verify_doc_checks_table_matches_modules():
    section = VERIFY_DOC.read_text().split("\n## Checks\n", 1)[1].split("\n## ", 1)[0]
    header, rows = _table_rows(section, "id")
    assert header == ["id", "title", "severity", "expected", "how"], header
    wrong = []
    for cid, cells, (_module, (_layer, title, severity, expected, _remediation)) in _check_rows(rows, wrong):
        got = tuple(c.replace("\\<", "<").replace("\\|", "|") for c in cells[1:4])
        if got != (title, severity, expected):
            wrong.append(f"{cid}: docs/verify.md says {got}, the module {(title, severity, expected)}")
    assert not wrong, "\n".join(wrong)


TARGET_REF = re.compile(r"targets/(openshell_[a-z0-9_]+)\.yml:(\d+)(?:-(\d+))?")
TOP_KEY = re.compile(r"^  ([A-Za-z0-9_.]+):")


@pytest.mark.oracle("self")
def test_target_line_references_point_at_what_they_name():
    """A `targets/<t>.yml:N-M` reference in the docs names a residual or layer block: its range lies inside the file,
    and when the nearest check id written before it on the same line is a residual of that target, the range starts
    at that residual's key. Edits above a block used to leave such references pointing at the wrong text."""
    wrong = []
    for doc in sorted((ROOT / "docs").glob("*.md")):
        for number, line in enumerate(doc.read_text().splitlines(), 1):
            for match in TARGET_REF.finditer(line):
                path = ROOT / "targets" / f"{match.group(1)}.yml"
                lines = path.read_text().splitlines()
                start, end = int(match.group(2)), int(match.group(3) or match.group(2))
                if not 1 <= start <= end <= len(lines):
                    wrong.append(f"{doc.name}:{number}: {match.group(0)} is outside the file ({len(lines)} lines)")
                    continue
                residual = yaml.safe_load(path.read_text()).get("residual") or {}
                ids = re.findall(r"`(L[1-6]\.[a-z0-9_]+)`", line[:match.start()])
                key = TOP_KEY.match(lines[start - 1])
                if ids and ids[-1] in residual and (not key or key.group(1) != ids[-1]):
                    wrong.append(f"{doc.name}:{number}: {match.group(0)} is cited for {ids[-1]} but starts at "
                                 f"{lines[start - 1].strip()[:40]!r}")
    assert not wrong, "\n".join(wrong)
