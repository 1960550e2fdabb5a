#!/usr/bin/env bash
# The main job end to end: start a local cluster (coordinator + 2 workers), create a collection,
# load the sample data (training on it first), and show the nearest neighbours of a few queries
# with their sentences. Usage: cluster/demo.sh [DATA_DIR]   (default ../shared/data/pkgdesc)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data=$(cd "${1:-$root/../shared/data/pkgdesc}" && pwd)
quiver="${QUIVER_BIN:-$root/.build/release/quiver}"
if [ ! -x "$quiver" ]; then
    echo "building quiver (release; the first build takes several minutes) …"
    (cd "$root" && swift build -c release --product quiver)
fi
dir="$root/.cluster"
if [ ! -f "$dir/coordinator.pid" ] || ! kill -0 "$(cat "$dir/coordinator.pid")" 2>/dev/null; then
    QUIVER_BIN="$quiver" "$root/cluster/start.sh" --workers 2 --dir "$dir" --import-root "$data"
fi
export QUIVER_COORDINATOR=$(cat "$dir/coordinator.addr")
dimension=$(python3 -c "import sys; h=open(sys.argv[1],'rb').read(256).decode('latin1'); import re; print(re.search(r\"'shape': \(\d+, (\d+)\)\", h).group(1))" "$data/base.npy")
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
