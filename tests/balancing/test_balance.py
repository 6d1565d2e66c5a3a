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


# -- the per-class path against imbalanced-learn's whole-table call (issue 11 items 8 and 13) -----------

PER_CLASS_ROWS = 14_000  # with memory_budget="4.2MB" (4 read tasks of 1 MiB) the data exceeds a quarter
#                         of the budget, so the per-class path runs


def _mixed(rows: int = PER_CLASS_ROWS, seed: int = 0, shares: tuple = (0.8, 0.15, 0.05)) -> pa.Table:
    """Three classes; numbers and categories whose spread over the classes differs (VDM matters)."""
    rng = np.random.default_rng(seed)
    y = rng.choice(3, rows, p=list(shares))
    columns = {"amount": rng.normal(size=rows) + y, "score": rng.normal(size=rows) - 0.5 * y}
    for j in range(4):
        k = 4 + j
        spread = rng.dirichlet(np.ones(k), size=3)
        draws = (rng.random(rows)[:, None] > np.cumsum(spread[y], axis=1)).sum(axis=1)
        columns[f"cat{j}"] = np.array([f"v{i}" for i in range(k)])[np.minimum(draws, k - 1)]
    return pa.table(columns | {"label": y})


FEATURES = {"smote": ["amount", "score"], "random_over": ["amount", "score"],
            "random_under": ["amount", "score"], "synth": ["amount", "score", "cat0"],
            "smotenc": ["amount", "cat0", "cat1"], "smoten": ["cat0", "cat1", "cat2", "cat3"]}


SMALL_MINORITIES = (0.96, 0.028, 0.012)  # SMOTEN holds a class's pairwise distances: 4.2MB fits ~500 rows


def _codes(table: pa.Table, names: list[str]) -> np.ndarray:
    """The matrix imbalanced-learn is given: numbers as they are, categories as sorted codes."""
    return np.column_stack([table[n].to_numpy() if pa.types.is_floating(table[n].type)
                            else np.unique(table[n].to_numpy(zero_copy_only=False), return_inverse=True)[1]
                            for n in names]).astype(np.float64)


def _per_class(table: pa.Table, name: str, tmp_path, seed: int = 5) -> tuple[pa.Table, Balancer]:
    pq.write_table(table, tmp_path / "in.parquet", row_group_size=1000)
    balancer = Balancer(name, seed=seed, memory_budget="4.2MB")
    out = balancer.fit_resample(datakiln.read(tmp_path / "in.parquet"), "label",
                                output=tmp_path / f"{name}.parquet").to_arrow()
    assert balancer.report_.path == "per class (streamed)"  # the budget really forced the per-class path
    return out, balancer


@pytest.mark.parametrize("name", ["random_over", "random_under", "smote", "smotenc", "smoten"])
def test_per_class_path_equals_whole_table_imbalanced_learn(name, tmp_path):
    table = _mixed(shares=SMALL_MINORITIES if name == "smoten" else (0.8, 0.15, 0.05))
    table = table.select(FEATURES[name] + ["label"])
    out, balancer = _per_class(table, name, tmp_path)
    x, y = _codes(table, FEATURES[name]), table["label"].to_numpy()
    kwargs = {"categorical_features": [1, 2]} if name == "smotenc" else {}
    x_ref, y_ref = _imblearn(name, random_state=5, **kwargs).fit_resample(x, y)
    ours = _codes(out, FEATURES[name])
    assert balancer.report_.method == name and len(ours) == len(x_ref)
    if name == "random_under":  # the same rows; the per-class path keeps the source's order
        key = lambda m, labels: sorted(map(tuple, np.c_[m, labels].tolist()))  # noqa: E731
        assert key(ours, out["label"].to_numpy()) == key(x_ref, y_ref)
    else:  # the originals first, unchanged, then exactly imbalanced-learn's new rows
        np.testing.assert_array_equal(ours, x_ref)
        np.testing.assert_array_equal(out["label"].to_numpy(), y_ref)
        assert len(x_ref) - len(x) == balancer.report_.new_rows > 10_000


def test_per_class_smoten_uses_the_whole_tables_value_differences(tmp_path):
    """Issue 11 item 8: SMOTEN's metric depends on every class; the per-class path loaded only some."""
    table = _mixed(seed=3, shares=SMALL_MINORITIES).select(FEATURES["smoten"] + ["label"])
    out, _ = _per_class(table, "smoten", tmp_path, seed=0)
    whole = datakiln.balance(table, "label", method="smoten", seed=0).to_arrow()
    differing = sum(a != b for a, b in zip(out.to_pylist(), whole.to_pylist()))
    assert out.num_rows == whole.num_rows and differing == 0


def test_per_class_synth_equals_in_memory_synth(tmp_path):
    table = _mixed(PER_CLASS_ROWS, seed=1).select(FEATURES["synth"] + ["label"])
    out, balancer = _per_class(table, "synth", tmp_path)
    # the same source read whole: the copula sees the same batches (its sums are float sums, so a
    # table read in other batches gives new rows that differ in the last digits)
    source = datakiln.read(tmp_path / "in.parquet")
    whole = datakiln.balance(source, "label", method="synth", seed=5).to_arrow()
    assert balancer.report_.new_rows == whole.num_rows - table.num_rows > 1000
    assert out.equals(whole.cast(out.schema))


# -- degenerate classes (issue 12 items 7 and 14) -------------------------------------------------------

def _with_labels(labels: list) -> pa.Table:
    rng = np.random.default_rng(0)
    return pa.table({"x0": rng.normal(size=len(labels)), "x1": rng.normal(size=len(labels)),
                     "label": labels})


def test_auto_with_a_one_member_class_names_it():
    table = _with_labels(["a"] * 250 + ["b"] * 49 + ["c"])
    with pytest.raises(InvalidArgumentError, match="class 'c' of 'label' has 1 row.*random_over"):
        datakiln.balance(table, "label", method="auto")
    out = datakiln.balance(table, "label", method="random_over", seed=0)  # the suggested fix works
    assert out.count() == 3 * 250


def test_auto_scores_a_class_below_k_neighbors_as_an_error_row():
    from datakiln.balancing._auto import score_methods
    from datakiln.balancing._codec import FeatureCodec

    table = _with_labels(["a"] * 250 + ["b"] * 49 + ["c"] * 4)
    codec = FeatureCodec(table.schema, "label").fit(datakiln.from_arrow(table))
    x, y = codec.encode(table)
    rows = score_methods(codec, Balancer("auto"), x, y, x, y, candidates=("smote",))
    assert "class 'c' of 'label' has 4 rows" in rows[0]["error"]  # a row of the table, not a traceback


def test_class_smaller_than_k_neighbors_is_named_with_the_fix(tmp_path):
    table = _with_labels(["a"] * 250 + ["b"] * 49 + ["c"] * 4)
    with pytest.raises(InvalidArgumentError, match=r"class 'c' of 'label' has 4 rows.*k_neighbors=5.*"
                                                   r"k_neighbors=3 \(kiln balance --k-neighbors 3\)"):
        datakiln.balance(table, "label", method="smote")
    out = datakiln.balance(table, "label", method="smote", k_neighbors=3, seed=0).to_arrow()
    assert pc.sum(pc.equal(out["label"], "c")).as_py() == 250
    big = pa.concat_tables([_with_labels(["a"] * 9000 + ["b"] * 996 + ["c"] * 4)])
    pq.write_table(big, tmp_path / "in.parquet", row_group_size=1000)
    with pytest.raises(InvalidArgumentError, match="class 'c' of 'label' has 4 rows"):  # per class too
        Balancer("smote", memory_budget="4.2MB").fit_resample(datakiln.read(tmp_path / "in.parquet"), "label",
                                                            output=tmp_path / "o.parquet")


def test_cli_k_neighbors_option(tmp_path):
    from typer.testing import CliRunner

    from datakiln.cli.app import app

    pq.write_table(_with_labels(["a"] * 250 + ["b"] * 49 + ["c"] * 4), tmp_path / "in.parquet")
    runner = CliRunner()
    args = ["balance", str(tmp_path / "in.parquet"), "-o", str(tmp_path / "o.parquet"), "--target", "label"]
    refused = runner.invoke(app, args)
    assert refused.exit_code != 0 and "--k-neighbors 3" in " ".join(refused.output.split())
    assert not (tmp_path / "o.parquet").exists()
    done = runner.invoke(app, [*args, "--k-neighbors", "3"])
    assert done.exit_code == 0, done.output
    assert datakiln.read(tmp_path / "o.parquet").count() == 3 * 250


@pytest.mark.parametrize("labels, what", [(["a"] * 300, "every row has the class 'a'")])
def test_single_class_target_names_the_users_column(labels, what):
    table = _with_labels(labels)
    table = table.set_column(2, "label", pa.array(labels, type=pa.string()))
    for method in ("smote", "random_under", "auto"):
        with pytest.raises(InvalidArgumentError, match=f"target column 'label'.*{what}") as info:
            datakiln.balance(table, "label", method=method)
        assert "'y'" not in str(info.value)


@pytest.mark.parametrize("fits", [True, False])  # in memory, and per class (streamed to output)
def test_null_labels_are_refused_not_a_class(tmp_path, monkeypatch, fits):
    from datakiln.balancing import balancer

    monkeypatch.setattr(balancer, "_fits_in_memory", lambda dataset, budget: fits)
    budget = "1GB"
    labels = ["a"] * 500 + ["b"] * 60 + [None] * 30
    table = _with_labels(labels)
    out = tmp_path / "o.parquet"
    for method in ("random_over", "smote", "none"):
        with pytest.raises(InvalidArgumentError,
                           match=r"target column 'label' has 30 null labels.*drop or fill them"
                                 r".*ds\.filter") as info:
            datakiln.balance(table, "label", method=method, memory_budget=budget, output=out)
        assert "None" not in str(info.value)
        assert not out.exists()
    table = _with_labels([None] * 300)  # all null: still the null-label message, not "one class"
    with pytest.raises(InvalidArgumentError, match="has 300 null labels"):
        datakiln.balance(table, "label", method="smote")
    kept = datakiln.Dataset.from_arrow(_with_labels(labels)).filter(pc.field("label").is_valid())
    fixed = datakiln.balance(kept, "label", method="random_over", seed=0,
                             memory_budget=budget, output=out)  # the suggested fix (drop) works
    assert fixed.count() == 1000


def test_no_import_cycle_between_balancer_and_the_per_class_path():
    import ast
    from pathlib import Path

    import datakiln.balancing._streaming as streaming

    tree = ast.parse(Path(streaming.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "datakiln.balancing.balancer" not in imported  # the report and checks live in _report


def test_per_class_smoten_in_chunks(tmp_path, monkeypatch):
    from datakiln.balancing import _streaming

    monkeypatch.setattr(_streaming, "NEW_CHUNK", 5_000)  # several calls, each with its own seed
    table = _mixed(seed=2, shares=SMALL_MINORITIES).select(FEATURES["smoten"] + ["label"])
    out, balancer = _per_class(table, "smoten", tmp_path)
    counts = np.bincount(table["label"].to_numpy())
    assert balancer.report_.counts_after == {str(k): int(counts.max()) for k in range(3)}
    assert out.slice(0, table.num_rows).equals(table)  # the originals first, untouched
    new = out.slice(table.num_rows)
    for name in FEATURES["smoten"]:  # only categories seen in training
        assert set(new[name].to_pylist()) <= set(table[name].to_pylist())


def test_per_class_smoten_refuses_a_class_whose_distances_exceed_the_budget(tmp_path):
    table = _mixed(seed=4).select(FEATURES["smoten"] + ["label"])  # a 2,100-row class: 70 MB of distances
    with pytest.raises(MemoryBudgetError, match=r"SMOTEN compares every pair of rows of a class: "
                                                r"2,\d{3} rows need about 7\d"):
        _per_class(table, "smoten", tmp_path)



def test_in_memory_smoten_checks_its_distances_against_the_budget():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], [1500, 900, 600])
    table = pa.table({"colour": rng.choice(["red", "blue", "green"], len(y)),
                      "size": rng.choice(["S", "M", "L"], len(y)), "label": y})
    with pytest.raises(MemoryBudgetError, match="SMOTEN compares every pair of rows of a class: 900 rows"):
        Balancer("smoten", memory_budget="2MB").fit_resample(table, "label")
    balancer = Balancer("smoten", memory_budget="64MB")
    assert balancer.fit_resample(table, "label").count() == 3 * 1500
    assert balancer.report_.path == "in memory"


def test_auto_lists_smoten_beyond_the_budget_as_an_error_row():
    from datakiln.balancing._auto import score_methods
    from datakiln.balancing._codec import FeatureCodec

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], [1500, 900])
    table = pa.table({"colour": rng.choice(["red", "blue"], len(y)), "label": y})
    codec = FeatureCodec(table.schema, "label").fit(datakiln.from_arrow(table))
    x, labels = codec.encode(table)
    rows = score_methods(codec, Balancer("auto", memory_budget="2MB"), x, labels, x, labels,
                         candidates=("smote",))  # all categorical: SMOTEN
    assert "SMOTEN compares every pair of rows" in rows[0]["error"]


def _class_counts(dataset, column="b"):
    return {d["values"]: d["counts"] for d in pc.value_counts(dataset.to_arrow()[column]).to_pylist()}


@pytest.mark.parametrize(("method", "strategy", "expected"), [
    ("smote", {"y": 50}, {"x": 180, "y": 50}),
    ("random_over", {"y": 60}, {"x": 180, "y": 60}),
    ("random_under", {"x": 30}, {"x": 30, "y": 20}),
    ("synth", {"y": 40}, {"x": 180, "y": 40}),
])
def test_dict_sampling_strategy_names_classes_by_their_values(method, strategy, expected):
    # the samplers see class codes, so {'y': 50} was "The {'y'} target class is not present"
    table = pa.table({"a": np.arange(200.0), "b": ["x"] * 180 + ["y"] * 20})
    assert _class_counts(datakiln.balance(table, "b", method=method, sampling_strategy=strategy)) == expected


def test_dict_sampling_strategy_with_integer_classes_and_unknown_class():
    table = pa.table({"a": np.arange(200.0), "b": [5] * 180 + [3] * 20})
    balanced = datakiln.balance(table, "b", method="random_over", sampling_strategy={3: 70})
    assert _class_counts(balanced) == {5: 180, 3: 70}
    with pytest.raises(InvalidArgumentError, match=r"names the class 7, which the target 'b' does not have; "
                                                   r"its classes are \[3, 5\]"):
        datakiln.balance(table, "b", sampling_strategy={7: 70})


def test_dict_sampling_strategy_on_the_per_class_streaming_path(tmp_path):
    rows = 20_000
    table = pa.table({"a": np.arange(float(rows)), "b": ["x"] * (rows - 2_000) + ["y"] * 2_000})
    balanced = datakiln.balance(table, "b", method="random_over", sampling_strategy={"y": 5_000},
                                memory_budget="2MB", output=tmp_path / "out.parquet")
    assert _class_counts(balanced) == {"x": 18_000, "y": 5_000}


@pytest.mark.parametrize("method", ["smote", "synth"])
def test_a_continuous_target_is_refused_by_name(method):
    # every class of one row: SMOTEN crashed with "max() arg is an empty sequence" and
    # imbalanced-learn's "could represent a regression problem" warning leaked
    rng = np.random.default_rng(0)
    table = pa.table({"a": rng.normal(size=60), "c": rng.choice(["p", "q"], 60)})
    with pytest.raises(InvalidArgumentError, match="target column 'a' has 60 classes in 60 rows"):
        datakiln.balance(table, "a", method=method)


@pytest.mark.parametrize("ratio", [-1.0, 0.0, 7.0, float("nan"), float("inf")])
def test_a_ratio_outside_zero_one_names_the_ratio(ratio):
    table = pa.table({"a": np.arange(200.0), "b": ["x"] * 180 + ["y"] * 20})
    with pytest.raises(InvalidArgumentError, match=r"kiln balance --ratio\) is the minority/majority share"):
        datakiln.balance(table, "b", sampling_strategy=ratio)


def test_a_ratio_with_three_classes_says_what_to_do_instead():
    """imbalanced-learn's 'use a dict' could not be acted on from kiln balance --ratio."""
    table = pa.table({"x": [float(i) for i in range(90)], "y": ["a"] * 60 + ["b"] * 20 + ["c"] * 10})
    with pytest.raises(InvalidArgumentError, match=r"needs two classes; the target 'y' has 3 \('a', 'b', "
                                                    r"'c'\): leave it out"):
        datakiln.balance(table, "y", method="random_over", sampling_strategy=0.5)
    assert datakiln.balance(table, "y", method="random_over").count() == 180  # the suggested fix works


def test_cli_ratio_with_three_classes_is_one_clear_line(tmp_path):
    from typer.testing import CliRunner

    from datakiln.cli.app import app

    path = tmp_path / "three.csv"
    path.write_text("x,y\n" + "".join(f"{i},{'abc'[i % 3] if i % 5 else 'a'}\n" for i in range(90)))
    result = CliRunner().invoke(app, ["balance", str(path), "-o", str(tmp_path / "o.parquet"),
                                      "--target", "y", "--method", "random_over", "--ratio", "0.5"])
    assert result.exit_code == 2 and "needs two classes" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o.parquet").exists()
