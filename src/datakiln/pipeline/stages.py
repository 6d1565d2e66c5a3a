"""The stage kinds of a pipeline: each one validates its settings and calls the public API.

A stage receives its inputs (Datasets, or a model file for ``synth.sample``) and a folder to
fill; what it puts there becomes its cached output:

- ``<part>.arrow``  a table part (``data`` for most stages; ``train``/``validation``/``test``
  for ``split``), memory-mapped by the stages downstream;
- ``model.kiln``    a synthesizer's model file (``synth.fit``);
- ``report.json`` / ``report.html`` / ``preview.png``  the stage's report, linked from the
  run page.

Inputs are named in the stage's settings: ``input: clean`` (the ``data`` part of the stage
named ``clean``) or ``input: split.train`` (one part); ``evaluate`` takes ``real``,
``synthetic`` and ``holdout``, ``synth.sample`` takes ``model``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datakiln.errors import InvalidArgumentError

__all__ = ["STAGES", "StageKind"]


@dataclass(frozen=True)
class StageKind:
    """One kind of stage: which settings name inputs, which are allowed, and what runs it.

    ``run(inputs, settings, folder, base)`` fills ``folder`` and returns a summary (``rows``
    at least); ``base`` is the directory relative paths in the settings are taken from.
    """

    name: str
    inputs: tuple[str, ...]
    required: tuple[str, ...]
    optional: tuple[str, ...]
    run: Callable[[dict[str, Any], dict[str, Any], Path, Path], dict[str, Any]]


def _save(dataset: Any, folder: Path, part: str = "data") -> int:
    from datakiln.dataset.cache import write_arrow

    return write_arrow(dataset, folder / f"{part}.arrow")


def _json(folder: Path, kind: str, data: dict[str, Any]) -> None:
    from datakiln.io._output import report_marker

    text = json.dumps({**report_marker(kind), **data}, indent=2, ensure_ascii=False, default=str)
    (folder / "report.json").write_text(text, encoding="utf-8")


def _path(base: Path, value: Any) -> str:
    return str(base / Path(str(value)).expanduser())


def _read(inputs: dict[str, Any], settings: dict[str, Any], folder: Path, base: Path) -> dict[str, Any]:
    import datakiln

    options = dict(settings.get("options") or {})
    if settings.get("images"):
        dataset = datakiln.read_images(_path(base, settings["path"]), **options)
    else:
        dataset = datakiln.read(_path(base, settings["path"]), **options)
    return {"rows": _save(dataset, folder)}


def _clean(inputs: dict[str, Any], settings: dict[str, Any], folder: Path, base: Path) -> dict[str, Any]:
    from datakiln.clean import Cleaner

    config = settings.get("config")
    cleaner = Cleaner.from_config(config if isinstance(config, dict) else _path(base, config)) \
        if config else Cleaner()
    cleaned = cleaner.fit(inputs["input"]).transform(inputs["input"])
    rows = _save(cleaned, folder)
    _json(folder, "clean-report", cleaner.report_.to_dict())
    return {"rows": rows}


def _split(inputs: dict[str, Any], settings: dict[str, Any], folder: Path, base: Path) -> dict[str, Any]:
    import datakiln

    options = {k: settings[k] for k in ("stratify", "group", "time", "seed", "names", "rare")
               if k in settings}
    result = datakiln.split(inputs["input"], settings.get("fractions", (0.8, 0.1, 0.1)), **options)
    for name, dataset in result.datasets.items():
        _save(dataset, folder, name)
    _json(folder, "split-report", {"method": result.method, "counts": result.counts,
                                   "class_counts": result.class_counts})
    return {"rows": sum(result.counts.values()), "parts": sorted(result.datasets)}


def _balance(inputs: dict[str, Any], settings: dict[str, Any], folder: Path, base: Path) -> dict[str, Any]:
    from datakiln.balancing.balancer import Balancer

    options = dict(settings.get("options") or {})
    balancer = Balancer(settings.get("method", "smote"), seed=settings.get("seed", 0), options=options)
    balanced = balancer.fit_resample(inputs["input"], settings["target"])
    report = getattr(balancer, "report_", None)
    _json(folder, "balance-report", report.to_dict() if hasattr(report, "to_dict") else {})
    return {"rows": _save(balanced, folder)}


def _augment(inputs: dict[str, Any], settings: dict[str, Any], folder: Path, base: Path) -> dict[str, Any]:
    import pyarrow as pa

    from datakiln.augment.spec import parse_ops

    op = parse_ops(str(settings["ops"]))
    dataset = inputs["input"]
    seed = int(settings.get("seed", 0))
    if "image" in dataset.columns:  # images: a preview grid; the rows pass through
        count = int(settings.get("preview", 16))
        _preview(dataset, op, folder / "preview.png", count, seed)
        return {"rows": _save(dataset, folder)}
    from datakiln.augment.rows import augment_rows

    tables = list(augment_rows(dataset, op, int(settings.get("copies", 1)),
                               text_column=settings.get("text_column"), seed=seed))
    import datakiln

    table = pa.concat_tables(tables) if tables else dataset.head(0)
    return {"rows": _save(datakiln.from_arrow(table), folder)}


def _preview(dataset: Any, op: Any, target: Path, count: int, seed: int) -> None:
    """A grid of the first ``count`` images beside their augmented versions (row ids as keys,
    so it shows what the loader yields for them with this seed at epoch 0)."""
    import numpy as np

    from datakiln.augment.base import ImageBatch, stack_if_uniform
    from datakiln.io.image_codec import decode
    from datakiln.report.images import comparison_grid, to_png

    if getattr(op, "mixes", False):
        raise InvalidArgumentError("a pipeline preview shows ops without partners; MixUp/CutMix "
                                   "previews: kiln augment --preview")
    head = dataset.head(count)
    paths = head.column("path").to_pylist() if "path" in head.column_names else [None] * head.num_rows
    images = [decode(value, mode="RGB", where=path or f"row {i}")
              for i, (value, path) in enumerate(zip(head.column("image").to_pylist(), paths))]
    if not images:
        raise InvalidArgumentError("the augment stage's input has no images to preview")
    batch = ImageBatch(images=stack_if_uniform(images), row_ids=np.arange(len(images), dtype=np.int64))
    augmented = op(batch, seed=seed, epoch=0)
    target.write_bytes(to_png(comparison_grid(images, list(augmented.images)), mark=True))


def _synth_model(settings: dict[str, Any]) -> Any:
    from datakiln.synth import GaussianCopula, MSTSynthesizer

    models = {"copula": GaussianCopula, "mst": MSTSynthesizer}
    name = settings.get("model", "copula")
    if name not in models:
        raise InvalidArgumentError(f"model must be one of {sorted(models)}, got {name!r}")
    return models[name](**dict(settings.get("options") or {}))


def _fit(inputs: dict[str, Any], settings: dict[str, Any], folder: Path, base: Path) -> dict[str, Any]:
    model = _synth_model(settings).fit(inputs["input"])
    model.save(folder / "model.kiln")
    return {"rows": inputs["input"].count()}


def _sample(inputs: dict[str, Any], settings: dict[str, Any], folder: Path, base: Path) -> dict[str, Any]:
    import datakiln
    from datakiln.synth import load

    model = load(inputs["model"])
    table = model.sample(int(settings["n"]), seed=int(settings.get("seed", 0)))
    return {"rows": _save(datakiln.from_arrow(table), folder)}


def _evaluate(inputs: dict[str, Any], settings: dict[str, Any], folder: Path, base: Path) -> dict[str, Any]:
    import datakiln
    from datakiln.io._output import report_marker

    options = {k: settings[k] for k in ("target", "seed", "sample_rows", "detection", "privacy")
               if k in settings}
    report = datakiln.evaluate(inputs["real"], inputs["synthetic"], holdout=inputs.get("holdout"),
                               **options)
    text = json.dumps({**report_marker("evaluation-report"), **report.to_dict()}, indent=2,
                      ensure_ascii=False, default=str)
    (folder / "report.json").write_text(text, encoding="utf-8")
    report.to_html(folder / "report.html")
    return {"rows": inputs["synthetic"].count()}


def _write(inputs: dict[str, Any], settings: dict[str, Any], folder: Path, base: Path) -> dict[str, Any]:
    dataset = inputs["input"]
    target = _path(base, settings["path"])
    dataset.write(target, format=settings.get("format"), overwrite=bool(settings.get("overwrite", False)))
    return {"rows": dataset.count(), "path": target}


def _anonymize(inputs: dict[str, Any], settings: dict[str, Any], folder: Path, base: Path) -> dict[str, Any]:
    from datakiln.privacy.anonymize import anonymize

    config = settings.get("config")
    key_file = settings.get("key_file")
    result, report = anonymize(inputs["input"], config if isinstance(config, dict) or config is None
                               else _path(base, config),
                               key_file=_path(base, key_file) if key_file else None,
                               key_env=settings.get("key_env"))
    _json(folder, "anonymization-report", report.to_dict())
    return {"rows": _save(result, folder)}


STAGES: dict[str, StageKind] = {kind.name: kind for kind in (
    StageKind("read", (), ("path",), ("options", "images"), _read),
    StageKind("clean", ("input",), ("input",), ("config",), _clean),
    StageKind("split", ("input",), ("input",), ("fractions", "stratify", "group", "time", "seed",
                                                 "names", "rare"), _split),
    StageKind("balance", ("input",), ("input", "target"), ("method", "seed", "options"), _balance),
    StageKind("augment", ("input",), ("input", "ops"), ("copies", "text_column", "seed", "preview"),
              _augment),
    StageKind("synth.fit", ("input",), ("input",), ("model", "options"), _fit),
    StageKind("synth.sample", ("model",), ("model", "n"), ("seed",), _sample),
    StageKind("evaluate", ("real", "synthetic", "holdout"), ("real", "synthetic"),
              ("holdout", "target", "seed", "sample_rows", "detection", "privacy"), _evaluate),
    StageKind("write", ("input",), ("input", "path"), ("format", "overwrite"), _write),
    StageKind("anonymize", ("input",), ("input",), ("config", "key_file", "key_env"), _anonymize),
)}
