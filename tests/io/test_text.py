"""read_text (folders, lines, encodings, binary files) and the SMS Spam TSV as text."""

from __future__ import annotations

import codecs
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import shared_dataset
from hypothesis import given, settings
from hypothesis import strategies as st

import datakiln
from datakiln.errors import DatakilnError, EncodingError, ParseError
from datakiln.io.text import decode_text

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    (tmp_path / "pos").mkdir()
    (tmp_path / "neg" / "deep").mkdir(parents=True)
    (tmp_path / "pos" / "a.txt").write_bytes(b"good film\r\nsecond line\n")
    (tmp_path / "pos" / "b.txt").write_bytes(codecs.BOM_UTF8 + "café".encode())
    (tmp_path / "neg" / "c.txt").write_bytes("naïve – €".encode("cp1252"))
    (tmp_path / "neg" / "d.txt").write_bytes(codecs.BOM_UTF16_LE + "日本語 text".encode("utf-16-le"))
    (tmp_path / "neg" / "deep" / "e.txt").write_bytes(b"")
    return tmp_path


def test_folder_labels_and_encodings(corpus: Path) -> None:
    ds = datakiln.read_text(str(corpus / "**" / "*.txt"))
    table = ds.to_arrow()
    rows = {Path(r["path"]).name: r for r in table.to_pylist()}
    assert rows["a.txt"]["text"] == "good film\r\nsecond line\n"
    assert rows["b.txt"]["text"] == "café"  # UTF-8 BOM removed
    assert rows["c.txt"]["text"] == "naïve – €"  # not UTF-8: cp1252
    assert rows["d.txt"]["text"] == "日本語 text"  # UTF-16 with BOM
    assert rows["e.txt"]["text"] == ""
    assert {n: r["label"] for n, r in rows.items()} == {
        "a.txt": "pos", "b.txt": "pos", "c.txt": "neg", "d.txt": "neg", "e.txt": "deep"}
    assert table.schema.field("label").type == pa.dictionary(pa.int32(), pa.string())
    assert table.column("label").chunk(0).dictionary.to_pylist() == ["deep", "neg", "pos"]
    assert ds.schema["text"].kind == "text" and ds.schema["label"].kind == "categorical"


def test_line_mode_and_no_labels(corpus: Path) -> None:
    table = datakiln.read_text(corpus / "pos", mode="line", labels=None).to_arrow()
    assert table.column_names == ["text", "path", "line"]
    assert table.to_pylist()[:2] == [
        {"text": "good film", "path": str(corpus / "pos" / "a.txt"), "line": 1},
        {"text": "second line", "path": str(corpus / "pos" / "a.txt"), "line": 2}]
    assert table.num_rows == 3


def test_given_encoding_and_errors(corpus: Path) -> None:
    latin = datakiln.read_text(corpus / "neg" / "c.txt", encoding="latin-1").to_arrow()
    assert latin.column("text")[0].as_py() == "naïve \x96 \x80"
    with pytest.raises(EncodingError, match=r"c\.txt.*not valid utf-8"):
        datakiln.read_text(corpus / "neg" / "c.txt", encoding="utf-8").to_arrow()
    with pytest.raises(DatakilnError, match="mode must be"):
        datakiln.read_text(corpus, mode="para")


def test_binary_file_skipped_with_a_message_or_refused(corpus: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    (corpus / "pos" / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    ds = datakiln.read_text(corpus)
    assert ds.to_arrow().num_rows == 5
    assert ds.stats["bad_rows"] == 1
    assert "image.txt" in ds.stats["examples"][0]["file"]
    assert "binary" in caplog.text
    with pytest.raises(ParseError, match=r"image\.txt.*binary.*on_binary='skip'"):
        datakiln.read_text(corpus, on_binary="error").to_arrow()


@settings(max_examples=100, deadline=None)
@given(text=st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00\ufeff"),
                    max_size=40),
       codec=st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]))
def test_decode_round_trips_unicode(text: str, codec: str) -> None:
    decoded, _ = decode_text(text.encode(codec), "x.txt")
    assert decoded == text


def test_sms_sample_reads_as_text_with_the_csv_reader() -> None:
    ds = datakiln.read(DATA / "sms_spam" / "sms-300.tsv", header=False,
                       names=["label", "message"], quotechar=None)
    table = ds.to_arrow()
    assert table.num_rows == sum(1 for _ in open(DATA / "sms_spam" / "sms-300.tsv", "rb"))
    assert ds.schema["message"].kind == "text"
    assert ds.schema["label"].kind == "categorical"
    assert set(table.column("label").to_pylist()) == {"ham", "spam"}


def test_sms_full_file_quotes_are_text() -> None:
    path = shared_dataset("sms_spam") / "SMSSpamCollection"
    ds = datakiln.read(path, format="csv", delimiter="\t", header=False,
                       names=["label", "message"], quotechar=None)
    table = ds.to_arrow()
    assert table.num_rows == 5574
    counts = Counter(table.column("label").to_pylist())
    assert counts == {"ham": 4827, "spam": 747}
    assert ds.schema["message"].kind == "text"
    assert any(m.startswith('"') for m in table.column("message").to_pylist())

