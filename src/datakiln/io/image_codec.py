"""Decode encoded images to ``H×W×C`` uint8 arrays, strictly, and encode PNGs.

JPEG goes through ``simplejpeg`` (libjpeg-turbo): it releases the GIL, so the loader's
threads decode in parallel, it writes into a buffer we give it (no copy into the batch),
and it scales in the DCT domain (1/2 … 1/8) when the requested size is much smaller than
the image, which skips most of the inverse DCT. Everything else (PNG, WebP, BMP, GIF,
TIFF, CMYK JPEGs, and JPEGs simplejpeg refuses) goes through Pillow. Hand-written here:
only the EXIF orientation lookup for JPEGs (a few bytes read from the APP1 segment, so
the common case never builds a Pillow image) and the 16-bit → 8-bit rounding (Pillow's
``convert("L")`` clips 16-bit values instead of scaling them).

Decoding is strict: a truncated or corrupt file is an :class:`~datakiln.errors.ImageDecodeError`
naming it, never a partly grey image; an image over the pixel limit is refused before its
pixels are decoded (decompression bombs).

>>> image = decode(jpeg_bytes, mode="RGB", size=(224, 224), where="cat.jpg")  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import io
import struct
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from datakiln._optional import import_optional
from datakiln.errors import ImageDecodeError, InvalidArgumentError
from datakiln.io._image_probe import DEFAULT_MAX_PIXELS, probe, sniff_format

__all__ = ["MAX_PIXELS", "MODES", "decode", "decode_batch", "encode_png", "is_jpeg"]

#: output channels by mode
MODES = {"RGB": 3, "L": 1, "RGBA": 4}
#: images with more pixels are refused (Pillow's own warning threshold, about 89 megapixels)
MAX_PIXELS = DEFAULT_MAX_PIXELS
_SIMPLEJPEG_SPACE = {"RGB": "RGB", "L": "GRAY", "RGBA": "RGBA"}
_SKIP_HINT = "fix or remove the file, or leave the row out of the dataset"


@functools.cache
def _simplejpeg() -> Any:
    return import_optional("simplejpeg", extra="images", purpose="JPEG decoding")


@functools.cache
def _pillow() -> Any:
    return import_optional("PIL.Image", extra="images", purpose="image decoding")


def is_jpeg(data: Any) -> bool:
    """True when ``data`` starts with the JPEG start-of-image marker."""
    head = bytes(memoryview(data)[:3])
    return head == b"\xff\xd8\xff"


def _check_mode(mode: str) -> int:
    if mode not in MODES:
        raise InvalidArgumentError(f"image mode must be one of {sorted(MODES)}, got {mode!r}")
    return MODES[mode]


def _size(size: int | Sequence[int] | None) -> tuple[int, int] | None:
    """``(height, width)`` from an int (a square) or a pair; None stays None."""
    if size is None:
        return None
    pair = (int(size), int(size)) if isinstance(size, (int, np.integer)) else tuple(int(s) for s in size)
    if len(pair) != 2 or min(pair) <= 0:
        raise InvalidArgumentError(f"an image size is a positive int or (height, width), got {size!r}")
    return pair  # type: ignore[return-value]


def _label(where: Any) -> str:
    return str(where) if where else "image"


class _Name:
    """Item ``i`` of ``names``, looked up only when an error message needs it."""

    __slots__ = ("i", "names")

    def __init__(self, names: Sequence[Any], i: int) -> None:
        self.names, self.i = names, i

    def __str__(self) -> str:
        return str(self.names[self.i])


# -- inputs ----------------------------------------------------------------------------------
def _read_path(path: str, where: str | None) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise ImageDecodeError(f"{_label(where)}: the image struct has no bytes and its path {path!r} "
                               f"cannot be read ({error.strerror}); {_SKIP_HINT}") from None


def _encoded(data: Any, where: str | None) -> Any:
    """The encoded bytes of one value: bytes-like, or a ``{bytes, path}`` struct (Hugging Face)."""
    if isinstance(data, Mapping):
        payload = data.get("bytes")
        if payload is None:
            path = data.get("path")
            if not path:
                raise ImageDecodeError(f"{_label(where)}: the image struct has neither bytes nor a "
                                       f"path; {_SKIP_HINT}")
            return _read_path(str(path), where)
        return payload
    if data is None:
        raise ImageDecodeError(f"{_label(where)}: the image is missing (null); {_SKIP_HINT}")
    return data


# -- EXIF orientation --------------------------------------------------------------------------
def exif_orientation(data: Any) -> int:
    """The EXIF orientation (1..8, 1 = upright) of a JPEG, read from its APP1 segment."""
    view = data if isinstance(data, bytes) else bytes(memoryview(data)[:_HEAD])
    if len(view) < _HEAD and b"Exif\x00\x00" not in view:  # the whole file, without EXIF
        return 1
    if len(view) == _HEAD:  # the segments before the pixels nearly always fit the head
        orientation = _walk_markers(view)
        return orientation if orientation is not None else _walk_markers(bytes(memoryview(data))) or 1
    return _walk_markers(view) or 1


#: bytes of a JPEG copied to look for its EXIF segment (APPn segments come first)
_HEAD = 4096


def _walk_markers(view: bytes) -> int | None:
    """The orientation from the markers in ``view``; None when they run past its end."""
    n, pos = len(view), 2
    try:
        while pos + 4 <= n and view[pos] == 0xFF:
            marker = view[pos + 1]
            if marker == 0xDA or marker == 0xD9:  # start of scan / end: no EXIF before the pixels
                return 1
            length = struct.unpack_from(">H", view, pos + 2)[0]
            if marker == 0xE1 and bytes(view[pos + 4:pos + 10]) == b"Exif\x00\x00":
                return _tiff_orientation(view, pos + 10)
            pos += 2 + length
    except (struct.error, IndexError):
        return None
    return None if pos + 4 > n else 1


def _tiff_orientation(view: Any, start: int) -> int:
    order = bytes(view[start:start + 2])
    endian = "<" if order == b"II" else ">" if order == b"MM" else None
    if endian is None:
        return 1
    ifd = start + struct.unpack_from(endian + "I", view, start + 4)[0]
    count = struct.unpack_from(endian + "H", view, ifd)[0]
    for entry in range(count):
        place = ifd + 2 + 12 * entry
        if struct.unpack_from(endian + "H", view, place)[0] == 0x0112:
            value = struct.unpack_from(endian + "H", view, place + 8)[0]
            return value if 1 <= value <= 8 else 1
    return 1


def orient(image: np.ndarray, orientation: int) -> np.ndarray:
    """``image`` (``H×W×C``) turned upright for an EXIF ``orientation`` (as Pillow's
    ``ImageOps.exif_transpose``)."""
    if orientation == 2:
        return image[:, ::-1]
    if orientation == 3:
        return image[::-1, ::-1]
    if orientation == 4:
        return image[::-1]
    if orientation == 5:
        return image.transpose(1, 0, 2)
    if orientation == 6:
        return np.rot90(image, -1)
    if orientation == 7:
        return image[::-1, ::-1].transpose(1, 0, 2)
    if orientation == 8:
        return np.rot90(image, 1)
    return image


# -- JPEG (simplejpeg) -------------------------------------------------------------------------
def _check_pixels(height: int, width: int, limit: int, where: str | None) -> None:
    if height * width > limit:
        raise ImageDecodeError(
            f"{_label(where)}: {width}×{height} = {height * width:,} pixels is over the limit of "
            f"{limit:,} (a decompression bomb, or an image far larger than training needs); "
            "downscale it first or raise max_pixels")


def jpeg_header(data: Any, where: str | None) -> tuple[int, int, str]:
    """``(height, width, colorspace)`` of a JPEG; a corrupt header is an ImageDecodeError."""
    try:
        height, width, space, _ = _simplejpeg().decode_jpeg_header(data)
    except ValueError as error:
        raise ImageDecodeError(f"{_label(where)}: corrupt JPEG header ({error}); {_SKIP_HINT}") from None
    return height, width, space


def _decode_jpeg(data: Any, mode: str, size: tuple[int, int] | None, where: str | None,
                 limit: int, out: np.ndarray | None) -> np.ndarray | None:
    """The JPEG decoded by simplejpeg, or None when Pillow must do it (CMYK, YCCK)."""
    height, width, space = jpeg_header(data, where)
    _check_pixels(height, width, limit, where)
    if space in ("CMYK", "YCCK"):
        return None
    orientation = exif_orientation(data)
    low_h, low_w = (0, 0) if size is None else (size if orientation <= 4 else size[::-1])
    scaled = size is not None and (height >= 2 * low_h and width >= 2 * low_w)
    use_out = out is not None and orientation == 1 and (
        (size is None and out.shape[:2] == (height, width))
        or (scaled and _scaled_shape(height, width, low_h, low_w) == out.shape[:2]))
    try:
        image = _simplejpeg().decode_jpeg(
            data, colorspace=_SIMPLEJPEG_SPACE[mode], strict=True,
            min_height=low_h if scaled else 0, min_width=low_w if scaled else 0,
            buffer=out if use_out else None)
    except ValueError as error:
        raise ImageDecodeError(
            f"{_label(where)}: corrupt or truncated JPEG ({error}); {_SKIP_HINT}") from None
    return orient(image, orientation)


def _scaled_shape(height: int, width: int, low_h: int, low_w: int) -> tuple[int, int]:
    """The size libjpeg-turbo's DCT scaling gives: the smallest ``k/8`` scale keeping both
    sides at least ``(low_h, low_w)`` (sides rounded up)."""
    for eighths in range(1, 9):
        h, w = -(-height * eighths // 8), -(-width * eighths // 8)
        if h >= low_h and w >= low_w:
            return h, w
    return height, width


# -- everything else (Pillow) ----------------------------------------------------------------
def _decode_pillow(data: Any, mode: str, size: tuple[int, int] | None, where: str | None,
                   limit: int) -> np.ndarray:
    Image = _pillow()
    from PIL import ImageOps

    if sniff_format(data) is not None:  # refuse bombs from the header, before Pillow allocates
        probe(data, where=_label(where), max_pixels=limit, check_truncation=False)
    try:
        with Image.open(io.BytesIO(data)) as opened:
            width, height = opened.size
            _check_pixels(height, width, limit, where)
            if size is not None and opened.format == "JPEG":
                opened.draft(opened.mode, (size[1], size[0]))  # DCT scaling for CMYK JPEGs too
            opened.load()
            upright = ImageOps.exif_transpose(opened)
            return _pillow_array(upright, mode, where)
    except ImageDecodeError:
        raise
    except Image.DecompressionBombError as error:
        raise ImageDecodeError(f"{_label(where)}: {error}; downscale it first") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError) as error:
        kind = "not an image datakiln can read" if "cannot identify" in str(error) else "corrupt or truncated"
        raise ImageDecodeError(f"{_label(where)}: {kind} ({error}); {_SKIP_HINT}") from None


def _sixteen_to_eight(values: np.ndarray) -> np.ndarray:
    """16-bit levels 0..65535 to 8-bit 0..255, rounded to nearest (65535 → 255, 257 → 1)."""
    return ((values.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _pillow_array(image: Any, mode: str, where: str | None) -> np.ndarray:
    """A Pillow image as ``H×W×C`` uint8 in ``mode`` (16-bit scaled, palettes expanded)."""
    source = image.mode
    if source.startswith("I;16") or source == "I":
        values = np.asarray(image)
        if source == "I" and values.size and (values.min() < 0 or values.max() > 65535):
            raise ImageDecodeError(f"{_label(where)}: 32-bit integer pixels (range {values.min()}.."
                                   f"{values.max()}) have no 8-bit meaning; convert the image to "
                                   "8 or 16 bits first")
        return from_pixels(_sixteen_to_eight(values), mode)
    if source == "F":
        raise ImageDecodeError(f"{_label(where)}: 32-bit float pixels have no fixed 8-bit scale; "
                               "convert the image to 8 or 16 bits first")
    if source in ("P", "PA") and ("transparency" in image.info or source == "PA"):
        image = image.convert("RGBA")
    if image.mode != mode:
        image = image.convert(mode)
    values = np.asarray(image)
    return values[:, :, None] if values.ndim == 2 else values


def from_pixels(values: np.ndarray, mode: str, *, batch: bool = False) -> np.ndarray:
    """Raw uint8 pixels (``H×W``, ``H×W×1``, ``H×W×3`` or ``H×W×4``; with ``batch``, a
    leading ``N`` axis) in ``mode`` (grey is repeated into colour; colour to grey with
    ITU-R 601-2 luma, as Pillow)."""
    channels = _check_mode(mode)
    if values.dtype != np.uint8:
        raise InvalidArgumentError(f"raw image pixels must be uint8, got {values.dtype}")
    if values.ndim == (3 if batch else 2):
        values = values[..., None]
    have = values.shape[-1]
    if have == channels:
        return values
    opaque = np.full(values.shape[:-1] + (1,), 255, np.uint8)
    if have == 1:
        if channels == 1:
            return values
        colour = np.repeat(values, 3, axis=-1)
        return colour if channels == 3 else np.concatenate([colour, opaque], axis=-1)
    rgb = values[..., :3]
    if channels == 3:
        return rgb
    if channels == 4:
        return np.concatenate([rgb, opaque], axis=-1)
    luma = rgb.astype(np.uint32) @ np.array([19595, 38470, 7471], dtype=np.uint32)
    return ((luma + 32768) >> 16).astype(np.uint8)[..., None]


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` resized to ``size`` (height, width) with Pillow's antialiased bilinear
    filter (its C code releases the GIL)."""
    if image.shape[:2] == size:
        return image
    Image = _pillow()
    grey = image.shape[2] == 1
    pil = Image.fromarray(np.ascontiguousarray(image[:, :, 0] if grey else image))
    out = np.asarray(pil.resize((size[1], size[0]), Image.BILINEAR, reducing_gap=3.0))
    return out[:, :, None] if grey else out


# -- public API ------------------------------------------------------------------------------
def decode(data: Any, *, mode: str = "RGB", size: int | Sequence[int] | None = None,
           where: str | None = None, max_pixels: int = MAX_PIXELS,
           out: np.ndarray | None = None) -> np.ndarray:
    """Decode one image to an ``H×W×C`` uint8 array.

    Parameters
    ----------
    data : bytes-like, ``{"bytes", "path"}`` mapping, or uint8 ndarray
        Encoded bytes (JPEG, PNG, WebP, BMP, GIF, TIFF), a Hugging Face image struct (its
        ``path`` is read when ``bytes`` is null), or raw pixels (``H×W`` or ``H×W×C``, as
        IDX files hold them: only the mode and size are applied).
    mode : {"RGB", "L", "RGBA"}
        Output channels (3, 1 or 4). Grey, palette, CMYK, RGBA, 16-bit … are converted.
    size : int or (height, width), optional
        Resize to exactly this size (antialiased bilinear). JPEGs at least twice as large
        are first scaled down in the DCT domain (simplejpeg's ``min_height/min_width``,
        Pillow's ``draft``). Default: the image's own size.
    where : str, optional
        Names the image (file path, row) in error messages.
    max_pixels : int
        Images with more pixels are refused before their pixels are decoded
        (default :data:`MAX_PIXELS`).
    out : ndarray, optional
        An ``H×W×C`` uint8 buffer to decode into where the decoder can (JPEG at the final
        size); the result is always returned (``out`` itself, or a new array).

    Raises
    ------
    ImageDecodeError
        Corrupt, truncated or unsupported data, or an image over ``max_pixels``.
    """
    channels = _check_mode(mode)
    target = _size(size)
    if isinstance(data, np.ndarray) and data.ndim >= 2:
        image = from_pixels(data, mode)
    else:
        payload = _encoded(data, where)
        image = None
        if is_jpeg(payload):
            image = _decode_jpeg(payload, mode, target, where, max_pixels, out)
        if image is None:
            image = _decode_pillow(payload, mode, target, where, max_pixels)
    if image.shape[2] != channels:  # pragma: no cover - every path converts to the mode
        image = from_pixels(image, mode)
    if target is not None:
        image = resize(image, target)
    if out is not None and image is not out and not np.shares_memory(image, out):
        out[...] = image
        return out
    return image


def decode_batch(items: Sequence[Any], *, mode: str = "RGB", size: int | Sequence[int] | None = None,
                 where: Sequence[str | None] | None = None, max_pixels: int = MAX_PIXELS
                 ) -> np.ndarray | list[np.ndarray]:
    """Decode many images on the calling thread.

    Returns one ``N×H×W×C`` uint8 array when they share a size (always with ``size``),
    else a list of ``H×W×C`` arrays. Upright JPEGs whose decoded size is the batch's
    (their own, or the DCT-scaled ``size``) are decoded straight into the batch array
    with one header read each; the rest go through :func:`decode`. ``where`` names each
    item in error messages (default ``"item i"``).
    """
    channels = _check_mode(mode)
    target = _size(size)
    names: Sequence[str | None] = where if where is not None else [f"item {i}" for i in range(len(items))]
    plans = [_plan(item, target, _Name(names, i), max_pixels) for i, item in enumerate(items)]
    shape = target
    if shape is None and plans and all(p is not None for p in plans):
        shapes = {p[:2] for p in plans}  # type: ignore[index]
        shape = shapes.pop() if len(shapes) == 1 else None
    if shape is None:
        images = [decode(item, mode=mode, where=_Name(names, i), max_pixels=max_pixels)
                  for i, item in enumerate(items)]
        if images and all(image.shape == images[0].shape for image in images):
            return np.stack(images)
        return images
    out = np.empty((len(items), shape[0], shape[1], channels), dtype=np.uint8)
    jpeg = _simplejpeg().decode_jpeg
    space = _SIMPLEJPEG_SPACE[mode]
    for i, item in enumerate(items):
        plan = plans[i]
        if plan is None or plan[:2] != shape:
            decode(item, mode=mode, size=target, where=_Name(names, i), max_pixels=max_pixels,
                   out=out[i])
            continue
        try:
            jpeg(item, colorspace=space, strict=True, min_height=plan[2], min_width=plan[3], buffer=out[i])
        except ValueError as error:
            raise ImageDecodeError(f"{_label(names[i])}: corrupt or truncated JPEG ({error}); "
                                   f"{_SKIP_HINT}") from None
    return out


def _plan(item: Any, target: tuple[int, int] | None, name: _Name,
          limit: int) -> tuple[int, int, int, int] | None:
    """For an upright RGB/grey JPEG given as bytes: ``(height, width)`` it decodes to (DCT
    scaled towards ``target`` when at least twice as large) and the ``min_height,
    min_width`` to ask for; None for anything else (decoded by :func:`decode`)."""
    if isinstance(item, (Mapping, np.ndarray)) and not (isinstance(item, np.ndarray) and item.ndim == 1):
        return None
    if item is None or not is_jpeg(item):
        return None
    height, width, space = jpeg_header(item, name)
    _check_pixels(height, width, limit, name)
    if space in ("CMYK", "YCCK") or exif_orientation(item) != 1:
        return None
    if target is None:
        return height, width, 0, 0
    if height >= 2 * target[0] and width >= 2 * target[1]:
        return _scaled_shape(height, width, *target) + target
    return height, width, 0, 0


def encode_png(image: np.ndarray, *, compress_level: int = 6) -> bytes:
    """PNG bytes of a uint8 image (``H×W``, ``H×W×1``, ``H×W×3`` or ``H×W×4``)."""
    Image = _pillow()
    values = np.asarray(image)
    if values.dtype != np.uint8:
        raise InvalidArgumentError(f"encode_png needs uint8 pixels, got {values.dtype} (scale and "
                                   "clip floats to 0..255 first)")
    if values.ndim == 3 and values.shape[2] == 1:
        values = values[:, :, 0]
    if values.ndim not in (2, 3) or (values.ndim == 3 and values.shape[2] not in (3, 4)):
        raise InvalidArgumentError(f"encode_png needs H×W or H×W×C with C in 1, 3, 4; got shape "
                                   f"{values.shape}")
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(values)).save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()
