"""``kiln clean``: repair, de-duplicate, impute and treat outliers, with a report."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from datakiln.cli._common import (
    BudgetOption,
    ToOption,
    console,
    distinct_outputs,
    esc,
    friendly_errors,
    overwrite_option,
    progress_bar,
    with_read_options,
)


@with_read_options
def clean(
    data: str = typer.Argument(..., help="File, directory, glob or URL to clean."),
    out: str = typer.Option(..., "--out", "-o", help="Output file (Parquet unless --to says otherwise)."),
    config: str = typer.Option(None, "--config", help="YAML/JSON file listing the steps (see README)."),
    report: str = typer.Option(None, "--report", help="Write the cleaning report as JSON here."),
    to: str | None = ToOption,
    overwrite: bool = overwrite_option("an output or --report file"),
    memory_budget: str = BudgetOption,
    read_kwargs: dict[str, Any] | None = None,
) -> None:
    """Clean a table and report every change.

    Without --config a safe default runs: count missing values, repair types and white
    space, drop exact duplicates, count outliers without changing them.

    Examples:

      kiln clean raw.csv -o clean.parquet --report report.json

      kiln clean raw.parquet -o clean.parquet --config clean.yaml
    """
    import json

    import datakiln
    from datakiln.clean import Cleaner
    from datakiln.io.write import check_output, is_own_report, report_marker, source_inputs, write_text_atomic

    with friendly_errors():
        dataset = datakiln.read(data, **(read_kwargs or {}))
        inputs = source_inputs(dataset.source)
        distinct_outputs(out=out, report=report)
        if report:  # refused now, not after the work
            check_output(report, inputs=inputs, overwrite=overwrite, is_own=is_own_report)
        cleaner = Cleaner.from_config(config) if config else Cleaner()
        cleaner.memory_budget = memory_budget
        cleaner.fit(dataset)
        size = dataset.source.estimate_size()
        with progress_bar("cleaning", size.rows if size.exact else None) as advance:
            cleaner.transform(dataset, output=out, format=to, on_progress=advance,
                              overwrite=overwrite)
    result = cleaner.report_
    table = Table(title=esc(f"cleaned {data}: {result.rows_in:,} rows in, {result.rows_out:,} rows out"),
                  title_justify="left")
    for name in ("step", "column", "change", "rows"):
        table.add_column(name, justify="right" if name == "rows" else "left")
    missing = {c: n for c, n in result.missing_before.items() if n}
    for column, count in missing.items():
        table.add_row("(found)", esc(column), "missing values", f"{count:,}")
    for row in result.summary_rows():
        table.add_row(*(esc(cell) for cell in row))
    console.print(table)
    console.print(f"wrote {esc(out)}")
    if report:
        with friendly_errors():
            text = json.dumps({**report_marker("clean-report"), **result.to_dict()}, indent=2,
                              ensure_ascii=False, default=str)
            write_text_atomic(report, text, overwrite=overwrite, inputs=inputs)
        console.print(f"report: {esc(report)}")
