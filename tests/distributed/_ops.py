"""Every operation of issue 17's list, run once locally and once on Ray, compared.

``outcomes(ds, target, tmp)`` runs profile, Cleaner fit/transform, split, GaussianCopula
fit + sample, evaluate (fidelity), random over/under-sampling and a multi-file write on
``ds`` under the engine active at the call, and returns plain results; ``assert_same``
compares two such results (exact for counts, categories, rows and files; 1e-9 relative
for floats: per-block sums merged in the same order, so they agree to the last bits or
nearly).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import datakiln
from datakiln.clean import Cleaner
from datakiln.synth import GaussianCopula

TIMING = {"seconds", "rows_per_second", "elapsed", "fit_seconds", "sample_seconds", "time"}


def without_timing(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_timing(v) for k, v in value.items() if k not in TIMING and "seconds" not in k}
    if isinstance(value, list):
        return [without_timing(v) for v in value]
    return value


def as_parquet(table: pa.Table, path: Path, row_group_rows: int) -> Path:
    """``table`` as one Parquet file of several row groups (several read tasks)."""
    pq.write_table(table, path, row_group_size=row_group_rows)
    return path


def adult_case(folder: Path) -> tuple[datakiln.Dataset, str, list[str] | None]:
    """The Adult sample (600 real rows) as Parquet of six row groups: six Ray tasks a pass."""
    from tests.conftest import ADULT_COLUMNS, sample_dataset

    table = datakiln.read(sample_dataset("adult/adult-train.csv"), names=ADULT_COLUMNS).to_arrow()
    return datakiln.read(as_parquet(table, folder / "adult.parquet", 100)), "income", None


def generated_case(folder: Path) -> tuple[datakiln.Dataset, str, list[str] | None]:
    """A generated table of every column kind (nulls, unicode, decimals, time zones) as Parquet
    of eight row groups; the samplers get its columns without nulls."""
    from tests.conftest import every_kind_table

    table = every_kind_table(1200, seed=4)
    table = table.append_column("label", pa.array(["a", "b", "b", "c"] * 300))
    return (datakiln.read(as_parquet(table, folder / "generated.parquet", 150)), "label",
            ["id", "price", "label"])


CASES = {"adult": adult_case, "generated": generated_case}


def outcomes(ds: datakiln.Dataset, target: str, tmp: Path, name: str,
             complete: list[str] | None = None) -> dict[str, Any]:
    """The results of every operation; ``complete``: columns without nulls for the samplers."""
    out: dict[str, Any] = {}
    out["profile"] = without_timing(ds.profile(sample_rows=256).to_dict())
    cleaner = Cleaner().fit(ds)
    out["cleaned"] = cleaner.transform(ds).to_arrow()
    out["clean_report"] = without_timing(json.loads(json.dumps(cleaner.report_.to_dict(), default=str)))
    parts = datakiln.split(ds, (0.7, 0.3), stratify=target, seed=3)
    out["split"] = {k: parts[k].to_arrow() for k in parts.datasets}
    model = GaussianCopula(by=None).fit(ds)
    state, arrays = model._to_state()
    out["copula_state"] = without_timing(json.loads(json.dumps(state, default=str)))
    out["copula_arrays"] = arrays
    out["copula_sample"] = model.sample(300, seed=11)
    synthetic = out["copula_sample"]
    report = datakiln.evaluate(ds, synthetic, detection=False, privacy=False, seed=0)
    out["fidelity"] = without_timing(report.to_dict()["fidelity"])
    rows = ds if complete is None else ds.select(complete)
    out["over"] = datakiln.balance(rows, target, method="random_over", seed=5).to_arrow()
    out["under"] = datakiln.balance(rows, target, method="random_under", seed=5).to_arrow()
    written = ds.write(tmp / f"{name}-parts", rows_per_file=max(1, ds.count() // 4))
    out["written"] = datakiln.read(written.path).to_arrow()
    out["files"] = sorted(p.name for p in Path(written.path).iterdir())
    return out


def assert_close(a: Any, b: Any, where: str = "") -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), (where, set(a) ^ set(b))
        for key in a:
            assert_close(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_close(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert a.shape == b.shape and a.dtype == b.dtype, where
        if a.dtype.kind == "f":
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=where)
        else:
            np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, pa.Table):
        assert a.schema.equals(b.schema), where
        assert a.equals(b), f"{where}: tables differ"
    elif isinstance(a, float) and isinstance(b, float):
        assert (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), \
            (where, a, b)
    else:
        assert a == b, (where, a, b)


def assert_same(local: dict[str, Any], remote: dict[str, Any]) -> None:
    assert local.keys() == remote.keys()
    for key in local:
        assert_close(local[key], remote[key], key)
