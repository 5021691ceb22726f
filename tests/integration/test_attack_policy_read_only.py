"""Attack first: the agent writes where its sandbox policy says read-only (issue 13, "hardening that holds").

NemoClaw v0.0.21's policy makes the home /sandbox (and /sandbox/.openclaw) read-only and only /sandbox/.openclaw-data
and /sandbox/.nemoclaw writable, so the agent cannot plant files in its own start-up environment or change its gateway
configuration (nemoclaw-blueprint/policies/openclaw-sandbox.yaml @db3453b5, NemoClaw #514 and #804). OpenShell v0.0.26
never applies Landlock (#803), and a hardening launcher with one fixed ruleset (the collection's before this change:
/sandbox read-write) leaves the home writable - the "gap" case here. The "policy" case is the ruleset the hardening
now derives from the sandbox's own policy (_policy.landlock_lists). The kernel decides both; the verifier's
L1.policy_read_only probe, run under the same launcher, must report FAIL for the gap and PASS for the policy.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _policy, _verify
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import seccomp_launcher as L

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "seccomp_probe"))
import launch as H  # noqa: E402  (tests/integration/seccomp_probe/launch.py)

pytestmark = [
    pytest.mark.live_kernel,
    pytest.mark.oracle("kernel"),
    pytest.mark.skipif(sys.platform != "linux" or L.landlock_abi() < 1, reason="needs Landlock"),
]

# the verifier's probe and decision, run as the agent under the launcher (its source on stdin: the checkout is not
# inside the Landlock ruleset)
CHILD = ("import json,sys;src=sys.stdin.read();ns={'__name__':'v'};exec(compile(src,'_verify','exec'),ns);"
         "ro,rw=json.loads(sys.argv[1]),json.loads(sys.argv[2]);"
         "obs=ns['probe_policy_read_only'](ro,rw);st,res=ns['decide_policy_read_only'](obs,{});"
         "print(json.dumps({'status':st,'observed':res}))")


@pytest.fixture
def home(tmp_path):
    """A sandbox home the agent owns (DAC lets it write), with NemoClaw's writable state directory inside."""
    home = tmp_path / "sandbox"
    (home / ".openclaw-data").mkdir(parents=True)
    home.chmod(0o777)
    return home


def rulesets(home):
    # (pytest's tmp_path lies under /tmp, so /tmp itself stays out of both rulesets here)
    fs = {"include_workdir": False, "read_only": [str(home)], "read_write": [str(home / ".openclaw-data")]}
    policy_ro, policy_rw = _policy.landlock_lists(fs, str(home), ["/sys/fs/cgroup"])
    return fs, {"gap": ([], [str(home)]),  # a fixed ruleset with the home read-write
                "policy": (policy_ro, policy_rw)}


def attack(ruleset, target):
    ro, rw = ruleset
    cmd = [*H.launcher_cmd(None, H.landlock_args(ro=ro, rw=rw)), H.SYSTEM_PYTHON, "-I", "-S", "-c",
           f"import os;p={str(target)!r};fd=os.open(p,os.O_CREAT|os.O_WRONLY,0o600);os.close(fd);print('written')"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("variant", ["gap", "policy"])
def test_the_agent_plants_a_file_in_its_read_only_home(variant, home):
    _fs, sets = rulesets(home)
    res = attack(sets[variant], home / ".bash_profile")
    if variant == "gap":
        assert res.returncode == 0 and "written" in res.stdout, res.stderr
    else:
        assert res.returncode != 0 and "Permission denied" in res.stderr, (res.stdout, res.stderr)
        assert not (home / ".bash_profile").exists()
    # the writable state directory works either way
    assert attack(sets[variant], home / ".openclaw-data" / "state").returncode == 0


@pytest.mark.parametrize("variant, status", [("gap", "fail"), ("policy", "pass")])
def test_the_verifier_sees_which_one_it_is(variant, status, home):
    fs, sets = rulesets(home)
    ro, rw = sets[variant]
    cmd = [*H.launcher_cmd(None, H.landlock_args(ro=ro, rw=rw)), H.SYSTEM_PYTHON, "-I", "-S", "-c", CHILD,
           json.dumps(fs["read_only"]), json.dumps(fs["read_write"])]
    res = subprocess.run(cmd, input=open(_verify.__file__, encoding="utf-8").read(), capture_output=True, text=True,
                         timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["status"] == status, got
    assert got["observed"][str(home)] == ("ok" if variant == "gap" else "EACCES")
