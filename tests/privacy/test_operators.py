"""Anonymisation operators: exact outputs, seeded noise of the stated scale, PII scrubbed inside
text while ordinary numbers stay, and anonymize()'s defaults, configuration and report."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import datakiln
from datakiln.dataset.dataset import Dataset
from datakiln.errors import InvalidArgumentError, SchemaError
from datakiln.io.arrow import TableSource
from datakiln.privacy import anonymize, find_pii, make_operator, pseudonymize
from datakiln.privacy.keys import Key

KEY = Key(bytes(range(32)))


def _apply(spec, values, dtype=None, name="c", offset=0):
    array = pa.array(values, dtype)
    operator = make_operator(spec, name)
    operator.bind(name, array.type, None, None, KEY)
    return operator.apply(array, offset)


def _batched(table: pa.Table, rows: int) -> Dataset:
    """A dataset that reads ``table`` in batches of ``rows`` rows (several batches)."""
    return Dataset(TableSource(table, batch_rows=rows))


def test_mask_exact():
    values = ["4111111111111111", "12", "12345", None, ""]
    assert _apply({"op": "mask", "keep_last": 4}, values).to_pylist() == [
        "************1111", "**", "*2345", None, ""]
    assert _apply({"op": "mask", "keep_last": 4, "keep_format": True, "char": "#"},
                  ["4111-1111-1111-1111", "ab-c", None]).to_pylist() == ["####-####-####-1111", "##-#", None]
    assert _apply("mask", [123456, None], pa.int64()).to_pylist() == ["******", None]
    with pytest.raises(InvalidArgumentError, match="one character"):
        make_operator({"op": "mask", "char": "**"}, "card")


def test_redact_exact():
    assert _apply("redact", ["12 High Street", None]).to_pylist() == ["[REDACTED]", None]
    assert _apply({"op": "redact", "value": None}, ["x", "y"]).to_pylist() == [None, None]


def test_generalize_numbers_exact():
    values = [37, 40, 9.5, None, -0.5, 99.999]
    assert _apply({"op": "generalize", "width": 10}, values).to_pylist() == [
        "[30, 40)", "[40, 50)", "[0, 10)", None, "[-10, 0)", "[90, 100)"]
    assert _apply({"op": "generalize", "width": 5, "origin": 2}, [2, 6.9, 7]).to_pylist() == [
        "[2, 7)", "[2, 7)", "[7, 12)"]
    assert _apply({"op": "generalize", "width": 10}, [float("inf"), float("-inf"), float("nan"), 3.0]
                  ).to_pylist() == ["inf", "-inf", None, "[0, 10)"]
    ages = [5, 18, 29, 30, 64.5, 65, 90, None]
    assert _apply({"op": "generalize", "edges": [18, 30, 65]}, ages).to_pylist() == [
        "< 18", "[18, 30)", "[18, 30)", "[30, 65)", "[30, 65)", ">= 65", ">= 65", None]
    with pytest.raises(InvalidArgumentError, match="increasing"):
        make_operator({"op": "generalize", "edges": [3, 1]}, "age")
    with pytest.raises(InvalidArgumentError, match="exactly one"):
        make_operator({"op": "generalize", "width": 3, "prefix": 2}, "age")


def test_generalize_dates_prefix_ip_exact():
    days = [dt.date(2023, 7, 19), dt.date(1999, 12, 31), None]
    assert _apply({"op": "generalize", "to": "month"}, days, pa.date32()).to_pylist() == [
        dt.date(2023, 7, 1), dt.date(1999, 12, 1), None]
    assert _apply({"op": "generalize", "to": "year"}, days, pa.date32()).to_pylist() == [
        dt.date(2023, 1, 1), dt.date(1999, 1, 1), None]
    stamps = [dt.datetime(2023, 7, 19, 13, 45, 10)]
    assert _apply({"op": "generalize", "to": "day"}, stamps, pa.timestamp("us")).to_pylist() == [
        dt.datetime(2023, 7, 19)]
    zips = ["90210", "10001-1234", "SW1A 1AA", None]
    assert _apply({"op": "generalize", "prefix": 3}, zips).to_pylist() == ["902", "100", "SW1", None]
    assert _apply({"op": "generalize", "prefix": 3, "fill": "*"}, zips).to_pylist() == [
        "902**", "100*******", "SW1*****", None]
    assert _apply({"op": "generalize", "ip_prefix": 24}, ["192.168.1.77", "2001:db8:abcd:12::1", None]
                  ).to_pylist() == ["192.168.1.0/24", "2001:db8:abcd::/48", None]
    with pytest.raises(SchemaError, match="not an IP address"):
        _apply({"op": "generalize", "ip_prefix": 24}, ["nope"])
    with pytest.raises(SchemaError, match="date or timestamp"):
        _apply({"op": "generalize", "to": "year"}, ["2020-01-01"])


def test_generalize_hierarchy_yaml_and_csv(tmp_path):
    yaml_file = tmp_path / "cities.yaml"
    yaml_file.write_text("Paris: [France, Europe]\nLyon: [France, Europe]\nKyoto: [Japan, Asia]\n"
                         "Oslo: Norway\n")
    csv_file = tmp_path / "cities.csv"
    csv_file.write_text("Paris,France,Europe\nKyoto,Japan,Asia\n")
    values = ["Paris", "Kyoto", "Lyon", None, "Oslo"]
    assert _apply({"op": "generalize", "hierarchy": str(yaml_file)}, values).to_pylist() == [
        "France", "Japan", "France", None, "Norway"]
    assert _apply({"op": "generalize", "hierarchy": str(yaml_file), "level": 2}, values).to_pylist() == [
        "Europe", "Asia", "Europe", None, "Norway"]
    assert _apply({"op": "generalize", "hierarchy": str(csv_file), "level": 2, "unknown": "*"},
                  values).to_pylist() == ["Europe", "Asia", "*", None, "*"]
    with pytest.raises(SchemaError, match="'Lyon' is not in the hierarchy"):
        _apply({"op": "generalize", "hierarchy": str(csv_file)}, values)
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        make_operator({"op": "generalize", "hierarchy": str(tmp_path / "missing.yaml")}, "city")


def test_suppress_drop_and_rare_values_over_all_batches():
    jobs = ["clerk"] * 6 + ["pilot"] * 3 + ["astronaut"] + [None] * 2 + ["clerk", "pilot"]
    table = pa.table({"job": jobs, "ssn": [f"{i:09d}" for i in range(len(jobs))]})
    config = {"columns": {"job": {"op": "suppress", "min_count": 5}, "ssn": "suppress"}}
    out, report = anonymize(_batched(table, 3), config)  # counts must span batches
    result = out.to_arrow()
    assert result.column_names == ["job"]
    # clerk: 7 rows, kept; pilot: 4 and astronaut: 1, both below 5, nulled
    assert result["job"].to_pylist() == ["clerk"] * 6 + [None] * 4 + [None] * 2 + ["clerk", None]
    data = report.to_dict()
    changes = {c["column"]: c for c in data["changes"]}
    assert changes["job"]["rows_changed"] == 5 and changes["job"]["params"]["values_suppressed"] == 2
    assert changes["ssn"]["params"] == {"drop": True} and data["dropped"] == ["ssn"]


def test_noise_scale_seed_and_batch_independence():
    zeros = pa.table({"x": np.zeros(200_000), "n": np.full(200_000, 1000, dtype=np.int64)})
    config = {"defaults": False, "columns": {
        "x": {"op": "noise", "distribution": "laplace", "scale": 2.0, "seed": 3},
        "n": {"op": "noise", "distribution": "gaussian", "scale": 5.0, "seed": 3}}}
    whole = anonymize(zeros, config)[0].to_arrow()
    x = whole["x"].to_numpy()
    assert abs(np.mean(np.abs(x)) - 2.0) < 0.03  # E|X| = b for Laplace(b)
    assert abs(np.std(x) - 2.0 * np.sqrt(2)) < 0.05 and abs(np.mean(x)) < 0.03
    assert abs(np.median(np.abs(x)) - 2.0 * np.log(2)) < 0.03
    n = whole["n"].to_numpy()
    assert whole["n"].type == pa.int64() and abs(np.std(n - 1000) - 5.0) < 0.08  # rounding adds 1/12
    assert abs(np.mean(n) - 1000) < 0.05
    again = anonymize(_batched(zeros, 7919), config)[0].to_arrow()
    assert again.equals(whole)  # the same noise however the rows are batched
    other = anonymize(zeros, {"columns": {"x": {"op": "noise", "scale": 2.0, "seed": 4}}})[0].to_arrow()
    assert not np.allclose(other["x"].to_numpy(), x)
    clipped = _apply({"op": "noise", "scale": 100.0, "clip": [0, 10]}, [5.0, None, 5.0]).to_pylist()
    assert clipped[1] is None and all(0 <= v <= 10 for v in (clipped[0], clipped[2]))
    with pytest.raises(SchemaError, match="needs numbers"):
        _apply({"op": "noise", "scale": 1.0}, ["a"])
    with pytest.raises(InvalidArgumentError, match="positive"):
        make_operator({"op": "noise", "scale": 0}, "x")


TEXTS = [
    "Mail alice.smith@example.org or call +44 20 7946 0958 about invoice 12345.",
    "Card 4111 1111 1111 1111 declined; 4111111111111112 is not a card; paid 1,000,000 on 2024-01-15.",
    "Server 192.168.10.5 and 2001:db8::ff00:42:8329 logged at 12:30:45, pi is 3.14, years 1999-2004.",
    "Call (555) 010-9999 or 555-0199; version 2.0.1; room 101.",
    None,
]


def test_scrub_replaces_pii_inside_text_and_keeps_ordinary_numbers():
    out = _apply("scrub", TEXTS).to_pylist()
    assert out[0] == "Mail <EMAIL> or call <PHONE> about invoice 12345."
    assert out[1] == ("Card <CARD> declined; 4111111111111112 is not a card; paid 1,000,000 on "
                      "2024-01-15.")
    assert out[2] == "Server <IP> and <IP> logged at 12:30:45, pi is 3.14, years 1999-2004."
    assert out[3] == "Call <PHONE> or <PHONE>; version 2.0.1; room 101."
    assert out[4] is None
    only_mail = _apply({"op": "scrub", "types": ["email"]}, TEXTS[:1]).to_pylist()
    assert only_mail == ["Mail <EMAIL> or call +44 20 7946 0958 about invoice 12345."]
    assert find_pii("4111 1111 1111 1111") == [("card", "4111 1111 1111 1111")]
    assert find_pii("order 4111111111111112, zip 90210, 42 cats") == []


def test_scrub_pseudonyms_match_the_column_pseudonyms():
    out = _apply({"op": "scrub", "replace": "pseudonym"}, TEXTS[:1]).to_pylist()[0]
    email = pseudonymize(["alice.smith@example.org"], KEY, format="email")[0].as_py()
    phone = pseudonymize(["+44 20 7946 0958"], KEY, format="phone")[0].as_py()
    assert out == f"Mail {email} or call {phone} about invoice 12345."
    assert "alice.smith@" not in out and "+44 20 7946 0958" not in out


def _pii_table(rows: int = 200) -> pa.Table:
    rng = np.random.default_rng(5)
    return pa.table({
        "customer_id": np.arange(10_000, 10_000 + rows),
        "email": [f"user{i}@example.org" for i in range(rows)],
        "phone": [f"+1 555-{rng.integers(100, 999)}-{i:04d}" for i in range(rows)],
        "full_name": [f"{['Ann', 'Bob', 'Cem', 'Dee'][i % 4]} {['Lee', 'Ito', 'Kim'][i % 3]}"
                      for i in range(rows)],
        "address": [f"{i} Main Street" for i in range(rows)],
        "card": ["4111-1111-1111-1111" if i % 2 else "5500 0000 0000 0004" for i in range(rows)],
        "ip": [f"10.{i % 4}.{i % 7}.{i}" for i in range(rows)],
        "note": [f"reach me at user{i}@example.org, order {i}" if i % 3 else f"order {i} shipped"
                 for i in range(rows)],
        "age": rng.integers(18, 90, rows),
    })


def test_anonymize_defaults_on_a_generated_pii_table():
    table = _pii_table()
    out, report = anonymize(table, key=KEY)
    result = out.to_arrow()
    data = json.loads(report.to_json())
    changes = {c["column"]: c for c in data["changes"]}
    assert {k: v["operator"] for k, v in changes.items()} == {
        "customer_id": "pseudonymize", "email": "pseudonymize", "phone": "pseudonymize",
        "full_name": "pseudonymize", "address": "redact", "card": "mask", "ip": "generalize", "note": "scrub"}
    assert changes["email"]["params"]["format"] == "email"
    assert changes["customer_id"]["params"]["format"] == "integer"
    assert data["unchanged"] == ["age"] and data["rows"] == 200 and data["key_id"] == KEY.key_id
    assert result["age"].equals(table["age"])
    for column in ("customer_id", "email", "phone", "address", "card", "ip"):
        assert changes[column]["rows_changed"] == 200
    for column in ("email", "phone", "address", "card", "ip"):  # ids permute within their digit count
        assert not set(result[column].to_pylist()) & set(table[column].to_pylist())
    assert changes["note"]["rows_changed"] == sum(1 for i in range(200) if i % 3)
    assert changes["note"]["found"] == {"email": changes["note"]["rows_changed"]}
    assert changes["full_name"]["rows_changed"] == 200
    assert pc.count_distinct(result["full_name"]).as_py() == 12
    assert set(result["card"].to_pylist()) == {"****-****-****-1111", "**** **** **** 0004"}
    assert pc.all(pc.match_substring_regex(result["ip"], r"^10\.\d\.\d\.0/24$")).as_py()
    assert pc.min(result["customer_id"]).as_py() >= 10_000
    assert pc.count_distinct(result["customer_id"]).as_py() == 200
    # the counts describe the latest complete pass: a second pass does not double them, and
    # a partial read (head, schema inference) does not replace them
    out.to_arrow()
    out.head(5)
    assert report.to_dict()["changes"][0]["rows_changed"] == 200 and report.rows == 200
    batched, fresh = anonymize(_batched(table, 16), key=KEY)
    assert fresh.rows == 0 and batched.head(3).num_rows == 3 and fresh.rows == 0
    assert len(batched.iter_batches().__next__()) == 16 and fresh.rows == 0
    assert batched.count() == 200 and batched.to_arrow().equals(result)
    assert fresh.to_dict() == report.to_dict()


def test_anonymize_config_file_chains_and_opts_out(tmp_path):
    config = tmp_path / "privacy.yaml"
    config.write_text(
        "namespace: crm\nkey_version: 2\ncolumns:\n"
        "  age: [{op: noise, scale: 1.0, seed: 1}, {op: generalize, width: 10}]\n"
        "  full_name: keep\n"
        "  email: {op: pseudonymize, format: hmac, prefix: 'u_', length: 16}\n")
    table = _pii_table(60)
    out, report = anonymize(table, config, key=KEY)
    result = out.to_arrow()
    assert result["full_name"].equals(table["full_name"])
    assert all(v.startswith("u_") and len(v) == 18 for v in result["email"].to_pylist())
    assert pc.all(pc.match_substring_regex(result["age"], r"^\[\d+, \d+\)$")).as_py()
    changes = report.to_dict()["changes"]
    ages = [c for c in changes if c["column"] == "age"]
    assert [c["operator"] for c in ages] == ["noise", "generalize"]
    email = next(c for c in changes if c["column"] == "email")
    assert email["params"]["namespace"] == "crm" and email["params"]["key_version"] == 2
    assert email["reason"] == "config" and any(c["reason"].startswith("default") for c in changes)


def test_anonymize_bad_configs():
    table = _pii_table(30)
    with pytest.raises(SchemaError, match="do not exist"):
        anonymize(table, {"columns": {"nope": "redact"}}, key=KEY)
    with pytest.raises(InvalidArgumentError, match="unknown operator 'hash'"):
        anonymize(table, {"columns": {"email": "hash"}}, key=KEY)
    with pytest.raises(InvalidArgumentError, match=r"no parameter\(s\) \['keep'\]"):
        anonymize(table, {"columns": {"card": {"op": "mask", "keep": 4}}}, key=KEY)
    with pytest.raises(InvalidArgumentError, match="unknown key"):
        anonymize(table, {"column": {}}, key=KEY)
    with pytest.raises(InvalidArgumentError, match="last operator"):
        anonymize(table, {"columns": {"age": ["suppress", "redact"]}}, key=KEY)
    with pytest.raises(InvalidArgumentError, match="empty operator list"):
        anonymize(table, {"columns": {"age": []}}, key=KEY)


def test_anonymize_adult_sample_numbers(adult_sample):
    config = {"columns": {"age": {"op": "generalize", "edges": [25, 45, 65]},
                          "native-country": {"op": "suppress", "min_count": 5},
                          "capital-gain": {"op": "noise", "scale": 100.0, "seed": 0},
                          "education": {"op": "mask", "keep_last": 2}}}
    out, report = anonymize(datakiln.from_arrow(adult_sample), config)
    result = out.to_arrow()
    ages = adult_sample["age"].to_numpy()
    expected = np.select([ages < 25, ages < 45, ages < 65], ["< 25", "[25, 45)", "[45, 65)"], ">= 65")
    assert result["age"].to_pylist() == expected.tolist()
    counts = {d["values"]: d["counts"] for d in pc.value_counts(adult_sample["native-country"]).to_pylist()}
    rare = {v for v, n in counts.items() if v is not None and n < 5}
    assert rare and all(v is None for v, o in zip(result["native-country"].to_pylist(),
                                                  adult_sample["native-country"].to_pylist()) if o in rare)
    changes = {c["column"]: c["rows_changed"] for c in report.to_dict()["changes"]}
    assert changes["native-country"] == sum(counts[v] for v in rare)
    assert changes["age"] == 600 and changes["capital-gain"] >= 595 and report.rows == 600
    assert result["education"][0].as_py() == "*******rs"  # "Bachelors"
    assert result["income"].equals(adult_sample["income"])  # no PII in Adult: the rest is untouched


def test_config_hierarchy_paths_are_relative_to_the_config_file(tmp_path, monkeypatch):
    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "cities.yaml").write_text("Paris: [France]\nKyoto: [Japan]\n")
    (folder / "privacy.yaml").write_text("columns:\n  city: {op: generalize, hierarchy: cities.yaml}\n")
    monkeypatch.chdir(tmp_path)
    out, _ = anonymize(pa.table({"city": ["Kyoto", "Paris"]}), folder / "privacy.yaml")
    assert out.to_arrow()["city"].to_pylist() == ["Japan", "France"]


_WORDS = st.sampled_from(["order", "shipped", "the", "total", "on", "room", "v2.0.1", "3.14", "1,000,000",
                          "2024-01-15", "1999-2004", "12:30:45", "#42", "(draft)", "x-ray", "e.g."])
# numbers of up to three, five or seven digits: 4-4-4-4 or 4-6-5 digit groups in a row can be a card
_NUMBERS = st.one_of(st.integers(0, 999).map(str), st.sampled_from(["12345", "98765", "1000000"]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_WORDS, _NUMBERS), min_size=1, max_size=12),
       st.lists(st.sampled_from(["bob.lee@example.org", "+44 20 7946 0958", "4111 1111 1111 1111",
                                 "10.1.2.3", "fe80::1ff:fe23:4567:890a", "(555) 010-9999"]), max_size=3))
def test_scrub_property_ordinary_text_stays_and_inserted_pii_goes(words, pii):
    plain = " ".join(words)
    assert _apply("scrub", [plain]).to_pylist() == [plain]
    mixed = " ".join(words + [f"at {p} ." for p in pii])
    out = _apply("scrub", [mixed]).to_pylist()[0]
    for value in pii:
        assert value not in out
    assert out.count("<") == len(pii) and out.startswith(plain)
