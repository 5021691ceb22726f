#!/bin/sh
# Turns a container of the OpenShell host-service stand-in image (roles/lab/files/openshell-host/image) into a fleet
# host, as root inside it: `host-setup.sh linux|mac DOCKER_GID`. Shared by the integration tests
# (tests/integration/_openshell_host_env.py Host.start) and molecule/shared/openshell_host_prepare.yml, which mount this
# directory at /opt/standins, the machine's Docker socket where the platform has it (Linux /var/run/docker.sock,
# Docker Desktop ~/.docker/run/docker.sock) and a release mirror at /srv/release/openshell.
#   linux: the systemd user-manager stand-ins (systemctl --user, loginctl linger) on the PATH;
#   mac:   Homebrew's prefix /opt/homebrew owned by the user with the brew stand-in, and the launchctl stand-in.
# Both: the user `studio` in the socket's group, and the release mirror served on 127.0.0.1:8765 (as nobody), which
# the roles' release URLs name. Bounded: the mirror has 5 s to answer.
set -eu
flavour="$1"; gid="$2"
groupadd -g "$gid" dockerhost 2>/dev/null || true
usermod -aG "$gid" studio
mkdir -p /var/lib/agentsec-standins && chmod 777 /var/lib/agentsec-standins
case "$flavour" in
  linux)
    ln -sf /opt/standins/systemd/bin/systemctl /usr/local/bin/systemctl
    ln -sf /opt/standins/systemd/bin/loginctl /usr/local/bin/loginctl ;;
  mac)
    mkdir -p /opt/homebrew/bin /opt/homebrew/Library/Taps /opt/homebrew/Cellar /opt/homebrew/opt /opt/homebrew/var
    chown -R studio:studio /opt/homebrew
    ln -sf /opt/standins/homebrew/bin/brew /opt/homebrew/bin/brew
    ln -sf /opt/standins/bin/launchctl /usr/local/bin/launchctl
    mkdir -p /home/studio/.docker/run && chown studio:studio /home/studio/.docker /home/studio/.docker/run ;;
  *) echo "host-setup.sh: flavour must be linux or mac, got '$flavour'" >&2; exit 2 ;;
esac
probe="import urllib.request; urllib.request.urlopen('http://127.0.0.1:8765/', timeout=1)"
if ! python3 -c "$probe" 2>/dev/null; then
  setsid setpriv --reuid=nobody --regid=nogroup --clear-groups \
    python3 -m http.server 8765 --bind 127.0.0.1 --directory /srv/release >/dev/null 2>&1 < /dev/null &
fi
i=0
until python3 -c "$probe" 2>/dev/null; do
  i=$((i + 1)); [ "$i" -le 50 ] || { echo "host-setup.sh: the release mirror did not answer on 127.0.0.1:8765" >&2; exit 1; }
  sleep 0.1
done
