"""XML source: records, union schema, conflicts, namespaces, safety, round trip, fuzz."""

from __future__ import annotations

import resource
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import datakiln
from datakiln.errors import DatakilnError, EmptySourceError, ParseError, SchemaError

DATA = Path(__file__).resolve().parents[1] / "data"
ADULT = ["age", "workclass", "fnlwgt", "education", "education-num", "marital-status",
         "occupation", "relationship", "race", "sex", "capital-gain", "capital-loss",
         "hours-per-week", "native-country", "income"]


def _write(tmp_path: Path, text: str, name: str = "doc.xml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


FEED = """<?xml version="1.0"?>
<rss xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>feed</title>
<item id="1"><title>A</title><price>1.5</price><tag>a</tag><tag>b</tag>
  <dc:creator>me</dc:creator><when>2020-01-02</when></item>
<item id="2"><title>B</title><price>2</price><tag>c</tag><ok>true</ok>
  <author><name>Z</name><mail>z@x</mail></author></item>
<item id="3"><title/><extra k="v">t</extra><ok>FALSE</ok></item>
</channel></rss>
"""


def test_records_columns_types_and_union(tmp_path: Path) -> None:
    ds = datakiln.read(_write(tmp_path, FEED), record="item")
    schema = ds.arrow_schema
    assert schema.names == ["@id", "title", "price", "tag", "creator", "when", "ok", "author",
                            "extra"]
    assert schema.field("@id").type == pa.int64()
    assert schema.field("price").type == pa.float64()
    assert schema.field("tag").type == pa.list_(pa.string())
    assert schema.field("when").type == pa.date32()
    assert schema.field("ok").type == pa.bool_()
    rows = ds.to_arrow().to_pylist()
    assert [r["@id"] for r in rows] == [1, 2, 3]
    assert [r["tag"] for r in rows] == [["a", "b"], ["c"], None]
    assert [r["ok"] for r in rows] == [None, True, False]
    assert rows[1]["author"] == '{"name":"Z","mail":"z@x"}'
    assert rows[2]["extra"] == '{"@k":"v","#text":"t"}'
    assert rows[2]["title"] is None and rows[0]["creator"] == "me"


def test_record_paths_and_namespaces(tmp_path: Path) -> None:
    path = _write(tmp_path, FEED)
    assert datakiln.read(path, record="channel/item").count() == 3
    assert datakiln.read(path, record="/rss/channel/item").count() == 3
    with pytest.raises(EmptySourceError, match="record='/channel/item'"):
        datakiln.read(path, record="/channel/item")
    uri = datakiln.read(path, record="item", namespaces="uri").columns
    assert "{http://purl.org/dc/elements/1.1/}creator" in uri
    plain = datakiln.read(path, record="item", attribute_prefix="").columns
    assert plain[0] == "id"
    clash = _write(tmp_path, "<r>\n<a id='1'><id>2</id></a></r>", "clash.xml")
    with pytest.raises(ParseError, match=r"line 2: .* attribute and a child both named 'id'"):
        datakiln.read(clash, attribute_prefix="")
    assert datakiln.read(clash).to_arrow().to_pylist() == [{"@id": 1, "id": 2}]
    # default record: the children of the root
    doc = _write(tmp_path, "<r><a x='1'/><a x='2'/></r>", "root.xml")
    assert datakiln.read(doc).to_arrow().column("@x").to_pylist() == [1, 2]


def test_column_types_override(tmp_path: Path) -> None:
    path = _write(tmp_path, "<r><a><z>007</z><n>1</n></a><a><z>1</z><n>2</n></a></r>")
    table = datakiln.read(path, column_types={"n": "string"}).to_arrow()
    assert table.column("z").to_pylist() == ["007", "1"]  # a leading zero keeps the text
    assert table.column("n").type == pa.string()


def test_type_conflict_names_the_line(tmp_path: Path) -> None:
    text = "<r>\n<a><v>1</v></a>\n<a><v>2</v></a>\n<a>\n<v><x>3</x></v></a>\n</r>\n"
    with pytest.raises(SchemaError, match=r"line 4: field 'v' is a nested element .* line 2"):
        datakiln.read(_write(tmp_path, text))
    # after the sample: the record's line is named too
    many = "<r>\n" + "<a><v>1</v></a>\n" * 5 + "<a><v>abc</v></a>\n</r>\n"
    with pytest.raises(SchemaError, match=r"line 7: field 'v' holds 'abc'"):
        datakiln.read(_write(tmp_path, many, "m.xml"), infer_records=2).to_arrow()
    unseen = "<r>\n" + "<a><v>1</v></a>\n" * 3 + "<a><w>1</w></a>\n</r>\n"
    with pytest.raises(SchemaError, match=r"line 5: field 'w' was not in the first records"):
        datakiln.read(_write(tmp_path, unseen, "u.xml"), infer_records=2).to_arrow()


def test_malformed_xml_names_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path, "<r>\n<a><v>1</v></a>\n<a><v>2</w></a>\n</r>\n")
    with pytest.raises(ParseError, match=r"line 3, column 10: malformed XML \(mismatched tag\)"):
        datakiln.read(path).to_arrow()
    cut = _write(tmp_path, "<r>\n<a><v>1</v></a>\n<a><v>2", "cut.xml")
    with pytest.raises(ParseError, match=r"line 3.*malformed XML"):
        datakiln.read(cut).to_arrow()


def test_xxe_refused_and_secret_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    doc = (f'<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY xxe SYSTEM "file://{secret}">]>\n'
           "<r><a><v>&xxe;</v></a></r>\n")
    with pytest.raises(ParseError, match="declares the entity 'xxe'") as info:
        datakiln.read(_write(tmp_path, doc)).to_arrow()
    assert "TOP-SECRET" not in str(info.value)
    external = f'<?xml version="1.0"?>\n<!DOCTYPE r SYSTEM "file://{secret}">\n<r><a/></r>'
    with pytest.raises(ParseError, match="external DTD"):
        datakiln.read(_write(tmp_path, external, "dtd.xml"))
    undeclared = "<r><a><v>&xxe;</v></a></r>"
    with pytest.raises(ParseError, match="undefined entity"):
        datakiln.read(_write(tmp_path, undeclared, "u.xml"))


def test_billion_laughs_refused_quickly(tmp_path: Path) -> None:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)]
    doc = f'<?xml version="1.0"?>\n<!DOCTYPE r [{"".join(entities)}]>\n<r><a>&lol9;</a></r>\n'
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with pytest.raises(ParseError, match="never expands XML entities"):
        datakiln.read(_write(tmp_path, doc)).to_arrow()
    assert time.perf_counter() - start < 1.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # kB


def test_adult_round_trip(tmp_path: Path) -> None:
    table = datakiln.read(DATA / "adult" / "adult-train.csv", names=ADULT).to_arrow()
    root = ET.Element("adult")
    for row in table.to_pylist():
        record = ET.SubElement(root, "person")
        for name, value in row.items():
            if value is not None:
                ET.SubElement(record, name).text = str(value)
    ET.ElementTree(root).write(tmp_path / "adult.xml", encoding="utf-8", xml_declaration=True)
    back = datakiln.read(tmp_path / "adult.xml", record="person").to_arrow()
    assert back.num_rows == table.num_rows == 600
    assert back.select(table.column_names).equals(table)


def test_batches_are_bounded(tmp_path: Path) -> None:
    doc = "<r>" + "".join(f"<a><v>{i}</v></a>" for i in range(1000)) + "</r>"
    ds = datakiln.read(_write(tmp_path, doc), batch_rows=128)
    sizes = [t().num_rows for t in ds.source.read_tasks()]
    assert max(sizes) == 128 and sum(sizes) == 1000


def test_errors_are_datakiln_errors(tmp_path: Path) -> None:
    with pytest.raises(DatakilnError, match="namespaces must be"):
        datakiln.read(_write(tmp_path, FEED), namespaces="keep")
    with pytest.raises(DatakilnError, match="not a path of element names"):
        datakiln.read(_write(tmp_path, FEED), record="item[1]")


_names = st.sampled_from(["a", "b", "c", "d"])
_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=8)
_records = st.lists(st.dictionaries(_names, st.lists(_text, min_size=1, max_size=2),
                                    max_size=4), min_size=1, max_size=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=_records)
def test_fuzz_against_elementtree(tmp_path: Path, records: list[dict[str, list[str]]]) -> None:
    root = ET.Element("r")
    for record in records:
        element = ET.SubElement(root, "row")
        for name, values in record.items():
            for value in values:
                ET.SubElement(element, name).text = value
    path = tmp_path / "fuzz.xml"
    ET.ElementTree(root).write(path, encoding="utf-8")
    parsed = ET.parse(path).getroot()
    names = {name for record in records for name in record}
    if not names:
        return
    types = {name: "string" for name in names}
    ds = datakiln.read(path, record="row", column_types=types)
    got = ds.to_arrow().to_pylist()
    assert len(got) == len(records)
    for row, element in zip(got, parsed):
        for name in names:
            expected = [child.text for child in element if child.tag == name]
            value = row[name]
            if isinstance(value, list):
                assert [v or None for v in value] == [e or None for e in expected]
            else:
                assert len(expected) <= 1
                assert value == (expected[0] or None if expected else None)
