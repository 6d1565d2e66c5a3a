"""``kiln anonymize`` end to end: key handling (never a default key), the change table, the
report beside the output, pseudonyms equal to the library's, and the output rules."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from tests.conftest import ADULT_COLUMNS
from typer.testing import CliRunner

import datakiln
from datakiln.cli.app import app
from datakiln.privacy import anonymize, pseudonymize
from datakiln.privacy.keys import Key, load_key

runner = CliRunner()


def _people(path: Path, rows: int = 80) -> Path:
    pcsv.write_csv(pa.table({
        "email": [f"user{i}@example.org" for i in range(rows)],
        "phone": [f"+1 555-010-{i:04d}" for i in range(rows)],
        "note": [f"call me on 555-010-{i:04d} about order {i}" if i % 2 else f"order {i}"
                 for i in range(rows)],
        "age": [20 + i % 50 for i in range(rows)]}), path)
    return path


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.key"
    result = runner.invoke(app, ["key", "new", str(path)])
    assert result.exit_code == 0, result.output
    return path


def test_without_a_key_one_line_error_exit_2(tmp_path, monkeypatch):
    monkeypatch.delenv("DATAKILN_KEY", raising=False)
    data = _people(tmp_path / "people.csv")
    result = runner.invoke(app, ["anonymize", str(data), "-o", str(tmp_path / "out.parquet")])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: KeyFileError")
    assert "no default key" in lines[0] and "kiln key new" in lines[0]
    assert not (tmp_path / "out.parquet").exists() and not (tmp_path / "out.anonymize.json").exists()


def test_with_a_key_file_writes_output_report_and_table(tmp_path, key_file):
    data = _people(tmp_path / "people.csv")
    out = tmp_path / "anon.parquet"
    result = runner.invoke(app, ["anonymize", str(data), "-o", str(out), "--key-file", str(key_file)])
    assert result.exit_code == 0, result.output
    key = load_key(key_file)
    assert f"80 rows, key id {key.key_id}" in result.output
    assert "pseudonymize" in result.output and "scrub" in result.output and "wrote" in result.output
    report = json.loads((tmp_path / "anon.anonymize.json").read_text())
    assert report["datakiln"]["kind"] == "anonymize-report" and report["rows"] == 80
    changes = {c["column"]: c for c in report["changes"]}
    assert changes["email"]["rows_changed"] == 80 and changes["note"]["rows_changed"] == 40
    assert changes["note"]["found"] == {"phone": 40} and report["unchanged"] == ["age"]
    written = pq.read_table(out)
    expected = anonymize(datakiln.read(data), key=key)[0].to_arrow()
    assert written.select(["email", "phone", "note"]).equals(expected.select(["email", "phone", "note"]))
    assert not set(written["email"].to_pylist()) & {f"user{i}@example.org" for i in range(80)}


def test_key_from_environment_and_config(tmp_path, monkeypatch):
    data = _people(tmp_path / "people.csv")
    config = tmp_path / "privacy.yaml"
    config.write_text("columns:\n  age: {op: generalize, width: 10}\n"
                      "  email: {op: pseudonymize, length: 16}\n  phone: suppress\n")
    monkeypatch.setenv("DATAKILN_KEY", "ab" * 32)
    out = tmp_path / "anon.csv"
    report = tmp_path / "changes.json"
    result = runner.invoke(app, ["anonymize", str(data), "-o", str(out), "--config", str(config),
                                 "--report", str(report)])
    assert result.exit_code == 0, result.output
    written = datakiln.read(out).to_arrow()
    assert written.column_names == ["email", "note", "age"]
    key = Key(bytes.fromhex("ab" * 32))
    assert written["email"].to_pylist() == pseudonymize(
        [f"user{i}@example.org" for i in range(80)], key, length=16).to_pylist()
    assert set(written["age"].to_pylist()) <= {"[20, 30)", "[30, 40)", "[40, 50)", "[50, 60)", "[60, 70)"}
    data_report = json.loads(report.read_text())
    assert data_report["dropped"] == ["phone"] and data_report["key_id"] == key.key_id


def test_bad_keys_and_outputs_are_one_line_errors(tmp_path, key_file):
    data = _people(tmp_path / "people.csv")
    open_key = tmp_path / "open.key"
    open_key.write_bytes(bytes(range(32)))
    open_key.chmod(0o644)
    cases = [
        (["--key-file", str(open_key)], "KeyFileError", "chmod 600"),
        (["--key-file", str(tmp_path / "missing.key")], "KeyFileError", "does not exist"),
        (["--key-file", str(key_file), "--config", str(tmp_path / "none.yaml")], "InvalidArgumentError",
         "does not exist"),
    ]
    for extra, error, text in cases:
        result = runner.invoke(app, ["anonymize", str(data), "-o", str(tmp_path / "o.parquet"), *extra])
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert result.exit_code == 2 and len(lines) == 1, result.output
        assert error in lines[0] and text in lines[0]
    same = runner.invoke(app, ["anonymize", str(data), "-o", str(data), "--key-file", str(key_file)])
    assert same.exit_code == 2 and "OutputExistsError" in same.output
    foreign = tmp_path / "o.anonymize.json"
    foreign.write_text("my notes")
    refused = runner.invoke(app, ["anonymize", str(data), "-o", str(tmp_path / "o.parquet"),
                                  "--key-file", str(key_file)])
    assert refused.exit_code == 2 and "OutputExistsError" in refused.output
    assert foreign.read_text() == "my notes" and not (tmp_path / "o.parquet").exists()


def test_adult_sample_without_pii_needs_no_key(adult_sample_path, tmp_path, monkeypatch):
    monkeypatch.delenv("DATAKILN_KEY", raising=False)
    config = tmp_path / "privacy.yaml"
    config.write_text("columns:\n  age: {op: generalize, edges: [30, 50]}\n"
                      "  native-country: {op: suppress, min_count: 10}\n")
    out = tmp_path / "adult.parquet"
    result = runner.invoke(app, ["anonymize", str(adult_sample_path), "--names", ",".join(ADULT_COLUMNS),
                                 "-o", str(out), "--config", str(config)])
    assert result.exit_code == 0, result.output
    written = pq.read_table(out)
    original = datakiln.read(adult_sample_path, names=ADULT_COLUMNS).to_arrow()
    assert written.num_rows == 600 and written["income"].equals(original["income"])
    ages = original["age"].to_pylist()
    expected = ["< 30" if a < 30 else "[30, 50)" if a < 50 else ">= 50" for a in ages]
    assert written["age"].to_pylist() == expected
    report = json.loads((tmp_path / "adult.anonymize.json").read_text())
    assert report["key_id"] is None and report["rows"] == 600
