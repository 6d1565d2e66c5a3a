"""Image folders as a source (``read_images``), the header probe, and the ``image`` kind."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from tests.conftest import sample_dataset, shared_dataset

import datakiln
from datakiln.errors import ImageDecodeError, SchemaError, SourceNotFoundError
from datakiln.io._image_probe import DEFAULT_MAX_PIXELS, probe, sniff_format
from datakiln.schema import infer_schema

CLASSES = ["airplane", "cat", "ship"]


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _pixels(seed: int = 0, size: tuple[int, int] = (24, 40)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (*size, 3), dtype=np.uint8)


@pytest.fixture
def cifar_sample() -> Path:
    return Path(sample_dataset("images/cifar"))


# -- probe ------------------------------------------------------------------------------

@pytest.mark.parametrize(("fmt", "mode", "options", "expected"), [
    ("JPEG", "RGB", {"quality": 90}, ("JPEG", "RGB", 8)),
    ("JPEG", "RGB", {"progressive": True}, ("JPEG", "RGB", 8)),
    ("JPEG", "L", {}, ("JPEG", "L", 8)),
    ("JPEG", "CMYK", {}, ("JPEG", "CMYK", 8)),
    ("PNG", "RGB", {}, ("PNG", "RGB", 8)),
    ("PNG", "RGBA", {}, ("PNG", "RGBA", 8)),
    ("PNG", "P", {}, ("PNG", "P", 8)),
    ("PNG", "LA", {}, ("PNG", "LA", 8)),
    ("GIF", "P", {}, ("GIF", "P", 8)),
    ("BMP", "RGB", {}, ("BMP", "RGB", 8)),
    ("WEBP", "RGB", {}, ("WEBP", "RGB", 8)),
    ("TIFF", "RGB", {}, ("TIFF", "RGB", 8)),
    ("TIFF", "CMYK", {}, ("TIFF", "CMYK", 8)),
])
def test_probe_reads_size_mode_and_depth_like_pillow(fmt, mode, options, expected):
    image = Image.fromarray(_pixels()).convert(mode)
    data = _encode(image, fmt, **options)
    info = probe(data, where="x")
    assert (info.format, info.mode, info.bits) == expected
    assert (info.width, info.height) == Image.open(io.BytesIO(data)).size == (40, 24)
    assert info.frames == 1 and sniff_format(data) == expected[0]


def test_probe_16_bit_png_and_tiff_report_16_bits():
    grey16 = Image.fromarray(_pixels()[..., 0].astype(np.uint16) * 257)
    for fmt in ("PNG", "TIFF"):
        info = probe(_encode(grey16, fmt), where="deep")
        assert (info.mode, info.bits, info.width, info.height) == ("L", 16, 40, 24)


def test_probe_exif_orientation_and_animation():
    image = Image.fromarray(_pixels())
    exif = image.getexif()
    exif[0x0112] = 6
    assert probe(_encode(image, "JPEG", exif=exif.tobytes()), where="r").orientation == 6
    frames = [Image.fromarray(_pixels(s)).convert("P") for s in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    assert probe(buffer.getvalue(), where="anim").frames == 3


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF"])
def test_probe_refuses_truncated_files_by_name(fmt):
    data = _encode(Image.fromarray(_pixels(size=(64, 64))).convert(
        "P" if fmt == "GIF" else "RGB"), fmt)
    with pytest.raises(ImageDecodeError, match=r"cut\.jpg: truncated"):
        probe(data[: len(data) * 2 // 3], where="cut.jpg")


def test_probe_refuses_corrupt_png_crc_and_non_images():
    data = bytearray(_encode(Image.fromarray(_pixels()), "PNG"))
    data[40] ^= 0xFF  # inside IDAT
    with pytest.raises(ImageDecodeError, match="fails its CRC"):
        probe(bytes(data), where="bad.png")
    with pytest.raises(ImageDecodeError, match=r"notes\.jpg is not an image.*74 65 78 74"):
        probe(b"text, not a picture", where="notes.jpg")
    with pytest.raises(ImageDecodeError, match="an empty file"):
        probe(b"", where="empty.png")


def test_probe_pixel_limit_refuses_a_bomb_header_without_decoding():
    # a valid PNG header announcing 100,000 x 100,000 pixels over a tiny body
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(header)) + b"IHDR" + header
    chunk += struct.pack(">I", zlib.crc32(b"IHDR" + header))
    end = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    bomb = b"\x89PNG\r\n\x1a\n" + chunk + end
    with pytest.raises(ImageDecodeError, match=r"10,000,000,000 pixels is over the pixel limit "
                                               r"of 89,478,485"):
        probe(bomb, where="bomb.png")
    assert probe(bomb, where="bomb.png", max_pixels=None).width == 100_000
    assert DEFAULT_MAX_PIXELS == Image.MAX_IMAGE_PIXELS


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600), st.sampled_from(["JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF"]))
def test_probe_never_fails_with_anything_but_image_decode_error(noise, fmt):
    """Random bytes after a real header, or a real file cut anywhere: a clear error or a
    result, never an internal exception."""
    data = _encode(Image.fromarray(_pixels(size=(8, 8))).convert(
        "P" if fmt == "GIF" else "RGB"), fmt)
    for candidate in (data[:24] + noise, data[: len(noise) % max(len(data), 1)]):
        try:
            info = probe(candidate, where="fuzz")
        except ImageDecodeError as exc:
            assert "fuzz" in str(exc)
        else:
            assert info.width > 0 and info.height > 0


# -- read_images ------------------------------------------------------------------------

def test_read_images_image_folder_layout(cifar_sample):
    ds = datakiln.read_images(cifar_sample)
    table = ds.to_arrow()
    assert table.num_rows == 60 and ds.columns == ["image", "label", "path"]
    labels = table.column("label").combine_chunks()
    assert labels.dictionary.to_pylist() == CLASSES
    assert labels.indices.to_pylist() == [0] * 20 + [1] * 20 + [2] * 20
    first = Path(table.column("path")[0].as_py())
    assert first.relative_to(cifar_sample).as_posix() == "airplane/0000.jpg"
    assert table.column("image")[0].as_py() == first.read_bytes()  # encoded bytes, not pixels
    assert ds.schema.kinds == {"image": "image", "label": "categorical", "path": "text"}
    assert ds.count() == 60 and ds.stats["bad_rows"] == 0


def test_read_images_routes_through_read_and_globs(cifar_sample):
    assert datakiln.read(cifar_sample).to_arrow().equals(datakiln.read_images(cifar_sample).to_arrow())
    cats = datakiln.read_images(str(cifar_sample / "*" / "001*.jpg")).to_arrow()
    assert cats.num_rows == 30  # 0010..0019 of three classes
    assert cats.column("label").combine_chunks().dictionary.to_pylist() == CLASSES


def test_read_images_nested_glob_takes_the_parent_folder(tmp_path):
    for shelf, kind in [("a", "red"), ("b", "red"), ("b", "blue")]:
        folder = tmp_path / shelf / kind
        folder.mkdir(parents=True)
        (folder / "x.png").write_bytes(_encode(Image.fromarray(_pixels()), "PNG"))
    table = datakiln.read_images(str(tmp_path / "**" / "*.png")).to_arrow()
    assert table.num_rows == 3
    assert table.column("label").cast(pa.string()).to_pylist() == ["red", "blue", "red"]


def test_read_images_flat_folder_with_labels_csv(tmp_path):
    for i in range(4):
        (tmp_path / f"img{i}.png").write_bytes(_encode(Image.fromarray(_pixels(i)), "PNG"))
    (tmp_path / "labels.csv").write_text("path,label\nimg0.png,dog\nimg1.png,cat\n"
                                         "img2.png,dog\nimg3.png,bird\n")
    table = datakiln.read_images(tmp_path, labels=tmp_path / "labels.csv").to_arrow()
    assert table.column("label").cast(pa.string()).to_pylist() == ["dog", "cat", "dog", "bird"]
    assert table.column("label").combine_chunks().dictionary.to_pylist() == ["bird", "cat", "dog"]
    (tmp_path / "labels.csv").write_text("path,label\nimg0.png,dog\n")
    with pytest.raises(SchemaError, match=r"img1\.png' has no label in"):
        datakiln.read_images(tmp_path, labels=tmp_path / "labels.csv")
    with pytest.raises(SchemaError, match="not in a class folder"):
        datakiln.read_images(tmp_path)
    assert datakiln.read_images(tmp_path, labels="none").columns == ["image", "path"]


def test_read_images_extensions_and_empty_folder(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "a.png").write_bytes(_encode(Image.fromarray(_pixels()), "PNG"))
    (tmp_path / "c" / "b.jpg").write_bytes(_encode(Image.fromarray(_pixels()), "JPEG"))
    (tmp_path / "c" / "notes.txt").write_text("not an image")
    assert datakiln.read_images(tmp_path).count() == 2
    assert datakiln.read_images(tmp_path, extensions=["png"]).count() == 1
    with pytest.raises(SourceNotFoundError, match="holds no image files"):
        datakiln.read_images(tmp_path, extensions=[".webp"])


@pytest.fixture
def odd_folder(tmp_path: Path) -> Path:
    """One class of good images and one of every odd kind the issue lists."""
    good, odd = tmp_path / "good", tmp_path / "odd"
    good.mkdir()
    odd.mkdir()
    image = Image.fromarray(_pixels(size=(48, 48)))
    jpeg = _encode(image, "JPEG")
    (good / "ok.jpg").write_bytes(jpeg)
    (good / "cmyk.jpg").write_bytes(_encode(image.convert("CMYK"), "JPEG"))
    (good / "palette.png").write_bytes(_encode(image.convert("P"), "PNG"))
    (good / "deep.png").write_bytes(_encode(Image.fromarray(
        _pixels()[..., 0].astype(np.uint16) * 257), "PNG"))
    exif = image.getexif()
    exif[0x0112] = 8
    (good / "rotated.jpg").write_bytes(_encode(image, "JPEG", exif=exif.tobytes()))
    (odd / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (odd / "corrupt.jpg").write_bytes(b"\xff\xd8\xff" + bytes(range(256)) * 4)
    (odd / "text.jpg").write_bytes(b"hello, I am a text file")
    (odd / "bomb.png").write_bytes(_encode(Image.new("1", (10_000, 10_000)), "PNG"))
    return tmp_path


def test_on_error_raise_names_the_file(odd_folder):
    ds = datakiln.read_images(odd_folder)
    with pytest.raises(ImageDecodeError, match=r"odd/bomb\.png: 10000×10000 = 100,000,000 pixels"):
        ds.to_arrow()
    with pytest.raises(ImageDecodeError, match=r"truncated\.jpg: truncated JPEG"):
        datakiln.read_images(odd_folder / "odd" / "truncated.jpg", labels="none").to_arrow()


def test_on_error_skip_counts_every_skipped_file_with_its_path(odd_folder):
    ds = datakiln.read_images(odd_folder, on_error="skip")
    table = ds.to_arrow()
    names = sorted(Path(p).name for p in table.column("path").to_pylist())
    assert names == ["cmyk.jpg", "deep.png", "ok.jpg", "palette.png", "rotated.jpg"]
    stats = ds.stats
    assert stats["bad_rows"] == 4
    skipped = sorted(Path(e["file"]).name for e in stats["examples"])
    assert skipped == ["bomb.png", "corrupt.jpg", "text.jpg", "truncated.jpg"]
    why = {Path(e["file"]).name: e["text"] for e in stats["examples"]}
    assert "pixel limit" in why["bomb.png"] and "truncated JPEG" in why["truncated.jpg"]
    assert "corrupt JPEG" in why["corrupt.jpg"] and "is not an image" in why["text.jpg"]
    # a second pass reports its own skips, not twice as many
    assert ds.count() == 5 and ds.stats["bad_rows"] == 4
    # the label dictionary keeps both classes even though 'odd' lost every file
    assert table.column("label").combine_chunks().dictionary.to_pylist() == ["good", "odd"]


def test_cache_of_an_image_dataset_round_trips(cifar_sample, tmp_path):
    ds = datakiln.read_images(cifar_sample)
    cached = ds.cache(tmp_path / "cifar.arrow")
    assert cached.to_arrow().equals(ds.to_arrow())
    assert cached.schema.kinds["image"] == "image"
    again = ds.cache(tmp_path / "cifar.arrow")  # same content: reused, same rows
    assert again.count() == 60


# -- the image kind ----------------------------------------------------------------------

def test_image_kind_from_magic_bytes_hf_structs_and_tensors(tmp_path):
    png = _encode(Image.fromarray(_pixels()), "PNG")
    jpeg = _encode(Image.fromarray(_pixels()), "JPEG")
    hf = pa.array([{"bytes": png, "path": "a.png"}, {"bytes": jpeg, "path": None}],
                  pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
    tensor = pa.FixedShapeTensorArray.from_numpy_ndarray(np.zeros((2, 4, 4, 1), np.uint8))
    table = pa.table({"plain": pa.array([png, jpeg]), "hf": hf, "pixels": tensor,
                      "blob": pa.array([b"\x00\x01", b"abc"])})
    pq.write_table(table, tmp_path / "t.parquet")
    kinds = datakiln.read(tmp_path / "t.parquet").schema.kinds
    assert kinds == {"plain": "image", "hf": "image", "pixels": "image", "blob": "text"}
    evidence = infer_schema(table)["plain"].evidence[0]
    assert "JPEG/PNG images (magic bytes)" in evidence


def test_consumers_refuse_or_profile_image_columns(cifar_sample):
    ds = datakiln.read_images(cifar_sample)
    profile = ds.profile()
    image = next(c for c in profile.columns if c.name == "image")
    sizes = [len(v) for v in ds.to_arrow().column("image").to_pylist()]
    assert (image.kind, image.count, image.min, image.max) == ("image", 60, min(sizes), max(sizes))
    assert image.mean == pytest.approx(np.mean(sizes))
    from datakiln.clean import Cleaner
    from datakiln.synth import GaussianCopula

    for fit in (Cleaner().fit, GaussianCopula().fit):
        with pytest.raises(SchemaError, match="'image' holds images or other binary values: "
                                              "select the other columns"):
            fit(ds)
    assert GaussianCopula(seed=0).fit(ds.select(["label"])).sample(5).num_rows == 5


def test_read_all_of_the_shared_cifar_train_folder():
    table = datakiln.read_images(shared_dataset("cifar10_jpg_subset/train")).to_arrow()
    assert table.num_rows == 10_000
    counts = table.column("label").combine_chunks().value_counts()
    assert counts.field("counts").to_pylist() == [1000] * 10
    assert len(table.column("label").combine_chunks().dictionary) == 10


def test_with_on_error_skips_single_files_not_whole_read_tasks(odd_folder):
    """The loader's on_error='skip' goes through Dataset.with_on_error: the image source
    skips the bad files themselves, never the 1,024-file read task around them."""
    strict = datakiln.read_images(odd_folder)
    lenient = strict.with_on_error("skip")
    assert lenient.count() == 5 and lenient.stats["bad_rows"] == 4
    assert strict.stats["bad_rows"] == 0  # the strict dataset's counts are its own
    assert lenient.fingerprint == strict.fingerprint  # same rows whenever nothing is bad
    with pytest.raises(ImageDecodeError):
        lenient.with_on_error("raise").to_arrow()


def test_hugging_face_image_structs_profile_as_images():
    png = _encode(Image.fromarray(_pixels()), "PNG")
    hf = pa.array([{"bytes": png, "path": "a.png"}] * 3,
                  pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
    ds = datakiln.Dataset.from_arrow(pa.table({"image": hf, "label": [0, 1, 0]}))
    column = next(c for c in ds.profile().columns if c.name == "image")
    assert (column.kind, column.count, column.nulls) == ("image", 3, 0)
    with pytest.raises(SchemaError, match="'image' holds images"):
        from datakiln.synth import GaussianCopula

        GaussianCopula().fit(ds)
