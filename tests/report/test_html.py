import importlib.util
import re
from pathlib import Path

import pytest
from tests.conftest import IN_CI

import datakiln

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check_report.py"


def _checker():
    spec = importlib.util.spec_from_file_location("check_report", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def report_path(adult_sample, adult_sample_test, tmp_path_factory):
    """The report of a copula sample of the vendored Adult sample (runs in a bare clone too)."""
    from datakiln.synth import GaussianCopula

    synthetic = GaussianCopula().fit(adult_sample).sample(adult_sample.num_rows, seed=1)
    report = datakiln.evaluate(adult_sample, synthetic, holdout=adult_sample_test, target="income",
                               sample_rows=5000)
    return report.to_html(tmp_path_factory.mktemp("report") / "report.html")


def test_report_is_self_contained_and_complete(report_path):
    text = report_path.read_text()
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", text)  # nothing fetched
    assert "<script src" not in text and "<link" not in text
    assert text.count("<svg") >= 15 + 2  # a plot per column, the heatmap, the distance histogram
    for section in ("Columns", "Distributions", "Column pairs", "ML utility", "Privacy risk"):
        assert f"<h2>{section}</h2>" in text
    assert 'class="sortable" id="columns"' in text and "no proof of privacy" in text


def test_report_renders_in_headless_chromium(report_path, tmp_path):
    checker = _checker()
    if checker.chromium() is None:  # a browser is a machine package, not a Python one
        if IN_CI:  # .ci/run installs it (.ci/ensure-chromium): CI must really render the report
            pytest.fail("chromium is missing in CI; .ci/ensure-chromium should have installed it")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    screenshot = tmp_path / "report.png"
    problems = checker.check(report_path, screenshot)
    assert problems == []
    assert screenshot.stat().st_size > 50_000


def test_console_error_detection():
    checker = _checker()
    log = "[1:1:INFO:CONSOLE(12)] \"Uncaught TypeError: x is undefined\", source: file:///r.html (12)"
    assert checker.console_errors(log) and not checker.console_errors("[1:1:INFO] all fine")
