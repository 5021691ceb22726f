"""The openshell connection plugin with a real prefix command: a tiny script that runs its arguments (like
`openshell sandbox exec -n NAME -- ...`) after recording the sandbox name, so every path really runs a process.

The last tests hand the plugin to ansible-core itself: real `ansible` ad-hoc runs (ping, copy, fetch) whose results -
the module answering over the prefix, the copy and fetch checksums - are ansible-core's verdicts, not ours."""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
import stat
import subprocess
import sys

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


@pytest.mark.oracle("self")
def test_exec_command_runs_through_the_prefix(conn):
    c, tmp = conn
    rc, out, err = c.exec_command("echo hello; echo oops >&2; exit 3")
    assert (rc, out, err) == (3, b"hello\n", b"oops\n")
    assert (tmp / "calls").read_text() == "sb1\n"


@pytest.mark.oracle("self")
def test_pipelining_passes_stdin(conn):
    c, _tmp = conn
    rc, out, _err = c.exec_command("cat", in_data=b"\x00binary\xff")
    assert rc == 0 and out == b"\x00binary\xff"


@pytest.mark.oracle("self")
def test_put_and_fetch_are_binary_safe(conn):
    c, tmp = conn
    src = tmp / "src.bin"
    src.write_bytes(bytes(range(256)))
    c.put_file(str(src), str(tmp / "inside.bin"))
    assert (tmp / "inside.bin").read_bytes() == bytes(range(256))
    c.fetch_file(str(tmp / "inside.bin"), str(tmp / "back.bin"))
    assert (tmp / "back.bin").read_bytes() == bytes(range(256))


@pytest.mark.oracle("self")
def test_errors_are_clear(conn):
    c, tmp = conn
    with pytest.raises(AnsibleError, match="failed to read /nonexistent"):
        c.fetch_file("/nonexistent", str(tmp / "x"))
    with pytest.raises(AnsibleError, match="does not exist"):
        c.put_file(str(tmp / "missing"), str(tmp / "y"))
    c.set_options(direct={"exec_prefix": ["/nonexistent/openshell", "--"]})
    with pytest.raises(AnsibleConnectionFailure, match="not found"):
        c.exec_command("true")


@pytest.mark.oracle("self")
def test_an_ssh_prefix_is_refused(conn):
    # ssh(1): the command arguments are joined with spaces and run by the remote user's shell, which splits them
    # again - `/bin/sh -c 'echo "a  b"'` would arrive as several words. The plugin refuses such a prefix, naming why.
    c, tmp = conn
    for prefix in (["ssh", "mac01", "openshell", "sandbox", "exec", "-n", "{sandbox}", "--"], ["/usr/bin/ssh", "h", "--"]):
        c.set_options(direct={"exec_prefix": prefix})
        with pytest.raises(AnsibleConnectionFailure, match="starts with ssh"):
            c.exec_command("true")
    assert not (tmp / "calls").exists()


ROOT = pathlib.Path(__file__).resolve().parents[4]
ANSIBLE = pathlib.Path(sys.executable).with_name("ansible")  # the ansible-core of this virtualenv


def adhoc(tmp, prefix, module, args="", pipelining=True, hostvars=None):
    """One `ansible sb1 -o -m MODULE -a ARGS` run through the plugin -> (rc, {result}) as ansible-core printed it."""
    inventory = {"all": {"hosts": {"sb1": dict({
        "ansible_connection": "agentsec.nemoclaw.openshell", "ansible_openshell_exec_prefix": prefix,
        "ansible_python_interpreter": sys.executable, "ansible_remote_tmp": str(tmp / "remote-tmp")}, **(hostvars or {}))}}}
    (tmp / "inventory.json").write_text(json.dumps(inventory))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".build" / "collections"), ANSIBLE_PIPELINING=str(pipelining),
               ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(tmp / "local-tmp"),
               ANSIBLE_HOST_KEY_CHECKING="False")
    run = subprocess.run([str(ANSIBLE), "sb1", "-i", str(tmp / "inventory.json"), "-o", "-m", module, "-a", args],
                         capture_output=True, text=True, env=env, cwd=tmp, timeout=120, check=False)
    line = next((ln for ln in run.stdout.splitlines() if ln.startswith("sb1 | ")), "")
    assert "=>" in line, run.stdout[-2000:] + run.stderr[-2000:]
    return run.returncode, json.loads(line.split("=>", 1)[1])


def fake_prefix(tmp, stdin=True):
    """A prefix that records the sandbox name and runs the command; stdin=False drops its input the way
    `docker exec` without -i does (the negative control: pipelining needs the module on stdin)."""
    fake = tmp / ("fake-openshell" if stdin else "fake-openshell-no-stdin")
    redirect = "" if stdin else " < /dev/null"
    fake.write_text(f'#!/bin/sh\necho "$1" >> "$(dirname "$0")/calls"\nshift 2\nexec "$@"{redirect}\n')
    fake.chmod(0o755)
    return [str(fake), "{sandbox}", "--"]


@pytest.mark.oracle("ansible-core")
@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "put_file"])
def test_ansible_runs_a_module_through_the_prefix(tmp_path, pipelining):
    rc, res = adhoc(tmp_path, fake_prefix(tmp_path), "ansible.builtin.ping", pipelining=pipelining)
    assert rc == 0 and res["ping"] == "pong", res
    assert set((tmp_path / "calls").read_text().split()) == {"sb1"}  # every command went through the prefix


@pytest.mark.oracle("ansible-core")
def test_a_prefix_that_drops_stdin_fails_under_pipelining(tmp_path):
    """The referee can fail: with the module on stdin and stdin dropped, ansible-core reports the task failed."""
    rc, res = adhoc(tmp_path, fake_prefix(tmp_path, stdin=False), "ansible.builtin.ping", pipelining=True)
    assert rc != 0 and res.get("ping") != "pong", res


@pytest.mark.oracle("ansible-core")
def test_copy_and_fetch_pass_ansibles_checksums(tmp_path):
    payload = bytes(range(256)) * 64 + b"\x00 no newline at the end"
    src, inside, back = tmp_path / "src.bin", tmp_path / "sandbox" / "inside.bin", tmp_path / "back"
    src.write_bytes(payload)
    inside.parent.mkdir()
    prefix = fake_prefix(tmp_path)
    rc, res = adhoc(tmp_path, prefix, "ansible.builtin.copy", f"src={src} dest={inside} mode=0600", pipelining=False)
    assert rc == 0 and res["changed"] and res["checksum"] == hashlib.sha1(payload).hexdigest(), res  # sha1 is what ansible-core reports as checksum
    assert inside.read_bytes() == payload
    rc, res = adhoc(tmp_path, prefix, "ansible.builtin.fetch", f"src={inside} dest={back}/ flat=true")
    assert rc == 0 and res["checksum"] == hashlib.sha1(payload).hexdigest(), res
    assert (back / "inside.bin").read_bytes() == payload


@pytest.mark.oracle("ansible-core")
@pytest.mark.parametrize(("hostvars", "sandbox"), [
    ({}, "sb1"),  # default: the inventory name
    ({"ansible_openshell_sandbox": "my-assistant"}, "my-assistant"),  # the documented variable must win over it
], ids=["inventory-name", "ansible_openshell_sandbox"])
def test_the_sandbox_variable_names_the_sandbox(tmp_path, hostvars, sandbox):
    """ansible-core resolves an option's vars in order and the last one set wins (ansible/config/manager.py
    _loop_entries, ansible-core 2.19.14); inventory_hostname is always set, so it must come first."""
    rc, res = adhoc(tmp_path, fake_prefix(tmp_path), "ansible.builtin.ping", hostvars=hostvars)
    assert rc == 0 and res["ping"] == "pong", res
    assert set((tmp_path / "calls").read_text().split()) == {sandbox}
