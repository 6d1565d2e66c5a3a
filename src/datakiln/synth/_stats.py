"""Pass-two accumulators of the copula: each component's normal-score moments and exact counts.

One :class:`Stats` per component and batch, computed on worker threads and merged in
order; :meth:`Stats.finish` turns the exact counts into the component's null, NaN/±inf and
category shares. :func:`quantiles` is the quantile function the marginals use.
"""

from __future__ import annotations

import numpy as np

from datakiln.dataset._sketches import RowRandom
from datakiln.synth._component import Component, ndtri, nearest_correlation

__all__ = ["Stats", "quantiles"]


class Stats:
    """Pass-two accumulators of one component: normal-score moments, exact counts."""

    def __init__(self, component: Component) -> None:
        self.component = component
        k = len(component.columns)
        self.total, self.outer, self.rows = np.zeros(k), np.zeros((k, k)), 0
        self.counts: dict[str, np.ndarray] = {}
        self.nulls: dict[str, int] = dict.fromkeys(component.columns, 0)
        self.special: dict[str, np.ndarray] = {}  # name → counts of NaN, +inf, -inf

    def add(self, codes: dict[str, np.ndarray], numbers: dict[str, np.ndarray],
            special: dict[str, np.ndarray], members: np.ndarray | None, rng: RowRandom | np.random.Generator
            ) -> Stats:
        """Add the rows ``members`` (all when None); returns ``self``. ``rng`` draws each row's
        jitter (a :class:`RowRandom` over exactly these rows keeps it independent of batching)."""
        if members is None:
            part_codes, part_numbers, part_special = codes, numbers, special
            count = len(next(iter({**codes, **numbers}.values()))) if (codes or numbers) else 0
        else:
            part_codes = {n: c[members] for n, c in codes.items()}
            part_numbers = {n: x[members] for n, x in numbers.items()}
            part_special = {n: k[members] for n, k in special.items()}
            count = int(members.sum())
        if count == 0:
            return self
        component = self.component
        z = ndtri(component.uniform(part_codes, part_numbers, rng))
        self.total += z.sum(axis=0)
        self.outer += z.T @ z
        self.rows += count
        for name in component.columns:
            if component.kinds[name] == "categorical":
                code = part_codes[name]
                self.nulls[name] += int((code < 0).sum())
                self._add_counts(name, np.bincount(code[code >= 0], minlength=1))
            else:
                self.nulls[name] += int(np.isnan(part_numbers[name]).sum())
                if name in part_special:
                    found = np.bincount(part_special[name], minlength=4)[1:4]
                    self.special[name] = self.special.get(name, np.zeros(3, dtype=np.int64)) + found
        return self

    def merge(self, other: Stats) -> None:
        """Add another batch's accumulators of the same component."""
        self.total += other.total
        self.outer += other.outer
        self.rows += other.rows
        for name, count in other.nulls.items():
            self.nulls[name] += count
        for name, found in other.counts.items():
            self._add_counts(name, found)
        for name, found in other.special.items():
            self.special[name] = self.special.get(name, np.zeros(3, dtype=np.int64)) + found

    def _add_counts(self, name: str, found: np.ndarray) -> None:
        previous = self.counts.get(name, np.zeros(0, dtype=np.int64))
        size = max(len(found), len(previous))
        self.counts[name] = (np.pad(previous, (0, size - len(previous)))
                             + np.pad(found, (0, size - len(found))))

    def correlation(self) -> np.ndarray:
        k = len(self.total)
        if self.rows < 2 or k == 0:
            return np.eye(k)
        mean = self.total / self.rows
        cov = self.outer / self.rows - np.outer(mean, mean)
        scale = np.sqrt(np.clip(np.diag(cov), 1e-9, None))
        return nearest_correlation(cov / np.outer(scale, scale))

    def finish(self, component: Component, order: dict[str, list[int]]) -> None:
        """Exact null and category shares of the component (categories in the global order)."""
        component.nonfinite = {name: (found / self.rows).tolist() for name, found in self.special.items()
                               if self.rows and found.any()}
        for name in component.columns:
            component.null_share[name] = self.nulls[name] / self.rows if self.rows else 0.0
            if component.kinds[name] == "categorical":
                counts = self.counts.get(name, np.zeros(0))
                kept = [i for i in order[name] if i < len(counts) and counts[i] > 0]
                total = float(sum(counts[i] for i in kept)) or 1.0
                component.categories[name] = {"index": kept, "shares": [counts[i] / total for i in kept]}
        component._cache.clear()


def quantiles(values: np.ndarray, points: int) -> np.ndarray:
    """``points`` evenly spaced quantiles (linear interpolation, as ``np.quantile``) via one sort."""
    if values.size == 0:
        return np.zeros(points)
    ordered = np.sort(values)
    position = np.linspace(0, ordered.size - 1, points)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, ordered.size - 1)
    return ordered[low] + (position - low) * (ordered[high] - ordered[low])
