"""``kiln stream inspect URL``: live running statistics of a stream over a window of recent rows."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import typer

from datakiln.cli._common import console, esc
from datakiln.cli._render import profile_table

app = typer.Typer(help="Read streams: Redis Streams, NATS JetStream, standard input, FIFOs, growing files.",
                  no_args_is_help=True)


def _own_group(url: str) -> dict[str, str]:
    """A group of its own when the URL names none, so inspecting never takes a trainer's messages."""
    if "://" not in url:
        return {}
    query = parse_qs(urlsplit(url).query)
    scheme = urlsplit(url).scheme
    if scheme.startswith("redis") and "group" not in query:
        return {"group": "kiln-inspect"}
    if scheme == "nats" and "durable" not in query and "group" not in query:
        return {"durable": "kiln-inspect"}
    return {}


@app.command("inspect")
def inspect_stream(
    url: str = typer.Argument(..., help="redis://host:6379/0?stream=events, nats://host:4222?stream=EVENTS, "
                              "'-' (standard input), a FIFO, or a JSON Lines/CSV file (followed)."),
    window_rows: int = typer.Option(10_000, "--window-rows", help="Statistics over the last N rows."),
    window_seconds: float = typer.Option(None, "--window-seconds", help="... and/or the last S seconds."),
    every: float = typer.Option(2.0, "--every", help="Seconds between printed statistics."),
    max_batches: int = typer.Option(None, "--max-batches", help="Stop after N batches (default: never)."),
    idle_timeout: float = typer.Option(None, "--idle-timeout",
                                       help="Stop after S seconds without a message."),
    start: str = typer.Option("latest", "--start", help="Where a new group starts: latest, earliest or "
                              "an offset (an existing group keeps its position)."),
    batch_size: int = typer.Option(1000, "--batch-size", help="Messages per batch at most."),
    format: str = typer.Option(None, "--format", help="fields, json, csv or raw (default: by source)."),
    as_json: bool = typer.Option(False, "--json", help="Print each window's statistics as one JSON line."),
) -> None:
    """Print running statistics of a stream as it arrives (Ctrl-C to stop).

    Without a group in the URL it reads as its own group (kiln-inspect), so training
    consumers keep all their messages; it acknowledges what it read in that group.

    Examples:

      kiln stream inspect 'redis://127.0.0.1:6379/0?stream=events'

      kiln stream inspect 'nats://127.0.0.1:4222?stream=EVENTS' --start earliest --idle-timeout 5

      tail -f app.log.jsonl | kiln stream inspect - --every 10
    """
    import datakiln
    from datakiln.dataset.streaming import WindowProfile

    stream = datakiln.read_stream(url, batch_size=batch_size, start=start, format=format,
                                  follow=True, **_own_group(url))
    window = WindowProfile(window_rows=window_rows, window_seconds=window_seconds)
    shown_at = time.monotonic()
    try:
        for batch in stream.iter_batches(max_batches=max_batches, idle_timeout_s=idle_timeout):
            window.update(batch)
            if time.monotonic() - shown_at >= every:
                _show(url, stream, window, as_json)
                shown_at = time.monotonic()
        stream.commit()
    except KeyboardInterrupt:
        pass
    finally:
        stream.close()
    if window.seen:
        _show(url, stream, window, as_json)
    elif not as_json:
        console.print(f"[yellow]no message arrived from {esc(stream.source.name)}[/]")


def _show(url: str, stream: Any, window: Any, as_json: bool) -> None:
    profile = window.profile()
    stats = stream.stats.to_dict()
    lag = stream.lag()
    if as_json:
        print(json.dumps({"stream": stream.source.name, "seen": window.seen, "window_rows": window.rows,
                          "lag": lag, "stats": stats, "profile": profile.to_dict()}, default=str),
              flush=True)
        return
    console.print(f"[bold]{esc(stream.source.name)}[/]: {window.seen:,} rows seen, window of "
                  f"{window.rows:,}, {stats['messages_per_second']:,.0f} msgs/s"
                  + (f", lag {lag:,}" if lag is not None else "")
                  + (f", {stats['skipped']:,} skipped" if stats["skipped"] else ""))
    console.print(profile_table(profile, title=f"last {window.rows:,} rows"))
