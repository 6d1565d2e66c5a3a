"""Online learning from a Redis stream: SGDClassifier.partial_fit on Adult rows as they arrive.

A producer thread writes the Adult training rows into a Redis stream (waiting whenever the
consumer group lags more than 5,000 messages: back-pressure); the consumer reads them with
``datakiln.read_stream`` in batches of 500, each acknowledged when the next is requested,
and prints the accuracy on the Adult test split as it learns.

    redis-server &                       # .ci/run starts one when none is running
    python examples/stream_sgd.py        # full Adult from ../shared, else the packaged 5,000-row sample

The encoders are fitted on the first batch (a stream has no end to fit on); categories
first seen later are ignored by the one-hot encoder rather than breaking the model.
"""

from __future__ import annotations

import argparse
import threading
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import SGDClassifier
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import datakiln
from datakiln.io.streams import write_stream

COLUMNS = ["age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
           "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week",
           "native-country", "income"]
NUMERIC = ["age", "education-num", "capital-gain", "capital-loss", "hours-per-week"]
CATEGORICAL = ["workclass", "marital-status", "occupation", "relationship", "race", "sex"]
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "adult"


def adult() -> tuple[pa.Table, pa.Table, str]:
    """(train, test, where from): the full files beside the repository, else the packaged sample."""
    if (SHARED / "adult-train.csv").exists():
        train = datakiln.read(SHARED / "adult-train.csv", names=COLUMNS).to_arrow()
        test = datakiln.read(SHARED / "adult-test.csv", names=COLUMNS).to_arrow()
        return train, test, str(SHARED)
    sample = Path(datakiln.__file__).parent / "data" / "adult_sample.csv"
    table = datakiln.read(sample, names=COLUMNS).to_arrow()
    return table.slice(0, 4000), table.slice(4000), f"{sample} (4,000 train / 1,000 test rows)"


def labels(income: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """1 for '>50K' (the test file writes '>50K.')."""
    return pc.starts_with(income, ">50K").to_numpy(zero_copy_only=False).astype(np.int64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()

    train, test, where = adult()
    print(f"Adult from {where}: {train.num_rows:,} rows to stream, {test.num_rows:,} test rows")
    key = f"adult-{uuid.uuid4().hex[:8]}"
    url = f"{args.redis}?stream={key}&group=sgd"
    datakiln.io.streams.open_stream(url).close()  # create the group first, so lag can be measured
    order = np.random.default_rng(0).permutation(train.num_rows)  # arrival order: shuffled once
    producer = threading.Thread(target=write_stream, args=(url, train.take(pa.array(order))),
                                kwargs={"max_lag": 5000, "chunk_rows": 500}, daemon=True)
    producer.start()

    prep = ColumnTransformer([("num", StandardScaler(), NUMERIC),
                              ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)])
    model = SGDClassifier(loss="log_loss", alpha=1e-4, random_state=0)
    test_frame, test_y = test.select(NUMERIC + CATEGORICAL).to_pandas(), labels(test.column("income"))
    stream = datakiln.read_stream(url, batch_size=args.batch, schema={c: train.schema.field(c).type
                                                                       for c in COLUMNS})
    seen, fitted = 0, False
    try:
        for step, batch in enumerate(stream.loader(args.batch, format="pandas", idle_timeout_s=2.0)):
            y = labels(pa.array(batch["income"]))
            if not fitted:  # the first batch fits the encoders
                prep.fit(batch[NUMERIC + CATEGORICAL])
                fitted = True
            model.partial_fit(prep.transform(batch[NUMERIC + CATEGORICAL]), y, classes=[0, 1])
            seen += len(batch)
            if step % 10 == 0:
                accuracy = model.score(prep.transform(test_frame), test_y)
                print(f"{seen:>7,} rows learned   test accuracy {accuracy:.4f}   lag {stream.lag()}")
        stream.commit()
        accuracy = model.score(prep.transform(test_frame), test_y)
        print(f"{seen:>7,} rows learned   test accuracy {accuracy:.4f} (final; majority class "
              f"{max(test_y.mean(), 1 - test_y.mean()):.4f})")
        print(f"stream: {stream.stats.to_dict()}")
    finally:
        stream.close()
        producer.join(timeout=5)
        import redis

        redis.Redis.from_url(args.redis).delete(key)


if __name__ == "__main__":
    main()
