#!/usr/bin/env bash
# Starts a local Quiver cluster on loopback: one coordinator and N workers, all data under one
# folder. Usage: cluster/start.sh [--workers N] [--dir DIR] [--port PORT] [--import-root DIR]
#   --workers N         shard workers (default 2)
#   --dir DIR           data, logs and pid files (default .cluster in the repository)
#   --port PORT         coordinator port; workers take the next N ports (default 7700)
#   --import-root DIR   passed to the coordinator: server-side loads read files only below DIR
# The binary is .build/release/quiver (built if missing) or $QUIVER_BIN.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
workers=2
dir="$root/.cluster"
port=7700
import_root=""
usage="usage: cluster/start.sh [--workers N] [--dir DIR] [--port PORT] [--import-root DIR]"
while [ $# -gt 0 ]; do
    case "$1" in
        --workers) workers="$2"; shift 2 ;;
        --dir) dir="$2"; shift 2 ;;
        --port) port="$2"; shift 2 ;;
        --import-root) import_root="$2"; shift 2 ;;
        *) echo "$usage" >&2; exit 2 ;;
    esac
done
binary="${QUIVER_BIN:-$root/.build/release/quiver}"
if [ ! -x "$binary" ]; then
    echo "building quiver (release; the first build takes several minutes) …"
    (cd "$root" && swift build -c release --product quiver)
fi
mkdir -p "$dir/logs"
if [ -f "$dir/coordinator.pid" ] && kill -0 "$(cat "$dir/coordinator.pid")" 2>/dev/null; then
    echo "a cluster is already running from $dir (coordinator $(cat "$dir/coordinator.addr")); cluster/stop.sh stops it" >&2
    exit 1
fi

# Waits until a process has printed its "listening on" line, or fails with its log.
wait_listening() {
    local name=$1 pid=$2 log=$3
    for _ in $(seq 1 300); do
        if grep -q "listening on" "$log" 2>/dev/null; then return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "$name exited during start-up; its log:" >&2; cat "$log" >&2; return 1
        fi
        sleep 0.1
    done
    echo "$name did not start within 30 s; its log is $log" >&2
    return 1
}

addresses=()
for i in $(seq 1 "$workers"); do
    address="127.0.0.1:$((port + i))"
    log="$dir/logs/worker-$i.log"
    "$binary" worker --listen "$address" --search-listen 127.0.0.1:0 --data-dir "$dir/worker-$i" >"$log" 2>&1 &
    echo $! >"$dir/worker-$i.pid"
    wait_listening "worker $i" $! "$log"
    addresses+=("$address")
done
worker_list=$(IFS=,; echo "${addresses[*]}")
coordinator_flags=()
if [ -n "$import_root" ]; then
    [ -d "$import_root" ] || { echo "--import-root $import_root is not a folder" >&2; exit 2; }
    coordinator_flags+=(--import-root "$(cd "$import_root" && pwd)")
fi
log="$dir/logs/coordinator.log"
"$binary" coordinator --listen "127.0.0.1:$port" --search-listen 127.0.0.1:0 --data-dir "$dir/coordinator" --workers "$worker_list" \
    "${coordinator_flags[@]}" >"$log" 2>&1 &
echo $! >"$dir/coordinator.pid"
wait_listening coordinator $! "$log"
echo "127.0.0.1:$port" >"$dir/coordinator.addr"
# The framed search port the Swift client library and the CLI use for searches.
search_address=$(sed -n 's/^quiver coordinator framed search port on //p' "$log" | head -1)
echo "$search_address" >"$dir/search.addr"
if [ -n "$import_root" ]; then (cd "$import_root" && pwd) >"$dir/import-root"; else rm -f "$dir/import-root"; fi
echo "cluster up: coordinator 127.0.0.1:$port, workers $worker_list (data and logs in $dir)"
echo "use it with: export QUIVER_COORDINATOR=127.0.0.1:$port QUIVER_SEARCH_ADDRESS=$search_address; stop it with: cluster/stop.sh${dir:+ --dir $dir}"
