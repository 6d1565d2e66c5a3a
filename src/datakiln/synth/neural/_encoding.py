"""The transformed space of the neural synthesizers: mode-specific normalisation and one-hots.

Every modelled column becomes a few float32 columns of one matrix (NumPy only, vectorised
over rows; no per-row Python):

- a *numeric* column (numbers, decimals, dates and times as integer ticks) gets a Gaussian
  mixture of at most ``max_modes`` modes fitted by EM on up to :data:`MODE_ROWS` values
  (all columns' EM is plain array arithmetic; scikit-learn's BayesianGaussianMixture per
  column is what makes SDV slow). A column with at most ``max_modes`` distinct values gets
  one exact mode per value. A value becomes ``alpha = (x - mean_k) / (4 std_k)`` (clipped
  to ±0.99, one ``tanh`` output) plus a one-hot of its mode ``k`` drawn from the posterior
  (CTGAN's mode-specific normalisation); a column with missing values (null, NaN, ±inf)
  has one more one-hot slot for "missing";
- a *categorical* column is a one-hot of its kept categories (:mod:`datakiln.synth._vocab`:
  the ``max_categories`` most frequent, the rest pooled into one slot decoded at their real
  frequencies), plus a "missing" slot when it has nulls.

:meth:`Encoder.inverse` maps a matrix back to per-column values (mode and category by
argmax, or drawn from the slot probabilities) and :meth:`Encoder.to_arrow` to the exact
Arrow types of the training schema: integers rounded, everything clipped to the training
range (so bound constraints that the training data meets always hold).

The layout is a list of :class:`Span` (start, width, ``"tanh"`` or ``"softmax"``, column).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datakiln.errors import ModelFormatError
from datakiln.schema import numeric_values as ticks
from datakiln.synth._sampling import _restore
from datakiln.synth._vocab import Categories, build_vocabulary, check_vocabulary_state

__all__ = ["MODE_ROWS", "Encoder", "Span"]

MODE_ROWS = 50_000  # values per column the mixture of modes is fitted on
_WEIGHT_FLOOR = 0.005  # modes lighter than this are dropped (as SDV's weight threshold)
_BINS = 10  # quantile bins per numeric column in the fidelity view
SPIKE_SHARE = 0.01  # a value this common is its own exact mode
FEW_VALUES = 20  # a column with at most this many distinct values gets one exact mode per value


@dataclass(frozen=True)
class Span:
    """Columns ``start .. start + width`` of the matrix: one ``tanh`` value or a ``softmax`` one-hot."""

    start: int
    width: int
    activation: str
    column: str


def fit_modes(x: np.ndarray, max_modes: int, rng: np.random.Generator,
              iterations: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(means, stds, weights) of a 1-D Gaussian mixture of at most ``max_modes`` modes, by EM.

    ``x`` holds finite values only. A std of 0 marks an *exact* mode, a value that is
    reproduced exactly: every value of a column with at most ``max(max_modes, FEW_VALUES)``
    distinct values,
    and every spike (a value holding at least :data:`SPIKE_SHARE` of the rows and five times a
    typical value's share, such as the zeros of capital-gain or the 40 of hours-per-week);
    the other values get EM's Gaussian modes.
    """
    if x.size == 0:
        return np.zeros(1), np.zeros(1), np.ones(1)
    if x.size > MODE_ROWS:
        x = rng.choice(x, MODE_ROWS, replace=False)
    distinct, counts = np.unique(x, return_counts=True)
    if len(distinct) <= max(max_modes, FEW_VALUES):
        return distinct.astype(float), np.zeros(len(distinct)), counts / counts.sum()
    spike = counts >= max(SPIKE_SHARE * x.size, 5 * x.size / len(distinct))  # far above a typical value
    if spike.sum() >= max_modes:  # keep room for one Gaussian mode: the most common spikes only
        top = np.argsort(-counts, kind="stable")[:max_modes - 1]
        spike = np.zeros(len(distinct), dtype=bool)
        spike[top] = True
    rest = x[~np.isin(x, distinct[spike])]
    means, stds, weights = _em(rest, max_modes - int(spike.sum()), iterations)
    means = np.concatenate([distinct[spike].astype(float), means])
    stds = np.concatenate([np.zeros(int(spike.sum())), stds])
    weights = np.concatenate([counts[spike] / x.size, weights * rest.size / x.size])
    order = np.argsort(means, kind="stable")
    return means[order], stds[order], weights[order]


def _em(x: np.ndarray, modes: int, iterations: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian modes of ``x`` by EM on standardised values; light modes dropped half way."""
    centre, scale = float(x.mean()), float(x.std()) or 1.0
    z = (x - centre) / scale
    means = np.quantile(z, (np.arange(modes) + 0.5) / modes)
    variances = np.full(modes, 1.0 / modes)
    weights = np.full(modes, 1.0 / modes)
    floor = 1e-6
    for step in range(iterations):
        log_p = (np.log(weights) - 0.5 * np.log(2 * np.pi * variances)
                 - 0.5 * (z[:, None] - means) ** 2 / variances)
        log_p -= log_p.max(axis=1, keepdims=True)
        resp = np.exp(log_p)
        resp /= resp.sum(axis=1, keepdims=True)
        mass = resp.sum(axis=0) + 1e-12
        weights = mass / mass.sum()
        means = (resp * z[:, None]).sum(axis=0) / mass
        variances = np.maximum((resp * (z[:, None] - means) ** 2).sum(axis=0) / mass, floor)
        if step == iterations // 2:  # drop light modes once, then settle the rest
            keep = weights >= _WEIGHT_FLOOR
            means, variances, weights = means[keep], variances[keep], weights[keep] / weights[keep].sum()
    return centre + scale * means, scale * np.sqrt(variances), weights


class Encoder:
    """Fitted transform between tables (modelled columns) and the model's float32 matrix."""

    def __init__(self, columns: list[dict[str, Any]], schema: pa.Schema) -> None:
        self.columns = columns
        self.schema = schema
        self._setup()

    # -- fitting -----------------------------------------------------------------------------
    @classmethod
    def fit(cls, table: pa.Table, roles: dict[str, str], rng: np.random.Generator, *,
            max_modes: int = 10, max_categories: int = 1000, min_category_count: int = 1,
            integers: frozenset[str] = frozenset(), vocab: dict[str, list[Any]] | None = None) -> Encoder:
        """Learn the layout of ``table``'s columns with role numeric or categorical.

        ``vocab`` gives categories to keep first (in that order), e.g. a warm start's.
        """
        columns = []
        for name in table.column_names:
            role = roles[name]
            column = table[name]
            if role == "categorical":
                plain = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
                values = column.cast(plain) if pa.types.is_dictionary(column.type) else column
                counts = pc.value_counts(values.drop_null())
                seen = dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist()))
                text_typed = pa.types.is_string(plain) or pa.types.is_large_string(plain)
                kept, pool, withheld = build_vocabulary(seen, max_categories, min_category_count, text_typed)
                if vocab and name in vocab:
                    first = list(vocab[name])
                    kept = first + [v for v in kept if v not in first]
                    pool = {"values": [v for v in pool["values"] if v not in first],
                            "counts": [c for v, c in zip(pool["values"], pool["counts"]) if v not in first]}
                columns.append({"name": name, "kind": "categorical", "kept": _plain(kept),
                                "pool": {"values": _plain(pool["values"]), "counts": pool["counts"]},
                                "withheld": withheld,
                                "null": bool(column.null_count > 0)
                                or (withheld["rows"] > 0 and withheld["other"] is None)})
            elif role == "numeric":
                x = ticks(column)
                finite = x[np.isfinite(x)]
                means, stds, weights = fit_modes(finite, max_modes, rng)
                is_int = (pa.types.is_integer(column.type) or pa.types.is_temporal(column.type)
                          or name in integers)
                edges = (np.unique(np.quantile(finite, np.linspace(0, 1, _BINS + 1)[1:-1]))
                         if finite.size else np.zeros(0))
                columns.append({"name": name, "kind": "numeric", "means": means.tolist(),
                                "stds": stds.tolist(), "weights": weights.tolist(),
                                "null": bool((~np.isfinite(x)).any()),
                                "low": float(finite.min()) if finite.size else 0.0,
                                "high": float(finite.max()) if finite.size else 0.0,
                                "integer": bool(is_int), "edges": edges.tolist(),
                                "present": bool(finite.size)})
        return cls(columns, table.schema)

    def extend(self, table: pa.Table) -> Encoder:
        """This layout (a warm start's) widened for ``table``: its new categories appended to the
        kept ones, value ranges widened, missing slots added where ``table`` has missing values."""
        import copy

        columns = copy.deepcopy(self.columns)
        for col in columns:
            column = table[col["name"]]
            if col["kind"] == "categorical":
                plain = column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column
                seen = set(_plain(pc.unique(plain.drop_null()).to_pylist()))
                known = set(map(repr, col["kept"])) | set(map(repr, col["pool"]["values"]))
                col["kept"] = col["kept"] + sorted((v for v in seen if repr(v) not in known), key=str)
                col["null"] = col["null"] or column.null_count > 0
            else:
                x = ticks(column)
                finite = x[np.isfinite(x)]
                if finite.size:
                    col["present"] = True
                    col["low"] = min(col["low"], float(finite.min()))
                    col["high"] = max(col["high"], float(finite.max()))
                col["null"] = col["null"] or bool((~np.isfinite(x)).any())
        return Encoder(columns, self.schema)

    def index_map(self, old: Encoder) -> tuple[np.ndarray, np.ndarray]:
        """(positions in ``old``'s matrix, the same slots' positions here) for a layout made by
        ``old.extend``: values, kept categories, modes, the pool slot and the missing slot."""
        old_at, new_at = [], []
        old_spans = {(s.column, s.activation): s for s in old.spans}
        for span in self.spans:
            before = old_spans[(span.column, span.activation)]
            col = self.columns[self.names.index(span.column)]
            ocol = old.columns[old.names.index(span.column)]
            if span.activation == "tanh":
                pairs = [(0, 0)]
            elif col["kind"] == "numeric":
                k = len(col["means"])
                pairs = [(i, i) for i in range(k)] + ([(k, k)] if ocol["null"] else [])
            else:
                cats, ocats = self._categories[span.column], old._categories[span.column]
                pairs = [(i, i) for i in range(len(ocats.kept))]
                if len(ocats.pool):
                    pairs.append((ocats.pool_code, cats.pool_code))
                if ocol["null"]:
                    pairs.append((ocats.size, cats.size))
            old_at += [before.start + a for a, _ in pairs]
            new_at += [span.start + b for _, b in pairs]
        return np.asarray(old_at, dtype=np.int64), np.asarray(new_at, dtype=np.int64)

    def _setup(self) -> None:
        self.spans: list[Span] = []
        self._categories: dict[str, Categories] = {}
        start = 0
        for col in self.columns:
            name = col["name"]
            if col["kind"] == "numeric":
                self.spans.append(Span(start, 1, "tanh", name))
                start += 1
                width = len(col["means"]) + int(col["null"])
            else:
                dtype = self._plain_type(name)
                self._categories[name] = Categories(
                    pa.array(col["kept"]).cast(dtype) if col["kept"] else pa.array([], type=dtype),
                    pa.array(col["pool"]["values"]).cast(dtype) if col["pool"]["values"]
                    else pa.array([], type=dtype),
                    np.asarray(col["pool"]["counts"], dtype=np.float64), col["withheld"]["other"])
                width = self._categories[name].size + int(col["null"])
            self.spans.append(Span(start, width, "softmax", name))
            start += width
        self.width = start

    def _plain_type(self, name: str) -> pa.DataType:
        dtype = self.schema.field(name).type
        return dtype.value_type if pa.types.is_dictionary(dtype) else dtype

    @property
    def names(self) -> list[str]:
        """The encoded columns, in order."""
        return [c["name"] for c in self.columns]

    def softmax_spans(self, kind: str | None = None) -> list[Span]:
        """The one-hot spans (of ``kind`` columns only: "categorical" or "numeric")."""
        kinds = {c["name"]: c["kind"] for c in self.columns}
        return [s for s in self.spans
                if s.activation == "softmax" and (kind is None or kinds[s.column] == kind)]

    # -- table → matrix ------------------------------------------------------------------------
    def slots(self, table: pa.Table, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(alphas, slot codes): per numeric column its alpha; per softmax span the hot index.

        ``alphas`` is rows × numeric columns (float32), ``codes`` rows × softmax spans (int64).
        """
        n = table.num_rows
        alphas, codes = [], []
        for col in self.columns:
            name = col["name"]
            if col["kind"] == "categorical":
                code = self._categories[name].encode(table[name])
                missing_slot = self._categories[name].size
                codes.append(np.where(code < 0, missing_slot if col["null"] else 0, code))
                continue
            x = ticks(table[name])
            finite = np.isfinite(x)
            means, stds = np.asarray(col["means"]), np.asarray(col["stds"])
            weights = np.asarray(col["weights"])
            xf = np.where(finite, x, means[0])
            mode = _modes(xf, means, stds, weights, rng)
            spread = np.where(stds[mode] > 0, 4 * stds[mode], 1.0)
            alpha = np.where(stds[mode] > 0, np.clip((xf - means[mode]) / spread, -0.99, 0.99), 0.0)
            alphas.append(np.where(finite, alpha, 0.0))
            codes.append(np.where(finite, mode, len(means)) if col["null"] else mode)
        a = np.stack(alphas, axis=1).astype(np.float32) if alphas else np.zeros((n, 0), np.float32)
        c = np.stack(codes, axis=1).astype(np.int64) if codes else np.zeros((n, 0), np.int64)
        return a, c

    def transform(self, table: pa.Table, rng: np.random.Generator) -> np.ndarray:
        """The rows × :attr:`width` float32 matrix of ``table``."""
        alphas, codes = self.slots(table, rng)
        return self.matrix(alphas, codes)

    def value_mask(self, matrix: np.ndarray) -> np.ndarray:
        """Rows × value (``tanh``) columns: True where the value matters, i.e. the row's mode is a
        Gaussian one (not an exact value, not missing), so a loss on the value can skip the rest."""
        out = []
        for col in self.columns:
            if col["kind"] != "numeric":
                continue
            span = next(s for s in self.spans if s.column == col["name"] and s.activation == "softmax")
            slot = np.argmax(matrix[:, span.start:span.start + span.width], axis=1)
            stds = np.asarray(col["stds"] + [0.0])  # the missing slot (if any) counts as exact
            out.append(stds[np.minimum(slot, len(stds) - 1)] > 0)
        return np.stack(out, axis=1) if out else np.zeros((len(matrix), 0), dtype=bool)

    def gaussian_slots(self) -> np.ndarray:
        """Value columns × matrix width: 1 at the Gaussian (not exact, not missing) mode slots
        of each numeric column, so ``matrix @ G.T`` is each value's chance to matter."""
        numeric = [c for c in self.columns if c["kind"] == "numeric"]
        out = np.zeros((len(numeric), self.width), dtype=np.float32)
        for j, col in enumerate(numeric):
            span = next(s for s in self.spans if s.column == col["name"] and s.activation == "softmax")
            gaussian = np.flatnonzero(np.asarray(col["stds"]) > 0)
            out[j, span.start + gaussian] = 1.0
        return out

    def matrix(self, alphas: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Assemble the matrix from :meth:`slots`' output."""
        n = alphas.shape[0]
        out = np.zeros((n, self.width), dtype=np.float32)
        rows = np.arange(n)
        tanh = [s.start for s in self.spans if s.activation == "tanh"]
        out[:, tanh] = alphas
        for j, span in enumerate(s for s in self.spans if s.activation == "softmax"):
            out[rows, span.start + codes[:, j]] = 1.0
        return out

    # -- matrix → values -----------------------------------------------------------------------
    def inverse(self, matrix: np.ndarray, rng: np.random.Generator | None = None
                ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``{column: (values, missing)}``: category codes (int64) or numbers (float64 ticks).

        Softmax spans pick their slot by argmax, or with ``rng`` draw it from the span's
        values taken as probabilities.
        """
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        alpha = None
        for span in self.spans:
            block = matrix[:, span.start:span.start + span.width]
            if span.activation == "tanh":
                alpha = np.clip(block[:, 0].astype(np.float64), -1.0, 1.0)
                continue
            slot = _pick(block, rng)
            col = self.columns[self.names.index(span.column)]
            if col["kind"] == "categorical":
                size = self._categories[span.column].size
                missing = slot >= size
                out[span.column] = (np.where(missing, -1, slot), missing)
            else:
                means, stds = np.asarray(col["means"]), np.asarray(col["stds"])
                k = len(means)
                missing = (slot >= k) | (not col.get("present", True))  # no value in training: always missing
                mode = np.minimum(slot, k - 1)
                assert alpha is not None
                x = np.clip(alpha * 4 * stds[mode] + means[mode], col["low"], col["high"])  # std 0: exact
                if col["integer"]:
                    x = np.round(x)
                out[span.column] = (x, missing)
        return out

    def to_arrow(self, name: str, values: np.ndarray, missing: np.ndarray, rng: np.random.Generator,
                 dtype: pa.DataType | None = None) -> pa.Array:
        """One decoded column as an Arrow array of its training type (or ``dtype``)."""
        dtype = dtype or self.schema.field(name).type
        col = self.columns[self.names.index(name)]
        if col["kind"] == "categorical":
            return self._categories[name].decode(values, missing, rng).cast(dtype)
        return _restore(values, missing, dtype)

    def discrete(self, columns: dict[str, tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """Rows × columns of small codes (categories; numbers in quantile bins; missing last)."""
        out = []
        for col in self.columns:
            values, missing = columns[col["name"]]
            if col["kind"] == "categorical":
                size = self._categories[col["name"]].size
                out.append(np.where(missing, size, values))
            else:
                edges = np.asarray(col["edges"])
                out.append(np.where(missing, len(edges) + 1, np.searchsorted(edges, values, side="right")))
        return np.stack(out, axis=1).astype(np.int64) if out else np.zeros((0, 0), np.int64)

    def category_code(self, name: str, value: Any) -> int | None:
        """The slot of a categorical condition value (None: not a kept or pooled value)."""
        col = self.columns[self.names.index(name)]
        categories = self._categories[name]
        if value is None:
            return categories.size if col["null"] else None
        kept = categories.kept.to_pylist()
        if value in kept:
            return kept.index(value)
        if value in categories.pool.to_pylist():
            return categories.pool_code
        return None

    # -- state -------------------------------------------------------------------------------
    def to_state(self) -> list[dict[str, Any]]:
        """Plain JSON of the layout."""
        return self.columns

    @classmethod
    def from_state(cls, state: Any, schema: pa.Schema, roles: dict[str, str]) -> Encoder:
        """Rebuild from :meth:`to_state`, checking every field (:class:`ModelFormatError`)."""
        if not isinstance(state, list):
            raise ModelFormatError(f"state field 'encoder' must be a list of columns, got "
                                   f"{type(state).__name__}")
        for col in state:
            _check_column(col, schema, roles)
        try:
            return cls(state, schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError) as exc:
            raise ModelFormatError(f"state field 'encoder': categories do not match their column types "
                                   f"({exc})"
                                   ) from exc


def _modes(x: np.ndarray, means: np.ndarray, stds: np.ndarray, weights: np.ndarray,
           rng: np.random.Generator) -> np.ndarray:
    """Mode of each value: an exact mode (std 0) if the value is its value, else drawn from the
    posterior of the Gaussian modes (the nearest mode when there is none)."""
    exact = stds == 0
    mode = np.full(len(x), -1, dtype=np.int64)
    if exact.any():
        values = means[exact]
        index = np.searchsorted(values, x).clip(0, len(values) - 1)
        hit = values[index] == x
        mode[hit] = np.flatnonzero(exact)[index[hit]]
    rest = mode < 0
    if not rest.any():
        return mode
    if exact.all():
        mode[rest] = np.abs(x[rest, None] - means).argmin(axis=1)
        return mode
    gauss = np.flatnonzero(~exact)
    safe = stds[gauss]
    log_p = np.log(weights[gauss] + 1e-12) - np.log(safe) - 0.5 * ((x[rest, None] - means[gauss]) / safe) ** 2
    log_p -= log_p.max(axis=1, keepdims=True)
    cumulative = np.cumsum(np.exp(log_p), axis=1)
    draw = rng.random(int(rest.sum())) * cumulative[:, -1]
    mode[rest] = gauss[np.minimum((cumulative < draw[:, None]).sum(axis=1), len(gauss) - 1)]
    return mode


def _pick(block: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
    if rng is None or block.shape[1] == 1:
        return np.argmax(block, axis=1)
    p = np.clip(block.astype(np.float64), 0, None) + 1e-12
    cumulative = np.cumsum(p, axis=1)
    draw = rng.random(len(block)) * cumulative[:, -1]
    return np.minimum((cumulative < draw[:, None]).sum(axis=1), block.shape[1] - 1)


def _plain(values: list[Any]) -> list[Any]:
    return [v.isoformat() if hasattr(v, "isoformat") else v for v in values]


def _number_list(value: Any, where: str, positive: bool = False) -> np.ndarray:
    if not isinstance(value, list) or not value or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise ModelFormatError(f"{where} must be a non-empty list of numbers, got {value!r:.80}")
    array = np.asarray(value, dtype=np.float64)
    if not np.isfinite(array).all() or (positive and (array <= 0).any()):
        raise ModelFormatError(f"{where} must hold finite{' positive' if positive else ''} numbers")
    return array


def _check_column(col: Any, schema: pa.Schema, roles: dict[str, str]) -> None:
    if not isinstance(col, dict) or not isinstance(col.get("name"), str):
        raise ModelFormatError(f"state field 'encoder' holds a column that is not a mapping with a name: "
                               f"{col!r:.80}")
    name = col["name"]
    where = f"state field 'encoder.{name}'"
    if name not in schema.names or col.get("kind") != roles.get(name):
        raise ModelFormatError(f"{where}: not a modelled {col.get('kind')!r} column of the schema")
    if not isinstance(col.get("null"), bool):
        raise ModelFormatError(f"{where}.null must be true or false")
    if col["kind"] == "categorical":
        check_vocabulary_state(name, col.get("kept"), col.get("pool"), col.get("withheld"))
        if not col["kept"] and not col["pool"]["values"] and not col["null"]:
            raise ModelFormatError(f"{where} has no categories")
        return
    means = _number_list(col.get("means"), f"{where}.means")
    stds = _number_list(col.get("stds"), f"{where}.stds")
    if (stds < 0).any():
        raise ModelFormatError(f"{where}.stds must be >= 0 (0: an exact value)")
    weights = _number_list(col.get("weights"), f"{where}.weights")
    if not (len(means) == len(stds) == len(weights)):
        raise ModelFormatError(f"{where}: means, stds and weights differ in length")
    for key in ("low", "high"):
        if not isinstance(col.get(key), (int, float)) or not np.isfinite(col[key]):
            raise ModelFormatError(f"{where}.{key} must be a finite number")
    if col["low"] > col["high"]:
        raise ModelFormatError(f"{where}: low is above high")
    if not isinstance(col.get("present", True), bool):
        raise ModelFormatError(f"{where}.present must be true or false")
    if not isinstance(col.get("integer"), bool):
        raise ModelFormatError(f"{where}.integer must be true or false")
    edges = col.get("edges")
    if not isinstance(edges, list) or (
            edges and not np.all(np.diff(_number_list(edges, f"{where}.edges")) > 0)):
        raise ModelFormatError(f"{where}.edges must be an increasing list of numbers")
