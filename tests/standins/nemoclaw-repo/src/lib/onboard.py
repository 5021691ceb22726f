"""`nemoclaw onboard` of NemoClaw v0.0.21, the non-interactive path (NemoClaw src/lib/onboard.ts @db3453b5, 8 steps:
preflight, gateway, provider selection, inference, messaging, sandbox, OpenClaw, policies). Citations are
`<file>:<line>` in NemoClaw at db3453b5; "stand-in:" marks a deliberate difference (tests/standins/README.md)."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from lib import ollama_proxy as proxy
from lib import policies
from lib import runner as R
from lib import state

TOTAL = 8
STEP_TITLES = {  # onboard.ts:5866-5875 ONBOARD_STEP_INDEX
    "preflight": (1, "Preflight checks"), "gateway": (2, "Starting OpenShell gateway"),
    "provider_selection": (3, "Configuring inference (NIM)"), "inference": (4, "Setting up inference provider"),
    "messaging": (5, "Messaging channels"), "sandbox": (6, "Creating sandbox"),
    "openclaw": (7, "Setting up OpenClaw inside sandbox"), "policies": (8, "Policy presets"),
}
DEFAULT_CLOUD_MODEL = "nvidia/nemotron-3-super-120b-a12b"  # src/lib/inference-config.ts:12
DEFAULT_OLLAMA_MODEL = "nemotron-3-nano:30b"  # src/lib/local-inference.ts:25
SMALL_OLLAMA_MODEL = "qwen2.5:7b"  # local-inference.ts:26
HOST_GATEWAY_URL = "http://host.openshell.internal"  # local-inference.ts:23
LOCAL_INFERENCE_TIMEOUT = R.env_int("NEMOCLAW_LOCAL_INFERENCE_TIMEOUT", 180)  # onboard.ts:24
OPENCLAW_VERSION = "2026.4.2"  # agents/openclaw/manifest.yaml:22 expected_version
# onboard.ts:160-234 REMOTE_PROVIDER_CONFIG: the OpenShell provider each NEMOCLAW_PROVIDER key creates.
REMOTE = {
    "build": {"label": "NVIDIA Endpoints", "name": "nvidia-prod", "type": "nvidia", "env": "NVIDIA_API_KEY",
              "url": "https://integrate.api.nvidia.com/v1", "model": DEFAULT_CLOUD_MODEL, "skip_verify": True},
    "openai": {"label": "OpenAI", "name": "openai-api", "type": "openai", "env": "OPENAI_API_KEY",
               "url": "https://api.openai.com/v1", "model": "gpt-5.4", "skip_verify": True},
    "anthropic": {"label": "Anthropic", "name": "anthropic-prod", "type": "anthropic", "env": "ANTHROPIC_API_KEY",
                  "url": "https://api.anthropic.com", "model": "claude-sonnet-4-6", "skip_verify": False},
    "anthropicCompatible": {"label": "Other Anthropic-compatible endpoint", "name": "compatible-anthropic-endpoint",
                            "type": "anthropic", "env": "COMPATIBLE_ANTHROPIC_API_KEY", "url": "", "model": "",
                            "skip_verify": False},
    "gemini": {"label": "Google Gemini", "name": "gemini-api", "type": "openai", "env": "GEMINI_API_KEY",
               "url": "https://generativelanguage.googleapis.com/v1beta/openai/", "model": "gemini-2.5-flash",
               "skip_verify": True},
    "custom": {"label": "Other OpenAI-compatible endpoint", "name": "compatible-endpoint", "type": "openai",
               "env": "COMPATIBLE_API_KEY", "url": "", "model": "", "skip_verify": True},
}
VALID_PROVIDERS = ("build", "openai", "anthropic", "anthropicCompatible", "gemini", "ollama", "custom", "nim-local", "vllm")
PROVIDER_LABELS = {**{c["name"]: c["label"] for c in REMOTE.values()}, "nvidia-nim": "NVIDIA Endpoints",
                   "vllm-local": "Local vLLM", "ollama-local": "Local Ollama"}  # onboard.ts:5779-5792
# onboard.ts:4504-4546 MESSAGING_CHANNELS (name, token env, app-token env)
CHANNELS = (("telegram", "TELEGRAM_BOT_TOKEN", None), ("discord", "DISCORD_BOT_TOKEN", None),
            ("slack", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"))
# subprocess-env.ts:23-39: the only variables `openshell sandbox create` inherits.
ENV_ALLOWED = {"HOME", "USER", "LOGNAME", "SHELL", "PATH", "TERM", "HOSTNAME", "NODE_ENV", "TMPDIR", "TMP", "TEMP",
               "LANG", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
               "SSL_CERT_FILE", "SSL_CERT_DIR", "NODE_EXTRA_CA_CERTS", "DOCKER_HOST", "RUST_LOG", "RUST_BACKTRACE"}
ENV_PREFIXES = ("LC_", "XDG_", "OPENSHELL_", "GRPC_", "AGENTSEC_")  # stand-in: + AGENTSEC_ (the stand-ins' state)
# stand-in: the sandbox image's base (the real one is ghcr.io/nvidia/nemoclaw/sandbox-base:latest, onboard.ts:531)
# and the image the container-reachability probe runs in (the real one is curlimages/curl:8.10.1,
# local-inference.ts:24); neither registry is reachable offline, both images have curl.
BASE_IMAGE = "agentsec/openshell-sandbox-base:0.0.26"


class Options:
    def __init__(self, args):
        """src/lib/onboard-command.ts:50-109 parseOnboardArgs."""
        args = list(args)
        self.from_dockerfile = self.agent = None
        for flag in ("--from", "--agent"):
            if flag in args:
                i = args.index(flag)
                value = args[i + 1] if i + 1 < len(args) else None
                if not value or value.startswith("--"):
                    R.fail(f"  {flag} requires {'a path to a Dockerfile' if flag == '--from' else 'a name'}", *usage())
                setattr(self, "from_dockerfile" if flag == "--from" else "agent", value)
                del args[i:i + 2]
        allowed = {"--non-interactive", "--resume", "--recreate-sandbox", "--dangerously-skip-permissions",
                   state.NOTICE_ACCEPT_FLAG}
        unknown = [a for a in args if a not in allowed]
        if unknown:
            R.fail(f"  Unknown onboard option(s): {', '.join(unknown)}", *usage())
        self.non_interactive = "--non-interactive" in args or os.environ.get("NEMOCLAW_NON_INTERACTIVE") == "1"
        self.resume = "--resume" in args
        self.recreate = "--recreate-sandbox" in args or os.environ.get("NEMOCLAW_RECREATE_SANDBOX") == "1"
        self.skip_permissions = ("--dangerously-skip-permissions" in args
                                 or os.environ.get("NEMOCLAW_DANGEROUSLY_SKIP_PERMISSIONS") == "1")
        self.accept = state.NOTICE_ACCEPT_FLAG in args or os.environ.get(state.NOTICE_ACCEPT_ENV, "") == "1"


def usage():
    return ("  Usage: nemoclaw onboard [--non-interactive] [--resume] [--recreate-sandbox] [--from <Dockerfile>] "
            f"[--agent <name>] [--dangerously-skip-permissions] [{state.NOTICE_ACCEPT_FLAG}]", "")


# ---- main (onboard.ts:5890-6360) -----------------------------------------------------------------------------

def onboard(args) -> int:
    if "--help" in args or "-h" in args:
        R.say(*usage())
        return 0
    opts = Options(args)
    os.environ.pop("OPENSHELL_GATEWAY", None)  # onboard.ts:5904
    if opts.skip_permissions or opts.from_dockerfile or opts.agent:
        R.fail("  nemoclaw (agentsec stand-in): --dangerously-skip-permissions, --from and --agent are not emulated.")
    if not state.ensure_consent(opts.non_interactive, opts.accept, sys.stdin.isatty()):  # onboard.ts:5913-5920
        raise R.Exit(1)
    if opts.non_interactive:
        requested_provider()  # onboard.ts:5925: an unsupported NEMOCLAW_PROVIDER fails before preflight
    lock = state.acquire_lock(f"nemoclaw onboard{' --resume' if opts.resume else ''}"
                              f"{' --non-interactive' if opts.non_interactive else ''}")
    if not lock["acquired"]:  # onboard.ts:5926-5940
        R.fail("  Another NemoClaw onboarding run is already in progress.",
               *([f"  Lock holder PID: {lock['holderPid']}"] if lock.get("holderPid") else []),
               "  Wait for it to finish, or remove the stale lock if the previous run crashed:",
               f'    rm -f "{lock["lockFile"]}"')
    try:
        return _onboard(opts)
    finally:
        state.release_lock()


def _onboard(opts) -> int:
    if opts.resume:
        session = state.load_session()
        if not session or session.get("resumable") is False:  # onboard.ts:5962-5967
            R.fail("  No resumable onboarding session was found.", "  Run: nemoclaw onboard")
        R.fail("  nemoclaw (agentsec stand-in): --resume is not emulated; run `nemoclaw onboard` again.")
    state.new_session("non-interactive" if opts.non_interactive else "interactive")
    R.say("", "  NemoClaw Onboarding")
    if opts.non_interactive:
        R.note("  (non-interactive mode)")
    R.say("  ===================")
    if not opts.non_interactive:
        R.fail("  nemoclaw (agentsec stand-in): the interactive wizard is not emulated; use --non-interactive.")

    state.mark("preflight", "in_progress")
    preflight()
    state.mark("preflight", "complete")
    gateway_step()

    provider, model, api = None, None, None
    state.mark("provider_selection", "in_progress")
    provider, model, api = setup_nim()
    state.mark("provider_selection", "complete", provider=provider, model=model)
    state.mark("inference", "in_progress")
    setup_inference(provider, model)
    os.environ.pop("NVIDIA_API_KEY", None)  # onboard.ts:6178
    state.mark("inference", "complete")

    state.mark("sandbox", "in_progress")
    channels = setup_messaging()
    name = create_sandbox(model, provider, api, channels, opts.recreate)
    state.update(name, model=model, provider=provider)  # onboard.ts:6255
    state.mark("sandbox", "complete", sandboxName=name)

    state.mark("openclaw", "in_progress")
    setup_openclaw(name, model, provider)
    state.mark("openclaw", "complete")

    state.mark("policies", "in_progress")
    setup_policies(name, provider, channels)
    state.mark("policies", "complete")
    session = state.load_session() or {}
    session.update(status="complete", resumable=False)
    state.save_session(session)
    print_dashboard(name, model, provider)
    return 0


def skipped(step_name: str, detail: str, reason: str = "resume") -> None:
    """onboard.ts:5878-5885."""
    n, title = STEP_TITLES[step_name]
    R.step(n, TOTAL, title)
    R.say(f"  {'[reuse]' if reason == 'reuse' else '[resume]'} Skipping {step_name}{f' ({detail})' if detail else ''}")


# ---- step 1: preflight (onboard.ts:2310-2641) -----------------------------------------------------------------

def infer_runtime(info: str) -> str:
    """src/lib/platform.ts:58-66."""
    text = info.lower()
    for needle, runtime in (("podman", "podman"), ("colima", "colima"), ("docker desktop", "docker-desktop"),
                            ("docker", "docker")):
        if needle in text:
            return runtime
    return "unknown"


def version_gte(left: str, right: str) -> bool:
    """onboard.ts:473-489."""
    def parts(v):
        return [int(p) if p.isdigit() else 0 for p in str(v).split(".")]
    a, b = parts(left), parts(right)
    n = max(len(a), len(b))
    return (a + [0] * (n - len(a))) >= (b + [0] * (n - len(b)))


def openshell_version(output: str | None = None):
    """onboard.ts:458-467: `openshell -V` -> 'x.y.z'."""
    if output is None:
        output = R.capture([R.resolve_openshell() or "openshell", "-V"])
    m = re.search(r"openshell\s+([0-9]+\.[0-9]+\.[0-9]+)", output or "", re.I)
    return m.group(1) if m else None


def blueprint_field(field: str):
    """onboard.ts:496-514 (nemoclaw-blueprint/blueprint.yaml)."""
    try:
        text = (R.ROOT / "nemoclaw-blueprint" / "blueprint.yaml").read_text()
    except OSError:
        return None
    m = re.search(rf'^{field}:\s*"?([0-9]+\.[0-9]+\.[0-9]+)"?\s*$', text, re.M)
    return m.group(1) if m else None


def gateway_outputs():
    return (R.openshell_capture("status"), R.openshell_capture("gateway", "info", "-g", R.GATEWAY_NAME),
            R.openshell_capture("gateway", "info"))


def verify_gateway_container() -> str:
    """onboard.ts:136-155: running | missing | unknown, from `docker inspect` of openshell-cluster-nemoclaw."""
    res = subprocess.run(["bash", "-c", "docker inspect --type container --format '{{.State.Running}}' "
                          f"openshell-cluster-{R.GATEWAY_NAME}"], cwd=R.ROOT, capture_output=True, text=True, check=False)
    if res.returncode == 0:
        return "running" if res.stdout.strip() == "true" else "missing"
    return "missing" if ("No such object" in res.stderr or "No such container" in res.stderr) else "unknown"


def remove_gateway_volumes() -> None:
    """onboard.ts:2223-2226 (the volume cleanup `gateway destroy` leaves to the caller)."""
    flt = f'--filter "name=openshell-cluster-{R.GATEWAY_NAME}"'
    R.run(["bash", "-c", f"docker volume ls -q {flt} | grep . && docker volume ls -q {flt} | xargs docker volume rm || true"],
          check=False)


def destroy_gateway() -> None:
    """onboard.ts:2211-2227: destroy, clear the registry when that worked, remove the cluster volumes."""
    if R.openshell("gateway", "destroy", "-g", R.GATEWAY_NAME, check=False).returncode == 0:
        state.clear_all()
    remove_gateway_volumes()


def check_container(reuse: str) -> str:
    """onboard.ts:2443-2458 / 6057-6072: trust a "healthy" gateway only while its container runs (#2020)."""
    if reuse != "healthy":
        return reuse
    container = verify_gateway_container()
    if container == "missing":
        R.say("  Gateway metadata is stale (container not running). Cleaning up...")
        R.openshell("forward", "stop", str(R.dashboard_port()), check=False)
        destroy_gateway()
        state.clear_all()
        R.say("  ✓ Stale gateway metadata cleaned up")
        return "missing"
    if container == "unknown":
        R.say("  Warning: could not verify gateway container state (Docker may be unavailable). Proceeding with "
              "cached health status.")
    return reuse


def port_free(port: int) -> bool:
    """src/lib/preflight.ts:460-495 (the net probe: bind 127.0.0.1:<port>). stand-in: lsof is not consulted."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def preflight() -> None:
    R.step(1, TOTAL, "Preflight checks")
    info = R.capture(["bash", "-c", "docker info --format '{{json .}}' 2>/dev/null"])  # preflight.ts:270
    if not info:
        R.fail("  Docker is not reachable. Please fix Docker and try again.")  # onboard.ts:2316-2320
    R.say("  ✓ Docker is running")
    runtime = infer_runtime(info)
    if runtime != "unknown":
        R.say(f"  ✓ Container runtime: {runtime}")
    if not R.resolve_openshell():  # onboard.ts:2335-2342; stand-in: no scripts/install-openshell.sh (GitHub download)
        R.say("  openshell CLI not found. Installing...")
        R.fail("  Failed to install openshell CLI.", "  Install manually: https://github.com/NVIDIA/OpenShell/releases")
    current = openshell_version()
    if not current or not version_gte(current, "0.0.24"):  # onboard.ts:2346-2373 (MIN_VERSION 0.0.24)
        R.say("  openshell version could not be determined. Reinstalling..." if not current else
              f"  openshell {current} is below minimum required version. Upgrading...")
        R.fail("  Failed to reinstall openshell CLI." if not current else "  Failed to upgrade openshell CLI.",
               "  Install manually: https://github.com/NVIDIA/OpenShell/releases")
    out = R.openshell_capture("--version")
    R.say(f"  ✓ openshell CLI: {out or 'unknown'}")
    installed = openshell_version(out)
    low, high = blueprint_field("min_openshell_version"), blueprint_field("max_openshell_version")
    if installed and low and not version_gte(installed, low):  # onboard.ts:2380-2400
        R.fail("", f"  ✗ openshell {installed} is below the minimum required by this NemoClaw release.",
               f"    blueprint.yaml min_openshell_version: {low}", "", "    Upgrade openshell and retry:",
               "      https://github.com/NVIDIA/OpenShell/releases", "")
    if installed and high and not version_gte(high, installed):  # onboard.ts:2406-2422
        R.fail("", f"  ✗ openshell {installed} is above the maximum supported by this NemoClaw release.",
               f"    blueprint.yaml max_openshell_version: {high}", "",
               "    Upgrade NemoClaw to a version that supports your OpenShell release,",
               "    or install a supported OpenShell version:", "      https://github.com/NVIDIA/OpenShell/releases", "")

    reuse = check_container(state.gateway_reuse_state(*gateway_outputs()))  # onboard.ts:2440-2459
    if reuse in ("stale", "active-unnamed"):  # onboard.ts:2461-2474
        R.say("  Cleaning up previous NemoClaw session...")
        R.openshell("forward", "stop", str(R.dashboard_port()), check=False)
        if R.openshell("gateway", "destroy", "-g", R.GATEWAY_NAME, check=False).returncode == 0:
            state.clear_all()
        R.say("  ✓ Previous session cleaned up")
    if reuse == "missing":  # onboard.ts:2479-2516: an orphaned cluster container from an interrupted run
        container = f"openshell-cluster-{R.GATEWAY_NAME}"
        if R.run(["docker", "inspect", "--type", "container", "--format", "{{.State.Status}}", container],
                 check=False, show=False).returncode == 0:
            R.say("  Cleaning up orphaned gateway container...")
            R.run(["docker", "stop", container], check=False, show=False)
            R.run(["docker", "rm", container], check=False, show=False)
            if R.run(["docker", "inspect", "--type", "container", container], check=False, show=False).returncode != 0:
                remove_gateway_volumes()
                state.clear_all()
                R.say("  ✓ Orphaned gateway container removed")
            else:
                R.err("  ! Found an orphaned gateway container, but automatic cleanup failed.")
    for port, label in ((R.gateway_port(), "OpenShell gateway"), (R.dashboard_port(), "NemoClaw dashboard")):
        if port_free(port):  # onboard.ts:2519-2580
            R.say(f"  ✓ Port {port} available ({label})")
        elif reuse == "healthy":
            R.say(f"  ✓ Port {port} already owned by healthy NemoClaw runtime ({label})")
        else:
            R.fail("", f"  !! Port {port} is not available.", f"     {label} needs this port.", "",
                   f"     Could not identify the process using port {port}.",
                   f"     Run: sudo lsof -i :{port} -sTCP:LISTEN", "", f"     Detail: port {port} is in use (EADDRINUSE)")
    # onboard.ts:2583-2596. stand-in: no nvidia-smi / system_profiler probe; platform branches follow the machine
    # the stand-in runs on.
    R.say("  ⓘ No GPU detected — will use cloud inference")
    memory_check()


def memory_check() -> None:
    """onboard.ts:2599-2638 (Linux only; non-interactive runs never create swap)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return
    kb = {k: int(v) for k, v in re.findall(r"^(MemTotal|SwapTotal):\s+(\d+)", text, re.M)}
    ram, swap = kb.get("MemTotal", 0) // 1024, kb.get("SwapTotal", 0) // 1024
    if ram + swap < 12000:
        R.say(f"  ⚠ Low memory detected ({ram} MB RAM + {swap} MB swap = {ram + swap} MB total)",
              "  ⓘ Skipping swap creation. Sandbox build may fail with OOM on this system.")
    else:
        R.say(f"  ✓ Memory OK: {ram} MB RAM + {swap} MB swap")


# ---- step 2: gateway (onboard.ts:6049-6099, 2644-2829) ------------------------------------------------------

def gateway_step() -> None:
    reuse = check_container(state.gateway_reuse_state(*gateway_outputs()))
    if reuse == "healthy":  # #953: a healthy `nemoclaw` gateway is kept across repeat onboarding
        skipped("gateway", "running", "reuse")
        R.note("  Reusing healthy NemoClaw gateway.")
        return
    state.mark("gateway", "in_progress")
    start_gateway()
    state.mark("gateway", "complete")


def gateway_start_env() -> dict:
    """onboard.ts:2818-2829: pin the cluster image to the CLI's version."""
    version = openshell_version()
    return {"OPENSHELL_CLUSTER_IMAGE": f"ghcr.io/nvidia/openshell/cluster:{version}", "IMAGE_TAG": version} if version else {}


def prune_known_hosts() -> None:
    """onboard.ts:2667-2683 + 277-287: drop known_hosts entries of openshell-* hosts (#768). stand-in: the
    preceding `ssh-keygen -R openshell-nemoclaw` is not run; the file prune does the same."""
    path = R.S.home() / ".ssh" / "known_hosts"
    try:
        text = path.read_text()
    except OSError:
        return
    kept = [line for line in text.split("\n") if not line.strip() or line.strip().startswith("#")
            or not any(h.startswith("openshell-") for h in line.split()[0].split(","))]
    if "\n".join(kept) != text:
        path.write_text("\n".join(kept))


def gateway_healthy_now() -> bool:
    R.openshell_capture("gateway", "select", R.GATEWAY_NAME)
    return state.gateway_healthy(*gateway_outputs())


def start_gateway() -> None:
    R.step(2, TOTAL, "Starting OpenShell gateway")
    status, info, active = gateway_outputs()
    if state.gateway_healthy(status, info, active):  # onboard.ts:2652-2657
        R.say("  ✓ Reusing existing gateway")
        R.openshell("gateway", "select", R.GATEWAY_NAME, check=False)
        os.environ["OPENSHELL_GATEWAY"] = R.GATEWAY_NAME
        return
    if state.has_stale_gateway(info):
        R.say("  Stale gateway detected — attempting restart without destroy...")
    prune_known_hosts()
    env = gateway_start_env()
    if env:
        R.say(f"  Using pinned OpenShell gateway image: {env['OPENSHELL_CLUSTER_IMAGE']}")
    arm64 = platform.machine() in ("arm64", "aarch64")
    count = R.env_int("NEMOCLAW_HEALTH_POLL_COUNT", 30 if arm64 else 12)  # onboard.ts:2730-2731 (#1830)
    interval = R.env_int("NEMOCLAW_HEALTH_POLL_INTERVAL", 10 if arm64 else 5)
    retries = 2  # onboard.ts:2700: pRetry, minTimeout 10 s, factor 3, destroy between attempts
    for attempt in range(1, retries + 2):
        res = R.run([R.openshell_bin(), "gateway", "start", "--name", R.GATEWAY_NAME, "--port", str(R.gateway_port())],
                    env=env, check=False, show=False)
        if res.returncode == 0:
            R.say(*(f"  {line.strip()}" for line in R.ANSI.sub("", R.redact(res.stdout + res.stderr)).splitlines() if line.strip()))
        else:
            lines = [f"    {line}" for line in R.ANSI.sub("", R.redact(res.stdout + res.stderr)).splitlines() if line.strip()]
            if lines:
                R.say("  Gateway start returned before healthy:", *lines)
        R.say("  Waiting for gateway health...")
        for i in range(count):
            if gateway_healthy_now():
                break
            if i < count - 1:
                R.sleep(interval)
        else:
            R.say(f"  Gateway start attempt {attempt} failed. {retries + 1 - attempt} retries left...")
            if attempt <= retries:
                destroy_gateway()
                R.sleep(10 * 3 ** (attempt - 1))
                continue
            logs = R.openshell_capture("doctor", "logs", "--name", R.GATEWAY_NAME)
            R.fail(f"  Gateway failed to start after {retries + 1} attempts.", "  Gateway state preserved for diagnostics.",
                   "", *(["  Gateway logs:", *(f"    {line}" for line in R.ANSI.sub("", logs).splitlines() if line), ""]
                         if logs else []),
                   "  Troubleshooting:", "    openshell doctor logs --name nemoclaw", "    openshell doctor check")
        break
    R.say("  ✓ Gateway is healthy")
    # onboard.ts:2797-2803: CoreDNS patch only on Colima/Podman. stand-in: scripts/fix-coredns.sh is not shipped.
    R.sleep(5)
    R.openshell("gateway", "select", R.GATEWAY_NAME, check=False)
    os.environ["OPENSHELL_GATEWAY"] = R.GATEWAY_NAME


# ---- step 3: provider selection (onboard.ts:3634-4325) ------------------------------------------------------

def requested_provider():
    """onboard.ts:2264-2294: NEMOCLAW_PROVIDER, lower-cased, aliases cloud->build, nim->nim-local."""
    key = (os.environ.get("NEMOCLAW_PROVIDER") or "").strip().lower()
    if not key:
        return None
    normalized = {"cloud": "build", "nim": "nim-local", "anthropiccompatible": "anthropicCompatible"}.get(key, key)
    if normalized not in VALID_PROVIDERS:
        R.fail(f"  Unsupported NEMOCLAW_PROVIDER: {key}",
               "  Valid values: build, openai, anthropic, anthropicCompatible, gemini, ollama, custom, nim-local, vllm")
    return normalized


def requested_model(provider_key: str):
    """onboard.ts:2296-2305 (isSafeModelId, src/lib/validation.ts:82-84)."""
    model = (os.environ.get("NEMOCLAW_MODEL") or "").strip()
    if not model:
        return None
    if not re.fullmatch(r"[A-Za-z0-9._:/-]+", model):
        R.fail(f"  Invalid NEMOCLAW_MODEL for provider '{provider_key}': {model}",
               "  Model values may only contain letters, numbers, '.', '_', ':', '/', and '-'.")
    return model


def is_loopback(url: str) -> bool:
    host = re.sub(r"^[a-z]+://", "", url).split("/")[0].rsplit(":", 1)[0].strip("[]")
    return host in ("127.0.0.1", "localhost", "::1")


def probe_openai_like(label: str, base_url: str, model: str, key: str | None, skip_responses: bool) -> str:
    """onboard.ts:1428-1615 + 1652-1683 (validateOpenAiLikeSelection): POST /responses (unless skipped), then
    /chat/completions; the first 2xx decides the API; a failure exits in non-interactive mode. stand-in: only
    loopback endpoints are probed (tests contact no public address) - a remote endpoint is assumed to answer
    Chat Completions, which is what upstream records for NVIDIA Endpoints, whose /responses probe is skipped."""
    base = base_url.rstrip("/")
    if not is_loopback(base):
        R.say(f"  [agentsec stand-in] {label}: live validation of {base} skipped (no public network in tests).",
              "  Chat Completions API available — OpenClaw will use openai-completions.")
        return "openai-completions"
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    probes = [] if skip_responses else [("Responses API", "openai-responses", "/responses",
                                         {"model": model, "input": "Reply with exactly: OK"})]
    probes.append(("Chat Completions API", "openai-completions", "/chat/completions",
                   {"model": model, "messages": [{"role": "user", "content": "Reply with exactly: OK"}]}))
    failures = []
    for name, api, path, body in probes:
        try:
            status, data = R.S.http("POST", base + path, body, headers=headers, timeout=15)
        except OSError as e:
            failures.append(f"{name}: curl failed ({e})")
            continue
        if 200 <= status < 300:
            R.say(f"  {name} available — OpenClaw will use {api}.")
            return api
        failures.append(f"{name}: HTTP {status}: {data[:200].decode(errors='replace')}")
    R.fail(f"  {label} endpoint validation failed.", f"  {' | '.join(failures)}")
    return ""


def ollama_models() -> list:
    """local-inference.ts:239-271: /api/tags names, else `ollama list`."""
    body = R.http_ok(f"http://127.0.0.1:{R.ollama_port()}/api/tags")
    try:
        names = [m.get("name") for m in json.loads(body or b"{}").get("models", []) if m.get("name")]
    except (ValueError, AttributeError):
        names = []
    if names:
        return names
    listing = R.capture(["ollama", "list"])
    return [re.split(r"\s{2,}", line.strip())[0] for line in listing.splitlines()
            if line.strip() and not re.match(r"^NAME\s+", line.strip(), re.I)]


def default_ollama_model() -> str:
    """local-inference.ts:282-292 (no GPU: the bootstrap choice is the small model)."""
    models = ollama_models()
    if not models:
        return SMALL_OLLAMA_MODEL
    return DEFAULT_OLLAMA_MODEL if DEFAULT_OLLAMA_MODEL in models else models[0]


def validate_ollama_model(model: str) -> None:
    """local-inference.ts:311-359: POST /api/generate (120 s); no answer or an error exits."""
    try:
        dummy, body = R.S.http("POST", f"http://127.0.0.1:{R.ollama_port()}/api/generate",
                               {"model": model, "prompt": "hello", "stream": False, "keep_alive": "15m"}, timeout=120)
    except OSError:
        R.fail(f"  Selected Ollama model '{model}' did not answer the local probe in time. It may still be loading, "
               "too large for the host, or otherwise unhealthy.")
    try:
        error = json.loads(body or b"{}").get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, str) and error.strip():
        R.fail(f"  Selected Ollama model '{model}' failed the local probe: {error.strip()}")


def setup_nim():
    """Returns (provider, model, preferred API)."""
    R.step(3, TOTAL, "Configuring inference (NIM)")
    has_ollama = shutil.which("ollama") is not None  # onboard.ts:3646
    ollama_running = R.http_ok(f"http://127.0.0.1:{R.ollama_port()}/api/tags") is not None
    vllm_running = R.http_ok(f"http://127.0.0.1:{R.vllm_port()}/v1/models") is not None
    requested = requested_provider()
    model = requested_model(requested or "build")
    options = ["build", "openai", "custom", "anthropic", "anthropicCompatible", "gemini"]  # onboard.ts:3657-3663
    if has_ollama or ollama_running:
        options.append("ollama")
    experimental = os.environ.get("NEMOCLAW_EXPERIMENTAL") == "1"
    if experimental and vllm_running:  # nim-local also needs a NIM-capable NVIDIA GPU (never here)
        options.append("vllm")
    if not has_ollama and sys.platform == "darwin":
        options.append("install-ollama")
    key = requested or "build"
    if key not in options:  # onboard.ts:3692-3699
        R.fail(f"  Requested provider '{key}' is not available in this environment.")
    R.note(f"  [non-interactive] Provider: {key}")
    if key in REMOTE:
        return select_remote(key, model)
    if key == "ollama":
        return select_ollama(model, ollama_running)
    if key == "vllm":
        return select_vllm()
    R.fail(f"  nemoclaw (agentsec stand-in): provider '{key}' is not emulated.")
    return None


def select_remote(key: str, model):
    """onboard.ts:3720-4030."""
    cfg = REMOTE[key]
    url = cfg["url"]
    if key in ("custom", "anthropicCompatible"):
        url = (os.environ.get("NEMOCLAW_ENDPOINT_URL") or "").strip().rstrip("/")
        if not url:
            R.fail(f"  Endpoint URL is required for {cfg['label']}.")
    fallback = (os.environ.get("NEMOCLAW_PROVIDER_KEY") or "").strip()
    if fallback and not os.environ.get(cfg["env"]):
        os.environ[cfg["env"]] = fallback
    if not os.environ.get(cfg["env"]):
        R.fail(f"  {cfg['env']} (or NEMOCLAW_PROVIDER_KEY) is required for {cfg['label']} in non-interactive mode.")
    if key == "build" and not os.environ["NVIDIA_API_KEY"].startswith("nvapi-"):  # validation.ts:72-80
        R.fail("  Invalid key. Must start with nvapi-", "  Get a key from https://build.nvidia.com/settings/api-keys")
    model = model or cfg["model"]
    if not model:
        R.fail(f"  NEMOCLAW_MODEL is required for {cfg['label']} in non-interactive mode.")
    if cfg["type"] == "anthropic":
        api = "anthropic-messages"
        R.say(f"  [agentsec stand-in] {cfg['label']}: live validation of {url} skipped (no public network in tests).")
    else:  # build and gemini skip the /responses probe (validation.ts:129-131)
        api = probe_openai_like(cfg["label"], url, model, os.environ[cfg["env"]], key in ("build", "gemini"))
        if key == "custom":
            api = "openai-completions"  # onboard.ts:3907-3917 (#1932)
    R.say(f"  Using {cfg['label']} with model: {model}")
    os.environ["AGENTSEC_STANDIN_ENDPOINT_URL"] = url
    return cfg["name"], model, api


def select_ollama(model, running: bool):
    """onboard.ts:4136-4193."""
    port = R.ollama_port()
    if not running:
        R.say("  Starting Ollama...")
        try:  # onboard.ts:4143: `OLLAMA_HOST=0.0.0.0:<port> ollama serve > /dev/null 2>&1 &`
            R.S.spawn(["ollama", "serve"], env={**os.environ, "OLLAMA_HOST": f"0.0.0.0:{port}"})
        except OSError:
            pass
        R.sleep(2)
        R.say("", "  ⚠ Ollama is binding to 0.0.0.0 so the sandbox can reach it via Docker.",
              "    This exposes the Ollama API to your local network (no auth required).",
              "    On public WiFi, any device on the same network can send prompts to your GPU.",
              "    See: CNVD-2025-04094, CVE-2024-37032", "")
    if not proxy.start():
        raise R.Exit(1)
    R.say(f"  ✓ Using Ollama on localhost:{port} (proxy on :{R.ollama_proxy_port()})")
    installed = ollama_models()
    model = model or default_ollama_model()
    if model not in installed:  # onboard.ts:2004-2021 prepareOllamaModel
        R.say(f"  Pulling Ollama model: {model}")
        sys.stdout.flush()
        if subprocess.run(["ollama", "pull", model], cwd=R.ROOT, check=False, timeout=600).returncode != 0:
            R.fail(f"  Failed to pull Ollama model '{model}'. Check the model name and that Ollama can access the "
                   "registry, then try another model.")
    R.say(f"  Loading Ollama model: {model}")
    # stand-in: the fire-and-forget warm-up `nohup curl .../api/generate &` (local-inference.ts:294-309) is not run;
    # the blocking probe right after it is.
    validate_ollama_model(model)
    api = probe_openai_like("Local Ollama", f"http://127.0.0.1:{port}/v1", model, None, False)
    if api != "openai-completions":
        R.say("  ℹ Using chat completions API (Ollama tool calls require /v1/chat/completions)")
    return "ollama-local", model, "openai-completions"


def select_vllm():
    """onboard.ts:4258-4320."""
    port = R.vllm_port()
    R.say(f"  ✓ Using existing vLLM on localhost:{port}")
    try:
        data = json.loads(R.http_ok(f"http://127.0.0.1:{port}/v1/models") or b"")
        model = data["data"][0]["id"]
    except (ValueError, KeyError, IndexError, TypeError):
        R.fail(f"  Could not query vLLM models endpoint. Is vLLM running on localhost:{port}?")
    R.say(f"  Detected model: {model}")
    probe_openai_like("Local vLLM", f"http://127.0.0.1:{port}/v1", model, "dummy", False)
    return "vllm-local", model, "openai-completions"


# ---- step 4: inference provider (onboard.ts:4331-4497) -----------------------------------------------------

def provider_args(action: str, name: str, ptype: str, cred_env: str, base_url) -> list:
    """onboard.ts:787-798 buildProviderArgs: the credential travels as an env name, its value in the environment."""
    args = (["provider", "create", "--name", name, "--type", ptype, "--credential", cred_env] if action == "create"
            else ["provider", "update", name, "--credential", cred_env])
    if base_url and ptype == "openai":
        args += ["--config", f"OPENAI_BASE_URL={base_url}"]
    elif base_url and ptype == "anthropic":
        args += ["--config", f"ANTHROPIC_BASE_URL={base_url}"]
    return args


def provider_exists(name: str) -> bool:
    """onboard.ts:858-864: `openshell provider get <name>` exits 0."""
    return R.openshell_quiet("provider", "get", name) == 0


def upsert_provider(name: str, ptype: str, cred_env: str, base_url, env: dict) -> tuple[bool, str]:
    """onboard.ts:812-833."""
    action = "update" if provider_exists(name) else "create"
    res = R.run([R.openshell_bin(), *provider_args(action, name, ptype, cred_env, base_url)], env=env, check=False,
                show=False)
    if res.returncode != 0:
        return False, (R.redact(res.stderr).strip() or R.redact(res.stdout).strip() or f"Failed to {action} provider '{name}'.")
    return True, ""


def container_reaches_proxy() -> bool:
    """local-inference.ts:156-177 + 209-213: a throw-away container must reach the auth proxy through
    host.openshell.internal (Docker's host-gateway). stand-in: the probe image is BASE_IMAGE (see above)."""
    url = f"{HOST_GATEWAY_URL}:{R.ollama_proxy_port()}/api/tags"
    return bool(R.capture(["docker", "run", "--rm", "--add-host", "host.openshell.internal:host-gateway",
                           "--entrypoint", "curl", BASE_IMAGE, "-sf", url]))


def setup_inference(provider: str, model: str) -> None:
    R.step(4, TOTAL, "Setting up inference provider")
    R.openshell("gateway", "select", R.GATEWAY_NAME, check=False)
    remote = next((c for c in REMOTE.values() if c["name"] == provider), None)
    if remote:
        url = os.environ.pop("AGENTSEC_STANDIN_ENDPOINT_URL", "") or remote["url"]
        ok, message = upsert_provider(provider, remote["type"], remote["env"], url, {remote["env"]: os.environ[remote["env"]]})
        if not ok:
            R.fail(f"  {message}")
        args = ["inference", "set", *(["--no-verify"] if remote["skip_verify"] else []), "--provider", provider,
                "--model", model]
        res = R.openshell(*args, check=False)
        if res.returncode != 0:
            R.fail(f"  {R.redact(res.stderr + ' ' + res.stdout).strip() or f'Failed to configure inference provider {provider}.'}",
                   code=res.returncode)
    elif provider == "vllm-local":
        if R.http_ok(f"http://127.0.0.1:{R.vllm_port()}/v1/models") is None:
            R.fail(f"  Local vLLM was selected, but nothing is responding on http://127.0.0.1:{R.vllm_port()}.")
        ok, message = upsert_provider("vllm-local", "openai", "OPENAI_API_KEY", f"{HOST_GATEWAY_URL}:{R.vllm_port()}/v1",
                                      {"OPENAI_API_KEY": "dummy"})
        if not ok:
            R.fail(f"  {message}")
        R.openshell("inference", "set", "--no-verify", "--provider", "vllm-local", "--model", model, "--timeout",
                    str(LOCAL_INFERENCE_TIMEOUT))
    elif provider == "ollama-local":
        setup_ollama_route(model)
    verify_route()
    R.say(f"  ✓ Inference route set: {provider} / {model}")


def setup_ollama_route(model: str) -> None:
    """onboard.ts:4443-4490."""
    port = R.ollama_port()
    if R.http_ok(f"http://127.0.0.1:{port}/api/tags") is None:
        R.fail(f"  Local Ollama was selected, but nothing is responding on http://127.0.0.1:{port}.",
               *(["  On macOS, local inference also depends on OpenShell host routing support."]
                 if sys.platform == "darwin" else []))
    if not container_reaches_proxy():
        R.fail("  Local Ollama is responding on 127.0.0.1, but containers cannot reach the auth proxy at "
               f"{HOST_GATEWAY_URL}:{R.ollama_proxy_port()}. Ensure the Ollama auth proxy is running.")
    proxy.ensure()
    token = proxy.current_token()
    if not token:
        R.fail("  Ollama auth proxy token is not set. Re-run onboard to initialize the proxy.")
    proxy.persist_token(token)
    ok, message = upsert_provider("ollama-local", "openai", "OPENAI_API_KEY",
                                  f"{HOST_GATEWAY_URL}:{R.ollama_proxy_port()}/v1", {"OPENAI_API_KEY": token})
    if not ok:
        R.fail(f"  {message}")
    R.openshell("inference", "set", "--no-verify", "--provider", "ollama-local", "--model", model, "--timeout",
                str(LOCAL_INFERENCE_TIMEOUT))
    R.say(f"  Priming Ollama model: {model}")
    validate_ollama_model(model)


def verify_route() -> None:
    """onboard.ts:930-936: the regex runs on the raw (coloured) output, as upstream's does."""
    out = R.openshell_capture("inference", "get")
    if not out or re.search(r"Gateway inference:\s*[\r\n]+\s*Not configured", out, re.I):
        R.fail("  OpenShell inference route was not configured.")


# ---- step 5: messaging (onboard.ts:4599-4617) ---------------------------------------------------------------

def token_of(env_key: str):
    """onboard.ts:4602-4603 (credentials.json is not read by the stand-in: non-interactive runs never write it)."""
    value = (os.environ.get(env_key) or "").strip()
    return value or None


def setup_messaging() -> list:
    R.step(5, TOTAL, "Messaging channels")
    found = [name for name, env_key, dummy in CHANNELS if token_of(env_key)]
    if found:
        R.note(f"  [non-interactive] Messaging tokens detected: {', '.join(found)}")
        if "telegram" in found:
            # onboard.ts:4548-4597: a curl to https://api.telegram.org/bot<token>/getMe; a network failure exits.
            R.say("  [agentsec stand-in] Telegram reachability probe skipped (no public network in tests).")
    else:
        R.note("  [non-interactive] No messaging tokens configured. Skipping.")
    return found


# ---- step 6: sandbox (onboard.ts:2880-3631) ----------------------------------------------------------------

def sandbox_name() -> str:
    """onboard.ts:2880-2945 promptValidatedSandboxName (non-interactive: one attempt, then exit 1)."""
    raw = os.environ.get("NEMOCLAW_SANDBOX_NAME") or "my-assistant"
    name = raw.strip() or "my-assistant"
    R.note(f"  [non-interactive] Sandbox name (lowercase, starts with letter, hyphens ok) [my-assistant]: → {name}")
    try:
        R.validate_name(name, "sandbox name")
    except ValueError as e:
        R.fail(f"  {e}", "  Names must start with a letter, not a digit." if re.match(r"^[0-9]", name) else
               "  Names must be lowercase, contain only letters, numbers, and hyphens,\n"
               "  must start with a letter, and end with a letter or number.")
    if name in R.RESERVED_NAMES:
        R.fail(f"  Reserved name: '{name}' is a NemoClaw CLI command.", "  Choose a different name to avoid routing conflicts.")
    return name


def hash_credential(value: str) -> str:
    """onboard.ts:873-876 (sha256 hex of the trimmed token, kept in the registry to detect rotation)."""
    return hashlib.sha256(value.strip().encode()).hexdigest()


def token_defs(name: str, channels: list) -> list:
    """onboard.ts:3032-3053: one generic provider per messaging token of an enabled channel."""
    wanted = {e for n, e, a in CHANNELS if n in channels} | {a for n, e, a in CHANNELS if n in channels and a}
    defs = [(f"{name}-discord-bridge", "DISCORD_BOT_TOKEN"), (f"{name}-slack-bridge", "SLACK_BOT_TOKEN"),
            (f"{name}-slack-app", "SLACK_APP_TOKEN"), (f"{name}-telegram-bridge", "TELEGRAM_BOT_TOKEN")]
    return [(p, e, token_of(e)) for p, e in defs if e in wanted]


def upsert_messaging(defs: list) -> list:
    """onboard.ts:835-856: a failure exits."""
    names = []
    for provider, env_key, token in defs:
        if not token:
            continue
        ok, message = upsert_provider(provider, "generic", env_key, None, {env_key: token})
        if not ok:
            R.fail(f"\n  ✗ Failed to create messaging provider '{provider}': {message}")
        names.append(provider)
    return names


def stage_build_context() -> Path:
    """src/lib/sandbox-build-context.ts:28-68 (stageOptimizedSandboxBuildContext). stand-in: the base image has no
    OpenClaw, so scripts/openclaw-standin.py is staged too."""
    ctx = Path(tempfile.mkdtemp(prefix="nemoclaw-build-"))
    shutil.copyfile(R.ROOT / "Dockerfile", ctx / "Dockerfile")
    (ctx / "nemoclaw").mkdir()
    for f in ("package.json", "package-lock.json", "tsconfig.json", "openclaw.plugin.json"):
        shutil.copyfile(R.ROOT / "nemoclaw" / f, ctx / "nemoclaw" / f)
    shutil.copytree(R.ROOT / "nemoclaw" / "src", ctx / "nemoclaw" / "src")
    (ctx / "nemoclaw-blueprint").mkdir()
    shutil.copyfile(R.ROOT / "nemoclaw-blueprint" / "blueprint.yaml", ctx / "nemoclaw-blueprint" / "blueprint.yaml")
    shutil.copytree(R.ROOT / "nemoclaw-blueprint" / "policies", ctx / "nemoclaw-blueprint" / "policies")
    (ctx / "scripts").mkdir()
    for f in ("nemoclaw-start.sh", "openclaw-standin.py"):
        shutil.copyfile(R.SCRIPTS / f, ctx / "scripts" / f)
    return ctx


def b64json(value) -> str:
    return base64.b64encode(json.dumps(value or {}).encode()).decode()


def inference_config(model: str, provider: str, api) -> dict:
    """onboard.ts:1139-1181 getSandboxInferenceConfig."""
    if provider == "openai-api":
        return {"key": "openai", "ref": f"openai/{model}", "url": "https://inference.local/v1", "api": api or "openai-completions", "compat": None}
    if provider in ("anthropic-prod", "compatible-anthropic-endpoint"):
        return {"key": "anthropic", "ref": f"anthropic/{model}", "url": "https://inference.local", "api": "anthropic-messages", "compat": None}
    compat = {"supportsStore": False} if provider in ("gemini-api", "compatible-endpoint") else None
    return {"key": "inference", "ref": f"inference/{model}", "url": "https://inference.local/v1", "api": api or "openai-completions",
            "compat": compat}


def patch_dockerfile(path: Path, model: str, chat_url: str, provider: str, api, channels: list) -> None:
    """onboard.ts:1183-1312 patchStagedDockerfile: the build ARG defaults carry this onboarding's choices."""
    cfg = inference_config(model, provider, api)
    values = {"NEMOCLAW_MODEL": model, "NEMOCLAW_PROVIDER_KEY": cfg["key"], "NEMOCLAW_PRIMARY_MODEL_REF": cfg["ref"],
              "CHAT_UI_URL": chat_url, "NEMOCLAW_INFERENCE_BASE_URL": cfg["url"], "NEMOCLAW_INFERENCE_API": cfg["api"],
              "NEMOCLAW_INFERENCE_COMPAT_B64": b64json(cfg["compat"]), "NEMOCLAW_BUILD_ID": str(int(time.time() * 1000)),
              "NEMOCLAW_WEB_SEARCH_ENABLED": "0", "NEMOCLAW_DISABLE_DEVICE_AUTH": "1"}
    for env_key, rx in (("NEMOCLAW_CONTEXT_WINDOW", r"[1-9][0-9]*"), ("NEMOCLAW_MAX_TOKENS", r"[1-9][0-9]*"),
                        ("NEMOCLAW_REASONING", r"true|false"), ("NEMOCLAW_PROXY_HOST", r"[A-Za-z0-9._:-]+"),
                        ("NEMOCLAW_PROXY_PORT", r"[0-9]{1,5}")):
        if re.fullmatch(rx, os.environ.get(env_key, "")):
            values[env_key] = os.environ[env_key]
    if channels:
        values["NEMOCLAW_MESSAGING_CHANNELS_B64"] = base64.b64encode(json.dumps(channels).encode()).decode()
    text = path.read_text()
    for key, value in values.items():
        text = re.sub(rf"^ARG {key}=.*$", lambda _m, k=key, v=value: f"ARG {k}={v}", text, flags=re.M)
    path.write_text(text)


def sandbox_env() -> dict:
    """onboard.ts:3424-3429 + subprocess-env.ts: an allowlisted environment, without KUBECONFIG/SSH_AUTH_SOCK."""
    return {k: v for k, v in os.environ.items()
            if (k in ENV_ALLOWED or k.startswith(ENV_PREFIXES)) and k not in ("KUBECONFIG", "SSH_AUTH_SOCK")}


SHOWN = re.compile(r"^( {2}Building image | {2}Step \d+/\d+ : | {2}Context: | {2}Gateway: |Successfully built |"
                   r"Successfully tagged | {2}Built image | {2}Pushing image |\s*\[progress\]| {2}Image .*available in the gateway|"
                   r"Created sandbox: |✓ )")  # src/lib/sandbox-create-stream.ts:135-150


def stream_create(argv: list, env: dict, name: str) -> tuple[int, str]:
    """src/lib/sandbox-create-stream.ts:43-275: stream the filtered lines; every 2 s ask `openshell sandbox list`
    and stop the create once the sandbox is Ready (its trailing command may never return)."""
    R.say("  Building sandbox image...")
    proc = subprocess.Popen(argv, cwd=R.ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines: list = []

    def reader():
        phase = "build"
        for raw in proc.stdout:
            line = R.ANSI.sub("", raw.rstrip("\n").replace("\r", "")).rstrip()
            if not line:
                continue
            lines.append(line)
            if phase == "build" and re.match(r"^( {2}Pushing image |\s*\[progress\]| {2}Image .*available in the gateway)", line):
                phase = "upload"
                R.say("  Uploading image into OpenShell gateway...")
            if phase != "create" and line.startswith("Created sandbox: "):
                phase = "create"
                R.say("  Creating sandbox in gateway...")
            if SHOWN.match(line):
                R.say(line)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    for _tick in range(3600):  # at most 2 hours of 2-second polls
        try:
            code = proc.wait(timeout=max(0.05, 2 * float(os.environ.get("AGENTSEC_STANDIN_TIME_SCALE", "1") or 1)))
            break
        except subprocess.TimeoutExpired:
            if state.is_sandbox_ready(R.openshell_capture("sandbox", "list"), name):
                R.say("  Sandbox reported Ready before create stream exited; continuing.")
                proc.terminate()
                proc.wait(timeout=10)
                code = 0
                break
    else:
        proc.kill()
        code = proc.wait()
    thread.join(timeout=5)
    if code and state.is_sandbox_ready(R.openshell_capture("sandbox", "list"), name):
        code = 0  # sandbox-create-stream.ts:252-263
    return code, "\n".join(lines)


def create_sandbox(model: str, provider: str, api, channels: list, recreate: bool) -> str:
    R.step(6, TOTAL, "Creating sandbox")
    name = sandbox_name()
    chat_url = os.environ.get("CHAT_UI_URL") or f"http://127.0.0.1:{R.dashboard_port()}"
    defs = token_defs(name, channels)
    with_tokens = [d for d in defs if d[2]]
    conflicts = [(ch, other) for other, entry in state.load()["sandboxes"].items() if other != name
                 for ch in entry.get("messagingChannels") or [] if ch in channels]
    for ch, other in conflicts:  # onboard.ts:2990-3017 (#1953): one bot token, one polling sandbox
        R.say(f"  ⚠ Sandbox '{other}' already has {ch} enabled. Bot tokens only allow one sandbox to poll — "
              "continuing will break both bridges.")
    if conflicts:
        R.fail("  Aborting: resolve the messaging channel conflict above or run `nemoclaw <sandbox> destroy` on the other sandbox.")

    registered = state.get(name)
    live = bool(R.openshell_capture("sandbox", "get", name))  # onboard.ts:945-957 pruneStaleSandboxEntry
    if registered and not live:
        state.remove(name)
    if live:
        reuse = state.sandbox_state(name, R.openshell_capture("sandbox", "get", name), R.openshell_capture("sandbox", "list"))
        migration = bool(with_tokens) and any(not provider_exists(p) for p, e, t in with_tokens)
        stored = (registered or {}).get("providerCredentialHashes") or {}
        rotated = [p for p, e, t in with_tokens if stored.get(e) and stored[e] != hash_credential(t)]
        if not recreate and not migration and not rotated:  # onboard.ts:3088-3101
            if reuse == "ready":
                upsert_messaging(defs)
                R.note(f"  [non-interactive] Sandbox '{name}' exists and is ready — reusing it")
                R.note("  Pass --recreate-sandbox or set NEMOCLAW_RECREATE_SANDBOX=1 to force recreation.")
                ensure_dashboard_forward(name, chat_url)
                return name
            R.fail(f"  Sandbox '{name}' already exists but is not ready.",
                   "  Pass --recreate-sandbox or set NEMOCLAW_RECREATE_SANDBOX=1 to overwrite.")
        if rotated and reuse == "ready":  # onboard.ts:3133-3176. stand-in: the state backup is not emulated
            R.say(f"  Messaging credential(s) rotated: {', '.join(rotated)}",
                  "  Rebuilding sandbox to propagate new credentials to the L7 proxy...")
            R.err("  State backup failed — aborting rebuild to prevent data loss.",
                  "  Pass --recreate-sandbox to force recreation without backup.")
            upsert_messaging(defs)
            state.update(name, providerCredentialHashes={e: hash_credential(t) for p, e, t in with_tokens})
            ensure_dashboard_forward(name, chat_url)
            return name
        if migration:
            R.say(f"  Sandbox '{name}' exists but messaging providers are not attached.",
                  "  Recreating to ensure credentials flow through the provider pipeline.")
        elif reuse == "ready":
            R.note(f"  Sandbox '{name}' exists and is ready — recreating by explicit request.")
        else:
            R.note(f"  Sandbox '{name}' exists but is not ready — recreating it.")
        previous = state.get(name)
        if previous and previous.get("policies"):  # onboard.ts:3181-3187: reapplied in step 8
            state.mark("sandbox", "in_progress", policyPresets=previous["policies"])
        R.note(f"  Deleting and recreating sandbox '{name}'...")
        R.openshell("sandbox", "delete", name, check=False)
        state.remove(name)

    ctx = stage_build_context()
    policy = R.ROOT / "nemoclaw-blueprint" / "policies" / "openclaw-sandbox.yaml"
    create_args = ["--from", f"{ctx}/Dockerfile", "--name", name, "--policy", str(policy)]
    for provider_name in upsert_messaging(defs):
        create_args += ["--provider", provider_name]
    R.say(f"  Creating sandbox '{name}' (this takes a few minutes on first run)...")
    active = list(dict.fromkeys(n for n, e, a in CHANNELS if any(d[1] == e and d[2] for d in defs)))
    # onboard.ts:3363-3381 pullAndResolveBaseImageDigest. stand-in: no registry pull (at db3453b5 a failed
    # `docker pull` of the base image even exits onboarding: runner.ts:113-118 via onboard.ts:541, fixed by #2632);
    # the local-image check of the fallback branch is kept.
    if not R.capture(["docker", "image", "inspect", BASE_IMAGE]):
        R.err(f"  Warning: base image {BASE_IMAGE} is not available locally.",
              "  The build will fail unless Docker can pull the image during build.")
    patch_dockerfile(ctx / "Dockerfile", model, chat_url, provider, api, active)
    env_args = [f"CHAT_UI_URL={chat_url}"]
    if os.environ.get("NEMOCLAW_DASHBOARD_PORT"):
        env_args.append(f"NEMOCLAW_DASHBOARD_PORT={R.dashboard_port()}")
    argv = [R.openshell_bin(), "sandbox", "create", *create_args, "--", "env", *env_args, "nemoclaw-start"]
    code, output = stream_create(argv, sandbox_env(), name)
    shutil.rmtree(ctx, ignore_errors=True)
    if code != 0:
        if "Created sandbox:" in output:  # classifySandboxCreateFailure: sandbox_create_incomplete
            R.err("", f"  Create stream exited with code {code} after sandbox was created.",
                  "  Checking whether the sandbox reaches Ready state...")
        else:
            R.fail("", f"  Sandbox creation failed (exit {code}).", *(["", output] if output else []),
                   "  Try:  openshell sandbox list        # check gateway state", code=code)
    R.say("  Waiting for sandbox to become ready...")
    for _attempt in range(30):  # onboard.ts:3485-3512
        if state.is_sandbox_ready(R.openshell_capture("sandbox", "list"), name):
            break
        R.sleep(2)
    else:
        deleted = R.openshell("sandbox", "delete", name, check=False).returncode == 0
        R.fail("", f"  Sandbox '{name}' was created but did not become ready within 60s.",
               "  The orphaned sandbox has been removed — you can safely retry." if deleted else
               f'  Could not remove the orphaned sandbox. Manual cleanup:\n    openshell sandbox delete "{name}"',
               "  Retry: nemoclaw onboard")
    R.say("  Waiting for NemoClaw dashboard to become ready...")
    for i in range(15):  # onboard.ts:3515-3531, argv as upstream has it (a positional name; see README)
        if R.openshell_capture("sandbox", "exec", name, "curl", "-sf", f"http://localhost:{R.dashboard_port()}/"):
            R.say("  ✓ Dashboard is live")
            break
        if i == 14:
            R.err("  Dashboard taking longer than expected to start. Continuing...")
        else:
            R.sleep(2)
    ensure_dashboard_forward(name, chat_url)
    state.register({"name": name, "model": model, "provider": provider, "gpuEnabled": False, "agent": None,
                    "agentVersion": OPENCLAW_VERSION, "messagingChannels": active,
                    "providerCredentialHashes": {e: hash_credential(t) for p, e, t in with_tokens} or None})
    # onboard.ts:3577-3580: scripts/setup-dns-proxy.sh (ignoreError). stand-in: not shipped, not run.
    for provider_name in [p for p, e, t in with_tokens]:
        if not provider_exists(provider_name):
            R.err(f"  ⚠ Messaging provider '{provider_name}' was not found in the gateway.")
    R.say(f"  ✓ Sandbox '{name}' created")
    return name


def forward_target(chat_url: str) -> str:
    """src/lib/dashboard.ts resolveDashboardForwardTarget: the port alone for a loopback URL, else 0.0.0.0:<port>."""
    m = re.match(r"^(?:[a-z]+://)?(\[[^\]]+\]|[^/:]+)(?::(\d+))?", chat_url.strip(), re.I)
    host = m.group(1).strip("[]") if m else "127.0.0.1"
    port = (m.group(2) if m and m.group(2) else str(R.dashboard_port()))
    return port if host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.") else f"0.0.0.0:{port}"


def ensure_dashboard_forward(name: str, chat_url: str) -> None:
    """onboard.ts:5599-5641: refuse a dashboard port already forwarded for another sandbox, then re-point it."""
    target = forward_target(chat_url)
    port = target.split(":")[-1]
    for line in R.openshell_capture("forward", "list").splitlines():
        parts = state.strip(line).split()
        if len(parts) > 2 and parts[2] == port and parts[0] != name:
            R.fail(f"  Error: Port {port} is already forwarded for sandbox '{parts[0]}'. Set CHAT_UI_URL to a different "
                   "local port (e.g. http://127.0.0.1:18790) before onboarding a second sandbox.")
    R.openshell("forward", "stop", port, check=False)
    if R.openshell_quiet("forward", "start", "--background", target, name) != 0:
        R.err(f"! Port {port} forward did not start — port may be in use by another process.",
              f"  Free the port, then reconnect: nemoclaw {name} connect")


# ---- step 7: OpenClaw (onboard.ts:4839-4864, inference-config.ts:41-112) ------------------------------------

def selection_config(provider: str, model: str) -> dict:
    label = PROVIDER_LABELS.get(provider, provider)
    cred = next((c["env"] for c in REMOTE.values() if c["name"] == provider and c["name"] != "nvidia-prod"), "OPENAI_API_KEY")
    return {"endpointType": "custom", "endpointUrl": "https://inference.local/v1", "ncpPartner": None,
            "profile": "inference-local", "provider": provider, "model": model, "credentialEnv": cred,
            "providerLabel": label, "onboardedAt": state.now()}


def setup_openclaw(name: str, model: str, provider: str) -> None:
    """The selection config is written to ~/.nemoclaw/config.json *inside the sandbox* by a script piped into
    `openshell sandbox connect <name>` (onboard.ts:959-972); a failing connect exits."""
    R.step(7, TOTAL, "Setting up OpenClaw inside sandbox")
    script = ("set -euo pipefail\nmkdir -p ~/.nemoclaw\ncat > ~/.nemoclaw/config.json <<'EOF_NEMOCLAW_CFG'\n"
              f"{json.dumps(selection_config(provider, model), indent=2)}\nEOF_NEMOCLAW_CFG\nexit\n")
    res = subprocess.run([R.openshell_bin(), "sandbox", "connect", name], cwd=R.ROOT, input=script, text=True,
                         stdout=subprocess.DEVNULL, check=False)
    if res.returncode != 0:
        R.err(f"  Command failed (exit {res.returncode}): openshell sandbox connect {name}",
              "  This error originated from the OpenShell runtime layer.", "  Docs: https://github.com/NVIDIA/OpenShell")
        raise R.Exit(res.returncode)
    R.say("  ✓ OpenClaw gateway launched inside sandbox")


# ---- step 8: policies (onboard.ts:5440-5591) ----------------------------------------------------------------

def wait_for_pod(name: str) -> bool:
    """onboard.ts:2237-2262: the pod phase through `openshell doctor exec -- kubectl`, 10 tries 2 s apart."""
    for _i in range(10):
        if R.openshell_capture("doctor", "exec", "--", "kubectl", "-n", "openshell", "get", "pod", name, "-o",
                               "jsonpath={.status.phase}") == "Running":
            return True
        R.sleep(2)
    return False


def apply_with_retry(name: str, preset: str) -> None:
    """onboard.ts:5522-5535: three attempts while the error says "sandbox not found"."""
    for attempt in range(3):
        try:
            policies.apply_preset(name, preset)
            return
        except R.Exit:
            raise
        except RuntimeError as e:
            if "sandbox not found" not in str(e) or attempt == 2:
                R.fail(f"  {e}")
            R.sleep(2)


def setup_policies(name: str, provider: str, channels: list) -> None:
    R.step(8, TOTAL, "Policy presets")
    known = [p["name"] for p in policies.list_presets()]
    entry = state.get(name) or {}
    applied = list(entry.get("policies") or [])
    recorded = (state.load_session() or {}).get("policyPresets") or []
    if recorded:  # onboard.ts:5454-5466: a recreated sandbox gets its previous presets back
        if not wait_for_pod(name):
            R.fail(f"  Sandbox '{name}' was not ready for policy application.")
        R.note(f"  [resume] Reapplying policy presets: {', '.join(recorded)}")
        for preset in recorded:
            if preset not in applied:
                apply_with_retry(name, preset)
        return
    tiers = policies.tiers()
    tier = (os.environ.get("NEMOCLAW_POLICY_TIER") or "balanced").strip().lower()  # onboard.ts:4985-5000
    if tier not in tiers:
        R.fail(f"  Unknown policy tier: {tier}. Valid: {', '.join(tiers)}")
    R.note(f"  [non-interactive] Policy tier: {tier}")
    state.update(name, policyTier=tier)
    suggestions = list(tiers[tier])  # onboard.ts:5422-5437 computeSetupPresetSuggestions
    for extra in (["local-inference"] if provider in ("ollama-local", "vllm-local") else []) + list(channels):
        if extra not in suggestions and extra in known:
            suggestions.append(extra)
    mode = (os.environ.get("NEMOCLAW_POLICY_MODE") or "suggested").strip().lower()
    listed = [p.strip() for p in (os.environ.get("NEMOCLAW_POLICY_PRESETS") or "").split(",") if p.strip()]
    if mode in ("skip", "none", "no"):
        R.note("  [non-interactive] Skipping policy presets.")
        return
    if mode in ("custom", "list"):
        if not listed:
            R.fail("  NEMOCLAW_POLICY_PRESETS is required when NEMOCLAW_POLICY_MODE=custom.")
        chosen = listed
    elif mode in ("suggested", "default", "auto"):
        chosen = listed or suggestions
    else:
        R.fail(f"  Unsupported NEMOCLAW_POLICY_MODE: {mode}", "  Valid values: suggested, custom, skip")
    unknown = [p for p in chosen if p not in known]
    if unknown:
        R.fail(f"  Unknown policy preset(s): {', '.join(unknown)}")
    state.mark("policies", "in_progress", policyPresets=chosen)
    if not wait_for_pod(name):
        R.fail(f"  Sandbox '{name}' was not ready for policy application.")
    R.note(f"  [non-interactive] Applying policy presets: {', '.join(chosen)}")
    for preset in chosen:
        apply_with_retry(name, preset)


# ---- summary (onboard.ts:5779-5853) -------------------------------------------------------------------------

def gateway_token(name: str):
    """onboard.ts:5662-5687: `openshell sandbox download <sb> /sandbox/.openclaw/openclaw.json <tmp>/`."""
    tmp = tempfile.mkdtemp(prefix="nemoclaw-token-")
    try:
        if R.openshell_quiet("sandbox", "download", name, "/sandbox/.openclaw/openclaw.json", f"{tmp}/") != 0:
            return None
        for path in Path(tmp).rglob("openclaw.json"):
            token = json.loads(path.read_text()).get("gateway", {}).get("auth", {}).get("token")
            return token if isinstance(token, str) and token else None
        return None
    except (OSError, ValueError, AttributeError):
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def print_dashboard(name: str, model: str, provider: str) -> None:
    port = int(forward_target(os.environ.get("CHAT_UI_URL") or f"http://127.0.0.1:{R.dashboard_port()}").split(":")[-1])
    token = gateway_token(name)
    url = f"http://127.0.0.1:{port}/" + (f"#token={token}" if token else "")
    R.say("", f"  {R.RULE}", f"  Sandbox      {name} (Landlock + seccomp + netns)",
          f"  Model        {model} ({PROVIDER_LABELS.get(provider, provider)})", "  NIM          not running", f"  {R.RULE}",
          f"  Run:         nemoclaw {name} connect", f"  Status:      nemoclaw {name} status",
          f"  Logs:        nemoclaw {name} logs --follow", "")
    if token:
        R.say("  OpenClaw UI (tokenized URL; treat it like a password)",
              f"  Port {port} must be forwarded before opening these URLs.", f"  Dashboard: {url}")
    else:
        R.note("  Could not read gateway token from the sandbox (download failed).")
        R.say("  OpenClaw UI", f"  Port {port} must be forwarded before opening these URLs.", f"  Dashboard: {url}",
              f"  Token:       nemoclaw {name} connect  →  jq -r '.gateway.auth.token' /sandbox/.openclaw/openclaw.json")
    R.say(f"  {R.RULE}", "")
