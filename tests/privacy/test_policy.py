"""Access policies at read time: projection (forbidden columns never decoded), masking through
the anonymisation operators, row filters pushed down, AccessDeniedError, clear policy errors,
and an audit entry for every read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from tests.conftest import ADULT_COLUMNS

import datakiln
from datakiln.errors import (
    AccessDeniedError,
    InvalidArgumentError,
    KeyFileError,
    ParseError,
    SchemaError,
)
from datakiln.privacy import make_operator, pseudonymize
from datakiln.privacy.audit import verify_log
from datakiln.privacy.keys import load_key, new_key_file
from datakiln.privacy.policy import load_policy

ROWS = 200
POLICY = """\
version: 1
key_file: pseudonym.key
audit:
  log: logs/audit.jsonl
  checkpoint: logs/audit.head
  key_file: audit.key
roles:
  analyst:
    columns: [age, country]
    masked:
      email: {op: mask, keep_last: 4}
      customer_id: {op: pseudonymize, format: integer}
    row_filter: "country == 'US' and age >= 18"
  steward:
    columns: "*"
    exclude: [ssn]
"""


def _people(rows: int = ROWS) -> pa.Table:
    rng = np.random.default_rng(0)
    return pa.table({
        "customer_id": np.arange(1_000, 1_000 + rows, dtype=np.int64),
        "email": [f"user{i}@example.org" for i in range(rows)],
        "age": rng.integers(10, 80, rows),
        "country": rng.choice(["US", "FR", "DE"], rows).tolist(),
        "ssn": [f"{i:03d}-55-{i:04d}" for i in range(rows)],
    })


@pytest.fixture
def place(tmp_path: Path) -> Path:
    new_key_file(tmp_path / "audit.key")
    new_key_file(tmp_path / "pseudonym.key")
    (tmp_path / "policy.yaml").write_text(POLICY)
    pq.write_table(_people(), tmp_path / "people.parquet", row_group_size=50)
    return tmp_path


def _read(place: Path, role: str = "analyst", name: str = "people.parquet", **options):
    return datakiln.read(place / name, policy=place / "policy.yaml", role=role, **options)


def _entries(place: Path) -> list[dict]:
    return [json.loads(line) for line in (place / "logs" / "audit.jsonl").read_text().splitlines()]


def _expected(place: Path) -> pa.Table:
    raw = _people()
    return raw.filter((pc.field("country") == "US") & (pc.field("age") >= 18))


# -- what the analyst receives -------------------------------------------------------------------
def test_analyst_gets_only_allowed_columns_masked_and_filtered(place):
    ds = _read(place)
    assert ds.columns == ["customer_id", "email", "age", "country"]
    got = ds.to_arrow()
    want = _expected(place)
    assert got.num_rows == want.num_rows > 0
    assert got["age"].to_pylist() == want["age"].to_pylist()
    assert set(got["country"].to_pylist()) == {"US"} and min(got["age"].to_pylist()) >= 18
    # masked exactly as P1's operator masks, pseudonymised exactly as pseudonymize() does
    mask = make_operator({"op": "mask", "keep_last": 4})
    assert got["email"].to_pylist() == mask.apply(want["email"].combine_chunks(), 0).to_pylist()
    assert all(v.endswith(".org") and v.startswith("*") for v in got["email"].to_pylist())
    key = load_key(place / "pseudonym.key")
    expected = pseudonymize(want["customer_id"], key, format="integer").to_pylist()
    assert got["customer_id"].to_pylist() == expected
    same = sum(a == b for a, b in zip(got["customer_id"].to_pylist(), want["customer_id"].to_pylist()))
    assert same <= 3  # a keyed bijection on 4-digit numbers: a value rarely maps to itself


def test_forbidden_values_appear_in_no_output(place):
    ds = _read(place)
    secrets = set(_people()["ssn"].to_pylist()) | set(_people()["email"].to_pylist())
    outputs = [ds.to_arrow(), ds.head(7), pa.Table.from_batches(list(ds.iter_batches(16))),
               ds.to_pandas().pipe(pa.Table.from_pandas)]
    for table in outputs:
        assert "ssn" not in table.column_names
        values = {v for column in table.columns for v in column.to_pylist()}
        assert not values & secrets
    assert "ssn" not in ds.schema.names and "ssn" not in ds.arrow_schema.names


def test_a_forbidden_column_is_never_decoded(place):
    """A Parquet column whose pages are garbage breaks a full read but not the analyst's: the
    reader is never asked to decode it."""
    table = _people()
    pq.write_table(table, place / "corrupt.parquet", compression="none", use_dictionary=False)
    meta = pq.ParquetFile(place / "corrupt.parquet").metadata.row_group(0)
    ssn = next(meta.column(i) for i in range(meta.num_columns) if meta.column(i).path_in_schema == "ssn")
    data = bytearray((place / "corrupt.parquet").read_bytes())
    data[ssn.data_page_offset:ssn.data_page_offset + ssn.total_compressed_size] = (
        b"\xff" * ssn.total_compressed_size)
    (place / "corrupt.parquet").write_bytes(bytes(data))
    with pytest.raises(ParseError):
        datakiln.read(place / "corrupt.parquet").to_arrow()
    got = _read(place, name="corrupt.parquet").to_arrow()
    assert got["age"].to_pylist() == _expected(place)["age"].to_pylist()
    steward = _read(place, role="steward", name="corrupt.parquet")  # excludes ssn: reads fine too
    assert steward.columns == ["customer_id", "email", "age", "country"]
    assert steward.count() == ROWS and steward.to_arrow().num_rows == ROWS


def test_projection_and_row_filter_are_pushed_into_the_reader(place, monkeypatch):
    ds = _read(place)
    inner = ds.source._inner
    calls = []
    original = inner.read_tasks

    def spy(columns=None, filter=None):
        calls.append((list(columns) if columns is not None else None, filter))
        return original(columns, filter)

    monkeypatch.setattr(inner, "read_tasks", spy)
    ds.select(["age"]).to_arrow()
    assert calls[-1][0] == ["age"]  # only the asked column; ssn and email never requested
    assert calls[-1][1] is not None and "country" in str(calls[-1][1])
    ds.to_arrow()
    assert calls[-1][0] == ["customer_id", "email", "age", "country"]


def test_csv_source_and_the_loader(place):
    pcsv.write_csv(_people(), place / "people.csv")
    ds = _read(place, name="people.csv")
    assert ds.to_arrow()["age"].to_pylist() == _expected(place)["age"].to_pylist()
    loader = ds.loader(16, columns=["age", "email"], shuffle=True, seed=3, format="arrow")
    seen = [batch for batch in loader]
    got = pa.Table.from_batches(seen)
    assert got.column_names == ["age", "email"]
    assert sorted(got["age"].to_pylist()) == sorted(_expected(place)["age"].to_pylist())
    assert all(v.startswith("*") for v in got["email"].to_pylist())
    whole = pa.Table.from_batches(list(ds.loader(32, format="arrow")))
    assert "ssn" not in whole.column_names and whole.num_rows == _expected(place).num_rows


@pytest.mark.parametrize("ask", [["ssn"], ["age", "ssn"], ["no_such_column"]])
def test_asking_for_another_column_is_access_denied(place, ask):
    ds = _read(place)
    refused = [c for c in ask if c != "age"]
    with pytest.raises(AccessDeniedError, match="analyst") as caught:
        ds.select(ask)
    assert str(refused) in str(caught.value)
    with pytest.raises(AccessDeniedError):
        ds.loader(8, columns=ask)
    with pytest.raises(AccessDeniedError):  # straight at the source too
        list(ds.source.read_tasks(columns=ask))


def test_a_callers_filter_sees_masked_values_only(place):
    ds = _read(place)
    first = _expected(place)
    raw_email = first["email"][0].as_py()
    assert ds.filter(pc.field("email") == raw_email).count() == 0  # no oracle on raw values
    masked = ds.to_arrow()["email"][0].as_py()
    hits = ds.filter(pc.field("email") == masked).to_arrow()
    assert hits.num_rows >= 1 and set(hits["email"].to_pylist()) == {masked}


def test_count_and_row_filter_on_a_column_the_role_cannot_read(place):
    policy = POLICY.replace("columns: [age, country]", "columns: [age]")
    (place / "policy.yaml").write_text(policy)
    ds = _read(place)
    assert ds.columns == ["customer_id", "email", "age"]
    assert ds.count() == _expected(place).num_rows
    assert ds.to_arrow()["age"].to_pylist() == _expected(place)["age"].to_pylist()


def test_steward_reads_all_but_excluded_unmasked(place):
    got = _read(place, role="steward").to_arrow()
    raw = _people()
    assert got.column_names == ["customer_id", "email", "age", "country"]
    assert got["email"].to_pylist() == raw["email"].to_pylist()


def test_adult_sample_through_a_policy(tmp_path, adult_sample_path):
    new_key_file(tmp_path / "audit.key")
    (tmp_path / "p.yaml").write_text(
        "audit: {log: a.jsonl, key_file: audit.key}\n"
        "roles:\n  analyst:\n    columns: [age, education, income]\n"
        "    masked: {occupation: redact}\n"
        "    row_filter: \"sex == 'Female' and `hours-per-week` >= 40\"\n")
    ds = datakiln.read(adult_sample_path, names=ADULT_COLUMNS, policy=tmp_path / "p.yaml", role="analyst")
    raw = datakiln.read(adult_sample_path, names=ADULT_COLUMNS).to_arrow()
    want = raw.filter((pc.field("sex") == "Female") & (pc.field("hours-per-week") >= 40))
    got = ds.to_arrow()
    assert got.column_names == ["age", "education", "occupation", "income"]
    assert got.num_rows == want.num_rows > 50
    assert got["age"].to_pylist() == want["age"].to_pylist()
    assert set(got["occupation"].drop_null().to_pylist()) == {"[REDACTED]"}


# -- the audit entries of reads ------------------------------------------------------------------
def test_every_read_is_logged_start_and_end_and_the_chain_verifies(place):
    ds = _read(place)
    table = ds.to_arrow()
    ds.head(3)
    entries = _entries(place)
    starts = [e for e in entries if e["event"] == "read"]
    ends = {e["read"]: e for e in entries if e["event"] == "read-end"}
    assert len(starts) == 2 and len(ends) == 2
    full = starts[0]
    assert full["role"] == "analyst" and full["columns"] == ds.columns
    assert full["masked"] == ["customer_id", "email"]
    assert full["row_filter"] == "country == 'US' and age >= 18"
    assert full["source"].endswith("people.parquet") and full["policy"] == "policy.yaml"
    assert ends[full["seq"]]["status"] == "complete" and ends[full["seq"]]["rows"] == table.num_rows
    head = ends[starts[1]["seq"]]
    assert head["status"] == "stopped" and 3 <= head["rows"] <= table.num_rows
    result = verify_log(place / "logs/audit.jsonl", key_file=place / "audit.key",
                        checkpoint=place / "logs/audit.head")
    assert result.entries == len(entries) == 4 and result.after_checkpoint == 0
    assert oct((place / "logs/audit.jsonl").stat().st_mode & 0o777) == "0o600"


def _bad_csv(path: Path, rows: int, bad_line: int) -> Path:
    pcsv.write_csv(_people(rows), path)
    text = path.read_text().splitlines()
    text[bad_line] = text[bad_line] + ",extra,fields"
    path.write_text("\n".join(text) + "\n")
    return path


def test_errors_that_quote_rows_withhold_the_details(place):
    _bad_csv(place / "bad.csv", ROWS, 150)
    with pytest.raises(ParseError) as caught:
        _read(place, name="bad.csv").to_arrow()
    message = str(caught.value)
    assert "withheld" in message and "'analyst'" in message
    assert "149-55-0149" not in message and "user149" not in message  # the row is not quoted
    with pytest.raises(ParseError, match="149-55-0149"):  # without a policy it is, to fix the file
        datakiln.read(place / "bad.csv").to_arrow()


def test_a_failing_read_is_logged_as_failed(place):
    _bad_csv(place / "big.csv", 60_000, 59_000)
    ds = _read(place, name="big.csv")
    with pytest.raises(ParseError, match="withheld") as caught:
        ds.to_arrow()
    assert "55-" not in str(caught.value)
    end = _entries(place)[-1]
    assert end["event"] == "read-end" and end["status"] == "failed" and end["error"] == "ParseError"


def test_a_read_is_refused_when_the_log_was_tampered_with(place):
    ds = _read(place)
    ds.to_arrow()
    log = place / "logs/audit.jsonl"
    lines = log.read_text().splitlines()
    log.write_text("\n".join(lines[:-1]) + "\n")  # drop the last entry
    from datakiln.errors import AuditVerificationError

    with pytest.raises(AuditVerificationError, match="removed"):
        _read(place).to_arrow()


# -- policy errors ----------------------------------------------------------------------------------
def _policy_error(place: Path, text: str, error=InvalidArgumentError, role: str = "analyst") -> str:
    (place / "policy.yaml").write_text(text)
    with pytest.raises(error) as caught:
        _read(place, role=role)
    return str(caught.value)


def test_unknown_role_and_missing_arguments(place):
    message = _policy_error(place, POLICY, AccessDeniedError, role="intern")
    assert "'intern'" in message and "['analyst', 'steward']" in message
    with pytest.raises(InvalidArgumentError, match="role="):
        datakiln.read(place / "people.parquet", policy=place / "policy.yaml")
    with pytest.raises(InvalidArgumentError, match="policy="):
        datakiln.read(place / "people.parquet", role="analyst")


def test_a_misspelt_column_names_file_line_role_and_column(place):
    message = _policy_error(place, POLICY.replace("email: {op", "emial: {op"), SchemaError)
    assert "policy.yaml line 11, role 'analyst'" in message and "'emial'" in message


def test_row_filter_errors_name_the_line_and_position(place):
    message = _policy_error(place, POLICY.replace("country == 'US'", "country = 'US'"))
    assert "line 13" in message and "position 9" in message and "use ==" in message
    message = _policy_error(place, POLICY.replace("age >= 18", "age >= 'old'"))
    assert "line 13" in message and "'age'" in message
    message = _policy_error(place, POLICY.replace("age >= 18", "__import__('os').system('x')"))
    assert "row_filter" in message


@pytest.mark.parametrize("change, expected", [
    (("email: {op: mask, keep_last: 4}", "email: {op: noise, scale: 1}"), "averaging"),
    (("email: {op: mask, keep_last: 4}", "email: {op: shuffle}"), "unknown operator"),
    (("email: {op: mask, keep_last: 4}", "email: {op: mask, keep_first: 4}"), "no parameter"),
    (("columns: [age, country]", "columns: [age, country, email]"), "both columns and masked"),
    (("  steward:\n", "  analyst:\n"), "appears twice"),
    (("audit:\n  log: logs/audit.jsonl\n  checkpoint: logs/audit.head\n  key_file: audit.key\n", ""),
     "no audit section"),
    (("    row_filter:", "    row_filtre:"), "unknown key"),
    (("version: 1", "version: 2"), "version 1"),
])
def test_malformed_policies(place, change, expected):
    message = _policy_error(place, POLICY.replace(*change))
    assert expected in message and "policy.yaml" in message


def test_pseudonymising_needs_a_private_key(place):
    message = _policy_error(place, POLICY.replace("key_file: pseudonym.key\n", ""), KeyFileError)
    assert "customer_id" in message and "key_file" in message
    (place / "pseudonym.key").chmod(0o644)
    message = _policy_error(place, POLICY, KeyFileError)
    assert "readable by other users" in message


def test_a_missing_audit_key_stops_the_read_before_any_data(place):
    (place / "audit.key").unlink()
    message = _policy_error(place, POLICY, KeyFileError)
    assert "audit.key" in message and "does not exist" in message
    assert not (place / "logs").exists()


def test_format_auto_pseudonymises_an_email_column_as_an_email(place):
    policy = POLICY.replace("email: {op: mask, keep_last: 4}", "email: {op: pseudonymize, format: auto}")
    (place / "policy.yaml").write_text(policy)
    got = _read(place).to_arrow()["email"].to_pylist()
    want = _expected(place)["email"]
    key = load_key(place / "pseudonym.key")
    assert got == pseudonymize(want, key, format="email").to_pylist()
    assert all(v.endswith("@example.org") for v in got) and not set(got) & set(want.to_pylist())


def test_policy_as_a_mapping_and_digest(place):
    import yaml

    data = yaml.safe_load(POLICY)
    data["audit"] = {"log": str(place / "m.jsonl"), "key_file": str(place / "audit.key")}
    data["key_file"] = str(place / "pseudonym.key")
    ds = datakiln.read(place / "people.parquet", policy=data, role="analyst")
    assert ds.count() == _expected(place).num_rows
    assert load_policy(place / "policy.yaml").digest != load_policy(data).digest
    assert (place / "m.jsonl").exists()


def test_the_reader_reaches_the_policy_through_its_hook_only(place):
    """Layers look down: reading without a policy never imports datakiln.privacy.policy; the
    first policy= read imports it through the hook registry."""
    import subprocess
    import sys

    code = (
        "import sys, datakiln\n"
        f"datakiln.read({str(place / 'people.parquet')!r}).to_arrow()\n"
        "assert 'datakiln.privacy.policy' not in sys.modules\n"
        "assert not any(m.startswith('datakiln.privacy') for m in sys.modules)\n"
        f"ds = datakiln.read({str(place / 'people.parquet')!r}, policy={str(place / 'policy.yaml')!r},"
        " role='analyst')\n"
        "assert 'datakiln.privacy.policy' in sys.modules and ds.columns[-1] == 'country'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    source = Path(datakiln.__file__).parent / "dataset"
    assert not any("datakiln.privacy" in line for path in source.glob("*.py")
                   for line in path.read_text().splitlines() if line.lstrip().startswith(("import", "from")))
