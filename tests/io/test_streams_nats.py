"""read_stream over a real NATS JetStream (127.0.0.1:4222): durable pull consumers, redelivery."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid

import pyarrow as pa
import pytest
from tests.conftest import IN_CI

import datakiln
from datakiln.errors import ConnectionFailedError, SourceError
from datakiln.io.streams import write_stream

nats = pytest.importorskip("nats") if not IN_CI else __import__("nats")
HOST = "nats://127.0.0.1:4222"


@pytest.fixture(scope="module", autouse=True)
def server():
    try:
        socket.create_connection(("127.0.0.1", 4222), timeout=2).close()
    except OSError as exc:
        if IN_CI:
            pytest.fail(f"NATS must be reachable in CI: {exc}")
        pytest.skip(f"NATS at 127.0.0.1:4222 not reachable: {exc}")


async def _delete(name: str) -> None:
    nc = await nats.connect(HOST)
    try:
        await nc.jetstream().delete_stream(name)
    except Exception:
        pass
    await nc.close()


@pytest.fixture
def name():
    stream = f"DKTEST_{uuid.uuid4().hex[:10]}"
    yield stream
    asyncio.run(_delete(stream))


def rows(n: int) -> pa.Table:
    return pa.table({"seq": list(range(n)), "x": [i / 4 for i in range(n)],
                     "city": [["Zürich", "東京", "Lyon"][i % 3] for i in range(n)]})


def test_round_trip_through_a_durable_consumer(name):
    source = rows(1200)
    assert write_stream(f"{HOST}?stream={name}&subject={name.lower()}", source) == 1200
    stream = datakiln.read_stream(f"{HOST}?stream={name}&durable=trainer", batch_size=500)
    got = pa.Table.from_batches(list(stream.iter_batches(idle_timeout_s=0.5)))
    assert got.column("seq").to_pylist() == list(range(1200))
    assert got.column("city").to_pylist() == source.column("city").to_pylist()
    assert got.schema.field("x").type == pa.float64()
    assert stream.lag() == 0
    stream.seek(1001)  # replay from stream sequence 1001 (Kafka: seek to an offset)
    replayed = pa.Table.from_batches(list(stream.iter_batches(idle_timeout_s=0.5)))
    assert replayed.column("seq").to_pylist() == list(range(1000, 1200))
    stream.close()


def test_unacknowledged_messages_come_back_after_ack_wait(name):
    write_stream(f"{HOST}?stream={name}&subject={name.lower()}", rows(300))
    url = f"{HOST}?stream={name}&durable=trainer&ack_wait_s=1"
    crashed = datakiln.read_stream(url, batch_size=100)
    held = next(crashed.iter_batches()).column("seq").to_pylist()
    crashed.close()  # never acknowledged
    time.sleep(1.2)
    again = datakiln.read_stream(url, batch_size=100)
    seen = [s for b in again.iter_batches(idle_timeout_s=1.0) for s in b.column("seq").to_pylist()]
    again.close()
    assert sorted(set(seen)) == list(range(300))  # none lost
    assert set(held) <= set(seen) and again.stats.redelivered >= len(held)


def test_missing_stream_and_unreachable_server_are_messages(name):
    with pytest.raises(SourceError, match="no stream"):
        datakiln.read_stream(f"{HOST}?stream={name}")
    with pytest.raises(ConnectionFailedError, match="cannot reach NATS"):
        datakiln.read_stream("nats://127.0.0.1:1?stream=X")
