"""Differentially private synthesis: calibrations, accounting, declared domains, DP copula and MST."""

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from tests.conftest import ADULT_COLUMNS
from typer.testing import CliRunner

import datakiln
from datakiln.errors import InvalidArgumentError, ModelFormatError, PrivacyBudgetError, SchemaError
from datakiln.synth import GaussianCopula, MSTSynthesizer, load
from datakiln.synth.dp import (
    BasicAccountant,
    Domain,
    ZCDPAccountant,
    eps_from_rho,
    exponential_mechanism,
    gaussian_mechanism,
    gaussian_sigma,
    gaussian_sigma_classic,
    laplace_mechanism,
    laplace_scale,
    load_domain,
    rho_from_eps,
)
from datakiln.synth.dp.mechanisms import nonnegative_counts
from datakiln.synth.modelfile import read_model, write_model

DOMAIN = Path(__file__).resolve().parents[2] / "examples" / "adult-domain.yaml"


# -- calibrations --------------------------------------------------------------------------------------
def test_noise_scales_are_sensitivity_over_budget_exactly():
    assert laplace_scale(1.0, 0.5) == 2.0
    assert laplace_scale(3.0, 2.0) == 1.5
    assert gaussian_sigma(1.0, 0.02) == 1 / math.sqrt(0.04)
    assert gaussian_sigma(2.0, 0.5) == 2.0  # Δ / sqrt(2ρ)
    assert gaussian_sigma_classic(1.0, 0.5, 1e-5) == math.sqrt(2 * math.log(1.25 / 1e-5)) / 0.5
    assert gaussian_sigma(1.0, math.inf) == 0.0 and laplace_scale(1.0, math.inf) == 0.0
    with pytest.raises(InvalidArgumentError, match="epsilon < 1"):
        gaussian_sigma_classic(1.0, 2.0, 1e-5)
    with pytest.raises(InvalidArgumentError, match="sensitivity"):
        laplace_scale(0.0, 1.0)


def test_drawn_noise_has_the_stated_scale():
    rng = np.random.default_rng(0)
    draws = gaussian_mechanism(np.zeros(200_000), 2.0, 0.5, rng)
    assert abs(draws.std() / 2.0 - 1) < 0.01
    draws = laplace_mechanism(np.zeros(200_000), 1.0, 0.25, rng)
    assert abs(np.abs(draws).mean() / 4.0 - 1) < 0.01  # E|Laplace(b)| = b


def test_zcdp_conversion_both_ways():
    rho = rho_from_eps(1.0, 1e-6)
    log_term = math.log(1e6)
    assert rho == pytest.approx((math.sqrt(log_term + 1) - math.sqrt(log_term)) ** 2, rel=1e-15)
    assert rho == pytest.approx(0.017469, rel=1e-4)
    assert eps_from_rho(rho, 1e-6) == pytest.approx(1.0, rel=1e-12)
    assert eps_from_rho(0.5, 1e-5) == 0.5 + 2 * math.sqrt(0.5 * math.log(1e5))


def test_exponential_mechanism_prefers_high_scores_at_the_stated_rate():
    rng = np.random.default_rng(1)
    picks = [exponential_mechanism(np.array([0.0, 1.0]), 2.0, 1.0, rng) for _ in range(20_000)]
    # P(1) = e^{ε·1/2} / (1 + e^{ε·1/2}) with ε = 2
    assert np.mean(picks) == pytest.approx(math.e / (1 + math.e), abs=0.01)
    assert exponential_mechanism(np.array([3.0, 1.0]), math.inf, 1.0, rng) == 0


def test_nonnegative_counts_keep_the_total():
    counts = nonnegative_counts(np.array([50.0, -3.0, 20.0, 2.0]), 70.0)
    assert counts.min() >= 0 and counts.sum() == pytest.approx(70.0)
    assert counts[1] == 0 and counts[0] > counts[2] > counts[3]


# -- accounting -----------------------------------------------------------------------------------------
def test_zcdp_accountant_sums_and_refuses_over_budget():
    acct = ZCDPAccountant(1.0, 1e-6)
    acct.spend(acct.budget_rho * 0.25, "a")
    acct.spend(acct.budget_rho * 0.5, "b")
    assert acct.rho_spent == pytest.approx(acct.budget_rho * 0.75)
    assert acct.spent()["epsilon"] == pytest.approx(eps_from_rho(acct.budget_rho * 0.75, 1e-6))
    with pytest.raises(PrivacyBudgetError, match="'c'.*budget"):
        acct.spend(acct.budget_rho * 0.3, "c")
    assert [e["what"] for e in acct.ledger] == ["a", "b"]  # the refused spend is not recorded
    acct.spend(acct.remaining(), "rest")
    assert acct.spent()["epsilon"] == pytest.approx(1.0)


def test_basic_accountant_sums_epsilon_and_delta():
    acct = BasicAccountant(1.0, 1e-6)
    acct.spend(0.4, "x")
    acct.spend(0.6, "y", delta=1e-6)
    assert acct.spent() == {"epsilon": 1.0, "delta": 1e-6}
    with pytest.raises(PrivacyBudgetError):
        acct.spend(0.01, "z")


def test_bad_budgets_are_refused():
    with pytest.raises(InvalidArgumentError, match="epsilon"):
        ZCDPAccountant(0.0, 1e-6)
    with pytest.raises(InvalidArgumentError, match="delta"):
        ZCDPAccountant(1.0, 1.5)


# -- domains ----------------------------------------------------------------------------------------------
def _table(rows: int = 2000, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    x = rng.normal(40, 10, rows)
    y = x * 2 + rng.normal(0, 5, rows)
    colour = np.where(x > 40, "red", "blue")
    return pa.table({"x": np.round(x).astype(np.int64), "y": y, "colour": colour})


SMALL = {"x": {"low": 0, "high": 80}, "y": {"low": -50, "high": 250},
         "colour": {"categories": ["blue", "red"]}}


def test_missing_domain_says_how_to_declare_it():
    with pytest.raises(InvalidArgumentError, match="declare"):
        GaussianCopula(epsilon=1.0).fit(_table())
    with pytest.raises(SchemaError, match=r"\['colour'\].*categories"):
        GaussianCopula(epsilon=1.0, domain={"x": SMALL["x"], "y": SMALL["y"]}).fit(_table())
    with pytest.raises(SchemaError, match="numeric"):
        MSTSynthesizer(epsilon=1.0, domain={**SMALL, "colour": {"low": 0, "high": 1}}).fit(_table())
    with pytest.raises(InvalidArgumentError, match="low.*above high"):
        load_domain({"x": {"low": 5, "high": 1}})


def test_domain_files_yaml_and_json(tmp_path):
    domain = load_domain(DOMAIN)
    assert domain.columns["age"].low == 17 and len(domain.columns["native-country"].categories) == 41
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"columns": SMALL}))
    assert load_domain(path).to_dict() == Domain.from_dict(SMALL).to_dict()
    bad = tmp_path / "bad.yaml"
    bad.write_text("x: [unclosed")
    with pytest.raises(InvalidArgumentError, match="bad.yaml"):
        load_domain(bad)


@pytest.mark.parametrize("kind", ["copula", "mst"])
def test_values_outside_the_domain_never_widen_it(kind):
    table = _table()
    narrow = {"x": {"low": 30, "high": 50}, "y": {"low": 0, "high": 100}, "colour": {"categories": ["blue"]}}
    make = GaussianCopula if kind == "copula" else MSTSynthesizer
    model = make(epsilon=5.0, domain=narrow, seed=3).fit(table)
    synthetic = model.sample(5000, seed=0)
    assert pc.min(synthetic["x"]).as_py() >= 30 and pc.max(synthetic["x"]).as_py() <= 50
    assert pc.min(synthetic["y"]).as_py() >= 0 and pc.max(synthetic["y"]).as_py() <= 100
    assert set(synthetic["colour"].drop_null().to_pylist()) <= {"blue", "(other)"}
    assert "red" not in synthetic["colour"].to_pylist()  # undeclared: the other bucket, never the value
    share = pc.sum(pc.equal(synthetic["colour"], "(other)")).as_py() / 5000
    assert 0.35 < share < 0.65  # "red" rows (about half) went to "(other)"
    assert model.dp_["domain"] == Domain.from_dict(narrow).to_dict()


def test_domain_is_the_same_whatever_the_data():
    a = GaussianCopula(epsilon=1.0, domain=SMALL).fit(_table(seed=1))
    b = GaussianCopula(epsilon=1.0, domain=SMALL).fit(_table(seed=2).slice(0, 500))
    assert a.vocab_ == b.vocab_ and a.dp_["domain"] == b.dp_["domain"]
    assert a.components_[0].quantiles["x"].min() >= 0 and a.components_[0].quantiles["x"].max() <= 80


# -- the DP copula ------------------------------------------------------------------------------------------
def test_dp_copula_records_its_budget_split_and_noise():
    model = GaussianCopula(epsilon=1.0, delta=1e-6, domain=SMALL, seed=0).fit(_table())
    dp = model.dp_
    rho = rho_from_eps(1.0, 1e-6)
    assert dp["method"] == "zCDP" and dp["split"] == {"marginals": 0.5, "correlation": 0.5}
    assert dp["rho_budget"] == pytest.approx(rho)
    assert sum(e["rho"] for e in dp["ledger"]) == pytest.approx(rho)
    assert dp["spent"]["epsilon"] == pytest.approx(1.0)
    assert dp["marginal_sigma"] == pytest.approx(1 / math.sqrt(2 * rho / 2 / 3))
    assert len(model.components_) == 1 and model.by_ == []  # the mixture is off under DP
    assert "mixture switched off" in " ".join(model.summary()["warnings"])
    corr = model.components_[0].correlation
    assert corr[0, 1] > 0.8  # y = 2x + noise survives the noise


def test_dp_copula_refuses_by_columns_and_constraints():
    with pytest.raises(InvalidArgumentError, match="switched off"):
        GaussianCopula(epsilon=1.0, domain=SMALL, by=["colour"]).fit(_table())
    with pytest.raises(InvalidArgumentError, match="constraints"):
        GaussianCopula(epsilon=1.0, domain=SMALL, constraints=["x >= 0"]).fit(_table())


@pytest.mark.parametrize("make", [GaussianCopula, MSTSynthesizer])
def test_same_seed_same_model_and_rows(make):
    table = _table()
    a = make(epsilon=1.0, domain=SMALL, seed=4).fit(table).sample(3000, seed=9)
    b = make(epsilon=1.0, domain=SMALL, seed=4).fit(table).sample(3000, seed=9)
    c = make(epsilon=1.0, domain=SMALL, seed=5).fit(table).sample(3000, seed=9)
    assert a.equals(b)
    assert not a.equals(c)


@pytest.mark.parametrize("make", [GaussianCopula, MSTSynthesizer])
def test_save_load_round_trip(make, tmp_path):
    model = make(epsilon=2.0, domain=SMALL, seed=1).fit(_table())
    path = tmp_path / "m.kiln"
    model.save(path)
    again = load(path)
    assert type(again) is make and again.dp_ == model.dp_
    assert again.sample(1000, seed=3).equals(model.sample(1000, seed=3))


def _tamper(path: Path, out: Path, edit) -> Path:
    data = read_model(path)
    edit(data.payload, data.arrays)
    write_model(out, data)  # fresh checksums: only the field checks can catch it
    return out


EDITS = {
    "epsilon raised": (lambda p, a: p["state"]["dp"].__setitem__("epsilon", 10.0), "dp.epsilon"),
    "param and state disagree": (lambda p, a: p["params"].__setitem__("epsilon", 0.5), "dp.epsilon"),
    "ledger over budget": (lambda p, a: p["state"]["dp"]["ledger"][0].__setitem__("rho", 5.0), "dp.ledger"),
    "split": (lambda p, a: p["state"]["dp"]["split"].__setitem__(next(iter(p["state"]["dp"]["split"])), 0.9),
              "dp.split"),
    "dp removed": (lambda p, a: p["state"].pop("dp"), "dp"),
    "domain": (lambda p, a: p["state"]["dp"]["domain"]["columns"].pop("x"), "domain"),
    "method": (lambda p, a: p["state"]["dp"].__setitem__("method", "none"), "zCDP"),
}


@pytest.mark.parametrize("make", [GaussianCopula, MSTSynthesizer])
@pytest.mark.parametrize("edit", sorted(EDITS))
def test_tampered_dp_fields_are_refused(make, edit, tmp_path):
    path = tmp_path / "m.kiln"
    make(epsilon=1.0, domain=SMALL).fit(_table(500)).save(path)
    change, field = EDITS[edit]
    with pytest.raises(ModelFormatError, match=field):
        load(_tamper(path, tmp_path / "t.kiln", change))


def test_tampered_mst_tables_are_refused(tmp_path):
    path = tmp_path / "m.kiln"
    MSTSynthesizer(epsilon=1.0, domain=SMALL).fit(_table(500)).save(path)
    cases = {
        "e0": lambda p, a: a.__setitem__("e0", -a["e0"]),
        "m1": lambda p, a: a.__setitem__("m1", a["m1"][:-1]),
        "tree": lambda p, a: p["state"].__setitem__("tree", [[0, 1], [0, 1]]),
        "root": lambda p, a: p["state"].__setitem__("root", 2),
    }
    for field, change in cases.items():
        with pytest.raises(ModelFormatError, match=field):
            load(_tamper(path, tmp_path / f"{field}.kiln", change))


def test_copula_quantiles_outside_the_domain_are_refused(tmp_path):
    path = tmp_path / "m.kiln"
    GaussianCopula(epsilon=1.0, domain=SMALL).fit(_table(500)).save(path)

    def widen(payload, arrays):
        columns = payload["state"]["components"][0]["columns"]
        key = f"c0.q{columns.index('x')}"
        arrays[key] = arrays[key] + 500.0

    with pytest.raises(ModelFormatError, match="DP domain"):
        load(_tamper(path, tmp_path / "t.kiln", widen))


def test_non_dp_copula_is_unchanged():
    table = _table()
    assert GaussianCopula(seed=0).fit(table).sample(500, seed=1).equals(
        GaussianCopula(seed=0).fit(table).sample(500, seed=1))
    assert GaussianCopula().fit(table).dp_ is None


# -- utility on Adult --------------------------------------------------------------------------------
def _tstr_auc(train: pa.Table, test: pa.Table) -> float:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    features = [c for c in ADULT_COLUMNS if c != "income"]
    both = pa.concat_tables([train.select(ADULT_COLUMNS), test.select(ADULT_COLUMNS)]).to_pandas()
    for name in features:
        if both[name].dtype == object:
            both[name] = both[name].astype("category")
    x, y = both[features], (both["income"] == ">50K").to_numpy()
    n = train.num_rows
    clf = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
    clf.fit(x.iloc[:n], y[:n])
    return float(roc_auc_score(y[n:], clf.predict_proba(x.iloc[n:])[:, 1]))


def test_adult_sample_at_epsilon_1_is_well_above_chance(adult_sample, adult_sample_test):
    scores = []
    for seed in range(3):
        model = GaussianCopula(epsilon=1.0, domain=DOMAIN, seed=seed).fit(adult_sample)
        synthetic = model.sample(adult_sample.num_rows, seed=1)
        report = datakiln.evaluate(adult_sample, synthetic, detection=False, privacy=False)
        scores.append((report.fidelity["score"], _tstr_auc(synthetic, adult_sample_test)))
    fidelity, auc = np.mean(scores, axis=0)
    assert fidelity >= 0.7 and auc >= 0.65  # 600 rows at ε = 1; chance is 0.5
    # the MST's 2-way tables are mostly noise on 600 rows: its marginals still hold
    mst = MSTSynthesizer(epsilon=1.0, domain=DOMAIN, seed=0).fit(adult_sample)
    report = datakiln.evaluate(adult_sample, mst.sample(600, seed=1), detection=False, privacy=False)
    assert report.fidelity["column_shapes"] >= 0.75


def test_full_adult_at_epsilon_1_meets_the_targets(adult, adult_test):
    model = GaussianCopula(epsilon=1.0, domain=DOMAIN, seed=0).fit(adult)
    synthetic = model.sample(adult.num_rows, seed=1)
    assert _tstr_auc(synthetic, adult_test) >= 0.83
    mst = MSTSynthesizer(epsilon=1.0, domain=DOMAIN, seed=0).fit(adult).sample(adult.num_rows, seed=1)
    assert _tstr_auc(mst, adult_test) >= 0.78
    report = datakiln.evaluate(adult, mst, detection=False, privacy=False)
    assert report.fidelity["score"] >= 0.9


# -- the CLI -----------------------------------------------------------------------------------------
def test_cli_fits_dp_models(adult_sample_path, tmp_path):
    from datakiln.cli.app import app

    runner = CliRunner()
    names = ",".join(ADULT_COLUMNS)
    for model in ("mst", "copula"):
        out = tmp_path / f"{model}.kiln"
        result = runner.invoke(app, ["synth", "fit", str(adult_sample_path), "--names", names, "-o", str(out),
                                     "--model", model, "--epsilon", "1", "--delta", "1e-6",
                                     "--domain", str(DOMAIN)])
        assert result.exit_code == 0, result.output
        assert "privacy spent: epsilon=1.0" in result.output
        assert load(out).dp_["epsilon"] == 1.0
    result = runner.invoke(app, ["synth", "fit", str(adult_sample_path), "--names", names, "-o",
                                 str(tmp_path / "x.kiln"), "--model", "mst"])
    assert result.exit_code == 2 and "--epsilon" in result.output
