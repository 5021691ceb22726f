#!/usr/bin/env bash
# Runs every molecule scenario with its full test sequence. A scenario that needs something this machine
# may not have lists the environment variables in molecule/<scenario>/requires.env; when one is unset
# the scenario is reported as skipped with the reason, never silently passed.
#
# Each scenario runs with MOLECULE_GLOB set to its own molecule.yml. Without it molecule 26.10 prints
# `CRITICAL 'molecule/default/molecule.yml' glob failed.  Exiting.` before every scenario that then passes:
# execute_cmdline_scenarios always probes for a scenario named `default` (to set up shared state,
# molecule/command/base.py:229-238 @ molecule 26.10.0), the probe raises ScenarioFailureError when there is none
# (_verify_configs, base.py:554), and MoleculeError logs its message at CRITICAL in its constructor
# (molecule/exceptions.py:37) although the caller catches it and goes on. With the glob fixed to one file the probe
# resolves to that same scenario (base.py _resolve_scenario_glob replaces the `*` only), which is harmless because no
# scenario of ours sets `shared_state` (checked below: the default config is used only for shared state). A set
# MOLECULE_GLOB also skips the "Molecule scenarios should migrate to 'extensions/molecule'" warning (util.py:766-776).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "${REPO_ROOT}"
ran=0; skipped=0; failed=(); background=()
# The fleet scenarios each run in their own instance container (Docker in Docker) and spend most of their time
# waiting on it: run them side by side, the rest one after another (MOLECULE_PARALLEL= runs everything in sequence).
# A copy an older run's prerun left in the venv cache would shadow the checkout (every molecule.yml sets prerun: false).
[ -z "${VIRTUAL_ENV:-}" ] || rm -rf "${VIRTUAL_ENV}/.ansible/collections/ansible_collections/agentsec"
MOLECULE_PARALLEL="${MOLECULE_PARALLEL-fleet_linux fleet_macos}"
shared="$(grep -ls '^[[:space:]]*shared_state:[[:space:]]*true' molecule/*/molecule.yml || true)"
[ -z "$shared" ] || die "${shared//$'\n'/, } set(s) shared_state: true, but scripts/molecule.sh pins MOLECULE_GLOB to one scenario, which would make it its own shared-state default; run such a scenario with molecule directly"
for dir in molecule/*/; do
  s="$(basename "$dir")"
  [ -f "${dir}molecule.yml" ] || continue
  [ -n "${MOLECULE_SCENARIOS:-}" ] && [[ " ${MOLECULE_SCENARIOS} " != *" ${s} "* ]] && continue
  [ -n "${MOLECULE_SKIP:-}" ] && [[ " ${MOLECULE_SKIP} " == *" ${s} "* ]] && continue
  missing=""
  if [ -f "${dir}requires.env" ]; then
    while read -r var reason; do
      [ -z "$var" ] || [[ "$var" == \#* ]] && continue
      [ -n "${!var:-}" ] || missing+="${var} (${reason}) "
    done < "${dir}requires.env"
  fi
  if [ -n "$missing" ]; then
    echo "SKIPPED molecule scenario ${s}: needs ${missing}"
    skipped=$((skipped + 1)); continue
  fi
  if [[ " ${MOLECULE_PARALLEL} " == *" ${s} "* ]]; then  # started now in the background, collected below
    mkdir -p .build/reports
    ( start=$(date +%s); rc=0
      MOLECULE_GLOB="molecule/${s}/molecule.yml" molecule test -s "$s" > ".build/reports/molecule-${s}.log" 2>&1 || rc=$?
      echo "${rc} $(( $(date +%s) - start ))" > ".build/reports/molecule-${s}.rc" ) &
    background+=("$s"); continue
  fi
  start=$(date +%s)
  if MOLECULE_GLOB="molecule/${s}/molecule.yml" molecule test -s "$s"; then ran=$((ran + 1)); r=ok; else failed+=("$s"); r=FAILED; fi
  echo "molecule scenario ${s}: ${r} in $(( $(date +%s) - start ))s"
done
wait
for s in "${background[@]}"; do
  echo "---- molecule scenario ${s} (ran in parallel; its output) ----"
  cat ".build/reports/molecule-${s}.log"
  read -r rc secs < ".build/reports/molecule-${s}.rc" || { rc=1; secs=0; }
  if [ "$rc" -eq 0 ]; then ran=$((ran + 1)); r=ok; else failed+=("$s"); r=FAILED; fi
  echo "molecule scenario ${s}: ${r} in ${secs}s (in parallel with: ${background[*]})"
done
echo "molecule: $((ran)) passed, ${#failed[@]} failed, ${skipped} skipped"
mkdir -p .build/reports && echo "${ran} ${#failed[@]} ${skipped}" > ".build/reports/molecule${MOLECULE_COUNTS:+-${MOLECULE_COUNTS}}.counts"
[ "${#failed[@]}" -eq 0 ] && [ "$ran" -gt 0 ]
