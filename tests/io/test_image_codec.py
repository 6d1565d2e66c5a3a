"""Image decoding: modes, EXIF, truncation, CMYK, palettes, 16-bit, bombs, DCT scaling."""

from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps
from tests.conftest import sample_dataset

from datakiln.errors import DatakilnError, ImageDecodeError, InvalidArgumentError
from datakiln.io.image_codec import decode, decode_batch, encode_png, exif_orientation


def _photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth colour gradients plus mild noise: compresses like a photograph."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    base = np.stack([128 + 100 * np.sin(x / 17 + seed), 128 + 90 * np.cos(y / 23),
                     128 + 80 * np.sin((x + y) / 31)], axis=2)
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


def _encode(image: np.ndarray | Image.Image, fmt: str, **options: object) -> bytes:
    pil = image if isinstance(image, Image.Image) else Image.fromarray(image)
    buffer = io.BytesIO()
    pil.save(buffer, fmt, **options)
    return buffer.getvalue()


def _pillow(data: bytes, mode: str) -> np.ndarray:
    values = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert(mode))
    return values[:, :, None] if values.ndim == 2 else values


PHOTO = _photo(48, 64)
JPEG = _encode(PHOTO, "JPEG", quality=92)


# -- modes -------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode, channels", [("RGB", 3), ("L", 1), ("RGBA", 4)])
def test_jpeg_modes_match_pillow(mode: str, channels: int) -> None:
    image = decode(JPEG, mode=mode)
    assert image.shape == (48, 64, channels) and image.dtype == np.uint8
    reference = _pillow(JPEG, mode)
    assert np.abs(image.astype(int) - reference).max() <= 1  # same libjpeg-turbo underneath
    if mode == "RGBA":
        assert (image[:, :, 3] == 255).all()


def test_png_round_trips_exactly_in_each_mode() -> None:
    assert np.array_equal(decode(_encode(PHOTO, "PNG")), PHOTO)
    grey = PHOTO[:, :, 0]
    rgb = decode(_encode(grey, "PNG"), mode="RGB")
    assert rgb.shape == (48, 64, 3) and all(np.array_equal(rgb[:, :, c], grey) for c in range(3))
    rgba = np.dstack([PHOTO, np.full(PHOTO.shape[:2], 77, np.uint8)])
    data = _encode(rgba, "PNG")
    assert np.array_equal(decode(data, mode="RGBA"), rgba)
    assert np.array_equal(decode(data, mode="RGB"), PHOTO)  # alpha dropped, colours kept


@pytest.mark.parametrize("fmt", ["BMP", "GIF", "TIFF", "WEBP"])
def test_other_formats_through_pillow(fmt: str) -> None:
    data = _encode(PHOTO, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    assert np.array_equal(decode(data), _pillow(data, "RGB"))


def test_palette_with_and_without_transparency() -> None:
    palette = Image.fromarray(PHOTO).quantize(16)
    plain = _encode(palette, "PNG")
    assert np.array_equal(decode(plain), _pillow(plain, "RGB"))
    palette.info["transparency"] = 0
    clear = _encode(palette, "PNG", transparency=0)
    rgba = decode(clear, mode="RGBA")
    reference = np.asarray(Image.open(io.BytesIO(clear)).convert("RGBA"))
    assert np.array_equal(rgba, reference)
    assert (rgba[:, :, 3] == 0).any() and (rgba[:, :, 3] == 255).any()
    assert np.array_equal(decode(clear, mode="RGB"), reference[:, :, :3])


def test_cmyk_jpeg_is_converted_like_pillow() -> None:
    data = _encode(Image.fromarray(PHOTO).convert("CMYK"), "JPEG", quality=95)
    image = decode(data)
    assert image.shape == (48, 64, 3)
    assert np.array_equal(image, _pillow(data, "RGB"))
    assert np.abs(image.astype(int) - PHOTO).mean() < 4  # and close to the original colours


def test_raw_pixels_and_hugging_face_structs(tmp_path) -> None:
    digits = np.arange(28 * 28, dtype=np.uint8).reshape(28, 28)
    assert np.array_equal(decode(digits, mode="L")[:, :, 0], digits)
    assert np.array_equal(decode(digits, mode="RGB")[:, :, 2], digits)
    assert np.array_equal(decode({"bytes": JPEG, "path": "x.jpg"}), decode(JPEG))
    (tmp_path / "cat.png").write_bytes(_encode(PHOTO, "PNG"))
    assert np.array_equal(decode({"bytes": None, "path": str(tmp_path / "cat.png")}), PHOTO)
    with pytest.raises(ImageDecodeError, match="missing.png"):
        decode({"bytes": None, "path": str(tmp_path / "missing.png")}, where="row 3")
    with pytest.raises(ImageDecodeError, match="neither bytes nor a path"):
        decode({"bytes": None, "path": None})


# -- EXIF --------------------------------------------------------------------------------------
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow_exif_transpose(orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _encode(PHOTO, "JPEG", quality=95, exif=exif.tobytes())
    assert exif_orientation(data) == orientation
    image = decode(data)
    reference = _pillow(data, "RGB")
    assert image.shape == reference.shape == ((48, 64, 3) if orientation <= 4 else (64, 48, 3))
    assert np.array_equal(image, reference)
    batch = decode_batch([data, JPEG]) if orientation <= 4 else decode_batch([data, data])
    assert np.array_equal(batch[0], reference)


def test_exif_after_a_large_icc_segment_is_still_found() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    icc = bytes(range(256)) * 40  # a 10 KB APP2 segment before the EXIF one
    data = _encode(PHOTO, "JPEG", exif=exif.tobytes(), icc_profile=icc)
    assert exif_orientation(data) == 6
    assert decode(data).shape == (64, 48, 3)


# -- strictness --------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_files_are_errors_not_grey(fmt: str) -> None:
    data = _encode(PHOTO, fmt)
    with pytest.raises(ImageDecodeError, match=r"cat\.dat.*(truncated|cut short)"):
        decode(data[: len(data) * 2 // 3], where="cat.dat")
    with pytest.raises(ImageDecodeError, match="cat.dat"):
        decode_batch([data, data[: len(data) // 2]], where=["ok.dat", "cat.dat"])


def test_garbage_and_empty_inputs() -> None:
    with pytest.raises(ImageDecodeError, match="notes.txt"):
        decode(b"hello, this is text", where="notes.txt")
    with pytest.raises(ImageDecodeError):
        decode(b"")
    with pytest.raises(ImageDecodeError, match="missing"):
        decode(None, where="row 9")
    with pytest.raises(ImageDecodeError, match="corrupt JPEG header"):
        decode(b"\xff\xd8\xff\xe0" + b"\x00" * 40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(min_value=0, max_value=len(JPEG) - 3), flip=st.integers(0, 255))
def test_damaged_jpegs_raise_only_image_decode_errors(cut: int, flip: int) -> None:
    damaged = bytearray(JPEG[:cut + 3])
    damaged[len(damaged) // 2] ^= flip
    try:
        image = decode(bytes(damaged))
    except ImageDecodeError:
        return
    assert image.shape == (48, 64, 3)  # only a flip inside the pixels can leave it decodable


# -- 16-bit, float ---------------------------------------------------------------------------------
def test_sixteen_bit_png_and_tiff_are_scaled_to_eight_bits() -> None:
    levels = np.array([[0, 256, 257, 32896], [65535, 1000, 65280, 128]], dtype=np.uint16)
    expected = np.round(levels / 257).astype(np.uint8)
    for fmt in ("PNG", "TIFF"):
        data = _encode(Image.fromarray(levels), fmt)
        assert np.array_equal(decode(data, mode="L")[:, :, 0], expected)
        assert np.array_equal(decode(data, mode="RGB")[:, :, 1], expected)


def test_float_tiff_is_refused_with_the_fix() -> None:
    data = _encode(Image.fromarray(np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4)), "TIFF")
    with pytest.raises(ImageDecodeError, match="float.*convert the image to 8 or 16 bits"):
        decode(data, where="depth.tif")


# -- bombs -------------------------------------------------------------------------------------
def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) \
        + chunk(b"IEND", b"")


def test_decompression_bombs_are_refused_before_decoding() -> None:
    started = time.perf_counter()
    with pytest.raises(ImageDecodeError, match=r"bomb.png.*100000×100000.*pixel limit"):
        decode(_png_header_only(100_000, 100_000), where="bomb.png")
    assert time.perf_counter() - started < 0.5  # nothing was allocated for 10 gigapixels
    with pytest.raises(ImageDecodeError, match="over the limit of 1,000"):
        decode(JPEG, max_pixels=1000)
    with pytest.raises(ImageDecodeError, match="over the limit"):
        decode_batch([JPEG], max_pixels=1000)


# -- sizes and DCT scaling -----------------------------------------------------------------------
def test_dct_scaled_decode_matches_pillow_reduce() -> None:
    big = _photo(256, 320, seed=3)
    data = _encode(big, "JPEG", quality=90)
    scaled = decode(data, size=(64, 80))  # 1/4 in the DCT domain, no resize left to do
    reference = np.asarray(Image.open(io.BytesIO(data)).convert("RGB").reduce(4))
    difference = np.abs(scaled.astype(int) - reference.astype(int))
    assert scaled.shape == (64, 80, 3)
    assert difference.mean() < 2.0 and np.percentile(difference, 99) <= 8
    batch = decode_batch([data, data], size=(64, 80))
    assert np.array_equal(batch[0], scaled) and np.array_equal(batch[1], scaled)
    odd = decode(data, size=(50, 70))  # DCT 1/4 then an antialiased resize
    resized = np.asarray(Image.open(io.BytesIO(data)).convert("RGB").resize((70, 50), Image.BILINEAR))
    assert odd.shape == (50, 70, 3) and np.abs(odd.astype(int) - resized).mean() < 2.5


def test_decode_batch_shapes_and_out_buffer() -> None:
    small = _encode(_photo(32, 32, 1), "JPEG")
    batch = decode_batch([JPEG, JPEG, _encode(PHOTO, "PNG")])
    assert isinstance(batch, np.ndarray) and batch.shape == (3, 48, 64, 3)
    assert np.array_equal(batch[0], decode(JPEG)) and np.array_equal(batch[2], PHOTO)
    mixed = decode_batch([JPEG, small])
    assert isinstance(mixed, list) and [m.shape for m in mixed] == [(48, 64, 3), (32, 32, 3)]
    resized = decode_batch([JPEG, small], size=16, mode="L")
    assert resized.shape == (2, 16, 16, 1)
    assert decode_batch([]) == []


def test_real_cifar_jpegs_decode_like_pillow() -> None:
    folder = sample_dataset("cifar10_jpg_subset/train")
    files = sorted(folder.glob("*/*.jpg"))
    assert files
    batch = decode_batch([f.read_bytes() for f in files])
    assert batch.shape == (len(files), 32, 32, 3)
    for image, path in zip(batch, files):
        assert np.array_equal(image, _pillow(path.read_bytes(), "RGB"))


# -- encoding and arguments --------------------------------------------------------------------
def test_encode_png_round_trip_and_refusals() -> None:
    for image in (PHOTO, PHOTO[:, :, :1], PHOTO[:, :, 0], np.dstack([PHOTO, PHOTO[:, :, :1]])):
        data = encode_png(image)
        assert data.startswith(b"\x89PNG")
        decoded = np.asarray(Image.open(io.BytesIO(data)))
        assert np.array_equal(decoded.reshape(image.shape), image)
    with pytest.raises(InvalidArgumentError, match="uint8"):
        encode_png(PHOTO.astype(np.float32))
    with pytest.raises(InvalidArgumentError, match="shape"):
        encode_png(np.zeros((4, 4, 2), np.uint8))


def test_bad_arguments_are_datakiln_errors() -> None:
    with pytest.raises(InvalidArgumentError, match="mode"):
        decode(JPEG, mode="CMYK")
    with pytest.raises(InvalidArgumentError, match="size"):
        decode(JPEG, size=(0, 3))
    with pytest.raises(DatakilnError):
        decode(JPEG, size=(1, 2, 3))


@settings(max_examples=150, deadline=None)
@given(body=st.binary(max_size=300))
def test_exif_walk_never_fails_on_arbitrary_segments(body: bytes) -> None:
    app1 = b"\xff\xd8\xff\xe1"
    for data in (b"\xff\xd8" + body, app1 + body, app1 + b"\x00\x20Exif\x00\x00" + body):
        assert 1 <= exif_orientation(data) <= 8
        assert 1 <= exif_orientation(np.frombuffer(data, np.uint8)) <= 8
