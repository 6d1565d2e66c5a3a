"""Line streams: a JSON Lines / CSV file that grows (``follow=True``), standard input, a FIFO.

A followed file is read from ``start`` (``"earliest"``: byte 0, ``"latest"``: its current
end, or a byte offset at a line start); a line is delivered once its newline is written
(a half-written last line waits). A file replaced (new inode) or truncated is read again
from its start, with a warning. The offset of each line is its message id, so
``start=batch.last_offset`` resumes a reader (plus the line's length: see ``offset``).

Standard input (``"-"``) ends at end of file; a FIFO is reopened for the next writer and
never ends. A reader thread fills a bounded queue, so a writer faster than the consumer
blocks on the full pipe (back-pressure) instead of filling memory.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
from typing import IO

from datakiln.errors import InvalidArgumentError, SourceNotFoundError
from datakiln.io._stream_decode import Decoder
from datakiln.io.base import ReadStats
from datakiln.io.streams import Fetched, StreamOptions, StreamSource

log = logging.getLogger(__name__)

__all__ = ["FileStreamSource", "PipeStreamSource"]

_FORMATS = {".csv": "csv", ".tsv": "csv", ".jsonl": "json", ".ndjson": "json", ".json": "json"}


def _format(path: str | None, opts: StreamOptions) -> str:
    if opts.format is not None:
        return opts.format
    if path is None:
        return "json"
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in _FORMATS:
        raise InvalidArgumentError(f"{path!r}: cannot tell the stream format from {suffix or 'no ending'}; "
                                   "pass format='json' or format='csv'")
    return _FORMATS[suffix]


class _LineSource(StreamSource):
    """Shared decoding: lines (bytes, without newline) and their ids become a Fetched batch."""

    def _start(self, name: str, path: str | None, opts: StreamOptions, poll_s: float) -> None:
        self.name = name
        self.partition = name
        self.stats = ReadStats()
        self.decoder = Decoder(_format(path, opts), opts.schema, name, opts.on_error, self.stats)
        self.poll_s = poll_s
        self._header_in_data = self.decoder.format == "csv" and opts.schema is None
        self._needs_header = self._header_in_data

    def _batch(self, lines: list[bytes], ids: list[str]) -> Fetched | None:
        if lines and self._needs_header:
            self.decoder.set_header(lines[0])
            self._needs_header = False
            lines, ids = lines[1:], ids[1:]
        if not lines:
            return None
        table, kept, skipped = self.decoder.decode(lines, ids)
        return Fetched(table, kept, self.partition, token=None, skipped=skipped)


class FileStreamSource(_LineSource):
    """Follow a growing JSON Lines or CSV file (see the module docstring)."""

    def __init__(self, path: str, opts: StreamOptions, poll_s: float = 0.05) -> None:
        if not os.path.exists(path):
            raise SourceNotFoundError(f"{path!r} does not exist; follow waits for lines, not for the file")
        self.path = path
        self._start(path, path, opts, float(poll_s))
        self._open()
        if opts.start == "latest":
            self._seek(os.fstat(self._file.fileno()).st_size, skip_header=True)
        elif opts.start not in ("earliest", 0, "0"):
            try:
                self._seek(int(opts.start), skip_header=True)
            except ValueError:
                raise InvalidArgumentError(f"start must be 'earliest', 'latest' or a byte offset, "
                                           f"got {opts.start!r}") from None

    def _open(self) -> None:
        self._file: IO[bytes] = open(self.path, "rb")  # noqa: SIM115 - held open while following
        self._inode = os.fstat(self._file.fileno()).st_ino
        self._buffer = b""
        self.offset = 0  # byte offset of the next line to deliver

    def _seek(self, offset: int, skip_header: bool) -> None:
        if skip_header and self._needs_header:  # the header still names the columns
            header = self._file.readline()
            if header.endswith(b"\n"):
                self.decoder.set_header(header.rstrip(b"\r\n"))
                self._needs_header = False
            offset = max(offset, len(header))
        self._file.seek(offset)
        self._buffer, self.offset = b"", offset

    def _rotated(self) -> bool:
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            return False  # being replaced: keep reading the old file until the new one is there
        return info.st_ino != self._inode or info.st_size < self.offset + len(self._buffer)

    def _lines(self, limit: int) -> tuple[list[bytes], list[str]]:
        lines: list[bytes] = []
        ids: list[str] = []
        while len(lines) < limit:
            end = self._buffer.find(b"\n")
            if end < 0:
                more = self._file.read(1 << 20)
                if not more:
                    break
                self._buffer += more
                continue
            line, self._buffer = self._buffer[:end], self._buffer[end + 1:]
            start, self.offset = self.offset, self.offset + end + 1
            line = line.rstrip(b"\r")
            if line.strip():
                lines.append(line)
                ids.append(str(start))
        return lines, ids

    def fetch(self, max_messages: int, max_wait_ms: int, *, ack: Fetched | None = None) -> Fetched | None:
        deadline = time.monotonic() + max_wait_ms / 1000
        lines: list[bytes] = []
        ids: list[str] = []
        while True:
            got, got_ids = self._lines(max_messages - len(lines))
            lines += got
            ids += got_ids
            if len(lines) >= max_messages or time.monotonic() >= deadline:
                break
            if not got and self._rotated():
                log.warning("%s was replaced or truncated; reading it again from the start", self.path)
                self._file.close()
                self._open()
                self._needs_header = self._header_in_data  # the new file starts with its header
                continue
            if not got:
                time.sleep(min(self.poll_s, max(deadline - time.monotonic(), 0)))
        return self._batch(lines, ids)

    def close(self) -> None:
        self._file.close()


class PipeStreamSource(_LineSource):
    """Lines from standard input (``path=None``; ends at end of file) or a FIFO (reopened)."""

    def __init__(self, path: str | None, opts: StreamOptions, binary: IO[bytes] | None = None,
                 queue_lines: int | None = None) -> None:
        self.path = path
        suffix = os.path.splitext(path or "")[1].lower()
        self._start(path or "<stdin>", path if suffix in _FORMATS else None, opts, 0.05)
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=queue_lines or 4 * opts.batch_size)
        self._stdin = binary if binary is not None else (sys.stdin.buffer if path is None else None)
        self._line = 0
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._pump, name="datakiln-pipe", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        while not self._closed.is_set():
            handle = self._stdin if self._stdin is not None else open(self.path, "rb")  # type: ignore[arg-type]  # noqa: SIM115
            try:
                for line in handle:
                    self._queue.put(line)  # blocks when full: the writer waits (back-pressure)
                    if self._closed.is_set():
                        return
            finally:
                if self._stdin is None:
                    handle.close()
            if self._stdin is not None:  # standard input ended
                self._queue.put(None)
                return

    def fetch(self, max_messages: int, max_wait_ms: int, *, ack: Fetched | None = None) -> Fetched | None:
        if self.ended:
            return None
        deadline = time.monotonic() + max_wait_ms / 1000
        lines: list[bytes] = []
        ids: list[str] = []
        while len(lines) < max_messages:
            try:
                item = self._queue.get(timeout=max(deadline - time.monotonic(), 0.001))
            except queue.Empty:
                break
            if item is None:
                self.ended = True
                break
            self._line += 1
            item = item.rstrip(b"\r\n")
            if item.strip():
                lines.append(item)
                ids.append(str(self._line))
        return self._batch(lines, ids)

    def close(self) -> None:
        self._closed.set()
