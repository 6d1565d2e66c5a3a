"""Image evaluation measures against independent references, and evaluate() on image data."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

pytest.importorskip("torch")

from tests.conftest import sample_dataset  # noqa: E402

import datakiln  # noqa: E402
from datakiln.evaluation.images import evaluate_images  # noqa: E402
from datakiln.evaluation.images.measures import (  # noqa: E402
    class_fidelity,
    kid,
    memorisation,
    nearest_distances,
    precision_recall,
    wilson,
)
from datakiln.synth.images._data import labels_table  # noqa: E402
from datakiln.synth.images._features import frechet_distance  # noqa: E402


def test_frechet_distance_matches_the_closed_form_for_gaussians() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (20_000, 3))
    b = rng.normal(0, 2, (20_000, 3)) + np.array([1.0, 0, 0])
    # identity covariances: |mu|^2 + tr(I + 4I - 2*2I) = 1 + 3*(1 + 4 - 4) = 4
    assert frechet_distance(a, b) == pytest.approx(4.0, abs=0.15)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two() -> None:
    rng = np.random.default_rng(1)
    same = kid(rng.normal(size=(2000, 8)), rng.normal(size=(2000, 8)), subsets=10, subset_size=500)
    other = kid(rng.normal(size=(2000, 8)), rng.normal(0.5, 1, size=(2000, 8)), subsets=10, subset_size=500)
    assert same["interval"][0] <= 0 <= same["interval"][1] or abs(same["value"]) < 0.01
    assert other["value"] > 0.05 and other["interval"][0] > 0


def test_precision_recall_see_mode_collapse() -> None:
    rng = np.random.default_rng(2)
    real = rng.normal(size=(1500, 2))
    collapsed = rng.normal(size=(1500, 2)) * 0.1  # all in the centre: precise, no recall
    pr = precision_recall(real, collapsed)
    assert pr["precision"] > 0.95 and pr["recall"] < 0.3
    full = precision_recall(real, rng.normal(size=(1500, 2)))
    assert full["precision"] > 0.8 and full["recall"] > 0.8


def test_nearest_distances_match_brute_force_and_copies_are_flagged() -> None:
    rng = np.random.default_rng(3)
    train = rng.random((300, 6, 6, 1)).astype(np.float32)
    queries = rng.random((50, 6, 6, 1)).astype(np.float32)
    brute = np.sqrt(((queries.reshape(50, 1, -1) - train.reshape(1, 300, -1)) ** 2).sum(-1))
    np.testing.assert_allclose(
        nearest_distances(queries, train, k=2), np.sort(brute, axis=1)[:, :2], rtol=1e-4
    )
    holdout = rng.random((200, 6, 6, 1)).astype(np.float32)
    generated = np.concatenate([train[:10] + 0.001, rng.random((90, 6, 6, 1)).astype(np.float32)])
    result = memorisation({"pixel": generated}, {"pixel": holdout}, {"pixel": train})["pixel"]
    assert {c["generated"] for c in result["near_copies"]} >= set(range(10))
    assert all(c["train"] == c["generated"] for c in result["near_copies"] if c["generated"] < 10)
    assert 0.10 <= result["share_below"] <= 0.2
    assert 0.10 <= result["share_below_and_singular"] <= result["share_below"]
    # a blurry average sits near many training images in pixels but copies none of them
    blurry = np.repeat(train.mean(axis=0, keepdims=True), 40, axis=0)
    averaged = memorisation({"pixel": blurry}, {"pixel": holdout}, {"pixel": train})["pixel"]
    assert averaged["share_below"] == 1.0 and averaged["share_below_and_singular"] == 0.0


def test_class_fidelity_and_wilson() -> None:
    out = class_fidelity(np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 1]), ["a", "b"])
    assert out["accuracy"] == pytest.approx(0.8)
    assert out["per_class"]["b"]["accuracy"] == pytest.approx(0.75)
    low, high = wilson(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-3) and high == pytest.approx(0.9433, abs=1e-3)


def test_evaluate_on_images_copies_are_caught_and_noise_is_judged_poor(tmp_path) -> None:
    root = sample_dataset("images/mnist")
    table = datakiln.read(
        str(root / "t10k-300-images-idx3-ubyte.gz"), labels=str(root / "t10k-300-labels-idx1-ubyte.gz")
    ).to_arrow()
    train, hold = table.slice(0, 240), table.slice(240)
    pixels = np.stack([np.asarray(v).reshape(28, 28, 1) for v in train.column("image").to_pylist()]).astype(
        np.uint8
    )
    codes = np.asarray(train.column("label").to_pylist())
    classes = [str(i) for i in range(10)]
    copies = labels_table(pixels[:60], codes[:60], classes, pa.int64())
    noise = labels_table(
        np.random.default_rng(0).integers(0, 255, (60, 28, 28, 1), dtype=np.uint8),
        codes[:60],
        classes,
        pa.int64(),
    )
    copied = datakiln.evaluate(train, copies, holdout=hold)
    noisy = evaluate_images(train, noise, holdout=hold, classifier=copied.classifier)  # the same judge
    assert copied.measures["memorisation"]["pixel"]["share_below"] == 1.0  # every copy flagged
    assert noisy.measures["memorisation"]["pixel"]["share_below"] == 0.0
    assert copied.measures["frechet_distance"]["value"] < noisy.measures["frechet_distance"]["value"]
    assert copied.measures["class_fidelity"]["accuracy"] > noisy.measures["class_fidelity"]["accuracy"]
    page = copied.to_html(tmp_path / "report.html").read_text()
    assert "not comparable to published Inception" in page and "near copies" in page
    assert '"image-evaluation-report"' in copied.to_json()
