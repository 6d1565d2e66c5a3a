import gzip

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import ADULT_COLUMNS

import datakiln
from datakiln.errors import (
    EmptySourceError,
    EncodingError,
    InvalidArgumentError,
    MemoryBudgetError,
    ParseError,
    SchemaError,
    SchemaMismatchError,
    SourceNotFoundError,
    UnsupportedFormatError,
)
from datakiln.io.csv import sniff_dialect


def test_adult_acceptance(adult_path):
    ds = datakiln.read(adult_path, names=ADULT_COLUMNS)
    assert ds.source.dialect.header is False
    assert ds.source.dialect.trim is True
    assert ds.count() == 32_561
    assert len(ds.columns) == 15
    kinds = ds.schema.kinds
    assert kinds["age"] == "integer"
    assert kinds["workclass"] == kinds["education"] == kinds["income"] == "categorical"
    table = ds.to_arrow()
    nulls = {c: table[c].null_count for c in ("workclass", "occupation", "native-country")}
    assert nulls == {"workclass": 1836, "occupation": 1843, "native-country": 583}
    assert sorted(pc.unique(table["income"]).to_pylist()) == ["<=50K", ">50K"]
    assert table["workclass"][0].as_py() == "State-gov"  # leading space trimmed


def test_adult_without_names_gets_numbered_columns(adult_path):
    ds = datakiln.read(adult_path)
    assert ds.columns[:2] == ["column_0", "column_1"]


def test_parallel_byte_ranges_equal_the_whole_file_read(adult_path):
    whole = datakiln.read(adult_path, names=ADULT_COLUMNS).to_arrow()
    ranged = datakiln.read(adult_path, names=ADULT_COLUMNS, block_bytes=200_000)
    batches = list(ranged.iter_batches())
    assert len(batches) > 10
    assert pa.Table.from_batches(batches).equals(whole)


@pytest.mark.parametrize(
    ("text", "delimiter", "header"),
    [
        ("a,b,c\n1,2,3\n4,5,6\n", ",", True),
        ("1,2,3\n4,5,6\n", ",", False),
        ("name;age\nann;31\nbob;45\n", ";", True),
        ("x\ty\n1.5\t2\n3\t4\n", "\t", True),
        ("a|b\n1|2\n", "|", True),
        ("ham\tGo until jurong point\nham\tOk lar\nspam\tFree entry\nham\tU dun say\n", "\t", False),
        ("label,message\nham,hello there\nspam,win now\n", ",", True),
    ],
)
def test_sniffing(text, delimiter, header):
    dialect = sniff_dialect(text)
    assert (dialect.delimiter, dialect.header) == (delimiter, header)


def test_header_na_markers_quoting_and_trim(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text('name,age,city,score\n"Smith, Ann", 31 ,  Paris ,NA\nBob,?,"Zürich",2.5\n'
                    "Eve,40,N/A,\n")
    table = datakiln.read(path).to_arrow()
    assert table.column_names == ["name", "age", "city", "score"]
    assert table["name"].to_pylist() == ["Smith, Ann", "Bob", "Eve"]
    assert table["age"].to_pylist() == [31, None, 40]
    assert table["city"].to_pylist() == ["Paris", "Zürich", None]
    assert table["score"].to_pylist() == [None, 2.5, None]


def test_custom_na_values_and_no_trim(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n-999, x\n5,missing\n")
    table = datakiln.read(path, na_values=["-999", "missing"], trim=False).to_arrow()
    assert table["a"].to_pylist() == [None, 5]
    assert table["b"].to_pylist() == [" x", None]


def test_tsv_gzip_and_explicit_encoding(tmp_path):
    gz = tmp_path / "t.tsv.gz"
    with gzip.open(gz, "wt") as handle:
        handle.write("a\tb\n1\tx\n2\ty\n")
    assert datakiln.read(gz).to_arrow().to_pydict() == {"a": [1, 2], "b": ["x", "y"]}
    latin = tmp_path / "latin.csv"
    latin.write_bytes("city,n\nMünchen,1\nSão Paulo,2\n".encode("latin-1"))
    table = datakiln.read(latin, encoding="latin-1").to_arrow()
    assert table["city"].to_pylist() == ["München", "São Paulo"]


def test_undecodable_bytes_name_the_line(tmp_path):
    path = tmp_path / "bad.csv"
    lines = ["city,n"] + [f"town{i},{i}" for i in range(50)]
    data = "\n".join(lines).encode() + b"\nM\xfcnchen,99\n"
    path.write_bytes(data)
    with pytest.raises(EncodingError, match=r"line 52.*encoding='latin-1'"):
        datakiln.read(path).to_arrow()


def test_malformed_row_error_shows_line_and_content(tmp_path):
    path = tmp_path / "bad.csv"
    rows = ["a,b,c"] + [f"{i},{i},{i}" for i in range(100)] + ["7,8"] + ["1,2,3"]
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(ParseError, match=r"line 102: expected 3 fields, found 2: '7,8'"):
        datakiln.read(path).to_arrow()
    with pytest.raises(ParseError, match="line 102"):
        list(datakiln.read(path, block_bytes=64).iter_batches())


def test_malformed_rows_skipped_and_counted(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("a,b,c\n1,2,3\n4,5\n6,7,8\n9\n10,11,12\n")
    ds = datakiln.read(path, on_bad_rows="skip")
    assert ds.to_arrow()["a"].to_pylist() == [1, 6, 10]
    stats = ds.stats
    assert stats["bad_rows"] == 2
    assert [e["line"] for e in stats["examples"]] == [3, 5]
    assert stats["examples"][0]["text"] == "4,5"


def test_empty_and_header_only_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(EmptySourceError, match="empty.csv"):
        datakiln.read(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text("a,b\n")
    ds = datakiln.read(header_only, header=True)
    assert ds.columns == ["a", "b"] and ds.count() == 0


def test_missing_path_and_unknown_extension(tmp_path):
    with pytest.raises(SourceNotFoundError, match="no such file"):
        datakiln.read(tmp_path / "nope.csv")
    with pytest.raises(SourceNotFoundError, match="matched no files"):
        datakiln.read(str(tmp_path / "*.csv"))
    odd = tmp_path / "data.xyz"
    odd.write_text("a\n1\n")
    with pytest.raises(UnsupportedFormatError, match="format='csv'"):
        datakiln.read(odd)
    assert datakiln.read(odd, format="csv").count() == 1


def test_glob_and_list_of_files_share_a_schema(tmp_path):
    for i in range(3):
        (tmp_path / f"part{i}.csv").write_text(f"a,b\n{i},x{i}\n{i + 10},y{i}\n")
    ds = datakiln.read(str(tmp_path / "part*.csv"))
    assert ds.to_arrow()["a"].to_pylist() == [0, 10, 1, 11, 2, 12]
    listed = datakiln.read([tmp_path / "part0.csv", tmp_path / "part2.csv"])
    assert listed.count() == 4
    (tmp_path / "part9.csv").write_text("a,c\n1,2\n")
    with pytest.raises(SchemaMismatchError, match=r"part9.csv.*\['a', 'c'\]"):
        datakiln.read(str(tmp_path / "part*.csv"))


def test_names_must_match_the_field_count(adult_path):
    with pytest.raises(SchemaError, match="3 names were given but .* has 15 fields"):
        datakiln.read(adult_path, names=["a", "b", "c"])


def test_column_types_override_and_late_type_change(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("zip,n\n01234,1\n02345,2\n")
    assert datakiln.read(path, column_types={"zip": "string"}).to_arrow()["zip"].to_pylist() == [
        "01234", "02345"]
    late = tmp_path / "late.csv"
    late.write_text("n\n" + "1\n" * 200_000 + "1.5\n")
    with pytest.raises(SchemaError, match=r"column 'n'.*column_types=\{'n': 'string'\}"):
        datakiln.read(late, infer_bytes=1000).to_arrow()
    table = datakiln.read(late, infer_bytes=1000, column_types={"n": "float64"}).to_arrow()
    assert table["n"][-1].as_py() == 1.5


def test_bad_options_are_rejected(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a\n1\n")
    with pytest.raises(InvalidArgumentError, match="unknown option"):
        datakiln.read(path, delimeter=",")
    with pytest.raises(InvalidArgumentError, match="one character"):
        datakiln.read(path, delimiter=", ")
    with pytest.raises(InvalidArgumentError, match="on_bad_rows"):
        datakiln.read(path, on_bad_rows="ignore")
    with pytest.raises(InvalidArgumentError, match="unknown encoding"):
        datakiln.read(path, encoding="klingon")


cell = st.one_of(st.integers(-10**9, 10**9).map(str), st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(cell, cell), min_size=1, max_size=30))
def test_written_csv_reads_back_value_for_value(tmp_path_factory, rows):
    table = pa.table({"left": [r[0] for r in rows], "right": [r[1] for r in rows]})
    path = tmp_path_factory.mktemp("csv") / "t.csv"
    datakiln.from_arrow(table).write(path, format="csv")
    back = datakiln.read(path, header=True, trim=False, na_values=[],
                         column_types={"left": "string", "right": "string"}).to_arrow()
    assert back.to_pydict() == table.to_pydict()


# -- hostile and degenerate files (issue 12) --------------------------------------------------

def test_utf8_byte_order_mark_is_dropped(tmp_path):
    bom = b"\xef\xbb\xbf"
    path = tmp_path / "bom.csv"
    path.write_bytes(bom + b"a,b\n1,x\n2,y\n")
    ds = datakiln.read(path)
    assert ds.columns == ["a", "b"]
    assert ds.to_arrow().to_pydict() == {"a": [1, 2], "b": ["x", "y"]}
    gz = tmp_path / "bom.csv.gz"
    gz.write_bytes(gzip.compress(bom + b"a,b\n1,x\n"))
    assert datakiln.read(gz).to_arrow().to_pydict() == {"a": [1], "b": ["x"]}
    headerless = tmp_path / "nohead.csv"
    headerless.write_bytes(bom + b"1,2\n3,4\n")
    table = datakiln.read(headerless, header=False).to_arrow()
    assert table.column_names == ["column_0", "column_1"]
    assert table["column_0"].to_pylist() == [1, 3]


def test_header_only_file_without_a_final_newline_has_no_rows(tmp_path):
    for name, data in [("h.csv", b"a,b"), ("h.csv.gz", gzip.compress(b"a,b"))]:
        path = tmp_path / name
        path.write_bytes(data)
        ds = datakiln.read(path, header=True)
        assert ds.columns == ["a", "b"]
        assert ds.to_arrow().num_rows == 0
        assert sum(b.num_rows for b in ds.iter_batches()) == 0
    last = tmp_path / "last.csv"
    last.write_bytes(b"a,b\n1,x\n2,y")  # data rows without a final newline still read
    assert datakiln.read(last).to_arrow()["b"].to_pylist() == ["x", "y"]


def test_a_line_longer_than_arrows_block_reads(tmp_path):
    """5 MB in one value: longer than Arrow's 4 MB parse block and the csv module's 128 kB
    field limit (used when sniffing); once a raw _csv.Error / 'straddling object'."""
    long = b"x" * 5_000_000
    path = tmp_path / "long.csv"
    path.write_bytes(b"a,b\n1," + long + b"\n2,y\n")
    for ds in (datakiln.read(path), datakiln.read(path, block_bytes=1 << 20)):
        assert [len(v) for v in ds.to_arrow()["b"].to_pylist()] == [5_000_000, 1]
        assert sum(b.num_rows for b in ds.iter_batches()) == 2
    single = tmp_path / "single.csv"
    single.write_bytes(b"7," + long)  # one line, no newline, longer than infer_bytes
    table = datakiln.read(single, header=False).to_arrow()
    assert table["column_0"].to_pylist() == [7] and len(table["column_1"][0].as_py()) == 5_000_000
    gz = tmp_path / "long.csv.gz"
    gz.write_bytes(gzip.compress(path.read_bytes(), compresslevel=1))
    assert datakiln.read(gz, block_bytes=1 << 20).to_arrow().num_rows == 2


def test_arrows_streaming_reader_needs_a_block_longer_than_the_line(tmp_path):
    """newlines_in_values=True reads serially with Arrow blocks of block_bytes: a line longer
    than that is refused with the fix that works (a larger block_bytes)."""
    gz = tmp_path / "long.csv.gz"
    gz.write_bytes(gzip.compress(b"a,b\n1," + b"x" * 3_000_000 + b"\n2,y\n", compresslevel=1))
    with pytest.raises(ParseError, match=r"long.csv.gz' has a line longer.*pass block_bytes="):
        datakiln.read(gz, newlines_in_values=True, block_bytes=1 << 20).to_arrow()
    table = datakiln.read(gz, newlines_in_values=True, block_bytes=8 << 20).to_arrow()
    assert [len(v) for v in table["b"].to_pylist()] == [3_000_000, 1]


@pytest.mark.parametrize("compress", [False, True])
def test_unclosed_quote_is_an_error_with_its_line_or_a_skipped_row(tmp_path, compress):
    def write(name, data):
        path = tmp_path / (name + (".csv.gz" if compress else ".csv"))
        path.write_bytes(gzip.compress(data) if compress else data)
        return path

    last = write("last", b'a,b\n1,x\n2,"y\n')
    with pytest.raises(ParseError, match=r"last.csv(.gz)?' line 3: a quoted value is not closed"):
        datakiln.read(last).to_arrow()
    ds = datakiln.read(last, on_bad_rows="skip")
    assert ds.to_arrow().to_pydict() == {"a": [1], "b": ["x"]}
    assert ds.stats["bad_rows"] == 1
    assert ds.stats["examples"][0]["line"] == 3
    no_newline = write("eof", b'a,b\n1,x\n2,"y')
    with pytest.raises(ParseError, match=r"line 3: a quoted value is not closed"):
        datakiln.read(no_newline).to_arrow()
    middle = write("middle", b'a,b\n1,x\n2,"y\n3,z\n4,"w""q"\n')
    with pytest.raises(ParseError, match=r"line 3: a quoted value"):
        list(datakiln.read(middle).iter_batches())
    ds = datakiln.read(middle, on_bad_rows="skip")
    assert ds.to_arrow().to_pydict() == {"a": [1, 3, 4], "b": ["x", "z", 'w"q']}
    assert [e["line"] for e in ds.stats["examples"]] == [3]
    quoted_breaks = write("breaks", b'a,b\n1,"two\nlines"\n')
    table = datakiln.read(quoted_breaks, newlines_in_values=True).to_arrow()
    assert table["b"].to_pylist() == ["two\nlines"]


def test_unclosed_quote_is_found_in_a_later_byte_range(tmp_path):
    rows = [f"{i},v{i}" for i in range(3000)]
    rows[2500] = '2500,"broken'
    path = tmp_path / "ranges.csv"
    path.write_text("a,b\n" + "\n".join(rows) + "\n")
    with pytest.raises(ParseError, match=r"ranges.csv' line 2502: a quoted value"):
        list(datakiln.read(path, block_bytes=4096).iter_batches())
    ds = datakiln.read(path, block_bytes=4096, on_bad_rows="skip")
    assert ds.count() == 2999
    assert ds.to_arrow()["a"].to_pylist() == [i for i in range(3000) if i != 2500]
    assert ds.stats["examples"][0]["line"] == 2502


def test_memory_budget_costs_a_read_by_the_file_size(tmp_path):
    """Once every read cost 3 x 32 MB x 4: any budget under ~403 MB refused every CSV."""
    path = tmp_path / "small.csv"
    path.write_text("a,b\n" + "".join(f"{i},x{i}\n" for i in range(1000)))
    gz = tmp_path / "small.csv.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    for source in (path, gz):
        ds = datakiln.read(source, memory_budget="2MB")
        assert sum(b.num_rows for b in ds.iter_batches()) == 1000
    big = tmp_path / "big.csv"
    big.write_text("a\n" + "1\n" * 1_000_000)  # 2 MB in one range: about 24 MB in flight
    with pytest.raises(MemoryBudgetError, match=r"big.csv.*memory budget is 10.0 MB"):
        list(datakiln.read(big, memory_budget="10MB").iter_batches())
    assert sum(b.num_rows for b in datakiln.read(big, memory_budget="40MB").iter_batches()) == 1_000_000


def test_an_existing_name_with_glob_characters_is_read_literally(tmp_path):
    literal = tmp_path / "s[1].csv"
    literal.write_text("a\n1\n2\n")
    (tmp_path / "s1.csv").write_text("a\n9\n")  # what the pattern s[1].csv would match
    assert datakiln.read(literal).to_arrow()["a"].to_pylist() == [1, 2]
    assert datakiln.read(str(tmp_path / "s[0-9].csv")).to_arrow()["a"].to_pylist() == [9]


def test_an_open_quote_that_breaks_the_field_count_is_named_as_such(tmp_path):
    path = tmp_path / "merged.csv"
    path.write_text('a,b,c\n1,"x\n2,y\n3,4,5\n')  # once "expected 3 fields, found 2: '1,\"x\\n2,y\\n'"
    with pytest.raises(ParseError, match=r"merged.csv' line 2: a quoted value is not closed"):
        datakiln.read(path).to_arrow()
    ds = datakiln.read(path, on_bad_rows="skip")
    assert ds.to_arrow().to_pydict() == {"a": [3], "b": [4], "c": [5]}
    assert [(e["line"], e["text"]) for e in ds.stats["examples"]] == [(2, '1,"x'), (3, "2,y")]


@pytest.mark.parametrize(
    ("text", "header"),
    [
        (",age,city\n0,30,x\n1,40,y\n", True),  # pandas' to_csv: the index column has no name
        ("a,,b,\n1,2,3,4\n5,6,7,8\n", True),
        ("1,,x\n2,3,y\n", False),  # a data row with a missing value
        (",,\n1,2,3\n", False),
    ],
)
def test_header_with_empty_names(text, header):
    assert sniff_dialect(text).header is header


def test_pandas_index_csv_reads_its_header(tmp_path):
    path = tmp_path / "frame.csv"
    path.write_text(",age,city\n0,30,x\n1,40,y\n2,50,z\n")
    table = datakiln.read(path).to_arrow()
    assert table.column_names == ["column_0", "age", "city"]
    assert table["age"].to_pylist() == [30, 40, 50]
    assert table.num_rows == 3


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32", "cp037"])
def test_encoding_that_is_not_ascii_compatible_is_refused(tmp_path, encoding):
    path = tmp_path / "wide.csv"
    path.write_bytes("a,b\n1,2\n".encode(encoding))
    with pytest.raises(InvalidArgumentError, match=f"encoding '{encoding}' is not supported.*iconv"):
        datakiln.read(path, encoding=encoding).to_arrow()


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
def test_utf16_byte_order_mark_is_named(tmp_path, encoding):
    path = tmp_path / "excel.csv"
    path.write_bytes("a,b\n1,2\n".encode("utf-16"))
    with pytest.raises(EncodingError, match="excel.csv' starts with a UTF-16 byte-order mark"):
        datakiln.read(path, encoding=encoding).to_arrow()


def test_utf8_sig_encoding_reads(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("a,b\n1,2\n".encode("utf-8-sig"))
    assert datakiln.read(path, encoding="utf-8-sig").to_arrow().column_names == ["a", "b"]


def test_codes_with_leading_zeros_stay_text(tmp_path):
    """Zip codes read as int64 turned "00501" and "501" into the same value 501."""
    path = tmp_path / "z.csv"
    path.write_text("zip,n,account\n00501,1,-0042\n501,2,17\n02134,3,5\n")
    table = datakiln.read(path).to_arrow()
    assert table["zip"].to_pylist() == ["00501", "501", "02134"]
    assert table["account"].to_pylist() == ["-0042", "17", "5"]
    assert table["n"].type == pa.int64()  # plain integers stay numbers
    forced = datakiln.read(path, column_types={"zip": "int64"}).to_arrow()
    assert forced["zip"].to_pylist() == [501, 501, 2134]  # asked for explicitly


@pytest.mark.parametrize(("delimiter", "message"), [('"', "is also the quote character"),
                                                    ("\n", "cannot be a line break")])
def test_delimiter_that_cannot_split_fields_is_refused(tmp_path, delimiter, message):
    # '"' read every line as one column, without a word
    path = tmp_path / "data.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(InvalidArgumentError, match=message):
        datakiln.read(path, delimiter=delimiter).to_arrow()
