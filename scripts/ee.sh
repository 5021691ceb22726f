#!/usr/bin/env bash
# The execution environment (execution-environment.yml) for AWX / Ansible Automation Platform: build it offline and
# run playbooks in it, directly and through ansible-runner the way AWX does. Prints the time of every step.
#
#   scripts/ee.sh build                      stage the collection tarballs, `ansible-builder create`, `docker build`
#   scripts/ee.sh playbook ARG...            `ansible-playbook ARG...` in the image (working directory /runner)
#   scripts/ee.sh runner PDD PLAYBOOK [ID]   `ansible-runner run /runner -p PLAYBOOK --ident ID` with the private
#                                            data directory PDD mounted at /runner; the result is in
#                                            PDD/artifacts/ID/{status,rc,stdout,job_events/}. PDD is made writable
#                                            for the image's user (uid 1000, ansible-builder's default, as in AWX).
#   scripts/ee.sh clean                      remove the image
#
# Environment: AGENTSEC_EE_IMAGE (image tag, default agentsec-nemoclaw-ee:<galaxy.yml version>),
# AGENTSEC_EE_NAME (prefix of container names, default agentsec-ee), AGENTSEC_EE_RUN_OPTS (extra `docker run`
# options, e.g. `-v /path:/path:ro -e ANSIBLE_STDOUT_CALLBACK=json`), AGENTSEC_EE_BUILD_OPTS (extra `docker build`
# options, e.g. `--no-cache` to measure a cold build). Containers run with `--network none`: nothing in them can phone home.
# The Docker build cache is reused: a second build with nothing changed takes seconds, a change to this collection
# rebuilds only the galaxy stage and the last two layers.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "${REPO_ROOT}"

EE_DIR="${REPO_ROOT}/.build/ee"
EE_VERSION="$(sed -n 's/^version:[[:space:]]*//p' galaxy.yml)"
IMAGE="${AGENTSEC_EE_IMAGE:-agentsec-nemoclaw-ee:${EE_VERSION}}"
NAME="${AGENTSEC_EE_NAME:-agentsec-ee}"

timed() {  # timed LABEL CMD...: runs CMD, prints `ee: LABEL Ns`, keeps CMD's exit code
  local label="$1" start rc=0
  shift
  start=$(date +%s)
  "$@" || rc=$?
  echo "ee: ${label} $(( $(date +%s) - start ))s$([ "$rc" = 0 ] || echo " FAILED rc=${rc}")"
  return "$rc"
}

# Writes .build/ee/collections/<ns>-<name>.tar.gz for every `collections/<ns>-<name>.tar.gz` entry of the
# definition, packed from the toolchain's `ansible` package (its site-packages/ansible_collections, installed form:
# MANIFEST.json + FILES.json + the files FILES.json lists), and .build/ee/agentsec/ with this collection built by
# `ansible-galaxy collection build`. Every tarball is packed reproducibly (sorted, mtime 0, root-owned, gzip without
# a timestamp), so an unchanged collection gives the same bytes and Docker's build cache holds.
stage_collections() {
  local site built
  site="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  rm -rf "${EE_DIR}/collections" "${EE_DIR}/agentsec.new" "${EE_DIR}/introspect"
  mkdir -p "${EE_DIR}/collections" "${EE_DIR}/agentsec.new"
  built="$(mktemp -d)"
  ansible-galaxy collection build --force --output-path "${built}" . >/dev/null \
    || { rm -rf "${built}"; die "ansible-galaxy collection build failed; run it by hand to see why"; }
  python - "${site}/ansible_collections" "${EE_DIR}" "${built}" <<'PY' || { rm -rf "${built}"; return 1; }
import gzip, hashlib, io, json, pathlib, sys, tarfile, yaml

src, out, built = (pathlib.Path(p) for p in sys.argv[1:])


def pack(members, dest):
    """members: sorted (name, bytes-or-None-for-dir) pairs -> a reproducible .tar.gz at dest."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    with open(dest, "wb") as fh, gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0) as gz:
        gz.write(raw.getvalue())


def installed_members(root):
    """An installed collection as artifact members. The `ansible` package ships collections without their tests/,
    docs/ and CI files although FILES.json still lists them, so FILES.json is trimmed to the files present (each one
    checked against its listed sha256) and MANIFEST.json's checksum of FILES.json is updated to match."""
    files = json.loads((root / "FILES.json").read_text())
    manifest = json.loads((root / "MANIFEST.json").read_text())
    members, kept = [], []
    for entry in files["files"]:
        path = root / entry["name"]
        if entry["name"] == ".":
            kept.append(entry)
        elif entry["ftype"] == "dir" and path.is_dir():
            kept.append(entry)
            members.append((entry["name"], None))
        elif entry["ftype"] == "file" and path.is_file():
            data = path.read_bytes()
            if hashlib.sha256(data).hexdigest() != entry["chksum_sha256"]:
                sys.exit(f"ERROR: {path} does not match its sha256 in FILES.json; reinstall the toolchain venv")
            kept.append(entry)
            members.append((entry["name"], data))
    files_json = json.dumps({**files, "files": kept}, indent=2).encode()
    manifest["file_manifest_file"]["chksum_sha256"] = hashlib.sha256(files_json).hexdigest()
    members += [("FILES.json", files_json), ("MANIFEST.json", json.dumps(manifest, indent=1).encode())]
    return sorted(members, key=lambda m: m[0]), len(files["files"]) - len(kept)


definition = yaml.safe_load(pathlib.Path("execution-environment.yml").read_text())
wanted = [c["name"] for c in definition["dependencies"]["galaxy"]["collections"]]
staged = {}
for entry in wanted:
    ns, _, name = pathlib.PurePath(entry).name.removesuffix(".tar.gz").partition("-")
    root = src / ns / name
    if not (root / "MANIFEST.json").is_file():
        sys.exit(f"ERROR: {ns}.{name} (execution-environment.yml) is not in {src}; is `ansible` in requirements/test.txt?")
    info = json.loads((root / "MANIFEST.json").read_text())["collection_info"]
    members, dropped = installed_members(root)
    staged[f"{ns}.{name}"] = {**info, "dropped": dropped}
    link = out / "introspect" / "ansible_collections" / ns / name
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(root)
    pack(members, out / "collections" / f"{ns}-{name}.tar.gz")

galaxy = yaml.safe_load(pathlib.Path("galaxy.yml").read_text())
needed = dict(galaxy.get("dependencies") or {})
for info in staged.values():
    needed.update(info.get("dependencies") or {})
missing = sorted(set(needed) - set(staged))
if missing:
    sys.exit(f"ERROR: execution-environment.yml lacks the collection(s) {', '.join(missing)} that galaxy.yml or a "
             f"staged collection depends on; add collections/<ns>-<name>.tar.gz entries for them")

(tarball,) = built.glob("*.tar.gz")
with tarfile.open(tarball) as tar:
    members = [(m.name, None if m.isdir() else tar.extractfile(m).read()) for m in tar.getmembers()]
pack(sorted(members, key=lambda m: m[0]), out / "agentsec.new" / tarball.name)
for full, info in sorted(staged.items()):
    print(f"ee: staged {full} {info['version']} (FILES.json entries not in the ansible package: {info['dropped']})")
print(f"ee: staged agentsec.nemoclaw {tarball.name}")
PY
  rm -rf "${built}"
  # Replace the staged collection only when its bytes changed (ansible-builder and Docker then see no change).
  if ! diff -rq "${EE_DIR}/agentsec.new" "${EE_DIR}/agentsec" >/dev/null 2>&1; then
    rm -rf "${EE_DIR}/agentsec" && mv "${EE_DIR}/agentsec.new" "${EE_DIR}/agentsec"
  else
    rm -rf "${EE_DIR}/agentsec.new"
  fi
}

# The wheelhouse every pip step of the image installs from (the image has no index: execution-environment.yml).
# Its requirements: what `ansible-builder introspect` finds for the staged dependency collections plus
# requirements/runtime.txt (the builder stage runs the same introspection on the same collections), the definition's
# ansible_core and ansible_runner pins, and the packages ansible-builder 3.2.0 itself installs: `bindep pyyaml
# packaging` in the builder stage (ansible_builder/containerfile.py:158) and `dumb-init==1.2.5`, the default
# container_init (ansible_builder/ee_schema.py:483). Downloaded for the image's CPython 3.11 (Debian 12) and this
# machine's architecture, binary wheels only; skipped when the requirement list did not change.
WHEEL_PLATFORM=(--only-binary=:all: --python-version 3.11 --implementation cp
  --platform "manylinux_2_36_$(uname -m)" --platform "manylinux_2_17_$(uname -m)" --platform "manylinux2014_$(uname -m)")
stage_wheels() {
  local reqs="${EE_DIR}/wheel-requirements.txt" key
  ansible-builder introspect --user-pip requirements/runtime.txt --write-pip "${EE_DIR}/introspected.txt" \
    "${EE_DIR}/introspect" >/dev/null || die "ansible-builder introspect failed on ${EE_DIR}/introspect"
  {
    sed -e 's/[[:space:]]*#.*//' -e '/^$/d' "${EE_DIR}/introspected.txt"
    python -c 'import yaml; d = yaml.safe_load(open("execution-environment.yml"))["dependencies"]
print(d["ansible_core"]["package_pip"]); print(d["ansible_runner"]["package_pip"])'
    printf '%s\n' bindep pyyaml packaging dumb-init==1.2.5
  } | sort -u > "${reqs}"
  key="$(cat "${reqs}" <(echo "${WHEEL_PLATFORM[*]}") | sha256sum | cut -c1-16)"
  if [ -f "${EE_DIR}/wheels.key" ] && [ "$(cat "${EE_DIR}/wheels.key")" = "${key}" ] && [ -d "${EE_DIR}/wheels" ]; then
    echo "ee: wheelhouse unchanged ($(ls "${EE_DIR}/wheels" | wc -l) wheels)"
    return 0
  fi
  rm -rf "${EE_DIR}/wheels" "${EE_DIR}/wheels.key"
  pip download -q -d "${EE_DIR}/wheels" "${WHEEL_PLATFORM[@]}" -r "${reqs}" >"${EE_DIR}/wheels.log" 2>&1 \
    || { tail -n 20 "${EE_DIR}/wheels.log" >&2; die "pip download of ${reqs} failed (above); is PyPI reachable?"; }
  echo "${key}" > "${EE_DIR}/wheels.key"
  echo "ee: wheelhouse of $(ls "${EE_DIR}/wheels" | wc -l) wheels for $(wc -l < "${reqs}") requirements"
}

ee_build() {
  ensure_venv >/dev/null
  ensure_docker >/dev/null
  ensure_base_image >/dev/null
  local total_start log
  total_start=$(date +%s)
  log="${EE_DIR}/build.log"
  timed "stage collections" stage_collections || return 1
  timed "stage wheels" stage_wheels || return 1
  # ansible-builder keeps files in the context whose content did not change (their mtimes too).
  timed create ansible-builder create -f execution-environment.yml -c "${EE_DIR}/context" --output-filename Dockerfile \
    >"${EE_DIR}/create.log" 2>&1 || { cat "${EE_DIR}/create.log" >&2; die "ansible-builder create failed (above)"; }
  # shellcheck disable=SC2086
  if ! timed "docker build" docker build ${AGENTSEC_EE_BUILD_OPTS:-} -f "${EE_DIR}/context/Dockerfile" -t "${IMAGE}" "${EE_DIR}/context" >"${log}" 2>&1; then
    tail -n 40 "${log}" >&2
    die "docker build of ${IMAGE} failed (last lines above, full log ${log}); the build needs Debian's package mirror (apt), nothing else"
  fi
  echo "ee: built ${IMAGE} ($(grep -c ' ---> Using cache' "${log}" || true) cached steps) in $(( $(date +%s) - total_start ))s"
}

image_present() {
  docker image inspect "${IMAGE}" >/dev/null 2>&1 || die "no image ${IMAGE}; run scripts/ee.sh build first"
}

ee_playbook() {
  image_present
  # shellcheck disable=SC2086
  timed playbook docker run --rm --network none --name "${NAME}-playbook-$$" ${AGENTSEC_EE_RUN_OPTS:-} \
    "${IMAGE}" ansible-playbook "$@"
}

ee_runner() {
  local pdd="${1:?usage: scripts/ee.sh runner PRIVATE_DATA_DIR PLAYBOOK [IDENT]}" playbook="${2:?playbook (relative to PDD/project)}"
  local ident="${3:-ee}"
  image_present
  [ -f "${pdd}/project/${playbook}" ] || die "${pdd}/project/${playbook} does not exist (ansible-runner looks for the playbook in <private data dir>/project)"
  chmod -R a+rwX "${pdd}"
  # shellcheck disable=SC2086
  timed runner docker run --rm --network none --name "${NAME}-runner-$$" ${AGENTSEC_EE_RUN_OPTS:-} \
    -v "$(cd "${pdd}" && pwd):/runner" "${IMAGE}" ansible-runner run /runner -p "${playbook}" --ident "${ident}"
}

case "${1:-}" in
  build) ee_build ;;
  playbook) shift; ee_playbook "$@" ;;
  runner) shift; ee_runner "$@" ;;
  clean) docker image rm "${IMAGE}" >/dev/null 2>&1 || true; rm -rf "${EE_DIR}" ;;
  *) echo "usage: scripts/ee.sh build | playbook ARG... | runner PDD PLAYBOOK [IDENT] | clean" >&2; exit 2 ;;
esac
