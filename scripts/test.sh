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
rm -f .build/reports/*.xml .build/reports/molecule*.counts .build/reports/*.stage

# The molecule scenarios run in the background, beside the other stages: they share nothing on the host with them
# (the fleet scenarios' sandboxes, world and gateway live in each instance container's own Docker engine; lab and
# hardening bring up labs with their own gateway, directory and subnet - molecule/*/molecule.yml). The fleet pair
# (~20 min each, mostly waiting on its instance) starts right away; the other scenarios start once the CPU-bound
# unit stage is done. Each job's output and time are printed when it is collected at the end.
# TEST_MOLECULE_BESIDE= runs molecule last, in the foreground, as one stage.
FLEET="fleet_linux fleet_macos"
jobs_bg=()
background() {  # NAME CMD...: start a stage in the background
  local name="$1"; shift
  ( start=$(date +%s); rc=0
    "$@" > ".build/reports/${name}.log" 2>&1 || rc=$?
    echo "${rc} $(( $(date +%s) - start ))" > ".build/reports/${name}.stage" ) &
  jobs_bg+=("${name}:$!")
  log "stage ${name}: started in the background"
}
collect() {  # wait for every background stage, print its output, record its time and result
  local job name pid rc secs
  for job in "${jobs_bg[@]}"; do
    name="${job%%:*}"; pid="${job##*:}"
    wait "${pid}" || true
    echo "---- ${name} (ran in the background; its output) ----"
    cat ".build/reports/${name}.log"
    read -r rc secs < ".build/reports/${name}.stage" || { rc=1; secs=0; }
    if [[ " ${warm[*]} " == *" ${name} "* ]]; then
      STAGE_TIMES+=("$(printf '%-22s %5ss  %s' "${name}" "${secs}" "$([ "$rc" = 0 ] && echo "ok (background warm-up)" || echo "failed (rc=$rc, warm-up only)")")")
      continue
    fi
    STAGE_TIMES+=("$(printf '%-22s %5ss  %s' "${name}" "${secs}" "$([ "$rc" = 0 ] && echo "ok (background)" || echo "FAILED (rc=$rc, background)")")")
    [ "$rc" = 0 ] || failed+=("${name}")
  done
}
# Warm-up: the real OpenClaw releases tests/integration/test_openclaw_real.py runs (npm packages and two Node.js
# builds, a few hundred MB on a cold machine) are fetched into the artifacts cache while the lint, sanity and unit
# stages run. A failed warm-up fails nothing by itself: the test then builds the bundle or skips with the reason.
warm_openclaw() {  # the releases and their Node.js versions are the test's own (NODE_FOR)
  python -c 'import sys; sys.path.insert(0, "tests/integration"); from test_openclaw_real import NODE_FOR
print("\n".join(f"{a} {n}" for a, n in NODE_FOR.items()))' \
    | while read -r app node; do scripts/openclaw_bundle.sh "$app" "$node" >/dev/null || exit 1; done
}
warm=()
if want integration; then
  background warm-openclaw warm_openclaw
  warm+=(warm-openclaw)
fi
beside=""
if want molecule && [ -n "${TEST_MOLECULE_BESIDE-1}" ] && [ -z "${MOLECULE_SCENARIOS:-}" ]; then
  beside=1
  background molecule-fleet env MOLECULE_SCENARIOS="${FLEET}" MOLECULE_COUNTS=fleet scripts/molecule.sh
fi

want yamllint && run yamllint yamllint --strict .
want ansible-lint && run ansible-lint ansible-lint --offline --profile production
want sanity && run sanity scripts/sanity.sh
want unit && run unit pytest -q tests/unit --junitxml=.build/reports/unit.xml
[ -n "${beside}" ] && background molecule-rest env MOLECULE_SKIP="${FLEET}" MOLECULE_COUNTS=rest scripts/molecule.sh
# The OpenShell host-service line tests (each brings up its own stand-in host, world and networks named
# agentsec-h5-<random id>-..., tests/integration/_openshell_host_env.py) are mostly waits on Docker: they run as a
# second pytest process in the background beside the rest of the integration tests.
lines=(); for f in tests/integration/test_*.py; do if grep -q "_openshell_host_env" "$f"; then lines+=("$f"); fi; done
if want integration && [ "${#lines[@]}" -gt 0 ]; then
  background integration-lines pytest -q -p no:cacheprovider "${lines[@]}" --durations=10 --junitxml=.build/reports/integration-lines.xml
fi
want integration && run integration pytest -q tests/integration --ignore=tests/integration/test_ee.py \
  $(printf -- '--ignore=%s ' "${lines[@]}") --durations=15 --junitxml=.build/reports/integration.xml
want adversarial && run adversarial scripts/adversarial.sh
want ee && run ee bash -c 'scripts/ee.sh build && pytest -q tests/integration/test_ee.py --junitxml=.build/reports/ee.xml'
if [ -n "${beside}" ]; then
  collect
else
  want molecule && run molecule scripts/molecule.sh
  collect
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
