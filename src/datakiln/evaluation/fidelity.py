"""Fidelity: how closely synthetic data follows the real data's columns and column pairs.

The scores follow SDMetrics' published definitions (its QualityReport), so numbers can be
compared with theirs:

- **column shapes**: per column, the KS complement ``1 - D`` (largest gap between the two
  distribution functions, nulls dropped) for continuous columns, the TV complement
  ``1 - ½ Σ |p_real - p_synth|`` over the categories for discrete ones; averaged.
- **column-pair trends**: for two continuous columns ``1 - |r_real - r_synth| / 2``
  (Pearson, rows where both are present); otherwise the contingency similarity
  ``1 - ½ Σ |p_real(a, b) - p_synth(a, b)|`` with nulls as their own value and
  continuous columns cut into 10 equal-width bins, each table on its own range as
  SDMetrics does (``np.digitize`` on ``np.histogram_bin_edges``: the maximum shares the
  null bin); averaged over the
  pairs that are related in the real data (|r| > 0.5, Cramér's V > 0.3), as SDMetrics
  0.32's QualityReport does; the mean over every pair is reported beside it.
- the overall **score** is the mean of the two; missing-value similarity
  ``1 - |null share real - null share synth|`` and range / category coverage are reported
  per column beside them.
- **non-finite values** (NaN, +inf, -inf in float columns) are compared like missing
  values: their shares of all rows on each side, and the TV complement over
  {NaN, +inf, -inf, other} as ``non_finite_similarity`` per continuous column (averaged as
  ``non_finite_values``). The KS statistic, histograms, ranges and correlations use the
  finite values; a column without finite values on one side is scored by the TV
  complement over its value classes (finite, NaN, +inf, -inf) and plotted as bars, and a
  column with no values at all on one side gets no shape score but a ``note``.

Everything is streamed: a first pass over each table counts categories and nulls, finds
ranges and keeps a uniform row sample; a second pass fills histograms, contingency tables
and correlation sums batch by batch, so memory does not grow with the row count. The KS
statistic is read at the union of both samples' values (at most ``MAX_EDGES`` points): it
is exact while a table fits in its sample, and within one sample step otherwise.
SDMetrics subsamples 50,000 rows for each contingency table; this module counts all rows.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datakiln.dataset._sketches import RowSample
from datakiln.dataset.dataset import Dataset
from datakiln.evaluation._columns import ColumnRoles, jsonable, numbers, plain

__all__ = ["FirstPass", "both", "column_pair_trends", "first_pass", "fidelity_scores"]

MAX_EDGES = 20_000
PAIR_BINS = 10  # SDMetrics' num_discrete_bins
PLOT_BINS = 30
PLOT_CATEGORIES = 20
DENSE_CELLS = 1 << 22
CORRELATION_THRESHOLD = 0.5  # SDMetrics 0.32 QualityReport: pairs related at least this much count
ASSOCIATION_THRESHOLD = 0.3  # (|Pearson r| for two continuous columns, Cramér's V otherwise)


@dataclass
class FirstPass:
    """Counts, null counts, ranges and a row sample of one table (pass one)."""

    rows: int = 0
    nulls: dict[str, int] = field(default_factory=dict)
    counts: dict[str, dict[Any, int]] = field(default_factory=dict)
    low: dict[str, float] = field(default_factory=dict)
    high: dict[str, float] = field(default_factory=dict)
    special: dict[str, np.ndarray] = field(default_factory=dict)  # [NaN, +inf, -inf] counts
    sample: RowSample | None = None

    def finite(self, name: str) -> int:
        """Rows of ``name`` that hold a finite value (neither null nor NaN nor ±inf)."""
        return self.rows - self.nulls[name] - int(self.special.get(name, np.zeros(3)).sum())


SPECIAL = ("NaN", "+inf", "-inf")


def _special_counts(column: pa.ChunkedArray | pa.Array, x: np.ndarray) -> np.ndarray:
    """[NaN, +inf, -inf] counts of a column whose values (nulls as NaN) are ``x``."""
    if not pa.types.is_floating(column.type) or np.isfinite(x).sum() + column.null_count == len(x):
        return np.zeros(3, dtype=np.int64)
    return np.array([int(np.isnan(x).sum()) - column.null_count, int(np.sum(x == np.inf)),
                     int(np.sum(x == -np.inf))], dtype=np.int64)


def both(fn: Callable[[Any], Any], first: Any, second: Any) -> tuple[Any, Any]:
    """``(fn(first), fn(second))`` computed side by side on two threads."""
    with ThreadPoolExecutor(2) as pool:
        a, b = pool.submit(fn, first), pool.submit(fn, second)
        return a.result(), b.result()


def first_pass(dataset: Dataset, roles: ColumnRoles, sample_rows: int, seed: int,
               memory_budget: int | None, on_progress: Callable[[int], None] | None = None) -> FirstPass:
    """Stream ``dataset`` once: exact counts per category, null counts, ranges, a row sample."""
    result = FirstPass(nulls=dict.fromkeys(dataset.columns, 0),
                       counts={n: {} for n in roles.discrete}, sample=RowSample(sample_rows),
                       special={n: np.zeros(3, dtype=np.int64) for n in roles.continuous})
    rng = np.random.default_rng([seed, 7])

    def partial(table: pa.Table) -> tuple[pa.Table, dict[str, Any]]:
        counts = {}
        for name in roles.discrete:
            summary = pc.value_counts(plain(table[name]).drop_null())
            counts[name] = (summary.field("values").to_pylist(), summary.field("counts").to_pylist())
        ranges, special = {}, {}
        for name in roles.continuous:
            x = numbers(table[name])
            special[name] = _special_counts(table[name], x)
            x = x[np.isfinite(x)]
            if x.size:
                ranges[name] = (float(x.min()), float(x.max()))
        return table, {"counts": counts, "ranges": ranges, "special": special}

    for table, part in dataset._tables(partial, memory_budget=memory_budget):
        result.rows += table.num_rows
        for name in dataset.columns:
            result.nulls[name] += table[name].null_count
        for name, (values, counts) in part["counts"].items():
            seen = result.counts[name]
            for value, count in zip(values, counts):
                seen[value] = seen.get(value, 0) + count
        for name, counts in part["special"].items():
            result.special[name] += counts
        for name, (low, high) in part["ranges"].items():
            result.low[name] = min(low, result.low.get(name, low))
            result.high[name] = max(high, result.high.get(name, high))
        result.sample.add(table, rng)
        if on_progress is not None:
            on_progress(table.num_rows)
    return result


@dataclass
class _Layout:
    """What pass two needs to know, fixed from both first passes."""

    roles: ColumnRoles
    vocab: dict[str, list[Any]]  # real categories by frequency, then synthetic-only ones
    ks_edges: dict[str, np.ndarray]
    pair_edges: dict[str, dict[str, np.ndarray]]  # side ("real"/"synthetic") → column → edges
    plot_edges: dict[str, np.ndarray]
    center: dict[str, tuple[float, float]]
    pairs: list[tuple[str, str]]

    def size(self, name: str) -> int:
        """Number of codes of a column in contingency tables (values + null)."""
        if self.roles.roles[name] == "discrete":
            return len(self.vocab[name]) + 1
        return PAIR_BINS + 2

    def codes(self, table: pa.Table, name: str, side: str) -> np.ndarray:
        if self.roles.roles[name] == "continuous":
            x = numbers(table[name])
            x = np.where(np.isfinite(x), x, np.nan)  # NaN and ±inf share the null cell
            return np.digitize(x, self.pair_edges[side][name]).astype(np.int64)
        column = plain(table[name])
        lookup = pa.array(self.vocab[name], type=column.type)
        index = pc.index_in(column, value_set=lookup).to_numpy(zero_copy_only=False)
        return np.nan_to_num(np.asarray(index, dtype=np.float64), nan=len(self.vocab[name])).astype(np.int64)


def _layout(roles: ColumnRoles, real: FirstPass, synthetic: FirstPass) -> _Layout:
    vocab = {}
    for name in roles.discrete:
        ranked = sorted(real.counts[name].items(), key=lambda kv: -kv[1])
        values = [v for v, _ in ranked]
        known = set(values)
        values += [v for v in synthetic.counts[name] if v not in known]
        vocab[name] = values
    ks_edges, plot_edges, center = {}, {}, {}
    pair_edges: dict[str, dict[str, np.ndarray]] = {"real": {}, "synthetic": {}}
    for name in roles.continuous:
        pooled = []
        for side in (real, synthetic):
            if side.sample is not None and side.sample.table is not None:
                x = numbers(side.sample.table[name])
                pooled.append(x[np.isfinite(x)])
        edges = np.unique(np.concatenate(pooled)) if pooled else np.zeros(0)
        if edges.size > MAX_EDGES:
            edges = edges[np.linspace(0, edges.size - 1, MAX_EDGES).round().astype(np.int64)]  # sorted
        ks_edges[name] = edges
        for side, first in (("real", real), ("synthetic", synthetic)):  # each on its own range
            low, high = first.low.get(name, 0.0), first.high.get(name, 0.0)
            pair_edges[side][name] = np.linspace(low, high, PAIR_BINS + 1) if high > low else \
                np.array([low - 0.5, low + 0.5])
        low, high = real.low.get(name, 0.0), real.high.get(name, 0.0)
        plot_edges[name] = np.linspace(low, high, PLOT_BINS + 1) if high > low else np.array([low, low + 1])
        center[name] = (low, high - low if high > low else 1.0)
    names = roles.names
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    return _Layout(roles, vocab, ks_edges, pair_edges, plot_edges, center, pairs)


@dataclass
class _SecondPass:
    rows: int = 0
    ks: dict[str, np.ndarray] = field(default_factory=dict)
    plot: dict[str, np.ndarray] = field(default_factory=dict)
    tables: dict[tuple[str, str], Any] = field(default_factory=dict)
    moments: dict[str, np.ndarray] = field(default_factory=dict)

    def merge(self, other: _SecondPass) -> None:
        self.rows += other.rows
        for target, source in ((self.ks, other.ks), (self.plot, other.plot), (self.moments, other.moments)):
            for key, value in source.items():
                target[key] = target[key] + value if key in target else value
        for key, value in other.tables.items():
            if key not in self.tables:
                self.tables[key] = value
            elif isinstance(value, np.ndarray):
                self.tables[key] = self.tables[key] + value
            else:
                merged = self.tables[key]
                for cell, count in value.items():
                    merged[cell] = merged.get(cell, 0) + count


def _second_pass_batch(layout: _Layout, table: pa.Table, side: str) -> _SecondPass:
    out = _SecondPass(rows=table.num_rows)
    continuous = layout.roles.continuous
    scaled = {}
    for name in continuous:
        x = numbers(table[name])
        x = np.where(np.isfinite(x), x, np.nan)  # NaN and ±inf are compared apart, like nulls
        ordered = np.sort(x[~np.isnan(x)])  # sorting once beats a binary search per value
        out.ks[name] = np.searchsorted(ordered, layout.ks_edges[name], side="right")  # counts ≤ edge
        below = np.searchsorted(ordered, layout.plot_edges[name][1:-1], side="left")
        out.plot[name] = np.diff(np.r_[0, below, len(ordered)])  # the end bins take what lies outside
        low, width = layout.center[name]
        scaled[name] = (x - low) / width
    if len(continuous) > 1:
        matrix = np.column_stack([scaled[n] for n in continuous])
        present = (~np.isnan(matrix)).astype(np.float64)
        filled = np.nan_to_num(matrix)
        out.moments = {"n": present.T @ present, "sx": filled.T @ present,
                       "sxx": (filled ** 2).T @ present, "sxy": filled.T @ filled}
    codes = {name: layout.codes(table, name, side) for name in layout.roles.names}
    for a, b in layout.pairs:
        if layout.roles.roles[a] == layout.roles.roles[b] == "continuous":
            continue
        cells = layout.size(a) * layout.size(b)
        combined = codes[a] * layout.size(b) + codes[b]
        if cells <= DENSE_CELLS:
            out.tables[(a, b)] = np.bincount(combined, minlength=cells)
        else:
            keys, counts = np.unique(combined, return_counts=True)
            out.tables[(a, b)] = dict(zip(keys.tolist(), counts.tolist()))
    return out


def second_pass(dataset: Dataset, layout: _Layout, side: str, memory_budget: int | None,
                on_progress: Callable[[int], None] | None = None) -> _SecondPass:
    """Stream ``dataset`` again: KS and plot histograms, contingency tables, correlation sums."""
    total = _SecondPass()
    for part in dataset.select(layout.roles.names)._tables(
            lambda table: _second_pass_batch(layout, table, side), memory_budget=memory_budget):
        total.merge(part)
        if on_progress is not None:
            on_progress(part.rows)
    return total


def _ks_complement(real: np.ndarray, synthetic: np.ndarray, n_real: int, n_synth: int) -> float | None:
    """1 - the largest gap between the distribution functions (counts ≤ each edge)."""
    if n_real == 0 or n_synth == 0:
        return None
    return float(1 - np.max(np.abs(real / n_real - synthetic / n_synth), initial=0.0))


def _tv_complement(real: dict[Any, int], synthetic: dict[Any, int]) -> float | None:
    n_real, n_synth = sum(real.values()), sum(synthetic.values())
    if n_real == 0 or n_synth == 0:
        return None
    keys = set(real) | set(synthetic)
    distance = sum(abs(real.get(k, 0) / n_real - synthetic.get(k, 0) / n_synth) for k in keys)
    return float(1 - distance / 2)


def _pearson(moments: dict[str, np.ndarray], i: int, j: int) -> float | None:
    n, sx, sxx, sxy = (moments[k] for k in ("n", "sx", "sxx", "sxy"))
    count = n[i, j]
    if count < 2:
        return None
    mean_i, mean_j = sx[i, j] / count, sx[j, i] / count
    cov = sxy[i, j] / count - mean_i * mean_j
    var_i = sxx[i, j] / count - mean_i ** 2
    var_j = sxx[j, i] / count - mean_j ** 2
    if var_i <= 1e-15 or var_j <= 1e-15:
        return None
    return float(np.clip(cov / np.sqrt(var_i * var_j), -1, 1))


def _cramers_v(table: np.ndarray, rows: int, cols: int) -> float | None:
    matrix = table.reshape(rows, cols).astype(np.float64)
    matrix = matrix[matrix.sum(axis=1) > 0][:, matrix.sum(axis=0) > 0]
    total = matrix.sum()
    if total == 0 or min(matrix.shape) < 2:
        return None
    expected = np.outer(matrix.sum(axis=1), matrix.sum(axis=0)) / total
    chi2 = float(((matrix - expected) ** 2 / expected).sum())
    return float(np.sqrt(chi2 / (total * (min(matrix.shape) - 1))))


def _contingency_similarity(real: Any, synthetic: Any, n_real: int, n_synth: int) -> float | None:
    if n_real == 0 or n_synth == 0:
        return None
    if isinstance(real, np.ndarray):
        return float(1 - np.abs(real / n_real - synthetic / n_synth).sum() / 2)
    keys = set(real) | set(synthetic)
    return float(1 - sum(abs(real.get(k, 0) / n_real - synthetic.get(k, 0) / n_synth) for k in keys) / 2)


def column_pair_trends(layout: _Layout, real: _SecondPass, synthetic: _SecondPass) -> list[dict[str, Any]]:
    """One record per column pair: metric, score and the real / synthetic association."""
    continuous = layout.roles.continuous
    out = []
    for a, b in layout.pairs:
        if layout.roles.roles[a] == layout.roles.roles[b] == "continuous":
            i, j = continuous.index(a), continuous.index(b)
            r_real, r_synth = _pearson(real.moments, i, j), _pearson(synthetic.moments, i, j)
            score = None if r_real is None or r_synth is None else 1 - abs(r_real - r_synth) / 2
            out.append({"columns": [a, b], "metric": "CorrelationSimilarity", "score": score,
                        "real": r_real, "synthetic": r_synth,
                        "meets_threshold": r_real is not None and abs(r_real) > CORRELATION_THRESHOLD})
            continue
        t_real, t_synth = real.tables[(a, b)], synthetic.tables[(a, b)]
        dense = isinstance(t_real, np.ndarray)
        shape = (layout.size(a), layout.size(b))
        v_real = _cramers_v(t_real, *shape) if dense else None
        out.append({"columns": [a, b], "metric": "ContingencySimilarity",
                    "score": _contingency_similarity(t_real, t_synth, real.rows, synthetic.rows),
                    "real": v_real, "synthetic": _cramers_v(t_synth, *shape) if dense else None,
                    "meets_threshold": v_real is not None and v_real > ASSOCIATION_THRESHOLD})
    return out


def _value_classes(first: FirstPass, name: str) -> dict[str, int]:
    """Rows of a continuous column by class: finite, NaN, +inf, -inf, null."""
    special = first.special.get(name, np.zeros(3, dtype=np.int64))
    return {"finite": first.finite(name), **{k: int(v) for k, v in zip(SPECIAL, special)},
            "null": first.nulls[name]}


def _class_bars(real_first: FirstPass, synth_first: FirstPass, name: str) -> dict[str, Any]:
    """Bars of the value classes present on either side (shares of all rows)."""
    real, synth = _value_classes(real_first, name), _value_classes(synth_first, name)
    labels = [k for k in real if real[k] or synth[k]]
    return {"type": "bars", "labels": labels,
            "real": [real[k] / max(real_first.rows, 1) for k in labels],
            "synthetic": [synth[k] / max(synth_first.rows, 1) for k in labels]}


def _distribution(layout: _Layout, name: str, real_first: FirstPass, synth_first: FirstPass,
                  real: _SecondPass, synthetic: _SecondPass) -> dict[str, Any]:
    """What the report plots for one column: shares per bin or per top category.

    A continuous column without finite values on one side is drawn as bars of its value
    classes (finite, NaN, +inf, -inf, null); a discrete one without values as its null share.
    """
    if layout.roles.roles[name] == "continuous" and not (real_first.finite(name)
                                                         and synth_first.finite(name)):
        return _class_bars(real_first, synth_first, name)
    if layout.roles.roles[name] == "continuous":
        r, s = real.plot[name], synthetic.plot[name]
        return {"type": "histogram", "edges": layout.plot_edges[name].tolist(),
                "real": (r / max(r.sum(), 1)).tolist(), "synthetic": (s / max(s.sum(), 1)).tolist()}
    counts_r, counts_s = real_first.counts[name], synth_first.counts[name]
    n_r, n_s = max(sum(counts_r.values()), 1), max(sum(counts_s.values()), 1)
    top = layout.vocab[name][:PLOT_CATEGORIES]
    if not top:  # no value on either side: the null shares, never an empty plot
        return {"type": "bars", "labels": ["null"],
                "real": [real_first.nulls[name] / max(real_first.rows, 1)],
                "synthetic": [synth_first.nulls[name] / max(synth_first.rows, 1)]}
    shares_r = [counts_r.get(v, 0) / n_r for v in top]
    shares_s = [counts_s.get(v, 0) / n_s for v in top]
    labels = [str(v) for v in jsonable(top)]
    if len(layout.vocab[name]) > PLOT_CATEGORIES:
        labels.append("(other)")
        shares_r.append(max(0.0, 1 - sum(shares_r)))
        shares_s.append(max(0.0, 1 - sum(shares_s)))
    return {"type": "bars", "labels": labels, "real": shares_r, "synthetic": shares_s}


def column_shapes(layout: _Layout, real_first: FirstPass, synth_first: FirstPass,
                  real: _SecondPass, synthetic: _SecondPass) -> list[dict[str, Any]]:
    """One record per compared column: shape score, missing values, coverage, plot data."""
    out = []
    for name, role in layout.roles.roles.items():
        null_real = real_first.nulls[name] / real_first.rows if real_first.rows else 0.0
        null_synth = synth_first.nulls[name] / synth_first.rows if synth_first.rows else 0.0
        record: dict[str, Any] = {"column": name, "role": role,
                                  "missing_real": null_real, "missing_synthetic": null_synth,
                                  "missing_similarity": 1 - abs(null_real - null_synth)}
        if role == "continuous":
            record.update(_non_finite_record(real_first, synth_first, name))
            n_real, n_synth = real_first.finite(name), synth_first.finite(name)
            record["metric"] = "KSComplement"
            record["score"] = _ks_complement(real.ks[name], synthetic.ks[name], n_real, n_synth)
            record["coverage"] = _range_coverage(real_first, synth_first, name)
            if not (n_real and n_synth):
                classes = [{k: v for k, v in _value_classes(first, name).items() if k != "null"}
                           for first in (real_first, synth_first)]
                record["metric"] = "TVComplement"
                record["score"] = _tv_complement(*classes)
                record["note"] = (f"no finite values in the {_sides(n_real, n_synth)} data: compared "
                                  "by the shares of finite, NaN, +inf and -inf values")
        else:
            record["metric"] = "TVComplement"
            record["score"] = _tv_complement(real_first.counts[name], synth_first.counts[name])
            seen = real_first.counts[name]
            record["coverage"] = (sum(1 for v in seen if synth_first.counts[name].get(v)) / len(seen)
                                  if seen else None)
        if record["score"] is None:
            present = (real_first.rows - real_first.nulls[name], synth_first.rows - synth_first.nulls[name])
            record["note"] = (f"every value is missing in the {_sides(*present)} data: no shape score; "
                              "see the missing-value similarity")
        record["distribution"] = _distribution(layout, name, real_first, synth_first, real, synthetic)
        out.append(record)
    return out


def _sides(real: int, synthetic: int) -> str:
    """Which side lacks something: 'real', 'synthetic' or 'real and synthetic'."""
    return " and ".join(side for side, n in (("real", real), ("synthetic", synthetic)) if not n)


def _non_finite_record(real: FirstPass, synthetic: FirstPass, name: str) -> dict[str, Any]:
    """Shares of NaN, +inf and -inf among all rows on each side, and their TV complement."""
    shares = [first.special[name] / first.rows if first.rows else np.zeros(3) for first in (real, synthetic)]
    gap = np.abs(shares[0] - shares[1]).sum() + abs(shares[0].sum() - shares[1].sum())
    return {"non_finite_real": dict(zip(SPECIAL, shares[0].tolist())),
            "non_finite_synthetic": dict(zip(SPECIAL, shares[1].tolist())),
            "non_finite_similarity": float(1 - gap / 2)}


def _range_coverage(real: FirstPass, synthetic: FirstPass, name: str) -> float | None:
    """SDMetrics' RangeCoverage: how much of the real [min, max] the synthetic range spans.

    ``None`` without finite real values; 0 when the synthetic data has none (all null or
    non-finite) but the real data has some.
    """
    if name not in real.low:
        return None
    if name not in synthetic.low:
        return 0.0
    low, high = real.low[name], real.high[name]
    if high <= low:
        return 1.0 if synthetic.low[name] <= low <= synthetic.high[name] else 0.0
    gap = max(0.0, synthetic.low[name] - low) + max(0.0, high - synthetic.high[name])
    return float(np.clip(1 - gap / (high - low), 0, 1))


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None and not np.isnan(v)]
    return float(np.mean(kept)) if kept else None


def fidelity_scores(roles: ColumnRoles, real: Dataset, synthetic: Dataset, real_first: FirstPass,
                    synth_first: FirstPass, memory_budget: int | None,
                    on_progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Pass two over both tables and the fidelity section of the report (no detection)."""
    layout = _layout(roles, real_first, synth_first)
    real_second, synth_second = both(
        lambda job: second_pass(job[0], layout, job[1], memory_budget, on_progress),
        (real, "real"), (synthetic, "synthetic"))
    columns = column_shapes(layout, real_first, synth_first, real_second, synth_second)
    pairs = column_pair_trends(layout, real_second, synth_second)
    shapes = _mean([c["score"] for c in columns])
    every_pair = _mean([p["score"] for p in pairs])
    trends = _mean([p["score"] for p in pairs if p["meets_threshold"]])
    coverage = _mean([c["coverage"] for c in columns])
    if trends is None:  # no related pair in the real data: every pair counts
        trends = every_pair
    return {"score": _mean([shapes, trends]), "column_shapes": shapes, "column_pair_trends": trends,
            "column_pair_trends_all_pairs": every_pair,
            "missing_values": _mean([c["missing_similarity"] for c in columns]),
            "non_finite_values": _mean([c.get("non_finite_similarity") for c in columns]),
            "coverage": coverage,
            "columns": columns, "pairs": pairs}
