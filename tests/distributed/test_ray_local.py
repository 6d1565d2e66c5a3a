"""The Ray engine on a local Ray (``ray.init(num_cpus=2)``, started once for this module).

Every operation of issue 17 gives the local result on Ray (Adult sample as Parquet of six
row groups, so six Ray tasks a pass); ``to_ray`` / ``from_ray`` keep Arrow blocks; the
loader over a Ray dataset keeps its exact order, shards and resume, and Ray Train workers
get disjoint shards by rank.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from tests.conftest import ADULT_COLUMNS, sample_dataset
from tests.distributed._ops import CASES, as_parquet, assert_same, outcomes, without_timing

import datakiln
from datakiln.synth import GaussianCopula

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'datakiln[ray]')")
from datakiln.distributed import ray as dray  # noqa: E402

#: the moto server's test credentials, set for the Ray workers as a cluster sets them on its
#: nodes (datakiln never passes credentials to tasks); the s3_bucket fixture sets the same here
S3_ENV = {"AWS_ACCESS_KEY_ID": "datakiln-test-key", "AWS_SECRET_ACCESS_KEY": "datakiln-test-secret-4f7a",
          "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def local_ray(moto_endpoint: str):
    assert not ray.is_initialized()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {**S3_ENV, "AWS_ENDPOINT_URL": moto_endpoint}})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def adult_parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    table = datakiln.read(sample_dataset("adult/adult-train.csv"), names=ADULT_COLUMNS).to_arrow()
    return as_parquet(table, tmp_path_factory.mktemp("adult") / "adult.parquet", 100)


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_operation_on_ray_equals_the_local_run(local_ray, case: str, tmp_path: Path):
    ds, target, complete = CASES[case](tmp_path)
    local = outcomes(ds, target, tmp_path, "local", complete)
    with datakiln.engine("ray") as engine:
        engine.nodes_used.clear()
        on_ray = outcomes(ds, target, tmp_path, "ray", complete)
        tasks = sum(engine.nodes_used.values())
    assert tasks >= 6 * 8  # six or eight row groups, read and summarised as Ray tasks every pass
    assert_same(local, on_ray)
    assert local["files"][0] == "_datakiln.json" and len(local["files"]) == 5  # four parts + manifest


def test_engine_switch_on_read_and_sampling_by_seed(local_ray, adult_parquet: Path):
    ds = datakiln.read(adult_parquet)
    local = without_timing(ds.profile(sample_rows=256).to_dict())
    # engine= on read() is the same switch as the block
    again = datakiln.read(adult_parquet, engine="ray").profile(sample_rows=256).to_dict()
    assert_same({"profile": local}, {"profile": without_timing(again)})

    # sampling partitioned by seed: chunks run as Ray tasks give the rows of the local sample
    model = GaussianCopula(by=None).fit(ds)
    rows = 2 * 65_536 + 123  # three chunks
    assert dray.sample(model, rows, seed=7).equals(model.sample(rows, seed=7))
    conditioned = dray.sample(model, 500, conditions={"sex": "Female"}, seed=1)
    assert conditioned.equals(model.sample(500, conditions={"sex": "Female"}, seed=1))
    assert set(conditioned["sex"].to_pylist()) == {"Female"}


def test_ray_errors_are_datakiln_errors(local_ray, adult_parquet: Path):
    def broken(table: pa.Table) -> pa.Table:
        raise datakiln.SchemaError("column 'age' is broken in this batch; fix the file")

    with pytest.raises(datakiln.SchemaError, match="column 'age' is broken"):
        datakiln.read(adult_parquet, engine="ray").map_batches(broken).count()
    with pytest.raises(datakiln.InvalidArgumentError, match="'local' or 'ray'"):
        datakiln.read(adult_parquet, engine="spark")


def test_to_ray_from_ray_and_the_loader_over_ray_blocks(local_ray, adult_parquet: Path):
    ds = datakiln.read(adult_parquet).select(["age", "sex", "income"])
    table = ds.to_arrow()
    ray_ds = ds.to_ray()
    blocks = [ray.get(ref) for ref in ray_ds.to_arrow_refs()]
    assert all(isinstance(b, pa.Table) for b in blocks)  # Arrow blocks, no pandas round trip
    assert len(blocks) == 6 and pa.concat_tables(blocks).equals(table)

    back = datakiln.from_ray(ray_ds.map_batches(lambda t: t, batch_format="pyarrow"))
    assert back.count() == table.num_rows and back.to_arrow().equals(table)
    again = datakiln.from_ray(ray.data.from_arrow(blocks))
    assert again.fingerprint == back.fingerprint  # content, not object identity

    # the loader's order over Ray blocks is the local loader's order for the same key
    kwargs = {"seed": 3, "key": "adult-v1", "format": "arrow", "even_batches": "spread"}
    want = [b["age"].to_pylist() for b in datakiln.from_arrow(table).loader(50, **kwargs)]
    got = [b["age"].to_pylist() for b in back.loader(50, **kwargs)]
    assert got == want
    shards = [[v for b in back.loader(50, rank=r, world_size=2, **kwargs) for v in b["age"].to_pylist()]
              for r in range(2)]
    assert sorted(shards[0] + shards[1]) == sorted(table["age"].to_pylist())
    loader = back.loader(50, **kwargs)
    it = iter(loader)
    first = [next(it)["age"].to_pylist() for _ in range(5)]
    state = loader.state_dict()
    resumed = back.loader(50, **kwargs)
    resumed.load_state_dict(json.loads(json.dumps(state)))
    assert first + [b["age"].to_pylist() for b in resumed] == want


def test_ray_train_workers_get_disjoint_shards_by_rank(local_ray, adult_parquet: Path, tmp_path: Path):
    from ray.train import ScalingConfig
    from ray.train.v2.api.data_parallel_trainer import DataParallelTrainer

    ds = datakiln.from_ray(datakiln.read(adult_parquet).select(["fnlwgt", "age"]).to_ray())

    def loop(config: dict) -> None:
        import ray.train

        loader = dray.train_loader(config["ds"], 64, seed=1, key="k", even_batches="spread")
        rows = [int(v) for batch in loader for v in batch["fnlwgt"]]
        rank = ray.train.get_context().get_world_rank()
        Path(config["out"], f"rank{rank}.json").write_text(json.dumps(rows))

    DataParallelTrainer(loop, train_loop_config={"ds": ds, "out": str(tmp_path)},
                        scaling_config=ScalingConfig(num_workers=2, resources_per_worker={"CPU": 0.5})).fit()
    shards = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    everything = ds.to_arrow()["fnlwgt"].to_pylist()
    assert sorted(shards[0] + shards[1]) == sorted(everything)
    assert abs(len(shards[0]) - len(shards[1])) <= 64
    local = [[int(v) for b in ds.with_engine("local").loader(64, seed=1, key="k", even_batches="spread",
                                                            rank=r, world_size=2) for v in b["fnlwgt"]]
             for r in range(2)]
    assert shards == local  # the same shards a plain loader with that rank gives
    assert np.unique(everything).size > 500


def test_workers_write_parts_to_s3_and_the_manifest_commits_last(local_ray, adult_parquet: Path,
                                                                  s3_bucket: str):
    ds = datakiln.read(adult_parquet)
    url = f"{s3_bucket}/adult"
    with datakiln.engine("ray") as engine:
        engine.nodes_used.clear()
        written = dray.write(ds.select(["age", "income"]), url)
        assert sum(engine.nodes_used.values()) == 6  # six parts, uploaded by the Ray tasks
    assert len(written) == 6
    assert datakiln.read(url).to_arrow().equals(ds.select(["age", "income"]).to_arrow())

    def broken(table: pa.Table) -> pa.Table:
        if table["age"][0].as_py() == ds.to_arrow()["age"][300].as_py():
            raise datakiln.SchemaError("batch 4 is broken")
        return table

    import s3fs

    fs = s3fs.S3FileSystem()
    with datakiln.engine("ray"), pytest.raises(datakiln.SchemaError, match="batch 4 is broken"):
        dray.write(ds.map_batches(broken), f"{s3_bucket}/failed")
    with pytest.raises(datakiln.SourceNotFoundError):
        datakiln.read(f"{s3_bucket}/failed").to_arrow()  # nothing committed, nothing read
    fs.invalidate_cache()
    assert not [p for p in fs.find(s3_bucket) if "/failed/" in p and "part-" in p]  # parts deleted
