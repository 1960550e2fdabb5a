#!/usr/bin/env bash
# Fails when the committed Python stubs (clients/python/quiver/_proto) are not what
# generate.sh produces from the current protos.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
committed="$root/clients/python/quiver/_proto"
fresh=$(mktemp -d)
trap 'rm -rf "$fresh"' EXIT
"$here/generate.sh" "$fresh/_proto"
if ! diff -r -x __pycache__ "$fresh/_proto" "$committed"; then
    echo "error: clients/python/quiver/_proto is stale; run clients/python/scripts/generate.sh and commit the result" >&2
    exit 1
fi
echo "Python stubs are current"
