"""Socket and rtnetlink probes run by OpenClaw's exec tool inside the sandbox (stdlib only).

Prints one line ``AGENTSEC_PROBE {json}``; values are "ok" or an errno name (or a number for counts).
- ``af_packet_t15``: socket(AF_PACKET, 15, 0). Type 15 >= SOCK_MAX, so the kernel answers EINVAL before any
  capability check (net/socket.c __sock_create); EPERM means a seccomp filter answered first.
- ``netlink_uevent``: socket(AF_NETLINK, SOCK_RAW, NETLINK_KOBJECT_UEVENT); an unprivileged user may create it, so
  EPERM means the filter refused the protocol.
- ``netlink_route``: socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE), then
  ``getlink_dump`` (RTM_GETLINK dump: number of links read), ``newaddr`` (RTM_NEWADDR 10.211.0.1/32 on lo) and
  ``newroute`` (RTM_NEWROUTE 10.211.1.0/24 dev lo): the errno of the kernel's netlink ack ("ok" = applied).
  The kernel requires CAP_NET_ADMIN for every rtnetlink request that is not a GET (net/core/rtnetlink.c
  rtnetlink_rcv_msg: ``if (kind != RTNL_KIND_GET && !netlink_net_capable(skb, CAP_NET_ADMIN)) return -EPERM``).
- ``af_vsock_t15``, ``af_alg_t15``: socket(AF_VSOCK|AF_ALG, 15, 0), families outside an allow-list of
  AF_UNIX/AF_INET/AF_INET6/AF_NETLINK that a deny-list of AF_PACKET/AF_NETLINK leaves open: EINVAL from the kernel
  (type check, no socket is created, nothing is connected), EPERM from a filter.
Message layouts: linux/netlink.h (nlmsghdr, nlmsgerr), linux/rtnetlink.h (rtmsg, rtattr, RTM_*), linux/if_addr.h
(ifaddrmsg, IFA_*), linux/if_link.h (ifinfomsg).
"""
from __future__ import annotations

import errno
import json
import socket
import struct

AF_NETLINK, AF_PACKET, AF_VSOCK, AF_ALG = 16, 17, 40, 38
NETLINK_ROUTE, NETLINK_KOBJECT_UEVENT = 0, 15
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE, NLM_F_DUMP = 0x1, 0x4, 0x200, 0x400, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_GETLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 18, 20, 24
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF = 1, 4
RT_TABLE_MAIN, RTPROT_STATIC, RT_SCOPE_LINK, RTN_UNICAST = 254, 4, 253, 1
LO_INDEX = 1  # the loopback device is always ifindex 1 in a network namespace


def err_name(exc):
    return errno.errorcode.get(exc.errno, str(exc.errno))


def try_socket(family, type_, proto=0):
    try:
        socket.socket(family, type_, proto).close()
    except OSError as exc:
        return err_name(exc)
    return "ok"


def rtattr(kind, payload):
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * ((4 - length % 4) % 4)


def nlmsg(kind, flags, seq, payload):
    return struct.pack("=IHHII", 16 + len(payload), kind, flags, seq, 0) + payload


def messages(data):
    off = 0
    while off + 16 <= len(data):
        length, kind, _flags, _seq, _pid = struct.unpack_from("=IHHII", data, off)
        if length < 16:
            break
        yield kind, data[off + 16:off + length]
        off += (length + 3) & ~3


def ack(sock, request):
    """Send one request with NLM_F_ACK and return "ok" or the errno name of the kernel's answer."""
    sock.send(request)
    for _attempt in range(16):  # bounded: an ack arrives in the first datagram
        for kind, body in messages(sock.recv(65536)):
            if kind == NLMSG_ERROR:
                code = -struct.unpack_from("=i", body)[0]
                return "ok" if code == 0 else errno.errorcode.get(code, str(code))
    return "no ack"


def getlink_dump(sock):
    sock.send(nlmsg(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, struct.pack("=BBHiII", socket.AF_UNSPEC, 0, 0, 0, 0, 0)))
    links = 0
    for _batch in range(64):  # bounded
        for kind, body in messages(sock.recv(65536)):
            if kind == NLMSG_DONE:
                return links
            if kind == NLMSG_ERROR:
                return errno.errorcode.get(-struct.unpack_from("=i", body)[0], "error")
            links += kind == RTM_NEWLINK
    return links


def newaddr():
    addr = socket.inet_aton("10.211.0.1")
    body = struct.pack("=BBBBI", socket.AF_INET, 32, 0, 0, LO_INDEX) + rtattr(IFA_LOCAL, addr) + rtattr(IFA_ADDRESS, addr)
    return nlmsg(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, 2, body)


def newroute():
    body = struct.pack("=BBBBBBBBI", socket.AF_INET, 24, 0, 0, RT_TABLE_MAIN, RTPROT_STATIC, RT_SCOPE_LINK, RTN_UNICAST, 0)
    body += rtattr(RTA_DST, socket.inet_aton("10.211.1.0")) + rtattr(RTA_OIF, struct.pack("=i", LO_INDEX))
    return nlmsg(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, 3, body)


def route_probes():
    out = {}
    try:
        sock = socket.socket(AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
    except OSError as exc:
        out["netlink_route"] = err_name(exc)
        return out
    out["netlink_route"] = "ok"
    with sock:
        sock.settimeout(5)
        sock.bind((0, 0))
        for name, func in (("getlink_dump", getlink_dump), ("newaddr", lambda s: ack(s, newaddr())),
                           ("newroute", lambda s: ack(s, newroute()))):
            try:
                out[name] = func(sock)
            except OSError as exc:
                out[name] = err_name(exc)
    return out


def main():
    result = {
        "af_packet_t15": try_socket(AF_PACKET, 15),
        "netlink_uevent": try_socket(AF_NETLINK, socket.SOCK_RAW, NETLINK_KOBJECT_UEVENT),
        "af_vsock_t15": try_socket(AF_VSOCK, 15),
        "af_alg_t15": try_socket(AF_ALG, 15),
        "af_inet": try_socket(socket.AF_INET, socket.SOCK_STREAM),
        "af_unix": try_socket(socket.AF_UNIX, socket.SOCK_STREAM),
    }
    result.update(route_probes())
    print("AGENTSEC_PROBE " + json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
