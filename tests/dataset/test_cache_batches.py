"""The cache's record batches: large tables written as they come, small ones combined; same rows."""

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

import datakiln
from datakiln.dataset.cache import CACHE_BATCH_ROWS, MIN_BATCH_ROWS


def _table(rows: int) -> pa.Table:
    rng = np.random.default_rng(0)
    return pa.table({"x": rng.normal(size=rows), "s": np.array(["a", "bb", "ccc"])[np.arange(rows) % 3]})


def _batches(path) -> list[int]:
    with pa.memory_map(str(path)) as source:
        reader = ipc.open_file(source)
        return [reader.get_batch(i).num_rows for i in range(reader.num_record_batches)]


def test_large_row_groups_are_written_as_they_come(tmp_path):
    table = _table(MIN_BATCH_ROWS * 2 + 1000)
    pq.write_table(table, tmp_path / "big.parquet", row_group_size=MIN_BATCH_ROWS)
    cached = datakiln.read(tmp_path / "big.parquet").cache(tmp_path / "big.arrow")
    assert cached.to_arrow().equals(table)
    assert _batches(tmp_path / "big.arrow") == [MIN_BATCH_ROWS, MIN_BATCH_ROWS, 1000]


def test_small_tables_are_combined_into_full_batches(tmp_path):
    table = _table(CACHE_BATCH_ROWS + 5000)
    pq.write_table(table, tmp_path / "small.parquet", row_group_size=50_000)
    cached = datakiln.read(tmp_path / "small.parquet").cache(tmp_path / "small.arrow")
    assert cached.to_arrow().equals(table)
    sizes = _batches(tmp_path / "small.arrow")
    assert sizes[0] >= CACHE_BATCH_ROWS // 2 and sum(sizes) == table.num_rows and len(sizes) <= 3
