"""The CLI against bad input: one line, exit 2 (1 for a bug), never a traceback, never a lost word.

Every case builds its files in ``tmp_path`` (nothing binary is committed). The broken-file
builders are the I/O suite's (:data:`tests.io.test_bad_files.FILE_CASES`), fed here to ``kiln``.
Most cases run in process through typer's ``CliRunner``; a few run the real console script.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from tests.io.test_bad_files import EXPECTED, FILE_CASES, unblocked
from typer.testing import CliRunner

import datakiln
from datakiln.cli.app import app
from datakiln.errors import InvalidArgumentError

runner = CliRunner()


def _people(rows: int = 300, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({"age": rng.integers(18, 90, rows),
                     "income": rng.choice(["<=50K", ">50K"], rows, p=[0.75, 0.25]),
                     "hours": np.round(rng.normal(40, 5, rows), 1)})


@pytest.fixture
def people(tmp_path: Path) -> Path:
    path = tmp_path / "people.csv"
    pcsv.write_csv(_people(), path)
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from datakiln.synth import GaussianCopula

    path = tmp_path_factory.mktemp("model") / "people.kiln"
    GaussianCopula().fit(_people()).save(path)
    return path


def _assert_one_clean_line(result, code: int) -> str:
    """Exit ``code``, no traceback anywhere, and one line on standard error, which is returned."""
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output, result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# -- the boundary ------------------------------------------------------------------------------

def test_internal_errors_are_one_line_exit_1_with_a_debug_hint(people, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom: a bug\nover two lines")

    monkeypatch.setattr(datakiln, "read", broken)
    result = runner.invoke(app, ["inspect", str(people)])
    line = _assert_one_clean_line(result, 1)
    assert line.startswith("internal error: RuntimeError: boom: a bug over two lines")
    assert "kiln --debug" in line
    debug = runner.invoke(app, ["--debug", "inspect", str(people)])
    assert debug.exit_code == 1
    assert "Traceback (most recent call last)" in debug.stderr and "in broken" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1].startswith("internal error: RuntimeError: boom")


def test_datakiln_errors_show_their_traceback_only_under_debug(tmp_path):
    missing = str(tmp_path / "nope.csv")
    plain = runner.invoke(app, ["inspect", missing])
    assert "SourceNotFoundError" in _assert_one_clean_line(plain, 2)
    debug = runner.invoke(app, ["--debug", "inspect", missing])
    assert debug.exit_code == 2 and "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1].startswith("error: SourceNotFoundError: ")


def test_usage_errors_keep_their_usage_message_and_exit_2(people):
    result = runner.invoke(app, ["inspect", str(people), "--no-such-option"])
    assert result.exit_code == 2 and "No such option" in result.output and "Usage:" in result.output
    assert "Traceback" not in result.output


# -- the bad-input suite -------------------------------------------------------------------------

def _bom(tmp: Path) -> Path:
    path = tmp / "bom.csv"
    path.write_bytes("\ufeffa,b\n1,x\n2,y\n".encode())
    return path


def _latin1(tmp: Path) -> Path:
    path = tmp / "latin1.csv"
    path.write_bytes("name,city\nJosé,Zürich\n".encode("latin-1"))
    return path


def _in_bracket_dir(tmp: Path) -> Path:
    folder = tmp / "a[" / "old]"
    folder.mkdir(parents=True)
    path = folder / "people.csv"
    pcsv.write_csv(_people(20), path)
    return path


def _mismatch(tmp: Path) -> tuple[Path, Path]:
    real, other = tmp / "real.csv", tmp / "other.csv"
    pcsv.write_csv(_people(50), real)
    other.write_text("a,b\n1,2\n3,4\n")
    return real, other


def _two_schemas(tmp: Path) -> Path:
    folder = tmp / "parts"
    folder.mkdir()
    pq.write_table(pa.table({"a": [1, 2], "b": ["x", "y"]}), folder / "part-0.parquet")
    pq.write_table(pa.table({"z": [0.5]}), folder / "part-1.parquet")
    return folder


Case = Callable[[Path, Path], tuple[list[str], int, str]]

CASES: dict[str, Case] = {
    # name: (tmp, model) -> (arguments, exit code, a regex the one error line must match)
    "missing_file": lambda t, m: (["inspect", str(t / "nope.csv")], 2, r"SourceNotFoundError: .*nope\.csv"),
    "bad_encoding": lambda t, m: (["inspect", str(_latin1(t))], 2, r"EncodingError: .*latin1\.csv.*encoding"),
    "missing_dir_with_brackets": lambda t, m: (["inspect", str(t / "x[/old]" / "f.csv")], 2,
                                               re.escape(str(t / "x[/old]" / "f.csv"))),
    "schema_lists_survive": lambda t, m: (["evaluate", "--real", str(_mismatch(t)[0]), "--synthetic",
                                           str(t / "other.csv")], 2,
                                          re.escape("['age', 'income', 'hours']")),
    "parquet_schema_lists_survive": lambda t, m: (["inspect", str(_two_schemas(t))], 2,
                                                  re.escape("[z: double]") + ".*"
                                                  + re.escape("[a: int64, b: string]")),
    "where_empty_range": lambda t, m: (["synth", "sample", str(m), "-n", "5", "-o", str(t / "o.parquet"),
                                        "--where", "age=60..20"], 2, r"'age'?.*empty.*age=20\.\.60"),
    "where_wrong_type": lambda t, m: (["synth", "sample", str(m), "-n", "5", "-o", str(t / "o.parquet"),
                                       "--where", "age=old"], 2, r"column 'age' holds numbers.*'old'"),
    "where_fraction_for_integers": lambda t, m: (["synth", "sample", str(m), "-n", "5", "-o",
                                                  str(t / "o.parquet"), "--where", "age=30.5"], 2,
                                                 r"'age' holds whole numbers"),
    "where_unknown_column": lambda t, m: (["synth", "sample", str(m), "-n", "5", "-o", str(t / "o.parquet"),
                                           "--where", "nope=1"], 2, r"no column 'nope'.*age, income, hours"),
    "where_unknown_category": lambda t, m: (["synth", "sample", str(m), "-n", "5", "-o", str(t / "o.parquet"),
                                             "--where", "income=rich"], 2,
                                            r"'rich' is not a category of 'income'.*\['"),
    "where_without_equals": lambda t, m: (["synth", "sample", str(m), "-n", "5", "-o", str(t / "o.parquet"),
                                           "--where", "age"], 2, r"COLUMN=VALUE"),
    "model_not_a_model": lambda t, m: (["synth", "sample", str(_text(t / "fake.kiln")), "-n", "5", "-o",
                                        str(t / "o.parquet")], 2, r"ModelFormatError: .*fake\.kiln"),
    "model_is_a_directory": lambda t, m: (["synth", "sample", str(_folder(t / "dir.kiln")), "-n", "5", "-o",
                                           str(t / "o.parquet")], 2, r"ModelFormatError: .*dir\.kiln"),
    "database_url_without_table": lambda t, m: (["inspect", f"sqlite:///{t / 'x.db'}"], 2, r"--table"),
    "unknown_stratify_column": lambda t, m: (["split", str(_csv(t)), "-o", str(t / "splits"), "--stratify",
                                              "nope"], 2, r"'nope'"),
    "unknown_target_column": lambda t, m: (["balance", str(_csv(t)), "-o", str(t / "b.parquet"), "--target",
                                            "nope"], 2, r"'nope'"),
    "negative_rows": lambda t, m: (["synth", "sample", str(m), "-n", "-5", "-o", str(t / "o.parquet")], 2,
                                   r"-5"),
}
XFAIL: dict[str, str] = {}  # case name: "fixed by <item>" while another fix is pending


def _text(path: Path) -> Path:
    path.write_text("not a model\n")
    return path


def _folder(path: Path) -> Path:
    path.mkdir()
    return path


def _csv(tmp: Path) -> Path:
    path = tmp / "people.csv"
    if not path.exists():
        pcsv.write_csv(_people(), path)
    return path


def _mark(name: str):
    return pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=XFAIL[name])) if name in XFAIL \
        else name


@pytest.mark.parametrize("name", [_mark(n) for n in sorted(CASES)])
def test_bad_input_is_one_clear_line(name, tmp_path, model):
    args, code, pattern = CASES[name](tmp_path, model)
    before = set(tmp_path.rglob("*"))
    line = _assert_one_clean_line(runner.invoke(app, args), code)
    assert line.startswith("error: ") and re.search(pattern, line), line
    assert set(tmp_path.rglob("*")) == before  # no output left behind


@pytest.mark.timeout(30)  # the FIFO case hung forever before it was refused
@pytest.mark.parametrize("case", sorted(FILE_CASES))
@pytest.mark.parametrize("command", ["inspect", "convert"])
def test_broken_files_through_the_cli(case, command, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    source = FILE_CASES[case](folder)
    out = tmp_path / "out"
    args = ["inspect", str(source)] if command == "inspect" else ["convert", str(source), str(out)]
    with unblocked(source):  # a FIFO gets a writer after 5 s should kiln block opening it
        result = runner.invoke(app, args)
    line = _assert_one_clean_line(result, 2)
    error, pattern = EXPECTED[case]
    assert line.startswith(f"error: {error.__name__}: ") and re.search(pattern, line, re.I | re.S), line
    assert not out.exists()


@pytest.mark.parametrize("command", [
    ["synth", "sample", "{model}", "-n", "5", "-o", "{tmp}/o.parquet", "--seed"],
    ["split", "{csv}", "-o", "{tmp}/s", "--seed"],
    ["balance", "{csv}", "-o", "{tmp}/b.parquet", "--target", "income", "--seed"],
    ["evaluate", "--real", "{csv}", "--synthetic", "{csv}", "--seed"],
])
@pytest.mark.parametrize("seed", ["-1", "abc", str(2**32)])
def test_bad_seeds_are_usage_errors(command, seed, tmp_path, model):
    values = {"{model}": str(model), "{tmp}": str(tmp_path), "{csv}": str(_csv(tmp_path))}
    args = [next((a.replace(k, v) for k, v in values.items() if k in a), a) for a in command]
    result = runner.invoke(app, [*args, seed])
    assert result.exit_code == 2 and "--seed" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o.parquet").exists() and not (tmp_path / "s").exists()


def test_bom_is_stripped_from_the_first_column_name(tmp_path):
    result = runner.invoke(app, ["inspect", str(_bom(tmp_path)), "--json"])
    assert result.exit_code == 0, result.output
    assert [c["name"] for c in json.loads(result.stdout)["columns"]] == ["a", "b"]


def test_nan_and_inf_columns_are_inspected_and_cleaned(tmp_path):
    path = tmp_path / "nan.csv"
    path.write_text("a,b\n1,nan\n2,inf\n3,-inf\n4,5\n5,6\n")
    result = runner.invoke(app, ["inspect", str(path), "--json"])
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    column = {c["name"]: c for c in json.loads(result.stdout)["columns"]}["b"]
    assert column["quantiles"]["0.5"] in (5.0, 5.5, 6.0)  # moments from the finite values only
    cleaned = runner.invoke(app, ["clean", str(path), "-o", str(tmp_path / "c.parquet")])
    assert cleaned.exit_code == 0 and "Traceback" not in cleaned.output, cleaned.output


# -- rich markup: user text printed literally --------------------------------------------------------

def test_paths_and_values_with_brackets_print_literally(tmp_path):
    path = _in_bracket_dir(tmp_path)
    result = runner.invoke(app, ["inspect", str(path)])
    assert result.exit_code == 0, result.output
    assert f"{path}: 20 rows" in result.stdout
    odd = tmp_path / "odd.csv"
    odd.write_text("[b],colour\n1,[red]\n2,[red]\n3,[/x]\n")
    result = runner.invoke(app, ["inspect", str(odd)])
    assert result.exit_code == 0, result.output
    assert "│ [b]" in result.stdout and "[red] (2)" in result.stdout and "[/x] (1)" in result.stdout


def test_fit_and_sample_print_bracketed_names(tmp_path):
    table = _people(200).rename_columns(["age [years]", "income", "hours"])
    (tmp_path / "d[").mkdir()
    data = tmp_path / "d[/old].csv"
    pcsv.write_csv(table, data)
    model = tmp_path / "m[x].kiln"
    fit = runner.invoke(app, ["synth", "fit", str(data), "-o", str(model)])
    assert fit.exit_code == 0, fit.output
    assert "age [years]" in fit.stdout and f"wrote {model}" in fit.stdout
    out = tmp_path / "s[1].parquet"
    sample = runner.invoke(app, ["synth", "sample", str(model), "-n", "10", "-o", str(out),
                                 "--where", "income=>50K"])
    assert sample.exit_code == 0, sample.output
    assert f"-> {out}" in sample.stdout and datakiln.read(out).count() == 10


def test_an_existing_file_with_brackets_in_its_name_is_read(tmp_path):
    path = tmp_path / "s[1].csv"
    pcsv.write_csv(_people(20), path)
    result = runner.invoke(app, ["inspect", str(path)])
    assert result.exit_code == 0 and f"{path}: 20 rows" in result.stdout, result.output


# -- --where parsing ---------------------------------------------------------------------------------

SCHEMA = pa.schema({"age": pa.int64(), "hours": pa.float64(), "zip": pa.string(), "member": pa.bool_(),
                    "joined": pa.timestamp("us")})


def test_where_values_take_the_column_type():
    from datakiln.cli._where import parse_where

    assert parse_where(["age=30..40", "hours=7.5", "zip=007", "member=yes", "zip=1..5"], SCHEMA) == {
        "age": (30, 40), "hours": 7.5, "zip": "1..5", "member": True}
    assert parse_where(["joined=2024-01-01..2024-02-01"], SCHEMA) == {
        "joined": (dt.datetime(2024, 1, 1), dt.datetime(2024, 2, 1))}
    assert parse_where(["age=30..30"], SCHEMA) == {"age": (30, 30)}


@pytest.mark.parametrize(("clause", "message"), [
    ("age=60..20", r"empty .* write age=20\.\.60"),
    ("age=old", r"'age' holds numbers \(int64\)"),
    ("age=30..", r"both ends"),
    ("hours=nan", r"'hours' holds numbers"),
    ("joined=2024-13-45..2024-02-01", r"not a timestamp.*'joined'"),
    ("joined=2024-03-01..2024-02-01", r"empty"),
    ("member=maybe", r"'member' is true/false"),
    ("=5", r"names no column"),
    ("height=5", r"no column 'height'"),
])
def test_where_refuses_conditions_that_cannot_hold(clause, message):
    from datakiln.cli._where import parse_where

    with pytest.raises(InvalidArgumentError, match=message):
        parse_where([clause], SCHEMA)


# -- the real console script ------------------------------------------------------------------------

def _kiln(*args: str, code: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``kiln`` in a fresh process through the console-script entry point ``main()``."""
    program = code or "from datakiln.cli.app import main; main()"
    env = {**os.environ, "COLUMNS": "80"}
    return subprocess.run([sys.executable, "-c", f"import sys; sys.argv[0] = 'kiln'; {program}", *args],
                          capture_output=True, text=True, env=env, timeout=120)


def test_real_process_bad_input_exits_2_with_one_line(tmp_path):
    path = tmp_path / "a[/old]" / "x.csv"
    script = Path(sys.executable).with_name("kiln")  # the installed console script, when there is one
    done = (subprocess.run([str(script), "inspect", str(path)], capture_output=True, text=True, timeout=120)
            if script.exists() else _kiln("inspect", str(path)))
    assert done.returncode == 2 and "Traceback" not in done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: SourceNotFoundError: ") and str(path) in lines[0]


def test_real_process_internal_error_exits_1_and_debug_shows_the_traceback(tmp_path):
    patch = ("import datakiln\n"
             "def broken(*a, **k): raise KeyError('deep inside')\n"
             "datakiln.read = broken\n"
             "from datakiln.cli.app import main; main()")
    done = _kiln("inspect", str(tmp_path / "x.csv"), code=f"exec({patch!r})")
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("internal error: KeyError: 'deep inside'")
    assert "--debug" in lines[0]
    debug = _kiln("--debug", "inspect", str(tmp_path / "x.csv"), code=f"exec({patch!r})")
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr


def test_debug_tracebacks_mask_passwords(people, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("cannot reach postgresql://kiln:hunter2@db.example/prod")

    monkeypatch.setattr(datakiln, "read", broken)
    for args in (["inspect", str(people)], ["--debug", "inspect", str(people)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1 and "db.example" in result.stderr
        assert "hunter2" not in result.output


# -- legal but degenerate data: a result or one clear line, never a traceback (issue 12 items 7, 14) --

def _degenerate(tmp: Path) -> dict[str, Path]:
    rows = "".join(f"{i},{i % 3},,{'rare' if i == 1 else 'common'}\n" for i in range(1, 41))
    files = {"holes": "a,b,c,label\n" + rows, "one_row": "a,b\n1,2\n", "header_only": "a,b",
             "null_target": "a,label\n" + "".join(f"{i},\n" for i in range(1, 31))}
    paths = {}
    for name, text in files.items():
        paths[name] = tmp / f"{name}.csv"
        paths[name].write_text(text)
    return paths


DEGENERATE: dict[str, tuple[list[str], int, str | None]] = {
    # name: (arguments with {file} / {tmp} placeholders, exit code, regex of the one error line)
    "evaluate_all_null_column": (["evaluate", "--real", "{holes}", "--synthetic", "{holes}"], 0, None),
    "evaluate_one_row_with_target": (["evaluate", "--real", "{one_row}", "--synthetic", "{one_row}",
                                      "--target", "b"], 0, None),
    "split_stratify_all_null": (["split", "{holes}", "-o", "{tmp}/s1", "--stratify", "c"], 0, None),
    "split_without_stratify": (["split", "{holes}", "-o", "{tmp}/s2"], 0, None),
    "header_only_without_newline": (["inspect", "{header_only}"], 0, None),
    "small_memory_budget": (["inspect", "{holes}", "--memory-budget", "200MB"], 0, None),
    "balance_auto_class_of_one": (["balance", "{holes}", "-o", "{tmp}/b1.parquet", "--target", "label",
                                   "--method", "auto"], 2, r"class 'rare' of 'label' has 1 row"),
    "balance_class_below_k_neighbors": (["balance", "{holes}", "-o", "{tmp}/b2.parquet", "--target",
                                         "label", "--method", "smote"], 2, r"class 'rare'.*k_neighbors"),
    "balance_all_null_target": (["balance", "{null_target}", "-o", "{tmp}/b3.parquet", "--target",
                                 "label"], 2, r"'label' has 30 null labels.*drop or fill them"),
}


@pytest.mark.parametrize("name", sorted(DEGENERATE))
def test_degenerate_data_gives_a_result_or_one_clear_line(name, tmp_path):
    paths = _degenerate(tmp_path)
    template, code, pattern = DEGENERATE[name]
    args = [a.replace("{tmp}", str(tmp_path)) for a in template]
    args = [str(paths[a[1:-1]]) if a[1:-1] in paths else a for a in args]
    result = runner.invoke(app, args)
    if code == 2:
        line = _assert_one_clean_line(result, 2)
        assert re.search(pattern, line) and "'y'" not in line, line  # never imbalanced-learn's own name
    else:
        assert result.exit_code == 0, result.output
        assert "Traceback" not in result.output and "error" not in result.stderr
    assert "None of None" not in result.output and "class None" not in result.output


@pytest.mark.parametrize(("conditions", "message"), [
    ({"age": (60, 20)}, r"age=\(60, 20\) is an empty range.*write \(20, 60\)"),
    ({"age": "old"}, r"cannot match column 'age' \(int64\): 'old' is not a number"),
    ({"age": (30, "x")}, r"'x' is not a number"),
    ({"age": (1, 2, 3)}, r"a value or a \(low, high\) pair"),
])
def test_sample_refuses_conditions_that_cannot_hold(conditions, message):
    from datakiln.synth import GaussianCopula

    model = GaussianCopula().fit(_people(200))
    with pytest.raises(InvalidArgumentError, match=message):
        model.sample(5, conditions=conditions, seed=0)
    with pytest.raises(InvalidArgumentError, match=message):
        next(model.sample_batches(5, conditions=conditions, seed=0))
    assert model.sample(5, conditions={"age": (30, 30)}, seed=0)["age"].to_pylist() == [30] * 5


def test_terminal_control_characters_in_data_are_shown_not_obeyed(tmp_path: Path):
    # a crafted CSV retitled ("\x1b]0;...\x07") or cleared ("\x1b[2J") the user's terminal
    # through kiln inspect's table: values and column names went out raw
    path = tmp_path / "esc.csv"
    path.write_text('"\x1b[31mname",b\n1,"\x1b]0;PWNED\x07"\n2,"\x1b[2J"\n')
    result = runner.invoke(app, ["inspect", str(path)])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "\\x1b[31mname" in result.output and "\\x1b]0;PWNED\\x07" in result.output


def test_library_hints_name_the_cli_flag_and_huge_rows_per_file(tmp_path: Path):
    # "pass on_bad_rows='skip'" named a keyword the command line does not have; a 20-digit
    # --rows-per-file was an internal OverflowError
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\nnot json\n')
    line = _assert_one_clean_line(runner.invoke(app, ["inspect", str(bad)]), 2)
    assert "on_bad_rows='skip' (--skip-bad-rows)" in line
    latin = tmp_path / "latin.csv"
    latin.write_bytes("a,b\n1,caf\xe9\n".encode("latin-1"))
    assert "(--encoding latin-1)" in _assert_one_clean_line(runner.invoke(app, ["inspect", str(latin)]), 2)
    data = tmp_path / "d.csv"
    data.write_text("a\n1\n2\n")
    result = runner.invoke(app, ["convert", str(data), str(tmp_path / "out"), "--rows-per-file",
                                 "99999999999999999999"])
    assert "rows_per_file must be positive" in _assert_one_clean_line(result, 2)
