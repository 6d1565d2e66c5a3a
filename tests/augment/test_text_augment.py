"""Text augmentation (EDA ops): counts per rate, stop words, WordNet, determinism, replay."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datakiln.augment import Compose, OneOf, RandomApply, SampleRandom
from datakiln.augment._tokenize import STOP_WORDS, WordTokenizer, make_tokenizer
from datakiln.augment._wordnet import synonyms
from datakiln.augment.text import (
    EDA,
    RandomDelete,
    RandomInsert,
    RandomSwap,
    SynonymReplace,
    TextBatch,
    augment_copies,
)
from datakiln.errors import InvalidArgumentError, MissingDependencyError

WORDS = WordTokenizer()
#: a lexicon whose every word has exactly one one-word synonym, so changes are countable
LEXICON = {f"w{i}": [f"s{i}"] for i in range(100)}


def words_of(text: str) -> list[str]:
    return WORDS.split(text)[0]


def numbered(length: int) -> str:
    return " ".join(f"w{i}" for i in range(length))


def expected(rate: float, length: int) -> int:
    return 0 if rate == 0 or length == 0 else max(1, int(np.floor(rate * length + 0.5)))


@pytest.mark.parametrize("rate", [0.05, 0.1, 0.25, 0.5])
@pytest.mark.parametrize("length", [1, 4, 9, 10, 23, 60])
def test_synonym_replace_changes_exactly_n_words(rate: float, length: int) -> None:
    texts = [numbered(length)] * 20
    out = SynonymReplace(rate, lexicon=LEXICON)(TextBatch(texts, np.arange(20)), seed=3)
    for text in out.texts:
        changed = [a != b for a, b in zip(words_of(texts[0]), words_of(text))]
        assert len(words_of(text)) == length
        assert sum(changed) == expected(rate, length)
        assert all(b == a.replace("w", "s") for a, b in zip(words_of(texts[0]), words_of(text)) if a != b)


@pytest.mark.parametrize("rate", [0.1, 0.3])
@pytest.mark.parametrize("length", [2, 8, 31])
def test_insert_adds_exactly_n_synonyms(rate: float, length: int) -> None:
    text = numbered(length)
    out = RandomInsert(rate, lexicon=LEXICON)(TextBatch([text] * 10, np.arange(10)), seed=1)
    for result in out.texts:
        words = words_of(result)
        assert len(words) == length + expected(rate, length)
        extra = [w for w in words if w.startswith("s")]
        assert len(extra) == expected(rate, length)
        assert [w for w in words if w.startswith("w")] == words_of(text)  # order kept


def test_swap_changes_two_positions_per_swap_and_keeps_the_words() -> None:
    text = numbered(10)  # rate 0.1 of 10 words: exactly one swap
    out = RandomSwap(0.1)(TextBatch([text] * 30, np.arange(30)), seed=0)
    for result in out.texts:
        assert sorted(words_of(result)) == sorted(words_of(text))
        assert sum(a != b for a, b in zip(words_of(text), words_of(result))) == 2
    many = RandomSwap(0.5)(TextBatch([numbered(20)], [0])).texts[0]
    assert sorted(words_of(many)) == sorted(words_of(numbered(20)))


def test_delete_rate_matches_p_and_never_empties() -> None:
    texts = [numbered(50)] * 200
    out = RandomDelete(0.2)(TextBatch(texts, np.arange(200)), seed=5)
    kept = np.array([len(words_of(t)) for t in out.texts])
    assert abs(1 - kept.mean() / 50 - 0.2) < 0.015  # 10,000 Bernoulli(0.2) draws
    everything = RandomDelete(1.0)(TextBatch(["a b c", "one"], [0, 1])).texts
    assert len(words_of(everything[0])) == 1 and everything[1] == "one"


def test_stop_words_are_never_replaced() -> None:
    text = "The cat and the dog were in a house with my happy child"
    out = SynonymReplace(1.0)(TextBatch([text] * 40, np.arange(40)), seed=2)
    original = words_of(text)
    for result in out.texts:
        new = words_of(result)
        assert len(new) >= len(original)
        # stop words stay where they were (multi-word synonyms only shift what follows them)
        changed = [w for w in original if w.lower() not in STOP_WORDS]
        assert any(w not in result for w in changed)
        for word in original:
            if word.lower() in STOP_WORDS:
                assert word in new
    only_stop = "the and of in it"
    assert SynonymReplace(1.0)(TextBatch([only_stop], [0])).texts == [only_stop]
    custom = SynonymReplace(1.0, stop_words=["w1"], lexicon=LEXICON)(TextBatch(["w1 w2"], [0]))
    assert custom.texts == ["w1 s2"]


def test_synonyms_come_from_wordnet() -> None:
    assert set(synonyms("happy")) == {"felicitous", "glad", "well-chosen"}
    assert "film" in synonyms("movie") and "movie" not in synonyms("movie")
    assert "goose" not in synonyms("geese") and synonyms("geese") == synonyms("goose")  # morphy
    assert "true cat" in synonyms("cats")  # regular plural → cat
    assert synonyms("the") == () and synonyms("qwzx") == ()
    out = SynonymReplace(0.2)(TextBatch(["I am so happy"] * 10, np.arange(10)), seed=0)
    assert {t.split()[-1] for t in out.texts} <= {"felicitous", "glad", "well-chosen"}
    assert SynonymReplace(0.2)(TextBatch(["HAPPY"], [0])).texts[0] in {"FELICITOUS", "GLAD", "WELL-CHOSEN"}
    assert SynonymReplace(0.2)(TextBatch(["Happy"], [0])).texts[0] in {"Felicitous", "Glad", "Well-chosen"}


def test_punctuation_and_spacing_survive() -> None:
    assert RandomDelete(0.5).apply(TextBatch(["Hello, big world!"], [0]), {"edits": [[2]]}).texts == \
        ["Hello, big!"]
    assert RandomDelete(0.5).apply(TextBatch(["Hello, big world!"], [0]), {"edits": [[0]]}).texts == \
        ["big world!"]
    assert RandomInsert(0.5).apply(TextBatch(["a b."], [0]), {"edits": [[(2, "x"), (0, "y")]]}).texts == \
        ["y a b x."]
    text = "  Well — it's 9:30,\nisn't it?  "
    assert RandomSwap(0.0)(TextBatch([text], [0])).texts == [text]
    assert words_of(text) == ["Well", "it's", "9", "30", "isn't", "it"]
    assert RandomSwap(0.5).apply(TextBatch(["a, b!"], [0]), {"edits": [[(0, 1)]]}).texts == ["b, a!"]


def test_same_row_same_result_in_any_batch() -> None:
    texts = [f"the quick brown fox {i} jumps over the lazy happy dog number {i}" for i in range(40)]
    ids = np.arange(100, 140)
    ops = [SynonymReplace(0.2), RandomInsert(0.2), RandomSwap(0.2), RandomDelete(0.2),
           Compose([RandomApply(SynonymReplace(0.3), p=0.5), OneOf([RandomSwap(0.2), RandomDelete(0.3)])])]
    for op in ops:
        whole = op(TextBatch(texts, ids), seed=7, epoch=2).texts
        order = np.random.default_rng(0).permutation(40)
        parts: dict[int, str] = {}
        for chunk in np.array_split(order, 6):
            got = op(TextBatch([texts[i] for i in chunk], ids[chunk]), seed=7, epoch=2).texts
            parts.update(zip(chunk.tolist(), got))
        assert [parts[i] for i in range(40)] == whole, op
        assert op(TextBatch(texts, ids), seed=8, epoch=2).texts != whole
        assert op(TextBatch(texts, ids), seed=7, epoch=3).texts != whole


def test_recorded_params_replay_exactly() -> None:
    texts = ["I love this happy little movie", "win a free car now", "see you at the station later"]
    batch = TextBatch(texts, [4, 5, 6])
    pipeline = Compose([SynonymReplace(0.3), RandomApply(RandomInsert(0.3), p=0.7),
                        OneOf([RandomSwap(0.3), RandomDelete(0.3)])])
    out, params = pipeline.forward(batch, SampleRandom(batch.row_ids, seed=1))
    assert pipeline.apply(batch, params).texts == out.texts
    assert out.texts != texts
    op = SynonymReplace(0.5)
    recorded = op.make_params(SampleRandom([4, 5, 6], seed=1), batch)
    assert all(isinstance(p, int) and isinstance(w, str) for row in recorded["edits"] for p, w in row)
    assert op.apply(batch, recorded).texts == op.apply(batch, recorded).texts


def test_nulls_and_empty_texts_pass_through() -> None:
    batch = TextBatch([None, "", "   ", "word"], [0, 1, 2, 3], labels=[1, 0, 1, 0])
    for op in (SynonymReplace(0.5), RandomInsert(0.5), RandomSwap(0.5), RandomDelete(0.5)):
        out = op(batch)
        assert out.texts[:3] == [None, "", "   "]
        assert out.labels.tolist() == [1, 0, 1, 0]


def test_eda_copies_share_operations_and_are_keyed_by_row_and_copy() -> None:
    texts = [numbered(20)] * 12
    eda = EDA(0.1, 0.1, 0.1, 0.3, n_aug=8, lexicon=LEXICON)  # p_rd 0.3: never 0 of 20 deleted here
    out = eda.augment(texts, labels=np.arange(12) % 2, seed=4)
    assert len(out) == 96 and out.row_ids.tolist() == np.repeat(np.arange(12), 8).tolist()
    assert out.copies.tolist() == list(range(8)) * 12
    assert out.labels.tolist() == np.repeat(np.arange(12) % 2, 8).tolist()
    kinds = []
    for text in out.texts:
        words = words_of(text)
        if len(words) > 20:
            kinds.append("insert")
        elif len(words) < 20:
            kinds.append("delete")
        elif any(w.startswith("s") for w in words):
            kinds.append("synonym")
        else:
            kinds.append("swap")
    for row in range(12):  # each row: every operation twice (8 copies, 4 operations)
        row_kinds = kinds[row * 8:(row + 1) * 8]
        assert sorted(row_kinds) == sorted(["insert", "delete", "synonym", "swap"] * 2)
    # rows 3..5 alone: the same copies as in the full batch
    sub = eda.augment(texts[3:6], row_ids=[3, 4, 5], seed=4)
    assert sub.texts == out.texts[24:48]
    with_originals = EDA(0.1, 0, 0, 0, n_aug=2, include_original=True, lexicon=LEXICON).augment(["w1 w2"])
    assert with_originals.texts[0] == "w1 w2" and with_originals.copies.tolist() == [-1, 0, 1]
    with pytest.raises(InvalidArgumentError, match="non-zero rate"):
        EDA(0, 0, 0, 0)


def test_augment_copies_differ_per_copy_and_replay_per_row() -> None:
    batch = TextBatch([numbered(30), numbered(30)], [0, 1])
    out = augment_copies(RandomSwap(0.1), batch, 5, seed=2)
    assert len(out) == 10 and len(set(out.texts[:5])) == 5
    again = augment_copies(RandomSwap(0.1), batch.subset(np.array([1])), 5, seed=2)
    assert again.texts == out.texts[5:]


def test_chinese_with_jieba() -> None:
    text = "我们今天去公园散步，天气非常好。明天我们一起去图书馆看书吧！"
    tokenizer = make_tokenizer("jieba")
    words, gaps = tokenizer.split(text)
    assert len(words) >= 10 and "".join(g + w for g, w in zip(gaps, words)) + gaps[-1] == text
    assert "，" in "".join(gaps) and "公园" in words
    batch = TextBatch([text] * 6, np.arange(6))
    swapped = RandomSwap(0.2, tokenizer="jieba")(batch, seed=1).texts
    for result in swapped:
        assert result != text and sorted(result) == sorted(text)  # same characters, new order
    deleted = RandomDelete(0.3, tokenizer="jieba")(batch, seed=1).texts
    for result in deleted:
        assert len(result) < len(text) and set(result) <= set(text)
    insert = RandomInsert(0.2, tokenizer="jieba")
    inserted, params = insert.forward(batch, SampleRandom(batch.row_ids, seed=1))
    for result, edits in zip(inserted.texts, params["edits"]):
        assert len(edits) == expected(0.2, len(words))
        assert {w for _, w in edits} <= set(words) - STOP_WORDS  # copies of the text's own words
        assert len(result) == len(text) + sum(len(w) for _, w in edits) and " " not in result
    lexicon = {"公园": ["花园"], "图书馆": ["书馆"]}
    replaced = SynonymReplace(0.5, tokenizer="jieba", lexicon=lexicon)(batch, seed=1).texts
    assert all("花园" in r and "书馆" in r for r in replaced)


def test_bad_arguments_are_clear_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidArgumentError, match="rate"):
        SynonymReplace(1.5)
    with pytest.raises(InvalidArgumentError, match="tokenizer"):
        RandomSwap(0.1, tokenizer=42)
    with pytest.raises(InvalidArgumentError, match="one row id per text"):
        TextBatch(["a", "b"], [0])
    with pytest.raises(InvalidArgumentError, match="list of strings"):
        RandomSwap(0.1, tokenizer=lambda t: 5)(TextBatch(["a b"], [0]))
    with pytest.raises(InvalidArgumentError, match="positive integer"):
        augment_copies(RandomSwap(0.1), TextBatch(["a"], [0]), 0)
    import datakiln._optional as optional

    real = optional.importlib.import_module

    def fake(name: str, *args: object) -> object:
        if name == "jieba":
            raise ImportError("no jieba")
        return real(name, *args)

    monkeypatch.setattr(optional.importlib, "import_module", fake)
    with pytest.raises(MissingDependencyError, match="text"):
        make_tokenizer("jieba")


def test_callable_tokenizer_keeps_gaps() -> None:
    op = RandomSwap(0.5, tokenizer=lambda t: t.split("|"))
    assert op.apply(TextBatch(["ab|cd"], [0]), {"edits": [[(0, 1)]]}).texts == ["cd|ab"]


@given(st.text(max_size=200))
@settings(max_examples=200, deadline=None)
def test_words_and_gaps_rebuild_any_text(text: str) -> None:
    words, gaps = WORDS.split(text)
    assert len(gaps) == len(words) + 1
    assert "".join(g + w for g, w in zip(gaps, words)) + gaps[-1] == text
    batch = TextBatch([text], [0])
    swapped = RandomSwap(0.5)(batch, seed=1).texts[0]
    assert sorted(words_of(swapped)) == sorted(words)
    assert len(words_of(RandomDelete(0.5)(batch, seed=1).texts[0])) <= max(len(words), 0)


def test_op_strings_build_text_and_table_ops() -> None:
    from datakiln.augment import parse_ops
    from datakiln.augment.tabular import GaussianJitter, TabularMixUp

    ops = parse_ops("synonym:0.1; insert:0.2,p=0.5; swap:0.3; delete:0.4; table_jitter:0.05,spread=iqr; "
                    "table_mixup:0.2").ops
    assert isinstance(ops[0], SynonymReplace) and ops[0].rate == 0.1
    assert isinstance(ops[1], RandomApply) and ops[1].p == 0.5 and ops[1].op.rate == 0.2
    assert ops[2].rate == 0.3 and isinstance(ops[3], RandomDelete) and ops[3].p == 0.4
    assert isinstance(ops[4], GaussianJitter) and ops[4].spread == "iqr" and isinstance(ops[5], TabularMixUp)
    eda = parse_ops("eda:0.05,n_aug=16").ops[0]
    assert (eda.alpha_sr, eda.alpha_ri, eda.alpha_rs, eda.p_rd, eda.n_aug) == (0.05, 0.05, 0.05, 0.05, 16)
    assert parse_ops("swap:0.1,tokenizer=jieba").ops[0].tokenizer.name == "jieba"
    with pytest.raises(InvalidArgumentError, match="rate"):
        parse_ops("synonym:1.5")
    with pytest.raises(InvalidArgumentError, match="no argument 'alpha'"):
        parse_ops("synonym:alpha=0.1")
