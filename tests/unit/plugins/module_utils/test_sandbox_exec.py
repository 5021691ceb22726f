"""_sandbox_exec hands every argument and parameter to the sandbox exactly as given (issue 10: the earlier `ssh HOST`
prefix let the remote shell split `/bin/sh -c CMD` again). Oracle: kernel (execve passes an argv vector, no shell)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _sandbox_exec as X

pytestmark = pytest.mark.oracle("kernel")

HOSTILE = ["a b", "it's", 'say "hi"', "$HOME", "`id`", "$(id)", "; rm -rf /tmp/x", "*", "back\\slash", "tab\there", "ü"]


ECHO = ("import os\n"
        "def main(params):\n"
        "    return {'params': params, 'argv_env': {k: v for k, v in os.environ.items() if k.startswith('AGENTSEC_T')}}\n")


def _payload(params):
    # the same JSON document payload() builds, with a probe module given as source (BOOT execs it in the sandbox)
    return json.dumps({"packages": [], "modules": [["agentsec_echo_probe", ECHO]], "main": "agentsec_echo_probe",
                       "entry": "main", "params": params}).encode()


@pytest.mark.parametrize("value", HOSTILE)
def test_prefix_argument_arrives_intact(value):
    # the exec prefix is an argv list: `env NAME=VALUE` is a real program that receives VALUE as one argument
    prefix = [shutil.which("env"), f"AGENTSEC_TVALUE={value}", "AGENTSEC_TSANDBOX={sandbox}"]
    result = X.run_one(prefix, "sb-1", sys.executable, _payload({}), dict(os.environ), 60)
    assert "error" not in result, result
    assert result["argv_env"] == {"AGENTSEC_TVALUE": value, "AGENTSEC_TSANDBOX": "sb-1"}


def test_parameters_travel_on_stdin_intact():
    params = {"values": HOSTILE, "nested": {"k": "line1\nline2"}}
    result = X.run_one([shutil.which("env")], "sb", sys.executable, _payload(params), dict(os.environ), 60)
    assert result["params"] == params


def test_a_shell_prefix_would_split_it():
    # the attack the argv design prevents, shown with a real shell: joined and re-split, "a b" becomes two words
    # and "$(id)" runs - so the test above can fail if run_one ever goes through a shell
    joined = " ".join(["printf", "%s,", "a b", "$(echo injected)"])
    out = subprocess.run(["/bin/sh", "-c", joined], capture_output=True, text=True, check=True).stdout
    assert out == "a,b,injected,"


def test_unreachable_sandbox_is_an_error_not_a_pass(tmp_path):
    result = X.run_one([str(tmp_path / "missing-openshell")], "sb", sys.executable, _payload({}), dict(os.environ), 60)
    assert result["unreachable"] is True and "cannot run" in result["error"]
