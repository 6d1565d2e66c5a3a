"""Conditions for every model on the transformed space: one plan, one bounded rejection loop.

A model may satisfy categorical conditions by its own mechanism (CTGAN feeds them to its
generator as the conditional vector); every generated row is still checked here, so a
condition holds *exactly* whatever the model does:

- a categorical value (or ``None`` for missing): the row's decoded slot must equal it;
- a numeric ``(low, high)`` range (either end may be None): the decoded value must lie in it;
- a single numeric value: rows within :data:`WINDOW` of the column's training range around
  it are kept (so the other columns follow that neighbourhood) and the value is then set
  exactly;
- identifier and PII columns: the value is written into every row (nothing to model).

Rejection is bounded: at most ``max_factor`` (default :data:`MAX_FACTOR` = 50) times the
requested rows are generated (rounded up to whole chunks), then
:class:`~datakiln.errors.InvalidArgumentError` says how many matched and how to loosen
the conditions. No model ever silently returns fewer rows or rows off the condition.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from datakiln.errors import InvalidArgumentError
from datakiln.schema import numeric_values as ticks

__all__ = ["MAX_FACTOR", "WINDOW", "ConditionPlan", "make_plan", "matching", "rejection_stream"]

MAX_FACTOR = 50
WINDOW = 0.025

Columns = dict[str, tuple[np.ndarray, np.ndarray]]


@dataclass
class ConditionPlan:
    """Conditions resolved against a fitted encoder (codes and ticks)."""

    categorical: dict[str, int] = field(default_factory=dict)  # column → slot code (-1: missing)
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)  # column → ticks (inclusive)
    exact: dict[str, float] = field(default_factory=dict)  # numeric column → value set after acceptance
    fixed: dict[str, Any] = field(default_factory=dict)  # identifier/PII column → value
    conditions: dict[str, Any] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """Nothing to check."""
        return not (self.categorical or self.ranges)


def _tick(value: Any, dtype: pa.DataType) -> float:
    return float(ticks(pa.array([value]).cast(dtype))[0])


def make_plan(conditions: dict[str, Any], roles: dict[str, str], schema: pa.Schema, encoder: Any,
              gaps: dict[str, str]) -> ConditionPlan:
    """Check ``conditions`` (already type-checked by the base contract) and resolve them."""
    plan = ConditionPlan(conditions=dict(conditions))
    for name, value in conditions.items():
        role, dtype = roles[name], schema.field(name).type
        if name in gaps:
            raise InvalidArgumentError(f"{name!r} is the upper side of the constraint "
                                       f"'{gaps[name]} < {name}' "
                                       f"and is modelled as a gap; condition on {gaps[name]!r} instead")
        if role == "text":
            raise InvalidArgumentError(f"{name!r} is free text (sampled as placeholder text); it cannot be a "
                                       f"condition")
        if role in ("identifier", "pii"):
            plan.fixed[name] = value
            continue
        if role == "categorical":
            code = encoder.category_code(name, value)
            if code is None:
                kept = encoder._categories[name].kept.to_pylist()[:5]
                what = "a missing value" if value is None else f"{value!r}"
                raise InvalidArgumentError(f"{what} is not a value of {name!r} seen in training (e.g. "
                                           f"{kept}); condition on a value the model learned")
            plan.categorical[name] = -1 if value is None else code
            continue
        col = encoder.columns[encoder.names.index(name)]
        if isinstance(value, (tuple, list)):
            low = -np.inf if value[0] is None else _tick(value[0], dtype)
            high = np.inf if value[1] is None else _tick(value[1], dtype)
            if high < col["low"] or low > col["high"]:
                raise InvalidArgumentError(f"the range {name}={tuple(value)!r} lies outside the training "
                                           f"range of {name!r}; no sampled row can meet it")
            plan.ranges[name] = (low, high)
        elif value is None:
            plan.categorical[name] = -1
        else:
            x = _tick(value, dtype)
            span = max(col["high"] - col["low"], 1e-12)
            plan.ranges[name] = (x - WINDOW * span, x + WINDOW * span)
            plan.exact[name] = x
    return plan


def matching(columns: Columns, plan: ConditionPlan) -> np.ndarray:
    """Boolean mask of the decoded rows that meet every condition of ``plan``."""
    n = len(next(iter(columns.values()))[0]) if columns else 0
    keep = np.ones(n, dtype=bool)
    for name, code in plan.categorical.items():
        values, missing = columns[name]
        keep &= missing if code == -1 else (~missing & (values == code))
    for name, (low, high) in plan.ranges.items():
        values, missing = columns[name]
        keep &= ~missing & (values >= low) & (values <= high)
    return keep


def rejection_stream(generate: Callable[[int], Columns], n: int, chunk_rows: int, plan: ConditionPlan,
                     max_factor: int = MAX_FACTOR) -> Iterator[tuple[int, Columns]]:
    """``(chunk index, accepted rows)`` until ``n`` rows are accepted (the last chunk trimmed).

    ``generate(i)`` decodes chunk ``i`` (its own seed). At most ``max(max_factor * n,
    chunk_rows)`` rows are generated, rounded up to whole chunks; then the error.
    """
    if n == 0:
        return
    budget = max(max_factor * n, chunk_rows)
    accepted = generated = index = 0
    while accepted < n:
        if generated >= budget:
            share = accepted / max(generated, 1)
            raise InvalidArgumentError(
                f"only {accepted:,} of {generated:,} generated rows ({share:.3%}) meet the conditions "
                f"{plan.conditions}; {n:,} were asked for and rejection stops at {max_factor}x "
                f"oversampling. Loosen the conditions (wider ranges, fewer columns) or ask for fewer rows")
        columns = generate(index)
        generated += chunk_rows
        keep = matching(columns, plan) if not plan.empty else None
        if keep is not None:
            columns = {k: (v[keep], m[keep]) for k, (v, m) in columns.items()}
        rows = len(next(iter(columns.values()))[0]) if columns else chunk_rows
        take = min(rows, n - accepted)
        if take < rows:
            columns = {k: (v[:take], m[:take]) for k, (v, m) in columns.items()}
        for name, x in plan.exact.items():
            values, missing = columns[name]
            columns[name] = (np.full(len(values), x), np.zeros(len(values), dtype=bool))
        if take:
            yield index, columns
        accepted += take
        index += 1
