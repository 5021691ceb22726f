"""Server-side validation of the k3s stand-in: what a Kubernetes API server would refuse, it refuses.

Referees (never our own schemas):
- custom resources: the CRD's own `openAPIV3Schema` (for the Sandbox, the unmodified manifest of OpenShell v0.0.26,
  read from /etc/standin/crds/ - copied there from ../shared/upstream at image build). Semantics follow the
  apiextensions-apiserver's structural schemas (k8s docs "Extend the Kubernetes API with CustomResourceDefinitions":
  defaulting, pruning of unknown fields, and with `fieldValidation=Strict` - kubectl's default since 1.27 - unknown
  fields are an error instead of being pruned).
- core kinds (Pod, ConfigMap, Secret, Service, PersistentVolumeClaim): the JSON schemas of Kubernetes v1.35 shipped by
  the kubernetes-validate package (`v1.35.0-local-strict`, copied to /etc/standin/k8s-schemas/ at image build),
  checked with the `jsonschema` library; plus the pod semantic rules a schema cannot express (names, volume references,
  mount paths), from k8s pkg/apis/core/validation/validation.go (ValidatePodSpec, validateVolumeMounts,
  ValidateVolumes) - those messages follow the API server's "field: Invalid value" form.
"""
from __future__ import annotations

import copy
import json
import os
import re

CRD_DIR = os.environ.get("STANDIN_CRD_DIR", "/etc/standin/crds")
SCHEMA_DIR = os.environ.get("STANDIN_SCHEMA_DIR", "/etc/standin/k8s-schemas")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
CORE_SCHEMAS = {"Pod": "pod-v1.json", "ConfigMap": "configmap-v1.json", "Secret": "secret-v1.json",
                "Service": "service-v1.json", "PersistentVolumeClaim": "persistentvolumeclaim-v1.json"}


class Invalid(Exception):
    """reason: BadRequest (decode errors, unknown fields: HTTP 400) or Invalid (field values: HTTP 422)."""

    def __init__(self, reason, message, causes=()):
        super().__init__(message)
        self.reason, self.message, self.causes = reason, message, list(causes)


# ---- custom resources: structural schema -------------------------------------------------------------------
def load_crds():
    out = {}
    if not os.path.isdir(CRD_DIR):
        return out
    import yaml  # noqa: PLC0415 - Debian python3-yaml in the cluster image

    for name in sorted(os.listdir(CRD_DIR)):
        with open(os.path.join(CRD_DIR, name), encoding="utf-8") as fh:
            for doc in yaml.safe_load_all(fh):
                if doc and doc.get("kind") == "CustomResourceDefinition":
                    out[doc["spec"]["group"] + "/" + doc["spec"]["names"]["kind"]] = doc
    return out


def _typename(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _type_ok(schema, value):
    want = schema.get("type")
    if value is None:
        return schema.get("nullable", False) or want is None
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, (int, str)) and not isinstance(value, bool)
    if want is None:
        return True
    got = _typename(value)
    return got == want or (want == "number" and got == "integer")


def walk_structural(schema, value, path, strict, errors, unknown):
    """Default, prune (or report) unknown fields and check values in place. `value` is mutated (pruning/defaults)."""
    if not _type_ok(schema, value):
        errors.append(f"{path}: Invalid value: \"{_typename(value)}\": {path} in body must be of type {schema.get('type')}")
        return
    if value is None:
        return
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: Unsupported value: {json.dumps(value)}: supported values: "
                      + ", ".join(json.dumps(v) for v in schema["enum"]))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{path}: Invalid value: {value}: {path} in body should be greater than or equal to {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{path}: Invalid value: {value}: {path} in body should be less than or equal to {schema['maximum']}")
    if isinstance(value, str):
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{path}: Too long: may not be more than {schema['maxLength']} bytes")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{path}: Invalid value: \"{value}\": {path} in body should match '{schema['pattern']}'")
    if isinstance(value, dict):
        props = schema.get("properties")
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{path}.{key}: Required value")
        for key, sub in (props or {}).items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
        for key in list(value):
            sub = (props or {}).get(key)
            if sub is None and isinstance(schema.get("additionalProperties"), dict):
                sub = schema["additionalProperties"]
            if sub is None:
                if schema.get("x-kubernetes-preserve-unknown-fields") or (props is None and "additionalProperties" not in schema):
                    continue
                if path.endswith(".metadata") or path == "metadata":
                    continue
                unknown.append(f"{path}.{key}")
                if not strict:
                    del value[key]
                continue
            walk_structural(sub, value[key], f"{path}.{key}", strict, errors, unknown)
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            walk_structural(schema["items"], item, f"{path}[{i}]", strict, errors, unknown)


def validate_custom(obj, crd, strict=True):
    """Returns (object as stored, warnings). Raises Invalid like the API server would."""
    version = obj.get("apiVersion", "").split("/")[-1]
    served = [v for v in crd["spec"]["versions"] if v["name"] == version and v.get("served")]
    if not served:
        raise Invalid("BadRequest", f"no matches for kind \"{obj.get('kind')}\" in version \"{obj.get('apiVersion')}\"")
    schema = served[0]["schema"]["openAPIV3Schema"]
    stored = copy.deepcopy(obj)
    errors, unknown = [], []
    body = {k: v for k, v in stored.items() if k not in ("apiVersion", "kind", "metadata")}
    walk_structural({**schema, "properties": {k: v for k, v in schema.get("properties", {}).items()
                                              if k not in ("apiVersion", "kind", "metadata")}},
                    body, "", strict, errors, unknown)
    stored = {**{k: stored[k] for k in ("apiVersion", "kind", "metadata") if k in stored}, **body}
    unknown = [u.lstrip(".") for u in unknown]
    if strict and unknown:
        raise Invalid("BadRequest", f"{obj['kind']} in version \"{version}\" cannot be handled as a {obj['kind']}: "
                      "strict decoding error: " + ", ".join(f"unknown field \"{u}\"" for u in unknown))
    if errors:
        raise Invalid("Invalid", f"{obj['kind']}.{crd['spec']['group']} \"{obj['metadata'].get('name')}\" is invalid: "
                      + ", ".join(e.lstrip(".") for e in errors), errors)
    return stored, [f"unknown field \"{u}\"" for u in unknown]


# ---- core kinds: Kubernetes' own JSON schemas ------------------------------------------------------------
_VALIDATORS = {}


def _validator(kind):
    if kind in _VALIDATORS:
        return _VALIDATORS[kind]
    import jsonschema  # noqa: PLC0415 - Debian python3-jsonschema in the cluster image

    with open(os.path.join(SCHEMA_DIR, "_definitions.json"), encoding="utf-8") as fh:
        definitions = json.load(fh)
    with open(os.path.join(SCHEMA_DIR, CORE_SCHEMAS[kind]), encoding="utf-8") as fh:
        schema = json.load(fh)
    resolver = jsonschema.RefResolver.from_schema(schema, store={definitions["$id"]: definitions})
    cls = jsonschema.validators.validator_for(schema)
    _VALIDATORS[kind] = cls(schema, resolver=resolver)
    return _VALIDATORS[kind]


def validate_core(obj):
    kind = obj.get("kind")
    if kind not in CORE_SCHEMAS:
        return
    errors = sorted(_validator(kind).iter_errors(obj), key=lambda e: list(e.absolute_path))
    bad = []
    for err in errors[:10]:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path).lstrip(".")
        if err.validator == "additionalProperties":
            extra = re.findall(r"'([^']+)' was unexpected", err.message)
            raise Invalid("BadRequest", f"{kind} in version \"v1\" cannot be handled as a {kind}: strict decoding error: "
                          + ", ".join(f"unknown field \"{where + '.' if where else ''}{e}\"" for e in extra))
        bad.append(f"{where or '<root>'}: Invalid value: {err.message}")
    if bad:
        raise Invalid("Invalid", f"{kind} \"{obj.get('metadata', {}).get('name')}\" is invalid: " + ", ".join(bad), bad)
    if kind == "Pod":
        problems = pod_spec_problems(obj.get("spec") or {}, "spec")
        if problems:
            raise Invalid("Invalid", f"Pod \"{obj['metadata'].get('name')}\" is invalid: " + ", ".join(problems), problems)


def pod_spec_problems(spec, path="spec"):
    """The semantic checks of ValidatePodSpec that our patches can get wrong (k8s validation.go)."""
    out = []
    volumes = {}
    for i, vol in enumerate(spec.get("volumes") or []):
        name = vol.get("name", "")
        if not DNS1123_LABEL.match(name) or len(name) > 63:
            out.append(f"{path}.volumes[{i}].name: Invalid value: \"{name}\": a lowercase RFC 1123 label must consist of "
                       "lower case alphanumeric characters or '-'")
        if name in volumes:
            out.append(f"{path}.volumes[{i}].name: Duplicate value: \"{name}\"")
        sources = [k for k in vol if k != "name"]
        if len(sources) != 1:
            out.append(f"{path}.volumes[{i}]: Invalid value: must specify exactly 1 volume source, found {len(sources)}")
        volumes[name] = vol
    names = set()
    for group in ("initContainers", "containers"):
        for i, ctr in enumerate(spec.get(group) or []):
            where = f"{path}.{group}[{i}]"
            cname = ctr.get("name", "")
            if not DNS1123_LABEL.match(cname):
                out.append(f"{where}.name: Invalid value: \"{cname}\": a lowercase RFC 1123 label")
            if cname in names:
                out.append(f"{where}.name: Duplicate value: \"{cname}\"")
            names.add(cname)
            seen = set()
            for j, mount in enumerate(ctr.get("volumeMounts") or []):
                mwhere = f"{where}.volumeMounts[{j}]"
                if mount.get("name") not in volumes:
                    out.append(f"{mwhere}.name: Not found: \"{mount.get('name')}\"")
                mpath = mount.get("mountPath", "")
                if not mpath:
                    out.append(f"{mwhere}.mountPath: Required value")
                if mpath in seen:
                    out.append(f"{mwhere}.mountPath: Invalid value: \"{mpath}\": must be unique")
                seen.add(mpath)
                sub = mount.get("subPath", "")
                if sub and (sub.startswith("/") or ".." in sub.split("/")):
                    out.append(f"{mwhere}.subPath: Invalid value: \"{sub}\": must be a relative path without '..'")
            for j, env in enumerate(ctr.get("env") or []):
                if not ENV_NAME.match(env.get("name", "")):
                    out.append(f"{where}.env[{j}].name: Invalid value: \"{env.get('name')}\": a valid environment variable name")
    return out


def validate_name(kind, name):
    pattern = DNS1123_LABEL if kind in ("Pod", "Service", "Namespace") else DNS1123_SUBDOMAIN
    if not name or len(name) > 253 or not pattern.match(name):
        raise Invalid("Invalid", f"{kind} \"{name}\" is invalid: metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 "
                      "subdomain must consist of lower case alphanumeric characters, '-' or '.'")
