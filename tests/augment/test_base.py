"""The augmentation contract: SampleRandom keyed by row id, Compose / RandomApply / OneOf
(determinism by row id, independent streams, replay of recorded parameters)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from datakiln.augment import ColorJitter, Compose, GaussianNoise, Grayscale, Normalize, OneOf, RandomApply
from datakiln.augment._random import SampleRandom
from datakiln.augment.base import ImageBatch
from datakiln.errors import InvalidArgumentError


def images(n: int = 64, size: int = 16) -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def run(op, x, row_ids=None, seed=0, epoch=0):
    ids = np.arange(len(x)) if row_ids is None else np.asarray(row_ids)
    batch = ImageBatch(images=x, row_ids=ids)
    return op.forward(batch, SampleRandom(ids, seed=seed, epoch=epoch))


# -- SampleRandom -----------------------------------------------------------------------------

def test_draws_depend_only_on_the_row_id_seed_and_epoch():
    ids = np.arange(1000)
    full = SampleRandom(ids, seed=3).uniform(shape=(2,))
    picked = np.array([999, 0, 512])
    np.testing.assert_array_equal(SampleRandom(picked, seed=3).uniform(shape=(2,)), full[picked])
    assert not np.array_equal(SampleRandom(ids, seed=4).uniform(shape=(2,)), full)
    assert not np.array_equal(SampleRandom(ids, seed=3, epoch=1).uniform(shape=(2,)), full)
    assert stats.kstest(full.ravel(), "uniform").pvalue > 0.01
    normal = SampleRandom(np.arange(20000), seed=1).normal()
    assert stats.kstest(normal, "norm").pvalue > 0.01


def test_child_streams_and_successive_calls_are_independent():
    rng = SampleRandom(np.arange(5000), seed=1)
    a, b = rng.child("0/ColorJitter").uniform(), rng.child("1/ColorJitter").uniform()
    again = rng.child("0/ColorJitter").uniform()
    np.testing.assert_array_equal(a, again)
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.05
    first, second = rng.uniform(), rng.uniform()
    assert abs(np.corrcoef(first, second)[0, 1]) < 0.05
    sub = rng.child("x").subset(np.array([10, 20]))
    np.testing.assert_array_equal(sub.uniform(), rng.child("x").uniform()[[10, 20]])


def test_integers_and_choice_cover_their_ranges():
    rng = SampleRandom(np.arange(30000), seed=2)
    values = rng.integers(3, 9)
    assert values.min() == 3 and values.max() == 8
    counts = np.bincount(rng.choice(3, [0.2, 0.3, 0.5]), minlength=3) / 30000
    np.testing.assert_allclose(counts, [0.2, 0.3, 0.5], atol=0.015)


# -- Compose ---------------------------------------------------------------------------------

def test_compose_is_deterministic_by_row_whatever_the_batch():
    x = images(64)
    pipe = Compose([ColorJitter(0.4, 0.4, 0.4), GaussianNoise(4.0), Normalize()])
    full, _ = run(pipe, x, seed=5)
    for size in (1, 7, 33):
        order = np.random.default_rng(size).permutation(64)[:size]
        part, _ = run(pipe, x[order], row_ids=order, seed=5)
        np.testing.assert_array_equal(part.images, full.images[order])


def test_compose_replays_recorded_parameters_exactly():
    x = images(32)
    pipe = Compose([ColorJitter(0.4, 0.4, 0.4, 0.1), RandomApply(Grayscale(), p=0.5),
                    OneOf([GaussianNoise(3.0), Normalize()]), ])
    out, params = run(pipe, x, seed=9)
    assert len(params["ops"]) == 3
    replayed = pipe.apply(ImageBatch(images=x, row_ids=np.arange(32)), params)
    assert len(replayed.images) == len(out.images)
    for a, b in zip(replayed.images, out.images):
        np.testing.assert_array_equal(a, b)


def test_each_op_has_its_own_stream():
    x = images(200)
    alone, p_alone = run(Compose([ColorJitter(0.4)]), x)
    longer, p_longer = run(Compose([ColorJitter(0.4), GaussianNoise(2.0)]), x)
    # appending an op leaves the earlier op's draws as they were
    np.testing.assert_array_equal(p_alone["ops"][0]["brightness"], p_longer["ops"][0]["brightness"])
    twice = run(Compose([ColorJitter(0.4), ColorJitter(0.4)]), x)[1]
    first, second = twice["ops"][0]["brightness"], twice["ops"][1]["brightness"]
    assert abs(np.corrcoef(first, second)[0, 1]) < 0.2
    assert not np.array_equal(run(Compose([ColorJitter(0.4)]), x, epoch=1)[1]["ops"][0]["brightness"],
                              p_alone["ops"][0]["brightness"])


def test_compose_rejects_what_is_not_an_op():
    with pytest.raises(InvalidArgumentError, match="augmentation ops"):
        Compose([ColorJitter(0.1), "flip"])


# -- RandomApply, OneOf ----------------------------------------------------------------------

def test_random_apply_touches_only_the_chosen_rows():
    x = images(400)
    op = RandomApply(ColorJitter(brightness=(0.0, 0.0)), p=0.3)  # chosen rows turn black
    out, params = run(op, x)
    chosen = params["applied"]
    assert 0.24 < chosen.mean() < 0.36
    assert np.all(out.images[chosen] == 0)
    np.testing.assert_array_equal(out.images[~chosen], x[~chosen])
    part, _ = run(op, x[50:60], row_ids=np.arange(50, 60))
    np.testing.assert_array_equal(part.images, out.images[50:60])
    with pytest.raises(InvalidArgumentError, match="0 <= p <= 1"):
        RandomApply(Grayscale(), p=1.5)


def test_one_of_applies_exactly_one_op_with_the_given_weights():
    x = images(3000, size=4)
    black = ColorJitter(brightness=(0.0, 0.0))
    white = ColorJitter(brightness=(100.0, 100.0))
    op = OneOf([black, white], p=[0.25, 0.75])
    out, params = run(op, x, seed=1)
    which = params["choice"]
    assert abs((which == 0).mean() - 0.25) < 0.03
    assert np.all(out.images[which == 0] == 0)
    # brightness 100 saturates every channel that is not 0
    assert np.all(out.images[which == 1][x[which == 1] > 2] == 255)
    part, _ = run(op, x[100:110], row_ids=np.arange(100, 110), seed=1)
    np.testing.assert_array_equal(part.images, out.images[100:110])
    with pytest.raises(InvalidArgumentError, match="one non-negative weight per op"):
        OneOf([black, white], p=[1.0])
