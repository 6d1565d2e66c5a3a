"""Outliers by IQR fences, z-score or isolation forest; then report, flag, clip or drop.

IQR quartiles and z-score moments come from one streaming profile pass; the isolation
forest (scikit-learn) is fitted on a uniform sample of ``sample_rows`` rows and scores
every batch.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datakiln.clean.base import Step, count_true, numeric_columns, numeric_matrix, sample_table
from datakiln.clean.report import StepReport
from datakiln.dataset.dataset import Dataset
from datakiln.errors import InvalidArgumentError, SchemaError

__all__ = ["Outliers"]

METHODS = {"iqr": 1.5, "zscore": 3.0, "isolation_forest": None}
ACTIONS = ("report", "flag", "clip", "drop")
FLAG = "__outlier"


class Outliers(Step):
    """Find outliers in numeric columns.

    Parameters
    ----------
    method : {"iqr", "zscore", "isolation_forest"}
        IQR fences ``[q1 - t·IQR, q3 + t·IQR]`` (t = 1.5), ``|x - mean| > t·std``
        (t = 3), or an isolation forest over all ``columns`` together.
    action : {"report", "flag", "clip", "drop"}
        Only count (default); add ``<column>__outlier`` booleans (``__outlier`` for the
        forest); clip to the fences; or drop the rows.

    The fences come from the finite values: ±inf lies outside them (an outlier, clipped to
    the fence by ``"clip"``), NaN is never an outlier, and the forest sees both as missing.
    """

    name = "outliers"

    def __init__(self, *, method: str = "iqr", action: str = "report",
                 columns: list[str] | None = None, threshold: float | None = None,
                 sample_rows: int = 50_000, seed: int = 0) -> None:
        self.method = method
        self.action = action
        self.columns = columns
        self.threshold = threshold
        self.sample_rows = sample_rows
        self.seed = seed

    def fit(self, dataset: Dataset, memory_budget: int | None) -> None:
        if self.method not in METHODS:
            raise InvalidArgumentError(f"method must be one of {sorted(METHODS)}, got {self.method!r}")
        if self.action not in ACTIONS:
            raise InvalidArgumentError(f"action must be one of {ACTIONS}, got {self.action!r}")
        numeric = numeric_columns(dataset.arrow_schema)
        bad = [c for c in (self.columns or []) if c not in numeric]
        if bad:
            raise SchemaError(f"outlier columns must be numeric; {bad} are not (or do not exist)")
        self.columns_ = list(self.columns or numeric)
        if self.method == "isolation_forest":
            if self.action == "clip":
                raise InvalidArgumentError("an isolation forest has no fences to clip to; "
                                           "use action='flag' or 'drop'")
            from sklearn.ensemble import IsolationForest

            sample = sample_table(dataset, self.columns_, self.sample_rows, self.seed, memory_budget)
            features = numeric_matrix(sample, self.columns_, nan=0.0)
            self._forest = IsolationForest(random_state=self.seed).fit(features)
            return
        t = self.threshold if self.threshold is not None else METHODS[self.method]
        profile = dataset.select(self.columns_).profile(memory_budget=memory_budget or "1GB", top_k=1)
        self.fences_: dict[str, tuple[float, float]] = {}
        for name in self.columns_:
            column = profile[name]
            if self.method == "iqr" and column.quantiles:
                q1, q3 = float(column.quantiles["0.25"]), float(column.quantiles["0.75"])
                self.fences_[name] = (q1 - t * (q3 - q1), q3 + t * (q3 - q1))
            elif self.method == "zscore" and column.std is not None:
                self.fences_[name] = (column.mean - t * column.std, column.mean + t * column.std)

    def apply(self, table: pa.Table, report: StepReport) -> pa.Table:
        if self.method == "isolation_forest":
            flags = np.zeros(0, dtype=bool)
            if table.num_rows:
                flags = self._forest.predict(numeric_matrix(table, self.columns_, nan=0.0)) < 0
            report.count(FLAG, "outlier rows", int(flags.sum()))
            return self._act_rows(table, pa.array(flags), FLAG, report)
        drop = None
        for name, (low, high) in self.fences_.items():
            column = table[name]
            # compared as float64 (unsafe: int64 past 2**53 rounds instead of failing the cast)
            numbers = pc.cast(column, pa.float64(), safe=False)
            outside = pc.fill_null(pc.or_(pc.less(numbers, low), pc.greater(numbers, high)), False)
            report.count(name, f"outliers ({self.method})", count_true(outside))
            if self.action == "flag":
                table = table.append_column(name + FLAG, outside)
            elif self.action == "clip":
                clipped = pc.max_element_wise(pc.min_element_wise(numbers, high), low)
                if pa.types.is_integer(column.type):
                    clipped = pc.round(clipped)
                table = table.set_column(table.schema.get_field_index(name), name,
                                         pc.if_else(outside, pc.cast(clipped, column.type), column))
                report.count(name, "clipped", count_true(outside))
            elif self.action == "drop":
                drop = outside if drop is None else pc.or_(drop, outside)
        if drop is not None:
            report.count("(rows)", "outlier rows dropped", count_true(drop))
            table = table.filter(pc.invert(drop))
        return table

    def _act_rows(self, table: pa.Table, flags: pa.Array, name: str, report: StepReport) -> pa.Table:
        if self.action == "flag":
            return table.append_column(name, flags)
        if self.action == "drop":
            report.count("(rows)", "outlier rows dropped", count_true(flags))
            return table.filter(pc.invert(flags))
        return table
