"""Every time unit (s, ms, us, ns), with and without a zone, through every stage.

Nanosecond ticks of this century are beyond 2**53, where Arrow's safe int64 → float64 cast
refuses to round (``ArrowInvalid: Integer value … not in range``); pandas writes every
datetime as ``timestamp[ns]``, so this is the most common temporal type of all.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import datakiln
from datakiln.clean import Cleaner
from datakiln.cli.app import app

UNITS = ("s", "ms", "us", "ns")
ZONES = (None, "Europe/Paris")
PER_SECOND = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}
START = 1_704_067_200  # 2024-01-01T00:00:00Z


def _table(unit: str, tz: str | None, rows: int = 240) -> pa.Table:
    """Times over 30 days with sub-second digits down to the unit's tick, a number and a class."""
    rng = np.random.default_rng(7)
    seconds = START + rng.integers(0, 30 * 86400, rows)
    ticks = seconds * PER_SECOND[unit] + rng.integers(0, PER_SECOND[unit], rows)
    t = pa.array(ticks, pa.int64()).cast(pa.timestamp(unit, tz))
    x = seconds / 86400 + rng.normal(0, 1, rows)
    y = np.where(rng.random(rows) < 0.25, "rare", "common")
    return pa.table({"t": t, "x": x, "y": y})


cases = pytest.mark.parametrize("unit,tz", [(u, z) for u in UNITS for z in ZONES],
                                ids=[f"{u}-{z or 'naive'}" for u in UNITS for z in ZONES])


@cases
def test_profile(unit, tz):
    table = _table(unit, tz)
    column = datakiln.Dataset.from_arrow(table).profile()["t"]
    extremes = pc.min_max(table["t"])
    assert column.kind == "datetime" and column.nulls == 0
    assert (column.min, column.max) == (extremes["min"].as_py(), extremes["max"].as_py())  # exact
    ticks = table["t"].cast(pa.int64()).to_numpy()
    median = pa.scalar(int(np.median(ticks)), pa.int64()).cast(table["t"].type).as_py()
    assert abs((column.quantiles["0.5"] - median).total_seconds()) < 1e-3
    assert column.std == pytest.approx(np.std(ticks, ddof=1) / PER_SECOND[unit], rel=1e-6)
    assert sum(column.histogram["counts"]) == pytest.approx(table.num_rows)
    data = json.loads(datakiln.Dataset.from_arrow(table).profile().to_json())
    assert data["columns"][0]["min"].startswith("2024-01-")


@cases
def test_inspect_cli(unit, tz, tmp_path):
    table = _table(unit, tz)
    path = tmp_path / "t.parquet"
    pq.write_table(table, path)  # Parquet has no seconds: 's' is stored as 'ms'
    result = CliRunner().invoke(app, ["inspect", str(path), "--json"])
    assert result.exit_code == 0, result.output
    column = json.loads(result.stdout)["columns"][0]
    assert column["kind"] == "datetime" and column["count"] == table.num_rows
    assert column["min"].startswith("2024-01-")
    table_result = CliRunner().invoke(app, ["inspect", str(path)])
    assert table_result.exit_code == 0 and "datetime" in table_result.stdout


def test_inspect_cli_pandas_parquet(tmp_path):
    """The reproduction from the issue: a pandas datetime column written to Parquet."""
    path = tmp_path / "t.parquet"
    pd.DataFrame({"t": pd.date_range("2024-01-01", periods=1000, freq="s")}).to_parquet(path)
    result = CliRunner().invoke(app, ["inspect", str(path), "--json"])
    assert result.exit_code == 0, result.output
    column = json.loads(result.stdout)["columns"][0]
    assert (column["type"], column["min"], column["max"]) == (
        "timestamp[ns]", "2024-01-01T00:00:00", "2024-01-01T00:16:39")


@cases
def test_clean(unit, tz):
    table = _table(unit, tz)
    cleaner = Cleaner()
    out = cleaner.fit(table).transform(table).to_arrow()
    assert out.schema.field("t").type == table.schema.field("t").type
    assert out["t"].equals(table["t"])


@cases
def test_split(unit, tz):
    table = _table(unit, tz)
    parts = datakiln.split(table, (0.5, 0.5), time="t")
    train, test = parts["train"].to_arrow(), parts["test"].to_arrow()
    assert train.num_rows + test.num_rows == table.num_rows
    assert pc.max(train["t"]).as_py() < pc.min(test["t"]).as_py()
    assert train.schema.field("t").type == table.schema.field("t").type
    random = datakiln.split(table, (0.5, 0.5), stratify="y", seed=1)
    assert sum(random.counts.values()) == table.num_rows


@cases
def test_copula_round_trip(unit, tz, tmp_path):
    from datakiln.synth import GaussianCopula, load

    table = _table(unit, tz)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = GaussianCopula().fit(table)
    sample = model.sample(200, seed=0)
    assert sample.schema.field("t").type == pa.timestamp(unit, tz)  # unit and zone kept
    low, high = pc.min_max(table["t"]).values()
    assert pc.min(sample["t"]).as_py() >= low.as_py() and pc.max(sample["t"]).as_py() <= high.as_py()
    model.save(tmp_path / "m.kiln")
    again = load(tmp_path / "m.kiln").sample(200, seed=0)
    assert again.schema.field("t").type == pa.timestamp(unit, tz) and again["t"].equals(sample["t"])


@cases
def test_evaluate(unit, tz):
    table = _table(unit, tz)
    # detection (a classifier, slow-ish) encodes times like fidelity does: run it once
    report = datakiln.evaluate(table, table, detection=unit == "ns" and tz is None)
    record = next(c for c in report.fidelity["columns"] if c["column"] == "t")
    assert record["score"] == pytest.approx(1.0)
    assert sum(record["distribution"]["real"]) == pytest.approx(1.0)
    assert record["type"] == str(pa.timestamp(unit, tz))


@cases
def test_balance(unit, tz):
    table = _table(unit, tz)
    balanced = datakiln.balance(table, "y", method="smote", seed=0).to_arrow()
    assert balanced.schema.field("t").type == pa.timestamp(unit, tz)
    labels = balanced["y"].to_pylist()
    assert labels.count("rare") == labels.count("common")
    low, high = pc.min_max(table["t"]).values()
    assert pc.min(balanced["t"]).as_py() >= low.as_py() and pc.max(balanced["t"]).as_py() <= high.as_py()


@cases
def test_datetime_encoder_round_trip(unit, tz):
    from datakiln.transform.datetime import DatetimeEncoder

    table = _table(unit, tz)
    for target in ("s", "ns"):
        encoder = DatetimeEncoder(unit=target).fit(table)
        back = encoder.inverse_transform(encoder.transform(table))
        assert back.schema.field("t").type == pa.timestamp(unit, tz)
        error = np.abs(back["t"].cast(pa.int64()).to_numpy() - table["t"].cast(pa.int64()).to_numpy())
        # exact while float64 carries the tick; today's nanosecond ticks (~1.7e18) within 512 ns
        assert error.max() <= (512 if unit == "ns" else 0)


def test_outlier_clip_of_big_integers():
    """int64 values past 2**53 (nanosecond-like counts) are clipped, not refused by a safe cast."""
    from datakiln.clean import Outliers

    values = np.r_[np.arange(50) * 10**9 + 1_704_067_200 * 10**9, [2**62]]
    table = pa.table({"n": pa.array(values, pa.int64())})
    out = Cleaner([Outliers(method="iqr", action="clip")]).fit(table).transform(table).to_arrow()
    assert out["n"].type == pa.int64() and out["n"].to_pylist()[:50] == values[:50].tolist()
    assert out["n"].to_pylist()[50] < 2**62


@cases
def test_copula_conditional_time_range(unit, tz, tmp_path):
    """A range condition on a time column: zone-aware columns crashed with a raw
    ArrowNotImplementedError (element-wise min/max have no kernel for a zone)."""
    from datakiln.synth import GaussianCopula

    table = _table(unit, tz)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = GaussianCopula().fit(table)
    values = sorted(table["t"].to_pylist())
    low, high = values[60], values[120]
    sample = model.sample(200, conditions={"t": (low, high)}, seed=3)
    assert sample.schema.field("t").type == pa.timestamp(unit, tz)
    assert pc.min(sample["t"]).as_py() >= low and pc.max(sample["t"]).as_py() <= high
    assert sample.equals(model.sample(200, conditions={"t": (low, high)}, seed=3))
    model.save(tmp_path / "m.kiln")  # the CLI: a date without an offset is read in the column's zone
    result = CliRunner().invoke(app, ["synth", "sample", str(tmp_path / "m.kiln"), "-n", "50", "-o",
                                      str(tmp_path / "s.parquet"), "--where", "t=2024-01-10..2024-01-12"])
    assert result.exit_code == 0, result.output
    got = pq.read_table(tmp_path / "s.parquet")["t"]
    start = pd.Timestamp("2024-01-10", tz=tz)
    assert pc.min(got).as_py() >= start and pc.max(got).as_py() <= start + pd.Timedelta(days=2)
