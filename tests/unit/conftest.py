"""Shared helpers for unit tests: run an Ansible module's main() in-process and capture its result.

Modules are imported through the collection path (ansible_collections.agentsec.nemoclaw...), which
`make test` sets up by linking the checkout under .build/collections (see pytest.ini).
"""
from __future__ import annotations

import contextlib
import json
import pathlib
import types

import pytest
from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes


class AnsibleExitJson(Exception):
    """Raised instead of exit_json so a test can read the result."""


class AnsibleFailJson(Exception):
    """Raised instead of fail_json so a test can read the failure."""


@contextlib.contextmanager
def set_module_args(args):
    """Feed module arguments the way ansible-core 2.19 does (context manager, like community.general)."""
    args = dict(args)
    args.setdefault("_ansible_remote_tmp", "/tmp")
    args.setdefault("_ansible_keep_remote_files", False)
    serialized = to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(basic, "_ANSIBLE_ARGS", serialized)
        # ansible-core 2.19 caches the profile-aware deserialiser; clearing it keeps tests independent.
        mp.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)
        yield


def _exit_json(self, **kwargs):
    kwargs.setdefault("changed", False)
    raise AnsibleExitJson(kwargs)


def _fail_json(self, msg, **kwargs):
    kwargs["failed"] = True
    kwargs["msg"] = msg
    raise AnsibleFailJson(kwargs)


@pytest.fixture
def module_runner(monkeypatch):
    """Return run(main, args, check_mode=False) -> (ok: bool, result: dict)."""
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", _exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", _fail_json)

    def run(main, args, check_mode=False, diff=False):
        args = dict(args)
        if check_mode:
            args["_ansible_check_mode"] = True
        if diff:
            args["_ansible_diff"] = True
        with set_module_args(args):
            try:
                main()
            except AnsibleExitJson as e:
                return True, e.args[0]
            except AnsibleFailJson as e:
                return False, e.args[0]
        raise AssertionError("module returned without exit_json or fail_json")

    return run


@pytest.fixture(scope="session")
def macos_ps():
    """`ps axww -o pid=,rss=,args=` on a Mac Studio running the stack (fixtures/macos-ps.json): `.text` is the listing
    with macOS's right-aligned columns, `.groups` what the default process patterns must find per group
    ({"count", "pids", "kib"}); entries with group null belong to none."""
    rows = json.loads((pathlib.Path(__file__).parent / "fixtures" / "macos-ps.json").read_text())
    groups = {}
    for row in rows:
        if row["group"]:
            g = groups.setdefault(row["group"], {"count": 0, "pids": [], "kib": 0})
            g["count"] += 1
            g["pids"].append(row["pid"])
            g["kib"] += row["rss_kib"]
    text = "".join(f"{r['pid']:5d} {r['rss_kib']:6d} {r['args']}\n" for r in rows)
    return types.SimpleNamespace(text=text, groups=groups)
