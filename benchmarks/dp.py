"""Differentially private synthesis on Adult: privacy budget ε against utility, datakiln vs smartnoise-synth.

For ε ∈ {0.1, 0.5, 1, 2, 5, ∞} (δ = 1e-6, zCDP accounting) and ``--runs`` seeds each
(default 5), every contestant is fitted on the full Adult training split (32,561 rows) with
the public domain ``examples/adult-domain.yaml`` and sampled to the same size; reported as
mean ± std over the runs:

- TSTR ROC AUC: a HistGradientBoosting model trained on the synthetic rows, tested on the
  real Adult test split (16,281 rows); the same model trained on the real rows is the ceiling;
- fidelity: ``datakiln.evaluate``'s overall quality score (column shapes and pair trends);
- MIA AUC: ``datakiln.evaluate``'s privacy section, a distance-to-synthetic membership
  attack telling training rows from the test split's (0.5: nothing learned);
- fit seconds (the fit alone, this machine's cores).

Contestants: datakiln's DP Gaussian copula (``GaussianCopula(epsilon=...)``) and
``MSTSynthesizer``; smartnoise-synth's MST and AIM (installed apart, see pyproject's bench note) when
importable — ``--peer-path`` adds a folder holding it to ``sys.path`` of the peer's process
only. ε = ∞ runs the same pipelines without noise (discretisation loss alone). Every
contestant and ε runs in its own process.

    python benchmarks/dp.py [--runs 5] [--peer-path /tmp/p5-sn-lib] [--peer-timeout 600]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
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

DOMAIN = ROOT / "examples" / "adult-domain.yaml"
EPSILONS = [0.1, 0.5, 1.0, 2.0, 5.0, math.inf]
DELTA = 1e-6
CONTESTANTS = {"copula": "datakiln DP GaussianCopula", "mst": "datakiln MSTSynthesizer",
               "sn-mst": "smartnoise-synth MST", "sn-aim": "smartnoise-synth AIM"}


def _tables() -> tuple[pa.Table, pa.Table]:
    train = datakiln.read(ADULT_TRAIN, names=ADULT_COLUMNS).to_arrow()
    test = datakiln.read(Path(ADULT_TRAIN).with_name("adult-test.csv"), names=ADULT_COLUMNS).to_arrow()
    index = test.schema.get_field_index("income")
    return train, test.set_column(index, "income", pc.replace_substring(test["income"], ".", ""))


def tstr_auc(train: pa.Table, test: pa.Table) -> float:
    """ROC AUC of ">50K" on ``test`` for a HistGradientBoosting model trained on ``train``."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    features = [c for c in ADULT_COLUMNS if c != "income"]
    both = pa.concat_tables([train.select(ADULT_COLUMNS).cast(test.schema), test]).to_pandas()
    for name in features:
        if both[name].dtype == object:
            both[name] = both[name].astype("category")
    x, y = both[features], (both["income"] == ">50K").to_numpy()
    n = train.num_rows
    if len(set(y[:n])) < 2:
        return 0.5
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
    model.fit(x.iloc[:n], y[:n])
    return float(roc_auc_score(y[n:], model.predict_proba(x.iloc[n:])[:, 1]))


def _fit_datakiln(which: str, train: pa.Table, epsilon: float, seed: int) -> tuple[pa.Table, float]:
    from datakiln.synth import GaussianCopula, MSTSynthesizer

    make = GaussianCopula if which == "copula" else MSTSynthesizer
    started = time.perf_counter()
    model = make(epsilon=epsilon, delta=DELTA, domain=DOMAIN, seed=seed).fit(train)
    seconds = time.perf_counter() - started
    spent = model.dp_["spent"]["epsilon"]
    assert spent == "inf" or spent <= epsilon * (1 + 1e-9), spent
    return model.sample(train.num_rows, seed=seed), seconds


def _fit_smartnoise(which: str, train: pa.Table, epsilon: float, seed: int) -> tuple[pa.Table, float]:
    """smartnoise-synth's MST or AIM on the same public domain (its BinTransformer / LabelTransformer)."""
    from snsynth import Synthesizer
    from snsynth.transform import BinTransformer, LabelTransformer, TableTransformer

    from datakiln.synth.dp import load_domain

    domain = load_domain(DOMAIN)
    frame = train.to_pandas()
    transformers = []
    for name in frame.columns:
        declared = domain.columns[name]
        if declared.kind == "numeric":
            transformers.append(BinTransformer(bins=min(32, declared.bins), lower=declared.low,
                                               upper=declared.high, nullable=True))
        else:
            transformers.append(LabelTransformer(nullable=True))
    np.random.seed(seed)  # smartnoise draws from NumPy's global state
    synth = Synthesizer.create(which.removeprefix("sn-"), epsilon=1e6 if math.isinf(epsilon) else epsilon,
                               delta=DELTA, verbose=False)
    started = time.perf_counter()
    synth.fit(frame, transformer=TableTransformer(transformers), preprocessor_eps=0.0)
    seconds = time.perf_counter() - started
    sample = pa.Table.from_pandas(synth.sample(len(frame))[list(frame.columns)], preserve_index=False)
    for index, field in enumerate(train.schema):  # its bins decode to floats: round integer columns
        if pa.types.is_integer(field.type):
            sample = sample.set_column(index, field.name, pc.round(sample[field.name].cast(pa.float64())))
    return sample, seconds


def child(which: str, epsilon: float, runs: int, out: Path) -> None:
    """All runs of one contestant at one ε, in this fresh process; results as JSON to ``out``."""
    warnings.filterwarnings("ignore")
    train, test = _tables()
    results = []
    for seed in range(runs):
        fit = _fit_datakiln if which in ("copula", "mst") else _fit_smartnoise
        synthetic, seconds = fit(which, train, epsilon, seed)
        synthetic = synthetic.select(ADULT_COLUMNS).cast(train.schema)
        report = datakiln.evaluate(train, synthetic, holdout=test, detection=False, seed=seed)
        results.append({"tstr": tstr_auc(synthetic, test), "fidelity": report.fidelity["score"],
                        "mia": report.privacy.get("membership_auc"), "fit_s": seconds})
        out.write_text(json.dumps(results))


def _run(which: str, epsilon: float, runs: int, timeout: float, peer_path: str | None) -> tuple[list, str]:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "result.json"
        env = dict(os.environ)
        if which.startswith("sn-") and peer_path:
            env["PYTHONPATH"] = os.pathsep.join([peer_path, env.get("PYTHONPATH", "")])
        command = [sys.executable, __file__, "--child", which, str(epsilon), str(runs), str(out)]
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            results = json.loads(out.read_text()) if out.exists() else []
            return results, f"timed out after {timeout:.0f} s ({len(results)} runs done)"
        results = json.loads(out.read_text()) if out.exists() else []
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            return results, f"failed: {last[:120]}"
        return results, ""


def _cell(values: list[float | None], digits: int = 3) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {std:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--epsilons", default=",".join(map(str, EPSILONS)))
    parser.add_argument("--contestants", default=",".join(CONTESTANTS))
    parser.add_argument("--peer-path", default=None,
                        help="folder with smartnoise-synth (added to its process)")
    parser.add_argument("--peer-timeout", type=float, default=600, help="seconds per peer process")
    parser.add_argument("--peer-runs", type=int, default=None, help="runs per peer cell (default: --runs)")
    parser.add_argument("--peer-epsilons", default=None, help="the peers' epsilons (default: --epsilons)")
    parser.add_argument("--child", nargs=4, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        which, epsilon, runs, out = args.child
        child(which, float(epsilon), int(runs), Path(out))
        return
    train, test = _tables()
    real = tstr_auc(train, test)
    print(f"Adult: {train.num_rows:,} training rows, {test.num_rows:,} test rows; delta={DELTA:g}; "
          f"{args.runs} runs per cell (mean ± std); TSTR ROC AUC of a model trained on the real rows: "
          f"{real:.3f}")
    print(f"{'contestant':<28} {'epsilon':>7}  {'TSTR ROC AUC':>15}  {'fidelity':>15}  {'MIA AUC':>15}  "
          f"{'fit s':>13}  note")
    table: dict[tuple[str, float], list] = {}
    for which in args.contestants.split(","):
        peer = which.startswith("sn-")
        epsilons = (args.peer_epsilons or args.epsilons) if peer else args.epsilons
        for epsilon in (float(e) for e in epsilons.split(",")):
            runs = (args.peer_runs or args.runs) if peer else args.runs
            results, note = _run(which, epsilon, runs, args.peer_timeout if peer else 3600, args.peer_path)
            table[(which, epsilon)] = results
            eps_text = "inf" if math.isinf(epsilon) else f"{epsilon:g}"
            print(f"{CONTESTANTS[which]:<28} {eps_text:>7}  {_cell([r['tstr'] for r in results]):>15}  "
                  f"{_cell([r['fidelity'] for r in results]):>15}  {_cell([r['mia'] for r in results]):>15}  "
                  f"{_cell([r['fit_s'] for r in results], 2):>13}  {note or f'{len(results)} runs'}",
                  flush=True)
    ours = table.get(("copula", 1.0)) or []
    low = table.get(("copula", 0.1)) or []
    if ours and low:
        left = (statistics.mean(r["tstr"] for r in low) - 0.5) / (real - 0.5)
        print(f"at epsilon=0.1 the DP copula keeps {left:.0%} of the real data's lift over chance (TSTR)")
    peer = table.get(("sn-mst", 1.0)) or []
    if ours and peer:
        ratio = statistics.mean(r["tstr"] for r in ours) / statistics.mean(r["tstr"] for r in peer)
        print(f"headline: at epsilon=1, datakiln DP copula TSTR ROC AUC / smartnoise-synth MST = {ratio:.3f}")
    elif ours:
        ratio = statistics.mean(r["tstr"] for r in ours) / real
        print(f"headline: at epsilon=1, datakiln DP copula TSTR ROC AUC / real-data TSTR = {ratio:.3f} "
              f"(smartnoise-synth did not run here; see its rows)")


if __name__ == "__main__":
    main()
