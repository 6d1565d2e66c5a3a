"""NATS JetStream behind :class:`~datakiln.io.streams.StreamSource`: durable pull consumers.

The consumer ``durable`` (default ``"datakiln"``) of stream ``stream`` keeps the group's
position on the server. Messages are acknowledged one by one (explicit ack policy) only
for a batch the caller consumed; a message not acknowledged within ``ack_wait_s``
(default 30) — its consumer crashed — is delivered again, to whoever fetches next: at
least once. nats-py is asynchronous; its event loop runs on one daemon thread per source.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Coroutine
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa

from datakiln._optional import import_optional
from datakiln.errors import ConnectionFailedError, InvalidArgumentError, SourceError
from datakiln.io._secrets import redact_text
from datakiln.io._stream_decode import Decoder
from datakiln.io.base import ReadStats
from datakiln.io.streams import Fetched, StreamOptions, StreamSource

__all__ = ["NatsStreamSource", "write_nats"]


class _Loop:
    """An asyncio event loop on a daemon thread; ``run`` waits for a coroutine's result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="datakiln-nats", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        async def cancel_the_rest() -> None:  # nats-py's reader/flusher tasks end before the loop
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            self.run(cancel_the_rest())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        if not self.thread.is_alive():
            self.loop.close()


async def _connect(url: str) -> Any:
    nats = import_optional("nats", extra="streams", purpose="NATS JetStream streams")
    parts = urlsplit(url)
    plain = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))

    async def quiet(_: Exception) -> None:  # nats-py logs every failed attempt otherwise
        return None

    try:
        return await nats.connect(plain, connect_timeout=3, max_reconnect_attempts=2,
                                  allow_reconnect=True, error_cb=quiet)
    except Exception as exc:  # nats-py raises several kinds (NoServersError, OSError ...)
        raise ConnectionFailedError(
            f"cannot reach NATS at {redact_text(url)}: {redact_text(str(exc) or type(exc).__name__)}; "
            "start nats-server with -js (JetStream) or fix the URL") from exc


def _stream_name(params: dict[str, Any]) -> str:
    stream = params.get("stream")
    if not stream:
        raise InvalidArgumentError("a NATS stream URL needs ?stream=..., e.g. "
                                   "nats://127.0.0.1:4222?stream=EVENTS&durable=trainer")
    return str(stream)


def _sequences(messages: list[Any]) -> tuple[list[str], int]:
    """(stream sequence of each message, how many were delivered before), read from the ack
    subject ``$JS.ACK[.<domain>.<account>].<stream>.<consumer>.<delivered>.<stream seq>...``
    (nats-py's ``msg.metadata`` builds objects: a third of the consumer's time)."""
    ids, again = [], 0
    for message in messages:
        tokens = message.reply.split(".")
        at = 4 if len(tokens) == 9 else 6  # the v1 subject has 9 tokens, v2 adds domain and account
        again += tokens[at] != "1"
        ids.append(tokens[at + 1])
    return ids, again


class NatsStreamSource(StreamSource):
    """Read JetStream stream ``stream`` through durable pull consumer ``durable``."""

    def __init__(self, url: str, opts: StreamOptions, params: dict[str, Any]) -> None:
        self.nats = import_optional("nats", extra="streams", purpose="NATS JetStream streams")
        self.stream = _stream_name(params)
        self.durable = str(params.get("durable") or params.get("group") or "datakiln")
        self.subject = params.get("subject")
        self.ack_wait_s = float(params.get("ack_wait_s", 30.0))
        self.max_ack_pending = int(params.get("max_ack_pending", max(20_000, 4 * opts.batch_size)))
        self.name = redact_text(urlunsplit(urlsplit(url)._replace(query="")) +
                                f"?stream={self.stream}&durable={self.durable}")
        self.partition = self.stream
        self.stats = ReadStats()
        self.decoder = Decoder(opts.format or "json", opts.schema, self.name, opts.on_error, self.stats)
        self._loop = _Loop()
        try:
            self.nc = self._loop.run(_connect(url))
            self.js = self.nc.jetstream()
            self._subscribe(opts.start)
        except BaseException:
            self._loop.stop()
            raise

    def _subscribe(self, start: str | int) -> None:
        api = self.nats.js.api
        try:
            info = self._loop.run(self.js.stream_info(self.stream))
        except self.nats.js.errors.NotFoundError as exc:
            raise SourceError(f"{self.name}: JetStream has no stream {self.stream!r}; create it "
                              "(datakiln.io.streams.write_stream creates it, or `nats stream add`)") from exc
        subject = self.subject or info.config.subjects[0]
        policy, first = {"earliest": (api.DeliverPolicy.ALL, None),
                         "latest": (api.DeliverPolicy.NEW, None)}.get(
            str(start), (api.DeliverPolicy.BY_START_SEQUENCE, int(start) if str(start).isdigit() else None))
        if policy is api.DeliverPolicy.BY_START_SEQUENCE and first is None:
            raise InvalidArgumentError(f"start must be 'earliest', 'latest' or a stream sequence "
                                       f"number, got {start!r}")
        config = api.ConsumerConfig(ack_policy=api.AckPolicy.EXPLICIT, ack_wait=self.ack_wait_s,
                                    deliver_policy=policy, opt_start_seq=first,
                                    max_ack_pending=self.max_ack_pending,
                                    filter_subject=self.subject)
        self.sub = self._loop.run(self.js.pull_subscribe(subject, durable=self.durable,
                                                         stream=self.stream, config=config))

    # -- reading ----------------------------------------------------------------------------
    async def _fetch(self, max_messages: int, max_wait_ms: int, ack: list[Any]) -> list[Any]:
        await self._ack(ack, flush=False)  # the pull request below follows the acks on this connection
        messages: list[Any] = []
        deadline = time.monotonic() + max(max_wait_ms, 1) / 1000
        while len(messages) < max_messages:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                messages.extend(await self.sub.fetch(max_messages - len(messages), timeout=max(left, 0.01)))
            except (TimeoutError, self.nats.errors.TimeoutError):
                break
        return messages

    async def _ack(self, messages: list[Any], flush: bool = True) -> None:
        for message in messages:
            await self.nc.publish(message.reply, b"+ACK")
        if messages and flush:
            await self.nc.flush()

    def fetch(self, max_messages: int, max_wait_ms: int, *, ack: Fetched | None = None) -> Fetched | None:
        try:
            messages = self._loop.run(self._fetch(max_messages, max_wait_ms,
                                                  list(ack.token) if ack is not None and ack.token else []))
        except self.nats.errors.ConnectionClosedError as exc:
            raise ConnectionFailedError(f"lost the connection to {self.name}: {exc}; unacknowledged "
                                        "messages are delivered again after ack_wait_s") from exc
        if not messages:
            return None
        ids, redelivered = _sequences(messages)
        table, kept, skipped = self.decoder.decode([m.data for m in messages], ids)
        return Fetched(table, kept, self.stream, token=messages, redelivered=redelivered, skipped=skipped)

    def ack(self, fetched: Fetched) -> None:
        self._loop.run(self._ack(list(fetched.token or [])))

    def lag(self) -> int | None:
        return int(self._loop.run(self.sub.consumer_info()).num_pending)

    def seek(self, offset: str | int) -> None:
        """Recreate the durable consumer at ``offset`` (every member of the group replays)."""
        self._loop.run(self.sub.unsubscribe())
        self._loop.run(self.js.delete_consumer(self.stream, self.durable))
        self._subscribe(offset)

    def close(self) -> None:
        try:
            self._loop.run(self.nc.close())
        finally:
            self._loop.stop()


async def _publish(url: str, table: pa.Table, stream: str, subject: str, max_lag: int | None,
                   durable: str | None, chunk_rows: int) -> int:
    nats = import_optional("nats", extra="streams", purpose="NATS JetStream streams")
    nc = await _connect(url)
    try:
        js = nc.jetstream(publish_async_max_pending=4000)
        try:
            await js.stream_info(stream)
        except nats.js.errors.NotFoundError:
            await js.add_stream(name=stream, subjects=[subject])
        written = 0
        for start in range(0, table.num_rows, chunk_rows):
            if max_lag is not None and durable:
                while (await js.consumer_info(stream, durable)).num_pending > max_lag:
                    await asyncio.sleep(0.02)  # back-pressure: the consumer is behind
            rows = table.slice(start, chunk_rows).to_pylist()
            for row in rows:
                await js.publish_async(subject, json.dumps(row, default=str).encode())
            written += len(rows)
        await js.publish_async_completed()
        return written
    finally:
        await nc.close()


def write_nats(url: str, table: pa.Table, *, max_lag: int | None, chunk_rows: int,
               options: dict[str, Any]) -> int:
    """Publish each row of ``table`` as a JSON message (stream created when missing); see write_stream."""
    stream = _stream_name(options)
    subject = str(options.get("subject") or stream)
    durable = options.get("durable") or options.get("group")
    return asyncio.run(_publish(url, table, stream, subject, max_lag, durable, chunk_rows))
