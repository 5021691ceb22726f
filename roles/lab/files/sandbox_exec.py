"""sandbox-exec: the lab's `openshell sandbox exec -n NAME -- CMD`.

Runs CMD the way OpenShell v0.0.26 spawns agent processes: in the agent network namespace, as user `sandbox`
(no capabilities), with the proxy and CA environment, Landlock (the upstream baseline ruleset) and the
v0.0.26 agent seccomp filter, in that order. Gaps of the lab profile (LAB_GAPS) reproduce v0.0.26's defects:
`landlock_unenforced` never applies the ruleset (OpenShell #803), `netlink_open` leaves AF_NETLINK allowed,
`filter_bypasses` keeps the upstream filter's blind spots (64-bit family compare, no SOCK_PACKET rule).
If OPENSHELL_AGENT_WRAPPER (a JSON argv list) is set on the container, it is put in front of CMD: the hardening
role's launcher enters there, under the outer filter, like an agent entry wrapped in a pod spec.
"""
import ctypes
import json
import os
import pwd
import sys

sys.path.insert(0, "/opt/openshell/lib")
import seccomp  # noqa: E402  (Debian python3-seccomp)
from seccomp_launcher import apply_landlock  # noqa: E402  (the collection's launcher core)

GAPS = set(filter(None, os.environ.get("LAB_GAPS", "").split(",")))
CLONE_NEWNET, CLONE_NEWUSER = 0x40000000, 0x10000000
LANDLOCK_RO = ["/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc", "/app", "/var/log", "/proc", "/dev/urandom", "/opt/openshell",
               "/opt/agentsec", "/run/openshell-tls"]
LANDLOCK_RW = ["/sandbox", "/tmp", "/dev/null"]
PROXY = "http://10.200.0.1:3128"


def enter_netns():
    fd = os.open("/run/netns/agent", os.O_RDONLY)
    if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns(agent)")
    os.close(fd)


def drop_privileges():
    user = pwd.getpwnam("sandbox")
    os.setgroups([])
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)
    try:
        os.setuid(0)
    except PermissionError:
        return user
    raise SystemExit("sandbox-exec: privilege drop failed (setuid(0) succeeded)")


def agent_filter():
    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    deny = seccomp.ERRNO(1)
    families = [17, 31, 40] + ([] if "netlink_open" in GAPS else [16])  # PACKET, BLUETOOTH, VSOCK (+ NETLINK)
    for fam in families:
        if "filter_bypasses" in GAPS:  # a full 64-bit compare: a family with high bits set slips past
            f.add_rule(deny, "socket", seccomp.Arg(0, seccomp.EQ, fam))
        else:
            f.add_rule(deny, "socket", seccomp.Arg(0, seccomp.MASKED_EQ, 0xFFFFFFFF, fam))
    if "filter_bypasses" not in GAPS:  # AF_INET + SOCK_PACKET is an AF_PACKET socket
        f.add_rule(deny, "socket", seccomp.Arg(0, seccomp.MASKED_EQ, 0xFFFFFFFF, 2), seccomp.Arg(1, seccomp.MASKED_EQ, 0xF, 10))
    for name in ("memfd_create", "ptrace", "bpf", "process_vm_readv", "io_uring_setup", "mount"):
        f.add_rule(deny, name)
    f.add_rule(deny, "seccomp", seccomp.Arg(0, seccomp.EQ, 1))  # SECCOMP_SET_MODE_FILTER
    f.add_rule(deny, "unshare", seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER))
    return f


def main(argv):
    if "--" not in argv:
        sys.stderr.write("usage: sandbox-exec [--workdir DIR] -- CMD [ARG...]\n")
        return 2
    split = argv.index("--")
    opts, command = argv[:split], argv[split + 1:]
    workdir = opts[opts.index("--workdir") + 1] if "--workdir" in opts else "/sandbox"
    if not command:
        sys.stderr.write("sandbox-exec: missing command\n")
        return 2
    enter_netns()
    user = drop_privileges()
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": user.pw_dir, "USER": "sandbox", "LANG": "C.UTF-8",
        "HTTP_PROXY": PROXY, "HTTPS_PROXY": PROXY, "ALL_PROXY": PROXY, "http_proxy": PROXY, "https_proxy": PROXY,
        "NO_PROXY": "127.0.0.1,localhost,::1", "no_proxy": "127.0.0.1,localhost,::1",
        "SSL_CERT_FILE": "/run/openshell-tls/ca-bundle.pem", "REQUESTS_CA_BUNDLE": "/run/openshell-tls/ca-bundle.pem",
        "CURL_CA_BUNDLE": "/run/openshell-tls/ca-bundle.pem", "NODE_EXTRA_CA_CERTS": "/run/openshell-tls/ca-bundle.pem",
        "OPENSHELL_SANDBOX": os.environ.get("LAB_SANDBOX", "lab"),
    }
    if "landlock_unenforced" not in GAPS:
        apply_landlock(LANDLOCK_RO, LANDLOCK_RW)
    agent_filter().load()  # libseccomp sets NO_NEW_PRIVS first
    wrapper = json.loads(os.environ.get("OPENSHELL_AGENT_WRAPPER") or "[]")
    os.chdir(workdir)
    argv = [*wrapper, *command]
    os.execvpe(argv[0], argv, env)
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
