"""Re-identification risk and the k-anonymity generalisation search.

The measures must equal pycanon's on the same tables. pycanon groups with pandas, which drops
rows whose quasi-identifier is missing and cannot sort a missing sensitive value; datakiln
counts a null as a value of its own, so the frames given to pycanon spell nulls as "?" (the
Adult files' own spelling) — the same classes on both sides.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pycanon import anonymity, metrics
from tests.conftest import ADULT_COLUMNS, sample_dataset, shared_dataset

import datakiln
from datakiln.errors import InvalidArgumentError, MemoryBudgetError, SchemaError, SourceNotFoundError
from datakiln.privacy import _counts, generalize_to_k, risk

QI = ["age", "sex", "race", "native-country", "education"]
HIERARCHIES = sample_dataset("adult/hierarchies")


def _read(path: Path) -> datakiln.Dataset:
    return datakiln.read(path, names=ADULT_COLUMNS)


def pycanon_frame(table: pa.Table | datakiln.Dataset | pd.DataFrame) -> pd.DataFrame:
    frame = table.copy() if isinstance(table, pd.DataFrame) else table.to_pandas()
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = frame[column].where(frame[column].notna(), "?")
    return frame


def assert_equals_pycanon(report, frame: pd.DataFrame, qi: list[str], sa: list[str], *,
                          everything: bool = True) -> None:
    assert report.k == anonymity.k_anonymity(frame, qi)
    assert report.average_class_size == pytest.approx(metrics.average_ecsize(frame, frame, qi), rel=1e-12)
    if not sa:
        return
    assert report.l == anonymity.l_diversity(frame, qi, sa)
    assert report.l_entropy == anonymity.entropy_l_diversity(frame, qi, sa)
    assert report.t == pytest.approx(anonymity.t_closeness(frame, qi, sa), rel=1e-12, abs=1e-15)
    if not everything:  # pycanon needs seconds per measure on Adult's 5,619 classes
        return
    assert (report.alpha, report.k) == pytest.approx(anonymity.alpha_k_anonymity(frame, qi, sa), rel=1e-12)
    assert report.beta == pytest.approx(anonymity.basic_beta_likeness(frame, qi, sa), rel=1e-12)
    assert report.beta_enhanced == pytest.approx(anonymity.enhanced_beta_likeness(frame, qi, sa), rel=1e-12)
    assert report.delta == pytest.approx(anonymity.delta_disclosure(frame, qi, sa), rel=1e-12)


# -- equal to pycanon --------------------------------------------------------------------------

@pytest.mark.parametrize("qi, sa", [
    (QI, ["income"]),
    (["sex", "race"], ["income"]),
    (["age", "sex"], ["income"]),
    (["sex", "race"], ["hours-per-week"]),            # a numeric sensitive column: ordered EMD
    (["sex", "race", "education"], ["income", "occupation"]),  # two sensitive columns, nulls
    (["race", "native-country"], []),
])
def test_equals_pycanon_on_adult_sample(adult_sample_path, qi, sa):
    ds = _read(adult_sample_path)
    report = risk(ds, qi, sa, k=10)
    assert report.rows == 600
    assert_equals_pycanon(report, pycanon_frame(ds), qi, sa)


def test_equals_pycanon_on_full_adult():
    ds = _read(shared_dataset("adult/adult-train.csv"))
    report = risk(ds, QI, ["income"], k=10)
    assert (report.rows, report.classes, report.k) == (32561, 5619, 1)
    assert report.rows_below_k == 8775 and report.share_below_k == pytest.approx(8775 / 32561)
    sizes = ds.to_pandas().groupby(QI, dropna=False).size()
    assert (len(sizes), sizes[sizes < 10].sum()) == (report.classes, report.rows_below_k)
    assert_equals_pycanon(report, pycanon_frame(ds), QI, ["income"], everything=False)


def test_generalised_adult_equals_pycanon_and_reaches_k10():
    """The acceptance: the search reaches k = 10 on Adult, says what it changed, loses no more
    than naive recoding, and pycanon agrees with every figure on the output."""
    ds = _read(shared_dataset("adult/adult-train.csv"))
    out, rep = generalize_to_k(ds, QI, k=10, hierarchies=HIERARCHIES / "adult.yaml")
    anon = pycanon_frame(out.to_arrow())
    raw = pycanon_frame(ds)
    assert rep.k_achieved >= 10 and anonymity.k_anonymity(anon, QI) == rep.k_achieved
    assert rep.rows_suppressed <= 0.01 * 32561 and len(anon) == 32561 - rep.rows_suppressed
    assert rep.discernibility == metrics.discernability_metric(raw, anon, QI)
    assert rep.discernibility <= rep.naive["discernibility"]
    assert rep.loss <= rep.naive["loss"]
    changed = {c["column"]: c["change"] for c in rep.changes if c["level"] > 0}
    assert changed, "something had to change: Adult is 1-anonymous under these quasi-identifiers"
    after = risk(out, QI, ["income"], k=10)
    assert after.k == rep.k_achieved and after.satisfied["k"] and after.rows_below_k == 0
    assert_equals_pycanon(after, anon, QI, ["income"])


def test_emd_matches_li_et_al_salary_example():
    """Li, Li & Venkatasubramanian (2007), Table 3: salaries 3k..11k, classes {3,4,5}k, {6,8,11}k
    and {7,9,10}k; ordered EMD 0.375, 0.167 and 0.167 ... the worst is 0.375."""
    salary = [3, 4, 5, 6, 8, 11, 7, 9, 10]
    zone = ["a"] * 3 + ["b"] * 3 + ["c"] * 3
    report = risk(pa.table({"zone": zone, "salary": salary}), ["zone"], ["salary"])
    assert report.t == pytest.approx(0.375)
    assert report.per_sensitive[0].distance == "ordered"
    # equal distance for a category: classes {x, x, y} against {x: 4/9, y: 3/9, z: 2/9} ...
    cats = pa.table({"zone": zone, "disease": ["x", "x", "y", "x", "y", "z", "x", "y", "z"]})
    assert risk(cats, ["zone"], ["disease"]).t == pytest.approx(0.5 * (abs(2 / 3 - 4 / 9) + abs(1 / 3 - 3 / 9)
                                                                         + 2 / 9))


# -- streaming -------------------------------------------------------------------------------

def _multi_batch(tmp_path: Path, rows: int = 60_000, files: int = 6) -> datakiln.Dataset:
    rng = np.random.default_rng(3)
    folder = tmp_path / "parts"
    folder.mkdir()
    for i in range(files):
        n = rows // files
        mask = rng.random(n) < 0.02
        part = pa.table({
            "age": pa.array(rng.integers(18, 80, n), mask=mask),
            "zip": pa.array(rng.choice([f"{z:05d}" for z in range(200)], n)),
            "sex": pa.array(rng.choice(["F", "M"], n)),
            "income": pa.array(rng.choice(["low", "mid", "high"], n, p=[0.6, 0.3, 0.1])),
        })
        pq.write_table(part, folder / f"part-{i}.parquet", row_group_size=2_500)
    return datakiln.read(folder)


def test_streaming_counts_equal_pandas_groupby(tmp_path, monkeypatch):
    ds = _multi_batch(tmp_path)
    assert sum(1 for _ in ds._tables()) > 1
    monkeypatch.setattr(_counts, "_MERGE_ROWS", 5_000)  # the merge of partial counts runs too
    qi = ["age", "zip", "sex"]
    report = risk(ds, qi, ["income"], k=5)
    frame = ds.to_pandas()
    sizes = frame.groupby(qi, dropna=False).size()
    assert (report.rows, report.classes, report.k) == (len(frame), len(sizes), sizes.min())
    assert report.rows_below_k == sizes[sizes < 5].sum()
    assert report.classes_below_k == (sizes < 5).sum()
    for bin_ in report.histogram:
        label = bin_["sizes"]
        low, _, high = label.rstrip("+").partition("-")
        top = 10**12 if label.endswith("+") else int(high or low)
        inside = (sizes >= int(low)) & (sizes <= top)
        assert bin_["classes"] == inside.sum() and bin_["rows"] == sizes[inside].sum()
    assert sum(b["rows"] for b in report.histogram) == len(frame)
    per_class = frame.groupby(qi, dropna=False)["income"].nunique()
    assert report.l == per_class.min()
    coarse = ["zip", "sex"]  # pycanon on 400 classes (on ~25,000 it takes a minute)
    assert_equals_pycanon(risk(ds, coarse, ["income"]), pycanon_frame(frame), coarse, ["income"])


def test_memory_budget_is_enforced(tmp_path):
    ds = _multi_batch(tmp_path, rows=6_000, files=2)
    with pytest.raises(MemoryBudgetError, match="distinct combinations"):
        risk(ds, ["age", "zip", "sex"], ["income"], memory_budget="1KB")


def test_null_quasi_identifier_is_a_class_of_its_own():
    table = pa.table({"a": [1, 1, None, None, None], "s": ["x", "y", "x", "x", "x"]})
    report = risk(table, ["a"], ["s"])
    assert (report.classes, report.k, report.l) == (2, 2, 1)


# -- the generalisation search ---------------------------------------------------------------

@pytest.mark.parametrize("metric", ["discernibility", "loss"])
def test_search_finds_the_lattice_optimum(adult_sample_path, metric):
    """Pruning never loses the optimum: every node of the lattice evaluated by brute force."""
    from datakiln.privacy._lattice import Lattice

    ds = _read(adult_sample_path)
    qi = ["age", "sex", "race", "education"]
    hierarchies = {"education": HIERARCHIES / "education.csv", "race": HIERARCHIES / "adult.yaml"}
    _, rep = generalize_to_k(ds, qi, k=5, hierarchies=hierarchies, max_suppression=0.02, metric=metric)
    assert rep.nodes_evaluated + rep.nodes_pruned == rep.lattice_nodes
    assert rep.nodes_pruned > 0
    # brute force on the same snapshot
    from datakiln.privacy._counts import group_counts, value_codes
    from datakiln.privacy._hierarchy import build, read_hierarchy_file

    (snapshot,) = group_counts(ds, [qi])
    hs, codes = [], []
    specs = {"education": read_hierarchy_file(HIERARCHIES / "education.csv"),
             "race": read_hierarchy_file(HIERARCHIES / "adult.yaml", "race")}
    for name in qi:
        code, values, has_null = value_codes(snapshot[name])
        hs.append(build(name, values, has_null, specs.get(name)))
        codes.append(code)
    lattice = Lattice(hs, codes, snapshot[_counts.COUNT].to_numpy())
    results = [lattice.evaluate(node, 5, 12)[0]
               for node in itertools.product(*(range(h.top + 1) for h in hs))]
    best = min(r.value(metric) for r in results if r.holds)
    assert getattr(rep, metric) == pytest.approx(best)
    assert getattr(rep, metric) <= rep.naive[metric]


def test_generalised_sample_output(adult_sample_path, tmp_path):
    ds = _read(adult_sample_path)
    out, rep = generalize_to_k(ds, QI, k=10, hierarchies={"age": [5, 10, 20],
                                                          "education": HIERARCHIES / "education.csv"})
    table = out.to_arrow()
    assert table.num_rows == 600 - rep.rows_suppressed and rep.suppressed_share <= 0.01
    assert table.column_names == ds.columns
    assert rep.hierarchies["age"] == ["kept", "intervals of width 5", "intervals of width 10",
                                      "intervals of width 20", "suppressed ('*')"]
    age = rep.levels["age"]
    labels = set(table["age"].to_pylist())
    if age in (1, 2, 3):
        width = (5, 10, 20)[age - 1]
        assert all(v.startswith("[") and int(v[1:].split(",")[0]) % width == 0 for v in labels)
    assert risk(out, QI, k=10).k >= 10
    # the untouched columns are unchanged row for row
    kept = pycanon_frame(table)
    assert kept["income"].isin(["<=50K", ">50K"]).all()
    # writing goes through the Dataset (atomic, Parquet by default)
    result = out.write(tmp_path / "k10.parquet")
    assert pq.read_table(tmp_path / "k10.parquet").num_rows == table.num_rows
    assert json.loads(rep.to_json())["datakiln"]["kind"] == "generalization-report"
    assert result is not None


def test_yaml_and_csv_hierarchies_agree(adult_sample_path):
    ds = _read(adult_sample_path)
    a = generalize_to_k(ds, ["education", "sex"], k=20,
                        hierarchies={"education": HIERARCHIES / "education.csv"})
    b = generalize_to_k(ds, ["education", "sex"], k=20, hierarchies=HIERARCHIES / "adult.yaml")
    assert a.report.levels == b.report.levels
    assert a.dataset.to_arrow().equals(b.dataset.to_arrow())
    if a.report.levels["education"] == 1:
        assert set(a.dataset.to_arrow()["education"].to_pylist()) <= {
            "Primary", "Secondary", "Post-secondary", "University"}


def test_default_numeric_widths_are_nice_and_doubling(adult_sample_path):
    _, rep = generalize_to_k(_read(adult_sample_path), ["age"], k=2)
    assert rep.hierarchies["age"][1:5] == ["intervals of width 5", "intervals of width 10",
                                           "intervals of width 20", "intervals of width 40"]


# -- bad input -------------------------------------------------------------------------------

def test_bad_arguments_are_named(adult_sample_path, tmp_path):
    ds = _read(adult_sample_path)
    with pytest.raises(SchemaError, match="zipcode"):
        risk(ds, ["age", "zipcode"], ["income"])
    with pytest.raises(InvalidArgumentError, match="once"):
        risk(ds, ["age", "income"], ["income"])
    with pytest.raises(InvalidArgumentError, match="t must be"):
        risk(ds, ["age"], ["income"], t=2)
    with pytest.raises(InvalidArgumentError, match="k must be"):
        generalize_to_k(ds, ["age"], k=0)
    with pytest.raises(InvalidArgumentError, match="max_suppression"):
        generalize_to_k(ds, ["age"], max_suppression=5)
    with pytest.raises(InvalidArgumentError, match="metric"):
        generalize_to_k(ds, ["age"], metric="entropy")
    with pytest.raises(InvalidArgumentError, match="fewer than k"):
        generalize_to_k(ds, ["age"], k=601)
    with pytest.raises(InvalidArgumentError, match="multiple"):
        generalize_to_k(ds, ["age"], hierarchies={"age": [5, 7]})
    with pytest.raises(InvalidArgumentError, match="not numbers"):
        generalize_to_k(ds, ["sex"], hierarchies={"sex": [5]})
    with pytest.raises(InvalidArgumentError, match="not among"):
        generalize_to_k(ds, ["age"], hierarchies={"sex": "suppress"})
    with pytest.raises(SourceNotFoundError, match="nowhere.csv"):
        generalize_to_k(ds, ["sex"], hierarchies={"sex": tmp_path / "nowhere.csv"})
    partial = tmp_path / "partial.csv"
    partial.write_text("Male;Person\n")
    with pytest.raises(SchemaError, match="Female"):
        generalize_to_k(ds, ["sex"], hierarchies={"sex": partial})
    not_tree = tmp_path / "not_tree.csv"
    not_tree.write_text("Male;A;X\nFemale;A;Y\n")
    with pytest.raises(SchemaError, match="not a tree"):
        generalize_to_k(ds, ["sex"], hierarchies={"sex": not_tree})
    lonely = tmp_path / "lonely.csv"
    lonely.write_text("Male\n")
    with pytest.raises(SchemaError, match="row 1"):
        generalize_to_k(ds, ["sex"], hierarchies={"sex": lonely})


def test_lattice_size_is_bounded(adult_sample_path):
    ds = _read(adult_sample_path)
    with pytest.raises(InvalidArgumentError, match="max_nodes"):
        generalize_to_k(ds, QI, max_nodes=10)


def test_report_json(adult_sample_path, tmp_path):
    report = risk(_read(adult_sample_path), QI, ["income"], k=10, l=2, t=0.3)
    assert report.satisfied == {"k": False, "l": False, "t": False}
    path = tmp_path / "risk.json"
    report.to_json(path)
    data = json.loads(path.read_text())
    assert data["datakiln"]["kind"] == "risk-report"
    assert data["k"] == 1 and data["per_sensitive"][0]["distance"] == "equal"
    assert set(data["definitions"]) >= {"k", "l", "t"}


# -- kiln risk -------------------------------------------------------------------------------

def test_cli_risk_generalize(adult_sample_path, tmp_path):
    from typer.testing import CliRunner

    from datakiln.cli.app import app

    out, report = tmp_path / "k10.parquet", tmp_path / "risk.json"
    args = ["risk", str(adult_sample_path), "--names", ",".join(ADULT_COLUMNS), "--qi", ",".join(QI),
            "--sensitive", "income", "--k", "10"]
    result = CliRunner().invoke(app, [*args, "--generalize", "-o", str(out), "--json", str(report),
                                      "--hierarchy", f"education={HIERARCHIES / 'education.csv'}",
                                      "--hierarchy", "age=5,10,20"])
    assert result.exit_code == 0, result.output
    assert "k (smallest class)" in result.output and "naive recoding" in result.output
    data = json.loads(report.read_text())
    assert data["before"]["k"] == 1 and data["after"]["k"] >= 10
    written = pycanon_frame(pq.read_table(out))
    assert anonymity.k_anonymity(written, QI) == data["after"]["k"]
    assert len(written) == 600 - data["generalization"]["rows_suppressed"]
    assert data["generalization"]["hierarchies"]["age"][1] == "intervals of width 5"
    plain = CliRunner().invoke(app, args)
    assert plain.exit_code == 0 and "rows in classes < k" in plain.output


@pytest.mark.parametrize("extra, message", [
    (["--generalize"], "--out"),
    (["--generalize", "-o", "OUT", "--hierarchy", "age"], "COLUMN=SPEC"),
    (["--generalize", "-o", "OUT", "--hierarchy", "age=five"], "interval widths"),
    (["--sensitive", "salary"], "salary"),
])
def test_cli_risk_bad_input_is_one_line(adult_sample_path, tmp_path, extra, message):
    from typer.testing import CliRunner

    from datakiln.cli.app import app

    extra = [str(tmp_path / "out.parquet") if e == "OUT" else e for e in extra]
    result = CliRunner().invoke(app, ["risk", str(adult_sample_path), "--names", ",".join(ADULT_COLUMNS),
                                      "--qi", "age,sex", *extra])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_dictionary_dates_and_bools_as_quasi_identifiers():
    import datetime as dt

    table = pa.table({
        "city": pa.array(["a", "b", "a", "b", "c"] * 20).dictionary_encode(),
        "day": pa.array([dt.date(2020, 1, i % 3 + 1) for i in range(100)]),
        "member": [True, False] * 50,
        "score": [1.5, 2.5] * 50,
        "s": ["u", "v", "w", "u"] * 25,
    })
    report = risk(table, ["city", "day", "member"], ["s", "score"], k=5)
    frame = table.to_pandas().astype({"city": str})
    sizes = frame.groupby(["city", "day", "member"]).size()
    assert (report.k, report.classes) == (sizes.min(), len(sizes))
    assert [p.distance for p in report.per_sensitive] == ["equal", "ordered"]
    out, rep = generalize_to_k(table, ["city", "day", "member"], k=30)
    result = out.to_arrow()
    assert risk(result, ["city", "day", "member"]).k >= 30
    for change in rep.changes:
        if change["level"]:
            assert set(result[change["column"]].to_pylist()) == {"*"}


def test_nested_quasi_identifier_is_refused():
    with pytest.raises(SchemaError, match="'tags'.*nested"):
        risk(pa.table({"tags": [[1], [2]], "s": ["a", "b"]}), ["tags"], ["s"])
