"""``kiln risk``: re-identification risk of a table, optionally generalised until k-anonymous."""

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
    overwrite_option,
    progress_bar,
)
from datakiln.errors import InvalidArgumentError

_MEASURES = (("rows", "rows", "{:,}"), ("classes", "classes", "{:,}"), ("k", "k (smallest class)", "{:,}"),
             ("share_below_k", "rows in classes < k", "{:.2%}"), ("l", "distinct l", "{}"),
             ("l_entropy", "entropy l", "{}"), ("t", "t (EMD)", "{:.4f}"), ("alpha", "alpha", "{:.4f}"),
             ("beta", "beta (basic)", "{:.4f}"), ("delta", "delta", "{:.4f}"),
             ("max_risk", "max risk 1/k", "{:.4f}"), ("average_risk", "average risk", "{:.4f}"))


def _columns(text: str | None, what: str) -> list[str]:
    names = [c.strip() for c in (text or "").split(",") if c.strip()]
    if what == "--qi" and not names:
        raise InvalidArgumentError("--qi needs one or more comma-separated column names, e.g. --qi age,sex")
    return names


def _hierarchies(specs: list[str] | None) -> dict[str, Any]:
    """``--hierarchy column=SPEC``: SPEC is a CSV/YAML file, 'suppress' or interval widths."""
    out: dict[str, Any] = {}
    for spec in specs or []:
        column, sep, value = spec.partition("=")
        if not sep or not column.strip() or not value.strip():
            raise InvalidArgumentError(
                f"--hierarchy takes COLUMN=SPEC (a CSV/YAML file, 'suppress' or widths like 5,10,20), "
                f"got {spec!r}")
        value = value.strip()
        if value == "suppress" or value.lower().endswith((".csv", ".yaml", ".yml")):
            out[column.strip()] = value
            continue
        try:
            out[column.strip()] = [float(w) if "." in w else int(w) for w in value.split(",")]
        except ValueError:
            raise InvalidArgumentError(
                f"--hierarchy {spec!r}: {value!r} is neither a .csv/.yaml file, 'suppress', nor "
                "comma-separated interval widths") from None
    return out


def _fmt(value: Any, pattern: str) -> str:
    return "—" if value is None else pattern.format(value)


def risk_table(before: Any, after: Any = None) -> Table:
    """A rich table of one or two :class:`~datakiln.privacy.RiskReport` (before / after)."""
    table = Table(title=esc(f"re-identification risk: quasi-identifiers {', '.join(before.quasi_identifiers)}"
                            + (f"; sensitive {', '.join(before.sensitive)}" if before.sensitive else "")),
                  title_justify="left")
    table.add_column("measure")
    table.add_column("before", justify="right")
    if after is not None:
        table.add_column("after", justify="right")
    for name, label, pattern in _MEASURES:
        cells = [_fmt(None if name == "share_below_k" and r.k_requested is None else getattr(r, name),
                      pattern) for r in (before, after) if r is not None]
        table.add_row(label, *cells)
    return table


def changes_table(report: Any) -> Table:
    table = Table(title=esc(f"generalisation to k={report.k} ({report.metric}, ≤ "
                            f"{report.max_suppression:.1%} suppressed)"), title_justify="left")
    for name in ("column", "level", "change", "distinct before", "distinct after"):
        table.add_column(name, justify="left" if name in ("column", "change") else "right")
    for row in report.changes:
        table.add_row(esc(row["column"]), f"{row['level']}/{row['top']}", esc(row["change"]),
                      f"{row['distinct_before']:,}", f"{row['distinct_after']:,}")
    return table


def risk_command(
    data: str = typer.Argument(..., help="File, directory, glob or URL to assess."),
    qi: str = typer.Option(..., "--qi", help="Quasi-identifier columns, comma-separated (age,sex,zip)."),
    sensitive: str | None = typer.Option(None, "--sensitive", help="Sensitive columns, comma-separated."),
    k: int | None = typer.Option(None, "--k", min=1, help="The k to check (and to reach with --generalize, "
                                 "default 10 there)."),
    l_div: int | None = typer.Option(None, "--l", min=1, help="The distinct l to check."),
    t: float | None = typer.Option(None, "--t", min=0.0, max=1.0, help="The t (EMD) to check."),
    generalize: bool = typer.Option(False, "--generalize", help="Search the least generalisation reaching "
                                    "--k and write it to --out."),
    out: str | None = typer.Option(None, "--out", "-o", help="Where --generalize writes the rows."),
    max_suppression: float = typer.Option(0.01, "--max-suppression", min=0.0, max=1.0,
                                          help="Largest share of rows --generalize may remove."),
    metric: str = typer.Option("discernibility", "--metric", help="Information loss to minimise: "
                               "discernibility or loss."),
    hierarchy: list[str] | None = typer.Option(None, "--hierarchy", help="COLUMN=SPEC with SPEC a "
                                               "CSV/YAML hierarchy file, 'suppress', or interval widths "
                                               "5,10,20; repeat per column."),
    to: str | None = ToOption,
    report_path: str | None = typer.Option(None, "--json", help="Write the report(s) here as JSON."),
    overwrite: bool = overwrite_option("an output or --json file"),
    memory_budget: str = BudgetOption,
    read_kwargs: dict[str, Any] | None = None,
) -> None:
    """Measure k-anonymity, l-diversity and t-closeness; with --generalize, reach k.

    Examples: kiln risk adult.csv --qi age,sex,race --sensitive income --k 10

              kiln risk adult.csv --qi age,sex,race,education --sensitive income --k 10 --generalize
              -o adult_k10.parquet --hierarchy education=education.csv
    """
    import json

    import datakiln
    from datakiln.io.write import check_output, is_own_report, report_marker, source_inputs, write_text_atomic
    from datakiln.privacy import generalize_to_k, risk

    qis, sens = _columns(qi, "--qi"), _columns(sensitive, "--sensitive")
    if generalize and not out:
        raise InvalidArgumentError("--generalize writes the generalised rows: give --out PATH")
    if out and not generalize:
        raise InvalidArgumentError("--out is where --generalize writes; add --generalize or leave --out out")
    dataset = datakiln.read(data, **(read_kwargs or {}))
    inputs = source_inputs(dataset.source)
    distinct_outputs(out=out, json=report_path)
    if report_path:
        check_output(report_path, inputs=inputs, overwrite=overwrite, is_own=is_own_report)
    with progress_bar("counting classes", None) as advance:
        before = risk(dataset, qis, sens, k=k if k is not None or not generalize else 10, l=l_div, t=t,
                      memory_budget=memory_budget, on_progress=advance)
    after = result = None
    if generalize:
        with progress_bar("searching the generalisation lattice", None) as advance:
            result = generalize_to_k(dataset, qis, k=k or 10, hierarchies=_hierarchies(hierarchy),
                                     max_suppression=max_suppression, metric=metric,
                                     memory_budget=memory_budget, on_progress=advance)
        with progress_bar("writing", None) as advance:
            result.dataset.write(out, format=to, overwrite=overwrite, on_progress=advance)
        after = risk(result.dataset, qis, sens, k=k or 10, l=l_div, t=t, memory_budget=memory_budget)
    console.print(risk_table(before, after))
    if result is not None:
        rep = result.report
        console.print(changes_table(rep))
        console.print(f"suppressed {rep.rows_suppressed:,} rows ({rep.suppressed_share:.2%}); loss "
                      f"{rep.loss:.4f} vs naive recoding {rep.naive['loss']:.4f}; discernibility "
                      f"{rep.discernibility:,.0f} vs naive {rep.naive['discernibility']:,.0f}; "
                      f"{rep.nodes_evaluated}/{rep.lattice_nodes} lattice nodes evaluated")
        console.print(esc(f"wrote {rep.rows - rep.rows_suppressed:,} rows -> {out}"))
    if report_path:
        body = {"before": before.to_dict(), "after": after.to_dict() if after else None,
                "generalization": result.report.to_dict() if result else None}
        write_text_atomic(report_path, json.dumps({**report_marker("risk-report"), **body}, indent=2,
                                                  default=str), overwrite=overwrite, inputs=inputs)
    for name, holds in before.satisfied.items():
        if not holds and after is None:
            console.print(f"[bold]{name} not satisfied[/bold] (see the table)")
