"""Keyed bijections on ``[0, n)``: a shuffle of n items in O(1) memory.

A 4-round unbalanced Feistel network (keyed multiply-xorshift rounds, keys from
splitmix64) on the smallest number of bits covering ``n``, with
cycle walking (re-applying the network to values that land outside ``[0, n)``), is a
permutation of ``[0, n)`` chosen by ``key``. Any position's image is computed on its own,
vectorised over NumPy arrays, so a shuffled order of 100 million rows needs no
100-million-entry permutation array (DESIGN.md, "Notes on scale").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from datakiln.dataset._sketches import mix64

__all__ = ["permute"]


_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)


def _feistel(x: np.ndarray, high: int, low: int, keys: Sequence[np.uint64]) -> np.ndarray:
    """Four unbalanced Feistel rounds on ``high + low`` bits (the halves swap widths each
    round); the round function is a keyed multiply-xorshift (one multiply)."""
    shift = np.uint64(32)
    widths = (high, low)
    left, right = x >> np.uint64(low), x & np.uint64((1 << low) - 1)
    with np.errstate(over="ignore"):
        for round_index, key in enumerate(keys):
            left_bits = widths[round_index % 2]
            mixed = (right ^ key) * _MULTIPLIER
            left, right = right, left ^ ((mixed ^ (mixed >> shift)) & np.uint64((1 << left_bits) - 1))
    return (left << np.uint64(low)) | right


def permute(index: np.ndarray, n: int, key: int) -> np.ndarray:
    """Image of each ``index`` (in ``[0, n)``) under the permutation chosen by ``key``.

    >>> sorted(permute(np.arange(10), 10, key=42).tolist()) == list(range(10))
    True
    """
    if n <= 1:
        return index.astype(np.uint64)
    bits = max(2, int(np.ceil(np.log2(n))))  # domain < 2n: cycle walking ends fast
    high, low = bits - bits // 2, bits // 2
    keys = list(mix64(np.arange(4, dtype=np.uint64) + np.uint64(key % 2**62) * np.uint64(4)))
    x = _feistel(index.astype(np.uint64), high, low, keys)
    outside = np.nonzero(x >= np.uint64(n))[0]
    while outside.size:  # cycle walking keeps it a bijection on [0, n)
        x[outside] = _feistel(x[outside], high, low, keys)
        outside = outside[x[outside] >= np.uint64(n)]
    return x
