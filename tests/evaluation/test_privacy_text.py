"""Privacy: the exact-copy row check hashes every shared column, free text included; the
distance checks use the compared columns and say so in their flags."""

from __future__ import annotations

import csv

import numpy as np
import pyarrow as pa
import pytest
from tests.conftest import shared_dataset

import datakiln


def _messages(prefix: str, n: int) -> list[str]:
    return [f"{prefix} message {i}: see you at {i % 12} o'clock" for i in range(n)]


def _labelled(n: int = 200, prefix: str = "real") -> pa.Table:
    labels = ["spam" if i % 7 == 0 else "ham" for i in range(n)]
    return pa.table({"label": labels, "message": _messages(prefix, n)})


def test_new_texts_with_real_labels_are_not_row_copies():
    """9ae0d08 hashed only `label` here and reported 100% exact copies of a clean sample."""
    real = _labelled()
    synthetic = _labelled(prefix="new")  # the same labels row by row, every text new
    report = datakiln.evaluate(real, synthetic, detection=False, metadata={"message": "text"})
    privacy = report.privacy
    assert privacy["exact_copy_rate"] == 0.0 and privacy["exact_copies"] == 0
    assert privacy["synthetic_rows_checked"] == 200
    assert privacy["exact_copy_columns"] == ["label", "message"]
    assert privacy["distance_columns"] == ["label"]
    assert privacy["text_copies"]["message"]["copies"] == 0
    assert not privacy["flagged"], privacy["flags"]


def test_identical_rows_are_all_copies_and_flagged():
    real = _labelled()
    report = datakiln.evaluate(real, real, detection=False, metadata={"message": "text"})
    privacy = report.privacy
    assert privacy["exact_copy_rate"] == 1.0 and privacy["exact_copies"] == 200
    assert any("100.0% of synthetic rows are exact copies of training rows (equal in all 2 shared "
               "columns" in flag for flag in privacy["flags"]), privacy["flags"]


def test_a_copy_needs_every_value_to_match():
    real = _labelled()
    texts = real["message"].to_pylist()
    labels = real["label"].to_pylist()
    # rows 0-49: verbatim copies; 50-99: a real text under the other label; 100-199: new texts
    flipped = ["ham" if v == "spam" else "spam" for v in labels[50:100]]
    synthetic = pa.table({"label": labels[:50] + flipped + labels[100:],
                          "message": texts[:100] + _messages("new", 100)})
    holdout = pa.table({"label": labels[:40], "message": texts[:4] + _messages("held", 36)})
    report = datakiln.evaluate(real, synthetic, holdout=holdout, detection=False,
                               metadata={"message": "text"})
    privacy = report.privacy
    assert (privacy["exact_copies"], privacy["exact_copy_rate"]) == (50, 0.25)
    assert privacy["holdout_exact_copy_rate"] == 4 / 40  # the baseline over the same columns
    assert privacy["text_copies"]["message"]["copies"] == 100  # per-column check unchanged


def test_distance_flags_name_the_columns_they_leave_out():
    """Numbers copied under new texts: no row copy, but the distance checks (which leave
    the text out) see the memorised values, and their flags say on which columns."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=600)
    real = pa.table({"x": x[:400], "g": rng.choice(["a", "b"], 400), "note": _messages("real", 400)})
    synthetic = pa.table({"x": x[:400], "g": real["g"], "note": _messages("new", 400)})
    holdout = pa.table({"x": x[400:], "g": rng.choice(["a", "b"], 200), "note": _messages("held", 200)})
    report = datakiln.evaluate(real, synthetic, holdout=holdout, detection=False,
                               metadata={"note": "text"})
    privacy = report.privacy
    assert privacy["exact_copy_rate"] == 0.0
    assert privacy["dcr_share_closer_than_holdout"] > 0.95
    assert any("closer to the training data than the median holdout row on the compared columns "
               "('note' left out)" in flag for flag in privacy["flags"]), privacy["flags"]
    assert not any("exact copies" in flag for flag in privacy["flags"])


def test_sms_spam_copula_sample_has_no_row_copies():
    """Real data: on SMS Spam (label + message) a copula sample keeps labels, fakes messages."""
    import pandas as pd

    from datakiln.synth import GaussianCopula

    frame = pd.read_csv(shared_dataset("sms_spam/SMSSpamCollection"), sep="\t", header=None,
                        names=["label", "message"], quoting=csv.QUOTE_NONE, encoding="utf-8")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    rows = GaussianCopula().fit(table).sample(2_000, seed=0)
    report = datakiln.evaluate(table, rows, detection=False, sample_rows=2_000)
    assert report.privacy["exact_copy_columns"] == ["label", "message"]
    assert report.privacy["exact_copy_rate"] == 0.0  # 9ae0d08's label-only hash: 100%
    copied = datakiln.evaluate(table, table.slice(0, 500), detection=False, sample_rows=2_000)
    assert copied.privacy["exact_copy_rate"] == 1.0


def _people(n: int = 200, id_start: int = 0, mail: str = "real") -> pa.Table:
    return pa.table({"id": list(range(id_start, id_start + n)),
                     "email": [f"{mail}.person{i}@example.org" for i in range(n)],
                     "age": [20 + i % 50 for i in range(n)],
                     "plan": ["gold" if i % 3 == 0 else "basic" for i in range(n)]})


def test_memorised_rows_behind_new_ids_and_fake_pii_are_still_copies():
    """Synthesizers regenerate identifiers and fake PII: hashing them hid memorised rows."""
    real = _people()
    synthetic = _people(id_start=10_000, mail="fake")  # every other value memorised
    metadata = {"id": "identifier", "email": "pii"}
    privacy = datakiln.evaluate(real, synthetic, detection=False, metadata=metadata).privacy
    assert privacy["exact_copy_columns"] == ["age", "plan"]
    assert privacy["exact_copy_rate"] == 1.0
    assert privacy["text_copies"]["id"] == {**privacy["text_copies"]["id"], "kind": "identifier",
                                            "copies": 0}
    assert privacy["text_copies"]["email"]["copies"] == 0


def test_a_real_pii_value_in_synthetic_rows_is_flagged():
    real = _people()
    leaked = _people(id_start=10_000, mail="fake").to_pydict()
    leaked["email"][:20] = real["email"].to_pylist()[:20]  # 10% real addresses
    leaked["age"] = [(a + 7) % 90 for a in leaked["age"]]  # rows themselves are not copies
    privacy = datakiln.evaluate(real, pa.table(leaked), detection=False,
                                metadata={"id": "identifier", "email": "pii"}).privacy
    found = privacy["text_copies"]["email"]
    assert (found["kind"], found["copies"], found["values"]) == ("pii", 20, 200)
    assert found["flagged"]
    assert any("pii column 'email' are verbatim training values" in f for f in privacy["flags"])


def test_a_sample_with_text_and_pii_dropped_can_be_evaluated():
    """GaussianCopula(text="drop", pii="drop") leaves those columns out, and evaluate then
    refused the pair ('the synthetic data lacks the real columns ['msg']')."""
    from datakiln.synth import GaussianCopula

    rng = np.random.default_rng(0)
    n = 400
    words = np.array(["hello", "win", "cash", "now", "call", "me", "later", "ok"])
    real = pa.table({
        "msg": [" ".join(rng.choice(words, rng.integers(5, 12))) + f" #{i}" for i in range(n)],
        "email": [f"user{i}@example.org" for i in range(n)],
        "label": rng.choice(["ham", "spam"], n), "x": rng.normal(size=n)})
    sample = GaussianCopula(text="drop", pii="drop", seed=0).fit(real).sample(n, seed=1)
    assert sample.column_names == ["label", "x"]
    report = datakiln.evaluate(real, sample, target="label", detection=False)
    assert report.privacy["exact_copy_columns"] == ["label", "x"] and report.privacy["text_copies"] == {}
    assert 0 < report.fidelity["score"] <= 1
    with pytest.raises(datakiln.SchemaError, match=r"lacks the real columns \['x'\]"):
        datakiln.evaluate(real, sample.drop_columns(["x"]))  # a compared column is still needed
