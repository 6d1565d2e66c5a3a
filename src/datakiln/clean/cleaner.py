"""The Cleaner: steps fitted on one dataset and applied, in order, to any other.

``fit`` learns each step's statistics on the data as the earlier row-wise steps leave it
(streaming passes, bounded by the memory budget; a duplicates step is only applied when
cleaning, so statistics after it include the duplicate rows). ``transform`` makes one ordered pass
that applies every step table by table and tallies what changed in a
:class:`CleaningReport`; with ``output`` the result is written atomically as it goes, so
tables larger than memory can be cleaned. The pass is parallel over tables with ordered
output: row-wise steps run on worker threads (Arrow kernels release the GIL), a
duplicates step in order between them, and the writer compresses on the calling thread.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow as pa

from datakiln.clean.base import Step
from datakiln.clean.dedup import DropDuplicates
from datakiln.clean.impute import Impute
from datakiln.clean.outliers import Outliers
from datakiln.clean.repair import RepairTypes
from datakiln.clean.report import CleaningReport, StepReport
from datakiln.dataset.dataset import Dataset, as_dataset
from datakiln.errors import InvalidArgumentError, MemoryBudgetError, SchemaError
from datakiln.schema import refuse_nested
from datakiln.units import parse_bytes

__all__ = ["STEP_TYPES", "Cleaner", "default_steps"]

STEP_TYPES: dict[str, type[Step]] = {"repair": RepairTypes, "duplicates": DropDuplicates,
                                     "missing": Impute, "outliers": Outliers}


def default_steps() -> list[Step]:
    """The safe default: repair types and white space, drop exact duplicates, count outliers."""
    return [RepairTypes(), DropDuplicates(), Outliers(method="iqr", action="report")]


class Cleaner:
    """Compose cleaning steps; ``fit`` on one split, ``transform`` any other.

    >>> cleaner = Cleaner([RepairTypes(), DropDuplicates(), Impute(strategy="median")])  # doctest: +SKIP
    >>> cleaned = cleaner.fit(train).transform(train, output="train_clean.parquet")       # doctest: +SKIP
    >>> print(cleaner.report_.to_json())                                                  # doctest: +SKIP
    """

    def __init__(self, steps: list[Step] | None = None, *, memory_budget: int | str | None = "1GB") -> None:
        self.steps = steps
        self.memory_budget = memory_budget

    @classmethod
    def from_config(cls, config: dict[str, Any] | str | os.PathLike[str]) -> Cleaner:
        """Build from ``{"steps": [{"repair": {...}}, {"missing": {...}}, ...]}`` or a YAML/JSON file."""
        if not isinstance(config, dict):
            path = Path(config)
            if not path.is_file():
                raise SchemaError(f"cleaning config {str(path)!r} does not exist")
            import yaml  # JSON is YAML too

            try:
                config = yaml.safe_load(path.read_text(encoding="utf-8"))
            except yaml.YAMLError as exc:
                raise SchemaError(f"cleaning config {str(path)!r} is not valid YAML/JSON: {exc}") from exc
        steps = []
        for entry in (config or {}).get("steps", []):
            if not isinstance(entry, dict) or len(entry) != 1:
                raise SchemaError("each step is one mapping like {missing: {strategy: median}}, "
                                  f"got {entry!r}")
            (kind, options), = entry.items()
            if kind not in STEP_TYPES:
                raise SchemaError(f"unknown cleaning step {kind!r}; choose from {sorted(STEP_TYPES)}")
            try:
                steps.append(STEP_TYPES[kind](**(options or {})))
            except TypeError as exc:
                raise SchemaError(f"step {kind!r}: {exc}") from exc
        return cls(steps, memory_budget=(config or {}).get("memory_budget", "1GB"))

    def fit(self, data: Any) -> Cleaner:
        """Learn every step's statistics on ``data`` (each on the output of the ones before)."""
        dataset = as_dataset(data, what="the Cleaner")
        refuse_nested(dataset.arrow_schema, "cleaning")
        budget = parse_bytes(self.memory_budget)
        self.steps_ = list(self.steps) if self.steps is not None else default_steps()
        if sum(not step.row_wise for step in self.steps_) > 1:
            raise InvalidArgumentError("use at most one duplicates step per Cleaner")
        current = dataset
        for step in self.steps_:
            step.fit(current, budget)
            if step.row_wise:
                current = _mapped(current, step)
        return self

    def transform(self, data: Any, *, output: str | os.PathLike[str] | None = None,
                  format: str | None = None, on_progress: Any = None,
                  overwrite: bool = False) -> Dataset:
        """Clean ``data`` in one ordered pass; sets ``report_``. With ``output`` the rows are
        written there atomically and the returned Dataset reads them (``overwrite=True``
        replaces a file datakiln did not write; the input is never replaced)."""
        if not hasattr(self, "steps_"):
            raise InvalidArgumentError("the Cleaner is not fitted yet; call fit first")
        dataset = as_dataset(data, what="the Cleaner")
        budget = parse_bytes(self.memory_budget)
        report = CleaningReport()
        reports = [StepReport(step.name, step.settings()) for step in self.steps_]
        report.steps = reports
        current = dataset
        for step in self.steps_:  # the duplicates step sees exactly the rows it will get
            if step.row_wise:
                current = _mapped(current, step)
            else:
                step.prepare(current, budget)
                break
        missing: dict[str, int] = {}
        cut = next((i for i, step in enumerate(self.steps_) if not step.row_wise), len(self.steps_))

        def tables() -> Any:
            for table, parts in _stages(dataset, budget, self.steps_, cut):
                report.rows_in += parts.pop("rows_in")
                for name, nulls in parts.pop("missing").items():
                    missing[name] = missing.get(name, 0) + nulls
                for step_report, part in zip(reports, parts["steps"]):
                    _merge(step_report, part)
                report.rows_out += table.num_rows
                if on_progress is not None:
                    on_progress(table.num_rows)
                yield table

        if output is not None:
            from datakiln.dataset.reading import read
            from datakiln.io.write import format_for, source_inputs, write_tables

            first = self.output_schema(dataset)
            written = format_for(output, format)  # default: the output's ending, else Parquet
            result = write_tables(tables(), first, output, format=written, overwrite=overwrite,
                                  inputs=source_inputs(dataset.source))
            cleaned = read(result.path, format="json" if written == "jsonl" else written)
        else:
            collected = list(tables())
            cleaned = Dataset.from_arrow(pa.concat_tables(collected) if collected
                                         else self.output_schema(dataset).empty_table())
        report.missing_before = missing
        self.report_ = report
        return cleaned

    def output_schema(self, dataset: Dataset) -> pa.Schema:
        table = dataset.head(1)
        for step in self.steps_:
            table = step.apply(table, StepReport(step.name)) if step.row_wise else table
        return table.schema

    def fit_transform(self, data: Any, **kwargs: Any) -> Dataset:
        """``fit(data)`` then ``transform(data, **kwargs)``."""
        return self.fit(data).transform(data, **kwargs)


STAGE_THREADS = 2  # threads of the stage after a duplicates step (one more table in flight each)


def _stages(dataset: Dataset, budget: int | None, steps: list[Step], cut: int) -> Any:
    """``(table, tallies)`` of every table of ``dataset`` after all steps, in order.

    The row-wise steps before the stateful one (``cut``, a duplicates step) run on the
    read's own worker threads (no extra tables in flight), those after it on
    :data:`STAGE_THREADS` threads; the stateful step runs in between, in order, on the
    calling thread (it numbers rows as they come). Each table tallies into its own
    :class:`StepReport`, merged in order by the caller, so counts never race.
    """
    from datakiln.dataset._executor import ordered_map

    def before(table: pa.Table) -> tuple[pa.Table, dict[str, Any]]:
        parts: dict[str, Any] = {"rows_in": table.num_rows, "steps": [],
                                 "missing": {n: table[n].null_count for n in table.column_names}}
        return _run(table, steps[:cut], parts), parts

    def after(table: pa.Table, parts: dict[str, Any]) -> tuple[pa.Table, dict[str, Any]]:
        return _run(table, steps[cut + 1:], parts), parts

    if cut == len(steps):
        yield from dataset._tables(before, memory_budget=budget)
        return
    first = dataset._tables(before, memory_budget=_read_share(dataset, budget))

    def middle() -> Any:
        for table, parts in first:  # the stateful step, in order
            yield lambda t=table, p=parts: after(*_run_one(t, steps[cut], p))

    yield from ordered_map(middle(), threads=STAGE_THREADS, in_flight=STAGE_THREADS)


def _read_share(dataset: Dataset, budget: int | None) -> int | None:
    """Half the budget for the read when that still fits one read task: the stage after a
    duplicates step holds tables too, and the two together stay within the budget."""
    if budget is None:
        return None
    try:
        dataset._in_flight(budget // 2)
    except MemoryBudgetError:
        return budget
    return budget // 2


def _run_one(table: pa.Table, step: Step, parts: dict[str, Any]) -> tuple[pa.Table, dict[str, Any]]:
    return _run(table, [step], parts), parts


def _run(table: pa.Table, steps: list[Step], parts: dict[str, Any]) -> pa.Table:
    for step in steps:
        tally = StepReport(step.name)
        tally.rows_in = table.num_rows
        table = step.apply(table, tally)
        tally.rows_out = table.num_rows
        parts["steps"].append(tally)
    return table


def _merge(total: StepReport, part: StepReport) -> None:
    total.rows_in += part.rows_in
    total.rows_out += part.rows_out
    for column, changes in part.columns.items():
        for change, rows in changes.items():
            total.count(column, change, rows)


def _mapped(current: Dataset, step: Step) -> Dataset:
    """``current`` with the row-wise ``step`` applied table by table. Its inference head (the
    first rows, behind ``profile()``'s column kinds) is the step applied to ``current``'s head
    when no row is dropped, instead of a read of the whole new plan's first tables."""
    mapped = current.map_batches(_silent(step))
    head = current._inference_sample()
    stepped = step.apply(head, StepReport(step.name))
    if stepped.num_rows == head.num_rows:
        mapped._head = stepped
    return mapped


def _silent(step: Step) -> Any:
    def apply(table: pa.Table) -> pa.Table:
        return step.apply(table, StepReport(step.name))
    return apply
