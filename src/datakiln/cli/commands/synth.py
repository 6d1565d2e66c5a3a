"""``kiln synth``: fit a synthesizer to a table and sample new rows from the model file."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from datakiln.cli._common import (
    BudgetOption,
    ToOption,
    console,
    esc,
    friendly_errors,
    overwrite_option,
    progress_bar,
    seed_option,
    with_read_options,
)
from datakiln.cli._where import parse_where
from datakiln.errors import InvalidArgumentError
from datakiln.units import format_bytes

app = typer.Typer(help="Fit synthesizers and sample synthetic rows.", no_args_is_help=True)
MODELS: dict[str, str] = {
    "copula": "datakiln.synth.copula:GaussianCopula",
    "mst": "datakiln.synth.dp.mst:MSTSynthesizer",
    "tvae": "datakiln.synth.neural.tvae:TVAE",
    "ctgan": "datakiln.synth.neural.ctgan:CTGAN",
    "pca": "datakiln.synth.pca:PCASynthesizer",
    "flow": "datakiln.synth.neural.flow:FlowMatching",
    "image-gan": "datakiln.synth.images.gan:ConditionalGAN",
    "image-vae": "datakiln.synth.images.convvae:ConvVAE",
}
"""``--model`` name → ``module:Class``; a new model adds one line (imported only when chosen)."""
NEURAL = ("tvae", "ctgan", "pca", "flow")  # models on the transformed space (NeuralSynthesizer)


def _model_class(name: str) -> Any:
    import importlib

    module, _, cls = MODELS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def _neural_kwargs(cls: Any, **given: Any) -> dict[str, Any]:
    """The options a neural model's constructor takes (None: keep the model's default)."""
    import inspect

    accepted = inspect.signature(cls.__init__).parameters
    return {k: v for k, v in given.items() if k in accepted and v is not None}


def _by(text: str) -> str | list[str] | None:
    if text == "auto":
        return "auto"
    if text in ("none", ""):
        return None
    return [name.strip() for name in text.split(",")]


@app.command("fit")
@with_read_options
def fit(
    data: str = typer.Argument(..., help="File, directory, glob or URL to learn from."),
    out: str = typer.Option(..., "--out", "-o", help="Model file to write, e.g. model.kiln."),
    model: str = typer.Option("copula", "--model", help=f"Which synthesizer: {', '.join(MODELS)}."),
    memory_budget: str = BudgetOption,
    by: str = typer.Option("auto", "--by", help="Columns with a copula per value combination: auto, "
                           "none, or names joined by commas."),
    constraint: list[str] = typer.Option(None, "--constraint", help="E.g. 'start < end', 'age >= 0', "
                                         "'visits: integer'; repeatable."),
    pii: str = typer.Option("fake", "--pii", help="PII columns: fake (format-valid fakes) or drop."),
    text: str = typer.Option("fake", "--text", help="Free-text columns: fake (placeholder text with the "
                             "real length distribution, never a training value), ngram (a word "
                             "n-gram model per column) or drop."),
    text_condition: str | None = typer.Option(None, "--text-condition", help="With --text ngram: a "
                                              "categorical column (e.g. the label) to fit one model per "
                                              "class of."),
    max_categories: int = typer.Option(10_000, "--max-categories", help="Categories modelled one by one "
                                       "per column; the rest are pooled and sampled at their real "
                                       "frequencies."),
    min_category_count: int = typer.Option(1, "--min-category-count", help="Withhold values seen fewer "
                                           "times than this: samples show one '(other)' value instead."),
    epsilon: float | None = typer.Option(None, "--epsilon", help="Differential privacy budget (e.g. 1): a "
                                         "DP fit (copula or mst) on the declared --domain."),
    delta: float = typer.Option(1e-6, "--delta", help="Delta of the DP guarantee (well below 1/rows)."),
    domain: str | None = typer.Option(None, "--domain", help="YAML/JSON file declaring every column's public "
                                      "domain (low/high or categories) for a DP fit."),
    epochs: int | None = typer.Option(None, "--epochs", help="Neural models: training epochs (default: the "
                                      "model's, e.g. 300 for tvae/ctgan)."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Neural models: rows per step."),
    patience: int | None = typer.Option(None, "--patience", help="Neural models: stop after this many "
                                        "validation-fidelity checks without a gain (keeps the best "
                                        "weights)."),
    checkpoint: str | None = typer.Option(None, "--checkpoint", help="Neural models: checkpoint file, "
                                          "written as training goes; rerunning the same fit resumes it."),
    device: str = typer.Option("auto", "--device", help="Neural models: auto (CUDA if available), cpu, "
                               "cuda."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="Neural models: torch threads "
                                       "(default: every core)."),
    seed: int = seed_option("Seed of the fit (same seed, same model on CPU)."),
    image_size: int | None = typer.Option(None, "--image-size", help="Image models: resize images to this "
                                          "square size first (needed when their sizes differ)."),
    overwrite: bool = overwrite_option("a file at --out", "an earlier model"),
    read_kwargs: dict[str, Any] | None = None,
) -> None:
    """Fit a synthesizer (two streaming passes for the copula) and save it.

    Example: kiln synth fit adult.parquet -o adult.kiln

             kiln synth fit adult.parquet -o adult-tvae.kiln --model tvae --epochs 100

             kiln synth fit adult.csv -o dp.kiln --model mst --epsilon 1 --delta 1e-6 --domain domain.yaml
    """
    import time
    import warnings
    from pathlib import Path

    import datakiln
    from datakiln.io.write import check_output, source_inputs
    from datakiln.synth import GaussianCopula, SmallTrainingWarning
    from datakiln.synth.modelfile import is_own_model

    with friendly_errors():
        if model not in MODELS:
            raise InvalidArgumentError(f"--model must be one of {tuple(MODELS)}, got {model!r}")
        if model.startswith("image-"):  # image models: their own branch (ImageFolder in, images out)
            from datakiln.cli.commands._synth_images import fit_images

            return fit_images(data, out, model, epochs=epochs, batch_size=batch_size, patience=patience,
                              checkpoint=checkpoint, device=device, seed=seed, overwrite=overwrite,
                              image_size=image_size, threads=threads)
        if model == "mst" and epsilon is None:
            raise InvalidArgumentError("--model mst is differentially private: give --epsilon (e.g. 1) and "
                                       "--domain (the public domain file)")
        dataset = datakiln.read(data, **(read_kwargs or {}))
        inputs = source_inputs(dataset.source)
        check_output(out, inputs=inputs, overwrite=overwrite, is_own=is_own_model)  # before the fit
        started = time.perf_counter()
        with progress_bar("reading" if model in NEURAL else "fitting (2 passes)", None) as advance, \
                warnings.catch_warnings():
            warnings.simplefilter("ignore", SmallTrainingWarning)  # printed below, from the summary
            if model in NEURAL:
                cls = _model_class(model)
                fitted = cls(**_neural_kwargs(cls, constraints=constraint or None, pii=pii, text=text,
                                              max_categories=max_categories, epochs=epochs,
                                              batch_size=batch_size, patience=patience, checkpoint=checkpoint,
                                              device=device, threads=threads, seed=seed, verbose=True)
                             ).fit(dataset, on_progress=advance)
            elif model == "mst":
                from datakiln.synth.dp import MSTSynthesizer

                fitted = MSTSynthesizer(epsilon=epsilon, delta=delta, domain=domain,
                                        memory_budget=memory_budget).fit(dataset, on_progress=advance)
            else:
                fitted = GaussianCopula(memory_budget=memory_budget, by=_by(by),
                                        constraints=constraint or None, pii=pii, text=text,
                                        text_condition=text_condition,
                                        max_categories=max_categories, min_category_count=min_category_count,
                                        epsilon=epsilon, delta=delta, seed=seed,
                                        domain=domain).fit(dataset, on_progress=advance)
        seconds = time.perf_counter() - started
        fitted.save(out, overwrite=overwrite, inputs=inputs)
    table = Table(title=esc(f"{type(fitted).__name__} fitted on {data} in {seconds:.2f} s"),
                  title_justify="left")
    for name in ("column", "treated as", "missing share", "notes"):
        table.add_column(name)
    summary = fitted.summary()
    for column, record in summary["columns"].items():
        share = record["missing_share"]
        table.add_row(esc(column), esc(record["role"]), "—" if share is None else f"{share:.2%}",
                      esc(_notes(record)))
    console.print(table)
    for warning in summary["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {esc(warning)}")
    if summary.get("dp"):
        spent = summary["dp"]["spent"]
        console.print(f"privacy spent: epsilon={spent['epsilon']}, delta={spent['delta']:g} (zCDP)")
    if model == "mst":
        console.print(f"tree of 2-way marginals: {esc('; '.join(summary['tree']) or 'one column')}")
    elif model in NEURAL:
        history = summary.get("training") or []
        if history:
            last = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                             for k, v in history[-1].items())
            console.print(f"training: {esc(last)}")
    else:
        by_text = ", ".join(fitted.by_) or "none"
        console.print(f"one copula per combination of: {esc(by_text)} ({len(fitted.components_)} components)")
    console.print(f"wrote {esc(out)} ({format_bytes(Path(out).stat().st_size)}, "
                  f"{fitted.rows_:,} rows learned)")


def _notes(record: dict[str, Any]) -> str:
    """What the fit did to one column beyond plain modelling, for the summary table."""
    notes = []
    if record.get("pooled"):
        notes.append(f"{record['pooled']:,} less frequent values pooled (sampled at their frequencies)")
    if record.get("withheld"):
        shown = repr(record["other_value"]) if record["other_value"] is not None else "null"
        notes.append(f"{record['withheld']:,} rare values ({record['withheld_rows']:,} rows) withheld "
                     f"as {shown}")
    if record.get("nonfinite"):
        notes.append(", ".join(f"{k} {v:.2%}" for k, v in record["nonfinite"].items() if v))
    if record["output"] not in ("modelled",):
        notes.append(record["output"])
    return "; ".join(notes)


@app.command("sample")
def sample(
    model_file: str = typer.Argument(..., help="Model file written by `kiln synth fit`."),
    rows: int = typer.Option(..., "-n", "--rows", help="How many rows to sample."),
    out: str = typer.Option(..., "--out", "-o", help="Output file (Parquet unless --to says otherwise)."),
    where: list[str] = typer.Option(None, "--where",
                                    help="Condition COLUMN=VALUE or COLUMN=LOW..HIGH; repeatable."),
    seed: int = seed_option("Same seed, same rows."),
    to: str | None = ToOption,
    overwrite: bool = overwrite_option(),
) -> None:
    """Sample rows from a saved model, exactly on the given conditions.

    Examples: kiln synth sample adult.kiln -n 100000 -o synthetic.parquet

              kiln synth sample adult.kiln -n 1000 -o rich.csv --to csv --where "income=>50K"
    """
    from datakiln.io.write import format_for, write_tables
    from datakiln.synth import load

    with friendly_errors():
        model = load(model_file)
        conditions = parse_where(where, getattr(model, "schema_", None))
        if type(model).__name__ in ("ConditionalGAN", "ConvVAE"):  # images: an ImageFolder tree
            from datakiln.cli.commands._synth_images import sample_images

            return sample_images(model, model_file, rows, out, conditions, seed=seed, to=to,
                                 overwrite=overwrite)
        with progress_bar("sampling", rows) as advance:
            batches = model.sample_batches(rows, batch_rows=262_144, conditions=conditions or None, seed=seed)
            result = write_tables(batches, model.output_schema(), out, format=format_for(out, to),
                                  on_progress=advance,
                                  overwrite=overwrite, inputs=[model_file])
    shown = ", ".join(f"{k}={_condition_text(v)}" for k, v in conditions.items()) or "no conditions"
    console.print(f"sampled {rows:,} rows ({esc(shown)}) -> {esc(result.path)} "
                  f"({format_bytes(result.bytes)})")


def _condition_text(value: object) -> str:
    """A --where value as the user would type it: times in ISO 8601, a range as LOW..HIGH."""
    if isinstance(value, tuple) and len(value) == 2:
        return f"{_condition_text(value[0])}..{_condition_text(value[1])}"
    if hasattr(value, "isoformat"):  # datetime, date, time
        return value.isoformat()  # type: ignore[union-attr]
    return str(value)
