"""``kiln inspect``: schema and streaming profile of any source; for a folder or shards of
images, images per class, sizes and modes seen, corrupt files and exact duplicates."""

from __future__ import annotations

import json
from typing import Any

import typer

from datakiln.cli._common import (
    BudgetOption,
    console,
    esc,
    friendly_errors,
    progress_bar,
    with_read_options,
)
from datakiln.cli._render import profile_table
from datakiln.units import format_bytes


def _image_input(data: str, options: dict[str, Any]) -> bool:
    """True for a folder, glob or shards of image files (summarised as images, not columns)."""
    from datakiln.errors import DatakilnError
    from datakiln.io._files import resolve_files
    from datakiln.io.images import image_family

    if any(options.get(k) is not None for k in ("table", "query", "names", "delimiter", "policy", "role")):
        return False
    try:
        return image_family(resolve_files(data).paths, options.get("format")) in ("images", "tar")
    except (DatakilnError, OSError):
        return False  # the normal path reports the problem


def inspect_images(data: str, options: dict[str, Any]) -> dict[str, Any]:
    """Summarise a folder or shards of images (``kiln inspect images/``)."""
    import datakiln
    from datakiln.dataset.image_summary import summarize_images

    options = {k: v for k, v in options.items() if k == "format" and v is not None}
    dataset = datakiln.read(data, on_error="skip", **options)
    size = dataset.source.estimate_size()
    with progress_bar("reading images", size.rows) as advance:
        return summarize_images(dataset, on_progress=advance).to_dict()


def _print_images(data: str, summary: dict[str, Any]) -> None:
    from rich.table import Table

    classes = summary["classes"]
    console.print(f"[bold]{esc(data)}[/]: {summary['images']:,} images"
                  + (f" in {len(classes)} classes" if classes else "")
                  + f", {format_bytes(summary['bytes'])} (read in {summary['seconds']:.2f} s)")
    if classes:
        table = Table("class", "images", title="images per class")
        for name, count in classes.items():
            table.add_row(esc(name), f"{count:,}")
        console.print(table)
    seen = Table("size (W×H)", "images", "mode", "images", "format", "images",
                 title=f"seen (top counts; {summary['distinct_sizes']:,} distinct sizes)")
    rows = [list(summary[k].items()) for k in ("sizes", "modes", "formats")]
    for i in range(max(len(r) for r in rows)):
        cells = []
        for r in rows:
            cells += [esc(r[i][0]), f"{r[i][1]:,}"] if i < len(r) else ["", ""]
        seen.add_row(*cells)
    console.print(seen)
    console.print(f"corrupt files: {summary['corrupt_count']:,}")
    for item in summary["corrupt"]:
        console.print(f"  [yellow]{esc(item['file'])}[/]: {esc(item['error'])}")
    console.print(f"exact duplicates: {summary['duplicate_files']:,} files repeat the bytes of "
                  f"another ({summary['duplicate_groups']:,} groups)")
    for group in summary["duplicates"]:
        console.print("  " + " = ".join(esc(p) for p in group))


def inspect_data(data: str, options: dict[str, Any], memory_budget: str, top_k: int) -> dict[str, Any]:
    """Read, profile and summarise ``data``; returns the JSON-ready summary."""
    import datakiln

    dataset = datakiln.read(data, **options)
    size = dataset.source.estimate_size()
    with progress_bar("profiling", size.rows if size.exact else None) as advance:
        profile = dataset.profile(memory_budget=memory_budget, top_k=top_k, on_progress=advance)
    source = dataset.source
    summary = profile.to_dict()
    summary["bytes"] = size.bytes
    summary["skipped_rows"] = dataset.stats
    dialect = getattr(source, "dialect", None)
    if dialect is not None:
        summary["csv"] = {"delimiter": dialect.delimiter, "header": dialect.header,
                          "trimmed": dialect.trim}
    return {"summary": summary, "profile": profile}


@with_read_options
def inspect(
    data: str = typer.Argument(..., help="File, directory, glob or URL to inspect."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    read_kwargs: dict[str, Any] | None = None,
    memory_budget: str = BudgetOption,
    top_k: int = typer.Option(10, "--top-k", help="Most frequent values listed per column."),
) -> None:
    """Show each column's kind, type, missing values, distinct count, range and shape.

    Examples:

      kiln inspect data.parquet

      kiln inspect adult.csv --names age,workclass,fnlwgt,... --json > adult.json

      kiln inspect images/      # images per class, sizes, modes, corrupt files, duplicates
    """
    with friendly_errors():
        if _image_input(data, read_kwargs or {}):
            images = inspect_images(data, read_kwargs or {})
            if as_json:
                typer.echo(json.dumps(images, indent=2, ensure_ascii=False))
            else:
                _print_images(data, images)
            return
        result = inspect_data(data, read_kwargs or {}, memory_budget, top_k)
    summary, profile = result["summary"], result["profile"]
    if as_json:
        typer.echo(json.dumps(summary, indent=2, ensure_ascii=False))
        return
    title = (f"{data}: {summary['rows']:,} rows × {len(summary['columns'])} columns "
             f"(profiled in {summary['seconds']:.2f} s, {summary['rows_per_second']:,.0f} rows/s)")
    console.print(profile_table(profile, title))
    if "csv" in summary:
        csv = summary["csv"]
        console.print(f"CSV: delimiter {esc(repr(csv['delimiter']))}, header row: "
                      f"{'yes' if csv['header'] else 'no'}, values trimmed: "
                      f"{'yes' if csv['trimmed'] else 'no'}")
    skipped = summary["skipped_rows"]
    if skipped["bad_rows"]:
        console.print(f"[yellow]skipped {skipped['bad_rows']:,} malformed rows[/], e.g. "
                      f"{esc(skipped['examples'][0])}")
