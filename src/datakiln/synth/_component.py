"""One Gaussian copula: per-column marginals on the uniform scale plus a correlation matrix.

A mixture (:mod:`datakiln.synth.copula`) holds one component per combination of its
``by`` columns. Every modelled column lives on [0, 1]: missing values take the first
``p_null`` of it, categories take intervals in a fixed order, numbers the rest through an
empirical quantile function on ``grid`` points (spikes such as many zeros become flat
stretches). NaN, +inf and -inf of a float column share the missing stretch with nulls
(``null_share`` counts all four); ``nonfinite`` keeps their own shares, so a sampled
missing row becomes a null, NaN, +inf or -inf at the learned rates, and the quantile
function holds finite values only. Sampling works on the normal scale directly: category
and null boundaries are turned into normal thresholds once, so drawing a category is one
binary search.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special

from datakiln.errors import ModelFormatError

__all__ = ["Component", "nearest_correlation", "ndtri"]

_EPS = 1e-9
Z_LIMIT = 6.0  # normal scores beyond ±6 (probability 2e-9) read the table's ends
Z_POINTS = 16_385


def ndtri(u: np.ndarray | float) -> np.ndarray:
    """The normal quantile function, clipped away from 0 and 1."""
    return special.ndtri(np.clip(u, _EPS, 1 - _EPS))


def nearest_correlation(matrix: np.ndarray) -> np.ndarray:
    """The matrix with eigenvalues clipped to stay positive, rescaled to a unit diagonal."""
    if matrix.size == 0:
        return matrix
    symmetric = (matrix + matrix.T) / 2
    values, vectors = np.linalg.eigh(symmetric)
    fixed = vectors @ np.diag(np.clip(values, 1e-6, None)) @ vectors.T
    scale = np.sqrt(np.diag(fixed))
    return fixed / np.outer(scale, scale)


@dataclass
class Component:
    """Marginals and correlation of the modelled columns, for rows with ``fixed`` values.

    ``categories[name]`` holds indices into the mixture's vocabulary of that column and
    their shares, in interval order; ``quantiles[name]`` the quantile function in ticks.
    """

    columns: list[str]
    kinds: dict[str, str]
    fixed: dict[str, int] = field(default_factory=dict)  # by-column → vocabulary index
    weight: float = 1.0
    null_share: dict[str, float] = field(default_factory=dict)
    categories: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    quantiles: dict[str, np.ndarray] = field(default_factory=dict)
    correlation: np.ndarray = field(default_factory=lambda: np.eye(0))
    nonfinite: dict[str, list[float]] = field(default_factory=dict)  # name → shares of NaN, +inf, -inf
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    # -- data → uniform scale ----------------------------------------------------------------
    def uniform(self, codes: dict[str, np.ndarray], ticks: dict[str, np.ndarray], rng: np.random.Generator,
                jitter: bool = True, names: list[str] | None = None) -> np.ndarray:
        """Rows on the uniform scale (rows × columns) from category codes and numeric ticks.

        ``codes`` hold vocabulary indices (-1: null); ``ticks`` floats (NaN: null). Within a
        category's interval or a tie's stretch a row lands at random (middle without jitter).
        """
        names = self.columns if names is None else names
        rows = len(next(iter(codes.values()))) if codes else len(next(iter(ticks.values())))
        out = np.empty((rows, len(names)))
        for j, name in enumerate(names):
            p0 = self.null_share[name]
            spread = rng.random(rows) if jitter else np.full(rows, 0.5)
            if self.kinds[name] == "categorical":
                code = codes[name]
                missing = code < 0
                position = self._positions(name)
                inside = ~missing & (code < len(position))
                place = np.full(rows, -1, dtype=np.int64)
                place[inside] = position[code[inside]]
                starts, widths = self._intervals(name)
                if len(widths) == 0:  # no value of this column in this component
                    starts, widths, place = np.array([p0]), np.array([1 - p0]), np.zeros(rows, dtype=np.int64)
                at = np.maximum(place, 0)
                unseen = p0 + (1 - p0) * (1 - 0.5 / len(widths))  # a value unseen here: at the end
                u = np.where(place >= 0, starts[at] + spread * widths[at], unseen)
            else:
                x = ticks[name]
                missing = np.isnan(x)
                left, right = self._grid_span(name, x)
                position = left + spread * (right - left)  # a value on a flat stretch (a spike): spread
                u = p0 + (1 - p0) * np.clip(position / (len(self.quantiles[name]) - 1), 0, 1)
            out[:, j] = np.where(missing, spread * p0, u)
        return out

    def _grid_span(self, name: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``searchsorted(grid, x, "left")`` and ``(..., "right")`` with one search of the distinct values."""
        key = f"span.{name}"
        if key not in self._cache:
            grid = self.quantiles[name]
            values, first = np.unique(grid, return_index=True)
            last = np.r_[first[1:], len(grid)]  # one past each value's last grid point
            self._cache[key] = (values, np.r_[first, len(grid)], np.r_[last, len(grid)])
        values, first, last = self._cache[key]
        index = np.searchsorted(values, x, side="left")
        left = first[index]
        exact = values[np.minimum(index, len(values) - 1)] == x
        return left, np.where(exact, last[index], left)

    def _positions(self, name: str) -> np.ndarray:
        """Vocabulary index → interval position in this component (-1: not present)."""
        key = f"pos.{name}"
        if key not in self._cache:
            index = np.asarray(self.categories[name]["index"], dtype=np.int64)
            size = int(index.max()) + 1 if index.size else 0
            position = np.full(max(size, 1) + 1, -1, dtype=np.int64)
            position[index] = np.arange(len(index))
            self._cache[key] = position
        return self._cache[key]

    def _intervals(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        p0 = self.null_share[name]
        shares = np.asarray(self.categories[name]["shares"], dtype=np.float64)
        starts = p0 + (1 - p0) * np.r_[0.0, np.cumsum(shares)[:-1]]
        return starts, (1 - p0) * shares

    # -- normal scale → data -----------------------------------------------------------------
    def _thresholds(self, name: str) -> tuple[float, np.ndarray]:
        """(normal score below which the value is null, category boundaries on the normal scale)."""
        key = f"thr.{name}"
        if key not in self._cache:
            p0 = self.null_share[name]
            cuts = p0 + (1 - p0) * np.cumsum(self.categories[name]["shares"])[:-1]
            self._cache[key] = (float(ndtri(p0)) if p0 > 0 else -np.inf, ndtri(cuts))
        return self._cache[key]

    def decode(self, name: str, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(vocabulary codes or ticks, null mask) of one column from its normal scores."""
        if self.kinds[name] == "categorical":
            null_below, cuts = self._thresholds(name)
            index = np.asarray(self.categories[name]["index"], dtype=np.int64)
            if index.size == 0:
                return np.zeros(len(z), dtype=np.int64), np.ones(len(z), dtype=bool)
            first, unsure = self._code_table(name)
            bins = self._bins(z)
            codes = first[bins]
            check = unsure[bins]  # the few scores in a bin with a boundary: an exact search
            if check.any():
                codes[check] = index[np.searchsorted(cuts, z[check], side="right")]
            return codes, z < null_below
        null_below, table, slope = self._value_table(name)
        scale = (len(table) - 1) / (2 * Z_LIMIT)
        position = z * z.dtype.type(scale)  # float32 scores stay float32: half the memory traffic
        position += z.dtype.type(Z_LIMIT * scale)
        np.clip(position, 0, len(table) - 1, out=position)  # beyond ±Z_LIMIT: the table's ends (slope 0)
        low = position.astype(np.int32)
        frac = position - low
        return table[low] + frac * slope[low], z < null_below

    @staticmethod
    def _bins(z: np.ndarray) -> np.ndarray:
        """Bin of each normal score among ``Z_POINTS - 1`` equal bins of [-Z_LIMIT, Z_LIMIT]."""
        scale = (Z_POINTS - 1) / (2 * Z_LIMIT)
        position = z * z.dtype.type(scale)
        position += z.dtype.type(Z_LIMIT * scale)
        np.clip(position, 0, Z_POINTS - 1.5, out=position)
        return position.astype(np.int32)

    def _code_table(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(vocabulary code at each bin's start, whether a category boundary lies in the bin).

        Most scores read their category off the table; only those in a bin that holds a
        boundary (and the two end bins) are searched, so the result is exact.
        """
        key = f"codes.{name}"
        if key not in self._cache:
            _, cuts = self._thresholds(name)
            index = np.asarray(self.categories[name]["index"], dtype=np.int64)
            edges = np.linspace(-Z_LIMIT, Z_LIMIT, Z_POINTS)
            low = np.searchsorted(cuts, edges[:-1], side="right")
            high = np.searchsorted(cuts, edges[1:], side="right")
            unsure = low != high
            unsure[[0, -1]] = True
            self._cache[key] = (index[low], unsure)
        return self._cache[key]

    def _value_table(self, name: str) -> tuple[float, np.ndarray, np.ndarray]:
        """(null threshold, the column's value at ``Z_POINTS`` evenly spaced normal scores, slopes).

        Sampling reads values off this table by linear interpolation (``slopes[i]`` is
        ``values[i + 1] - values[i]``): no normal CDF per value, one lookup per column. The
        spacing (0.0007 on the normal scale) is finer than the quantile grid.
        """
        key = f"val.{name}"
        if key not in self._cache:
            p0 = self.null_share[name]
            grid = self.quantiles[name]
            u = special.ndtr(np.linspace(-Z_LIMIT, Z_LIMIT, Z_POINTS))
            position = np.clip((u - p0) / max(1 - p0, _EPS), 0, 1) * (len(grid) - 1)
            low = np.minimum(position.astype(np.int64), len(grid) - 2)
            values = grid[low] + (position - low) * (grid[low + 1] - grid[low])
            slopes = np.r_[np.diff(values), 0.0]
            self._cache[key] = (float(ndtri(p0)) if p0 > 0 else -np.inf, values, slopes)
        return self._cache[key]

    # -- conditions --------------------------------------------------------------------------
    def bounds(self, name: str, condition: Any, ticks_of: Any) -> tuple[float, float]:
        """The uniform-scale interval of a condition on ``name`` (empty: (0, 0)).

        A categorical condition is given as its code (see :mod:`datakiln.synth._vocab`).
        """
        p0 = self.null_share[name]
        if condition is None:
            return 0.0, p0
        if self.kinds[name] == "categorical":
            place = self._positions(name)
            code = int(condition)
            k = place[code] if code < len(place) else -1
            if k < 0:
                return 0.0, 0.0
            starts, widths = self._intervals(name)
            return float(starts[k]), float(starts[k] + widths[k])
        low, high = condition if isinstance(condition, (tuple, list)) else (condition, condition)
        grid = self.quantiles[name]
        lo_tick, hi_tick = ticks_of(name, low), ticks_of(name, high)
        if hi_tick < grid[0] or lo_tick > grid[-1]:
            return 0.0, 0.0
        a = np.searchsorted(grid, lo_tick, side="left") / (len(grid) - 1)
        b = (np.searchsorted(grid, hi_tick, side="right") - 1) / (len(grid) - 1)
        if b <= a:  # the range falls between two grid points: a thin interval there
            b = min(1.0, a + 0.5 / (len(grid) - 1))
        return p0 + (1 - p0) * a, p0 + (1 - p0) * b

    def normals(self, n: int, limits: dict[int, tuple[float, float]], rng: np.random.Generator) -> np.ndarray:
        """``n`` rows of correlated normal scores; column ``j`` of ``limits`` kept in its interval.

        Conditioned scores come one by one from their truncated conditional distributions,
        the free ones from the Gaussian conditioned on them: exact, no rejection.
        """
        sigma = self.correlation
        k = len(self.columns)
        if not limits:  # float32 scores: twice the draws per second, ample for a 0.0007 table step;
            # drawn column by column (k × n) so that each column of the result is contiguous
            return (self._cholesky32() @ rng.standard_normal((k, n), dtype=np.float32)).T
        z = np.empty((n, k))
        done: list[int] = []
        for j, (a, b) in limits.items():
            mean, var = _conditional(sigma, [j], done, z[:, done])
            sd = np.sqrt(max(var[0, 0], _EPS))
            lo = special.ndtr((ndtri(a) - mean[:, 0]) / sd)
            hi = special.ndtr((ndtri(b) - mean[:, 0]) / sd)
            z[:, j] = mean[:, 0] + sd * ndtri(lo + rng.random(n) * (hi - lo))
            done.append(j)
        free = [j for j in range(k) if j not in done]
        if free:
            mean, var = _conditional(sigma, free, done, z[:, done])
            z[:, free] = mean + rng.standard_normal((n, len(free))) @ np.linalg.cholesky(
                var + _EPS * np.eye(len(free))).T
        return z

    def missing_kinds(self, name: str, n: int, rng: np.random.Generator) -> np.ndarray:
        """Kinds of ``n`` sampled missing rows of a float column: null, NaN, +inf or -inf.

        Returns codes 0 null, 1 NaN, 2 +inf, 3 -inf, drawn at the component's learned
        shares (only called when the column has non-finite values).
        """
        shares = np.asarray(self.nonfinite[name], dtype=np.float64)
        p0 = self.null_share[name]
        probabilities = np.r_[max(p0 - shares.sum(), 0.0), shares]
        total = probabilities.sum()
        if total <= 0:
            return np.zeros(n, dtype=np.int64)
        cumulative = np.cumsum(probabilities / total)
        return np.minimum(np.searchsorted(cumulative, rng.random(n), side="right"), 3)

    def _cholesky32(self) -> np.ndarray:
        if "chol32" not in self._cache:
            self._cache["chol32"] = self._cholesky().astype(np.float32)
        return self._cache["chol32"]

    def _cholesky(self) -> np.ndarray:
        if "chol" not in self._cache:
            self._cache["chol"] = np.linalg.cholesky(self.correlation + _EPS * np.eye(len(self.columns)))
        return self._cache["chol"]

    def probability(self, limits: dict[int, tuple[float, float]], rng: np.random.Generator) -> float:
        """Probability of the uniform-scale box ``limits`` under this component.

        Boxes over two or more columns are integrated by SciPy's quasi-Monte Carlo normal
        CDF, whose randomisation is drawn from ``rng`` (never NumPy's global state), so the
        same seed gives the same probability.
        """
        if not limits:
            return 1.0
        if any(b <= a for a, b in limits.values()):
            return 0.0
        if len(limits) == 1:
            a, b = next(iter(limits.values()))
            return float(b - a)
        from scipy.stats import multivariate_normal

        index = list(limits)
        lower = ndtri(np.array([limits[j][0] for j in index]))
        upper = ndtri(np.array([limits[j][1] for j in index]))
        sub = self.correlation[np.ix_(index, index)]
        return float(max(multivariate_normal(mean=np.zeros(len(index)), cov=sub, allow_singular=True)
                         .cdf(upper, lower_limit=lower, rng=rng), 0.0))

    # -- model files -------------------------------------------------------------------------
    def to_state(self, prefix: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        state = {"columns": self.columns, "kinds": self.kinds, "fixed": self.fixed, "weight": self.weight,
                 "null_share": self.null_share, "categories": self.categories, "nonfinite": self.nonfinite}
        arrays = {f"{prefix}.correlation": self.correlation}
        arrays.update({f"{prefix}.q{self.columns.index(n)}": q for n, q in self.quantiles.items()})
        return state, arrays

    @classmethod
    def from_state(cls, state: dict[str, Any], arrays: dict[str, np.ndarray], prefix: str) -> Component:
        columns = state["columns"]
        quantiles = {n: arrays[f"{prefix}.q{i}"] for i, n in enumerate(columns) if f"{prefix}.q{i}" in arrays}
        return cls(columns=columns, kinds=state["kinds"], fixed=state["fixed"], weight=state["weight"],
                   null_share=state["null_share"], categories=state["categories"], quantiles=quantiles,
                   correlation=arrays[f"{prefix}.correlation"],
                   nonfinite=check_nonfinite(state.get("nonfinite", {}), state["null_share"], prefix))


def check_nonfinite(nonfinite: Any, null_share: Any, prefix: str) -> dict[str, list[float]]:
    """A saved component's ``nonfinite`` field, checked: three shares in [0, 1] per float column,
    together no more than the column's missing share; else :class:`ModelFormatError` naming it."""
    where = f"state field 'components[{prefix.removeprefix('c')}].nonfinite'"
    if not isinstance(nonfinite, dict) or not isinstance(null_share, dict):
        raise ModelFormatError(f"{where} must map column names to [NaN, +inf, -inf] shares")
    for name, shares in nonfinite.items():
        ok = (isinstance(shares, list) and len(shares) == 3
              and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in shares))
        if not ok or not all(0.0 <= v <= 1.0 for v in shares):
            raise ModelFormatError(f"{where}[{name!r}] must be three shares in [0, 1], got {shares!r:.80}")
        missing = null_share.get(name)
        if not isinstance(missing, (int, float)) or sum(shares) > float(missing) + 1e-9:
            raise ModelFormatError(f"{where}[{name!r}] ({shares}) adds up to more than the column's missing "
                                   f"share ({missing!r})")
    return nonfinite


def _conditional(sigma: np.ndarray, target: list[int], given: list[int],
                 values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (rows × targets) and covariance of ``target`` scores given ``given`` scores."""
    if not given:
        return np.zeros((len(values), len(target))), sigma[np.ix_(target, target)]
    s_tg = sigma[np.ix_(target, given)]
    s_gg = sigma[np.ix_(given, given)]
    weights = np.linalg.solve(s_gg, s_tg.T).T
    return values @ weights.T, sigma[np.ix_(target, target)] - weights @ s_tg.T

