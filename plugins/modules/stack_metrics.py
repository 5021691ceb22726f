#!/usr/bin/python
# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: stack_metrics
short_description: Measure the NemoClaw stack on one host and compare it with the paper's Table 6
version_added: 0.1.0
description:
  - Runs on a fleet host (macOS with Docker Desktop, or Linux) and gathers in one call the figures of the paper's
    Table 6, next to the paper's values.
  - Process memory by named groups of command-line regexes, from C(ps axww -o pid=,rss=,args=) (resident set size;
    the same command works with macOS C(ps) and Linux procps; C(ww) asks for unlimited width so that long command
    lines are never cut to a terminal width).
  - Container memory from C(docker stats --no-stream --format '{{json .}}' NAME...) (the C(MemUsage) column). A
    missing container is reported as missing, not as a failure of the task.
  - k3s pod start latency from the kubelet's C("Observed pod startup duration") lines (C(podStartE2EDuration)) in
    C(docker logs --tail N) of the OpenShell cluster container (stdout and stderr; k3s logs the kubelet to stderr).
  - Optionally the sandbox cold start (O(cold_start_sandbox)) - the wall time from C(openshell sandbox create --name
    NAME --from FROM -- true) until C(openshell sandbox list) shows NAME in phase C(Ready). The sandbox is deleted
    again within the same call, so the module always reports C(changed=false). It refuses a name that already
    exists, so it never deletes a sandbox it did not create.
  - Memory and the pod log are read before the cold-start sandbox exists, so they describe the running stack.
author: agentsec.nemoclaw contributors (@agentsec)
extends_documentation_fragment:
  - agentsec.nemoclaw.attributes
attributes:
  check_mode:
    support: full
    details:
      - In check mode the cold start is skipped (reported as skipped); everything else only reads.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - Never reports a change. The cold-start sandbox is created and deleted within the call.
options:
  gateway:
    description: OpenShell gateway name. The cluster container is C(openshell-cluster-<gateway>); C(openshell) calls
      get C(OPENSHELL_GATEWAY) set to it.
    type: str
    default: nemoclaw
  containers:
    description:
      - Containers whose memory is measured. Defaults to the cluster container C(openshell-cluster-<gateway>), which
        is the one counted as the paper's "OpenShell cluster memory".
    type: list
    elements: str
  process_groups:
    description:
      - Named groups of Python regular expressions, each searched in the full command line of every process. A
        process counts in the first group (in the order given) one of whose patterns matches.
      - The groups V(docker_desktop), V(openclaw_gateway) and V(ollama) feed the Table 6 figures and the full stack
        total; setting this option replaces the defaults, so keep those names when you change their patterns.
      - V(docker_desktop) matches the Docker Desktop processes on macOS (C(com.docker.backend), C(com.docker.build),
        C(com.docker.virtualization), C(com.docker.krun), C(com.docker.vmnetd), C(com.docker.socket) and the
        C(Docker Desktop.app) main process and helpers). With the Docker VMM (krun) backend the VM's memory is resident
        in C(com.docker.krun) and therefore counted twice (here and in the cluster container); with the default Apple
        Virtualization backend it lives in Apple's C(com.apple.Virtualization.VirtualMachine), which is not matched.
        On Linux nothing matches (there is no Docker Desktop); map it to C(dockerd)/C(containerd) if you want a total.
      - V(openclaw_gateway) matches the OpenClaw gateway Node.js process (process title C(openclaw-gateway), or
        C(openclaw ... gateway)); V(ollama) matches C(ollama serve) only, not the C(ollama runner) processes that hold
        a loaded model (the paper's figure is idle Ollama).
    type: dict
    default:
      docker_desktop:
        - 'com\.docker\.(backend|build|virtualization|krun|vmnetd|socket)\b'
        - '/Docker Desktop\.app/'
      openclaw_gateway:
        - '(^|/)openclaw-gateway\b'
        - '\bopenclaw\S*\s+gateway\b'
      ollama:
        - '(^|/)ollama\s+serve\b'
  sandbox:
    description:
      - Sandbox whose latest pod start (pod C(<namespace>/<sandbox>)) is reported as RV(metrics.pod_start_s).
      - Defaults to O(cold_start_sandbox) when a cold start runs, else V(my-assistant) (NemoClaw's default sandbox).
      - After a cold start only a kubelet line that appeared during this call counts.
    type: str
  log_tail:
    description: Lines of the cluster container's log to read (C(docker logs --tail)); V(0) reads the whole log.
    type: int
    default: 10000
  cold_start_sandbox:
    description:
      - Name of a sandbox to create, time until Ready, and delete. Empty skips the cold start.
      - Must not exist yet; the module refuses an existing name and never deletes a sandbox it did not create.
    type: str
    default: ""
  cold_start_from:
    description: C(--from) of C(openshell sandbox create) (a community image name, an image reference or a Dockerfile path).
    type: str
    default: base
  cold_start_timeout:
    description: Seconds from the start of C(openshell sandbox create) until the sandbox must be Ready (also passed as
      C(OPENSHELL_PROVISION_TIMEOUT)).
    type: int
    default: 300
  docker_bin:
    description: The docker client. A bare name is looked up on C(PATH), C(/usr/local/bin), C(/opt/homebrew/bin) and
      C(/Applications/Docker.app/Contents/Resources/bin).
    type: path
    default: docker
  openshell_bin:
    description: The openshell CLI. A bare name is looked up on C(PATH), C(~/.local/bin), C(/usr/local/bin) and
      C(/opt/homebrew/bin).
    type: path
    default: openshell
  docker_host:
    description:
      - C(DOCKER_HOST) for the docker and openshell calls; empty leaves it unset. Docker Desktop's socket is
        C(unix://<home>/.docker/run/docker.sock).
    type: str
    default: ""
notes:
  - Memory figures are MiB (C(ps) RSS in KiB / 1024, C(docker stats) binary units), labelled MB like the paper.
  - The paper's cold start (50,753 ms) includes a Docker image build; with O(cold_start_from=base) the image is pulled
    once and cached afterwards, so later runs measure the cached case. Pass a Dockerfile path to include a build.
  - OpenShell v0.0.26's C(sandbox create) itself waits for the Provisioning to Ready transition and then runs the
    command (C(true)) over SSH, so the cold start includes that short exec.
seealso:
  - name: docs/benchmark.md
    description: What is measured, how to run the fleet benchmark and how to read the comparison.
    link: https://github.com/agentsec/nemoclaw/blob/main/docs/benchmark.md
"""

EXAMPLES = r"""
- name: Measure the stack and one sandbox cold start (Docker Desktop on macOS)
  agentsec.nemoclaw.stack_metrics:
    gateway: nemoclaw
    cold_start_sandbox: agentsec-bench
    docker_host: "unix://{{ ansible_facts['user_dir'] }}/.docker/run/docker.sock"
  register: bench

- name: Memory and pod start only, on Linux, counting the Docker Engine instead of Docker Desktop
  agentsec.nemoclaw.stack_metrics:
    sandbox: my-assistant
    process_groups:
      docker_desktop: ['(^|/)dockerd\b', '(^|/)containerd\b']
      openclaw_gateway: ['(^|/)openclaw-gateway\b', '\bopenclaw\S*\s+gateway\b']
      ollama: ['(^|/)ollama\s+serve\b']
"""

RETURN = r"""
metrics:
  description: The measured figures. A figure is null when it was not measured (process not running, container
    missing, no kubelet line, cold start skipped).
  returned: always
  type: dict
  contains:
    cold_start_ms:
      description: Wall time from C(sandbox create) until C(sandbox list) showed the sandbox Ready.
      type: int
      sample: 48210
    pod_start_s:
      description: podStartE2EDuration of the latest pod start of O(sandbox), in seconds.
      type: float
      sample: 14.5
    cluster_container_mb:
      description: Memory of C(openshell-cluster-<gateway>) from docker stats.
      type: float
      sample: 732.0
    docker_desktop_mb:
      description: Summed RSS of the V(docker_desktop) process group.
      type: float
    docker_desktop_processes:
      description: Number of processes in the V(docker_desktop) group.
      type: int
      sample: 7
    openclaw_gateway_mb:
      description: Summed RSS of the V(openclaw_gateway) group.
      type: float
    ollama_mb:
      description: Summed RSS of the V(ollama) group.
      type: float
    stack_total_mb:
      description: Docker Desktop + cluster container + OpenClaw gateway + Ollama, over the parts that were measured.
      type: float
      sample: 2436.0
    stack_components:
      description: Which of the four parts are in RV(metrics.stack_total_mb) (V(included)) and which were not measured (V(missing)).
      type: dict
    processes:
      description: Per process group - V(count), V(pids), V(rss_mb).
      type: dict
      sample: {ollama: {count: 1, pids: [812], rss_mb: 73.4}}
    containers:
      description: Per container - V(state) (V(running), V(missing) or V(error)), V(mem_mb), V(mem_limit_mb),
        V(mem_usage) (as docker printed it), V(cpu_perc), V(msg).
      type: dict
    pods:
      description: Every kubelet pod start observation in the log read - V(pod), V(namespace), V(name), V(e2e_s),
        V(slo_s), V(time) (klog MMDD hh:mm:ss).
      type: list
      elements: dict
paper:
  description: The paper's Table 6 values under the same keys as RV(metrics).
  returned: always
  type: dict
  sample: {cold_start_ms: 50753, pod_start_s: 14.5, cluster_container_mb: 732, docker_desktop_mb: 1052,
           docker_desktop_processes: 7, openclaw_gateway_mb: 579, ollama_mb: 73, stack_total_mb: 2436}
comparison:
  description: Per Table 6 metric V(measured), V(paper) and V(ratio) (measured / paper); measured and ratio are null
    when the metric was not measured, and the ratio of a partial stack total (a part not measured) is null.
  returned: always
  type: dict
  sample: {pod_start_s: {measured: 12.1, paper: 14.5, ratio: 0.834}}
cold_start:
  description: The cold start - V(sandbox), V(skipped), V(reason), V(ms), V(phases) (phase seen at each poll),
    V(deleted).
  returned: always
  type: dict
pod_start:
  description: The observation behind RV(metrics.pod_start_s) - V(sandbox), V(fresh) (logged during this call's cold
    start), V(observation) (or null) and V(reason) when there is none.
  returned: always
  type: dict
errors:
  description: Problems that left figures unmeasured without failing the task (docker not reachable, log unreadable).
  returned: always
  type: list
  elements: str
"""

import os
import re
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _fleet as F
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _metrics as M

POLL_SECONDS = 1.0
LOG_RETRIES = 3
SANDBOX_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
EXTRA_DIRS = ["/usr/local/bin", "/opt/homebrew/bin", "/Applications/Docker.app/Contents/Resources/bin", "~/.local/bin"]


class Stack:
    def __init__(self, module):
        self.m = module
        p = module.params
        self.cluster = f"openshell-cluster-{p['gateway']}"
        self.env = {"DOCKER_HOST": p["docker_host"]} if p["docker_host"] else {}
        self.openshell_env = {"OPENSHELL_GATEWAY": p["gateway"]}
        self.errors = []
        self.log_problem = ""

    def find(self, name):
        if os.path.sep in name:
            return name if os.access(name, os.X_OK) else None
        return self.m.get_bin_path(name, opt_dirs=[os.path.join(os.environ.get("HOME", "/"), d[2:]) if d.startswith("~/") else d for d in EXTRA_DIRS])

    def fail(self, msg, **extra):
        self.m.fail_json(msg=msg, errors=self.errors, **extra)

    def run(self, argv, env=None):
        return self.m.run_command(argv, environ_update=dict(self.env, **(env or {})))

    # ---------------------------------------------------------------------------------------------------- memory
    def processes(self, compiled):
        ps = self.m.get_bin_path("ps", required=True)
        argv = [ps, "axww", "-o", "pid=,rss=,args="]
        rc, out, err = self.m.run_command(argv)
        if rc != 0:
            self.fail(f"'{' '.join(argv)}' failed with exit code {rc}: {err.strip()[-500:]}")
        try:
            procs = M.parse_ps(out, exclude_pids={os.getpid()})
        except ValueError as exc:
            self.fail(f"'{' '.join(argv)}': {exc}")
        return M.group_processes(procs, compiled)

    def stats(self, docker, names):
        argv = [docker, "stats", "--no-stream", "--format", "{{json .}}", *names]
        rc, out, err = self.run(argv)
        try:
            return rc, M.parse_docker_stats(out), err
        except ValueError as exc:
            self.fail(f"'{' '.join(argv)}': {exc}")

    def containers(self, docker, names):
        if not docker:
            return {n: {"state": "error", "msg": "docker not found"} for n in names}
        rows = self.stats(docker, names)[1] if len(names) > 1 else {}
        out = {}
        for n in names:
            row = rows.get(n)
            if row is None:
                # one at a time: docker stats prints no row at all when any of the names is missing
                rc, one, err = self.stats(docker, [n])
                row = one.get(n)
            if row is not None:
                out[n] = row
                if row["state"] != "running":
                    self.errors.append(f"docker stats {n}: {row['msg']}")
                continue
            missing = "no such container" in err.lower() or "no such object" in err.lower()
            msg = err.strip()[-300:] or f"docker stats exited {rc} without a row for {n}"
            out[n] = {"state": "missing" if missing else "error", "msg": msg}
            if not missing:
                self.errors.append(f"docker stats {n}: {msg}")
        return out

    # -------------------------------------------------------------------------------------------- kubelet log
    def pod_log(self, docker):
        """All pod start observations in the cluster container's log, or None when the log cannot be read."""
        if not docker:
            self.log_problem = "docker not found"
            return None
        tail = str(self.m.params["log_tail"] or "all")
        argv = [docker, "logs", "--tail", tail, self.cluster]
        rc, out, err = self.run(argv)
        if rc != 0:
            if "no such container" in err.lower():
                self.log_problem = f"the cluster container {self.cluster} does not exist"
            else:
                self.log_problem = f"'{' '.join(argv)}' failed with exit code {rc}: {err.strip()[-300:]}"
                self.errors.append(self.log_problem)
            return None
        try:
            return M.parse_pod_startups(out + "\n" + err)
        except ValueError as exc:
            self.fail(f"'{' '.join(argv)}': {exc}")

    # ------------------------------------------------------------------------------------------------ openshell
    def sandbox_list(self, openshell):
        argv = [openshell, "sandbox", "list"]
        rc, out, err = self.run(argv, self.openshell_env)
        if rc != 0:
            return None, f"'{' '.join(argv)}' failed with exit code {rc}: {(err or out).strip()[-500:]}"
        try:
            return F.parse_sandbox_list(out), None
        except ValueError as exc:
            return None, str(exc)

    def delete(self, openshell, name):
        argv = [openshell, "sandbox", "delete", name]
        rc, out, err = self.run(argv, self.openshell_env)
        return None if rc == 0 else f"'{' '.join(argv)}' failed with exit code {rc}: {(err or out).strip()[-500:]}"

    def cold_start(self, openshell, name, docker, before_lines):
        """Create, poll until Ready, read the fresh kubelet line, delete. Returns (cold_start, fresh observation, log)."""
        p = self.m.params
        listing, problem = self.sandbox_list(openshell)
        if problem:
            self.fail(f"cold start: {problem}")
        if name in listing:
            self.fail(f"cold_start_sandbox '{name}' already exists (phase {listing[name]}); refusing to touch a sandbox this "
                      "module did not create - choose another name")
        create = [openshell, "sandbox", "create", "--name", name, "--from", p["cold_start_from"], "--", "true"]
        info = {"sandbox": name, "skipped": False, "reason": "", "ms": None, "phases": [], "deleted": False}
        start = time.monotonic()
        rc, out, err = self.run(create, dict(self.openshell_env, OPENSHELL_PROVISION_TIMEOUT=str(p["cold_start_timeout"])))
        if rc != 0:
            self.abort(openshell, name, info, f"'{' '.join(create)}' failed with exit code {rc}: {(err or out).strip()[-1000:]}")
        while True:
            listing, problem = self.sandbox_list(openshell)
            if problem:
                self.abort(openshell, name, info, f"cold start: {problem}")
            phase = listing.get(name, "missing")
            info["phases"].append(phase)
            if phase == "Ready":
                info["ms"] = int((time.monotonic() - start) * 1000)
                break
            if phase == "Error":
                self.abort(openshell, name, info, f"sandbox '{name}' entered phase Error while provisioning")
            if time.monotonic() - start >= p["cold_start_timeout"]:
                self.abort(openshell, name, info, f"sandbox '{name}' was not Ready within cold_start_timeout="
                                                  f"{p['cold_start_timeout']}s (last phase {phase})")
            time.sleep(POLL_SECONDS)
        fresh, observations = None, None
        for attempt in range(LOG_RETRIES):  # the kubelet may log the start a moment after the sandbox is Ready
            observations = self.pod_log(docker)
            fresh = M.latest_for(observations or [], name, before_lines)
            if fresh or observations is None or attempt == LOG_RETRIES - 1:
                break
            time.sleep(POLL_SECONDS)
        problem = self.delete(openshell, name)
        if problem:
            self.fail(f"the cold start of '{name}' took {info['ms']} ms, but the sandbox could not be deleted: {problem}; "
                      f"delete it with 'openshell sandbox delete {name}'", cold_start=info)
        info["deleted"] = True
        return info, fresh, observations

    def abort(self, openshell, name, info, msg):
        """Remove the half-created benchmark sandbox (it did not exist before this call) and fail."""
        listing, dummy = self.sandbox_list(openshell)
        if listing is None or name in listing:
            problem = self.delete(openshell, name)
            info["deleted"] = problem is None
            msg += "; the sandbox was deleted" if problem is None else f"; cleaning up also failed: {problem}"
        self.fail(msg, cold_start=info)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            gateway=dict(type="str", default="nemoclaw"),
            containers=dict(type="list", elements="str"),
            process_groups=dict(type="dict", default=M.DEFAULT_PROCESS_GROUPS),
            sandbox=dict(type="str"),
            log_tail=dict(type="int", default=10000),
            cold_start_sandbox=dict(type="str", default=""),
            cold_start_from=dict(type="str", default="base"),
            cold_start_timeout=dict(type="int", default=300),
            docker_bin=dict(type="path", default="docker"),
            openshell_bin=dict(type="path", default="openshell"),
            docker_host=dict(type="str", default=""),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p["cold_start_timeout"] <= 0:
        module.fail_json(msg=f"cold_start_timeout {p['cold_start_timeout']} must be a positive number of seconds")
    if p["log_tail"] < 0:
        module.fail_json(msg=f"log_tail {p['log_tail']} must be 0 (whole log) or a positive number of lines")
    name = p["cold_start_sandbox"]
    if name and not SANDBOX_NAME.match(name):
        module.fail_json(msg=f"cold_start_sandbox '{name}' is not a valid sandbox name (lower-case RFC 1123 label, at most 63 characters)")
    try:
        compiled = M.compile_groups(p["process_groups"])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    sandbox = p["sandbox"] or (name if name and not module.check_mode else "my-assistant")

    stack = Stack(module)
    docker = stack.find(p["docker_bin"])
    if not docker:
        stack.errors.append(f"docker_bin '{p['docker_bin']}' not found; container memory and pod start were not measured")
    openshell = None
    if name and not module.check_mode:
        openshell = stack.find(p["openshell_bin"])
        if not openshell:
            module.fail_json(msg=f"openshell_bin '{p['openshell_bin']}' not found (needed for cold_start_sandbox '{name}')")

    processes = stack.processes(compiled)
    container_names = p["containers"] if p["containers"] is not None else [stack.cluster]
    containers = stack.containers(docker, container_names)
    observations = stack.pod_log(docker)

    pod = None
    if not name or module.check_mode:
        reason = "check mode" if name else "cold_start_sandbox is empty"
        cold = {"sandbox": name, "skipped": True, "reason": reason, "ms": None, "phases": [], "deleted": False}
    else:
        before = {o["line"] for o in observations or []}
        cold, fresh, after = stack.cold_start(openshell, name, docker, before)
        observations = after if after is not None else observations
        if sandbox == name:
            pod = {"sandbox": sandbox, "fresh": bool(fresh), "observation": M.public(fresh)}
            if not fresh:
                pod["reason"] = f"no new kubelet startup line for pod */{name} after the cold start (last {p['log_tail'] or 'all'} lines)"
    if pod is None:
        latest = M.latest_for(observations or [], sandbox)
        pod = {"sandbox": sandbox, "fresh": False, "observation": M.public(latest)}
        if not latest:
            pod["reason"] = (stack.log_problem if observations is None
                             else f"no kubelet startup line for pod */{sandbox} in the last {p['log_tail'] or 'all'} lines")

    obs = pod["observation"]
    flat = M.flat_metrics(processes, containers, stack.cluster, cold["ms"], obs["e2e_s"] if obs else None)
    metrics = dict(flat, processes=processes, containers=containers, pods=[M.public(o) for o in observations or []])
    module.exit_json(changed=False, metrics=metrics, paper=dict(M.PAPER), comparison=M.compare(flat), cold_start=cold,
                     pod_start=pod, errors=stack.errors)


if __name__ == "__main__":
    main()
