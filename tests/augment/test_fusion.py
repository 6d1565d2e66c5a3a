"""Compose's fused neighbours (RandomResizedCrop + HorizontalFlip, ColorJitter + Normalize)
against the same ops run one by one: the same parameters from the same streams, the same
pixels (the flip) or within 1/255 (the jitter skips one rounding to uint8), and replay."""

from __future__ import annotations

import numpy as np
import pytest

from datakiln.augment import (
    ColorJitter,
    Compose,
    Grayscale,
    HorizontalFlip,
    ImageBatch,
    MixUp,
    Normalize,
    RandomResizedCrop,
    Resize,
)
from datakiln.augment._random import SampleRandom

torch = pytest.importorskip("torch")

STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def photo(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth photo-like uint8 images with saturated patches (so the jitter's clamps cut)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    out = np.empty((n, h, w, 3))
    for i in range(n):
        a, b, c = rng.uniform(0.5, 6.0, 3)
        for ch in range(3):
            out[i, :, :, ch] = 128 + 140 * np.sin(a * x + b * y + c * ch + i) * np.cos(b * x - a * y)
    out += rng.normal(0, 4, out.shape)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def unfused(ops: list, batch: ImageBatch, rng: SampleRandom) -> tuple[ImageBatch, list[dict]]:
    """Each op's own forward with the stream Compose gives it."""
    recorded = []
    for position, op in enumerate(ops):
        batch, params = op.forward(batch, rng.child(f"{position}/{op.name}"))
        recorded.append(params)
    return batch, recorded


def same_params(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for key in want:
        np.testing.assert_array_equal(np.asarray(got[key]), np.asarray(want[key]), err_msg=key)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_resized_crop_with_flip_equals_the_two_ops(backend: str) -> None:
    images = photo(48, 40, 52)
    batch = ImageBatch(images, row_ids=np.arange(100, 148))
    ops = [RandomResizedCrop((24, 20), backend=backend), HorizontalFlip()]
    rng = SampleRandom(batch.row_ids, seed=7, epoch=2)
    fused, params = Compose(ops).forward(batch, rng)
    reference, want = unfused(ops, batch, rng)
    np.testing.assert_array_equal(fused.images, reference.images)
    for got, expected in zip(params["ops"], want, strict=True):
        same_params(got, expected)
    flags = params["ops"][1]["flip"]
    assert 10 < flags.sum() < 38  # both kinds present: the flip really is fused per sample
    # replay (the unfused apply path) gives the same pixels
    np.testing.assert_array_equal(Compose(ops).apply(batch, params).images, fused.images)


def test_resize_with_flip_on_a_list_of_mixed_sizes() -> None:
    images = [photo(1, 30 + 3 * i, 41 - 2 * i, seed=i)[0] for i in range(9)]
    batch = ImageBatch(images, row_ids=np.arange(9))
    ops = [Resize((16, 16)), HorizontalFlip(p=0.5)]
    rng = SampleRandom(batch.row_ids, seed=1)
    fused, _ = Compose(ops).forward(batch, rng)
    reference, _ = unfused(ops, batch, rng)
    np.testing.assert_array_equal(fused.images, reference.images)


def test_targets_take_the_unfused_path_and_move() -> None:
    images = photo(6, 32, 32)
    boxes = [np.array([[2.0, 3.0, 12.0, 20.0]], np.float32) for _ in range(6)]
    batch = ImageBatch(images, row_ids=np.arange(6), boxes=boxes)
    ops = [RandomResizedCrop(16, scale=(0.9, 1.0)), HorizontalFlip(p=1.0)]
    rng = SampleRandom(batch.row_ids, seed=3)
    fused, _ = Compose(ops).forward(batch, rng)
    reference, _ = unfused(ops, batch, rng)
    np.testing.assert_array_equal(fused.images, reference.images)
    for got, want in zip(fused.boxes, reference.boxes, strict=True):
        np.testing.assert_allclose(got, want)


@pytest.mark.parametrize("hue, backend", [(0.0, "auto"), (0.1, "auto"), (0.0, "numpy"), (0.0, "torch")])
def test_jitter_with_normalize_within_one_grey_level(hue: float, backend: str) -> None:
    images = photo(64, 20, 24, seed=2)
    batch = ImageBatch(images, row_ids=np.arange(64) * 3)
    ops = [ColorJitter(0.6, 0.6, 0.6, hue, backend=backend), Normalize()]
    rng = SampleRandom(batch.row_ids, seed=11)
    fused, params = Compose(ops).forward(batch, rng)
    reference, want = unfused(ops, batch, rng)
    assert fused.images.dtype == np.float32 and fused.images.shape == reference.images.shape
    # on the 0..1 scale the two differ by the skipped rounding: at most half a grey level
    gap = np.abs(fused.images - reference.images) * STD
    assert gap.max() <= 0.5 / 255 + 1e-5
    assert gap.mean() > 1e-4  # the fused path ran (it does not round)
    for got, expected in zip(params["ops"], want, strict=True):
        same_params(got, expected)
    # channels-first memory, as Normalize gives it: the torch layout is free
    assert fused.images.transpose(0, 3, 1, 2).flags["C_CONTIGUOUS"]
    replay = Compose(ops).apply(batch, params).images
    np.testing.assert_allclose(replay, fused.images, atol=0.5 / 255 / STD.min() + 1e-5)


def test_jitter_with_normalize_mixes_identity_and_clipped_samples() -> None:
    images = photo(40, 16, 16, seed=5)
    images[:8] = 255  # saturated: every clamp cuts
    batch = ImageBatch(images, row_ids=np.arange(40))
    ops = [ColorJitter(brightness=(0.5, 1.8), contrast=0.9, saturation=(0.0, 2.0)),
           Normalize(mean=(0.5, 0.4, 0.3), std=(0.2, 0.3, 0.25))]
    rng = SampleRandom(batch.row_ids, seed=4)
    fused, _ = Compose(ops).forward(batch, rng)
    reference, _ = unfused(ops, batch, rng)
    std = np.array([0.2, 0.3, 0.25], np.float32)
    assert (np.abs(fused.images - reference.images) * std).max() <= 0.5 / 255 + 1e-5
    # an op that changes nothing (all factors 1) goes through the same fused write
    still = Compose([ColorJitter(), Normalize()]).forward(batch, rng)[0].images
    np.testing.assert_allclose(still, Normalize()(batch).images, atol=1e-5)


def test_no_fusion_where_the_pair_does_not_match() -> None:
    images = photo(8, 16, 16)
    batch = ImageBatch(images, row_ids=np.arange(8))
    ops = [ColorJitter(0.4), Grayscale(p=0.5), Normalize()]
    rng = SampleRandom(batch.row_ids, seed=0)
    fused, _ = Compose(ops).forward(batch, rng)
    reference, _ = unfused(ops, batch, rng)
    np.testing.assert_array_equal(fused.images, reference.images)


def test_fused_ops_run_on_mixing_partners_too() -> None:
    images = photo(16, 24, 24)
    labels = np.arange(16) % 4
    batch = ImageBatch(images, row_ids=np.arange(16), labels=labels, num_classes=4)
    partner_ids = (np.arange(16) + 5) % 16
    batch.partners = ImageBatch(images[partner_ids], row_ids=partner_ids, labels=labels[partner_ids],
                                num_classes=4)
    ops = [RandomResizedCrop(16), HorizontalFlip(), MixUp(alpha=0.4)]
    rng = SampleRandom(batch.row_ids, seed=9)
    out, params = Compose(ops).forward(batch, rng)
    # each partner looks exactly as it does as a sample of its own
    alone, _ = Compose(ops[:2]).forward(ImageBatch(images, row_ids=np.arange(16)), rng)
    weight = np.asarray(params["ops"][2]["lam"], np.float64).reshape(-1, 1, 1, 1)
    expected = weight * alone.images + (1 - weight) * alone.images[partner_ids]
    np.testing.assert_allclose(out.images.astype(np.float64), expected, atol=1.0)
