#!/usr/bin/env bash
# `make test`: all set-up on a fresh Linux machine, then every check. Prints the time of each stage and
# exits non-zero when any check fails. Stages can be chosen: scripts/test.sh yamllint unit adversarial molecule
# (yamllint ansible-lint sanity unit integration adversarial ee molecule; default all).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "${REPO_ROOT}"
if [ -n "${CI:-}" ]; then export PY_COLORS=0 ANSIBLE_FORCE_COLOR=0 NO_COLOR=1 ANSIBLE_NOCOLOR=1; fi

want() { [ "$#" -eq 0 ] && return 0; local s; for s in "${SELECTED[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
SELECTED=("$@")
[ "${#SELECTED[@]}" -eq 0 ] && SELECTED=(yamllint ansible-lint sanity unit integration adversarial ee molecule)

failed=()
run() { local name="$1"; shift; stage "$name" "$@" || failed+=("$name"); }

stage setup ensure_venv || { stage_summary; exit 1; }
if want molecule || want integration || want adversarial || want ee; then
  stage docker bash -c 'source scripts/lib.sh; ensure_docker; ensure_base_image; ensure_nopython_image' || { stage_summary; exit 1; }
  stage host-packages bash -c 'source scripts/lib.sh; ensure_host_packages' || { stage_summary; exit 1; }
fi

# molecule (ansible-compat) installs a snapshot of this collection into ~/.ansible/collections, which would
# shadow the linked checkout on the next run; drop it so every tool sees the working tree.
rm -rf "${HOME}/.ansible/collections/ansible_collections/agentsec/nemoclaw"
mkdir -p .build/reports
rm -f .build/reports/*.xml .build/reports/molecule*.counts .build/reports/fleet.stage

# The fleet scenarios are the longest stage (each ~20 min, mostly waiting on the Docker engine inside its own
# instance container) and share nothing on the host with the other stages: their sandboxes, world and gateway live in
# that container's engine (molecule/*/molecule.yml, Docker in Docker). They start now, in the background, and the rest
# runs beside them; their output and time are printed when they are collected at the end. TEST_FLEET_BESIDE= runs
# them in sequence with the other scenarios instead.
FLEET="fleet_linux fleet_macos"
fleet_pid=""
if want molecule && [ -n "${TEST_FLEET_BESIDE-1}" ] && [ -z "${MOLECULE_SCENARIOS:-}" ]; then
  ( start=$(date +%s); rc=0
    MOLECULE_SCENARIOS="${FLEET}" MOLECULE_COUNTS=fleet scripts/molecule.sh > .build/reports/fleet.log 2>&1 || rc=$?
    echo "${rc} $(( $(date +%s) - start ))" > .build/reports/fleet.stage ) &
  fleet_pid=$!
  log "stage molecule-fleet: started in the background (${FLEET})"
fi

want yamllint && run yamllint yamllint --strict .
want ansible-lint && run ansible-lint ansible-lint --offline --profile production
want sanity && run sanity scripts/sanity.sh
want unit && run unit pytest -q tests/unit --junitxml=.build/reports/unit.xml
want integration && run integration pytest -q tests/integration --ignore=tests/integration/test_ee.py --durations=15 --junitxml=.build/reports/integration.xml
want adversarial && run adversarial scripts/adversarial.sh
want ee && run ee bash -c 'scripts/ee.sh build && pytest -q tests/integration/test_ee.py --junitxml=.build/reports/ee.xml'
if [ -n "${fleet_pid}" ]; then
  want molecule && run molecule env MOLECULE_SCENARIOS="$(rest=(); for d in molecule/*/molecule.yml; do
    s="$(basename "$(dirname "$d")")"; [[ " ${FLEET} " == *" ${s} "* ]] || rest+=("$s"); done; echo "${rest[*]}")" scripts/molecule.sh
  wait "${fleet_pid}" || true
  echo "---- molecule-fleet (ran in the background from the start; its output) ----"
  cat .build/reports/fleet.log
  read -r rc secs < .build/reports/fleet.stage || { rc=1; secs=0; }
  STAGE_TIMES+=("$(printf '%-22s %5ss  %s' molecule-fleet "${secs}" "$([ "$rc" = 0 ] && echo "ok (in the background)" || echo "FAILED (rc=$rc)")")")
  [ "$rc" = 0 ] || failed+=(molecule-fleet)
else
  want molecule && run molecule scripts/molecule.sh
fi
rm -rf "${HOME}/.ansible/collections/ansible_collections/agentsec/nemoclaw"

stage_summary
# One closing line over every test runner (pytest junit files and molecule scenario counts).
python scripts/count_results.py .build/reports
if [ "${#failed[@]}" -gt 0 ]; then
  echo "FAILED stages: ${failed[*]}"
  exit 1
fi
echo "all stages passed"
