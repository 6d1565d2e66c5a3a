"""Nested columns (lists, structs) are refused by name wherever the work needs flat columns
(cleaning, balancing, evaluation, CSV output), never an internal Arrow error; Parquet keeps them."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import datakiln
from datakiln.cli.app import app
from datakiln.errors import SchemaError


@pytest.fixture
def nested(tmp_path):
    path = tmp_path / "nested.jsonl"
    path.write_text("".join(f'{{"x": {i}, "a": {{"b": {i}}}, "c": [{i}, 2], "y": "{"uv"[i % 2]}"}}\n'
                            for i in range(60)))
    return path


NAMED = r"'a' \(struct<b: int64>\), 'c' \(list<item: int64>\) hold nested values"


def test_api_stages_name_the_nested_columns(nested, tmp_path):
    ds = datakiln.read(nested)
    with pytest.raises(SchemaError, match=NAMED + r".*select the other columns"):
        datakiln.clean.Cleaner().fit(ds)
    with pytest.raises(SchemaError, match=r"balancing handles flat columns; " + NAMED):
        datakiln.balance(ds, "y", method="random_over")
    with pytest.raises(SchemaError, match=r"evaluation \(the real data\) handles flat columns; " + NAMED):
        datakiln.evaluate(ds, ds.select(["x", "y"]))
    with pytest.raises(SchemaError, match=NAMED + r".*write Parquet or JSON Lines"):
        ds.write(tmp_path / "out.csv", format="csv")
    assert not (tmp_path / "out.csv").exists()
    ds.write(tmp_path / "out.parquet")  # Parquet holds nested values as they are
    assert pq.read_table(tmp_path / "out.parquet").column("a").to_pylist()[3] == {"b": 3}
    flat = ds.select(["x", "y"])  # the suggested fix works
    assert datakiln.balance(flat, "y", method="random_over").count() == 60


@pytest.mark.parametrize("args", [
    ["clean", "{data}", "-o", "{tmp}/c.parquet"],
    ["evaluate", "--real", "{data}", "--synthetic", "{data}"],
    ["balance", "{data}", "-o", "{tmp}/b.parquet", "--target", "y"],
    ["convert", "{data}", "{tmp}/o.csv", "--to", "csv"],
])
def test_cli_prints_one_line_naming_the_column(nested, tmp_path, args):
    argv = [a.format(data=nested, tmp=tmp_path) for a in args]
    result = CliRunner().invoke(app, argv)
    output = result.output.strip()
    assert result.exit_code == 2, output
    assert "Traceback" not in output and "'a' (struct<b: int64>)" in output, output
    assert "internal error" not in output
