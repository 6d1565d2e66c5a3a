"""The image branch of ``kiln synth``: ``fit images/ --model image-gan|image-vae`` and
``sample model.kiln -n N -o synthetic/`` writing an ImageFolder tree (or tar shards)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from datakiln.cli._common import console, errors, esc
from datakiln.errors import InvalidArgumentError
from datakiln.units import format_bytes

IMAGE_MODELS = {"image-gan": "ConditionalGAN", "image-vae": "ConvVAE"}


def fit_images(
    data: str,
    out: str,
    model: str,
    *,
    epochs: int | None,
    batch_size: int | None,
    patience: int | None,
    checkpoint: str | None,
    device: str,
    seed: int,
    overwrite: bool,
    image_size: int | None = None,
    threads: int | None = None,
) -> None:
    """Fit an image model on the images at ``data`` and save it to ``out``; the progress bar
    counts epochs and shows the last epoch's losses."""
    import datakiln
    from datakiln.io.write import check_output, source_inputs
    from datakiln.synth import images
    from datakiln.synth.modelfile import is_own_model

    dataset = datakiln.read_images(data) if Path(data).is_dir() else datakiln.read(data)
    inputs = source_inputs(dataset.source)
    check_output(out, inputs=inputs, overwrite=overwrite, is_own=is_own_model)
    cls = getattr(images, IMAGE_MODELS[model])
    given = {
        "epochs": epochs,
        "batch_size": batch_size,
        "patience": patience,
        "image_size": image_size,
        "threads": threads,
    }
    fitted = cls(device=device, seed=seed, **{k: v for k, v in given.items() if v is not None})
    started = time.perf_counter()
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("epochs"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[losses]}"),
    ]
    resume = checkpoint if checkpoint and Path(checkpoint).exists() else None
    with Progress(*columns, console=errors, transient=True, disable=not sys.stderr.isatty()) as progress:
        task = progress.add_task(f"fitting {model}", total=fitted.epochs, losses="")

        def on_epoch(record: Any) -> None:
            text = " ".join(f"{k} {v:.3g}" for k, v in record.losses.items())
            if record.score is not None:
                text += f" | FD {record.score:.3g}"
            progress.update(task, completed=record.epoch, losses=text)

        fitted.fit(dataset, checkpoint=checkpoint, resume=resume, on_epoch=on_epoch)
    seconds = time.perf_counter() - started
    fitted.save(out, overwrite=overwrite, inputs=inputs)
    summary = fitted.summary()
    h, w, c = summary["image"]
    console.print(
        f"{type(fitted).__name__} fitted on {esc(data)} in {seconds:.1f} s: {len(summary['classes'])} "
        f"classes, {h}×{w}×{c} images, {summary['epochs']} epochs"
        + (f" (best at epoch {summary['best_epoch']})" if summary.get("best_epoch") else "")
    )
    if summary["history"]:
        last = summary["history"][-1]
        console.print("last epoch: " + esc(", ".join(f"{k} {v:.4g}" for k, v in last["losses"].items())))
    console.print(f"wrote {esc(out)} ({format_bytes(Path(out).stat().st_size)})")


def sample_images(
    model: Any,
    model_file: str,
    rows: int,
    out: str,
    conditions: dict[str, Any],
    *,
    seed: int,
    to: str | None,
    overwrite: bool,
) -> None:
    """Write ``rows`` images of ``model`` to ``out``: an ImageFolder tree (default) or tar shards
    (``--to tar``)."""
    from datakiln.cli._common import progress_bar

    if to not in (None, "folder", "tar"):
        raise InvalidArgumentError(
            f"image models write an ImageFolder tree (default) or --to tar shards, not {to!r}"
        )
    with progress_bar("sampling", rows) as advance:
        batches = model.sample_batches(rows, batch_rows=1000, conditions=conditions or None, seed=seed)
        if to == "tar":
            from datakiln.io.shards import write_tar_shards

            result = write_tar_shards(
                batches, out, overwrite=overwrite, inputs=[model_file], on_progress=advance
            )
        else:
            from datakiln.io.image_folder import write_image_folder

            result = write_image_folder(
                batches, out, overwrite=overwrite, inputs=[model_file], on_progress=advance
            )
    shown = ", ".join(f"{k}={v}" for k, v in conditions.items()) or "no conditions"
    console.print(f"sampled {rows:,} images ({esc(shown)}) -> {esc(str(result['path']))}")


def print_image_report(report: Any, title: str, *, json_path: str | None, html: str | None) -> None:
    """``kiln evaluate`` on images: the headline measures with their intervals."""
    from rich.table import Table

    m = report.measures
    table = Table(title=esc(f"{title} ({report.info['seconds']:.1f} s)"), title_justify="left")
    for name in ("measure", "generated", "95% interval", "real holdout"):
        table.add_column(name)

    def span(values: Any, percent: bool = False) -> str:
        return f"{values[0]:.1%} – {values[1]:.1%}" if percent else f"{values[0]:.4g} – {values[1]:.4g}"

    fd, kid = m["frechet_distance"], m["kid"]
    table.add_row(
        "Fréchet distance (features)",
        f"{fd['value']:.4g}",
        span(fd["interval"]),
        f"{m['frechet_distance_holdout']['value']:.4g}",
    )
    table.add_row("KID", f"{kid['value']:.4g}", span(kid["interval"]), f"{m['kid_holdout']['value']:.4g}")
    for key in ("precision", "recall"):
        table.add_row(
            key, f"{m['precision_recall'][key]:.1%}", "", f"{m['precision_recall_holdout'][key]:.1%}"
        )
    fid = m["class_fidelity"]
    table.add_row(
        "class fidelity",
        f"{fid['accuracy']:.1%}",
        span(fid["interval"], True),
        f"{m['classifier_holdout_accuracy']['value']:.1%}",
    )
    for space, mem in m["memorisation"].items():
        table.add_row(
            f"… and singular: much nearer one training image ({space})",
            f"{mem['share_below_and_singular']:.1%}",
            "",
            "",
        )
        table.add_row(
            f"closer than holdout p5 ({space})",
            f"{mem['share_below']:.1%}",
            span(mem["interval"], True),
            "5%",
        )
    console.print(table)
    console.print(f"[yellow]note:[/] {esc(report.info['note'])}")
    for label, path in (("JSON", json_path), ("HTML report", html)):
        if path:
            console.print(f"{label}: {esc(path)}")
