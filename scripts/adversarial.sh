#!/usr/bin/env bash
# The adversarial suite (tests/adversarial, docs/adversarial.md): brings up a private lab (gateway adv, state in
# /var/lib/agentsec-adv, subnet 172.30.77.0/24, the lab's images agentsec/*), hardens two of its sandboxes, runs the hostile
# agent's tests against it, takes the lab down again and prints the time of each step. Exit code: pytest's (or the
# first failing step's). AGENTSEC_ADV_KEEP=1 leaves the lab up for a re-run (then AGENTSEC_ADV_LAB=up skips bring-up).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "${REPO_ROOT}"
if [ -n "${CI:-}" ]; then export PY_COLORS=0 ANSIBLE_FORCE_COLOR=0 NO_COLOR=1 ANSIBLE_NOCOLOR=1; fi
stage setup ensure_venv || { stage_summary; exit 1; }
stage docker bash -c 'source scripts/lib.sh; ensure_docker; ensure_base_image' || { stage_summary; exit 1; }
export AGENTSEC_UPSTREAM_DIR="${AGENTSEC_UPSTREAM_DIR:-$(cd "${REPO_ROOT}/.." && pwd)/shared/upstream}"
[ -d "${AGENTSEC_UPSTREAM_DIR}" ] || [ ! -d /work/shared/upstream ] || export AGENTSEC_UPSTREAM_DIR=/work/shared/upstream
mkdir -p .build/reports
rm -f .build/reports/adversarial.xml
VARS="/tmp/${AGENTSEC_ADV_PREFIX:-agentsec-adv}-adv-vars.json"
# the same variables the suite's fixture uses (tests/adversarial/conftest.py lab_vars)
write_vars() {
  (cd tests/adversarial && python -c "import json,sys; from conftest import lab_vars; json.dump(lab_vars(sys.argv[1]), open(sys.argv[2], 'w'))" "$1" "${VARS}")
}
play() { write_vars "$2" && ansible-playbook -i inventories/lab/hosts.yml "playbooks/$1" -e "@${VARS}" >".build/reports/adversarial-$1-$2.log" 2>&1 \
           || { tail -n 30 ".build/reports/adversarial-$1-$2.log"; return 1; }; }
rc=0
if [ "${AGENTSEC_ADV_LAB:-}" != up ]; then
  stage lab-up play lab.yml present || rc=$?
  [ "$rc" = 0 ] && { stage harden play harden.yml present || rc=$?; }
fi
if [ "$rc" = 0 ]; then
  AGENTSEC_ADV_LAB=up stage adversarial pytest -q tests/adversarial -p no:cacheprovider --junitxml=.build/reports/adversarial.xml || rc=$?
fi
if [ "${AGENTSEC_ADV_LAB:-}" != up ] && [ "${AGENTSEC_ADV_KEEP:-}" != 1 ]; then
  stage lab-down play lab.yml absent || rc=$((rc ? rc : 1))
fi
left="$(docker ps -aq --filter "label=openshell.ai/gateway=${AGENTSEC_ADV_GATEWAY:-adv}"; docker ps -aq --filter "label=standin.openshell/cluster=${AGENTSEC_ADV_GATEWAY:-adv}")"
if [ "${AGENTSEC_ADV_KEEP:-}" != 1 ] && [ "${AGENTSEC_ADV_LAB:-}" != up ] && [ -n "${left}" ]; then
  echo "containers of gateway ${AGENTSEC_ADV_GATEWAY:-adv} left behind: ${left}"; rc=$((rc ? rc : 1))
fi
stage_summary
exit "$rc"
