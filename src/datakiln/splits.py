"""Reproducible train / validation / test splits: random, stratified, group and time.

(The module is ``splits`` so that it never shadows the function ``datakiln.split``.)

Two streaming passes. The first counts what the split must respect (rows per class,
rows per group, or the time column's order); the second deals every row to a split in
one ordered pass and writes all outputs at once (or keeps them in memory when no
``output`` is given).

Stratified and random splits are exact: class ``c`` with ``n`` rows sends the largest-
remainder share of ``n`` to each split, so every split's class proportions are within one
row of the requested fractions. Which rows go where is decided by a keyed bijection on
``[0, n)`` (a Feistel network with cycle walking, seeded per class), applied to each
row's position within its class, so the deal needs O(classes) memory, not a permutation
of all rows, and the same seed gives the same split.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datakiln.dataset._permute import permute
from datakiln.dataset.dataset import Dataset, as_dataset
from datakiln.errors import InvalidArgumentError, SchemaError
from datakiln.io.write import MultiWriter, source_inputs

__all__ = ["SplitResult", "split"]

MAX_CLASSES = 100_000


@dataclass
class SplitResult:
    """The splits: ``datasets`` by name, row ``counts``, and per-class counts when stratified."""

    datasets: dict[str, Dataset]
    counts: dict[str, int]
    method: str
    seed: int
    fractions: dict[str, float]
    class_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Dataset:
        return self.datasets[name]

    def __iter__(self) -> Iterator[Dataset]:
        return iter(self.datasets.values())

    def to_dict(self) -> dict[str, Any]:
        """Plain data: method, seed, fractions, counts, class counts and output paths."""
        return {"method": self.method, "seed": self.seed, "fractions": self.fractions,
                "counts": self.counts, "class_counts": self.class_counts, "paths": self.paths}


def _allocate(n: int, fractions: np.ndarray) -> np.ndarray:
    """Largest-remainder whole numbers of rows per split, summing to ``n``.

    When ``n`` is at least the number of splits with a positive fraction, each of them gets
    a row (3 rows at 0.8/0.1/0.1 are 1/1/1, not 3/0/0), taken from the largest split.
    """
    exact = fractions * n
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    wanted = fractions > 0
    if n >= int(wanted.sum()):
        for index in np.nonzero(wanted & (counts == 0))[0]:
            counts[int(np.argmax(counts))] -= 1
            counts[index] = 1
    return counts


def _names(count: int, names: Sequence[str] | None) -> list[str]:
    if names is not None:
        if len(names) != count or len({str(n).casefold() for n in names}) != count:
            # casefold: on macOS and Windows "Train.parquet" would replace "train.parquet"
            raise InvalidArgumentError(f"give {count} distinct names, one per fraction (letter "
                                       f"case aside); got {names}")
        bad = [n for n in names if not isinstance(n, str) or not n or n in (".", "..")
               or any(c in n for c in '/\\:\0') or n.startswith(".")]
        if bad:
            raise InvalidArgumentError(f"split names become file names <name>.parquet, so they need "
                                       f"letters without '/', '\\', ':' or a leading dot; got {bad}")
        return list(names)
    return {2: ["train", "test"], 3: ["train", "validation", "test"]}.get(
        count, [f"split_{i}" for i in range(count)])


class _Dealer:
    """Stratified (or plain random) dealing of rows by within-class position."""

    def __init__(self, dataset: Dataset, column: str | None, fractions: np.ndarray, seed: int,
                 rare: str, names: list[str]) -> None:
        counts: dict[Any, int] = {}
        for table in dataset._tables(lambda t: _value_counts(t, column)):
            for value, count in table:
                counts[value] = counts.get(value, 0) + count
        if len(counts) > MAX_CLASSES:
            raise SchemaError(f"stratify column {column!r} has {len(counts):,} distinct values; "
                              "stratify on a categorical column or bin it first")
        self.classes = sorted(counts, key=lambda v: (v is None, str(v)))
        self.column, self.seed = column, seed
        self.allocation = np.zeros((len(self.classes), len(fractions)), dtype=np.int64)
        needed = int((fractions > 0).sum())
        for index, value in enumerate(self.classes):
            n = counts[value]
            if n < needed:
                if rare == "error" and column is None:
                    raise SchemaError(
                        f"the data has {n} row(s), too few to give each of the {needed} splits one; "
                        f"use fewer splits, or pass rare='train' to keep them all in '{names[0]}'")
                if rare == "error":
                    raise SchemaError(
                        f"class {value!r} of {column!r} has {n} row(s), too few to appear in all "
                        f"{needed} splits; pass rare='train' to keep such classes in '{names[0]}', "
                        "or merge rare classes first")
                self.allocation[index, 0] = n
            else:
                self.allocation[index] = _allocate(n, fractions)
        self.bounds = np.cumsum(self.allocation, axis=1)
        self.seen = np.zeros(len(self.classes), dtype=np.int64)
        value_type = dataset.arrow_schema.field(column).type if column is not None else pa.null()
        if pa.types.is_dictionary(value_type):
            value_type = value_type.value_type
        # typed like the column, so an all-null column (one class: null) still looks up
        self.lookup = pa.array([c for c in self.classes if c is not None], type=value_type)

    def codes(self, table: pa.Table) -> np.ndarray:
        if self.column is None:
            return np.zeros(table.num_rows, dtype=np.int64)
        values = table[self.column]
        index = pc.index_in(values, value_set=self.lookup).to_numpy(zero_copy_only=False)
        null_code = len(self.classes) - 1
        return np.where(np.isnan(index.astype(np.float64)), null_code,
                        np.nan_to_num(index.astype(np.float64))).astype(np.int64)

    def deal(self, table: pa.Table) -> np.ndarray:
        codes = self.codes(table)
        order = np.argsort(codes, kind="stable")
        ordered = codes[order]
        starts = np.r_[0, np.nonzero(np.diff(ordered))[0] + 1]
        run = np.arange(len(ordered)) - np.repeat(starts, np.diff(np.r_[starts, len(ordered)]))
        position = np.empty(len(codes), dtype=np.int64)
        position[order] = run + self.seen[ordered]
        self.seen += np.bincount(codes, minlength=len(self.classes))
        target = np.empty(len(codes), dtype=np.int64)
        for code in np.unique(codes):
            rows = codes == code
            n = int(self.bounds[code, -1])
            shuffled = permute(position[rows], n, self.seed * 1_000_003 + int(code)).astype(np.int64)
            target[rows] = np.searchsorted(self.bounds[code], shuffled, side="right")
        return target


def _value_counts(table: pa.Table, column: str | None) -> list[tuple[Any, int]]:
    if column is None:
        return [(None, table.num_rows)]
    summary = pc.value_counts(table[column])
    return list(zip(summary.field("values").to_pylist(), summary.field("counts").to_pylist()))


class _GroupDealer:
    """Whole groups to splits: shuffled groups fill the splits in turn by row count."""

    def __init__(self, dataset: Dataset, column: str, fractions: np.ndarray, seed: int) -> None:
        counts: dict[Any, int] = {}
        for table in dataset._tables(lambda t: _value_counts(t, column)):
            for value, count in table:
                counts[value] = counts.get(value, 0) + count
        groups = sorted(counts, key=lambda v: (v is None, str(v)))
        order = np.random.default_rng(seed).permutation(len(groups))
        sizes = np.array([counts[groups[i]] for i in order], dtype=np.float64)
        middle = np.cumsum(sizes) - sizes / 2
        edges = np.cumsum(fractions)[:-1] * sizes.sum()
        assigned = np.searchsorted(edges, middle, side="right")
        wanted = np.flatnonzero(fractions > 0)
        if len(groups) < len(wanted):
            raise SchemaError(f"group column {column!r} has {len(groups)} group(s), too few to give each "
                              f"of the {len(wanted)} splits one; use fewer splits or a finer group column")
        for split_index in wanted:  # large groups can leave a split empty: give it the donor's last
            if not np.any(assigned == split_index):
                donor = int(np.bincount(assigned, minlength=len(fractions)).argmax())
                assigned[np.flatnonzero(assigned == donor)[-1]] = split_index
        self.column = column
        self.by_split = [pa.array([groups[order[i]] for i in np.nonzero(assigned == s)[0]
                                   if groups[order[i]] is not None])
                         for s in range(len(fractions))]
        self.null_split = next((int(assigned[j]) for j, i in enumerate(order) if groups[i] is None), 0)

    def deal(self, table: pa.Table) -> np.ndarray:
        target = np.full(table.num_rows, self.null_split, dtype=np.int64)
        values = table[self.column]
        for index, members in enumerate(self.by_split):
            if len(members):
                hit = pc.is_in(values, value_set=members).to_numpy(zero_copy_only=False)
                target[hit] = index
        return target


class _TimeDealer:
    """Earliest rows to the first split, latest to the last; equal times never straddle."""

    def __init__(self, dataset: Dataset, column: str, fractions: np.ndarray) -> None:
        ticks = [_ticks(t[column], column) for t in dataset.select([column])._tables()]
        ordered = np.sort(np.concatenate(ticks)) if ticks else np.zeros(0, dtype=np.int64)
        positions = np.ceil(np.cumsum(fractions)[:-1] * len(ordered)).astype(np.int64) - 1
        self.cuts = ordered[np.clip(positions, 0, max(len(ordered) - 1, 0))] if len(ordered) else \
            np.zeros(len(fractions) - 1, dtype=np.int64)
        self.column = column

    def deal(self, table: pa.Table) -> np.ndarray:
        return np.searchsorted(self.cuts, _ticks(table[self.column], self.column), side="left")


def _ticks(values: pa.ChunkedArray, column: str) -> np.ndarray:
    if values.null_count:
        raise SchemaError(f"time column {column!r} has {values.null_count} missing values; drop "
                          "or impute them before a time split")
    dtype = values.type
    if pa.types.is_timestamp(dtype) or pa.types.is_date(dtype):
        storage = pa.int32() if dtype.bit_width == 32 else pa.int64()
        values = pc.cast(pc.cast(values, storage), pa.int64())
    elif not (pa.types.is_integer(dtype) or pa.types.is_floating(dtype)):
        raise SchemaError(f"time column {column!r} is {dtype}; it must be a timestamp, date or "
                          "number (parse text dates first)")
    return np.asarray(values.to_numpy(), dtype=np.float64 if pa.types.is_floating(dtype) else np.int64)


def split(
    data: Any,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    *,
    stratify: str | None = None,
    group: str | None = None,
    time: str | None = None,
    seed: int = 0,
    names: Sequence[str] | None = None,
    rare: str = "error",
    output: str | Path | None = None,
    format: str = "parquet",
    overwrite: bool = False,
) -> SplitResult:
    """Split ``data`` into parts of the given ``fractions``, reproducibly for ``seed``.

    Parameters
    ----------
    fractions : sequence of float
        Shares of the rows, summing to 1 (default 80/10/10: train, validation, test).
    stratify : str, optional
        Column whose class proportions every split keeps, exactly to within one row.
    group : str, optional
        Column whose values never appear in two splits (users, patients, sessions).
    time : str, optional
        Timestamp/date/number column: earliest rows first; no time is in two splits.
    rare : {"error", "train"}
        A class with fewer rows than splits raises :class:`SchemaError`, or goes whole
        to the first split with ``"train"``.
    output : path, optional
        Directory to write ``<name>.parquet`` files (and ``split.json``) in one pass; the
        returned datasets then read those files. Without it the splits stay in memory.
        The directory appears atomically, as a whole, with datakiln's manifest
        ``_datakiln.json``; it must be new, empty, or datakiln's own earlier output (a
        directory holding other files, or the input, raises ``OutputExistsError``).
    overwrite : bool
        Replace a file datakiln did not write at ``output`` (default False); a directory
        holding files datakiln did not write is refused even so.

    >>> parts = datakiln.split(ds, (0.8, 0.1, 0.1), stratify="income", seed=0)  # doctest: +SKIP
    >>> parts["train"].count(), parts.counts                                    # doctest: +SKIP
    """
    dataset = as_dataset(data, what="split")
    shares = np.asarray(fractions, dtype=np.float64)
    if shares.ndim != 1 or len(shares) < 2 or (shares < 0).any() or not np.isclose(shares.sum(), 1.0):
        raise InvalidArgumentError(f"fractions must be two or more shares summing to 1, got {fractions}")
    if sum(x is not None for x in (stratify, group, time)) > 1:
        raise InvalidArgumentError("choose one of stratify=, group= or time=")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise InvalidArgumentError(f"seed must be a whole number from 0 to 4294967295, got {seed!r}")
    if rare not in ("error", "train"):
        raise InvalidArgumentError(f"rare must be 'error' or 'train', got {rare!r}")
    labels = _names(len(shares), names)
    for column in (stratify, group, time):
        if column is not None and column not in dataset.columns:
            raise SchemaError(f"no column {column!r}; the columns are {dataset.columns}")
    if group is not None:
        dealer: Any = _GroupDealer(dataset, group, shares, seed)
        method = "group"
    elif time is not None:
        dealer = _TimeDealer(dataset, time, shares)
        method = "time"
    else:
        dealer = _Dealer(dataset, stratify, shares, seed, rare, labels)
        method = "stratified" if stratify else "random"
    return _run(dataset, dealer, labels, shares, method, seed, stratify, output, format, overwrite)


def _run(dataset: Dataset, dealer: Any, labels: list[str], shares: np.ndarray, method: str,
         seed: int, stratify: str | None, output: str | Path | None, format: str,
         overwrite: bool) -> SplitResult:
    counts = dict.fromkeys(labels, 0)
    class_counts: dict[str, dict[str, int]] = {name: {} for name in labels} if stratify else {}
    writer = MultiWriter(output, labels, dataset.arrow_schema, format=format, overwrite=overwrite,
                         inputs=source_inputs(dataset.source)) if output else None
    fractions = {name: float(share) for name, share in zip(labels, shares)}
    kept: dict[str, list[pa.Table]] = {name: [] for name in labels}
    try:
        for table in dataset._tables():
            target = dealer.deal(table)
            for index, name in enumerate(labels):
                part = table.filter(pa.array(target == index))
                counts[name] += part.num_rows
                if stratify:
                    for value, count in _value_counts(part, stratify):
                        key = str(value)
                        class_counts[name][key] = class_counts[name].get(key, 0) + count
                if writer is not None:
                    writer.write(name, part)
                elif part.num_rows:
                    kept[name].append(part)
        paths: dict[str, str] = {}
        if writer is not None:  # split.json goes into the same atomic output
            paths = {name: str(path) for name, path in writer.targets.items()}
            plan = SplitResult({}, counts, method, seed, fractions, class_counts, paths)
            writer.commit({"split.json": json.dumps(plan.to_dict(), indent=2)})
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is not None:
        from datakiln.dataset.reading import read

        datasets = {name: read(path) for name, path in paths.items()}
    else:
        empty = dataset.arrow_schema.empty_table()
        datasets = {name: Dataset.from_arrow(pa.concat_tables(kept[name]) if kept[name] else empty)
                    for name in labels}
    return SplitResult(datasets, counts, method, seed, fractions, class_counts, paths)
