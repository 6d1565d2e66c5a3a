"""Pipelines: cached stages keyed by inputs + settings, force/until/dry run, failures, validation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

import datakiln
from datakiln.errors import DatakilnError, SchemaError
from datakiln.pipeline import Pipeline, StageError

DATA = Path(__file__).resolve().parents[1] / "data"
ADULT = DATA / "adult" / "adult-train.csv"
COLUMNS = ["age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
           "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week",
           "native-country", "income"]


def adult_stages(csv: Path, clean_steps: list[Any] | None = None,
                 out: str = "synthetic.parquet") -> list[dict]:
    return [
        {"name": "read", "stage": "read", "path": str(csv), "options": {"header": False, "names": COLUMNS}},
        {"name": "clean", "stage": "clean", "input": "read",
         "config": {"steps": clean_steps or [{"repair": {}}, {"duplicates": {}}]}},
        {"name": "split", "stage": "split", "input": "clean", "fractions": [0.8, 0.2],
         "stratify": "income", "seed": 0},
        {"name": "fit", "stage": "synth.fit", "input": "split.train"},
        {"name": "sample", "stage": "synth.sample", "model": "fit", "n": 200, "seed": 0},
        {"name": "write", "stage": "write", "input": "sample", "path": out},
    ]


def make(tmp_path: Path, stages: list[dict] | None = None) -> Pipeline:
    return Pipeline(stages or adult_stages(ADULT), base=tmp_path, cache_dir=tmp_path / "cache",
                    output_dir="run")


def statuses(report: Any) -> dict[str, str]:
    return {s.name: s.status for s in report.stages}


def test_runs_end_to_end_and_links_reports(tmp_path: Path) -> None:
    report = make(tmp_path).run()
    assert statuses(report) == dict.fromkeys(["read", "clean", "split", "fit", "sample", "write"],
                                             "computed")
    rows = {s.name: s.rows for s in report.stages}
    assert rows["read"] == 600 and rows["split"] == rows["clean"] and rows["sample"] == 200
    written = pq.read_table(tmp_path / "synthetic.parquet")
    assert written.num_rows == 200 and written.column_names == COLUMNS
    page = (tmp_path / "run" / "run.html").read_text(encoding="utf-8")
    assert 'href="clean/report.json"' in page and 'href="split/report.json"' in page
    split_report = json.loads((tmp_path / "run" / "split" / "report.json").read_text(encoding="utf-8"))
    assert sum(split_report["counts"].values()) == rows["split"]
    run = json.loads((tmp_path / "run" / "run.json").read_text(encoding="utf-8"))
    assert run["computed"] == 6 and [s["name"] for s in run["stages"]][0] == "read"


def test_second_run_recomputes_nothing_and_serves_the_same_rows(tmp_path: Path) -> None:
    first = make(tmp_path).run()
    before = pq.read_table(tmp_path / "synthetic.parquet")
    second = make(tmp_path).run()
    assert second.computed == 0 and set(statuses(second).values()) == {"cached"}
    assert [s.key for s in first.stages] == [s.key for s in second.stages]
    assert [s.rows for s in first.stages] == [s.rows for s in second.stages]
    assert second.cache["total_hits"] == 6 and second.cache["entries"] == 6
    assert pq.read_table(tmp_path / "synthetic.parquet").equals(before)


def test_changing_the_clean_config_recomputes_clean_and_downstream_only(tmp_path: Path) -> None:
    make(tmp_path).run()
    steps = [{"repair": {"ranges": {"age": [0, 60]}}}, {"duplicates": {}}]
    changed = make(tmp_path, adult_stages(ADULT, steps))
    plan = changed.run(dry_run=True)
    assert statuses(plan) == {"read": "cached", "clean": "compute", "split": "compute", "fit": "compute",
                              "sample": "compute", "write": "compute"}
    report = changed.run()
    assert statuses(report)["read"] == "cached" and report.computed == 5
    cleaned = json.loads((tmp_path / "run" / "clean" / "report.json").read_text(encoding="utf-8"))
    assert "ranges" in json.dumps(cleaned)


def test_a_stage_after_an_unchanged_one_is_not_recomputed(tmp_path: Path) -> None:
    make(tmp_path).run()
    stages = adult_stages(ADULT)
    stages[4]["n"] = 150  # only sampling and what follows change
    report = make(tmp_path, stages).run()
    assert statuses(report) == {"read": "cached", "clean": "cached", "split": "cached", "fit": "cached",
                                "sample": "computed", "write": "computed"}
    assert pq.read_table(tmp_path / "synthetic.parquet").num_rows == 150


def test_editing_the_data_recomputes_from_read(tmp_path: Path) -> None:
    csv = tmp_path / "adult.csv"
    shutil.copyfile(ADULT, csv)
    make(tmp_path, adult_stages(csv)).run()
    with csv.open("a", encoding="utf-8") as stream:
        stream.write("40, Private, 100000, Bachelors, 13, Never-married, Sales, Not-in-family, White, "
                     "Male, 0, 0, 40, United-States, <=50K\n")
    report = make(tmp_path, adult_stages(csv)).run()
    assert report.computed == 6 and report.stages[0].rows == 601


def test_force_recomputes_the_stage_and_downstream(tmp_path: Path) -> None:
    make(tmp_path).run()
    report = make(tmp_path).run(force=["split"])
    assert statuses(report) == {"read": "cached", "clean": "cached", "split": "computed",
                                "fit": "computed", "sample": "computed", "write": "computed"}


def test_until_stops_after_the_stage(tmp_path: Path) -> None:
    report = make(tmp_path).run(until="split")
    assert [s.name for s in report.stages] == ["read", "clean", "split"] and report.computed == 3
    assert not (tmp_path / "synthetic.parquet").exists()
    rest = make(tmp_path).run()
    assert statuses(rest) == {"read": "cached", "clean": "cached", "split": "cached", "fit": "computed",
                              "sample": "computed", "write": "computed"}


def test_dry_run_plans_and_writes_nothing(tmp_path: Path) -> None:
    plan = make(tmp_path).run(dry_run=True)
    assert set(statuses(plan).values()) == {"compute"} and plan.computed == 0
    assert not (tmp_path / "run").exists() and not (tmp_path / "synthetic.parquet").exists()
    assert not list((tmp_path / "cache").glob("entries/*"))


def test_deleting_the_written_file_rewrites_it(tmp_path: Path) -> None:
    make(tmp_path).run()
    (tmp_path / "synthetic.parquet").unlink()
    report = make(tmp_path).run()
    assert statuses(report)["write"] == "computed" and report.computed == 1
    assert pq.read_table(tmp_path / "synthetic.parquet").num_rows == 200


def test_a_failed_stage_names_itself_and_keeps_earlier_outputs(tmp_path: Path) -> None:
    stages = adult_stages(ADULT)
    stages[2]["stratify"] = "no_such_column"
    with pytest.raises(StageError, match=r"stage 'split' \(split\) failed: .*no_such_column") as info:
        make(tmp_path, stages).run()
    assert info.value.stage == "split" and isinstance(info.value, DatakilnError)
    plan = make(tmp_path, stages).run(dry_run=True)
    assert statuses(plan)["read"] == "cached" and statuses(plan)["clean"] == "cached"
    assert not list((tmp_path / "cache" / "tmp").iterdir())  # the failed stage left nothing behind


@pytest.mark.parametrize(("change", "message"), [
    (lambda s: s[1].update(stage="scrub"), r"stage 'clean' has unknown kind 'scrub'"),
    (lambda s: s[2].update(fractons=[0.5, 0.5]),
     r"stage 'split' \(split\) has unknown key\(s\) \['fractons'\]"),
    (lambda s: s[3].update(input="splt.train"), r"stage 'fit' key 'input' refers to 'splt.train'"),
    (lambda s: s[3].update(input="split.holdout"), r"stage 'split' has parts \['test', 'train'\]"),
    (lambda s: s[4].pop("n"), r"stage 'sample' \(synth.sample\) needs \['n'\]"),
    (lambda s: s[5].update(name="clean"), r"two stages are named 'clean'"),
    (lambda s: s[1].update(input="write"), r"not an earlier stage"),
])
def test_validation_names_the_stage_and_key(tmp_path: Path, change: Any, message: str) -> None:
    stages = adult_stages(ADULT)
    change(stages)
    with pytest.raises(SchemaError, match=message):
        make(tmp_path, stages)


def test_unknown_force_or_until_stage_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DatakilnError, match="no stage named 'splitt'"):
        make(tmp_path).run(force=["splitt"])


def test_from_yaml_takes_paths_from_the_file_folder(tmp_path: Path) -> None:
    import yaml

    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copyfile(ADULT, folder / "adult.csv")
    stages = adult_stages(Path("adult.csv"))[:3]
    (folder / "p.yaml").write_text(yaml.safe_dump({"cache_dir": "cache", "stages": stages}), encoding="utf-8")
    pipeline = datakiln.Pipeline.from_yaml(folder / "p.yaml")
    report = pipeline.run()
    assert report.computed == 3 and (folder / "p.run" / "run.html").exists()
    assert (folder / "cache" / "entries").is_dir()


def test_yaml_errors_name_the_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages: [{stage: read, path: x.csv}]\ncache_size: 1GB\n", encoding="utf-8")
    with pytest.raises(SchemaError, match=r"bad.yaml.*unknown top-level key\(s\) \['cache_size'\]"):
        Pipeline.from_yaml(bad)
    bad.write_text("stages: [read\n", encoding="utf-8")
    with pytest.raises(SchemaError, match="not valid YAML"):
        Pipeline.from_yaml(bad)


def test_output_dir_of_someone_else_is_refused(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(datakiln.OutputExistsError, match="did not write"):
        make(tmp_path).run()
    assert (tmp_path / "run" / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_balance_and_augment_stages(tmp_path: Path) -> None:
    stages = adult_stages(ADULT)[:2] + [
        {"name": "balance", "stage": "balance", "input": "clean", "target": "income",
         "method": "random_over", "seed": 0},
        {"name": "augment", "stage": "augment", "input": "balance", "ops": "table_jitter:0.05",
         "copies": 2, "seed": 0},
    ]
    report = make(tmp_path, stages).run()
    rows = {s.name: s.rows for s in report.stages}
    counts = datakiln.read(tmp_path / "cache" / "entries" / report.stages[2].key / "data.arrow",
                           format="arrow").to_arrow().column("income").value_counts().to_pylist()
    assert len({c["counts"] for c in counts}) == 1  # classes equal after oversampling
    assert rows["augment"] == 2 * rows["balance"] and rows["balance"] > rows["clean"]


def test_image_pipeline_writes_a_preview(tmp_path: Path) -> None:
    stages = [{"name": "read", "stage": "read", "images": True,
               "path": str(DATA / "cifar10_jpg_subset" / "train")},
              {"name": "augment", "stage": "augment", "input": "read", "ops": "flip:1.0", "preview": 4}]
    report = make(tmp_path, stages).run()
    assert report.stages[1].rows == 10
    png = (tmp_path / "run" / "augment" / "preview.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    again = make(tmp_path, stages).run()
    assert again.computed == 0


def test_anonymize_stage_generalises_and_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAKILN_KEY", "11" * 32)
    stages = adult_stages(ADULT)[:1] + [
        {"name": "anonymize", "stage": "anonymize", "input": "read",
         "config": {"columns": {"age": {"op": "generalize", "width": 10}}}},
    ]
    report = make(tmp_path, stages).run()
    entry = tmp_path / "cache" / "entries" / report.stages[1].key
    ages = datakiln.read(entry / "data.arrow", format="arrow").to_arrow().column("age").to_pylist()
    assert report.stages[1].rows == 600
    assert set(ages) <= {f"[{low}, {low + 10})" for low in range(10, 100, 10)} and "[30, 40)" in ages
    assert (tmp_path / "run" / "anonymize" / "report.json").exists()


def test_two_identical_stages_share_one_entry(tmp_path: Path) -> None:
    stages = adult_stages(ADULT)[:2] + [{**adult_stages(ADULT)[1], "name": "clean_again"}]
    report = make(tmp_path, stages).run()
    assert statuses(report) == {"read": "computed", "clean": "computed", "clean_again": "cached"}
    assert report.stages[1].key == report.stages[2].key


def test_full_adult_from_shared_until_split(tmp_path: Path) -> None:
    from tests.conftest import shared_dataset

    csv = shared_dataset("adult/adult-train.csv")
    report = make(tmp_path, adult_stages(csv)).run(until="split")
    rows = {s.name: s.rows for s in report.stages}
    assert rows["read"] == 32_561 and 32_000 < rows["clean"] <= 32_561 and rows["split"] == rows["clean"]
    assert make(tmp_path, adult_stages(csv)).run(until="split").computed == 0
