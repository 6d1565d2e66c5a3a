"""A streaming Gaussian-copula synthesizer: empirical marginals, correlation of normal scores.

Fitting takes two passes over the data, batch by batch, so a table larger than memory is
fine: the first collects exact category frequencies, exact null counts and a uniform row
sample (``sample_rows``, exact when the data is no larger) whose quantiles give each
numeric column a fine empirical quantile function (``grid`` points, ends at the exact
min and max, point masses such as many zeros kept as flat stretches); the second maps
every row to normal scores and accumulates their correlation, made positive definite.

Each column lives on the uniform scale in [0, 1]: missing values take the first ``p_null``
of it (so their correlation with other columns is kept), categories take intervals in
order of frequency, numbers the rest through their quantile function. Sampling draws
correlated normals, maps them back, and rounds integers, datetimes and decimals to their
type. Rows come in fixed chunks of 65,536, each from its own seeded generator, so the same
seed gives the same rows whatever the batch size. Identifier columns are regenerated
(unique) and PII columns replaced by format-valid fakes, never copied.

Conditional sampling (``conditions={"income": ">50K"}`` or ``{"age": (30, 40)}``) is
exact: the conditioned columns' normal scores are drawn from their truncated conditional
distributions, the other columns from the Gaussian conditioned on them; no rejection.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy import special

from datakiln.dataset._sketches import RowSample
from datakiln.dataset.dataset import Dataset, as_dataset
from datakiln.errors import InvalidArgumentError
from datakiln.synth.base import Synthesizer, register
from datakiln.units import parse_bytes

__all__ = ["GaussianCopula"]

CHUNK_ROWS = 65_536
_EPS = 1e-9


def _ndtr(z: np.ndarray) -> np.ndarray:
    return special.ndtr(z)


def _ndtri(u: np.ndarray) -> np.ndarray:
    return special.ndtri(np.clip(u, _EPS, 1 - _EPS))


def _ticks(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    dtype = values.type
    if pa.types.is_timestamp(dtype) or pa.types.is_date(dtype) or pa.types.is_duration(dtype):
        storage = pa.int32() if dtype.bit_width == 32 else pa.int64()
        values = pc.cast(pc.cast(values, storage), pa.int64())
    return pc.cast(values, pa.float64())


def _role(kind: str, dtype: pa.DataType) -> str:
    """How the copula treats a column: numeric, categorical, identifier or pii."""
    if kind in ("identifier", "pii"):
        return kind
    numeric = (pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype)
               or pa.types.is_temporal(dtype))
    return "numeric" if numeric and kind != "categorical" else "categorical"


@register
class GaussianCopula(Synthesizer):
    """Gaussian copula over empirical marginals, fitted in two streaming passes.

    Parameters
    ----------
    sample_rows : int
        Rows in the uniform sample behind the numeric quantile functions (default 200,000).
    grid : int
        Points of each quantile function (default 2,049).
    max_categories : int
        Most frequent categories kept per column (default 10,000); rarer ones are drawn
        from the remaining frequency by their share, never invented.
    memory_budget : str or int
        Budget for the fitting passes (default ``"1GB"``).
    seed : int
        Seed of the fitting randomness (tie-breaking inside categories and spikes).
    """

    def __init__(self, *, sample_rows: int = 200_000, grid: int = 2049,
                 max_categories: int = 10_000, memory_budget: str | int | None = "1GB",
                 seed: int = 0) -> None:
        self.sample_rows = sample_rows
        self.grid = grid
        self.max_categories = max_categories
        self.memory_budget = memory_budget
        self.seed = seed

    # -- fitting ---------------------------------------------------------------------------
    def _fit(self, data: Any) -> None:
        dataset = as_dataset(data, what="fit")
        budget = parse_bytes(self.memory_budget)
        kinds = dataset.schema
        self.roles_ = {f.name: _role(kinds[f.name].kind, f.type) for f in dataset.arrow_schema}
        self.pii_ = {name: kinds[name].pii for name, role in self.roles_.items() if role == "pii"}
        rng = np.random.default_rng(self.seed)
        sample = RowSample(self.sample_rows)
        counts: dict[str, dict[Any, int]] = {n: {} for n, r in self.roles_.items() if r == "categorical"}
        nulls = dict.fromkeys(self.roles_, 0)
        rows = 0
        for table in dataset._tables(memory_budget=budget):
            rows += table.num_rows
            for name in self.roles_:
                nulls[name] += table[name].null_count
            for name, seen in counts.items():
                summary = pc.value_counts(table[name].drop_null())
                for value, count in zip(summary.field("values").to_pylist(),
                                        summary.field("counts").to_pylist()):
                    seen[value] = seen.get(value, 0) + count
            sample.add(table.select([n for n, r in self.roles_.items() if r != "pii"]), rng)
        self.rows_ = rows
        self.null_share_ = {n: nulls[n] / rows if rows else 0.0 for n in self.roles_}
        self.categories_ = {}
        for name, seen in counts.items():
            ranked = sorted(seen.items(), key=lambda kv: (-kv[1], str(kv[0])))[: self.max_categories]
            total = sum(c for _, c in ranked) or 1
            self.categories_[name] = {"values": [v for v, _ in ranked],
                                      "shares": [c / total for _, c in ranked]}
        self.quantiles_ = {}
        for name, role in self.roles_.items():
            if role in ("numeric", "identifier") and sample.table is not None:
                values = _ticks(sample.table[name]).drop_null().to_numpy(zero_copy_only=False)
                levels = np.linspace(0, 1, self.grid)
                self.quantiles_[name] = (np.quantile(values, levels) if values.size
                                         else np.zeros(self.grid))
        self.modelled_ = [n for n, r in self.roles_.items() if r in ("numeric", "categorical")]
        if sample.table is not None:
            self._order_categories(sample.table, rng)
        self.correlation_ = self._correlate(dataset, budget)

    def _order_categories(self, sample: pa.Table, rng: np.random.Generator, rounds: int = 3) -> None:
        """Order each column's categories along its strongest link to the other columns.

        A category's place on the normal scale is arbitrary, and a Gaussian copula only sees
        monotone relations; so, on the row sample, each categorical column's categories are
        sorted by the first principal direction of their mean normal scores of the other
        columns (weighted by frequency), a few rounds in turn (optimal scaling). Education
        then lines up with education-num, occupation with income, and so on.
        """
        names = [n for n in self.modelled_ if self.roles_[n] == "categorical"
                 and len(self.categories_[n]["values"]) > 2]
        if not names or len(self.modelled_) < 2:
            return
        scores = _ndtri(self._uniform(sample.select(self.modelled_), rng, jitter=False))
        for _ in range(rounds):
            for name in names:
                j = self.modelled_.index(name)
                spec = self.categories_[name]
                codes = self._category_codes(sample[name], spec["values"])
                known = codes >= 0
                others = np.delete(scores[known], j, axis=1)
                counts = np.bincount(codes[known], minlength=len(spec["values"])).astype(float)
                sums = np.stack([np.bincount(codes[known], weights=others[:, i], minlength=len(counts))
                                 for i in range(others.shape[1])], axis=1)
                seen = counts > 0
                means = sums[seen] / counts[seen, None]
                weights = counts[seen] / counts[seen].sum()
                centred = means - weights @ means
                _, _, directions = np.linalg.svd(centred * np.sqrt(weights)[:, None], full_matrices=False)
                position = np.full(len(counts), np.inf)  # unseen in the sample: at the end
                position[seen] = centred @ directions[0]
                order = np.argsort(position, kind="stable")
                spec["values"] = [spec["values"][i] for i in order]
                spec["shares"] = [spec["shares"][i] for i in order]
                single = self._uniform(sample.select([name]), rng, jitter=False, names=[name])
                scores[:, j] = _ndtri(single[:, 0])

    @staticmethod
    def _category_codes(column: pa.ChunkedArray, values: list[Any]) -> np.ndarray:
        """Index of each value in ``values`` (-1 for nulls and values not listed)."""
        plain = column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column
        lookup = pa.array(values, type=plain.type)
        index = pc.index_in(plain, value_set=lookup).to_numpy(zero_copy_only=False)
        return np.nan_to_num(np.asarray(index, dtype=np.float64), nan=-1).astype(np.int64)

    def _uniform(self, table: pa.Table, rng: np.random.Generator, jitter: bool = True,
                 names: list[str] | None = None) -> np.ndarray:
        """Columns ``names`` (default: the modelled ones) on the uniform scale (rows × columns).

        Within a category's interval (or a tie's stretch) a row lands at random, or in the
        middle with ``jitter=False``.
        """
        names = self.modelled_ if names is None else names
        out = np.empty((table.num_rows, len(names)))
        for j, name in enumerate(names):
            column = table[name]
            p0 = self.null_share_[name]
            missing = np.asarray(pc.is_null(column).to_numpy(zero_copy_only=False))
            if self.roles_[name] == "categorical":
                values = self.categories_[name]["values"]
                shares = np.asarray(self.categories_[name]["shares"])
                starts = p0 + (1 - p0) * np.r_[0.0, np.cumsum(shares)[:-1]]
                widths = (1 - p0) * shares
                index = np.maximum(self._category_codes(column, values), 0)
                spread = rng.random(table.num_rows) if jitter else 0.5
                u = starts[index] + spread * widths[index] if len(values) else np.full(table.num_rows, 0.5)
            else:
                grid = self.quantiles_[name]
                x = _ticks(column).to_numpy(zero_copy_only=False)
                left = np.searchsorted(grid, x, side="left")
                right = np.searchsorted(grid, x, side="right")
                spread = rng.random(len(x)) if jitter else 0.5
                position = left + spread * np.maximum(right - left, 0)  # ties: spread
                u = p0 + (1 - p0) * np.clip(position / (len(grid) - 1), 0, 1)
            u = np.where(missing, (rng.random(table.num_rows) if jitter else 0.5) * p0, u)
            out[:, j] = u
        return out

    def _correlate(self, dataset: Dataset, budget: int | None) -> np.ndarray:
        k = len(self.modelled_)
        total, outer, n = np.zeros(k), np.zeros((k, k)), 0
        for index, table in enumerate(dataset.select(self.modelled_)._tables(memory_budget=budget)):
            z = _ndtri(self._uniform(table, np.random.default_rng([self.seed, 1, index])))
            total += z.sum(axis=0)
            outer += z.T @ z
            n += len(z)
        if n < 2 or k == 0:
            return np.eye(k)
        mean = total / n
        cov = outer / n - np.outer(mean, mean)
        scale = np.sqrt(np.clip(np.diag(cov), _EPS, None))
        return _nearest_correlation(cov / np.outer(scale, scale))

    # -- sampling --------------------------------------------------------------------------
    def _sample(self, n: int, conditions: dict[str, Any], rng: np.random.Generator) -> pa.Table:
        seed = int(rng.integers(0, 2**62))  # derived from the caller's seed
        pieces = [self._chunk(min(CHUNK_ROWS, n - start), conditions, np.random.default_rng([seed, index]))
                  for index, start in enumerate(range(0, n, CHUNK_ROWS))]
        if not pieces:
            return self.schema_.empty_table()
        table = pa.concat_tables(pieces)
        if any(r == "identifier" for r in self.roles_.values()):
            table = self._identifiers(table, n)
        return table

    def _chunk(self, n: int, conditions: dict[str, Any], rng: np.random.Generator) -> pa.Table:
        fakes = np.random.default_rng(rng.integers(0, 2**62))  # its own stream: rows stay stable
        z = self._normals(n, conditions, rng)
        u = _ndtr(z)
        columns: dict[str, Any] = {}
        for j, name in enumerate(self.modelled_):
            columns[name] = self._from_uniform(name, u[:, j])
        for name, role in self.roles_.items():
            dtype = self.schema_.field(name).type
            if role == "pii":
                columns[name] = _fake(self.pii_.get(name), n, fakes, dtype)
            elif role == "identifier":
                columns[name] = pa.nulls(n, dtype)  # filled in after all chunks
        for name, value in conditions.items():
            dtype = self.schema_.field(name).type
            if self.roles_[name] in ("pii", "identifier") or (
                    self.roles_[name] == "numeric" and not isinstance(value, (tuple, list))):
                columns[name] = pa.array([value] * n).cast(dtype)  # a fixed value, exactly
            elif self.roles_[name] == "numeric":  # a range: guaranteed, not just likely
                low, high = (pa.scalar(v).cast(dtype) for v in value)
                columns[name] = pc.max_element_wise(pc.min_element_wise(columns[name], high), low)
        return pa.table({name: columns[name] for name in self.schema_.names})

    def _bounds(self, name: str, condition: Any) -> tuple[float, float]:
        """The uniform-scale interval of a condition on ``name``."""
        p0 = self.null_share_[name]
        if condition is None:
            return 0.0, p0
        if self.roles_[name] == "categorical":
            values = self.categories_[name]["values"]
            if condition not in values:
                raise InvalidArgumentError(f"{condition!r} is not a category of {name!r} seen in "
                                           f"training (e.g. {values[:5]})")
            shares = np.asarray(self.categories_[name]["shares"])
            k = values.index(condition)
            start = p0 + (1 - p0) * shares[:k].sum()
            return start, start + (1 - p0) * shares[k]
        low, high = condition if isinstance(condition, (tuple, list)) else (condition, condition)
        grid = self.quantiles_[name]
        ticks = _ticks(pa.array([low, high]).cast(self.schema_.field(name).type)).to_numpy()
        a = np.searchsorted(grid, ticks[0], side="left") / (len(grid) - 1)
        b = (np.searchsorted(grid, ticks[1], side="right") - 1) / (len(grid) - 1)
        if b <= a:  # the range falls between two grid points: a thin interval there
            b = min(1.0, a + 0.5 / (len(grid) - 1))
        return p0 + (1 - p0) * a, p0 + (1 - p0) * b

    def _normals(self, n: int, conditions: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        sigma = self.correlation_
        k = len(self.modelled_)
        fixed = [self.modelled_.index(c) for c in conditions if c in self.modelled_]
        if not fixed:
            return rng.standard_normal((n, k)) @ np.linalg.cholesky(sigma).T
        z = np.empty((n, k))
        done: list[int] = []
        for j in fixed:  # each conditioned score from its truncated conditional distribution
            a, b = self._bounds(self.modelled_[j], conditions[self.modelled_[j]])
            mean, var = _conditional(sigma, [j], done, z[:, done])
            sd = np.sqrt(max(var[0, 0], _EPS))
            lo = _ndtr((_ndtri(np.full(n, a)) - mean[:, 0]) / sd)
            hi = _ndtr((_ndtri(np.full(n, b)) - mean[:, 0]) / sd)
            z[:, j] = mean[:, 0] + sd * _ndtri(lo + rng.random(n) * (hi - lo))
            done.append(j)
        free = [j for j in range(k) if j not in done]
        if free:
            mean, var = _conditional(sigma, free, done, z[:, done])
            z[:, free] = mean + rng.standard_normal((n, len(free))) @ np.linalg.cholesky(
                var + _EPS * np.eye(len(free))).T
        return z

    def _from_uniform(self, name: str, u: np.ndarray) -> pa.Array:
        dtype = self.schema_.field(name).type
        p0 = self.null_share_[name]
        missing = u < p0
        rest = np.clip((u - p0) / max(1 - p0, _EPS), 0, 1)
        if self.roles_[name] == "categorical":
            values = self.categories_[name]["values"]
            if not values:
                return pa.nulls(len(u), dtype)
            edges = np.cumsum(self.categories_[name]["shares"])[:-1]
            picked = pa.array(values, type=dtype if not pa.types.is_dictionary(dtype) else dtype.value_type)
            result = picked.take(pa.array(np.searchsorted(edges, rest, side="right")))
            return pc.if_else(pa.array(missing), pa.scalar(None, result.type), result).cast(dtype)
        grid = self.quantiles_[name]
        x = np.interp(rest * (len(grid) - 1), np.arange(len(grid)), grid)
        return _restore(x, missing, dtype)

    def _identifiers(self, table: pa.Table, n: int) -> pa.Table:
        for name, role in self.roles_.items():
            if role != "identifier":
                continue
            dtype = self.schema_.field(name).type
            start = int(self.quantiles_[name][-1]) + 1 if name in self.quantiles_ else 0
            if pa.types.is_integer(dtype):
                ids = pa.array(np.arange(start, start + n)).cast(dtype)
            else:
                ids = pa.array([f"id-{i:0{len(str(n))}d}" for i in range(n)]).cast(dtype)
            table = table.set_column(table.schema.get_field_index(name), name, ids)
        return table

    # -- model files ---------------------------------------------------------------------
    def _to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        state = {"roles": self.roles_, "pii": self.pii_, "rows": self.rows_,
                 "null_share": self.null_share_, "categories": _jsonable(self.categories_),
                 "modelled": self.modelled_}
        arrays = {"correlation": self.correlation_}
        arrays.update({f"quantiles.{i}": self.quantiles_[name]
                       for i, name in enumerate(self.roles_) if name in self.quantiles_})
        return state, arrays

    def _from_state(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.roles_, self.pii_, self.rows_ = state["roles"], state["pii"], state["rows"]
        self.null_share_, self.modelled_ = state["null_share"], state["modelled"]
        self.categories_ = _from_json(state["categories"], self.schema_)
        self.correlation_ = arrays["correlation"]
        self.quantiles_ = {name: arrays[f"quantiles.{i}"] for i, name in enumerate(self.roles_)
                           if f"quantiles.{i}" in arrays}


def _conditional(sigma: np.ndarray, target: list[int], given: list[int],
                 values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (rows × targets) and covariance of ``target`` scores given ``given`` scores."""
    if not given:
        return np.zeros((len(values), len(target))), sigma[np.ix_(target, target)]
    s_tg = sigma[np.ix_(target, given)]
    s_gg = sigma[np.ix_(given, given)]
    weights = np.linalg.solve(s_gg, s_tg.T).T
    return values @ weights.T, sigma[np.ix_(target, target)] - weights @ s_tg.T


def _nearest_correlation(matrix: np.ndarray) -> np.ndarray:
    """The matrix with eigenvalues clipped to stay positive, rescaled to a unit diagonal."""
    symmetric = (matrix + matrix.T) / 2
    values, vectors = np.linalg.eigh(symmetric)
    fixed = vectors @ np.diag(np.clip(values, 1e-6, None)) @ vectors.T
    scale = np.sqrt(np.diag(fixed))
    return fixed / np.outer(scale, scale)


def _restore(x: np.ndarray, missing: np.ndarray, dtype: pa.DataType) -> pa.Array:
    """Numbers back to the column's type: integers and ticks rounded, decimals to scale."""
    if pa.types.is_integer(dtype):
        return pa.array(np.round(x).astype(np.int64), mask=missing).cast(dtype)
    if pa.types.is_timestamp(dtype) or pa.types.is_date(dtype) or pa.types.is_duration(dtype):
        storage = pa.int32() if dtype.bit_width == 32 else pa.int64()
        return pa.array(np.round(x).astype(np.int64), mask=missing).cast(storage).cast(dtype)
    if pa.types.is_decimal(dtype):
        return pc.cast(pc.round(pa.array(x, mask=missing), ndigits=dtype.scale), dtype)
    return pa.array(x, mask=missing).cast(dtype)


def _fake(kind: str | None, n: int, rng: np.random.Generator, dtype: pa.DataType) -> pa.Array:
    """Format-valid fake values for a PII column (never the training values)."""
    numbers = rng.integers(0, 10**6, n)
    if kind == "email":
        values = [f"user{v:06d}@example.com" for v in numbers]
    elif kind == "phone":
        values = [f"+1-555-01{v % 100:02d}" for v in numbers]
    elif kind == "ip":
        values = [f"192.0.2.{v % 254 + 1}" for v in numbers]  # TEST-NET-1, never routed
    elif kind == "credit_card":
        values = [_luhn_complete(f"400000{v:09d}") for v in numbers]
    elif kind == "address":
        values = [f"{v % 9999 + 1} Example Street" for v in numbers]
    else:
        values = [f"Person {v:06d}" for v in numbers]
    return pa.array(values).cast(dtype)


def _luhn_complete(body: str) -> str:
    """``body`` plus the check digit that makes it Luhn-valid."""
    digits = [int(c) for c in body]
    total = sum(sum(divmod(2 * d, 10)) if i % 2 == 0 else d for i, d in enumerate(reversed(digits)))
    return body + str((10 - total % 10) % 10)


def _jsonable(categories: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for name, spec in categories.items():
        values = [v.isoformat() if hasattr(v, "isoformat") else v for v in spec["values"]]
        out[name] = {"values": values, "shares": spec["shares"]}
    return out


def _from_json(categories: dict[str, Any], schema: pa.Schema) -> dict[str, dict[str, Any]]:
    out = {}
    for name, spec in categories.items():
        dtype = schema.field(name).type
        plain = dtype.value_type if pa.types.is_dictionary(dtype) else dtype
        values = pa.array(spec["values"]).cast(plain).to_pylist() if spec["values"] else []
        out[name] = {"values": values, "shares": spec["shares"]}
    return out
