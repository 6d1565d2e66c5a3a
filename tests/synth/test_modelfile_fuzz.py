"""Fuzz the model-file loader with deliberate edits: checksums recomputed, so only validation stands.

Each example changes one thing in a valid Gaussian-copula model file (a JSON field replaced
or deleted, an array element set to NaN, ±inf or a huge number, an array reshaped, cast,
shortened, permuted or scaled), writes the file back with fresh checksums and loads it.
Either loading raises ModelFormatError, or the model samples without error and without
garbage: numbers inside the quantile range the loaded model holds, categories from its
vocabulary, null shares equal to the model's own.
"""

import functools
import io
import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.synth._modelfiles import copula_table, repack

from datakiln.errors import ModelFormatError
from datakiln.schema import numeric_values
from datakiln.synth import GaussianCopula, load

ROWS = 4000


@functools.lru_cache(maxsize=1)
def _original() -> tuple[dict, dict]:
    """(model.json payload, members) of a small fitted copula (fitted once per session)."""
    import tempfile
    import zipfile
    from pathlib import Path

    model = GaussianCopula(by=["grade"], min_component_rows=20, grid=33, seed=0).fit(copula_table(300))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.kiln"
        model.save(path)
        with zipfile.ZipFile(path) as archive:
            members = {n: archive.read(n) for n in archive.namelist() if n != "manifest.json"}
    return json.loads(members["model.json"]), members


def _paths(value, path=()):
    """Every position inside a JSON value (objects and lists included)."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


SPECIAL = [math.nan, math.inf, -math.inf, 1e300, -1e300, 2.0, -1.0, 0.0, 0.5, 1.0, 10**19, -(10**19), 3, -7]
JSON_VALUES = st.one_of(
    st.sampled_from(SPECIAL), st.none(), st.booleans(), st.integers(-5, 60), st.text(max_size=4),
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.integers(-2, 40), max_size=4), st.lists(st.floats(-1, 2), max_size=4),
    st.dictionaries(st.sampled_from(["age", "income", "city", "grade", "x"]), st.floats(-1, 2), max_size=3))


def _edit_json(data, payload):
    paths = [p for p in _paths(payload["state"], ("state",)) if len(p) > 1]
    path = data.draw(st.sampled_from(paths), label="json path")
    parent = payload
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if isinstance(parent, dict) and data.draw(st.booleans(), label="delete"):
        del parent[last]
    elif isinstance(parent[last], (int, float)) and not isinstance(parent[last], bool) and data.draw(
            st.booleans(), label="nudge"):
        parent[last] = parent[last] * data.draw(st.sampled_from([0, -1, 0.5, 1.5, 2, 1 + 1e-3]), label="by")
    else:
        parent[last] = data.draw(JSON_VALUES, label="value")


def _edit_array(data, members) -> dict[str, np.ndarray]:
    names = sorted(n.removeprefix("arrays/").removesuffix(".npy") for n in members if n.startswith("arrays/"))
    name = data.draw(st.sampled_from(names), label="array")
    array = np.load(io.BytesIO(members[f"arrays/{name}.npy"]))
    if name == "__schema__":  # the training schema's Arrow bytes: flip a few
        for _ in range(data.draw(st.integers(1, 3), label="flips")):
            array[data.draw(st.integers(0, array.size - 1), label="at")] = data.draw(st.integers(0, 255))
        return {name: array}
    how = data.draw(st.sampled_from(["element", "reshape", "cast", "shorten", "extend", "permute", "scale",
                                     "shift", "empty"]), label="edit")
    if how == "element":
        flat = array.astype(np.float64).ravel()
        flat[data.draw(st.integers(0, flat.size - 1), label="at")] = data.draw(st.sampled_from(SPECIAL))
        array = flat.reshape(array.shape)
    elif how == "reshape":
        array = array.reshape(1, -1) if array.ndim == 1 else array.ravel()
    elif how == "cast":
        array = array.astype(data.draw(st.sampled_from([np.float32, np.int64, np.int8, np.bool_, np.uint8])))
    elif how == "shorten":
        array = array[:-1] if array.ndim == 1 else array[:-1, :-1]
    elif how == "extend":
        array = np.r_[array, array[-1:]] if array.ndim == 1 else np.pad(array, ((0, 1), (0, 1)))
    elif how == "permute":
        array = np.random.default_rng(data.draw(st.integers(0, 99))).permutation(array.ravel()).reshape(
            array.shape)
    elif how == "scale":
        array = array * data.draw(st.sampled_from([-1.0, 0.0, 1e-3, 2.0, 1e12]))
    elif how == "shift":
        array = array + data.draw(st.sampled_from([-1e9, -3.0, 0.25, 1e9, 1e18]))
    else:
        array = array[:0]
    return {name: np.ascontiguousarray(array)}


def _assert_sane(model, sample: pa.Table) -> None:
    """No values outside what the loaded model holds; null shares as the model says."""
    assert sample.schema.equals(model.output_schema())
    rows = sample.num_rows
    expected_nulls = model.null_shares()
    for name in model.modelled_:
        column = sample[name]
        if model.roles_[name] == "categorical":
            pooled = getattr(model, "pool_", {}).get(name, {}).get("values", [])
            allowed = set(model.vocab_[name]) | set(pooled)
            seen = set(pc.unique(column.drop_null()).to_pylist())
            assert seen <= allowed, (name, seen - allowed)
        elif model.roles_[name] == "numeric" and name not in model.gaps_:
            x = numeric_values(column)
            finite = x[np.isfinite(x)]
            grids = [c.quantiles[name] for c in model.components_ if name in c.quantiles]
            low, high = min(float(g[0]) for g in grids), max(float(g[-1]) for g in grids)
            slack = 0.5 + 1e-9 * max(abs(low), abs(high))  # integers and dates are rounded
            assert finite.size == 0 or (finite.min() >= low - slack and finite.max() <= high + slack), name
        p = expected_nulls[name]
        tolerance = 5 * math.sqrt(max(p * (1 - p), 1e-4) / rows) + 0.005
        assert abs(column.null_count / rows - p) <= tolerance, (name, column.null_count / rows, p)


@settings(max_examples=int(__import__("os").environ.get("FUZZ_EXAMPLES", 50)), deadline=None,
          derandomize=not __import__("os").environ.get("FUZZ_RANDOM"),
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_edited_model_files_fail_clearly_or_sample_sanely(data, tmp_path_factory):
    payload, members = _original()
    payload = json.loads(json.dumps(payload))
    arrays = {}
    for _ in range(data.draw(st.integers(1, 2), label="edits")):
        if data.draw(st.booleans(), label="json or array"):
            _edit_json(data, payload)
        else:
            arrays.update(_edit_array(data, members))
    path = repack(tmp_path_factory.mktemp("fuzz") / "m.kiln", payload, members, arrays)
    try:
        model = load(path)
    except ModelFormatError:
        return
    _assert_sane(model, model.sample(ROWS, seed=0))


def test_the_fuzz_baseline_is_sane(tmp_path):
    payload, members = _original()
    model = load(repack(tmp_path / "m.kiln", payload, members))
    _assert_sane(model, model.sample(ROWS, seed=0))


@pytest.mark.parametrize("path, value", [
    (("state", "components", 0, "weight"), 0.0),
    (("state", "components", 0, "null_share", "age"), 2.0),
    (("state", "rows"), -3),
    (("state", "roles", "age"), "categorical"),
    (("state", "by"), ["city"]),
    (("state", "vocab", "city"), [1, 2]),
    (("state", "components", 1, "columns"), ["age"]),
    (("params", "pii"), "keep"),
    (("params", "threads"), 0),
    # settings used when a loaded model is fitted again: a raw TypeError / ValueError, or a
    # 7 TiB allocation for grid=10**12
    (("params", "seed"), "abc"),
    (("params", "seed"), -5),
    (("params", "grid"), 10**12),
    (("params", "max_components"), 0),
])
def test_edits_that_broke_sampling_are_refused_at_load(path, value, tmp_path):
    payload, members = _original()
    payload = json.loads(json.dumps(payload))
    parent = payload
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    with pytest.raises(ModelFormatError):
        load(repack(tmp_path / "m.kiln", payload, members))
