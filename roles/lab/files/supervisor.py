"""Lab supervisor, PID 1 of a lab sandbox container: it plays OpenShell v0.0.26's openshell-sandbox.

Creates the agent network namespace (veth 10.200.0.1/24 <-> 10.200.0.2/24, default route, nftables bypass rules),
writes the sandbox CA, starts the CONNECT proxy (mitmproxy) on 10.200.0.1:3128, then waits. The gaps of the
profile (LAB_GAPS, comma-separated) reproduce what the paper and upstream history report for v0.0.26.
Hooks for the hardening role: every /etc/openshell/agent-netns.d/*.nft is loaded in the agent namespace and
/etc/openshell/agent-netns.d/default-route (an IP) replaces the agent's default route, at every start.
"""
import glob
import os
import shutil
import signal
import subprocess
import sys
import time

GAPS = set(filter(None, os.environ.get("LAB_GAPS", "").split(",")))
PROXY_IP, AGENT_IP, POD_GW = "10.200.0.1", "10.200.0.2", "10.200.0.254"
HOOKS = "/etc/openshell/agent-netns.d"
BYPASS_RULES = """
table inet openshell_bypass {
  chain output {
    type filter hook output priority 0; policy accept;
    oifname "lo" accept
    ct state established,related accept
    ip daddr %s tcp dport 3128 accept
    meta l4proto tcp reject with tcp reset
    reject
  }
}
""" % PROXY_IP
POD_NAT = """
table ip lab_pod_nat {
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    ip saddr 10.200.0.0/24 oifname != "veth-h" masquerade
  }
}
"""


def log(msg):
    sys.stdout.write(f"supervisor: {msg}\n")
    sys.stdout.flush()


def run(*cmd, data=None):
    subprocess.run(cmd, input=data, text=True, check=True)


def network():
    os.makedirs("/run/netns", exist_ok=True)
    run("ip", "netns", "add", "agent")
    run("ip", "link", "add", "veth-h", "type", "veth", "peer", "name", "veth-s")
    run("ip", "link", "set", "veth-s", "netns", "agent")
    run("ip", "addr", "add", f"{PROXY_IP}/24", "dev", "veth-h")
    run("ip", "link", "set", "veth-h", "up")
    run("ip", "-n", "agent", "addr", "add", f"{AGENT_IP}/24", "dev", "veth-s")
    run("ip", "-n", "agent", "link", "set", "veth-s", "up")
    run("ip", "-n", "agent", "link", "set", "lo", "up")
    if "direct_egress" in GAPS:
        # The paper's observation: a route through the pod network and nothing in the way (no bypass rules).
        run("ip", "addr", "add", f"{POD_GW}/24", "dev", "veth-h")
        run("ip", "-n", "agent", "route", "add", "default", "via", POD_GW)
        run("nft", "-f", "-", data=POD_NAT)
        log("gap direct_egress: agent route via the pod gateway, forwarding and masquerade on, no bypass rules")
    else:
        run("ip", "-n", "agent", "route", "add", "default", "via", PROXY_IP)
        run("ip", "netns", "exec", "agent", "nft", "-f", "-", data=BYPASS_RULES)
    for path in sorted(glob.glob(os.path.join(HOOKS, "*.nft"))):
        run("ip", "netns", "exec", "agent", "nft", "-f", path)
        log(f"hook: loaded {path} in the agent namespace")
    route_hook = os.path.join(HOOKS, "default-route")
    if os.path.exists(route_hook):
        with open(route_hook, encoding="ascii") as fh:
            gateway = fh.read().strip()
        run("ip", "-n", "agent", "route", "replace", "default", "via", gateway)
        log(f"hook: agent default route via {gateway}")


def tls():
    os.makedirs("/run/openshell-proxy", mode=0o700, exist_ok=True)
    shutil.copy("/etc/openshell-proxy/ca/mitmproxy-ca.pem", "/run/openshell-proxy/mitmproxy-ca.pem")
    os.chmod("/run/openshell-proxy/mitmproxy-ca.pem", 0o600)
    os.makedirs("/run/openshell-tls", exist_ok=True)
    with open("/etc/openshell-proxy/ca/ca.crt", encoding="ascii") as fh:
        ca = fh.read()
    with open("/etc/ssl/certs/ca-certificates.crt", encoding="ascii") as fh:
        system = fh.read()
    with open("/run/openshell-tls/ca-bundle.pem", "w", encoding="ascii") as fh:
        fh.write(system + ca)
    if "ca_missing" in GAPS:
        log("gap ca_missing: the sandbox CA is not written to /etc/openshell-tls/openshell-ca.pem")
        return
    if os.path.exists("/etc/openshell-tls/openshell-ca.pem"):
        log("sandbox CA mounted at /etc/openshell-tls/openshell-ca.pem")
        return
    try:
        os.makedirs("/etc/openshell-tls", exist_ok=True)
        with open("/etc/openshell-tls/openshell-ca.pem", "w", encoding="ascii") as fh:
            fh.write(ca)
        os.chmod("/etc/openshell-tls/openshell-ca.pem", 0o644)
    except OSError as exc:
        log(f"could not write /etc/openshell-tls/openshell-ca.pem ({exc.strerror}); expecting it to be mounted")


def workspace():
    import pwd  # noqa: PLC0415

    user = pwd.getpwnam("sandbox")
    os.chown("/sandbox", user.pw_uid, user.pw_gid)
    os.chmod("/sandbox", 0o750)


def main():
    log(f"profile {os.environ.get('LAB_PROFILE', '?')}, gaps: {', '.join(sorted(GAPS)) or 'none'}")
    workspace()
    network()
    tls()
    proxy = subprocess.Popen([
        "mitmdump", "--quiet", "--listen-host", PROXY_IP, "--listen-port", "3128",
        "--set", "confdir=/run/openshell-proxy", "--set", "ssl_verify_upstream_trusted_ca=/etc/openshell-proxy/world-ca.pem",
        "--set", "connection_strategy=lazy", "-s", "/opt/openshell/lib/proxy_addon.py"])
    for _attempt in range(100):
        try:
            import socket  # noqa: PLC0415

            socket.create_connection((PROXY_IP, 3128), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    with open("/run/openshell/ready", "w", encoding="ascii") as fh:
        fh.write("ready\n")
    log("ready")

    def stop(_signum, _frame):
        proxy.terminate()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        try:
            pid, _status = os.wait()
        except ChildProcessError:
            time.sleep(1)
            continue
        if pid == proxy.pid:
            log("proxy exited; stopping the sandbox")
            sys.exit(1)


if __name__ == "__main__":
    os.makedirs("/run/openshell", exist_ok=True)
    main()
