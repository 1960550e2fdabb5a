#!/usr/bin/env bash
# Stops the local cluster started by cluster/start.sh (data stays; start.sh serves it again).
# Usage: cluster/stop.sh [--dir DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/.cluster"
if [ "${1:-}" = "--dir" ]; then dir="$2"; fi
stopped=0
for pidfile in "$dir"/coordinator.pid "$dir"/worker-*.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
        stopped=$((stopped + 1))
    fi
    rm -f "$pidfile"
done
rm -f "$dir/coordinator.addr" "$dir/search.addr" "$dir/import-root"
echo "stopped $stopped process(es) from $dir"
