"""Writes a VectorDBBench custom dataset (train / test / neighbors parquet) from .npy files."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def write_custom_dataset(source: str, out: str, queries: int | None = None) -> dict:
    """Converts ``source/{base,queries,groundtruth}.npy`` into VectorDBBench's layout in ``out``.

    Vectors are widened to float32 (VectorDBBench reads lists of floats); ids are row numbers,
    which is what the ground truth refers to. Returns the dataset's size, dimension and query count.
    """
    base = np.load(os.path.join(source, "base.npy")).astype(np.float32)
    test = np.load(os.path.join(source, "queries.npy")).astype(np.float32)
    truth = np.load(os.path.join(source, "groundtruth.npy")).astype(np.int64)
    if queries is not None:
        test, truth = test[:queries], truth[:queries]
    if truth.max() >= len(base):
        raise ValueError(f"{source}/groundtruth.npy refers to row {truth.max()} of {len(base)}")
    os.makedirs(out, exist_ok=True)

    def vectors_table(matrix: np.ndarray) -> pa.Table:
        flat = pa.array(matrix.reshape(-1), type=pa.float32())
        emb = pa.FixedSizeListArray.from_arrays(flat, matrix.shape[1]).cast(pa.list_(pa.float32()))
        return pa.table({"id": pa.array(np.arange(len(matrix), dtype=np.int64)), "emb": emb})

    pq.write_table(vectors_table(base), os.path.join(out, "train.parquet"))
    pq.write_table(vectors_table(test), os.path.join(out, "test.parquet"))
    neighbors = pa.FixedSizeListArray.from_arrays(pa.array(truth.reshape(-1)), truth.shape[1]).cast(pa.list_(pa.int64()))
    pq.write_table(pa.table({"id": pa.array(np.arange(len(truth), dtype=np.int64)), "neighbors_id": neighbors}),
                   os.path.join(out, "neighbors.parquet"))
    return {"size": len(base), "dim": base.shape[1], "queries": len(test)}
