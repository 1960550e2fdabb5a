#!/usr/bin/env bash
# VectorDBBench against Quiver: installs vectordb-bench (pinned) and the Python client into a
# virtual environment, then runs VectorDBBench's performance case on a custom dataset made
# from DATA (default data/sample) against a local cluster started from $QUIVER_BIN.
# Usage: QUIVER_BIN=.build/release/quiver clients/vectordbbench/run.sh [ARGS of quiver_vdbbench.run]
#   e.g. … run.sh --data ../shared/data/pkgdesc --search default,32:200 --out bench/results/x.json
#   QUIVER_VDBBENCH_VENV  the environment (default .venv-vdbbench in the repository)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv="${QUIVER_VDBBENCH_VENV:-$root/.venv-vdbbench}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import vectordb_bench, quiver" 2>/dev/null; then
    "$root/scripts/make-venv.sh" "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "vectordb-bench==2.0.0" -e "$root/clients/python"
fi
# VectorDBBench writes its log to $LOG_FILE (default: logs/ in the working directory).
export LOG_FILE="${LOG_FILE:-$root/bench/tmp/vectordbbench/vectordb_bench.log}"
PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" exec "$venv/bin/python" -m quiver_vdbbench.run "$@"
