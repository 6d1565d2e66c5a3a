"""``kiln augment``: see augmentation ops at work (a preview grid) or write augmented copies.

Text and table ops (``synonym``, ``insert``, ``swap``, ``delete``, ``eda``; ``table_jitter``,
``table_mixup``) take a table file instead of an image folder and write ``-n`` augmented
copies of every row (:func:`datakiln.augment.rows.augment_rows`) to one file.

The images are augmented exactly as the loader would augment them: the random draws are
keyed by (``--seed``, epoch, each image's row number in the folder), so the preview of an
image with seed 0 is what ``ds.loader(..., transform=parse_ops(OPS), seed=0)`` yields for it
in epoch 0, and copy ``k`` of ``-o`` is its epoch ``k`` version.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import typer

from datakiln.cli._common import (
    console,
    distinct_outputs,
    esc,
    overwrite_option,
    progress_bar,
    seed_option,
    with_read_options,
)
from datakiln.errors import EmptySourceError, InvalidArgumentError, WriteError

_CHUNK = 64  # images decoded and augmented together when writing copies


@dataclass
class _Rows:
    """Some rows of an image dataset: encoded bytes, label names and codes, paths."""

    ids: np.ndarray
    images: list[Any]
    labels: list[str | None]
    codes: np.ndarray | None
    paths: list[str | None]
    classes: list[str] = field(default_factory=list)


def _label_columns(batch: Any) -> tuple[list[str | None], np.ndarray | None, list[str]]:
    """Label names, int64 codes (dictionary order) and the class names of a record batch."""
    import pyarrow as pa

    if "label" not in batch.schema.names:
        return [None] * batch.num_rows, None, []
    column = batch.column("label")
    if pa.types.is_dictionary(column.type):
        classes = [str(v) for v in column.dictionary.to_pylist()]
        codes = column.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        return [classes[c] for c in codes], codes, classes
    values = column.to_pylist()
    if pa.types.is_integer(column.type):
        return [None if v is None else str(v) for v in values], np.asarray(values, dtype=np.int64), []
    return [None if v is None else str(v) for v in values], None, []


def _batches(dataset: Any, rows: int = _CHUNK) -> Iterator[_Rows]:
    """The dataset in order, a chunk at a time, with each row's number (its row id)."""
    offset = 0
    for batch in dataset.iter_batches(rows):
        names, codes, classes = _label_columns(batch)
        paths = batch.column("path").to_pylist() if "path" in batch.schema.names else [None] * batch.num_rows
        ids = np.arange(offset, offset + batch.num_rows, dtype=np.int64)
        offset += batch.num_rows
        yield _Rows(ids, batch.column("image").to_pylist(), names, codes, paths, classes)


def _gather(dataset: Any, wanted: np.ndarray) -> dict[int, tuple[Any, str | None, int | None, str | None]]:
    """``{row id: (image, label name, label code, path)}`` for the ``wanted`` rows (one
    streaming pass that stops once all are found)."""
    wanted = np.unique(wanted)
    found: dict[int, tuple[Any, str | None, int | None, str | None]] = {}
    for chunk in _batches(dataset, 1024):
        for j in np.flatnonzero(np.isin(chunk.ids, wanted)):
            code = None if chunk.codes is None else int(chunk.codes[j])
            found[int(chunk.ids[j])] = (chunk.images[j], chunk.labels[j], code, chunk.paths[j])
        if len(found) == wanted.size:
            break
    return found


def _decode(values: list[Any], paths: list[str | None], ids: np.ndarray) -> list[np.ndarray]:
    from datakiln.io.image_codec import decode

    return [decode(value, mode="RGB", where=path or f"row {row}")
            for value, path, row in zip(values, paths, ids)]


def _image_batch(images: list[np.ndarray], ids: np.ndarray, codes: list[int | None] | np.ndarray | None,
                 num_classes: int | None) -> Any:
    from datakiln.augment.base import ImageBatch, stack_if_uniform

    labels = None
    if codes is not None and all(c is not None for c in codes):
        labels = np.asarray(codes, dtype=np.int64)
    return ImageBatch(images=stack_if_uniform(images), row_ids=ids, labels=labels,
                      num_classes=num_classes if labels is not None else None)


def _caption(name: str | None, soft: np.ndarray | None, classes: list[str]) -> str:
    """The preview caption: the class, or the two largest shares of a mixed label."""
    if soft is None or soft.ndim != 1 or not classes:
        return name or ""
    top = np.argsort(soft)[::-1][:2]
    parts = [f"{classes[i]} {soft[i]:.2f}" for i in top if soft[i] > 0.005]
    return " + ".join(parts) if parts else (name or "")


def write_preview(dataset: Any, transform: Any, path: str, *, count: int, seed: int, overwrite: bool,
                  inputs: list[str]) -> tuple[int, tuple[int, int]]:
    """Write the grid of ``count`` seeded-random images beside their augmented versions;
    returns the images shown and the grid's (height, width)."""
    from datakiln.augment._random import partner_rows
    from datakiln.io.write import write_file_atomic
    from datakiln.report.images import comparison_grid, is_own_png, to_png

    total = dataset.count()
    chosen = np.sort(np.random.default_rng(seed).choice(total, size=min(count, total), replace=False))
    partners = partner_rows(chosen, total, seed=seed, epoch=0) if transform.mixes else None
    found = _gather(dataset, chosen if partners is None else np.concatenate([chosen, partners]))
    keep = np.isin(chosen, list(found)) & (True if partners is None else np.isin(partners, list(found)))
    chosen = chosen[keep]  # skipped (unreadable) files drop out
    if chosen.size == 0:
        raise EmptySourceError("no readable image to preview; every file chosen was skipped")
    classes = _classes(dataset)
    originals = _decode([found[r][0] for r in chosen], [found[r][3] for r in chosen], chosen)
    batch = _image_batch(originals, chosen, [found[r][2] for r in chosen], len(classes) or None)
    if partners is not None:
        partners = partners[keep]
        images = _decode([found[p][0] for p in partners], [found[p][3] for p in partners], partners)
        batch.partners = _image_batch(images, partners, [found[p][2] for p in partners], len(classes) or None)
    augmented = transform(batch, seed=seed, epoch=0)
    soft = augmented.labels if augmented.labels is not None and augmented.labels.ndim == 2 else None
    captions = [_caption(found[r][1], None if soft is None else soft[i], classes)
                for i, r in enumerate(chosen)]
    grid = comparison_grid(originals, list(augmented.images), labels=captions)
    png = to_png(grid, mark=True)
    write_file_atomic(path, lambda temp: temp.write_bytes(png), is_own=is_own_png, overwrite=overwrite,
                      inputs=inputs)
    return int(chosen.size), (int(grid.shape[0]), int(grid.shape[1]))


def _classes(dataset: Any) -> list[str]:
    """Class names in code order (the label column's dictionary), or [] without one."""
    import pyarrow as pa

    field_ = dataset.arrow_schema.field("label") if "label" in dataset.columns else None
    if field_ is None or not pa.types.is_dictionary(field_.type):
        return []
    for batch in dataset.select(["label"]).iter_batches(1):
        return [str(v) for v in batch.column("label").dictionary.to_pylist()]
    return []


_UNSAFE = re.compile(r"[\x00-\x1f/\\:*?\"<>|]")


def _safe(name: str | None, fallback: str) -> str:
    """A file or folder name from user data: no separators or control characters, never
    ``.``/``..`` or hidden."""
    text = _UNSAFE.sub("_", (name or "").strip()).lstrip(".").strip()
    return text[:120] or fallback


class _Tree:
    """Names of the augmented copies: ``<label>/<stem>[_<copy>].png``, unique per folder."""

    def __init__(self, copies: int) -> None:
        self.copies, self.used = copies, set()

    def name(self, label: str | None, path: str | None, row: int, copy: int) -> str:
        folder = _safe(label, "unlabelled") if label is not None else ""
        stem = _safe(Path(path).stem if path else "", f"row{row}")
        if self.copies > 1:
            stem = f"{stem}_{copy}"
        relative = os.path.join(folder, stem + ".png")
        if relative in self.used:
            relative = os.path.join(folder, f"{stem}_row{row}.png")
        self.used.add(relative)
        return relative


def _uint8(images: Any, ops: str) -> list[np.ndarray]:
    arrays = list(images)
    if arrays and arrays[0].dtype != np.uint8:
        raise InvalidArgumentError(
            f"-o writes PNG files of 0..255 pixels, but --ops {ops!r} gives {arrays[0].dtype} values "
            "(Normalize); leave normalisation out of --ops and do it in the loader")
    return arrays


def write_copies(dataset: Any, transform: Any, out: str, *, ops: str, copies: int, seed: int,
                 overwrite: bool, inputs: list[str]) -> tuple[int, int]:
    """Write ``copies`` augmented PNG copies of every image as an ImageFolder tree at ``out``
    (atomically, with datakiln's manifest); returns (files written, class folders)."""
    from datakiln.io._output import commit, write_manifest
    from datakiln.io.image_codec import encode_png
    from datakiln.io.write import _prepare  # checks the target, tidies killed writes, opens the temp output

    target = Path(out).expanduser().absolute()
    temp = _prepare(target, directory=True, overwrite=overwrite, inputs=inputs)
    names, written = _Tree(copies), []
    try:
        with progress_bar("augmenting", dataset.count() * copies) as advance:
            for chunk in _batches(dataset):
                originals = _decode(chunk.images, chunk.paths, chunk.ids)
                batch = _image_batch(originals, chunk.ids, chunk.codes, len(chunk.classes) or None)
                for copy in range(copies):
                    augmented = _uint8(transform(batch, seed=seed, epoch=copy).images, ops)
                    for i, image in enumerate(augmented):
                        relative = names.name(chunk.labels[i], chunk.paths[i], int(chunk.ids[i]), copy)
                        file = temp.path / relative
                        file.parent.mkdir(exist_ok=True)
                        file.write_bytes(encode_png(image))
                        written.append(file)
                    advance(len(augmented))
        write_manifest(temp.path, written, format="png", rows=len(written))
        commit(temp, directory=True, overwrite=overwrite)
    except BaseException as exc:
        temp.discard()
        if isinstance(exc, OSError) and not isinstance(exc, WriteError):
            raise WriteError(f"cannot write {str(target)!r}: {exc}") from exc
        raise
    folders = {f.parent for f in written if f.parent != temp.path}
    return len(written), len(folders)


def _check_outputs(preview: str | None, out: str | None, transform: Any, overwrite: bool,
                   inputs: list[str]) -> None:
    from datakiln.io.write import check_output
    from datakiln.report.images import is_own_png

    if preview is None and out is None:
        raise InvalidArgumentError("nothing to write: give --preview grid.png (originals beside augmented "
                                   "versions) and/or -o OUT (augmented copies)")
    distinct_outputs(preview=preview, out=out)
    if preview is not None:
        if Path(preview).suffix.lower() != ".png":
            raise InvalidArgumentError(f"--preview writes a PNG image; name it with .png, e.g. "
                                       f"{str(Path(preview).with_suffix('.png'))!r}")
        check_output(preview, inputs=inputs, overwrite=overwrite, is_own=is_own_png)
    if out is not None:
        if transform.mixes:
            raise InvalidArgumentError(
                "-o writes an ImageFolder tree (one class per folder), which cannot hold the mixed "
                "labels of MixUp/CutMix; use them in the loader, or see them with --preview")
        check_output(out, inputs=inputs, directory=True, overwrite=overwrite)


def augment_rows_command(path: str, transform: Any, *, text_column: str | None, copies: int,
                         out: str | None, preview: str | None, seed: int, overwrite: bool,
                         read_kwargs: dict[str, Any]) -> None:
    """``kiln augment data.csv --text-column message --ops "synonym:0.1" -n 4 -o out.parquet``."""
    import pyarrow as pa

    import datakiln
    from datakiln.augment.rows import COPY_COLUMN, augment_rows, op_kind
    from datakiln.io._output import source_inputs
    from datakiln.io.write import check_output, format_for, write_tables

    if preview is not None:
        raise InvalidArgumentError("--preview draws images; for text and table ops write the copies with "
                                   "-o OUT.parquet (a few are shown here)")
    if out is None:
        raise InvalidArgumentError("nothing to write: give -o OUT.parquet (or .csv, .jsonl) for the "
                                   "augmented copies")
    dataset = datakiln.read(path, **read_kwargs)
    inputs = ([path] if os.path.exists(path) else []) + source_inputs(dataset.source)
    check_output(out, inputs=inputs, overwrite=overwrite)
    schema = dataset.arrow_schema.append(pa.field(COPY_COLUMN, pa.int64()))
    shown: list[pa.Table] = []

    def tables(advance: Any) -> Any:
        for table in augment_rows(dataset, transform, copies, text_column=text_column, seed=seed,
                                  on_progress=advance):
            if not shown:
                shown.append(table.slice(0, min(3 * copies, table.num_rows)))
            yield table

    with progress_bar("augmenting", dataset.count()) as advance:
        result = write_tables(tables(advance), schema, out, format=format_for(out), overwrite=overwrite,
                              inputs=inputs)
    console.print(f"wrote {esc(out)}: {result.rows:,} rows ({copies} augmented copies of each of "
                  f"{result.rows // copies:,} rows, column {COPY_COLUMN!r} numbers them)")
    if shown and op_kind(transform) == "text":
        originals = dataset.head(3)[text_column].to_pylist()
        for i, text in enumerate(shown[0][text_column].to_pylist()[: 2 * copies: copies]):
            console.print(f"  {esc(str(originals[i])[:100])}\n  → {esc(str(text)[:100])}")


@with_read_options
def augment_command(
    images: str = typer.Argument(..., help="Image folder (one sub-folder per class), glob or tar shards; "
                                 "for text or table ops a table file (CSV, Parquet, JSON Lines)."),
    ops: str = typer.Option(..., "--ops", help='Augmentation ops separated by ";", e.g. '
                            '"crop:32,padding=4; flip; jitter:0.4", "synonym:0.1; swap:0.1" or '
                            '"table_jitter:0.05".'),
    preview: str | None = typer.Option(None, "--preview", help="Write a PNG grid of originals beside "
                                       "their augmented versions."),
    count: int | None = typer.Option(None, "-n", "--count", min=1, max=4096,
                                     help="Images in the preview, chosen at random with --seed (default "
                                     "64); for text and table ops, augmented copies of each row."),
    text_column: str | None = typer.Option(None, "--text-column", help="The text column the text ops "
                                           "change (default: text)."),
    out: str | None = typer.Option(None, "-o", "--out", help="Write augmented copies of every image as "
                                   "an ImageFolder tree of PNG files (OUT/<class>/<name>.png)."),
    copies: int = typer.Option(1, "--copies", min=1, max=1000,
                               help="Augmented copies per image with -o (copy k is the loader's epoch k)."),
    seed: int = seed_option("Seed of the random draws (as the loader's seed) and of the preview's images."),
    labels: str = typer.Option("folder", "--labels", help="Class labels: folder (the sub-folder names), "
                               "none, or a CSV file of path,label rows."),
    skip_bad: bool = typer.Option(False, "--skip-bad-images",
                                  help="Skip and count corrupt or non-image files instead of stopping."),
    overwrite: bool = overwrite_option("a preview file", "its own earlier output"),
    read_kwargs: dict[str, Any] | None = None,
) -> None:
    """Preview augmentation ops on real images, or write augmented copies.

    Examples:

      kiln augment images/ --ops "crop:32,padding=4; flip; jitter:0.4" --preview grid.png -n 64

      kiln augment images/ --ops "rrc:224; flip" -o augmented/ --copies 2 --seed 7

      kiln augment data.csv --text-column message --ops "synonym:0.1; swap:0.1" -n 4 -o augmented.parquet
    """
    import datakiln
    from datakiln.augment import parse_ops
    from datakiln.augment.rows import op_kind

    transform = parse_ops(ops)
    if op_kind(transform) != "image":
        augment_rows_command(images, transform, text_column=text_column or "text", copies=count or copies,
                             out=out, preview=preview, seed=seed, overwrite=overwrite,
                             read_kwargs=read_kwargs or {})
        return
    if any(value is not None for value in (read_kwargs or {}).values()) or text_column is not None:
        raise InvalidArgumentError("--text-column and the table read options (--names, --delimiter ...) "
                                   "apply to text and table ops; image ops read an image folder")
    count = 64 if count is None else count
    dataset = datakiln.read_images(images, labels=labels, on_error="skip" if skip_bad else "raise")
    from datakiln.io._output import source_inputs

    inputs = ([images] if os.path.exists(images) else []) + source_inputs(dataset.source)
    _check_outputs(preview, out, transform, overwrite, inputs)
    if dataset.count() == 0:
        raise EmptySourceError(f"{images!r} holds no images to augment")
    if preview is not None:
        shown, (height, width) = write_preview(dataset, transform, preview, count=count, seed=seed,
                                               overwrite=overwrite, inputs=inputs)
        console.print(f"wrote {esc(preview)}: {shown:,} originals (left) beside their augmented versions "
                      f"(right), {width} × {height} pixels")
    if out is not None:
        files, folders = write_copies(dataset, transform, out, ops=ops, copies=copies, seed=seed,
                                      overwrite=overwrite, inputs=inputs)
        where = f" in {folders:,} class folders" if folders else ""
        console.print(f"wrote {files:,} augmented images (PNG) to {esc(out)}{where}")
    skipped = dataset.stats.get("bad_rows", 0)
    if skipped:
        console.print(f"[yellow]skipped {skipped:,} unreadable files[/] (see --skip-bad-images)")
