#!/usr/bin/env bash
# CI entry point of the Python client: makes a virtual environment, installs the package with
# its test dependencies, checks that the committed stubs are current, and runs the test suite
# against a real local cluster started from $QUIVER_BIN (default .build/debug/quiver, then
# .build/release/quiver). Usage: [QUIVER_BIN=PATH] clients/python/scripts/test.sh [PYTEST_ARGS…]
#   QUIVER_CLIENT_VENV   the environment (default .venv-python-client in the repository)
#   QUIVER_TEXT_TESTS=1  also install the text-search extra (all-MiniLM-L6-v2 and PyTorch, ~6 GB)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
venv="${QUIVER_CLIENT_VENV:-$root/.venv-python-client}"
"$root/scripts/make-venv.sh" "$venv"
extras="test"
[ "${QUIVER_TEXT_TESTS:-0}" = 1 ] && extras="test,text"
"$venv/bin/pip" install --quiet --disable-pip-version-check -e "$root/clients/python[$extras]"

"$here/check-generated.sh"

if [ -n "${QUIVER_BIN:-}" ]; then
    QUIVER_BIN=$(cd "$(dirname "$QUIVER_BIN")" && pwd)/$(basename "$QUIVER_BIN")
    export QUIVER_BIN
fi
cd "$root/clients/python"
"$venv/bin/python" -m pytest -p no:cacheprovider -rs "$@" tests
