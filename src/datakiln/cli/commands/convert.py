"""``kiln convert``: rewrite any source as Parquet shards (or CSV / JSON Lines)."""

from __future__ import annotations

from typing import Any

import typer

from datakiln.cli._common import (
    ToOption,
    console,
    esc,
    friendly_errors,
    overwrite_option,
    progress_bar,
    with_read_options,
)
from datakiln.units import format_bytes


@with_read_options
def convert(
    data: str = typer.Argument(..., help="File, directory, glob or URL to read."),
    out: str = typer.Argument(..., help="Output directory (or file with --single-file)."),
    to: str | None = ToOption,
    rows_per_file: int | None = typer.Option(
        None, "--rows-per-file", help="Rows per output shard (default 1,000,000; 10,000 images "
        "per tar shard)."),
    partition_by: list[str] = typer.Option(None, "--partition-by",
                                           help="Column to partition by (hive key=value dirs); repeatable."),
    single_file: bool = typer.Option(False, "--single-file", help="Write one file, not shards."),
    overwrite: bool = overwrite_option(),
    read_kwargs: dict[str, Any] | None = None,
) -> None:
    """Convert once, train many: Parquet re-reads far faster than CSV.

    The output appears atomically: an interrupted run leaves the previous output or the
    new one. Only datakiln's own earlier output is replaced; a directory holding other
    files, or the input, is refused.

    Examples:

      kiln convert events.csv events/                 # 1M-row zstd Parquet shards

      kiln convert 'logs/*.jsonl' logs.parquet --single-file

      kiln convert sales.csv sales/ --partition-by year

      kiln convert images/ shards/ --to tar --rows-per-file 5000   # WebDataset tar shards

    A folder of images is packed as encoded bytes (never decoded pixels) with its labels:
    --to tar (or --format tar) writes WebDataset shards, --to parquet Parquet shards.
    """
    import datakiln

    with friendly_errors():
        read_kwargs, to = _image_output(data, dict(read_kwargs or {}), to)
        if to == "tar":
            _convert_to_tar(data, out, read_kwargs, rows_per_file or 10_000, overwrite)
            return
        rows_per_file = rows_per_file or 1_000_000
        dataset = datakiln.read(data, **(read_kwargs or {}))
        size = dataset.source.estimate_size()
        with progress_bar("converting", size.rows if size.exact else None) as advance:
            result = dataset.write(out, format=to, partition_by=partition_by or None,
                                   rows_per_file=None if single_file else rows_per_file,
                                   on_progress=advance, overwrite=overwrite)
    console.print(f"wrote {result.rows:,} rows to {esc(result.path)} ({len(result.files)} file"
                  f"{'s' if len(result.files) != 1 else ''}, {format_bytes(result.bytes)})")
    if dataset.stats["bad_rows"]:
        console.print(f"[yellow]skipped {dataset.stats['bad_rows']:,} malformed rows[/]")


def _image_output(data: str, read_kwargs: dict[str, Any],
                  to: str | None) -> tuple[dict[str, Any], str | None]:
    """``--format tar|parquet`` names the *output* format for an image input (as in
    ``kiln convert images/ shards/ --format tar``); ``--format tar`` always does."""
    from datakiln.errors import DatakilnError, InvalidArgumentError
    from datakiln.io._files import resolve_files
    from datakiln.io.images import image_family

    given = (read_kwargs.get("format") or "").lower()
    if given in ("tar", "webdataset"):
        is_images = True
    elif given in ("parquet", "images", "image"):
        try:
            is_images = image_family(resolve_files(data).paths, None) in ("images", "tar")
        except (DatakilnError, OSError):
            is_images = False
    else:
        is_images = False
    if is_images and given not in ("images", "image"):
        if to is not None and to.lower() != given:
            raise InvalidArgumentError(f"--format {given} and --to {to} disagree; for images, "
                                       "give the output format once (--to tar or --to parquet)")
        read_kwargs["format"] = None
        to = given if given != "webdataset" else "tar"
    return read_kwargs, (to.lower() if to else to)


def _convert_to_tar(data: str, out: str, read_kwargs: dict[str, Any], rows_per_file: int,
                    overwrite: bool) -> None:
    import datakiln
    from datakiln.io._output import source_inputs
    from datakiln.io.shards import write_tar_shards

    dataset = datakiln.read(data, **read_kwargs)
    size = dataset.source.estimate_size()
    with progress_bar("packing", size.rows if size.exact else None) as advance:
        result = write_tar_shards(dataset._tables(), out, rows_per_file=rows_per_file,
                                  overwrite=overwrite, inputs=source_inputs(dataset.source),
                                  on_progress=advance)
    console.print(f"wrote {result['rows']:,} images to {esc(result['path'])} "
                  f"({len(result['files'])} tar shard{'s' if len(result['files']) != 1 else ''}, "
                  f"{format_bytes(result['bytes'])})")
    if dataset.stats["bad_rows"]:
        console.print(f"[yellow]skipped {dataset.stats['bad_rows']:,} unreadable images[/], e.g. "
                      f"{esc(dataset.stats['examples'][0]['file'])}")
