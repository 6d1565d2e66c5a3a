"""Confidence intervals for the sampled metrics (bootstrap and normal approximations)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["bootstrap_interval", "proportion_interval", "take_rows"]

BOOTSTRAP_ROUNDS = 100


def bootstrap_interval(metric: Callable[[np.ndarray], float], n: int, rng: np.random.Generator,
                       rounds: int = BOOTSTRAP_ROUNDS) -> list[float] | None:
    """95% percentile interval of ``metric(indices)`` over ``rounds`` resamples of ``n`` rows."""
    values = []
    for _ in range(rounds):
        try:
            value = metric(rng.integers(0, n, n))
        except ValueError:  # e.g. a resample with a single class: no AUC
            continue
        if value is not None and np.isfinite(value):
            values.append(value)
    if len(values) < rounds // 2:
        return None
    low, high = np.percentile(values, [2.5, 97.5])
    return [float(low), float(high)]


def proportion_interval(successes: int, n: int) -> list[float] | None:
    """95% Wilson interval of a share ``successes / n``."""
    if n == 0:
        return None
    p, z = successes / n, 1.96
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [float(max(0.0, centre - half)), float(min(1.0, centre + half))]


def take_rows(table, rows: int, rng: np.random.Generator):  # type: ignore[no-untyped-def]
    """A uniform subsample of at most ``rows`` rows of an Arrow table (order kept)."""
    import pyarrow as pa

    if table.num_rows <= rows:
        return table
    return table.take(pa.array(np.sort(rng.choice(table.num_rows, rows, replace=False))))
