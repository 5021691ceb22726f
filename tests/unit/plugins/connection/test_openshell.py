"""The openshell connection plugin with a real prefix command: a tiny script that runs its arguments (like
`openshell sandbox exec -n NAME -- ...`) after recording the sandbox name, so every path really runs a process."""
from __future__ import annotations

import stat

import pytest
from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.playbook.play_context import PlayContext
from ansible.plugins.loader import connection_loader  # tests/conftest.py installed the collection loader


@pytest.fixture
def conn(tmp_path):
    fake = tmp_path / "fake-openshell"
    fake.write_text('#!/bin/sh\n# usage: fake-openshell NAME -- CMD...\necho "$1" >> "$(dirname "$0")/calls"\nshift 2\nexec "$@"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    c = connection_loader.get("agentsec.nemoclaw.openshell", PlayContext(), None)
    c.set_options(direct={"sandbox": "sb1", "exec_prefix": [str(fake), "{sandbox}", "--"], "timeout": 10})
    return c, tmp_path


def test_exec_command_runs_through_the_prefix(conn):
    c, tmp = conn
    rc, out, err = c.exec_command("echo hello; echo oops >&2; exit 3")
    assert (rc, out, err) == (3, b"hello\n", b"oops\n")
    assert (tmp / "calls").read_text() == "sb1\n"


def test_pipelining_passes_stdin(conn):
    c, _tmp = conn
    rc, out, _err = c.exec_command("cat", in_data=b"\x00binary\xff")
    assert rc == 0 and out == b"\x00binary\xff"


def test_put_and_fetch_are_binary_safe(conn):
    c, tmp = conn
    src = tmp / "src.bin"
    src.write_bytes(bytes(range(256)))
    c.put_file(str(src), str(tmp / "inside.bin"))
    assert (tmp / "inside.bin").read_bytes() == bytes(range(256))
    c.fetch_file(str(tmp / "inside.bin"), str(tmp / "back.bin"))
    assert (tmp / "back.bin").read_bytes() == bytes(range(256))


def test_errors_are_clear(conn):
    c, tmp = conn
    with pytest.raises(AnsibleError, match="failed to read /nonexistent"):
        c.fetch_file("/nonexistent", str(tmp / "x"))
    with pytest.raises(AnsibleError, match="does not exist"):
        c.put_file(str(tmp / "missing"), str(tmp / "y"))
    c.set_options(direct={"exec_prefix": ["/nonexistent/openshell", "--"]})
    with pytest.raises(AnsibleConnectionFailure, match="not found"):
        c.exec_command("true")
