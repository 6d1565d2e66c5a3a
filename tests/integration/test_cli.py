"""The ``kiln`` commands end to end on real data.

They run on the 600-row Adult sample and the 600-row bank-marketing sample vendored in
``tests/data`` (so a bare clone runs them, fast); the expected counts come from the raw file
itself (:func:`_raw`), not from datakiln. ``test_inspect_full_adult`` checks the full file
from ``../shared`` against the figures its README states.
"""

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from tests.conftest import ADULT_COLUMNS
from typer.testing import CliRunner

import datakiln
from datakiln.cli.app import app

runner = CliRunner()
NAMES = ",".join(ADULT_COLUMNS)


def _raw(path: Path) -> list[list[str]]:
    """The Adult file's rows split by hand (", " between values, no header), the test's oracle."""
    return [line.split(", ") for line in path.read_text().splitlines() if line.strip()]


def _missing(rows: list[list[str]], column: str) -> int:
    return sum(row[ADULT_COLUMNS.index(column)] == "?" for row in rows)


def test_inspect_adult_json(adult_sample_path):
    raw = _raw(adult_sample_path)
    result = runner.invoke(app, ["inspect", str(adult_sample_path), "--names", NAMES, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["rows"] == len(raw) == 600 and len(data["columns"]) == 15
    columns = {c["name"]: c for c in data["columns"]}
    assert {"name", "kind", "type", "nulls"} <= set(columns["age"])
    assert columns["age"]["kind"] == "integer"
    assert {columns[c]["kind"] for c in ("workclass", "education", "income")} == {"categorical"}
    for name in ("workclass", "occupation", "native-country"):
        assert columns[name]["nulls"] == _missing(raw, name) > 0
    assert columns["income"]["distinct"] == 2 and columns["income"]["distinct_exact"]
    assert data["csv"] == {"delimiter": ",", "header": False, "trimmed": True}


def test_inspect_full_adult(adult_path):
    result = runner.invoke(app, ["inspect", str(adult_path), "--names", NAMES, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    columns = {c["name"]: c for c in data["columns"]}
    assert data["rows"] == 32_561  # the figures of ../shared/datasets/adult/README.md
    assert [columns[c]["nulls"] for c in ("workclass", "occupation", "native-country")] == [
        1836, 1843, 583]


def test_inspect_prints_a_table(adult_sample_path):
    missing = _missing(_raw(adult_sample_path), "workclass")
    result = runner.invoke(app, ["inspect", str(adult_sample_path), "--names", NAMES])
    assert result.exit_code == 0, result.output
    assert "600 rows × 15 columns" in result.stdout
    assert f"{missing} ({missing / 600:.1%})" in result.stdout  # workclass missing values
    assert "header row: no" in result.stdout


def test_convert_writes_parquet_shards(adult_sample_path, tmp_path):
    out = tmp_path / "adult"
    result = runner.invoke(app, ["convert", str(adult_sample_path), str(out), "--names", NAMES,
                                 "--rows-per-file", "250"])
    assert result.exit_code == 0, result.output
    assert "wrote 600 rows" in result.stdout and "3 files" in result.stdout
    original = datakiln.read(adult_sample_path, names=ADULT_COLUMNS).to_arrow()
    assert datakiln.read(out).to_arrow().equals(original)


def test_demo_runs_the_main_job(tmp_path):
    result = runner.invoke(app, ["demo", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "5,000 rows × 15 columns" in result.stdout
    assert "identical to the CSV read: True" in result.stdout
    assert "validation: 500 rows" in result.stdout
    assert "imputed (mode): 331" in result.stdout
    assert "synthetic rows" in result.stdout and (tmp_path / "adult.kiln").exists()
    assert "smotenc: {'<=50K': 3022, '>50K': 977} -> {'<=50K': 3022, '>50K': 3022}" in result.stdout
    assert datakiln.read(tmp_path / "train_balanced.parquet").count() == 2 * 3022
    assert (tmp_path / "adult.parquet").exists()
    report = json.loads((tmp_path / "report.json").read_text())
    assert 0.8 < report["fidelity"]["score"] <= 1 and report["utility"]["target"] == "income"
    assert "HTML report:" in result.stdout and (tmp_path / "report.html").stat().st_size > 20_000


def test_balance_command_auto_prints_and_writes_the_comparison(bank_sample_path, tmp_path):
    bank = str(bank_sample_path)
    out, report = tmp_path / "bank.parquet", tmp_path / "balance.json"
    result = runner.invoke(app, ["balance", bank, "-o", str(out), "--target", "y", "--method", "auto",
                                 "--json", str(report)])
    assert result.exit_code == 0, result.output
    assert "minority f1" in result.stdout and "◀ chosen" in result.stdout
    data = json.loads(report.read_text())
    rows = bank_sample_path.read_text().splitlines()[1:]
    labels = Counter(line.rsplit(";", 1)[1].strip('"') for line in rows)
    assert data["counts_before"] == dict(labels) == {"no": 528, "yes": 72}
    assert {row["method"] for row in data["comparison"]} >= {"none", "smote", "random_under", "synth"}
    assert datakiln.read(out).count() == sum(data["counts_after"].values())
    ratio = runner.invoke(app, ["balance", bank, "-o", str(tmp_path / "r.parquet"), "--target", "y",
                                "--method", "random_under", "--ratio", "0.5"])
    assert ratio.exit_code == 0 and "wrote 216 rows" in ratio.stdout  # 72 yes + 72 / 0.5 no
    bad = runner.invoke(app, ["balance", bank, "-o", str(tmp_path / "x.parquet"), "--target", "y",
                              "--method", "magic"])
    assert bad.exit_code == 2 and "unknown balancing method" in bad.output


def test_evaluate_writes_html_and_json(adult_sample, tmp_path):
    import pyarrow.parquet as pq

    from datakiln.synth import GaussianCopula

    pq.write_table(adult_sample, tmp_path / "real.parquet")
    pq.write_table(GaussianCopula().fit(adult_sample).sample(600, seed=1), tmp_path / "synth.parquet")
    result = runner.invoke(app, ["evaluate", "--real", str(tmp_path / "real.parquet"), "--synthetic",
                                 str(tmp_path / "synth.parquet"), "--target", "income", "--sample-rows",
                                 "500", "--html", str(tmp_path / "r.html"), "--sensitive", "sex",
                                 "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    assert "column-pair trends" in result.stdout and "detection AUC" in result.stdout
    assert "detection score" in result.stdout and "parity difference" in result.stdout
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["info"]["real_rows"] == 600 and data["utility"]["holdout"] == "20% of the real sample"
    parity = data["utility"]["synthetic"]["fairness"]["demographic_parity_difference"]
    assert 0 <= parity <= 1
    page = (tmp_path / "r.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "Parity difference" in page and "score 2(1−AUC)" in page
    bad = runner.invoke(app, ["evaluate", "--real", str(tmp_path / "real.parquet"), "--synthetic",
                              str(tmp_path / "real.parquet"), "--target", "nope"])
    assert bad.exit_code == 2 and "target 'nope'" in bad.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["inspect", "no/such/file.csv"], "SourceNotFoundError: no such file"),
        (["inspect", "{adult}", "--names", "a,b"], "2 names were given"),
        (["inspect", "{adult}", "--memory-budget", "lots"], "memory_budget must be a size"),
    ],
)
def test_errors_are_one_clear_line_and_exit_2(adult_sample_path, args, message):
    args = [a.replace("{adult}", str(adult_sample_path)) for a in args]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_console_script_and_help():
    out = subprocess.run([sys.executable, "-m", "datakiln.cli", "--help"], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    for command in ("inspect", "convert", "clean", "split", "demo"):
        assert command in out.stdout
    inspect_help = runner.invoke(app, ["inspect", "--help"])
    assert "--names" in inspect_help.stdout and "Examples" in inspect_help.stdout


def test_split_command_writes_stratified_files(adult_sample_path, tmp_path):
    result = runner.invoke(app, ["split", str(adult_sample_path), "--names", NAMES, "-o", str(tmp_path),
                                 "--stratify", "income", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "stratified split" in result.stdout and "│ train      │  480 │ 80.00%" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["_datakiln.json", "split.json", "test.parquet",
                                                          "train.parquet", "validation.parquet"]
    counts = [datakiln.read(tmp_path / f"{name}.parquet").count() for name in ("train", "validation", "test")]
    assert counts[0] == 480 and sum(counts) == 600 and min(counts[1:]) >= 55
    bad = runner.invoke(app, ["split", str(adult_sample_path), "-o", str(tmp_path), "--fractions", "a,b"])
    assert bad.exit_code == 2 and "--fractions" in bad.stderr


def test_clean_command_default_and_config(adult_sample_path, tmp_path):
    out, report = tmp_path / "clean.parquet", tmp_path / "report.json"
    source = tmp_path / "adult.csv"  # the sample and its first 24 rows again: 24 exact duplicates
    lines = adult_sample_path.read_text().splitlines(keepends=True)
    source.write_text("".join(lines + lines[:24]))
    missing = _missing(_raw(source), "workclass")
    result = runner.invoke(app, ["clean", str(source), "--names", NAMES, "-o", str(out),
                                 "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert "624 rows in, 600 rows out" in result.stdout
    assert re.search(rf"\(found\) +│ workclass +│ missing values +│ +{missing} │", result.stdout)
    data = json.loads(report.read_text())
    assert [s["step"] for s in data["steps"]] == ["repair", "duplicates", "outliers"]
    assert data["steps"][1]["rows_removed"] == 24
    assert datakiln.read(out).count() == 600
    config = tmp_path / "clean.yaml"
    config.write_text("steps:\n  - missing: {strategy: mode}\n")
    result = runner.invoke(app, ["clean", str(source), "--names", NAMES, "-o", str(out), "--overwrite",
                                 "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "imputed (mode)" in result.stdout
    assert datakiln.read(out).to_arrow()["workclass"].null_count == 0


def test_synth_fit_and_sample_commands(adult_sample_path, tmp_path):
    model = tmp_path / "adult.kiln"
    result = runner.invoke(app, ["synth", "fit", str(adult_sample_path), "--names", NAMES, "-o", str(model)])
    assert result.exit_code == 0, result.output
    assert "GaussianCopula fitted" in result.stdout and "600 rows learned" in result.stdout
    out = tmp_path / "rich.parquet"
    result = runner.invoke(app, ["synth", "sample", str(model), "-n", "2000", "-o", str(out),
                                 "--where", "income=>50K", "--where", "age=30..40", "--seed", "1"])
    assert result.exit_code == 0, result.output
    table = datakiln.read(out).to_arrow()
    assert table.num_rows == 2000 and set(table["income"].to_pylist()) == {">50K"}
    assert 30 <= min(table["age"].to_pylist()) and max(table["age"].to_pylist()) <= 40
    bad = runner.invoke(app, ["synth", "sample", str(tmp_path / "none.kiln"), "-n", "5", "-o", str(out)])
    assert bad.exit_code == 2 and "ModelFormatError" in bad.stderr
