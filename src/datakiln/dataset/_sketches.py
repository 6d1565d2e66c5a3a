"""Mergeable streaming sketches for the profile, vectorised with NumPy and Arrow.

Written here rather than taken from a library because the profile is the product: each
sketch updates from a whole Arrow array at once (no Python loop per value), is computed
on worker threads and merged in order, and has a fixed size whatever the row count.

- :class:`Moments`: count, mean, M2 (Chan et al.'s parallel merge), min, max.
- :class:`DistinctSketch`: k-minimum-values distinct count (exact below 4,096 values,
  ≈1.6 % standard error above).
- :class:`FrequentItems`: Misra–Gries heavy hitters; counts are lower bounds, off by at
  most ``error``; exact while no more than ``capacity`` distinct values were seen.
- :class:`RowSample`: bottom-k sampling on seeded random priorities: a uniform sample of
  ``k`` rows, independent of batch boundaries' timing, used for quantiles and histograms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["DistinctSketch", "FrequentItems", "Moments", "RowRandom", "RowSample", "hash_values", "mix64",
           "row_key", "row_uniform"]

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a well-mixed 64-bit hash of each 64-bit word."""
    x = x.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        x += np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


def row_key(*parts: int) -> np.uint64:
    """One 64-bit key from integers (a seed, a purpose, a component index...), well mixed."""
    key = np.uint64(0x243F6A8885A308D3)
    with np.errstate(over="ignore"):
        for part in parts:
            key = mix64(np.array([key ^ np.uint64(int(part) % 2**64)], dtype=np.uint64))[0]
    return key


def row_uniform(key: np.uint64, row_ids: np.ndarray) -> np.ndarray:
    """A uniform draw in [0, 1) for each row, a pure function of ``key`` and the row's index in
    the dataset: the same rows get the same draws however the data is cut into batches,
    blocks or Ray tasks (an arrival-order generator cannot promise that)."""
    with np.errstate(over="ignore"):
        bits = mix64(row_ids.astype(np.uint64, copy=False) ^ key)
    return (bits >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)


class RowRandom:
    """Per-row uniforms keyed by (key, row index), drawn column after column.

    Stands in for a ``numpy.random.Generator`` where code asks ``random(n)`` once per column
    for ``n`` rows: the ``j``-th call returns :func:`row_uniform` under the key (key, j), so a
    row's draws do not depend on which batch it arrived in.
    """

    def __init__(self, key: np.uint64, row_ids: np.ndarray) -> None:
        self.key, self.row_ids, self._calls = key, np.asarray(row_ids, dtype=np.uint64), 0

    def random(self, n: int | None = None) -> np.ndarray:
        if n is not None and n != len(self.row_ids):
            raise ValueError(f"RowRandom holds {len(self.row_ids)} rows, asked for {n}")
        self._calls += 1
        return row_uniform(row_key(int(self.key), self._calls), self.row_ids)

    def take(self, members: np.ndarray | None) -> RowRandom:
        """The same keys for the rows ``members`` (a boolean mask or indices) only."""
        return self if members is None else RowRandom(self.key, self.row_ids[members])


def _hash_strings(values: pa.Array) -> np.ndarray:
    """Polynomial hash of each string's UTF-8 bytes, finished with splitmix64 (vectorised)."""
    values = values.cast(pa.large_string()) if not pa.types.is_large_string(values.type) else values
    _, offsets_buffer, data_buffer = values.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[values.offset: values.offset + len(values) + 1]
    lengths = np.diff(offsets)
    start, stop = int(offsets[0]), int(offsets[-1])
    if stop == start:
        return mix64(lengths.astype(np.uint64))
    data = np.frombuffer(data_buffer, dtype=np.uint8)[start:stop].astype(np.uint64)
    position = np.arange(stop - start, dtype=np.int64) - np.repeat(offsets[:-1] - start, lengths)
    powers = _powers(int(lengths.max()))
    with np.errstate(over="ignore"):
        terms = (data + np.uint64(1)) * powers[position]
    nonempty = lengths > 0
    sums = np.zeros(len(values), dtype=np.uint64)
    if nonempty.any():
        sums[nonempty] = np.add.reduceat(terms, (offsets[:-1] - start)[nonempty])
    with np.errstate(over="ignore"):
        return mix64(sums ^ (lengths.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)))


_POWERS = np.ones(1, dtype=np.uint64)


def _powers(length: int) -> np.ndarray:
    """Powers of an odd 64-bit multiplier, modulo 2**64, cached and grown on demand."""
    global _POWERS
    if len(_POWERS) < length:
        powers = np.empty(max(length, 2 * len(_POWERS)), dtype=np.uint64)
        powers[0] = 1
        with np.errstate(over="ignore"):
            for i in range(1, len(powers)):
                powers[i] = powers[i - 1] * np.uint64(0x100000001B3)
        _POWERS = powers
    return _POWERS


def hash_values(values: pa.Array) -> np.ndarray:
    """64-bit hashes of the non-null ``values`` (numbers by their bits, text by its bytes)."""
    values = values.drop_null()
    dtype = values.type
    if pa.types.is_dictionary(dtype):
        values = values.cast(dtype.value_type)
        dtype = values.type
    if pa.types.is_floating(dtype):
        return mix64(values.cast(pa.float64()).to_numpy().view(np.uint64))
    if pa.types.is_integer(dtype) or pa.types.is_boolean(dtype):
        return mix64(values.cast(pa.int64()).to_numpy().view(np.uint64))
    if pa.types.is_temporal(dtype):
        if dtype.bit_width == 32:
            values = pc.cast(values, pa.int32())
        return mix64(pc.cast(values, pa.int64()).to_numpy().view(np.uint64))
    if not (pa.types.is_string(dtype) or pa.types.is_large_string(dtype)):
        values = values.cast(pa.string()) if not pa.types.is_binary(dtype) else values.cast(
            pa.large_binary()).view(pa.large_string())
    return _hash_strings(values)


@dataclass
class Moments:
    """Running count, mean, sum of squared deviations (M2), min and max of numbers."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: float = float("inf")
    max: float = float("-inf")

    @classmethod
    def of(cls, values: np.ndarray, weights: np.ndarray) -> Moments:
        """Moments of distinct ``values`` each seen ``weights`` times."""
        if values.size == 0:
            return cls()
        n = int(weights.sum())
        mean = float(np.dot(values, weights) / n)
        centred = values - mean
        return cls(n, mean, float(np.dot(centred * centred, weights)),
                   float(values.min()), float(values.max()))

    @classmethod
    def of_numpy(cls, values: np.ndarray) -> Moments:
        """Moments of a float64 NumPy array without missing values."""
        if values.size == 0:
            return cls()
        mean = float(values.mean())
        centred = values - mean
        return cls(int(values.size), mean, float(np.dot(centred, centred)),
                   float(values.min()), float(values.max()))

    @classmethod
    def of_array(cls, values: pa.Array) -> Moments:
        """Moments of a numeric Arrow array (nulls skipped) with Arrow's one-pass kernels."""
        n = len(values) - values.null_count
        if n == 0:
            return cls()
        extremes = pc.min_max(values)
        variance = pc.variance(values, ddof=0).as_py() or 0.0
        return cls(n, float(pc.mean(values).as_py()), float(variance) * n,
                   float(extremes["min"].as_py()), float(extremes["max"].as_py()))

    def merge(self, other: Moments) -> None:
        if other.n == 0:
            return
        total = self.n + other.n
        delta = other.mean - self.mean
        self.m2 += other.m2 + delta * delta * self.n * other.n / total
        self.mean += delta * other.n / total
        self.n = total
        self.min, self.max = min(self.min, other.min), max(self.max, other.max)

    @property
    def std(self) -> float | None:
        """Sample standard deviation (``ddof=1``); ``None`` below two values."""
        return float(np.sqrt(self.m2 / (self.n - 1))) if self.n > 1 else None


_HASH_SPACE = float(2**64)


@dataclass
class DistinctSketch:
    """K-minimum-values distinct-count sketch: the ``k`` smallest distinct 64-bit hashes.

    Exact (up to hash collisions) below ``k`` distinct values; above, the estimate
    ``(k - 1) / (largest kept hash / 2**64)`` has a relative standard error of about
    ``1 / sqrt(k)`` (1.6 % for the default ``k = 4096``). A value whose hash is above the
    current threshold cannot change the sketch, so most of a large batch is dropped with
    one comparison.
    """

    k: int = 4096
    hashes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))

    @property
    def threshold(self) -> np.uint64:
        """Hashes above this cannot enter the sketch."""
        return self.hashes[-1] if len(self.hashes) >= self.k else np.uint64(2**64 - 1)

    def add_hashes(self, hashes: np.ndarray, floor: DistinctSketch | None = None) -> None:
        """Add hashes; ``floor`` (e.g. the running total) only lets fewer candidates through."""
        limit = min(self.threshold, floor.threshold) if floor is not None else self.threshold
        candidates = hashes[hashes <= limit] if limit < np.uint64(2**64 - 1) else hashes
        self._absorb(candidates)

    def _absorb(self, candidates: np.ndarray) -> None:
        if candidates.size == 0:
            return
        if candidates.size > 4 * self.k:
            smallest = np.partition(candidates, 2 * self.k)[: 2 * self.k]
            unique = np.unique(smallest)
            if unique.size < self.k:
                unique = np.unique(candidates)
            candidates = unique
        self.hashes = np.unique(np.concatenate([self.hashes, candidates]))[: self.k]

    def merge(self, other: DistinctSketch) -> None:
        self._absorb(other.hashes)

    def estimate(self) -> float:
        if len(self.hashes) < self.k:
            return float(len(self.hashes))
        return (self.k - 1) / (float(self.hashes[-1]) / _HASH_SPACE)


@dataclass
class FrequentItems:
    """Misra–Gries summary of the most frequent values, at most ``capacity`` entries."""

    capacity: int = 1024
    values: pa.Array | None = None
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    error: int = 0

    @classmethod
    def of_counts(cls, values: pa.Array, counts: np.ndarray, capacity: int) -> FrequentItems:
        """A summary from distinct ``values`` and their ``counts`` (e.g. ``pc.value_counts``)."""
        sketch = cls(capacity, values, counts.astype(np.int64))
        sketch._prune()
        return sketch

    def _prune(self) -> None:
        if self.values is None or len(self.counts) <= self.capacity:
            return
        order = np.argpartition(-self.counts, self.capacity)
        cut = int(self.counts[order[self.capacity]])
        keep = order[: self.capacity]
        keep = keep[self.counts[keep] > cut]
        self.values = self.values.take(pa.array(keep))
        self.counts = self.counts[keep] - cut
        self.error += cut

    def merge(self, other: FrequentItems) -> None:
        if other.values is None:
            return
        if self.values is None:
            self.values, self.counts, self.error = other.values, other.counts, other.error
            return
        joined = pa.table({"v": pa.concat_arrays([self.values, other.values.cast(self.values.type)]),
                           "c": np.concatenate([self.counts, other.counts])})
        grouped = joined.group_by("v", use_threads=False).aggregate([("c", "sum")])
        self.values = grouped.column("v").combine_chunks()
        self.counts = grouped.column("c_sum").to_numpy().astype(np.int64)
        self.error += other.error
        self._prune()

    @property
    def exact(self) -> bool:
        """True while every distinct value seen is still counted exactly."""
        return self.error == 0

    def top(self, k: int) -> list[tuple[Any, int]]:
        """The ``k`` most frequent values with their (lower-bound) counts, most first."""
        if self.values is None or len(self.counts) == 0:
            return []
        order = np.argsort(-self.counts, kind="stable")[:k]
        values = self.values.take(pa.array(order)).to_pylist()
        return [(v, int(c)) for v, c in zip(values, self.counts[order])]


@dataclass
class RowSample:
    """Uniform sample of at most ``k`` rows: the rows with the smallest random priorities.

    With ``key`` set, :meth:`add` is given each table's first row index and a row's priority
    is :func:`row_uniform` of (key, row index): the sample is then the same however the data
    is partitioned (one table, many batches, Ray blocks). Without it priorities come from a
    generator in arrival order.
    """

    k: int
    table: pa.Table | None = None
    priorities: np.ndarray = field(default_factory=lambda: np.zeros(0))
    key: np.uint64 | None = None

    @property
    def threshold(self) -> float:
        """Priorities at or above this cannot enter a full sample."""
        if self.table is None or self.table.num_rows < self.k:
            return 1.0
        return float(self.priorities.max())

    def add(self, table: pa.Table, rng: np.random.Generator | None = None, *,
            first_row: int | None = None) -> None:
        """Offer every row of ``table``; only rows that can enter are drawn and copied.

        Keyed (``key`` set): ``first_row`` is the index of the table's first row in the dataset.
        Otherwise, with threshold ``t`` the number of rows below it is Binomial(n, t) and their
        priorities are uniform on [0, t): drawing exactly that costs O(rows kept), not O(n).
        """
        n, limit = table.num_rows, self.threshold
        if n == 0:
            return
        if self.key is not None:
            if first_row is None:
                raise ValueError("a keyed RowSample needs each table's first_row")
            priorities = row_uniform(self.key, np.arange(first_row, first_row + n, dtype=np.uint64))
            chosen = np.arange(n) if limit >= 1.0 else np.flatnonzero(priorities < limit)
            priorities = priorities[chosen]
        elif limit >= 1.0:
            priorities = rng.random(n)
            chosen = np.arange(n)
        else:
            count = int(rng.binomial(n, limit))
            chosen = np.sort(rng.choice(n, size=count, replace=False))
            priorities = rng.random(count) * limit
        if len(chosen) > self.k:
            best = np.sort(np.argpartition(priorities, self.k)[: self.k])
            chosen, priorities = chosen[best], priorities[best]
        self.merge(RowSample(self.k, table.take(pa.array(chosen)), priorities, self.key))

    @classmethod
    def of(cls, table: pa.Table, k: int, rng: np.random.Generator) -> RowSample:
        """A sample of at most ``k`` rows of ``table``."""
        sample = cls(k)
        sample.add(table, rng)
        return sample

    def merge(self, other: RowSample) -> None:
        if other.table is None:
            return
        if self.table is None:
            self.table, self.priorities = other.table, other.priorities
            return
        table = pa.concat_tables([self.table, other.table])
        priorities = np.concatenate([self.priorities, other.priorities])
        if table.num_rows > self.k:
            keep = np.sort(np.argpartition(priorities, self.k)[: self.k])
            table, priorities = table.take(pa.array(keep)), priorities[keep]
        self.table, self.priorities = table.combine_chunks(), priorities
