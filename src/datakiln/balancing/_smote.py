"""SMOTE for all-numeric features, written in NumPy: the same rows as imbalanced-learn, made faster.

imbalanced-learn's :class:`~imblearn.over_sampling.SMOTE` (numeric features) makes, for
each class that grows, ``n`` new rows with a fresh ``RandomState(seed)``: ``randint(0,
rows * k, n)`` picks a row and one of its ``k`` nearest neighbours (scikit-learn's
``NearestNeighbors(k + 1)`` on the class, itself dropped), ``uniform(size=n)`` the step,
and the new row is ``x + step * (neighbour - x)``. This module does the same draws and the
same float operations in the same order, so the rows are equal bit for bit (a test checks
it), but

- the neighbour graph of a class is computed once (:class:`ClassNeighbours`), however many
  chunks of new rows are drawn from it (the per-class path draws ``1,000,000`` at a time);
- rows are made column by column into a feature-major array (the layout Arrow wants: no
  transposing copy when decoding), with two temporaries per column instead of five
  full-matrix ones, and only the growing classes' rows are ever encoded.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["ClassNeighbours", "numpy_smote", "smote_rows"]


def numpy_smote(method: Any, balancer: Any) -> bool:
    """Whether ``method`` is plain SMOTE with no extra sampler options: then this module makes the rows."""
    return method.name == "smote" and not getattr(balancer, "options", None)


class ClassNeighbours:
    """One class's rows (feature-major) and the ``k`` nearest neighbours of each (row indices)."""

    def __init__(self, x: np.ndarray, k: int) -> None:
        from sklearn.neighbors import NearestNeighbors

        finder = NearestNeighbors(n_neighbors=k + 1).fit(x)  # what imbalanced-learn builds for k
        self.neighbours = finder.kneighbors(x, return_distance=False)[:, 1:]
        self.columns = np.ascontiguousarray(x.T)  # features × rows

    def new_rows(self, n: int, seed: Any) -> np.ndarray:
        """``n`` new rows (features × n, float64) drawn as imbalanced-learn draws them for ``seed``."""
        from sklearn.utils import check_random_state

        random_state = check_random_state(seed)
        k = self.neighbours.shape[1]
        picks = random_state.randint(low=0, high=self.neighbours.size, size=n)
        steps = random_state.uniform(size=n)
        rows, cols = np.floor_divide(picks, k), np.mod(picks, k)
        partners = self.neighbours[rows, cols]
        out = np.empty((len(self.columns), n))
        for j, column in enumerate(self.columns):
            base = column[rows]
            diff = column[partners]
            diff -= base  # neighbour - x, then step * that, then x + it: imbalanced-learn's order
            diff *= steps
            np.add(base, diff, out=out[j])
        return out


def smote_rows(x: np.ndarray, y: np.ndarray, strategy: dict[int, int], k: int,
               seed: Any) -> tuple[np.ndarray, np.ndarray]:
    """New rows (features × rows) and labels, class by class in ``strategy``'s order, as
    ``SMOTE(sampling_strategy=strategy, k_neighbors=k, random_state=seed)`` appends them."""
    parts, labels = [], []
    for klass, n in strategy.items():
        if n <= 0:
            continue
        parts.append(ClassNeighbours(x[y == klass], k).new_rows(n, seed))
        labels.append(np.full(n, klass, dtype=y.dtype))
    if not parts:
        return np.zeros((x.shape[1], 0)), np.zeros(0, dtype=y.dtype)
    if len(parts) == 1:  # one growing class (two-class data): no copy
        return parts[0], labels[0]
    return np.concatenate(parts, axis=1), np.concatenate(labels)
