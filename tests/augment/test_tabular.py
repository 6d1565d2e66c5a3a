"""Tabular augmentation: jitter scaled to each column's spread, MixUp between parents."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from datakiln.augment import Compose, OneOf, RandomApply, SampleRandom
from datakiln.augment.tabular import GaussianJitter, TableBatch, TabularMixUp, table_copies
from datakiln.errors import InvalidArgumentError, SchemaError


def make_table(n: int = 20_000, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    heavy = rng.normal(0, 1, n)
    heavy[: n // 50] = 1_000.0  # outliers: the std is inflated, the IQR is not
    return pa.table({
        "income": rng.normal(50_000, 8_000, n),
        "age": rng.integers(18, 90, n).astype(np.int32),
        "heavy": heavy,
        "city": rng.choice(["paris", "lyon", "nice"], n),
        "label": rng.integers(0, 2, n),
    })


def test_jitter_noise_is_scale_times_the_fitted_std() -> None:
    table = make_table()
    jitter = GaussianJitter(0.05, exclude=["label"]).fit(table)
    assert set(jitter.spread_) == {"income", "age", "heavy"}
    assert jitter.spread_["income"] == pytest.approx(np.std(table["income"].to_numpy(), ddof=1))
    out = jitter(TableBatch(table, np.arange(table.num_rows)), seed=3).table
    for name in ("income", "heavy"):
        noise = out[name].to_numpy() - table[name].to_numpy()
        assert np.std(noise) == pytest.approx(0.05 * jitter.spread_[name], rel=0.03)
        assert abs(np.mean(noise)) < 0.05 * jitter.spread_[name] * 0.05
    assert out["age"].type == pa.int32()  # integers stay integers
    age_noise = out["age"].to_numpy() - table["age"].to_numpy()
    assert np.std(age_noise) == pytest.approx(np.sqrt((0.05 * jitter.spread_["age"]) ** 2 + 1 / 12), rel=0.05)
    assert out["city"].equals(table["city"]) and out["label"].equals(table["label"])


def test_jitter_iqr_spread_ignores_outliers() -> None:
    table = make_table()
    robust = GaussianJitter(0.1, columns=["heavy"], spread="iqr").fit(table)
    q1, q3 = np.quantile(table["heavy"].to_numpy(), [0.25, 0.75])
    assert robust.spread_["heavy"] == pytest.approx((q3 - q1) / 1.349)
    assert robust.spread_["heavy"] < 1.2 < GaussianJitter(columns=["heavy"]).fit(table).spread_["heavy"]
    out = robust(TableBatch(table, np.arange(table.num_rows)), seed=0).table
    noise = out["heavy"].to_numpy() - table["heavy"].to_numpy()
    assert np.std(noise) == pytest.approx(0.1 * robust.spread_["heavy"], rel=0.03)


def test_jitter_keeps_nulls_and_constant_columns() -> None:
    table = pa.table({"x": [1.0, None, 3.0, 4.0], "c": [5, 5, 5, 5]})
    out = GaussianJitter(0.5).fit(table)(TableBatch(table, [0, 1, 2, 3]), seed=1).table
    assert out["x"].null_count == 1 and out["x"][1].as_py() is None
    assert out["c"].to_pylist() == [5, 5, 5, 5]


def test_same_row_same_noise_in_any_batch_and_replay() -> None:
    table = make_table(200)
    jitter = GaussianJitter(0.1, exclude=["label"]).fit(table)
    whole = jitter(TableBatch(table, np.arange(200)), seed=5).table
    part_ids = np.array([150, 3, 77, 42])
    part = jitter(TableBatch(table.take(pa.array(part_ids)), part_ids), seed=5).table
    assert part.equals(whole.take(pa.array(part_ids)))
    batch = TableBatch(table, np.arange(200))
    out, params = jitter.forward(batch, SampleRandom(batch.row_ids, seed=9))
    assert params["noise"].shape == (200, 3)
    assert jitter.apply(batch, params).table.equals(out.table)
    assert not jitter(batch, seed=10).table.equals(out.table)


def test_mixup_rows_lie_between_their_parents() -> None:
    table = make_table(2_000)
    batch = TableBatch.from_table(table, partners=True, seed=1)
    partner = batch.partners.row_ids
    assert np.all(partner != np.arange(2_000))  # never mixed with itself
    mixup = TabularMixUp(0.4, exclude=["label"])
    out, params = mixup.forward(batch, SampleRandom(batch.row_ids, seed=1))
    lam = params["lam"]
    assert 0 <= lam.min() and lam.max() <= 1 and abs(lam.mean() - 0.5) < 0.03
    x, y = table["income"].to_numpy(), table["income"].to_numpy()[partner]
    mixed = out.table["income"].to_numpy()
    assert np.all(mixed >= np.minimum(x, y) - 1e-6) and np.all(mixed <= np.maximum(x, y) + 1e-6)
    np.testing.assert_allclose(mixed, lam * x + (1 - lam) * y)
    age = out.table["age"].to_numpy()
    ages = table["age"].to_numpy()
    assert out.table["age"].type == pa.int32()
    assert np.all(age >= np.minimum(ages, ages[partner])) and np.all(age <= np.maximum(ages, ages[partner]))
    own = lam >= 0.5
    cities = np.array(table["city"].to_pylist())
    assert np.array_equal(np.array(out.table["city"].to_pylist()), np.where(own, cities, cities[partner]))
    labels = table["label"].to_numpy()
    assert np.array_equal(out.table["label"].to_numpy(), np.where(own, labels, labels[partner]))
    assert mixup.apply(batch, params).table.equals(out.table)


def test_mixup_in_any_batch_and_in_a_pipeline() -> None:
    table = make_table(300)
    pipeline = Compose([GaussianJitter(0.05, exclude=["label"]).fit(table), TabularMixUp(0.3)])
    whole = pipeline(TableBatch.from_table(table, partners=True, seed=2), seed=2).table
    ids = np.array([299, 0, 17])
    part = pipeline(TableBatch.from_table(table, ids, partners=True, seed=2), seed=2).table
    assert part.equals(whole.take(pa.array(ids)))


def test_random_apply_and_one_of_merge_table_batches() -> None:
    table = make_table(100)
    jitter = GaussianJitter(0.5, columns=["income"]).fit(table)
    out = RandomApply(jitter, p=0.5)(TableBatch(table, np.arange(100)), seed=0).table
    changed = out["income"].to_numpy() != table["income"].to_numpy()
    assert 30 < changed.sum() < 70 and out.schema == table.schema
    assert out["city"].equals(table["city"])
    both = OneOf([jitter, GaussianJitter(0.5, columns=["age"]).fit(table)])(TableBatch(table, np.arange(100)))
    income = both.table["income"].to_numpy() != table["income"].to_numpy()
    age_changed = both.table["age"].to_numpy() != table["age"].to_numpy()
    assert not np.any(income & age_changed) and income.sum() > 30


def test_table_copies() -> None:
    table = make_table(10)
    jitter = GaussianJitter(0.1, exclude=["label"]).fit(table)
    out = table_copies(jitter, table, 3, seed=1)
    assert out.num_rows == 30 and out["copy"].to_pylist() == [0, 1, 2] * 10
    assert out["city"].to_pylist() == np.repeat(table["city"].to_pylist(), 3).tolist()
    assert len(set(out["income"].to_pylist()[:3])) == 3
    mixed = table_copies(TabularMixUp(), table, 2, seed=1)
    assert mixed.num_rows == 20


def test_errors_name_the_fix() -> None:
    table = make_table(10)
    with pytest.raises(InvalidArgumentError, match="fit"):
        GaussianJitter()(TableBatch(table, np.arange(10)))
    with pytest.raises(InvalidArgumentError, match="partners=True"):
        TabularMixUp()(TableBatch(table, np.arange(10)))
    with pytest.raises(SchemaError, match="'city'.*not numeric"):
        GaussianJitter(columns=["city"]).fit(table)
    with pytest.raises(SchemaError, match="no column 'nope'"):
        GaussianJitter(columns=["nope"]).fit(table)
    with pytest.raises(InvalidArgumentError, match="spread"):
        GaussianJitter(spread="mad")
    with pytest.raises(InvalidArgumentError, match="alpha"):
        TabularMixUp(0)
    with pytest.raises(InvalidArgumentError, match="one row id per row"):
        TableBatch(table, [0])
