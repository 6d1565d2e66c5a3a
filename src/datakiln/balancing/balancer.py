"""``datakiln.balance``: rebalance a Dataset's classes with imbalanced-learn, at any size.

Two paths, the same rows:

- **in memory** (the data fits a quarter of ``memory_budget``): the rows are encoded
  (:mod:`datakiln.balancing._codec`), handed to imbalanced-learn's sampler, and decoded
  back to the input's schema. On numeric data the result equals calling imbalanced-learn
  directly with the same seed.
- **per class** (larger data; random over/under-sampling, SMOTE, SMOTENC, SMOTEN and
  ``synth``): the target column is read once (a small integer per row), imbalanced-learn's
  sampling strategy is computed on it, and only the classes that gain rows are loaded;
  SMOTE's neighbours lie inside a class, so the new rows equal those of a whole-table
  call. The majority classes stream from the source to ``output`` untouched (or filtered,
  for under-sampling). Methods that need every row's neighbours (Tomek links, ENN,
  NearMiss, Borderline-SMOTE, ADASYN, the combinations) raise ``MemoryBudgetError``.

``method="synth"`` oversamples by exact conditional sampling from a Gaussian copula with
one component per class; ``method="auto"`` compares methods on a stratified holdout
(:mod:`datakiln.balancing._auto`) and applies the best by minority-class F1.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import pyarrow as pa

from datakiln.balancing._codec import FeatureCodec, bytes_per_row
from datakiln.balancing._copies import copy_shares
from datakiln.balancing._report import BalanceReport, check_classes, check_neighbours, counts, reread
from datakiln.balancing._smote import numpy_smote, smote_rows
from datakiln.balancing._streaming import per_class
from datakiln.balancing.methods import METHODS, Method, method_named, sampler
from datakiln.dataset.dataset import Dataset, as_dataset
from datakiln.errors import InvalidArgumentError, MemoryBudgetError
from datakiln.schema import refuse_nested
from datakiln.units import parse_bytes

__all__ = ["BalanceReport", "Balancer", "balance"]


class Balancer:
    """Rebalance classes; ``fit_resample(data, target)`` returns a Dataset, ``report_`` the counts.

    Parameters
    ----------
    method : str
        ``"smote"`` (SMOTENC with categorical features, SMOTEN when all are categorical),
        ``"smotenc"``, ``"smoten"``, ``"random_over"``, ``"random_under"``,
        ``"borderline_smote"``, ``"adasyn"``, ``"tomek"``, ``"near_miss"``, ``"enn"``,
        ``"smote_tomek"``, ``"smote_enn"``, ``"synth"`` or ``"auto"``.
    sampling_strategy : str, float or dict
        imbalanced-learn's meaning (default ``"auto"``: every class up to the majority, or
        down to the minority for under-sampling).
    seed : int
        Random state of the sampler (default 0).
    memory_budget : str or int
        Above a quarter of it the per-class path is used (default ``"1GB"``).
    k_neighbors : int or None
        Neighbours for the SMOTE family (imbalanced-learn's default when None).
    options : dict
        Other keyword arguments for the imbalanced-learn sampler.
    """

    def __init__(self, method: str = "smote", *, sampling_strategy: Any = "auto", seed: int = 0,
                 memory_budget: str | int | None = "1GB", k_neighbors: int | None = None,
                 options: dict[str, Any] | None = None) -> None:
        self.method = method
        self.sampling_strategy = sampling_strategy
        self.seed = seed
        self.memory_budget = memory_budget
        self.k_neighbors = k_neighbors
        self.options = options

    def fit_resample(self, data: Any, target: str, *,
                     output: str | os.PathLike[str] | None = None, overwrite: bool = False) -> Dataset:
        """The balanced rows as a Dataset with ``data``'s schema (written to ``output`` if given;
        ``overwrite=True`` replaces a file datakiln did not write; the input is never replaced)."""
        started = time.perf_counter()
        ratio = self.sampling_strategy
        if isinstance(ratio, (float, int, np.number)) and not isinstance(ratio, bool) and not 0 < ratio <= 1:
            raise InvalidArgumentError(  # imbalanced-learn's message names neither --ratio nor the fix
                f"a ratio (sampling_strategy, kiln balance --ratio) is the minority/majority share after "
                f"balancing, in (0, 1]; got {ratio!r}: 1.0 makes the classes equal, 0.5 the minority half "
                f"the majority")
        dataset = as_dataset(data, what="balance")
        refuse_nested(dataset.arrow_schema, "balancing")
        if output is not None:  # refuse a bad output before the work
            from datakiln.io.write import check_output, source_inputs

            check_output(output, inputs=source_inputs(dataset.source), overwrite=overwrite)
        budget = parse_bytes(self.memory_budget)
        codec = FeatureCodec(dataset.arrow_schema, target).fit(dataset, budget)
        ratio = self.sampling_strategy
        is_ratio = isinstance(ratio, (float, int, np.number)) and not isinstance(ratio, bool)
        if is_ratio and len(codec.classes) > 2:
            raise InvalidArgumentError(  # imbalanced-learn says "use a dict", which a CLI user cannot
                f"a ratio (sampling_strategy={ratio!r}, kiln balance --ratio) needs two classes; the target "
                f"{target!r} has {len(codec.classes)} ({', '.join(map(repr, codec.classes[:10]))}): leave it "
                f"out to bring every class to the same count, or pass sampling_strategy={{class: rows}} "
                f"from Python")
        name = self.method.lower().replace("-", "_")
        comparison: list[dict[str, Any]] = []
        if name == "auto":
            from datakiln.balancing._auto import compare_methods

            comparison, name = compare_methods(dataset, codec, self, budget)
        if name == "none":
            result, report = dataset, self._unchanged(dataset, codec)
        else:
            method = method_named(name)
            if method is not None:
                method = self._resolve(method, codec)
            fits = _fits_in_memory(dataset, budget)
            if fits:
                result, report = self._in_memory(dataset, codec, method, name)
            else:
                if output is None:
                    raise InvalidArgumentError("the data is larger than a quarter of the memory budget; pass "
                                               "output= (--out) so the balanced rows can be written as they "
                                               "stream, or raise memory_budget")
                if method is not None and not method.per_class:
                    raise MemoryBudgetError(
                        f"{method.cls} needs every row's neighbours at once and the data does not fit a "
                        f"quarter of the {self.memory_budget} budget; use smote, random_over, random_under "
                        f"or synth (they work one class at a time), or raise memory_budget")
                result, report = per_class(dataset, codec, method, name, self, budget, output,
                                           overwrite=overwrite)
                output = None
        if output is not None:
            result.write(output, overwrite=overwrite)  # the format its ending names, else Parquet
            result = reread(output)
        report.comparison = comparison
        report.seconds = time.perf_counter() - started
        self.report_ = report
        return result

    def _resolve(self, method: Method, codec: FeatureCodec) -> Method:
        """SMOTE with categorical features becomes SMOTENC, or SMOTEN when all are categorical."""
        mask = codec.categorical_mask
        if method.name == "smote" and mask.any():
            return METHODS["smoten"] if mask.all() else METHODS["smotenc"]
        if method.name == "smotenc" and not mask.any():
            return METHODS["smote"]
        if method.name == "smoten" and not mask.all():
            raise InvalidArgumentError(f"SMOTEN needs categorical features only; {codec.features} include "
                                       f"numeric columns: use smote (SMOTENC)")
        return method

    def make_sampler(self, method: Method, codec: FeatureCodec, strategy: Any = None) -> Any:
        """The imbalanced-learn sampler for ``method`` with this Balancer's settings."""
        return sampler(method, sampling_strategy=codec.strategy(self.sampling_strategy) if strategy is None
                       else strategy,
                       seed=self.seed, categorical=list(np.flatnonzero(codec.categorical_mask)),
                       k_neighbors=self.k_neighbors, **(self.options or {}))

    def check_neighbours(self, method: Method, codec: FeatureCodec, y: np.ndarray) -> None:
        """A clear error when a class that must grow has no more rows than ``k_neighbors``, or
        (SMOTEN) more than its pairwise distances can hold in the memory budget."""
        if method.takes_k:
            from imblearn.utils import check_sampling_strategy

            try:
                strategy = check_sampling_strategy(codec.strategy(self.sampling_strategy), y, method.kind)
            except ValueError:  # a strategy the sampler will refuse itself, with its own message
                return
            check_neighbours(method, codec, y, strategy, self.k_neighbors)
            budget = parse_bytes(self.memory_budget)
            if method.name == "smoten" and budget is not None:
                from datakiln.balancing._smoten import check_distance_memory

                found = np.bincount(y)
                growing = [int(found[k]) for k, n in strategy.items() if n > 0]
                if growing:  # none when every class is already at the majority's size
                    check_distance_memory(max(growing), budget)

    def _unchanged(self, dataset: Dataset, codec: FeatureCodec) -> BalanceReport:
        found = counts(codec, codec.all_labels(dataset))
        return BalanceReport("none", "in memory", found, found, 0, 0)

    def _in_memory(self, dataset: Dataset, codec: FeatureCodec, method: Method | None,
                   name: str) -> tuple[Dataset, BalanceReport]:
        table = dataset.to_arrow()
        if method is not None and numpy_smote(method, self):
            return self._smote(table, codec, method)
        x, y = codec.encode(table)
        check_classes(codec, y)
        if method is None:  # synth
            from datakiln.balancing._synth import synthesize_minority

            new = synthesize_minority(dataset, codec, self, y)
            empty = (np.zeros((0, x.shape[1])), np.zeros(0, dtype=np.int64))
            new_x, new_y = codec.encode(new) if new.num_rows else empty
            out = pa.concat_tables([table, new]) if new.num_rows else table
            x_res, y_res = np.vstack([x, new_x]), np.r_[y, new_y]
            label = "synth (Gaussian copula, one component per class)"
        else:
            self.check_neighbours(method, codec, y)
            resampler = self.make_sampler(method, codec)
            try:
                x_res, y_res = resampler.fit_resample(x, y)
            except ValueError as exc:
                raise InvalidArgumentError(f"{method.cls} refused the data: {exc}") from exc
            new_x, new_y = _new_rows(method, x, x_res, y_res)
            if _appends(method):  # the originals come back first and unchanged: decode the new rows only
                out = pa.concat_tables([table, codec.decode(new_x, new_y)])
            else:
                out = codec.decode(x_res, y_res)
            label = method.name
        exact, near = copy_shares(new_x, new_y, x, y, codec.categorical_mask, seed=self.seed)
        report = BalanceReport(label, "in memory", counts(codec, y), counts(codec, np.asarray(y_res)),
                               new_rows=int(len(new_x)),
                               removed_rows=int(max(0, len(y) + len(new_x) - len(y_res))),
                               exact_copy_share=exact, near_copy_share=near)
        return Dataset.from_arrow(out), report


    def _smote(self, table: pa.Table, codec: FeatureCodec, method: Method) -> tuple[Dataset, BalanceReport]:
        """SMOTE on numeric features in NumPy (:mod:`datakiln.balancing._smote`): imbalanced-learn's
        rows; only the growing classes are encoded, the input rows are kept as they are."""
        from imblearn.utils import check_sampling_strategy

        y = codec.labels(table)
        check_classes(codec, y)
        self.check_neighbours(method, codec, y)
        try:
            strategy = check_sampling_strategy(codec.strategy(self.sampling_strategy), y, method.kind)
        except ValueError as exc:
            raise InvalidArgumentError(f"{method.cls} refused the data: {exc}") from exc
        growing = np.isin(y, [klass for klass, n in strategy.items() if n > 0])
        x, y_real = codec.encode(table.filter(pa.array(growing)))
        k = 5 if self.k_neighbors is None else self.k_neighbors
        columns, new_y = smote_rows(x, y_real, strategy, k, self.seed)
        new_x = columns.T  # a view: decoding reads the feature-major columns without a copy
        out = pa.concat_tables([table, codec.decode(new_x, new_y)])
        exact, near = copy_shares(new_x, new_y, x, y_real, codec.categorical_mask, seed=self.seed)
        report = BalanceReport(method.name, "in memory", counts(codec, y), counts(codec, np.r_[y, new_y]),
                               new_rows=len(new_y), removed_rows=0, exact_copy_share=exact,
                               near_copy_share=near)
        return Dataset.from_arrow(out), report


def _appends(method: Method) -> bool:
    """Whether imbalanced-learn returns the input rows first, unchanged, then the new ones."""
    return method.kind == "over-sampling" and method.module != "imblearn.combine"


def _new_rows(method: Method, x: np.ndarray, x_res: np.ndarray,
              y_res: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows a sampler added: the tail for over-samplers, rows absent from ``x`` otherwise."""
    if _appends(method):
        return x_res[len(x):], np.asarray(y_res)[len(x):]
    if method.module == "imblearn.combine":
        seen = {row.tobytes() for row in np.ascontiguousarray(x)}
        fresh = np.array([row.tobytes() not in seen for row in np.ascontiguousarray(x_res)], dtype=bool)
        return x_res[fresh], np.asarray(y_res)[fresh]
    return np.zeros((0, x.shape[1])), np.zeros(0, dtype=np.int64)


def _fits_in_memory(dataset: Dataset, budget: int | None) -> bool:
    """Whether the decoded rows take at most a quarter of ``budget`` (estimated from the head)."""
    if budget is None:
        return True
    return dataset.count() * bytes_per_row(dataset) * 2 <= budget / 4


def balance(data: Any, target: str, method: str = "smote", sampling_strategy: Any = "auto", seed: int = 0,
            *, memory_budget: str | int | None = "1GB", output: str | os.PathLike[str] | None = None,
            overwrite: bool = False, **options: Any) -> Dataset:
    """Rebalance the classes of ``target``; see :class:`Balancer` (its ``report_`` holds the counts).

    >>> balanced = datakiln.balance(ds, "y", method="smote", seed=0)   # doctest: +SKIP
    """
    k = options.pop("k_neighbors", None)
    return Balancer(method, sampling_strategy=sampling_strategy, seed=seed, memory_budget=memory_budget,
                    k_neighbors=k, options=options).fit_resample(data, target, output=output,
                                                                 overwrite=overwrite)

