"""``kiln split``: reproducible train / validation / test files."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from datakiln.cli._common import (
    console,
    esc,
    friendly_errors,
    overwrite_option,
    seed_option,
    with_read_options,
)
from datakiln.errors import InvalidArgumentError


@with_read_options
def split_command(
    data: str = typer.Argument(..., help="File, directory, glob or URL to split."),
    out: str = typer.Option(..., "--out", "-o",
                            help="Directory for <name>.parquet files and split.json."),
    fractions: str = typer.Option("0.8,0.1,0.1", "--fractions",
                                  help="Comma-separated shares summing to 1 (2 → train,test; "
                                       "3 → train,validation,test)."),
    stratify: str = typer.Option(None, "--stratify",
                                 help="Keep this column's class proportions in every split."),
    group: str = typer.Option(None, "--group",
                              help="Never put one value of this column in two splits."),
    time: str = typer.Option(None, "--time",
                             help="Earliest rows first by this column; no time straddles splits."),
    seed: int = seed_option("Same seed, same split."),
    rare: str = typer.Option("error", "--rare", help="Classes too small for every split: error, or train."),
    overwrite: bool = overwrite_option("a file at --out", "its own earlier split"),
    read_kwargs: dict[str, Any] | None = None,
) -> None:
    """Split rows into train / validation / test files, reproducibly.

    Examples:

      kiln split adult.parquet -o splits/ --stratify income

      kiln split events.parquet -o splits/ --fractions 0.9,0.1 --time timestamp

      kiln split visits.csv -o splits/ --group patient_id --seed 3
    """
    import datakiln

    with friendly_errors():
        try:
            shares = [float(x) for x in fractions.split(",")]
        except ValueError as exc:
            raise InvalidArgumentError(
                f"--fractions must be numbers like 0.8,0.1,0.1, got {fractions!r}") from exc
        dataset = datakiln.read(data, **(read_kwargs or {}))
        result = datakiln.split(dataset, shares, stratify=stratify, group=group, time=time,
                                seed=seed, rare=rare, output=out, overwrite=overwrite)
    table = Table(title=esc(f"{result.method} split of {data} (seed {seed})"), title_justify="left")
    table.add_column("split")
    table.add_column("rows", justify="right")
    table.add_column("share", justify="right")
    table.add_column("file")
    total = sum(result.counts.values()) or 1
    for name, count in result.counts.items():
        table.add_row(esc(name), f"{count:,}", f"{count / total:.2%}", esc(result.paths[name]))
    console.print(table)
    if result.class_counts:
        for name, classes in result.class_counts.items():
            shares_text = ", ".join(f"{k}: {v / max(result.counts[name], 1):.2%}"
                                    for k, v in sorted(classes.items()))
            console.print(esc(f"  {name}: {shares_text}"))
