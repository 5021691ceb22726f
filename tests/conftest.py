"""Install ansible-core's collection loader before any test imports the collection, as ansible-test does,
so modules, module_utils and plugins load through `ansible_collections.agentsec.nemoclaw` exactly as in a run.

Every test names its oracle - who says the expected result is right - with ``@pytest.mark.oracle(...)``:
``kernel`` (the running Linux kernel answers), ``docker`` (a real Docker engine), ``ansible-core`` (ansible's own
code or parsers), ``upstream`` (a file of the upstream project at the pinned tag, or its own data, decides) and
``self`` (only our own code or our own stand-ins). The closing summary counts tests per oracle, so a reader can see
which green results have an outside referee. ``AGENTSEC_ORACLE_STRICT=1`` turns a test without a label into an error.
"""
import collections
import os
import pathlib

import pytest
from ansible.plugins.loader import init_plugin_loader

COLLECTIONS = pathlib.Path(__file__).resolve().parents[1] / ".build" / "collections"
init_plugin_loader([str(COLLECTIONS)])

ORACLES = ("kernel", "docker", "ansible-core", "upstream", "self")
_COUNTS = collections.Counter()
_UNLABELLED = []


def pytest_collection_modifyitems(config, items):
    strict = os.environ.get("AGENTSEC_ORACLE_STRICT") == "1"
    for item in items:
        names = [n for m in item.iter_markers("oracle") for n in m.args]
        unknown = [n for n in names if n not in ORACLES]
        if unknown:
            raise pytest.UsageError(f"{item.nodeid}: unknown oracle {unknown}; use {', '.join(ORACLES)}")
        if not names:
            _UNLABELLED.append(item.nodeid)
            if strict:
                item.add_marker(pytest.mark.xfail(reason="no oracle label", strict=True, run=False))
            continue
        for name in dict.fromkeys(names):
            _COUNTS[name] += 1
        if set(names) == {"self"}:
            _COUNTS["self only"] += 1


def pytest_terminal_summary(terminalreporter):
    if not (_COUNTS or _UNLABELLED):
        return
    parts = [f"{name} {_COUNTS[name]}" for name in (*ORACLES, "self only") if _COUNTS[name]]
    terminalreporter.write_line("oracles: " + ", ".join(parts) + f"; unlabelled {len(_UNLABELLED)}")
