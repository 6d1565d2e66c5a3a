"""Dataset.cache never serves stale rows: keys come from content and code, or from the caller."""

import functools
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import datakiln
from datakiln.errors import InvalidArgumentError, OutputExistsError

OFFSET = 10  # a global read by a map function: changing it must change the cache key


def _stamp(path):
    return path.stat().st_mtime_ns


@pytest.fixture
def small():
    return datakiln.from_arrow(pa.table({"a": np.arange(100)}))


def test_two_lambdas_do_not_share_a_cache_entry(small, tmp_path):
    target = tmp_path / "c.arrow"
    plus_one = small.map_batches(lambda t: pa.table({"a": pc.add(t["a"], 1)})).cache(target)
    assert plus_one.to_arrow()["a"].to_pylist()[:3] == [1, 2, 3]
    times_two = small.map_batches(lambda t: pa.table({"a": pc.multiply(t["a"], 2)})).cache(target)
    assert times_two.to_arrow()["a"].to_pylist()[:3] == [0, 2, 4]


def test_closure_values_defaults_and_globals_enter_the_key(small, tmp_path):
    global OFFSET
    target = tmp_path / "c.arrow"

    def adder(k):
        return lambda t: pa.table({"a": pc.add(t["a"], k)})

    assert small.map_batches(adder(1)).cache(target).head(1)["a"][0].as_py() == 1
    assert small.map_batches(adder(5)).cache(target).head(1)["a"][0].as_py() == 5

    def scaled(t, factor=3):
        return pa.table({"a": pc.multiply(t["a"], factor)})

    assert small.map_batches(scaled).cache(target).head(2)["a"][1].as_py() == 3
    assert small.map_batches(functools.partial(scaled, factor=4)).cache(target).head(2)["a"][1].as_py() == 4

    def shifted(t):
        return pa.table({"a": pc.add(t["a"], OFFSET)})

    assert small.map_batches(shifted).cache(target).head(1)["a"][0].as_py() == 10
    stamp = _stamp(target)
    assert small.map_batches(shifted).cache(target).head(1)["a"][0].as_py() == 10
    assert _stamp(target) == stamp  # the same code and values: reused
    OFFSET = 20
    try:
        assert small.map_batches(shifted).cache(target).head(1)["a"][0].as_py() == 20
    finally:
        OFFSET = 10


def test_unidentifiable_state_is_refused_naming_key(small, tmp_path):
    rng = np.random.default_rng(0)
    noisy = small.map_batches(lambda t: pa.table({"a": pc.add(t["a"], int(rng.integers(10)))}))
    with pytest.raises(InvalidArgumentError, match=r"key=.*rng|rng.*key="):
        noisy.cache(tmp_path / "c.arrow")
    assert noisy.cache(tmp_path / "c.arrow", key="noise-v1").count() == 100
    stamp = _stamp(tmp_path / "c.arrow")
    noisy.cache(tmp_path / "c.arrow", key="noise-v1")
    assert _stamp(tmp_path / "c.arrow") == stamp
    noisy.cache(tmp_path / "c.arrow", key="noise-v2")
    assert _stamp(tmp_path / "c.arrow") != stamp


def test_in_memory_tables_are_keyed_by_content(tmp_path):
    target = tmp_path / "c.arrow"
    datakiln.from_arrow(pa.table({"a": np.arange(50)})).cache(target)
    stamp = _stamp(target)
    datakiln.from_arrow(pa.table({"a": np.arange(50)})).cache(target)  # another object, same rows
    assert _stamp(target) == stamp
    for round_ in range(5):  # same shape, other values: id() may be reused, the key may not
        values = np.arange(50) + round_ + 1
        cached = datakiln.from_arrow(pa.table({"a": values})).cache(target)
        assert cached.to_arrow()["a"].to_pylist() == values.tolist()


def test_sql_sources_need_a_key_or_refresh(sqlite_url, tmp_path):
    import sqlalchemy as sa

    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (i INTEGER)"))
        conn.execute(sa.text("INSERT INTO t VALUES (1), (2)"))
    target = tmp_path / "sql.arrow"
    with pytest.raises(InvalidArgumentError, match=r"key=.*refresh=True"):
        datakiln.read_sql(sqlite_url, table="t").cache(target)
    assert datakiln.read_sql(sqlite_url, table="t").cache(target, key="day-1").count() == 2
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO t VALUES (3)"))  # the table gains a row
    engine.dispose()
    assert datakiln.read_sql(sqlite_url, table="t").cache(target, key="day-1").count() == 2  # as asked
    assert datakiln.read_sql(sqlite_url, table="t").cache(target, key="day-2").count() == 3
    assert datakiln.read_sql(sqlite_url, table="t").cache(target, refresh=True).count() == 3


def test_a_crash_between_the_renames_never_leaves_a_stale_key(small, tmp_path, monkeypatch):
    import os

    target = tmp_path / "c.arrow"
    small.cache(target)
    real_replace = os.replace

    def crash_after_data(src, dst):
        real_replace(src, dst)
        if str(dst) == str(target):
            raise KeyboardInterrupt  # killed right after the data file was renamed

    monkeypatch.setattr("datakiln.dataset.cache.os.replace", crash_after_data)
    changed = datakiln.from_arrow(pa.table({"a": np.arange(100) * 7}))
    with pytest.raises(KeyboardInterrupt):
        changed.cache(target)
    monkeypatch.undo()
    assert json.loads((tmp_path / "c.arrow.json").read_text())["fingerprint"] is None
    assert small.cache(target).to_arrow()["a"].to_pylist() == list(range(100))  # rebuilt


def test_the_cache_never_overwrites_what_it_did_not_write(small, tmp_path):
    import pyarrow.feather as feather

    mine = tmp_path / "mine.arrow"
    feather.write_feather(pa.table({"z": [1]}), mine)
    with pytest.raises(OutputExistsError, match="not a datakiln cache"):
        small.cache(mine)
    assert feather.read_table(mine)["z"].to_pylist() == [1]
    source = datakiln.read(mine, format="arrow")
    (tmp_path / "mine.arrow.json").write_text("{}")  # even beside a sidecar
    with pytest.raises(OutputExistsError, match="is an input"):
        source.cache(mine)


def test_fingerprints_ignore_paths_and_mtimes_but_see_content(tmp_path):
    import os
    import shutil

    import pyarrow.parquet as pq

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    pq.write_table(pa.table({"x": np.arange(1000)}), tmp_path / "a" / "t.parquet")
    shutil.copy(tmp_path / "a" / "t.parquet", tmp_path / "b" / "t.parquet")
    os.utime(tmp_path / "b" / "t.parquet", (1, 1))
    first = datakiln.read(tmp_path / "a" / "t.parquet")
    assert first.fingerprint == datakiln.read(tmp_path / "b" / "t.parquet").fingerprint
    pq.write_table(pa.table({"x": np.arange(1000)[::-1].copy()}), tmp_path / "b" / "t.parquet")
    assert first.fingerprint != datakiln.read(tmp_path / "b" / "t.parquet").fingerprint
    csv = tmp_path / "big.csv"  # over 4 MiB: size, head, tail and 16 samples are hashed
    body = "a,b\n" + "".join(f"{i},{i * 3}\n" for i in range(600_000))
    csv.write_text(body)
    shutil.copy(csv, tmp_path / "b" / "moved.csv")
    before = datakiln.read(csv).fingerprint
    assert csv.stat().st_size > 4 << 20
    assert before == datakiln.read(tmp_path / "b" / "moved.csv").fingerprint
    csv.write_text(body[:-2] + "8\n")  # the last value changes, the size does not
    assert datakiln.read(csv).fingerprint != before


def test_library_functions_count_by_name_and_version(small, tmp_path):
    from textwrap import dedent  # a standard-library function read as a global

    def labelled(t):
        return pa.table({"a": t["a"], "s": [dedent("  x")] * t.num_rows})

    target = tmp_path / "c.arrow"
    assert small.map_batches(labelled).cache(target).to_arrow()["s"][0].as_py() == "x"
    stamp = _stamp(target)
    small.map_batches(labelled).cache(target)
    assert _stamp(target) == stamp  # dedent's own globals (a compiled regex) are not inspected


def test_a_value_fixed_in_place_is_not_served_stale(tmp_path):
    """One label fixed in a Parquet file keeps its size and footer (same statistics); the
    content fingerprint cannot see it, so the cache also checks the files' stamps."""
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 20_000)
    source, target = tmp_path / "s.parquet", tmp_path / "c.arrow"
    pq.write_table(pa.table({"label": labels}), source)
    before = datakiln.read(source)
    assert before.cache(target).to_arrow()["label"].to_numpy().sum() == labels.sum()
    fixed = labels.copy()
    fixed[10_000] = 1 - fixed[10_000]
    size = source.stat().st_size
    pq.write_table(pa.table({"label": fixed}), source)
    after = datakiln.read(source)
    assert source.stat().st_size == size and after.fingerprint == before.fingerprint  # unseen
    assert after.cache(target).to_arrow()["label"].to_numpy().sum() == fixed.sum()
    stamp = _stamp(target)
    datakiln.read(source).cache(target)
    assert _stamp(target) == stamp  # untouched files: reused


def test_a_function_of_the_callers_own_module_enters_the_key(small, tmp_path, monkeypatch):
    """``import helpers; helpers.scale(x)``: the module counted by its name only, so editing
    helpers.py served the old rows from the cache."""
    import importlib
    import sys

    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # a .pyc of the same second would stay
    source = "import pyarrow.compute as pc\nFACTOR = {}\n\ndef scale(x):\n    return pc.multiply(x, FACTOR)\n"
    (tmp_path / "dk_helpers.py").write_text(source.format(2))
    helpers = importlib.import_module("dk_helpers")
    try:
        def through_module(t):
            return pa.table({"a": helpers.scale(t["a"])})

        target = tmp_path / "c.arrow"
        assert small.map_batches(through_module).cache(target).head(2)["a"][1].as_py() == 2
        (tmp_path / "dk_helpers.py").write_text(source.format(3))
        helpers = importlib.reload(helpers)  # as a new process would import it
        assert small.map_batches(through_module).cache(target).head(2)["a"][1].as_py() == 3
    finally:
        sys.modules.pop("dk_helpers", None)


class _Settings:
    shift = 1

    @staticmethod
    def apply(values):
        return pc.add(values, _Settings.shift)


def test_class_attributes_a_function_reads_enter_the_key(small, tmp_path):
    """``Settings.shift`` or ``Settings.apply(x)``: a class counted by its name only, so a
    changed class attribute (a config class, an enum value) served the old rows."""
    target = tmp_path / "c.arrow"

    def shifted(t):
        return pa.table({"a": pc.add(t["a"], _Settings.shift)})

    def applied(t):
        return pa.table({"a": _Settings.apply(t["a"])})

    try:
        for fn in (shifted, applied):
            _Settings.shift = 1
            assert small.map_batches(fn).cache(target).head(1)["a"][0].as_py() == 1
            _Settings.shift = 5
            assert small.map_batches(fn).cache(target).head(1)["a"][0].as_py() == 5
    finally:
        _Settings.shift = 1


def test_a_cache_inside_the_directory_it_caches_is_refused(tmp_path):
    """read("data").cache("data/cache.arrow") put the cache and its sidecar among the data:
    the next read of data/ failed ('the files mix formats')."""
    import pyarrow.parquet as pq

    folder = tmp_path / "data"
    folder.mkdir()
    pq.write_table(pa.table({"a": np.arange(10)}), folder / "a.parquet")
    with pytest.raises(OutputExistsError, match="inside the input directory"):
        datakiln.read(folder).cache(folder / "cache.arrow")
    assert [p.name for p in folder.iterdir()] == ["a.parquet"] and datakiln.read(folder).count() == 10
