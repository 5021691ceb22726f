#!/usr/bin/env bash
# Runs every molecule scenario with its full test sequence. A scenario that needs something this machine
# may not have lists the environment variables in molecule/<scenario>/requires.env; when one is unset
# the scenario is reported as skipped with the reason, never silently passed.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "${REPO_ROOT}"
ran=0; skipped=0; failed=()
for dir in molecule/*/; do
  s="$(basename "$dir")"
  [ -f "${dir}molecule.yml" ] || continue
  [ -n "${MOLECULE_SCENARIOS:-}" ] && [[ " ${MOLECULE_SCENARIOS} " != *" ${s} "* ]] && continue
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
  start=$(date +%s)
  if molecule test -s "$s"; then ran=$((ran + 1)); r=ok; else failed+=("$s"); r=FAILED; fi
  echo "molecule scenario ${s}: ${r} in $(( $(date +%s) - start ))s"
done
echo "molecule: $((ran)) passed, ${#failed[@]} failed, ${skipped} skipped"
mkdir -p .build/reports && echo "${ran} ${#failed[@]} ${skipped}" > .build/reports/molecule.counts
[ "${#failed[@]}" -eq 0 ] && [ "$ran" -gt 0 ]
