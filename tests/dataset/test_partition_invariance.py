"""Samples keyed by row index: profile quantiles, the Cleaner's sample and the copula's fit do not
depend on how the data is cut into row groups, batches or (on Ray) blocks."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import datakiln
from datakiln.clean.base import sample_table
from datakiln.dataset._sketches import RowRandom, RowSample, row_key, row_uniform
from datakiln.synth import GaussianCopula


def _table(n: int = 5000) -> pa.Table:
    rng = np.random.default_rng(3)
    return pa.table({"a": rng.normal(size=n), "b": rng.integers(0, 50, n),
                     "c": pa.array(rng.choice(["x", "y", "z"], n)), "d": rng.exponential(size=n)})


def _two_layouts(tmp_path):
    table = _table()
    pq.write_table(table, tmp_path / "one.parquet")
    pq.write_table(table, tmp_path / "many.parquet", row_group_size=77)
    return datakiln.read(tmp_path / "one.parquet"), datakiln.read(tmp_path / "many.parquet")


def test_row_uniform_is_a_function_of_key_and_row_index():
    key = row_key(7, 1)
    whole = row_uniform(key, np.arange(1000, dtype=np.uint64))
    parts = np.concatenate([row_uniform(key, np.arange(a, b, dtype=np.uint64))
                            for a, b in ((0, 13), (13, 500), (500, 1000))])
    assert np.array_equal(whole, parts)
    assert 0.0 <= whole.min() and whole.max() < 1.0 and abs(whole.mean() - 0.5) < 0.03
    assert not np.array_equal(whole, row_uniform(row_key(8, 1), np.arange(1000, dtype=np.uint64)))
    draws = RowRandom(key, np.arange(10, dtype=np.uint64))
    first, second = draws.random(10), draws.random(10)
    assert not np.array_equal(first, second)  # one stream per column
    mask = np.arange(10) % 2 == 0
    assert np.array_equal(RowRandom(key, np.arange(10, dtype=np.uint64)).take(mask).random(5), first[mask])


def test_keyed_row_sample_is_the_same_for_any_batching():
    table = _table(3000)
    whole = RowSample(100, key=row_key(1))
    whole.add(table, first_row=0)
    pieces = RowSample(100, key=row_key(1))
    for start in range(0, 3000, 7):
        pieces.add(table.slice(start, 7), first_row=start)
    assert whole.table.equals(pieces.table) and whole.table.num_rows == 100


def test_profile_cleaner_sample_and_copula_do_not_depend_on_row_groups(tmp_path):
    one, many = _two_layouts(tmp_path)
    c1 = one.profile(sample_rows=256).to_dict()["columns"]
    c2 = many.profile(sample_rows=256).to_dict()["columns"]
    for x, y in zip(c1, c2):  # moments merge in another order: equal within float rounding
        assert {k: v for k, v in x.items() if k not in ("mean", "std")} == \
            {k: v for k, v in y.items() if k not in ("mean", "std")}
        for k in ("mean", "std"):
            assert (x.get(k) is None and y.get(k) is None) or abs(x[k] - y[k]) <= 1e-12 * max(1, abs(x[k]))
    assert [c["quantiles"] for c in c1 if "quantiles" in c] and \
        [c.get("quantiles") for c in c1] == [c.get("quantiles") for c in c2]  # the sample is the same
    assert sample_table(one, ["a", "c"], 300, 5, None).equals(sample_table(many, ["a", "c"], 300, 5, None))
    m1, m2 = GaussianCopula(sample_rows=500).fit(one), GaussianCopula(sample_rows=500).fit(many)
    for c1, c2 in zip(m1.components_, m2.components_):
        np.testing.assert_allclose(c1.correlation, c2.correlation, atol=1e-12)
    assert m1.sample(500, seed=1).equals(m2.sample(500, seed=1))
