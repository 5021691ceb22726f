#!/usr/bin/env bash
# `make lab`: the main job on the local lab. Sets everything up (toolchain, Docker, base image), starts a lab
# sandbox with the OpenShell v0.0.26 profile, verifies it (showing the gaps), hardens it with the collection's
# hardening role, verifies again and prints both tables side by side. Reports land in reports/lab/.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "${REPO_ROOT}"
stage setup ensure_venv
stage docker bash -c 'source scripts/lib.sh; ensure_docker; ensure_base_image'

inv=(-i inventories/lab/hosts.yml)
before="${REPO_ROOT}/reports/lab/before"
after="${REPO_ROOT}/reports/lab/after"
rm -rf "${before}" "${after}"

stage lab-up ansible-playbook "${inv[@]}" playbooks/lab.yml
stage verify-before ansible-playbook "${inv[@]}" playbooks/verify.yml \
  -e "nemoclaw_verify_report_dir=${before}" -e verify_fail_on=none
stage harden ansible-playbook "${inv[@]}" playbooks/harden.yml
stage verify-after ansible-playbook "${inv[@]}" playbooks/verify.yml \
  -e "nemoclaw_verify_report_dir=${after}" -e verify_fail_on=any
stage_summary
python scripts/side_by_side.py "${before}" "${after}"
