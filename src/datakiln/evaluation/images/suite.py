"""``evaluate_images``: judge generated images against the real ones they were made from.

Steps: decode the real training images, the generated ones and a real holdout (10% of the
training images when none is given, kept out of the classifier); train a small classifier
on the real training images (:class:`~datakiln.synth.images._features.FeatureClassifier`,
its own seed and width, independent of any classifier a generator early-stopped on); then

- **Fréchet distance** and **KID** of the generated images to the training images in its
  128 features, beside the same measures for the real holdout (the floor a perfect
  generator reaches with that many images);
- **precision / recall** (Kynkäänniemi et al. 2019, k = 3) on the same features;
- **class fidelity**: the classifier's accuracy on generated images of each requested class,
  beside its accuracy on the real holdout;
- **memorisation**: each generated image's distance to its nearest training image vs the
  holdout's, in pixels and features; near-copies are kept as thumbnails for the report.

These feature-space values are not comparable to published Inception FIDs.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from datakiln.evaluation.images.measures import (
    class_fidelity,
    frechet_interval,
    kid,
    memorisation,
    precision_recall,
    wilson,
)
from datakiln.io._output import report_marker
from datakiln.io.write import write_text_atomic
from datakiln.synth.images._data import ImageArrays, images_to_arrays
from datakiln.synth.images._features import FeatureClassifier

__all__ = ["ImageEvaluationReport", "evaluate_images", "is_image_data"]

NOT_INCEPTION = (
    "Fréchet distance and KID are computed on the features of a small classifier datakiln trained on "
    "these real training images (Inception weights are not available offline); they compare runs on "
    "the same data and are not comparable to published Inception FID/KID values."
)


@dataclass
class ImageEvaluationReport:
    """Measures of generated images as plain data (``measures``, ``info``); ``figures`` holds
    the pixel arrays the HTML report draws (grids per class, near-copy pairs), not serialised."""

    measures: dict[str, Any]
    info: dict[str, Any]
    figures: dict[str, Any] = field(default_factory=dict, repr=False)
    classifier: Any = field(default=None, repr=False)  # the judge, reusable: evaluate_images(classifier=...)

    def to_dict(self) -> dict[str, Any]:
        return {"measures": self.measures, "info": self.info}

    def summary(self) -> dict[str, float | None]:
        m = self.measures
        return {
            "frechet_distance": m["frechet_distance"]["value"],
            "kid": m["kid"]["value"],
            "precision": m["precision_recall"]["precision"],
            "recall": m["precision_recall"]["recall"],
            "class_fidelity": m["class_fidelity"]["accuracy"],
            "memorised_share_pixel": m["memorisation"]["pixel"]["share_below"],
            "memorised_share_feature": m["memorisation"]["feature"]["share_below"],
        }

    def to_json(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        overwrite: bool = False,
        inputs: Iterable[str | os.PathLike[str]] = (),
    ) -> str:
        text = json.dumps(
            {**report_marker("image-evaluation-report"), **self.to_dict()},
            indent=2,
            allow_nan=False,
            default=float,
        )
        if path is not None:
            write_text_atomic(path, text, overwrite=overwrite, inputs=inputs)
        return text

    def to_html(
        self,
        path: str | os.PathLike[str],
        *,
        title: str = "datakiln image evaluation",
        overwrite: bool = False,
        inputs: Iterable[str | os.PathLike[str]] = (),
    ) -> Path:
        from datakiln.report.image_evaluation import render_image_report

        return write_text_atomic(
            path, render_image_report(self, title=title), overwrite=overwrite, inputs=inputs
        )


def is_image_data(data: Any) -> bool:
    """Whether ``data`` (a Dataset or Arrow table) holds images in an ``image`` column."""
    import pyarrow as pa

    schema = getattr(data, "arrow_schema", None) or getattr(data, "schema", None)
    if not isinstance(schema, pa.Schema) or "image" not in schema.names:
        return False
    f = schema.field("image")
    return (f.metadata or {}).get(b"datakiln.kind") == b"image" or isinstance(f.type, pa.FixedShapeTensorType)


def _read(data: Any) -> Any:
    if isinstance(data, (str, os.PathLike)):
        import datakiln

        return datakiln.read_images(data) if Path(data).is_dir() else datakiln.read(data)
    return data


def _subset(arrays: ImageArrays, n: int, rng: np.random.Generator) -> ImageArrays:
    if len(arrays.codes) <= n:
        return arrays
    keep = np.sort(rng.choice(len(arrays.codes), n, replace=False))
    return ImageArrays(arrays.pixels[keep], arrays.codes[keep], arrays.classes, arrays.label_type)


def evaluate_images(
    real: Any,
    synthetic: Any,
    *,
    holdout: Any = None,
    label: str = "label",
    classifier: FeatureClassifier | None = None,
    classifier_epochs: int = 8,
    seed: int = 0,
    max_images: int = 10_000,
    memorisation_images: int = 2_000,
    device: str = "auto",
) -> ImageEvaluationReport:
    """Measure ``synthetic`` images against the ``real`` training images (see the module docstring).

    Parameters
    ----------
    real, synthetic, holdout : image Dataset, Arrow table or folder path
        The generator's training images, the generated images (with the requested class in
        ``label``) and real images the generator never saw (default: 10% of ``real``).
    classifier : FeatureClassifier, optional
        An already fitted judge (default: one trained here for ``classifier_epochs`` epochs).
    max_images : int
        Images of each side used for the distribution measures (default 10,000).
    memorisation_images : int
        Generated and holdout images compared with every training image (default 2,000).
    """
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    train = images_to_arrays(_read(real), label=label)
    size = train.pixels.shape[1:3]
    mode = train.mode
    fake = images_to_arrays(_read(synthetic), label=label, classes=train.classes, size=size, mode=mode)
    if holdout is None:
        held = rng.random(len(train.codes)) < 0.1
        hold = ImageArrays(train.pixels[held], train.codes[held], train.classes, train.label_type)
        train = ImageArrays(train.pixels[~held], train.codes[~held], train.classes, train.label_type)
    else:
        hold = images_to_arrays(_read(holdout), label=label, classes=train.classes, size=size, mode=mode)
    if not train.classes:
        raise ValueError("evaluate_images needs class labels on the real images (label column)")
    if classifier is None:
        classifier = FeatureClassifier(width=32, epochs=classifier_epochs, seed=seed + 2, device=device)
        classifier.fit(train.pixels, train.codes, len(train.classes))
    train_s, fake_s, hold_s = (_subset(a, max_images, rng) for a in (train, fake, hold))
    f_train, f_fake, f_hold = (classifier.features(a.pixels) for a in (train_s, fake_s, hold_s))
    predicted_fake = classifier.predict(fake.pixels)
    predicted_hold = classifier.predict(hold.pixels)
    real_acc = float(np.mean(predicted_hold == hold.codes))
    mem_fake, mem_hold = _subset(fake, memorisation_images, rng), _subset(hold, memorisation_images, rng)
    mem_train = _subset(train, max(max_images, memorisation_images), rng)
    spaces_fake = {
        "pixel": mem_fake.pixels.astype(np.float32) / 255,
        "feature": classifier.features(mem_fake.pixels),
    }
    spaces_hold = {
        "pixel": mem_hold.pixels.astype(np.float32) / 255,
        "feature": classifier.features(mem_hold.pixels),
    }
    spaces_train = {
        "pixel": mem_train.pixels.astype(np.float32) / 255,
        "feature": classifier.features(mem_train.pixels),
    }
    memorised = memorisation(spaces_fake, spaces_hold, spaces_train)
    measures = {
        "frechet_distance": frechet_interval(f_train, f_fake, seed=seed),
        "frechet_distance_holdout": frechet_interval(f_train, f_hold, seed=seed),
        "kid": kid(f_train, f_fake, seed=seed),
        "kid_holdout": kid(f_train, f_hold, seed=seed),
        "precision_recall": precision_recall(f_train, f_fake),
        "precision_recall_holdout": precision_recall(f_train, f_hold),
        "class_fidelity": class_fidelity(predicted_fake, fake.codes, train.classes),
        "classifier_holdout_accuracy": {
            "value": real_acc,
            "interval": wilson(int(np.sum(predicted_hold == hold.codes)), len(hold.codes)),
        },
        "memorisation": memorised,
    }
    info = {
        "classes": train.classes,
        "image": list(train.pixels.shape[1:]),
        "train_images": len(train.codes),
        "synthetic_images": len(fake.codes),
        "holdout_images": len(hold.codes),
        "holdout": "given" if holdout is not None else "10% of the real images",
        "seed": seed,
        "seconds": round(time.perf_counter() - started, 2),
        "features": "datakiln FeatureClassifier (128)",
        "note": NOT_INCEPTION,
    }
    figures = {
        "real": _per_class(train, 8),
        "generated": _per_class(fake, 8),
        "near_copies": {
            space: [
                (mem_fake.pixels[c["generated"]], mem_train.pixels[c["train"]])
                for c in memorised[space]["near_copies"][:12]
            ]
            for space in memorised
        },
    }
    return ImageEvaluationReport(measures, info, figures, classifier)


def _per_class(arrays: ImageArrays, n: int) -> dict[str, np.ndarray]:
    return {
        name: arrays.pixels[np.flatnonzero(arrays.codes == code)[:n]]
        for code, name in enumerate(arrays.classes)
        if (arrays.codes == code).any()
    }
