"""The repository itself: test data found from the repository root, vendored samples, CI, packaging."""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import logging
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pyarrow.compute as pc
import pytest
import tests.conftest as conftest
from tests.conftest import sample_dataset

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


# -- CI installs Chromium so the report really renders (issue 11 item 16) -------------------------

def _stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


@pytest.mark.parametrize("present", [False, True])
def test_ci_installs_chromium_only_when_missing(tmp_path, present):
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    # a fake apt-get that records its arguments and "installs" chromium; sudo runs its arguments
    _stub(bin_dir, "apt-get", f'echo "apt-get $*" >> {log}\n'
          f'case "$*" in *install*) printf "#!/bin/sh\\n" > {bin_dir}/chromium; '
          f'chmod +x {bin_dir}/chromium;; esac')
    _stub(bin_dir, "sudo", 'exec "$@"')
    if present:
        _stub(bin_dir, "chromium", "exit 0")
    for tool in ("bash", "env", "id", "chmod", "printf", "echo"):
        found = shutil.which(tool)
        if found and not (bin_dir / tool).exists():
            (bin_dir / tool).symlink_to(found)
    done = subprocess.run([str(REPO / ".ci" / "ensure-chromium")], capture_output=True, text=True,
                          env={"PATH": str(bin_dir), "HOME": str(tmp_path)}, timeout=60)
    assert done.returncode == 0, done.stderr
    calls = log.read_text().splitlines() if log.exists() else []
    if present:
        assert calls == []
    else:
        assert calls == ["apt-get update -qq", "apt-get install -y -qq chromium"]
        assert (bin_dir / "chromium").exists()


def test_ci_script_runs_the_chromium_step_before_the_tests():
    script = (REPO / ".ci" / "run").read_text()
    assert ".ci/ensure-chromium" in script
    assert script.index(".ci/ensure-chromium") < script.index("make test")


# -- honest flags, help and packaging (issue 11 item 17) ---------------------------------------------

def test_the_library_logs_its_stages(caplog, tmp_path, adult_sample):
    from datakiln.synth import GaussianCopula

    caplog.set_level(logging.INFO, logger="datakiln")
    data = datakiln.read(sample_dataset("adult/adult-train.csv"), names=adult_sample.column_names)
    data.write(tmp_path / "adult.parquet")
    model = GaussianCopula().fit(adult_sample)
    model.sample(50, seed=0)
    list(model.sample_batches(50, batch_rows=20, seed=0))
    datakiln.evaluate(adult_sample, model.sample(200, seed=1), detection=False, privacy=False)
    said = {(r.name, r.getMessage().split(" ")[0]) for r in caplog.records if r.levelno == logging.INFO}
    assert {("datakiln.dataset.reading", "read"), ("datakiln.io.write", "wrote"),
            ("datakiln.synth.base", "fitting"), ("datakiln.synth.base", "fitted"),
            ("datakiln.synth.base", "sampling"), ("datakiln.evaluation.suite", "evaluated")} <= said


def test_kiln_verbose_logs_each_stage_on_stderr(tmp_path):
    path = sample_dataset("adult/adult-train.csv")
    command = [sys.executable, "-m", "datakiln.cli"]
    loud = subprocess.run([*command, "--verbose", "convert", str(path), str(tmp_path / "a.parquet"),
                           "--single-file"], capture_output=True, text=True, timeout=120)
    assert loud.returncode == 0, loud.stderr
    assert "datakiln.dataset.reading: read" in loud.stderr
    assert "datakiln.io.write: wrote 600 rows" in loud.stderr
    quiet = subprocess.run([*command, "convert", str(path), str(tmp_path / "b.parquet"), "--single-file"],
                           capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 0 and "datakiln." not in quiet.stderr


def test_help_lists_the_commands_and_promises_nothing():
    from typer.testing import CliRunner

    from datakiln.cli.app import app

    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "come next" not in result.stdout and "--debug" in result.stdout
    for command in ("inspect", "convert", "clean", "split", "balance", "evaluate", "synth", "demo"):
        assert command in result.stdout


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def _declared() -> set[str]:
    project = _pyproject()["project"]
    extras = project["optional-dependencies"].values()
    specs = [*project["dependencies"], *(spec for group in extras for spec in group)]
    return {re.split(r"[\[<>=!~; ]", spec, maxsplit=1)[0].lower().replace("_", "-") for spec in specs}


def test_every_imported_package_is_declared():
    imported: set[str] = set()
    for path in (REPO / "src" / "datakiln").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
            elif (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "import_optional"
                  and node.args and isinstance(node.args[0], ast.Constant)):
                imported.add(str(node.args[0].value).split(".")[0])
    third_party = sorted(m for m in imported if m not in sys.stdlib_module_names and m != "datakiln")
    owners = importlib.metadata.packages_distributions()
    undeclared = [m for m in third_party
                  if not {d.lower().replace("_", "-") for d in owners.get(m, [m])} & _declared()]
    assert undeclared == []
    assert "threadpoolctl" in _declared()


def test_build_requirements_and_extras_are_honest():
    data = _pyproject()
    if isinstance(data["project"].get("license"), str):  # an SPDX string needs setuptools >= 77
        requires = next(r for r in data["build-system"]["requires"] if r.startswith("setuptools"))
        assert int(re.search(r">=\s*(\d+)", requires).group(1)) >= 77
    torch = data["project"]["optional-dependencies"]["torch"]
    assert torch and all("==" not in spec for spec in torch)  # a range users can live with
    makefile = (REPO / "Makefile").read_text()
    assert "TORCH  ?= torch==2.13.0" in makefile  # the exact local build, installed first
    first = makefile.index("pip install -qq '$(TORCH)'")
    install = re.search(r"pip install -qq -e '\.\[([a-z0-9_,-]+)\]'", makefile)
    assert install and first < install.start()  # torch first, then the project with its extras
    extras = set(install.group(1).split(","))
    assert {"dev", "torch"} <= extras and extras <= set(data["project"]["optional-dependencies"])
    # pycanon pins numpy/scipy/pandas/typer exactly: installed without its pins, never an extra
    assert "pip install -qq --no-deps 'pycanon==" in makefile
    assert not any("pycanon" in spec for specs in data["project"]["optional-dependencies"].values()
                   for spec in specs)
