"""Reports and model files replace only what datakiln wrote, and never an input.

An existing file is replaced only when it carries datakiln's mark (a JSON report's
``"datakiln"`` key, an HTML report's generator tag, a model file's manifest) or with
``overwrite=True`` / ``--overwrite``; an output that is one of the inputs is always refused.
"""

import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from typer.testing import CliRunner

import datakiln
from datakiln.cli.app import app
from datakiln.errors import OutputExistsError
from datakiln.io.write import is_own_report, write_text_atomic
from datakiln.synth import GaussianCopula
from datakiln.synth.modelfile import is_own_model

runner = CliRunner()
FOREIGN = "name,notes\nada,do not lose me\n"


def _table(rows: int = 60, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({"x": rng.normal(0, 1, rows).round(3), "k": rng.choice(["a", "b", "c"], rows),
                     "y": rng.choice(["no", "no", "yes"], rows)})


@pytest.fixture()
def files(tmp_path):
    real, synthetic = tmp_path / "real.csv", tmp_path / "synthetic.csv"
    pacsv.write_csv(_table(), real)
    pacsv.write_csv(_table(seed=1), synthetic)
    foreign = tmp_path / "notes.csv"
    foreign.write_text(FOREIGN)
    return real, synthetic, foreign


def _no_temporaries(folder) -> None:
    assert not [n for n in os.listdir(folder) if ".tmp-" in n or ".old-" in n]


# -- the rule, in one place -------------------------------------------------------------------

def test_write_text_atomic_replaces_only_its_own_reports(tmp_path, files):
    real, _, foreign = files
    marked = json.dumps({"datakiln": {"kind": "test-report", "version": "0"}, "n": 1})
    with pytest.raises(OutputExistsError, match="did not write it"):
        write_text_atomic(foreign, marked)
    assert foreign.read_text() == FOREIGN
    write_text_atomic(tmp_path / "r.json", marked)
    write_text_atomic(tmp_path / "r.json", marked.replace('"n": 1', '"n": 2'))  # its own: silently
    assert json.loads((tmp_path / "r.json").read_text())["n"] == 2
    for bad in (real, tmp_path):  # an input, and a directory, whatever overwrite says
        with pytest.raises(OutputExistsError):
            write_text_atomic(bad, marked, overwrite=True, inputs=[real])
    assert real.read_text().startswith('"x","k","y"')
    write_text_atomic(foreign, marked, overwrite=True)
    assert is_own_report(foreign)
    _no_temporaries(tmp_path)


def test_marks_are_recognised_and_nothing_else_is(tmp_path):
    cases = {"plain.json": '{"kind": "x"}', "list.json": "[1, 2]", "broken.json": '{"datakiln": ',
             "string.json": '{"datakiln": "yes"}', "page.html": "<html><head><meta name='generator' "
             "content='Hugo'></head></html>", "data.csv": "a,b\n1,2\n"}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        assert not is_own_report(tmp_path / name), name
    (tmp_path / "own.html").write_text("<html><head><meta name='generator' content='datakiln 0.1'>")
    assert is_own_report(tmp_path / "own.html")
    assert not is_own_model(tmp_path / "own.html") and not is_own_model(tmp_path / "missing")


# -- the Python API ---------------------------------------------------------------------------

def test_evaluation_report_files(tmp_path, files):
    real, synthetic, foreign = files
    report = datakiln.evaluate(str(real), str(synthetic), detection=False, privacy=False)
    data = json.loads(report.to_json())
    assert data["datakiln"]["kind"] == "evaluation-report" and "fidelity" in data
    for write in (report.to_json, report.to_html):
        with pytest.raises(OutputExistsError, match="did not write it"):
            write(foreign)
        assert foreign.read_text() == FOREIGN
        with pytest.raises(OutputExistsError, match="is the input"):
            write(real, overwrite=True, inputs=[real, synthetic])
    report.to_html(tmp_path / "r.html")
    assert '<meta name="generator" content="datakiln ' in (tmp_path / "r.html").read_text()
    report.to_html(tmp_path / "r.html")  # its own earlier output: replaced silently
    report.to_json(tmp_path / "r.json")
    report.to_json(tmp_path / "r.json")
    report.to_json(foreign, overwrite=True)
    assert json.loads(foreign.read_text())["datakiln"]["kind"] == "evaluation-report"
    _no_temporaries(tmp_path)


def test_model_save_replaces_only_a_model_file(tmp_path, files):
    real, _, foreign = files
    model = GaussianCopula().fit(_table())
    with pytest.raises(OutputExistsError, match="did not write it"):
        model.save(foreign)
    assert foreign.read_text() == FOREIGN
    with pytest.raises(OutputExistsError, match="is the input"):
        model.save(real, overwrite=True, inputs=[real])
    assert real.read_text().startswith('"x","k","y"')
    model.save(tmp_path / "m.kiln")
    model.save(tmp_path / "m.kiln")  # an earlier model: replaced silently
    assert is_own_model(tmp_path / "m.kiln")
    model.save(foreign, overwrite=True)
    assert datakiln.synth.load(foreign).sample(5, seed=0).num_rows == 5
    _no_temporaries(tmp_path)


def test_transform_save_replaces_its_own_file(tmp_path, files):
    from datakiln.transform import StandardScaler

    _, _, foreign = files
    scaler = StandardScaler(columns=["x"]).fit(_table())
    scaler.save(tmp_path / "t.json")
    scaler.save(tmp_path / "t.json")
    with pytest.raises(OutputExistsError):
        scaler.save(foreign)
    assert foreign.read_text() == FOREIGN


# -- the command line -------------------------------------------------------------------------

def _kiln(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def test_evaluate_json_and_html_outputs(tmp_path, files):
    real, synthetic, foreign = files
    base = ["evaluate", "--real", real, "--synthetic", synthetic]
    for option in ("--json", "--html"):
        for extra in ((), ("--overwrite",)):  # an input is refused even with --overwrite
            code, output = _kiln(*base, option, real, *extra)
            assert code == 2 and "is the input" in output, output
        code, output = _kiln(*base, option, foreign)
        assert code == 2 and "did not write it" in output and "--overwrite" in output
    assert real.read_text().startswith('"x","k","y"') and foreign.read_text() == FOREIGN
    for _ in range(2):  # its own earlier reports: replaced silently
        code, output = _kiln(*base, "--json", tmp_path / "r.json", "--html", tmp_path / "r.html")
        assert code == 0, output
    assert json.loads((tmp_path / "r.json").read_text())["datakiln"]["kind"] == "evaluation-report"
    code, output = _kiln(*base, "--json", foreign, "--overwrite")
    assert code == 0 and is_own_report(foreign)
    _no_temporaries(tmp_path)


def test_synth_fit_output(tmp_path, files):
    real, _, foreign = files
    for extra in ((), ("--overwrite",)):
        code, output = _kiln("synth", "fit", real, "-o", real, *extra)
        assert code == 2 and "is the input" in output, output
    code, output = _kiln("synth", "fit", real, "-o", foreign)
    assert code == 2 and "did not write it" in output
    assert real.read_text().startswith('"x","k","y"') and foreign.read_text() == FOREIGN
    for _ in range(2):
        code, output = _kiln("synth", "fit", real, "-o", tmp_path / "m.kiln")
        assert code == 0, output
    code, output = _kiln("synth", "fit", real, "-o", foreign, "--overwrite")
    assert code == 0 and is_own_model(foreign)
    _no_temporaries(tmp_path)


def test_clean_report_output(tmp_path, files):
    real, _, foreign = files
    out = tmp_path / "clean.parquet"
    for extra in ((), ("--overwrite",)):
        code, output = _kiln("clean", real, "-o", out, "--report", real, *extra)
        assert code == 2 and "is the input" in output, output
    code, output = _kiln("clean", real, "-o", out, "--report", foreign)
    assert code == 2 and "did not write it" in output
    assert real.read_text().startswith('"x","k","y"') and foreign.read_text() == FOREIGN
    for _ in range(2):
        code, output = _kiln("clean", real, "-o", out, "--report", tmp_path / "r.json")
        assert code == 0, output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["datakiln"]["kind"] == "clean-report" and report["rows_in"] == 60
    _no_temporaries(tmp_path)


def test_balance_json_output(tmp_path, files):
    real, _, foreign = files
    base = ["balance", real, "-o", tmp_path / "b.parquet", "--target", "y", "--method", "random_over"]
    for extra in ((), ("--overwrite",)):
        code, output = _kiln(*base, "--json", real, *extra)
        assert code == 2 and "is the input" in output, output
    code, output = _kiln(*base, "--json", foreign)
    assert code == 2 and "did not write it" in output
    assert real.read_text().startswith('"x","k","y"') and foreign.read_text() == FOREIGN
    for _ in range(2):
        code, output = _kiln(*base, "--json", tmp_path / "r.json")
        assert code == 0, output
    assert json.loads((tmp_path / "r.json").read_text())["datakiln"]["kind"] == "balance-report"
    _no_temporaries(tmp_path)


def test_two_outputs_of_one_command_at_one_path_are_refused(tmp_path, files):
    """-o X --report X --overwrite replaced the cleaned rows just written by the report (exit
    0), and --json X --html X left only the HTML: both outputs are datakiln's own."""
    real, synthetic, _ = files
    same = tmp_path / "same.parquet"
    runs = [
        ("clean", real, "-o", same, "--report", same, "--overwrite"),
        ("balance", real, "-o", same, "--target", "y", "--method", "random_over", "--json",
         tmp_path / "." / "same.parquet", "--overwrite"),
        ("evaluate", "--real", real, "--synthetic", synthetic, "--json", tmp_path / "r.json",
         "--html", tmp_path / "r.json"),
    ]
    for args in runs:
        code, output = _kiln(*args)
        assert code == 2 and "both name" in output and "own path" in output, output
    assert not same.exists() and not (tmp_path / "r.json").exists()  # refused before any work
    assert real.read_text().startswith('"x","k","y"')
