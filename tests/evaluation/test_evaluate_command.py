"""``kiln evaluate`` over inputs of different kinds (a database and files)."""

import json
import sqlite3

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from datakiln.cli.app import app

pytest.importorskip("sqlalchemy")
runner = CliRunner()


def _rows(n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({"x": rng.normal(0, 1, n), "k": rng.choice(["a", "b"], n)})


def test_table_and_query_go_to_the_database_input_only(tmp_path):
    real = _rows(120, 0)
    with sqlite3.connect(tmp_path / "real.db") as connection:
        connection.execute("CREATE TABLE people (x REAL, k TEXT)")
        connection.executemany("INSERT INTO people VALUES (?, ?)", zip(*real.to_pydict().values()))
    pq.write_table(_rows(100, 1), tmp_path / "synthetic.parquet")
    url = f"sqlite:///{tmp_path / 'real.db'}"
    for option in (["--table", "people"], ["--query", "SELECT x, k FROM people WHERE x > -10"]):
        result = runner.invoke(app, ["evaluate", "--real", url, "--synthetic",
                                     str(tmp_path / "synthetic.parquet"), *option, "--seed", "0",
                                     "--json", str(tmp_path / "r.json")])
        assert result.exit_code == 0, result.output
        report = json.loads((tmp_path / "r.json").read_text())
        assert report["info"]["real_rows"] == 120 and report["info"]["synthetic_rows"] == 100
    # --table with no database among the inputs is still a clear error
    result = runner.invoke(app, ["evaluate", "--real", str(tmp_path / "synthetic.parquet"),
                                 "--synthetic", str(tmp_path / "synthetic.parquet"), "--table", "people"])
    assert result.exit_code == 2 and "no input is a database URL" in result.output


def test_a_copy_reads_as_undetectable_with_a_note(tmp_path):
    pq.write_table(_rows(300, 0), tmp_path / "real.parquet")
    result = runner.invoke(app, ["evaluate", "--real", str(tmp_path / "real.parquet"), "--synthetic",
                                 str(tmp_path / "real.parquet"), "--seed", "0"])
    assert result.exit_code == 0, result.output
    line = next(row for row in result.output.splitlines() if "detection AUC" in row)
    assert "0.500" in line and "below chance" in result.output
