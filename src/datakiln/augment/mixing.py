"""Erasing and mixing ops: RandomErasing (cutout), MixUp, CutMix.

MixUp and CutMix mix each sample with a **partner**: another row of the dataset chosen
from its row id by :func:`~datakiln.augment._random.partner_rows` (a keyed derangement:
no row is its own partner when the dataset has two rows or more). The loader loads the
partners' images into ``batch.partners`` and runs the ops before the mixing op on them,
so a partner looks exactly as it does as a sample of its own. Labels become float32 soft
labels ``(N, num_classes)`` weighted by the lambda actually used (for CutMix: the pasted
area, after the box is clipped to the image).

Geometry that travels with an image (boxes, keypoints) stays the sample's own; CutMix
pastes the partner's mask inside the box when both have masks, MixUp keeps the sample's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import betaincinv

from datakiln.augment._random import SampleRandom
from datakiln.augment.base import Augmenter, ImageBatch, Params
from datakiln.errors import InvalidArgumentError

__all__ = ["CutMix", "MixUp", "RandomErasing"]

_TRIES = 10  # erasing boxes drawn per sample (a fixed number keeps draws keyed by row id)


def _pair(name: str, value: Sequence[float], low: float, high: float) -> tuple[float, float]:
    try:
        first, second = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name} must be a (min, max) pair, got {value!r}") from None
    if not low <= first <= second <= high:
        raise InvalidArgumentError(f"{name} must satisfy {low} <= min <= max <= {high}, "
                                   f"got ({first}, {second})")
    return first, second


class RandomErasing(Augmenter):
    """Erase a random rectangle (cutout), each sample with probability ``p``.

    Parameters
    ----------
    p : float, default 0.5
    scale : (min, max), default (0.02, 0.33)
        The rectangle's area as a fraction of the image's.
    ratio : (min, max), default (0.3, 3.3)
        Its aspect ratio (height / width), drawn log-uniformly.
    value : float or sequence of float, default 0
        The fill, in the image's units (grey levels for uint8), one value or one per channel.

    Ten rectangles are drawn per sample and the first that fits is used (none fits: the
    sample is left as it is), so a row's draws never depend on its batch.
    """

    def __init__(self, p: float = 0.5, scale: Sequence[float] = (0.02, 0.33),
                 ratio: Sequence[float] = (0.3, 3.3), value: float | Sequence[float] = 0.0) -> None:
        if not 0.0 <= p <= 1.0:
            raise InvalidArgumentError(f"RandomErasing needs 0 <= p <= 1, got p={p}")
        self.p = p
        self.scale = _pair("scale", scale, 0.0, 1.0)
        self.ratio = _pair("ratio", ratio, 1e-6, np.inf)
        try:
            fill = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            fill = np.array([np.nan])
        if fill.ndim > 1 or not np.isfinite(fill).all():
            raise InvalidArgumentError(f"RandomErasing value must be a number or one number per "
                                       f"channel, got {value!r}")
        self.value = value

    def make_params(self, rng: SampleRandom, batch: ImageBatch) -> Params:
        sizes = batch.sizes().astype(np.float64)
        height, width = sizes[:, :1], sizes[:, 1:]
        applied = rng.bernoulli(self.p)
        area = rng.uniform(*self.scale, shape=(_TRIES,)) * height * width
        aspect = np.exp(rng.uniform(*np.log(self.ratio), shape=(_TRIES,)))
        h = np.rint(np.sqrt(area * aspect)).astype(np.int64)
        w = np.rint(np.sqrt(area / aspect)).astype(np.int64)
        fits = (h < height) & (w < width) & (h > 0) & (w > 0)
        y0 = np.floor(rng.uniform(shape=(_TRIES,)) * (height - h + 1)).astype(np.int64)
        x0 = np.floor(rng.uniform(shape=(_TRIES,)) * (width - w + 1)).astype(np.int64)
        first = np.argmax(fits, axis=1)
        rows = np.arange(len(batch))
        box = np.stack([y0[rows, first], y0[rows, first] + h[rows, first],
                        x0[rows, first], x0[rows, first] + w[rows, first]], axis=1)
        return {"applied": applied & fits[rows, first], "box": box}

    def apply(self, batch: ImageBatch, params: Params) -> ImageBatch:
        applied = np.asarray(params["applied"], dtype=bool)
        boxes = np.asarray(params["box"], dtype=np.int64)
        images = batch.images.copy() if batch.uniform else [image.copy() for image in batch.images]
        fill = np.asarray(self.value, dtype=np.float64)
        for i in np.flatnonzero(applied):
            y0, y1, x0, x1 = boxes[i]
            image = images[i]
            if fill.size not in (1, image.shape[-1]):
                raise InvalidArgumentError(f"RandomErasing value has {fill.size} channels but row "
                                           f"{int(batch.row_ids[i])} has {image.shape[-1]}")
            image[y0:y1, x0:x1] = fill.astype(image.dtype)
        return batch.with_images(images)


def _beta(rng: SampleRandom, alpha: float) -> np.ndarray:
    """Beta(alpha, alpha) draws per sample (inverse CDF of one uniform draw)."""
    return betaincinv(alpha, alpha, rng.uniform()).astype(np.float64)


def _need_partners(op: str, batch: ImageBatch) -> ImageBatch:
    partners = batch.partners
    if partners is None:
        raise InvalidArgumentError(
            f"{op} mixes each image with a partner image, but batch.partners is empty: use it "
            f"through ds.loader(..., transform=...), which loads each row's partner, or set "
            f"batch.partners = ImageBatch(images=..., row_ids=partner_rows(batch.row_ids, "
            f"n_rows), labels=...) yourself")
    if len(partners) != len(batch):
        raise InvalidArgumentError(f"{op} needs one partner per image: {len(batch)} images, "
                                   f"{len(partners)} partners")
    for i, (image, other) in enumerate(zip(batch.image_list(), partners.image_list())):
        if image.shape != other.shape:
            raise InvalidArgumentError(
                f"{op}: row {batch.row_ids[i]} is {image.shape} but its partner (row "
                f"{partners.row_ids[i]}) is {other.shape}; put a crop or resize before {op}")
    return partners


def soft_labels(op: str, batch: ImageBatch, num_classes: int | None) -> np.ndarray:
    """``float32 (N, num_classes)``: one-hot class codes, or soft labels as they are."""
    labels = batch.labels
    if labels is None:
        raise InvalidArgumentError(f"{op} mixes labels, but the batch has none: read the "
                                   f"dataset with labels (or set batch.labels)")
    labels = np.asarray(labels)
    if labels.ndim == 2:
        return labels.astype(np.float32)
    if num_classes is None:
        raise InvalidArgumentError(f"{op} turns class codes into soft labels and needs the number "
                                   f"of classes: pass {op}(num_classes=...) or set batch.num_classes")
    codes = labels.astype(np.int64)
    bad = codes[(codes < 0) | (codes >= num_classes)]
    if bad.size:
        raise InvalidArgumentError(f"{op}: label {int(bad[0])} is outside 0..{num_classes - 1} "
                                   f"(num_classes={num_classes})")
    out = np.zeros((codes.size, num_classes), np.float32)
    out[np.arange(codes.size), codes] = 1.0
    return out


class _Mixing(Augmenter):
    mixes = True

    def __init__(self, alpha: float, num_classes: int | None = None) -> None:
        if not alpha > 0:
            raise InvalidArgumentError(f"{type(self).__name__} needs alpha > 0, got {alpha}")
        self.alpha, self.num_classes = float(alpha), num_classes

    def _labels(self, batch: ImageBatch, partners: ImageBatch, lam: np.ndarray) -> np.ndarray:
        classes = self.num_classes if self.num_classes is not None else batch.num_classes
        own = soft_labels(self.name, batch, classes)
        other = soft_labels(self.name, partners, classes)
        if own.shape != other.shape:
            raise InvalidArgumentError(f"{self.name}: labels {own.shape} and partner labels "
                                       f"{other.shape} differ in shape")
        weight = lam.astype(np.float32)[:, None]
        return weight * own + (1.0 - weight) * other


class MixUp(_Mixing):
    """Blend each image with its partner: ``lam * image + (1 - lam) * partner``.

    Parameters
    ----------
    alpha : float, default 0.2
        ``lam`` is drawn per sample from Beta(alpha, alpha).
    num_classes : int, optional
        For one-hot labels; default ``batch.num_classes`` (the loader sets it).

    Labels become ``lam * onehot(label) + (1 - lam) * onehot(partner label)``. uint8 images
    are blended in float and rounded back to uint8.
    """

    def __init__(self, alpha: float = 0.2, num_classes: int | None = None) -> None:
        super().__init__(alpha, num_classes)

    def make_params(self, rng: SampleRandom, batch: ImageBatch) -> Params:
        return {"lam": _beta(rng, self.alpha)}

    def apply(self, batch: ImageBatch, params: Params) -> ImageBatch:
        partners = _need_partners(self.name, batch)
        lam = np.asarray(params["lam"], np.float64)
        labels = self._labels(batch, partners, lam)
        if batch.uniform and partners.uniform:
            images = _blend(batch.images, partners.images, lam)
        else:
            images = [_blend(a[None], b[None], lam[i:i + 1])[0]
                      for i, (a, b) in enumerate(zip(batch.image_list(), partners.image_list()))]
        return batch.with_images(images, labels=labels)


def _blend(images: np.ndarray, others: np.ndarray, lam: np.ndarray) -> np.ndarray:
    weight = lam.astype(np.float32).reshape(-1, *([1] * (images.ndim - 1)))
    mixed = np.multiply(images, weight, dtype=np.float32)
    mixed += np.multiply(others, 1.0 - weight, dtype=np.float32)
    if images.dtype == np.uint8:
        return np.rint(np.clip(mixed, 0, 255, out=mixed), out=mixed).astype(np.uint8)
    return mixed.astype(images.dtype, copy=False)


class CutMix(_Mixing):
    """Paste a box of each sample's partner into it; labels weighted by the pasted area.

    Parameters
    ----------
    alpha : float, default 1.0
        ``lam`` ~ Beta(alpha, alpha); the box has sides ``sqrt(1 - lam)`` of the image's,
        centred uniformly at random and clipped to the image.
    num_classes : int, optional
        As for :class:`MixUp`.

    The label weight of the sample is ``1 - (box area) / (image area)`` for the clipped box
    (recorded as ``params["lam"]``).
    """

    def __init__(self, alpha: float = 1.0, num_classes: int | None = None) -> None:
        super().__init__(alpha, num_classes)

    def make_params(self, rng: SampleRandom, batch: ImageBatch) -> Params:
        sizes = batch.sizes().astype(np.float64)
        height, width = sizes[:, 0], sizes[:, 1]
        side = np.sqrt(1.0 - _beta(rng, self.alpha))
        cy, cx = rng.uniform() * height, rng.uniform() * width
        half_h, half_w = np.rint(side * height) / 2.0, np.rint(side * width) / 2.0
        y0 = np.clip(np.rint(cy - half_h), 0, height).astype(np.int64)
        y1 = np.clip(np.rint(cy + half_h), 0, height).astype(np.int64)
        x0 = np.clip(np.rint(cx - half_w), 0, width).astype(np.int64)
        x1 = np.clip(np.rint(cx + half_w), 0, width).astype(np.int64)
        lam = 1.0 - (y1 - y0) * (x1 - x0) / (height * width)
        return {"box": np.stack([y0, y1, x0, x1], axis=1), "lam": lam}

    def apply(self, batch: ImageBatch, params: Params) -> ImageBatch:
        partners = _need_partners(self.name, batch)
        boxes = np.asarray(params["box"], dtype=np.int64)
        lam = np.asarray(params["lam"], np.float64)
        labels = self._labels(batch, partners, lam)
        images = batch.images.copy() if batch.uniform else [image.copy() for image in batch.images]
        others = partners.image_list()
        paste_masks = batch.masks is not None and partners.masks is not None
        masks = [m.copy() for m in batch.masks] if paste_masks else batch.masks  # type: ignore[union-attr]
        for i, (y0, y1, x0, x1) in enumerate(boxes):
            images[i][y0:y1, x0:x1] = others[i][y0:y1, x0:x1]
            if paste_masks:
                masks[i][y0:y1, x0:x1] = partners.masks[i][y0:y1, x0:x1]  # type: ignore[index]
        return batch.with_images(images, labels=labels, masks=masks)
