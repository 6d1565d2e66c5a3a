"""text="ngram" on the full SMS Spam collection: the 8-gram copy check and sampling speed.

Fits ``GaussianCopula(text="ngram", text_condition="label")`` on a fixed stratified 80% of
the messages (seed 0), samples 10,000 rows three times (median seconds), and prints the
share of synthetic word 8-grams found in the training text beside the 20% holdout's own
share, verbatim copies, and the rate of spam-typical words per sampled class. The last line
is the headline ratio: synthetic 8-gram share / holdout 8-gram share (the peer is real,
unseen text).

Run: ``python benchmarks/text_ngram.py`` (needs ``../shared/datasets/sms_spam``).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import datakiln
from datakiln.evaluation._ngram_overlap import ngram_overlap
from datakiln.synth import GaussianCopula
from datakiln.synth._ngram import text_hash, tokenize

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "sms_spam" / "SMSSpamCollection"
SPAM_WORDS = {"free", "call", "txt", "claim", "prize", "mobile"}


def _rate(texts: list[str]) -> float:
    return float(np.mean([bool(SPAM_WORDS & {t.lower() for t in tokenize(x)}) for x in texts]))


def main() -> None:
    rows = [line.split("\t", 1) for line in DATA.read_text(encoding="utf-8").splitlines()]
    table = pa.table({"label": [r[0] for r in rows], "message": [r[1] for r in rows]})
    rng = np.random.default_rng(0)
    held = np.zeros(table.num_rows, dtype=bool)
    for label in ("ham", "spam"):
        where = np.flatnonzero(np.asarray(table["label"].to_pylist()) == label)
        held[rng.choice(where, size=len(where) // 5, replace=False)] = True
    train, holdout = table.filter(pa.array(~held)), table.filter(pa.array(held))
    started = time.perf_counter()
    model = GaussianCopula(text="ngram", text_condition="label", seed=0).fit(train)
    fit_s = time.perf_counter() - started
    times, synthetic = [], None
    for seed in range(3):
        started = time.perf_counter()
        synthetic = model.sample(10_000, seed=seed)
        times.append(time.perf_counter() - started)
    found = ngram_overlap(datakiln.from_arrow(train), datakiln.from_arrow(synthetic), "message", None,
                          holdout=datakiln.from_arrow(holdout))
    training = {text_hash(tokenize(t)) for t in train["message"].to_pylist()}
    copies = sum(text_hash(tokenize(t)) in training for t in synthetic["message"].to_pylist())
    held_copies = sum(text_hash(tokenize(t)) in training for t in holdout["message"].to_pylist())

    def rates(t: pa.Table, label: str) -> float:
        return _rate(t.filter(pc.equal(t["label"], label))["message"].to_pylist())

    print(f"SMS Spam: {train.num_rows:,} training / {holdout.num_rows:,} holdout messages; "
          f"fit {fit_s:.2f} s; 10,000 sampled rows in {statistics.median(times):.2f} s (median of 3)")
    print("| text | 8-gram share in training | verbatim training texts | spam-word rate spam | ham |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print(f"| synthetic (10,000) | {found['ngram8_share']:.2%} | {copies / synthetic.num_rows:.2%} | "
          f"{rates(synthetic, 'spam'):.1%} | {rates(synthetic, 'ham'):.1%} |")
    print(f"| holdout ({holdout.num_rows:,}) | {found['ngram8_holdout_share']:.2%} | "
          f"{held_copies / holdout.num_rows:.2%} | {rates(holdout, 'spam'):.1%} | "
          f"{rates(holdout, 'ham'):.1%} |")
    print(f"headline: synthetic / holdout 8-gram share = "
          f"{found['ngram8_share'] / found['ngram8_holdout_share']:.2f}x")


if __name__ == "__main__":
    main()
