"""An image folder's fingerprint taken from the bytes a read just saw (no second read): the
same text as reading the files again, never stale after a file changes, and the loader's
order keyed by it."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import datakiln
from datakiln.dataset import _identity
from datakiln.io import images as image_source


def _jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for i in range(30):
        target = tmp_path / f"class{i % 3}" / f"{i:03d}.jpg"
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(_jpeg(i))
    return tmp_path


def _no_file_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> str:
        raise AssertionError("the fingerprint read a file again")
    monkeypatch.setattr(_identity, "_file_identity", refuse)


def test_fingerprint_after_a_read_equals_a_fresh_one_without_reading(
        folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = datakiln.read_images(folder).fingerprint
    ds = datakiln.read_images(folder)
    assert ds.to_arrow().num_rows == 30
    with monkeypatch.context() as patch:
        _no_file_reads(patch)
        assert ds.fingerprint == fresh
    assert ds.fingerprint == fresh  # consumed: the next one reads the files itself, same text


def test_a_file_changed_after_the_read_changes_the_fingerprint(folder: Path) -> None:
    ds = datakiln.read_images(folder)
    before = ds.fingerprint
    ds.to_arrow()
    target = folder / "class1" / "004.jpg"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other content
    target.write_bytes(bytes(data))
    stamp = time.time() + 5  # a later modification time even on coarse clocks
    os.utime(target, (stamp, stamp))
    after = ds.fingerprint
    assert after != before
    assert after == datakiln.read_images(folder).fingerprint


def test_a_partial_read_is_not_used(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(image_source, "TASK_FILES", 4)
    ds = datakiln.read_images(folder)
    fresh = datakiln.read_images(folder).fingerprint
    ds.head(3)
    calls = []
    real = _identity._file_identity

    def count(*args: object) -> str:
        calls.append(args)
        return real(*args)  # type: ignore[arg-type]
    monkeypatch.setattr(_identity, "_file_identity", count)
    assert ds.fingerprint == fresh
    assert len(calls) == 30


def test_parallel_read_keeps_file_order_and_labels(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(image_source, "TASK_FILES", 4)  # 8 tasks over the reader threads
    table = datakiln.read_images(folder).to_arrow()
    paths = table.column("path").to_pylist()
    assert paths == sorted(str(p) for p in folder.rglob("*.jpg"))
    assert [Path(p).parent.name for p in paths] == table.column("label").to_pylist()
    assert table.column("image").to_pylist() == [Path(p).read_bytes() for p in paths]


def test_loader_order_is_keyed_by_the_content_fingerprint(folder: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = datakiln.read_images(folder).fingerprint
    with monkeypatch.context() as patch:
        _no_file_reads(patch)
        loader = datakiln.read_images(folder).loader(8, seed=3)
    assert loader._order_fingerprint == fresh
    first = [b["path"] for b in loader]
    again = [b["path"] for b in datakiln.read_images(folder).loader(8, seed=3)]
    assert [list(p) for p in first] == [list(p) for p in again]


@pytest.mark.parametrize("path, base", [
    ("/data/x/a.jpg", "/data/x"), ("/data/x/sub/a.jpg", "/data/x/"), ("/data/xy/a.jpg", "/data/x"),
    ("/data/x/./a.jpg", "/data/x"), ("/data/x/../y/a.jpg", "/data/x"), ("/a.jpg", "/"),
    ("rel/a.jpg", "rel"),
])
def test_relative_paths_match_relpath(path: str, base: str) -> None:
    assert _identity._relative(path, base) == os.path.relpath(path, base)
    assert image_source._relative(path, base) == os.path.relpath(path, base)
