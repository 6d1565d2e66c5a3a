"""SQL sources against real PostgreSQL and MariaDB servers (and embedded SQLite)."""

import datetime as dt
import uuid
from decimal import Decimal

import pyarrow as pa
import pytest
from tests.conftest import ADULT_COLUMNS

import datakiln
from datakiln.errors import ConnectionFailedError, InvalidArgumentError, QueryError

pytest.importorskip("sqlalchemy")


def _table_name() -> str:
    return f"dk_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def dropper():
    created = []
    yield created.append
    import sqlalchemy

    from datakiln.io.sql import normalise_url

    for url, name in created:
        engine = sqlalchemy.create_engine(normalise_url(url))
        with engine.begin() as conn:
            quoted = engine.dialect.identifier_preparer.quote(name)
            conn.execute(sqlalchemy.text(f"DROP TABLE IF EXISTS {quoted}"))
        engine.dispose()


def test_adult_round_trip_in_chunks_of_1000(adult_path, database_url, dropper):
    csv = datakiln.read(adult_path, names=ADULT_COLUMNS).to_arrow()
    with_row = csv.append_column("row_id", pa.array(range(csv.num_rows), pa.int64()))
    name = _table_name()
    dropper((database_url, name))
    assert datakiln.from_arrow(with_row).write_sql(name, database_url) == 32_561
    quoted = ", ".join(f'"{c}"' if "mysql" not in database_url else f"`{c}`" for c in ADULT_COLUMNS)
    ds = datakiln.read_sql(database_url, query=f"SELECT {quoted} FROM {name} ORDER BY row_id",
                           chunk_rows=1000)
    batches = list(ds.iter_batches())
    assert len(batches) == 33 and max(b.num_rows for b in batches) == 1000
    back = pa.Table.from_batches(batches)
    assert back.schema.equals(csv.schema)
    assert back.equals(csv)  # value for value, NULLs included
    table_read = datakiln.read_sql(database_url, table=name, chunk_rows=1000)
    assert table_read.count() == 32_561


def test_types_map_to_arrow(database_url, dropper):
    mysql = "mysql" in database_url
    zoneless = mysql or "sqlite" in database_url
    stamp = dt.datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=dt.UTC)
    table = pa.table({
        "i": pa.array([1, None, -(2**40)], pa.int64()),
        "f": pa.array([1.5, None, -2.25], pa.float64()),
        "d": pa.array([Decimal("12.34"), None, Decimal("-0.01")], pa.decimal128(10, 2)),
        "t": pa.array(["héllo", None, "日本"], pa.string()),
        "b": pa.array([True, None, False], pa.bool_()),
        "day": pa.array([dt.date(2024, 2, 29), None, dt.date(1970, 1, 1)], pa.date32()),
        "ts": pa.array([stamp, None, stamp + dt.timedelta(days=400)], pa.timestamp("us", tz="UTC")),
    })
    name = _table_name()
    dropper((database_url, name))
    datakiln.from_arrow(table).write_sql(name, database_url)
    back = datakiln.read_sql(database_url, table=name).to_arrow()
    assert back["i"].type == pa.int64() and back["i"].to_pylist() == table["i"].to_pylist()
    assert back["f"].to_pylist() == table["f"].to_pylist()
    assert pa.types.is_decimal(back["d"].type) and back["d"].to_pylist() == table["d"].to_pylist()
    assert back["t"].to_pylist() == table["t"].to_pylist()
    assert back["day"].type == pa.date32() and back["day"].to_pylist() == table["day"].to_pylist()
    if mysql:  # MariaDB has no boolean type: TINYINT(1)
        assert back["b"].to_pylist() == [1, None, 0]
    else:
        assert back["b"].type == pa.bool_() and back["b"].to_pylist() == [True, None, False]
    # no zoned type on MySQL/SQLite: UTC wall time stored and the zone recorded, so the
    # table reads back zoned on every database
    assert back["ts"].type == pa.timestamp("us", tz="UTC")
    assert back["ts"].to_pylist() == table["ts"].to_pylist()
    if zoneless:  # what the database itself holds is the UTC wall time
        raw = datakiln.read_sql(database_url, query=f"SELECT ts FROM {name}").to_arrow()
        wall = [v and v.replace(tzinfo=None) for v in table["ts"].to_pylist()]
        assert raw["ts"].to_pylist() == (wall if mysql else [v and str(v) for v in wall])


def test_parameterised_query(database_url, dropper):
    name = _table_name()
    dropper((database_url, name))
    datakiln.from_arrow(pa.table({"a": list(range(100)), "s": ["x'; DROP TABLE y; --"] * 100})
                        ).write_sql(name, database_url)
    ds = datakiln.read_sql(database_url,
                           query=f"SELECT a FROM {name} WHERE a >= :low AND s = :s ORDER BY a",
                           params={"low": 90, "s": "x'; DROP TABLE y; --"},
                           chunk_rows=3)
    assert ds.to_arrow()["a"].to_pylist() == list(range(90, 100))
    assert ds.count() == 10


def test_postgres_timestamptz_from_a_query(postgres_url):
    ds = datakiln.read_sql(postgres_url, query="SELECT TIMESTAMPTZ '2024-01-01 10:00:00+02' AS t, "
                           "CAST(NULL AS INTEGER) AS n, 1.5::numeric(4,1) AS x")
    table = ds.to_arrow()
    assert table["t"].type == pa.timestamp("us", tz="UTC")
    assert table["t"][0].as_py() == dt.datetime(2024, 1, 1, 8, tzinfo=dt.UTC)
    assert table["n"].type == pa.int32() and table["n"][0].as_py() is None
    assert table["x"].type == pa.decimal128(4, 1)


def test_sql_errors_are_clear(database_url):
    with pytest.raises(QueryError, match="no table 'no_such_table_dk'"):
        datakiln.read_sql(database_url, table="no_such_table_dk")
    with pytest.raises(QueryError, match="rejected the query"):
        datakiln.read_sql(database_url, query="SELEC oops FROM nowhere")


def test_unreachable_server_and_wrong_credentials(postgres_url, mariadb_url):
    with pytest.raises(ConnectionFailedError, match="cannot connect to 'postgresql://root@127.0.0.1:1/test'"):
        datakiln.read_sql("postgresql://root@127.0.0.1:1/test", table="t")
    with pytest.raises(ConnectionFailedError, match=r"mysql://nobody:\*\*\*@127.0.0.1:3306"):
        datakiln.read_sql("mysql://nobody:secret@127.0.0.1:3306/test", table="t")
    with pytest.raises(ConnectionFailedError, match="check that the server runs"):
        datakiln.read_sql("postgresql://root@127.0.0.1:5432/no_such_database_dk", table="t")


def test_bad_urls_and_arguments(sqlite_url):
    with pytest.raises(InvalidArgumentError, match="not a database URL"):
        datakiln.read_sql("just-a-path.db", table="t")
    with pytest.raises(InvalidArgumentError, match="chunk_rows"):
        datakiln.read_sql(sqlite_url, table="t", chunk_rows=0)
