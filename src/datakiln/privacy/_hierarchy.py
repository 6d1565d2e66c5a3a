"""Generalisation hierarchies for the k-anonymity search: one per quasi-identifier.

A hierarchy maps each distinct value of a column to a label at every level: level 0 is the
value itself, the top level is ``'*'`` (the value suppressed). Between them:

- **numbers** (integers, floats, decimals): intervals ``[lo, lo + w)`` anchored at 0, of
  widening width ``w``. The default widths start at the "nice" width (1, 2 or 5 times a
  power of ten) of at least a sixteenth of the observed range and double while below the
  range (Adult's ages 17-90 give 5, 10, 20, 40). Give ``[5, 10, 20]`` for your own.
- **categories** (anything else): ``'*'`` directly, or a user hierarchy — a mapping
  ``value -> [level 1 label, level 2 label, ...]`` given in Python, as a CSV file (ARX's
  format: one row per value, the value then its labels, ``;`` or ``,`` separated) or a YAML
  file (``{value: [labels]}``, or ``{column: {value: [labels]}}`` for several columns).
  ``'*'`` is added on top when the last level still has several labels.

Each level also carries the *loss* of every value (Iyengar's loss metric, as ARX's "Loss"):
for an interval, its share of the observed range ``(min(hi, max) - max(lo, min)) / (max - min)``;
for a category label, ``(values under the label - 1) / (distinct values - 1)``; ``'*'`` is 1.
A null stays null (loss 0) below the top level.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datakiln.errors import InvalidArgumentError, SchemaError, SourceNotFoundError

STAR = "*"


@dataclass
class Hierarchy:
    """Levels of one column over its distinct values (``values``, nulls last when present).

    ``codes[level][i]`` is the label index of value ``i`` at ``level``; ``labels[level]`` the
    label texts (level 0: the values themselves, null as None); ``loss[level][i]`` its loss.
    """

    column: str
    kind: str  # "intervals", "user", "suppress"
    values: pa.Array
    has_null: bool
    codes: list[np.ndarray]
    labels: list[list[Any]]
    loss: list[np.ndarray]
    steps: list[str]  # a description of each level

    @property
    def top(self) -> int:
        return len(self.codes) - 1


def _nice_width(span: float) -> float:
    if span <= 0:
        return 1.0
    raw = span / 16
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if factor * power >= raw:
            return factor * power
    return 10 * power  # pragma: no cover


def _fmt(x: float, integral: bool) -> str:
    return str(int(x)) if integral else f"{x:g}"


def _numeric(column: str, values: pa.Array, has_null: bool, widths: Sequence[float] | None) -> Hierarchy:
    numbers = values.cast(pa.float64()).to_numpy(zero_copy_only=False) if len(values) else np.zeros(0)
    integral = pa.types.is_integer(values.type)
    low, high = (float(numbers.min()), float(numbers.max())) if len(numbers) else (0.0, 0.0)
    span = high - low
    if widths is None:
        width = _nice_width(span)
        widths = []
        while width < span or not widths:
            widths.append(width)
            width *= 2
            if len(widths) >= 12:
                break
    elif any(not isinstance(w, int | float) or isinstance(w, bool) or w <= 0 for w in widths) or \
            list(widths) != sorted(widths):
        raise InvalidArgumentError(
            f"the interval widths of {column!r} must be positive numbers in increasing order, "
            f"got {list(widths)}")
    else:
        ratios = [b / a for a, b in zip(widths, widths[1:])]
        if any(abs(r - round(r)) > 1e-9 for r in ratios):
            raise InvalidArgumentError(
                f"each interval width of {column!r} must be a whole multiple of the one before, so "
                f"that the intervals nest (e.g. 5, 10, 20), got {list(widths)}")
    n = len(numbers) + int(has_null)
    codes = [np.arange(n, dtype=np.int64)]
    labels: list[list[Any]] = [[*values.to_pylist(), *([None] if has_null else [])]]
    loss = [np.zeros(n)]
    steps = ["kept"]
    for width in widths:
        lows = np.floor(numbers / width) * width
        uniq, inverse = np.unique(lows, return_inverse=True)
        code = np.append(inverse, len(uniq)) if has_null else inverse
        codes.append(code.astype(np.int64))
        labels.append([f"[{_fmt(lo, integral)}, {_fmt(lo + width, integral)})" for lo in uniq]
                      + ([None] if has_null else []))
        covered = np.minimum(lows + width, high) - np.maximum(lows, low)
        share = np.clip(covered / span, 0.0, 1.0) if span > 0 else np.zeros(len(lows))
        loss.append(np.append(share, 0.0) if has_null else share)
        steps.append(f"intervals of width {_fmt(width, integral and float(width).is_integer())}")
    _add_star(codes, labels, loss, steps, n)
    return Hierarchy(column, "intervals", values, has_null, codes, labels, loss, steps)


def _add_star(codes: list[np.ndarray], labels: list[list[Any]], loss: list[np.ndarray],
              steps: list[str], n: int) -> None:
    codes.append(np.zeros(n, dtype=np.int64))
    labels.append([STAR])
    loss.append(np.ones(n))
    steps.append("suppressed ('*')")


def _categorical(column: str, values: pa.Array, has_null: bool,
                 mapping: Mapping[Any, Sequence[Any]] | None) -> Hierarchy:
    texts = [str(v) for v in values.to_pylist()]
    n = len(texts) + int(has_null)
    codes = [np.arange(n, dtype=np.int64)]
    labels: list[list[Any]] = [[*values.to_pylist(), *([None] if has_null else [])]]
    loss = [np.zeros(n)]
    steps = ["kept"]
    kind = "suppress"
    if mapping:
        kind = "user"
        lookup = {str(k).strip(): [str(x).strip() for x in v] for k, v in mapping.items()}
        missing = [t for t in texts if t not in lookup]
        if missing:
            raise SchemaError(
                f"the hierarchy of {column!r} has no row for the values {missing[:5]}"
                f"{' ...' if len(missing) > 5 else ''}; add a row for every value of the column")
        depth = {len(lookup[t]) for t in texts}
        if len(depth) > 1:
            raise SchemaError(f"the hierarchy of {column!r} gives values different numbers of levels "
                              f"{sorted(depth)}; give every value the same number of labels")
        for level in range(depth.pop() if texts else 0):
            names = [lookup[t][level] for t in texts]
            if all(x == STAR for x in names):
                break
            uniq, inverse = np.unique(np.array(names, dtype=object).astype(str), return_inverse=True)
            under = np.bincount(inverse)[inverse]
            share = (under - 1) / (len(texts) - 1) if len(texts) > 1 else np.zeros(len(texts))
            code = np.append(inverse, len(uniq)) if has_null else inverse
            codes.append(code.astype(np.int64))
            labels.append([*uniq.tolist(), *([None] if has_null else [])])
            loss.append(np.append(share, 0.0) if has_null else share.astype(float))
            sample = ", ".join(uniq[:3].tolist()) + (" ..." if len(uniq) > 3 else "")
            steps.append(f"hierarchy level {level + 1}: {len(uniq)} labels ({sample})")
    for level in range(1, len(codes) - 1):
        pairs = np.unique(np.stack([codes[level], codes[level + 1]]), axis=1)
        if len(np.unique(pairs[0])) < pairs.shape[1]:
            raise SchemaError(
                f"the hierarchy of {column!r} is not a tree: a label of level {level} falls under "
                f"several labels of level {level + 1}; give each label one parent")
    _add_star(codes, labels, loss, steps, n)
    return Hierarchy(column, kind, values, has_null, codes, labels, loss, steps)


def read_hierarchy_file(path: str | os.PathLike[str], column: str | None = None) -> dict[Any, Any]:
    """A hierarchy file as ``{value: [labels]}`` (CSV, ARX's format) or, for YAML, either that
    or ``{column: {...}}`` (then ``column`` picks one)."""
    source = Path(path)
    if not source.is_file():
        raise SourceNotFoundError(f"hierarchy file {str(source)!r} does not exist")
    text = source.read_text(encoding="utf-8-sig")
    if source.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise SchemaError(f"hierarchy file {str(source)!r} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise SchemaError(f"hierarchy file {str(source)!r} must hold a mapping value -> [labels]")
        if column is not None and isinstance(data.get(column), dict):
            data = data[column]
        elif column is None and data and all(isinstance(v, dict) for v in data.values()):
            return data  # {column: {value: [labels]}}: the caller picks its columns
        bad = [k for k, v in data.items() if not isinstance(v, list | str)]
        if bad:
            raise SchemaError(f"hierarchy file {str(source)!r}: the entries {bad[:3]} are not lists of "
                              "labels; write value: [label1, label2]")
        return {k: ([v] if isinstance(v, str) else v) for k, v in data.items()}
    first = text.splitlines()[0] if text.strip() else ""
    delimiter = ";" if ";" in first else ","
    mapping: dict[Any, Any] = {}
    for number, row in enumerate(csv.reader(text.splitlines(), delimiter=delimiter), 1):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) < 2:
            raise SchemaError(f"hierarchy file {str(source)!r} row {number}: {row!r} has a value but no "
                              f"label; write value{delimiter}label1{delimiter}label2 ...")
        mapping[row[0].strip()] = row[1:]
    return mapping


def build(column: str, values: pa.Array, has_null: bool, spec: Any) -> Hierarchy:
    """The hierarchy of one column from its distinct values and the user's ``spec``.

    ``spec``: None (the default for its type), ``"suppress"``, a list of interval widths
    (numbers), a mapping value -> labels, or a CSV/YAML file path.
    """
    numeric = pa.types.is_integer(values.type) or pa.types.is_floating(values.type) or \
        pa.types.is_decimal(values.type)
    if isinstance(spec, str | os.PathLike) and spec != "suppress":
        spec = read_hierarchy_file(spec, column)
    if spec is None:
        if numeric:
            return _numeric(column, values, has_null, None)
        return _categorical(column, values, has_null, None)
    if isinstance(spec, str):  # "suppress"
        return _categorical(column, values, has_null, None)
    if isinstance(spec, Mapping):
        if numeric:  # user labels are matched on the value's text
            values = pc.cast(values, pa.string())
        return _categorical(column, values, has_null, spec)
    if isinstance(spec, Sequence):
        if not numeric:
            raise InvalidArgumentError(
                f"interval widths {list(spec)} were given for {column!r}, which holds "
                f"{values.type}, not numbers; give a hierarchy file or 'suppress'")
        return _numeric(column, values, has_null, list(spec))
    raise InvalidArgumentError(
        f"the hierarchy of {column!r} must be None, 'suppress', a list of interval widths, a "
        f"mapping value -> labels or a CSV/YAML file, got {type(spec).__name__}")
