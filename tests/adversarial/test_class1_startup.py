"""Class 1 - launcher start-up integrity: code the agent plants in its persistent home (/sandbox, the workspace PVC
that survives every restart) must not run before a new session is confined, and the new session must still be
hardened. Planted: a .pth in the user site (/sandbox/.local/lib/python3.11/site-packages: every non-isolated python3
of the agent runs it) and ~/.bash_profile (bash -l reads it after /etc/profile). Each records its seccomp state.

gap: sb-u (v0.0.26 as shipped) - the planted code runs in every session, and no session is hardened.
hardened: sb-a - the profile hook re-enters the session under the launcher (python3 -IS) before anything from the
home runs; ~/.bash_profile never runs (the session continues as bash -c), the .pth runs only in the agent's own
python3 processes, already under the session's filters.
"""
import secrets

import pytest
from conftest import GAP, HARDENED

pytestmark = [pytest.mark.adversarial, pytest.mark.oracle("kernel", "upstream")]
CONFIGS = {"gap": GAP[0], "hardened": HARDENED[0]}


@pytest.fixture
def planted(lab, request):
    sandbox = CONFIGS[request.param]
    log = f"/sandbox/.agentsec-adv-plant-{secrets.token_hex(3)}.log"
    got = lab.agent(sandbox, "plant", log=log)
    assert got["result"] == "planted", got
    yield request.param, sandbox, log
    lab.agent(sandbox, "unplant", pth=got["pth"], log=log)


@pytest.mark.parametrize("planted", sorted(CONFIGS), indirect=True)
def test_code_planted_in_home_never_runs_before_the_new_session_is_confined(lab, planted):
    config, sandbox, log = planted
    fresh = lab.agent(sandbox, "status")  # a new session (`python3 -I`: the kit itself never runs the plant)
    lab.shell(sandbox, "/usr/bin/python3 -c pass")  # the agent's own, non-isolated python3: the .pth runs here
    entries = lab.agent(sandbox, "read_log", log=log)["entries"]
    filters = {e["by"]: min(int(s.split()[-1]) for s in e["status"] if s.startswith("Seccomp_filters")) for e in entries}
    hardened = int(fresh["Seccomp_filters"]) >= 2 and fresh["landlock_dev_shm"] == "EACCES" and fresh["NoNewPrivs"] == "1"
    early = {by: n for by, n in filters.items() if n < int(fresh["Seccomp_filters"]) or n < 2}
    if config == "gap":
        # the attack works: ~/.bash_profile ran (bash -l) with v0.0.26's one filter, and the session is not hardened
        assert "bash_profile" in filters and early, entries
        assert not hardened, fresh
    else:
        assert "bash_profile" not in filters, entries
        assert not early, f"planted code ran with fewer filters than the session ({fresh['Seccomp_filters']}): {entries}"
        assert hardened, fresh
        assert filters.get("pth", 0) >= 2, entries  # it did run - confined - in the agent's plain python3
