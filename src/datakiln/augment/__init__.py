"""Augmentation: per-sample, replayable, batched ops (see :mod:`datakiln.augment.base`).

>>> from datakiln.augment import Compose, RandomCrop, HorizontalFlip, Normalize
>>> transform = Compose([RandomCrop(32, padding=4), HorizontalFlip(), Normalize()])
>>> loader = ds.loader(256, transform=transform, format="torch")   # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

from datakiln.augment._random import SampleRandom, partner_rows
from datakiln.augment.base import Augmenter, Compose, ImageBatch, OneOf, RandomApply
from datakiln.dataset._image_batches import register_augment

register_augment(ImageBatch, SampleRandom, partner_rows)  # the loader builds batches of these

_LAZY = {
    # geometry (datakiln.augment.geometry)
    "RandomResizedCrop": "datakiln.augment.geometry",
    "RandomCrop": "datakiln.augment.geometry",
    "Resize": "datakiln.augment.geometry",
    "CenterCrop": "datakiln.augment.geometry",
    "HorizontalFlip": "datakiln.augment.geometry",
    "VerticalFlip": "datakiln.augment.geometry",
    "Rotate": "datakiln.augment.geometry",
    "Affine": "datakiln.augment.geometry",
    # colour and pixels (datakiln.augment.color)
    "ColorJitter": "datakiln.augment.color",
    "Grayscale": "datakiln.augment.color",
    "GaussianNoise": "datakiln.augment.color",
    "GaussianBlur": "datakiln.augment.color",
    "Normalize": "datakiln.augment.color",
    # erasing and mixing (datakiln.augment.mixing)
    "RandomErasing": "datakiln.augment.mixing",
    "MixUp": "datakiln.augment.mixing",
    "CutMix": "datakiln.augment.mixing",
    # text (datakiln.augment.text) and tables (datakiln.augment.tabular)
    "TextBatch": "datakiln.augment.text",
    "SynonymReplace": "datakiln.augment.text",
    "RandomInsert": "datakiln.augment.text",
    "RandomSwap": "datakiln.augment.text",
    "RandomDelete": "datakiln.augment.text",
    "EDA": "datakiln.augment.text",
    "augment_copies": "datakiln.augment.text",
    "TableBatch": "datakiln.augment.tabular",
    "GaussianJitter": "datakiln.augment.tabular",
    "TabularMixUp": "datakiln.augment.tabular",
    "table_copies": "datakiln.augment.tabular",
    # the CLI's op strings ("crop:32,padding=4; flip; jitter:0.4")
    "parse_ops": "datakiln.augment.spec",
}

__all__ = ["Augmenter", "Compose", "ImageBatch", "OneOf", "RandomApply", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'datakiln.augment' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
