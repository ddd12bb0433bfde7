#!/usr/bin/env bash
# Run the test suite on every Python from 3.11 to 3.13 that this machine has,
# each in its own venv (.venv-3.11, .venv-3.12, .venv-3.13), one after the other.
# An absent interpreter is skipped with a message; the run fails if any present
# one fails, or if none is present at all. Extra arguments go to pytest.
#
# Interpreters are looked for as pythonX.Y on PATH (when it actually runs: a
# pyenv shim for a version that is not selected does not), then in pyenv's
# versions directory (the newest X.Y.*), then in /usr/local/bin and /usr/bin.
# PYTHONS="3.12 3.13" picks a subset.
set -uo pipefail
cd "$(dirname "$0")/.."

versions=${PYTHONS:-"3.11 3.12 3.13"}
pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}

find_python() {
    local v=$1 candidate
    if candidate=$(command -v "python$v") && "$candidate" -c 'import sys' >/dev/null 2>&1; then
        echo "$candidate"; return 0
    fi
    for candidate in $(ls -d "$pyenv_root"/versions/"$v".* 2>/dev/null | sort -V -r); do
        if [ -x "$candidate/bin/python$v" ] && "$candidate/bin/python$v" -c 'import sys' >/dev/null 2>&1; then
            echo "$candidate/bin/python$v"; return 0
        fi
    done
    for candidate in /usr/local/bin/python"$v" /usr/bin/python"$v"; do
        if [ -x "$candidate" ] && "$candidate" -c 'import sys' >/dev/null 2>&1; then
            echo "$candidate"; return 0
        fi
    done
    return 1
}

ran=() failed=() skipped=()
for v in $versions; do
    if ! python=$(find_python "$v"); then
        echo "== Python $v: SKIPPED (no python$v on PATH, in $pyenv_root/versions or /usr/bin)"
        skipped+=("$v"); continue
    fi
    echo "== Python $v: $python ($("$python" -c 'import platform; print(platform.python_version())'))"
    start=$(date +%s)
    if ! make --no-print-directory install VENV=".venv-$v" PYTHON="$python"; then
        echo "== Python $v: FAILED to install"; failed+=("$v"); continue
    fi
    ".venv-$v/bin/python" -m pytest -q -p no:cacheprovider "$@"
    rc=$?
    echo "== Python $v: pytest exit $rc in $(( $(date +%s) - start ))s"
    ran+=("$v")
    [ "$rc" -eq 0 ] || failed+=("$v")
done

echo "== ran on: ${ran[*]:-none}; skipped: ${skipped[*]:-none}; failed: ${failed[*]:-none}"
[ "${#ran[@]}" -gt 0 ] || { echo "== no Python 3.11-3.13 found"; exit 1; }
[ "${#failed[@]}" -eq 0 ]
