"""SMOTE in NumPy (datakiln.balancing._smote) against imbalanced-learn: equal row for row, bit for bit."""

import numpy as np
import pyarrow as pa
import pytest
from imblearn.over_sampling import SMOTE

import datakiln
from datakiln.balancing import Balancer
from datakiln.balancing._smote import ClassNeighbours, smote_rows


def _data(rows: int, seed: int, classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = np.r_[0.8, np.full(classes - 1, 0.2 / (classes - 1))]
    y = rng.choice(classes, rows, p=p)
    x = rng.normal(size=(rows, 6)) * [1, 10, 0.1, 1e3, 1, 1] + y[:, None]
    return x, y


@pytest.mark.parametrize("seed", [0, 7, 123])
@pytest.mark.parametrize("k", [1, 5])
def test_smote_rows_equal_imbalanced_learn_bit_for_bit(seed, k):
    x, y = _data(4000, seed)
    reference = SMOTE(random_state=seed, k_neighbors=k)
    x_ref, y_ref = reference.fit_resample(x, y)
    columns, new_y = smote_rows(x, y, dict(reference.sampling_strategy_), k, seed)
    np.testing.assert_array_equal(columns.T, x_ref[len(x):])  # exact, not approximately
    np.testing.assert_array_equal(new_y, y_ref[len(y):])


def test_neighbour_graph_reused_across_chunks_equals_one_call_per_chunk():
    x, y = _data(3000, 1, classes=2)
    members = x[y == 1]
    graph = ClassNeighbours(members, 5)
    for seed in (10, 11):  # the per-class path: chunk i draws with seed + i from one graph
        wanted = {0: int((y == 0).sum()), 1: int((y == 1).sum()) + 700}
        x_ref, _ = SMOTE(sampling_strategy=wanted, random_state=seed).fit_resample(x, y)
        np.testing.assert_array_equal(graph.new_rows(700, seed).T, x_ref[len(x):])


def test_balance_smote_in_memory_equals_imbalanced_learn_and_keeps_the_input():
    x, y = _data(5000, 3)
    table = pa.table({f"x{i}": x[:, i] for i in range(6)} | {"y": y})
    balancer = Balancer("smote", seed=4)
    out = balancer.fit_resample(table, "y").to_arrow()
    x_ref, y_ref = SMOTE(random_state=4).fit_resample(x, y)
    got = np.column_stack([out[f"x{i}"].to_numpy() for i in range(6)])
    np.testing.assert_array_equal(got, x_ref)
    np.testing.assert_array_equal(out["y"].to_numpy(), y_ref)
    report = balancer.report_
    assert report.new_rows == len(y_ref) - len(y)
    assert sorted(report.counts_after.values()) == sorted(np.unique(y_ref, return_counts=True)[1].tolist())
    assert report.exact_copy_share == 0.0


def test_per_class_path_with_chunks_equals_imbalanced_learn_per_chunk(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    import datakiln.balancing._streaming as streaming

    monkeypatch.setattr(streaming, "NEW_CHUNK", 10_000)
    x, y = _data(60_000, 5, classes=2)
    table = pa.table({f"x{i}": x[:, i] for i in range(6)} | {"y": y})
    pq.write_table(table, tmp_path / "in.parquet", row_group_size=5000)
    out = datakiln.balance(datakiln.read(tmp_path / "in.parquet"), "y", method="smote", seed=2,
                           memory_budget="8MB", output=tmp_path / "out.parquet").to_arrow()
    got = np.column_stack([out[f"x{i}"].to_numpy() for i in range(6)])[len(y):]
    need = int((y == 0).sum() - (y == 1).sum())
    members = y == 1
    expected = []
    assert need > 30_000  # four chunks
    for index, start in enumerate(range(0, need, 10_000)):  # one imbalanced-learn call per chunk, seed + i
        n = min(10_000, need - start)
        wanted = {0: int((~members).sum()), 1: int(members.sum()) + n}
        x_ref, _ = SMOTE(sampling_strategy=wanted, random_state=2 + index).fit_resample(x, y)
        expected.append(x_ref[len(x):])
    np.testing.assert_array_equal(got, np.vstack(expected))
