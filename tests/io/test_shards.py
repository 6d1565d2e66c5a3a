"""WebDataset tar shards: written atomically, read back identically, damage reported."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from tests.conftest import sample_dataset

import datakiln
from datakiln.errors import ImageDecodeError, OutputExistsError, ParseError
from datakiln.io._output import source_inputs
from datakiln.io.shards import ShardSource, _tar_members, write_tar_shards


@pytest.fixture
def cifar() -> datakiln.Dataset:
    return datakiln.read_images(sample_dataset("images/cifar"))


@pytest.fixture
def shards(cifar, tmp_path) -> Path:
    out = tmp_path / "shards"
    result = write_tar_shards(cifar.to_arrow().to_batches(max_chunksize=7), out,
                              rows_per_file=25, inputs=source_inputs(cifar.source))
    assert result["rows"] == 60 and len(result["files"]) == 3
    return out


def test_written_shards_follow_the_webdataset_layout(shards):
    names = sorted(p.name for p in shards.iterdir())
    assert names == ["_datakiln.json", "shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]
    with tarfile.open(shards / "shard-000000.tar") as tar:
        members = tar.getnames()
        assert members[:3] == ["000000000.jpg", "000000000.cls", "000000000.path.txt"]
        assert len(members) == 75  # 25 samples × (image, class, path)
        assert tar.extractfile("000000020.cls").read() == b"1"  # airplane 0..19, cat 20..
    manifest = json.loads((shards / "_datakiln.json").read_text())
    assert manifest["classes"] == ["airplane", "cat", "ship"]
    assert manifest["format"] == "tar" and manifest["rows"] == 60


def test_shards_read_back_exactly_one_task_per_shard(cifar, shards):
    ds = datakiln.read_images(shards)
    assert isinstance(ds.source, ShardSource)
    assert len(list(ds.source.read_tasks())) == 3
    assert ds.to_arrow().equals(cifar.to_arrow())
    assert datakiln.read(shards).to_arrow().equals(cifar.to_arrow())  # read routes .tar too
    one = datakiln.read_images(shards / "shard-000002.tar").to_arrow()  # manifest beside it
    assert one.equals(cifar.to_arrow().slice(50))
    alone = shards.parent / "alone"
    alone.mkdir()
    (alone / "s.tar").write_bytes((shards / "shard-000002.tar").read_bytes())
    codes = datakiln.read_images(alone / "s.tar").to_arrow()
    assert codes.column("label").type == pa.int64()  # no manifest: the .cls codes
    assert codes.column("label").to_pylist() == [2] * 10


def test_shards_written_by_other_tools_and_gzip(tmp_path):
    image = io.BytesIO()
    Image.new("RGB", (5, 4), (10, 20, 30)).save(image, "PNG")
    shard = tmp_path / "data-0.tar"
    with tarfile.open(shard, "w", format=tarfile.GNU_FORMAT) as tar:
        for key, label in [("dir/" + "k" * 120, 3), ("dir/b", 7)]:  # a GNU long name
            for ext, data in [("png", image.getvalue()), ("cls", str(label).encode())]:
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    table = datakiln.read_images(shard).to_arrow()
    assert table.column("label").to_pylist() == [3, 7]
    assert table.column("path").to_pylist() == [f"{shard}:dir/{'k' * 120}", f"{shard}:dir/b"]
    packed = tmp_path / "data-1.tar.gz"
    with tarfile.open(packed, "w:gz") as tar:
        tar.add(shard, arcname="ignored.txt")  # a sample without an image
    with pytest.raises(ImageDecodeError, match="has no image member"):
        datakiln.read_images(packed).to_arrow()


def test_truncated_shard_raises_or_keeps_what_came_before(shards, tmp_path):
    data = (shards / "shard-000001.tar").read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ParseError, match=r"cut\.tar' is truncated or corrupt"):
        datakiln.read_images(cut).to_arrow()
    ds = datakiln.read_images(cut, on_error="skip")
    assert 0 < ds.count() < 25
    assert ds.stats["bad_rows"] == 1 and ds.stats["examples"][0]["file"] == str(cut)
    with tarfile.open(shards / "shard-000001.tar") as tar:
        header = tar.getmembers()[4].offset
    flipped = bytearray(data)
    flipped[header + 5] ^= 0x01  # the name field of a later header: its checksum fails
    broken = tmp_path / "broken.tar"
    broken.write_bytes(bytes(flipped))
    with pytest.raises(ParseError, match="truncated or corrupt"):
        datakiln.read_images(broken).to_arrow()


def test_bad_image_inside_a_shard_is_named(tmp_path):
    shard = tmp_path / "s.tar"
    with tarfile.open(shard, "w") as tar:
        info = tarfile.TarInfo("000.jpg")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"\xff\xd8\xff\x00\x00"))
    with pytest.raises(ImageDecodeError, match=r"s\.tar:000"):
        datakiln.read_images(shard).to_arrow()
    ds = datakiln.read_images(shard, on_error="skip")
    assert ds.count() == 0 and ds.stats["bad_rows"] == 1


def test_writing_respects_ownership_and_inputs(cifar, shards, tmp_path):
    again = write_tar_shards(cifar.to_arrow().to_batches(), shards, rows_per_file=100)
    assert again["rows"] == 60 and len(again["files"]) == 1  # its own output: replaced
    assert sorted(p.name for p in shards.iterdir()) == ["_datakiln.json", "shard-000000.tar"]
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(OutputExistsError, match="holds files datakiln did not write"):
        write_tar_shards(cifar.to_arrow().to_batches(), foreign, overwrite=True)
    assert (foreign / "notes.txt").read_text() == "keep me"
    inside = Path(cifar.source.files.base) / "out"
    with pytest.raises(OutputExistsError, match="inside the input directory"):
        write_tar_shards(cifar.to_arrow().to_batches(), inside, inputs=source_inputs(cifar.source))
    assert not inside.exists()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.text("abcxyz/_-", min_size=1, max_size=150).filter(
    lambda s: not s.startswith("/") and "//" not in s and not s.endswith("/")),
    st.binary(max_size=700)), max_size=6))
def test_tar_parser_agrees_with_tarfile(members):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    raw = buffer.getvalue()
    expected = []
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        for info in tar:
            expected.append((info.name, tar.extractfile(info).read()))
    assert list(_tar_members(raw)) == expected
