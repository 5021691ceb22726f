#!/usr/bin/env bash
# Fetches a real OpenClaw release from the npm registry and the Node.js it needs, and leaves both unpacked in the
# artifacts cache, ready to be mounted read-only into a container:
#   ${CACHE}/openclaw-<OPENCLAW_VERSION>-node-<NODE_VERSION>/node/   Node.js tree (scripts/node_tarball.sh)
#   ${CACHE}/openclaw-<OPENCLAW_VERSION>-node-<NODE_VERSION>/app/    package.json, package-lock.json, node_modules/openclaw
# CACHE is ${AGENTSEC_CACHE_DIR:-$HOME/.cache/agentsec-nemoclaw}/artifacts. Every download lands there too (the npm
# cache in npm-cache/, the lock file in openclaw-<version>.package-lock.json), so after one online run the bundle can
# be rebuilt offline (`npm ci --offline`). A complete bundle is reused as it is.
#
# The lock file keeps registry URLs (--omit-lockfile-registry-resolved=false, whatever ~/.npmrc says), so `npm ci
# --offline` finds every tarball in the cache by its integrity without asking the registry for metadata.
# Choices, all visible in app/package.json:
# - `overrides.libsignal`: @whiskeysockets/baileys (OpenClaw's WhatsApp channel) depends on
#   git+https://github.com/whiskeysockets/libsignal-node, which this machine cannot reach; the same project is
#   published on the npm registry as `libsignal` (repository WhiskeySockets/libsignal-node), pinned here.
# - `--legacy-peer-deps`: OpenClaw's peer dependencies node-llama-cpp (local embeddings, ~700 MB of CUDA/Vulkan
#   binaries) and @napi-rs/canvas are not installed; the test disables memory search and never renders images.
# - `--ignore-scripts`, then `npm rebuild openclaw`: only OpenClaw's own lifecycle scripts run (2026.9.6's
#   postinstall, scripts/postinstall-bundled-plugins.mjs, removes .openclaw-lifecycle-pending; without it openclaw.mjs
#   refuses to start: "package lifecycle is incomplete"). The dependencies' scripts are checks or prebuilt copies
#   (sharp install/check.js, protobufjs, baileys engine check, koffi --prebuild whose binaries ship in the tarball).
# Usage: scripts/openclaw_bundle.sh OPENCLAW_VERSION NODE_VERSION   -> prints the bundle directory
set -euo pipefail

die() { echo "ERROR: $*" >&2; exit 1; }

[ "$#" -eq 2 ] || die "usage: $0 OPENCLAW_VERSION NODE_VERSION (e.g. 2026.3.11 22.22.0)"
OPENCLAW_VERSION="$1"
NODE_VERSION="$2"
[[ "${OPENCLAW_VERSION}" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "OPENCLAW_VERSION '${OPENCLAW_VERSION}' is not X.Y.Z"
[[ "${NODE_VERSION}" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "NODE_VERSION '${NODE_VERSION}' is not X.Y.Z"
LIBSIGNAL_VERSION=6.0.0

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${AGENTSEC_CACHE_DIR:-$HOME/.cache/agentsec-nemoclaw}/artifacts"
BUNDLE="${CACHE}/openclaw-${OPENCLAW_VERSION}-node-${NODE_VERSION}"
NPM_CACHE="${CACHE}/npm-cache"
LOCK="${CACHE}/openclaw-${OPENCLAW_VERSION}.package-lock.json"
STAMP="openclaw=${OPENCLAW_VERSION} node=${NODE_VERSION} libsignal=${LIBSIGNAL_VERSION} legacy-peer-deps openclaw-scripts-only"

# One build per bundle at a time (make test warms the cache in the background while the test may already ask for it):
# a second caller waits here and then reuses what the first one built.
mkdir -p "${CACHE}"
exec 9>"${BUNDLE}.lock"
flock -w 1500 9 || die "another build of ${BUNDLE} has held ${BUNDLE}.lock for 25 minutes"
if [ -f "${BUNDLE}/.complete" ] && [ "$(cat "${BUNDLE}/.complete")" = "${STAMP}" ]; then
  echo "==> reusing ${BUNDLE}" >&2
  echo "${BUNDLE}"
  exit 0
fi

work="$(mktemp -d "${CACHE}/.openclaw-bundle.XXXXXX")"
trap 'rm -rf "${work}"' EXIT

# Node.js: the same builder the fleet scenarios use (cached tarball), unpacked.
bash "${HERE}/node_tarball.sh" "${work}/node.tar.xz" "${NODE_VERSION}" >/dev/null
mkdir -p "${work}/bundle/node"
tar -xJf "${work}/node.tar.xz" --strip-components=1 -C "${work}/bundle/node"
rm -f "${work}/node.tar.xz"
NODE_BIN="${work}/bundle/node/bin"
got="$("${NODE_BIN}/node" --version)" || die "the unpacked node does not run"
[ "${got}" = "v${NODE_VERSION}" ] || die "node --version printed ${got}, expected v${NODE_VERSION}"

app="${work}/bundle/app"
mkdir -p "${app}"
cat >"${app}/package.json" <<EOF
{
  "name": "agentsec-openclaw-bundle",
  "private": true,
  "description": "openclaw@${OPENCLAW_VERSION} from the npm registry, for tests/integration/test_openclaw_real.py",
  "dependencies": {"openclaw": "${OPENCLAW_VERSION}"},
  "overrides": {"libsignal": "${LIBSIGNAL_VERSION}"}
}
EOF
npm_args=(--no-audit --no-fund --ignore-scripts --legacy-peer-deps --loglevel=error --cache "${NPM_CACHE}"
          --update-notifier=false --omit-lockfile-registry-resolved=false)
if [ -s "${LOCK}" ]; then
  cp "${LOCK}" "${app}/package-lock.json"
  echo "==> installing openclaw@${OPENCLAW_VERSION} from ${LOCK} (offline first)" >&2
  (cd "${app}" && PATH="${NODE_BIN}:${PATH}" npm ci --offline "${npm_args[@]}" >"${work}/npm.log" 2>&1) \
    || (cd "${app}" && PATH="${NODE_BIN}:${PATH}" npm ci "${npm_args[@]}" >"${work}/npm.log" 2>&1) \
    || { tail -n 20 "${work}/npm.log" >&2; die "npm ci of openclaw@${OPENCLAW_VERSION} failed (offline and online)"; }
else
  echo "==> installing openclaw@${OPENCLAW_VERSION} from the npm registry (first run: a few hundred MB of packages)" >&2
  (cd "${app}" && PATH="${NODE_BIN}:${PATH}" npm install "${npm_args[@]}" >"${work}/npm.log" 2>&1) \
    || { tail -n 20 "${work}/npm.log" >&2; die "npm install openclaw@${OPENCLAW_VERSION} failed; is registry.npmjs.org reachable?"; }
  cp "${app}/package-lock.json" "${LOCK}.tmp" && mv "${LOCK}.tmp" "${LOCK}"
fi
# OpenClaw's own preinstall/postinstall, with the bundle's Node (the scripts check the Node version).
(cd "${app}" && GIT_CEILING_DIRECTORIES="${work}" PATH="${NODE_BIN}:${PATH}" npm rebuild openclaw --ignore-scripts=false --foreground-scripts \
   --cache "${NPM_CACHE}" --update-notifier=false --offline >"${work}/rebuild.log" 2>&1) \
  || { tail -n 20 "${work}/rebuild.log" >&2; die "openclaw@${OPENCLAW_VERSION}'s own install scripts failed"; }
[ ! -e "${app}/node_modules/openclaw/.openclaw-lifecycle-pending" ] \
  || die "openclaw@${OPENCLAW_VERSION}: .openclaw-lifecycle-pending is still there after its postinstall"
got="$(PATH="${NODE_BIN}:${PATH}" node -p "require('${app}/node_modules/openclaw/package.json').version")"
[ "${got}" = "${OPENCLAW_VERSION}" ] || die "installed openclaw is ${got}, expected ${OPENCLAW_VERSION}"

echo "${STAMP}" >"${work}/bundle/.complete"
rm -rf "${BUNDLE}"
mv "${work}/bundle" "${BUNDLE}"
echo "==> bundle ready: ${BUNDLE}" >&2
echo "${BUNDLE}"
