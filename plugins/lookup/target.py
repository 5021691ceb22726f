# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)
"""The target contract: what kind of sandbox host this is, and everything that follows from it."""

from __future__ import annotations

DOCUMENTATION = r"""
name: target
short_description: Read the target contract of a sandbox host (one file per target in the collection's targets/)
version_added: 0.2.0
description:
  - C(nemoclaw_target) names what kind of sandbox host an inventory host is (C(openshell_k3s), the paper's OpenShell
    0.0.26 line, or another target of the collection's C(targets/)). Everything that depends on it - how sandboxes
    are found and entered, the gateway and cluster container names, the Docker socket, the OpenShell CLI path, the
    Sandbox CRD group/version/namespace, and per layer whether and how the target can fix it - lives in
    C(targets/<target>.yml) of the collection (C(extends) merges another target under it). Role defaults derive
    their values from this lookup, so each concept has one owner (docs/targets.md).
  - Values may be per platform (a mapping with C(Darwin)/C(Linux) keys, chosen by C(ansible_facts.system)) and may
    contain the placeholders C({home}) (C(nemoclaw_user_home), else C(ansible_facts.user_dir)), C({gateway})
    (C(nemoclaw_gateway), else the target's C(openshell.gateway)), C({openshell}) (the resolved C(openshell.bin)) and
    C({docker_socket}) (the resolved C(docker.socket), so the socket is written once per target).
  - Any other placeholder is declared by the target file itself, under its top-level key C(placeholders), each name
    mapped to its C(variable) (an inventory variable) and an optional C(default). C({<name>}) is that variable
    (templated), else the declared C(default); a placeholder in use with neither is an error naming it, the variable
    and the target. Placeholder values are used as they are (a value containing a C({name}) placeholder is an error).
  - C({sandbox}) is left in place for the consumers that fill it per sandbox; any other undeclared C({name}) in a
    target file is an error naming it.
options:
  _terms:
    description: Dotted keys into the target file (C(openshell.bin), C(cluster.crd.namespace), C(layers)); none returns the whole resolved contract.
    type: list
    elements: str
  target:
    description: The target to read; default C(nemoclaw_target).
    type: str
  platform:
    description: C(Darwin) or C(Linux); default C(ansible_facts.system).
    type: str
  default:
    description: Returned for a key the target does not have (without it, a missing key is an error).
    type: raw
  needs_facts:
    description:
      - Return one boolean instead of values - whether resolving this target needs facts this host does not have yet
        (C(ansible_facts.system) for per-platform values, C(ansible_facts.user_dir) for C({home}) without
        C(nemoclaw_user_home)). Playbooks that skip fact gathering gather the minimum only when it is true.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: The OpenShell CLI of this host
  ansible.builtin.debug:
    msg: "{{ lookup('agentsec.nemoclaw.target', 'openshell.bin') }}"

- name: Gather the minimum of facts only where the target needs them
  ansible.builtin.setup:
    gather_subset: [min]
  when: lookup('agentsec.nemoclaw.target', needs_facts=true)

- name: How a command reaches the agent of sandbox my-assistant
  ansible.builtin.debug:
    msg: "{{ lookup('agentsec.nemoclaw.target', 'sandbox.exec') | map('replace', '{sandbox}', 'my-assistant') }}"
"""

RETURN = r"""
_raw:
  description: One value per term (strings, lists or mappings), placeholders resolved.
  type: list
"""

import copy
import os
import re

import yaml
from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

TARGETS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "targets")


def available():
    return sorted(f[:-4] for f in os.listdir(TARGETS_DIR) if f.endswith(".yml"))


def load(name):
    if not name:
        raise AnsibleLookupError(f"nemoclaw_target is not set: set it for every nemoclaw host to one of {', '.join(available())} "
                                 "(docs/targets.md)")
    path = os.path.join(TARGETS_DIR, f"{name}.yml")
    if not os.path.isfile(path):
        raise AnsibleLookupError(f"nemoclaw_target={name!r} is not a known target; choose one of {', '.join(available())} "
                                 "(docs/targets.md)")
    contract = read(path)
    parent = contract.pop("extends", None)
    return merge(load(parent), contract) if parent else contract


_PARSED = {}  # (path, mtime, size) -> parsed file: a task templates several lookups, each would parse both files again
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present (~10x faster), same safe schema


def read(path):
    """The parsed target file (a fresh copy: callers may change it)."""
    st = os.stat(path)
    key = (path, st.st_mtime_ns, st.st_size)
    if key not in _PARSED:
        with open(path, encoding="utf-8") as fh:
            _PARSED[key] = yaml.load(fh, Loader=_LOADER)  # noqa: S506 - a safe loader
    return copy.deepcopy(_PARSED[key])


def merge(base, override):
    """`extends`: the override's mappings are merged into the base's, key by key; everything else replaces."""
    out = dict(base)
    for key, value in override.items():
        both = isinstance(value, dict) and isinstance(base.get(key), dict)
        out[key] = merge(base[key], value) if both and is_platform(value) == is_platform(base[key]) else value
    return out


def is_platform(value):
    return isinstance(value, dict) and bool(value) and set(value) <= {"Darwin", "Linux"}


def needs_facts(contract, platform, home):
    """Whether resolving the contract needs the platform or the user's home that the caller does not have."""
    def walk(value):
        if is_platform(value):
            return platform is None or any(walk(v) for v in value.values())
        if isinstance(value, dict):
            return any(walk(v) for v in value.values())
        if isinstance(value, list):
            return any(walk(v) for v in value)
        return isinstance(value, str) and "{home}" in value and not home

    return walk(contract)


GENERIC = ("home", "gateway", "openshell", "docker_socket")  # the placeholders this lookup fills for every target
CONSUMER = ("sandbox",)  # left in place: filled per sandbox by the consumers of the command lists (sandbox.exec, ...)
PLACEHOLDER = re.compile(r"(?<![$\{])\{([A-Za-z_][A-Za-z0-9_]*)\}(?!\})")  # {name}; not ${NAME} or {{ jinja }}
_NAME = re.compile(r"[a-z_][a-z0-9_]*")
_SPEC_KEYS = {"variable", "default"}


def declared(contract):
    """The target's own placeholders (top-level `placeholders`, merged through `extends`), checked: name -> spec."""
    name = contract.get("name")
    block = contract.get("placeholders")
    if block is None:
        return {}
    if not isinstance(block, dict) or is_platform(block):
        raise AnsibleLookupError(f"target {name!r}: placeholders must be a mapping of name -> {{variable:, default:}}")
    for key, spec in block.items():
        where = f"target {name!r}: placeholder {key!r}"
        if not isinstance(key, str) or not _NAME.fullmatch(key):
            raise AnsibleLookupError(f"{where}: a placeholder's name is a lower-case identifier ([a-z_][a-z0-9_]*)")
        if key in GENERIC or key in CONSUMER:
            raise AnsibleLookupError(f"{where}: {{{key}}} is the lookup's own placeholder and cannot be declared")
        if not isinstance(spec, dict) or "variable" not in spec or set(spec) - _SPEC_KEYS:
            raise AnsibleLookupError(f"{where}: declare it as {{variable: <inventory variable>, default: <value>}} "
                                     "(default optional)")
        variable = spec["variable"]
        if not isinstance(variable, str) or not variable.isidentifier() or not variable.isascii():
            raise AnsibleLookupError(f"{where}: variable must be an inventory variable's name, not {variable!r}")
        defaults = spec.get("default", "")
        for default in defaults.values() if is_platform(defaults) else [defaults]:
            if not isinstance(default, str) or ("default" in spec and not default):
                raise AnsibleLookupError(f"{where}: default must be a non-empty string (or one per platform), not {default!r}")
            if PLACEHOLDER.search(default):
                raise AnsibleLookupError(f"{where}: default {default!r} contains a placeholder; placeholder values are used "
                                         "as they are")
    return block


def resolve(contract, platform, home, gateway, variables=None):
    """Choose per-platform values and fill the placeholders; pure, unit-tested. `variables`: the inventory variables
    the target's declared placeholders name (variable -> value, already templated)."""
    name = contract["name"]
    specs = declared(contract)
    variables = variables or {}

    def pick(value):
        if is_platform(value):
            if platform is None:
                raise AnsibleLookupError(f"target {name!r} has per-platform values: gather facts "
                                         "(ansible_facts.system) or pass platform=")
            if platform not in value:
                raise AnsibleLookupError(f"target {name!r} has no value for platform {platform!r}")
            return pick(value[platform])
        if isinstance(value, dict):
            return {k: pick(v) for k, v in value.items()}
        if isinstance(value, list):
            return [pick(v) for v in value]
        return value

    picked = pick(contract)
    gateway = gateway or picked["openshell"]["gateway"]
    picked["openshell"]["gateway"] = gateway  # nemoclaw_gateway is the one owner of the gateway's name
    values = {}  # placeholder -> its value ("" when neither its variable nor a default gives one)
    for key, spec in specs.items():
        value = variables.get(spec["variable"])
        if value is None:
            value = ""
        elif isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        elif not isinstance(value, str):
            raise AnsibleLookupError(f"target {name!r}: {spec['variable']} (placeholder {{{key}}}) must be a string, not "
                                     f"{type(value).__name__}")
        if PLACEHOLDER.search(value):
            raise AnsibleLookupError(f"target {name!r}: {spec['variable']}={value!r} (placeholder {{{key}}}) contains the "
                                     f"placeholder {{{PLACEHOLDER.search(value).group(1)}}}; placeholder values are used as they are")
        values[key] = value or picked["placeholders"][key].get("default", "")

    def fill(value, path, resolved=None):
        """resolved: the values of {openshell} and {docker_socket} once they are known (None while resolving them)."""
        if isinstance(value, dict):
            return {k: fill(v, f"{path}.{k}" if path else str(k), resolved) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v, f"{path}[{i}]", resolved) for i, v in enumerate(value)]
        if not isinstance(value, str):
            return value

        def sub(match):
            key = match.group(1)
            if key == "home":
                if not home:
                    raise AnsibleLookupError(f"target {name!r} needs the user's home for {value!r}: set "
                                             "nemoclaw_user_home or gather facts")
                return home
            if key == "gateway":
                return gateway
            if key in ("openshell", "docker_socket"):
                if resolved is None:
                    raise AnsibleLookupError(f"target {name!r}: {{{key}}} cannot be used in {path} ({value!r}), which it "
                                             "is resolved from")
                if resolved.get(key) is None:
                    raise AnsibleLookupError(f"target {name!r} uses {{{key}}} in {path} but has no "
                                             f"{'openshell.bin' if key == 'openshell' else 'docker.socket'}")
                return resolved[key]
            if key in values:
                if not values[key]:
                    raise AnsibleLookupError(f"target {name!r} needs the placeholder {{{key}}} for {value!r} ({path}): set "
                                             f"{specs[key]['variable']} (the target declares no default)")
                return values[key]
            if key in CONSUMER:
                return match.group(0)
            raise AnsibleLookupError(f"target {name!r} uses the placeholder {{{key}}} in {path} ({value!r}), which it does "
                                     "not declare under placeholders; the lookup itself fills only "
                                     f"{', '.join('{' + g + '}' for g in GENERIC)} (docs/targets.md)")

        return PLACEHOLDER.sub(sub, value)

    resolved = {"openshell": fill(picked["openshell"]["bin"], "openshell.bin")}
    socket = (picked.get("docker") or {}).get("socket")
    resolved["docker_socket"] = None if socket is None else fill(socket, "docker.socket")
    return fill(picked, "", resolved)


_MISSING = object()


def dig(contract, key, default=_MISSING):
    cur = contract
    for part in key.split("."):
        if not isinstance(cur, dict) or part not in cur:
            if default is not _MISSING:
                return default
            raise AnsibleLookupError(f"target {contract['name']!r} has no key {key!r}")
        cur = cur[part]
    return cur


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        variables = variables or {}
        name = self.get_option("target") or self._templar.template(variables.get("nemoclaw_target", ""))
        facts = variables.get("ansible_facts") or {}
        platform = self.get_option("platform") or facts.get("system") or variables.get("ansible_system")
        home = self._templar.template(variables.get("nemoclaw_user_home", "")) or facts.get("user_dir", "")
        gateway = self._templar.template(variables.get("nemoclaw_gateway", ""))
        contract = load(name)
        if self.get_option("needs_facts"):
            return [needs_facts(contract, platform, home)]
        wanted = {spec["variable"] for spec in declared(contract).values()}  # template only what the target declares
        declared_vars = {var: self._templar.template(variables[var]) for var in wanted if var in variables}
        contract = resolve(contract, platform, home, gateway, declared_vars)
        default = kwargs["default"] if "default" in kwargs else _MISSING
        return [dig(contract, term, default) for term in terms] if terms else [contract]
