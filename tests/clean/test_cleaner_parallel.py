"""The Cleaner's main pass runs its row-wise steps on threads: same rows, order and report as serial."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import datakiln
import datakiln.clean.cleaner as cleaner_module
from datakiln.clean import Cleaner, DropDuplicates, Impute, Outliers, RepairTypes


def _dirty(rows: int = 200_000) -> pa.Table:
    rng = np.random.default_rng(0)
    base = np.arange(rows)
    again = rng.random(rows) < 0.05  # duplicates of rows far earlier: across tables
    source = np.where(again, rng.integers(0, rows, rows) // 2, base)
    x = rng.normal(size=rows)
    x[rng.random(rows) < 0.001] = 1e9
    table = pa.table({"id": source % 20_000, "x": x[source],
                      "city": np.array([" a", "b ", "c"])[source % 3]})
    return table.set_column(1, "x", pc.if_else(pa.array(rng.random(rows) < 0.05), None, table["x"]))


def _clean(path, out, threads):
    cleaner_module.STAGE_THREADS = threads
    cleaner = Cleaner([RepairTypes(numbers=False, dates=False, case=False), DropDuplicates(),
                       Impute(strategy="median"), Outliers(method="iqr", action="clip")],
                      memory_budget="8MB")  # several tables
    tables = []
    result = cleaner.fit(datakiln.read(path)).transform(datakiln.read(path), output=out,
                                                        on_progress=tables.append).to_arrow()
    assert len(tables) > 10  # the pass really is over many tables
    return result, cleaner.report_.to_dict()


def test_parallel_main_pass_equals_serial(tmp_path, monkeypatch):
    monkeypatch.setattr(cleaner_module, "STAGE_THREADS", 2)
    path = tmp_path / "dirty.parquet"
    pq.write_table(_dirty(), path, row_group_size=2000)
    serial, serial_report = _clean(path, tmp_path / "a.parquet", 1)
    parallel, parallel_report = _clean(path, tmp_path / "b.parquet", 3)
    assert parallel.equals(serial)
    assert parallel_report == serial_report
    duplicates = serial_report["steps"][1]
    assert duplicates["rows_removed"] > 1000 and serial.num_rows == duplicates["rows_out"]
    assert serial["x"].null_count == 0 and pc.max(serial["x"]).as_py() < 1e9
    assert serial["city"].to_pylist()[:3] == ["a", "b", "c"]
