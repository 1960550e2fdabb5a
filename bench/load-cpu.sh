#!/usr/bin/env bash
# CPU per process during server-side loads: starts a local cluster of WORKERS workers (loopback,
# its own ports, a temporary folder), trains a collection on DATA (default ../shared/data/pkgdesc)
# with a first load, then loads base.npy three more times and prints each process's CPU seconds.
# Usage: bench/load-cpu.sh WORKERS [DATA]. The binary is .build/release/quiver or $QUIVER_BIN.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd); quiver=${QUIVER_BIN:-$root/.build/release/quiver}; data=$(cd "${2:-$root/../shared/data/pkgdesc}" && pwd)
dir=$(mktemp -d /tmp/qload.XXXXXX); port=$((20000 + RANDOM % 20000))
trap 'QUIVER_BIN="$quiver" "$root/cluster/stop.sh" --dir "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
QUIVER_BIN="$quiver" "$root/cluster/start.sh" --workers "$1" --dir "$dir" --port "$port" --import-root "$data" >/dev/null
export QUIVER_COORDINATOR="127.0.0.1:$port"
shape=$(head -c 256 "$data/base.npy" | tr -d '\000' | grep -ao "'shape': ([0-9]*, [0-9]*)")
rows=$(echo "$shape" | sed 's/.*(\([0-9]*\), .*/\1/'); dimension=$(echo "$shape" | sed 's/.*, \([0-9]*\))/\1/')
"$quiver" create bench --dimension "$dimension" --metric ip >/dev/null
"$quiver" load bench --input "$data/base.npy" >/dev/null 2>&1
cpu() { for f in "$dir"/*.pid; do p=$(cat $f); echo "$(basename $f .pid)=$(awk '{print $14+$15}' /proc/$p/stat)"; done; }
before=$(cpu); s=$(date +%s.%N)
for i in 1 2 3; do "$quiver" load bench --input "$data/base.npy" >/dev/null 2>&1; done
e=$(date +%s.%N); after=$(cpu)
python3 - "$before" "$after" "$s" "$e" "$rows" <<'PY'
import sys
b=dict(x.split('=') for x in sys.argv[1].split()); a=dict(x.split('=') for x in sys.argv[2].split())
wall=float(sys.argv[4])-float(sys.argv[3]); n=3*int(sys.argv[5]); tot=0
for k in sorted(a):
    c=(int(a[k])-int(b[k]))/100; tot+=c; print(f"{k}: {c:.2f} s CPU = {c/n*1e6:.1f} us per vector")
print(f"total {tot:.2f} s CPU for {n:,} vectors = {tot/n*1e6:.1f} us per vector; wall {wall:.1f} s incl. CLI polling (500 ms)")
PY
