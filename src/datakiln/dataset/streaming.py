"""Streams as datasets: :func:`read_stream` and :class:`StreamDataset`, whose batches never end.

A :class:`StreamDataset` behaves like a :class:`~datakiln.dataset.Dataset` where that makes
sense for data without an end: ``select`` / ``filter`` / ``map_batches`` / ``clean`` apply
per batch, ``iter_batches`` and ``loader`` yield batches for online learning, and
``profile`` is computed over a window of recent rows (``window_rows`` or
``window_seconds``). Whatever needs the end (``count``, ``to_arrow``, ``split``,
``write``, a shuffled epoch) raises :class:`~datakiln.errors.UnboundedStreamError`.

Acknowledgement: a batch is acknowledged when the next one is requested, or by
:meth:`StreamDataset.commit`; a consumer killed while holding a batch gets it again after a
restart (at least once). ``dedup=True`` drops messages whose id was seen in this process
(the last ``dedup_window`` ids), e.g. entries two consumers claimed at once; duplicates
after a crash need idempotent processing (``with_ids=True`` gives each row its id).
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datakiln.dataset.dataset import _apply, _Op
from datakiln.errors import InvalidArgumentError, SchemaError, UnboundedStreamError
from datakiln.io.streams import Fetched, StreamSource, open_stream

if TYPE_CHECKING:
    from datakiln.dataset.profile import Profile

__all__ = ["StreamDataset", "StreamLoader", "StreamStats", "WindowProfile", "read_stream"]

#: the column ``with_ids=True`` adds: each row's message id (Redis entry id, NATS sequence, byte offset)
ID_COLUMN = "_message_id"


def read_stream(url: str, *, batch_size: int = 1000, max_wait_ms: int = 100, format: str | None = None,
                schema: Any = None, start: str | int = "earliest", follow: bool = False,
                dedup: bool = False, dedup_window: int = 1_000_000, with_ids: bool = False,
                on_error: str = "raise", **options: Any) -> StreamDataset:
    """Open an unbounded stream of rows.

    Parameters
    ----------
    url : str
        ``redis://host:6379/0?stream=events&group=trainer[&consumer=worker-1]``,
        ``nats://host:4222?stream=EVENTS&durable=trainer[&subject=events.>]``, ``"-"``
        (standard input), a FIFO path, or a JSON Lines / CSV file with ``follow=True``.
    batch_size, max_wait_ms : int
        A batch is up to ``batch_size`` messages (default 1000), or what arrived within
        ``max_wait_ms`` milliseconds (default 100) once it started waiting.
    format : {"fields", "json", "csv", "raw"}, optional
        How a message becomes a row (Redis default: one column per field; otherwise JSON).
    schema : pyarrow.Schema or dict, optional
        Column types (``{"age": "int", "income": "string"}``); otherwise inferred from the
        first batch and then fixed.
    start : {"earliest", "latest"} or offset
        Where a new group (or a followed file) starts; an existing group keeps its position.
    dedup, dedup_window : bool, int
        Drop messages whose id this process has seen among the last ``dedup_window`` ids.
    with_ids : bool
        Add the column ``_message_id``.
    on_error : {"raise", "skip"}
        A message that does not decode stops the stream or is counted and skipped.
    **options
        Broker options: ``group``, ``consumer``, ``claim_idle_ms``, ``claim_every_s`` (Redis);
        ``durable``, ``subject``, ``ack_wait_s`` (NATS).

    >>> stream = datakiln.read_stream("redis://127.0.0.1:6379/0?stream=ev&group=trainer")  # doctest: +SKIP
    >>> for batch in stream.iter_batches():                                                # doctest: +SKIP
    ...     model.partial_fit(...)        # acknowledged when the next batch is requested
    """
    source = open_stream(url, batch_size=batch_size, max_wait_ms=max_wait_ms, format=format,
                         schema=schema, start=start, on_error=on_error, follow=follow, **options)
    return StreamDataset(source, batch_size=batch_size, max_wait_ms=max_wait_ms, dedup=dedup,
                         dedup_window=dedup_window, with_ids=with_ids)


@dataclass
class StreamStats:
    """What a stream has delivered in this process (counts of messages and batches)."""

    batches: int = 0
    messages: int = 0
    rows: int = 0
    redelivered: int = 0
    duplicates_dropped: int = 0
    skipped: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        rate = self.messages / self.seconds if self.seconds else 0.0
        return {**self.__dict__, "messages_per_second": round(rate, 1)}


class _Seen:
    """The last ``capacity`` message ids, for de-duplication (memory: one entry per id)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.ids: OrderedDict[str, None] = OrderedDict()

    def fresh(self, ids: list[str]) -> np.ndarray:
        mask = np.ones(len(ids), dtype=bool)
        seen = self.ids
        for position, message in enumerate(ids):
            if message in seen:
                mask[position] = False
            else:
                seen[message] = None
        while len(seen) > self.capacity:
            seen.popitem(last=False)
        return mask


class StreamDataset:
    """An unbounded dataset over a :class:`~datakiln.io.streams.StreamSource`.

    Made by :func:`read_stream`; derived streams (``select`` ...) share the same consumer,
    so iterate only one of them.
    """

    is_stream = True

    def __init__(self, source: StreamSource, ops: Sequence[_Op] = (), *, batch_size: int = 1000,
                 max_wait_ms: int = 100, dedup: bool = False, dedup_window: int = 1_000_000,
                 with_ids: bool = False, state: dict[str, Any] | None = None) -> None:
        self._source = source
        self._ops = tuple(ops)
        self._batch_size = batch_size
        self._max_wait_ms = max_wait_ms
        self._with_ids = with_ids
        if dedup and dedup_window < 1:
            raise InvalidArgumentError(f"dedup_window must be >= 1, got {dedup_window}")
        # the consumer's state is shared by every stream derived from this one
        self._state = state if state is not None else {
            "held": None, "stats": StreamStats(), "seen": _Seen(dedup_window) if dedup else None}

    # -- description ------------------------------------------------------------------------
    @property
    def source(self) -> StreamSource:
        """The broker, file or pipe this stream reads."""
        return self._source

    @property
    def stats(self) -> StreamStats:
        """Batches, messages, redeliveries, dropped duplicates and skipped messages so far."""
        return self._state["stats"]

    @property
    def arrow_schema(self) -> pa.Schema:
        """Column types of the rows (known from ``schema=`` or once the first batch arrived)."""
        schema = getattr(self._source, "decoder", None) and self._source.decoder.schema  # type: ignore[attr-defined]
        if schema is None:
            raise SchemaError(f"{self._source.name}: the columns are known once the first batch has "
                              "arrived (iterate first), or pass schema= to read_stream")
        if self._with_ids:
            schema = schema.append(pa.field(ID_COLUMN, pa.string()))
        probe = _apply(schema.empty_table(), [op for op in self._ops if op.kind != "limit"])
        return probe.schema

    @property
    def columns(self) -> list[str]:
        """Column names (see :attr:`arrow_schema`)."""
        return list(self.arrow_schema.names)

    def __repr__(self) -> str:
        ops = " → ".join(op.describe() for op in self._ops)
        return f"StreamDataset({self._source.name!r}{' → ' + ops if ops else ''})"

    # -- per-batch operations ---------------------------------------------------------------
    def _derive(self, op: _Op) -> StreamDataset:
        return StreamDataset(self._source, self._ops + (op,), batch_size=self._batch_size,
                             max_wait_ms=self._max_wait_ms, with_ids=self._with_ids, state=self._state)

    def select(self, columns: str | Sequence[str]) -> StreamDataset:
        """Keep ``columns`` in each batch."""
        return self._derive(_Op("select", (columns,) if isinstance(columns, str) else tuple(columns)))

    def filter(self, expression: pc.Expression) -> StreamDataset:
        """Keep rows where ``expression`` is true (a batch left empty is not yielded)."""
        if not isinstance(expression, pc.Expression):
            raise InvalidArgumentError(f"filter takes a pyarrow compute expression, got "
                                       f"{type(expression).__name__}")
        return self._derive(_Op("filter", expression))

    def map_batches(self, fn: Callable[[pa.Table], Any]) -> StreamDataset:
        """Apply ``fn`` to each batch (a Table in; a Table, RecordBatch, DataFrame or dict out)."""
        if not callable(fn):
            raise InvalidArgumentError(f"map_batches takes a function, got {type(fn).__name__}")
        return self._derive(_Op("map", fn))

    def clean(self, cleaner: Any) -> StreamDataset:
        """Apply a fitted :class:`~datakiln.clean.Cleaner` to each batch (fit it on a sample
        first: a stream has no end to fit on). A duplicates step works within a batch."""
        if not hasattr(cleaner, "steps_"):
            raise InvalidArgumentError("the Cleaner is not fitted; fit it on a sample of the data "
                                       "(e.g. a file the stream's producer also wrote) first")
        return self.map_batches(lambda table: cleaner.transform(table).to_arrow())

    # -- consumption ------------------------------------------------------------------------
    def iter_batches(self, batch_rows: int | None = None, *, max_batches: int | None = None,
                     idle_timeout_s: float | None = None) -> Iterator[pa.RecordBatch]:
        """Yield record batches as messages arrive; never ends unless told to.

        Parameters
        ----------
        batch_rows : int, optional
            Messages per batch at most (default: ``batch_size`` of :func:`read_stream`);
            operations may leave fewer rows. Never a 0-row batch.
        max_batches : int, optional
            Stop after this many batches.
        idle_timeout_s : float, optional
            Stop after this many seconds without a message (draining a backlog, tests).

        The batch handed out is acknowledged when the next one is requested (or by
        :meth:`commit`); one abandoned by ``break`` or a crash is delivered again.
        """
        size = self._batch_size if batch_rows is None else batch_rows
        if size < 1:
            raise InvalidArgumentError(f"batch_rows must be positive, got {size}")
        yielded = 0
        stats: StreamStats = self._state["stats"]
        idle_since = time.monotonic()
        while max_batches is None or yielded < max_batches:
            started = time.perf_counter()
            fetched = self._source.fetch(size, self._max_wait_ms, ack=self._state["held"])
            self._state["held"] = None
            if fetched is None:
                stats.seconds += time.perf_counter() - started
                if self._source.ended:
                    return
                if idle_timeout_s is not None and time.monotonic() - idle_since >= idle_timeout_s:
                    return
                continue
            idle_since = time.monotonic()
            self._state["held"] = fetched
            table = self._prepare(fetched, stats)
            stats.seconds += time.perf_counter() - started
            if table.num_rows == 0:
                continue
            yielded += 1
            yield from table.combine_chunks().to_batches(max_chunksize=table.num_rows)

    def _prepare(self, fetched: Fetched, stats: StreamStats) -> pa.Table:
        table = fetched.table
        stats.batches += 1
        stats.messages += len(fetched.ids) + fetched.skipped
        stats.redelivered += fetched.redelivered
        stats.skipped += fetched.skipped
        if self._with_ids:
            table = table.append_column(ID_COLUMN, pa.array(fetched.ids, pa.string()))
        seen: _Seen | None = self._state["seen"]
        if seen is not None:
            mask = seen.fresh(fetched.ids)
            if not mask.all():
                stats.duplicates_dropped += int((~mask).sum())
                table = table.filter(pa.array(mask))
        table = _apply(table, self._ops) if table.num_rows else table
        stats.rows += table.num_rows
        return table

    def commit(self) -> None:
        """Acknowledge the batch handed out last (when it was consumed and nothing follows)."""
        held = self._state["held"]
        if held is not None:
            self._source.ack(held)
            self._state["held"] = None

    def seek(self, offset: str | int) -> None:
        """Replay from ``offset`` ("earliest", "latest" or a broker offset) for the whole group."""
        self._source.seek(offset)

    def lag(self) -> int | None:
        """Messages the group has not been given yet, if the broker reports it."""
        return self._source.lag()

    def close(self) -> None:
        """Close the connection (the batch in hand is not acknowledged: call commit first)."""
        self._source.close()

    def __enter__(self) -> StreamDataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- statistics, learning ---------------------------------------------------------------
    def running_profile(self, *, window_rows: int | None = None, window_seconds: float | None = None,
                        top_k: int = 10) -> WindowProfile:
        """A profile over a sliding window that you feed batches (``update``) and read (``profile``)."""
        return WindowProfile(window_rows=window_rows, window_seconds=window_seconds, top_k=top_k)

    def profile(self, *, window_rows: int | None = 10_000, window_seconds: float | None = None,
                max_batches: int | None = None, idle_timeout_s: float | None = None,
                top_k: int = 10) -> Profile:
        """Consume batches (until ``max_batches`` or ``idle_timeout_s``) and profile the last
        ``window_rows`` rows / ``window_seconds`` seconds of them."""
        if max_batches is None and idle_timeout_s is None:
            raise UnboundedStreamError(
                "a stream has no end, so its profile covers a window of recent rows: say when to stop "
                "reading with max_batches= or idle_timeout_s=, or feed stream.running_profile(...) yourself")
        window = self.running_profile(window_rows=window_rows, window_seconds=window_seconds, top_k=top_k)
        for batch in self.iter_batches(max_batches=max_batches, idle_timeout_s=idle_timeout_s):
            window.update(batch)
        return window.profile()

    def loader(self, batch_size: int, *, columns: Sequence[str] | None = None, format: str = "numpy",
               shuffle: bool = False, max_batches: int | None = None,
               idle_timeout_s: float | None = None) -> StreamLoader:
        """Batches for online learning, in arrival order (``format``: numpy, arrow, pandas, torch)."""
        if shuffle:
            raise UnboundedStreamError(
                "a shuffled epoch needs the end of the data, and a stream has none: use "
                "shuffle=False (arrival order), or write a window of it to a file and load that")
        return StreamLoader(self, batch_size, columns=columns, format=format, max_batches=max_batches,
                            idle_timeout_s=idle_timeout_s)

    # -- what needs the end -----------------------------------------------------------------
    def refuse(self, what: str) -> None:
        """Raise the error for ``what``, an operation that needs the end of the data."""
        raise UnboundedStreamError(
            f"{what} needs the end of the data, and the stream {self._source.name!r} has none; "
            "consume it with iter_batches()/loader(), profile a window (profile(window_rows=...)), "
            "or write what you need to a file first and read that")

    def count(self) -> int:
        """Refused: a stream has no end (see :meth:`refuse`)."""
        self.refuse("count()")
        return 0

    def to_arrow(self) -> pa.Table:
        """Refused: a stream has no end."""
        self.refuse("to_arrow()")
        return pa.table({})

    def to_pandas(self) -> Any:
        """Refused: a stream has no end."""
        self.refuse("to_pandas()")

    def head(self, rows: int = 5) -> pa.Table:
        """Refused: reading rows without consuming them is not possible on a stream."""
        self.refuse("head() (it would take messages from the group without processing them)")
        return pa.table({})

    def split(self, *args: Any, **kwargs: Any) -> Any:
        """Refused: a split needs every row."""
        self.refuse("split")

    def write(self, *args: Any, **kwargs: Any) -> Any:
        """Refused: an atomic write needs the end."""
        self.refuse("write()")

    def cache(self, *args: Any, **kwargs: Any) -> Any:
        """Refused: a cache holds a finished dataset."""
        self.refuse("cache()")


class WindowProfile:
    """Running statistics over the last ``window_rows`` rows and/or ``window_seconds`` seconds.

    ``update(batch)`` adds rows and drops those that fell out; ``profile()`` returns a
    :class:`~datakiln.dataset.profile.Profile` of the window (the same statistics as
    ``Dataset.profile``, exact for a window up to 65,536 rows); ``seen`` counts every row.
    """

    def __init__(self, *, window_rows: int | None = 10_000, window_seconds: float | None = None,
                 top_k: int = 10) -> None:
        if window_rows is None and window_seconds is None:
            raise InvalidArgumentError("a window needs window_rows or window_seconds")
        if window_rows is not None and window_rows < 1:
            raise InvalidArgumentError(f"window_rows must be >= 1, got {window_rows}")
        if window_seconds is not None and window_seconds <= 0:
            raise InvalidArgumentError(f"window_seconds must be > 0, got {window_seconds}")
        self.window_rows = window_rows
        self.window_seconds = window_seconds
        self.top_k = top_k
        self.seen = 0
        self._parts: deque[tuple[float, pa.Table]] = deque()
        self._rows = 0

    @property
    def rows(self) -> int:
        """Rows in the window now."""
        return self._rows

    def update(self, batch: pa.RecordBatch | pa.Table, *, now: float | None = None) -> None:
        """Add ``batch`` (arrived at ``now``, default the monotonic clock) to the window."""
        table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
        now = time.monotonic() if now is None else now
        self.seen += table.num_rows
        self._parts.append((now, table))
        self._rows += table.num_rows
        self._evict(now)

    def _evict(self, now: float) -> None:
        parts = self._parts
        if self.window_seconds is not None:
            while parts and now - parts[0][0] > self.window_seconds:
                self._rows -= parts.popleft()[1].num_rows
        if self.window_rows is not None:
            while parts and self._rows - parts[0][1].num_rows >= self.window_rows:
                self._rows -= parts.popleft()[1].num_rows
            if parts and self._rows > self.window_rows:  # cut the oldest part to the window
                stamp, oldest = parts[0]
                extra = self._rows - self.window_rows
                parts[0] = (stamp, oldest.slice(extra))
                self._rows -= extra

    def table(self) -> pa.Table:
        """The rows in the window, oldest first."""
        if self.window_seconds is not None:
            self._evict(time.monotonic())
        if not self._parts:
            raise InvalidArgumentError("the window is empty: no rows arrived yet")
        return pa.concat_tables([t for _, t in self._parts])

    def profile(self) -> Profile:
        """A :class:`~datakiln.dataset.profile.Profile` of the rows in the window now."""
        from datakiln.dataset.dataset import Dataset

        return Dataset.from_arrow(self.table()).profile(top_k=self.top_k)


class StreamLoader:
    """Batches of a stream for online learning: ``for batch in loader: model.partial_fit(...)``.

    Arrival order, no shuffling; each batch is acknowledged when the next is requested.
    ``format="numpy"`` gives a dict of NumPy arrays (text as object arrays), ``"torch"``
    a dict of tensors (numeric columns only), ``"arrow"`` a RecordBatch, ``"pandas"`` a frame.
    """

    def __init__(self, stream: StreamDataset, batch_size: int, *, columns: Sequence[str] | None,
                 format: str, max_batches: int | None, idle_timeout_s: float | None) -> None:
        if format not in ("numpy", "arrow", "pandas", "torch"):
            raise InvalidArgumentError(f"format must be numpy, arrow, pandas or torch, got {format!r}")
        if batch_size < 1:
            raise InvalidArgumentError(f"batch_size must be positive, got {batch_size}")
        self.stream = stream if columns is None else stream.select(list(columns))
        self.batch_size = batch_size
        self.format = format
        self.max_batches = max_batches
        self.idle_timeout_s = idle_timeout_s

    def __iter__(self) -> Iterator[Any]:
        for batch in self.stream.iter_batches(self.batch_size, max_batches=self.max_batches,
                                              idle_timeout_s=self.idle_timeout_s):
            yield self._convert(batch)

    def commit(self) -> None:
        """Acknowledge the last batch (see :meth:`StreamDataset.commit`)."""
        self.stream.commit()

    def _convert(self, batch: pa.RecordBatch) -> Any:
        if self.format == "arrow":
            return batch
        if self.format == "pandas":
            return batch.to_pandas()
        arrays = {name: column.to_numpy(zero_copy_only=False) for name, column in
                  zip(batch.schema.names, batch.columns)}
        if self.format == "numpy":
            return arrays
        from datakiln.dataset.loader import _converter

        text = [n for n, a in arrays.items() if a.dtype == object]
        if text:
            raise SchemaError(f"format='torch' needs numeric columns; {text} hold text: encode them "
                              "first (map_batches / a fitted encoder) or select other columns")
        return _converter("torch")[0](arrays, pin_memory=False)
