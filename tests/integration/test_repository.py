"""The repository itself: test data found from the repository root, vendored samples, CI, packaging."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pyarrow.compute as pc
import pytest
import tests.conftest as conftest

import datakiln

REPO = Path(__file__).resolve().parents[2]


# -- shared data found from the repository, small real samples vendored (issue 11 item 15) ------

def test_shared_data_is_found_from_the_repository_not_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert conftest.SHARED == REPO.parent / "shared" / "datasets"
    if conftest.SHARED.is_dir():
        path = conftest.shared_dataset("adult/adult-train.csv")
        assert path.is_absolute() and path.is_file()
    monkeypatch.setattr(conftest, "SHARED", tmp_path / "no-shared")
    with pytest.raises(pytest.skip.Exception, match="is not beside this clone"):
        conftest.shared_dataset("adult/adult-train.csv")
    (tmp_path / "no-shared").mkdir()
    monkeypatch.setattr(conftest, "IN_CI", True)  # ../shared present in CI: a missing file fails
    with pytest.raises(pytest.fail.Exception, match="missing in CI"):
        conftest.shared_dataset("adult/nope.csv")


def test_no_test_builds_paths_from_the_working_directory():
    offenders = [str(p.relative_to(REPO)) for p in (REPO / "tests").rglob("*.py")
                 if re.search(r"""["']\.\./shared""", p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_vendored_samples_are_real_and_documented(adult_sample, adult_sample_test, bank_sample_path):
    readme = (REPO / "tests" / "data" / "README.md").read_text(encoding="utf-8")
    assert "CC BY 4.0" in readme and "10.24432/C5XW20" in readme and "10.24432/C5K306" in readme
    for path in sorted((REPO / "tests" / "data").rglob("*.csv")):
        assert hashlib.sha256(path.read_bytes()).hexdigest() in readme, path
    assert adult_sample.shape == (600, 15)
    assert adult_sample_test.shape == (300, 15)
    assert pc.sum(pc.equal(adult_sample["income"], ">50K")).as_py() == 134
    assert set(adult_sample_test["income"].to_pylist()) == {"<=50K", ">50K"}
    assert adult_sample["workclass"].null_count > 0  # '?' read as missing, as in the full file
    bank = datakiln.read(bank_sample_path).to_arrow()
    assert bank.shape == (600, 17) and bank.column_names[-1] == "y"
    assert pc.sum(pc.equal(bank["y"], "yes")).as_py() == 72
