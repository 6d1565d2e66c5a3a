"""The augmentation contract: per-sample parameters drawn for a batch, applied to the batch.

Every augmenter has two steps (DESIGN.md, "One verb per kind of change"):

``make_params(rng, batch)``
    draws **per-sample** parameters as arrays of length ``len(batch)`` from a
    :class:`~datakiln.augment._random.SampleRandom` (keyed by seed, epoch and each row's id
    in the dataset, so a row gets the same parameters in any batch, thread, worker or
    rank). Geometric parameters are drawn in each input image's own coordinates (batches
    of mixed sizes are lists of arrays).
``apply(batch, params)``
    applies them to the whole batch with vectorised kernels and returns a new batch.

``forward(batch, rng)`` does both and returns ``(batch, params)``; recording ``params`` and
calling ``apply`` again replays a batch exactly. :class:`Compose`, :class:`RandomApply` and
:class:`OneOf` build pipelines; inside them each op draws from its own named stream
(``rng.child("<position>/<op name>")``), so adding an op never changes another op's draws.

Batch-level mixing (MixUp, CutMix) pairs each row with a partner chosen from its row id
(:func:`~datakiln.augment._random.partner_rows`); the loader loads the partners'
images into ``batch.partners`` and :class:`Compose` runs every op before the mixing one on
the partners too (with the partners' own row ids, so a partner looks exactly as it does
as a sample of its own).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from datakiln.augment._random import SampleRandom
from datakiln.errors import InvalidArgumentError

__all__ = ["Augmenter", "Compose", "ImageBatch", "OneOf", "Params", "RandomApply"]

#: an op's recorded parameters: arrays of length ``len(batch)`` by name (pipelines nest)
Params = dict[str, Any]


@dataclass
class ImageBatch:
    """A batch of images with what travels with them.

    Attributes
    ----------
    images : ndarray or list of ndarray
        ``N×H×W×C`` (uint8 0..255, or float32 after :class:`Normalize`), or a list of
        ``H×W×C`` arrays when sizes differ (before a crop or resize fixes the size).
    row_ids : ndarray of int64
        Each image's row id in the dataset (what the random draws are keyed by).
    labels : ndarray, optional
        ``int64 (N,)`` class codes, or ``float32 (N, num_classes)`` soft labels after
        MixUp/CutMix.
    num_classes : int, optional
        Needed by the mixing ops to one-hot the labels.
    boxes : list of ndarray, optional
        Per image a ``float32 (k, 4)`` array of ``x0, y0, x1, y1`` in pixels.
    masks : list of ndarray, optional
        Per image an ``H×W`` integer array (segmentation), transformed like its image
        (nearest neighbour, never blended).
    keypoints : list of ndarray, optional
        Per image a ``float32 (k, 2)`` array of ``x, y`` in pixels.
    partners : ImageBatch, optional
        The mixing partners (see the module docstring); ``None`` outside mixing pipelines.
    """

    images: np.ndarray | list[np.ndarray]
    row_ids: np.ndarray
    labels: np.ndarray | None = None
    num_classes: int | None = None
    boxes: list[np.ndarray] | None = None
    masks: list[np.ndarray] | None = None
    keypoints: list[np.ndarray] | None = None
    partners: ImageBatch | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.row_ids = np.asarray(self.row_ids, dtype=np.int64).reshape(-1)
        if len(self.images) != self.row_ids.size:
            raise InvalidArgumentError(f"an image batch needs one row id per image: "
                                       f"{len(self.images)} images, {self.row_ids.size} ids")

    def __len__(self) -> int:
        return int(self.row_ids.size)

    @property
    def uniform(self) -> bool:
        """True when the images are one ``N×H×W×C`` array (all the same size)."""
        return isinstance(self.images, np.ndarray)

    def sizes(self) -> np.ndarray:
        """``int64 (N, 2)``: each image's height and width in pixels."""
        if isinstance(self.images, np.ndarray):
            return np.tile(np.array(self.images.shape[1:3], dtype=np.int64), (len(self), 1))
        return np.array([image.shape[:2] for image in self.images], dtype=np.int64).reshape(-1, 2)

    def image_list(self) -> list[np.ndarray]:
        """The images as a list of ``H×W×C`` arrays (views when the batch is uniform)."""
        return list(self.images)

    def with_images(self, images: np.ndarray | list[np.ndarray], **changes: Any) -> ImageBatch:
        """A copy with new images (stacked into one array when they share a shape)."""
        return replace(self, images=stack_if_uniform(images), **changes)

    def subset(self, index: np.ndarray) -> ImageBatch:
        """The rows at ``index`` (partners included)."""
        index = np.asarray(index, dtype=np.int64)
        pick = _pick(index)
        images = self.images[index] if isinstance(self.images, np.ndarray) else pick(self.images)
        return ImageBatch(images=images, row_ids=self.row_ids[index],
                          labels=None if self.labels is None else self.labels[index],
                          num_classes=self.num_classes, boxes=pick(self.boxes),
                          masks=pick(self.masks), keypoints=pick(self.keypoints),
                          partners=None if self.partners is None else self.partners.subset(index))


def _pick(index: np.ndarray) -> Any:
    def pick(values: list[Any] | None) -> list[Any] | None:
        return None if values is None else [values[i] for i in index]
    return pick


def stack_if_uniform(images: np.ndarray | list[np.ndarray]) -> np.ndarray | list[np.ndarray]:
    """One ``N×H×W×C`` array when every image has the same shape and dtype, else the list."""
    if isinstance(images, np.ndarray):
        return images
    if images and all(i.shape == images[0].shape and i.dtype == images[0].dtype for i in images):
        return np.stack(images)
    return list(images)


def merge(batch: ImageBatch, parts: Sequence[tuple[np.ndarray, ImageBatch]]) -> ImageBatch:
    """Put subsets (``(index, sub-batch)`` pairs covering every row once) back in row order.

    Other batch types (text, tables) merge themselves: ``batch.merge(parts)``."""
    if not isinstance(batch, ImageBatch):
        return batch.merge(parts)
    n = len(batch)
    images: list[Any] = [None] * n
    labels = None
    fields: dict[str, list[Any] | None] = {"boxes": None, "masks": None, "keypoints": None}
    for index, part in parts:
        for j, i in enumerate(index):
            images[i] = part.images[j]
        if part.labels is not None:
            if labels is None:
                labels = np.zeros((n,) + part.labels.shape[1:], dtype=part.labels.dtype)
            labels[index] = part.labels
        for name in fields:
            values = getattr(part, name)
            if values is not None:
                if fields[name] is None:
                    fields[name] = [None] * n
                for j, i in enumerate(index):
                    fields[name][i] = values[j]  # type: ignore[index]
    return ImageBatch(images=stack_if_uniform(images), row_ids=batch.row_ids,
                      labels=batch.labels if labels is None else labels,
                      num_classes=batch.num_classes, partners=batch.partners, **fields)


class Augmenter:
    """Base class of every augmentation op (images here; text and tables follow it).

    Subclasses implement :meth:`make_params` and :meth:`apply`; ``mixes = True`` marks an
    op that reads ``batch.partners`` (MixUp, CutMix).
    """

    #: reads ``batch.partners``: the loader must load each row's partner
    mixes: bool = False

    @property
    def name(self) -> str:
        """The op's name in recorded parameters and random streams."""
        return type(self).__name__

    def make_params(self, rng: SampleRandom, batch: ImageBatch) -> Params:
        """Per-sample parameters for ``batch`` (arrays of length ``len(batch)``)."""
        raise NotImplementedError

    def apply(self, batch: ImageBatch, params: Params) -> ImageBatch:
        """``batch`` transformed with ``params`` (a new batch; the input is not modified)."""
        raise NotImplementedError

    def forward(self, batch: ImageBatch, rng: SampleRandom) -> tuple[ImageBatch, Params]:
        """Draw parameters and apply them: ``(new batch, params)``."""
        params = self.make_params(rng, batch)
        return self.apply(batch, params), params

    def forward_fused(self, following: Augmenter, batch: Any, rng: SampleRandom,
                      following_rng: SampleRandom) -> tuple[Any, Params, Params] | None:
        """``self`` then ``following`` in one pass, as :class:`Compose` runs them when they
        are neighbours: ``(batch, own params, following's params)``, the params drawn from
        the two ops' own streams and the result equal to the two forwards (within 1/255
        where a fusion skips a rounding to uint8), or None where this op has no fused
        kernel for that pair (the default)."""
        return None

    def __call__(self, batch: ImageBatch, *, seed: int = 0, epoch: int = 0) -> ImageBatch:
        """Augment a batch outside the loader (draws keyed by its ``row_ids``)."""
        return self.forward(batch, SampleRandom(batch.row_ids, seed=seed, epoch=epoch))[0]

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


def _stream(position: int, op: Augmenter) -> str:
    return f"{position}/{op.name}"


def _partner_rng(rng: SampleRandom, partners: ImageBatch) -> SampleRandom:
    """``rng``'s key and stream for the partners' own row ids."""
    return SampleRandom(partners.row_ids, seed=rng.seed, epoch=rng.epoch,
                        _key_value=rng._keyv, _stream=rng._stream)


class Compose(Augmenter):
    """Ops applied in order; each draws from its own stream (its position and name).

    Parameters are a list, one entry per op. Ops before a mixing op run on the partners
    too, so a partner is augmented exactly as it would be as a sample of its own.
    """

    def __init__(self, ops: Sequence[Augmenter]) -> None:
        ops = list(ops)
        for op in ops:
            if not isinstance(op, Augmenter):
                raise InvalidArgumentError(f"Compose takes augmentation ops, got {op!r}")
        self.ops = ops

    @property
    def mixes(self) -> bool:  # type: ignore[override]
        return any(op.mixes for op in self.ops)

    def forward(self, batch: ImageBatch, rng: SampleRandom) -> tuple[ImageBatch, Params]:
        recorded: list[Params] = []
        position = 0
        while position < len(self.ops):
            op = self.ops[position]
            mixing_ahead = any(later.mixes for later in self.ops[position:])
            partners = batch.partners if mixing_ahead and not op.mixes else None
            done = self._fused(position, batch, rng)
            if done is not None:
                batch, pair = done
                if partners is not None:
                    batch.partners = self._fused(position, partners, _partner_rng(rng, partners))[0]
                recorded.extend(pair)
                position += 2
                continue
            stream = _stream(position, op)
            batch, params = op.forward(batch, rng.child(stream))
            if partners is not None:
                batch.partners = op.forward(partners, _partner_rng(rng, partners).child(stream))[0]
            recorded.append(params)
            position += 1
        return batch, {"ops": recorded}

    def _fused(self, position: int, batch: ImageBatch,
               rng: SampleRandom) -> tuple[ImageBatch, list[Params]] | None:
        """The ops at ``position`` and the next one through their fused kernel, if they
        have one (see :meth:`Augmenter.forward_fused`; neither may mix)."""
        if position + 1 >= len(self.ops):
            return None
        op, following = self.ops[position], self.ops[position + 1]
        if op.mixes or following.mixes:
            return None
        done = op.forward_fused(following, batch, rng.child(_stream(position, op)),
                                rng.child(_stream(position + 1, following)))
        if done is None:
            return None
        return done[0], [done[1], done[2]]

    def make_params(self, rng: SampleRandom, batch: ImageBatch) -> Params:
        """Later ops' parameters depend on earlier ops' output sizes: this runs the pipeline."""
        return self.forward(batch, rng)[1]

    def apply(self, batch: ImageBatch, params: Params) -> ImageBatch:
        """Replay recorded parameters (partners are not replayed: mixing params hold the
        mixed weights, and the partner images must be given again in ``batch.partners``)."""
        for op, op_params in zip(self.ops, params["ops"], strict=True):
            partners = batch.partners
            batch = op.apply(batch, op_params)
            if partners is not None and not op.mixes and batch.partners is partners:
                batch.partners = None  # stale: the partners were not replayed through this op
        return batch


class RandomApply(Augmenter):
    """Apply ``op`` to each sample with probability ``p`` (default 0.5)."""

    def __init__(self, op: Augmenter, p: float = 0.5) -> None:
        if not 0.0 <= p <= 1.0:
            raise InvalidArgumentError(f"RandomApply needs 0 <= p <= 1, got p={p}")
        self.op, self.p = op, p

    @property
    def name(self) -> str:
        return f"RandomApply[{self.op.name}]"

    def forward(self, batch: ImageBatch, rng: SampleRandom) -> tuple[ImageBatch, Params]:
        chosen = rng.bernoulli(self.p)
        index = np.flatnonzero(chosen)
        inner = self.op.make_params(rng.child("op").subset(index), batch.subset(index)) if index.size else {}
        params = {"applied": chosen, "params": inner}
        return self.apply(batch, params), params

    def make_params(self, rng: SampleRandom, batch: ImageBatch) -> Params:
        return self.forward(batch, rng)[1]

    def apply(self, batch: ImageBatch, params: Params) -> ImageBatch:
        chosen = np.asarray(params["applied"], dtype=bool)
        index, rest = np.flatnonzero(chosen), np.flatnonzero(~chosen)
        if index.size == 0:
            return batch
        changed = self.op.apply(batch.subset(index), params["params"])
        if rest.size == 0:
            return changed
        return merge(batch, [(index, changed), (rest, batch.subset(rest))])


class OneOf(Augmenter):
    """Apply exactly one of ``ops`` to each sample, chosen with probabilities ``p``
    (default: equal)."""

    def __init__(self, ops: Sequence[Augmenter], p: Sequence[float] | None = None) -> None:
        ops = list(ops)
        if not ops:
            raise InvalidArgumentError("OneOf needs at least one op")
        if p is not None and (len(p) != len(ops) or min(p) < 0 or sum(p) <= 0):
            raise InvalidArgumentError(f"OneOf needs one non-negative weight per op, got p={p}")
        self.ops, self.p = ops, None if p is None else list(p)

    def forward(self, batch: ImageBatch, rng: SampleRandom) -> tuple[ImageBatch, Params]:
        which = rng.choice(len(self.ops), self.p)
        inner: list[Params] = []
        for position, op in enumerate(self.ops):
            index = np.flatnonzero(which == position)
            sub_rng = rng.child(_stream(position, op)).subset(index)
            inner.append(op.make_params(sub_rng, batch.subset(index)) if index.size else {})
        params = {"choice": which, "params": inner}
        return self.apply(batch, params), params

    def make_params(self, rng: SampleRandom, batch: ImageBatch) -> Params:
        return self.forward(batch, rng)[1]

    def apply(self, batch: ImageBatch, params: Params) -> ImageBatch:
        which = np.asarray(params["choice"])
        parts = []
        for position, op in enumerate(self.ops):
            index = np.flatnonzero(which == position)
            if index.size:
                parts.append((index, op.apply(batch.subset(index), params["params"][position])))
        return merge(batch, parts)
