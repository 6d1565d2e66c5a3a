"""read_sql never runs a table name as SQL, runs a query as exactly one read-only statement,
and reads any legal table name (issue 12 item 1, issue 11 item 11), on real PostgreSQL,
MariaDB and SQLite."""

import contextlib
import uuid

import pyarrow as pa
import pytest

import datakiln
from datakiln.errors import DatakilnError, InvalidArgumentError, QueryError

sqlalchemy = pytest.importorskip("sqlalchemy")

INJECTION = "SELECT 1 AS x) AS y; DROP TABLE t; COMMIT; SELECT 1 AS z FROM (SELECT 1"


def _run(url: str, *statements: str) -> list:
    """Run ``statements`` with plain SQLAlchemy (not datakiln); rows of the last one."""
    from datakiln.io.sql import normalise_url

    engine = sqlalchemy.create_engine(normalise_url(url))
    try:
        with engine.begin() as conn:
            rows = []
            for statement in statements:
                result = conn.execute(sqlalchemy.text(statement))
                rows = result.fetchall() if result.returns_rows else []
            return rows
    finally:
        engine.dispose()


def _quote(url: str, name: str) -> str:
    return "`" + name.replace("`", "``") + "`" if "mysql" in url else '"' + name.replace('"', '""') + '"'


@pytest.fixture
def table_t(database_url):
    """Table ``t`` (the name the injection string drops) holding one marker row."""
    _run(database_url, "DROP TABLE IF EXISTS t", "CREATE TABLE t (v INTEGER)",
         "INSERT INTO t VALUES (42)")
    yield database_url
    _run(database_url, "DROP TABLE IF EXISTS t")


def test_injection_string_never_runs(table_t):
    url = table_t
    calls = [
        lambda: datakiln.read_sql(INJECTION, url),  # the old positional form
        lambda: datakiln.read_sql(url, table=INJECTION),
        lambda: datakiln.read_sql(url, query=INJECTION),
        lambda: datakiln.read_sql(url, query=INJECTION).count(),
        lambda: datakiln.read(url, table=INJECTION),
        lambda: datakiln.read(url, query="SELECT 1 AS x; DROP TABLE t"),
        lambda: datakiln.read(url, query="SELECT 1 AS x; COMMIT; DROP TABLE t"),
    ]
    if "mysql" in url:  # a URL asking PyMySQL for CLIENT.MULTI_STATEMENTS does not get it
        calls.append(lambda: datakiln.read_sql(url + "?client_flag=65536",
                                               query="SELECT 1 AS x; DROP TABLE t").to_arrow())
    for call in calls:
        with contextlib.suppress(DatakilnError):
            call()
        assert _run(url, "SELECT v FROM t") == [(42,)], "table t was dropped"
    with pytest.raises(QueryError, match="no table|cannot read table"):
        datakiln.read_sql(url, table=INJECTION)
    with pytest.raises(QueryError, match="exactly one read-only statement"):
        datakiln.read_sql(url, query="SELECT 1 AS x; DROP TABLE t")


def test_old_positional_form_says_which_keyword(sqlite_url):
    with pytest.raises(InvalidArgumentError, match=r"query='SELECT 1 AS x'"):
        datakiln.read_sql("SELECT 1 AS x", sqlite_url)
    with pytest.raises(InvalidArgumentError, match=r"table='adult'"):
        datakiln.read_sql("adult", sqlite_url)
    with pytest.raises(InvalidArgumentError, match="exactly one of table= .* or query="):
        datakiln.read_sql(sqlite_url, table="a", query="SELECT 1")
    with pytest.raises(InvalidArgumentError, match="exactly one of table="):
        datakiln.read_sql(sqlite_url)
    with pytest.raises(InvalidArgumentError, match="params only apply to query="):
        datakiln.read_sql(sqlite_url, table="a", params={"x": 1})


def test_reads_are_read_only(table_t):
    url = table_t
    read_only = "read-only|readonly|READ ONLY"
    if "postgres" in url:  # a server-side cursor takes only a SELECT, which may still write
        sequence = f"dk_seq_{uuid.uuid4().hex[:8]}"
        _run(url, f"CREATE SEQUENCE {sequence}")
        cases = [("DELETE FROM t RETURNING v", "syntax error"),
                 ("WITH gone AS (DELETE FROM t RETURNING v) SELECT v FROM gone", "data-modifying"),
                 (f"SELECT nextval('{sequence}') AS n", read_only)]
    else:  # MariaDB 10.5+ and SQLite 3.35+ know DELETE ... RETURNING
        cases = [("DELETE FROM t RETURNING v", read_only)]
    for statement, message in cases:
        with pytest.raises(QueryError, match=message):
            datakiln.read_sql(url, query=statement).to_arrow()
        assert _run(url, "SELECT v FROM t") == [(42,)]
    if "postgres" in url:
        assert _run(url, f"SELECT nextval('{sequence}')") == [(1,)]  # never advanced
        _run(url, f"DROP SEQUENCE {sequence}")


def test_trailing_comment_and_semicolon(database_url):
    ds = datakiln.read_sql(database_url, query="SELECT 7 AS x -- the answer, almost")
    assert ds.to_arrow().to_pylist() == [{"x": 7}] and ds.count() == 1
    ds = datakiln.read_sql(database_url, query="SELECT 8 AS x; -- one statement")
    assert ds.to_arrow().to_pylist() == [{"x": 8}]


def test_table_named_with_quotes_and_non_ascii(database_url):
    name = f"dk_it's \"Zürich\" 東京 {uuid.uuid4().hex[:6]}"
    table = pa.table({"a": [1, 2, 3], "ö col": ["x", "y", None]})
    try:
        assert datakiln.from_arrow(table).write_sql(name, database_url) == 3
        ds = datakiln.read_sql(database_url, table=name)
        assert ds.to_arrow().equals(table)
        assert ds.count() == 3
        assert datakiln.read(database_url, table=name).to_arrow().equals(table)
    finally:
        _run(database_url, f"DROP TABLE IF EXISTS {_quote(database_url, name)}")


def test_schema_dot_table_is_the_same_for_read_and_write(database_url):
    schema = {"postgres": "public", "mysql": "test", "sqlite": "main"}[
        next(k for k in ("postgres", "mysql", "sqlite") if k in database_url)]
    name = f"dk_{uuid.uuid4().hex[:10]}"
    table = pa.table({"a": [1, 2]})
    try:
        datakiln.from_arrow(table).write_sql(f"{schema}.{name}", database_url)
        # written as table `name` in `schema`, not as a table literally named "schema.name"
        assert _run(database_url, f"SELECT a FROM {schema}.{name} ORDER BY a") == [(1,), (2,)]
        assert datakiln.read_sql(database_url, table=f"{schema}.{name}").to_arrow().equals(table)
        assert datakiln.read_sql(database_url, table=name, db_schema=schema).count() == 2
        assert datakiln.read_sql(database_url, table=name).count() == 2
    finally:  # and the table a writer that took the name literally would have made
        _run(database_url, f"DROP TABLE IF EXISTS {schema}.{name}",
             f"DROP TABLE IF EXISTS {_quote(database_url, f'{schema}.{name}')}")


def test_read_routes_database_urls(sqlite_url, tmp_path):
    _run(sqlite_url, "CREATE TABLE r (v INTEGER)", "INSERT INTO r VALUES (1), (2)")
    assert datakiln.read(sqlite_url, table="r").count() == 2
    assert datakiln.read(sqlite_url, query="SELECT v FROM r WHERE v > :v",
                         params={"v": 1}).to_arrow().to_pylist() == [{"v": 2}]
    with pytest.raises(InvalidArgumentError, match="table='name' or query="):
        datakiln.read(sqlite_url)
    with pytest.raises(InvalidArgumentError, match=r"\['names'\] apply to files"):
        datakiln.read(sqlite_url, table="r", names=["a"])
    csv = tmp_path / "a.csv"
    csv.write_text("a\n1\n")
    with pytest.raises(InvalidArgumentError, match="is not a database URL"):
        datakiln.read(csv, table="r")


def test_colons_in_a_query_without_params_are_sql_not_placeholders(database_url):
    # SQLAlchemy took ':1' in '{"a":1}' (and any ':word' in a literal) for a bind parameter:
    # "A value is required for bind parameter '1'", with no way to pass one from the CLI
    ds = datakiln.read_sql(database_url, query="SELECT 'k:v' AS s, 'x :name y' AS t")
    assert ds.to_arrow().to_pylist() == [{"s": "k:v", "t": "x :name y"}]
    with_params = datakiln.read_sql(database_url, query="SELECT :x AS a, 'p:q' AS b", params={"x": 5})
    assert with_params.to_arrow().to_pylist() == [{"a": 5, "b": "p:q"}]
    with pytest.raises(QueryError, match=r"if ':name' is a placeholder, give its value in params="):
        datakiln.read_sql(database_url, query="SELECT :x AS a")


def test_a_query_naming_a_column_twice_is_a_query_error(database_url):
    with pytest.raises(QueryError, match=r"returns the column\(s\) \['a'\] more than once"):
        datakiln.read_sql(database_url, query="SELECT 1 AS a, 2 AS a")


def test_postgres_numeric_nan_and_infinity_read_as_float(postgres_url):
    # a numeric column holding 'NaN' or 'Infinity' crashed type inference (TypeError)
    query = ("SELECT v::numeric AS n, '{\"a\":1}'::jsonb AS j FROM (VALUES ('1.5'), ('NaN'), "
             "('-Infinity')) AS q(v)")
    rows = datakiln.read_sql(postgres_url, query=query).to_arrow().to_pydict()
    assert rows["n"][0] == 1.5 and rows["n"][1] != rows["n"][1] and rows["n"][2] == float("-inf")
    assert rows["j"] == ['{"a": 1}'] * 3


def test_a_missing_sqlite_file_is_not_created_by_a_read(tmp_path):
    # sqlite3 created an empty database at a mistyped path and the read said "no table 't'"
    from datakiln.errors import SourceNotFoundError

    missing = tmp_path / "typo.db"
    with pytest.raises(SourceNotFoundError, match=r"no SQLite database file at .*typo\.db"):
        datakiln.read_sql(f"sqlite:///{missing}", table="t")
    assert not missing.exists()
    assert datakiln.read_sql("sqlite://", query="SELECT 1 AS x").to_arrow().to_pylist() == [{"x": 1}]
