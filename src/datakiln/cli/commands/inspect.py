"""``kiln inspect``: schema and streaming profile of any source."""

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
    """
    with friendly_errors():
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
