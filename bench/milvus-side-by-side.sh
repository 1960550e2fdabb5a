#!/usr/bin/env bash
# Quiver's cluster beside the real Milvus 2.3.5 server on the same data, one after the other in
# one run: ../shared/tools/milvus_peer.py (embedded Milvus + knowhere SCANN and HNSW, pymilvus,
# loopback only), then `quiver bench-cluster` (1 worker, the Swift client's framed path and the
# gRPC path) at each NPROBE:REORDER setting; then, for recall@10 ≥ 0.90 and ≥ 0.95, the best QPS
# of each side at batch 1 (concurrency 1 and 16) and batch 100, and their ratios.
# Usage: bench/milvus-side-by-side.sh DATA_DIR OUT_DIR [SETTINGS]
#   SETTINGS  space-separated NPROBE:REORDER pairs (default "8:40 16:40 24:40")
# Needs a venv made by ../shared/tools/setup-milvus-peer.sh ($MILVUS_VENV, default .venv-milvus)
# and the release binary (.build/release/quiver or $QUIVER_BIN).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data=$(cd "$1" && pwd)
out=$(mkdir -p "$2" && cd "$2" && pwd)
settings="${3:-8:40 16:40 24:40}"
venv="${MILVUS_VENV:-$root/.venv-milvus}"
quiver="${QUIVER_BIN:-$root/.build/release/quiver}"
peer="$root/../shared/tools/milvus_peer.py"
echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
milvus_dir=$(mktemp -d /tmp/quiver-milvus.XXXXXX)
trap 'rm -rf "$milvus_dir"' EXIT
"$venv/bin/python" "$peer" --data "$data" --base-dir "$milvus_dir" --index SCANN,HNSW --concurrency 1,16 --batch 100 \
    --scann-nprobe 16,32,64 --scann-reorder-k 40,100 --hnsw-ef 32,64,128 --json "$out/milvus.json" > "$out/milvus.txt" 2>&1
for setting in $settings; do
    nprobe=${setting%%:*}
    reorder=${setting##*:}
    "$quiver" bench-cluster --data "$data" --workers 1 --concurrency 1,16 --batch 1,100 --client-transport framed,grpc \
        --nprobe "$nprobe" --reorder "$reorder" --seconds 5 --json "$out/quiver-$nprobe-$reorder.json" > "$out/quiver-$nprobe-$reorder.txt" 2>&1
done
python3 - "$out" <<'EOF'
import glob, json, os, sys
out = sys.argv[1]
milvus = json.load(open(os.path.join(out, "milvus.json")))["results"]
quiver = []
for path in sorted(glob.glob(os.path.join(out, "quiver-*.json"))):
    setting = os.path.basename(path)[len("quiver-"):-len(".json")]
    for row in json.load(open(path)):
        if row["mode"].startswith("cluster"):
            quiver.append(dict(row, setting=setting))

def milvus_qps(row, mode):
    if mode == "b1c1": return row["b1"].get("1", {}).get("qps")
    if mode == "b1c16": return row["b1"].get("16", {}).get("qps")
    return row["batch"].get("qps")

def quiver_match(row, mode, client):
    batch, concurrency = {"b1c1": (1, 1), "b1c16": (1, 16), "b100c1": (100, 1)}[mode]
    return row["batch"] == batch and row["concurrency"] == concurrency and f"client={client}" in row["mode"]

print("| recall@10 ≥ | mode | Milvus best (index, params, recall) | Quiver framed client (nprobe:reorder, recall) | ratio | Quiver gRPC client | ratio |")
print("|---|---|---|---|---|---|---|")
for threshold in (0.90, 0.95):
    for mode in ("b1c1", "b1c16", "b100c1"):
        peers = [r for r in milvus if r.get("recall", 0) >= threshold and milvus_qps(r, mode)]
        best = max(peers, key=lambda r: milvus_qps(r, mode)) if peers else None
        cells = []
        for client in ("framed", "grpc"):
            ours = [r for r in quiver if r["recall"] >= threshold and quiver_match(r, mode, client)]
            mine = max(ours, key=lambda r: r["qps"]) if ours else None
            if mine:
                ratio = f"{mine['qps'] / milvus_qps(best, mode):.1f}×" if best else "—"
                cells.append((f"{mine['qps']:,.0f} QPS ({mine['setting'].replace('-', ':')}, {mine['recall']:.3f})", ratio))
            else:
                cells.append(("not reached", "—"))
        theirs = f"{milvus_qps(best, mode):,.0f} QPS ({best['index']} {best['search_params']}, {best['recall']:.3f})" if best else "not reached"
        print(f"| {threshold:.2f} | {mode} | {theirs} | {cells[0][0]} | {cells[0][1]} | {cells[1][0]} | {cells[1][1]} |")
EOF
