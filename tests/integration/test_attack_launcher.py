"""Attack-first tests of the launcher's start-up integrity and robustness (issue 13, class 4).

The launcher starts with the agent's environment and persistent, agent-writable HOME, before the sandbox exists.
The attacks plant code where a plain ``python3`` picks it up (the user site's .pth files, a sitecustomize on
PYTHONPATH) and check whether it ran - and whether it ran outside the filter. "old" is how 0.1 started the launcher
(its shebang was ``#!/usr/bin/env python3``, i.e. a plain interpreter); "new" is ``python3 -I -S`` and the
installed file's own shebang.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _seccomp_policy as P
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import seccomp_launcher as L
from ansible_collections.agentsec.nemoclaw.plugins.modules import seccomp_filter

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "seccomp_probe"))
import launch as H  # noqa: E402  (tests/integration/seccomp_probe/launch.py)

pytestmark = [
    pytest.mark.live_kernel,
    pytest.mark.skipif(sys.platform != "linux" or not os.path.exists(H.SYSTEM_PYTHON), reason="needs Linux and /usr/bin/python3"),
]
OLD_COMMIT = "7f6e271"
PLANT = ("import os; open(os.path.join(os.environ['HOME'], 'planted'), 'w')"
         ".write([l for l in open('/proc/self/status') if l.startswith('Seccomp:')][0])\n")


@pytest.fixture(scope="module")
def filter_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("filter") / "agent.bpf"
    path.write_bytes(P.compile_policy(L.native_arch()).raw)
    return path


@pytest.fixture(scope="module")
def installed_launcher(tmp_path_factory):
    """The launcher as the module installs it (with its shebang), executable."""
    path = tmp_path_factory.mktemp("bin") / "seccomp-launch"
    path.write_bytes(seccomp_filter.launcher_source())
    path.chmod(0o755)
    return path


@pytest.fixture
def home(tmp_path):
    """An agent HOME with a user-site .pth that records whether (and under which seccomp mode) it ran."""
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
    site_dir = subprocess.run([H.SYSTEM_PYTHON, "-c", "import site; print(site.getusersitepackages())"], env=env,
                              capture_output=True, text=True, check=True).stdout.strip()
    assert site_dir.startswith(str(home))
    os.makedirs(site_dir)
    with open(os.path.join(site_dir, "agentsec-h1-plant.pth"), "w") as fh:
        fh.write(PLANT)
    return home, env


def start(variant, filter_path, installed_launcher, extra_env=None, home_env=None):
    env = {**home_env, **(extra_env or {})}
    if variant == "old":
        cmd = [H.SYSTEM_PYTHON, H.launcher_path(), "--filter", str(filter_path), "--", "/bin/true"]
    elif variant == "new":
        cmd = [*H.launcher_cmd(filter_path), "/bin/true"]
    else:  # the installed file run directly, through its shebang
        cmd = [str(installed_launcher), "--filter", str(filter_path), "--", "/bin/true"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.oracle("kernel")
@pytest.mark.parametrize("variant", ["old", "new", "shebang"])
def test_user_site_pth_in_home_never_runs_before_the_sandbox(variant, filter_path, installed_launcher, home):
    home_dir, env = home
    proc = start(variant, filter_path, installed_launcher, home_env=env)
    planted = home_dir / "planted"
    if variant == "old":
        assert planted.read_text() == "Seccomp:\t0\n"  # the agent's code ran, outside any filter
        assert proc.returncode == 7 and "started without isolation" in proc.stderr  # ... and today's launcher stops
        assert proc.stderr.count("\n") == 1
    else:
        assert proc.returncode == 0, proc.stderr
        assert not planted.exists()


@pytest.mark.oracle("kernel")
@pytest.mark.parametrize("variant", ["old", "new", "shebang"])
def test_pythonpath_sitecustomize_is_not_honoured(variant, filter_path, installed_launcher, home, tmp_path):
    home_dir, env = home
    plant = tmp_path / "plant"
    plant.mkdir()
    (plant / "sitecustomize.py").write_text(PLANT.replace("'planted'", "'planted-sitecustomize'"))
    proc = start(variant, filter_path, installed_launcher, {"PYTHONPATH": str(plant), "PYTHONSTARTUP": str(plant / "x")}, env)
    planted = home_dir / "planted-sitecustomize"
    if variant == "old":
        assert planted.read_text() == "Seccomp:\t0\n" and proc.returncode == 7
    else:
        assert proc.returncode == 0, proc.stderr
        assert not planted.exists()


@pytest.mark.oracle("self")
def test_isolation_check_names_what_is_missing():
    class Flags:
        isolated, no_site = 1, 1

    assert L.isolation_problem(Flags, {}) is None
    assert "missing -S" in L.isolation_problem(type("F", (), {"isolated": 1, "no_site": 0}), {})
    assert "sitecustomize loaded" in L.isolation_problem(Flags, {"sitecustomize": object()})


def _one_line_failure(proc, code, text):
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert proc.stderr.startswith("seccomp-launch: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr and text in proc.stderr


@pytest.fixture(scope="module")
def launchers(tmp_path_factory):
    """variant -> (launcher file, isolated?): "old" is the 0.1 launcher from git history (skipped without it)."""
    out = {"new": (H.launcher_path(), True)}
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    old = subprocess.run(["git", "-C", repo, "show", f"{OLD_COMMIT}:plugins/module_utils/seccomp_launcher.py"],
                         capture_output=True, check=False)
    if old.returncode == 0:
        path = tmp_path_factory.mktemp("old") / "seccomp-launch-0.1"
        path.write_bytes(old.stdout)
        out["old"] = (str(path), False)
    return out


def _launcher(launchers, variant):
    if variant not in launchers:
        pytest.skip(f"the 0.1 launcher ({OLD_COMMIT}) is not in this checkout's git history")
    return launchers[variant]


RO_NO_PROC = [a for p in ("/usr", "/lib", "/lib64", "/bin") if os.path.exists(p) for a in ("--landlock-ro", p)]


@pytest.mark.oracle("kernel")
@pytest.mark.parametrize("variant", ["old", "new"])
def test_landlock_without_proc_still_verifies_the_filter(filter_path, launchers, variant):
    """0.1 died with a PermissionError traceback here: it re-opened /proc/self/status after Landlock."""
    launcher, isolated = _launcher(launchers, variant)
    cmd = H.launcher_cmd(filter_path, RO_NO_PROC, isolated=isolated, launcher=launcher)
    proc = subprocess.run([*cmd, "/bin/cat", "/proc/self/status"], capture_output=True, text=True, timeout=60, check=False)
    if variant == "old":
        assert proc.returncode == 1 and "Traceback" in proc.stderr and "PermissionError" in proc.stderr
        return
    assert proc.returncode == 1 and "Permission denied" in proc.stderr  # cat itself: /proc is not in the ruleset
    assert "seccomp-launch" not in proc.stderr


@pytest.mark.oracle("kernel")
@pytest.mark.parametrize("variant", ["old", "new"])
def test_an_interpreter_outside_the_landlock_paths_still_launches(filter_path, launchers, variant):
    """A Python outside the read-only list (here the test venv's) works: everything is imported before Landlock."""
    if os.path.realpath(sys.executable).startswith(("/usr/", "/bin/")):
        pytest.skip("the test interpreter is under /usr")
    launcher, isolated = _launcher(launchers, variant)
    cmd = H.launcher_cmd(filter_path, [*RO_NO_PROC, "--landlock-ro", "/proc"], python=sys.executable, isolated=isolated,
                         launcher=launcher)
    proc = subprocess.run([*cmd, "/bin/true"], capture_output=True, text=True, timeout=60, check=False)
    if variant == "old":
        assert proc.returncode == 1 and "Traceback" in proc.stderr and "PermissionError" in proc.stderr
        return
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


@pytest.mark.oracle("kernel")
@pytest.mark.parametrize(("args", "code", "text"), [
    (["--bogus", "--", "/bin/true"], 2, "unknown argument '--bogus'"),
    (["--filter"], 2, "--filter needs a value"),
    (["--landlock-ro", "/usr"], 2, "missing command after --"),
    (["--landlock-ro", "/lib", "--", "/usr/bin/true"], 126, "cannot execute '/usr/bin/true': Permission denied"),
    (["--landlock-rw", "/tmp", "--", "/nonexistent/agentsec-h1"], 127, "cannot execute '/nonexistent/agentsec-h1'"),
])
def test_every_failure_is_one_line_and_a_documented_code(args, code, text):
    proc = subprocess.run([H.SYSTEM_PYTHON, "-I", "-S", H.launcher_path(), *args], capture_output=True, text=True,
                          timeout=60, check=False)
    _one_line_failure(proc, code, text)


@pytest.mark.oracle("kernel")
def test_not_isolated_is_exit_7():
    proc = subprocess.run([H.SYSTEM_PYTHON, H.launcher_path(), "--check", "--filter", "/dev/null"], capture_output=True,
                          text=True, timeout=60, check=False)
    _one_line_failure(proc, 7, "started without isolation (missing -I -S)")
