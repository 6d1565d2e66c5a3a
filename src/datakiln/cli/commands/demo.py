"""``kiln demo``: the main job on the shipped Adult sample.

load → inspect → convert → clean → split → balance → synthesize → evaluate, printing what each step did.
"""

from __future__ import annotations

import tempfile
import time
from importlib import resources
from pathlib import Path

import typer

from datakiln.cli._common import console, esc, friendly_errors
from datakiln.cli._render import profile_table
from datakiln.units import format_bytes

ADULT_COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status",
    "occupation", "relationship", "race", "sex", "capital-gain", "capital-loss",
    "hours-per-week", "native-country", "income",
]


def sample_path() -> Path:
    """Path of the shipped Adult sample (first 5,000 rows of UCI adult.data)."""
    return Path(str(resources.files("datakiln") / "data" / "adult_sample.csv"))


def demo(
    out: str = typer.Option(None, "--out", help="Folder for the outputs (default: a new temporary folder)."),
) -> None:
    """Run the main job on a small Adult census sample shipped with datakiln."""
    import datakiln

    folder = Path(out) if out else Path(tempfile.mkdtemp(prefix="kiln-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    with friendly_errors():
        started = time.perf_counter()
        console.rule("[bold]1. load")
        dataset = datakiln.read(sample_path(), names=ADULT_COLUMNS)
        dialect = dataset.source.dialect
        console.print(esc(f"read {sample_path().name}: delimiter {dialect.delimiter!r}, header row "
                      f"detected: {'yes' if dialect.header else 'no'}, padded values trimmed: "
                      f"{'yes' if dialect.trim else 'no'}, '?' read as missing"))
        console.rule("[bold]2. inspect")
        profile = dataset.profile()
        console.print(profile_table(profile, f"{profile.rows:,} rows × {len(profile.columns)} columns"))
        console.rule("[bold]3. convert")
        result = dataset.write(folder / "adult.parquet")
        back = datakiln.read(result.path).to_arrow()
        same = back.equals(dataset.to_arrow())
        console.print(esc(f"wrote {result.path} ({format_bytes(result.bytes)} zstd Parquet, "
                      f"{format_bytes(sample_path().stat().st_size)} as CSV); read back "
                      f"{back.num_rows:,} rows, identical to the CSV read: {same}"))
        console.rule("[bold]4. clean")
        from datakiln.clean import Cleaner, DropDuplicates, Impute, Outliers, RepairTypes

        cleaner = Cleaner([RepairTypes(), DropDuplicates(), Impute(strategy="mode"),
                           Outliers(method="iqr", action="report")])
        cleaned = cleaner.fit(dataset).transform(dataset, output=folder / "adult_clean.parquet")
        for step, column, change, rows in cleaner.report_.summary_rows():
            console.print(esc(f"{step:>10}: {column} {change}: {rows}"))
        console.rule("[bold]5. split")
        parts = datakiln.split(cleaned, (0.8, 0.1, 0.1), stratify="income", seed=0,
                               output=folder / "splits")
        for name, count in parts.counts.items():
            rich_share = parts.class_counts[name].get(">50K", 0) / max(count, 1)
            console.print(esc(f"{name:>10}: {count:,} rows, >50K share {rich_share:.2%} -> "
                          f"{parts.paths[name]}"))
        console.rule("[bold]6. balance")
        from datakiln.balancing import Balancer

        balancer = Balancer("smote", seed=0)
        train = balancer.fit_resample(parts["train"], "income", output=folder / "train_balanced.parquet")
        report = balancer.report_
        console.print(esc(f"{report.method}: {report.counts_before} -> {report.counts_after}; "
                      f"{report.new_rows:,} new rows, {report.exact_copy_share:.1%} exact / "
                      f"{report.near_copy_share:.1%} near copies of real rows -> "
                      f"{folder / 'train_balanced.parquet'}"))
        console.rule("[bold]7. synthesize")
        from datakiln.synth import GaussianCopula, load

        model = GaussianCopula().fit(train)
        model.save(folder / "adult.kiln")
        synthetic = load(folder / "adult.kiln").sample(train.count(), seed=0)
        datakiln.from_arrow(synthetic).write(folder / "synthetic.parquet")
        share = sum(v == ">50K" for v in synthetic["income"].to_pylist()) / max(synthetic.num_rows, 1)
        console.print(esc(f"fitted a Gaussian copula on the balanced train split, saved "
                          f"{folder / 'adult.kiln'}, "
                      f"sampled {synthetic.num_rows:,} synthetic rows (>50K share {share:.2%}) -> "
                      f"{folder / 'synthetic.parquet'}"))
        console.rule("[bold]8. evaluate")
        from datakiln.cli.commands.evaluate import summary_table

        evaluation = datakiln.evaluate(train, synthetic, holdout=parts["test"], target="income", seed=0)
        evaluation.to_html(folder / "report.html")
        evaluation.to_json(folder / "report.json")
        console.print(summary_table(evaluation, "synthetic sample against the balanced train split"))
        console.print(esc(f"HTML report: {folder / 'report.html'} (open it in a browser)"))
    console.rule()
    console.print(esc(f"done in {time.perf_counter() - started:.1f} s; outputs in {folder}"))
