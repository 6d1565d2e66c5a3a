"""Does EDA text augmentation help a spam classifier? SMS Spam, baseline vs augmented, paired.

Protocol (fixed before the first run; nothing below was tuned on the holdout):

- Data: the SMS Spam Collection (5,574 messages) read with ``datakiln.read`` as a
  tab-separated file with ``quotechar=None`` (it has unescaped quotes). Exact duplicate
  messages are dropped (first kept: 5,160 remain, 642 spam) so that no holdout message is
  also a training message.
- One fixed stratified holdout of 20 % (``datakiln.split``, seed 18); the other 80 % is the
  pool the training subsets are drawn from.
- Training sizes N = 200, 500 and 2,000: stratified subsets of the pool
  (``train_test_split(..., stratify=..., random_state=seed)``).
- Augmentation: ``datakiln.augment.EDA`` with all four rates equal to alpha and ``n_aug``
  copies per message, the originals kept (as the EDA reference code does), at the settings
  of Wei & Zou (2019), "EDA: Easy Data Augmentation Techniques for Boosting Performance on
  Text Classification Tasks", EMNLP-IJCNLP, Table 3 ("recommended usage"): N = 500:
  alpha = 0.05, n_aug = 16; N = 2,000: alpha = 0.05, n_aug = 8. The table has no row below
  500, so N = 200 uses the N = 500 row (alpha = 0.05, n_aug = 16).
- Classifiers (fixed hyper-parameters):
  ``tfidf_lr``: scikit-learn TF-IDF (lower case, word 1-2 grams, sublinear tf) + logistic
  regression (C = 10, class_weight="balanced", liblinear);
  ``cnn``: a small torch text CNN (words and punctuation, at most 60 tokens, vocabulary of
  the training texts; 64-d embedding, 1-D convolutions of width 3 and 5 with 64 filters
  each, max-pooling over time, dropout 0.5, a linear output), class-weighted BCE, Adam
  (lr 2e-3), batches of 32, max(3 epochs, 400 steps), CPU, ``--threads`` torch threads.
  Its convolutions see word order, so swap and insertion act on it.
- Seeds 0..9 (``--seeds``): a seed draws the subset, the EDA copies, the network's
  initialisation and batch order. Baseline and augmented runs of a seed share the subset
  (and the initialisation seed): the differences are paired.
- Metric: F1 of the spam class on the holdout, in points (x100); accuracy is recorded too.
  Per (N, classifier): mean ± std over seeds, the paired difference (augmented - baseline)
  with a 95 % t interval over seeds.

The peer is the paper's own claim: about +3 points at N = 500 (its Table 2 averages
accuracy over five data sets and two models). The last line prints the N = 500 paired
difference per classifier against it.

Results go to ``--json`` after every (N, classifier, seed); a rerun resumes from it (the
protocol must match, extra seeds or sizes are added).

    flock /tmp/datakiln-heavy.lock python benchmarks/text_augment.py [--seeds 10] [--threads 1]
    python benchmarks/text_augment.py --quick --data tests/data/sms_spam/sms-300.tsv
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

import datakiln
from datakiln.augment import EDA
from datakiln.io.write import write_file_atomic

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "datasets" / "sms_spam" / "SMSSpamCollection"
JSON = REPO / "benchmarks" / "results" / "text_augment.json"
HOLDOUT_SEED = 18
HOLDOUT_SHARE = 0.2
SIZES = (500, 200, 2000)  # run in this order (the headline size first), shown sorted
QUICK_SIZES = (60,)
CLASSIFIERS = ("tfidf_lr", "cnn")
LABELS = {"tfidf_lr": "TF-IDF + LR", "cnn": "text CNN"}
PAPER_GAIN = 3.0  # points at N = 500 (Wei & Zou 2019, Table 2: average over data sets and models)
MARKER = "datakiln benchmarks/text_augment.py"
TOKEN = re.compile(r"\w+|[^\w\s]")
MAX_TOKENS = 60


def eda_setting(n: int) -> tuple[float, int]:
    """``(alpha, n_aug)`` of Wei & Zou (2019), Table 3, for ``n`` training texts.

    500 → (0.05, 16); 2,000 → (0.05, 8); 5,000 and more → (0.1, 4). Sizes between rows
    take the row at or above them (below 500: the 500 row).
    """
    if n <= 500:
        return 0.05, 16
    if n <= 2000:
        return 0.05, 8
    return 0.1, 4


# --------------------------------------------------------------------------- data


def load_messages(path: Path) -> tuple[list[str], np.ndarray]:
    """The messages and labels (1 = spam) of an SMS Spam TSV, read with datakiln, exact
    duplicate messages dropped (the first kept)."""
    table = datakiln.read(path, format="csv", delimiter="\t", header=False, names=["label", "message"],
                          quotechar=None).to_arrow()
    texts, labels, seen = [], [], set()
    for label, text in zip(table.column("label").to_pylist(), table.column("message").to_pylist()):
        if text is None or text in seen:
            continue
        seen.add(text)
        texts.append(text)
        labels.append(int(label == "spam"))
    return texts, np.asarray(labels, dtype=np.int64)


def holdout_split(labels: np.ndarray, seed: int = HOLDOUT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of the pool and of the fixed stratified holdout (``datakiln.split``)."""
    table = pa.table({"row": np.arange(labels.size), "label": labels.astype(str)})
    parts = datakiln.split(table, (1 - HOLDOUT_SHARE, HOLDOUT_SHARE), stratify="label", seed=seed,
                           names=["pool", "holdout"])
    rows = {name: np.sort(parts[name].to_arrow().column("row").to_numpy()) for name in ("pool", "holdout")}
    return rows["pool"], rows["holdout"]


def draw_subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Positions of a stratified subset of ``n`` rows (sorted)."""
    from sklearn.model_selection import train_test_split

    index = np.arange(labels.size)
    if n >= labels.size:
        return index
    chosen, _ = train_test_split(index, train_size=n, stratify=labels, random_state=seed)
    return np.sort(chosen)


def augment(texts: list[str], labels: np.ndarray, n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """The originals and their EDA copies at the paper's setting for ``n`` texts."""
    alpha, n_aug = eda_setting(n)
    eda = EDA(alpha, alpha, alpha, alpha, n_aug=n_aug, include_original=True)
    out = eda.augment(texts, labels=labels, seed=seed)
    return list(out.texts), np.asarray(out.labels, dtype=np.int64)


# --------------------------------------------------------------------------- classifiers


def tfidf_lr(train: list[str], y: np.ndarray, test: list[str], seed: int, options: dict) -> np.ndarray:
    """TF-IDF (word 1-2 grams, sublinear tf) + logistic regression; predicted labels."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(lowercase=True, ngram_range=(1, 2), sublinear_tf=True)
    features = vectorizer.fit_transform(train)
    model = LogisticRegression(C=10.0, class_weight="balanced", solver="liblinear", max_iter=1000,
                               random_state=seed)
    model.fit(features, y)
    return model.predict(vectorizer.transform(test))


def tokens(text: str) -> list[str]:
    """Lower-case words and punctuation marks, at most ``MAX_TOKENS``."""
    return TOKEN.findall(text.lower())[:MAX_TOKENS]


def encode(texts: list[str], vocabulary: dict[str, int]) -> np.ndarray:
    """Token ids padded with 0 to the longest text (unknown words: 1; empty texts: one 1)."""
    rows = [[vocabulary.get(t, 1) for t in tokens(text)] or [1] for text in texts]
    ids = np.zeros((len(rows), max(len(r) for r in rows)), dtype=np.int64)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = row
    return ids


def _text_cnn(vocabulary: int) -> Any:
    import torch
    from torch import nn

    class TextCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(vocabulary, 64, padding_idx=0)
            self.convs = nn.ModuleList(nn.Conv1d(64, 64, w, padding=w // 2) for w in (3, 5))
            self.drop = nn.Dropout(0.5)
            self.out = nn.Linear(128, 1)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            mask = (ids != 0).unsqueeze(1)
            x = self.embed(ids).transpose(1, 2)
            pooled = [torch.relu(conv(x)).masked_fill(~mask, 0.0).amax(dim=2) for conv in self.convs]
            return self.out(self.drop(torch.cat(pooled, dim=1))).squeeze(1)

    return TextCNN()


def cnn(train: list[str], y: np.ndarray, test: list[str], seed: int, options: dict) -> np.ndarray:
    """The text CNN trained for max(``epochs``, ``min_steps`` steps); predicted labels."""
    import torch

    counts = Counter(t for text in train for t in tokens(text))
    vocabulary = {t: i + 2 for i, (t, _) in enumerate(sorted(counts.items(), key=lambda c: (-c[1], c[0])))}
    ids = torch.from_numpy(encode(train, vocabulary))
    target = torch.from_numpy(y.astype(np.float32))
    torch.manual_seed(seed)
    model = _text_cnn(len(vocabulary) + 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    weight = float((y == 0).sum() / max(1, (y == 1).sum()))  # balanced classes, as for the LR
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(weight, dtype=torch.float32))
    batch = 32
    per_epoch = math.ceil(len(train) / batch)
    epochs = max(options["epochs"], math.ceil(options["min_steps"] / per_epoch))
    order = np.random.default_rng([seed, 1])
    model.train()
    for _ in range(epochs):
        permutation = torch.from_numpy(order.permutation(len(train)))
        for start in range(0, len(train), batch):
            rows = permutation[start:start + batch]
            chunk = ids[rows]
            chunk = chunk[:, : int((chunk != 0).sum(dim=1).max())]
            optimizer.zero_grad()
            loss_fn(model(chunk), target[rows]).backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        test_ids = torch.from_numpy(encode(test, vocabulary))
        logits = torch.cat([model(test_ids[s:s + 256]) for s in range(0, len(test), 256)])
    return (logits > 0).numpy().astype(np.int64)


FIT = {"tfidf_lr": tfidf_lr, "cnn": cnn}


def scores(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Spam-class F1 and accuracy, in points (x100)."""
    from sklearn.metrics import accuracy_score, f1_score

    return {"f1": 100 * float(f1_score(truth, predicted, pos_label=1, zero_division=0)),
            "accuracy": 100 * float(accuracy_score(truth, predicted))}


# --------------------------------------------------------------------------- statistics


def paired_summary(baseline: list[float], augmented: list[float]) -> dict[str, float]:
    """Means, sample standard deviations and the paired difference with its 95 % t interval.

    ``baseline[i]`` and ``augmented[i]`` come from the same seed. With one seed the
    interval is undefined (NaN).
    """
    from scipy import stats

    base, aug = np.asarray(baseline, float), np.asarray(augmented, float)
    diff = aug - base
    n = diff.size
    sd = float(diff.std(ddof=1)) if n > 1 else math.nan
    half = float(stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)) if n > 1 else math.nan
    mean = float(diff.mean())
    return {"seeds": n, "baseline_mean": float(base.mean()), "baseline_std": float(base.std(ddof=1)) if n > 1
            else math.nan, "augmented_mean": float(aug.mean()),
            "augmented_std": float(aug.std(ddof=1)) if n > 1 else math.nan,
            "diff_mean": mean, "diff_std": sd, "ci_low": mean - half, "ci_high": mean + half}


# --------------------------------------------------------------------------- results file


def protocol(data: Path, quick: bool) -> dict[str, Any]:
    """What a results file must agree on to be resumed (seeds and sizes may grow)."""
    return {"data_sha256": hashlib.sha256(data.read_bytes()).hexdigest(), "holdout_seed": HOLDOUT_SEED,
            "holdout_share": HOLDOUT_SHARE, "eda": "Wei & Zou 2019 Table 3; alpha for all four ops",
            "tfidf_lr": "word 1-2 grams, sublinear tf, LR C=10 balanced liblinear",
            "cnn": cnn_options(quick) | {"embed": 64, "filters": 64, "widths": [3, 5], "batch": 32,
                                         "lr": 2e-3, "max_tokens": MAX_TOKENS},
            "datakiln": datakiln.__version__}


def cnn_options(quick: bool) -> dict[str, int]:
    """Training length of the CNN: max(epochs, min_steps); ``--quick`` trains briefly."""
    return {"epochs": 1, "min_steps": 10} if quick else {"epochs": 3, "min_steps": 400}


def _is_own(path: Path) -> bool:
    try:
        return json.loads(path.read_text()).get("benchmark") == MARKER
    except (OSError, ValueError, AttributeError):
        return False


def load_results(path: Path, wanted: dict[str, Any]) -> dict[str, Any]:
    """The runs already in ``path`` (empty when it does not exist); a file of another
    protocol, or not written by this benchmark, is refused (choose another ``--json``)."""
    if not path.exists():
        return {}
    if not _is_own(path):
        sys.exit(f"{path} was not written by this benchmark; choose another --json")
    stored = json.loads(path.read_text())
    if stored.get("protocol") != wanted:
        sys.exit(f"{path} holds runs of another protocol (data, holdout or models differ); "
                 "choose another --json or remove it")
    return stored.get("runs", {})


def save_results(path: Path, wanted: dict[str, Any], runs: dict[str, Any],
                 summary: dict[str, Any] | None = None) -> None:
    """Write all runs (and the summary once known) atomically."""
    body = {"benchmark": MARKER, "protocol": wanted, "runs": runs}
    if summary is not None:
        body["summary"] = summary
    text = json.dumps(body, indent=1, sort_keys=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file_atomic(path, lambda temp: Path(temp).write_text(text), is_own=_is_own)


# --------------------------------------------------------------------------- the run


def run_size(n: int, seeds: list[int], texts: list[str], labels: np.ndarray, pool: np.ndarray,
             holdout: np.ndarray, runs: dict[str, Any], save: Any, quick: bool) -> None:
    """Every seed and classifier of training size ``n`` not yet in ``runs``."""
    test = [texts[i] for i in holdout]
    for seed in seeds:
        todo = [c for c in CLASSIFIERS if f"{n}/{c}/{seed}" not in runs]
        if not todo:
            continue
        chosen = pool[draw_subset(labels[pool], n, seed)]
        train, y = [texts[i] for i in chosen], labels[chosen]
        start = time.perf_counter()
        aug_train, aug_y = augment(train, y, n, seed)
        aug_seconds = time.perf_counter() - start
        for name in todo:
            record: dict[str, Any] = {"n": n, "classifier": name, "seed": seed, "augment_s": aug_seconds,
                                      "rows": {"baseline": len(train), "augmented": len(aug_train)},
                                      "spam": int(y.sum())}
            for arm, (xs, ys) in (("baseline", (train, y)), ("augmented", (aug_train, aug_y))):
                start = time.perf_counter()
                predicted = FIT[name](xs, ys, test, seed, cnn_options(quick))
                record[arm] = scores(labels[holdout], predicted) | {"fit_s": time.perf_counter() - start}
            runs[f"{n}/{name}/{seed}"] = record
            save()
            print(f"N={n} {name} seed {seed}: spam F1 {record['baseline']['f1']:.1f} -> "
                  f"{record['augmented']['f1']:.1f} ({record['baseline']['fit_s']:.1f} s + "
                  f"{record['augmented']['fit_s']:.1f} s)", file=sys.stderr, flush=True)


def summarise(runs: dict[str, Any], sizes: list[int], seeds: list[int]) -> dict[str, Any]:
    """Per ``"N/classifier"``: :func:`paired_summary` of spam F1 and of accuracy, and the setting."""
    out = {}
    for n in sorted(sizes):
        for name in CLASSIFIERS:
            done = [runs[f"{n}/{name}/{s}"] for s in seeds if f"{n}/{name}/{s}" in runs]
            if not done:
                continue
            alpha, n_aug = eda_setting(n)
            out[f"{n}/{name}"] = {
                "n": n, "classifier": name, "alpha": alpha, "n_aug": n_aug,
                "f1": paired_summary([r["baseline"]["f1"] for r in done],
                                     [r["augmented"]["f1"] for r in done]),
                "accuracy": paired_summary([r["baseline"]["accuracy"] for r in done],
                                           [r["augmented"]["accuracy"] for r in done]),
                "fit_s": float(sum(r["baseline"]["fit_s"] + r["augmented"]["fit_s"] for r in done))}
    return out


def _signed(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:+.2f}"


def table(summary: dict[str, Any]) -> list[str]:
    """Markdown rows: spam F1 (points) mean ± std per arm, paired difference and its 95 % interval."""
    lines = ["| N | classifier | EDA alpha, n_aug | seeds | baseline F1 | EDA F1 | paired diff | 95% CI "
             "| accuracy diff |", "|---|---|---|---|---|---|---|---|---|"]
    for entry in summary.values():
        f1, acc = entry["f1"], entry["accuracy"]
        lines.append(
            f"| {entry['n']:,} | {LABELS[entry['classifier']]} | {entry['alpha']}, {entry['n_aug']} "
            f"| {f1['seeds']} | {f1['baseline_mean']:.2f} ± {f1['baseline_std']:.2f} "
            f"| {f1['augmented_mean']:.2f} ± {f1['augmented_std']:.2f} | {_signed(f1['diff_mean'])} "
            f"| [{_signed(f1['ci_low'])}, {_signed(f1['ci_high'])}] | {_signed(acc['diff_mean'])} |")
    return lines


def headline(summary: dict[str, Any], n: int) -> str:
    """The last line: the paired spam-F1 difference at ``n`` per classifier vs the paper's +3."""
    parts = []
    for name in CLASSIFIERS:
        entry = summary.get(f"{n}/{name}")
        if entry is None:
            continue
        f1 = entry["f1"]
        low, high = f1["ci_low"], f1["ci_high"]
        if math.isnan(low):
            verdict = "one seed, no interval"
        elif low > PAPER_GAIN:
            verdict = "above +3"
        elif high < PAPER_GAIN:
            verdict = "+3 is above the interval"
        else:
            verdict = "+3 is inside the interval"
        parts.append(f"{LABELS[name]} {_signed(f1['diff_mean'])} [{_signed(low)}, {_signed(high)}] "
                     f"({verdict})")
    alpha, n_aug = eda_setting(n)
    return (f"N={n:,} paired spam-F1 difference EDA - baseline (alpha={alpha}, n_aug={n_aug}, "
            "points, 95% t CI): "
            + "; ".join(parts) + f"; Wei & Zou 2019 report about +{PAPER_GAIN:.0f} at N=500")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the SMS Spam TSV (label<TAB>message)")
    parser.add_argument("--json", type=Path, default=JSON, help="results file, written as runs finish")
    parser.add_argument("--seeds", type=int, default=None, help="seeds 0..K-1 (default 10; 2 with --quick)")
    parser.add_argument("--sizes", type=str, default=None, help="training sizes, e.g. 200,500,2000")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the CNN")
    parser.add_argument("--quick", action="store_true", help="smoke run: N=60, 2 seeds, short CNN training")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(max(1, args.threads))
    default = QUICK_SIZES if args.quick else SIZES
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else list(default)
    seeds = list(range(args.seeds if args.seeds is not None else 2 if args.quick else 10))
    wanted = protocol(args.data, args.quick)
    runs = load_results(args.json, wanted)
    texts, labels = load_messages(args.data)
    pool, holdout = holdout_split(labels)
    print(f"{len(texts):,} distinct messages ({int(labels.sum()):,} spam); holdout {holdout.size:,} "
          f"({int(labels[holdout].sum())} spam), pool {pool.size:,}; seeds {seeds[0]}..{seeds[-1]}",
          flush=True)
    started = time.perf_counter()
    for n in sizes:
        if n > pool.size:
            sys.exit(f"N={n} is larger than the pool of {pool.size} messages")
        run_size(n, seeds, texts, labels, pool, holdout, runs, lambda: save_results(args.json, wanted, runs),
                 args.quick)
    summary = summarise(runs, sizes, seeds)
    save_results(args.json, wanted, runs, summary)
    print(f"spam F1 on the holdout, points; {time.perf_counter() - started:.0f} s this run; "
          f"results in {args.json}")
    print("\n".join(table(summary)))
    print(headline(summary, 500 if 500 in sizes else sizes[0]))


if __name__ == "__main__":
    main()
