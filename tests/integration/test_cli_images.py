"""``kiln inspect images/`` and ``kiln convert images/ shards/`` end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image
from tests.conftest import sample_dataset, shared_dataset
from typer.testing import CliRunner

import datakiln
from datakiln.cli.app import app

runner = CliRunner()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """The vendored CIFAR sample plus a duplicate, a truncated file and a PNG of other size."""
    root = tmp_path / "images"
    shutil.copytree(sample_dataset("images/cifar"), root)
    shutil.copy(root / "cat" / "0003.jpg", root / "ship" / "copy-of-cat.jpg")
    data = (root / "cat" / "0004.jpg").read_bytes()
    (root / "cat" / "cut.jpg").write_bytes(data[: len(data) // 2])
    Image.new("L", (64, 48), 128).save(root / "airplane" / "grey.png")
    return root


def test_inspect_image_folder_json(folder):
    result = runner.invoke(app, ["inspect", str(folder), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["images"] == 62
    assert summary["classes"] == {"airplane": 21, "cat": 20, "ship": 21}
    assert summary["sizes"] == {"32×32": 61, "64×48": 1}
    assert summary["modes"] == {"RGB": 61, "L": 1}
    assert summary["formats"] == {"JPEG": 61, "PNG": 1}
    assert summary["corrupt_count"] == 1 and summary["corrupt"][0]["file"].endswith("cut.jpg")
    assert "truncated JPEG" in summary["corrupt"][0]["error"]
    assert summary["duplicate_files"] == 1 and summary["duplicate_groups"] == 1
    assert [Path(p).name for p in summary["duplicates"][0]] == ["0003.jpg", "copy-of-cat.jpg"]


def test_inspect_image_folder_table(folder):
    result = runner.invoke(app, ["inspect", str(folder)])
    assert result.exit_code == 0, result.output
    text = result.output
    assert "62 images in 3 classes" in text
    assert "corrupt files: 1" in text and "cut.jpg" in text
    assert "exact duplicates: 1 files repeat the bytes of another (1 groups)" in text
    assert "32×32" in text and "RGB" in text


@pytest.mark.parametrize("flag", ["--to", "--format"])
def test_convert_folder_to_tar_shards_and_back(folder, tmp_path, flag):
    out = tmp_path / "shards"
    result = runner.invoke(app, ["convert", str(folder), str(out), flag, "tar",
                                 "--rows-per-file", "25", "--skip-bad-rows"])
    assert result.exit_code == 0, result.output
    assert "wrote 62 images" in result.output and "3 tar shards" in result.output
    assert "skipped 1 unreadable images" in result.output
    back = datakiln.read_images(out).to_arrow()
    direct = datakiln.read_images(folder, on_error="skip").to_arrow()
    assert back.equals(direct)
    again = runner.invoke(app, ["inspect", str(out), "--json"])
    assert json.loads(again.output)["classes"] == {"airplane": 21, "cat": 20, "ship": 21}


def test_convert_folder_to_parquet_keeps_encoded_bytes(folder, tmp_path):
    out = tmp_path / "pq"
    result = runner.invoke(app, ["convert", str(folder), str(out), "--format", "parquet",
                                 "--rows-per-file", "40", "--skip-bad-rows"])
    assert result.exit_code == 0, result.output
    table = datakiln.read(out).to_arrow()
    assert table.num_rows == 62 and len(list(out.glob("*.parquet"))) == 2
    assert datakiln.read(out).schema.kinds["image"] == "image"
    assert table.column("image").to_pylist() == datakiln.read_images(
        folder, on_error="skip").to_arrow().column("image").to_pylist()


def test_convert_without_skip_names_the_bad_file(folder, tmp_path):
    result = runner.invoke(app, ["convert", str(folder), str(tmp_path / "x"), "--to", "tar"])
    assert result.exit_code == 2
    assert "cut.jpg: truncated JPEG" in result.output
    assert not (tmp_path / "x").exists()


def test_convert_refuses_an_output_inside_the_input(folder):
    result = runner.invoke(app, ["convert", str(folder), str(folder / "shards"), "--to", "tar",
                                 "--skip-bad-rows"])
    assert result.exit_code == 2 and "inside the input directory" in result.output


def test_inspect_prints_the_counts_of_the_shared_cifar_folder():
    result = runner.invoke(app, ["inspect", str(shared_dataset("cifar10_jpg_subset/train")),
                                 "--json"])
    summary = json.loads(result.output)
    assert summary["images"] == 10_000 and len(summary["classes"]) == 10
    assert set(summary["classes"].values()) == {1000}
    assert summary["sizes"] == {"32×32": 10_000} and summary["corrupt_count"] == 0
