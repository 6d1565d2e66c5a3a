"""``method="synth"``: new minority rows by exact conditional sampling from a synthesizer.

A :class:`~datakiln.synth.GaussianCopula` is fitted (two streaming passes) with the target
as its ``by`` column, so each class has its own copula; each class that must grow gets
``sample(n, conditions={target: class})`` rows: every one of them has the right label,
with no rejection. This is the one place where balancing uses the synthesizer layer; the
import happens only when the method is asked for.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from datakiln.balancing._codec import FeatureCodec
from datakiln.dataset.dataset import Dataset
from datakiln.errors import InvalidArgumentError

__all__ = ["synthesize_batches", "synthesize_minority"]


def synthesize_minority(dataset: Dataset, codec: FeatureCodec, balancer: Any, y: np.ndarray) -> pa.Table:
    """The new rows of every class that ``balancer.sampling_strategy`` says must grow, as one table."""
    pieces = list(synthesize_batches(dataset, codec, balancer, y))
    return pa.concat_tables(pieces) if pieces else dataset.arrow_schema.empty_table()


def synthesize_batches(dataset: Dataset, codec: FeatureCodec, balancer: Any, y: np.ndarray,
                       batch_rows: int = 262_144) -> Iterator[pa.Table]:
    """The same new rows, batch by batch (memory bounded by ``batch_rows``)."""
    from imblearn.utils import check_sampling_strategy

    from datakiln.synth import GaussianCopula

    strategy = check_sampling_strategy(codec.strategy(balancer.sampling_strategy), y, "over-sampling")
    classes = len(codec.classes) + 1
    if classes > 256:
        raise InvalidArgumentError(f"method='synth' fits one copula per class; {classes} classes are too "
                                   f"many (at most 256)")
    model = GaussianCopula(by=[codec.target], max_components=max(32, classes), seed=balancer.seed,
                           memory_budget=balancer.memory_budget).fit(
                               dataset.with_kinds({codec.target: "categorical"}))  # 0/1 labels too
    for offset, (klass, n) in enumerate(strategy.items()):
        if n <= 0:
            continue
        value = None if klass >= len(codec.classes) else codec.classes[klass]
        for batch in model.sample_batches(int(n), batch_rows=batch_rows, conditions={codec.target: value},
                                          seed=balancer.seed + offset):
            yield batch.cast(dataset.arrow_schema)
