#!/usr/bin/env bash
# Build the sdist, unpack it in a temporary directory, install it there into a
# fresh venv (not editable: the tests then import the packaged code) and run the
# whole test suite from the unpacked tree. Usage: scripts/check_sdist.sh [PYTHON]
set -euo pipefail
cd "$(dirname "$0")/.."
python=${1:-python3}
work=$(mktemp -d /tmp/mssdist.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --upgrade pip build
"$work/venv/bin/python" -m build --sdist --outdir "$work/dist" . >/dev/null
tar -xzf "$work"/dist/*.tar.gz -C "$work"
src=$(echo "$work"/mediasage_cache-*/)
cd "$src"
"$work/venv/bin/python" -m pip install --quiet "$(pwd)[test]"
echo "check_sdist: running the suite from $src"
# The tests must import the installed (packaged) code, not the unpacked sources:
# the packages live in daemon/ and client/ here, so nothing named mediasaged shadows it.
"$work/venv/bin/python" -m pytest -q -p no:cacheprovider "${@:2}"
