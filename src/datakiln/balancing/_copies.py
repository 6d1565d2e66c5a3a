"""The privacy cost of new rows: how many are copies or near-copies of real rows.

A sampled new row is an *exact copy* when it equals a real row of its class (compared
with all the real rows given, by their bytes), a *near copy* when it is closer than the 5th
percentile of the real rows' own
nearest-neighbour distances (closer than 95% of real rows are to each other). Distances:
numbers scaled to the class's range, a category mismatch counts 1. Samples of at most
``rows`` new and ``rows`` real rows per class keep the cost bounded.
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

__all__ = ["copy_shares"]


def _embed(x: np.ndarray, categorical: np.ndarray, low: np.ndarray, width: np.ndarray) -> np.ndarray:
    parts = []
    for j in range(x.shape[1]):
        if categorical[j]:
            codes = x[:, j].astype(np.int64)
            onehot = np.zeros((len(codes), int(codes.max(initial=0)) + 1), dtype=np.float32)
            onehot[np.arange(len(codes)), codes] = np.sqrt(0.5)
            parts.append(onehot)
        else:
            parts.append(((x[:, j] - low[j]) / width[j]).astype(np.float32)[:, None])
    return np.hstack(parts)


def copy_shares(new_x: np.ndarray, new_y: np.ndarray, real_x: np.ndarray, real_y: np.ndarray,
                categorical: np.ndarray, *, rows: int = 2_000,
                seed: int = 0) -> tuple[float | None, float | None]:
    """(exact-copy share, near-copy share) of the new rows, or (None, None) without new rows."""
    if len(new_x) == 0:
        return None, None
    rng = np.random.default_rng(seed)
    exact = near = sampled = 0
    for klass in np.unique(new_y):
        members = np.flatnonzero(new_y == klass)
        fresh = new_x[np.sort(rng.choice(members, min(rows, len(members)), replace=False))]
        real_all = real_x[real_y == klass]
        if len(real_all) < 3:
            continue
        known = {row.tobytes() for row in np.ascontiguousarray(real_all)}  # every real row of the class
        exact += sum(row.tobytes() in known for row in np.ascontiguousarray(fresh))
        real = real_all[rng.choice(len(real_all), min(rows, len(real_all)), replace=False)]
        span = np.ptp(real_all, axis=0)
        low, width = real_all.min(axis=0), np.where(span > 0, span, 1.0)
        both = _embed(np.vstack([real, fresh]), categorical, low, width)
        reference, queries = both[: len(real)], both[len(real):]
        finder = NearestNeighbors(n_neighbors=2, algorithm="brute").fit(reference)
        own = finder.kneighbors(reference)[0][:, 1]  # each real row's nearest other real row
        threshold = np.percentile(own, 5)
        distance = finder.kneighbors(queries, n_neighbors=1)[0][:, 0]
        near += int((distance <= max(threshold, 1e-9)).sum())
        sampled += len(distance)
    if sampled == 0:
        return None, None
    return exact / sampled, near / sampled
