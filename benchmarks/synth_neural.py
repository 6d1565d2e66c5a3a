"""Neural tabular synthesizers on Adult and bank-marketing: datakiln against SDV 2.0, one table.

Contestants: datakiln's GaussianCopula, TVAE, CTGAN, PCASynthesizer and the flow-matching
model (FlowMatching), and SDV 2.0's CTGANSynthesizer and TVAESynthesizer (``bench`` extra,
comparison only) at their default epochs (300; ``--options '{"epochs": N}'`` sets another
count for a run, stored with its results: the committed results ran TVAE/CTGAN and SDV's at
10 epochs, all this shared 2-core machine allowed). Each contestant fits in a fresh Python
process on the training rows, then samples as many rows as the training table has
(Adult: 32,561); ``datakiln.evaluate`` (seed 0) scores the rows against the training table
with the real holdout (Adult: the test split; bank-marketing: a stratified 20%):

shapes, pair trends (related pairs and all pairs), detection AUC and SDMetrics' detection
score 2·(1 − AUC) (HistGradientBoosting, 5-fold CV on up to 20,000 rows a side), TSTR ROC
AUC and F1 of the positive class (HistGradientBoosting trained on the synthetic rows, tested
on the holdout), exact-copy rate (the holdout's own rate beside it), the share of synthetic
rows closer to the training rows than the median holdout row (DCR share, ideal 0.5), and the
distance-based membership AUC. ``!`` marks a row whose DCR share or copy rate is worse than
real holdout data's.

Every contestant's result is cached as it finishes (``benchmarks/results/synth_neural_<data>.json``
plus its sampled rows under ``--cache``), so an interrupted run resumes where it stopped;
``--redo NAME`` runs one again. Every torch contestant (SDV's included) runs on ``--threads``
torch threads (default 1: on this shared 2-core machine two threads under load were about
5x slower than one, from OpenMP spinning). Seconds per epoch are training seconds after
each library's preprocessing (SDV: ``preprocess``, then ``fit_processed_data``).
Heavy: run it under the shared lock, e.g.

    flock /tmp/datakiln-heavy.lock nice -n 5 python benchmarks/synth_neural.py --data adult
    python benchmarks/synth_neural.py --data adult --table      # print the cached table only
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.conftest import ADULT_COLUMNS, ADULT_TRAIN, SHARED  # noqa: E402

import datakiln  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
TARGETS = {"adult": ("income", ">50K"), "bank": ("y", "yes")}
# name -> (label, datakiln.synth class or None for SDV, keyword arguments)
CONTESTANTS: dict[str, tuple[str, str | None, dict[str, Any]]] = {
    "copula": ("datakiln GaussianCopula", "GaussianCopula", {}),
    "pca": ("datakiln PCASynthesizer", "PCASynthesizer", {}),
    "tvae": ("datakiln TVAE", "TVAE", {}),
    "ctgan": ("datakiln CTGAN", "CTGAN", {}),
    "flow": ("datakiln FlowMatching", "FlowMatching", {}),
    "flow-180": ("datakiln FlowMatching", "FlowMatching", {"epochs": 180}),
    "flow-400": ("datakiln FlowMatching", "FlowMatching", {"epochs": 400}),
    "ddpm": ("datakiln FlowMatching ddpm", "FlowMatching", {"objective": "ddpm"}),
    "velocity": ("datakiln FlowMatching velocity", "FlowMatching", {"objective": "velocity"}),
    "sdv-tvae": ("SDV 2.0 TVAESynthesizer", None, {"epochs": 300}),
    "sdv-ctgan": ("SDV 2.0 CTGANSynthesizer", None, {"epochs": 300}),
}
MODULES = {"TVAE": "datakiln.synth.neural.tvae", "CTGAN": "datakiln.synth.neural.ctgan",
           "PCASynthesizer": "datakiln.synth.pca", "FlowMatching": "datakiln.synth.neural.flow"}


def load(data: str) -> tuple[pa.Table, pa.Table]:
    """(training rows, real holdout rows) of ``data``."""
    if data == "adult":
        train = datakiln.read(ADULT_TRAIN, names=ADULT_COLUMNS).to_arrow()
        test = datakiln.read(ADULT_TRAIN.with_name("adult-test.csv"), names=ADULT_COLUMNS).to_arrow()
        index = test.schema.get_field_index("income")
        return train, test.set_column(index, "income", pc.replace_substring(test["income"], ".", ""))
    table = datakiln.read(SHARED / "bank_marketing" / "bank-full.csv").to_arrow()
    from sklearn.model_selection import train_test_split

    rows = np.arange(table.num_rows)
    train_rows, test_rows = train_test_split(rows, test_size=0.2, random_state=0,
                                             stratify=table["y"].to_numpy(zero_copy_only=False))
    return table.take(pa.array(np.sort(train_rows))), table.take(pa.array(np.sort(test_rows)))


TORCH_MODELS = {"TVAE", "CTGAN", "FlowMatching"}


def child(name: str, data: str, out: Path, options: dict[str, Any], threads: int) -> None:
    """Fit ``name`` on ``data`` in this fresh process, sample the training size, print timings."""
    warnings.filterwarnings("ignore")
    label, cls, kwargs = CONTESTANTS[name]
    kwargs = {**kwargs, **options}
    if cls in TORCH_MODELS:
        kwargs["threads"] = threads
    elif cls is None:
        import torch

        torch.set_num_threads(threads)
    train, _ = load(data)
    epochs = None
    if cls is None:
        from sdv.metadata import Metadata
        from sdv.single_table import CTGANSynthesizer, TVAESynthesizer

        frame = train.to_pandas()
        started = time.perf_counter()
        metadata = Metadata.detect_from_dataframes({data: frame})
        kind = CTGANSynthesizer if name == "sdv-ctgan" else TVAESynthesizer
        synthesizer = kind(metadata, **kwargs)
        processed = synthesizer.preprocess({data: frame})  # RDT's transforms (a GMM per column)
        prepared = time.perf_counter()
        synthesizer.fit_processed_data(processed)
        fit_s = time.perf_counter() - started
        train_s = time.perf_counter() - prepared
        epochs = kwargs["epochs"]
        started = time.perf_counter()
        sampled = synthesizer.sample(train.num_rows)
        sampled = sampled[data] if isinstance(sampled, dict) else sampled  # SDV 2: {table: frame}
        sample_s = time.perf_counter() - started
        rows = pa.Table.from_pandas(sampled, preserve_index=False).cast(train.schema)
    else:
        import importlib

        import datakiln.synth as synth

        kind = getattr(synth, cls, None) or getattr(importlib.import_module(MODULES[cls]), cls)
        model = kind(**kwargs)
        started = time.perf_counter()
        model.fit(train)
        fit_s = train_s = time.perf_counter() - started
        epochs = _epochs(model) if cls in TORCH_MODELS else None  # PCA, copula: no epochs
        started = time.perf_counter()
        rows = model.sample(train.num_rows, seed=1)
        sample_s = time.perf_counter() - started
    pq.write_table(rows, out)
    print(json.dumps({"label": label, "fit_s": fit_s, "train_s": train_s, "sample_s": sample_s,
                      "epochs": epochs,
                      "options": kwargs, "threads": _threads()}))


def _epochs(model: Any) -> float | None:
    """Epochs (or steps) a datakiln model trained, from its fitted state when it says."""
    for attribute in ("epochs_", "n_epochs_", "steps_"):
        value = getattr(model, attribute, None)
        if value is not None:
            return float(value)
    history = getattr(model, "history_", None)
    if isinstance(history, list) and history:
        return float(history[-1].get("epoch", len(history)))
    if isinstance(history, dict) and history.get("epochs") is not None:
        return float(history["epochs"])
    return None


def _threads() -> int | None:
    try:
        import torch

        return torch.get_num_threads()
    except ImportError:
        return None


def run(name: str, data: str, cache: Path, options: dict[str, Any], tag: str = "", threads: int = 1
        ) -> dict[str, Any]:
    out = cache / f"{data}-{name}{tag}.parquet"
    command = [sys.executable, __file__, "--child", name, "--data", data, "--out", str(out),
               "--options", json.dumps(options), "--threads", str(threads)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{name} on {data} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def score(train: pa.Table, test: pa.Table, rows: pa.Table, data: str, privacy: bool = True) -> dict[str, Any]:
    """The benchmark's figures of one synthetic table (datakiln.evaluate, seed 0)."""
    target, positive = TARGETS[data]
    report = datakiln.evaluate(train, rows, holdout=test, target=target, seed=0, privacy=privacy)
    fidelity, utility = report.fidelity, report.utility
    privacy_section = report.privacy or {"exact_copy_rate": float("nan"), "dcr_share_closer_than_holdout":
                                         float("nan")}
    positive_code = None
    classes = sorted(set(train[target].to_pylist()))
    if positive in classes:
        positive_code = positive
    synthetic = utility["synthetic"]
    auc = fidelity["detection_auc"]
    return {
        "shapes": fidelity["column_shapes"], "trends": fidelity["column_pair_trends"],
        "trends_all": fidelity["column_pair_trends_all_pairs"],
        "detection_auc": auc, "detection_score": fidelity.get("detection_score",
                                                              None if auc is None else 2 * (1 - auc)),
        "tstr_roc_auc": synthetic.get("roc_auc"), "tstr_f1": synthetic.get("minority_f1"),
        "trtr_roc_auc": utility["real"].get("roc_auc"), "trtr_f1": utility["real"].get("minority_f1"),
        "f1_class": utility.get("minority_class") if positive_code is None else positive_code,
        "exact_copy_rate": privacy_section["exact_copy_rate"],
        "holdout_exact_copy_rate": privacy_section.get("holdout_exact_copy_rate"),
        "dcr_share": privacy_section["dcr_share_closer_than_holdout"],
        "membership_auc": privacy_section.get("membership_auc"), "flags": privacy_section.get("flags", []),
        "evaluate_seconds": report.info["seconds"],
    }


def table(data: str, results: dict[str, Any]) -> str:
    """The printed table and the headline line."""
    lines = []
    head = (f"| {'synthesizer':26} | {'fit s':>7} | {'epochs':>6} | {'s/epoch':>7} | {'shapes':>6} | "
            f"{'trends':>6} | {'all pairs':>9} | {'det AUC':>7} | {'det score':>9} | {'TSTR AUC':>8} | "
            f"{'TSTR F1':>7} | {'copies':>7} | {'DCR share':>9} | {'MIA AUC':>7} |")
    lines += [head, "|" + "|".join("-" * len(p) for p in head.split("|")[1:-1]) + "|"]
    real = None
    for name in CONTESTANTS:
        r = results.get(name)
        if not r or "shapes" not in r:
            continue
        real = r
        epochs = r.get("epochs") if "PCA" not in r["label"] else None  # stored by an earlier run
        per_epoch = r.get("train_s", r["fit_s"]) / epochs if epochs else None
        held = r.get("holdout_exact_copy_rate") or 0.0
        copies = f"{r['exact_copy_rate']:.4f}" + ("!" if r["exact_copy_rate"] > held else " ")
        dcr = f"{r['dcr_share']:.3f}" + ("!" if r["dcr_share"] > 0.5 + _dcr_noise(r) else " ")
        lines.append(
            f"| {r['label']:26} | {r['fit_s']:7.1f} | {_f(epochs, 6, '.0f')} | "
            f"{_f(per_epoch, 7, '.2f')} | {r['shapes']:6.3f} | {r['trends']:6.3f} | {r['trends_all']:9.3f} | "
            f"{r['detection_auc']:7.3f} | {r['detection_score']:9.3f} | {r['tstr_roc_auc']:8.3f} | "
            f"{r['tstr_f1']:7.3f} | {copies:>7} | {dcr:>9} | {_f(r.get('membership_auc'), 7, '.3f')} |")
    if real is not None:
        lines.append(f"| {'(real training rows: TRTR)':26} | {'':>7} | {'':>6} | {'':>7} | {'':>6} | "
                     f"{'':>6} | "
                     f"{'':>9} | {'':>7} | {'':>9} | {real['trtr_roc_auc']:8.3f} | {real['trtr_f1']:7.3f} | "
                     f"{real.get('holdout_exact_copy_rate') or 0:7.4f} | {0.5:9.3f} | {'':>7} |")
    return "\n".join(lines)


def curve(data: str, results: dict[str, Any]) -> str:
    """FlowMatching's time-versus-quality points (this table's rows and the ``_pilot`` file's)."""
    pilot = RESULTS / f"synth_neural_{data}_pilot.json"
    points = [r for n, r in results.items() if n.startswith("flow") and "shapes" in r]
    if pilot.exists():
        points += [r for n, r in json.loads(pilot.read_text()).items() if n == "flow" and "shapes" in r]
    if not points:
        return ""
    lines = ["\nFlowMatching, time versus quality (targets: shapes >= 0.99, all pairs >= 0.98, TSTR >= 0.91, "
             "detection AUC <= 0.65):"]
    for r in sorted(points, key=lambda r: r["epochs"]):
        lines.append(f"  {r['epochs']:4.0f} epochs  fit {r['fit_s']:6.0f} s  shapes {r['shapes']:.3f}  "
                     f"all pairs {r['trends_all']:.3f}  detection AUC {r['detection_auc']:.3f}  "
                     f"TSTR {r['tstr_roc_auc']:.3f}")
    return "\n".join(lines) + "\n"


def _dcr_noise(r: dict[str, Any]) -> float:
    return 0.05  # the share's sampling noise on 5,000 rows is ~0.007; 0.55 is the issue's bound


def _f(value: float | None, width: int, spec: str) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:{width}{spec}}"


def headline(results: dict[str, Any]) -> str:
    ours = [n for n in ("flow", "flow-180", "flow-400", "ddpm", "tvae", "ctgan", "pca", "copula")
            if "shapes" in results.get(n, {})]
    if not ours:
        return "headline: no datakiln model measured"
    best = max(ours, key=lambda n: results[n]["tstr_roc_auc"] - abs(results[n]["detection_auc"] - 0.5))
    parts = [f"best datakiln model {results[best]['label']}: detection AUC "
             f"{results[best]['detection_auc']:.3f}, "
             f"TSTR {results[best]['tstr_roc_auc']:.3f} (TRTR {results[best]['trtr_roc_auc']:.3f}), "
             f"DCR share {results[best]['dcr_share']:.3f}, fit {results[best]['fit_s']:.0f} s"]
    for ours_name, peer in (("tvae", "sdv-tvae"), ("ctgan", "sdv-ctgan")):
        a, b = results.get(ours_name, {}), results.get(peer, {})
        if "shapes" in a and "shapes" in b and a.get("epochs") and b.get("epochs"):
            speed = (b["train_s"] / b["epochs"]) / (a["train_s"] / a["epochs"])
            parts.append(f"{ours_name.upper()} {speed:.1f}x faster per epoch than SDV's, TSTR "
                         f"{a['tstr_roc_auc']:.3f} vs {b['tstr_roc_auc']:.3f}, detection AUC "
                         f"{a['detection_auc']:.3f} vs {b['detection_auc']:.3f}")
    for peer in ("sdv-ctgan", "sdv-tvae"):
        if "shapes" in results.get(peer, {}):
            parts.append(f"detection AUC {results[best]['detection_auc']:.3f} vs {results[peer]['label']} "
                         f"{results[peer]['detection_auc']:.3f}")
    return "headline: " + "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", choices=sorted(TARGETS), default="adult")
    parser.add_argument("--only", default=",".join(CONTESTANTS), help="comma-separated contestants")
    parser.add_argument("--redo", default="", help="comma-separated contestants to run again")
    parser.add_argument("--rescore", action="store_true", help="evaluate the cached rows again")
    parser.add_argument("--table", action="store_true", help="print the cached results only")
    parser.add_argument("--options", default="{}", help="JSON keyword arguments for the contestant")
    parser.add_argument("--cache", type=Path,
                        default=Path(os.environ.get("TMPDIR", "/tmp")) / "datakiln-synth-neural")
    parser.add_argument("--tag", default="", help="suffix of the results file (pilots, other budgets)")
    parser.add_argument("--no-privacy", action="store_true", help="skip the privacy section (pilots)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of every torch contestant, SDV's too (default 1)")
    parser.add_argument("--child")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data, args.out, json.loads(args.options), args.threads)
        return
    warnings.filterwarnings("ignore")
    path = RESULTS / f"synth_neural_{args.data}{args.tag}.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    if not args.table:
        args.cache.mkdir(parents=True, exist_ok=True)
        train, test = load(args.data)
        redo = {n for n in args.redo.split(",") if n}
        for name in [n for n in args.only.split(",") if n]:
            if name not in CONTESTANTS:
                raise SystemExit(f"unknown contestant {name!r}; one of {list(CONTESTANTS)}")
            rows_path = args.cache / f"{args.data}-{name}{args.tag}.parquet"
            if name in redo or name not in results or not rows_path.exists():
                print(f"fitting {name} on {args.data} ...", file=sys.stderr, flush=True)
                results[name] = run(name, args.data, args.cache, json.loads(args.options), args.tag,
                                    args.threads)
                results[name].pop("shapes", None)
            if "shapes" not in results[name] or args.rescore:
                print(f"evaluating {name} ...", file=sys.stderr, flush=True)
                results[name].update(score(train, test, pq.read_table(rows_path), args.data,
                                           privacy=not args.no_privacy))
            stored = json.loads(path.read_text()) if path.exists() else {}  # others may have written
            stored[name] = results[name]
            path.write_text(json.dumps(stored, indent=1))
            results = {**stored, **{n: results[n] for n in results if n not in stored}}
    rows = 32_561 if args.data == "adult" else None
    print(f"{args.data}: every synthesizer fitted in a fresh process on the training rows, sampled "
          f"{rows or 'as many'} rows, scored by datakiln.evaluate against the real holdout; {os.cpu_count()} "
          f"cores (shared). '!' = worse than real holdout rows (copies above the holdout's rate; "
          f"DCR share > 0.55)\n")
    print(table(args.data, results))
    print(curve(args.data, results))
    print(headline(results))


if __name__ == "__main__":
    main()
