"""Image synthesizers on real MNIST digits: class fidelity judged by an independent classifier
(logistic regression on pixels of other MNIST images), sample shapes and labels, determinism,
save/load, checkpoints and resume, tampered files, and ImageFolder output."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pyarrow as pa
import pytest

pytest.importorskip("torch")

from tests.conftest import sample_dataset, shared_dataset  # noqa: E402

import datakiln  # noqa: E402
from datakiln.errors import InvalidArgumentError, ModelFormatError, OutputExistsError  # noqa: E402
from datakiln.synth import load  # noqa: E402
from datakiln.synth.images import ConditionalGAN, ConvVAE  # noqa: E402
from datakiln.synth.images._data import images_to_arrays  # noqa: E402

FAST = dict(early_stopping=False, image_size=16, threads=1)


@pytest.fixture(scope="module")
def mnist() -> pa.Table:
    root = shared_dataset("mnist")
    ds = datakiln.read(
        str(root / "train-images-idx3-ubyte.gz"), labels=str(root / "train-labels-idx1-ubyte.gz")
    )
    return ds.to_arrow()


@pytest.fixture(scope="module")
def small() -> pa.Table:
    root = sample_dataset("images/mnist")
    return datakiln.read(
        str(root / "t10k-300-images-idx3-ubyte.gz"), labels=str(root / "t10k-300-labels-idx1-ubyte.gz")
    ).to_arrow()


@pytest.fixture(scope="module")
def judge(mnist: pa.Table):
    """Logistic regression on 3,000 other MNIST digits (16 × 16): ~90% accurate on real ones."""
    from sklearn.linear_model import LogisticRegression

    a = images_to_arrays(mnist.slice(20_000, 3000), size=16)
    model = LogisticRegression(max_iter=300).fit(a.pixels.reshape(len(a.pixels), -1) / 255, a.codes)
    return lambda pixels: model.predict(pixels.reshape(len(pixels), -1) / 255)


@pytest.fixture(scope="module")
def gan(mnist: pa.Table) -> ConditionalGAN:
    return ConditionalGAN(
        epochs=6, width=8, lr=2e-3, latent_dim=32, batch_size=32, diffaugment="", **FAST
    ).fit(mnist.slice(0, 1024))


@pytest.fixture(scope="module")
def vae(mnist: pa.Table) -> ConvVAE:
    return ConvVAE(epochs=12, width=16, lr=2e-3, sigma=1.0, **FAST).fit(mnist.slice(0, 1024))


@pytest.mark.parametrize("name", ["gan", "vae"])
def test_samples_are_the_requested_class(name: str, request, judge) -> None:
    model = request.getfixturevalue(name)
    hits = []
    for digit in range(10):
        table = model.sample(40, conditions={"label": digit}, seed=digit)
        assert table.column("label").to_pylist() == [digit] * 40
        pixels = images_to_arrays(table).pixels
        hits.append(np.mean(judge(pixels) == digit))
    assert np.mean(hits) > 0.30, hits  # chance is 10%
    for record in model.history_:
        assert all(np.isfinite(v) for v in record["losses"].values())


@pytest.mark.parametrize("name", ["gan", "vae"])
def test_sample_count_shape_dtype_and_labels(name: str, request) -> None:
    model = request.getfixturevalue(name)
    table = model.sample(37, seed=3)
    assert table.num_rows == 37
    assert table.schema.names == ["image", "label"] and table.schema.field("label").type == pa.int64()
    assert table.schema.field("image").metadata == {b"datakiln.kind": b"image"}
    arrays = images_to_arrays(table)
    assert arrays.pixels.shape == (37, 16, 16, 1) and arrays.pixels.dtype == np.uint8
    assert set(table.column("label").to_pylist()) <= set(range(10))
    pixels, codes = model.sample_images(5, conditions={"label": "7"}, seed=1)
    assert pixels.shape == (5, 16, 16, 1) and list(codes) == [7] * 5
    assert model.sample(0).num_rows == 0
    batches = list(model.sample_batches(1100, batch_rows=300, seed=4))  # the rows of sample(), in pieces
    assert [b.num_rows for b in batches] == [300, 300, 300, 200]
    assert pa.concat_tables(batches).equals(model.sample(1100, seed=4))


@pytest.mark.parametrize("name", ["gan", "vae"])
def test_seeded_samples_survive_save_and_load(name: str, request, tmp_path) -> None:
    model = request.getfixturevalue(name)
    path = tmp_path / "model.kiln"
    model.save(path)
    again = load(path)
    assert type(again) is type(model)
    first, second = model.sample(20, seed=5), again.sample(20, seed=5)
    assert first.column("image").to_pylist() == second.column("image").to_pylist()
    assert first.equals(second)
    assert model.sample(20, seed=6).column("image").to_pylist() != first.column("image").to_pylist()
    with zipfile.ZipFile(path) as archive:  # weights are .npy arrays beside JSON, never pickle
        names = archive.namelist()
    assert all(n.endswith((".json", ".npy")) for n in names)


def test_tampered_model_file_is_refused(gan: ConditionalGAN, tmp_path) -> None:
    path = tmp_path / "gan.kiln"
    gan.save(path)
    with zipfile.ZipFile(path) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    weight = next(n for n in members if n.startswith("arrays/ema."))
    original = members[weight]
    changed = bytearray(original)
    changed[-1] ^= 0xFF
    members[weight] = bytes(changed)
    bad = tmp_path / "bad.kiln"
    with zipfile.ZipFile(bad, "w") as archive:
        for n, content in members.items():
            archive.writestr(n, content)
    with pytest.raises(ModelFormatError, match="checksum"):
        load(bad)
    # a consistent but wrong state (checksums redone) is refused by the model's own checks
    members[weight] = original
    state = json.loads(members["model.json"])
    state["state"]["channels"] = 7
    members["model.json"] = json.dumps(state).encode()
    manifest = json.loads(members["manifest.json"])
    import hashlib

    manifest["members"]["model.json"] = hashlib.sha256(members["model.json"]).hexdigest()
    manifest["sizes"]["model.json"] = len(members["model.json"])
    members["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(bad, "w") as archive:
        for n, content in members.items():
            archive.writestr(n, content)
    with pytest.raises(ModelFormatError, match="channels"):
        load(bad)


def test_fit_is_deterministic_and_resume_continues_exactly(small: pa.Table, tmp_path) -> None:
    params = dict(
        width=8,
        latent_dim=16,
        batch_size=50,
        lr=2e-3,
        diffaugment="color,translation,cutout",
        checkpoint_every=1,
        **FAST,
    )
    whole = ConditionalGAN(epochs=3, **params).fit(small)
    again = ConditionalGAN(epochs=3, **params).fit(small)
    assert whole.sample(8, seed=0).equals(again.sample(8, seed=0))
    checkpoint = tmp_path / "ckpt.kiln"
    ConditionalGAN(epochs=2, **params).fit(small, checkpoint=checkpoint)
    assert load(checkpoint).epochs_done_ == 2  # a checkpoint is a loadable model too
    resumed = ConditionalGAN(epochs=3, **params).fit(small, resume=checkpoint)
    assert [r["epoch"] for r in resumed.history_] == [1, 2, 3]
    assert resumed.sample(8, seed=0).equals(whole.sample(8, seed=0))
    plain = tmp_path / "plain.kiln"
    whole.save(plain)
    foreign = tmp_path / "notes.txt"
    foreign.write_text("mine")
    with pytest.raises(OutputExistsError):  # before any training
        ConditionalGAN(epochs=1, **params).fit(small, checkpoint=foreign)
    assert foreign.read_text() == "mine"
    with pytest.raises(ModelFormatError, match="optimizer state"):
        ConditionalGAN(epochs=4, **params).fit(small, resume=plain)


def test_early_stopping_keeps_the_best_measured_epoch(small: pa.Table) -> None:
    model = ConvVAE(
        epochs=4, width=8, eval_every=1, patience=1, scorer_epochs=1, validation=0.2, image_size=16, threads=1
    ).fit(small)
    scores = [r["score"] for r in model.history_]
    assert all(s is not None and np.isfinite(s) for s in scores)
    assert model.best_epoch_ == 1 + int(np.argmin(scores))


def test_colour_images_and_write_image_folder(tmp_path) -> None:
    from datakiln.io.image_folder import write_image_folder

    folder = sample_dataset("images/cifar")
    ds = datakiln.read_images(folder)
    model = ConvVAE(epochs=1, width=8, image_size=16, early_stopping=False, threads=1).fit(ds)
    table = model.sample(12, seed=0)
    classes = ds.to_arrow().column("label").type
    assert table.schema.field("label").type == classes
    assert images_to_arrays(table).pixels.shape == (12, 16, 16, 3)
    out = tmp_path / "synthetic"
    result = write_image_folder([table], out)
    back = datakiln.read_images(out).to_arrow()
    assert result["rows"] == back.num_rows == 12
    assert sorted(back.column("label").to_pylist()) == sorted(
        str(v) for v in table.column("label").to_pylist()
    )
    with pytest.raises(OutputExistsError):
        write_image_folder([table], folder)  # the input is never the output
    written = datakiln.from_arrow(table).write(tmp_path / "tree", format="imagefolder")  # Dataset.write
    assert written.rows == 12 and all(f.endswith(".png") for f in written.files)
    assert datakiln.read_images(tmp_path / "tree").count() == 12
    shards = datakiln.from_arrow(table).write(tmp_path / "shards", format="tar", rows_per_file=5)
    assert shards.rows == 12 and datakiln.read_images(tmp_path / "shards").count() == 12


def test_another_label_column_name_is_kept(small: pa.Table) -> None:
    renamed = small.rename_columns(["image", "digit"])
    model = ConvVAE(epochs=1, width=8, **FAST).fit(renamed, label="digit")
    table = model.sample(6, conditions={"digit": 4}, seed=0)
    assert table.schema.names == ["image", "digit"] and table.column("digit").to_pylist() == [4] * 6


def test_bad_arguments_are_clear(small: pa.Table, gan: ConditionalGAN) -> None:
    with pytest.raises(InvalidArgumentError, match="not a class"):
        gan.sample(3, conditions={"label": 11})
    with pytest.raises(InvalidArgumentError, match="epochs"):
        ConvVAE(epochs=0).fit(small)
    with pytest.raises(InvalidArgumentError, match="not fitted"):
        ConvVAE().sample(3)
