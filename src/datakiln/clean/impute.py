"""Missing values: drop rows or columns over a threshold, then impute.

Simple strategies (``mean``, ``median``, ``mode``, ``constant``) take their statistics
from one streaming profile pass; ``median`` comes from its 65,536-row sample (exact when
the data fits). ``knn`` and ``iterative`` fit scikit-learn's KNNImputer /
IterativeImputer on a uniform sample of ``sample_rows`` rows of the numeric columns and
fill each batch with it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datakiln.clean.base import Step, fill_scalar, numeric_columns, numeric_matrix, sample_table
from datakiln.clean.report import StepReport
from datakiln.dataset.dataset import Dataset
from datakiln.errors import InvalidArgumentError, SchemaError

__all__ = ["Impute"]

STRATEGIES = ("mean", "median", "mode", "constant", "knn", "iterative")


class Impute(Step):
    """Fill missing values.

    Parameters
    ----------
    strategy : str
        ``"median"`` (numbers; default), ``"mean"``, ``"mode"`` (any kind), ``"constant"``
        (``fill_value``), ``"knn"`` or ``"iterative"`` (numbers, scikit-learn).
    columns : list, optional
        Columns to fill (default: every column with missing values; text columns get the
        mode when the strategy is numeric-only).
    drop_rows_over, drop_columns_over : float, optional
        Drop rows (columns) whose share of missing values is above this, before filling.
    """

    name = "missing"

    def __init__(self, *, strategy: str = "median", columns: list[str] | None = None,
                 fill_value: Any = None, drop_rows_over: float | None = None,
                 drop_columns_over: float | None = None, sample_rows: int = 50_000,
                 seed: int = 0) -> None:
        self.strategy = strategy
        self.columns = columns
        self.fill_value = fill_value
        self.drop_rows_over = drop_rows_over
        self.drop_columns_over = drop_columns_over
        self.sample_rows = sample_rows
        self.seed = seed

    def fit(self, dataset: Dataset, memory_budget: int | None) -> None:
        if self.strategy not in STRATEGIES:
            raise InvalidArgumentError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.strategy == "constant" and self.fill_value is None:
            raise InvalidArgumentError("strategy='constant' needs fill_value=")
        unknown = sorted(set(self.columns or []) - set(dataset.columns))
        if unknown:
            raise SchemaError(f"missing-value columns {unknown} do not exist; the columns are "
                              f"{dataset.columns}")
        profile = dataset.profile(memory_budget=memory_budget or "1GB", top_k=1)
        shares = {c.name: c.null_share for c in profile.columns}
        self.drop_columns_ = [c for c, s in shares.items()
                              if self.drop_columns_over is not None and s > self.drop_columns_over]
        wanted = self.columns or [c for c, s in shares.items() if s > 0]
        wanted = [c for c in wanted if c not in self.drop_columns_]
        numeric = set(numeric_columns(dataset.arrow_schema))
        self.fills_: dict[str, Any] = {}
        self.model_columns_: list[str] = []
        for name in wanted:
            column = profile[name]
            if self.strategy == "constant":
                self.fills_[name] = self.fill_value
            elif self.strategy in ("knn", "iterative") and name in numeric:
                self.model_columns_.append(name)
            elif self.strategy == "mean" and name in numeric:
                self.fills_[name] = column.mean
            elif self.strategy == "median" and name in numeric:
                self.fills_[name] = column.quantiles.get("0.5")
            elif column.top_values:  # mode, and the fallback for text columns
                self.fills_[name] = column.top_values[0][0]
        self._model = self._fit_model(dataset, memory_budget) if self.model_columns_ else None

    def _fit_model(self, dataset: Dataset, memory_budget: int | None) -> Any:
        from sklearn.experimental import enable_iterative_imputer  # noqa: F401
        from sklearn.impute import IterativeImputer, KNNImputer

        self.features_ = numeric_columns(dataset.arrow_schema)  # every number helps predict
        sample = sample_table(dataset, self.features_, self.sample_rows, self.seed, memory_budget)
        matrix = numeric_matrix(sample, self.features_)
        model = KNNImputer() if self.strategy == "knn" else IterativeImputer(random_state=self.seed)
        return model.fit(matrix)

    def apply(self, table: pa.Table, report: StepReport) -> pa.Table:
        if self.drop_columns_:
            for name in self.drop_columns_:
                report.count(name, "column dropped (too many missing)", table.num_rows)
            table = table.drop_columns([c for c in self.drop_columns_ if c in table.column_names])
        if self.drop_rows_over is not None and table.num_columns:
            missing = sum(np.asarray(pc.is_null(table[c]).to_numpy(zero_copy_only=False), dtype=np.int64)
                          for c in table.column_names)
            keep = missing / table.num_columns <= self.drop_rows_over
            report.count("(rows)", "rows dropped (too many missing)", int((~keep).sum()))
            table = table.filter(pa.array(keep))
        for name, value in self.fills_.items():
            column = table[name]
            if column.null_count and value is not None:
                report.count(name, f"imputed ({self.strategy})", column.null_count)
                table = table.set_column(table.schema.get_field_index(name), name,
                                         pc.fill_null(column, fill_scalar(value, column.type)))
        if self._model is not None and table.num_rows:
            filled = self._model.transform(numeric_matrix(table, self.features_))
            for name in self.model_columns_:
                index = self.features_.index(name)
                column = table[name]
                report.count(name, f"imputed ({self.strategy})", column.null_count)
                values = pa.array(filled[:, index])
                if pa.types.is_integer(column.type):
                    values = pc.cast(pc.round(values), column.type)
                # only nulls are filled: NaN and ±inf are values (the model saw them as missing)
                values = pc.if_else(pc.is_null(column), pc.cast(values, column.type), column)
                table = table.set_column(table.schema.get_field_index(name), name, values)
        return table
