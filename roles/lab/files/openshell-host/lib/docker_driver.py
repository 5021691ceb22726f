"""The stand-in Docker compute driver: REAL sandbox containers in Docker, named, labelled and configured like
upstream's, for both lines. Runs inside the stand-in gateway through the `docker` CLI (upstream: bollard on the API).

0.0.116 (one container per sandbox) - crates/openshell-driver-docker/src/lib.rs @111:
  name `openshell-<workspace>--<name>-<id>` (L3208-3243 container_name_for_sandbox; sanitize L3258), labels
  openshell.ai/{managed-by=openshell, sandbox-id, sandbox-name, sandbox-workspace, sandbox-namespace}
  (L2580-2597; crates/openshell-core/src/driver_utils.rs @111 L21-36), user 0, entrypoint
  /opt/openshell/bin/openshell-sandbox with cmd `--workdir <workspace root>` (L2621-2631; container_paths.rs L43-44),
  cap_add SYS_ADMIN NET_ADMIN SYS_PTRACE SYSLOG and no cap_drop, apparmor=unconfined (L2646-2662), network
  `openshell-docker` (config.rs @111 L35; L2663) created as a bridge when absent (L2835-2850), extra hosts
  host.docker.internal / host.openshell.internal (L2822-2833), PidsLimit 2048 (L135, README), Memory and NanoCpus
  from the create request's resources.limits (L2632-2634, docker_resource_limits L2923-2946, parse_cpu_limit
  L2970-3002, parse_memory_limit L3004-3046; requests are refused), restart policy none
  (L2641-2643); env OPENSHELL_ENDPOINT / _SANDBOX_ID / _SANDBOX / _SSH_SOCKET_PATH (L2340-2400); client TLS at
  /etc/openshell/tls/client/{ca.crt,tls.crt,tls.key} and the sandbox token at /etc/openshell/auth/sandbox.jwt
  (container_paths.rs @111 L45-49).
0.1.x (RFC 0012, two containers) - crates/openshell-driver-docker/README.md @03c8c5f8 "Runtime Model", "Container
  Contract": workload with `openshell-sandbox` as PID 1, network_mode=none, exact non-root user, cap_drop ALL, no
  cap_add, no-new-privileges, /run tmpfs, PidsLimit, restart no; a supervisor companion (non-root, cap_drop ALL,
  no-new-privileges, network_mode=host) sharing only a driver-created named volume; OPENSHELL_ENDPOINT and auth
  material only in the companion. The workload's Memory and NanoCpus from resources.limits as at 0.0.116 (the README
  does not name them; unverified - the canary runs L1.memory_limit on a 0.1.5 sandbox created with --memory).

Stand-in deviations (each also in docs/lines.md):
- the supervisor files are staged with `docker cp` of a tar stream before start (upstream: extracted from the
  supervisor image and bind-mounted at 0.0.x, copied through the archive API at 0.1.x - the latter is the same idea);
- OPENSHELL_STANDIN_NAME_PREFIX (test isolation only) is put in front of every container and volume name;
- the 0.1.x companion joins the stand-in host's network namespace (`container:<host>`) instead of the daemon host
  network, because the stand-in "host" is itself a container; the channel volume, the companion name
  (`<workload>-supervisor`) and the staged path /.openshell/bin are unverified;
- OPENSHELL_STANDIN_KERNEL=no-landlock runs the sandbox containers under a seccomp profile on which every landlock_*
  syscall fails with ENOSYS: the stand-in for a kernel without Landlock (gVisor / a guest without it, #3095).
"""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import tarfile
import time
from pathlib import Path

LABEL_MANAGED_BY = "openshell.ai/managed-by"
LABEL_MANAGED_BY_VALUE = "openshell"
LABEL_SANDBOX_ID = "openshell.ai/sandbox-id"
LABEL_SANDBOX_NAME = "openshell.ai/sandbox-name"
LABEL_SANDBOX_NAMESPACE = "openshell.ai/sandbox-namespace"
LABEL_SANDBOX_WORKSPACE = "openshell.ai/sandbox-workspace"
LABEL_ROLE = "agentsec.standin/role"  # stand-in only: workload | supervisor (0.1.x)
DEFAULT_NETWORK = "openshell-docker"
CONTAINER_NAME_PREFIX = "openshell-"
MAX_CONTAINER_NAME_LEN = 200
SUPERVISOR_DIR_V0 = "/opt/openshell/bin"
SUPERVISOR_DIR_V1 = "/.openshell/bin"
CHANNEL_DIR_V1 = "/.openshell/channel"
DEFAULT_PIDS_LIMIT = 2048
SUPERVISOR_CAPS_V0 = ("SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE", "SYSLOG")
LANDLOCK_SYSCALLS = ("landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self")


class DriverError(Exception):
    pass


def sanitize_docker_name(value: str) -> str:
    """lib.rs @111 L3258-3271: ASCII alphanumerics and _ . - kept (lower-cased), everything else '-', then '-' trimmed
    from both ends."""
    return re.sub(r"[^a-zA-Z0-9_.-]", "-", value).lower().strip("-")


def trim_tail(value: str) -> str:
    return value.rstrip("-._")


def container_name(workspace: str, name: str, sandbox_id: str, prefix: str = "") -> str:
    """lib.rs @111 L3208-3243: openshell-{workspace}--{name}-{id}; only the name part is truncated to fit 200."""
    ident, ws, nm = sanitize_docker_name(sandbox_id), sanitize_docker_name(workspace), sanitize_docker_name(name)
    head = prefix + CONTAINER_NAME_PREFIX
    if not nm:
        return trim_tail(f"{head}{ws}---{ident}"[:MAX_CONTAINER_NAME_LEN])
    reserved = len(head) + len(ws) + 2 + 1 + len(ident)
    if reserved >= MAX_CONTAINER_NAME_LEN:
        return trim_tail(f"{head}{ws}---{ident}"[:MAX_CONTAINER_NAME_LEN])
    budget = MAX_CONTAINER_NAME_LEN - reserved
    nm = trim_tail(nm[:budget]) if len(nm) > budget else nm
    return f"{head}{ws}--{nm}-{ident}"


def labels_for(sandbox: dict, namespace: str, extra: dict | None = None) -> dict:
    labels = dict(sandbox.get("labels") or {})
    labels.update({LABEL_MANAGED_BY: LABEL_MANAGED_BY_VALUE, LABEL_SANDBOX_ID: sandbox["id"],
                   LABEL_SANDBOX_NAME: sandbox["name"], LABEL_SANDBOX_WORKSPACE: sandbox["workspace"],
                   LABEL_SANDBOX_NAMESPACE: namespace})
    labels.update(extra or {})
    return labels


_MEMORY_SUFFIX = {"": 1, "Ki": 1024, "Mi": 1024 ** 2, "Gi": 1024 ** 3, "Ti": 1024 ** 4, "Pi": 1024 ** 5, "Ei": 1024 ** 6,
                  "K": 1000, "M": 1000 ** 2, "G": 1000 ** 3, "T": 1000 ** 4, "P": 1000 ** 5, "E": 1000 ** 6}


def parse_memory_limit(value: str) -> int | None:
    """lib.rs @111 L3004-3046: a decimal number with a binary or decimal suffix -> bytes (rounded); '' -> None."""
    value = value.strip()
    if not value:
        return None
    match = re.fullmatch(r"([0-9.]*)(.*)", value)
    number, suffix = match.group(1), match.group(2)
    try:
        amount = float(number)
    except ValueError:
        raise DriverError(f"invalid docker memory_limit '{value}'; expected a Kubernetes-style quantity") from None
    if amount <= 0:  # digits and dots only: never inf or nan
        raise DriverError("docker memory_limit must be greater than zero")
    if suffix not in _MEMORY_SUFFIX:
        raise DriverError(f"invalid docker memory_limit suffix '{suffix}'")
    return round(amount * _MEMORY_SUFFIX[suffix])


def parse_cpu_limit(value: str) -> int | None:
    """lib.rs @111 L2970-3002: whole millicores ('500m') or cores ('2', '0.5') -> nano CPUs; '' -> None."""
    value = value.strip()
    if not value:
        return None
    bad = f"invalid docker cpu_limit '{value}'; expected an integer or millicore quantity"
    try:
        nano = int(value[:-1]) * 1_000_000 if value.endswith("m") else round(float(value) * 1_000_000_000)
    except ValueError:
        raise DriverError(bad) from None
    if nano <= 0:
        raise DriverError("docker cpu_limit must be greater than zero")
    return nano


def resource_args(sandbox: dict) -> list[str]:
    """`docker create` flags for the sandbox's resources (docker_resource_limits, lib.rs @111 L2923-2946)."""
    resources = sandbox.get("resources") or {}
    if resources.get("requests"):
        raise DriverError("docker compute driver does not support resources.requests")
    limits = resources.get("limits") or {}
    args = []
    nano = parse_cpu_limit(str(limits.get("cpu") or ""))
    if nano is not None:
        args += ["--cpus", f"{nano / 1_000_000_000:.9f}".rstrip("0").rstrip(".")]
    memory = parse_memory_limit(str(limits.get("memory") or ""))
    if memory is not None:
        args += ["--memory", f"{memory}b"]
    return args


def create_args_v0(sandbox: dict, cfg: dict, env: dict, name: str, seccomp_profile: str | None) -> list[str]:
    """`docker create` arguments for a 0.0.116 sandbox (the container contract in the module docstring). Pure."""
    args = ["create", "--name", name, "--user", "0", "--workdir", "/", "--entrypoint", f"{SUPERVISOR_DIR_V0}/openshell-sandbox",
            "--network", cfg["network_name"], "--pids-limit", str(cfg["sandbox_pids_limit"]), "--restart", "no",
            "--security-opt", "apparmor=unconfined", "--hostname", sandbox["name"][:63], *resource_args(sandbox)]
    for cap in SUPERVISOR_CAPS_V0:
        args += ["--cap-add", cap]
    for host in ("host.docker.internal", "host.openshell.internal"):
        args += ["--add-host", f"{host}:{cfg['host_alias_ip']}"]
    if seccomp_profile:
        args += ["--security-opt", f"seccomp={seccomp_profile}"]
    for key, value in sorted(labels_for(sandbox, cfg["namespace"], {LABEL_ROLE: "workload"}).items()):
        args += ["--label", f"{key}={value}"]
    for key, value in sorted(env.items()):
        args += ["--env", f"{key}={value}"]
    return [*args, sandbox["image"], "--workdir", "/sandbox"]


def create_args_v1_workload(sandbox: dict, cfg: dict, env: dict, name: str, uid: int, gid: int, volume: str,
                            seccomp_profile: str | None) -> list[str]:
    """`docker create` arguments for a 0.1.x workload container (README @03c8c5f8 Container Contract). Pure."""
    # `uid` alone (the image's passwd gives the same primary gid): with `uid:gid` Docker 20.10's `docker cp -a` looks
    # the literal "uid:gid" up in the image's passwd and fails - a stand-in detail, the identity is the same
    user = f"{uid}" if gid == uid else f"{uid}:{gid}"
    args = ["create", "--name", name, "--user", user, "--workdir", "/", "--entrypoint",
            f"{SUPERVISOR_DIR_V1}/openshell-sandbox", "--network", "none", "--cap-drop", "ALL", "--security-opt",
            "no-new-privileges", "--tmpfs", f"/run:rw,mode=0755,uid={uid},gid={gid}", "--restart", "no",
            "--pids-limit", str(cfg["sandbox_pids_limit"]), "--volume", f"{volume}:{CHANNEL_DIR_V1}",
            "--hostname", sandbox["name"][:63], *resource_args(sandbox)]
    if seccomp_profile:
        args += ["--security-opt", f"seccomp={seccomp_profile}"]
    for key, value in sorted(labels_for(sandbox, cfg["namespace"], {LABEL_ROLE: "workload"}).items()):
        args += ["--label", f"{key}={value}"]
    for key, value in sorted(env.items()):
        args += ["--env", f"{key}={value}"]
    return [*args, sandbox["image"], "--workdir", "/sandbox"]


def create_args_v1_supervisor(sandbox: dict, cfg: dict, env: dict, name: str, volume: str, uid: int) -> list[str]:
    """The 0.1.x supervisor companion: non-root, cap_drop ALL, no-new-privileges, the channel volume read-only, the
    host's network (stand-in: the stand-in host's namespace). Pure."""
    args = ["create", "--name", name, "--user", str(uid), "--entrypoint", f"{SUPERVISOR_DIR_V1}/openshell-supervisor",
            "--network", cfg["host_network"], "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "--restart", "no", "--volume", f"{volume}:{CHANNEL_DIR_V1}:ro"]
    for key, value in sorted(labels_for(sandbox, cfg["namespace"], {LABEL_ROLE: "supervisor"}).items()):
        args += ["--label", f"{key}={value}"]
    for key, value in sorted(env.items()):
        args += ["--env", f"{key}={value}"]
    return [*args, sandbox["image"]]


def landlock_enosys_profile() -> dict:
    """A seccomp profile that allows everything except the landlock_* syscalls (ENOSYS): a kernel without Landlock."""
    return {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": list(LANDLOCK_SYSCALLS), "action": "SCMP_ACT_ERRNO",
                                                             "errnoRet": 38}]}


def tar_stream(entries: list[tuple[str, bytes | None, int, int, int]]) -> bytes:
    """entries: (path, data or None for a directory, mode, uid, gid) -> an uncompressed tar for `docker cp -a -`."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, data, mode, uid, gid in entries:
            info = tarfile.TarInfo(path.lstrip("/"))
            info.mode, info.uid, info.gid, info.mtime = mode, uid, gid, int(time.time())
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Docker:
    """The docker CLI with the socket the gateway resolved (DOCKER_HOST=unix://<socket>)."""

    def __init__(self, socket_path: str):
        self.socket = socket_path
        self.env = {**os.environ, "DOCKER_HOST": f"unix://{socket_path}"}

    def run(self, *args, data: bytes | None = None, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        proc = subprocess.run(["docker", *args], input=data, capture_output=True, env=self.env, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise DriverError(f"docker {args[0]} failed: {proc.stderr.decode(errors='replace').strip()[-400:]}")
        return proc

    def ping(self) -> bool:
        try:
            return self.run("version", "--format", "{{.Server.Version}}", check=False, timeout=10).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False

    def inspect(self, name: str) -> dict | None:
        proc = self.run("inspect", name, check=False)
        if proc.returncode != 0:
            return None
        return json.loads(proc.stdout)[0]

    def ensure_network(self, network: str, self_container: str | None) -> str:
        """lib.rs @111 L2835-2850 ensure_bridge_network; the stand-in host joins it (see the module docstring) and the
        returned address is where sandboxes reach the gateway (the bridge listener)."""
        if self.run("network", "inspect", network, check=False).returncode != 0:
            self.run("network", "create", "--driver", "bridge", "--label", f"{LABEL_MANAGED_BY}={LABEL_MANAGED_BY_VALUE}",
                     network)
        if not self_container:
            raise DriverError("the stand-in gateway must run in a container it can name (OPENSHELL_STANDIN_HOST_CONTAINER)")
        info = self.inspect(self_container) or {}
        nets = (info.get("NetworkSettings") or {}).get("Networks") or {}
        if network not in nets:
            self.run("network", "connect", network, self_container)
            nets = ((self.inspect(self_container) or {}).get("NetworkSettings") or {}).get("Networks") or {}
        address = (nets.get(network) or {}).get("IPAddress")
        if not address:
            raise DriverError(f"the stand-in host has no address on network {network}")
        return address

    def passwd_ids(self, image: str, user: str) -> tuple[int, int]:
        """Resolve a user of the image to (uid, gid) from its /etc/passwd, read through a stopped metadata container
        (README @03c8c5f8 "Identity and Workspace"); numeric users pass through. Root is refused."""
        if str(user).isdigit():
            uid = int(user)
            gid = uid
        else:
            meta = self.run("create", "--entrypoint", "/bin/true", image).stdout.decode().strip()
            try:
                passwd = self.run("cp", f"{meta}:/etc/passwd", "-").stdout
            finally:
                self.run("rm", "-f", meta, check=False)
            text = tarfile.open(fileobj=io.BytesIO(passwd)).extractfile("passwd").read().decode()
            for line in text.splitlines():
                parts = line.split(":")
                if len(parts) > 3 and parts[0] == user:
                    uid, gid = int(parts[2]), int(parts[3])
                    break
            else:
                raise DriverError(f"user {user!r} does not exist in image {image}")
        if uid == 0 or gid == 0:
            raise DriverError("the Docker driver refuses a root workload identity (UID or GID zero)")
        return uid, gid


def supervisor_entries(src_dir: Path, dest: str) -> list:
    entries = [(dest, None, 0o755, 0, 0)]
    for path in sorted(src_dir.iterdir()):
        if path.is_file():
            entries.append((f"{dest}/{path.name}", path.read_bytes(), 0o755, 0, 0))
    return entries


def write_profile(state_dir: Path) -> str:
    path = state_dir / "seccomp-no-landlock.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(landlock_enosys_profile()))
    return str(path)
