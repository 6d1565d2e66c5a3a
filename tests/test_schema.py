import json
import uuid

import pyarrow as pa
import pytest

from datakiln.errors import SchemaError
from datakiln.schema import infer_schema, load_overrides


def test_kinds_from_types_and_values(every_kind):
    schema = infer_schema(every_kind)
    assert schema.kinds == {
        "id": "identifier", "age": "integer", "income": "numeric", "member": "boolean",
        "city": "categorical", "joined": "datetime", "birthday": "datetime", "note": "text",
        "email": "pii", "price": "numeric",
    }
    assert schema["email"].pii == "email"
    assert schema["id"].evidence  # every decision says why
    assert schema["joined"].type == pa.timestamp("us", tz="UTC")


@pytest.mark.parametrize(
    ("name", "values", "pii"),
    [
        ("contact", ["ann@example.com", "bob.smith+x@mail.co.uk"] * 20, "email"),
        ("mobile", ["+44 20 7946 0958", "(555) 123-4567"] * 20, "phone"),
        ("client_ip", ["192.168.0.1", "10.0.0.255", "2001:db8::1"] * 10, "ip"),
        ("card", ["4111 1111 1111 1111", "5500-0000-0000-0004"] * 20, "credit_card"),
        ("home", ["12 Baker Street", "221B Main St", "5 Elm Avenue"] * 10, "address"),
        ("full_name", ["Ada Lovelace", "Alan Turing", "Grace Hopper"] * 10, "name"),
    ],
)
def test_pii_types_by_name_and_value(name, values, pii):
    schema = infer_schema(pa.table({name: values}))
    assert schema[name].kind == "pii"
    assert schema[name].pii == pii


def test_card_numbers_must_pass_luhn():
    schema = infer_schema(pa.table({"number": ["4111 1111 1111 1112"] * 30}))
    assert schema["number"].kind != "pii"


def test_identifiers_uuid_and_text_dates():
    table = pa.table({
        "token": [str(uuid.UUID(int=i)) for i in range(50)],
        "day": [f"2021/03/{(d % 28) + 1:02d}" for d in range(50)],
    })
    schema = infer_schema(table)
    assert schema["token"].kind == "identifier"
    assert schema["day"].kind == "datetime"


def test_overrides_from_dict_json_and_yaml(tmp_path, every_kind):
    (tmp_path / "kinds.json").write_text(json.dumps({"columns": {"city": "text"}}))
    (tmp_path / "kinds.yaml").write_text("columns:\n  age: numeric\n  note: {kind: pii, pii: name}\n")
    assert infer_schema(every_kind, {"member": "categorical"})["member"].kind == "categorical"
    assert infer_schema(every_kind, tmp_path / "kinds.json")["city"].kind == "text"
    schema = infer_schema(every_kind, str(tmp_path / "kinds.yaml"))
    assert schema["age"].kind == "numeric"
    assert (schema["note"].kind, schema["note"].pii) == ("pii", "name")
    assert schema["note"].evidence == ("override",)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"age": "number"}, "unknown kind 'number'"),
        ({"nope": "integer"}, r"columns that do not exist: \['nope'\]"),
        ({"age": {"kind": "integer", "pii": "email"}}, "needs kind 'pii'"),
    ],
)
def test_bad_overrides_are_clear(every_kind, overrides, message):
    with pytest.raises(SchemaError, match=message):
        infer_schema(every_kind, overrides)


def test_override_file_errors(tmp_path):
    with pytest.raises(SchemaError, match="does not exist"):
        load_overrides(tmp_path / "missing.yaml")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(SchemaError, match="not valid"):
        load_overrides(tmp_path / "bad.json")


def test_schema_lookup_and_plain_data(every_kind):
    schema = infer_schema(every_kind)
    assert schema.names[0] == "id" and "age" in schema and len(schema) == 10
    assert schema.of_kind("integer", "numeric") == ["age", "income", "price"]
    assert schema.to_dict()[1] == {"name": "age", "kind": "integer", "type": "int64", "pii": None,
                                   "evidence": ["Arrow integer type int64"]}
    with pytest.raises(SchemaError, match="no column named 'zzz'"):
        schema["zzz"]


def test_numeric_override_on_text_is_a_schema_error():
    # kind 'numeric' on a string column was shown as "numeric | string" with no range, and
    # the synthesizer quietly treated the column as categorical anyway
    sample = pa.table({"c": ["p", "q", "q"], "n": [1, 2, 3]})
    with pytest.raises(SchemaError, match=r"column 'c': kind 'numeric' needs numbers, but the column holds "
                                          r"string values \(e.g. \['p', 'q', 'q'\]\)"):
        infer_schema(sample, {"c": "numeric"})
    kinds = infer_schema(sample, {"n": "numeric", "c": "categorical"}).kinds
    assert kinds == {"c": "categorical", "n": "numeric"}


def test_uint64_past_int64_range_is_inferred():
    # the consecutive-id test raised ArrowInvalid "Integer value ... not in range" (kiln inspect
    # and synth fit of a Parquet file with large unsigned ids or hashes)
    values = pa.array([(2**64 - 1 - i) if i % 2 else i for i in range(150)], type=pa.uint64())
    assert infer_schema(pa.table({"h": values})).kinds == {"h": "integer"}
    sequence = pa.array([2**63 + i for i in range(150)], type=pa.uint64())
    assert infer_schema(pa.table({"h": sequence})).kinds == {"h": "identifier"}
