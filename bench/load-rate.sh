#!/usr/bin/env bash
# Load rate at steady state: starts a local cluster of WORKERS workers (loopback, its own ports,
# a temporary folder), trains a collection on DATA's base.npy (default ../shared/data/pkgdesc)
# with a first load, then loads COPIES copies of it (default 10, hard links in a temporary
# folder, so 1,000,000 rows for pkgdesc) with one server-side load and prints the rate and each
# process's CPU. The CLI polls the job every 500 ms, which the wall time includes.
# Usage: bench/load-rate.sh WORKERS [COPIES] [DATA]. The binary is .build/release/quiver or $QUIVER_BIN.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd); quiver=${QUIVER_BIN:-$root/.build/release/quiver}
copies=${2:-10}; data=$(cd "${3:-$root/../shared/data/pkgdesc}" && pwd)
dir=$(mktemp -d /tmp/qrate.XXXXXX); port=$((20000 + RANDOM % 20000))
trap 'QUIVER_BIN="$quiver" "$root/cluster/stop.sh" --dir "$dir/cluster" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
# Imports must lie below the import root (links out of it are refused): one copy, then hard links.
mkdir -p "$dir/data"; cp "$data/base.npy" "$dir/data/base.npy"
for i in $(seq -w 1 "$copies"); do ln "$dir/data/base.npy" "$dir/data/copy.$i.npy"; done
QUIVER_BIN="$quiver" "$root/cluster/start.sh" --workers "$1" --dir "$dir/cluster" --port "$port" --import-root "$dir/data" >/dev/null
export QUIVER_COORDINATOR="127.0.0.1:$port"
shape=$(head -c 256 "$data/base.npy" | tr -d '\000' | grep -ao "'shape': ([0-9]*, [0-9]*)")
rows=$(echo "$shape" | sed 's/.*(\([0-9]*\), .*/\1/'); dimension=$(echo "$shape" | sed 's/.*, \([0-9]*\))/\1/')
"$quiver" create bench --dimension "$dimension" --metric ip >/dev/null
"$quiver" load bench --input "$dir/data/base.npy" >/dev/null 2>&1
cpu() { for f in "$dir"/cluster/*.pid; do p=$(cat $f); echo "$(basename $f .pid)=$(awk '{print $14+$15}' /proc/$p/stat)"; done; }
before=$(cpu); s=$(date +%s.%N)
"$quiver" load bench --input "$dir/data/copy.*.npy" >/dev/null 2>&1
e=$(date +%s.%N); after=$(cpu)
python3 - "$before" "$after" "$s" "$e" "$((rows * 10#$copies))" "$(nproc)" <<'PY'
import sys
b = dict(x.split('=') for x in sys.argv[1].split()); a = dict(x.split('=') for x in sys.argv[2].split())
wall = float(sys.argv[4]) - float(sys.argv[3]); n = int(sys.argv[5]); cores = int(sys.argv[6]); total = 0
for k in sorted(a):
    c = (int(a[k]) - int(b[k])) / 100; total += c
    print(f"{k}: {c:.2f} s CPU = {c / n * 1e6:.1f} us per vector")
print(f"{n:,} vectors in {wall:.1f} s = {n / wall:,.0f} vectors/s; {total / n * 1e6:.1f} us CPU per vector; "
      f"the processes kept {total / wall / cores * 100:.0f}% of {cores} cores busy")
PY
