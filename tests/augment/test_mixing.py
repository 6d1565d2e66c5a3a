"""RandomErasing, MixUp, CutMix and the partner derangement, checked against hand-computed
expectations (label weights = lambda, CutMix weight = pasted area)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from datakiln.augment import ColorJitter, Compose, CutMix, MixUp, RandomErasing
from datakiln.augment._random import SampleRandom, partner_rows
from datakiln.augment.base import ImageBatch
from datakiln.errors import InvalidArgumentError


def mixing_batch(n: int = 64, size: int = 32, num_classes: int = 10, seed: int = 0,
                 row_ids=None) -> ImageBatch:
    """Rows with partners from partner_rows, as the loader builds them; each image is a
    constant grey level derived from its row id so pasted pixels can be told apart."""
    ids = np.arange(n) if row_ids is None else np.asarray(row_ids)
    n_rows = max(1000, int(ids.max()) + 1)

    def images(rows):
        return np.broadcast_to((rows * 37 % 251 + 2).astype(np.uint8)[:, None, None, None],
                               (len(rows), size, size, 3)).copy()

    partners = partner_rows(ids, n_rows, seed=seed)
    batch = ImageBatch(images=images(ids), row_ids=ids, labels=ids % num_classes,
                       num_classes=num_classes)
    batch.partners = ImageBatch(images=images(partners), row_ids=partners,
                                labels=partners % num_classes, num_classes=num_classes)
    return batch


def forward(op, batch, seed=0):
    return op.forward(batch, SampleRandom(batch.row_ids, seed=seed))


def test_partner_rows_is_a_keyed_derangement():
    for n in (2, 3, 10, 1000, 4097):
        ids = np.arange(n)
        partners = partner_rows(ids, n, seed=5, epoch=1)
        assert sorted(partners.tolist()) == ids.tolist()  # a bijection
        assert not np.any(partners == ids)  # nobody is its own partner
        row, seen = 0, set()
        for _ in range(n):  # one cycle through every row
            seen.add(row)
            row = partners[row]
        assert len(seen) == n and row == 0
    shuffled = np.array([17, 3, 999, 0])
    np.testing.assert_array_equal(partner_rows(shuffled, 1000, seed=5),
                                  partner_rows(np.arange(1000), 1000, seed=5)[shuffled])
    assert not np.array_equal(partner_rows(np.arange(50), 50, seed=5, epoch=0),
                              partner_rows(np.arange(50), 50, seed=5, epoch=1))
    assert partner_rows(np.array([0]), 1).tolist() == [0]
    with pytest.raises(InvalidArgumentError, match="n_rows=10"):
        partner_rows(np.array([3, 10]), 10)


def test_mixup_blends_images_and_labels_by_lambda():
    batch = mixing_batch()
    out, params = forward(MixUp(alpha=0.4), batch)
    lam = params["lam"]
    assert lam.shape == (64,) and np.all((lam >= 0) & (lam <= 1)) and np.ptp(lam) > 0.3
    own = batch.images[:, 0, 0, 0].astype(np.float64)
    other = batch.partners.images[:, 0, 0, 0].astype(np.float64)
    np.testing.assert_array_equal(out.images[:, 0, 0, 0], np.rint(lam * own + (1 - lam) * other))
    assert out.labels.dtype == np.float32 and out.labels.shape == (64, 10)
    rows = np.arange(64)
    same = batch.labels == batch.partners.labels
    np.testing.assert_allclose(out.labels[rows, batch.labels][~same], lam[~same], atol=1e-6)
    np.testing.assert_allclose(out.labels[rows, batch.partners.labels][~same], 1 - lam[~same], atol=1e-6)
    np.testing.assert_allclose(out.labels.sum(axis=1), 1.0, atol=1e-6)


def test_mixup_float_images_and_lambda_distribution():
    batch = mixing_batch(n=4000)
    batch.images = batch.images.astype(np.float32) / 255
    batch.partners.images = batch.partners.images.astype(np.float32) / 255
    out, params = forward(MixUp(alpha=0.2), batch)
    lam = params["lam"]
    expected = lam * batch.images[:, 0, 0, 0] + (1 - lam) * batch.partners.images[:, 0, 0, 0]
    np.testing.assert_allclose(out.images[:, 0, 0, 0], expected, atol=1e-6)
    assert stats.kstest(params["lam"], stats.beta(0.2, 0.2).cdf).pvalue > 0.01


def test_cutmix_label_weight_is_the_pasted_area():
    batch = mixing_batch(n=256, size=40)
    batch.images = np.zeros_like(batch.images)
    batch.partners.images = np.full_like(batch.partners.images, 255)
    out, params = forward(CutMix(alpha=1.0), batch, seed=3)
    pasted = (out.images[..., 0] == 255).mean(axis=(1, 2))
    np.testing.assert_allclose(1 - params["lam"], pasted, atol=1e-12)
    assert 0.3 < pasted.mean() < 0.7 and pasted.std() > 0.1  # per sample, Beta(1, 1)-like
    rows = np.arange(256)
    different = batch.labels != batch.partners.labels
    np.testing.assert_allclose(out.labels[rows, batch.labels][different],
                               (1 - pasted)[different], atol=1e-6)
    y0, y1, x0, x1 = params["box"].T
    assert np.all((0 <= y0) & (y0 <= y1) & (y1 <= 40) & (0 <= x0) & (x0 <= x1) & (x1 <= 40))


def test_cutmix_pastes_masks_with_the_image():
    batch = mixing_batch(n=8)
    batch.masks = [np.zeros((32, 32), np.int64) for _ in range(8)]
    batch.partners.masks = [np.ones((32, 32), np.int64) for _ in range(8)]
    out, params = forward(CutMix(), batch)
    for i in range(8):
        pasted = out.images[i][..., 0] == batch.partners.images[i, 0, 0, 0]
        if batch.images[i, 0, 0, 0] != batch.partners.images[i, 0, 0, 0]:
            np.testing.assert_array_equal(out.masks[i] == 1, pasted)
    assert batch.masks[0].max() == 0  # the input is not modified


def test_mixing_replays_and_is_keyed_by_row():
    batch = mixing_batch(n=64)
    for op in (MixUp(), CutMix()):
        out, params = forward(op, batch, seed=2)
        np.testing.assert_array_equal(op.apply(batch, params).images, out.images)
        sub = mixing_batch(n=7, row_ids=[30, 2, 63, 5, 6, 7, 1])
        small, _ = forward(op, sub, seed=2)
        np.testing.assert_array_equal(small.images[0], out.images[30])
        np.testing.assert_array_equal(small.labels[2], out.labels[63])


def test_ops_before_mixing_run_on_partners_with_their_own_row_ids():
    batch = mixing_batch(n=16)
    jitter = ColorJitter(0.5, 0.5, 0.5)
    pipe = Compose([jitter, MixUp()])
    out, params = pipe.forward(batch, SampleRandom(batch.row_ids, seed=4))
    # the partner as a sample of its own: same stream name, its own row ids
    partner_alone = ImageBatch(images=batch.partners.images, row_ids=batch.partners.row_ids)
    rng = SampleRandom(partner_alone.row_ids, seed=4).child("0/ColorJitter")
    jittered_partners = jitter.forward(partner_alone, rng)[0].images
    own = jitter.apply(batch, params["ops"][0]).images
    lam = params["ops"][1]["lam"][:, None, None, None]
    expected = np.rint(lam * own + (1 - lam) * jittered_partners)
    np.testing.assert_array_equal(out.images, expected)


def test_mixing_errors_say_how_to_fix():
    batch = mixing_batch(n=4)
    alone = ImageBatch(images=batch.images, row_ids=batch.row_ids, labels=batch.labels, num_classes=10)
    with pytest.raises(InvalidArgumentError, match="loader"):
        MixUp()(alone)
    no_classes = mixing_batch(n=4)
    no_classes.num_classes = None
    with pytest.raises(InvalidArgumentError, match="num_classes"):
        CutMix()(no_classes)
    assert CutMix(num_classes=10)(no_classes).labels.shape == (4, 10)
    wrong = mixing_batch(n=4)
    wrong.partners.images = wrong.partners.images[:, :16]
    with pytest.raises(InvalidArgumentError, match="resize"):
        MixUp()(wrong)
    out_of_range = mixing_batch(n=4)
    out_of_range.labels = np.array([0, 1, 2, 12])
    with pytest.raises(InvalidArgumentError, match="12"):
        MixUp()(out_of_range)
    with pytest.raises(InvalidArgumentError, match="alpha"):
        MixUp(alpha=0)


def test_random_erasing_area_ratio_and_value():
    images = np.full((512, 40, 50, 3), 200, np.uint8)
    batch = ImageBatch(images=images, row_ids=np.arange(512))
    op = RandomErasing(p=0.7, scale=(0.05, 0.2), ratio=(0.5, 2.0), value=(1, 2, 3))
    out, params = forward(op, batch)
    applied = params["applied"]
    assert 0.6 < applied.mean() < 0.8
    np.testing.assert_array_equal(out.images[~applied], images[~applied])
    erased = (out.images[..., 0] == 1)
    np.testing.assert_array_equal(out.images[erased], np.broadcast_to([1, 2, 3], (erased.sum(), 3)))
    area = erased.mean(axis=(1, 2))[applied]
    assert area.min() >= 0.05 * 0.8 and area.max() <= 0.2 * 1.2
    y0, y1, x0, x1 = params["box"][applied].T
    aspect = (y1 - y0) / (x1 - x0)
    assert aspect.min() > 0.5 * 0.75 and aspect.max() < 2.0 * 1.35
    assert len({tuple(b) for b in params["box"][applied]}) > 0.9 * applied.sum()  # per sample
    np.testing.assert_array_equal(op.apply(batch, params).images, out.images)
    assert images.min() == 200  # the input is untouched


def test_random_erasing_mixed_sizes_and_checks():
    images = [np.full((20, 30, 3), 9, np.uint8), np.full((64, 16, 3), 9, np.uint8)]
    out = RandomErasing(p=1.0)(ImageBatch(images=images, row_ids=np.array([0, 1])))
    assert [im.shape for im in out.images] == [(20, 30, 3), (64, 16, 3)]
    assert all((im == 0).any() for im in out.images)
    with pytest.raises(InvalidArgumentError, match="scale"):
        RandomErasing(scale=(0.5, 0.1))
    with pytest.raises(InvalidArgumentError, match="one number per channel"):
        RandomErasing(value="random")
    with pytest.raises(InvalidArgumentError, match="2 channels but row 1 has 3"):
        RandomErasing(p=1.0, value=(1, 2))(ImageBatch(images=images, row_ids=np.array([1, 2])))


def test_through_the_loader_a_row_is_mixed_the_same_in_any_batch():
    from tests.conftest import sample_dataset

    import datakiln
    from datakiln.augment import parse_ops

    ds = datakiln.read_images(str(sample_dataset("cifar10_jpg_subset/train")))
    transform = parse_ops("jitter:0.4; cutmix; normalize")
    by_path = {}
    for batch_size in (3, 10):
        loader = ds.loader(batch_size, transform=transform, format="numpy", seed=4)
        for batch in loader:
            assert batch["label"].shape == (len(batch["path"]), 10)
            np.testing.assert_allclose(batch["label"].sum(axis=1), 1.0, atol=1e-6)
            for path, image, label in zip(batch["path"], batch["image"], batch["label"]):
                if path in by_path:
                    np.testing.assert_array_equal(by_path[path][0], image)
                    np.testing.assert_array_equal(by_path[path][1], label)
                by_path[path] = (image, label)
    assert len(by_path) == 10
    # one image per class and nobody is its own partner: most labels mix two classes
    assert sum(int((label > 0).sum() == 2) for _, label in by_path.values()) >= 7
