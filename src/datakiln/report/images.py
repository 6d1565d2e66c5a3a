"""Image grids: many images tiled into one picture, captioned, as an array, PNG or HTML.

Used by ``kiln augment --preview`` (originals beside augmented versions) and by HTML
reports that show images (real beside generated ones). This module renders only; it
computes nothing about the images. Pillow (the ``images`` extra) encodes the PNG and
draws the captions; the tiling itself is NumPy.

>>> grid = image_grid(images, labels=["cat", "dog"])                 # doctest: +SKIP
>>> png = to_png(grid)                                               # doctest: +SKIP
>>> fragment = html_figure(grid, caption="training images")          # doctest: +SKIP
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from datakiln._optional import import_optional
from datakiln.errors import InvalidArgumentError

__all__ = ["comparison_grid", "html_figure", "image_grid", "is_own_png", "to_png", "to_uint8_rgb"]

#: grid cells are enlarged by a whole factor until their longer side reaches this (pixels)
MIN_CELL = 64
_CAPTION_HEIGHT = 14  # pixels of the caption strip under each cell
_CAPTION_INK = (40, 40, 40)


def to_uint8_rgb(image: Any) -> np.ndarray:
    """``image`` as an ``H×W×3`` uint8 array.

    Accepts ``H×W`` (grey), ``H×W×1``, ``H×W×3`` and ``H×W×4`` (alpha dropped) arrays,
    channel-first ``1×H×W`` / ``3×H×W`` (a torch batch's layout), uint8 or float. Floats in
    ``[0, 1]`` are scaled by 255; other floats (normalised images) are stretched from their
    own minimum and maximum to 0..255 so they stay visible.
    """
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[2] not in (1, 3, 4):
        array = array.transpose(1, 2, 0)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4) or 0 in array.shape:
        raise InvalidArgumentError(f"an image for a grid must be H×W, H×W×1, H×W×3 or H×W×4, got "
                                   f"an array of shape {array.shape}")
    if array.dtype != np.uint8:
        array = _float_to_uint8(array.astype(np.float64))
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array[:, :, :3])


def _float_to_uint8(array: np.ndarray) -> np.ndarray:
    finite = np.isfinite(array)
    if not finite.all():
        array = np.where(finite, array, 0.0)
    low, high = float(array.min()), float(array.max())
    if low >= 0.0 and high <= 1.0:
        scaled = array * 255.0
    elif low >= 0.0 and high <= 255.0:
        scaled = array
    else:
        scaled = (array - low) * (255.0 / max(high - low, 1e-12))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _as_list(images: Any) -> list[np.ndarray]:
    if isinstance(images, np.ndarray):
        if images.ndim not in (3, 4):
            raise InvalidArgumentError(f"images for a grid: an N×H×W(×C) array or a list of images, "
                                       f"got an array of shape {images.shape}")
        return [to_uint8_rgb(image) for image in images]
    if hasattr(images, "numpy") and hasattr(images, "shape"):  # a torch tensor
        return _as_list(images.detach().cpu().numpy())
    return [to_uint8_rgb(image) for image in images]


def image_grid(images: Any, *, labels: Sequence[Any] | None = None, columns: int | None = None,
               scale: int | None = None, padding: int = 2, background: int = 255) -> np.ndarray:
    """Tile ``images`` into one ``H×W×3`` uint8 picture, row by row.

    Parameters
    ----------
    images : ndarray, list of ndarray or torch tensor
        ``N×H×W×C`` / ``N×C×H×W`` or a list of images of any sizes (see
        :func:`to_uint8_rgb`); each sits in the top-left corner of its cell, cells being as
        large as the largest image.
    labels : sequence, optional
        One caption per image (``None`` or ``""`` for none), drawn under its cell in a
        strip of 14 pixels; text wider than the cell is cut with an ellipsis.
    columns : int, optional
        Cells per row (default: about a square grid, ``ceil(sqrt(N))``).
    scale : int, optional
        Whole enlargement factor, nearest neighbour (default: the smallest that makes the
        largest side at least 64 pixels, so 32 × 32 CIFAR images are shown at 64 × 64).
    padding : int
        Pixels of ``background`` around every cell (default 2).
    background : int
        Grey level 0..255 of the space between cells (default 255, white).

    Returns
    -------
    ndarray
        uint8 ``H×W×3``: ``rows × (cell height + caption + padding) + padding`` high.
    """
    tiles = _as_list(images)
    if not tiles:
        raise InvalidArgumentError("an image grid needs at least one image, got none")
    if labels is not None and len(labels) != len(tiles):
        raise InvalidArgumentError(f"an image grid needs one label per image: {len(tiles)} images, "
                                   f"{len(labels)} labels")
    if columns is not None and columns < 1:
        raise InvalidArgumentError(f"columns must be at least 1, got {columns}")
    if padding < 0 or not 0 <= background <= 255:
        raise InvalidArgumentError(f"padding must be >= 0 and background 0..255, got {padding}, {background}")
    cell_h = max(t.shape[0] for t in tiles)
    cell_w = max(t.shape[1] for t in tiles)
    if scale is None:
        scale = max(1, -(-MIN_CELL // max(cell_h, cell_w)))
    if scale < 1:
        raise InvalidArgumentError(f"scale must be a whole number >= 1, got {scale}")
    cell_h, cell_w = cell_h * scale, cell_w * scale
    captioned = labels is not None and any(_text(label) for label in labels)
    strip = _CAPTION_HEIGHT if captioned else 0
    columns = columns or int(np.ceil(np.sqrt(len(tiles))))
    rows = -(-len(tiles) // columns)
    height = rows * (cell_h + strip + padding) + padding
    width = columns * (cell_w + padding) + padding
    canvas = np.full((height, width, 3), background, dtype=np.uint8)
    for index, tile in enumerate(tiles):
        top, left = _origin(index, columns, cell_h + strip, cell_w, padding)
        if scale > 1:
            tile = np.repeat(np.repeat(tile, scale, axis=0), scale, axis=1)
        canvas[top:top + tile.shape[0], left:left + tile.shape[1]] = tile
    if captioned:
        assert labels is not None
        canvas = _draw_captions(canvas, [_text(label) for label in labels], columns,
                                (cell_h, cell_w), strip, padding)
    return canvas


def _origin(index: int, columns: int, step_h: int, cell_w: int, padding: int) -> tuple[int, int]:
    row, column = divmod(index, columns)
    return padding + row * (step_h + padding), padding + column * (cell_w + padding)


def _text(label: Any) -> str:
    return "" if label is None else " ".join(str(label).split())


def _draw_captions(canvas: np.ndarray, texts: list[str], columns: int, cell: tuple[int, int],
                   strip: int, padding: int) -> np.ndarray:
    pil = import_optional("PIL.Image", extra="images", purpose="image grids")
    draw_module = import_optional("PIL.ImageDraw", extra="images", purpose="image grids")
    font = _font()
    picture = pil.fromarray(canvas)
    draw = draw_module.Draw(picture)
    cell_h, cell_w = cell
    for index, text in enumerate(texts):
        if not text:
            continue
        top, left = _origin(index, columns, cell_h + strip, cell_w, padding)
        fitted = _fit(draw, text, font, cell_w)
        draw.text((left + 1, top + cell_h + 1), fitted, fill=_CAPTION_INK, font=font)
    return np.asarray(picture)


def _font() -> Any:
    font_module = import_optional("PIL.ImageFont", extra="images", purpose="image grids")
    try:
        return font_module.load_default(size=11)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return font_module.load_default()


def _fit(draw: Any, text: str, font: Any, width: int) -> str:
    """``text``, cut with an ellipsis until it fits ``width`` pixels."""
    if draw.textlength(text, font=font) <= width - 2:
        return text
    while text and draw.textlength(text + "…", font=font) > width - 2:
        text = text[:-1]
    return text + "…" if text else ""


def comparison_grid(originals: Any, augmented: Any, *, labels: Sequence[Any] | None = None,
                    pairs_per_row: int | None = None, scale: int | None = None,
                    gap: int = 1, padding: int = 4) -> np.ndarray:
    """Each original beside its augmented version: one cell per pair, ``original | augmented``.

    Parameters
    ----------
    originals, augmented : ndarray or list of ndarray
        Equally many images (sizes may differ: a crop is smaller than its original).
    labels : sequence, optional
        One caption per pair (the class name).
    pairs_per_row : int, optional
        Pairs per grid row (default ``ceil(sqrt(N / 2))``: about a square picture).
    scale : int, optional
        Enlargement of each image (see :func:`image_grid`; default: at least 64 pixels).
    gap : int
        Pixels of the grey line (160) between an original and its augmented version
        (default 1); a smaller image leaves the rest of its cell white.
    padding : int
        Pixels between pairs (default 4, white).
    """
    left, right = _as_list(originals), _as_list(augmented)
    if len(left) != len(right):
        raise InvalidArgumentError(f"a comparison grid needs as many augmented images as originals: "
                                   f"{len(left)} originals, {len(right)} augmented")
    if not left:
        raise InvalidArgumentError("a comparison grid needs at least one image, got none")
    largest = max(max(t.shape[:2]) for t in left + right)
    scale = scale or max(1, -(-MIN_CELL // largest))
    pairs = []
    for original, changed in zip(left, right):
        pair = image_grid([original, changed], columns=2, scale=scale, padding=gap, background=255)
        if gap:
            pair = pair[gap:-gap, gap:-gap]  # the frame comes from the outer grid's padding
            middle = pair.shape[1] // 2
            pair[:, middle - gap // 2:middle - gap // 2 + gap] = 160  # the grey line between them
        pairs.append(pair)
    if pairs_per_row is None:
        pairs_per_row = max(1, int(np.ceil(np.sqrt(len(pairs) / 2))))
    return image_grid(pairs, labels=labels, columns=pairs_per_row, scale=1, padding=padding)


#: the PNG text chunk that marks a picture datakiln wrote (so it may replace it again)
PNG_MARK_KEY = "Software"


def to_png(image: Any, *, mark: bool = False) -> bytes:
    """``image`` (see :func:`to_uint8_rgb`) encoded as PNG bytes (Pillow, lossless).

    With ``mark`` the PNG carries a ``Software: datakiln <version>`` text chunk, by which
    :func:`is_own_png` recognises it as datakiln's own output (replaced without
    ``overwrite``, like datakiln's other outputs).
    """
    pil = import_optional("PIL.Image", extra="images", purpose="PNG image grids")
    info = None
    if mark:
        from datakiln import __version__

        info = import_optional("PIL.PngImagePlugin", extra="images").PngInfo()
        info.add_text(PNG_MARK_KEY, f"datakiln {__version__}")
    buffer = io.BytesIO()
    pil.fromarray(to_uint8_rgb(image)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def is_own_png(path: Any) -> bool:
    """Whether ``path`` is a PNG that datakiln wrote (:func:`to_png` with ``mark=True``);
    unreadable files and other images are not."""
    pil = import_optional("PIL.Image", extra="images", purpose="PNG image grids")
    try:
        with pil.open(path) as picture:
            if picture.format != "PNG":
                return False
            text = str(getattr(picture, "text", {}).get(PNG_MARK_KEY, ""))
    except Exception:  # not an image, unreadable: not ours
        return False
    return text.startswith("datakiln")


def html_figure(image: Any, *, caption: str | None = None, alt: str | None = None,
                max_width: int | None = None) -> str:
    """An HTML ``<figure>`` embedding ``image`` as a PNG data URI (no file, no network).

    Parameters
    ----------
    image : ndarray or bytes
        A grid from :func:`image_grid` / :func:`comparison_grid` (any image
        :func:`to_uint8_rgb` accepts), or PNG bytes already encoded.
    caption : str, optional
        Shown under the picture (HTML-escaped).
    alt : str, optional
        The ``alt`` text (default: the caption).
    max_width : int, optional
        CSS pixel width limit; the picture keeps its aspect ratio and is drawn with crisp
        (nearest-neighbour) pixels when enlarged.

    >>> fragment = html_figure(comparison_grid(real, generated), caption="real | generated")  # doctest: +SKIP
    """
    png = image if isinstance(image, bytes | bytearray) else to_png(image)
    if not bytes(png[:8]) == b"\x89PNG\r\n\x1a\n":
        raise InvalidArgumentError("html_figure takes an image array or PNG bytes; the bytes given are "
                                   "not a PNG file")
    uri = "data:image/png;base64," + base64.b64encode(bytes(png)).decode("ascii")
    style = "image-rendering:pixelated;max-width:100%"
    if max_width is not None:
        style += f";width:{int(max_width)}px"
    text = caption or ""
    figcaption = f"<figcaption class=\"small muted\">{html.escape(text)}</figcaption>" if text else ""
    return (f'<figure class="image-grid"><img src="{uri}" alt="{html.escape(alt or text)}" '
            f'style="{style}">{figcaption}</figure>')
