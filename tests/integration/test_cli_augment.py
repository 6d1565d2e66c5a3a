"""``kiln augment`` end to end on the 60 CIFAR JPEGs vendored in tests/data/images/cifar.

Oracles: array reversal for a flip applied to every image; the loader's own batches for
the same ops and seed (the command promises to augment exactly as the loader does); the
files written read back with Pillow and ``datakiln.read_images``.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.conftest import sample_dataset
from typer.testing import CliRunner

import datakiln
from datakiln.augment import parse_ops
from datakiln.cli.app import app
from datakiln.io.image_codec import decode
from datakiln.report.images import is_own_png

runner = CliRunner()
OPS = "crop:32,padding=4; flip; jitter:0.4"


@pytest.fixture()
def images(tmp_path: Path) -> Path:
    """A copy of the vendored 3-class CIFAR folder (20 JPEGs per class)."""
    folder = tmp_path / "images"
    shutil.copytree(sample_dataset("images/cifar"), folder)
    return folder


def _kiln(*args: str):
    return runner.invoke(app, ["augment", *args])


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _pairs(grid: np.ndarray, count: int, per_row: int, *, cell: int = 64, padding: int = 4,
           caption: int = 14) -> list[tuple[np.ndarray, np.ndarray]]:
    """(original, augmented) tiles of a comparison grid of 32 px images shown at 64 px."""
    found = []
    for index in range(count):
        row, column = divmod(index, per_row)
        top = padding + row * (cell + caption + padding)
        left = padding + column * (2 * cell + 1 + padding)
        found.append((grid[top:top + cell:2, left:left + cell:2],
                      grid[top:top + cell:2, left + cell + 1:left + 2 * cell + 1:2]))
    return found


def test_preview_of_a_certain_flip_shows_each_image_reversed(images, tmp_path):
    target = tmp_path / "grid.png"
    result = _kiln(str(images), "--ops", "flip:p=1", "--preview", str(target), "-n", "8", "--seed", "5")
    assert result.exit_code == 0, result.output
    assert "8 originals" in result.output
    grid = _png(target)
    per_row = 2  # ceil(sqrt(8 / 2))
    assert grid.shape == (4 + 4 * (64 + 14 + 4), 4 + per_row * (129 + 4), 3)
    originals = {tuple(decode(p.read_bytes()).ravel()[:64]) for p in images.rglob("*.jpg")}
    for original, augmented in _pairs(grid, 8, per_row):
        assert np.array_equal(augmented, original[:, ::-1])
        assert tuple(original.ravel()[:64]) in originals  # a real image of the folder
    assert is_own_png(target)


def test_preview_augments_exactly_as_the_loader_does(images, tmp_path):
    target = tmp_path / "grid.png"
    ops = "crop:32,padding=4; flip"
    result = _kiln(str(images), "--ops", ops, "--preview", str(target), "-n", "60", "--seed", "3")
    assert result.exit_code == 0, result.output
    loader = datakiln.read_images(images).loader(60, transform=parse_ops(ops), shuffle=False, seed=3,
                                                 format="numpy")
    expected = next(iter(loader))["image"]
    paths = datakiln.read_images(images).to_arrow().column("path").to_pylist()
    tiles = _pairs(_png(target), 60, 6)  # every row is shown, in row order
    for row, (original, augmented) in enumerate(tiles):
        assert np.array_equal(original, decode(Path(paths[row]).read_bytes())), f"row {row}"
        assert np.array_equal(augmented, expected[row]), f"row {row}"
    changed = sum(not np.array_equal(o, a) for o, a in tiles)
    assert changed >= 55  # per-sample draws: nearly every image is shifted or flipped


def test_copies_form_an_imagefolder_tree_equal_to_the_loader(images, tmp_path):
    out = tmp_path / "augmented"
    ops = "crop:32,padding=4; flip"
    result = _kiln(str(images), "--ops", ops, "-o", str(out), "--copies", "2", "--seed", "1")
    assert result.exit_code == 0, result.output
    assert "wrote 120 augmented images (PNG)" in result.output and "3 class folders" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["_datakiln.json", "airplane", "cat", "ship"]
    manifest = json.loads((out / "_datakiln.json").read_text())
    assert manifest["rows"] == 120 and len(manifest["files"]) == 120
    source = datakiln.read_images(images)
    paths = source.to_arrow().column("path").to_pylist()
    loader = source.loader(60, transform=parse_ops(ops), shuffle=False, seed=1, format="numpy")
    for epoch in (0, 1):  # copy k is the loader's epoch k
        loader.set_epoch(epoch)
        batch = next(iter(loader))
        for row, path in enumerate(paths):
            written = _png(out / Path(path).parent.name / f"{Path(path).stem}_{epoch}.png")
            assert np.array_equal(written, batch["image"][row]), (epoch, path)
    copies = [(_png(p), _png(p.with_name(p.name.replace("_0.png", "_1.png"))))
              for p in sorted((out / "cat").glob("*_0.png"))]
    assert len(copies) == 20 and sum(not np.array_equal(a, b) for a, b in copies) >= 17
    again = datakiln.read_images(out)
    labels = again.to_arrow().column("label").to_pylist()
    assert again.count() == 120 and {name: labels.count(name) for name in set(labels)} == {
        "airplane": 40, "cat": 40, "ship": 40}


def test_output_ownership(images, tmp_path):
    out, grid = tmp_path / "augmented", tmp_path / "grid.png"
    assert _kiln(str(images), "--ops", "flip", "-o", str(out)).exit_code == 0
    first = sorted(p.name for p in (out / "cat").iterdir())
    rerun = _kiln(str(images), "--ops", "flip", "-o", str(out), "--seed", "2")  # its own output
    assert rerun.exit_code == 0, rerun.output
    assert sorted(p.name for p in (out / "cat").iterdir()) == first
    (out / "notes.txt").write_text("mine")
    for extra in ([], ["--overwrite"]):
        refused = _kiln(str(images), "--ops", "flip", "-o", str(out), *extra)
        assert refused.exit_code == 2 and "holds files datakiln did not write" in refused.output
    assert (out / "notes.txt").read_text() == "mine"
    inside = _kiln(str(images), "--ops", "flip", "-o", str(images / "aug"))
    assert inside.exit_code == 2 and "inside the input directory" in inside.output
    assert not (images / "aug").exists()
    grid.write_bytes(b"someone's file")
    refused = _kiln(str(images), "--ops", "flip", "--preview", str(grid), "-n", "4")
    assert refused.exit_code == 2 and "--overwrite" in refused.output
    assert grid.read_bytes() == b"someone's file"
    replaced = _kiln(str(images), "--ops", "flip", "--preview", str(grid), "-n", "4", "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert is_own_png(grid)
    assert _kiln(str(images), "--ops", "flip", "--preview", str(grid), "-n", "4").exit_code == 0  # own


@pytest.mark.parametrize(("args", "message"), [
    (["--ops", "crop:32; wobble:3", "--preview", "g.png"], "wobble"),
    (["--ops", "flip"], "nothing to write"),
    (["--ops", "flip", "--preview", "grid.jpg"], "name it with .png"),
    (["--ops", "flip; normalize", "-o", "out"], "Normalize"),
    (["--ops", "mixup:0.4", "-o", "out"], "mixed labels"),
    (["--ops", "flip", "--preview", "same", "-o", "same"], "both name"),
])
def test_bad_arguments_are_one_line_errors(images, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = _kiln(str(images), *args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "g.png").exists()


def test_missing_and_empty_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "empty", tmp_path / "nowhere"):
        result = _kiln(str(folder), "--ops", "flip", "--preview", str(tmp_path / "g.png"))
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert str(folder) in result.output


def test_corrupt_file_is_named_or_skipped_and_counted(images, tmp_path):
    good = (images / "cat" / "0000.jpg").read_bytes()
    (images / "cat" / "zz_truncated.jpg").write_bytes(good[: len(good) // 2])
    result = _kiln(str(images), "--ops", "flip", "-o", str(tmp_path / "out"))
    assert result.exit_code == 2 and "zz_truncated.jpg" in result.output
    assert not (tmp_path / "out").exists()
    skipped = _kiln(str(images), "--ops", "flip", "-o", str(tmp_path / "out"), "--skip-bad-images")
    assert skipped.exit_code == 0, skipped.output
    assert "wrote 60 augmented images" in skipped.output and "skipped 1 unreadable" in skipped.output


def test_mixup_preview_captions_the_mixed_labels(images, tmp_path):
    target = tmp_path / "grid.png"
    result = _kiln(str(images), "--ops", "mixup:1.0", "--preview", str(target), "-n", "6")
    assert result.exit_code == 0, result.output
    grid = _png(target)
    tiles = _pairs(grid, 6, 2)
    assert sum(not np.array_equal(o, a) for o, a in tiles) >= 5  # blended with a partner
    assert Image.open(io.BytesIO(target.read_bytes())).format == "PNG"
