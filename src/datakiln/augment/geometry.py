"""Geometric augmentation: flips, crops, resizes, rotations and affine warps.

Every op draws its parameters per sample, in each input image's own coordinates (a batch
may be a list of images of different sizes), with a fixed number of draws per call, so a
row's parameters depend only on its id (:mod:`datakiln.augment._random`). The parameters
are plain arrays that :meth:`apply` replays exactly:

=====================  ==================================================================
op                     parameters (one entry per sample)
=====================  ==================================================================
HorizontalFlip         ``flip`` bool
VerticalFlip           ``flip`` bool
RandomCrop             ``top``, ``left`` int64 (the window's corner; negative = padding)
CenterCrop             ``top``, ``left`` int64
Resize                 ``size`` int64 (N, 2): output height, width
RandomResizedCrop      ``top``, ``left``, ``height``, ``width`` int64: the crop box
Rotate                 ``angle`` float64 degrees, ``matrix`` float64 (N, 2, 3)
Affine                 ``angle``, ``scale``, ``translate`` (N, 2), ``shear`` (N, 2), ``matrix``
=====================  ==================================================================

``matrix`` maps input pixel coordinates to output ones (pixel ``(i, j)`` covers
``[j, j+1) × [i, i+1)``). Boxes, masks and keypoints in the batch move with their image
(:mod:`datakiln.augment._targets`: boxes cut away entirely are removed, keypoints that
leave the image become NaN).

Kernels: flips and crops are NumPy indexing on the whole ``N×H×W×C`` batch; resampling
crops, then resizes with an antialiased bilinear filter (Pillow, or torch's identical
filter); warps sample bilinearly with Pillow's fill rule. ``backend="auto"`` takes the
faster kernel as measured (:mod:`datakiln.augment._warp`, :mod:`datakiln.augment._warp_torch`):
torch for resizing when installed (0.13 against 0.34 ms per 224×224 output), Pillow for
warps (1.1 against 2.7 ms per 256×256 image). Both backends agree within one grey level.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from datakiln.augment._affine import Affine, Rotate
from datakiln.augment._geometric import (
    GeometricOp,
    Size,
    identity,
    probability,
    resolve_backend,
    size_pair,
    value_range,
)
from datakiln.augment._random import SampleRandom
from datakiln.augment._warp import (
    check_images,
    crop_batch,
    crop_image,
    fill_values,
    flip_batch,
    pil_resize,
)
from datakiln.augment.base import Augmenter, ImageBatch, Params
from datakiln.errors import InvalidArgumentError

__all__ = [
    "Affine", "CenterCrop", "HorizontalFlip", "RandomCrop", "RandomResizedCrop", "Resize",
    "Rotate", "VerticalFlip",
]

# -- flips -------------------------------------------------------------------------------
class _Flip(GeometricOp):
    _axis: int  # the image's axis (H=0, W=1)

    def __init__(self, p: float = 0.5) -> None:
        self.p = probability(p, type(self).__name__)

    def make_params(self, rng: SampleRandom, batch: ImageBatch) -> Params:
        return {"flip": rng.bernoulli(self.p)}

    def _images(self, batch: ImageBatch, params: Params) -> np.ndarray | list[np.ndarray]:
        flags = np.asarray(params["flip"], dtype=bool)
        if batch.uniform:
            return flip_batch(batch.images, flags, self._axis + 1)  # type: ignore[arg-type]
        return [np.ascontiguousarray(np.flip(image, self._axis)) if flag else image
                for image, flag in zip(batch.images, flags, strict=True)]

    def _forward(self, batch: ImageBatch, params: Params) -> tuple[np.ndarray, np.ndarray]:
        sizes = batch.sizes()
        flags = np.asarray(params["flip"], dtype=bool)
        matrix = identity(len(batch))
        row = 1 - self._axis  # the matrix row of the flipped coordinate (x: 0, y: 1)
        matrix[flags, row, row] = -1.0
        matrix[flags, row, 2] = sizes[flags, self._axis]
        return matrix, sizes


class HorizontalFlip(_Flip):
    """Mirror each sample left-right with probability ``p`` (default 0.5).

    >>> out = HorizontalFlip(p=1.0)(ImageBatch(np.arange(6, dtype=np.uint8).reshape(1, 1, 6, 1), [0]))
    >>> out.images[0, 0, :, 0].tolist()
    [5, 4, 3, 2, 1, 0]
    """

    _axis = 1


class VerticalFlip(_Flip):
    """Mirror each sample top-bottom with probability ``p`` (default 0.5)."""

    _axis = 0


# -- crops -------------------------------------------------------------------------------
class _Crop(GeometricOp):
    size: tuple[int, int]
    fill: float | Sequence[float]

    def _images(self, batch: ImageBatch, params: Params) -> np.ndarray | list[np.ndarray]:
        top = np.asarray(params["top"], dtype=np.int64)
        left = np.asarray(params["left"], dtype=np.int64)
        if batch.uniform:
            images: np.ndarray = batch.images  # type: ignore[assignment]
            fill = fill_values(self.fill, images.shape[3], images.dtype)
            return crop_batch(images, top, left, self.size, fill)
        out = []
        for image, y, x in zip(batch.images, top, left, strict=True):
            fill = fill_values(self.fill, image.shape[2], image.dtype)
            out.append(crop_image(image, int(y), int(x), self.size, fill))
        return np.stack(out) if out else out

    def _forward(self, batch: ImageBatch, params: Params) -> tuple[np.ndarray, np.ndarray]:
        matrix = identity(len(batch))
        matrix[:, 0, 2] = -np.asarray(params["left"], dtype=np.float64)
        matrix[:, 1, 2] = -np.asarray(params["top"], dtype=np.float64)
        return matrix, np.tile(np.array(self.size), (len(batch), 1))


def _padding(padding: int | Sequence[int]) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` from an int, ``(left/right, top/bottom)`` or
    ``(left, top, right, bottom)`` (torchvision's orders)."""
    values = [padding] if isinstance(padding, int | np.integer) else list(padding)
    if len(values) not in (1, 2, 4) or not all(isinstance(v, int | np.integer) and v >= 0
                                                 for v in values):
        raise InvalidArgumentError("RandomCrop needs padding as a non-negative int, (left/right, "
                                   f"top/bottom) or (left, top, right, bottom), got {padding!r}")
    if len(values) == 1:
        return (int(values[0]),) * 4  # type: ignore[return-value]
    if len(values) == 2:
        return int(values[1]), int(values[1]), int(values[0]), int(values[0])
    left, top, right, bottom = (int(v) for v in values)
    return top, bottom, left, right


class RandomCrop(_Crop):
    """A ``size`` window at a random place of each sample, after padding it by ``padding``.

    Parameters
    ----------
    size : int or (int, int)
        Output height and width in pixels (an int: a square).
    padding : int or tuple, default 0
        Border added before cropping: an int (all sides), ``(left/right, top/bottom)`` or
        ``(left, top, right, bottom)`` pixels. The padded batch is never built per sample.
    fill : float or sequence, default 0
        The border's value (per channel allowed), in the images' units.
    pad_if_needed : bool, default False
        Pad an image still smaller than ``size`` evenly on both sides; without it such an
        image is an error naming its row.
    mask_fill : int, default 0
        The value of masks in the border.

    >>> crop = RandomCrop(32, padding=4)      # CIFAR's crop: one of 81 offsets per sample
    """

    def __init__(self, size: Size, padding: int | Sequence[int] = 0,
                 fill: float | Sequence[float] = 0, pad_if_needed: bool = False,
                 mask_fill: int = 0) -> None:
        self.size = size_pair(size, "RandomCrop")
        self._pads = top, bottom, left, right = _padding(padding)
        self.padding = (left, top, right, bottom)  # torchvision's 4-tuple: repr rebuilds the op
        self.fill, self.pad_if_needed, self.mask_fill = fill, bool(pad_if_needed), int(mask_fill)

    def _range(self, batch: ImageBatch, axis: int) -> tuple[np.ndarray, np.ndarray]:
        """Per sample the lowest and one past the highest window start along ``axis``."""
        before, after = self._pads[2 * axis:2 * axis + 2]
        extent = batch.sizes()[:, axis]
        need = self.size[axis]
        short = np.maximum(0, need - (extent + before + after))
        if short.any() and not self.pad_if_needed:
            i = int(np.flatnonzero(short)[0])
            sizes = batch.sizes()[i]
            raise InvalidArgumentError(
                f"RandomCrop(size={self.size}) needs images of at least that size after padding "
                f"{self.padding!r}; row {int(batch.row_ids[i])} is {int(sizes[0])}×{int(sizes[1])}: "
                "pass pad_if_needed=True, more padding, or Resize first")
        low = -before - short // 2
        return low, extent + after + (short - short // 2) - need + 1

    def make_params(self, rng: SampleRandom, batch: ImageBatch) -> Params:
        top_low, top_high = self._range(batch, 0)
        left_low, left_high = self._range(batch, 1)
        return {"top": rng.integers(top_low, top_high), "left": rng.integers(left_low, left_high)}


class CenterCrop(_Crop):
    """The central ``size`` window of each sample (``fill`` where the image is smaller).

    The window starts at ``(H - h) // 2, (W - w) // 2``.
    """

    def __init__(self, size: Size, fill: float | Sequence[float] = 0, mask_fill: int = 0) -> None:
        self.size = size_pair(size, "CenterCrop")
        self.fill, self.mask_fill = fill, int(mask_fill)

    def make_params(self, rng: SampleRandom, batch: ImageBatch) -> Params:
        sizes = batch.sizes()
        return {"top": (sizes[:, 0] - self.size[0]) // 2, "left": (sizes[:, 1] - self.size[1]) // 2}


# -- resampling --------------------------------------------------------------------------
class _Resample(GeometricOp):
    """Crop a box per sample, then resize it (antialiased bilinear)."""

    backend: str

    def _boxes(self, batch: ImageBatch, params: Params) -> tuple[np.ndarray, np.ndarray]:
        """``(N, 4)`` top, left, height, width boxes and ``(N, 2)`` output sizes."""
        raise NotImplementedError

    def _images(self, batch: ImageBatch, params: Params,
                flip: np.ndarray | None = None) -> np.ndarray | list[np.ndarray]:
        boxes, sizes = self._boxes(batch, params)
        if resolve_backend(self.backend, type(self).__name__, torch_faster=True) == "torch":
            from datakiln.augment._warp_torch import torch_resize
            return torch_resize(batch.images, boxes, sizes, flip)
        return pil_resize(batch.images, boxes, sizes, flip)

    def forward_fused(self, following: Augmenter, batch: ImageBatch, rng: SampleRandom,
                      following_rng: SampleRandom) -> tuple[ImageBatch, Params, Params] | None:
        """A following :class:`HorizontalFlip` mirrors each flagged output as the resize
        writes it (the same pixels as flipping afterwards; no second pass over the batch).
        Batches with boxes, masks or keypoints take the unfused path."""
        if (type(following) is not HorizontalFlip or not isinstance(batch, ImageBatch) or len(batch) == 0
                or batch.boxes is not None or batch.masks is not None or batch.keypoints is not None):
            return None
        check_images(batch.images)
        params = self.make_params(rng, batch)
        flips = following.make_params(following_rng, batch)  # the draws need only the row ids
        images = self._images(batch, params, np.asarray(flips["flip"], dtype=bool))
        return batch.with_images(images), params, flips

    def _forward(self, batch: ImageBatch, params: Params) -> tuple[np.ndarray, np.ndarray]:
        boxes, sizes = self._boxes(batch, params)
        boxes, scale_y, scale_x = boxes.astype(np.float64), sizes[:, 0], sizes[:, 1]
        scale_y, scale_x = scale_y / boxes[:, 2], scale_x / boxes[:, 3]
        matrix = np.zeros((len(batch), 2, 3))
        matrix[:, 0, 0], matrix[:, 0, 2] = scale_x, -boxes[:, 1] * scale_x
        matrix[:, 1, 1], matrix[:, 1, 2] = scale_y, -boxes[:, 0] * scale_y
        return matrix, sizes


class Resize(_Resample):
    """Resize every sample to ``size`` (antialiased bilinear, like Pillow's ``BILINEAR``).

    Parameters
    ----------
    size : int or (int, int)
        ``(height, width)`` in pixels; an int sets the shorter side and keeps the aspect
        ratio (the longer side is ``int(size * long / short)``).
    backend : {"auto", "numpy", "torch"}, default "auto"
        ``"numpy"`` resizes with Pillow, ``"torch"`` with ``interpolate(antialias=True)``
        (within one grey level of Pillow); ``"auto"`` takes torch when installed (faster).
    """

    def __init__(self, size: Size, backend: str = "auto") -> None:
        self.size = size if isinstance(size, int | np.integer) else size_pair(size, "Resize")
        size_pair(self.size, "Resize")
        self.backend = backend
        resolve_backend(backend, "Resize", torch_faster=False)

    def make_params(self, rng: SampleRandom, batch: ImageBatch) -> Params:
        sizes = batch.sizes()
        if not isinstance(self.size, int | np.integer):
            return {"size": np.tile(np.array(self.size, dtype=np.int64), (len(batch), 1))}
        short, long = sizes.min(axis=1), sizes.max(axis=1)
        other = (int(self.size) * long // np.maximum(short, 1)).astype(np.int64)
        tall = sizes[:, 0] > sizes[:, 1]
        out = np.full((len(batch), 2), int(self.size), dtype=np.int64)
        out[tall, 0], out[~tall, 1] = other[tall], other[~tall]
        return {"size": out}

    def _boxes(self, batch: ImageBatch, params: Params) -> tuple[np.ndarray, np.ndarray]:
        sizes = batch.sizes()
        boxes = np.concatenate([np.zeros_like(sizes), sizes], axis=1)
        return boxes, np.asarray(params["size"], dtype=np.int64).reshape(-1, 2)


class RandomResizedCrop(_Resample):
    """A random box of random area and aspect ratio, resized to ``size``.

    For each sample, 10 candidate boxes are drawn at once: area a fraction in ``scale`` of
    the image's, aspect ratio (width/height) log-uniform in ``ratio``; the first that fits
    the image wins, at a uniform position. When none fits, the central box with the
    aspect ratio clamped into ``ratio`` is used (the usual Inception-style algorithm).

    Parameters
    ----------
    size : int or (int, int)
        Output height and width in pixels.
    scale : (float, float), default (0.08, 1.0)
        Range of the box area as a fraction of the image area.
    ratio : (float, float), default (3/4, 4/3)
        Range of the box aspect ratio (width / height).
    backend : {"auto", "numpy", "torch"}, default "auto"
        As in :class:`Resize`.
    """

    tries = 10

    def __init__(self, size: Size, scale: Sequence[float] = (0.08, 1.0),
                 ratio: Sequence[float] = (3 / 4, 4 / 3), backend: str = "auto") -> None:
        self.size = size_pair(size, "RandomResizedCrop")
        self.scale = value_range(scale, "RandomResizedCrop", "scale", positive=True)
        self.ratio = value_range(ratio, "RandomResizedCrop", "ratio", positive=True)
        self.backend = backend
        resolve_backend(backend, "RandomResizedCrop", torch_faster=False)

    def make_params(self, rng: SampleRandom, batch: ImageBatch) -> Params:
        sizes = batch.sizes().astype(np.float64)
        height, width = sizes[:, :1], sizes[:, 1:]
        shape = (self.tries,)
        area = height * width * rng.uniform(self.scale[0], self.scale[1], shape)
        aspect = np.exp(rng.uniform(math.log(self.ratio[0]), math.log(self.ratio[1]), shape))
        w, h = np.rint(np.sqrt(area * aspect)), np.rint(np.sqrt(area / aspect))
        top = np.floor(rng.uniform(0.0, 1.0, shape) * (height - h + 1))
        left = np.floor(rng.uniform(0.0, 1.0, shape) * (width - w + 1))
        fits = (w > 0) & (h > 0) & (w <= width) & (h <= height)
        first = np.argmax(fits, axis=1)
        pick = np.arange(len(batch))
        box = np.stack([top[pick, first], left[pick, first], h[pick, first], w[pick, first]], 1)
        none = ~fits.any(axis=1)
        if none.any():
            box[none] = self._central(sizes[none])
        box = box.astype(np.int64)
        return {"top": box[:, 0], "left": box[:, 1], "height": box[:, 2], "width": box[:, 3]}

    def _central(self, sizes: np.ndarray) -> np.ndarray:
        height, width = sizes[:, 0], sizes[:, 1]
        aspect = width / height
        w, h = width.copy(), height.copy()
        narrow, wide = aspect < self.ratio[0], aspect > self.ratio[1]
        h[narrow] = np.rint(w[narrow] / self.ratio[0])
        w[wide] = np.rint(h[wide] * self.ratio[1])
        return np.stack([(height - h) // 2, (width - w) // 2, h, w], axis=1)

    def _boxes(self, batch: ImageBatch, params: Params) -> tuple[np.ndarray, np.ndarray]:
        boxes = np.stack([np.asarray(params[k], dtype=np.int64)
                          for k in ("top", "left", "height", "width")], axis=1).reshape(-1, 4)
        return boxes, np.tile(np.array(self.size, dtype=np.int64), (len(batch), 1))
