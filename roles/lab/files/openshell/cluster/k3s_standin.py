#!/usr/bin/python3
"""PID 1 of the cluster container `openshell-cluster-<gateway>`: the parts of OpenShell v0.0.26's k3s that the
collection touches, honouring the real object shapes.

- agent-sandbox controller (kubernetes-sigs/agent-sandbox v0.1.0 controllers/sandbox_controller.go): per Sandbox a
  PVC `<claim>-<sandbox>` per volumeClaimTemplate (L435-463), a Service (L246-291) and a Pod named after the Sandbox
  with label agents.x-k8s.io/sandbox-name-hash=<fnv1a32(name)> (L45, L234-244, L386-431), created only when the pod
  is missing: a changed podTemplate does NOT roll an existing pod (L364-383, "TODO - Do we enfore (change) spec if a
  pod exists ?"); replicas 0 deletes the pod (L336-362). Ready condition from the pod's Ready condition and the
  Service (L158-216), reasons DependenciesReady / DependenciesNotReady.
- kubelet + cri-dockerd (k3s `--docker`): every pod is a pause container holding the network namespace plus one
  Docker container per (init) container, named k8s_<container>_<pod>_<namespace>_<uid>_<attempt>, created through
  the engine's API from the pod spec: command/args, env, workingDir, securityContext (runAsUser/Group, capabilities,
  privileged, readOnlyRootFilesystem, allowPrivilegeEscalation, seccompProfile - absent means Unconfined, the
  kubelet default), resources.limits (memory, cpu), volumes (emptyDir on the node disk or Memory tmpfs, secret and
  configMap files with items/defaultMode/mode, hostPath, PVCs from the local-path provisioner) with subPath and
  readOnly mounts, hostAliases, pod sysctls (only the "safe" set of the k8s sysctl docs; anything else fails the pod
  with SysctlForbidden, as a kubelet without --allowed-unsafe-sysctls does). Init containers run in order to
  completion; a container that exits is restarted with back-off (restartPolicy Always).
- local-path provisioner (k3s): PVCs bound to node directories storage/pvc-<uid>_<ns>_<name>.
- CoreDNS: answers the `hosts` entries of ConfigMap kube-system/coredns-custom (k3s imports its *.server and
  *.override keys, k3s manifests/coredns.yaml) and forwards everything else to Docker's resolver.
- the gateway's supervisor API (see gateway.py) on :8080.
Deviations from a real cluster are listed in docs/lab.md.
"""
from __future__ import annotations

import base64
import calendar
import contextlib
import http.server
import json
import os
import re
import shutil
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import time
import traceback

sys.path.insert(0, "/opt/standin")
import gateway as G  # noqa: E402
import store as S  # noqa: E402
from docker_api import Docker, DockerError  # noqa: E402

ROOT = "/var/lib/rancher/k3s"
# lab: bind-mounted by the lab CLI when the stand-in machine has an upstream CA (cli/openshell, setting upstream_ca)
UPSTREAM_CA = "/etc/standin/upstream-ca.pem"
KUBELET = f"{ROOT}/agent/kubelet/pods"
STORAGE = f"{ROOT}/storage"
NODE = f"{ROOT}/standin-node"
CLUSTER = os.environ.get("OPENSHELL_STANDIN_GATEWAY", "openshell")
NETWORK = os.environ.get("OPENSHELL_STANDIN_NETWORK", f"openshell-cluster-{CLUSTER}")
VOLUME = os.environ.get("OPENSHELL_STANDIN_VOLUME", f"openshell-cluster-{CLUSTER}")
SELF_IMAGE = os.environ.get("OPENSHELL_STANDIN_CLUSTER_IMAGE", "agentsec/openshell-cluster-standin:0.0.26")
SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
                "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
                "net.ipv4.tcp_keepalive_probes"}  # k8s docs "Using sysctls in a Kubernetes Cluster", safe set (1.29)
LABEL = "standin.openshell/cluster"
# full kubelet/controller pass at least this often when nothing changed (the kubelet's own periodic sync is 1 min:
# syncFrequency in its KubeletConfiguration defaults; its PLEG relists the runtime every 1 s, pkg/kubelet/pleg/
# generic.go - both lines unverified, and neither is an OpenShell interface: no check depends on the timing); a change
# is acted on within the loop's 1 s relist
RESYNC = 10
EMULATED_PRIVILEGED_CAPS = ["SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE", "SYS_MODULE", "SYS_RAWIO", "SYSLOG", "NET_RAW", "IPC_LOCK",
                            "SYS_TIME", "MAC_ADMIN", "MAC_OVERRIDE", "DAC_READ_SEARCH", "LINUX_IMMUTABLE", "SYS_NICE", "SYS_BOOT"]
LOG = open("/var/log/k3s-standin.log", "a", buffering=1)  # noqa: SIM115 - the daemon's log for its whole life


def log(msg):
    line = f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {msg}"
    LOG.write(line + "\n")
    print(line, flush=True)


def fnv1a32(text):
    value = 0x811C9DC5
    for byte in text.encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return f"{value:08x}"


def now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Cluster:
    def __init__(self):
        self.store = S.Store()
        self.docker = Docker()
        self.host_root = self.docker.volume(VOLUME)["Mountpoint"]
        self.backoff = {}
        self.privileged_ok = self.can_privileged()

    def can_privileged(self):
        """Some Docker engines cannot grant every capability (runc: "unable to apply caps"); there, `privileged: true`
        is emulated with all grantable capabilities and systempaths=unconfined (/proc/sys writable, nothing masked)."""
        name = f"standin-privileged-probe-{CLUSTER}"
        self.docker.remove(name)
        try:
            cid = self.docker.create(name, {"Image": SELF_IMAGE, "Entrypoint": ["true"], "HostConfig": {"Privileged": True}})
            self.docker.start(cid)
            ok = self.docker.wait(cid, timeout=60) == 0
        except DockerError:
            ok = False
        self.docker.remove(name)
        log(f"privileged containers {'work' if ok else 'are emulated (this engine cannot grant every capability)'}")
        return ok

    def host_path(self, path):
        """A path in this container's cluster volume, as the Docker host sees it (for bind mounts into pods)."""
        assert path.startswith(ROOT + "/"), path
        return self.host_root + path[len(ROOT):]

    # ---- bootstrap ------------------------------------------------------------------------------------------
    def bootstrap(self):
        for ns in ("default", "kube-system", "openshell", "agent-sandbox-system"):
            if self.store.find("Namespace", None, ns) is None:
                self.store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        for crd in self.store.crds().values():
            if self.store.find("CustomResourceDefinition", None, crd["metadata"]["name"]) is None:
                self.store.create({k: v for k, v in crd.items() if k != "status"}, strict=False)
        if self.store.find("ConfigMap", "kube-system", "coredns") is None:
            corefile = (".:53 {\n    errors\n    health\n    ready\n    kubernetes cluster.local in-addr.arpa ip6.arpa\n"
                        "    hosts /etc/coredns/NodeHosts { ttl 60 reload 15s fallthrough }\n    forward . /etc/resolv.conf\n"
                        "    cache 30\n    import /etc/coredns/custom/*.override\n}\nimport /etc/coredns/custom/*.server\n")
            self.store.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "coredns", "namespace": "kube-system"},
                               "data": {"Corefile": corefile, "NodeHosts": ""}})
        if self.store.find("Secret", "openshell", "openshell-client-tls") is None:
            self.store.create(client_tls_secret())
        os.makedirs(f"{NODE}/opt/openshell/bin", exist_ok=True)
        for name in os.listdir("/opt/openshell/bin"):  # the node's /opt/openshell/bin (baked into the cluster image)
            shutil.copy2(f"/opt/openshell/bin/{name}", f"{NODE}/opt/openshell/bin/{name}")
        log(f"k3s stand-in up: cluster {CLUSTER}, network {NETWORK}, volume {VOLUME} at {self.host_root}")

    # ---- agent-sandbox controller ---------------------------------------------------------------------------
    def reconcile_sandboxes(self):
        for sb in self.store.list("Sandbox"):
            ns, name, uid = sb["metadata"]["namespace"], sb["metadata"]["name"], sb["metadata"]["uid"]
            owner = [{"apiVersion": "agents.x-k8s.io/v1alpha1", "kind": "Sandbox", "name": name, "uid": uid,
                      "controller": True, "blockOwnerDeletion": True}]
            name_hash = fnv1a32(name)
            for vct in sb["spec"].get("volumeClaimTemplates") or []:
                claim = f"{vct['metadata']['name']}-{name}"
                if self.store.find("PersistentVolumeClaim", ns, claim) is None:
                    self.store.create({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                       "metadata": {"name": claim, "namespace": ns, "ownerReferences": owner},
                                       "spec": vct.get("spec") or {}}, strict=False)
            if self.store.find("Service", ns, name) is None:
                self.store.create({"apiVersion": "v1", "kind": "Service",
                                   "metadata": {"name": name, "namespace": ns, "labels": {"agents.x-k8s.io/sandbox-name-hash": name_hash},
                                                "ownerReferences": owner},
                                   "spec": {"clusterIP": "None", "selector": {"agents.x-k8s.io/sandbox-name-hash": name_hash}}})
            pod = self.store.find("Pod", ns, name)
            replicas = sb["spec"].get("replicas", 1)
            if replicas == 0:
                if pod and not pod["metadata"].get("deletionTimestamp"):
                    self.store.delete("Pod", ns, name)
            elif pod is None:
                template = sb["spec"]["podTemplate"]
                spec = json.loads(json.dumps(template["spec"]))
                for vct in sb["spec"].get("volumeClaimTemplates") or []:
                    spec.setdefault("volumes", []).append({"name": vct["metadata"]["name"],
                                                           "persistentVolumeClaim": {"claimName": f"{vct['metadata']['name']}-{name}"}})
                meta = template.get("metadata") or {}
                try:
                    self.store.create({"apiVersion": "v1", "kind": "Pod",
                                       "metadata": {"name": name, "namespace": ns, "ownerReferences": owner,
                                                    "labels": {**(meta.get("labels") or {}), "agents.x-k8s.io/sandbox-name-hash": name_hash},
                                                    "annotations": meta.get("annotations") or {}},
                                       "spec": spec})
                    log(f"controller: created pod {ns}/{name}")
                    self.set_ready(sb, False, "DependenciesNotReady", "Pod is Pending")
                except S.ApiError as exc:  # the API server refused the pod: the Sandbox stays not Ready
                    log(f"controller: pod {ns}/{name} refused: {exc.message}")
                    self.set_ready(sb, False, "ReconcilerError", exc.message)
                continue
            # a terminating pod is not Ready (the kubelet drops readiness when termination starts)
            pod_ready = not pod["metadata"].get("deletionTimestamp") and any(
                c.get("type") == "Ready" and c.get("status") == "True" for c in (pod.get("status") or {}).get("conditions") or [])
            why = (pod.get("status") or {}).get("message")
            message = "Pod is Ready" if pod_ready else f"Pod is not Ready{': ' + why if why else ''}"
            self.set_ready(sb, pod_ready, "DependenciesReady" if pod_ready else "DependenciesNotReady",
                           message + "; Service Exists")

    def set_ready(self, sb, ready, reason, message):
        old = (sb.get("status") or {}).get("conditions") or []
        prev = next((c for c in old if c.get("type") == "Ready"), {})
        value = "True" if ready else "False"
        cond = {"type": "Ready", "status": value, "reason": reason, "message": message,
                "observedGeneration": sb["metadata"].get("generation", 1),
                "lastTransitionTime": prev.get("lastTransitionTime") if prev.get("status") == value else now()}
        status = {**(sb.get("status") or {}), "conditions": [cond], "replicas": 1 if ready else 0,
                  "selector": f"agents.x-k8s.io/sandbox-name-hash={fnv1a32(sb['metadata']['name'])}"}
        self.store.update_status("Sandbox", sb["metadata"]["namespace"], sb["metadata"]["name"], status)

    # ---- local-path provisioner -----------------------------------------------------------------------------
    def bind_claims(self):
        for pvc in self.store.list("PersistentVolumeClaim"):
            if (pvc.get("status") or {}).get("phase") == "Bound":
                continue
            meta = pvc["metadata"]
            path = f"{STORAGE}/pvc-{meta['uid']}_{meta['namespace']}_{meta['name']}"
            os.makedirs(path, exist_ok=True)
            os.chmod(path, 0o777)
            self.store.update_status("PersistentVolumeClaim", meta["namespace"], meta["name"],
                                     {"phase": "Bound", "standinPath": path})

    # ---- kubelet ---------------------------------------------------------------------------------------------
    def state_mark(self):
        """(the store's stamp, every cluster container's id and state, whether all of them run), or None when the
        engine does not answer."""
        try:
            ctrs = self.docker.containers({LABEL: CLUSTER})
        except (DockerError, OSError):
            return None
        states = tuple(sorted((c["Id"], c.get("State")) for c in ctrs))
        return self.store.stamp(), states, all(state == "running" for _id, state in states)

    def containers_of(self, uid):
        return self.docker.containers({"io.kubernetes.pod.uid": uid})

    def sync_pods(self):
        pods = {p["metadata"]["uid"]: p for p in self.store.list("Pod")}
        for pod in pods.values():
            try:
                if pod["metadata"].get("deletionTimestamp"):
                    self.kill_pod(pod)
                else:
                    self.run_pod(pod)
            except (DockerError, OSError) as exc:
                log(f"kubelet: pod {pod['metadata']['name']}: {exc}")
                self.pod_status(pod, reason="CreateContainerError", message=str(exc))
        for ctr in self.docker.containers({LABEL: CLUSTER}):  # orphans: containers of pods that no longer exist
            if ctr["Labels"].get("io.kubernetes.pod.uid") not in pods:
                self.docker.remove(ctr["Id"])

    def kill_pod(self, pod):
        meta = pod["metadata"]
        ctrs = sorted(self.containers_of(meta["uid"]), key=lambda c: c["Labels"].get("io.kubernetes.container.name") == "POD")
        for ctr in ctrs:
            with contextlib.suppress(DockerError):
                if ctr["State"] == "running":
                    self.docker.stop(ctr["Id"], grace=5)
            self.docker.remove(ctr["Id"])
        shutil.rmtree(f"{KUBELET}/{meta['uid']}", ignore_errors=True)
        self.store.finalize("Pod", meta["namespace"], meta["name"])
        log(f"kubelet: pod {meta['namespace']}/{meta['name']} terminated")

    def cname(self, pod, container, attempt=0):
        meta = pod["metadata"]
        return f"k8s_{container}_{meta['name']}_{meta['namespace']}_{meta['uid']}_{attempt}"

    def labels(self, pod, container):
        meta = pod["metadata"]
        return {"io.kubernetes.pod.name": meta["name"], "io.kubernetes.pod.namespace": meta["namespace"],
                "io.kubernetes.pod.uid": meta["uid"], "io.kubernetes.container.name": container, LABEL: CLUSTER,
                "io.kubernetes.docker.type": "podsandbox" if container == "POD" else "container"}

    def run_pod(self, pod):
        meta, spec = pod["metadata"], pod["spec"]
        existing = {c["Labels"]["io.kubernetes.container.name"]: c for c in self.containers_of(meta["uid"])}
        # no pod sandbox, or a dead one (the node - here the Docker engine - restarted): a new sandbox is needed
        if "POD" not in existing or existing["POD"].get("State") != "running":
            bad = [s["name"] for s in (spec.get("securityContext") or {}).get("sysctls") or [] if s["name"] not in SAFE_SYSCTLS]
            if bad:
                self.pod_status(pod, phase="Failed", reason="SysctlForbidden",
                                message=f"Pod forbidden sysctl: \"{bad[0]}\" not allowlisted")
                return
            # a new pod sandbox (network namespace): "everything will need to be killed and recreated, and init
            # containers should be purged" (kubernetes pkg/kubelet/kuberuntime/kuberuntime_manager.go computePodActions;
            # line unverified) - so the init containers run again in the new namespace and no container of the old one stays
            for ctr in existing.values():
                self.docker.remove(ctr["Id"])
            if (pod.get("status") or {}).get("initDone"):
                self.store.update_status("Pod", meta["namespace"], meta["name"],
                                         {k: v for k, v in pod["status"].items() if k != "initDone"})
                pod = self.store.get("Pod", meta["namespace"], meta["name"])
            self.start_pause(pod)
            existing = {c["Labels"]["io.kubernetes.container.name"]: c for c in self.containers_of(meta["uid"])}
        pause_id = existing["POD"]["Id"]
        for init in spec.get("initContainers") or []:
            done = (pod.get("status") or {}).get("initDone") or []
            if init["name"] in done:
                continue
            code = self.run_init(pod, init, pause_id)
            if code != 0:
                self.pod_status(pod, phase="Pending", reason="Init:Error", message=f"init container {init['name']} exited {code}")
                return
            pod = self.store.get("Pod", meta["namespace"], meta["name"])
            status = pod.get("status") or {}
            status["initDone"] = [*done, init["name"]]
            self.store.update_status("Pod", meta["namespace"], meta["name"], status)
            pod = self.store.get("Pod", meta["namespace"], meta["name"])
        statuses = []
        for ctr in spec["containers"]:
            have = existing.get(ctr["name"])
            restarts = int((have or {}).get("Labels", {}).get("standin.openshell/restarts", "0"))
            if have is None:
                cid = self.create_container(pod, ctr, pause_id, 0)
                self.docker.start(cid)
                log(f"kubelet: started {meta['name']}/{ctr['name']}")
            elif have["State"] != "running":
                key = (meta["uid"], ctr["name"])
                wait = min(300, 10 * 2 ** min(restarts, 5))
                if time.monotonic() - self.backoff.get(key, 0) >= wait:
                    self.backoff[key] = time.monotonic()
                    log(f"kubelet: {meta['name']}/{ctr['name']} exited: {self.docker.logs(have['Id'], tail=8)[-800:]!r}")
                    self.docker.remove(have["Id"])
                    cid = self.create_container(pod, ctr, pause_id, restarts + 1)
                    self.docker.start(cid)
                    restarts += 1
                    log(f"kubelet: restarted {meta['name']}/{ctr['name']} (restart {restarts})")
            info = self.docker.inspect(self.cname(pod, ctr["name"], restarts)) or {}
            running = (info.get("State") or {}).get("Running", False)
            statuses.append({"name": ctr["name"], "ready": running, "restartCount": restarts, "image": ctr["image"],
                             "containerID": f"docker://{info.get('Id', '')}",
                             "state": {"running": {"startedAt": (info.get("State") or {}).get("StartedAt")}} if running
                             else {"waiting": {"reason": "CrashLoopBackOff"}}})
        pause = self.docker.inspect(pause_id) or {}
        ip = ((pause.get("NetworkSettings") or {}).get("Networks") or {}).get(NETWORK, {}).get("IPAddress", "")
        ready = all(s["ready"] for s in statuses)
        if ready and not any(c.get("type") == "Ready" and c.get("status") == "True"
                             for c in (pod.get("status") or {}).get("conditions") or []):
            self.observed_startup(pod)
        self.pod_status(pod, phase="Running", podIP=ip, containerStatuses=statuses,
                        conditions=[{"type": "Initialized", "status": "True"},
                                    {"type": "ContainersReady", "status": str(ready)},
                                    {"type": "Ready", "status": str(ready)}])

    @staticmethod
    def observed_startup(pod):
        """The kubelet's klog line when a pod first turns Ready (kubernetes v1.35 pkg/kubelet/util/
        pod_startup_latency_tracker.go, ObservedPodOnWatch: `"Observed pod startup duration" pod="ns/name"
        podStartSLOduration=<float s> podStartE2EDuration="<Go duration>"`, then the timestamps). k3s logs the
        kubelet to stderr of the cluster container; `openshell doctor logs` and stack_metrics read it there. No image
        is pulled here, so the SLO and E2E durations are equal. The line number in the klog header is unverified."""
        created = pod["metadata"].get("creationTimestamp")
        try:
            start = calendar.timegm(time.strptime(created, "%Y-%m-%dT%H:%M:%SZ"))
        except (TypeError, ValueError):
            return
        now = time.time()
        took = max(0.0, now - start)
        stamp = time.strftime("%m%d %H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}"
        sys.stderr.write(f'I{stamp}      71 pod_startup_latency_tracker.go:104] "Observed pod startup duration" '
                         f'pod="{pod["metadata"]["namespace"]}/{pod["metadata"]["name"]}" podStartSLOduration={took:.6f} '
                         f'podStartE2EDuration="{took:.6f}s" podCreationTimestamp="{created}"\n')
        sys.stderr.flush()

    def pod_status(self, pod, **fields):
        old = pod.get("status") or {}
        status = {k: v for k, v in old.items() if k == "initDone"}
        status.update(fields)
        self.store.update_status("Pod", pod["metadata"]["namespace"], pod["metadata"]["name"], status)

    def start_pause(self, pod):
        spec = pod["spec"]
        hosts = [f"{h}:{a['ip']}" for a in spec.get("hostAliases") or [] for h in a.get("hostnames") or []]
        sysctls = {s["name"]: s["value"] for s in (spec.get("securityContext") or {}).get("sysctls") or []}
        me = socket.gethostbyname(socket.gethostname())
        config = {"Image": SELF_IMAGE, "Entrypoint": ["sleep", "infinity"], "Labels": self.labels(pod, "POD"),
                  "Hostname": pod["metadata"]["name"],
                  "HostConfig": {"NetworkMode": NETWORK, "ExtraHosts": hosts, "Dns": [me],
                                 "DnsSearch": [f"{pod['metadata']['namespace']}.svc.cluster.local", "svc.cluster.local", "cluster.local"],
                                 "Sysctls": sysctls, "SecurityOpt": ["apparmor=unconfined"], "IpcMode": "shareable"}}
        cid = self.docker.create(self.cname(pod, "POD"), config)
        self.docker.start(cid)

    def run_init(self, pod, ctr, pause_id):
        name = self.cname(pod, ctr["name"])
        old = self.docker.inspect(name)
        if old:
            self.docker.remove(old["Id"])
        cid = self.create_container(pod, ctr, pause_id, 0)
        self.docker.start(cid)
        try:
            code = self.docker.wait(cid, timeout=300)
        except (DockerError, OSError):
            code = -1
        if code != 0:
            log(f"kubelet: init {ctr['name']} of {pod['metadata']['name']} exited {code}: {self.docker.logs(cid)[-400:]}")
        self.docker.remove(cid)
        return code

    def create_container(self, pod, ctr, pause_id, attempt):
        sc = ctr.get("securityContext") or {}
        psc = pod["spec"].get("securityContext") or {}
        user = sc.get("runAsUser", psc.get("runAsUser"))
        group = sc.get("runAsGroup", psc.get("runAsGroup"))
        security = ["apparmor=unconfined"]
        profile = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type", "Unconfined")
        if profile == "Unconfined":
            security.append("seccomp=unconfined")
        if sc.get("allowPrivilegeEscalation") is False:
            security.append("no-new-privileges")
        caps = sc.get("capabilities") or {}
        binds, tmpfs = self.mounts(pod, ctr)
        limits = (ctr.get("resources") or {}).get("limits") or {}
        privileged = bool(sc.get("privileged"))
        cap_add, unmasked = caps.get("add") or None, {}
        if privileged and not self.privileged_ok:  # docker's systempaths=unconfined: nothing masked, /proc/sys writable
            privileged, cap_add, unmasked = False, EMULATED_PRIVILEGED_CAPS, {"MaskedPaths": [], "ReadonlyPaths": []}
        host = {"NetworkMode": f"container:{pause_id}", "IpcMode": f"container:{pause_id}", "Binds": binds, "Tmpfs": tmpfs,
                "ReadonlyRootfs": bool(sc.get("readOnlyRootFilesystem")), "Privileged": privileged,
                "CapAdd": cap_add, "CapDrop": caps.get("drop") or None, "SecurityOpt": security,
                "Memory": quantity(limits.get("memory")) or 0, "NanoCpus": int((cpu(limits.get("cpu")) or 0) * 1e9), **unmasked}
        env = []
        for item in ctr.get("env") or []:
            if "value" in item:
                env.append(f"{item['name']}={item['value']}")
            elif "valueFrom" in item:
                env.append(f"{item['name']}={self.env_from(pod, item['valueFrom'])}")
        config = {"Image": ctr["image"], "Env": env, "Labels": {**self.labels(pod, ctr["name"]), "standin.openshell/restarts": str(attempt)},
                  "HostConfig": host, "Tty": bool(ctr.get("tty")), "OpenStdin": bool(ctr.get("stdin"))}
        if ctr.get("command"):
            config["Entrypoint"] = ctr["command"]
            config["Cmd"] = ctr.get("args") or []
        elif ctr.get("args"):
            config["Cmd"] = ctr["args"]
        if ctr.get("workingDir"):
            config["WorkingDir"] = ctr["workingDir"]
        if user is not None:
            config["User"] = f"{user}" + (f":{group}" if group is not None else "")
        return self.docker.create(self.cname(pod, ctr["name"], attempt), config)

    def env_from(self, pod, source):
        ns = pod["metadata"]["namespace"]
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            data = (self.store.get("Secret", ns, ref["name"]).get("data") or {}).get(ref["key"], "")
            return base64.b64decode(data).decode()
        if "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            return (self.store.get("ConfigMap", ns, ref["name"]).get("data") or {}).get(ref["key"], "")
        if "fieldRef" in source:
            path = source["fieldRef"]["fieldPath"]
            return {"metadata.name": pod["metadata"]["name"], "metadata.namespace": ns,
                    "metadata.uid": pod["metadata"]["uid"]}.get(path, "")
        return ""

    def volume_dir(self, pod, vol):
        """Materialise a volume on the node; returns (node path, is_tmpfs)."""
        uid, ns = pod["metadata"]["uid"], pod["metadata"]["namespace"]
        base = f"{KUBELET}/{uid}/volumes"
        if "emptyDir" in vol:
            if (vol["emptyDir"] or {}).get("medium") == "Memory":
                return None, True
            path = f"{base}/kubernetes.io~empty-dir/{vol['name']}"
            if not os.path.isdir(path):
                os.makedirs(path)
                os.chmod(path, 0o777)
            return path, False
        if "secret" in vol or "configMap" in vol:
            kind, src = ("Secret", vol["secret"]) if "secret" in vol else ("ConfigMap", vol["configMap"])
            name = src.get("secretName") or src.get("name")
            obj = self.store.find(kind, ns, name)
            if obj is None and not src.get("optional"):
                raise OSError(f"{kind.lower()} \"{name}\" not found")
            data = {}
            for key, value in ((obj or {}).get("data") or {}).items():
                data[key] = base64.b64decode(value) if kind == "Secret" else value.encode()
            for key, value in ((obj or {}).get("binaryData") or {}).items():
                data[key] = base64.b64decode(value)
            path = f"{base}/kubernetes.io~{kind.lower()}/{vol['name']}"
            shutil.rmtree(path, ignore_errors=True)
            os.makedirs(path)
            os.chmod(path, 0o755)
            default = src.get("defaultMode", 0o644)
            items = src.get("items") or [{"key": k, "path": k} for k in data]
            for item in items:
                if item["key"] not in data:
                    raise OSError(f"{kind.lower()} \"{name}\" has no key {item['key']!r}")
                target = os.path.join(path, item["path"])
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "wb") as fh:
                    fh.write(data[item["key"]])
                os.chmod(target, item.get("mode", default))
            return path, False
        if "hostPath" in vol:
            path = NODE + vol["hostPath"]["path"]
            os.makedirs(path, exist_ok=True)
            return path, False
        if "persistentVolumeClaim" in vol:
            pvc = self.store.get("PersistentVolumeClaim", ns, vol["persistentVolumeClaim"]["claimName"])
            path = (pvc.get("status") or {}).get("standinPath")
            if not path:
                raise OSError(f"persistentvolumeclaim \"{pvc['metadata']['name']}\" is not bound yet")
            return path, False
        raise OSError(f"volume {vol['name']}: source {sorted(set(vol) - {'name'})} not supported by the stand-in")

    def mounts(self, pod, ctr):
        volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
        binds, tmpfs = [], {}
        for mount in ctr.get("volumeMounts") or []:
            path, is_tmpfs = self.volume_dir(pod, volumes[mount["name"]])
            if is_tmpfs:
                tmpfs[mount["mountPath"]] = "rw,nosuid,nodev,mode=1777"
                continue
            if mount.get("subPath"):
                path = os.path.join(path, mount["subPath"])
                if not os.path.exists(path):
                    os.makedirs(path)
            binds.append(f"{self.host_path(path)}:{mount['mountPath']}:{'ro' if mount.get('readOnly') else 'rw'}")
        if ctr["name"] == "agent" and os.path.exists(UPSTREAM_CA):
            binds.append(f"{self.host_path(self.upstream_ca())}:/etc/openshell-standin/upstream-ca.pem:ro")
        return binds, tmpfs

    def upstream_ca(self):
        """lab: the lab world's CA for the sandbox proxy's upstream TLS (the supervisor passes it as --upstream-ca).
        A real host verifies upstream servers against public roots; the lab's world has a private CA, so without this
        every TLS request the proxy terminates would fail upstream and no L7 rule could be exercised over HTTPS. Copied
        into the cluster volume, whose host path the pods' bind mounts can name."""
        dest = os.path.join(ROOT, "standin", "upstream-ca.pem")
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copyfile(UPSTREAM_CA, dest)
        os.chmod(dest, 0o444)
        return dest


def quantity(value):
    if value is None:
        return None
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?", str(value))
    if not m:
        return None
    scale = {None: 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
    return int(float(m.group(1)) * scale[m.group(2)])


def cpu(value):
    if value is None:
        return None
    text = str(value)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


def client_tls_secret():
    """openshell-client-tls: a CA and a client certificate for the supervisors (mTLS to the gateway upstream)."""
    work = "/run/standin-tls"
    os.makedirs(work, exist_ok=True)

    def run(*argv):
        return subprocess.run(argv, cwd=work, check=True, capture_output=True)

    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "3650",
        "-subj", "/CN=openshell-ca", "-keyout", "ca.key", "-out", "ca.crt")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=openshell-sandbox",
        "-keyout", "tls.key", "-out", "tls.csr")
    run("openssl", "x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "3650",
        "-out", "tls.crt")
    data = {}
    for name in ("ca.crt", "tls.crt", "tls.key"):
        with open(f"{work}/{name}", "rb") as fh:
            data[name] = base64.b64encode(fh.read()).decode()
    shutil.rmtree(work)
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": "openshell-client-tls", "namespace": "openshell"}, "data": data}


def supervisor_token(store):
    """The stand-in's replacement for mTLS: supervisors prove they hold the client key (sha256 of tls.key)."""
    import hashlib  # noqa: PLC0415

    secret = store.get("Secret", "openshell", "openshell-client-tls")
    return hashlib.sha256(base64.b64decode(secret["data"]["tls.key"])).hexdigest()


# ---- the gateway's supervisor API ----------------------------------------------------------------------------
class SupervisorApi(http.server.BaseHTTPRequestHandler):
    token = None

    def _reply(self, code, payload):
        body = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 - http.server API
        if self.headers.get("Authorization") != f"Bearer {self.token}":
            self._reply(401, {"error": "client certificate required"})
            return
        m = re.fullmatch(r"/v1/sandboxes/([0-9a-f-]+)/config", self.path)
        config = G.supervisor_config(m.group(1)) if m else None
        if config is None:
            self._reply(404, {"error": "sandbox not found"})
            return
        self._reply(200, config)

    def do_POST(self):  # noqa: N802 - ReportPolicyStatus (grpc/policy.rs @v0.0.26 L675-735), over the same channel
        if self.headers.get("Authorization") != f"Bearer {self.token}":
            self._reply(401, {"error": "client certificate required"})
            return
        m = re.fullmatch(r"/v1/sandboxes/([0-9a-f-]+)/policy-status", self.path)
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            version = int(body["version"])
        except (ValueError, KeyError, TypeError):
            self._reply(400, {"error": "version is required"})
            return
        if not m or version < 1:
            self._reply(400 if m else 404, {"error": "version is required" if m else "not found"})
            return
        if not G.supervisor_report(m.group(1), version, bool(body.get("loaded")), body.get("error") or ""):
            self._reply(404, {"error": "policy revision not found"})
            return
        self._reply(200, {})

    def log_message(self, *_args):
        pass


# ---- CoreDNS: coredns-custom hosts, forward the rest --------------------------------------------------------
def custom_hosts(store):
    cm = store.find("ConfigMap", "kube-system", "coredns-custom")
    out = {}
    for key, text in ((cm or {}).get("data") or {}).items():
        if not (key.endswith(".server") or key.endswith(".override")):
            continue
        for block in re.findall(r"hosts\s*(?:\S+\s*)?\{([^}]*)\}", text):
            for line in block.splitlines():
                parts = line.split()
                if len(parts) >= 2 and re.fullmatch(r"\d+\.\d+\.\d+\.\d+", parts[0]):
                    for name in parts[1:]:
                        out[name.lower().rstrip(".")] = parts[0]
    return out


def dns_answer(query, hosts):
    """Answer an A query from `hosts`, else None (forward)."""
    if len(query) < 17:
        return None
    pos, labels = 12, []
    while pos < len(query) and query[pos]:
        labels.append(query[pos + 1:pos + 1 + query[pos]].decode(errors="replace"))
        pos += 1 + query[pos]
    qtype = struct.unpack("!H", query[pos + 1:pos + 3])[0] if pos + 3 <= len(query) else 0
    name = ".".join(labels).lower()
    if name not in hosts or qtype not in (1, 28):
        return None
    header = query[:2] + b"\x81\x80" + query[4:6] + (b"\x00\x01" if qtype == 1 else b"\x00\x00") + b"\x00\x00\x00\x00"
    question = query[12:pos + 5]
    answer = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + socket.inet_aton(hosts[name]) if qtype == 1 else b""
    return header + question + answer


def serve_dns(store):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", 53))
    while True:
        query, peer = sock.recvfrom(4096)
        try:
            reply = dns_answer(query, custom_hosts(store))
            if reply is None:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as up:
                    up.settimeout(2)
                    up.sendto(query, ("127.0.0.11", 53))
                    reply = up.recv(4096)
            sock.sendto(reply, peer)
        except (OSError, ValueError, struct.error):
            continue


def pass_due(mark, last, since):
    """A full pass is due: the engine did not answer, the store or a container changed since the last pass ended,
    a container is not running, or the last pass is RESYNC seconds old."""
    return mark is None or mark != last or not mark[2] or since >= RESYNC


def settled(before, after):
    """The mark to compare the next relist with: the state after a pass that changed nothing, else None - a pass that
    changed something (created a pod, reported it Ready) is followed by another, as a controller requeues, because
    what it changed can be input to a step that ran before it (the Sandbox's Ready condition follows its pod's)."""
    return after if after is not None and after == before else None


def main():
    cluster = Cluster()
    cluster.bootstrap()
    SupervisorApi.token = supervisor_token(cluster.store)
    api = socketserver.ThreadingTCPServer(("0.0.0.0", 8080), SupervisorApi)
    api.daemon_threads = True
    threading.Thread(target=api.serve_forever, daemon=True).start()
    threading.Thread(target=serve_dns, args=(cluster.store,), daemon=True).start()
    with open("/run/k3s-standin.ready", "w", encoding="ascii") as fh:
        fh.write("ready\n")
    last, synced = None, 0.0
    while True:
        # Like the kubelet's PLEG, one relist of the runtime per second; a full pass (controller, provisioner, kubelet
        # sync) only when the API objects or a container changed, while a container is not running (restarts and
        # their back-off are timed), after a pass that changed something (settled) and every RESYNC seconds. A pass
        # that changes nothing writes nothing
        # (store.Store._locked), so an idle lab stops costing CPU: 10 sandboxes took 0.2 CPU-s per second here.
        mark = cluster.state_mark()
        if pass_due(mark, last, time.monotonic() - synced):
            for step in (cluster.reconcile_sandboxes, cluster.bind_claims, cluster.sync_pods):
                try:
                    step()
                except Exception:  # noqa: BLE001 - one bad object must not stop the cluster; logged with its trace
                    log("loop error: " + traceback.format_exc().replace("\n", " | "))
            synced, last = time.monotonic(), settled(mark, cluster.state_mark())
        time.sleep(1)


if __name__ == "__main__":
    main()
