"""SMOTEN one class at a time, with the value difference metric of the whole table.

SMOTEN measures how far apart two categories of a feature are by how differently the
classes spread over them (imbalanced-learn's ``ValueDifferenceMetric``), learnt from every
row of every class. The per-class path loads only the classes that grow, so a SMOTEN call
on those rows would learn a different metric and pick other neighbours. Here the metric's
statistics (rows per category and class, for every feature) come from one streaming pass
over all rows (a few integers per category: no row is kept), and the new rows of a class
are made as SMOTEN makes them: neighbours by that metric, then, per feature, the most
common category among the neighbours of a randomly drawn row. The result equals a
whole-table ``SMOTEN`` call with the same seed (tested).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from datakiln.balancing._codec import FeatureCodec
from datakiln.errors import MemoryBudgetError
from datakiln.units import format_bytes

__all__ = ["WholeTableMetric", "check_distance_memory"]


def check_distance_memory(rows: int, budget: int | None) -> None:
    """SMOTEN holds a class's pairwise distances (and the neighbour search a copy): 16 bytes × rows²."""
    need = 16 * rows * rows
    if budget is not None and need > budget:
        raise MemoryBudgetError(
            f"SMOTEN compares every pair of rows of a class: {rows:,} rows need about "
            f"{format_bytes(need)}, more than the {format_bytes(budget)} memory budget; raise "
            f"memory_budget, balance a sample, or use random_over or synth for categorical data this large")


class WholeTableMetric:
    """SMOTEN's value difference metric fitted on every row of ``dataset`` (one streaming pass)."""

    def __init__(self, dataset: Any, codec: FeatureCodec, budget: int | None) -> None:
        from imblearn.metrics.pairwise import ValueDifferenceMetric

        classes = len(codec.classes) + 1  # the null class last
        sizes = [len(codec.encoder.categories_[n]) + 1 for n in codec.features]  # the null code last
        found = [np.zeros(size * classes, dtype=np.int64) for size in sizes]
        for table in dataset._tables(memory_budget=budget):
            x, y = codec.encode(table)
            for j, size in enumerate(sizes):
                found[j] += np.bincount(x[:, j].astype(np.int64) * classes + y, minlength=size * classes)
        tables = [f.reshape(size, classes) for f, size in zip(found, sizes)]
        present_classes = np.flatnonzero(tables[0].sum(axis=0) > 0)
        # imbalanced-learn's OrdinalEncoder numbers the codes present in the data 0, 1, ...
        self.values = [np.flatnonzero(t.sum(axis=1) > 0) for t in tables]
        proba = []
        for table, values in zip(tables, self.values):
            share = table[np.ix_(values, present_classes)].astype(np.float64)
            proba.append(share / share.sum(axis=1, keepdims=True))
        self.metric = ValueDifferenceMetric(n_categories=[len(v) for v in self.values])
        self.metric.n_features_in_ = len(sizes)
        self.metric.n_categories_ = np.array([len(v) for v in self.values])
        self.metric.proba_per_class_ = proba
        self.budget = budget
        self._neighbours: dict[Any, tuple[np.ndarray, np.ndarray]] = {}

    def _find(self, x_class: np.ndarray, k_neighbors: int) -> tuple[np.ndarray, np.ndarray]:
        """(the class's rows as imbalanced-learn's ordinal codes, each row's k + 1 nearest rows)."""
        from sklearn.neighbors import NearestNeighbors

        check_distance_memory(len(x_class), self.budget)
        encoded = np.column_stack([np.searchsorted(values, x_class[:, j].astype(np.int64))
                                   for j, values in enumerate(self.values)]).astype(np.int32)
        distance = self.metric.pairwise(encoded)
        finder = NearestNeighbors(n_neighbors=k_neighbors + 1, metric="precomputed").fit(distance)
        return encoded, finder.kneighbors(distance, return_distance=False)  # each row is its own first

    def new_rows(self, x_class: np.ndarray, n: int, k_neighbors: int, seed: int | None,
                 key: Any = None) -> np.ndarray:
        """``n`` new rows (feature codes, float64) for the class whose rows are ``x_class``.

        The class's neighbours are found once per ``key`` (a class sampled in several calls
        reuses them); the rows drawn depend on ``seed`` only.
        """
        from scipy.stats import mode
        from sklearn.utils import check_random_state

        if key is None or key not in self._neighbours:
            self._neighbours[key] = self._find(x_class, k_neighbors)
        encoded, neighbours = self._neighbours[key]
        drawn = check_random_state(seed).choice(np.arange(len(encoded)), size=n, replace=True)
        new = np.squeeze(mode(encoded[neighbours[drawn]], axis=1, keepdims=True).mode, axis=1)
        new = new.reshape(n, len(self.values))
        return np.column_stack([values[new[:, j]] for j, values in enumerate(self.values)]).astype(np.float64)
