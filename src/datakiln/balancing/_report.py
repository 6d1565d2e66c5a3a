"""What balancing did (:class:`BalanceReport`), and the checks both paths run on the classes.

Shared by the in-memory path (:mod:`datakiln.balancing.balancer`) and the per-class path
(:mod:`datakiln.balancing._streaming`), so neither imports the other's internals.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from datakiln.balancing._codec import FeatureCodec
from datakiln.balancing.methods import Method
from datakiln.dataset.dataset import Dataset
from datakiln.errors import InvalidArgumentError

__all__ = ["BalanceReport", "check_classes", "check_neighbours", "counts", "reread"]

DEFAULT_K = 5  # imbalanced-learn's k_neighbors for the SMOTE family


@dataclass
class BalanceReport:
    """What balancing did: counts per class before and after, new and removed rows, privacy cost."""

    method: str
    path: str
    counts_before: dict[str, int]
    counts_after: dict[str, int]
    new_rows: int
    removed_rows: int
    exact_copy_share: float | None = None
    near_copy_share: float | None = None
    seconds: float = 0.0
    comparison: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, path: str | os.PathLike[str] | None = None, *, overwrite: bool = False,
                inputs: Iterable[str | os.PathLike[str]] = ()) -> str:
        """The report as JSON (first key ``"datakiln": {"kind": "balance-report", ...}``);
        written atomically to ``path`` when given: an existing file only if it is a datakiln
        report or with ``overwrite=True``, never one of ``inputs``."""
        from datakiln.io.write import report_marker, write_text_atomic

        text = json.dumps({**report_marker("balance-report"), **self.to_dict()}, indent=2, default=str)
        if path is not None:
            write_text_atomic(path, text, overwrite=overwrite, inputs=inputs)
        return text


def _names(codec: FeatureCodec) -> list[str]:
    return [str(c) for c in codec.classes] + ["(null)"]


def counts(codec: FeatureCodec, y: np.ndarray) -> dict[str, int]:
    """Rows per class name (the null class as ``"(null)"``) of target codes ``y``."""
    names = _names(codec)
    found = np.bincount(y, minlength=len(names))
    return {names[i]: int(n) for i, n in enumerate(found) if n}


def check_classes(codec: FeatureCodec, y: np.ndarray) -> None:
    """Refuse a target with fewer than two classes, naming the user's column (not ``'y'``)."""
    present = np.unique(y)
    if len(present) > len(y) / 2 and len(y) >= 20:  # imbalanced-learn's own regression test
        raise InvalidArgumentError(
            f"the target column {codec.target!r} has {len(present):,} classes in {len(y):,} rows: it looks "
            f"like a measurement or an identifier, not classes; choose a class column for --target, "
            f"or bin this one into a few classes first")
    if len(present) >= 2:
        return
    if not len(present):
        raise InvalidArgumentError("there are no rows to balance")
    only = _names(codec)[int(present[0])]
    what = "every value is null" if only == "(null)" else f"every row has the class {only!r}"
    raise InvalidArgumentError(f"the target column {codec.target!r} has a single class ({what}); balancing "
                               f"needs at least two classes: check the --target column")


def check_neighbours(method: Method, codec: FeatureCodec, y: np.ndarray, strategy: dict[int, int],
                     k_neighbors: int | None) -> None:
    """Every class that grows must have more rows than the SMOTE family's ``k_neighbors``."""
    if not method.takes_k:
        return
    k = DEFAULT_K if k_neighbors is None else int(k_neighbors)
    found = np.bincount(y, minlength=len(codec.classes) + 1)
    for klass, n in strategy.items():
        have = int(found[klass])
        if n > 0 and have <= k:
            name = _names(codec)[klass]
            fix = (f"pass k_neighbors={have - 1} (kiln balance --k-neighbors {have - 1}), " if have > 1
                   else "")
            raise InvalidArgumentError(
                f"class {name!r} of {codec.target!r} has {have} row{'s' * (have != 1)}, but {method.cls} "
                f"builds new rows from each row's k_neighbors={k} nearest neighbours in its class and so "
                f"needs at least {k + 1}; {fix}use random_over or synth, or drop that class")


def reread(path: str | os.PathLike[str]) -> Dataset:
    """The written output as a Dataset (in the format its name chose, see ``format_for``)."""
    from datakiln.dataset.reading import read
    from datakiln.io.write import format_for

    written = format_for(path)
    where = os.fspath(path) if "://" in os.fspath(path) else Path(path)  # s3:// stays a URL
    return read(where, format="json" if written == "jsonl" else written)
