"""``kiln run``: run a pipeline file's stages, skipping those whose cached output is current."""

from __future__ import annotations

import typer
from rich.table import Table

from datakiln.cli._common import console, esc, friendly_errors


def run_command(
    pipeline: str = typer.Argument(..., help="The pipeline file (YAML; see examples/adult_pipeline.yaml)."),
    force: list[str] = typer.Option(None, "--force", help="Recompute this stage (and everything after "
                                    "it that uses it) even if cached; repeat for more."),
    until: str = typer.Option(None, "--until", help="Stop after this stage."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan (what is cached, what would "
                                 "be recomputed) and run nothing."),
) -> None:
    """Run a declarative pipeline: read, clean, split, balance, augment, synth.fit,
    synth.sample, evaluate, write, anonymize — each stage cached by (inputs, settings,
    datakiln version) and skipped when unchanged.

    Examples:

      kiln run examples/adult_pipeline.yaml

      kiln run examples/adult_pipeline.yaml --dry-run

      kiln run examples/adult_pipeline.yaml --force clean --until split
    """
    from datakiln.pipeline import Pipeline

    with friendly_errors():
        loaded = Pipeline.from_yaml(pipeline)
        with console.status("running") as status:
            report = loaded.run(force=force or (), until=until, dry_run=dry_run,
                                on_stage=lambda s: status.update(f"{s.name}: {s.status}"))
    if dry_run:
        table = Table(title=esc(f"plan of {pipeline}"), title_justify="left")
        for name in ("stage", "kind", "would"):
            table.add_column(name)
        for stage in report.stages:
            table.add_row(esc(stage.name), esc(stage.kind),
                          "recompute" if stage.status == "compute" else "use cache")
        console.print(table)
        recompute = sum(s.status == "compute" for s in report.stages)
        console.print(f"{recompute} of {len(report.stages)} stages would be recomputed")
        return
    table = Table(title=esc(f"run of {pipeline}: {report.computed} of {len(report.stages)} stages "
                            f"computed in {report.seconds:.2f} s"), title_justify="left")
    for name in ("stage", "status", "seconds", "rows"):
        table.add_column(name, justify="right" if name in ("seconds", "rows") else "left")
    for stage in report.stages:
        table.add_row(esc(stage.name), stage.status, f"{stage.seconds:.2f}",
                      "" if stage.rows is None else f"{stage.rows:,}")
    console.print(table)
    console.print(f"run page: {esc(report.page or '')}")
