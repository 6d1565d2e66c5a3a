"""``--policy/--role`` on ``kiln inspect`` and ``kiln convert``, and ``kiln audit verify``: the
analyst never receives a forbidden column on the command line either, and a tampered log
exits 2 with the first bad line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from datakiln.cli.app import app

runner = CliRunner()

POLICY = """\
key_file: pseudonym.key
audit: {log: audit.jsonl, checkpoint: audit.head, key_file: audit.key}
roles:
  analyst:
    columns: [age, country]
    masked:
      email: {op: mask, keep_last: 4}
      customer_id: {op: pseudonymize, format: hmac, length: 16}
    row_filter: "age >= 30"
"""


@pytest.fixture
def place(tmp_path: Path) -> Path:
    for name in ("audit.key", "pseudonym.key"):
        assert runner.invoke(app, ["key", "new", str(tmp_path / name)]).exit_code == 0
    (tmp_path / "policy.yaml").write_text(POLICY)
    rng = np.random.default_rng(1)
    rows = 300
    pq.write_table(pa.table({
        "customer_id": [f"C{i:05d}" for i in range(rows)],
        "email": [f"person{i}@mail.example" for i in range(rows)],
        "age": rng.integers(18, 70, rows),
        "country": rng.choice(["US", "FR"], rows).tolist(),
        "diagnosis": [f"secret-diagnosis-{i}" for i in range(rows)],
    }), tmp_path / "patients.parquet")
    return tmp_path


def _as(place: Path, *args: str, role: str = "analyst"):
    return runner.invoke(app, [*args, "--policy", str(place / "policy.yaml"), "--role", role])


def test_inspect_shows_only_the_roles_columns_masked(place):
    result = _as(place, "inspect", str(place / "patients.parquet"), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    names = [c["name"] for c in summary["columns"]]
    assert names == ["customer_id", "email", "age", "country"]
    assert "secret-diagnosis" not in result.output and "diagnosis" not in result.output
    assert "person1@" not in result.output and "C0000" not in result.output
    raw = pq.read_table(place / "patients.parquet")
    assert summary["rows"] == raw.filter(pc.field("age") >= 30).num_rows


def test_convert_writes_only_what_the_role_may_read(place):
    out = place / "shared.parquet"
    result = _as(place, "convert", str(place / "patients.parquet"), str(out), "--single-file")
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    raw = pq.read_table(place / "patients.parquet").filter(pc.field("age") >= 30)
    assert table.column_names == ["customer_id", "email", "age", "country"]
    assert table["age"].to_pylist() == raw["age"].to_pylist()
    assert all(v.startswith("*") and v.endswith("mple") for v in table["email"].to_pylist())
    assert all(len(v) == 16 for v in table["customer_id"].to_pylist())
    assert not set(table["customer_id"].to_pylist()) & set(raw["customer_id"].to_pylist())


def test_cli_refusals_are_one_line_exit_2(place):
    data = str(place / "patients.parquet")
    result = _as(place, "inspect", data, role="intern")
    assert result.exit_code == 2 and "AccessDeniedError" in result.output and "intern" in result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) == 1
    result = runner.invoke(app, ["inspect", data, "--role", "analyst"])
    assert result.exit_code == 2 and "--policy" in result.output
    result = runner.invoke(app, ["convert", data, str(place / "o.parquet"), "--policy",
                                 str(place / "policy.yaml")])
    assert result.exit_code == 2 and "--role" in result.output
    assert not (place / "o.parquet").exists()


def test_audit_verify_passes_then_catches_tampering(place):
    assert _as(place, "inspect", str(place / "patients.parquet")).exit_code == 0
    assert _as(place, "convert", str(place / "patients.parquet"), str(place / "o.parquet"),
               "--single-file").exit_code == 0
    log, head, key = (str(place / n) for n in ("audit.jsonl", "audit.head", "audit.key"))
    result = runner.invoke(app, ["audit", "verify", log, "--head", head, "--key-file", key])
    assert result.exit_code == 0, result.output
    entries = [json.loads(line) for line in Path(log).read_text().splitlines()]
    assert f"holds {len(entries)} chained entries" in result.output and len(entries) >= 4
    assert {e["role"] for e in entries} == {"analyst"}
    assert all("diagnosis" not in e.get("columns", []) for e in entries)
    reads = [e for e in entries if e["event"] == "read"]
    assert {e["source"] for e in reads} == {str(place / "patients.parquet")}
    as_json = runner.invoke(app, ["audit", "verify", log, "--head", head, "-k", key, "--json"])
    assert json.loads(as_json.output)["entries"] == len(entries)

    lines = Path(log).read_text().splitlines(keepends=True)
    Path(log).write_text("".join(lines[:1] + lines[2:]))  # remove line 2
    result = runner.invoke(app, ["audit", "verify", log, "--head", head, "--key-file", key])
    assert result.exit_code == 2
    assert "AuditVerificationError" in result.output and "line 2" in result.output
    Path(log).write_text("".join(lines[:-2]))  # remove the last two lines
    result = runner.invoke(app, ["audit", "verify", log, "--head", head, "--key-file", key])
    assert result.exit_code == 2 and f"line {len(lines) - 1}" in result.output
    result = runner.invoke(app, ["audit", "verify", log, "--key-file", key])
    assert result.exit_code == 0 and "no --head" in result.output
