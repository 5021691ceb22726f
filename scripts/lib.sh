#!/usr/bin/env bash
# Shared set-up for `make test` and `make lab`: toolchain virtualenv, collection link, Docker engine
# and the offline base image. Every failure ends with one line that says what is wrong and what to do.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${AGENTSEC_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/agentsec-nemoclaw}"
BASE_IMAGE="${AGENTSEC_BASE_IMAGE:-debian:bookworm-slim}"
PYTHON="${PYTHON:-python3}"

die() { echo "ERROR: $*" >&2; exit 1; }
log() { echo "==> $*"; }

# Runs "$@" as a named stage and prints how long it took; the overall summary is printed by stage_summary.
STAGE_TIMES=()
stage() {
  local name="$1"; shift
  local start end rc=0
  start=$(date +%s)
  log "stage ${name}: start"
  "$@" || rc=$?
  end=$(date +%s)
  STAGE_TIMES+=("$(printf '%-22s %5ss  %s' "${name}" "$((end - start))" "$([ "$rc" = 0 ] && echo ok || echo "FAILED (rc=$rc)")")")
  log "stage ${name}: $([ "$rc" = 0 ] && echo ok || echo "failed rc=$rc") in $((end - start))s"
  return "$rc"
}
stage_summary() {
  echo "---- stage timings ----"
  local line
  for line in "${STAGE_TIMES[@]}"; do echo "$line"; done
}

req_hash() { cat "${REPO_ROOT}/requirements/"*.txt | sha256sum | cut -c1-12; }

# The pinned toolchain lives in a cached virtualenv keyed on the requirement files, so a second run
# (or a fresh clone on the same machine) reuses it. A venv whose install did not finish is rebuilt.
ensure_venv() {
  "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null \
    || die "Python 3.11 or newer is required as '$PYTHON'; install python3 (>=3.11) or set PYTHON=/path/to/python3.11"
  VENV="${CACHE_DIR}/venv-$(req_hash)"
  if [ ! -f "${VENV}/.complete" ]; then
    log "creating toolchain virtualenv ${VENV}"
    rm -rf "${VENV}"
    mkdir -p "${CACHE_DIR}"
    "$PYTHON" -m venv "${VENV}" || die "could not create a virtualenv with $PYTHON -m venv; install python3-venv"
    if ! { "${VENV}/bin/pip" install --upgrade pip && "${VENV}/bin/pip" install -r "${REPO_ROOT}/requirements/test.txt"; } \
        >"${CACHE_DIR}/pip-install.log" 2>&1; then
      tail -n 20 "${CACHE_DIR}/pip-install.log" >&2
      rm -rf "${VENV}"
      die "pip could not install requirements/test.txt (log above; is PyPI reachable?); re-run when it is"
    fi
    touch "${VENV}/.complete"
  else
    log "reusing toolchain virtualenv ${VENV}"
  fi
  export VIRTUAL_ENV="${VENV}"
  export PATH="${VENV}/bin:${PATH}"
  link_collection
}

# Makes the checkout importable as ansible_collections.agentsec.nemoclaw (for ansible, molecule and pytest).
link_collection() {
  local dir="${REPO_ROOT}/.build/collections/ansible_collections/agentsec"
  mkdir -p "${dir}"
  ln -sfn ../../../.. "${dir}/nemoclaw"
  local site
  site="$("${VENV}/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  export ANSIBLE_COLLECTIONS_PATH="${REPO_ROOT}/.build/collections:${site}"
  export ANSIBLE_CONFIG="${REPO_ROOT}/ansible.cfg"
  export PYTHONPATH="${REPO_ROOT}/.build/collections${PYTHONPATH:+:${PYTHONPATH}}"
}

docker_ok() { docker info >/dev/null 2>&1; }

# Docker for molecule and the lab: use a running engine; on Debian/Ubuntu as root install docker.io and
# start dockerd; otherwise stop with what to install.
ensure_docker() {
  docker_ok && { log "docker engine answers"; return 0; }
  [ "$(id -u)" = 0 ] || die "no Docker daemon answers and this is not root; start Docker (or run as root on Debian/Ubuntu so it can be installed)"
  # shellcheck disable=SC1091
  . /etc/os-release 2>/dev/null || true
  case " ${ID:-} ${ID_LIKE:-} " in
    *" debian "*|*" ubuntu "*) ;;
    *) die "no Docker daemon answers and ${PRETTY_NAME:-this OS} is not Debian/Ubuntu; install and start Docker Engine, then re-run" ;;
  esac
  if ! command -v dockerd >/dev/null 2>&1; then
    log "installing docker.io"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null; } \
      || die "apt-get could not install docker.io (is the Debian mirror reachable?); install Docker Engine and re-run"
  fi
  log "starting dockerd (log: /var/log/dockerd.log)"
  setsid dockerd >/var/log/dockerd.log 2>&1 < /dev/null &
  local i
  for i in $(seq 1 60); do docker_ok && return 0; sleep 1; done
  die "dockerd did not answer within 60s; see /var/log/dockerd.log"
}

# The base image every scenario builds on. Present -> done; pullable -> pulled; otherwise built offline
# with debootstrap (the rootfs tarball is cached, so a wiped image store rebuilds in seconds).
ensure_base_image() {
  docker image inspect "${BASE_IMAGE}" >/dev/null 2>&1 && { log "base image ${BASE_IMAGE} present"; return 0; }
  if timeout 60 docker pull -q "${BASE_IMAGE}" >/dev/null 2>&1; then log "pulled ${BASE_IMAGE}"; return 0; fi
  local tarball="${CACHE_DIR}/bookworm-minbase-python3.tar"
  if [ ! -s "${tarball}" ]; then
    [ "$(id -u)" = 0 ] || die "${BASE_IMAGE} is not present or pullable and building it needs root (debootstrap); run as root or load the image"
    command -v debootstrap >/dev/null 2>&1 || {
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; } \
        || die "apt-get could not install debootstrap; install it and re-run"
    }
    local root
    root="$(mktemp -d)"
    log "building ${BASE_IMAGE} offline with debootstrap (about a minute)"
    debootstrap --variant=minbase --include=python3 bookworm "${root}" >"${CACHE_DIR}/debootstrap.log" 2>&1 \
      || { rm -rf "${root}"; die "debootstrap failed (see ${CACHE_DIR}/debootstrap.log); check the Debian mirror and re-run"; }
    tar -C "${root}" -cf "${tarball}.part" . && mv "${tarball}.part" "${tarball}"
    rm -rf "${root}"
  fi
  docker import "${tarball}" "${BASE_IMAGE}" >/dev/null || die "docker import of ${tarball} failed; remove it and re-run"
  log "imported ${BASE_IMAGE} from ${tarball}"
}

# The preflight probe must run in what a Mac pulls: the official debian:bookworm-slim has perl-base and no python3
# (unlike the local import above, which includes python3). This builds a look-alike offline - Debian minbase
# without python3 - as ${NOPYTHON_IMAGE}, caching its rootfs tarball next to the base image's.
NOPYTHON_IMAGE="${AGENTSEC_NOPYTHON_IMAGE:-agentsec/bookworm-minbase-nopython:1}"
ensure_nopython_image() {
  docker image inspect "${NOPYTHON_IMAGE}" >/dev/null 2>&1 && { log "image ${NOPYTHON_IMAGE} present"; return 0; }
  local tarball="${CACHE_DIR}/bookworm-minbase-nopython.tar"
  if [ ! -s "${tarball}" ]; then
    [ "$(id -u)" = 0 ] || die "${NOPYTHON_IMAGE} is missing and building it needs root (debootstrap); run as root or load the image"
    command -v debootstrap >/dev/null 2>&1 || {
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; } \
        || die "apt-get could not install debootstrap; install it and re-run"
    }
    mkdir -p "${CACHE_DIR}"
    local root
    root="$(mktemp -d)"
    log "building ${NOPYTHON_IMAGE} offline with debootstrap (minbase, no python3; about a minute)"
    debootstrap --variant=minbase bookworm "${root}" >"${CACHE_DIR}/debootstrap-nopython.log" 2>&1 \
      || { rm -rf "${root}"; die "debootstrap failed (see ${CACHE_DIR}/debootstrap-nopython.log); check the Debian mirror and re-run"; }
    if [ -e "${root}/usr/bin/python3" ] || [ ! -x "${root}/usr/bin/perl" ]; then
      rm -rf "${root}"
      die "the minbase rootfs has python3 or lacks perl; it would not stand for debian:bookworm-slim"
    fi
    tar -C "${root}" -cf "${tarball}.part" . && mv "${tarball}.part" "${tarball}"
    rm -rf "${root}"
  fi
  docker import "${tarball}" "${NOPYTHON_IMAGE}" >/dev/null || die "docker import of ${tarball} failed; remove it and re-run"
  log "imported ${NOPYTHON_IMAGE} from ${tarball}"
}

# Host packages the integration tests use for real kernel probes (libseccomp's Python bindings as a
# differential oracle, a 32-bit toolchain for the i386 bypass probe, nftables/iproute2 for namespaces; rsync for
# molecule's docker driver when it builds a scenario image; git for the stand-in NemoClaw repository).
HOST_TEST_PACKAGES=(python3-seccomp gcc gcc-multilib libc6-dev-i386 nftables iproute2 openssl rsync git)
ensure_host_packages() {
  local missing=() p wanted=("$@")
  [ "${#wanted[@]}" -gt 0 ] || wanted=("${HOST_TEST_PACKAGES[@]}")
  for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && { log "host packages present: ${wanted[*]}"; return 0; }
  command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ] \
    || die "missing host packages: ${missing[*]}; install them (Debian/Ubuntu names) and re-run"
  log "installing host test packages: ${missing[*]}"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; } \
    || die "apt-get could not install ${missing[*]}; install them and re-run"
}
