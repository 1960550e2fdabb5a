#!/usr/bin/env python3
"""Measures what a Quiver cluster stores per vector, for the sizing guide.

Starts a local cluster (coordinator + WORKERS workers on loopback) from the built binary, loads
the same vectors into one collection per raw-vector mode and replication factor, and prints the
bytes the workers report (codes + ids, raw vectors) per loaded vector, with the lists and
vectors each worker holds.

Usage: QUIVER_BIN=.build/release/quiver bench/tools/storage-per-vector.py [--data data/sample] [--workers 2]
Needs the Python client (pip install clients/python).
"""
import argparse
import os

import numpy as np

import quiver
from quiver.local import LocalCluster, find_binary


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.path.join(root, "data", "sample"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--replication", default="1,2")
    args = parser.parse_args()
    binary = find_binary(root)
    if binary is None:
        raise SystemExit("no quiver binary: set QUIVER_BIN")
    vectors = np.load(os.path.join(args.data, "base.npy"))
    rows, dimension = vectors.shape
    print(f"data {args.data}: {rows} x {dimension} {vectors.dtype}; {args.workers} workers; binary {binary}")
    print("| raw vectors | replication | nlist | B/vector (all workers) | codes+ids B/vector | raw B/vector | vectors held / loaded |")
    print("|---|---|---|---|---|---|---|")
    with LocalCluster(binary, workers=args.workers) as cluster, cluster.client(timeout=600) as client:
        for replication in [int(r) for r in args.replication.split(",")]:
            if replication > args.workers:
                continue
            codes_total = None
            for raw in ("none", "float16", "float32"):  # "none" first: it measures codes + ids alone
                name = f"size_{raw}_r{replication}"
                client.create(name, dimension=dimension, metric="cosine", raw=raw, replication=replication)
                client.load(name, vectors)
                info = client.describe(name)
                held = sum(w.vectors for w in client.status().workers)
                # The cluster status carries per-worker totals, so each collection is measured
                # alone and dropped; the raw part is the difference to the same data without raw.
                total = sum(w.bytes for w in client.status().workers)
                if raw == "none":
                    codes_total = total
                codes = codes_total
                print(f"| {raw} | {replication} | {info.nlist} | {total / rows:,.0f} | "
                      f"{codes / rows:,.0f} | {(total - codes) / rows:,.0f} | {held / rows:.2f} |")
                client.drop(name)


if __name__ == "__main__":
    main()
