#!/usr/bin/env bash
# The engine benchmark on the sample data, beside faiss and ScaNN in the same run, one thread.
# Extra arguments go to `quiver bench` (e.g. --threads 2 --nprobe 8,16 --json out.json).
set -euo pipefail
cd "$(dirname "$0")/.."
data=${QUIVER_DATA:-../shared/data/pkgdesc}
scripts/setup-peers.sh
swift build -c release --product quiver
exec .build/release/quiver bench --data "$data" --threads 1 --peers "$@"
