#!/usr/bin/env bash
# `ansible-test sanity` for the collection, offline-capable, plus ruff.
# ansible-test wants the collection at .../ansible_collections/agentsec/nemoclaw, so the tracked and
# untracked-but-not-ignored files are staged under .build/sanity. ansible-test's pip bootstrap is downloaded
# from a host outside PyPI; scripts/get-pip-offline.py stands in for it (ensurepip + pip from PyPI).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "${REPO_ROOT}"
rc=0

ruff_paths=(); for p in plugins tests benchmarks scripts; do [ -d "$p" ] && ruff_paths+=("$p"); done
ruff check "${ruff_paths[@]}" || rc=1

pip_version="$(python - <<'PY'
import re, pathlib, ansible_test
src = pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
print(re.search(r"pip='([0-9.]+)'", src.read_text()).group(1))
PY
)"
cache="${HOME}/.ansible/test/cache"
mkdir -p "${cache}"
[ -f "${cache}/get_pip_${pip_version//./_}.py" ] || cp scripts/get-pip-offline.py "${cache}/get_pip_${pip_version//./_}.py"

stage_dir="${REPO_ROOT}/.build/sanity/ansible_collections/agentsec/nemoclaw"
rm -rf "${stage_dir}"
mkdir -p "${stage_dir}"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
  [ -e "$f" ] || continue
  mkdir -p "${stage_dir}/$(dirname "$f")"
  cp -P "$f" "${stage_dir}/$f"
done
# ansible-test lists files with git when a .git exists; give the stage a repository of its own.
( cd "${stage_dir}" && git init -q && git add -A >/dev/null 2>&1 ) || true

( cd "${stage_dir}" && ansible-test sanity --python 3.11 --venv --color no ) \
  > "${REPO_ROOT}/.build/sanity.log" 2>&1 || { grep -E "^(ERROR|FATAL)|: .*(error|E[0-9]+)" "${REPO_ROOT}/.build/sanity.log" | head -80; rc=1; }
grep -E '^Running sanity test' "${REPO_ROOT}/.build/sanity.log" | sed 's/^/  /' | tr '\n' ';' | sed 's/;  /; /g'; echo
[ "$rc" = 0 ] && echo "sanity: ruff and ansible-test sanity passed (log: .build/sanity.log)"
exit $rc
