"""write_sql: a failed replace keeps the old table (MariaDB commits DDL implicitly), and
zoned timestamps come back with their zone on every database (issue 11 item 11)."""

import datetime as dt
import uuid

import pyarrow as pa
import pytest

import datakiln
from datakiln.io.sql import write_sql

sqlalchemy = pytest.importorskip("sqlalchemy")


def _tables(url: str) -> set[str]:
    from datakiln.io.sql import normalise_url

    engine = sqlalchemy.create_engine(normalise_url(url))
    try:
        return set(sqlalchemy.inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.fixture
def name(database_url):
    table = f"dk_{uuid.uuid4().hex[:10]}"
    yield table
    from datakiln.io.sql import normalise_url

    engine = sqlalchemy.create_engine(normalise_url(database_url))
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f"DROP TABLE IF EXISTS {table}"))
    engine.dispose()


def _failing_batches(schema: pa.Schema):
    yield pa.table({"a": [10, 11]}, schema=schema)
    raise RuntimeError("the upstream source broke half-way")


@pytest.mark.parametrize("if_exists", ["replace", "append"])
def test_a_failed_write_keeps_the_old_table(database_url, name, if_exists):
    old = pa.table({"a": [1, 2, 3]})
    write_sql(old, name, database_url)
    before = _tables(database_url)
    with pytest.raises(RuntimeError, match="half-way"):
        write_sql(_failing_batches(old.schema), name, database_url, schema=old.schema,
                  if_exists=if_exists)
    back = datakiln.read_sql(database_url, table=name).to_arrow()
    assert back["a"].to_pylist() == [1, 2, 3]
    assert _tables(database_url) == before  # no temporary table left behind


def test_a_failed_new_table_leaves_nothing(database_url, name):
    schema = pa.schema([("a", pa.int64())])
    before = _tables(database_url)
    with pytest.raises(RuntimeError):
        write_sql(_failing_batches(schema), name, database_url, schema=schema)
    assert _tables(database_url) == before


def test_replace_swaps_in_the_new_rows(database_url, name):
    write_sql(pa.table({"a": [1, 2, 3]}), name, database_url)
    write_sql(pa.table({"b": ["x"]}), name, database_url, if_exists="replace")
    assert datakiln.read_sql(database_url, table=name).to_arrow().to_pylist() == [{"b": "x"}]
    assert not any(t.startswith(("dk_new_", "dk_old_")) for t in _tables(database_url))


def test_zones_survive_a_round_trip(database_url, name):
    instants = [dt.datetime(2024, 3, 31, 0, 30, tzinfo=dt.UTC),  # the night clocks change
                None, dt.datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)]
    table = pa.table({
        "zurich": pa.array(instants, pa.timestamp("us", tz="Europe/Zurich")),
        "tokyo": pa.array(instants, pa.timestamp("us", tz="Asia/Tokyo")),
        "utc": pa.array(instants, pa.timestamp("us", tz="UTC")),
        "naive": pa.array([v and v.replace(tzinfo=None) for v in instants], pa.timestamp("us")),
    })
    write_sql(table, name, database_url)
    back = datakiln.read_sql(database_url, table=name).to_arrow()
    assert back.schema.equals(table.schema)
    assert back.equals(table)
    assert back["zurich"][0].as_py().isoformat() == "2024-03-31T01:30:00+01:00"
