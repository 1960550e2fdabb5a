#!/usr/bin/env bash
# How close the calibrated search defaults land to their recall target, and what they cost
# beside hand-tuned settings, through a real local cluster. Usage:
#   bench/calibrated-defaults.sh DATA_DIR METRIC [WORKERS] [SWEEP_NPROBE] [SWEEP_REORDER]
# DATA_DIR holds base*.npy, queries.npy and groundtruth.npy (shared/data/pkgdesc, or what
# shared/tools/synth.py writes). It starts a cluster under a temporary folder (loopback, its own
# ports), creates a collection with only --dimension and --metric, loads the data server-side
# (training on a sample first), prints the calibrated settings, then runs the queries with no
# tuning flags, with --recall 0.90 / 0.95 / 0.99, and with every nprobe × reorder of the sweep,
# each as one batch of all queries (or of $QUERY_BATCH queries at a time), three times (the best
# QPS is kept). The binary is .build/release/quiver or $QUIVER_BIN.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data=$(cd "$1" && pwd)
metric="$2"
workers="${3:-2}"
sweep_nprobe="${4:-4 8 12 16 24 32 48 64}"
sweep_reorder="${5:-20 40 80 160 320}"
quiver="${QUIVER_BIN:-$root/.build/release/quiver}"
dir=$(mktemp -d /tmp/quiver-calibration.XXXXXX)
port=$((20000 + RANDOM % 20000))
trap 'QUIVER_BIN="$quiver" "$root/cluster/stop.sh" --dir "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
QUIVER_BIN="$quiver" "$root/cluster/start.sh" --workers "$workers" --dir "$dir" --port "$port" --import-root "$data" >/dev/null
export QUIVER_COORDINATOR="127.0.0.1:$port"
base=$(ls "$data"/base*.npy | head -1)
dimension=$(head -c 256 "$base" | tr -d '\000' | grep -ao "'shape': ([0-9]*, [0-9]*)" | sed 's/.*, \([0-9]*\))/\1/')
echo "# data $data, metric $metric, $workers workers, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), $("$quiver" --version 2>/dev/null || echo quiver)"
# CREATE_FLAGS adds options to the create (e.g. CREATE_FLAGS="--raw none").
"$quiver" create bench --dimension "$dimension" --metric "$metric" ${CREATE_FLAGS:-} >/dev/null
start=$(date +%s.%N)
"$quiver" load bench --input "$data/base*.npy" 2>&1 | grep -v "^loading" | tail -2
echo "# train + load: $(python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 1))" "$start" "$(date +%s.%N)") s"
"$quiver" status | sed -n '/^collections:/,/^every\|^list replicas/p' | grep -v "^every\|^list replicas"
grep -h "calibrated bench" "$dir"/logs/coordinator*.log | sed 's/.*calibrated bench/# calibrated bench/' || true
rows=$("$quiver" status | sed -n 's/.* vectors \([0-9]*\),.*/\1/p' | head -1)
for pidfile in "$dir"/worker-*.pid; do
    name=$(basename "$pidfile" .pid)
    rss=$(( $(awk '/VmRSS/ {print $2}' "/proc/$(cat "$pidfile")/status") * 1024 ))
    disk=$(du -sb "$dir/$name" | cut -f1)
    echo "# $name: RSS $rss bytes, data folder $disk bytes"
    total_rss=$(( ${total_rss:-0} + rss )); total_disk=$(( ${total_disk:-0} + disk ))
done
echo "# workers together: $(( total_rss / rows )) bytes of RSS and $(( total_disk / rows )) bytes on disk per vector ($rows vectors)"
run() {
    local label="$1"; shift
    local best=0 recall=""
    for _ in 1 2 3; do
        local out
        out=$("$quiver" query bench --input "$data/queries.npy" --truth "$data/groundtruth.npy" --k 10 --show 0 \
              ${QUERY_BATCH:+--batch "$QUERY_BATCH"} "$@")
        local qps
        qps=$(echo "$out" | sed -n 's/.*(\([0-9]*\) queries\/s).*/\1/p')
        recall=$(echo "$out" | sed -n 's/^recall@10 \([0-9.]*\)/\1/p')
        [ "$qps" -gt "$best" ] && best=$qps
    done
    printf '%-28s recall@10 %s  %6d QPS\n' "$label" "$recall" "$best"
}
run "default (no flags)"
for target in 0.90 0.95 0.99; do run "--recall $target" --recall "$target"; done
for nprobe in $sweep_nprobe; do
    for reorder in $sweep_reorder; do run "nprobe $nprobe reorder $reorder" --nprobe "$nprobe" --reorder "$reorder"; done
done
