"""The Ray engine on a simulated three-node cluster (``ray.cluster_utils.Cluster``: a head and
two worker nodes on this machine, one CPU each), started once for this module.

The Adult sample and a generated table (every column kind, nulls, unicode, decimals, time
zones), each as Parquet of several row groups: every operation gives the local result, and
the tasks ran on all three nodes (each node is its own raylet, workers and object store).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.distributed._ops import CASES, assert_same, outcomes

import datakiln

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'datakiln[ray]')")


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    assert not ray.is_initialized()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
    yield cluster
    ray.shutdown()
    cluster.shutdown()


@pytest.mark.parametrize("case", sorted(CASES))
def test_three_node_cluster_equals_the_local_run(cluster, case: str, tmp_path: Path):
    ds, target, complete = CASES[case](tmp_path)
    local = outcomes(ds, target, tmp_path, "local", complete)
    with datakiln.engine("ray", address=cluster.address) as engine:
        engine.nodes_used.clear()
        on_ray = outcomes(ds, target, tmp_path, "ray", complete)
    assert_same(local, on_ray)
    alive = {node["NodeID"] for node in ray.nodes() if node["Alive"]}
    assert len(alive) == 3
    assert set(engine.nodes_used) == alive, engine.nodes_used  # tasks ran on all three nodes
    assert min(engine.nodes_used.values()) >= 10
