"""The per-class path: balance a table larger than memory, one class at a time.

The target column is read once into small integer codes (2 bytes a row would do; 8 are
used: 80 MB for 10 million rows). From them come imbalanced-learn's sampling strategy and,
for random over/under-sampling, exactly the row choices imbalanced-learn would make (the
same ``RandomState`` calls in the same order). For the SMOTE family only the classes that
gain rows are loaded, plus one row of another class so the sampler sees two classes; the
new rows equal those of a whole-table call because SMOTE's neighbours lie inside a class
(SMOTEN's distances depend on every class: its metric is learnt in one more streaming
pass, :mod:`datakiln.balancing._smoten`). Everything else streams from the source to
``output``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from datakiln.balancing._codec import FeatureCodec, bytes_per_row
from datakiln.balancing._copies import copy_shares
from datakiln.balancing._report import BalanceReport, check_classes, counts, reread
from datakiln.balancing._smote import ClassNeighbours, numpy_smote
from datakiln.balancing._smoten import WholeTableMetric
from datakiln.balancing.methods import Method
from datakiln.dataset.dataset import Dataset
from datakiln.errors import MemoryBudgetError

__all__ = ["per_class"]


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
    per_row = bytes_per_row(dataset)
    if budget is not None and rows * per_row * 3 > budget:
        need = rows * per_row * 3 / 1e9
        raise MemoryBudgetError(f"{what} holds {rows:,} rows (about {need:.1f} GB with the "
                                f"sampler's copies), more than the {budget / 1e9:.1f} GB budget; raise "
                                f"memory_budget or balance a sample")


NEW_CHUNK = 1_000_000  # new rows generated per sampler call on this path


def _smote_batches(dataset: Dataset, codec: FeatureCodec, method: Method, balancer: Any, budget: int | None,
                   y: np.ndarray, strategy: dict[int, int], sample: dict[str, Any]) -> Iterator[pa.Table]:
    """New rows of the SMOTE family, at most ``NEW_CHUNK`` per imbalanced-learn call.

    With no more than ``NEW_CHUNK`` new rows in all, one call makes them, with the seed: the
    same rows as a whole-table call. Beyond that each call takes the seed plus its number.
    Plain SMOTE draws the same rows in NumPy from each class's neighbour graph, computed once
    (:mod:`datakiln.balancing._smote`), instead of refitting the neighbours per call.
    """
    balancer.check_neighbours(method, codec, y)  # class sizes against k (and SMOTEN's distances)
    growing = [k for k, n in strategy.items() if n > 0]
    positions = np.flatnonzero(np.isin(y, growing))
    other = np.flatnonzero(~np.isin(y, growing))[:1]
    _check_budget(dataset, len(positions), budget, "the over-sampled classes")
    real_x, real_y = codec.encode(_rows_at(dataset, np.sort(np.r_[positions, other]), budget))
    sample["real"] = (real_x, real_y)
    present = {k: int((real_y == k).sum()) for k in strategy}
    total = sum(n for n in strategy.values() if n > 0)
    pieces = [dict(strategy)] if total <= NEW_CHUNK else [
        {k: min(NEW_CHUNK, n - start)} for k, n in strategy.items() if n > 0
        for start in range(0, n, NEW_CHUNK)]
    metric = WholeTableMetric(dataset, codec, budget) if method.name == "smoten" else None
    graphs: dict[int, ClassNeighbours] = {}  # SMOTE: each class's neighbours, computed once
    for index, piece in enumerate(pieces):
        seed = balancer.seed if len(pieces) == 1 else balancer.seed + index
        if numpy_smote(method, balancer):
            k = 5 if balancer.k_neighbors is None else balancer.k_neighbors
            made = []
            for klass, n in piece.items():
                if n > 0:
                    if klass not in graphs:
                        graphs[klass] = ClassNeighbours(real_x[real_y == klass], k)
                    made.append((graphs[klass].new_rows(n, seed), np.full(n, klass, dtype=real_y.dtype)))
            columns = made[0][0] if len(made) == 1 else np.concatenate([m[0] for m in made], axis=1)
            yield codec.decode(columns.T, np.concatenate([m[1] for m in made]))
            continue
        if metric is not None:
            k = 5 if balancer.k_neighbors is None else balancer.k_neighbors
            made = [(metric.new_rows(real_x[real_y == klass], n, k, seed, key=klass), np.full(n, klass))
                    for klass, n in piece.items() if n > 0]
            yield codec.decode(np.vstack([m[0] for m in made]), np.concatenate([m[1] for m in made]))
            continue
        wanted = {k: present[k] + piece.get(k, 0) for k in strategy}
        seeded = balancer if len(pieces) == 1 else _with_seed(balancer, seed)
        x_res, y_res = seeded.make_sampler(method, codec, wanted).fit_resample(real_x, real_y)
        yield codec.decode(x_res[len(real_x):], np.asarray(y_res)[len(real_x):])


def _with_seed(balancer: Any, seed: int) -> Any:
    import copy

    other = copy.copy(balancer)
    other.seed = seed
    return other


def per_class(dataset: Dataset, codec: FeatureCodec, method: Method | None, name: str, balancer: Any,
              budget: int | None, output: str | os.PathLike[str], *,
              overwrite: bool = False) -> tuple[Dataset, Any]:
    """Balance ``dataset`` class by class, writing to ``output``; returns (Dataset, report)."""
    from imblearn.utils import check_sampling_strategy
    from sklearn.utils import check_random_state

    from datakiln.io.write import format_for, source_inputs, write_tables

    y = codec.all_labels(dataset, budget)
    check_classes(codec, y)
    kind = "over-sampling" if method is None else method.kind
    strategy = check_sampling_strategy(codec.strategy(balancer.sampling_strategy), y, kind)
    keep: np.ndarray | None = None
    new_parts: Iterator[pa.Table] = iter(())
    sample: dict[str, Any] = {}  # the first new rows and their real class rows, for the copy shares
    if kind == "under-sampling":  # RandomUnderSampler's choices, kept in the source's order
        random_state = check_random_state(balancer.seed)
        keep = np.zeros(len(y), dtype=bool)
        for klass in np.unique(y):
            members = np.flatnonzero(y == klass)
            if klass in strategy:
                chosen = random_state.choice(range(len(members)), size=strategy[klass], replace=False)
                members = members[chosen]
            keep[members] = True
    elif method is None:  # synth: the copula samples batch by batch
        from datakiln.balancing._synth import synthesize_batches

        new_parts = synthesize_batches(dataset, codec, balancer, y)
    elif method.name == "random_over":  # RandomOverSampler's bootstrap draws
        random_state = check_random_state(balancer.seed)
        drawn = [random_state.choice(np.flatnonzero(y == klass), size=n, replace=True)
                 for klass, n in strategy.items()]
        picks = np.concatenate(drawn) if drawn else np.zeros(0, dtype=np.int64)
        _check_budget(dataset, len(np.unique(picks)), budget, "the over-sampled classes")
        unique, inverse = np.unique(picks, return_inverse=True)
        source = _rows_at(dataset, unique, budget)
        new_parts = (source.take(pa.array(inverse.ravel()[i:i + NEW_CHUNK]))
                     for i in range(0, len(picks), NEW_CHUNK))
    else:  # the SMOTE family: the growing classes, plus one row of another class
        new_parts = _smote_batches(dataset, codec, method, balancer, budget, y, strategy, sample)

    def tables() -> Iterator[pa.Table]:
        offset = 0
        for table in dataset._tables(memory_budget=budget):
            rows = table.num_rows
            if keep is not None:
                table = table.filter(pa.array(keep[offset:offset + rows]))
            offset += rows
            yield table
        for part in new_parts:
            if "new" not in sample and part.num_rows:
                sample["new"] = part.slice(0, 20_000)
            yield part

    written = write_tables(tables(), dataset.arrow_schema, output, format=format_for(output),
                           overwrite=overwrite, inputs=source_inputs(dataset.source))
    before = np.bincount(y, minlength=len(codec.classes) + 1)
    after = np.bincount(y[keep], minlength=len(before)) if keep is not None else before.copy()
    if keep is None:
        for klass, n in strategy.items():
            after[klass] += n
    exact = near = None
    if "new" in sample:
        new_x, new_y = codec.encode(sample["new"])
        if "real" not in sample:
            rng = np.random.default_rng(balancer.seed)
            members = np.flatnonzero(np.isin(y, np.unique(new_y)))
            picked = np.sort(rng.choice(members, min(len(members), 200_000), replace=False))
            sample["real"] = codec.encode(_rows_at(dataset, picked, budget))
        real_x, real_y = sample["real"]
        exact, near = copy_shares(new_x, new_y, real_x, real_y, codec.categorical_mask, seed=balancer.seed)
    label = name if method is None else method.name
    report = BalanceReport(label, "per class (streamed)", counts(codec, y),
                           counts(codec, np.repeat(np.arange(len(after)), after)),
                           new_rows=int(written.rows - (keep.sum() if keep is not None else len(y))),
                           removed_rows=int(len(y) - keep.sum()) if keep is not None else 0,
                           exact_copy_share=exact, near_copy_share=near)
    return reread(output), report
