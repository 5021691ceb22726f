#!/usr/bin/env bash
# Dependency step of the scenarios on the host-service lines (molecule/host_line: 0.0.116, molecule/line_0_1: 0.1.5):
# what their instances are made of, built on this machine before `create`.
#   openshell_host_standin.sh VERSION NAME
#   - the OpenShell host-service stand-in image (roles/lab/files/openshell-host/image; the tests build the same tag),
#     which plays the fleet host and, through the stand-in Docker driver, every sandbox container;
#   - the stand-in release assets of OpenShell VERSION (packaging/build.py: deb, Homebrew formula, tarballs,
#     checksums) in .build/NAME/release, mounted into each instance and served there on 127.0.0.1:8765
#     (tests/standins/host-setup.sh).
set -euo pipefail
version="$1"; name="$2"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"  # molecule passes no MOLECULE_* variables to it
image=agentsec-h5-openshell-host:1
docker image inspect "${image}" > /dev/null 2>&1 || docker build -q -t "${image}" "${root}/roles/lab/files/openshell-host/image"
out="${root}/.build/${name}/release"
mkdir -p "${out}" && find "${out}" -mindepth 1 -delete  # the directory itself stays: instances bind-mount it
python3 "${root}/roles/lab/files/openshell-host/packaging/build.py" "${out}" \
  --base-url http://127.0.0.1:8765/openshell --version "${version}" > /dev/null
test -s "${out}/index.json"
