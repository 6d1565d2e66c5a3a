"""The source a dataset read under an access policy reads from (see :mod:`datakiln.privacy.policy`).

:class:`GuardedSource` wraps the source that ``datakiln.read`` opened. It shows only the
role's columns (masked ones with their masked type), asks the inner source for those columns
alone with the role's row filter pushed down, masks each table as it is read, and writes
the audit entries of every pass: a ``read`` entry when the pass starts (no task runs if it
cannot be written) and a ``read-end`` entry when it ends. A pass ends when its last task has
run ("complete"), when its consumer closes it early ("stopped": ``head()``, a ``limit``, an
interrupted loop; rows counted are those of the tables read so far), or when a task fails
("failed"). Every consumer in datakiln closes its task iterator; a caller iterating
``read_tasks`` by hand and never closing it leaves only the ``read`` entry.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from datakiln.errors import (
    AccessDeniedError,
    ConstraintError,
    EncodingError,
    ParseError,
    SourceError,
)
from datakiln.io._secrets import redact_text
from datakiln.io.base import ReadTask, SizeEstimate, Source
from datakiln.privacy.operators import Operator, as_array

__all__ = ["GuardedSource", "withholding_details"]

#: errors whose messages quote the data (a malformed row's text, undecodable bytes)
_QUOTING = (ParseError, EncodingError, ConstraintError)


@contextlib.contextmanager
def withholding_details(role: str, source: str) -> Iterator[None]:
    """Re-raise an error that may quote data (a malformed row) without its details: the row
    may hold values of columns ``role`` may not read."""
    try:
        yield
    except _QUOTING as exc:
        message = (f"{source} could not be read ({type(exc).__name__}); the details are withheld "
                   f"because they may quote values role {role!r} may not read: read it without a "
                   "policy (as someone allowed every column) to see them")
        try:
            error = type(exc)(message)
        except TypeError:  # pragma: no cover - every DatakilnError takes one message
            error = SourceError(message)
        raise error from None


class _Pass:
    """One pass over a guarded source: rows handed on, tasks run, and its end entry."""

    def __init__(self, source: GuardedSource, start_seq: int) -> None:
        self.source, self.start_seq = source, start_seq
        self.lock = threading.Lock()
        self.rows = self.yielded = self.done = 0
        self.total: int | None = None
        self.ended = False

    def task_done(self, rows: int) -> None:
        with self.lock:
            self.rows += rows
            self.done += 1
            if self.total is not None and self.done == self.total:
                self._end("complete")

    def exhausted(self) -> None:
        with self.lock:
            self.total = self.yielded
            if self.done == self.total:
                self._end("complete")

    def closed(self) -> None:
        with self.lock:
            self._end("complete" if self.total is not None and self.done == self.total else "stopped")

    def failed(self, exc: BaseException) -> None:
        with self.lock:
            self._end("failed", type(exc).__name__)

    def _end(self, status: str, error: str | None = None) -> None:
        if self.ended:
            return
        self.ended = True
        event: dict[str, Any] = {"event": "read-end", "read": self.start_seq, "status": status,
                                 "rows": self.rows, "role": self.source.role}
        if error:
            event["error"] = error
        self.source.audit.append(event)


class _Tasks:
    """The inner source's read tasks, guarded (an iterator with ``close``, like a generator,
    so a consumer that stops early ends the pass and its audit entry)."""

    def __init__(self, source: GuardedSource, inner: Iterator[ReadTask], wanted: list[str],
                 filter: pc.Expression | None, tally: _Pass) -> None:
        self.source, self.inner, self.wanted, self.filter, self.tally = source, inner, wanted, filter, tally

    def __iter__(self) -> _Tasks:
        return self

    def __next__(self) -> ReadTask:
        try:
            task = next(self.inner)
        except StopIteration:
            self.tally.exhausted()
            raise
        except BaseException as exc:
            self.tally.failed(exc)
            raise
        with self.tally.lock:
            self.tally.yielded += 1
        return functools.partial(self.source._run, task, self.wanted, self.filter, self.tally)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        try:
            if close is not None:
                close()
        finally:
            self.tally.closed()


class GuardedSource(Source):
    """``inner`` as one role of an access policy sees it (see the module docstring).

    Parameters
    ----------
    inner : Source
        The source ``datakiln.read`` opened.
    visible : list of str
        The role's columns, in data order.
    masks : dict
        Column -> bound operators, applied in order to each table.
    row_filter : pyarrow.compute.Expression or None
        The role's row filter over the inner columns (pushed into ``inner``).
    audit : AuditLog
        Where each pass is logged.
    event : dict
        Fields every ``read`` entry carries (role, policy, source, row filter text).
    """

    def __init__(self, inner: Source, visible: list[str], masks: dict[str, list[Operator]],
                 row_filter: pc.Expression | None, audit: Any, event: dict[str, Any],
                 fingerprint: str) -> None:
        super().__init__()
        self._inner, self._visible, self._masks = inner, list(visible), masks
        self._row_filter, self.audit, self._event = row_filter, audit, dict(event)
        self.role = str(event.get("role"))
        self._fingerprint = fingerprint
        self.stats = inner.stats
        self.name = inner.name
        self.tasks_are_independent = inner.tasks_are_independent
        self._schema = self._mask(inner.schema.empty_table().select(self._visible)).schema

    # -- what the role sees ---------------------------------------------------------------------
    @property
    def schema(self) -> pa.Schema:
        return self._schema

    @property
    def files(self) -> Any:  # the inputs stay protected from being overwritten by an output
        return getattr(self._inner, "files", None)

    @property
    def url(self) -> Any:
        return getattr(self._inner, "url", None)

    def fingerprint(self) -> str:
        return f"{self._fingerprint}:{self._inner.fingerprint()}"

    def estimate_size(self) -> SizeEstimate:
        inner = self._inner.estimate_size()
        return inner if self._row_filter is None else SizeEstimate(None, inner.bytes)

    def task_bytes(self) -> int:
        return self._inner.task_bytes()

    def refuse_columns(self, columns: Sequence[str]) -> None:
        """Raise :class:`AccessDeniedError` for ``columns`` outside the role's (whether or not
        the data has them, so the answer reveals nothing about the other columns)."""
        refused = [c for c in columns if c not in self._visible]
        if refused:
            raise AccessDeniedError(f"role {self.role!r} may not read the column(s) {refused} of "
                                    f"{redact_text(str(self.name))!r} under the policy "
                                    f"{self._event.get('policy')!r}; it reads {self._visible}")

    # -- reading ----------------------------------------------------------------------------------
    def read_tasks(self, columns: Sequence[str] | None = None,
                   filter: pc.Expression | None = None) -> Iterator[ReadTask]:
        wanted = list(self._visible) if columns is None else list(columns)
        self.refuse_columns(wanted)
        # a caller's filter applies to what the role sees (masked values): read its columns too
        need = wanted if filter is None else list(self._visible)
        start = self.audit.append({**self._event, "event": "read", "columns": wanted,
                                   "masked": [c for c in wanted if c in self._masks],
                                   "filter": None if filter is None else str(filter)})
        tally = _Pass(self, start["seq"])
        try:
            with withholding_details(self.role, repr(redact_text(str(self.name)))):
                inner = self._inner.read_tasks(need, self._row_filter)
        except BaseException as exc:
            tally.failed(exc)
            raise
        return _Tasks(self, inner, wanted, filter, tally)

    def read_all(self, columns: Sequence[str] | None = None,
                 filter: pc.Expression | None = None) -> pa.Table:
        """All rows the role may read, its tasks run on the executor's threads."""
        from datakiln.dataset._executor import ordered_map

        tables = list(ordered_map(self.read_tasks(columns, filter)))  # closes the tasks: logged
        if tables:
            return pa.concat_tables(tables)
        names = self._visible if columns is None else list(columns)
        return pa.schema([self._schema.field(c) for c in names]).empty_table()

    def count_rows(self) -> int:
        if self._row_filter is None:
            with withholding_details(self.role, repr(redact_text(str(self.name)))):
                rows = self._inner.count_rows()
            self.audit.append({**self._event, "event": "count", "columns": [], "rows": rows})
            return rows
        with contextlib.closing(self.read_tasks(columns=[])) as tasks:
            return sum(task().num_rows for task in tasks)

    def _run(self, task: ReadTask, wanted: list[str], filter: pc.Expression | None,
             tally: _Pass) -> pa.Table:
        try:
            with withholding_details(self.role, repr(redact_text(str(self.name)))):
                table = self._mask(task())
            if filter is not None:
                table = table.filter(filter)
            table = table.select(wanted)
        except BaseException as exc:
            tally.failed(exc)
            raise
        tally.task_done(table.num_rows)
        return table

    def _mask(self, table: pa.Table) -> pa.Table:
        for column, operators in self._masks.items():
            index = table.schema.get_field_index(column)
            if index < 0:
                continue
            values = as_array(table.column(index))
            if pa.types.is_dictionary(values.type):
                values = values.cast(values.type.value_type)
            for operator in operators:
                expected = operator.output_type(values.type)
                values = as_array(operator.apply(values, 0))
                if values.type != expected:
                    values = values.cast(expected)
            table = table.set_column(index, pa.field(column, values.type), values)
        return table
