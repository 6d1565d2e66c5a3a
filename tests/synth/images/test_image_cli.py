"""``kiln synth fit images/ --model image-vae|image-gan`` and ``kiln synth sample`` to an ImageFolder tree."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

pytest.importorskip("torch")

from tests.conftest import sample_dataset  # noqa: E402

import datakiln  # noqa: E402
from datakiln.cli.app import app  # noqa: E402

runner = CliRunner()


@pytest.mark.parametrize("model", ["image-vae", "image-gan"])
def test_fit_then_sample_an_image_folder(model: str, tmp_path) -> None:
    folder = sample_dataset("images/cifar")
    kiln = tmp_path / "model.kiln"
    result = runner.invoke(
        app, ["synth", "fit", str(folder), "--model", model, "--epochs", "1", "-o", str(kiln)]
    )
    assert result.exit_code == 0, result.output
    assert "3 classes, 32×32×3 images, 1 epochs" in result.output
    out = tmp_path / "synthetic"
    result = runner.invoke(
        app, ["synth", "sample", str(kiln), "-n", "9", "-o", str(out), "--where", "label=ship"]
    )
    assert result.exit_code == 0, result.output
    back = datakiln.read_images(out).to_arrow()
    assert back.num_rows == 9 and set(back.column("label").to_pylist()) == {"ship"}
    if model == "image-vae":  # kiln evaluate judges image folders
        more = tmp_path / "more"
        assert runner.invoke(app, ["synth", "sample", str(kiln), "-n", "30", "-o", str(more)]).exit_code == 0
        page = tmp_path / "images.html"
        result = runner.invoke(
            app, ["evaluate", "--real", str(folder), "--synthetic", str(more), "--html", str(page)]
        )
        assert result.exit_code == 0, result.output
        assert "class fidelity" in result.output and "Inception" in page.read_text()
    shards = tmp_path / "shards"
    result = runner.invoke(app, ["synth", "sample", str(kiln), "-n", "5", "-o", str(shards), "--to", "tar"])
    assert result.exit_code == 0, result.output
    assert datakiln.read_images(shards).count() == 5
    # a class the model never saw, and the input folder as output, are clear errors
    result = runner.invoke(
        app, ["synth", "sample", str(kiln), "-n", "3", "-o", str(tmp_path / "x"), "--where", "label=dog"]
    )
    assert result.exit_code != 0 and "not a class" in result.output
    result = runner.invoke(app, ["synth", "sample", str(kiln), "-n", "3", "-o", str(folder)])
    assert result.exit_code != 0 and "Traceback" not in result.output
