"""What cleaning changed: per step, per column, in rows — as an object, JSON and a summary."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CleaningReport", "StepReport"]


@dataclass
class StepReport:
    """One step: its ``name``, settings, rows before/after and ``{column: {change: count}}``."""

    name: str
    settings: dict[str, Any] = field(default_factory=dict)
    rows_in: int = 0
    rows_out: int = 0
    columns: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    notes: list[str] = field(default_factory=list)

    def count(self, column: str, change: str, rows: int) -> None:
        """Add ``rows`` to the tally of ``change`` in ``column`` (zeros are not recorded)."""
        if rows:
            self.columns[column][change] = self.columns[column].get(change, 0) + int(rows)

    @property
    def rows_removed(self) -> int:
        return self.rows_in - self.rows_out

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.name, "settings": self.settings, "rows_in": self.rows_in,
                "rows_out": self.rows_out, "rows_removed": self.rows_removed,
                "columns": {c: dict(v) for c, v in self.columns.items()}, "notes": self.notes}


@dataclass
class CleaningReport:
    """Every step's :class:`StepReport`, plus the missing values found before cleaning."""

    steps: list[StepReport] = field(default_factory=list)
    missing_before: dict[str, int] = field(default_factory=dict)
    rows_in: int = 0
    rows_out: int = 0

    def step(self, name: str) -> StepReport:
        """The report of the step called ``name``."""
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(f"no step {name!r}; the steps are {[s.name for s in self.steps]}")

    def to_dict(self) -> dict[str, Any]:
        return {"rows_in": self.rows_in, "rows_out": self.rows_out,
                "missing_before": self.missing_before,
                "steps": [s.to_dict() for s in self.steps]}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, default=str)

    def summary_rows(self) -> list[tuple[str, str, str, str]]:
        """``(step, column, change, rows)`` lines for a printed table."""
        lines = []
        for step in self.steps:
            if step.rows_removed:
                lines.append((step.name, "(rows)", "removed", f"{step.rows_removed:,}"))
            for column, changes in step.columns.items():
                for change, rows in changes.items():
                    lines.append((step.name, column, change, f"{rows:,}"))
            if not step.rows_removed and not step.columns:
                lines.append((step.name, "", "no change", "0"))
        return lines
