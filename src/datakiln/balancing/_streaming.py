"""The per-class path: balance a table larger than memory, one class at a time.

The target column is read once into small integer codes (2 bytes a row would do; 8 are
used: 80 MB for 10 million rows). From them come imbalanced-learn's sampling strategy and,
for random over/under-sampling, exactly the row choices imbalanced-learn would make (the
same ``RandomState`` calls in the same order). For the SMOTE family only the classes that
gain rows are loaded, plus one row of another class so the sampler sees two classes; the
new rows equal those of a whole-table call because SMOTE's neighbours lie inside a class.
Everything else streams from the source to ``output``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from datakiln.balancing._codec import FeatureCodec
from datakiln.balancing._copies import copy_shares
from datakiln.balancing.methods import Method
from datakiln.dataset.dataset import Dataset
from datakiln.errors import MemoryBudgetError

__all__ = ["per_class"]


def _labels(dataset: Dataset, codec: FeatureCodec, budget: int | None) -> np.ndarray:
    parts = [codec.labels(t) for t in dataset.select([codec.target])._tables(memory_budget=budget)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _rows_at(dataset: Dataset, positions: np.ndarray, budget: int | None) -> pa.Table:
    """The rows at sorted global ``positions`` (one streaming pass)."""
    pieces, offset = [], 0
    for table in dataset._tables(memory_budget=budget):
        end = offset + table.num_rows
        lo, hi = np.searchsorted(positions, [offset, end])
        if hi > lo:
            pieces.append(table.take(pa.array(positions[lo:hi] - offset)))
        offset = end
    return pa.concat_tables(pieces) if pieces else dataset.arrow_schema.empty_table()


def _check_budget(dataset: Dataset, rows: int, budget: int | None, what: str) -> None:
    head = dataset.head(1000)
    per_row = head.nbytes / max(head.num_rows, 1) + 8 * head.num_columns
    if budget is not None and rows * per_row * 3 > budget:
        need = rows * per_row * 3 / 1e9
        raise MemoryBudgetError(f"{what} holds {rows:,} rows (about {need:.1f} GB with the "
                                f"sampler's copies), more than the {budget / 1e9:.1f} GB budget; raise "
                                f"memory_budget or balance a sample")


def per_class(dataset: Dataset, codec: FeatureCodec, method: Method | None, name: str, balancer: Any,
              budget: int | None, output: str | os.PathLike[str]) -> tuple[Dataset, Any]:
    """Balance ``dataset`` class by class, writing to ``output``; returns (Dataset, report)."""
    from imblearn.utils import check_sampling_strategy
    from sklearn.utils import check_random_state

    from datakiln.balancing.balancer import BalanceReport, _counts, _reread
    from datakiln.io.write import write_tables

    y = _labels(dataset, codec, budget)
    kind = "over-sampling" if method is None else method.kind
    strategy = check_sampling_strategy(balancer.sampling_strategy, y, kind)
    keep: np.ndarray | None = None
    new = dataset.arrow_schema.empty_table()
    new_x = np.zeros((0, len(codec.features)))
    new_y = np.zeros(0, dtype=np.int64)
    real_x = real_y = None
    if kind == "under-sampling":  # RandomUnderSampler's choices, kept in the source's order
        random_state = check_random_state(balancer.seed)
        keep = np.zeros(len(y), dtype=bool)
        for klass in np.unique(y):
            members = np.flatnonzero(y == klass)
            if klass in strategy:
                chosen = random_state.choice(range(len(members)), size=strategy[klass], replace=False)
                members = members[chosen]
            keep[members] = True
    elif method is None:  # synth
        from datakiln.balancing._synth import synthesize_minority

        new = synthesize_minority(dataset, codec, balancer, y)
    elif method.name == "random_over":  # RandomOverSampler's bootstrap draws
        random_state = check_random_state(balancer.seed)
        drawn = [random_state.choice(np.flatnonzero(y == klass), size=n, replace=True)
                 for klass, n in strategy.items()]
        picks = np.concatenate(drawn) if drawn else np.zeros(0, dtype=np.int64)
        _check_budget(dataset, len(np.unique(picks)), budget, "the over-sampled classes")
        unique, inverse = np.unique(picks, return_inverse=True)
        new = _rows_at(dataset, unique, budget).take(pa.array(inverse.ravel()))
    else:  # the SMOTE family: the growing classes, plus one row of another class
        growing = [k for k, n in strategy.items() if n > 0]
        positions = np.flatnonzero(np.isin(y, growing))
        other = np.flatnonzero(~np.isin(y, growing))[:1]
        _check_budget(dataset, len(positions), budget, "the over-sampled classes")
        rows = _rows_at(dataset, np.sort(np.r_[positions, other]), budget)
        real_x, real_y = codec.encode(rows)
        present = {k: int((real_y == k).sum()) for k in strategy}
        wanted = {k: present[k] + n for k, n in strategy.items()}
        x_res, y_res = balancer.make_sampler(method, codec, wanted).fit_resample(real_x, real_y)
        new_x, new_y = x_res[len(real_x):], np.asarray(y_res)[len(real_x):]
        new = codec.decode(new_x, new_y)
    if new.num_rows and not len(new_x):
        new_x, new_y = codec.encode(new)
    if real_x is None and len(new_x):
        rng = np.random.default_rng(balancer.seed)
        sample = np.sort(rng.choice(len(y), min(len(y), 200_000), replace=False))
        real_x, real_y = codec.encode(_rows_at(dataset, sample, budget))

    def tables() -> Iterator[pa.Table]:
        offset = 0
        for table in dataset._tables(memory_budget=budget):
            rows = table.num_rows
            if keep is not None:
                table = table.filter(pa.array(keep[offset:offset + rows]))
            offset += rows
            yield table
        for start in range(0, new.num_rows, 100_000):
            yield new.slice(start, 100_000)

    write_tables(tables(), dataset.arrow_schema, output)
    after = y[keep] if keep is not None else np.r_[y, new_y]
    exact, near = (copy_shares(new_x, new_y, real_x, real_y, codec.categorical_mask, seed=balancer.seed)
                   if real_x is not None else (None, None))
    label = name if method is None else method.name
    report = BalanceReport(label, "per class (streamed)", _counts(codec, y), _counts(codec, after),
                           new_rows=int(new.num_rows),
                           removed_rows=int(len(y) - keep.sum()) if keep is not None else 0,
                           exact_copy_share=exact, near_copy_share=near)
    return _reread(output), report
