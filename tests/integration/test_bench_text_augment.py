"""Smoke test of ``benchmarks/text_augment.py --quick`` on the vendored SMS Spam sample.

It checks the machinery (data read with datakiln, fixed holdout, paired seeds, EDA at the
paper's setting, both classifiers, the JSON written per run and resumed, the table and the
last line), and the statistics against a hand computation; not the benchmark's findings.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "text_augment.py"
SAMPLE = REPO / "tests" / "data" / "sms_spam" / "sms-300.tsv"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_text_augment", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--quick", "--data", str(SAMPLE), "--json", str(out)],
                          capture_output=True, text=True, cwd=REPO, timeout=100)


@pytest.mark.timeout(120)
def test_quick_run_writes_paired_runs_table_and_headline_and_resumes(tmp_path):
    out = tmp_path / "runs.json"
    first = _run(out)
    assert first.returncode == 0, first.stderr[-2000:]
    lines = first.stdout.strip().splitlines()
    assert lines[0].startswith("296 distinct messages (44 spam); holdout 59 (9 spam), pool 237")
    stored = json.loads(out.read_text())
    assert stored["benchmark"] == "datakiln benchmarks/text_augment.py"
    assert set(stored["runs"]) == {f"60/{c}/{s}" for c in ("tfidf_lr", "cnn") for s in (0, 1)}
    for run in stored["runs"].values():
        # 60 messages, stratified (44/296 spam -> 9), plus 16 EDA copies each (alpha 0.05, Table 3)
        assert run["rows"] == {"baseline": 60, "augmented": 60 * 17} and run["spam"] == 9
        for arm in ("baseline", "augmented"):
            assert 0 <= run[arm]["f1"] <= 100 and 50 <= run[arm]["accuracy"] <= 100
            assert run[arm]["fit_s"] >= 0
    summary = stored["summary"]
    assert set(summary) == {"60/tfidf_lr", "60/cnn"}
    for key, entry in summary.items():
        assert entry["alpha"] == 0.05 and entry["n_aug"] == 16 and entry["f1"]["seeds"] == 2
        runs = [stored["runs"][f"{key}/{s}"] for s in (0, 1)]
        diffs = [r["augmented"]["f1"] - r["baseline"]["f1"] for r in runs]
        assert entry["f1"]["diff_mean"] == pytest.approx(np.mean(diffs))
        assert entry["f1"]["ci_low"] <= entry["f1"]["diff_mean"] <= entry["f1"]["ci_high"]
    table = [line for line in lines if line.startswith("| 60 |")]
    assert [line.split("|")[2].strip() for line in table] == ["TF-IDF + LR", "text CNN"]
    assert all(re.search(r"\| 0\.05, 16 \| 2 \| [\d.]+ ± [\d.]+ \| [\d.]+ ± [\d.]+ \| [+-][\d.]+ \| "
                         r"\[[+-][\d.]+, [+-][\d.]+\] \| [+-][\d.]+ \|$", line) for line in table)
    assert re.fullmatch(r"N=60 paired spam-F1 difference EDA - baseline \(alpha=0\.05, n_aug=16, points, "
                        r"95% t CI\): TF-IDF \+ LR [+-][\d.]+ \[.+\] \(.+\); "
                        r"text CNN [+-][\d.]+ \[.+\] \(.+\); "
                        r"Wei & Zou 2019 report about \+3 at N=500", lines[-1])
    # a second run finds every (N, classifier, seed) in the file: nothing is fitted again
    second = _run(out)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "seed" not in second.stderr
    assert json.loads(out.read_text())["runs"] == stored["runs"]
    assert second.stdout.strip().splitlines()[-1] == lines[-1]


def test_a_results_file_it_did_not_write_is_left_alone(tmp_path):
    out = tmp_path / "mine.json"
    out.write_text('{"something": "else"}')
    run = _run(out)
    assert run.returncode != 0 and "not written by this benchmark" in run.stderr
    assert out.read_text() == '{"something": "else"}'


def test_paired_summary_is_the_t_interval_over_seeds():
    bench = _bench()
    base, aug = [80.0, 82.0, 85.0, 79.0], [83.0, 82.5, 88.0, 80.0]
    got = bench.paired_summary(base, aug)
    diff = np.subtract(aug, base)  # 3, 0.5, 3, 1: mean 1.875, sd 1.2990
    half = 3.182446305284263 * diff.std(ddof=1) / 2  # t(0.975, 3) * sd / sqrt(4)
    assert got["diff_mean"] == pytest.approx(1.875)
    assert got["ci_low"] == pytest.approx(1.875 - half) and got["ci_high"] == pytest.approx(1.875 + half)
    assert got["baseline_mean"] == pytest.approx(81.5)
    assert got["baseline_std"] == pytest.approx(np.std(base, ddof=1))
    one = bench.paired_summary([1.0], [2.0])
    assert one["diff_mean"] == 1.0 and math.isnan(one["ci_low"])


def test_eda_settings_are_the_papers_table_3():
    bench = _bench()
    assert [bench.eda_setting(n) for n in (200, 500, 2000, 5000)] == [(0.05, 16), (0.05, 16), (0.05, 8),
                                                                      (0.1, 4)]


def test_messages_read_with_datakiln_match_the_file_and_the_holdout_is_stratified():
    bench = _bench()
    texts, labels = bench.load_messages(SAMPLE)
    lines = [line.rstrip("\n").split("\t", 1) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    distinct = {}
    for label, text in lines:
        distinct.setdefault(text.strip(), label)
    assert texts == list(distinct) and labels.tolist() == [int(v == "spam") for v in distinct.values()]
    assert any('"' in t for t in texts)  # unescaped quotes stay in the text (quotechar=None)
    pool, holdout = bench.holdout_split(labels)
    assert holdout.size == 59 and labels[holdout].sum() == 9 and not set(pool) & set(holdout)
    assert np.array_equal(holdout, bench.holdout_split(labels)[1])  # fixed
    subset = bench.draw_subset(labels[pool], 60, seed=3)
    assert subset.size == 60 and labels[pool][subset].sum() == 9
    assert np.array_equal(subset, bench.draw_subset(labels[pool], 60, seed=3))
