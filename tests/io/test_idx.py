"""IDX files (MNIST-style): pixels equal to a direct NumPy read, headers checked."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import sample_dataset, shared_dataset

import datakiln
from datakiln.errors import ParseError, SchemaError
from datakiln.io.idx import looks_like_idx, read_idx_array

IMAGES = "t10k-300-images-idx3-ubyte.gz"
LABELS = "t10k-300-labels-idx1-ubyte.gz"


def _numpy_idx(path: Path) -> np.ndarray:
    """The reference: parse the IDX file by hand with NumPy."""
    raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def _images(ds: datakiln.Dataset) -> np.ndarray:
    return ds.to_arrow().column("image").combine_chunks().to_numpy_ndarray()


@pytest.fixture
def mnist_sample() -> Path:
    return Path(sample_dataset("images/mnist"))


def test_idx_images_and_labels_equal_numpy(mnist_sample):
    ds = datakiln.read(mnist_sample / IMAGES, labels=mnist_sample / LABELS)
    field = ds.arrow_schema.field("image")
    assert isinstance(field.type, pa.FixedShapeTensorType)
    assert field.type.shape == [28, 28, 1] and field.type.value_type == pa.uint8()
    pixels = _images(ds)
    assert pixels.shape == (300, 28, 28, 1)
    np.testing.assert_array_equal(pixels[..., 0], _numpy_idx(mnist_sample / IMAGES))
    labels = ds.to_arrow().column("label").to_numpy()
    np.testing.assert_array_equal(labels, _numpy_idx(mnist_sample / LABELS))
    assert np.bincount(labels).tolist() == [24, 41, 32, 24, 37, 29, 24, 34, 21, 34]
    assert ds.schema.kinds == {"image": "image", "label": "integer"}
    assert ds.count() == 300


def test_raw_idx_files_and_labels_alone(mnist_sample, tmp_path):
    raw = tmp_path / "train-images-idx3-ubyte"
    raw.write_bytes(gzip.open(mnist_sample / IMAGES).read())
    np.testing.assert_array_equal(_images(datakiln.read(raw))[..., 0], _numpy_idx(raw))
    labels = datakiln.read(mnist_sample / LABELS)
    assert labels.columns == ["label"] and labels.count() == 300
    np.testing.assert_array_equal(read_idx_array(raw), _numpy_idx(raw))


def test_idx_is_recognised_by_name():
    assert looks_like_idx("train-images-idx3-ubyte.gz")
    assert looks_like_idx("/x/t10k-labels-idx1-ubyte")
    assert looks_like_idx("emnist.idx")
    assert not looks_like_idx("data.csv")


def test_short_and_garbled_idx_files_are_clear_errors(mnist_sample, tmp_path):
    raw = gzip.open(mnist_sample / IMAGES).read()
    short = tmp_path / "short-images-idx3-ubyte"
    short.write_bytes(raw[:-100])
    with pytest.raises(ParseError, match=r"short-images-idx3-ubyte.*300 × 28 × 28 values of "
                                         r"uint8 \(235,216 bytes with the header\) but the "
                                         r"file holds 235,116 bytes: it is truncated"):
        datakiln.read(short)
    extra = tmp_path / "extra-images-idx3-ubyte"
    extra.write_bytes(raw + b"\0")
    with pytest.raises(ParseError, match="extra bytes after its data"):
        datakiln.read(extra)
    garbled = tmp_path / "garbled-images-idx3-ubyte"
    garbled.write_bytes(b"\x12\x34" + raw[2:])
    with pytest.raises(ParseError, match="is not an IDX file"):
        datakiln.read(garbled)
    bad_gzip = tmp_path / "cut-images-idx3-ubyte.gz"
    bad_gzip.write_bytes((mnist_sample / IMAGES).read_bytes()[:500])
    with pytest.raises(ParseError, match="cannot be read as gzip IDX data"):
        datakiln.read(bad_gzip)


def test_labels_must_match_the_images(mnist_sample, tmp_path):
    raw = gzip.open(mnist_sample / LABELS).read()
    fewer = tmp_path / "few-labels-idx1-ubyte"
    fewer.write_bytes(raw[:4] + (299).to_bytes(4, "big") + raw[8:-1])
    with pytest.raises(SchemaError, match="holds 300 images but the labels file .* holds 299"):
        datakiln.read(mnist_sample / IMAGES, labels=fewer)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_give_an_array_or_a_parse_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("idx") / "fuzz-idx3-ubyte"
    path.write_bytes(data)
    try:
        ds = datakiln.read(path)
    except (ParseError, SchemaError) as exc:
        assert "fuzz-idx3-ubyte" in str(exc) or "labels" in str(exc)
    else:
        assert ds.count() >= 0


@pytest.mark.parametrize(("split", "rows"), [("train", 60_000), ("t10k", 10_000)])
def test_full_mnist_equals_a_direct_numpy_read(split, rows):
    root = shared_dataset("mnist")
    images, labels = root / f"{split}-images-idx3-ubyte.gz", root / f"{split}-labels-idx1-ubyte.gz"
    ds = datakiln.read(images, labels=labels)
    pixels = _images(ds)
    assert pixels.shape == (rows, 28, 28, 1)
    np.testing.assert_array_equal(pixels[..., 0], _numpy_idx(images))
    np.testing.assert_array_equal(ds.to_arrow().column("label").to_numpy(), _numpy_idx(labels))
