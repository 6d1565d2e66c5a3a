"""``--where COLUMN=VALUE`` / ``COLUMN=LOW..HIGH`` conditions, checked against a model's schema.

A condition that cannot hold (an empty range such as ``age=60..20``) or does not fit the
column's type (``age=old``) is refused with a message naming the column and the fix: left to
the sampler, the first gave every row the value 60 and the second a raw traceback.
"""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from datakiln.errors import InvalidArgumentError

_FORM = "COLUMN=VALUE or COLUMN=LOW..HIGH (e.g. income=>50K, age=30..40)"


def parse_where(clauses: list[str] | None, schema: pa.Schema | None = None) -> dict[str, object]:
    """``["income=>50K", "age=30..40"]`` → ``{"income": ">50K", "age": (30, 40)}``.

    Parameters
    ----------
    clauses : list of str or None
        The ``--where`` values as typed.
    schema : pyarrow.Schema, optional
        The model's training schema. With it, each column must exist, numbers and times are
        parsed for numeric and temporal columns (``LOW..HIGH`` ranges only there, non-empty),
        booleans from true/false, and a string column takes the text as it is (``1..5`` is a
        category, ``007`` stays ``'007'``). Without it, values that look like numbers become
        numbers.

    Raises
    ------
    InvalidArgumentError
        For a clause without ``=``, an unknown column, a value of the wrong type or an
        empty range; the message names the clause, the column and the fix.
    """
    conditions: dict[str, object] = {}
    for clause in clauses or []:
        if "=" not in clause:
            raise InvalidArgumentError(f"--where takes {_FORM}, got {clause!r}")
        name, value = (part.strip() for part in clause.split("=", 1))
        if not name:
            raise InvalidArgumentError(f"--where {clause!r} names no column; write {_FORM}")
        if schema is None:
            conditions[name] = (tuple(_number(v) for v in value.split("..", 1)) if ".." in value
                                else _number(value))
            continue
        if name not in schema.names:
            raise InvalidArgumentError(f"--where {clause!r}: the model has no column {name!r}; "
                                       f"its columns are {', '.join(schema.names)}")
        conditions[name] = _typed(clause, name, value, schema.field(name).type)
    return conditions


def _typed(clause: str, name: str, value: str, dtype: pa.DataType) -> object:
    ordered = pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype)
    temporal = pa.types.is_temporal(dtype)
    if pa.types.is_boolean(dtype):
        text = value.lower()
        if text not in ("true", "false", "1", "0", "yes", "no"):
            raise InvalidArgumentError(f"--where {clause!r}: column {name!r} is true/false, so write "
                                       f"{name}=true or {name}=false")
        return text in ("true", "1", "yes")
    if not (ordered or temporal):
        return value  # a category or text: taken literally (the sampler checks it was seen)
    kind = "a number" if ordered else f"a {dtype} value (e.g. 2024-01-31)"
    example = f"{name}=30 or {name}=30..40" if ordered else f"{name}=2024-01-01..2024-06-30"
    parts = value.split("..", 1) if ".." in value else [value]
    parsed = []
    for part in parts:
        if not part.strip():
            raise InvalidArgumentError(f"--where {clause!r}: a range needs both ends; write {example}")
        parsed.append(_number(part) if ordered else part.strip())
        check = parsed[-1]
        if ordered and (isinstance(check, str) or not math.isfinite(check)):
            raise InvalidArgumentError(f"--where {clause!r}: column {name!r} holds numbers ({dtype}), "
                                       f"so {part.strip()!r} cannot match it; give {kind}: {example}")
        if pa.types.is_integer(dtype) and not float(check).is_integer():
            raise InvalidArgumentError(f"--where {clause!r}: column {name!r} holds whole numbers "
                                       f"({dtype}), got {part.strip()!r}; write {example}")
        if temporal:
            try:
                parsed[-1] = _temporal(check, dtype)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise InvalidArgumentError(f"--where {clause!r}: {part.strip()!r} is not {kind} for "
                                           f"column {name!r}; write {example}") from exc
    if len(parsed) == 1:
        return parsed[0]
    low, high = parsed
    if _greater(low, high):
        raise InvalidArgumentError(f"--where {clause!r}: the range {name}={value} is empty (low end "
                                   f"{parts[0].strip()} is above high end {parts[1].strip()}); write "
                                   f"{name}={parts[1].strip()}..{parts[0].strip()}")
    return (low, high)


def _temporal(text: Any, dtype: pa.DataType) -> object:
    """``text`` as a value of the temporal ``dtype``; for a zone-aware timestamp column, a
    time without an offset ('2024-01-31', '2024-01-31 08:00') is read in the column's zone."""
    try:
        return pa.array([text]).cast(dtype)[0].as_py()
    except pa.ArrowInvalid:
        if not (pa.types.is_timestamp(dtype) and dtype.tz):
            raise
        naive = pa.array([text]).cast(pa.timestamp(dtype.unit))  # no offset in the text
        return pc.assume_timezone(naive, dtype.tz)[0].as_py()


def _greater(low: Any, high: Any) -> bool:
    try:
        return bool(low > high)
    except TypeError:  # e.g. a zone-aware against a naive time: let the sampler judge
        return False


def _number(text: str) -> object:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
