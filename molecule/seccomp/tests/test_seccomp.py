"""The filter installed by converge is enforced by the kernel inside the container, through the launcher."""
import json
import shlex

PROBE = (
    "import errno, json, socket\n"
    "def p(f, t, proto=0):\n"
    "    try:\n        socket.socket(f, t, proto).close(); return 'ok'\n"
    "    except OSError as e:\n        return errno.errorcode[e.errno]\n"
    "print(json.dumps({'packet': p(17, 15), 'netlink': p(16, 15), 'sock_packet': p(2, 10), 'inet': p(2, 1), 'unix': p(1, 1),"
    " 'vsock': p(40, 1), 'netlink_route': p(16, 3, 0), 'netlink_diag': p(16, 3, 4),"
    " 'status': [l for l in open('/proc/self/status') if l.startswith(('Seccomp', 'NoNewPrivs'))]}))\n"
)


def test_files_are_installed(host):
    bpf = host.file("/opt/agentsec/etc/agent.bpf")
    assert bpf.is_file and bpf.mode == 0o444 and bpf.size % 8 == 0 and bpf.size > 0
    launcher = host.file("/opt/agentsec/bin/seccomp-launch")
    assert launcher.is_file and launcher.mode == 0o755


def test_launcher_accepts_the_filter_for_this_architecture(host):
    out = host.check_output("/opt/agentsec/bin/seccomp-launch --filter /opt/agentsec/etc/agent.bpf --check")
    assert "valid for" in out


def test_kernel_enforces_the_filter_through_the_launcher(host):
    unfiltered = json.loads(host.check_output(f"python3 -c {shlex.quote(PROBE)}"))
    assert unfiltered["packet"] == "EINVAL" and unfiltered["netlink"] == "EINVAL"
    filtered = json.loads(host.check_output(
        f"/opt/agentsec/bin/seccomp-launch --filter /opt/agentsec/etc/agent.bpf -- python3 -c {shlex.quote(PROBE)}"))
    # families are an allow-list: AF_PACKET and AF_VSOCK refused; AF_NETLINK only for NETLINK_ROUTE (protocol 0,
    # so the bad type 15 reaches the kernel and gets its EINVAL)
    assert filtered["packet"] == "EPERM" and filtered["sock_packet"] == "EPERM" and filtered["vsock"] == "EPERM"
    assert filtered["netlink"] == "EINVAL" and filtered["netlink_route"] == "ok" and filtered["netlink_diag"] == "EPERM"
    assert filtered["inet"] == "ok" and filtered["unix"] == "ok"
    status = "".join(filtered["status"])
    assert "Seccomp:\t2" in status and "NoNewPrivs:\t1" in status


def test_launcher_refuses_a_truncated_filter(host):
    host.run("head -c 13 /opt/agentsec/etc/agent.bpf > /tmp/truncated.bpf")
    res = host.run("/opt/agentsec/bin/seccomp-launch --filter /tmp/truncated.bpf -- true")
    assert res.rc == 3 and "not a multiple of 8" in res.stderr


def test_launcher_refuses_to_start_without_isolation(host):
    """A plain python3 would already have run the user site of HOME; the launcher says so and stops (exit 7)."""
    res = host.run("python3 /opt/agentsec/bin/seccomp-launch --filter /opt/agentsec/etc/agent.bpf --check")
    assert res.rc == 7 and "started without isolation" in res.stderr
    assert host.file("/opt/agentsec/bin/seccomp-launch").content_string.startswith("#!/usr/bin/python3 -IS\n")
