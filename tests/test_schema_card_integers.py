"""Card numbers written without separators parse as integers and must still be PII."""

from __future__ import annotations

import pyarrow as pa

from datakiln.schema import infer_schema

VISA_TEST = [4111111111111111, 5500000000000004, 340000000000009, 6011000000000004]


def test_integer_card_column_is_pii_credit_card():
    column = infer_schema(pa.table({"card": VISA_TEST[:2]})).columns[0]
    assert (column.kind, column.pii) == ("pii", "credit_card")
    # without a telling name, ten or more values must all look like cards
    unnamed = infer_schema(pa.table({"x": VISA_TEST * 3})).columns[0]
    assert (unnamed.kind, unnamed.pii) == ("pii", "credit_card")


def test_millisecond_timestamps_are_not_cards():
    stamps = list(range(1_700_000_000_000, 1_700_000_000_000 + 5_000, 7))
    assert infer_schema(pa.table({"t": stamps})).columns[0].kind == "integer"
    assert infer_schema(pa.table({"card": [4111111111111112, 12]})).columns[0].kind == "integer"


def test_anonymize_masks_an_integer_card_column(tmp_path):
    import datakiln
    from datakiln.privacy import anonymize

    path = tmp_path / "c.csv"
    path.write_text("card,age\n4111111111111111,30\n5500000000000004,40\n")
    key = tmp_path / "k.key"
    key.write_bytes(bytes(range(32)))
    key.chmod(0o600)
    out, _report = anonymize(datakiln.read(str(path)), key_file=str(key))
    assert out.to_arrow().column("card").to_pylist() == ["************1111", "************0004"]
