"""Redis Streams behind :class:`~datakiln.io.streams.StreamSource`: consumer groups, at least once.

A consumer reads with ``XREADGROUP``; entries it was given stay in the group's pending list
until ``XACK``, which is sent only for a batch the caller has consumed — pipelined with the
next read, so acknowledging costs no extra round trip. After a crash:

* the same consumer name (``consumer=``, default: the host name) first re-reads its own
  pending entries (``XREADGROUP ... 0``), then new ones (``>``);
* any consumer claims entries another one left pending longer than ``claim_idle_ms``
  (default 60,000) with ``XAUTOCLAIM``, checked at start and every ``claim_every_s`` (5 s).

Entries never leave Redis because of datakiln: nothing trims the stream.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa
import pyarrow.compute as pc

from datakiln._optional import import_optional
from datakiln.errors import ConnectionFailedError, InvalidArgumentError, SourceError
from datakiln.io._secrets import redact_text
from datakiln.io._stream_decode import Decoder
from datakiln.io.base import ReadStats
from datakiln.io.streams import Fetched, StreamOptions, StreamSource

log = logging.getLogger(__name__)

__all__ = ["RedisStreamSource", "connect", "write_redis"]


def connect(url: str) -> Any:
    """A redis-py client for ``url`` (query parameters are datakiln's, not redis-py's)."""
    redis = import_optional("redis", extra="streams", purpose="Redis streams")
    parts = urlsplit(url)
    client = redis.Redis.from_url(urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")))
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        raise ConnectionFailedError(
            f"cannot reach Redis at {redact_text(url)}: {redact_text(str(exc))}; start the server "
            "(redis-server) or fix host, port and password in the URL") from exc
    return client


def _required(params: dict[str, Any], key: str, example: str) -> str:
    value = params.get(key)
    if not value:
        raise InvalidArgumentError(f"a Redis stream URL needs ?{key}=..., e.g. {example}")
    return str(value)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisStreamSource(StreamSource):
    """Read stream ``stream`` as consumer ``consumer`` of group ``group`` (created when missing,
    starting at ``start``: ``"earliest"``, ``"latest"`` or an entry id)."""

    def __init__(self, url: str, opts: StreamOptions, params: dict[str, Any]) -> None:
        example = "redis://127.0.0.1:6379/0?stream=events&group=trainer"
        self.redis = import_optional("redis", extra="streams", purpose="Redis streams")
        self.stream = _required(params, "stream", example)
        self.group = str(params.get("group") or "datakiln")
        self.consumer = str(params.get("consumer") or socket.gethostname())
        self.claim_idle_ms = int(params.get("claim_idle_ms", 60_000))
        self.claim_every_s = float(params.get("claim_every_s", 5.0))
        self.field = str(params.get("field", "json")).encode()
        self.name = redact_text(urlunsplit(urlsplit(url)._replace(query="")) +
                                f"?stream={self.stream}&group={self.group}")
        self.partition = self.stream
        self.stats = ReadStats()
        self.decoder = Decoder(opts.format or "fields", opts.schema, self.name, opts.on_error, self.stats)
        self.client = connect(url)
        self._history: bytes | None = b"0"  # own pending entries first (a restart), then new ones
        self._claim_cursor = b"0-0"
        self._next_claim = 0.0
        self._create_group(opts.start)

    def _create_group(self, start: str | int) -> None:
        first = {"earliest": "0", "latest": "$"}.get(str(start), str(start))
        try:
            self.client.xgroup_create(self.stream, self.group, id=first, mkstream=True)
        except self.redis.exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise SourceError(f"{self.name}: cannot create group {self.group!r} at {first!r}: {exc}; "
                                  "start must be 'earliest', 'latest' or an entry id like 1700000000000-0"
                                  ) from exc

    # -- reading ----------------------------------------------------------------------------
    def fetch(self, max_messages: int, max_wait_ms: int, *, ack: Fetched | None = None) -> Fetched | None:
        entries: list[tuple[bytes, Any]] = []
        redelivered = 0
        pending_ack = list(ack.token) if ack is not None and ack.token else []
        deadline = time.monotonic() + max_wait_ms / 1000
        try:
            while len(entries) < max_messages:
                want = max_messages - len(entries)
                pipe = self.client.pipeline(transaction=False)
                if pending_ack:
                    pipe.xack(self.stream, self.group, *pending_ack)
                kind = self._queue_read(pipe, want, entries, deadline)
                result = pipe.execute()[-1]
                pending_ack = []
                got = self._take(kind, result)
                if kind != "new":
                    redelivered += len(got)
                entries.extend(got)
                if kind == "new" and (not got or time.monotonic() >= deadline):
                    break
        except self.redis.exceptions.ConnectionError as exc:
            raise ConnectionFailedError(f"lost the connection to {self.name}: {exc}; unacknowledged "
                                        "entries are delivered again after a restart") from exc
        if pending_ack:  # nothing was read but the previous batch still needs its ack
            self.ack(ack)  # type: ignore[arg-type]
        if not entries:
            return None
        return self._batch(entries, redelivered)

    def _queue_read(self, pipe: Any, want: int, entries: list[Any], deadline: float) -> str:
        """Queue the next read on ``pipe``: own pending history, a claim, or new entries."""
        if self._history is not None:
            pipe.xreadgroup(self.group, self.consumer, {self.stream: self._history}, count=want)
            return "history"
        if time.monotonic() >= self._next_claim:
            pipe.xautoclaim(self.stream, self.group, self.consumer, self.claim_idle_ms,
                            start_id=self._claim_cursor, count=want)
            return "claim"
        left_ms = int((deadline - time.monotonic()) * 1000)
        block = left_ms if left_ms > 0 else None  # BLOCK 0 would wait forever
        pipe.xreadgroup(self.group, self.consumer, {self.stream: ">"}, count=want, block=block)
        return "new"

    def _take(self, kind: str, result: Any) -> list[tuple[bytes, Any]]:
        if kind == "claim":
            cursor, got = result[0], result[1]
            deleted = result[2] if len(result) > 2 else []
            if deleted:
                self._lost(deleted)
            self._claim_cursor = cursor
            if cursor in (b"0-0", "0-0"):
                self._next_claim = time.monotonic() + self.claim_every_s
            return [(i, f) for i, f in got if i is not None]
        got = result[0][1] if result else []
        if kind == "history":
            if not got:
                self._history = None  # caught up with our own pending entries
                return []
            self._history = got[-1][0]
            gone = [i for i, f in got if not f]
            if gone:  # trimmed by someone else while pending: nothing left to deliver
                self._lost(gone)
                self.client.xack(self.stream, self.group, *gone)
            return [(i, f) for i, f in got if f]
        return got

    def _lost(self, ids: list[Any]) -> None:
        log.warning("%s: %d pending entries were deleted from the stream before they were "
                    "consumed (trimmed by XTRIM/MAXLEN elsewhere): %s", self.name, len(ids),
                    ", ".join(_text(i) for i in ids[:5]))

    def _batch(self, entries: list[tuple[bytes, Any]], redelivered: int) -> Fetched:
        raw_ids = [i for i, _ in entries]
        ids = [i.decode() for i in raw_ids]
        if self.decoder.format == "fields":
            payloads = [f for _, f in entries]
        else:
            payloads = [f.get(self.field) or next(iter(f.values()), b"") for _, f in entries]
        table, kept, skipped = self.decoder.decode(payloads, ids)
        return Fetched(table, kept, self.stream, token=raw_ids, redelivered=redelivered, skipped=skipped)

    # -- acknowledging, position ------------------------------------------------------------
    def ack(self, fetched: Fetched) -> None:
        if fetched.token:
            self.client.xack(self.stream, self.group, *fetched.token)

    def seek(self, offset: str | int) -> None:
        first = {"earliest": "0", "latest": "$"}.get(str(offset), str(offset))
        self.client.xgroup_setid(self.stream, self.group, first)

    def lag(self) -> int | None:
        return group_lag(self.client, self.stream, self.group)

    def pending(self) -> int:
        """Entries delivered to the group and not yet acknowledged (all its consumers)."""
        return int(self.client.xpending(self.stream, self.group)["pending"])

    def close(self) -> None:
        self.client.close()


def group_lag(client: Any, stream: str, group: str) -> int | None:
    """Entries of ``stream`` not yet delivered to ``group`` (Redis >= 7), or None."""
    try:
        groups = client.xinfo_groups(stream)
    except Exception:  # no such stream yet
        return None
    for info in groups:
        if _text(info.get("name")) == group:
            lag = info.get("lag")
            return None if lag is None else int(lag)
    return None


def _columns_as_text(table: pa.Table) -> list[list[str | None]]:
    out = []
    for column in table.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            out.append(column.to_pylist())
        elif pa.types.is_boolean(column.type):
            out.append([None if v is None else ("true" if v else "false") for v in column.to_pylist()])
        elif pa.types.is_floating(column.type):  # repr keeps 1.0 a float for the reader's inference
            out.append([None if v is None else repr(v) for v in column.to_pylist()])
        else:
            out.append(pc.cast(column, pa.string()).to_pylist())
    return out


def write_redis(url: str, table: pa.Table, *, format: str, max_lag: int | None, chunk_rows: int,
                options: dict[str, Any]) -> int:
    """XADD each row of ``table`` (one field per column, or one ``json`` field); see write_stream."""
    stream = _required(options, "stream", "redis://127.0.0.1:6379/0?stream=events")
    group = options.get("group")
    client = connect(url)
    names = [n.encode() for n in table.column_names]
    written = 0
    try:
        for start in range(0, table.num_rows, chunk_rows):
            chunk = table.slice(start, chunk_rows)
            if max_lag is not None and group:
                while (lag := group_lag(client, stream, str(group))) is not None and lag > max_lag:
                    time.sleep(0.02)  # back-pressure: the group is behind
            pipe = client.pipeline(transaction=False)
            if format == "json":
                for row in chunk.to_pylist():
                    pipe.xadd(stream, {b"json": json.dumps(row, default=str)})
            else:
                for values in zip(*_columns_as_text(chunk)):
                    pipe.xadd(stream, {n: v for n, v in zip(names, values) if v is not None} or {b"_": b""})
            pipe.execute()
            written += chunk.num_rows
    finally:
        client.close()
    return written
