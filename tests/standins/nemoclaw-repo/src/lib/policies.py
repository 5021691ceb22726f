"""Policy presets and tiers (NemoClaw src/lib/policies.ts, src/lib/tiers.ts, nemoclaw-blueprint/policies @db3453b5)."""
from __future__ import annotations

import os
import re
import tempfile

from lib import runner as R
from lib import state

PRESETS_DIR = R.ROOT / "nemoclaw-blueprint" / "policies" / "presets"
TIERS_FILE = R.ROOT / "nemoclaw-blueprint" / "policies" / "tiers.yaml"


def list_presets() -> list:
    """policies.ts:18-33: every presets/*.yaml, named by its `name:` line."""
    out = []
    for path in sorted(PRESETS_DIR.glob("*.yaml")):
        text = path.read_text()
        m = re.search(r"^\s*name:\s*(.+)$", text, re.M)
        out.append({"file": path.name, "name": m.group(1).strip() if m else path.stem})
    return out


def load_preset(name: str):
    """policies.ts:35-46: a name that leaves the presets directory is refused."""
    path = (PRESETS_DIR / f"{name}.yaml").resolve()
    if path.parent != PRESETS_DIR.resolve():
        R.err(f"  Invalid preset name: {name}")
        return None
    if not path.is_file():
        R.err(f"  Preset not found: {name}")
        return None
    return path.read_text()


def preset_entries(text: str):
    """policies.ts:63-68: the indented block under `network_policies:`."""
    m = re.search(r"^network_policies:\n([\s\S]*)$", text or "", re.M)
    return m.group(1).rstrip() if m else None


def preset_hosts(text: str) -> list:
    """policies.ts:48-56."""
    return [h.strip("'\"") for h in re.findall(r"host:\s*([^\s,}]+)", text or "")]


def current_policy(raw: str) -> str:
    """policies.ts:74-97: the YAML after the `---` of `openshell policy get --full`, '' when it is not a mapping."""
    if not raw:
        return ""
    sep = raw.find("---")
    candidate = (raw if sep == -1 else raw[sep + 3:]).strip()
    if not candidate or re.match(r"^(error|failed|invalid|warning|status)\b", candidate, re.I):
        return ""
    return candidate if re.search(r"^[a-z_][a-z0-9_]*\s*:", candidate, re.M) else ""


def _chunks(block_lines: list):
    """The entries of a network_policies block, keyed by their two-space-indented key; None when the block has
    another shape (flow style, other indentation)."""
    chunks, key = {}, None
    for line in block_lines:
        m = re.match(r"^  ([A-Za-z0-9_.-]+):\s*$", line)
        if m:
            key = m.group(1)
            chunks[key] = [line]
        elif key is not None and (line.startswith("   ") or not line.strip()):
            chunks[key].append(line)
        elif line.strip().startswith("#") and key is None:
            continue
        else:
            return None
    return chunks


def merge(current: str, entries: str) -> str:
    """policies.ts:163-227 mergePresetIntoPolicy: network_policies are merged by name (the preset's entry replaces
    one of the same name), every other section is kept, `version: 1` is ensured. stand-in: upstream parses both
    sides with the `yaml` package; the stand-in (stdlib only) merges block-style entries by their key and otherwise
    uses upstream's own text fallback (textBasedMerge, policies.ts:116-155)."""
    preset = _chunks(entries.split("\n"))
    lines = current.split("\n") if current else []
    start = next((i for i, line in enumerate(lines) if re.match(r"^network_policies\s*:\s*$", line)), None)
    if current and preset is not None and start is not None:
        end = next((i for i in range(start + 1, len(lines)) if re.match(r"^\S", lines[i])), len(lines))
        existing = _chunks(lines[start + 1:end])
        if existing is not None:
            merged = {**existing, **preset}
            body = [line for chunk in merged.values() for line in chunk]
            text = "\n".join(lines[:start + 1] + body + lines[end:])
            return text if text.lstrip().startswith("version:") else "version: 1\n\n" + text
    return text_merge(current, entries)


def text_merge(current: str, entries: str) -> str:
    """policies.ts:116-155 textBasedMerge."""
    if not current:
        return "version: 1\n\nnetwork_policies:\n" + entries
    if re.search(r"^network_policies\s*:", current, re.M):
        out, inside, inserted = [], False, False
        for line in current.split("\n"):
            if re.match(r"^network_policies\s*:", line):
                inside = True
                out.append(line)
                continue
            if inside and re.match(r"^\S.*:", line) and not inserted:
                out.append(entries)
                inserted, inside = True, False
            out.append(line)
        if inside and not inserted:
            out.append(entries)
        merged = "\n".join(out)
    else:
        merged = current.rstrip() + "\n\nnetwork_policies:\n" + entries
    if not merged.lstrip().startswith("version:"):
        merged = "version: 1\n\n" + merged
    return merged


def apply_preset(sandbox: str, name: str) -> bool:
    """policies.ts:400-470: merge into `openshell policy get --full <sb>`, `openshell policy set --policy <tmp 0600>
    --wait <sb>` (a failure exits), then append the preset to the registry entry."""
    if not re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", sandbox or "") or len(sandbox) > 63:
        raise RuntimeError(f"Invalid or truncated sandbox name: '{sandbox}'. Names must be 1-63 chars, lowercase "
                           "alphanumeric, with optional internal hyphens.")
    text = load_preset(name)
    if not text:
        return False
    entries = preset_entries(text)
    if not entries:
        R.err(f"  Preset {name} has no network_policies section.")
        return False
    merged = merge(current_policy(R.capture([R.openshell_bin(), "policy", "get", "--full", sandbox])), entries)
    hosts = preset_hosts(text)
    if hosts:
        R.say(f"  Widening sandbox egress — adding: {', '.join(hosts)}")
    tmp_dir = tempfile.mkdtemp(prefix="nemoclaw-policy-")
    tmp = os.path.join(tmp_dir, "policy.yaml")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(merged)
    try:
        R.openshell("policy", "set", "--policy", tmp, "--wait", sandbox)
        R.say(f"  Applied preset: {name}")
    finally:
        os.unlink(tmp)
        os.rmdir(tmp_dir)
    entry = state.get(sandbox)
    if entry is not None:
        policies = list(entry.get("policies") or [])
        if name not in policies:
            policies.append(name)
        state.update(sandbox, policies=policies)
    return True


def tiers() -> dict:
    """nemoclaw-blueprint/policies/tiers.yaml, read with a small line parser (stdlib only): {tier: [presets]}."""
    out, current = {}, None
    for line in TIERS_FILE.read_text().splitlines():
        m = re.match(r"^  - name:\s*(\S+)", line)
        if m:
            current = m.group(1)
            out[current] = []
            inline = re.search(r"presets:\s*\[\s*\]", line)
            if inline:
                continue
        m = re.match(r"^\s+- \{\s*name:\s*([a-z0-9-]+)", line)
        if m and current:
            out[current].append(m.group(1))
    return out
