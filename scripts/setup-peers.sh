#!/usr/bin/env bash
# Creates .venv-peers with the peer libraries (faiss, ScaNN, hnswlib) that benchmarks compare against.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv-peers/bin/python ]; then
    python3 -m venv .venv-peers
fi
if ! .venv-peers/bin/python -c 'import faiss, scann, hnswlib, numpy' 2>/dev/null; then
    .venv-peers/bin/python -m pip install --quiet --upgrade pip
    .venv-peers/bin/python -m pip install --quiet faiss-cpu scann hnswlib numpy
fi
.venv-peers/bin/python -c 'import faiss, scann, hnswlib; print("peers ready: faiss", faiss.__version__, "| scann | hnswlib")'
