"""read_stream over a real Redis (127.0.0.1:6379): consumer groups, ack after use, crash recovery."""

from __future__ import annotations

import threading
import time
import uuid

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from tests.conftest import IN_CI

import datakiln
from datakiln.errors import (
    ConnectionFailedError,
    InvalidArgumentError,
    ParseError,
    UnboundedStreamError,
    UnsupportedFormatError,
)
from datakiln.io.streams import write_stream

redis = pytest.importorskip("redis") if not IN_CI else __import__("redis")
HOST = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module")
def client():
    conn = redis.Redis.from_url(HOST)
    try:
        conn.ping()
    except redis.exceptions.RedisError as exc:
        if IN_CI:
            pytest.fail(f"Redis must be reachable in CI: {exc}")
        pytest.skip(f"Redis at 127.0.0.1:6379 not reachable: {exc}")
    yield conn
    conn.close()


@pytest.fixture
def key(client):
    name = f"dk-test-{uuid.uuid4().hex[:10]}"
    yield name
    client.delete(name)


def url(key: str, **params: object) -> str:
    extra = "".join(f"&{k}={v}" for k, v in params.items())
    return f"{HOST}?stream={key}{extra}"


def table(n: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({
        "seq": pa.array(np.arange(n, dtype=np.int64)),
        "x": pa.array(np.round(rng.normal(size=n), 6)),
        "city": pa.array(rng.choice(["Zürich", "東京", "New York"], n)),
        "flag": pa.array(rng.random(n) < 0.5),
        "maybe": pa.array([None if i % 7 == 0 else float(i) for i in range(n)], pa.float64()),
    })


def drain(stream, **kwargs) -> pa.Table:
    batches = list(stream.iter_batches(idle_timeout_s=kwargs.pop("idle", 0.3), **kwargs))
    return pa.Table.from_batches(batches)


def test_round_trip_keeps_values_types_and_order(key):
    source = table(2500)
    assert write_stream(url(key), source) == 2500
    stream = datakiln.read_stream(url(key, group="g"), batch_size=1000)
    batches = list(stream.iter_batches(idle_timeout_s=0.3))
    assert [b.num_rows for b in batches] == [1000, 1000, 500]
    got = pa.Table.from_batches(batches)
    assert got.schema == source.schema  # int64, double, string, bool, double with nulls
    assert got.equals(source)
    assert stream.stats.messages == 2500 and stream.stats.redelivered == 0


def test_a_batch_is_acknowledged_only_when_the_next_is_requested(client, key):
    write_stream(url(key), table(30))
    stream = datakiln.read_stream(url(key, group="g"), batch_size=10)
    batches = stream.iter_batches()
    next(batches)
    assert client.xpending(key, "g")["pending"] == 10  # held, not acknowledged
    next(batches)
    assert client.xpending(key, "g")["pending"] == 10  # the first acked, the second held
    stream.commit()
    assert client.xpending(key, "g")["pending"] == 0
    stream.close()


def test_restart_with_the_same_consumer_name_gets_its_pending_entries_first(client, key):
    write_stream(url(key), table(50))
    first = datakiln.read_stream(url(key, group="g", consumer="worker-1"), batch_size=20)
    held = next(first.iter_batches())  # "crash" while holding it: never acknowledged
    first.close()
    again = datakiln.read_stream(url(key, group="g", consumer="worker-1"), batch_size=20, with_ids=True)
    got = drain(again)
    assert got.column("seq").to_pylist()[:20] == held.column("seq").to_pylist()  # the same entries again
    assert sorted(got.column("seq").to_pylist()) == list(range(50))  # none lost
    assert again.stats.redelivered == 20
    assert client.xpending(key, "g")["pending"] == 0


def test_a_dead_consumers_entries_are_claimed_by_another(client, key):
    write_stream(url(key), table(40))
    dead = datakiln.read_stream(url(key, group="g", consumer="dead"), batch_size=15)
    taken = next(dead.iter_batches()).column("seq").to_pylist()
    dead.close()
    time.sleep(0.15)
    other = datakiln.read_stream(url(key, group="g", consumer="other", claim_idle_ms=100), batch_size=15)
    got = drain(other).column("seq").to_pylist()
    assert sorted(got) == list(range(40))
    assert set(taken) <= set(got) and other.stats.redelivered == len(taken)
    assert client.xpending(key, "g")["pending"] == 0


def test_replay_from_earliest_and_dedup_by_message_id(key):
    write_stream(url(key), table(25))
    plain = datakiln.read_stream(url(key, group="replay"), batch_size=10)
    assert drain(plain).num_rows == 25
    plain.seek("earliest")
    assert drain(plain).num_rows == 25  # replayed: at least once
    deduped = datakiln.read_stream(url(key, group="dedup"), batch_size=10, dedup=True)
    assert drain(deduped).num_rows == 25
    deduped.seek("earliest")
    assert list(deduped.iter_batches(idle_timeout_s=0.3)) == []  # all dropped; never a 0-row batch
    assert deduped.stats.duplicates_dropped == 25


def test_a_batch_closes_after_max_wait_ms_when_messages_trickle(key):
    write_stream(url(key), table(5))
    stream = datakiln.read_stream(url(key, group="g"), batch_size=1000, max_wait_ms=300)
    started = time.monotonic()
    batch = next(stream.iter_batches())
    elapsed = time.monotonic() - started
    assert batch.num_rows == 5
    assert 0.25 <= elapsed < 3.0  # waited for more up to max_wait_ms, then delivered what came


def test_producer_waits_while_the_group_lags_more_than_max_lag(client, key):
    client.xgroup_create(key, "slow", id="0", mkstream=True)
    source = table(1500)
    producer = threading.Thread(target=write_stream, args=(url(key, group="slow"), source),
                                kwargs={"max_lag": 100, "chunk_rows": 50})
    producer.start()
    stream = datakiln.read_stream(url(key, group="slow"), batch_size=50, max_wait_ms=50)
    seen, worst = 0, 0
    for batch in stream.iter_batches(idle_timeout_s=2.0):
        seen += batch.num_rows
        worst = max(worst, stream.lag() or 0)
        time.sleep(0.005)  # a slow consumer
    producer.join()
    assert seen == 1500
    assert worst <= 150  # max_lag + one chunk in flight, not the whole 1,500


def test_what_needs_the_end_is_refused(key):
    write_stream(url(key), table(5))
    stream = datakiln.read_stream(url(key, group="g"))
    for call in (stream.count, stream.to_arrow, stream.head, lambda: stream.loader(4, shuffle=True),
                 lambda: datakiln.split(stream, [0.8, 0.2]), lambda: stream.profile(),
                 lambda: datakiln.clean.Cleaner().fit(stream)):
        with pytest.raises(UnboundedStreamError, match="end"):
            call()
    assert isinstance(UnboundedStreamError("x"), TypeError)


def test_types_are_fixed_by_the_first_batch_and_bad_values_named_or_skipped(client, key):
    for i in range(5):
        client.xadd(key, {"age": i, "name": f"n{i}"})
    client.xadd(key, {"age": "forty", "name": "bad"})
    strict = datakiln.read_stream(url(key, group="strict"), batch_size=5)
    batches = strict.iter_batches()
    assert next(batches).schema.field("age").type == pa.int64()
    with pytest.raises(ParseError, match="age='forty'.*schema="):
        next(batches)
    lenient = datakiln.read_stream(url(key, group="lenient"), batch_size=3, on_error="skip")
    got = drain(lenient)
    assert got.column("age").to_pylist() == [0, 1, 2, 3, 4]
    assert lenient.stats.skipped == 1 and lenient.source.stats.bad_rows == 1
    typed = datakiln.read_stream(url(key, group="typed"), schema={"age": "string", "name": "string"})
    assert drain(typed).column("age").to_pylist()[-1] == "forty"


def test_window_profile_matches_numpy_on_the_last_rows(key):
    source = table(3000, seed=3)
    write_stream(url(key), source)
    stream = datakiln.read_stream(url(key, group="g"), batch_size=700)
    profile = stream.profile(window_rows=1000, idle_timeout_s=0.3)
    last = source.slice(2000)
    assert profile.rows == 1000
    assert profile["x"].mean == pytest.approx(float(np.mean(last.column("x").to_numpy())), rel=1e-9)
    assert profile["x"].min == pytest.approx(pc.min(last.column("x")).as_py())
    assert profile["maybe"].nulls == last.column("maybe").null_count
    window = stream.running_profile(window_seconds=0.5)
    window.update(source.slice(0, 10), now=0.0)
    window.update(source.slice(10, 10), now=1.0)  # the first part is older than 0.5 s
    assert window.rows == 10


def test_a_fitted_cleaner_applies_per_batch(key):
    source = table(600, seed=1)
    write_stream(url(key), source)
    from datakiln.clean import Cleaner
    from datakiln.clean.impute import Impute

    cleaner = Cleaner([Impute(strategy="median")]).fit(source)
    expected = cleaner.transform(source).to_arrow()
    stream = datakiln.read_stream(url(key, group="g"), batch_size=250).clean(cleaner)
    got = drain(stream)
    assert got.column("maybe").null_count == 0
    assert got.equals(expected)


def test_loader_yields_numpy_batches_for_online_learning(key):
    write_stream(url(key), table(260))
    stream = datakiln.read_stream(url(key, group="g"))
    loader = stream.loader(100, columns=["seq", "x"], idle_timeout_s=0.3)
    sizes, seqs = [], []
    for batch in loader:
        assert set(batch) == {"seq", "x"} and batch["x"].dtype == np.float64
        sizes.append(len(batch["seq"]))
        seqs.extend(batch["seq"].tolist())
    assert sizes == [100, 100, 60] and seqs == list(range(260))


def test_unreachable_server_is_a_message_without_the_password():
    with pytest.raises(ConnectionFailedError, match="cannot reach Redis") as info:
        datakiln.read_stream("redis://user:s3cret-pw@127.0.0.1:1/0?stream=x")
    assert "s3cret-pw" not in str(info.value)


def test_bad_urls_say_what_to_write():
    with pytest.raises(InvalidArgumentError, match=r"\?stream="):
        datakiln.read_stream(HOST)
    with pytest.raises(UnsupportedFormatError, match="Kafka"):
        datakiln.read_stream("kafka://broker:9092/topic")
