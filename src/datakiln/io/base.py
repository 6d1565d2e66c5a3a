"""The Source protocol: what every reader gives the Dataset.

A source knows its Arrow ``schema``, can ``estimate_size`` cheaply, and splits its data
into *read tasks*: small callables that each return one Arrow table (a CSV byte range, a
Parquet row group, a SQL chunk). The dataset executor runs tasks on a thread pool and keeps
their order, so reading parallelises without the source managing threads.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

ReadTask = Callable[[], pa.Table]

__all__ = ["ReadStats", "ReadTask", "SizeEstimate", "Source"]


@dataclass(frozen=True)
class SizeEstimate:
    """How big a source is: ``rows`` (exact when ``exact``), ``bytes`` on storage."""

    rows: int | None
    bytes: int | None
    exact: bool = False


@dataclass
class ReadStats:
    """Rows a source skipped (``on_bad_rows="skip"``) with up to ``keep`` examples."""

    bad_rows: int = 0
    examples: list[dict[str, object]] = field(default_factory=list)
    keep: int = 5
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, where: str, line: int | None, text: str) -> None:
        """Count one skipped row at ``where`` (file), ``line`` (1-based) with its ``text``."""
        with self._lock:
            self.bad_rows += 1
            if len(self.examples) < self.keep:
                self.examples.append({"file": where, "line": line, "text": text[:200]})

    def reset(self) -> None:
        """Start counting afresh (each full pass over a source reports its own skips)."""
        with self._lock:
            self.bad_rows = 0
            self.examples.clear()

    def to_dict(self) -> dict[str, object]:
        """Plain data: ``{"bad_rows", "examples"}``."""
        return {"bad_rows": self.bad_rows, "examples": list(self.examples)}

    def __getstate__(self) -> dict[str, object]:  # a Dataset sent to another process (Ray)
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state, _lock=threading.Lock())


class Source:
    """Base class of readers; subclasses implement ``schema`` and ``read_tasks``."""

    #: short human description used in messages, e.g. ``"adult.csv"``
    name: str = "source"
    #: True when ``read_tasks`` yields cheap closures that do their I/O when called, so the
    #: tasks can be listed up front and run in any order (Parquet row groups, CSV ranges)
    tasks_are_independent: bool = True

    def __init__(self) -> None:
        self.stats = ReadStats()

    @property
    def schema(self) -> pa.Schema:  # pragma: no cover - abstract
        """The Arrow schema of every table the source yields."""
        raise NotImplementedError

    def fingerprint(self) -> str:  # pragma: no cover - abstract
        """A string that changes when the data changes (paths, sizes, mtimes, query)."""
        raise NotImplementedError

    def estimate_size(self) -> SizeEstimate:
        """Rows and bytes, as cheaply as the format allows (may be unknown)."""
        return SizeEstimate(None, None)

    def read_tasks(
        self, columns: Sequence[str] | None = None, filter: pc.Expression | None = None
    ) -> Iterator[ReadTask]:  # pragma: no cover - abstract
        """Yield callables, each returning the next table of the data in order."""
        raise NotImplementedError

    def head(self, rows: int) -> pa.Table:
        """The first ``rows`` rows (bounded reads only), with the full schema; kept for reuse."""
        cached = getattr(self, "_head_cache", None)
        if cached is not None and cached.num_rows >= rows:
            return cached.slice(0, rows)
        table = self._read_head(rows)
        self._head_cache = table
        return table

    def _read_head(self, rows: int) -> pa.Table:
        tables, have = [], 0
        with contextlib.closing(self.read_tasks()) as tasks:  # release cursors and files
            for task in tasks:
                table = task()
                tables.append(table.slice(0, rows - have))
                have += tables[-1].num_rows
                if have >= rows:
                    break
        return pa.concat_tables(tables) if tables else self.schema.empty_table()

    def read_all(
        self, columns: Sequence[str] | None = None, filter: pc.Expression | None = None
    ) -> pa.Table:
        """All rows as one table; formats with a faster whole-file reader override this."""
        with contextlib.closing(self.read_tasks(columns, filter)) as tasks:
            tables = [task() for task in tasks]
        if not tables:
            schema = self.schema if columns is None else pa.schema(
                [self.schema.field(c) for c in columns])
            return schema.empty_table()
        return pa.concat_tables(tables)

    def task_bytes(self) -> int:
        """Approximate bytes one read task holds in memory (for memory budgets)."""
        return 64 * 1024 * 1024

    def count_rows(self) -> int:
        """Exact number of rows (formats with metadata answer without reading the data)."""
        columns = self.schema.names[:1] or None
        with contextlib.closing(self.read_tasks(columns=columns)) as tasks:
            return sum(task().num_rows for task in tasks)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def apply_pushdown(table: pa.Table, columns: Sequence[str] | None,
                   filter: pc.Expression | None) -> pa.Table:
    """Filter then project a table read by a source that cannot push these down itself."""
    if filter is not None:
        table = table.filter(filter)
    if columns is not None:
        table = table.select(list(columns))
    return table
