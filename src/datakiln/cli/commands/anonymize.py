"""``kiln anonymize``: pseudonymise, mask, generalise ... the PII of a table, with a report."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from datakiln.cli._common import (
    BudgetOption,
    ToOption,
    console,
    distinct_outputs,
    esc,
    overwrite_option,
    progress_bar,
    with_read_options,
)

#: the environment variable read for the key when neither --key-file nor --key-env is given
KEY_VARIABLE = "DATAKILN_KEY"


def report_path(out: str) -> str:
    """Where the report goes by default: beside the output, ``<name>.anonymize.json``."""
    path = Path(out)
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    return str(path.with_name(f"{stem}.anonymize.json"))


@with_read_options
def anonymize_command(
    data: str = typer.Argument(..., help="File, directory, glob or URL to anonymise."),
    out: str = typer.Option(..., "--out", "-o", help="Output file (Parquet unless --to says otherwise)."),
    config: str = typer.Option(None, "--config", help="privacy.yaml: operators per column (see README); "
                               "without it every PII, identifier and text column gets a safe default."),
    key_file: str = typer.Option(None, "--key-file", help="Secret key file for pseudonyms (mode 0600; "
                                 "make one with `kiln key new key.bin`)."),
    key_env: str = typer.Option(None, "--key-env", help=f"Environment variable holding the key as hex "
                                f"(default: {KEY_VARIABLE} when it is set and --key-file is not given)."),
    report: str = typer.Option(None, "--report", help="Report JSON path (default: beside the output, "
                               "<name>.anonymize.json)."),
    to: str | None = ToOption,
    overwrite: bool = overwrite_option("an output or report file"),
    memory_budget: str = BudgetOption,
    read_kwargs: dict[str, Any] | None = None,
) -> None:
    """Anonymise a table column by column and report every change.

    Pseudonyms need a secret key (never a default one): --key-file, --key-env, or the
    DATAKILN_KEY environment variable.

    Examples:

      kiln key new secret.key

      kiln anonymize customers.csv -o anonymous.parquet --key-file secret.key

      kiln anonymize customers.csv -o anonymous.parquet --config privacy.yaml --key-file secret.key
    """
    import json

    import datakiln
    from datakiln.io.write import check_output, is_own_report, report_marker, source_inputs, write_text_atomic
    from datakiln.privacy.anonymize import anonymize

    report = report or report_path(out)
    dataset = datakiln.read(data, **(read_kwargs or {})).with_memory_budget(memory_budget)
    inputs = source_inputs(dataset.source)
    distinct_outputs(out=out, report=report)
    check_output(report, inputs=inputs, overwrite=overwrite, is_own=is_own_report)
    if key_file is None and key_env is None and os.environ.get(KEY_VARIABLE):
        key_env = KEY_VARIABLE
    anonymous, result = anonymize(dataset, config, key_file=key_file, key_env=key_env)
    size = dataset.source.estimate_size()
    with progress_bar("anonymising", size.rows if size.exact else None) as advance:
        anonymous.write(out, format=to, on_progress=advance, overwrite=overwrite)
    text = json.dumps({**report_marker("anonymize-report"), **result.to_dict()}, indent=2,
                      ensure_ascii=False, default=str)
    write_text_atomic(report, text, overwrite=overwrite, inputs=inputs)
    _print(result, data)
    console.print(f"wrote {esc(out)}")
    console.print(f"report: {esc(report)}")


def _print(result: Any, data: str) -> None:
    key = f", key id {result.key_id}" if result.key_id else ""
    table = Table(title=esc(f"anonymised {data}: {result.rows:,} rows{key}"), title_justify="left")
    for name in ("column", "operator", "parameters", "rows changed"):
        table.add_column(name, justify="right" if name == "rows changed" else "left")
    for row in result.summary_rows():
        table.add_row(*(esc(cell) for cell in row))
    if result.unchanged:
        table.add_row(esc(", ".join(result.unchanged)), "(kept)", "", "0")
    console.print(table)
