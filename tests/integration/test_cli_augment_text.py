"""``kiln augment`` on a table file: text ops on the vendored SMS Spam sample, table ops on Adult."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.conftest import sample_dataset
from typer.testing import CliRunner

import datakiln
from datakiln.augment import RandomSwap, SynonymReplace
from datakiln.augment.rows import augment_rows
from datakiln.augment.spec import parse_ops
from datakiln.augment.tabular import GaussianJitter
from datakiln.augment.text import TextBatch, augment_copies
from datakiln.cli.app import app

runner = CliRunner()
SMS = ["--names", "label,message", "--no-header", "-d", "tab"]


def _kiln(*args: str):
    return runner.invoke(app, ["augment", *args])


def _sms() -> pa.Table:
    return datakiln.read(sample_dataset("sms_spam/sms-300.tsv"), names=["label", "message"], header=False,
                         delimiter="\t").to_arrow()


def test_text_copies_equal_the_library_and_keep_other_columns(tmp_path: Path) -> None:
    out = tmp_path / "augmented.parquet"
    result = _kiln(str(sample_dataset("sms_spam/sms-300.tsv")), *SMS, "--text-column", "message",
                   "--ops", "synonym:0.1; swap:0.1", "-n", "4", "-o", str(out), "--seed", "3")
    assert result.exit_code == 0, result.output
    assert "1,200 rows" in result.output
    table = pq.read_table(out)
    source = _sms()
    assert table.column_names == ["label", "message", "copy"]
    assert table["copy"].to_pylist() == [0, 1, 2, 3] * 300
    assert table["label"].to_pylist() == np.repeat(source["label"].to_pylist(), 4).tolist()
    expected = augment_copies(parse_ops("synonym:0.1; swap:0.1"),
                              TextBatch(source["message"].to_pylist(), np.arange(300)), 4, seed=3)
    assert table["message"].to_pylist() == expected.texts
    changed = np.mean([a != b for a, b in zip(table["message"].to_pylist(),
                                              np.repeat(source["message"].to_pylist(), 4))])
    assert changed > 0.9  # every message of 2+ words is swapped at least once


def test_result_does_not_depend_on_the_batch_size() -> None:
    source = _sms()
    op = parse_ops("synonym:0.2; insert:0.1; delete:0.1")
    small = pa.concat_tables(augment_rows(source, op, 2, text_column="message", batch_rows=7, seed=1))
    large = pa.concat_tables(augment_rows(source, op, 2, text_column="message", batch_rows=1000, seed=1))
    assert small.equals(large)


def test_eda_op_makes_n_copies(tmp_path: Path) -> None:
    out = tmp_path / "eda.csv"
    result = _kiln(str(sample_dataset("sms_spam/sms-300.tsv")), *SMS, "--text-column", "message",
                   "--ops", "eda:0.05", "-n", "8", "-o", str(out))
    assert result.exit_code == 0, result.output
    table = datakiln.read(out).to_arrow()
    assert table.num_rows == 2_400 and sorted(set(table["copy"].to_pylist())) == list(range(8))


def test_table_ops_on_adult(tmp_path: Path) -> None:
    out = tmp_path / "adult.parquet"
    names = ("age,workclass,fnlwgt,education,education_num,marital_status,occupation,relationship,race,"
             "sex,capital_gain,capital_loss,hours_per_week,native_country,income")
    result = _kiln(str(sample_dataset("adult/adult-train.csv")), "--names", names, "--no-header",
                   "--ops", "table_jitter:0.05", "-n", "2", "-o", str(out))
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    source = datakiln.read(sample_dataset("adult/adult-train.csv"), names=names.split(","),
                           header=False).to_arrow()
    assert table.num_rows == 1_200
    jitter = GaussianJitter(0.05).fit(source)
    noise = table["age"].to_numpy() - np.repeat(source["age"].to_numpy(), 2)
    assert table["age"].type == source["age"].type
    assert np.std(noise) == pytest.approx(np.sqrt((0.05 * jitter.spread_["age"]) ** 2 + 1 / 12), rel=0.2)
    assert table["education"].to_pylist() == np.repeat(source["education"].to_pylist(), 2).tolist()
    mixed = _kiln(str(sample_dataset("adult/adult-train.csv")), "--names", names, "--no-header",
                  "--ops", "table_mixup:0.2", "-n", "1", "-o", str(tmp_path / "mix.parquet"))
    assert mixed.exit_code == 0, mixed.output


def test_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    sms = str(sample_dataset("sms_spam/sms-300.tsv"))
    missing = _kiln(sms, *SMS, "--text-column", "msg", "--ops", "swap:0.1", "-o", str(tmp_path / "a.parquet"))
    assert missing.exit_code == 2 and "no text column 'msg'" in missing.output
    mixed = _kiln(sms, *SMS, "--ops", "swap:0.1; table_jitter", "-o", str(tmp_path / "b.parquet"))
    assert mixed.exit_code == 2 and "mix" in mixed.output
    no_out = _kiln(sms, *SMS, "--text-column", "message", "--ops", "swap:0.1")
    assert no_out.exit_code == 2 and "-o" in no_out.output
    adult = str(sample_dataset("adult/adult-train.csv"))
    not_text = _kiln(adult, "--no-header", "--text-column", "column_0", "--ops", "swap:0.1",
                     "-o", str(tmp_path / "c.parquet"))
    assert not_text.exit_code == 2 and "not text" in not_text.output, not_text.output
    bad_rate = _kiln(sms, *SMS, "--text-column", "message", "--ops", "swap:2",
                     "-o", str(tmp_path / "d.parquet"))
    assert bad_rate.exit_code == 2 and "rate" in bad_rate.output
    eda_mixed = _kiln(sms, *SMS, "--text-column", "message", "--ops", "eda:0.1; swap:0.1",
                      "-o", str(tmp_path / "e.parquet"))
    assert eda_mixed.exit_code == 2 and "use it alone" in eda_mixed.output
    assert not any(tmp_path.iterdir())


def test_never_overwrites_a_file_it_did_not_write(tmp_path: Path) -> None:
    out = tmp_path / "mine.parquet"
    out.write_bytes(b"precious")
    result = _kiln(str(sample_dataset("sms_spam/sms-300.tsv")), *SMS, "--text-column", "message",
                   "--ops", "swap:0.1", "-o", str(out))
    assert result.exit_code == 2 and out.read_bytes() == b"precious"


def test_python_ops_match_the_op_string() -> None:
    source = _sms().slice(0, 20)
    by_string = pa.concat_tables(augment_rows(source, parse_ops("synonym:0.1; swap:0.1"), 3,
                                              text_column="message"))
    from datakiln.augment import Compose

    by_objects = pa.concat_tables(augment_rows(source, Compose([SynonymReplace(0.1), RandomSwap(0.1)]), 3,
                                               text_column="message"))
    assert by_string.equals(by_objects)
