import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from datakiln.dataset._sketches import (
    DistinctSketch,
    FrequentItems,
    Moments,
    RowSample,
    hash_values,
)

floats = st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=60)


@settings(max_examples=60, deadline=None)
@given(floats, floats)
def test_merged_moments_equal_numpy(a, b):
    left = Moments.of_array(pa.array(a))
    left.merge(Moments.of_array(pa.array(b)))
    both = np.array(a + b)
    assert left.n == both.size
    assert np.isclose(left.mean, both.mean(), rtol=1e-9, atol=1e-6)
    assert np.isclose(left.m2, ((both - both.mean()) ** 2).sum(), rtol=1e-7, atol=1e-3)
    assert (left.min, left.max) == (both.min(), both.max())


def test_weighted_moments_equal_the_expanded_values():
    values, weights = np.array([1.0, 2.0, 5.0]), np.array([3, 1, 2])
    moments = Moments.of(values, weights)
    expanded = np.repeat(values, weights)
    assert moments.n == 6 and np.isclose(moments.mean, expanded.mean())
    assert np.isclose(moments.std, expanded.std(ddof=1))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(max_size=8), max_size=200))
def test_distinct_sketch_is_exact_below_k(words):
    sketch = DistinctSketch()
    sketch.add_hashes(hash_values(pa.array(words, pa.string())))
    assert sketch.estimate() == len(set(words))


def test_distinct_sketch_estimate_and_merge_order():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 10**12, 300_000)
    parts = np.array_split(values, 7)
    forward, backward = DistinctSketch(), DistinctSketch()
    for part in parts:
        forward.add_hashes(hash_values(pa.array(part)))
    for part in reversed(parts):
        piece = DistinctSketch()
        piece.add_hashes(hash_values(pa.array(part)), floor=backward)
        backward.merge(piece)
    assert np.array_equal(forward.hashes, backward.hashes)
    assert abs(forward.estimate() / len(np.unique(values)) - 1) < 0.05


def test_string_hash_depends_on_every_byte():
    words = pa.array(["user_000123", "user_000132", "user_001123", "", "a", "a\x00"])
    hashes = hash_values(words)
    assert len(set(hashes.tolist())) == 6
    sliced = hash_values(pa.array(["zz", "user_000123"]).slice(1))
    assert sliced[0] == hashes[0]


def test_frequent_items_are_lower_bounds_within_the_error():
    rng = np.random.default_rng(0)
    values = np.concatenate([np.repeat([1, 2, 3], [5000, 3000, 1000]), rng.integers(10, 10**6, 20_000)])
    rng.shuffle(values)
    sketch = FrequentItems(capacity=64)
    for part in np.array_split(values, 10):
        counts = pa.array(part).value_counts()
        sketch.merge(FrequentItems.of_counts(counts.field("values"),
                                             counts.field("counts").to_numpy(), 64))
    top = dict(sketch.top(3))
    assert set(top) == {1, 2, 3}
    truth = {1: 5000, 2: 3000, 3: 1000}
    for key, count in top.items():
        assert truth[key] - sketch.error <= count <= truth[key]


def test_row_sample_is_uniform_and_bounded():
    rng = np.random.default_rng(0)
    sample = RowSample(1000)
    for start in range(0, 100_000, 10_000):
        sample.merge(RowSample.of(pa.table({"i": np.arange(start, start + 10_000)}), 1000, rng))
    picked = sample.table["i"].to_numpy()
    assert len(picked) == 1000 and len(np.unique(picked)) == 1000
    assert abs(picked.mean() - 50_000) < 3 * 28_867 / np.sqrt(1000)
