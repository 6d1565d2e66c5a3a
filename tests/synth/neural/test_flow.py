"""FlowMatching: schema, conditions, constraints, determinism, model files, privacy, learning."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

pytest.importorskip("torch", reason="FlowMatching needs the torch extra")

from datakiln.errors import InvalidArgumentError, ModelFormatError  # noqa: E402
from datakiln.synth import load, read_model, write_model  # noqa: E402
from datakiln.synth.neural.flow import FlowMatching  # noqa: E402

SMALL = {"hidden": 64, "depth": 2, "batch_size": 128, "sample_steps": 12, "threads": 1, "device": "cpu"}


def _table(rows: int = 600, seed: int = 0) -> pa.Table:
    """x drives the class (x > 0 -> 'hi'), start < end, an id and an email."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, rows)
    label = np.where(x + rng.normal(0, 0.3, rows) > 0, "hi", "lo")
    start = rng.integers(0, 100, rows)
    return pa.table({
        "id": np.arange(1000, 1000 + rows),
        "email": [f"person{i}@example.org" for i in range(rows)],
        "x": x, "label": label,
        "city": pa.array(rng.choice(["Bern", "Oslo", "Rome"], rows), mask=rng.random(rows) < 0.05),
        "start": start, "end": start + rng.integers(1, 30, rows),
    })


@pytest.fixture(scope="module")
def fitted() -> tuple[pa.Table, FlowMatching]:
    table = _table()
    model = FlowMatching(epochs=200, constraints=["start < end"], **{**SMALL, "hidden": 128}).fit(table)
    return table, model


def test_samples_the_training_schema_with_ids_and_pii_never_copied(fitted):
    table, model = fitted
    out = model.sample(800, seed=0)
    assert out.schema == table.schema and out.num_rows == 800
    assert not set(out["id"].to_pylist()) & set(table["id"].to_pylist())
    assert len(set(out["id"].to_pylist())) == 800
    assert not set(out["email"].to_pylist()) & set(table["email"].to_pylist())
    assert pc.all(pc.less(out["start"], out["end"])).as_py()
    assert set(out["city"].drop_null().to_pylist()) <= {"Bern", "Oslo", "Rome"}


def test_learns_the_dependence_of_the_class_on_x(fitted):
    table, model = fitted
    out = model.sample(2_000, seed=1)
    x, hi = out["x"].to_numpy(), np.asarray(out["label"].to_pylist()) == "hi"
    # real: P(hi | x > 0) ~ 0.9, P(hi | x < 0) ~ 0.1; independent columns would give ~0.5 both
    assert hi[x > 0.5].mean() > 0.7 and hi[x < -0.5].mean() < 0.3
    assert abs(np.std(x) - np.std(table["x"].to_numpy())) < 0.25


def test_conditions_hold_exactly_and_impossible_ones_are_clear_errors(fitted):
    _, model = fitted
    out = model.sample(300, conditions={"label": "lo", "x": (-1.0, 0.5)}, seed=2)
    assert set(out["label"].to_pylist()) == {"lo"}
    x = out["x"].to_numpy()
    assert x.min() >= -1.0 and x.max() <= 0.5
    assert (np.asarray(model.sample(300, conditions={"city": None}, seed=3)["city"].is_null())).all()
    with pytest.raises(InvalidArgumentError):
        model.sample(100, conditions={"x": (50.0, 60.0)}, seed=0)


def test_same_seed_same_model_and_rows():
    table = _table(300)
    one = FlowMatching(epochs=3, **SMALL).fit(table)
    two = FlowMatching(epochs=3, **SMALL).fit(table)
    assert one.sample(200, seed=5).equals(two.sample(200, seed=5))
    assert not one.sample(200, seed=5).equals(one.sample(200, seed=6))
    batches = list(one.sample_batches(200, batch_rows=64, seed=5))
    assert pa.concat_tables(batches).equals(one.sample(200, seed=5))


def test_save_load_round_trip_and_tampered_files_refused(fitted, tmp_path):
    _, model = fitted
    path = tmp_path / "flow.kiln"
    model.save(path)
    again = load(path)
    assert isinstance(again, FlowMatching)
    assert again.sample(300, seed=4).equals(model.sample(300, seed=4))
    data = read_model(path)
    name = next(k for k in data.arrays if k.endswith("ema.out.1.weight"))
    arrays = dict(data.arrays)
    arrays[name] = np.full_like(arrays[name], np.nan)
    write_model(tmp_path / "nan.kiln", type(data)(data.model, data.payload, arrays))
    with pytest.raises(ModelFormatError, match="NaN"):
        load(tmp_path / "nan.kiln")
    arrays = dict(data.arrays)
    arrays[name] = arrays[name][:-1]
    write_model(tmp_path / "shape.kiln", type(data)(data.model, data.payload, arrays))
    with pytest.raises(ModelFormatError, match="shape"):
        load(tmp_path / "shape.kiln")
    payload = dict(data.payload, params={**data.payload["params"], "objective": "magic"})
    write_model(tmp_path / "param.kiln", type(data)(data.model, payload, dict(data.arrays)))
    with pytest.raises(ModelFormatError, match="objective"):
        load(tmp_path / "param.kiln")


def test_ddpm_objective_and_warm_start():
    table = _table(400)
    ddpm = FlowMatching(epochs=3, objective="ddpm", **SMALL).fit(table)
    assert ddpm.sample(100, seed=0).schema == table.schema
    velocity = FlowMatching(epochs=3, objective="velocity", **SMALL).fit(table)
    assert set(velocity.sample(100, conditions={"label": "hi"}, seed=0)["label"].to_pylist()) == {"hi"}
    base = FlowMatching(epochs=3, **SMALL).fit(table.slice(0, 300))
    tuned = FlowMatching(epochs=1, **SMALL).fit(table.slice(300), init=base)
    assert tuned.sample(100, seed=0).schema == table.schema
    with pytest.raises(InvalidArgumentError, match="init"):
        FlowMatching(epochs=1, **SMALL).fit(table, init=ddpm.__class__())
    with pytest.raises(InvalidArgumentError, match="objective"):
        FlowMatching(objective="gan", **SMALL).fit(table)
