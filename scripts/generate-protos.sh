#!/usr/bin/env bash
# Regenerates the Swift code for the Quiver wire protocol (proto/quiver/v1/*.proto) into
# Sources/QuiverProtocol/Generated/ (or into the directory given as $1).
#
#  * Builds protoc-gen-swift and protoc-gen-grpc-swift-2 from scripts/protoc-plugins (pinned to
#    the same swift-protobuf / grpc-swift-protobuf versions as Package.swift) with scratch path
#    .build-protoc-plugins/ (gitignored). Already-built plugins are reused (incremental build).
#  * Runs protoc (PROTOC env var, default: protoc on PATH, e.g. Debian's /usr/bin/protoc).
#  * Replaces the output directory's *.swift files atomically-ish: generates into a temp dir,
#    then swaps, so stale files from removed .proto files disappear. Idempotent.
#
# Usage: scripts/generate-protos.sh [OUTPUT_DIR]
# Env:   PROTOC=/path/to/protoc   SKIP_PLUGIN_BUILD=1 (use plugins already in .build-protoc-plugins)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT_DIR="${1:-$ROOT/Sources/QuiverProtocol/Generated}"
PROTO_ROOT="$ROOT/proto"
PLUGIN_PKG="$ROOT/scripts/protoc-plugins"
PLUGIN_SCRATCH="$ROOT/.build-protoc-plugins"
PROTOC="${PROTOC:-$(command -v protoc || true)}"

if [[ -z "$PROTOC" || ! -x "$PROTOC" ]]; then
  echo "error: protoc not found; install it (apt-get install protobuf-compiler) or set PROTOC" >&2
  exit 1
fi

log() { echo "generate-protos: $*" >&2; }

# --- 1. Build the plugins (release; incremental after the first build). ----------------------
swift_build() {
  swift build -c release --package-path "$PLUGIN_PKG" --scratch-path "$PLUGIN_SCRATCH" "$@"
}
if [[ "${SKIP_PLUGIN_BUILD:-0}" != "1" ]]; then
  for product in protoc-gen-swift protoc-gen-grpc-swift-2; do
    log "building $product"
    swift_build --product "$product" >&2
  done
fi
BIN_DIR="$(swift_build --show-bin-path)"
GEN_SWIFT="$BIN_DIR/protoc-gen-swift"
GEN_GRPC="$BIN_DIR/protoc-gen-grpc-swift-2"
for plugin in "$GEN_SWIFT" "$GEN_GRPC"; do
  [[ -x "$plugin" ]] || { echo "error: plugin missing: $plugin" >&2; exit 1; }
done

# --- 2. Run protoc into a temp dir. ------------------------------------------------------------
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# Sorted, repo-relative proto paths so output does not depend on file-system order.
mapfile -t PROTOS < <(cd "$PROTO_ROOT" && find quiver grpc -name '*.proto' | LC_ALL=C sort)
if [[ ${#PROTOS[@]} -eq 0 ]]; then
  echo "error: no .proto files under $PROTO_ROOT" >&2
  exit 1
fi
log "protoc $("$PROTOC" --version) on ${#PROTOS[@]} files"

(
  cd "$PROTO_ROOT"
  "$PROTOC" \
    --proto_path=. \
    --plugin=protoc-gen-swift="$GEN_SWIFT" \
    --plugin=protoc-gen-grpc-swift-2="$GEN_GRPC" \
    --swift_out="$TMP" \
    --swift_opt=Visibility=Public \
    --swift_opt=FileNaming=PathToUnderscores \
    --swift_opt=UseAccessLevelOnImports=true \
    --grpc-swift-2_out="$TMP" \
    --grpc-swift-2_opt=Visibility=Public \
    --grpc-swift-2_opt=Server=true \
    --grpc-swift-2_opt=Client=true \
    --grpc-swift-2_opt=FileNaming=PathToUnderscores \
    --grpc-swift-2_opt=UseAccessLevelOnImports=true \
    "${PROTOS[@]}"
)

# protoc-gen-grpc-swift-2 also emits a stub for protos without services (common.proto); drop it.
for f in "$TMP"/*.grpc.swift; do
  if ! grep -q 'public enum .*: Sendable' "$f"; then
    rm -f "$f"
  fi
done

# --- 3. Replace the generated *.swift files in OUT_DIR. ---------------------------------------
mkdir -p "$OUT_DIR"
find "$OUT_DIR" -maxdepth 1 -type f -name '*.swift' -delete
cp "$TMP"/*.swift "$OUT_DIR"/
log "wrote $(ls "$TMP"/*.swift | wc -l) files to $OUT_DIR"
