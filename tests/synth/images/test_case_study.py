"""benchmarks/case_study.py on a tiny ImageFolder pair: every (condition, seed) is recorded as it
finishes, a rerun resumes from the results file (a torn last line is redone), and the paired
summary matches an independent computation."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from tests.conftest import REPO, sample_dataset  # noqa: E402


def _module():
    spec = importlib.util.spec_from_file_location("case_study", REPO / "benchmarks" / "case_study.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_case_study_records_each_run_and_resumes(tmp_path: Path) -> None:
    study = _module()
    folder = sample_dataset("images/cifar")
    out = tmp_path / "study"
    args = [
        "--train",
        str(folder),
        "--test",
        str(folder),
        "--out",
        str(out),
        "--conditions",
        "a,b1,b2,c",
        "--seeds",
        "2",
        "--cnn-epochs",
        "1",
        "--gan-epochs",
        "1",
        "--gan-width",
        "8",
        "--synthetic",
        "12",
        "--expansion",
        "20",
        "--optimizers",
        "adam",
        "--image-size",
        "16",
    ]
    assert study.main(args) == 0
    records = study.read_results(out)
    runs = [(r["condition"], r["seed"]) for r in records if r["stage"] == "run"]
    assert sorted(runs) == sorted((c, s) for c in ("a", "b1", "b2", "c") for s in (0, 1))
    assert [r["stage"] for r in records][:1] == ["select"]
    b1 = next(r for r in records if r.get("condition") == "b1")
    assert b1["train_images"] == 40  # 20 crops + 20 flips
    c = next(r for r in records if r.get("condition") == "c")
    base = next(r for r in records if r.get("condition") == "a")
    assert c["train_images"] == base["train_images"] + 12
    assert (out / "gan.kiln").exists() and (out / "case_study.html").exists()
    summary = json.loads((out / "case_study.json").read_text())["table"]
    assert summary["c"]["paired_seeds"] == 2 and summary["c"]["claimed_delta"] == 3.5

    # a rerun does nothing new; a torn last line (crash mid-write) is redone, nothing else
    lines = (out / "results.jsonl").read_text().splitlines()
    assert study.main(args) == 0
    assert (out / "results.jsonl").read_text().splitlines() == lines
    (out / "results.jsonl").write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:25])
    assert study.main(args) == 0
    again = [(r["condition"], r["seed"]) for r in study.read_results(out) if r["stage"] == "run"]
    assert sorted(again) == sorted(runs)
    shutil.rmtree(out)


def test_summary_is_paired_with_a_t_interval() -> None:
    from scipy import stats

    study = _module()
    a = [60.0, 62.0, 61.0]
    c = [63.0, 63.5, 64.0]
    records = [
        {"stage": "run", "condition": "a", "seed": s, "test_accuracy": v / 100} for s, v in enumerate(a)
    ]
    records += [
        {"stage": "run", "condition": "c", "seed": s, "test_accuracy": v / 100} for s, v in enumerate(c)
    ]
    table = study.summarise(records)
    diff = np.subtract(c, a)
    low, high = stats.t.interval(0.95, len(diff) - 1, loc=diff.mean(), scale=stats.sem(diff))
    assert table["c"]["paired_delta"] == pytest.approx(diff.mean())
    assert table["c"]["delta_interval"] == pytest.approx([low, high])
    assert table["a"]["std"] == pytest.approx(np.std(a, ddof=1))
