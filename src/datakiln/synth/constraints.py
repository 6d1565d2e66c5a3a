"""Constraints a synthesizer guarantees by construction and checks on every output.

Written as short strings (or built directly):

- ``"start < end"`` / ``"start <= end"``: an inequality between two columns. The model
  learns ``end - start`` (positive in the training data) instead of ``end``, so every
  sampled row keeps the order.
- ``"age >= 0"``, ``"price > 0"``, ``"0 <= ratio <= 1"``: fixed bounds. Marginals never
  leave the training range, which must itself satisfy the bound (checked at fit).
- ``"visits: integer"``: whole numbers, also in a float column.

:func:`check` counts violations in a table; a synthesizer raises
:class:`~datakiln.errors.ConstraintError` if one ever appears in its output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from datakiln.errors import InvalidArgumentError
from datakiln.schema import numeric_values as ticks

__all__ = ["Bound", "Constraint", "Inequality", "Integer", "check", "parse_constraints"]

_NAME = r"[A-Za-z_][\w\-\.]*"
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


@dataclass(frozen=True)
class Inequality:
    """``low < high`` (``strict``) or ``low <= high`` between two columns."""

    low: str
    high: str
    strict: bool = True

    def __str__(self) -> str:
        return f"{self.low} {'<' if self.strict else '<='} {self.high}"


@dataclass(frozen=True)
class Bound:
    """``column`` within ``[minimum, maximum]`` (either may be None; strict excludes the end)."""

    column: str
    minimum: float | None = None
    maximum: float | None = None
    strict_min: bool = False
    strict_max: bool = False

    def __str__(self) -> str:
        below = f"{'<' if self.strict_max else '<='} {self.maximum!r}"
        if self.minimum is None:
            return f"{self.column} {below}"
        if self.maximum is None:
            return f"{self.column} {'>' if self.strict_min else '>='} {self.minimum!r}"
        return f"{self.minimum!r} {'<' if self.strict_min else '<='} {self.column} {below}"


@dataclass(frozen=True)
class Integer:
    """``column`` holds whole numbers."""

    column: str

    def __str__(self) -> str:
        return f"{self.column}: integer"


Constraint = Inequality | Bound | Integer


def columns_of(constraint: Constraint) -> list[str]:
    """The columns a constraint names."""
    return [constraint.low, constraint.high] if isinstance(constraint, Inequality) else [constraint.column]


def _parse_one(text: str) -> Constraint:
    spec = text.strip()
    if match := re.fullmatch(rf"({_NAME})\s*:\s*integer", spec):
        return Integer(match[1])
    if match := re.fullmatch(rf"({_NUMBER})\s*(<=?)\s*({_NAME})\s*(<=?)\s*({_NUMBER})", spec):
        return Bound(match[3], float(match[1]), float(match[5]), match[2] == "<", match[4] == "<")
    if match := re.fullmatch(rf"({_NAME})\s*(<=?|>=?)\s*({_NUMBER})", spec):
        value, op = float(match[3]), match[2]
        if op.startswith(">"):
            return Bound(match[1], minimum=value, strict_min=op == ">")
        return Bound(match[1], maximum=value, strict_max=op == "<")
    if match := re.fullmatch(rf"({_NAME})\s*(<=?|>=?)\s*({_NAME})", spec):
        a, op, b = match[1], match[2], match[3]
        low, high = (a, b) if op.startswith("<") else (b, a)
        return Inequality(low, high, strict=op in ("<", ">"))
    raise InvalidArgumentError(f"cannot read the constraint {text!r}; write e.g. 'start < end', "
                               f"'age >= 0', '0 <= ratio <= 1' or 'visits: integer'")


def parse_constraints(items: Any, columns: list[str]) -> list[Constraint]:
    """Constraint objects from strings or objects; every named column must exist."""
    out = []
    for item in items or []:
        constraint = _parse_one(item) if isinstance(item, str) else item
        if not isinstance(constraint, (Inequality, Bound, Integer)):
            raise InvalidArgumentError(f"a constraint is a string or Inequality/Bound/Integer, got {item!r}")
        named = columns_of(constraint)
        missing = [n for n in named if n not in columns]
        if missing:
            raise InvalidArgumentError(f"constraint {str(constraint)!r} names unknown columns {missing}; "
                                       f"the columns are {columns}")
        out.append(constraint)
    highs = [c.high for c in out if isinstance(c, Inequality)]
    if len(highs) != len(set(highs)) or set(highs) & {c.low for c in out if isinstance(c, Inequality)}:
        raise InvalidArgumentError("each column may be the upper side of one inequality and not also a "
                                   f"lower side; got {[str(c) for c in out if isinstance(c, Inequality)]}")
    return out


def violations(table: pa.Table, constraint: Constraint) -> int:
    """Rows of ``table`` that break ``constraint`` (rows with a null are not judged)."""
    if isinstance(constraint, Inequality):
        low, high = ticks(table[constraint.low]), ticks(table[constraint.high])
        with np.errstate(invalid="ignore"):
            bad = high <= low if constraint.strict else high < low
        return int(bad.sum())
    x = ticks(table[constraint.column])
    x = x[~np.isnan(x)]
    if isinstance(constraint, Integer):
        return int((x != np.round(x)).sum())
    bad = np.zeros(len(x), dtype=bool)
    if constraint.minimum is not None:
        bad |= x <= constraint.minimum if constraint.strict_min else x < constraint.minimum
    if constraint.maximum is not None:
        bad |= x >= constraint.maximum if constraint.strict_max else x > constraint.maximum
    return int(bad.sum())


def check(table: pa.Table, constraints: list[Constraint]) -> dict[str, int]:
    """``{constraint text: rows breaking it}`` for the constraints with any violation."""
    counts = {str(c): violations(table, c) for c in constraints}
    return {k: v for k, v in counts.items() if v}
