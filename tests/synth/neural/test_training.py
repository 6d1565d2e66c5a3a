"""The shared parts of the neural models: the encoding, the training loop, the CLI registry."""

import numpy as np
import pyarrow as pa
import pytest
from tests.conftest import ADULT_COLUMNS, every_kind_table
from typer.testing import CliRunner

from datakiln.errors import InvalidArgumentError
from datakiln.synth import TVAE, load
from datakiln.synth.neural._encoding import Encoder, fit_modes
from datakiln.synth.neural.base import binned_similarity

pytest.importorskip("torch")

ROLES = {"age": "numeric", "income": "numeric", "member": "categorical", "city": "categorical",
         "joined": "numeric", "birthday": "numeric", "price": "numeric"}


def _small(**kw):
    return TVAE(**{"epochs": 4, "batch_size": 100, "hidden": (16,), "latent": 8, "threads": 1, **kw})


def test_fit_modes_finds_separated_modes_and_exact_values():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-50, 1, 3000), rng.normal(50, 2, 1000)])
    means, stds, weights = fit_modes(x, 10, rng)
    big = weights > 0.05
    assert np.isclose(means[big].min(), -50, atol=1) and np.isclose(means[big].max(), 50, atol=1)
    assert np.isclose(weights[means < 0].sum(), 0.75, atol=0.02)
    means, stds, weights = fit_modes(np.array([0.0] * 90 + [5.0] * 10), 10, rng)  # few values: one mode each
    np.testing.assert_array_equal(means, [0.0, 5.0])
    np.testing.assert_allclose(weights, [0.9, 0.1])


def test_spikes_become_exact_modes_and_are_sampled_exactly():
    """capital-gain-like: 90% zeros and a long tail; the zeros must come back as exact zeros."""
    rng = np.random.default_rng(3)
    x = np.where(rng.random(5000) < 0.9, 0.0, np.round(rng.lognormal(8, 1, 5000)))
    means, stds, weights = fit_modes(x, 10, rng)
    zero = np.flatnonzero(means == 0)
    assert len(zero) == 1 and stds[zero[0]] == 0 and abs(weights[zero[0]] - (x == 0).mean()) < 1e-12
    table = pa.table({"gain": x})
    encoder = Encoder.fit(table, {"gain": "numeric"}, rng)
    values, _ = encoder.inverse(encoder.transform(table, rng))["gain"]
    np.testing.assert_array_equal(values == 0, x == 0)


def test_encoding_round_trips_the_table():
    table = every_kind_table(rows=300).select(list(ROLES))
    rng = np.random.default_rng(1)
    encoder = Encoder.fit(table, ROLES, rng)
    matrix = encoder.transform(table, rng)
    assert matrix.shape == (300, encoder.width) and matrix.dtype == np.float32
    for span in encoder.spans:  # one-hots are one-hot, values inside (-1, 1)
        block = matrix[:, span.start:span.start + span.width]
        if span.activation == "softmax":
            np.testing.assert_array_equal(block.sum(axis=1), 1.0)
        else:
            assert np.abs(block).max() < 1
    decoded = encoder.inverse(matrix)
    for name in ROLES:
        column = encoder.to_arrow(name, *decoded[name], rng)
        original = table[name].combine_chunks()
        assert column.is_null().equals(original.is_null()), name
        if name in ("member", "city", "birthday", "age"):
            assert column.equals(original), name  # categories and integers exactly
        elif name == "income":
            got, want = column.to_numpy(zero_copy_only=False), original.to_numpy(zero_copy_only=False)
            ok = ~np.isnan(want)
            np.testing.assert_allclose(got[ok], want[ok], rtol=1e-5)


def test_binned_similarity_is_one_for_equal_tables_and_lower_for_shuffled_pairs():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, 5000)
    real = np.stack([a, a], axis=1)
    assert binned_similarity(real, real, rng) == 1.0
    broken = np.stack([a, rng.permutation(a)], axis=1)
    score = binned_similarity(real, broken, rng)
    assert 0.5 < score < 0.85  # marginals equal (1.0), the pair far off (TV 0.8 of the diagonal)


def test_checkpoint_resume_matches_an_uninterrupted_fit(tmp_path):
    table = every_kind_table(rows=300)
    whole = _small(epochs=4, check_every=2).fit(table)
    path = tmp_path / "run.ckpt"
    _small(epochs=2, check_every=2, checkpoint=str(path)).fit(table)  # "interrupted" after 2 epochs
    assert path.exists()
    resumed = _small(epochs=4, check_every=2, checkpoint=str(path)).fit(table)
    assert [h["epoch"] for h in resumed.history_] == [1, 2, 3, 4]
    for name, module in whole._modules.items():
        for key, value in module.state_dict().items():
            np.testing.assert_array_equal(value.numpy(), resumed._modules[name].state_dict()[key].numpy(),
                                          err_msg=f"{name}.{key}")
    other = every_kind_table(rows=300, seed=5)
    with pytest.raises(InvalidArgumentError, match="another fit"):
        _small(epochs=4, check_every=2, checkpoint=str(path)).fit(other)


def test_early_stopping_keeps_the_best_weights(monkeypatch):
    table = every_kind_table(rows=300)
    scores = iter([0.5, 0.9, 0.8, 0.7, 0.6, 0.5])
    snapshots = []

    def fake_fidelity(self, reference, rng, rows=None):
        snapshots.append({k: v.clone() for k, v in self._modules["decoder"].state_dict().items()})
        return next(scores)

    monkeypatch.setattr(TVAE, "fidelity", fake_fidelity)
    model = _small(epochs=6, check_every=1, patience=2).fit(table)
    assert [h.get("fidelity") for h in model.history_] == [0.5, 0.9, 0.8, 0.7]  # stopped after 2 worse checks
    for key, value in model._modules["decoder"].state_dict().items():
        np.testing.assert_array_equal(value.numpy(), snapshots[1][key].numpy())


def test_history_records_losses_seconds_and_fidelity():
    model = _small(epochs=2, check_every=1).fit(every_kind_table(rows=300))
    keys = ["epoch", "fidelity", "kl", "reconstruction", "seconds"]
    assert [sorted(h) for h in model.history_] == [keys] * 2
    assert all(0 < h["fidelity"] <= 1 and h["seconds"] > 0 for h in model.history_)


def test_threads_and_global_random_state_are_restored():
    import torch

    before_threads = torch.get_num_threads()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    _small(epochs=1, threads=1).fit(every_kind_table(rows=200))
    assert torch.get_num_threads() == before_threads
    assert torch.equal(torch.rand(3), expected)


def test_cli_fits_and_samples_a_neural_model(tmp_path, adult_sample_path):
    from datakiln.cli.app import app

    runner = CliRunner()
    out = tmp_path / "m.kiln"
    result = runner.invoke(app, ["synth", "fit", str(adult_sample_path), "--names", ",".join(ADULT_COLUMNS),
                                 "-o", str(out), "--model", "tvae", "--epochs", "2", "--batch-size", "100",
                                 "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert "TVAE fitted" in result.output and "training: epoch 2" in result.output
    assert type(load(out)).__name__ == "TVAE"
    sample = tmp_path / "s.parquet"
    result = runner.invoke(app, ["synth", "sample", str(out), "-n", "50", "-o", str(sample), "--where",
                                 "sex=Female"])
    assert result.exit_code == 0, result.output
    import pyarrow.parquet as pq

    assert set(pq.read_table(sample)["sex"].to_pylist()) == {"Female"}
    result = runner.invoke(app, ["synth", "fit", str(adult_sample_path), "-o", str(tmp_path / "x.kiln"),
                                 "--model", "gpt"])
    assert result.exit_code != 0 and "--model must be one of" in result.output
    pca = tmp_path / "p.kiln"
    result = runner.invoke(app, ["synth", "fit", str(adult_sample_path), "--names", ",".join(ADULT_COLUMNS),
                                 "-o", str(pca), "--model", "pca"])
    assert result.exit_code == 0, result.output
    assert load(pca).sample(10, seed=0).num_rows == 10



def test_layout_ops_match_a_per_span_reference():
    """The padded, vectorised span operations against a plain loop over the spans."""
    import torch

    from datakiln.synth.neural._training import Layout

    table = every_kind_table(rows=200).select(list(ROLES))
    encoder = Encoder.fit(table, ROLES, np.random.default_rng(0))
    layout = Layout(encoder.spans, torch.device("cpu"))
    gen = torch.Generator().manual_seed(0)
    raw = torch.randn(64, encoder.width, generator=gen)
    codes = torch.stack([torch.randint(0, s.width, (64,), generator=gen) for s in layout.spans], dim=1)
    want_ce = sum(torch.nn.functional.cross_entropy(raw[:, s.start:s.start + s.width], codes[:, j],
                                                    reduction="none") for j, s in enumerate(layout.spans))
    torch.testing.assert_close(layout.cross_entropy(raw, codes), want_ce)
    out = layout.activate(raw)
    for span in encoder.spans:
        block = raw[:, span.start:span.start + span.width]
        want = torch.tanh(block) if span.activation == "tanh" else torch.softmax(block, dim=1)
        torch.testing.assert_close(out[:, span.start:span.start + span.width], want)
    hard = layout.activate(raw, tau=0.2, generator=torch.Generator().manual_seed(1))
    for span in layout.spans:  # Gumbel-softmax: each span still sums to 1
        torch.testing.assert_close(hard[:, span.start:span.start + span.width].sum(dim=1), torch.ones(64))
