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
    assert np.corrcoef(years, rich)[0, 1] > 0.1  # real 0.34: kept, but attenuated (open item)


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
