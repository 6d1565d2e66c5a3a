"""Smoke test of ``benchmarks/images.py --quick`` with tiny generated inputs.

It checks the benchmark's machinery (every contestant in its own process, a full epoch
each, the table, the ratios on the last line), not the speeds.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "images.py"


@pytest.mark.timeout(120)
def test_quick_benchmark_runs_every_contestant_over_a_full_epoch(tmp_path):
    out = tmp_path / "medians.json"
    run = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--images", "40", "--data", str(tmp_path),
                          "--json", str(out)], capture_output=True, text=True, cwd=REPO, timeout=110)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.strip().splitlines()
    results = json.loads(out.read_text())
    contestants = {"datakiln", "pillow0", "albu0", "kornia", "ceiling"}  # --quick drops the 2-worker runs
    assert set(results) == {f"{p}/{n}" for p in ("cifar", "256px") for n in contestants}
    optional = {"albu0": "albumentations", "kornia": "kornia"}
    for key, figures in results.items():
        name = key.split("/")[1]
        module = optional.get(name)
        if module is not None and importlib.util.find_spec(module) is None:
            assert isinstance(figures, str)  # the bench extra is not installed: reported, not hidden
            continue
        assert isinstance(figures, dict), f"{key}: {figures}"
        assert figures["images"] == 40  # the whole epoch, every image once
        assert figures["rate"] > 0 and figures["per_core"] > 0 and figures["peak"] > 10 * 2**20
        assert 0 < figures["first"] < 60
    table = [line for line in lines if line.startswith("| cifar") or line.startswith("| 256px")]
    assert len(table) == 10
    assert sum("datakiln loader" in line for line in table) == 2
    assert re.search(r"256 px datakiln per core = [\d.]+x best DataLoader \+ Pillow/NumPy \(0 workers\), "
                     r"([\d.]+x|n/a vs) albumentations.*, \d+% of the decode ceiling; "
                     r"CIFAR datakiln [\d,]+ images/s \(target 15,000\); first batch [\d.]+ s", lines[-1])
    # --quick generates its 32 px stand-in and the 256 px images: JPEGs in 10 class folders
    for folder, side in (("small_40", 32), ("large_40", 256)):
        files = sorted((tmp_path / folder).glob("*/*.jpg"))
        assert len(files) == 40 and len({f.parent.name for f in files}) == 10
        with Image.open(files[0]) as image:
            assert image.format == "JPEG" and image.size == (side, side)
