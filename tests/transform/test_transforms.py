import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import datakiln
from datakiln.errors import InvalidArgumentError, SchemaError
from datakiln.transform import (
    DatetimeEncoder,
    MinMaxScaler,
    MissingIndicator,
    OneHotEncoder,
    OrdinalEncoder,
    RobustScaler,
    StandardScaler,
    Transform,
    load,
)

ALL = [StandardScaler, MinMaxScaler, RobustScaler, OrdinalEncoder, OneHotEncoder,
       DatetimeEncoder, MissingIndicator]


def _assert_round_trip(original: pa.Table, back: pa.Table) -> None:
    assert back.schema.equals(original.schema)
    for name in original.column_names:
        left, right = original[name], back[name]
        if pa.types.is_floating(left.type):
            a = left.to_numpy(zero_copy_only=False).astype(float)
            b = right.to_numpy(zero_copy_only=False).astype(float)
            assert np.array_equal(np.isnan(a), np.isnan(b)), name
            assert np.allclose(a[~np.isnan(a)], b[~np.isnan(b)], rtol=1e-12, atol=1e-9), name
        else:
            assert left.equals(right), name  # integers, decimals, categories, datetimes, nulls


@pytest.mark.parametrize("kind", ALL)
def test_every_transform_round_trips_every_kind(kind, every_kind, tmp_path):
    transform = kind().fit(datakiln.from_arrow(every_kind))  # fitted streaming from a Dataset
    forward = transform.transform(every_kind)
    _assert_round_trip(every_kind, transform.inverse_transform(forward))
    transform.save(tmp_path / "t.json")
    again = load(tmp_path / "t.json")  # plain JSON, loads to an equal transform
    assert again.transform(every_kind).equals(forward)
    assert json.loads((tmp_path / "t.json").read_text())["type"] == kind.__name__


@pytest.mark.parametrize("kind", ALL)
def test_every_transform_round_trips_adult(kind, adult):
    transform = kind().fit(adult)
    _assert_round_trip(adult, transform.inverse_transform(transform.transform(adult)))


def test_streaming_fit_equals_in_memory_fit(adult_path):
    from tests.conftest import ADULT_COLUMNS

    streamed = datakiln.read(adult_path, names=ADULT_COLUMNS, block_bytes=100_000)
    whole = streamed.to_arrow()
    for kind in (StandardScaler, MinMaxScaler, OrdinalEncoder, OneHotEncoder):
        a, b = kind().fit(streamed), kind().fit(whole)
        for key in a._state:
            left, right = getattr(a, key), getattr(b, key)
            if key in ("center_", "scale_"):
                assert left.keys() == right.keys()
                assert all(np.isclose(left[k], right[k], rtol=1e-12) for k in left)
            else:
                assert left == right, key


def test_scaler_values(adult):
    age = adult["age"].to_numpy()
    scaled = StandardScaler(["age"]).fit(adult).transform(adult)["age"].to_numpy()
    assert np.allclose(scaled, (age - age.mean()) / age.std())
    unit = MinMaxScaler(["age"], feature_range=(-1, 1)).fit(adult).transform(adult)["age"]
    assert pc.min(unit).as_py() == -1 and pc.max(unit).as_py() == 1
    robust = RobustScaler(["age"]).fit(adult)
    q1, median, q3 = np.quantile(age, [0.25, 0.5, 0.75])  # all rows fit the sample: exact
    assert (robust.center_["age"], robust.scale_["age"]) == (median, q3 - q1)


def test_one_hot_other_bucket_and_unseen_categories():
    table = pa.table({"c": ["a"] * 50 + ["b"] * 45 + ["rare"] * 5 + [None] * 2})
    encoder = OneHotEncoder(min_frequency=0.1).fit(table)
    assert encoder.outputs_["c"] == ["c=a", "c=b", "c=__other__"]
    out = encoder.transform(pa.table({"c": ["a", "rare", "never seen", None]}))
    assert out.to_pydict() == {"c=a": [1, 0, 0, 0], "c=b": [0, 0, 0, 0],
                               "c=__other__": [0, 1, 1, 0]}
    assert encoder.inverse_transform(out)["c"].to_pylist() == ["a", None, None, None]
    labelled = OneHotEncoder(max_categories=1, other_value="OTHER").fit(table)
    assert labelled.inverse_transform(labelled.transform(table))["c"].to_pylist()[49:52] == [
        "a", "OTHER", "OTHER"]


def test_ordinal_unknown_categories():
    encoder = OrdinalEncoder().fit(pa.table({"c": ["x", "y"]}))
    with pytest.raises(SchemaError, match="'z' was not seen"):
        encoder.transform(pa.table({"c": ["z"]}))
    lenient = OrdinalEncoder(unknown="null").fit(pa.table({"c": ["x", "y"]}))
    assert lenient.transform(pa.table({"c": ["y", "z", None]}))["c"].to_pylist() == [1, None, None]


def test_datetime_units_and_zones(every_kind):
    days = DatetimeEncoder(["birthday"], unit="D").fit(every_kind).transform(every_kind)
    assert days["birthday"][0].as_py() == (every_kind["birthday"][0].as_py()
                                           - __import__("datetime").date(1970, 1, 1)).days
    seconds = DatetimeEncoder(["joined"]).fit(every_kind)
    value = seconds.transform(every_kind)["joined"][0].as_py()
    assert value == every_kind["joined"][0].as_py().timestamp()


def test_errors_are_clear(every_kind, tmp_path):
    with pytest.raises(SchemaError, match="scales numbers"):
        StandardScaler(["city"]).fit(every_kind)
    with pytest.raises(SchemaError, match=r"no column\(s\) \['nope'\]"):
        StandardScaler(["nope"]).fit(every_kind)
    with pytest.raises(InvalidArgumentError, match="not fitted"):
        StandardScaler().transform(every_kind)
    with pytest.raises(SchemaError, match="timestamp or date"):
        DatetimeEncoder(["note"]).fit(every_kind)
    with pytest.raises(InvalidArgumentError, match="feature_range"):
        MinMaxScaler(feature_range=(1, 0)).fit(every_kind)
    fitted = StandardScaler().fit(every_kind).to_dict()
    fitted["version"] = 99
    with pytest.raises(SchemaError, match="newer datakiln"):
        Transform.from_dict(fitted)
    (tmp_path / "x.json").write_text("{broken")
    with pytest.raises(SchemaError, match="cannot read transform"):
        load(tmp_path / "x.json")


numbers = st.lists(st.one_of(st.none(), st.integers(-(2**40), 2**40)), min_size=1, max_size=50)
reals = st.lists(st.one_of(st.none(), st.floats(-1e9, 1e9, allow_nan=False)), min_size=1, max_size=50)
words = st.lists(st.one_of(st.none(), st.text(max_size=6)), min_size=1, max_size=50)


@settings(max_examples=60, deadline=None)
@given(numbers, reals, st.sampled_from([StandardScaler, MinMaxScaler, RobustScaler]))
def test_scalers_round_trip_any_numbers(ints, floats, kind):
    size = min(len(ints), len(floats))
    table = pa.table({"i": pa.array(ints[:size], pa.int64()),
                      "f": pa.array(floats[:size], pa.float64())})
    scaler = kind().fit(table)
    back = scaler.inverse_transform(scaler.transform(table))
    assert back["i"].equals(table["i"])
    a = np.array([np.nan if v is None else v for v in table["f"].to_pylist()])
    b = np.array([np.nan if v is None else v for v in back["f"].to_pylist()])
    assert np.allclose(a, b, rtol=1e-9, atol=1e-6, equal_nan=True)


@settings(max_examples=60, deadline=None)
@given(words, st.sampled_from([OrdinalEncoder, OneHotEncoder]))
def test_encoders_round_trip_any_categories(values, kind):
    table = pa.table({"c": pa.array(values, pa.string()), "n": list(range(len(values)))})
    encoder = kind(["c"]).fit(table)
    back = encoder.inverse_transform(encoder.transform(table))
    assert back.equals(table)


@pytest.mark.parametrize("kind", [StandardScaler, MinMaxScaler, RobustScaler])
def test_scalers_take_int64_past_2_53(kind):
    """Nanosecond ticks stored as int64 (~1.7e18): 9ae0d08 raised ArrowInvalid 'not in range'."""
    rng = np.random.default_rng(0)
    ticks = 1_700_000_000_000_000_000 + rng.integers(0, 10**15, 2_000)
    table = pa.table({"t": pa.array([*ticks.tolist(), None], pa.int64()), "x": np.arange(2_001.0)})
    scaler = kind().fit(table)
    scaled = scaler.transform(table)
    assert scaled["t"].type == pa.float64() and scaled["t"].null_count == 1
    values = scaled["t"].to_numpy(zero_copy_only=False)[:-1]
    expected = (ticks.astype(np.float64) - scaler.center_["t"]) / scaler.scale_["t"]
    assert np.allclose(values, expected, rtol=1e-9, atol=1e-9)
    back = scaler.inverse_transform(scaled)
    assert back.schema.equals(table.schema) and back["t"][-1].as_py() is None
    restored = np.array(back["t"].to_pylist()[:-1], dtype=np.int64)
    # the documented tolerance: within 2**-50 of |x| (a few units in the last place of float64)
    assert np.abs(restored - ticks).max() <= 2**-50 * ticks.max()
    assert np.allclose(back["x"].to_numpy(), table["x"].to_numpy(), rtol=1e-12, atol=1e-9)
