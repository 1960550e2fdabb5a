#!/usr/bin/env bash
# The main job end to end: start a local cluster (coordinator + 2 workers), create a collection,
# load the sample data (training on it first), and show the nearest neighbours of a few queries
# with their sentences. Usage: cluster/demo.sh [DATA_DIR]
# DATA_DIR holds base.npy and, optionally, base.tsv, queries.npy, queries.tsv and groundtruth.npy;
# the default is data/sample in the repository (20,000 package descriptions, see its README).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data_arg="${1:-$root/data/sample}"
if [ ! -f "$data_arg/base.npy" ]; then
    echo "error: $data_arg/base.npy not found (usage: cluster/demo.sh [DATA_DIR])" >&2
    exit 2
fi
data=$(cd "$data_arg" && pwd)
quiver="${QUIVER_BIN:-$root/.build/release/quiver}"
if [ ! -x "$quiver" ]; then
    echo "building quiver (release; the first build takes several minutes) …"
    (cd "$root" && swift build -c release --product quiver)
fi
dir="$root/.cluster"
if [ ! -f "$dir/coordinator.pid" ] || ! kill -0 "$(cat "$dir/coordinator.pid")" 2>/dev/null; then
    # Server-side loads read only below the coordinator's import root: the data folder.
    QUIVER_BIN="$quiver" "$root/cluster/start.sh" --workers 2 --dir "$dir" --import-root "$data"
elif [ -f "$dir/import-root" ] && [ "$(cat "$dir/import-root")" != "$data" ]; then
    echo "error: the running cluster imports only below $(cat "$dir/import-root"), not $data; cluster/stop.sh first" >&2
    exit 1
fi
export QUIVER_COORDINATOR=$(cat "$dir/coordinator.addr")
# Searches over the coordinator's framed search port (the Swift client's fast path), when it has one.
if [ -s "$dir/search.addr" ]; then export QUIVER_SEARCH_ADDRESS=$(cat "$dir/search.addr"); fi
# The dimension is the second number of the .npy header's shape, e.g. "'shape': (20000, 384)".
dimension=$(head -c 256 "$data/base.npy" | tr -d '\000' | grep -ao "'shape': ([0-9]*, [0-9]*)" | sed 's/.*, \([0-9]*\))/\1/')
if [ -z "$dimension" ]; then echo "error: $data/base.npy is not a 2-D .npy file" >&2; exit 2; fi
"$quiver" drop demo --if-exists >/dev/null
"$quiver" create demo --dimension "$dimension" --metric cosine
"$quiver" load demo --input "$data/base.npy"
text=()
[ -f "$data/base.tsv" ] && text+=(--text "$data/base.tsv")
[ -f "$data/queries.tsv" ] && text+=(--query-text "$data/queries.tsv")
[ -f "$data/groundtruth.npy" ] && text+=(--truth "$data/groundtruth.npy")
"$quiver" query demo --input "$data/queries.npy" --k 5 --limit 1000 --show 3 --output "$dir/demo-ids.npy" "${text[@]}"
"$quiver" status
echo "the cluster keeps running (collection 'demo'); cluster/stop.sh stops it"
