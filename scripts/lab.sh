#!/usr/bin/env bash
# `make lab`: the main job on the local lab. Sets everything up (toolchain, Docker, base image), (re)starts a lab
# sandbox with the OpenShell v0.0.26 profile, then runs playbooks/harden.yml: verify (showing the gaps), the
# hardening role, verify again (failing if any layer does not pass). Prints both tables side by side.
# Reports (JSON, JUnit, SARIF, text): reports/lab/{before,after}/.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "${REPO_ROOT}"
# LINE=openshell_host or LINE=openshell_0_1 shows one of the current lines instead (scripts/lab_line.py: the same
# harden.yml against a stand-in host of that line); LINE=openshell_k3s or none is the lab below.
stage setup ensure_venv
stage docker bash -c 'source scripts/lib.sh; ensure_docker; ensure_base_image; ensure_host_packages nftables'
case "${LINE:-openshell_k3s}" in
  openshell_k3s) ;;
  *) exec python scripts/lab_line.py "${LINE}" ;;
esac

inv=(-i inventories/lab/hosts.yml)
reports="${REPO_ROOT}/reports/lab"
rm -rf "${reports}"
rc=0
stage lab-up ansible-playbook "${inv[@]}" playbooks/lab.yml || { stage_summary; exit 1; }
stage verify-harden-verify ansible-playbook "${inv[@]}" playbooks/harden.yml -e "nemoclaw_harden_report_dir=${reports}" || rc=$?
stage_summary
python scripts/side_by_side.py "${reports}/before/verify.json" "${reports}/after/verify.json" || rc=1
echo "reports: ${reports}/before and ${reports}/after (verify.json, verify.junit.xml, verify.sarif, verify.txt)"
exit "$rc"
