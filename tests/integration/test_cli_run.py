"""``kiln run``: the Adult example end to end, a cached second run's wall time, flags, failures."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
from typer.testing import CliRunner

from datakiln.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "adult_pipeline.yaml"
runner = CliRunner()


def copy_example(tmp_path: Path, replace: dict[str, str] | None = None) -> Path:
    """The repository's Adult pipeline, its data path made absolute, its cache in ``tmp_path``."""
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text.replace("../tests/data/", f"{ROOT}/tests/data/")
    text = text.replace("cache_dir: ../.kiln-cache", f"cache_dir: {tmp_path / 'cache'}")
    for old, new in (replace or {}).items():
        assert old in text
        text = text.replace(old, new)
    target = tmp_path / "adult_pipeline.yaml"
    target.write_text(text, encoding="utf-8")
    return target


def kiln(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "datakiln.cli", *args], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "COLUMNS": "160"})


def wall(command: list[str]) -> float:
    began = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, timeout=600)
    return time.perf_counter() - began


def test_adult_example_end_to_end_then_cached_within_two_seconds(tmp_path: Path) -> None:
    pipeline = copy_example(tmp_path)
    first = kiln("run", str(pipeline))
    assert first.returncode == 0, first.stderr
    assert "7 of 7 stages computed" in first.stdout
    run_dir = tmp_path / "adult_pipeline.run"
    page = (run_dir / "run.html").read_text(encoding="utf-8")
    for link in ("evaluate/report.html", "evaluate/report.json", "clean/report.json", "split/report.json"):
        assert f'href="{link}"' in page and (run_dir / link).exists()
    assert pq.read_table(run_dir / "synthetic.parquet").num_rows == 480

    second = kiln("run", str(pipeline))
    assert second.returncode == 0 and "0 of 7 stages computed" in second.stdout
    assert second.stdout.count("cached") == 7
    runs = [wall([sys.executable, "-m", "datakiln.cli", "run", str(pipeline)]) for _ in range(3)]
    starts = [wall([sys.executable, "-c", "import datakiln"]) for _ in range(3)]
    assert statistics.median(runs) - statistics.median(starts) < 2.0, (runs, starts)


def test_changed_clean_config_recomputes_clean_and_after(tmp_path: Path) -> None:
    pipeline = copy_example(tmp_path)
    assert kiln("run", str(pipeline), "--until", "split").returncode == 0
    changed = copy_example(tmp_path, {"- repair: {}": "- repair: {ranges: {age: [0, 60]}}"})
    plan = kiln("run", str(changed), "--dry-run")
    assert plan.returncode == 0
    lines = {line.split()[1]: line for line in plan.stdout.splitlines() if line.startswith("│")}
    assert "use cache" in lines["read"] and "recompute" in lines["clean"] and "recompute" in lines["split"]
    assert "6 of 7 stages would be recomputed" in plan.stdout


def test_force_and_until(tmp_path: Path) -> None:
    pipeline = copy_example(tmp_path)
    result = runner.invoke(app, ["run", str(pipeline), "--until", "clean"])
    assert result.exit_code == 0 and "2 of 2 stages computed" in result.output
    forced = runner.invoke(app, ["run", str(pipeline), "--until", "split", "--force", "read"])
    assert forced.exit_code == 0 and "3 of 3 stages computed" in forced.output
    cached = runner.invoke(app, ["run", str(pipeline), "--until", "split"])
    assert "0 of 3 stages computed" in cached.output


def test_a_failing_stage_exits_2_naming_it_and_keeps_earlier_outputs(tmp_path: Path) -> None:
    pipeline = copy_example(tmp_path, {"stratify: income": "stratify: incme"})
    result = runner.invoke(app, ["run", str(pipeline)])
    assert result.exit_code == 2
    assert "stage 'split' (split) failed" in result.output and "incme" in result.output
    assert "Traceback" not in result.output
    plan = runner.invoke(app, ["run", str(pipeline), "--dry-run"])
    assert "5 of 7 stages would be recomputed" in plan.output  # read and clean are kept


def test_an_invalid_file_names_the_stage_and_key(tmp_path: Path) -> None:
    pipeline = copy_example(tmp_path, {"n: 480": "count: 480"})
    result = runner.invoke(app, ["run", str(pipeline)])
    assert result.exit_code == 2
    assert "stage 'sample' (synth.sample) has unknown key(s) ['count']" in result.output
