#!/usr/bin/env python3
"""Writes the repository's sample data set (data/sample/) from the full pkgdesc data.

The sample is the first BASE rows of pkgdesc's base vectors and sentences (pkgdesc is already
shuffled, so a prefix is a uniform sample and sample id i is pkgdesc row i), the first QUERIES
queries, and the exact top-100 neighbours of each query over the sample, recomputed here by brute
force (inner product on the float16 vectors widened to float32; the vectors are unit length, so
this is cosine similarity).

Usage: scripts/make-sample.py [--source DIR] [--out DIR] [--base N] [--queries N] [--k K]
Needs only numpy. Deterministic: the same source gives byte-identical files.
"""
import argparse
import os
import sys

import numpy as np


def read_lines(path, count):
    """The first `count` lines of a UTF-8 text file, newline included."""
    lines = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if len(lines) == count:
                break
            lines.append(line if line.endswith("\n") else line + "\n")
    if len(lines) < count:
        sys.exit(f"error: {path} has {len(lines)} lines, {count} needed")
    return lines


def exact_top_k(base, queries, k, block=64):
    """Ids (int32, best first) of the k largest inner products of each query with the base rows.

    Ties are broken by the smaller id (a stable sort on the negated score), so the result does
    not depend on the BLAS in use beyond float32 rounding.
    """
    result = np.empty((len(queries), k), dtype=np.int32)
    for start in range(0, len(queries), block):
        scores = queries[start:start + block] @ base.T
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        result[start:start + block] = order.astype(np.int32)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument("--source", default=os.path.join(root, "..", "shared", "data", "pkgdesc"))
    parser.add_argument("--out", default=os.path.join(root, "data", "sample"))
    parser.add_argument("--base", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--k", type=int, default=100)
    args = parser.parse_args()

    base_all = np.load(os.path.join(args.source, "base.npy"), mmap_mode="r")
    queries_all = np.load(os.path.join(args.source, "queries.npy"), mmap_mode="r")
    if base_all.dtype != np.float16 or queries_all.dtype != np.float16:
        sys.exit(f"error: expected float16 vectors, found {base_all.dtype} / {queries_all.dtype}")
    if args.base > len(base_all) or args.queries > len(queries_all) or args.k > args.base:
        sys.exit("error: --base, --queries or --k exceed the source data")

    base = np.ascontiguousarray(base_all[:args.base])
    queries = np.ascontiguousarray(queries_all[:args.queries])
    truth = exact_top_k(base.astype(np.float32), queries.astype(np.float32), args.k)

    os.makedirs(args.out, exist_ok=True)
    np.save(os.path.join(args.out, "base.npy"), base)
    np.save(os.path.join(args.out, "queries.npy"), queries)
    np.save(os.path.join(args.out, "groundtruth.npy"), truth)
    for name, count in (("base.tsv", args.base), ("queries.tsv", args.queries)):
        with open(os.path.join(args.out, name), "w", encoding="utf-8", newline="\n") as handle:
            handle.writelines(read_lines(os.path.join(args.source, name), count))

    # Cross-check against the full set's ground truth: the full top-100 restricted to sample ids
    # must be a prefix of the sample's top-100 (up to float32 ties).
    full_truth_path = os.path.join(args.source, "groundtruth.npy")
    if os.path.exists(full_truth_path):
        full_truth = np.load(full_truth_path, mmap_mode="r")[:args.queries]
        agree = total = 0
        for query in range(args.queries):
            inside = [int(i) for i in full_truth[query] if i < args.base]
            total += len(inside)
            agree += sum(1 for a, b in zip(inside, truth[query]) if a == b)
        print(f"cross-check: {agree}/{total} neighbours of the full ground truth that lie in the sample "
              f"are at the same rank in the sample's ground truth")
    norms = np.linalg.norm(base.astype(np.float32), axis=1)
    print(f"wrote {args.out}: base {base.shape} {base.dtype} (norms {norms.min():.4f}..{norms.max():.4f}), "
          f"queries {queries.shape} {queries.dtype}, groundtruth {truth.shape} {truth.dtype}")


if __name__ == "__main__":
    main()
