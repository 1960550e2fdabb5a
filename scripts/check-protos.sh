#!/usr/bin/env bash
# Fails if Sources/QuiverProtocol/Generated/ is not exactly what scripts/generate-protos.sh
# produces from proto/quiver/v1/*.proto (e.g. a .proto was edited without regenerating).
# Regenerates into a temp dir; never touches the committed files.
#
# Usage: scripts/check-protos.sh        (same env vars as generate-protos.sh)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
COMMITTED="$ROOT/Sources/QuiverProtocol/Generated"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

"$ROOT/scripts/generate-protos.sh" "$TMP/Generated"

if [[ ! -d "$COMMITTED" ]]; then
  echo "check-protos: FAIL: $COMMITTED does not exist; run scripts/generate-protos.sh" >&2
  exit 1
fi

if ! diff -ru "$COMMITTED" "$TMP/Generated" >"$TMP/diff.txt"; then
  cat "$TMP/diff.txt" >&2
  echo >&2
  echo "check-protos: FAIL: generated Swift in Sources/QuiverProtocol/Generated is stale" >&2
  echo "check-protos: run scripts/generate-protos.sh and commit the result" >&2
  exit 1
fi
echo "check-protos: OK (generated code is up to date)"
