"""Transfer (seed 003): does warm-starting from related data help a synthesizer on 500 rows?

For each of the three largest ``occupation`` groups of Adult train (fixed in advance:
Prof-specialty, Craft-repair, Exec-managerial), a FlowMatching model is pretrained on
Adult train *without* the group; then, for each seed, 500 rows of the group are drawn and

- fine-tuned: ``FlowMatching(...).fit(rows, init=pretrained)``;
- alone: the same model and steps trained on the 500 rows only;
- pretrained only: the pretrained model, unchanged.

Each arm samples as many rows as the group has in the Adult test split, and
``datakiln.evaluate`` scores them against those real test rows (the ``occupation`` column,
constant within a group and unknown to the pretrained model, is left out): the fidelity
score (mean of column shapes and pair trends, higher is better) and the detection AUC
(lower is better). Mean ± std over the seeds.

    flock /tmp/datakiln-heavy.lock nice -n 5 python benchmarks/synth_transfer.py --seeds 5
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.conftest import ADULT_COLUMNS, ADULT_TRAIN  # noqa: E402

import datakiln  # noqa: E402

GROUPS = ["Prof-specialty", "Craft-repair", "Exec-managerial"]  # the three largest in Adult train
RESULTS = ROOT / "benchmarks" / "results" / "synth_transfer.json"


def _adult() -> tuple[pa.Table, pa.Table]:
    train = datakiln.read(ADULT_TRAIN, names=ADULT_COLUMNS).to_arrow()
    test = datakiln.read(ADULT_TRAIN.with_name("adult-test.csv"), names=ADULT_COLUMNS).to_arrow()
    index = test.schema.get_field_index("income")
    return train, test.set_column(index, "income", pc.replace_substring(test["income"], ".", ""))


def _score(real: pa.Table, synthetic: pa.Table) -> dict[str, float]:
    keep = [c for c in real.column_names if c != "occupation"]
    report = datakiln.evaluate(real.select(keep), synthetic.select(keep), privacy=False, seed=0)
    return {"fidelity": report.fidelity["score"], "detection_auc": report.fidelity["detection_auc"]}


def main() -> None:
    from datakiln.synth.neural.flow import FlowMatching

    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--pretrain-epochs", type=int, default=40)
    parser.add_argument("--tune-epochs", type=int, default=150)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--results", type=Path, default=RESULTS, help="the results JSON (resumed)")
    parser.add_argument("--table", action="store_true", help="print the cached results only")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    results = json.loads(args.results.read_text()) if args.results.exists() else {}
    if not args.table:
        train, test = _adult()
        size = {"hidden": args.hidden, "depth": 3, "device": "cpu", "threads": 1}
        for group in GROUPS:
            record = results.setdefault(group, {"runs": {}})
            if len(record["runs"]) >= args.seeds:
                continue
            mine = pc.equal(train["occupation"], group)
            others, rows = train.filter(pc.invert(mine)), train.filter(mine)
            real = test.filter(pc.equal(test["occupation"], group))
            started = time.perf_counter()
            pretrained = FlowMatching(epochs=args.pretrain_epochs, seed=0, **size).fit(others)
            record["pretrain_s"] = time.perf_counter() - started
            for seed in range(args.seeds):
                if str(seed) in record["runs"]:
                    continue
                draw = np.random.default_rng([3, seed])
                pick = np.sort(draw.choice(rows.num_rows, args.rows, replace=False))
                few = rows.take(pa.array(pick))
                tune = {"epochs": args.tune_epochs, "batch_size": 128, "validation": 0.0, "seed": seed,
                        **size}
                started = time.perf_counter()
                tuned = FlowMatching(**tune).fit(few, init=pretrained)
                tuned_s = time.perf_counter() - started
                alone = FlowMatching(**tune).fit(few)
                n = real.num_rows
                only = pretrained.sample(n, seed=seed)
                only = only.set_column(only.schema.get_field_index("occupation"), "occupation",
                                       pa.array([group] * n, type=only.schema.field("occupation").type))
                record["runs"][str(seed)] = {
                    "fine_tuned": _score(real, tuned.sample(n, seed=seed)),
                    "alone": _score(real, alone.sample(n, seed=seed)),
                    "pretrained_only": _score(real, only),
                    "tune_s": tuned_s,
                }
                args.results.write_text(json.dumps(results, indent=1))
                print(f"{group} seed {seed}: {record['runs'][str(seed)]}", file=sys.stderr, flush=True)
            record["test_rows"] = real.num_rows
            record["settings"] = {k: v for k, v in vars(args).items() if k not in ("results", "table")}
            args.results.write_text(json.dumps(results, indent=1))
    print(report(results))


def report(results: dict) -> str:
    lines = ["FlowMatching on Adult, per occupation group: pretrained without the group, fine-tuned on 500 "
             "of its rows, scored against its test rows (occupation left out); mean ± std over seeds\n",
             f"| {'group':16} | {'seeds':>5} | {'fine-tuned fidelity':>19} | {'alone fidelity':>16} | "
             f"{'pretrained fidelity':>19} | {'fine-tuned det AUC':>18} | {'alone det AUC':>15} | "
             f"{'pretrained det AUC':>18} |"]
    lines.append("|" + "|".join("-" * len(p) for p in lines[-1].split("|")[1:-1]) + "|")
    wins = []
    for group in GROUPS:
        runs = list(results.get(group, {}).get("runs", {}).values())
        if not runs:
            continue

        def stat(arm: str, key: str, runs: list = runs) -> str:  # type: ignore[type-arg]
            values = np.array([r[arm][key] for r in runs], dtype=float)
            return f"{values.mean():.3f} ± {values.std(ddof=1) if len(values) > 1 else 0:.3f}"

        lines.append(f"| {group:16} | {len(runs):5d} | {stat('fine_tuned', 'fidelity'):>19} | "
                     f"{stat('alone', 'fidelity'):>16} | {stat('pretrained_only', 'fidelity'):>19} | "
                     f"{stat('fine_tuned', 'detection_auc'):>18} | {stat('alone', 'detection_auc'):>15} | "
                     f"{stat('pretrained_only', 'detection_auc'):>18} |")
        tuned = np.mean([r["fine_tuned"]["fidelity"] for r in runs])
        best_other = max(np.mean([r[a]["fidelity"] for r in runs]) for a in ("alone", "pretrained_only"))
        wins.append(tuned > best_other)
    lines.append(f"\nfine-tuning has the best mean fidelity in {sum(wins)} of {len(wins)} groups")
    settings = next((r.get("settings") for r in results.values() if r.get("settings")), None)
    if settings:
        pretrain = [round(r["pretrain_s"]) for r in results.values() if "pretrain_s" in r]
        tune = [r["tune_s"] for g in results.values() for r in g.get("runs", {}).values()]
        lines.append(f"settings: {settings}; pretraining {pretrain} s per group, fine-tuning "
                     f"{np.mean(tune):.1f} s on average (one torch thread)")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
