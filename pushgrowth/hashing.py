"""Stable, well-mixed hashes of ids: the same (id, key, salt) always maps to the same point of [0, 1).

Used for everything that splits users reproducibly: experiment groups, the campaign pick before a model exists,
coupon thinning order, and the user folds of training. SplitMix64's finalizer mixes every input bit, so points
for different keys are independent (CRC32, being affine, gives folds that overlap or exclude each other).
"""

from __future__ import annotations

import zlib

import numpy as np

MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = (x + np.uint64(0x9E3779B97F4A7C15)) & MASK64
        z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & MASK64
        z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & MASK64
        return z ^ (z >> np.uint64(31))


def unit_hash(ids: np.ndarray, key: str, salt: str = "") -> np.ndarray:
    """A point in [0, 1) per id, fixed for (id, key, salt) and independent across keys."""
    seed = np.uint64(zlib.crc32(f"{salt}|{key}".encode()))
    with np.errstate(over="ignore"):
        mixed = _splitmix64(_splitmix64(np.asarray(ids, dtype=np.int64).astype(np.uint64)) ^ _splitmix64(
            np.full(1, seed, dtype=np.uint64)))
    return (mixed >> np.uint64(11)).astype(np.float64) / float(1 << 53)
