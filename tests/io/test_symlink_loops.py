"""A directory holding a symlink back to an ancestor is read once, not forty levels deep."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

import datakiln

pytestmark = pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")


def test_symlink_loop_lists_each_file_once(tmp_path):
    root = tmp_path / "data"
    (root / "part").mkdir(parents=True)
    pacsv.write_csv(pa.table({"x": [1, 2, 3]}), root / "part" / "a.csv")
    os.symlink("..", root / "part" / "up")     # part/up -> data: a loop
    os.symlink("..", root / "part" / "up2")    # a second loop: exponential without pruning
    ds = datakiln.read(str(root))
    assert ds.to_arrow().column("x").to_pylist() == [1, 2, 3]


def test_linked_directory_outside_the_tree_is_still_followed(tmp_path):
    outside = tmp_path / "store"
    outside.mkdir()
    pacsv.write_csv(pa.table({"x": [7]}), outside / "b.csv")
    root = tmp_path / "data"
    root.mkdir()
    pacsv.write_csv(pa.table({"x": [1]}), root / "a.csv")
    os.symlink(outside, root / "linked")
    assert sorted(datakiln.read(str(root)).to_arrow().column("x").to_pylist()) == [1, 7]


def test_read_images_in_a_folder_with_a_loop(tmp_path):
    pil = pytest.importorskip("PIL.Image")
    (tmp_path / "cat").mkdir()
    pil.new("RGB", (4, 3)).save(tmp_path / "cat" / "x.png")
    os.symlink("..", tmp_path / "cat" / "up")
    table = datakiln.read_images(str(tmp_path)).to_arrow()
    assert table.num_rows == 1
    assert table.column("path").to_pylist()[0].endswith("cat/x.png")
