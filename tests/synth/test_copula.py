import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from tests.conftest import every_kind_table

import datakiln
from datakiln.errors import InvalidArgumentError
from datakiln.synth import GaussianCopula, load


@pytest.fixture(scope="module")
def model(adult):
    return GaussianCopula().fit(datakiln.from_arrow(adult))


def _ks_complement(real, synthetic):
    a, b = np.sort(real), np.sort(synthetic)
    grid = np.union1d(a, b)
    cdf_a = np.searchsorted(a, grid, side="right") / len(a)
    cdf_b = np.searchsorted(b, grid, side="right") / len(b)
    return 1 - np.abs(cdf_a - cdf_b).max()


def _tv_complement(real, synthetic):
    keys = set(real) | set(synthetic)
    p = {k: real.count(k) / len(real) for k in keys}
    q = {k: synthetic.count(k) / len(synthetic) for k in keys}
    return 1 - 0.5 * sum(abs(p[k] - q[k]) for k in keys)


def test_training_schema_shapes_and_dependence(model, adult):
    rows = model.sample(32_561, seed=0)
    assert rows.schema.equals(adult.schema)
    for column in ("age", "fnlwgt", "hours-per-week", "education-num"):
        assert _ks_complement(adult[column].to_numpy(), rows[column].to_numpy()) > 0.93, column
    for column in ("workclass", "education", "occupation", "income"):
        assert _tv_complement(adult[column].to_pylist(), rows[column].to_pylist()) > 0.95, column
    assert abs(rows["workclass"].null_count - 1836) < 250  # missing values kept as a state
    assert set(rows["native-country"].drop_null().to_pylist()) <= set(adult["native-country"].to_pylist())
    rich = pc.equal(rows["income"], ">50K").cast(pa.float64()).to_numpy()
    years = rows["education-num"].to_numpy().astype(float)
    assert np.corrcoef(years, rich)[0, 1] > 0.25  # real 0.34


def test_same_seed_same_rows_and_chunking_does_not_matter(model, tmp_path):
    first = model.sample(100_000, seed=5)
    assert first.equals(model.sample(100_000, seed=5))
    assert not first.equals(model.sample(100_000, seed=6))
    assert model.sample(150_000, seed=5).slice(0, 100_000).equals(first)  # 65,536-row chunks
    model.save(tmp_path / "adult.kiln")
    assert load(tmp_path / "adult.kiln").sample(100_000, seed=5).equals(first)


def test_exact_conditional_sampling(model, adult):
    rich = model.sample(5_000, conditions={"income": ">50K"}, seed=1)
    assert pc.all(pc.equal(rich["income"], ">50K")).as_py()
    real_rich = adult.filter(pc.equal(adult["income"], ">50K"))
    overall, given = pc.mean(adult["age"]).as_py(), pc.mean(real_rich["age"]).as_py()
    assert abs(pc.mean(rich["age"]).as_py() - given) < abs(overall - given)  # moves toward it
    fixed = model.sample(1_000, conditions={"hours-per-week": 40}, seed=4)
    assert pc.all(pc.equal(fixed["hours-per-week"], 40)).as_py()
    ranged = model.sample(5_000, conditions={"age": (30, 40)}, seed=2)
    assert pc.all(pc.and_(pc.greater_equal(ranged["age"], 30), pc.less_equal(ranged["age"], 40))).as_py()
    two = model.sample(2_000, conditions={"sex": "Female", "income": ">50K"}, seed=3)
    assert pc.all(pc.equal(two["sex"], "Female")).as_py() and pc.all(pc.equal(two["income"], ">50K")).as_py()
    with pytest.raises(InvalidArgumentError, match="not a category"):
        model.sample(10, conditions={"income": "rich"})


def test_identifiers_regenerated_and_pii_never_copied():
    table = every_kind_table(2_000)
    model = GaussianCopula().fit(table)
    rows = model.sample(3_000, seed=0)
    assert rows.schema.equals(table.schema)
    assert len(set(rows["id"].to_pylist())) == 3_000  # unique
    assert not set(rows["email"].to_pylist()) & set(table["email"].to_pylist())
    assert all(e.endswith("@example.com") for e in rows["email"].to_pylist())
    assert rows["joined"].type.tz == "UTC" and rows["price"].type == pa.decimal128(10, 2)


def test_quality_on_adult_meets_the_targets(model, adult, adult_test):
    synthetic = model.sample(adult.num_rows, seed=11)
    report = datakiln.evaluate(adult, synthetic, holdout=adult_test, target="income", privacy=False,
                               detection=False)
    assert report.fidelity["column_shapes"] >= 0.9
    assert report.fidelity["column_pair_trends"] >= 0.85
    assert report.utility["synthetic"]["roc_auc"] >= 0.85
    assert report.utility["synthetic"]["minority_f1"] >= 0.5


def test_mixture_components_and_conditional_distributions(model, adult):
    assert model.by_ and 2 <= len(model.components_) <= 32
    assert sum(c.weight for c in model.components_) == pytest.approx(1.0)
    rich = model.sample(20_000, conditions={"income": ">50K"}, seed=8)
    real_rich = adult.filter(pc.equal(adult["income"], ">50K"))
    assert _ks_complement(real_rich["age"].to_numpy(), rich["age"].to_numpy()) > 0.93
    female = pc.mean(pc.equal(rich["sex"], "Female").cast(pa.float64())).as_py()
    real_female = pc.mean(pc.equal(real_rich["sex"], "Female").cast(pa.float64())).as_py()
    assert abs(female - real_female) < 0.03  # 0.15 in the real data, 0.33 overall
    older = model.sample(20_000, conditions={"age": (50, 60)}, seed=9)
    real_older = adult.filter(pc.and_(pc.greater_equal(adult["age"], 50), pc.less_equal(adult["age"], 60)))
    share = pc.mean(pc.equal(older["income"], ">50K").cast(pa.float64())).as_py()
    real_share = pc.mean(pc.equal(real_older["income"], ">50K").cast(pa.float64())).as_py()
    assert abs(share - real_share) < 0.05  # components reweighted by P(age in range)


def test_batches_equal_one_sample_whatever_their_size(model):
    whole = model.sample(300_000, seed=21)
    for batch_rows in (70_000, 100_000, 300_000):
        batches = list(model.sample_batches(300_000, batch_rows=batch_rows, seed=21))
        assert max(b.num_rows for b in batches) <= batch_rows
        assert pa.concat_tables(batches).equals(whole)


def test_progress_reports_both_passes(adult):
    seen = []
    GaussianCopula(by=None).fit(adult, on_progress=seen.append)
    assert sum(seen) == 2 * adult.num_rows


def test_explicit_and_bad_by_columns(adult):
    single = GaussianCopula(by=None).fit(adult)
    assert single.by_ == [] and len(single.components_) == 1
    chosen = GaussianCopula(by=["sex"]).fit(adult)
    assert chosen.by_ == ["sex"] and {c.fixed["sex"] for c in chosen.components_} == {0, 1}
    with pytest.raises(InvalidArgumentError, match="must be categorical"):
        GaussianCopula(by="age").fit(adult)
    with pytest.raises(InvalidArgumentError, match="max_components"):
        GaussianCopula(by=["native-country", "occupation"]).fit(adult)


def _events(rows: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    start = np.datetime64("2024-01-01T00:00:00", "s") + rng.integers(0, 86_400 * 300, rows)
    length = rng.gamma(2.0, 3600.0, rows).astype(np.int64) + 1
    return pa.table({
        "start": pa.array(start, type=pa.timestamp("s")),
        "end": pa.array(start + length.astype("timedelta64[s]"), type=pa.timestamp("s")),
        "low": rng.integers(0, 50, rows),
        "high": rng.integers(50, 100, rows) + rng.integers(1, 5, rows),
        "amount": np.round(rng.lognormal(3, 1, rows), 2) + 0.01,
        "visits": np.round(rng.gamma(2, 2, rows)).astype(float),
        "kind": rng.choice(["a", "b", "c"], rows),
    })


def test_constraints_hold_on_a_million_rows():
    table = _events(5_000, 0)
    constraints = ["start < end", "low < high", "amount > 0", "0 <= low <= 60", "visits: integer"]
    model = GaussianCopula(constraints=constraints).fit(table)
    rows = model.sample(1_000_000, seed=3)
    assert rows.schema.equals(table.schema)
    start, end = rows["start"].cast(pa.int64()).to_numpy(), rows["end"].cast(pa.int64()).to_numpy()
    assert (end > start).all()
    assert (rows["high"].to_numpy() > rows["low"].to_numpy()).all()
    assert pc.min(rows["amount"]).as_py() > 0 and 0 <= pc.min(rows["low"]).as_py()
    assert pc.max(rows["low"]).as_py() <= 60
    visits = rows["visits"].to_numpy()
    assert (visits == np.round(visits)).all()
    length = end - start  # the gap keeps its own distribution, not just its sign
    real_length = (table["end"].cast(pa.int64()).to_numpy() - table["start"].cast(pa.int64()).to_numpy())
    assert _ks_complement(real_length, length[:50_000]) > 0.95
    with pytest.raises(InvalidArgumentError, match="upper side"):
        model.sample(10, conditions={"end": "2024-05-01"})


def test_constraints_are_checked_on_training_data_and_parsed():
    from datakiln.errors import ConstraintError
    from datakiln.synth.constraints import Bound, Inequality, Integer, parse_constraints

    table = _events(1_000, 1)
    with pytest.raises(ConstraintError, match="break the constraint 'amount > 100.0'"):
        GaussianCopula(constraints=["amount > 100"]).fit(table)
    with pytest.raises(InvalidArgumentError, match="cannot read the constraint"):
        GaussianCopula(constraints=["amount ~ 3"]).fit(table)
    with pytest.raises(InvalidArgumentError, match="unknown columns"):
        GaussianCopula(constraints=["nope < end"]).fit(table)
    with pytest.raises(InvalidArgumentError, match="numeric, date or time"):
        GaussianCopula(constraints=["kind: integer"]).fit(table)
    names = table.column_names
    assert parse_constraints(["end > start", "0 < amount <= 5", "visits: integer", "low >= 0"], names) == [
        Inequality("start", "end"), Bound("amount", 0, 5, True, False), Integer("visits"), Bound("low", 0)]


def test_pii_dropped_on_request(tmp_path):
    table = every_kind_table(1_000)
    model = GaussianCopula(pii="drop").fit(table)
    rows = model.sample(500, seed=0)
    assert "email" not in rows.column_names and "age" in rows.column_names
    model.save(tmp_path / "m.kiln")
    assert load(tmp_path / "m.kiln").sample(500, seed=0).equals(rows)
    with pytest.raises(InvalidArgumentError, match="pii must be"):
        GaussianCopula(pii="keep").fit(table)


def test_constrained_model_round_trips(tmp_path):
    model = GaussianCopula(constraints=["start < end"]).fit(_events(2_000, 2))
    model.save(tmp_path / "e.kiln")
    again = load(tmp_path / "e.kiln")
    assert again.constraints_ == model.constraints_
    assert again.sample(70_000, seed=1).equals(model.sample(70_000, seed=1))


def test_an_older_model_file_asks_for_a_refit(model, tmp_path):
    from datakiln.errors import ModelFormatError
    from datakiln.synth.modelfile import read_model, write_model

    model.save(tmp_path / "new.kiln")
    data = read_model(tmp_path / "new.kiln")
    old_state = {k: v for k, v in data.payload["state"].items() if k != "components"}
    data.payload.update({"state": old_state, "state_version": 1})
    write_model(tmp_path / "old.kiln", data)
    with pytest.raises(ModelFormatError, match="version-1 GaussianCopula"):
        load(tmp_path / "old.kiln")


def test_a_table_of_numbers_only():
    rng = np.random.default_rng(0)
    x = rng.normal(size=5000)
    table = pa.table({"x": x, "y": 2 * x + rng.normal(size=5000), "n": rng.integers(0, 9, 5000)})
    model = GaussianCopula().fit(table)
    rows = model.sample(20_000, seed=0)
    assert rows.schema.equals(table.schema) and model.by_ == []
    assert np.corrcoef(rows["x"].to_numpy(), rows["y"].to_numpy())[0, 1] > 0.85  # real 0.89
