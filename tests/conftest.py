"""Shared fixtures: the real Adult file, a generated table with every column kind, DB URLs.

Real data comes from two places: the full datasets beside the repository
(``<repo root>/../shared/datasets``, through :func:`shared_dataset`, which skips with a reason
when they are absent) and small samples of them vendored in ``tests/data`` (through
:func:`sample_dataset` and the ``*_sample`` fixtures), so a bare clone exercises every module.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "datasets"
SAMPLES = REPO / "tests" / "data"
ADULT_TRAIN = SHARED / "adult" / "adult-train.csv"
ADULT_COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status",
    "occupation", "relationship", "race", "sex", "capital-gain", "capital-loss",
    "hours-per-week", "native-country", "income",
]
IN_CI = os.environ.get("CI", "").lower() == "true"


def shared_dataset(name: str) -> Path:
    """``<repo root>/../shared/datasets/<name>``, found from the repository, not the working directory.

    Without ``../shared`` (a plain clone) the calling test skips with a reason; with it, a
    missing file skips outside CI and fails under ``CI=true`` (where nothing may skip).
    """
    path = SHARED / name
    if path.exists():
        return path
    if SHARED.is_dir() and IN_CI:
        pytest.fail(f"{path} is missing in CI although {SHARED} exists")
    where = "is missing" if SHARED.is_dir() else "is not beside this clone"
    pytest.skip(f"needs the full dataset {name}: {SHARED} {where} (tests/data holds small samples)")


def sample_dataset(name: str) -> Path:
    """A small real sample vendored in ``tests/data`` (see its README): always present."""
    path = SAMPLES / name
    assert path.exists(), f"{path} belongs to the repository; restore it from git"
    return path


@pytest.fixture(scope="session")
def adult_path() -> Path:
    return shared_dataset("adult/adult-train.csv")


@pytest.fixture(scope="session")
def adult_sample_path() -> Path:
    """The first 600 rows of Adult train, unchanged (no header, ', ', '?' for missing)."""
    return sample_dataset("adult/adult-train.csv")


@pytest.fixture(scope="session")
def adult_sample(adult_sample_path: Path) -> pa.Table:
    import datakiln

    return datakiln.read(adult_sample_path, names=ADULT_COLUMNS).to_arrow()


@pytest.fixture(scope="session")
def adult_sample_test() -> pa.Table:
    """The first 300 rows of Adult test, labels without their trailing '.' (as the train file)."""
    import pyarrow.compute as pc

    import datakiln

    table = datakiln.read(sample_dataset("adult/adult-test.csv"), names=ADULT_COLUMNS).to_arrow()
    index = table.schema.get_field_index("income")
    return table.set_column(index, "income", pc.replace_substring(table["income"], ".", ""))


@pytest.fixture(scope="session")
def bank_sample_path() -> Path:
    """The header and first 600 rows of bank marketing's bank.csv (';', quoted strings)."""
    return sample_dataset("bank_marketing/bank.csv")


@pytest.fixture(scope="session")
def adult(adult_path: Path) -> pa.Table:
    import datakiln

    return datakiln.read(adult_path, names=ADULT_COLUMNS).to_arrow()


def every_kind_table(rows: int = 500, seed: int = 0) -> pa.Table:
    """A table with a column of every kind, NULLs in most, time zones and unicode."""
    rng = np.random.default_rng(seed)
    mask = rng.random(rows) < 0.1
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    words = ["héllo wörld", "日本語のテキスト", "plain text here", "emoji 🎉 party", "a, quoted \"value\""]
    return pa.table({
        "id": pa.array(np.arange(rows, dtype=np.int64)),
        "age": pa.array(rng.integers(18, 90, rows), mask=mask),
        "income": pa.array(np.round(rng.lognormal(10, 1, rows), 3), mask=mask),
        "member": pa.array(rng.random(rows) < 0.5, mask=mask),
        "city": pa.array(rng.choice(["Zürich", "Paris", "東京", "New York"], rows), mask=mask),
        "joined": pa.array([start + dt.timedelta(seconds=int(s)) for s in rng.integers(0, 10**8, rows)],
                           type=pa.timestamp("us", tz="UTC"), mask=mask),
        "birthday": pa.array([dt.date(1950, 1, 1) + dt.timedelta(days=int(d))
                              for d in rng.integers(0, 20000, rows)], type=pa.date32()),
        "note": pa.array([f"{words[i % 5]} number {i} with several words" for i in range(rows)],
                         mask=mask),
        "email": pa.array([f"user{i}@example.org" for i in range(rows)]),
        "price": pa.array([Decimal(f"{v:.2f}") for v in rng.uniform(0, 1000, rows)],
                          type=pa.decimal128(10, 2)),
    })


@pytest.fixture
def every_kind() -> pa.Table:
    return every_kind_table()


def _database(url: str, probe: str) -> str:
    sqlalchemy = pytest.importorskip("sqlalchemy") if not IN_CI else __import__("sqlalchemy")
    from datakiln.io.sql import normalise_url

    try:
        engine = sqlalchemy.create_engine(normalise_url(url))
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text(probe))
        engine.dispose()
    except Exception as exc:  # any failure to reach the server decides skip (or fail in CI)
        if IN_CI:
            pytest.fail(f"{url} must be reachable in CI: {exc}")
        pytest.skip(f"{url} not reachable: {exc}")
    return url


@pytest.fixture(scope="session")
def postgres_url() -> str:
    return _database("postgresql://root@127.0.0.1:5432/test", "SELECT 1")


@pytest.fixture(scope="session")
def mariadb_url() -> str:
    return _database("mysql://root@127.0.0.1:3306/test", "SELECT 1")


def _sqlite_file(path: Path) -> str:
    """The URL of an (empty) SQLite database at ``path``: reads refuse a missing file."""
    import sqlite3

    sqlite3.connect(path).close()
    return f"sqlite:///{path}"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return _sqlite_file(tmp_path / "test.db")


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return _sqlite_file(tmp_path / "test.db")
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture(scope="session")
def adult_test(adult_path: Path) -> pa.Table:
    """The Adult test split with its labels made to match the training file (no trailing '.')."""
    import pyarrow.compute as pc

    import datakiln

    table = datakiln.read(adult_path.with_name("adult-test.csv"), names=ADULT_COLUMNS).to_arrow()
    index = table.schema.get_field_index("income")
    return table.set_column(index, "income", pc.replace_substring(table["income"], ".", ""))


@pytest.fixture(scope="session")
def adult_synthetic(adult: pa.Table) -> pa.Table:
    """A Gaussian-copula sample as large as Adult train (seed 1)."""
    from datakiln.synth import GaussianCopula

    return GaussianCopula().fit(adult).sample(adult.num_rows, seed=1)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real S3 API on loopback: moto's threaded server on a free port, for the whole session.
    A test that points s3fs elsewhere clears ``s3fs.S3FileSystem.clear_instance_cache()`` after."""
    if IN_CI:  # installed by the dev extra: missing in CI is a failure, not a skip
        from moto.server import ThreadedMotoServer
    else:
        ThreadedMotoServer = pytest.importorskip("moto.server").ThreadedMotoServer  # noqa: N806
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    # fsspec caches filesystems by arguments, not by environment: one made before the
    # environment pointed at moto must not be reused
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``s3://<new bucket>`` on the moto server; credentials and endpoint set in the
    environment for this test only (as a user sets them), never passed in code."""
    import uuid

    s3fs = pytest.importorskip("s3fs") if not IN_CI else __import__("s3fs")
    for key, value in {"AWS_ACCESS_KEY_ID": "datakiln-test-key",
                       "AWS_SECRET_ACCESS_KEY": "datakiln-test-secret-4f7a",
                       "AWS_ENDPOINT_URL": moto_endpoint, "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    fs = s3fs.S3FileSystem()  # the instance moto_endpoint's clearing left to be made here
    bucket = f"dk-{uuid.uuid4().hex[:12]}"
    fs.mkdir(bucket)
    yield f"s3://{bucket}"
