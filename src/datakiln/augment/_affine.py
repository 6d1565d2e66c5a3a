"""Rotations and affine warps (exported by :mod:`datakiln.augment.geometry`).

A warp's parameters keep the drawn values (angle, scale, translation, shear) for reading
and the resulting ``matrix`` (input pixel coordinates to output ones, about the image
centre) for replay: :meth:`apply` uses only the matrix. The output has the input's size;
an output pixel whose centre maps outside the input is ``fill`` (masks: ``mask_fill``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from datakiln.augment._geometric import GeometricOp, resolve_backend, value_range
from datakiln.augment._random import SampleRandom
from datakiln.augment._warp import fill_values, invert_affine, pil_warp
from datakiln.augment.base import ImageBatch, Params
from datakiln.errors import InvalidArgumentError

__all__ = ["Affine", "Rotate", "affine_matrices"]


def affine_matrices(sizes: np.ndarray, angle: np.ndarray, scale: np.ndarray | None = None,
                    translate: np.ndarray | None = None, shear: np.ndarray | None = None) -> np.ndarray:
    """``(N, 2, 3)`` input-to-output matrices about each image's centre.

    ``out = centre + translate + R(angle) · Shear · scale · (in - centre)`` with ``angle`` in
    degrees counter-clockwise as seen on screen (Pillow's ``Image.rotate``), ``translate``
    ``(N, 2)`` pixels ``(dx, dy)``, ``shear`` ``(N, 2)`` degrees ``(x, y)``:
    ``Shear = [[1, tan sx], [tan sy, 1]]``.
    """
    n = len(angle)
    theta = np.radians(np.asarray(angle, dtype=np.float64))
    cos, sin = np.cos(theta), np.sin(theta)
    linear = np.stack([np.stack([cos, sin], 1), np.stack([-sin, cos], 1)], 1)
    if shear is not None:
        tangent = np.tan(np.radians(np.asarray(shear, dtype=np.float64)))
        shearing = np.ones((n, 2, 2))
        shearing[:, 0, 1], shearing[:, 1, 0] = tangent[:, 0], tangent[:, 1]
        linear = linear @ shearing
    if scale is not None:
        linear = linear * np.asarray(scale, dtype=np.float64)[:, None, None]
    centre = np.asarray(sizes, dtype=np.float64)[:, ::-1] / 2.0  # (x, y) = (W/2, H/2)
    offset = centre - np.einsum("nij,nj->ni", linear, centre)
    if translate is not None:
        offset = offset + np.asarray(translate, dtype=np.float64)
    return np.concatenate([linear, offset[:, :, None]], axis=2)


class _Warp(GeometricOp):
    fill: float | Sequence[float]
    backend: str

    def _images(self, batch: ImageBatch, params: Params) -> np.ndarray | list[np.ndarray]:
        inverse = invert_affine(np.asarray(params["matrix"], dtype=np.float64).reshape(-1, 2, 3))
        backend = resolve_backend(self.backend, type(self).__name__, torch_faster=False)
        if backend == "torch":
            from datakiln.augment._warp_torch import torch_warp
            if batch.uniform:
                images: np.ndarray = batch.images  # type: ignore[assignment]
                fill = fill_values(self.fill, images.shape[3], images.dtype)
                return torch_warp(images, inverse, images.shape[1:3], fill)
            return [torch_warp(image[None], inverse[i:i + 1], image.shape[:2],
                               fill_values(self.fill, image.shape[2], image.dtype))[0]
                    for i, image in enumerate(batch.images)]
        out = [pil_warp(image, inverse[i], image.shape[:2],
                        fill_values(self.fill, image.shape[2], image.dtype))
               for i, image in enumerate(batch.images)]
        return np.stack(out) if batch.uniform else out

    def _forward(self, batch: ImageBatch, params: Params) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(params["matrix"], dtype=np.float64).reshape(-1, 2, 3), batch.sizes()


class Rotate(_Warp):
    """Rotate each sample about its centre by an angle uniform in ``degrees``.

    Parameters
    ----------
    degrees : float or (float, float)
        Angle range in degrees, counter-clockwise on screen; a number ``d`` means ``(-d, d)``.
    fill : float or sequence, default 0
        Value of the pixels that come from outside the image (per channel allowed).
    mask_fill : int, default 0
        The same for masks.
    backend : {"auto", "numpy", "torch"}, default "auto"
        ``"numpy"``: Pillow's ``Image.transform`` (bilinear); ``"torch"``: ``grid_sample``
        with the same sampling and fill rule (within one grey level); ``"auto"``: Pillow
        (measured faster).

    >>> batch = ImageBatch(np.zeros((2, 8, 8, 3), np.uint8), row_ids=[0, 1])
    >>> Rotate(15).make_params(SampleRandom([0, 1]), batch)["angle"].shape
    (2,)
    """

    def __init__(self, degrees: float | Sequence[float], fill: float | Sequence[float] = 0,
                 mask_fill: int = 0, backend: str = "auto") -> None:
        self.degrees = value_range(degrees, "Rotate", "degrees")
        self.fill, self.mask_fill, self.backend = fill, int(mask_fill), backend
        resolve_backend(backend, "Rotate", torch_faster=False)

    def make_params(self, rng: SampleRandom, batch: ImageBatch) -> Params:
        angle = rng.uniform(*self.degrees)
        return {"angle": angle, "matrix": affine_matrices(batch.sizes(), angle)}


class Affine(_Warp):
    """A random affine warp per sample about its centre: rotation, scale, translation, shear.

    Parameters
    ----------
    degrees : float or (float, float), default 0
        Rotation range (counter-clockwise on screen); ``d`` means ``(-d, d)``.
    scale : (float, float), optional
        Zoom factor range (``(0.9, 1.1)``); default no scaling.
    translate : (float, float), optional
        Largest shift as fractions of the width and height: ``dx`` uniform in
        ``±translate[0]·W``, ``dy`` in ``±translate[1]·H`` pixels; default none.
    shear : float, (float, float) or (float, float, float, float), optional
        Shear angle range in degrees: a number ``s`` means x-shear in ``(-s, s)``; a pair an
        x-shear range; four values x then y ranges. Default none.
    fill, mask_fill, backend
        As in :class:`Rotate`.
    """

    def __init__(self, degrees: float | Sequence[float] = 0,
                 scale: Sequence[float] | None = None,
                 translate: Sequence[float] | None = None,
                 shear: float | Sequence[float] | None = None,
                 fill: float | Sequence[float] = 0, mask_fill: int = 0,
                 backend: str = "auto") -> None:
        self.degrees = value_range(degrees, "Affine", "degrees")
        self.scale = (1.0, 1.0) if scale is None else value_range(scale, "Affine", "scale",
                                                                  positive=True)
        self.translate = (0.0, 0.0) if translate is None else _fractions(translate)
        self.shear = _shear(shear)
        self.fill, self.mask_fill, self.backend = fill, int(mask_fill), backend
        resolve_backend(backend, "Affine", torch_faster=False)

    def make_params(self, rng: SampleRandom, batch: ImageBatch) -> Params:
        sizes = batch.sizes().astype(np.float64)
        angle = rng.uniform(*self.degrees)
        scale = rng.uniform(*self.scale)
        shift = rng.uniform(-1.0, 1.0, (2,)) * np.array(self.translate) * sizes[:, ::-1]
        shear = np.stack([rng.uniform(*self.shear[:2]), rng.uniform(*self.shear[2:])], axis=1)
        matrix = affine_matrices(batch.sizes(), angle, scale, shift, shear)
        return {"angle": angle, "scale": scale, "translate": shift, "shear": shear, "matrix": matrix}


def _fractions(translate: Sequence[float]) -> tuple[float, float]:
    try:
        fx, fy = (float(v) for v in translate)
    except (TypeError, ValueError):
        fx = fy = -1.0
    if not (0.0 <= fx <= 1.0 and 0.0 <= fy <= 1.0):
        raise InvalidArgumentError(f"Affine needs translate as (fx, fy) fractions of the width "
                                   f"and height in [0, 1], got {translate!r}")
    return fx, fy


def _shear(shear: float | Sequence[float] | None) -> tuple[float, float, float, float]:
    if shear is None:
        return 0.0, 0.0, 0.0, 0.0
    if isinstance(shear, int | float) or len(shear) == 2:
        return (*value_range(shear, "Affine", "shear"), 0.0, 0.0)
    if len(shear) == 4:
        x = value_range(shear[:2], "Affine", "shear (x range)")
        return (*x, *value_range(shear[2:], "Affine", "shear (y range)"))
    raise InvalidArgumentError(f"Affine needs shear as a number, (low, high) or four values "
                               f"(x low, x high, y low, y high), got {shear!r}")
