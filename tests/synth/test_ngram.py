"""text="ngram": a word n-gram model per text column, conditioned on the label, fitted on the
vendored SMS Spam sample (tests/data/sms_spam/sms-1500.tsv: 1,285 ham, 215 spam)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from tests.conftest import sample_dataset

import datakiln
from datakiln.errors import InvalidArgumentError, ModelFormatError
from datakiln.evaluation._ngram_overlap import gram_hashes, ngram_overlap
from datakiln.synth import GaussianCopula, load, read_model, write_model
from datakiln.synth._ngram import RARE, NgramText, text_hash, tokenize

SPAM_WORDS = {"free", "call", "txt", "claim", "prize", "mobile"}


@pytest.fixture(scope="module")
def sms() -> tuple[pa.Table, pa.Table]:
    """(training rows: the first 1,200; holdout: the last 300) as label/message tables."""
    lines = sample_dataset("sms_spam/sms-1500.tsv").read_text(encoding="utf-8").splitlines()
    rows = [line.split("\t", 1) for line in lines]
    table = pa.table({"label": [r[0] for r in rows], "message": [r[1] for r in rows]})
    return table.slice(0, 1200), table.slice(1200)


@pytest.fixture(scope="module")
def fitted(sms) -> NgramText:
    train = sms[0]
    model = NgramText(min_count=3)
    for start in range(0, train.num_rows, 250):  # streamed in batches
        part = train.slice(start, 250)
        model.update(part["message"].to_pylist(), part["label"].to_pylist())
    return model.finish()


def _rate(texts: list[str]) -> float:
    """Share of texts holding at least one spam-typical word."""
    return float(np.mean([bool(SPAM_WORDS & {t.lower() for t in tokenize(x)}) for x in texts]))


def test_spam_conditioned_samples_use_spam_words_far_more_than_ham(fitted, sms):
    rng = np.random.default_rng(0)
    spam = fitted.sample(2000, rng, ["spam"] * 2000).to_pylist()
    ham = fitted.sample(2000, rng, ["ham"] * 2000).to_pylist()
    assert fitted.classes_ == ["ham", "spam"]
    real = {c: [m for m, lab in zip(sms[0]["message"].to_pylist(), sms[0]["label"].to_pylist()) if lab == c]
            for c in ("ham", "spam")}
    assert _rate(real["spam"]) > 0.6 and _rate(real["ham"]) < 0.15  # what the data says
    assert _rate(spam) > 0.5, _rate(spam)
    assert _rate(ham) < 0.15, _rate(ham)
    assert _rate(spam) > 4 * _rate(ham)
    # lengths follow each class: spam messages are longer in tokens
    assert np.mean([len(tokenize(t)) for t in spam]) > 1.5 * np.mean([len(tokenize(t)) for t in ham])


def test_no_generated_text_equals_a_training_text(fitted, sms):
    texts = fitted.sample(5000, np.random.default_rng(1), ["ham"] * 4000 + ["spam"] * 1000).to_pylist()
    training = set(sms[0]["message"].to_pylist())
    normalised = {text_hash(tokenize(t)) for t in training}
    assert not training & set(texts)
    assert not normalised & {text_hash(tokenize(t)) for t in texts}
    assert fitted.hashes_.dtype == np.uint64 and fitted.hashes_.size == len(normalised)


def test_rare_tokens_become_the_placeholder(fitted, sms):
    counts: dict[str, int] = {}
    for text in sms[0]["message"].to_pylist():
        for token in tokenize(text):
            counts[token] = counts.get(token, 0) + 1
    rare = {t for t, c in counts.items() if c < 3}
    texts = fitted.sample(3000, np.random.default_rng(2)).to_pylist()
    assert sum(RARE in x for x in texts) > 100  # the placeholder stands in for them
    emitted = {t for x in texts for t in tokenize(x.replace(RARE, " "))}
    assert rare and not (rare & emitted)
    assert RARE not in fitted.vocab_ and min(counts[t] for t in fitted.vocab_) >= 3


def test_unknown_and_missing_classes_use_the_pooled_model(fitted):
    texts = fitted.sample(200, np.random.default_rng(3), [None, "nope"] * 100).to_pylist()
    assert all(isinstance(t, str) for t in texts) and len(set(texts)) > 150


def test_8gram_share_of_generated_text_stays_near_the_holdouts(sms):
    train, holdout = sms
    model = GaussianCopula(text="ngram", text_condition="label", seed=0).fit(train)
    synthetic = model.sample(1000, seed=4)
    found = ngram_overlap(datakiln.from_arrow(train), datakiln.from_arrow(synthetic), "message", None,
                          holdout=datakiln.from_arrow(holdout))
    assert found["ngram8_grams"] > 2000
    assert found["ngram8_holdout_share"] is not None
    assert found["ngram8_share"] <= found["ngram8_holdout_share"] + 0.05, found
    # a copier is caught: the training texts themselves share every 8-gram
    again = ngram_overlap(datakiln.from_arrow(train), datakiln.from_arrow(train), "message", None)
    assert again["ngram8_share"] == 1.0


def test_8gram_hashes_stay_inside_one_text():
    one = gram_hashes(["a b c d e f g h", None, "i j k l m n o p q"], {})
    assert one.size == 1 + 2  # 8 tokens: one 8-gram; 9 tokens: two; none across texts
    assert gram_hashes(["A B C D E F G H"], {})[0] == one[0]  # case folded


def test_evaluate_reports_and_renders_the_8gram_check(sms, tmp_path):
    train, holdout = sms
    synthetic = GaussianCopula(text="ngram", text_condition="label", seed=0).fit(train).sample(400, seed=5)
    report = datakiln.evaluate(train, synthetic, holdout=holdout, detection=False,
                               metadata={"message": "text"})
    found = report.privacy["text_copies"]["message"]
    assert found["copies"] == 0 and found["ngram8_flagged"] is False
    assert 0 <= found["ngram8_share"] <= found["ngram8_holdout_share"] + 0.05
    report.to_html(tmp_path / "r.html")
    assert "8-gram share" in (tmp_path / "r.html").read_text(encoding="utf-8")


def test_copula_samples_are_deterministic_and_survive_save_and_load(sms, tmp_path):
    train = sms[0]
    model = GaussianCopula(text="ngram", text_condition="label", seed=0).fit(train)
    first = model.sample(300, seed=7)
    assert first.equals(model.sample(300, seed=7))
    assert not first.equals(model.sample(300, seed=8))
    assert first.schema == train.schema
    spam = first.filter(pa.compute.equal(first["label"], "spam"))["message"].to_pylist()
    ham = first.filter(pa.compute.equal(first["label"], "ham"))["message"].to_pylist()
    assert _rate(spam) > 3 * _rate(ham)  # the text follows each row's sampled label
    model.save(tmp_path / "m.kiln")
    again = load(tmp_path / "m.kiln")
    assert again.sample(300, seed=7).equals(first)
    assert again.summary()["columns"]["message"]["output"] == "word n-gram text"
    refit = GaussianCopula(text="ngram", text_condition="label", seed=0).fit(train)
    assert refit.sample(300, seed=7).equals(first)


@pytest.mark.parametrize("field, edit", [
    ("n", lambda s, a: s.update(n=9)),
    ("vocab", lambda s, a: s.update(vocab=s["vocab"] + s["vocab"][:1])),
    ("backoff", lambda s, a: s.update(backoff=2.0)),
    ("ng0_hashes", lambda s, a: a.update(ng0_hashes=a["ng0_hashes"][::-1].copy())),
    ("ng0_m1_o3_tok", lambda s, a: a.update(ng0_m1_o3_tok=a["ng0_m1_o3_tok"] + 10**6)),
    ("ng0_m0_o2_start", lambda s, a: a.update(ng0_m0_o2_start=a["ng0_m0_o2_start"][:-1].copy())),
    ("ng0_m0_o1_count", lambda s, a: a.update(ng0_m0_o1_count=-a["ng0_m0_o1_count"])),
    ("ng0_m1_lengths", lambda s, a: a.pop("ng0_m1_lengths")),
])
def test_tampered_ngram_fields_are_refused(sms, tmp_path, field, edit):
    path = tmp_path / "m.kiln"
    GaussianCopula(text="ngram", text_condition="label", seed=0).fit(sms[0]).save(path)
    data = read_model(path)
    edit(data.payload["state"]["ngram"]["message"], data.arrays)
    write_model(path, data, overwrite=True)  # a deliberate edit: checksums recomputed
    with pytest.raises(ModelFormatError, match=field):
        load(path)


def test_ngram_state_without_ngram_text_is_refused(sms, tmp_path):
    path = tmp_path / "m.kiln"
    GaussianCopula(text="ngram", seed=0).fit(sms[0]).save(path)
    data = read_model(path)
    data.payload["params"]["text"] = "fake"
    write_model(path, data, overwrite=True)
    with pytest.raises(ModelFormatError):
        load(path)


def test_text_condition_must_be_a_categorical_column(sms):
    with pytest.raises(InvalidArgumentError, match="categorical column"):
        GaussianCopula(text="ngram", text_condition="message").fit(sms[0])
    with pytest.raises(InvalidArgumentError, match="needs text='ngram'"):
        GaussianCopula(text="fake", text_condition="label").fit(sms[0])
    with pytest.raises(InvalidArgumentError, match="'ngram'"):
        GaussianCopula(text="markov").fit(sms[0])


def test_cli_fit_text_ngram(sms, tmp_path):
    from typer.testing import CliRunner

    from datakiln.cli.app import app

    datakiln.from_arrow(sms[0]).write(tmp_path / "sms.parquet")
    result = CliRunner().invoke(app, ["synth", "fit", str(tmp_path / "sms.parquet"), "-o",
                                      str(tmp_path / "m.kiln"), "--text", "ngram",
                                      "--text-condition", "label"])
    assert result.exit_code == 0, result.output
    assert "word n-gram text" in " ".join(result.output.split())
    sample = load(tmp_path / "m.kiln").sample(50, seed=1)
    assert sample.column_names == ["label", "message"] and sample["message"].null_count == 0
    bad = CliRunner().invoke(app, ["synth", "fit", str(tmp_path / "sms.parquet"), "-o",
                                   str(tmp_path / "m2.kiln"), "--text", "ngram", "--text-condition", "nope"])
    assert bad.exit_code == 2 and "text_condition" in bad.output
