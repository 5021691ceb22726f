"""The k3s stand-in's object store: what the API server keeps in etcd/sqlite (k3s: /var/lib/rancher/k3s/server/db).

One JSON file under an exclusive flock, so `kubectl` (any number of processes) and the controllers of k3s_standin.py
see one consistent state. API-server semantics modelled (k8s docs "API concepts" and "Server-side apply"):
- metadata.uid, resourceVersion (a global counter), creationTimestamp, generation (bumped when anything but
  metadata/status changes) are set by the server; a create of an existing name is AlreadyExists (409);
- update/replace with a stale metadata.resourceVersion is a Conflict (409); the status of a resource with a status
  subresource is not changed by a main-resource update;
- delete of a Pod is graceful (deletionTimestamp set, the kubelet removes it when its containers are gone); other
  kinds go at once; ownerReferences are garbage-collected in the background (dependents of a deleted owner are
  deleted, kube-controller-manager's garbage collector).
"""
from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import os
import time
import uuid

import validate

DB = os.environ.get("STANDIN_DB", "/var/lib/rancher/k3s/server/db/standin.json")
# plural: (apiVersion, kind, namespaced, aliases)
RESOURCES = {
    "sandboxes": ("agents.x-k8s.io/v1alpha1", "Sandbox", True, ["sandbox", "sandboxes.agents.x-k8s.io", "sandbox.agents.x-k8s.io"]),
    "pods": ("v1", "Pod", True, ["po", "pod"]),
    "configmaps": ("v1", "ConfigMap", True, ["cm", "configmap"]),
    "secrets": ("v1", "Secret", True, ["secret"]),
    "services": ("v1", "Service", True, ["svc", "service"]),
    "persistentvolumeclaims": ("v1", "PersistentVolumeClaim", True, ["pvc", "persistentvolumeclaim"]),
    "namespaces": ("v1", "Namespace", False, ["ns", "namespace"]),
    "customresourcedefinitions": ("apiextensions.k8s.io/v1", "CustomResourceDefinition", False,
                                  ["crd", "crds", "customresourcedefinition"]),
}
BY_KIND = {v[1]: (plural, *v) for plural, v in RESOURCES.items()}
STATUS_SUBRESOURCE = {"Sandbox", "Pod", "PersistentVolumeClaim", "Service"}


class ApiError(Exception):
    def __init__(self, code, reason, message):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


def resource(word):
    """'sandboxes', 'sandbox', 'sandboxes.agents.x-k8s.io', 'cm' ... -> plural, or ApiError."""
    word = word.lower()
    for plural, (_av, _kind, _ns, aliases) in RESOURCES.items():
        if word == plural or word in aliases:
            return plural
    raise ApiError(404, "NotFound", f"the server doesn't have a resource type \"{word}\"")


def qualified(kind):
    api_version = BY_KIND[kind][1]
    group = api_version.split("/")[0] if "/" in api_version else ""
    return BY_KIND[kind][0] + (f".{group}" if group else "")


def _key(kind, namespace, name):
    return f"{kind}/{namespace or ''}/{name}"


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _body(obj):
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def label_match(labels, selector):
    """Equality-based selectors `a=b,c!=d,e` (k8s labels.Parse subset)."""
    for term in filter(None, (selector or "").split(",")):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.split("=", 1)
            if labels.get(key.rstrip("=")) != value.lstrip("="):
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


class Store:
    def __init__(self, path=DB):
        self.path = path
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self._crds = None

    @contextlib.contextmanager
    def _locked(self, write):
        with open(self.path + ".lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                with open(self.path, encoding="utf-8") as fh:
                    raw = fh.read()
                data = json.loads(raw)
            except (OSError, ValueError):
                raw, data = None, {"rv": 0, "objects": {}}
            yield data
            if write:
                # a write that changed nothing (a status already as reported) leaves the file alone, so the
                # kubelet loop can tell from the file's stamp alone that nothing happened (k3s_standin.pass_due)
                text = json.dumps(data, sort_keys=True)  # one text per state, whatever order keys were set in
                if text != raw:
                    tmp = f"{self.path}.{os.getpid()}.tmp"
                    with open(tmp, "w", encoding="utf-8") as fh:
                        fh.write(text)
                    os.replace(tmp, self.path)

    def stamp(self):
        """What identifies the stored state's version without reading it: (inode, mtime_ns, size) of the file, which
        every write replaces."""
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def crds(self):
        if self._crds is None:
            self._crds = validate.load_crds()
        return self._crds

    # ---- reads -------------------------------------------------------------------------------------------------
    def get(self, kind, namespace, name):
        with self._locked(False) as data:
            obj = data["objects"].get(_key(kind, namespace, name))
        if obj is None:
            raise ApiError(404, "NotFound", f"{qualified(kind)} \"{name}\" not found")
        return obj

    def find(self, kind, namespace, name):
        try:
            return self.get(kind, namespace, name)
        except ApiError:
            return None

    def list(self, kind, namespace=None, selector=None):
        with self._locked(False) as data:
            objs = [o for o in data["objects"].values() if o["kind"] == kind]
        return sorted((o for o in objs if (namespace is None or o["metadata"].get("namespace") == namespace)
                       and label_match(o["metadata"].get("labels") or {}, selector)),
                      key=lambda o: (o["metadata"].get("namespace") or "", o["metadata"]["name"]))

    # ---- validation --------------------------------------------------------------------------------------------
    def _check(self, obj, strict):
        """Validate a main-resource write; a status subresource's status is not part of it (carried over)."""
        status = obj.pop("status", None) if obj.get("kind") in STATUS_SUBRESOURCE else None
        obj, warnings = self._check_all(obj, strict)
        if status is not None:
            obj["status"] = status
        return obj, warnings

    def _check_all(self, obj, strict):
        kind = obj.get("kind")
        if kind not in BY_KIND:
            raise ApiError(400, "BadRequest", f"no matches for kind \"{kind}\" in version \"{obj.get('apiVersion')}\"")
        _plural, api_version, _kind, namespaced, _aliases = BY_KIND[kind]
        if obj.get("apiVersion") != api_version:
            raise ApiError(400, "BadRequest", f"no matches for kind \"{kind}\" in version \"{obj.get('apiVersion')}\"")
        meta = obj.setdefault("metadata", {})
        try:
            validate.validate_name(kind, meta.get("name", ""))
            warnings = []
            if "/" in api_version and not api_version.startswith("apiextensions"):
                crd = self.crds().get(api_version.split("/")[0] + "/" + kind)
                if crd is None:
                    raise validate.Invalid("BadRequest", f"no matches for kind \"{kind}\" in version \"{api_version}\"")
                obj, warnings = validate.validate_custom(obj, crd, strict)
            else:
                validate.validate_core(obj)
        except validate.Invalid as exc:
            raise ApiError(400 if exc.reason == "BadRequest" else 422, exc.reason, exc.message) from None
        if namespaced:
            meta.setdefault("namespace", "default")
        else:
            meta.pop("namespace", None)
        return obj, warnings

    # ---- writes ------------------------------------------------------------------------------------------------
    def create(self, obj, dry_run=False, strict=True):
        obj, warnings = self._check(copy.deepcopy(obj), strict)
        meta = obj["metadata"]
        with self._locked(not dry_run) as data:
            key = _key(obj["kind"], meta.get("namespace"), meta["name"])
            if key in data["objects"]:
                raise ApiError(409, "AlreadyExists", f"{qualified(obj['kind'])} \"{meta['name']}\" already exists")
            if meta.get("namespace") and obj["kind"] != "Namespace" and \
                    _key("Namespace", None, meta["namespace"]) not in data["objects"]:
                raise ApiError(404, "NotFound", f"namespaces \"{meta['namespace']}\" not found")
            data["rv"] += 1
            meta.update(uid=str(uuid.uuid4()), resourceVersion=str(data["rv"]), creationTimestamp=_now(), generation=1)
            meta.pop("deletionTimestamp", None)
            if not dry_run:
                data["objects"][key] = obj
        return obj, warnings

    def replace(self, obj, dry_run=False, strict=True):
        obj, warnings = self._check(copy.deepcopy(obj), strict)
        meta = obj["metadata"]
        with self._locked(not dry_run) as data:
            key = _key(obj["kind"], meta.get("namespace"), meta["name"])
            cur = data["objects"].get(key)
            if cur is None:
                raise ApiError(404, "NotFound", f"{qualified(obj['kind'])} \"{meta['name']}\" not found")
            want_rv = meta.get("resourceVersion")
            if want_rv and want_rv != cur["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", f"Operation cannot be fulfilled on {qualified(obj['kind'])} \"{meta['name']}\": "
                               "the object has been modified; please apply your changes to the latest version and try again")
            if obj["kind"] in STATUS_SUBRESOURCE and "status" in cur:
                obj["status"] = cur["status"]
            for field in ("uid", "creationTimestamp", "deletionTimestamp", "ownerReferences"):
                if field in cur["metadata"] and field not in meta:
                    meta[field] = cur["metadata"][field]
            meta["uid"], meta["creationTimestamp"] = cur["metadata"]["uid"], cur["metadata"]["creationTimestamp"]
            changed = _body(obj) != _body(cur) or meta.get("labels") != cur["metadata"].get("labels") or \
                meta.get("annotations") != cur["metadata"].get("annotations")
            meta["generation"] = cur["metadata"].get("generation", 1) + (1 if _body(obj) != _body(cur) else 0)
            if changed:
                data["rv"] += 1
                meta["resourceVersion"] = str(data["rv"])
            else:
                meta["resourceVersion"] = cur["metadata"]["resourceVersion"]
            if not dry_run:
                data["objects"][key] = obj
        return obj, warnings, changed

    def apply(self, obj, dry_run=False, strict=True):
        """kubectl apply, reduced to create-or-replace of the given top-level fields (no three-way merge)."""
        meta = obj.get("metadata", {})
        plural = BY_KIND.get(obj.get("kind"), (None, None, None, True))
        cur = self.find(obj.get("kind"), meta.get("namespace") or ("default" if plural[3] else None), meta.get("name"))
        if cur is None:
            created, warnings = self.create(obj, dry_run, strict)
            return created, warnings, "created"
        merged = copy.deepcopy(cur)
        merged["metadata"].pop("resourceVersion", None)
        for field in ("labels", "annotations"):
            if field in meta:
                merged["metadata"][field] = meta[field]
        for key in list(_body(merged)):
            if key not in ("apiVersion", "kind") and key not in obj:
                del merged[key]
        merged.update({k: v for k, v in obj.items() if k not in ("metadata", "status")})
        stored, warnings, changed = self.replace(merged, dry_run, strict)
        return stored, warnings, "configured" if changed else "unchanged"

    def update_status(self, kind, namespace, name, status):
        """The /status subresource: the new status is validated like the rest of the object."""
        with self._locked(True) as data:
            cur = data["objects"].get(_key(kind, namespace, name))
            if cur is None or cur.get("status") == status:
                return
            if "/" in cur["apiVersion"]:
                self._check_all({**copy.deepcopy(cur), "status": status}, strict=True)
            cur["status"] = status
            data["rv"] += 1
            cur["metadata"]["resourceVersion"] = str(data["rv"])

    def update_meta(self, kind, namespace, name, **fields):
        with self._locked(True) as data:
            cur = data["objects"].get(_key(kind, namespace, name))
            if cur is None:
                return None
            for field, value in fields.items():
                if value is None:
                    cur["metadata"].pop(field, None)
                else:
                    cur["metadata"][field] = value
            data["rv"] += 1
            cur["metadata"]["resourceVersion"] = str(data["rv"])
            return cur

    def delete(self, kind, namespace, name, dry_run=False):
        with self._locked(not dry_run) as data:
            key = _key(kind, namespace, name)
            cur = data["objects"].get(key)
            if cur is None:
                raise ApiError(404, "NotFound", f"{qualified(kind)} \"{name}\" not found")
            if dry_run:
                return cur
            if kind == "Pod":
                cur["metadata"].setdefault("deletionTimestamp", _now())
                data["rv"] += 1
                cur["metadata"]["resourceVersion"] = str(data["rv"])
            else:
                del data["objects"][key]
            self._collect(data, cur["metadata"]["uid"])
            return cur

    def finalize(self, kind, namespace, name):
        """The kubelet's last word on a terminated pod: the object goes."""
        with self._locked(True) as data:
            data["objects"].pop(_key(kind, namespace, name), None)

    @staticmethod
    def _collect(data, owner_uid):
        """Background cascading deletion of dependents (garbage collector), applied recursively."""
        pending = [owner_uid]
        while pending:
            uid = pending.pop()
            for key, obj in list(data["objects"].items()):
                refs = obj["metadata"].get("ownerReferences") or []
                if any(r.get("uid") == uid for r in refs):
                    if obj["kind"] == "Pod":
                        obj["metadata"].setdefault("deletionTimestamp", _now())
                    else:
                        del data["objects"][key]
                    pending.append(obj["metadata"]["uid"])
