"""``kiln balance``: rebalance a table's classes and report what changed."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from datakiln.cli._common import (
    BudgetOption,
    console,
    distinct_outputs,
    esc,
    friendly_errors,
    overwrite_option,
    progress_bar,
    seed_option,
)


def report_tables(report: Any) -> list[Table]:
    """Rich tables of a :class:`~datakiln.balancing.BalanceReport`: counts, and the comparison."""
    counts = Table(title=esc(f"{report.method} ({report.path}, {report.seconds:.1f} s)"),
                   title_justify="left")
    for name in ("class", "before", "after"):
        counts.add_column(name, justify="right" if name != "class" else "left")
    for klass in sorted(set(report.counts_before) | set(report.counts_after)):
        before, after = report.counts_before.get(klass, 0), report.counts_after.get(klass, 0)
        counts.add_row(esc(klass), f"{before:,}", f"{after:,}")
    tables = [counts]
    if report.comparison:
        compare = Table(title="methods compared on a stratified 20% holdout (HistGradientBoosting)",
                        title_justify="left")
        columns = ("method", "trained_rows", "minority_recall", "minority_f1", "balanced_accuracy", "pr_auc")
        for name in columns:
            compare.add_column(name.replace("_", " "), justify="left" if name == "method" else "right")
        left_out = []
        for row in report.comparison:
            if "minority_f1" not in row:
                left_out.append(f"{row['method']} ({row.get('error') or row.get('skipped')})")
                continue
            mark = " ◀ chosen" if row.get("chosen") else ""
            compare.add_row(esc(row["method"]) + mark, f"{row['trained_rows']:,}",
                            *(f"{row[k]:.3f}" for k in columns[2:]))
        if left_out:
            compare.caption = esc("not compared: " + "; ".join(left_out))
        tables.append(compare)
    return tables


def balance_command(
    data: str = typer.Argument(..., help="File, directory, glob or URL to balance."),
    out: str = typer.Option(..., "--out", "-o", help="Where to write the balanced rows (Parquet unless "
                            "the extension says otherwise)."),
    target: str = typer.Option(..., "--target", help="The class column."),
    method: str = typer.Option("smote", "--method", help="smote, smotenc, smoten, random_over, random_under, "
                               "borderline_smote, adasyn, tomek, near_miss, enn, smote_tomek, smote_enn, "
                               "synth or auto."),
    ratio: float | None = typer.Option(None, "--ratio", help="Minority/majority ratio after balancing "
                                       "(two classes; imbalanced-learn's float sampling_strategy)."),
    seed: int = seed_option("Random state of the sampler."),
    overwrite: bool = overwrite_option("an output or --json file"),
    k_neighbors: int | None = typer.Option(None, "--k-neighbors", min=1,
                                           help="Neighbours of the SMOTE family (default 5); every class "
                                           "that grows needs more rows than this."),
    report_path: str | None = typer.Option(None, "--json",
                                           help="Write the report (counts, comparison) here."),
    memory_budget: str = BudgetOption,
    read_kwargs: dict[str, Any] | None = None,
) -> None:
    """Balance classes with imbalanced-learn's samplers, a synthesizer, or the best of them.

    Examples: kiln balance train.parquet -o balanced.parquet --target income --method smote

              kiln balance bank.csv -o balanced.parquet --target y --method auto --json balance.json
    """
    import datakiln
    from datakiln.balancing import Balancer
    from datakiln.io.write import check_output, is_own_report, source_inputs

    with friendly_errors():
        dataset = datakiln.read(data, **(read_kwargs or {}))
        inputs = source_inputs(dataset.source)
        distinct_outputs(out=out, json=report_path)
        if report_path:  # refused now, not after the work
            check_output(report_path, inputs=inputs, overwrite=overwrite, is_own=is_own_report)
        balancer = Balancer(method, sampling_strategy="auto" if ratio is None else ratio, seed=seed,
                            memory_budget=memory_budget, k_neighbors=k_neighbors)
        with progress_bar(f"balancing ({method})", None):
            result = balancer.fit_resample(dataset, target, output=out, overwrite=overwrite)
        report = balancer.report_
        if report_path:
            report.to_json(report_path, overwrite=overwrite, inputs=inputs)
    for table in report_tables(report):
        console.print(table)
    copies = ("—" if report.exact_copy_share is None else
              f"{report.exact_copy_share:.1%} exact copies, {report.near_copy_share:.1%} near copies")
    console.print(f"new rows: {report.new_rows:,}; removed rows: {report.removed_rows:,}; privacy cost of "
                  f"the new rows: {copies}")
    written = f"; report: {report_path}" if report_path else ""
    console.print(esc(f"wrote {result.count():,} rows -> {out}{written}"))
