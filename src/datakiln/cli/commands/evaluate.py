"""``kiln evaluate``: fidelity, ML utility and privacy of synthetic data against the real data."""

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
from datakiln.errors import InvalidArgumentError


def summary_table(report: Any, title: str) -> Table:
    """The headline numbers of an :class:`~datakiln.EvaluationReport` as a rich table."""
    table = Table(title=esc(title), title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("reads as")
    fidelity, utility, privacy = report.fidelity, report.utility, report.privacy
    rows = [("fidelity score", fidelity["score"], "mean of shapes and pair trends; 1 is perfect"),
            ("column shapes", fidelity["column_shapes"], "KS / TV complement (SDMetrics)"),
            ("column-pair trends", fidelity["column_pair_trends"], "correlation / contingency (SDMetrics)"),
            ("detection AUC", fidelity.get("detection_auc"), "0.5: real and synthetic look alike"),
            ("detection score", fidelity.get("detection_score"),
             "2(1 - AUC), SDMetrics' convention; 1 is best")]
    if utility:
        metric = utility["headline_metric"]
        ratio, note = utility["synthetic_to_real_ratio"], utility.get("note")
        rows += [(f"{metric}, trained on real", (utility["real"] or {}).get(metric),
                  f"tested on {utility['holdout']}" + (f"; {note}" if note else "")),
                 (f"{metric}, trained on synthetic", (utility["synthetic"] or {}).get(metric),
                  f"ratio {ratio:.3f} of real" if ratio is not None else "no ratio: no real score")]
    for model in ("real", "synthetic") if utility else ():
        fairness = (utility.get(model) or {}).get("fairness")
        if fairness:
            rows += [(f"parity difference, trained on {model}",
                      fairness.get("demographic_parity_difference"),
                      "largest gap in selection rate between groups; 0 is parity"),
                     (f"equalized-odds difference, trained on {model}",
                      fairness.get("equalized_odds_difference"),
                      "largest gap in true/false positive rate between groups")]
    if privacy:
        rows += [("exact copies", privacy["exact_copy_rate"], "synthetic rows equal to a training row"),
                 ("closer than holdout median", privacy.get("dcr_share_closer_than_holdout"),
                  "0.5 or less is safe"),
                 ("membership AUC", privacy.get("membership_auc"), "0.5: no signal")]
    for name, value, note in rows:
        table.add_row(esc(name), "—" if value is None else f"{value:.3f}", esc(note))
    return table


_DATABASE_OPTIONS = ("table", "query")


def _options_for(path: str, options: dict[str, Any],
                 inputs: tuple[tuple[str, str | None], ...]) -> dict[str, Any]:
    """The read options that apply to ``path``: ``--table`` / ``--query`` go to database URLs
    only, file options (``--delimiter``, ``--format`` ...) to files only (``--schema`` to both),
    so a database ``--real`` can be judged against a Parquet ``--synthetic``."""
    from datakiln.io._sqlconn import is_database_url

    given = [k for k in _DATABASE_OPTIONS if options.get(k) is not None]
    if given and not any(p and is_database_url(p) for _, p in inputs):
        raise InvalidArgumentError(
            f"--{given[0]} reads a database, but no input is a database URL (e.g. "
            "'postgresql://user@host/db', 'sqlite:///file.db'); drop it to read files")
    if is_database_url(path):
        return {k: v for k, v in options.items()
                if k in (*_DATABASE_OPTIONS, "schema") and v is not None}
    return {k: v for k, v in options.items() if k not in _DATABASE_OPTIONS}


def evaluate_command(
    real: str = typer.Option(..., "--real", help="The real (training) data: file, directory, glob or URL."),
    synthetic: str = typer.Option(..., "--synthetic", help="The synthetic or augmented data to judge."),
    holdout: str | None = typer.Option(None, "--holdout", help="Real rows the generator never saw."),
    target: str | None = typer.Option(None, "--target", help="Column to predict for the ML utility section."),
    sensitive: str | None = typer.Option(
        None, "--sensitive", help="A protected column (e.g. sex): report the utility models' "
        "demographic-parity and equalized-odds differences across its values (needs a classification "
        "--target)."),
    html: str | None = typer.Option(None, "--html", help="Write the HTML report here."),
    json_path: str | None = typer.Option(None, "--json", help="Write every score as JSON here."),
    overwrite: bool = overwrite_option("a --json/--html file", "its own earlier report"),
    sample_rows: int = typer.Option(50_000, "--sample-rows", help="Rows sampled per table for detection, "
                                    "utility and privacy."),
    seed: int = seed_option("Seed of the samples and models."),
    memory_budget: str = BudgetOption,
    read_kwargs: dict[str, Any] | None = None,
) -> None:
    """Score synthetic data: fidelity, ML utility and privacy risk; optional HTML and JSON.

    Example: kiln evaluate --real train.parquet --synthetic synth.parquet --holdout test.parquet
    --target income --html report.html
    """
    import datakiln
    from datakiln.io.write import check_output, is_own_report, source_inputs

    with friendly_errors():
        inputs = (("real", real), ("synthetic", synthetic), ("holdout", holdout))
        tables = {name: datakiln.read(path, **_options_for(path, read_kwargs or {}, inputs)) if path
                  else None for name, path in inputs}
        read = [p for t in tables.values() if t is not None for p in source_inputs(t.source)]
        distinct_outputs(json=json_path, html=html)
        for path in (json_path, html):  # refused now, not after the work
            if path:
                check_output(path, inputs=read, overwrite=overwrite, is_own=is_own_report)
        total = sum(2 * t.count() for t in tables.values() if t is not None)
        with progress_bar("evaluating", total) as advance:
            report = datakiln.evaluate(tables["real"], tables["synthetic"], holdout=tables["holdout"],
                                       target=target, sample_rows=sample_rows, seed=seed,
                                       memory_budget=memory_budget, on_progress=advance,
                                       **({"sensitive": sensitive} if sensitive else {}))
        if json_path:
            report.to_json(json_path, overwrite=overwrite, inputs=read)
        if html:
            report.to_html(html, overwrite=overwrite, inputs=read)
    if hasattr(report, "measures"):  # image data: Fréchet distance, class fidelity, memorisation
        from datakiln.cli.commands._synth_images import print_image_report

        return print_image_report(report, f"{synthetic} against {real}", json_path=json_path, html=html)
    console.print(summary_table(report, f"{synthetic} against {real} ({report.info['seconds']:.1f} s)"))
    if report.fidelity.get("detection_note"):
        console.print(f"[yellow]detection:[/] {esc(report.fidelity['detection_note'])}")
    for flag in (report.privacy or {}).get("flags", []):
        console.print(f"[bold red]privacy flag:[/] {esc(flag)}")
    for label, path in (("JSON", json_path), ("HTML report", html)):
        if path:
            console.print(f"{label}: {esc(path)}")
