#!/bin/bash
# The fleet test machine's "internet", brought up once its Docker engine answers (a systemd unit wanted by
# docker.service on the Linux host, Docker Desktop's start hook on the Mac stand-in). It is test infrastructure, not
# part of any role: the roles install Docker, start the OpenShell gateway and onboard NemoClaw as on a real host.
#
# It loads the stand-in images from the machine's image archive (the registry stand-in, as `openshell gateway start`
# does), creates the gateway's network if the gateway has not yet (the name, label and internal flag the OpenShell
# CLI stand-in uses; the subnet from the machine settings), and runs the world container on it with the public names
# the sandboxes' policies allow (NemoClaw's presets) and one they do not. Every name resolves to the world only inside
# that internal network; nothing leaves the machine.
#
# Settings: /etc/agentsec-world/{gateway,address,names,image} and the world's certificate files in the same
# directory; /etc/openshell-standin/{subnet,image_archive}. Idempotent; every wait is bounded.
set -euo pipefail
conf=/etc/agentsec-world
setting() { tr -d '\n' <"/etc/openshell-standin/$1"; }
gateway=$(tr -d '\n' <"$conf/gateway")
address=$(tr -d '\n' <"$conf/address")
names=$(tr -d '\n' <"$conf/names")
image=$(tr -d '\n' <"$conf/image")
net="openshell-cluster-${gateway}"
export DOCKER_HOST="${DOCKER_HOST:-unix:///var/run/docker.sock}"

for _ in $(seq 1 120); do docker info >/dev/null 2>&1 && break; sleep 1; done
docker info >/dev/null 2>&1 || { echo "world-up: the Docker engine does not answer at ${DOCKER_HOST}" >&2; exit 1; }

if ! docker image inspect "$image" >/dev/null 2>&1; then
  # the same lock file as the CLI stand-in's registry stand-in, so the archive is loaded once
  flock /tmp/.openshell-standin-images.lock sh -c \
    "docker image inspect '$image' >/dev/null 2>&1 || docker load -i '$(setting image_archive)' >/dev/null"
fi

if ! docker network inspect "$net" >/dev/null 2>&1; then
  docker network create --internal --subnet "$(setting subnet)" --label "openshell.ai/gateway=${gateway}" "$net" >/dev/null \
    || docker network inspect "$net" >/dev/null  # created by `openshell gateway start` in the meantime
fi

if [ "$(docker inspect -f '{{.State.Running}}' agentsec-world 2>/dev/null || true)" != true ]; then
  docker rm -f agentsec-world >/dev/null 2>&1 || true
  aliases=()
  IFS=, read -r -a list <<<"$names"
  for name in "${list[@]}"; do aliases+=(--network-alias "$name"); done
  docker run -d --name agentsec-world --network "$net" --ip "$address" "${aliases[@]}" \
    -v "$conf:/etc/lab-world:ro" -e "LAB_WORLD_ADDRESS=$address" -e "LAB_WORLD_NAMES=$names" \
    --label "agentsec.test/world=${gateway}" --restart unless-stopped "$image" >/dev/null
fi
echo "world-up: ${names} at ${address} on ${net}"
