#!/usr/bin/env bash
# Builds the libFuzzer targets with address sanitizer and runs each for a bounded time on a copy
# of its seed corpus (fuzz/corpus/<Target>/), then replays every saved crash input under
# fuzz/regressions/<Target>/ (each must now pass). Fails on the first crash, leak or timeout.
#
# Usage: fuzz/run.sh [SECONDS_PER_TARGET] [TARGET ...]     (default 60 s; all targets)
# Env:   FUZZ_SCRATCH=.build-fuzz (build folder)   FUZZ_JOBS=1
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(FuzzDatasets FuzzStorage FuzzRequests)
scratch=${FUZZ_SCRATCH:-$root/.build-fuzz}

for target in "${targets[@]}"; do
    echo "fuzz: building $target (address sanitizer, libFuzzer)"
    swift build --package-path "$root/fuzz" --scratch-path "$scratch" -c debug --product "$target" \
        --sanitize=fuzzer --sanitize=address >/dev/null
done
bin=$(swift build --package-path "$root/fuzz" --scratch-path "$scratch" -c debug --show-bin-path)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for target in "${targets[@]}"; do
    corpus="$work/$target"
    mkdir -p "$corpus" "$work/artifacts-$target"
    cp "$root/fuzz/corpus/$target/"* "$corpus/"
    if [ -d "$root/fuzz/regressions/$target" ]; then
        echo "fuzz: $target replays $(ls "$root/fuzz/regressions/$target" | wc -l) saved crash inputs"
        "$bin/$target" -runs=0 "$root/fuzz/regressions/$target"/* >"$work/$target-regressions.log" 2>&1 \
            || { cat "$work/$target-regressions.log"; echo "fuzz: $target fails a saved regression input" >&2; exit 1; }
    fi
    echo "fuzz: running $target for $seconds s"
    if ! "$bin/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
            -artifact_prefix="$work/artifacts-$target/" -print_final_stats=1 "$corpus" >"$work/$target.log" 2>&1; then
        tail -n 60 "$work/$target.log"
        echo "fuzz: $target found a failure; the input is in:" >&2
        ls "$work/artifacts-$target" >&2
        mkdir -p "$root/fuzz/found/$target"
        cp "$work/artifacts-$target/"* "$root/fuzz/found/$target/" 2>/dev/null || true
        exit 1
    fi
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$target.log" | grep -o '[0-9]*$' || echo "?")
    cover=$(grep -o 'cov: [0-9]*' "$work/$target.log" | tail -n 1 || true)
    echo "fuzz: $target ok: $runs executions in $seconds s ($cover)"
done
