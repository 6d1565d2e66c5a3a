import importlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from tests.conftest import shared_dataset

import datakiln
from datakiln.balancing import METHODS, Balancer
from datakiln.errors import InvalidArgumentError, MemoryBudgetError, SchemaError


def _bank_full() -> str:
    return str(shared_dataset("bank_marketing/bank-full.csv"))  # found from the repository root


def _numeric(rows: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, pa.Table]:
    rng = np.random.default_rng(seed)
    y = rng.choice(3, rows, p=[0.8, 0.15, 0.05])
    x = rng.normal(size=(rows, 4)) + y[:, None] * 0.8
    table = pa.table({f"x{i}": x[:, i] for i in range(4)} | {"label": y})
    return x, y, table


def _matrix(table: pa.Table, names: list[str]) -> np.ndarray:
    return np.column_stack([table[n].to_numpy() for n in names])


def _imblearn(name: str, **kwargs):
    method = METHODS[name]
    cls = getattr(importlib.import_module(method.module), method.cls)
    return cls(**kwargs)


@pytest.mark.parametrize("name", sorted(set(METHODS) - {"smotenc", "smoten"}))
def test_every_numeric_method_equals_imbalanced_learn(name):
    x, y, table = _numeric()
    ours = datakiln.balance(table, "label", method=name, seed=3).to_arrow()
    kwargs = {} if METHODS[name].kind == "clean-sampling" or name == "near_miss" else {"random_state": 3}
    x_ref, y_ref = _imblearn(name, **kwargs).fit_resample(x, y)
    assert ours.num_rows == len(y_ref)
    np.testing.assert_allclose(_matrix(ours, [f"x{i}" for i in range(4)]), x_ref)
    np.testing.assert_array_equal(ours["label"].to_numpy(), y_ref)


def test_smotenc_and_smoten_equal_imbalanced_learn():
    rng = np.random.default_rng(1)
    rows = 2000
    y = (rng.random(rows) < 0.1).astype(np.int64)
    colour = rng.choice(["blue", "green", "red"], rows)
    size = rng.choice(["L", "M", "S"], rows)
    amount = rng.normal(size=rows) + y
    table = pa.table({"amount": amount, "colour": colour, "size": size, "y": y})
    ours = datakiln.balance(table, "y", method="smote", seed=0)  # becomes SMOTENC
    codes = np.column_stack([amount, np.unique(colour, return_inverse=True)[1],
                             np.unique(size, return_inverse=True)[1]]).astype(float)
    x_ref, y_ref = _imblearn("smotenc", categorical_features=[1, 2], random_state=0).fit_resample(codes, y)
    out = ours.to_arrow()
    np.testing.assert_allclose(out["amount"].to_numpy(), x_ref[:, 0])
    assert out["colour"].to_pylist() == list(np.array(["blue", "green", "red"])[x_ref[:, 1].astype(int)])
    only = table.drop_columns(["amount"])
    out = datakiln.balance(only, "y", method="smote", seed=0).to_arrow()  # all categorical: SMOTEN
    x_ref, y_ref = _imblearn("smoten", random_state=0).fit_resample(codes[:, 1:], y)
    assert out["size"].to_pylist() == list(np.array(["L", "M", "S"])[x_ref[:, 1].astype(int)])


def test_types_and_categories_kept_on_adult(adult):
    balancer = Balancer("smote", seed=0, k_neighbors=5)
    out = balancer.fit_resample(adult, "income").to_arrow()
    assert out.schema.equals(adult.schema)
    report = balancer.report_
    assert report.method == "smotenc" and report.counts_after == {"<=50K": 24720, ">50K": 24720}
    assert report.new_rows == 24720 - 7841 and report.removed_rows == 0
    for name in ("age", "education-num", "hours-per-week"):  # integers stay whole and in range
        assert pc.min(out[name]).as_py() >= pc.min(adult[name]).as_py()
        assert pc.max(out[name]).as_py() <= pc.max(adult[name]).as_py()
    for name in ("workclass", "education", "native-country"):
        assert set(out[name].to_pylist()) <= set(adult[name].to_pylist())  # no invented categories
    assert report.exact_copy_share < 0.01 and 0 <= report.near_copy_share < 0.5


def test_types_kept_on_bank_marketing_and_copies_reported():
    bank = datakiln.read(_bank_full())
    table = bank.to_arrow()
    over = Balancer("random_over", seed=0)
    out = over.fit_resample(bank, "y").to_arrow()
    assert out.schema.equals(table.schema)
    assert over.report_.counts_before == {"no": 39922, "yes": 5289}
    assert over.report_.counts_after == {"no": 39922, "yes": 39922}
    assert over.report_.exact_copy_share == 1.0  # random over-sampling only copies
    under = Balancer("random_under", seed=0)
    small = under.fit_resample(bank, "y").to_arrow()
    assert under.report_.counts_after == {"no": 5289, "yes": 5289}
    assert under.report_.removed_rows == 39922 - 5289
    assert set(small["job"].to_pylist()) <= set(table["job"].to_pylist())


def test_synth_oversamples_with_exact_labels(adult):
    balancer = Balancer("synth", seed=0)
    out = balancer.fit_resample(adult, "income").to_arrow()
    assert out.schema.equals(adult.schema)
    assert balancer.report_.counts_after == {"<=50K": 24720, ">50K": 24720}
    new = out.slice(adult.num_rows)
    assert pc.all(pc.equal(new["income"], ">50K")).as_py()
    rich = adult.filter(pc.equal(adult["income"], ">50K"))
    assert abs(pc.mean(new["age"]).as_py() - pc.mean(rich["age"]).as_py()) < 1.5  # the class's own shape
    assert balancer.report_.exact_copy_share < 0.01


def test_per_class_streaming_equals_in_memory(tmp_path):
    x, y, table = _numeric(60_000, 2)
    pq.write_table(table, tmp_path / "in.parquet", row_group_size=5000)
    source = datakiln.read(tmp_path / "in.parquet")
    for name in ("smote", "random_over"):
        whole = datakiln.balance(table, "label", method=name, seed=5).to_arrow()
        balancer = Balancer(name, seed=5, memory_budget="8MB")  # far smaller than the data
        streamed = balancer.fit_resample(source, "label", output=tmp_path / f"{name}.parquet").to_arrow()
        assert balancer.report_.path == "per class (streamed)"
        assert streamed.equals(whole.cast(streamed.schema))  # originals in order, then the same new rows
    whole = datakiln.balance(table, "label", method="random_under", seed=5).to_arrow()
    streamed = Balancer("random_under", seed=5, memory_budget="8MB").fit_resample(
        source, "label", output=tmp_path / "under.parquet").to_arrow()
    key = lambda t: sorted(zip(t["x0"].to_pylist(), t["label"].to_pylist()))  # noqa: E731
    assert key(streamed) == key(whole)  # the same rows, kept in the source's order
    with pytest.raises(MemoryBudgetError, match="TomekLinks needs every row"):
        Balancer("tomek", memory_budget="8MB").fit_resample(source, "label", output=tmp_path / "t.parquet")
    with pytest.raises(InvalidArgumentError, match="pass output="):
        Balancer("smote", memory_budget="8MB").fit_resample(source, "label")


def test_per_class_smote_in_chunks(tmp_path, monkeypatch):
    from datakiln.balancing import _streaming

    monkeypatch.setattr(_streaming, "NEW_CHUNK", 5_000)  # 36,000 new rows: eight calls
    _, y, table = _numeric(60_000, 4)
    pq.write_table(table, tmp_path / "in.parquet", row_group_size=5000)
    balancer = Balancer("smote", seed=1, memory_budget="8MB")
    source = datakiln.read(tmp_path / "in.parquet")
    out = balancer.fit_resample(source, "label", output=tmp_path / "o.parquet")
    counts = np.bincount(y)
    assert balancer.report_.counts_after == {str(k): int(counts.max()) for k in range(3)}
    assert out.count() == 3 * counts.max() and balancer.report_.new_rows == 3 * counts.max() - 60_000
    assert out.to_arrow().slice(0, 60_000).equals(table)  # the originals first, untouched
    assert balancer.report_.exact_copy_share == 0.0


def test_auto_compares_methods_on_a_holdout():
    bank = datakiln.read(_bank_full()).to_arrow().slice(0, 12_000)
    balancer = Balancer("auto", seed=0)
    out = balancer.fit_resample(bank, "y")
    table = balancer.report_.comparison
    names = [row["method"] for row in table]
    assert names[:4] == ["none", "random_over", "random_under", "smote"] and "synth" in names
    assert sum(row["chosen"] for row in table) == 1
    scored = [row for row in table if "minority_f1" in row]
    assert {"tomek", "enn", "near_miss"} <= {row["method"] for row in scored}
    skipped = {row["method"] for row in table if "skipped" in row}
    assert skipped == {"borderline_smote", "adasyn", "smote_tomek", "smote_enn"}  # bank has categories
    chosen = next(row for row in table if row["chosen"])
    assert chosen["minority_f1"] == max(row["minority_f1"] for row in scored)
    for row in scored:
        assert 0 <= row["minority_recall"] <= 1 and 0 < row["pr_auc"] <= 1
    name = chosen["method"]
    grows = name == "synth" or (name in METHODS and METHODS[name].kind == "over-sampling")
    assert (out.count() > bank.num_rows) == grows  # the winner was applied to the whole table


def test_clear_errors():
    _, _, table = _numeric(200)
    with pytest.raises(InvalidArgumentError, match="unknown balancing method"):
        datakiln.balance(table, "label", method="magic")
    with pytest.raises(SchemaError, match="target 'nope'"):
        datakiln.balance(table, "nope")
    holes = table.set_column(0, "x0", pa.array([None] + table["x0"].to_pylist()[1:], type=pa.float64()))
    with pytest.raises(InvalidArgumentError, match="'x0' has missing values"):
        datakiln.balance(holes, "label")
    with pytest.raises(InvalidArgumentError, match="SMOTEN needs categorical"):
        datakiln.balance(table, "label", method="smoten")
