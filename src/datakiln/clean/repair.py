"""Type repair: stray white space, numbers and dates stored as text, inconsistent case of
categories, and values outside declared ranges."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from datakiln.clean.base import Step, count_true
from datakiln.clean.report import StepReport
from datakiln.dataset.dataset import Dataset
from datakiln.errors import SchemaError

__all__ = ["RepairTypes"]

_NUMBER = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
_INTEGER = r"^\s*[-+]?\d+\s*$"
_LEADING_ZERO = r"^\s*[-+]?0\d"  # "007", "02134": a code whose zeros carry meaning
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y",
                 "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y/%m/%d %H:%M:%S")
SHARE = 0.95
MAX_CASE_CATEGORIES = 1000


def _is_text(dtype: pa.DataType) -> bool:
    return pa.types.is_string(dtype) or pa.types.is_large_string(dtype)


class RepairTypes(Step):
    """Repair text columns and enforce declared ranges.

    Parameters
    ----------
    trim : bool
        Strip white space around text values (default True).
    numbers, dates : bool
        Convert text columns where at least 95 % of the values in the first 10,000 rows
        parse as numbers (dates in a common format); values that do not parse become null
        and are counted. A column with a value such as ``"007"`` (a leading zero) holds
        codes and stays text: as numbers ``"00501"`` and ``"501"`` would become equal.
    case : bool
        Map case variants of a category (``"male"``, ``"Male "``) to its most frequent form.
    ranges : dict, optional
        ``{column: [low, high]}``; values outside become null ("impossible value").
    """

    name = "repair"

    def __init__(self, *, trim: bool = True, numbers: bool = True, dates: bool = True,
                 case: bool = True, ranges: dict[str, Any] | None = None) -> None:
        self.trim = trim
        self.numbers = numbers
        self.dates = dates
        self.case = case
        self.ranges = ranges

    def fit(self, dataset: Dataset, memory_budget: int | None) -> None:
        sample = dataset._inference_sample()
        unknown = sorted(set(self.ranges or {}) - set(sample.column_names))
        if unknown:
            raise SchemaError(f"ranges name unknown columns {unknown}; the columns are "
                              f"{sample.column_names}")
        self.conversions_: dict[str, tuple[str, str | None]] = {}
        candidates = []
        for field in sample.schema:
            if not _is_text(field.type):
                continue
            values = sample[field.name].drop_null()
            if self.trim:
                values = pc.utf8_trim_whitespace(values)
            values = values.filter(pc.not_equal(values, ""))
            if len(values) == 0:
                continue
            looks_numeric = pc.match_substring_regex(values, _NUMBER)
            # codes with leading zeros stay text: as numbers "00501" and "501" would merge
            coded = pc.any(pc.match_substring_regex(values, _LEADING_ZERO)).as_py()
            if self.numbers and not coded and _share(looks_numeric) >= SHARE:
                numbers = values.filter(looks_numeric)
                kind = "int" if _share(pc.match_substring_regex(numbers, _INTEGER)) >= 1.0 else "float"
                self.conversions_[field.name] = (kind, None)
                continue
            found = self._date_format(values) if self.dates else None
            if found:
                self.conversions_[field.name] = ("date", found)
                continue
            if self.case and pc.count_distinct(values).as_py() <= MAX_CASE_CATEGORIES:
                candidates.append(field.name)
        self.case_maps_ = self._case_maps(dataset, candidates, memory_budget) if candidates else {}

    @staticmethod
    def _date_format(values: pa.ChunkedArray) -> str | None:
        for fmt in _DATE_FORMATS:
            parsed = pc.strptime(values, format=fmt, unit="s", error_is_null=True)
            if _share(pc.is_valid(parsed)) >= SHARE:
                return fmt
        return None

    def _case_maps(self, dataset: Dataset, columns: list[str],
                   memory_budget: int | None) -> dict[str, dict[str, str]]:
        counts: dict[str, Counter[str]] = {c: Counter() for c in columns}
        for table in dataset.select(columns)._tables(memory_budget=memory_budget):
            for name in columns:
                values = table[name]
                if self.trim:
                    values = pc.utf8_trim_whitespace(values)
                summary = pc.value_counts(values.drop_null())
                counts[name].update(dict(zip(summary.field("values").to_pylist(),
                                             summary.field("counts").to_pylist())))
        maps = {}
        for name, seen in counts.items():
            if len(seen) > MAX_CASE_CATEGORIES:
                continue
            by_key: dict[str, list[tuple[int, str]]] = {}
            for value, count in seen.items():
                by_key.setdefault(value.casefold(), []).append((count, value))
            mapping = {}
            for variants in by_key.values():
                if len(variants) > 1:
                    canonical = max(variants)[1]
                    mapping.update({v: canonical for _, v in variants if v != canonical})
            if mapping:
                maps[name] = mapping
        return maps

    def apply(self, table: pa.Table, report: StepReport) -> pa.Table:
        for index, field in enumerate(table.schema):
            column = table[field.name]
            if self.trim and _is_text(field.type):
                trimmed = pc.utf8_trim_whitespace(column)
                report.count(field.name, "whitespace trimmed", count_true(pc.not_equal(trimmed, column)))
                column = trimmed
            if field.name in self.conversions_:
                column = self._convert(field.name, column, report)
            elif field.name in self.case_maps_:
                column = self._recase(field.name, column, report)
            table = table.set_column(index, field.name, column)
        for name, (low, high) in (self.ranges or {}).items():
            column = table[name]
            outside = pc.or_(pc.less(column, low), pc.greater(column, high))
            report.count(name, "impossible value set to null", count_true(outside))
            table = table.set_column(table.schema.get_field_index(name), name,
                                     pc.if_else(outside, pa.scalar(None, column.type), column))
        return table

    def _convert(self, name: str, column: pa.ChunkedArray, report: StepReport) -> pa.ChunkedArray:
        kind, fmt = self.conversions_[name]
        present = pc.and_(pc.is_valid(column), pc.not_equal(column, ""))
        if kind == "date":
            converted = pc.strptime(column, format=fmt, unit="s", error_is_null=True)
            label = "text parsed as date"
        else:
            ok = pc.match_substring_regex(column, _NUMBER if kind == "float" else _INTEGER)
            cleaned = pc.if_else(ok, column, pa.scalar(None, column.type))
            converted = pc.cast(pc.utf8_trim_whitespace(cleaned),
                                pa.int64() if kind == "int" else pa.float64())
            label = "text parsed as number"
        report.count(name, label, count_true(pc.and_(present, pc.is_valid(converted))))
        report.count(name, "unparsable text set to null",
                     count_true(pc.and_(present, pc.is_null(converted))))
        return converted

    def _recase(self, name: str, column: pa.ChunkedArray, report: StepReport) -> pa.ChunkedArray:
        mapping = self.case_maps_[name]
        variants = pa.array(list(mapping), pa.string())
        canonical = pa.array(list(mapping.values()), pa.string())
        position = pc.index_in(column, value_set=variants)
        replaced = pc.take(canonical, position)
        hit = pc.is_valid(position)
        report.count(name, "case unified", count_true(hit))
        return pc.if_else(hit, replaced, column)


def _share(mask: Any) -> float:
    total = len(mask)
    return count_true(mask) / total if total else 0.0


