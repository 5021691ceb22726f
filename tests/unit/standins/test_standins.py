"""Tests for the stateful stand-ins in tests/standins (contract: tests/standins/README.md).

Every test gets its own state directory, fake root ($AGENTSEC_STANDIN_ROOT) and HOME under /tmp and runs the
stand-ins as real processes with a clean environment; tests that need a non-root user (brew refuses root) drop to
`nobody` through a preexec setuid. Nothing touches /opt/homebrew, /var/lib/agentsec-standins or the machine's Docker.
"""
from __future__ import annotations

import json
import os
import pwd
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

STANDINS = Path(__file__).resolve().parents[2] / "standins"
BIN = STANDINS / "bin"
REPO = STANDINS / "nemoclaw-repo"
SENTINEL = "nvapi-SENTINEL-7f3c9a-never-on-disk"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
MODEL = "nemotron-3-nano:30b"

sys.path.insert(0, str(STANDINS))
import _standin  # noqa: E402

if os.getuid() != 0:
    pytest.skip("the stand-in tests create files for other users and switch to `nobody`: run them as root",
                allow_module_level=True)


def _nobody():
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no unprivileged user `nobody` to run brew and the non-root checks as")


def _as_nobody() -> dict:
    """subprocess arguments that drop a child to `nobody` (setgid/setuid before exec)."""
    pw = _nobody()
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


def _ephemeral_range() -> tuple:
    """The ports the kernel hands out itself (bind to port 0, and the source port of every connect())."""
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return int(low), int(high)


def _free_port() -> int:
    """A port free on every address, below the kernel's ephemeral range. A port from bind(0) is in that range, and
    until the stand-in binds it (seconds later, onboarding step 3) any process's connect() may take it as its source
    port: the Ollama auth proxy then cannot listen, and onboarding fails with "containers cannot reach the auth proxy"
    (CI, 2026-12-02, with molecule running beside the unit tests). Below the range only an explicit bind collides."""
    low = _ephemeral_range()[0]
    rng = random.Random()
    for _attempt in range(200):
        port = rng.randrange(10000, low)
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in 10000-{low - 1}")


@pytest.mark.oracle("kernel")
def test_free_ports_are_outside_the_kernels_ephemeral_range():
    low, high = _ephemeral_range()
    ports = {_free_port() for _attempt in range(50)}
    assert all(10000 <= port < low for port in ports), (sorted(ports), low, high)
    for port in ports:  # still free: a listener can have it
        with socket.socket() as s:
            s.bind(("0.0.0.0", port))


class World:
    """One isolated stand-in world: state dir, fake root, HOME, clean environment."""

    def __init__(self, base: Path):
        self.base, self.state, self.root, self.home = base, base / "state", base / "root", base / "home"
        for d in (self.state, self.root, self.home):
            d.mkdir(mode=0o777)
            d.chmod(0o777)
        path = f"{BIN}:/usr/sbin:/usr/bin:/sbin:/bin"
        if not shutil.which("python3", path=path):
            path += f":{Path(sys.executable).parent}"
        self.env = {"PATH": path, "HOME": str(self.home), "AGENTSEC_STANDIN_DIR": str(self.state),
                    "AGENTSEC_STANDIN_ROOT": str(self.root), "AGENTSEC_CONSOLE_USER": "root", "LANG": "C.UTF-8"}

    def run(self, *argv, user=None, env=None, check=None, timeout=60, cwd=None):
        drop = _as_nobody() if user == "nobody" else {}
        res = subprocess.run([str(a) for a in argv], env={**self.env, **(env or {})}, capture_output=True, text=True,
                             timeout=timeout, cwd=cwd or self.base, check=False, **drop)
        if check is not None:
            assert res.returncode == check, (argv, res.returncode, res.stdout, res.stderr)
        return res

    def state_of(self, tool: str) -> dict:
        path = self.state / f"{tool}.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def calls(self, tool=None) -> list:
        path = self.state / "calls.jsonl"
        entries = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        return [e for e in entries if tool is None or e["tool"] == tool]

    def docker_running(self) -> None:
        """Docker Desktop "running" straight through the state, /var/run/docker.sock present (the fake root's)."""
        sock = self.root / "var/run/docker.sock"
        sock.parent.mkdir(parents=True, exist_ok=True)
        sock.touch()
        app = self.root / "Applications/Docker.app/Contents"
        app.mkdir(parents=True, exist_ok=True)
        (app / "Info.plist").write_bytes(__import__("plistlib").dumps({"CFBundleShortVersionString": "4.68.0"}))
        (self.state / "docker.json").write_text(json.dumps({"desktop": {"running": True, "installed_version": "4.68.0"}}))

    def kill_leftovers(self) -> None:
        pids = [f.get("pid") for f in self.state_of("openshell").get("forwards", {}).values()]
        pids += [j.get("pid") for j in self.state_of("launchctl").get("jobs", {}).values()]
        for pid in pids:
            if _standin.pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def world():
    base = Path(tempfile.mkdtemp(prefix="standins-", dir="/tmp"))
    base.chmod(0o755)
    w = World(base)
    yield w
    w.kill_leftovers()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def ollama(world):
    """`ollama serve` on a free loopback port; clients reach it through OLLAMA_HOST in world.env."""
    port = _free_port()
    world.env["OLLAMA_HOST"] = f"127.0.0.1:{port}"
    proc = subprocess.Popen([BIN / "ollama", "serve"], env=world.env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    for _attempt in range(100):
        try:
            urllib.request.urlopen(f"{url}/api/version", timeout=1).read()
            break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail(f"ollama stand-in did not start: {proc.stderr.read()}")
    yield url
    proc.terminate()
    proc.wait(timeout=5)


def _get(url: str):
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


# ---- shared helpers ---------------------------------------------------------------------------------------

@pytest.mark.oracle("self")
def test_record_keeps_secret_values_out_and_state_round_trips(world, monkeypatch):
    monkeypatch.setenv("AGENTSEC_STANDIN_DIR", str(world.state))
    monkeypatch.setenv("NVIDIA_API_KEY", SENTINEL)
    monkeypatch.setenv("NEMOCLAW_PROVIDER", "ollama")
    _standin.record("demo", ["a", "b"])
    entry = world.calls("demo")[0]
    assert entry["argv"] == ["a", "b"] and entry["uid"] == 0 and entry["env"]["NEMOCLAW_PROVIDER"] == "ollama"
    assert "NVIDIA_API_KEY" in entry["secret_env"] and "NVIDIA_API_KEY" not in entry["env"]
    assert SENTINEL not in (world.state / "calls.jsonl").read_text()
    assert _standin.fingerprint(SENTINEL) == "sha256:" + __import__("hashlib").sha256(SENTINEL.encode()).hexdigest()[:16]
    with _standin.state("demo") as st:
        st["n"] = 1
    with pytest.raises(SystemExit), _standin.state("demo") as st:
        st["n"] = 2
        _standin.die("boom")
    assert world.state_of("demo") == {"n": 1}  # an aborted command leaves the state untouched
    assert oct((world.state / "demo.json").stat().st_mode & 0o777) == "0o666"


@pytest.mark.oracle("self")
@pytest.mark.parametrize("argv", [
    ["docker", "frobnicate"], ["docker", "ps", "--bogus"], ["launchctl", "frobnicate"], ["ollama", "frobnicate"],
    ["openshell", "frobnicate"], ["openshell", "sandbox", "list", "--bogus"], ["xcode-select", "--bogus"],
    ["softwareupdate", "--bogus"], ["hdiutil", "frobnicate"], ["installer", "-bogus"], ["open", "--bogus"],
    ["pfctl", "-Z"], ["brew", "frobnicate"], ["docker-desktop-cli", "desktop", "frobnicate"],
    ["docker-desktop-cli", "desktop", "stop", "--bogus"],
])
def test_unknown_subcommand_or_option_is_a_usage_error(world, argv):
    res = world.run(BIN / argv[0], *argv[1:], user="nobody" if argv[0] == "brew" else None)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "usage" in res.stderr.lower()


# ---- macOS commands ---------------------------------------------------------------------------------------

@pytest.mark.oracle("upstream", "self")
@pytest.mark.parametrize(("offer", "via_state"), [("xcode16", False), ("xcode26", False), ("xcode26", True),
                                                  ("xcode16,xcode26", False)])
def test_command_line_tools_flow(world, offer, via_state):
    # Labels: `...for Xcode-16.3` up to Xcode 16, `...for Xcode 26.0-26.0` from Xcode 26 (microsoft/macos-cookbook#300)
    from ansible_collections.agentsec.nemoclaw.plugins.filter import fleet as FF
    env = {}
    if via_state:
        (world.state / "softwareupdate.json").write_text(json.dumps({"clt_offers": offer.split(",")}))
    else:
        env["AGENTSEC_SOFTWAREUPDATE_CLT"] = offer
    res = world.run("xcode-select", "-p", check=2)
    assert "unable to get active developer directory" in res.stderr
    assert "No new software available." in world.run("softwareupdate", "-l", env=env, check=0).stderr
    marker = world.root / "tmp/.com.apple.dt.CommandLineTools.installondemand.in-progress"
    marker.parent.mkdir(parents=True)
    marker.touch()
    listed = world.run("softwareupdate", "-l", env=env, check=0).stdout
    labels = re.findall(r"^\* Label: (.+)$", listed, re.M)
    expected = {"xcode16": "Command Line Tools for Xcode-16.3", "xcode26": "Command Line Tools for Xcode 26.0-26.0"}
    assert labels == [expected[o] for o in offer.split(",")] and "\tTitle: Command Line Tools" in listed
    if not via_state:
        assert "unknown CLT offer" in world.run("softwareupdate", "-l", env={"AGENTSEC_SOFTWAREUPDATE_CLT": "xcode99"}).stderr
    label = FF.clt_label(listed)  # what roles/prerequisites/tasks/macos_clt.yml installs
    assert label == expected[offer.split(",")[-1]]
    assert "No such update" in world.run("softwareupdate", "-i", "Bogus-1.0", env=env, check=1).stderr
    world.run("softwareupdate", "-i", label, "--agree-to-license", env=env, user="nobody", check=1)
    world.run("softwareupdate", "-i", label, "--agree-to-license", env=env, check=0)
    assert world.run("xcode-select", "-p", check=0).stdout.strip() == "/Library/Developer/CommandLineTools"
    assert (world.root / "Library/Developer/CommandLineTools/usr/bin/git").resolve() == Path(shutil.which("git")).resolve()


# ---- Docker Desktop: a real Docker Engine behind the stand-in (tests/standins/_desktop.py, README "Docker Desktop")

ENGINE_BINARIES = ("dockerd", "docker", "containerd", "containerd-shim-runc-v2", "runc", "docker-init", "docker-proxy")
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DD_SETTINGS = "Library/Group Containers/group.com.docker/settings-store.json"


def _engine_dir(base: Path) -> Path:
    """This machine's Docker Engine binaries linked into <base>/engine/bin, where the Mac has /opt/agentsec-engine/bin."""
    found = {name: shutil.which(name, path=SYSTEM_PATH) for name in ENGINE_BINARIES}
    missing = sorted(name for name, path in found.items() if path is None)
    if missing:
        pytest.skip(f"the Docker Desktop stand-in needs this machine's Docker Engine binaries; missing: {', '.join(missing)}")
    bin_dir = base / "engine/bin"
    bin_dir.mkdir(parents=True)
    for name, path in found.items():
        (bin_dir / name).symlink_to(path)
    return bin_dir.parent


def _kill_namespace(netns_inode: int) -> None:
    """SIGKILL every process still in the namespace (bounded: a few passes)."""
    for _attempt in range(5):
        pids = []
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    if os.stat(proc / "ns/net").st_ino == netns_inode:
                        pids.append(int(proc.name))
                except OSError:
                    continue
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)


@pytest.fixture
def mac(world):
    """A world whose Docker Desktop engine runs in a private network and mount namespace: the nested dockerd's bridge
    and iptables rules stay out of the build machine's network, and /run is a fresh tmpfs there - no system
    containerd and no /var/run/docker.sock, like the Mac. `world.mac(argv...)` runs a command inside; the Mac's
    docker CLI is `world.docker` (what the installer links as /usr/local/bin/docker)."""
    for tool in ("unshare", "nsenter"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} (util-linux) is needed to give the nested Docker Engine its own namespaces")
    world.env["AGENTSEC_ENGINE_DIR"] = str(_engine_dir(world.base))
    world.env["AGENTSEC_DESKTOP_CGROUP_PARENT"] = ""  # dockerd's default parent: no cgroup left behind on this machine
    holder = subprocess.Popen(["unshare", "--net", "--mount", "--propagation", "private", "--fork", "--kill-child",
                               "sh", "-c", "mount -t tmpfs -o mode=0755 tmpfs /run && echo ready && exec sleep 900"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if holder.stdout.readline().strip() != "ready":
        holder.kill()
        pytest.skip(f"no private network and mount namespace here: {holder.stderr.read().strip()}")
    netns = os.stat(f"/proc/{holder.pid}/ns/net").st_ino

    def inside(*argv, **kw):
        return world.run("nsenter", "-t", holder.pid, "-n", "-m", "--", *argv, **kw)
    world.mac, world.docker = inside, world.root / "usr/local/bin/docker"
    yield world
    if world.docker.exists() and world.state_of("docker-desktop").get("running"):
        ids = inside(world.docker, "ps", "-aq").stdout.split()
        if ids:
            inside(world.docker, "rm", "-f", *ids)
        inside(world.docker, "desktop", "stop", timeout=90)
    holder.kill()
    holder.wait(timeout=10)
    _kill_namespace(netns)


def _install_docker_desktop(world) -> None:
    """The prerequisites role's unattended install (roles/prerequisites/tasks/macos_docker.yml), by hand."""
    dmg = world.base / "Docker.dmg"
    dmg.write_text(json.dumps({"product": "Docker Desktop", "version": "4.68.0"}))
    mnt = world.base / "mnt"
    world.run("hdiutil", "attach", dmg, "-nobrowse", "-readonly", "-mountpoint", mnt, check=0)
    assert "Resource busy" in world.run("hdiutil", "attach", dmg, "-nobrowse", "-readonly", "-mountpoint", mnt).stderr
    installer = mnt / "Docker.app/Contents/MacOS/install"
    assert "You must accept the license" in world.run(installer, "--user=studio", check=1).stderr
    world.run(installer, "--accept-license", "--user=studio", check=0)
    world.run("hdiutil", "detach", mnt, check=0)
    assert not mnt.exists()


def _engine_version(world) -> str:
    """What the engine binary says it is (`dockerd --version`: "Docker version 20.10.24+dfsg1, build 5d6db84")."""
    out = subprocess.run([Path(world.env["AGENTSEC_ENGINE_DIR"]) / "bin/dockerd", "--version"], capture_output=True,
                         text=True, check=True).stdout
    return re.match(r"Docker version ([^,\s]+)", out).group(1)


def _wait_for(predicate, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


@pytest.mark.oracle("docker", "self")
def test_docker_desktop_install_start_and_socket_resolution(mac):
    w, docker = mac, mac.docker
    assert "Unable to find application named 'Docker'" in w.mac("open", "-a", "Docker", check=1).stderr
    _install_docker_desktop(w)
    import plistlib
    info = plistlib.loads((w.root / "Applications/Docker.app/Contents/Info.plist").read_bytes())
    assert info["CFBundleShortVersionString"] == "4.68.0"
    assert docker.resolve() == (BIN / "docker-desktop-cli").resolve()
    assert w.state_of("docker-desktop")["licence_accepted_for"] == "studio"
    # Before the first start the real client has no context and this Mac has no /var/run/docker.sock.
    res = w.mac(docker, "info", check=1)
    assert "Cannot connect to the Docker daemon at unix:///var/run/docker.sock" in res.stdout + res.stderr
    assert "Status              stopped" in w.mac(docker, "desktop", "status", check=0).stdout

    settings = w.home / DD_SETTINGS
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"Cpus": 6, "MemoryMiB": 12288, "DiskSizeMiB": 65536, "Other": 1}))
    w.mac("open", "-g", "-a", "Docker", "--args", "--unattended", check=0)
    first = w.state_of("docker-desktop")
    assert first["running"] and first["starts"] == 1 and _standin.pid_alive(first["pid"])
    assert first["applied_settings"] == {"Cpus": 6, "MemoryMiB": 12288, "DiskSizeMiB": 65536}
    sock = w.home / ".docker/run/docker.sock"
    assert first["socket"] == str(sock) and __import__("stat").S_ISSOCK(sock.stat().st_mode)
    assert json.loads(w.mac(docker, "desktop", "status", "--format", "json", check=0).stdout) == {"Status": "running"}
    # A real engine answers: through DOCKER_HOST, and without it through the context Docker Desktop created.
    version, host = _engine_version(w), {"DOCKER_HOST": f"unix://{sock}"}
    assert w.mac(docker, "version", "--format", "{{.Server.Version}}", env=host, check=0).stdout.strip() == version
    assert w.mac(docker, "info", "--format", "{{.ServerVersion}}", check=0).stdout.strip() == version
    contexts = w.mac(docker, "context", "ls", "--format", "{{.Name}} {{.Current}} {{.DockerEndpoint}}", check=0).stdout
    assert f"desktop-linux true unix://{sock}" in contexts.splitlines()

    settings.write_text(json.dumps({"Cpus": 8, "MemoryMiB": 16384}))
    w.mac("open", "-a", "Docker", check=0)  # already running: brought forward, no restart, settings not re-read
    again = w.state_of("docker-desktop")
    assert (again["pid"], again["starts"], again["applied_settings"]["Cpus"]) == (first["pid"], 1, 6)
    w.mac(docker, "desktop", "restart", check=0)
    restarted = w.state_of("docker-desktop")
    assert restarted["starts"] == 2 and restarted["pid"] != first["pid"] and not _standin.pid_alive(first["pid"])
    assert restarted["applied_settings"] == {"Cpus": 8, "MemoryMiB": 16384}
    w.mac(docker, "desktop", "stop", check=0)
    assert "Status              stopped" in w.mac(docker, "desktop", "status", check=0).stdout
    assert not sock.exists() and not _standin.pid_alive(restarted["pid"])
    res = w.mac(docker, "info", env=host, check=1)
    assert f"Cannot connect to the Docker daemon at unix://{sock}" in res.stdout + res.stderr
    verbs = [c["argv"][1] for c in w.calls("docker") if c["argv"][:1] == ["desktop"]]
    assert verbs == ["status", "status", "restart", "stop", "status"]


def _sleep_image(world, docker) -> str:
    """A registry-free image: this machine's sleep and the libraries it loads, `docker import`ed into the engine."""
    if shutil.which("ldd") is None:
        pytest.skip("ldd is needed to build the test image")
    libs = re.findall(r"(/\S+) \(0x", subprocess.run(["ldd", "/usr/bin/sleep"], capture_output=True, text=True,
                                                     check=True).stdout)
    tar = world.base / "sleep.tar"
    with tarfile.open(tar, "w") as t:
        for path in ["/usr/bin/sleep", *libs]:
            t.add(os.path.realpath(path), arcname=path.lstrip("/"))
    world.mac(docker, "import", "--change", 'CMD ["/usr/bin/sleep", "300"]', tar, "agentsec-standin/sleep:1", check=0)
    return "agentsec-standin/sleep:1"


@pytest.mark.oracle("docker")
def test_docker_desktop_restart_keeps_containers_as_their_restart_policy_says(mac):
    # The engine's own rule (docs.docker.com/engine/containers/start-containers-automatically/): `always` and
    # `unless-stopped` come back when the daemon does, `no` does not, and a container stopped by hand stays stopped.
    w, docker = mac, mac.docker
    _install_docker_desktop(w)
    w.mac("open", "-a", "Docker", check=0)
    image = _sleep_image(w, docker)
    policies = {"always": "always", "unless": "unless-stopped", "halted": "unless-stopped", "once": "no"}
    for name, policy in policies.items():
        w.mac(docker, "run", "-d", "--init", "--name", f"sb-{name}", "--restart", policy, image, check=0)
    w.mac(docker, "stop", "sb-halted", check=0)
    w.mac(docker, "desktop", "restart", check=0)

    def running():
        return {n: w.mac(docker, "inspect", "-f", "{{.State.Running}}", f"sb-{n}").stdout.strip() for n in policies}
    assert _wait_for(lambda: running() == {"always": "true", "unless": "true", "halted": "false", "once": "false"}), running()


def _hook(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


@pytest.mark.oracle("docker", "self")
def test_docker_desktop_runs_the_boot_hooks_once_the_engine_answers(mac):
    w, docker = mac, mac.docker
    _install_docker_desktop(w)
    hooks, out, hang = w.root / "etc/agentsec-standin/docker-started.d", w.base / "hook-out", w.base / "hang.pid"
    hooks.mkdir(parents=True)
    _hook(hooks / "10-world", f'#!/bin/sh\necho "$DOCKER_HOST $(docker info --format {{{{.ServerVersion}}}})" >> {out}\n'
                              "echo into-the-log\n")
    _hook(hooks / "20-fails", "#!/bin/sh\necho failing >&2\nexit 3\n")
    _hook(hooks / "30-hangs", f"#!/bin/sh\nsleep 60 &\necho $! > {hang}\nwait\n")
    (hooks / "05-notes.txt").write_text("not executable, not run\n")
    res = w.mac("open", "-a", "Docker", env={"AGENTSEC_DOCKER_HOOK_TIMEOUT": "2"}, check=0)
    assert "docker-started.d/20-fails: exit 3" in res.stderr and "docker-started.d/30-hangs: timed out" in res.stderr
    ran = w.state_of("docker-desktop")["hooks"]
    assert [(h["hook"], h["rc"]) for h in ran] == [("10-world", 0), ("20-fails", 3), ("30-hangs", "timeout")]
    sock = w.home / ".docker/run/docker.sock"
    assert out.read_text() == f"unix://{sock} {_engine_version(w)}\n"  # the engine answered when the hook ran
    assert _wait_for(lambda: not _standin.pid_alive(hang.read_text().strip()), 5)  # its whole group was killed
    log = (w.root / "var/log/agentsec-standin/docker-started.log").read_text()
    assert "into-the-log" in log and "failing" in log and "05-notes" not in log
    w.mac(docker, "desktop", "restart", env={"AGENTSEC_DOCKER_HOOK_TIMEOUT": "2"}, check=0)
    assert out.read_text().count("\n") == 2  # every start of the engine runs them again
    # the hooks use the engine's own client: their calls are not the Mac user's and stay out of the call log
    assert not [c for c in w.calls("docker") if c["argv"][:1] == ["info"]]


@pytest.mark.oracle("self")
def test_docker_desktop_cli_logs_no_secret_value(world):
    world.env["AGENTSEC_ENGINE_DIR"] = str(_engine_dir(world.base))
    cli, fp = BIN / "docker-desktop-cli", _standin.fingerprint(SENTINEL)
    env = {"DOCKER_HOST": f"unix://{world.base}/no-engine.sock", "NVIDIA_API_KEY": SENTINEL}  # nothing listens there
    res = world.run(cli, "run", "--rm", "-e", f"NVIDIA_API_KEY={SENTINEL}", f"--env=OPENAI_API_KEY={SENTINEL}",
                    "-e", "PLAIN=visible", "-e", "NVIDIA_API_KEY", "img", "true", env=env)
    assert res.returncode != 0 and "Cannot connect to the Docker daemon" in res.stderr  # the real client ran
    world.run(cli, "login", "-u", "me", "-p", SENTINEL, "registry.invalid", env=env)
    assert SENTINEL not in (world.state / "calls.jsonl").read_text()
    run, login = world.calls("docker")
    assert run["argv"] == ["run", "--rm", "-e", f"NVIDIA_API_KEY={fp}", f"--env=OPENAI_API_KEY={fp}", "-e",
                           "PLAIN=visible", "-e", "NVIDIA_API_KEY", "img", "true"]
    assert run["secret_env"] == ["NVIDIA_API_KEY"] and login["argv"] == ["login", "-u", "me", "-p", fp, "registry.invalid"]


def _app_only(world) -> None:
    app = world.root / "Applications/Docker.app/Contents"
    app.mkdir(parents=True)
    (app / "Info.plist").write_bytes(__import__("plistlib").dumps({"CFBundleShortVersionString": "4.68.0"}))


@pytest.mark.oracle("self")
def test_docker_desktop_needs_root_through_its_privileged_helper(world):
    world.env["AGENTSEC_ENGINE_DIR"] = str(_engine_dir(world.base))
    _app_only(world)
    cli = BIN / "docker-desktop-cli"
    res = world.run(cli, "desktop", "start", user="nobody", check=1)
    # no sudo on the machine, or `sudo -n` refused for a user without a sudoers entry: either way no engine
    assert "sudo" in res.stderr, res.stderr
    assert "must run as root" in world.run(cli, "__engine", "start", "--user", "nobody", user="nobody", check=1).stderr
    empty = world.base / "no-engine"
    (empty / "bin").mkdir(parents=True)
    res = world.run(cli, "desktop", "start", env={"AGENTSEC_ENGINE_DIR": str(empty)}, check=1)  # as root: no sudo
    assert f"the engine binaries docker-init, dockerd, docker are missing in {empty}/bin" in res.stderr
    assert not world.state_of("docker-desktop").get("running") and not (world.home / ".docker").exists()


@pytest.mark.oracle("self")
def test_docker_desktop_refuses_to_share_a_system_containerd(mac):
    # dockerd uses a system containerd it finds at /run/containerd/containerd.sock instead of starting its own
    # (moby cmd/dockerd/daemon_unix.go:140-154, daemon.go:746-757 @v20.10.24), and would share it with whatever else
    # uses it (on many build machines: the machine's own Docker). The stand-in refuses before it starts anything.
    w = mac
    _install_docker_desktop(w)
    w.mac("sh", "-c", "mkdir -p /run/containerd && touch /run/containerd/containerd.sock", check=0)  # the ns's /run only
    res = w.mac(w.docker, "desktop", "start", check=1)
    assert "a system containerd answers at /run/containerd/containerd.sock" in res.stderr
    assert not w.state_of("docker-desktop").get("running") and not (w.home / ".docker/run").exists()


# ---- brew -------------------------------------------------------------------------------------------------

def _homebrew(world) -> Path:
    """Install the Homebrew pkg stand-in for `nobody` and write a catalogue with ollama and a keg-only node@22."""
    pw = _nobody()
    world.env["AGENTSEC_CONSOLE_USER"] = "nobody"
    world.home.chmod(0o777)
    pkg = world.base / "Homebrew.pkg"
    pkg.write_text(json.dumps({"product": "Homebrew", "version": "4.6.0"}))
    world.run("installer", "-pkg", pkg, "-target", "/", check=0)
    node = world.base / "node-tree"
    (node / "bin").mkdir(parents=True)
    (node / "bin/node").write_text("#!/bin/sh\necho v22.22.0\n")
    (node / "bin/node").chmod(0o755)
    (world.state / "brew-catalogue.json").write_text(json.dumps({
        "ollama": {"version": "0.20.5", "bin": {"ollama": str(BIN / "ollama")}},
        "node@22": {"version": "22.22.0", "keg_only": True, "tree": str(node)}}))
    prefix = world.root / "opt/homebrew"
    assert (prefix / "bin/brew").lstat().st_uid == pw.pw_uid and prefix.stat().st_uid == pw.pw_uid
    return prefix


@pytest.mark.oracle("self")
def test_brew_refuses_root_and_installs_keg_only_formulae_unlinked(world):
    prefix = _homebrew(world)
    res = world.run(prefix / "bin/brew", "install", "ollama", check=1)
    assert res.stderr.startswith("Error: Running Homebrew as root is extremely dangerous and no longer supported.")
    world.run(prefix / "bin/brew", "install", "ollama", "node@22", user="nobody", check=0)
    assert (prefix / "bin/ollama").is_symlink() and (prefix / "bin/ollama").resolve() == (BIN / "ollama").resolve()
    assert not (prefix / "bin/node").exists()
    assert (prefix / "opt/node@22").resolve() == (prefix / "Cellar/node@22/22.22.0").resolve()
    assert world.run(prefix / "opt/node@22/bin/node", check=0).stdout.strip() == "v22.22.0"
    again = world.run(prefix / "bin/brew", "install", "ollama", user="nobody", check=0)
    assert "Warning: ollama 0.20.5 is already installed and up-to-date." in again.stderr
    assert world.run(prefix / "bin/brew", "list", "--versions", user="nobody", check=0).stdout.split("\n")[:2] == \
        ["node@22 22.22.0", "ollama 0.20.5"]
    assert world.run(prefix / "bin/brew", "--prefix", "node@22", user="nobody", check=0).stdout.strip() == \
        str(prefix / "opt/node@22")
    assert 'No available formula with the name "nosuch".' in \
        world.run(prefix / "bin/brew", "install", "nosuch", user="nobody", check=1).stderr
    world.run(prefix / "bin/brew", "uninstall", "--force", "ollama", user="nobody", check=0)
    assert not (prefix / "bin/ollama").exists() and not (prefix / "Cellar/ollama").exists()


@pytest.mark.oracle("ansible-core", "self")  # community.general.homebrew (the pinned ansible package) parses it
def test_brew_info_json_is_what_community_general_homebrew_parses(world, module_runner, monkeypatch):
    homebrew = pytest.importorskip("ansible_collections.community.general.plugins.modules.homebrew")
    from ansible.module_utils import basic
    prefix = _homebrew(world)

    def run_as_mac_user(self, args, **kwargs):
        argv = shlex.split(args) if isinstance(args, str) else [str(a) for a in args]
        res = subprocess.run(argv, env=world.env, capture_output=True, text=True, check=False, **_as_nobody())
        return res.returncode, res.stdout, res.stderr
    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_as_mac_user)
    args = {"name": ["ollama", "node@22"], "state": "present", "path": str(prefix / "bin")}
    ok, result = module_runner(homebrew.main, args)
    assert ok and result["changed"], result
    assert sorted(result["changed_pkgs"]) == ["node@22", "ollama"]
    ok, result = module_runner(homebrew.main, args)
    assert ok and not result["changed"] and sorted(result["unchanged_pkgs"]) == ["node@22", "ollama"], result
    ok, result = module_runner(homebrew.main, {**args, "name": ["nosuch"]})
    assert not ok and 'No available formula with the name "nosuch"' in result["msg"]
    info = json.loads(world.run(prefix / "bin/brew", "info", "--json=v2", "node@22", "--formula", user="nobody",
                                check=0).stdout)
    assert info["casks"] == [] and info["formulae"][0]["keg_only"] is True
    assert info["formulae"][0]["installed"][0]["version"] == "22.22.0" and info["formulae"][0]["linked_keg"] is None


# ---- launchctl --------------------------------------------------------------------------------------------

@pytest.mark.oracle("ansible-core", "self")  # community.general.launchd parses the listing
def test_launchctl_runs_jobs_for_real_and_community_general_launchd_parses_list(world, module_runner, monkeypatch):
    launchd = pytest.importorskip("ansible_collections.community.general.plugins.modules.launchd")
    import plistlib
    label = "com.agentsec.standin-test"
    agents = world.home / "Library/LaunchAgents"
    agents.mkdir(parents=True)
    out = world.base / "job.out"
    plist = agents / f"{label}.plist"
    plist.write_bytes(plistlib.dumps({
        "Label": label, "RunAtLoad": True, "EnvironmentVariables": {"AGENTSEC_MARK": "launched-by-standin"},
        "ProgramArguments": ["/bin/sh", "-c", "echo $AGENTSEC_MARK; exec sleep 60"], "StandardOutPath": str(out)}))
    world.run("launchctl", "load", "-w", plist, check=0)
    assert "service already loaded" in world.run("launchctl", "load", plist, check=0).stderr
    assert world.run("launchctl", "bootstrap", "system", plist).returncode == 5
    lines = world.run("launchctl", "list", check=0).stdout.splitlines()
    assert lines[0] == "PID\tStatus\tLabel"
    pid = int(next(line.split("\t")[0] for line in lines[1:] if line.endswith(label)))
    assert _standin.pid_alive(pid) and b"sleep" in Path(f"/proc/{pid}/cmdline").read_bytes()
    for _attempt in range(50):
        if out.exists() and out.read_text():
            break
        time.sleep(0.02)
    assert out.read_text() == "launched-by-standin\n"
    assert f'"PID" = {pid};' in world.run("launchctl", "list", label, check=0).stdout
    assert "state = running" in world.run("launchctl", "print", f"system/{label}", check=0).stdout

    for key, value in world.env.items():
        monkeypatch.setenv(key, value)
    ok, result = module_runner(launchd.main, {"name": label, "state": "unloaded"})
    assert ok, result
    assert result["status"]["previous_state"] == "started" and result["status"]["previous_pid"] == str(pid)
    assert result["status"]["current_state"] == "unloaded" and result["changed"]
    assert not _standin.pid_alive(pid)
    assert world.run("launchctl", "list", label).returncode == 113
    assert world.run("launchctl", "bootout", f"system/{label}").returncode == 3


# ---- ollama -----------------------------------------------------------------------------------------------

@pytest.mark.oracle("self")
def test_ollama_serve_pull_list_over_http(world, ollama):
    assert world.run("ollama", "--version", check=0).stdout.strip() == "ollama version is 0.20.5"
    assert _get(f"{ollama}/api/tags") == {"models": []}
    res = world.run("ollama", "pull", "no-such-model:1b", check=1)
    assert "Error: pull model manifest: file does not exist" in res.stderr
    pulled = world.run("ollama", "pull", MODEL, check=0).stdout.splitlines()
    assert pulled[0] == "pulling manifest" and pulled[-1] == "success"
    table = world.run("ollama", "list", check=0).stdout.splitlines()
    assert re.split(r"\s{2,}", table[0]) == ["NAME", "ID", "SIZE", "MODIFIED"]
    assert re.split(r"\s{2,}", table[1])[0] == MODEL and "24 GB" in table[1]
    model = _get(f"{ollama}/api/tags")["models"][0]
    assert model["name"] == model["model"] == MODEL and model["size"] == 24000000000 and model["digest"].startswith("sha256:")
    req = urllib.request.Request(f"{ollama}/api/generate", method="POST",
                                 data=json.dumps({"model": MODEL, "prompt": "hi", "stream": False}).encode())
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert "stand-in" in json.loads(resp.read())["response"]
    assert _get(f"{ollama}/v1/models")["data"][0]["id"] == MODEL
    assert MODEL in world.run("ollama", "ps", check=0).stdout
    world.run("ollama", "rm", MODEL, check=0)
    assert _get(f"{ollama}/api/tags") == {"models": []}
    down = {"OLLAMA_HOST": f"127.0.0.1:{_free_port()}"}
    assert world.run("ollama", "list", env=down, check=1).stderr.strip() == \
        "Error: could not connect to ollama app, is it running?"


# ---- openshell --------------------------------------------------------------------------------------------

def _plain(text: str) -> str:
    return ANSI.sub("", text)


@pytest.mark.oracle("self")
def test_openshell_gateway_sandboxes_and_inference(world):
    assert world.run("openshell", "--version", check=0).stdout.strip() == "openshell 0.0.26"
    res = world.run("openshell", "gateway", "start", check=1)
    assert "Failed to connect to Docker" in res.stderr
    world.docker_running()
    world.run("openshell", "gateway", "start", "--name", "nemoclaw", check=0)
    started = world.state_of("docker")["containers"]["openshell-cluster-nemoclaw"]["started_at"]
    again = world.run("openshell", "gateway", "start", "--name", "nemoclaw", check=0)
    assert "Gateway 'nemoclaw' is already running." in _plain(again.stderr)
    assert world.state_of("docker")["containers"]["openshell-cluster-nemoclaw"]["started_at"] == started
    assert world.run("docker", "ps", "--format", "{{.Names}}", check=0).stdout.split() == ["openshell-cluster-nemoclaw"]
    assert (world.home / ".config/openshell/active_gateway").read_text() == "nemoclaw"
    status = world.run("openshell", "status", check=0).stdout
    assert "\x1b[" in status  # owo-colors: the real CLI colours even when piped
    assert _plain(status).splitlines() == ["Server Status", "", "  Gateway: nemoclaw", "  Server: https://127.0.0.1:8080",
                                           "  Status: Connected", "  Version: 0.0.26"]
    assert "No gateway metadata found for 'other'" in world.run("openshell", "gateway", "info", "-g", "other").stderr
    world.run("docker", "desktop", "stop", check=0)  # the VM stops and the cluster container with it
    assert "  Status: Disconnected" in _plain(world.run("openshell", "status", check=0).stdout)
    world.run("docker", "desktop", "start", check=0)  # restart policy unless-stopped brings it back
    assert "  Status: Connected" in _plain(world.run("openshell", "status", check=0).stdout)

    assert world.run("openshell", "sandbox", "list", check=0).stdout == "No sandboxes found.\n"
    policy = REPO / "nemoclaw-blueprint/policies/openclaw-sandbox.yaml"
    world.run("openshell", "sandbox", "create", "--name", "my-assistant", "--policy", policy, "--", "env", "A=b",
              "nemoclaw-start", check=0)
    assert "already exists" in world.run("openshell", "sandbox", "create", "--name", "my-assistant", check=1).stderr
    table = _plain(world.run("openshell", "sandbox", "list", check=0).stdout).splitlines()
    assert re.fullmatch(r"NAME {8}  NAMESPACE  CREATED {12}  PHASE", table[0]), table
    assert re.fullmatch(r"my-assistant  openshell  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d  Ready", table[1]), table
    assert "pod=\"openshell/my-assistant\"" in world.run("docker", "logs", "openshell-cluster-nemoclaw", check=0).stderr

    assert _plain(world.run("openshell", "inference", "get", check=0).stdout) == \
        "Gateway inference:\n\n  Not configured\n\nSystem inference:\n\n  Not configured\n"
    world.run("openshell", "provider", "create", "--name", "ollama-local", "--type", "openai", "--credential",
              "OPENAI_API_KEY=ollama", "--config", "OPENAI_BASE_URL=http://host.openshell.internal:11434/v1", check=0)
    assert "provider 'nope' not found" in \
        world.run("openshell", "inference", "set", "--provider", "nope", "--model", MODEL, check=1).stderr
    world.run("openshell", "inference", "set", "--no-verify", "--provider", "ollama-local", "--model", MODEL, check=0)
    assert _plain(world.run("openshell", "inference", "get", check=0).stdout).splitlines()[:5] == \
        ["Gateway inference:", "", "  Provider: ollama-local", f"  Model: {MODEL}", "  Version: 1"]

    world.run("openshell", "gateway", "stop", "-g", "nemoclaw", check=0)
    assert "  Status: Disconnected" in _plain(world.run("openshell", "status", check=0).stdout)
    assert "Gateway not reachable" in world.run("openshell", "sandbox", "create", "--name", "x", check=1).stderr
    world.run("openshell", "gateway", "destroy", "-g", "nemoclaw", check=0)
    assert world.run("docker", "ps", "-a", "--format", "{{.Names}}", check=0).stdout == ""
    assert "No gateway configured." in _plain(world.run("openshell", "status", check=0).stdout)


@pytest.mark.oracle("self")
def test_openshell_0_0_37_has_no_gateway_start(world):
    legacy = world.base / "v37"
    legacy.mkdir()
    (legacy / "openshell").write_text(_standin.bundle(BIN / "openshell", {"openshell_version": "0.0.37"}))
    (legacy / "openshell").chmod(0o755)
    assert world.run(legacy / "openshell", "--version", check=0).stdout.strip() == "openshell 0.0.37"
    res = world.run(legacy / "openshell", "gateway", "start", "--name", "nemoclaw", check=2)
    assert "unrecognized subcommand 'start'" in res.stderr


@pytest.mark.oracle("self")
def test_openshell_exec_probe_reaches_ollama_through_the_route(world, ollama):
    world.docker_running()
    world.run("ollama", "pull", MODEL, check=0)
    port = ollama.rsplit(":", 1)[1]
    world.run("openshell", "gateway", "start", check=0)
    world.run("openshell", "sandbox", "create", "--name", "sb1", check=0)
    world.run("openshell", "provider", "create", "--name", "ollama-local", "--type", "openai", "--credential",
              "OPENAI_API_KEY=ollama", "--config", f"OPENAI_BASE_URL=http://host.openshell.internal:{port}/v1", check=0)
    probe = ["openshell", "sandbox", "exec", "-n", "sb1", "--no-tty", "--", "curl", "-sf", "-m", "10"]
    assert world.run(*probe, "https://inference.local/v1/models").returncode == 22  # no route yet: 503
    # Without --no-verify the stand-in verifies the endpoint with a real request, like the gateway.
    world.run("openshell", "inference", "set", "--provider", "ollama-local", "--model", MODEL, check=0)
    models = json.loads(world.run(*probe, "https://inference.local/v1/models", check=0).stdout)
    assert models["data"][0]["id"] == MODEL
    body = json.dumps({"model": "whatever-the-agent-asks", "messages": [{"role": "user", "content": "hi"}]})
    answer = json.loads(world.run(*probe, "https://inference.local/v1/chat/completions", "-d", body, check=0).stdout)
    assert answer["model"] == MODEL and "stand-in" in answer["choices"][0]["message"]["content"]
    res = world.run("openshell", "sandbox", "exec", "-n", "sb1", "--", "cat", "/etc/passwd", check=126)
    assert "only inference.local probes are emulated" in res.stderr
    assert "is not ready" in world.run("openshell", "sandbox", "exec", "-n", "nope", "--", "true", check=1).stderr


# ---- nemoclaw ---------------------------------------------------------------------------------------------
# The stand-in models NemoClaw v0.0.21 (tag = commit db3453b5 of NVIDIA/NemoClaw; src/lib/onboard.ts etc. there).
# OpenShell verbs the current openshell/docker stand-ins lack (sandbox connect, doctor exec, sandbox download,
# docker run) are served by tests/unit/standins/openshell_gaps.py until the lead's k3s stand-in serves them.

GAPS = Path(__file__).resolve().parent / "openshell_gaps.py"
NC_STEPS = ["Preflight checks", "Starting OpenShell gateway", "Configuring inference (NIM)",  # onboard.ts:5866-5875
            "Setting up inference provider", "Messaging channels", "Creating sandbox",
            "Setting up OpenClaw inside sandbox", "Policy presets"]
needs_node = pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None, reason="node and npm are needed")


@pytest.fixture(scope="module")
def nemoclaw_cli(tmp_path_factory):
    """A built copy of the stand-in repository (`npm run build:cli`), `_standin.py` in bin/ as build_artifacts.py
    commits it; returns (checkout, directory with a `nemoclaw` link to bin/nemoclaw.js)."""
    if shutil.which("node") is None:
        pytest.skip("node is needed")
    base = tmp_path_factory.mktemp("nemoclaw-cli")
    base.chmod(0o755)
    repo = base / "repo"
    shutil.copytree(REPO, repo, ignore=shutil.ignore_patterns("node_modules", "dist", "__pycache__", ".version"))
    shutil.copy(STANDINS / "_standin.py", repo / "bin/_standin.py")
    subprocess.run(["node", "scripts/build-cli.js", "-p", "tsconfig.src.json"], cwd=repo, check=True, capture_output=True)
    links = base / "links"
    links.mkdir()
    (links / "nemoclaw").symlink_to(repo / "bin/nemoclaw.js")
    return repo, links


@pytest.fixture
def nc(world, ollama, nemoclaw_cli):
    """A Mac world for NemoClaw: Docker Desktop running, the model pulled, free ports for everything NemoClaw binds or
    probes (NEMOCLAW_*_PORT, upstream's own overrides, src/lib/ports.ts @db3453b5), the gaps bridge on PATH."""
    repo, links = nemoclaw_cli
    world.docker_running()
    world.run("ollama", "pull", MODEL, check=0)
    bridge = world.base / "bridge"
    bridge.mkdir()
    for tool in ("openshell", "docker"):
        (bridge / tool).symlink_to(GAPS)
    world.env["PATH"] = f"{links}:{bridge}:{world.env['PATH']}"
    ports = {"NEMOCLAW_OLLAMA_PORT": ollama.rsplit(":", 1)[1], "NEMOCLAW_OLLAMA_PROXY_PORT": str(_free_port()),
             "NEMOCLAW_GATEWAY_PORT": str(_free_port()), "NEMOCLAW_DASHBOARD_PORT": str(_free_port())}
    world.env.update(ports, NEMOCLAW_NON_INTERACTIVE="1", AGENTSEC_STANDIN_TIME_SCALE="0.01")
    world.nc_repo = repo
    yield world
    pid = world.home / ".nemoclaw/ollama-auth-proxy.pid"
    if pid.exists() and _standin.pid_alive(pid.read_text().strip()):
        os.kill(int(pid.read_text().strip()), signal.SIGKILL)


def _onboard(world, **env):
    return world.run("nemoclaw", "onboard", env=env, timeout=120)


def _openshell_argv(world, since=0):
    return [c["argv"] for c in world.calls()[since:] if c["tool"] == "openshell"]


def _registry(world) -> dict:
    return json.loads((world.home / ".nemoclaw/sandboxes.json").read_text())


ACCEPT = {"NEMOCLAW_ACCEPT_THIRD_PARTY_SOFTWARE": "1"}
OLLAMA = {"NEMOCLAW_PROVIDER": "ollama", "NEMOCLAW_POLICY_MODE": "custom", "NEMOCLAW_POLICY_PRESETS": "pypi,npm"}


@pytest.mark.oracle("upstream")
@needs_node
def test_nemoclaw_cli_needs_build_cli(world, tmp_path):
    # v0.0.21: package.json bin -> bin/nemoclaw.js, which only loads ../dist/nemoclaw (bin/nemoclaw.js:6 @db3453b5);
    # dist/ comes from `npm run build:cli` (package.json:17), so installing and linking with --ignore-scripts (what
    # the installer does, scripts/install.sh:933-936) without build:cli leaves a CLI that cannot start.
    work = tmp_path / "nemoclaw"
    shutil.copytree(REPO, work, ignore=shutil.ignore_patterns("node_modules", "dist", "__pycache__", ".version"))
    shutil.copy(STANDINS / "_standin.py", work / "bin/_standin.py")
    pkg = json.loads((work / "package.json").read_text())
    assert pkg["bin"] == {"nemoclaw": "./bin/nemoclaw.js"} and "build:cli" in pkg["scripts"] and pkg["version"] == "0.1.0"
    npm = {"PATH": f"{Path(shutil.which('npm')).parent}:{world.env['PATH']}", "npm_config_prefix": str(tmp_path / "npm"),
           "npm_config_cache": str(tmp_path / "npm-cache"), "npm_config_offline": "true", "npm_config_audit": "false",
           "npm_config_fund": "false", "npm_config_update_notifier": "false"}
    world.run("npm", "install", "--ignore-scripts", env=npm, cwd=work, check=0)
    world.run("npm", "link", "--ignore-scripts", env=npm, cwd=work, check=0)
    linked = tmp_path / "npm/bin/nemoclaw"
    res = world.run(linked, "--version", env=npm)
    assert res.returncode == 1 and "Cannot find module '../dist/nemoclaw'" in res.stderr
    world.run("npm", "run", "build:cli", env=npm, cwd=work, check=0)
    assert (work / "dist/nemoclaw.py").read_text().startswith("# compiled by build:cli from src/nemoclaw.py")
    # outside a git checkout the version is package.json's 0.1.0, as upstream's getVersion falls back (version.ts)
    assert world.run(linked, "--version", env=npm, check=0).stdout.strip() == "nemoclaw v0.1.0"
    world.run("npm", "run", "build", env=npm, cwd=work / "nemoclaw", check=0)
    assert (work / "nemoclaw/dist/index.js").is_file()
    shutil.rmtree(work / "src")  # build:cli is a real step: without sources it fails (tsc's TS18003)
    failed = world.run("npm", "run", "build:cli", env=npm, cwd=work)
    assert failed.returncode != 0 and "No inputs were found" in failed.stderr


@pytest.mark.oracle("upstream")
@needs_node
def test_nemoclaw_onboard_needs_the_third_party_notice_accepted(nc):
    res = _onboard(nc, **OLLAMA)
    # usage-notice.ts:129-135 @db3453b5: non-interactive without the flag/env exits 1 before anything else ran
    assert res.returncode == 1
    assert ("Non-interactive onboarding requires --yes-i-accept-third-party-software or "
            "NEMOCLAW_ACCEPT_THIRD_PARTY_SOFTWARE=1.") in res.stderr
    assert _openshell_argv(nc) == [] and not (nc.home / ".nemoclaw/usage-notice.json").exists()
    assert "Interactive onboarding requires a TTY" in nc.run("nemoclaw", "onboard", env={"NEMOCLAW_NON_INTERACTIVE": ""}).stderr
    assert "Unknown onboard option(s): --bogus" in nc.run("nemoclaw", "onboard", "--bogus").stderr


@pytest.mark.oracle("upstream")
@needs_node
def test_nemoclaw_onboard_with_ollama_through_the_auth_proxy(nc):
    first = _onboard(nc, **OLLAMA, **ACCEPT)
    assert first.returncode == 0, first.stdout + first.stderr
    headers = re.findall(r"^  \[(\d)/8\] (.+)$", first.stdout, re.M)
    assert headers == [(str(n), title) for n, title in enumerate(NC_STEPS, 1)]
    accepted = json.loads((nc.home / ".nemoclaw/usage-notice.json").read_text())
    assert accepted["acceptedVersion"] == "2026-04-01b"  # bin/lib/usage-notice.json:2 @db3453b5
    assert oct((nc.home / ".nemoclaw/usage-notice.json").stat().st_mode & 0o777) == "0o600"
    reg = _registry(nc)
    sb = reg["sandboxes"]["my-assistant"]
    assert reg["defaultSandbox"] == "my-assistant"
    assert (sb["provider"], sb["model"], sb["policies"], sb["policyTier"]) == ("ollama-local", MODEL, ["pypi", "npm"], "balanced")

    # the route goes through the proxy (local-inference.ts:51-58), whose token is the provider's credential
    proxy_port = nc.env["NEMOCLAW_OLLAMA_PROXY_PORT"]
    gw = nc.state_of("openshell")["gateways"]["nemoclaw"]
    assert gw["providers"]["ollama-local"]["config"]["OPENAI_BASE_URL"] == f"http://host.openshell.internal:{proxy_port}/v1"
    token = (nc.home / ".nemoclaw/ollama-proxy-token").read_text().strip()
    assert len(token) == 48 and oct((nc.home / ".nemoclaw/ollama-proxy-token").stat().st_mode & 0o777) == "0o600"
    assert gw["providers"]["ollama-local"]["credentials"] == {"OPENAI_API_KEY": _standin.fingerprint(token)}
    assert (gw["routes"]["inference.local"]["provider"], gw["routes"]["inference.local"]["timeout"]) == ("ollama-local", 180)
    # scripts/ollama-auth-proxy.js:31-44: 401 without the Bearer token, /api/tags open, the rest forwarded with it
    url = f"http://127.0.0.1:{proxy_port}"
    req = urllib.request.Request(f"{url}/v1/models")
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(req, timeout=5)
    assert denied.value.code == 401
    assert MODEL in json.dumps(_get(f"{url}/api/tags"))
    req.add_header("Authorization", f"Bearer {token}")
    assert json.loads(urllib.request.urlopen(req, timeout=5).read())["data"][0]["id"] == MODEL
    proxy_pid = int((nc.home / ".nemoclaw/ollama-auth-proxy.pid").read_text())
    assert "ollama-auth-proxy.js" in Path(f"/proc/{proxy_pid}/cmdline").read_text()

    # step 7 writes the selection config inside the sandbox (`openshell sandbox connect`, onboard.ts:4839-4864)
    inside = json.loads((nc.state / "sandbox-homes/my-assistant/.nemoclaw/config.json").read_text())
    assert (inside["provider"], inside["model"], inside["endpointUrl"]) == ("ollama-local", MODEL, "https://inference.local/v1")
    assert not (nc.home / ".nemoclaw/config.json").exists()
    calls = _openshell_argv(nc)
    create = next(c for c in calls if c[:2] == ["sandbox", "create"])
    dash = nc.env["NEMOCLAW_DASHBOARD_PORT"]
    assert create[-4:] == ["env", f"CHAT_UI_URL=http://127.0.0.1:{dash}", f"NEMOCLAW_DASHBOARD_PORT={dash}", "nemoclaw-start"]
    assert create[create.index("--policy") + 1].endswith("nemoclaw-blueprint/policies/openclaw-sandbox.yaml")
    assert ["forward", "start", "--background", dash, "my-assistant"] in calls
    assert ["doctor", "exec", "--", "kubectl", "-n", "openshell", "get", "pod", "my-assistant", "-o",
            "jsonpath={.status.phase}"] in calls
    assert [c[:3] for c in calls if c[:2] == ["policy", "set"]] == [["policy", "set", "--policy"]] * 2
    assert calls.count(["gateway", "start", "--name", "nemoclaw", "--port", nc.env["NEMOCLAW_GATEWAY_PORT"]]) == 1

    # again, without the consent variable (recorded) and without recreate: the healthy gateway is reused (#953) and so
    # is the Ready, registered sandbox (onboard.ts:3088-3096)
    mark = len(nc.calls())
    second = _onboard(nc, **OLLAMA)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "[reuse] Skipping gateway (running)" in second.stdout
    assert "Sandbox 'my-assistant' exists and is ready — reusing it" in second.stdout
    again = _openshell_argv(nc, mark)
    destructive = (["gateway", "start"], ["gateway", "destroy"], ["sandbox", "create"], ["sandbox", "delete"])
    assert not [c for c in again if c[:2] in destructive]
    assert "my-assistant" in nc.state_of("openshell")["gateways"]["nemoclaw"]["sandboxes"]
    # ... and the v0.0.21 token divergence: step 3 respawns the proxy with a fresh token (onboard.ts:1904-1925), step 4
    # finds that proxy alive and takes the *persisted* token for the file and the provider (onboard.ts:1927-1935,
    # 4455-4462) - the running proxy now refuses the route's credential (later fixed upstream: NVIDIA/NemoClaw#2553)
    assert (nc.home / ".nemoclaw/ollama-proxy-token").read_text().strip() == token
    assert int((nc.home / ".nemoclaw/ollama-auth-proxy.pid").read_text()) != proxy_pid
    assert nc.state_of("openshell")["gateways"]["nemoclaw"]["providers"]["ollama-local"]["credentials"] == \
        {"OPENAI_API_KEY": _standin.fingerprint(token)}
    with pytest.raises(urllib.error.HTTPError) as diverged:
        urllib.request.urlopen(req, timeout=5)
    assert diverged.value.code == 401

    # recreate: delete, create, and the previous presets come back (onboard.ts:3181-3193, 5454-5466)
    mark = len(nc.calls())
    third = _onboard(nc, NEMOCLAW_RECREATE_SANDBOX="1", NEMOCLAW_PROVIDER="ollama", NEMOCLAW_POLICY_MODE="skip")
    assert third.returncode == 0, third.stdout + third.stderr
    again = _openshell_argv(nc, mark)
    assert ["sandbox", "delete", "my-assistant"] in again and any(c[:2] == ["sandbox", "create"] for c in again)
    assert "[resume] Reapplying policy presets: pypi, npm" in third.stdout
    assert _registry(nc)["sandboxes"]["my-assistant"]["policies"] == ["pypi", "npm"]

    # destroy the last sandbox: gateway and forward go too (nemoclaw.ts:137-144, 1919-1927), the proxy stays
    mark = len(nc.calls())
    gone = nc.run("nemoclaw", "my-assistant", "destroy", "--yes", check=0)
    assert "✓ Sandbox 'my-assistant' destroyed" in gone.stdout
    assert _openshell_argv(nc, mark)[:1] == [["sandbox", "delete", "my-assistant"]]
    assert ["gateway", "destroy", "-g", "nemoclaw"] in _openshell_argv(nc, mark)
    assert _registry(nc) == {"sandboxes": {}, "defaultSandbox": None}
    assert "No gateway configured." in _plain(nc.run("openshell", "status", check=0).stdout)
    assert _standin.pid_alive(int((nc.home / ".nemoclaw/ollama-auth-proxy.pid").read_text()))
    assert "Unknown command: my-assistant" in nc.run("nemoclaw", "my-assistant", "status", check=1).stderr
    assert nc.run("nemoclaw", "uninstall").returncode == 3


@pytest.mark.oracle("upstream")
@needs_node
def test_nemoclaw_registered_sandbox_that_is_not_ready_needs_recreate(nc):
    assert _onboard(nc, **OLLAMA, **ACCEPT).returncode == 0
    path = nc.state / "openshell.json"  # the pod is back to Provisioning (e.g. after a restart)
    st = json.loads(path.read_text())
    st["gateways"]["nemoclaw"]["sandboxes"]["my-assistant"]["phase"] = "Provisioning"
    path.write_text(json.dumps(st))
    res = _onboard(nc, **OLLAMA)
    # onboard.ts:3097-3100 @db3453b5
    assert res.returncode == 1 and "Sandbox 'my-assistant' already exists but is not ready." in res.stderr
    assert "Pass --recreate-sandbox or set NEMOCLAW_RECREATE_SANDBOX=1 to overwrite." in res.stderr


@pytest.mark.oracle("upstream")
@needs_node
def test_nemoclaw_reuses_a_live_unregistered_sandbox_without_registering_it(nc):
    # onboard.ts:3088-3096 @db3453b5 returns before registerSandbox: why nemoclaw_sandbox recreates in that case
    assert _onboard(nc, **OLLAMA, **ACCEPT).returncode == 0
    (nc.home / ".nemoclaw/sandboxes.json").unlink()
    res = _onboard(nc, **OLLAMA)
    assert res.returncode == 0 and "exists and is ready — reusing it" in res.stdout
    path = nc.home / ".nemoclaw/sandboxes.json"
    assert "my-assistant" not in (json.loads(path.read_text()) if path.exists() else {"sandboxes": {}})["sandboxes"]
    res = _onboard(nc, **OLLAMA, NEMOCLAW_RECREATE_SANDBOX="1")
    assert res.returncode == 0 and "my-assistant" in _registry(nc)["sandboxes"]


@pytest.mark.oracle("upstream")
@needs_node
def test_nemoclaw_cloud_is_nvidia_prod_and_the_key_stays_off_disk(nc):
    env = {"NEMOCLAW_PROVIDER": "cloud", "NEMOCLAW_POLICY_MODE": "skip", **ACCEPT}
    res = _onboard(nc, **env)
    assert res.returncode == 1
    assert "NVIDIA_API_KEY (or NEMOCLAW_PROVIDER_KEY) is required for NVIDIA Endpoints in non-interactive mode." in res.stderr
    assert "Invalid key. Must start with nvapi-" in _onboard(nc, **env, NVIDIA_API_KEY="sk-not-nvidia").stderr
    res = _onboard(nc, **env, NVIDIA_API_KEY=SENTINEL)
    assert res.returncode == 0, res.stdout + res.stderr
    gw = nc.state_of("openshell")["gateways"]["nemoclaw"]
    # onboard.ts:160-170 + 787-798: provider nvidia-prod of type nvidia, the key by env name, no base URL option
    assert gw["providers"]["nvidia-prod"]["type"] == "nvidia"
    assert gw["providers"]["nvidia-prod"]["credentials"] == {"NVIDIA_API_KEY": _standin.fingerprint(SENTINEL)}
    assert gw["routes"]["inference.local"] == {**gw["routes"]["inference.local"], "provider": "nvidia-prod",
                                               "model": "nvidia/nemotron-3-super-120b-a12b"}
    assert SENTINEL not in res.stdout + res.stderr
    for path in [*nc.state.rglob("*"), *nc.home.rglob("*")]:
        if path.is_file():
            assert SENTINEL.encode() not in path.read_bytes(), path
    calls = list(nc.calls("openshell"))
    assert all(SENTINEL not in " ".join(c["argv"]) for c in calls)
    creates = [c for c in calls if c["argv"][:2] == ["provider", "create"]]
    assert creates and all("NVIDIA_API_KEY" in c["secret_env"] for c in creates)
    # the sandbox is created with an allowlisted environment (subprocess-env.ts): no credential reaches it
    assert next(c for c in calls if c["argv"][:2] == ["sandbox", "create"])["secret_env"] == []


@pytest.mark.oracle("upstream")
@needs_node
@pytest.mark.parametrize(("env", "fragment"), [
    ({"NEMOCLAW_SANDBOX_NAME": "My-Assistant"}, "Invalid sandbox name: 'My-Assistant'"),  # no lower-casing at v0.0.21
    ({"NEMOCLAW_SANDBOX_NAME": "1agent"}, "Names must start with a letter, not a digit."),
    ({"NEMOCLAW_SANDBOX_NAME": "credentials"}, "Reserved name: 'credentials' is a NemoClaw CLI command."),
    ({"NEMOCLAW_POLICY_PRESETS": "pypi,docker"}, "Unknown policy preset(s): docker"),  # no docker preset at v0.0.21
    ({"NEMOCLAW_POLICY_TIER": "wide", "NEMOCLAW_POLICY_MODE": "suggested"}, "Unknown policy tier: wide"),
    ({"NEMOCLAW_PROVIDER": "nvidia-nim"}, "Unsupported NEMOCLAW_PROVIDER: nvidia-nim"),
])
def test_nemoclaw_refuses_what_v0021_refuses(nc, env, fragment):
    res = _onboard(nc, **{**OLLAMA, **ACCEPT, **env})
    assert res.returncode == 1 and fragment in res.stderr, res.stdout[-2000:] + res.stderr


@pytest.mark.oracle("upstream")
def test_nemoclaw_presets_and_tiers_are_v0021s():
    # nemoclaw-blueprint/policies/presets/*.yaml and tiers.yaml @db3453b5
    names = sorted(p.stem for p in (REPO / "nemoclaw-blueprint/policies/presets").glob("*.yaml"))
    assert names == ["brave", "brew", "discord", "github", "huggingface", "jira", "local-inference", "npm", "outlook",
                     "pypi", "slack", "telegram"]
    local = (REPO / "nemoclaw-blueprint/policies/presets/local-inference.yaml").read_text()
    assert [int(p) for p in re.findall(r"port: (\d+)", local)] == [11434, 11435, 8000]
    tiers = (REPO / "nemoclaw-blueprint/policies/tiers.yaml").read_text()
    assert re.findall(r"- name: (\w+)", tiers) == ["restricted", "balanced", "open"]
    bp = (REPO / "nemoclaw-blueprint/blueprint.yaml").read_text()
    assert 'min_openshell_version: "0.0.24"' in bp and 'max_openshell_version: "0.0.26"' in bp


def _test_base_image(tag: str) -> None:
    """A stand-in for the lead's agentsec/openshell-sandbox-base:0.0.26 from this machine's Debian image: a `sandbox`
    user with home /sandbox (bash and python3 are already in it; the build needs nothing else)."""
    dockerfile = "FROM debian:bookworm-slim\nRUN useradd -m -d /sandbox -s /bin/bash sandbox\n"
    subprocess.run(["docker", "build", "-q", "-t", tag, "-"], input=dockerfile, text=True, check=True, capture_output=True)


@pytest.mark.oracle("docker", "upstream")
@pytest.mark.skipif(shutil.which("docker") is None or
                    subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0,
                    reason="needs a Docker engine")
def test_nemoclaw_sandbox_image_builds_offline_and_starts_the_gateway(tmp_path):
    base, image, box = "agentsec-h3-sandbox-base:test", "agentsec-h3-nemoclaw-sandbox:test", "agentsec-h3-nemoclaw-box"
    ctx = tmp_path / "ctx"  # the build context onboarding stages (src/lib/sandbox-build-context.ts:28-68)
    (ctx / "nemoclaw").mkdir(parents=True)
    shutil.copy(REPO / "Dockerfile", ctx / "Dockerfile")
    for f in ("package.json", "package-lock.json", "tsconfig.json", "openclaw.plugin.json"):
        shutil.copy(REPO / "nemoclaw" / f, ctx / "nemoclaw" / f)
    shutil.copytree(REPO / "nemoclaw/src", ctx / "nemoclaw/src")
    shutil.copytree(REPO / "nemoclaw-blueprint", ctx / "nemoclaw-blueprint")
    (ctx / "scripts").mkdir()
    for f in ("nemoclaw-start.sh", "openclaw-standin.py"):
        shutil.copy(REPO / "scripts" / f, ctx / "scripts" / f)
    try:
        _test_base_image(base)
        build = subprocess.run(["docker", "build", "-q", "--network=none", "--build-arg", f"BASE_IMAGE={base}",
                                "--build-arg", "NEMOCLAW_MODEL=nemotron-3-nano:30b",
                                "--build-arg", "NEMOCLAW_PRIMARY_MODEL_REF=inference/nemotron-3-nano:30b",
                                "--build-arg", "NEMOCLAW_PROVIDER_KEY=inference", "-t", image, str(ctx)],
                               capture_output=True, text=True, check=False, timeout=600)
        assert build.returncode == 0, build.stderr[-3000:]
        subprocess.run(["docker", "run", "-d", "--name", box, "--network=none", "--user", "sandbox", "--entrypoint",
                        "sleep", image, "300"], check=True, capture_output=True)

        def inside(*cmd, check=True):
            return subprocess.run(["docker", "exec", "--user", "sandbox", box, *cmd], capture_output=True, text=True,
                                  check=check)
        cfg = json.loads(inside("cat", "/sandbox/.openclaw/openclaw.json").stdout)
        provider = cfg["models"]["providers"]["inference"]
        assert provider["baseUrl"] == "https://inference.local/v1" and provider["models"][0]["id"] == "nemotron-3-nano:30b"
        assert cfg["agents"]["defaults"]["model"]["primary"] == "inference/nemotron-3-nano:30b"
        assert len(cfg["gateway"]["auth"]["token"]) == 64
        # Dockerfile:368-379: root-owned, 0444, hash pinned; the sandbox user cannot rewrite it
        assert inside("stat", "-c", "%U %a", "/sandbox/.openclaw/openclaw.json").stdout.split() == ["root", "444"]
        assert inside("sh", "-c", "echo x >> /sandbox/.openclaw/openclaw.json", check=False).returncode != 0
        for path in ("/opt/nemoclaw/dist/index.js", "/opt/nemoclaw/openclaw.plugin.json", "/opt/nemoclaw-blueprint/blueprint.yaml",
                     "/sandbox/.nemoclaw/blueprints/0.1.0/policies/openclaw-sandbox.yaml", "/usr/local/bin/nemoclaw-start"):
            inside("test", "-e", path)
        # the entrypoint as onboarding runs it: `env CHAT_UI_URL=... nemoclaw-start`; it returns, the gateway answers
        start = inside("/usr/local/bin/nemoclaw-start", "env", "CHAT_UI_URL=http://127.0.0.1:18789", "nemoclaw-start")
        assert start.returncode == 0 and "openclaw gateway launched" in start.stderr
        probe = ("import urllib.request as u, time\nfor i in range(50):\n    try:\n"
                 "        print(u.urlopen('http://127.0.0.1:18789/', timeout=1).status); break\n"
                 "    except OSError:\n        time.sleep(0.1)\n")
        assert inside("python3", "-c", probe).stdout.strip() == "200"
        # a tampered config stops the entrypoint (verify_config_integrity, nemoclaw-start.sh:193-217)
        subprocess.run(["docker", "exec", "--user", "root", box, "sh", "-c", "chmod 644 /sandbox/.openclaw/openclaw.json && "
                        "echo '{}' > /sandbox/.openclaw/openclaw.json"], check=True, capture_output=True)
        refused = inside("/usr/local/bin/nemoclaw-start", check=False)
        assert refused.returncode == 1 and "Config integrity check failed" in refused.stderr
    finally:
        subprocess.run(["docker", "rm", "-f", box], capture_output=True, check=False)
        subprocess.run(["docker", "rmi", "-f", image, base], capture_output=True, check=False)


# ---- pfctl ------------------------------------------------------------------------------------------------

@pytest.mark.oracle("self")
def test_pfctl_validates_loads_and_reports(world):
    anchor = world.base / "agentsec.ollama"
    anchor.write_text("# Ollama exposure\nblock drop in quick proto tcp from any to any port 11434\n"
                      'pass in quick proto tcp from { 127.0.0.1, 10.0.0.0/8 } to any port 11434\n')
    bad = world.base / "bad.conf"
    bad.write_text("block drop in quick proto tcp to any port 11434\nallow everything please\n")
    main = world.base / "pf.conf"
    main.write_text(f'scrub-anchor "com.apple/*"\nanchor "agentsec.ollama"\nload anchor "agentsec.ollama" from "{anchor}"\n')
    assert "/dev/pf: Permission denied" in world.run("pfctl", "-s", "info", user="nobody", check=1).stderr
    assert f"{bad}:2: syntax error" in world.run("pfctl", "-vnf", bad, check=1).stderr
    assert world.state_of("pfctl").get("anchors", {}) == {}
    world.run("pfctl", "-n", "-f", main, check=0)
    world.run("pfctl", "-f", main, check=0)
    assert "port 11434" in world.run("pfctl", "-a", "agentsec.ollama", "-s", "rules", check=0).stdout
    assert world.run("pfctl", "-s", "info", check=0).stdout.startswith("Status: Disabled")
    assert re.search(r"^Token : \d+$", world.run("pfctl", "-E", check=0).stderr, re.M)
    assert world.run("pfctl", "-s", "info", check=0).stdout.startswith("Status: Enabled")
    world.run("pfctl", "-a", "agentsec.ollama", "-F", "all", check=0)
    assert world.run("pfctl", "-a", "agentsec.ollama", "-s", "rules", check=0).stdout.strip() == ""


# ---- release assets ---------------------------------------------------------------------------------------

def _sha256(path: Path) -> str:
    import hashlib
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.oracle("self")
@pytest.mark.skipif(shutil.which("git") is None, reason="git is needed to build nemoclaw.git")
def test_build_artifacts_checksums_and_reproducible_tag(world):
    node = world.base / "node.tar.xz"
    node.write_bytes(b"not really xz, only copied and summed")
    runs = []
    for name in ("a", "b"):
        out = world.base / name
        res = subprocess.run([sys.executable, STANDINS / "build_artifacts.py", out, "--node-tarball", node],
                             capture_output=True, text=True, check=False, timeout=60)
        assert res.returncode == 0, res.stderr
        runs.append((out, json.loads(res.stdout)))
    (out_a, index_a), (dummy, index_b) = runs
    assert index_a == index_b
    assert index_a["nemoclaw"]["tag"] == "v0.0.21" and len(index_a["nemoclaw"]["tag_object"]) == 40
    for listing in out_a.rglob("*"):
        if listing.name in ("openshell-checksums-sha256.txt", "sha256sum.txt", "SHASUMS256.txt") or \
                listing.name.endswith(".sha256"):
            for line in listing.read_text().splitlines():
                digest, name = line.split("  ")
                assert _sha256(listing.parent / name.removeprefix("./")) == digest, (listing, name)
    assert len(index_a["openshell"]) == 9 and len(set(index_a["openshell"].values())) == 9
    assert (out_a / "openshell/v0.0.26/openshell-checksums-sha256.txt").read_text().count("\n") == 3
    assert json.loads((out_a / "docker/4.68.0/Docker.dmg").read_text()) == {"product": "Docker Desktop", "version": "4.68.0"}

    import tarfile
    with tarfile.open(out_a / "openshell/v0.0.25/openshell-aarch64-apple-darwin.tar.gz") as tar:
        assert sorted(tar.getnames()) == [".openshell-version", "openshell"]
        tar.extractall(world.base / "os25", filter="data")
    solo = world.base / "solo-openshell"
    shutil.copy(world.base / "os25/openshell", solo)  # self-contained: runs without .openshell-version or _standin.py
    assert world.run(solo, "--version", check=0).stdout.strip() == "openshell 0.0.25"

    clone = world.base / "clone"
    subprocess.run(["git", "clone", "-q", "--branch", "v0.0.21", f"file://{out_a}/nemoclaw.git", clone], check=True,
                   capture_output=True)
    assert subprocess.run(["git", "-C", clone, "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip() == index_a["nemoclaw"]["commit"]
    assert world.run(clone / "bin/nemoclaw.js", "--version").returncode == 1  # dist/ is not committed
    world.run("node", clone / "scripts/build-cli.js", "-p", "tsconfig.src.json", cwd=clone, check=0)
    # the version comes from the tag (git describe), not from package.json's 0.1.0 (src/lib/version.ts @db3453b5)
    assert world.run(clone / "bin/nemoclaw.js", "--version", check=0).stdout.strip() == "nemoclaw v0.0.21"
    assert 'max_openshell_version: "0.0.26"' in (clone / "nemoclaw-blueprint/blueprint.yaml").read_text()
