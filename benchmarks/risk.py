"""Re-identification risk on Adult: datakiln.privacy.risk against pycanon, and the k = 10 search.

Part 1 times the same seven measures (k, distinct l, entropy l, t, alpha, basic beta, delta)
with datakiln (streaming group counts over the CSV) and with pycanon (on a pandas frame read
beforehand, reading not timed), medians of --runs, and checks that the values agree.
Part 2 runs ``generalize_to_k(k=10, max_suppression=1%)`` under both loss metrics, with the
default hierarchies and with the Adult hierarchy file, and prints k, l, t before and after,
the suppressed share, the loss against the naive global recoding, and the runtime.

Part 3 (``--scale ROWS``) generates a Parquet table of ROWS rows (age, a 30,000-value ZIP,
sex, income) in a temporary folder and measures ``risk`` and ``generalize_to_k`` on it in a
child process (wall time and peak RSS from the operating system).

    python benchmarks/risk.py [--data ../shared/datasets/adult/adult-train.csv] [--runs 3]
                              [--scale 10000000]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COLUMNS = ["age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
           "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week",
           "native-country", "income"]
QI = ["age", "sex", "race", "native-country", "education"]
SA = ["income"]


def _median(fn, runs: int) -> tuple[float, object]:
    times, value = [], None
    for _ in range(runs):
        started = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), value


def _pycanon_all(frame):
    from pycanon import anonymity as a

    return {"k": a.k_anonymity(frame, QI), "l": a.l_diversity(frame, QI, SA),
            "l_entropy": a.entropy_l_diversity(frame, QI, SA), "t": a.t_closeness(frame, QI, SA),
            "alpha": a.alpha_k_anonymity(frame, QI, SA)[0], "beta": a.basic_beta_likeness(frame, QI, SA),
            "delta": a.delta_disclosure(frame, QI, SA)}


_CHILD = """
import json, resource, sys, time
import datakiln
from datakiln.privacy import generalize_to_k, risk
ds = datakiln.read(sys.argv[1])
started = time.perf_counter()
r = risk(ds, ["age", "zip", "sex"], ["income"], k=10, memory_budget="2GB")
middle = time.perf_counter()
out, rep = generalize_to_k(ds, ["age", "zip", "sex"], k=10, hierarchies={"zip": "suppress"})
print(json.dumps({"rows": r.rows, "classes": r.classes, "k": r.k, "below": r.share_below_k,
                  "risk_s": middle - started, "search_s": time.perf_counter() - middle,
                  "levels": rep.levels, "k_after": rep.k_achieved, "suppressed": rep.suppressed_share,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def scale(rows: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from _scale import run_child

    folder = Path(tempfile.mkdtemp(prefix="datakiln-risk-"))
    rng = np.random.default_rng(0)
    per = 1_000_000
    for i in range((rows + per - 1) // per):
        n = min(per, rows - i * per)
        pq.write_table(pa.table({
            "age": rng.integers(17, 91, n), "zip": rng.integers(10000, 40000, n).astype(str),
            "sex": rng.choice(["F", "M"], n), "income": rng.choice(["<=50K", ">50K"], n, p=[.76, .24]),
        }), folder / f"part-{i:04d}.parquet", row_group_size=100_000)
    try:
        got = run_child(_CHILD, str(folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"\nscale: {got['rows']:,} rows, {got['classes']:,} classes (k={got['k']}, "
          f"{got['below']:.2%} of rows below 10): risk {got['risk_s']:.1f} s; generalize_to_k(k=10) "
          f"{got['search_s']:.1f} s -> levels {got['levels']}, k {got['k_after']}, "
          f"{got['suppressed']:.3%} suppressed; peak RSS {got['rss_mb']:,.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared/datasets/adult/adult-train.csv")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", type=int, default=0, help="also measure a generated table this long")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))

    import datakiln
    from datakiln.privacy import generalize_to_k, risk

    ds = datakiln.read(args.data, names=COLUMNS)
    frame = ds.to_pandas()
    frame[QI] = frame[QI].astype(object).where(frame[QI].notna(), "?")  # pycanon drops null keys
    ours_s, ours = _median(lambda: risk(ds, QI, SA, k=10), args.runs)
    theirs_s, theirs = _median(lambda: _pycanon_all(frame), args.runs)
    print(f"Adult {ours.rows:,} rows, quasi-identifiers {', '.join(QI)}; sensitive income")
    print(f"{'measure':<10} {'datakiln':>12} {'pycanon':>12}")
    for name, value in theirs.items():
        mine = getattr(ours, name)
        assert abs(mine - value) <= 1e-9 * max(1.0, abs(value)), (name, mine, value)
        print(f"{name:<10} {mine:>12.6g} {value:>12.6g}")
    print(f"{'seconds':<10} {ours_s:>12.3f} {theirs_s:>12.3f}   (median of {args.runs}; 7 measures)")

    print()
    print(f"{'hierarchies':<12} {'metric':<15} {'levels (age,sex,race,country,edu)':<34} {'supp.':>6} "
          f"{'loss':>7} {'naive':>7} {'DM':>12} {'naive DM':>12} {'k':>4} {'l':>3} {'t':>6} {'s':>6}")
    before = ours
    print(f"{'(none)':<12} {'':<15} {'0,0,0,0,0':<34} {0:>6.2%} {0:>7.4f} {'':>7} {'':>12} {'':>12} "
          f"{before.k:>4} {before.l:>3} {before.t:>6.4f} {'':>6}")
    hierarchy_file = REPO / "tests/data/adult/hierarchies/adult.yaml"
    for label, hierarchies in (("default", None), ("adult.yaml", hierarchy_file)):
        for metric in ("discernibility", "loss"):
            seconds, (out, rep) = _median(
                lambda h=hierarchies, m=metric: generalize_to_k(ds, QI, k=10, hierarchies=h, metric=m),
                args.runs)
            after = risk(out, QI, SA, k=10)
            levels = ",".join(str(v) for v in rep.levels.values())
            print(f"{label:<12} {metric:<15} {levels:<34} {rep.suppressed_share:>6.2%} {rep.loss:>7.4f} "
                  f"{rep.naive['loss']:>7.4f} {rep.discernibility:>12,.0f} "
                  f"{rep.naive['discernibility']:>12,.0f} {after.k:>4} {after.l:>3} {after.t:>6.4f} "
                  f"{seconds:>6.2f}")
    if args.scale:
        scale(args.scale)
    print(f"datakiln.privacy.risk is {theirs_s / ours_s:.0f}x faster than pycanon on Adult "
          f"(same 7 measures, equal values; {ours_s:.2f} s vs {theirs_s:.2f} s)")


if __name__ == "__main__":
    main()
