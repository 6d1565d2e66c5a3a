"""TVAE, CTGAN and PCASynthesizer on small tables: the Synthesizer contract, model by model.

Each test uses tiny networks and 1-3 epochs (CPU, one thread): what is checked is the
contract (schema, conditions, constraints, seeds, files, warm start, no copied values),
with oracles taken from the training table itself, not from datakiln.
"""

import io
import json
import zipfile

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from tests.conftest import every_kind_table
from tests.synth._modelfiles import repack, unpack

from datakiln.errors import InvalidArgumentError, ModelFormatError
from datakiln.synth import CTGAN, TVAE, PCASynthesizer, load
from datakiln.synth.constraints import check, parse_constraints

pytest.importorskip("torch")

SMALL = {
    "tvae": lambda **kw: TVAE(**{"epochs": 2, "batch_size": 100, "hidden": (32,), "latent": 16, "threads": 1,
                                 **kw}),
    "ctgan": lambda **kw: CTGAN(**{"epochs": 2, "batch_size": 100, "generator": (32,), "discriminator": (32,),
                                   "embedding": 16, "threads": 1, **kw}),
    "pca": lambda **kw: PCASynthesizer(**kw),
}
MODELS = list(SMALL)


@pytest.fixture(scope="module")
def table() -> pa.Table:
    return every_kind_table(rows=400)


@pytest.fixture(scope="module")
def fitted(table):
    return {name: make().fit(table) for name, make in SMALL.items()}


@pytest.mark.parametrize("name", MODELS)
def test_samples_have_the_training_schema_and_never_copy_ids_pii_or_text(name, fitted, table):
    model = fitted[name]
    out = model.sample(500, seed=1)
    assert out.schema == table.schema and out.num_rows == 500
    ids = out["id"].to_numpy()
    assert len(set(ids)) == 500 and not set(ids) & set(table["id"].to_pylist())
    assert not set(out["email"].to_pylist()) & set(table["email"].to_pylist())
    assert all(e.endswith("@example.com") for e in out["email"].to_pylist())
    assert not set(out["note"].drop_null().to_pylist()) & set(table["note"].drop_null().to_pylist())
    # categories come from training only; numbers stay inside the training range
    assert set(out["city"].drop_null().to_pylist()) <= set(table["city"].drop_null().to_pylist())
    for column in ("age", "income", "price", "birthday"):
        real, fake = pc.min_max(table[column]).as_py(), pc.min_max(out[column]).as_py()
        assert fake["min"] >= real["min"] and fake["max"] <= real["max"], column
    assert out["age"].null_count > 0  # nulls are modelled (10% in training)


@pytest.mark.parametrize("name", MODELS)
def test_pii_drop_and_text_drop_leave_the_columns_out(name, table):
    model = SMALL[name](pii="drop", text="drop").fit(table)
    assert "email" not in model.sample(10, seed=0).column_names
    assert "note" not in model.output_schema().names


@pytest.mark.parametrize("name", MODELS)
def test_conditions_hold_exactly(name, fitted):
    model = fitted[name]
    out = model.sample(200, conditions={"city": "Paris", "age": (30, 60)}, seed=2)
    assert out.num_rows == 200
    assert set(out["city"].to_pylist()) == {"Paris"}
    ages = out["age"].to_numpy(zero_copy_only=False)
    assert ages.min() >= 30 and ages.max() <= 60
    missing = model.sample(20, conditions={"city": None}, seed=2)
    assert missing["city"].null_count == 20
    exact = model.sample(20, conditions={"age": 40}, seed=2)  # a single number: set exactly
    assert set(exact["age"].to_pylist()) == {40}


@pytest.mark.parametrize("name", MODELS)
def test_impossible_conditions_stop_with_a_clear_error(name, fitted):
    model = fitted[name]
    with pytest.raises(InvalidArgumentError, match="not a value of 'city' seen in training"):
        model.sample(10, conditions={"city": "Atlantis"})
    with pytest.raises(InvalidArgumentError, match="outside the training range"):
        model.sample(10, conditions={"age": (200, 300)})
    with pytest.raises(InvalidArgumentError, match="50x oversampling"):  # a needle: bounded rejection
        model.sample(100, conditions={"income": (20_000.0, 20_000.001)})


@pytest.mark.parametrize("name", MODELS)
def test_constraints_hold_in_every_sample(name):
    rng = np.random.default_rng(4)
    rows = 300
    start = rng.integers(0, 100, rows)
    table = pa.table({"start": start, "end": start + rng.integers(1, 50, rows),
                      "ratio": rng.uniform(0, 1, rows), "visits": rng.integers(0, 9, rows).astype(float),
                      "kind": rng.choice(["x", "y"], rows)})
    rules = ["start < end", "0 <= ratio <= 1", "visits: integer", "visits >= 0"]
    out = SMALL[name](constraints=rules).fit(table).sample(2000, seed=0)
    assert check(out, parse_constraints(rules, table.column_names)) == {}
    assert (out["end"].to_numpy() > out["start"].to_numpy()).all()


@pytest.mark.parametrize("name", MODELS)
def test_same_seed_same_model_and_rows_batches_included(name, table, fitted):
    again = SMALL[name]().fit(table)
    first = fitted[name].sample(300, seed=7)
    assert again.sample(300, seed=7).equals(first)
    assert not fitted[name].sample(300, seed=8).equals(first)
    batches = list(fitted[name].sample_batches(300, batch_rows=70, seed=7))
    assert [b.num_rows for b in batches] == [70, 70, 70, 70, 20]
    assert pa.concat_tables(batches).equals(first)


@pytest.mark.parametrize("name", MODELS)
def test_save_load_round_trip_gives_identical_samples(name, fitted, tmp_path):
    path = tmp_path / f"{name}.kiln"
    fitted[name].save(path)
    loaded = load(path)
    assert type(loaded) is type(fitted[name])
    assert loaded.sample(300, seed=5, conditions={"city": "東京"}).equals(
        fitted[name].sample(300, seed=5, conditions={"city": "東京"}))


def _arrays(members):
    return {n.removeprefix("arrays/").removesuffix(".npy"): np.load(io.BytesIO(b))
            for n, b in members.items() if n.startswith("arrays/")}


@pytest.mark.parametrize("name", MODELS)
def test_tampered_files_are_refused(name, fitted, tmp_path):
    path = tmp_path / "m.kiln"
    fitted[name].save(path)
    manifest, payload, members = unpack(path)

    def rewrite(new_payload=None, arrays=None):
        target = tmp_path / "edited.kiln"
        repack(target, payload if new_payload is None else new_payload, members, arrays)
        with zipfile.ZipFile(target) as z:  # repack writes a copula manifest: put the model type back
            items = {n: z.read(n) for n in z.namelist()}
        fixed = json.loads(items["manifest.json"])
        fixed["model"] = manifest["model"]
        with zipfile.ZipFile(target, "w") as z:
            z.writestr("manifest.json", json.dumps(fixed))
            for n, b in items.items():
                if n != "manifest.json":
                    z.writestr(n, b)
        return target

    # a byte changed without fixing the checksum
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (tmp_path / "flipped.kiln").write_bytes(bytes(raw))
    with pytest.raises(ModelFormatError):
        load(tmp_path / "flipped.kiln")
    # content edits that keep the checksums valid
    bad = json.loads(json.dumps(payload))
    numeric = next(c for c in bad["state"]["encoder"] if c["kind"] == "numeric")
    numeric["stds"][0] = -1.0
    with pytest.raises(ModelFormatError, match="stds"):
        load(rewrite(bad))
    bad = json.loads(json.dumps(payload))
    bad["state"]["roles"]["age"] = "wizard"
    with pytest.raises(ModelFormatError, match="roles"):
        load(rewrite(bad))
    arrays = _arrays(members)
    weight = next(n for n in arrays if n != "__schema__")
    shrunk = {weight: arrays[weight].reshape(-1)[:-1].copy()}
    with pytest.raises(ModelFormatError):
        load(rewrite(arrays=shrunk))
    broken = {weight: np.full_like(arrays[weight], np.nan, dtype=np.float64)}
    with pytest.raises(ModelFormatError):
        load(rewrite(arrays=broken))


@pytest.mark.parametrize("name", ["tvae", "ctgan"])
def test_warm_start_copies_weights_and_learns_new_categories(name, table):
    pretrain = table.filter(pc.fill_null(pc.not_equal(table["city"], "Paris"), True))
    finetune = table.filter(pc.fill_null(pc.equal(table["city"], "Paris"), False))
    base = SMALL[name]().fit(pretrain)
    assert "Paris" not in base.encoder_._categories["city"].kept.to_pylist()
    frozen = {"learning_rate": 0.0} if name == "tvae" else {"generator_lr": 0.0, "discriminator_lr": 0.0}
    tuned = SMALL[name](epochs=1, **frozen).fit(finetune, init=base)
    assert tuned.encoder_._categories["city"].kept.to_pylist()[-1] == "Paris"
    old_at, new_at = tuned.encoder_.index_map(base.encoder_)
    first = "encoder" if name == "tvae" else "discriminator"
    old_w = base._modules[first][0].weight.detach().numpy()
    new_w = tuned._modules[first][0].weight.detach().numpy()
    np.testing.assert_array_equal(new_w[:, new_at], old_w[:, old_at])  # mapped slot by slot
    trained = SMALL[name](epochs=2).fit(finetune, init=base)
    assert set(trained.sample(200, seed=0)["city"].drop_null().to_pylist()) <= {"Paris", "Zürich", "東京",
                                                                                 "New York"}
    assert trained.sample(20, conditions={"city": "Paris"}, seed=0).num_rows == 20


def test_pca_warm_start_mixes_the_init_moments(table):
    pretrain = table.slice(0, 200)
    base = PCASynthesizer().fit(pretrain)
    full = PCASynthesizer(warm_weight=1.0).fit(table.slice(200), init=base)
    old_at, new_at = full.encoder_.index_map(base.encoder_)
    np.testing.assert_allclose(full.mean_[new_at], base.mean_[old_at])
    half = PCASynthesizer(warm_weight=0.0).fit(table.slice(200), init=base)
    plain = PCASynthesizer().fit(table.slice(200))
    assert not np.allclose(half.mean_[new_at], base.mean_[old_at])
    assert half.sample(50, seed=0).num_rows == 50 and plain.mean_.shape[0] <= half.mean_.shape[0]


def test_warm_start_refuses_another_schema(table, fitted):
    with pytest.raises(InvalidArgumentError, match="same schema"):
        SMALL["pca"]().fit(table.drop_columns(["price"]), init=fitted["pca"])
    with pytest.raises(InvalidArgumentError, match="fitted PCASynthesizer"):
        SMALL["pca"]().fit(table, init=fitted["tvae"])


def test_bad_settings_are_refused(table):
    with pytest.raises(InvalidArgumentError, match="multiple of pac"):
        SMALL["ctgan"](batch_size=95).fit(table)
    with pytest.raises(InvalidArgumentError, match="epochs"):
        SMALL["tvae"](epochs=0).fit(table)
    with pytest.raises(InvalidArgumentError, match="pii"):
        SMALL["pca"](pii="keep").fit(table)
    with pytest.raises(InvalidArgumentError, match="device"):
        SMALL["tvae"](device="tpu7").fit(table)


def test_the_models_learn_the_dependence_between_columns():
    """A label that decides a number: TVAE and PCA keep the two groups apart (oracle: the rule).

    CTGAN needs far more steps than a unit test affords to learn it (GAN training); its
    learning is measured on Adult by benchmarks/synth_neural.py instead."""
    rng = np.random.default_rng(0)
    rows = 1000
    label = rng.choice(["low", "high"], rows)
    value = np.where(label == "high", rng.normal(100, 5, rows), rng.normal(10, 2, rows))
    table = pa.table({"label": label, "value": value})
    for name in ("tvae", "pca"):
        kw = {"epochs": 20} if name != "pca" else {}
        out = SMALL[name](**kw).fit(table).sample(2000, seed=0)
        high = out.filter(pc.equal(out["label"], "high"))["value"].to_numpy()
        low = out.filter(pc.equal(out["label"], "low"))["value"].to_numpy()
        assert np.median(high) > 60 and np.median(low) < 40, name
        assert abs(len(high) / 2000 - 0.5) < 0.1, name


@pytest.mark.parametrize("name", MODELS)
def test_odd_columns_keep_their_type_and_content(name):
    rows = 120
    odd = pa.table({"allnull": pa.array([None] * rows, type=pa.float64()), "const": [7] * rows,
                    "cat": pa.array(["a", "b", "c"] * (rows // 3)).dictionary_encode(),
                    "big": pa.array(["x", "y"] * (rows // 2), type=pa.large_string()),
                    "flag": [True, False, None] * (rows // 3)})
    kw = {} if name == "pca" else {"epochs": 1, "batch_size": 60}
    out = SMALL[name](**kw).fit(odd).sample(50, seed=1)
    assert out.schema == odd.schema
    assert out["allnull"].null_count == 50 and set(out["const"].to_pylist()) == {7}
    assert set(out["cat"].to_pylist()) <= {"a", "b", "c"} and set(out["big"].to_pylist()) <= {"x", "y"}
