"""Conversions between numpy arrays and the protocol's packed ``bytes`` fields.

The protocol carries bulk numbers as little-endian packed bytes (see proto/quiver/v1/common.proto):
float32 matrices for vectors and queries, int64 for ids and float32 for scores.
"""

from __future__ import annotations

import numpy as np

from .errors import InvalidArgument

FLOAT32 = np.dtype("<f4")
INT64 = np.dtype("<i8")


def as_matrix(values, what: str) -> np.ndarray:
    """A C-ordered little-endian float32 matrix from a 1-D or 2-D array-like of numbers.

    float16 is widened, float64 and integer types converted; a 1-D input is one row. Anything
    else (bool, complex, strings, 3-D arrays, empty input) raises :class:`InvalidArgument`.
    """
    array = np.asarray(values)
    if array.dtype.kind not in "fiu":
        raise InvalidArgument(f"{what} must hold real numbers, got dtype {array.dtype}")
    if array.ndim == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2:
        raise InvalidArgument(f"{what} must be 1-D (one vector) or 2-D (rows x dimension), got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise InvalidArgument(f"{what} is empty (shape {array.shape})")
    return np.ascontiguousarray(array, dtype=FLOAT32)


def as_ids(values, rows: int) -> np.ndarray:
    """A little-endian int64 vector of `rows` ids from an array-like of integers."""
    array = np.asarray(values)
    if array.dtype.kind not in "iu":
        raise InvalidArgument(f"ids must be integers, got dtype {array.dtype}")
    array = array.reshape(-1)
    if array.shape[0] != rows:
        raise InvalidArgument(f"{array.shape[0]} ids for {rows} vectors")
    if array.dtype.kind == "u" and array.size and array.max() > np.iinfo(np.int64).max:
        raise InvalidArgument("ids must fit in int64")
    return np.ascontiguousarray(array, dtype=INT64)


def unpack(data: bytes, dtype: np.dtype, count: int, field: str) -> np.ndarray:
    """A numpy copy of a packed field, checked to hold exactly `count` elements."""
    expected = count * dtype.itemsize
    if len(data) != expected:
        raise InvalidArgument(f"server sent {len(data)} bytes in {field}, expected {expected}")
    return np.frombuffer(data, dtype=dtype).astype(dtype.newbyteorder("="), copy=True)
