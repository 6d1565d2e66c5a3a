"""Stream sources: unbounded rows from a message broker, a growing file or standard input.

The interface follows Kafka's model so that a Kafka adapter can sit behind it unchanged:

============  ==========================  ===========================  ======================
Kafka         Redis Streams               NATS JetStream               file / stdin / FIFO
============  ==========================  ===========================  ======================
topic         stream key                  stream (+ subject filter)    path, ``-``
partition     the stream key              the stream                   the file
offset        entry id ``ms-seq``         stream sequence              byte offset
group         consumer group              durable pull consumer        (one reader)
commit        ``XACK`` (after use)        ``+ACK`` (after use)         ``start=`` offset
replay        ``start=`` / ``seek``       ``start=`` / ``seek``        ``start=0``
============  ==========================  ===========================  ======================

A :class:`StreamSource` hands out :class:`Fetched` batches, each up to ``max_messages``
messages or what arrived within ``max_wait_ms``; a batch is acknowledged only when the
caller says it was consumed (``fetch(ack=previous)`` or :meth:`StreamSource.ack`), so a
crash between fetch and ack redelivers it: **at least once**. Nothing is buffered beyond
the batch in hand, so a slow consumer leaves the backlog in the broker (back-pressure), and
a producer can wait for the group to catch up (:func:`write_stream` with ``max_lag``).

No Kafka adapter ships: none can be tested without a broker here.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyarrow as pa

from datakiln.errors import InvalidArgumentError, UnsupportedFormatError
from datakiln.io.base import ReadStats

__all__ = ["Fetched", "StreamOptions", "StreamSource", "open_stream", "write_stream"]


@dataclass
class Fetched:
    """One batch from a stream: decoded rows and what it takes to acknowledge them.

    ``ids`` holds one message id per row (Redis entry id, NATS stream sequence, byte
    offset of a line), in delivery order; ``redelivered`` counts rows delivered before
    (reclaimed after a crash, redelivered after the ack deadline).
    """

    table: pa.Table
    ids: list[str]
    partition: str
    token: Any = None
    redelivered: int = 0
    skipped: int = 0  # messages that could not be decoded (on_error="skip"); acked with the batch

    @property
    def last_offset(self) -> str | None:
        """The offset of the last message (Kafka's committed position after this batch)."""
        return self.ids[-1] if self.ids else None


@dataclass
class StreamOptions:
    """What every stream source understands (units in the names; defaults in brackets).

    batch_size [1000] messages per batch at most; max_wait_ms [100] to fill a batch once
    it waits; format ["fields" for Redis, "json" elsewhere; "csv" or "raw"]; schema: Arrow
    schema or ``{column: type}`` that fixes column types (otherwise inferred from the first
    batch, then fixed); start ["earliest"]: where a new group begins (``"latest"`` or an
    offset); on_error ["raise"]: ``"skip"`` counts undecodable messages and acks them.
    """

    batch_size: int = 1000
    max_wait_ms: int = 100
    format: str | None = None
    schema: pa.Schema | None = None
    start: str | int = "earliest"
    on_error: str = "raise"
    extra: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise InvalidArgumentError(f"batch_size must be a whole number >= 1, got {self.batch_size!r}")
        if not isinstance(self.max_wait_ms, int) or self.max_wait_ms < 0:
            raise InvalidArgumentError(f"max_wait_ms must be a whole number >= 0, got {self.max_wait_ms!r}")
        if self.on_error not in ("raise", "skip"):
            raise InvalidArgumentError(f"on_error must be 'raise' or 'skip', got {self.on_error!r}")
        if self.format not in (None, "fields", "json", "csv", "raw"):
            raise UnsupportedFormatError(f"stream format {self.format!r} is not one of "
                                         "'fields', 'json', 'csv', 'raw'")


class StreamSource:
    """Base of every stream source: ``fetch`` batches, ``ack`` them after use, ``close``.

    Subclasses set ``name`` (the URL without secrets) and ``partition``.
    """

    name: str = ""
    partition: str = ""
    stats: ReadStats
    #: True once the source can give no more (standard input at end of file); brokers never end
    ended: bool = False

    def fetch(self, max_messages: int, max_wait_ms: int, *, ack: Fetched | None = None) -> Fetched | None:
        """Acknowledge ``ack`` (the batch just consumed), then return the next batch of up
        to ``max_messages`` messages, waiting at most ``max_wait_ms`` once the first one is
        there (and ``max_wait_ms`` for the first); ``None`` when nothing arrived."""
        raise NotImplementedError  # pragma: no cover

    def ack(self, fetched: Fetched) -> None:
        """Tell the broker the rows of ``fetched`` were consumed (Kafka: commit)."""

    def seek(self, offset: str | int) -> None:
        """Move the group to ``offset`` (replay from there; Kafka: seek + commit)."""
        raise InvalidArgumentError(f"{self.name}: this stream cannot seek")

    def lag(self) -> int | None:
        """Messages in the partition not yet delivered to the group, if the broker says."""
        return None

    def close(self) -> None:
        """Release the connection; unacknowledged batches are redelivered later."""

    def __enter__(self) -> StreamSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _query(url: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}


def _schema(schema: Any) -> pa.Schema | None:
    if schema is None or isinstance(schema, pa.Schema):
        return schema
    if isinstance(schema, dict):
        from datakiln.io._stream_decode import arrow_type

        return pa.schema([(str(k), arrow_type(v)) for k, v in schema.items()])
    raise InvalidArgumentError(f"schema must be a pyarrow Schema or a dict of column -> type, "
                               f"got {type(schema).__name__}")


def open_stream(url: str | os.PathLike[str], *, batch_size: int = 1000, max_wait_ms: int = 100,
                format: str | None = None, schema: Any = None, start: str | int = "earliest",
                on_error: str = "raise", follow: bool = False, **options: Any) -> StreamSource:
    """The stream source for ``url``; options override the URL's query parameters.

    ``redis://host:6379/0?stream=events&group=trainer&consumer=worker-1`` (consumer
    ``claim_idle_ms`` [60000]: pending entries of other consumers idle this long are
    claimed with ``XAUTOCLAIM``); ``nats://host:4222?stream=EVENTS&durable=trainer``
    (``subject`` filter, ``ack_wait_s`` [30]); ``-`` for standard input; a FIFO path; a
    JSON Lines / CSV file with ``follow=True``.
    """
    opts = StreamOptions(batch_size=batch_size, max_wait_ms=max_wait_ms, format=format,
                         schema=_schema(schema), start=start, on_error=on_error)
    opts.check()
    text = os.fspath(url)
    scheme = urlsplit(text).scheme.lower() if "://" in text else ""
    if scheme in ("redis", "rediss"):
        from datakiln.io._stream_redis import RedisStreamSource

        return RedisStreamSource(text, opts, {**_query(text), **options})
    if scheme in ("nats", "tls"):
        from datakiln.io._stream_nats import NatsStreamSource

        return NatsStreamSource(text, opts, {**_query(text), **options})
    if scheme == "kafka":
        raise UnsupportedFormatError(
            f"{text!r}: no Kafka adapter ships (none is tested without a broker); the interface "
            "is Kafka-shaped, so one fits behind datakiln.io.streams.StreamSource")
    if scheme:
        raise UnsupportedFormatError(f"{text!r}: streams are redis://, nats://, '-' (standard "
                                     "input), a FIFO or a file with follow=True")
    from datakiln.io._stream_files import FileStreamSource, PipeStreamSource

    if text == "-":
        return PipeStreamSource(None, opts, **options)
    if os.path.exists(text) and stat.S_ISFIFO(os.stat(text).st_mode):
        return PipeStreamSource(text, opts, **options)
    if not follow:
        raise InvalidArgumentError(
            f"{text!r} is a plain file: read it with datakiln.read(), or follow it as it grows "
            "with read_stream(path, follow=True)")
    return FileStreamSource(text, opts, **options)


def write_stream(url: str, rows: pa.Table | Sequence[dict[str, Any]], *, format: str | None = None,
                 max_lag: int | None = None, chunk_rows: int = 1000, **options: Any) -> int:
    """Produce ``rows`` into the stream at ``url`` (Redis or NATS); returns messages written.

    ``max_lag`` (messages) applies back-pressure: before each chunk, wait while the
    group named in the URL has more than ``max_lag`` messages not yet delivered.
    Redis entries get one field per column (``format="fields"``, the default) or one
    ``json`` field; NATS messages carry one JSON object each.
    """
    table = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(list(rows))
    text = os.fspath(url)
    scheme = urlsplit(text).scheme.lower()
    if scheme in ("redis", "rediss"):
        from datakiln.io._stream_redis import write_redis

        return write_redis(text, table, format=format or "fields", max_lag=max_lag,
                           chunk_rows=chunk_rows, options={**_query(text), **options})
    if scheme == "nats":
        from datakiln.io._stream_nats import write_nats

        return write_nats(text, table, max_lag=max_lag, chunk_rows=chunk_rows,
                          options={**_query(text), **options})
    raise UnsupportedFormatError(f"write_stream writes to redis:// or nats:// URLs, got {text!r}")
