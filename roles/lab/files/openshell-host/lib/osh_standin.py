"""Shared code of the OpenShell host-service stand-ins (CLI `openshell`, daemon `openshell-gateway`) for the two lines
users deploy today: 0.0.116 (NemoClaw v0.0.130-v0.0.132 pin it exactly) and 0.1.x (0.1.5). docs/lines.md says what a
stand-in can and cannot show.

Citations: `@111` = NVIDIA/OpenShell tag v0.0.111 (the newest tag the fetched snapshot has; 0.0.116 is assumed to
keep a behaviour cited there unless noted - "unverified, canary checks it"), `0.1.5 wheel` = the tests shipped in
the PyPI wheel openshell==0.1.5, `ref` = /work/shared/reference/openshell-current.md (section).

Transport deviation (every stand-in): upstream's CLI and supervisors talk gRPC over mTLS to 127.0.0.1:17670; the
stand-ins talk JSON over HTTPS with the same mTLS material on the same port (method names are upstream's RPC names,
proto/openshell.proto). The Python SDK (gRPC) therefore cannot talk to the stand-in gateway.
Standard library plus python3-cryptography (certificates).
"""
from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import http.client
import json
import os
import re
import ssl
import sys
import time
from pathlib import Path

LIB = Path(__file__).resolve().parent
LOCAL_GATEWAY_PORT = 17670  # install.sh @111 L18 LOCAL_GATEWAY_PORT
LOGGED_ENV = ("DOCKER_HOST", "OPENSHELL_GATEWAY", "OPENSHELL_TELEMETRY_ENABLED", "HOME", "USER", "NO_COLOR")


# ---- version and line ----------------------------------------------------------------------------------------
def version() -> str:
    """The version the package builder baked next to this file (VERSION), else 0.0.116."""
    try:
        return (LIB / "VERSION").read_text().strip()
    except OSError:
        return "0.0.116"


def vtuple(text: str) -> tuple:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


def is_v01(ver: str | None = None) -> bool:
    """0.1.0 is the RFC 0012 cutover (ref 1.1): schema v2, two containers per sandbox, no inference.local."""
    return vtuple(ver or version()) >= (0, 1, 0)


# ---- XDG paths (crates/openshell-core/src/paths.rs @111: xdg_config_dir / xdg_state_dir) ---------------------
def home() -> Path:
    return Path(os.environ.get("HOME") or "/root")


def config_home() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or home() / ".config")


def state_home() -> Path:
    return Path(os.environ.get("XDG_STATE_HOME") or home() / ".local/state")


def cli_dir() -> Path:
    """~/.config/openshell: active_gateway, gateways/<gw>/{metadata.json,mtls/} (ref 2.6, SDK from_active_cluster)."""
    return config_home() / "openshell"


# ---- output ---------------------------------------------------------------------------------------------------
def color() -> bool:
    # owo-colors is applied unconditionally at v0.0.26 (docs of tests/standins); install.sh @111 L806 runs the CLI
    # with NO_COLOR=1 to read `Version:`, so NO_COLOR is honoured here (unverified for 0.0.116, canary checks it).
    return not os.environ.get("NO_COLOR")


def sgr(code: str, text: str, end: str = "0") -> str:
    return f"\x1b[{code}m{text}\x1b[{end}m" if color() else str(text)


def dim(text):
    return sgr("2", text)


def bold(text):
    return sgr("1", text)


def green(text):
    return sgr("32", text, "39")


def red(text):
    return sgr("31", text, "39")


def yellow(text):
    return sgr("33", text, "39")


def heading(text):
    return sgr("1;36", text)


CHECK = "\u2713"


def die(message: str, code: int = 1):
    """miette's report format for a CLI error (main.rs returns miette::Result, exit 1 - openshell.md Exit codes)."""
    first, _sep, rest = message.partition("\n")
    sys.stderr.write(f"Error:   \u00d7 {first}\n" + "".join(f"  \u2502 {line}\n" for line in rest.splitlines()))
    raise SystemExit(code)


def usage_error(prog: str, problem: str):
    """clap: unknown sub-command / option -> usage on stderr, exit 2."""
    sys.stderr.write(f"error: {problem}\n\nUsage: {prog} [OPTIONS] <COMMAND>\n\nFor more information, try '--help'.\n")
    raise SystemExit(2)


def record(tool: str, argv) -> None:
    """Append to the stand-ins' call log (tests/standins/README.md format) when its directory exists."""
    directory = Path(os.environ.get("AGENTSEC_STANDIN_DIR") or "/var/lib/agentsec-standins")
    if not directory.is_dir():
        return
    env = {k: os.environ[k] for k in LOGGED_ENV if k in os.environ}
    secret = sorted(k for k in os.environ if k not in LOGGED_ENV and k.endswith(("_KEY", "_TOKEN", "_SECRET", "_PASSWORD")))
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = None
    entry = {"t": time.time(), "tool": tool, "argv": list(argv), "uid": os.getuid(), "cwd": cwd, "env": env,
             "secret_env": secret}
    with contextlib.suppress(OSError):
        fd = os.open(directory / "calls.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, (json.dumps(entry) + "\n").encode())
        finally:
            os.close(fd)


def now_ms() -> int:
    return int(time.time() * 1000)


def format_epoch_ms(ms: int) -> str:
    """crates/openshell-cli/src/commands/common.rs @111 L73-95: `YYYY-MM-DD HH:MM:SS` UTC, `-` when negative."""
    if ms < 0:
        return "-"
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def policy_hash(text_or_obj) -> str:
    """A stable sha256 of the canonical JSON of a policy (upstream hashes the proto; the stand-in hashes JSON)."""
    obj = text_or_obj if not isinstance(text_or_obj, str) else json.loads(text_or_obj)
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# ---- PKI (openshell-gateway generate-certs; formula @111 release.py L306-318 names the files) ----------------
PKI_FILES = ("ca.crt", "server/tls.crt", "server/tls.key", "client/tls.crt", "client/tls.key", "jwt/signing.pem",
             "jwt/public.pem", "jwt/kid")


def generate_pki(out: Path, server_sans: list[str]) -> bool:
    """Write a CA, a server and a client certificate and the JWT key pair under `out` (dirs 0700, keys 0600).
    Returns False (and changes nothing) when every file exists - ExecStartPre runs on every start (unit @111)."""
    if all((out / f).exists() for f in PKI_FILES):
        return False
    from cryptography import x509  # noqa: PLC0415 - python3-cryptography
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519  # noqa: PLC0415
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: PLC0415
    import ipaddress  # noqa: PLC0415

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def pem_key(key):
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

    start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("openshell-local-ca")).issuer_name(name("openshell-local-ca"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number()).not_valid_before(start)
          .not_valid_after(start + datetime.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True).sign(ca_key, hashes.SHA256()))

    def leaf(cn, sans, usage):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(ca.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(start)
                   .not_valid_after(start + datetime.timedelta(days=825))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if sans:
            entries = []
            for san in sans:
                try:
                    entries.append(x509.IPAddress(ipaddress.ip_address(san)))
                except ValueError:
                    entries.append(x509.DNSName(san))
            builder = builder.add_extension(x509.SubjectAlternativeName(entries), critical=False)
        return builder.sign(ca_key, hashes.SHA256()), key

    sans = ["localhost", "127.0.0.1", "::1", "host.openshell.internal", "host.docker.internal", *server_sans]
    server, server_key = leaf("openshell-gateway", list(dict.fromkeys(sans)), ExtendedKeyUsageOID.SERVER_AUTH)
    client, client_key = leaf("openshell-client", [], ExtendedKeyUsageOID.CLIENT_AUTH)
    jwt_key = ed25519.Ed25519PrivateKey.generate()
    public = jwt_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    files = {
        "ca.crt": (ca.public_bytes(serialization.Encoding.PEM), 0o644),
        "server/tls.crt": (server.public_bytes(serialization.Encoding.PEM), 0o644),
        "server/tls.key": (pem_key(server_key), 0o600),
        "client/tls.crt": (client.public_bytes(serialization.Encoding.PEM), 0o644),
        "client/tls.key": (pem_key(client_key), 0o600),
        "jwt/signing.pem": (pem_key(jwt_key), 0o600),
        "jwt/public.pem": (public, 0o644),
        "jwt/kid": (hashlib.sha256(public).hexdigest()[:16].encode() + b"\n", 0o644),
    }
    for rel, (data, mode) in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(path.parent, 0o700)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    os.chmod(out, 0o700)
    return True


# ---- the RPC client (CLI and supervisors) -----------------------------------------------------------------------
class RpcError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def client_context(ca: Path, cert: Path | None, key: Path | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    if cert and key:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


def rpc(endpoint: str, method: str, body: dict, ctx: ssl.SSLContext | None, timeout: float = 15.0,
        headers: dict | None = None) -> dict:
    """POST <endpoint>/openshell.v1.OpenShell/<method> with a JSON body; raises RpcError or OSError."""
    m = re.fullmatch(r"(https?)://(\[[^\]]+\]|[^:/]+)(?::(\d+))?/?", endpoint)
    if not m:
        raise RpcError("InvalidArgument", f"invalid gateway endpoint {endpoint!r}")
    scheme, host, port = m.group(1), m.group(2).strip("[]"), int(m.group(3) or (443 if m.group(1) == "https" else 80))
    conn = (http.client.HTTPSConnection(host, port, timeout=timeout, context=ctx) if scheme == "https"
            else http.client.HTTPConnection(host, port, timeout=timeout))
    try:
        conn.request("POST", f"/openshell.v1.OpenShell/{method}", body=json.dumps(body).encode(),
                     headers={"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    try:
        payload = json.loads(data or b"{}")
    except ValueError as exc:
        raise RpcError("Internal", f"gateway answered {resp.status} with no JSON") from exc
    if resp.status != 200:
        raise RpcError(payload.get("code", "Unknown"), payload.get("message", f"HTTP {resp.status}"))
    return payload
