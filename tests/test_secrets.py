"""No password or token from a URL reaches any output channel (issue 12 item 2): messages,
repr, source names, profile and report JSON/HTML, logs, cache sidecars, model files, CLI."""

import json
import logging
import uuid
import zipfile
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

import datakiln
from datakiln.errors import ConnectionFailedError, DatakilnError, QueryError

PASSWORD = "Pa55@word-SECRET-one"  # an '@' inside, as people type it
TOKEN = "Tok3n-SECRET-two"


def _leaks(text: str) -> list[str]:
    return [s for s in ("SECRET-one", "SECRET-two", "Pa55", "Tok3n") if s in text]


@pytest.mark.parametrize(("url", "shown"), [
    (f"postgresql://root:{PASSWORD}@db.example.org:5432/sales?sslmode=require",
     "postgresql://root:***@db.example.org:5432/sales?sslmode=require"),
    ("postgresql://root:p%40ss-SECRET-one@db/sales", "postgresql://root:***@db/sales"),
    (f"mysql://root@127.0.0.1/test?password={TOKEN}&charset=utf8mb4",
     "mysql://root@127.0.0.1/test?password=***&charset=utf8mb4"),
    (f"s3://bucket/data.csv?X-Amz-Credential=AKIA&aws_secret_access_key={TOKEN}&api_key={TOKEN}",
     "s3://bucket/data.csv?X-Amz-Credential=AKIA&aws_secret_access_key=***&api_key=***"),
    (f"https://host/x.parquet?token={TOKEN}&access_token={TOKEN}&Secret={TOKEN}&sslkey=k.pem",
     "https://host/x.parquet?token=***&access_token=***&Secret=***&sslkey=***"),
    (f"postgresql://u:{PASSWORD}@h/d?pwd={TOKEN}&passwd={TOKEN}&sslpassword={TOKEN}",
     "postgresql://u:***@h/d?pwd=***&passwd=***&sslpassword=***"),
    ("sqlite:////tmp/a@b/file.db", "sqlite:////tmp/a@b/file.db"),
    ("s3://bucket/2024@night/part.csv", "s3://bucket/2024@night/part.csv"),
    ("data/adult.csv", "data/adult.csv"),
])
def test_redact_url(url, shown):
    from datakiln.io._secrets import redact_url

    assert redact_url(url) == shown
    assert not _leaks(redact_url(url))


def test_redact_text_masks_urls_and_known_secrets():
    from datakiln.io._secrets import redact_text, url_secrets

    url = f"postgresql://root:{PASSWORD}@db/sales?password={TOKEN}"
    message = f"cannot connect to {url!r}: password {PASSWORD} and {TOKEN} rejected"
    assert not _leaks(redact_text(message, url))
    assert set(url_secrets(url)) >= {PASSWORD, TOKEN}
    assert redact_text(json.dumps({"source": url})) == json.dumps(
        {"source": "postgresql://root:***@db/sales?password=***"})


def test_every_datakiln_error_masks_urls():
    with pytest.raises(DatakilnError) as info:  # a file source's message quotes the URL
        datakiln.read(f"memory://bucket/none.csv?token={TOKEN}")
    assert "token=***" in str(info.value) and not _leaks(str(info.value))
    error = QueryError(f"made anywhere: 'postgresql://root:{PASSWORD}@db/x?api_key={TOKEN}'")
    assert str(error) == "made anywhere: 'postgresql://root:***@db/x?api_key=***'"


@pytest.fixture
def secret_url(postgres_url):
    """The test PostgreSQL server (trust authentication ignores the password) with secrets."""
    return postgres_url.replace("root@", f"root:{PASSWORD}@") + f"?password={TOKEN}"


@pytest.fixture
def secret_table(secret_url, postgres_url):
    name = f"dk_{uuid.uuid4().hex[:10]}"
    table = pa.table({"age": [float(20 + i % 50) for i in range(300)],
                      "group": [["a", "b", "c"][i % 3] for i in range(300)]})
    datakiln.from_arrow(table).write_sql(name, secret_url)
    yield name
    import sqlalchemy

    from datakiln.io.sql import normalise_url

    engine = sqlalchemy.create_engine(normalise_url(postgres_url))
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f"DROP TABLE IF EXISTS {name}"))
    engine.dispose()


def _files_text(folder: Path) -> str:
    texts = []
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            texts.append(data.decode("latin-1"))
            if zipfile.is_zipfile(path):
                with zipfile.ZipFile(path) as archive:
                    texts += [archive.read(n).decode("latin-1") for n in archive.namelist()]
    return "\n".join(texts)


def test_no_channel_shows_the_secret(secret_url, secret_table, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    seen = []
    ds = datakiln.read_sql(secret_url, table=secret_table)
    seen += [repr(ds), ds.source.name, repr(ds.source), ds.source.fingerprint(), str(ds)]
    seen.append(ds.profile().to_json())
    cached = ds.cache(tmp_path / "cache" / "c.arrow", key="snapshot-1")
    seen.append(repr(cached))
    for failing in [lambda: datakiln.read_sql(secret_url, query="SELEC nothing"),
                    lambda: datakiln.read_sql(secret_url, table="no_such_table_dk"),
                    lambda: datakiln.read_sql(secret_url.replace(":5432", ":1"), table="t"),
                    lambda: datakiln.read(secret_url),
                    lambda: datakiln.from_arrow(pa.table({"a": [1]})).write_sql(
                        secret_table, secret_url)]:
        with pytest.raises(DatakilnError) as info:
            failing()
        seen.append(str(info.value))
    assert isinstance(info.value, DatakilnError)
    from datakiln.synth import GaussianCopula

    model = GaussianCopula().fit(ds)
    model.save(tmp_path / "model" / "m.kiln")
    sample = model.sample(300, seed=0)
    report = datakiln.evaluate(ds, sample, detection=False)
    seen.append(report.to_json())
    report.to_html(tmp_path / "r.html")
    seen.append(_files_text(tmp_path))
    seen.append(caplog.text)
    leaks = {text[:120]: _leaks(text) for text in seen if _leaks(text)}
    assert not leaks


def test_the_cli_never_prints_the_secret(secret_url, secret_table, tmp_path):
    from datakiln.cli.app import app

    runner = CliRunner()
    ok = runner.invoke(app, ["inspect", secret_url, "--table", secret_table])
    assert ok.exit_code == 0, ok.output
    assert "300 rows" in ok.output and not _leaks(ok.output)
    as_json = runner.invoke(app, ["inspect", secret_url, "--table", secret_table, "--json"])
    assert as_json.exit_code == 0 and not _leaks(as_json.output)
    assert json.loads(as_json.stdout)["rows"] == 300
    out = tmp_path / "out"
    converted = runner.invoke(app, ["convert", secret_url, str(out), "--query",
                                    f"SELECT age FROM {secret_table} WHERE age > 60"])
    assert converted.exit_code == 0, converted.output
    assert not _leaks(converted.output)
    assert datakiln.read(out).count() == sum(1 for i in range(300) if 20 + i % 50 > 60)
    for args in (["inspect", secret_url],  # no --table/--query
                 ["inspect", secret_url.replace(":5432", ":1"), "--table", "t"],
                 ["inspect", secret_url, "--query", "SELEC broken"]):
        failed = runner.invoke(app, args)
        assert failed.exit_code == 2, failed.output
        assert "error" in failed.output and not _leaks(failed.output)


def test_connection_errors_name_the_url_masked(postgres_url):
    url = postgres_url.replace("root@", f"root:{PASSWORD}@").replace(":5432", ":1")
    with pytest.raises(ConnectionFailedError, match=r"root:\*\*\*@127.0.0.1:1/test") as info:
        datakiln.read_sql(url, table="t")
    assert not _leaks(str(info.value))
    with pytest.raises(QueryError) as info:
        datakiln.read_sql(postgres_url + f"?password={TOKEN}", query="SELEC 1")
    assert not _leaks(str(info.value))


def test_text_after_a_secret_query_value_is_kept():
    # the masked value swallowed what followed it: "...?token=***" lost its closing "':" in
    # every error message, and kiln inspect's "URL: 200 rows" header lost its colon
    from datakiln._secrets import redact_text

    assert (redact_text("cannot connect to 'postgresql://u@h/db?token=abc': refused")
            == "cannot connect to 'postgresql://u@h/db?token=***': refused")
    header = redact_text("postgresql://u@h/db?password=S3CRET: 200 rows")
    assert header == "postgresql://u@h/db?password=***: 200 rows"
    assert redact_text("see postgresql://u:pw@h/db?pwd=x;") == "see postgresql://u:***@h/db?pwd=***;"
