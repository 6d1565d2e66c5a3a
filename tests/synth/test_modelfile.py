import json
import zipfile

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from tests.synth._modelfiles import array_of, copula_table, quantile_key, repack, unpack

import datakiln
from datakiln.errors import InvalidArgumentError, ModelFormatError
from datakiln.synth import ModelData, Synthesizer, load, read_model, register, write_model


@register
class ColumnDraws(Synthesizer):
    """Test model: draws every column independently from its training values."""

    def __init__(self, *, keep_nulls: bool = True) -> None:
        self.keep_nulls = keep_nulls

    def _fit(self, data):
        from datakiln.transform.base import as_batches

        table = pa.concat_tables(list(as_batches(data)))
        self.values_ = {name: table[name].combine_chunks() for name in table.column_names}

    def _sample(self, n, conditions, rng):
        columns = {}
        for name, values in self.values_.items():
            picked = values.take(pa.array(rng.integers(0, len(values), n)))
            if name in conditions:
                picked = pa.array([conditions[name]] * n, type=values.type)
            columns[name] = picked
        return pa.table(columns)

    def _to_state(self):
        arrays = {f"num.{k}": v.to_numpy(zero_copy_only=False) for k, v in self.values_.items()
                  if pa.types.is_floating(v.type) or pa.types.is_integer(v.type)}
        text = {k: v.to_pylist() for k, v in self.values_.items() if f"num.{k}" not in arrays}
        return {"text": text}, arrays

    def _from_state(self, state, arrays):
        self.values_ = {name: pa.array(arrays[f"num.{name}"]) if f"num.{name}" in arrays
                        else pa.array(state["text"][name], type=self.schema_.field(name).type)
                        for name in self.schema_.names}


@pytest.fixture
def fitted(adult):
    return ColumnDraws().fit(adult.slice(0, 2000))


def test_save_load_round_trip_is_exact_and_deterministic(fitted, tmp_path):
    first = fitted.sample(500, seed=3)
    assert first.schema.equals(fitted.schema_)  # the training schema exactly
    assert first.equals(fitted.sample(500, seed=3))
    fitted.save(tmp_path / "m.kiln")
    again = load(tmp_path / "m.kiln")
    assert isinstance(again, ColumnDraws) and again.get_params() == {"keep_nulls": True}
    assert again.sample(500, seed=3).equals(first)
    assert again.schema_.equals(fitted.schema_)
    conditioned = again.sample(50, conditions={"income": ">50K"}, seed=1)
    assert pc.all(pc.equal(conditioned["income"], ">50K")).as_py()


def test_model_files_are_json_and_npy_never_pickle(fitted, tmp_path):
    fitted.save(tmp_path / "m.kiln")
    with zipfile.ZipFile(tmp_path / "m.kiln") as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
        assert {"manifest.json", "model.json", "arrays/num.age.npy"} <= names
        assert manifest["format"] == "datakiln.model" and manifest["model"] == "ColumnDraws"
        assert all(n == "manifest.json" or n == "model.json" or n.endswith(".npy") for n in names)
    data = read_model(tmp_path / "m.kiln")
    assert data.arrays["num.age"].dtype == np.int64


def _rewrite(path, change):
    with zipfile.ZipFile(path) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    change(members)
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)


def test_truncated_tampered_newer_and_foreign_files(fitted, tmp_path):
    path = tmp_path / "m.kiln"
    fitted.save(path)
    blob = path.read_bytes()
    (tmp_path / "cut.kiln").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ModelFormatError, match="truncated|incomplete"):
        load(tmp_path / "cut.kiln")
    _rewrite(path, lambda m: m.__setitem__("model.json", m["model.json"].replace(b"true", b"false")))
    with pytest.raises(ModelFormatError, match="checksum|altered"):
        load(path)
    fitted.save(path)

    def newer(members):
        manifest = json.loads(members["manifest.json"])
        manifest["version"] = 99
        members["manifest.json"] = json.dumps(manifest).encode()

    _rewrite(path, newer)
    with pytest.raises(ModelFormatError, match="newer datakiln"):
        load(path)
    (tmp_path / "x.kiln").write_text("hello")
    with pytest.raises(ModelFormatError, match="not a complete datakiln model"):
        load(tmp_path / "x.kiln")
    write_model(tmp_path / "other.kiln", ModelData("NoSuchModel", {"params": {}}))
    with pytest.raises(ModelFormatError, match="does not know"):
        load(tmp_path / "other.kiln")
    with pytest.raises(ModelFormatError, match="no model file"):
        load(tmp_path / "missing.kiln")


def test_contract_errors(fitted):
    with pytest.raises(InvalidArgumentError, match="not fitted"):
        ColumnDraws().sample(5)
    with pytest.raises(InvalidArgumentError, match="unknown columns"):
        fitted.sample(5, conditions={"salary": 1})
    with pytest.raises(InvalidArgumentError, match="whole number"):
        fitted.sample(-1)
    with pytest.raises(ValueError, match="Python objects"):
        write_model("/tmp/never.kiln", ModelData("X", {}, {"bad": np.array([object()])}))


def test_fit_accepts_datasets_and_frames(adult):
    frame = adult.slice(0, 100).to_pandas()
    assert ColumnDraws().fit(frame).sample(3, seed=0).num_rows == 3
    dataset = datakiln.from_arrow(adult.slice(0, 100))
    assert ColumnDraws().fit(dataset).sample(3, seed=0).column_names == adult.column_names


# -- content validation: deliberate edits with recomputed checksums (issue 12 item 3) --------------------

@pytest.fixture(scope="module")
def copula_file(tmp_path_factory):
    from datakiln.synth import GaussianCopula

    model = GaussianCopula(by=["grade"], min_component_rows=20, grid=65, seed=0).fit(copula_table())
    path = tmp_path_factory.mktemp("copula") / "m.kiln"
    model.save(path)
    return path


def test_the_untouched_copula_file_loads_and_samples(copula_file, tmp_path):
    _, payload, members = unpack(copula_file)
    model = load(repack(tmp_path / "same.kiln", payload, members))  # repacking alone changes nothing
    sample = model.sample(2000, seed=1)
    assert sample.schema.equals(model.schema_) and pc.min(sample["age"]).as_py() >= 18


def test_nan_quantiles_are_refused_naming_the_array(copula_file, tmp_path):
    _, payload, members = unpack(copula_file)
    key = quantile_key(payload, "age")
    q = array_of(members, key)
    q[len(q) // 2:] = np.nan  # before: 47% of ages came out as -9223372036854775808
    with pytest.raises(ModelFormatError, match=f"{key}.*'age'.*NaN"):
        load(repack(tmp_path / "nan.kiln", payload, members, {key: q}))
    backwards = array_of(members, key)[::-1].copy()
    with pytest.raises(ModelFormatError, match=f"{key}.*non-decreasing"):
        load(repack(tmp_path / "desc.kiln", payload, members, {key: backwards}))
    huge = array_of(members, key).astype(float)
    huge[-1] = 1e30  # finite, but no int64 holds it
    with pytest.raises(ModelFormatError, match=f"{key}.*range a column of its type holds"):
        load(repack(tmp_path / "huge.kiln", payload, members, {key: huge}))


def test_a_share_above_one_is_refused_naming_the_field(copula_file, tmp_path):
    _, payload, members = unpack(copula_file)
    payload["state"]["components"][0]["null_share"]["age"] = 2.0  # before: 46% of ages came out null
    with pytest.raises(ModelFormatError, match=r"components\[0\]\.null_share\.age.*\[0, 1\].*2\.0"):
        load(repack(tmp_path / "m.kiln", payload, members))
    _, payload, _ = unpack(copula_file)
    payload["state"]["components"][0]["categories"]["city"]["shares"][0] += 0.5
    with pytest.raises(ModelFormatError, match=r"categories\.city\.shares.*adding up to 1"):
        load(repack(tmp_path / "m.kiln", payload, members))


def test_zero_weights_are_refused_naming_the_field(copula_file, tmp_path):
    _, payload, members = unpack(copula_file)
    for part in payload["state"]["components"]:
        part["weight"] = 0.0  # before: "no conditions match {}" at sample time
    with pytest.raises(ModelFormatError, match=r"weight.*add up to 1"):
        load(repack(tmp_path / "m.kiln", payload, members))


def test_bad_correlation_matrices_are_refused(copula_file, tmp_path):
    _, payload, members = unpack(copula_file)
    corr = array_of(members, "c0.correlation")
    k = len(corr)
    lopsided = corr.copy()
    lopsided[0, 1] += 0.3
    indefinite = np.full((k, k), -0.9)
    np.fill_diagonal(indefinite, 1.0)
    for matrix, message in [(lopsided, "symmetric"), (indefinite, "positive semi-definite"),
                            (corr[:-1, :-1].copy(), f"{k}x{k}")]:
        with pytest.raises(ModelFormatError, match=f"c0.correlation.*{message}"):
            load(repack(tmp_path / "m.kiln", payload, members, {"c0.correlation": matrix}))


def test_sizes_and_codes_must_agree_with_the_columns(copula_file, tmp_path):
    _, payload, members = unpack(copula_file)
    payload["state"]["components"][1]["categories"]["city"]["index"][0] = 99
    with pytest.raises(ModelFormatError, match=r"components\[1\]\.categories\.city\.index"):
        load(repack(tmp_path / "m.kiln", payload, members))
    _, payload, _ = unpack(copula_file)
    payload["state"]["components"][0]["fixed"]["grade"] = 7
    with pytest.raises(ModelFormatError, match=r"components\[0\]\.fixed"):
        load(repack(tmp_path / "m.kiln", payload, members))
    _, payload, _ = unpack(copula_file)
    payload["state"]["modelled"].remove("city")
    with pytest.raises(ModelFormatError, match="'modelled'"):
        load(repack(tmp_path / "m.kiln", payload, members))
    _, payload, _ = unpack(copula_file)
    payload["state"]["components"][0]["null_share"]["income"] = float("nan")  # JSON accepts NaN
    with pytest.raises(ModelFormatError, match=r"components\[0\]\.null_share\.income.*NaN"):
        load(repack(tmp_path / "m.kiln", payload, members))
    _, payload, _ = unpack(copula_file)
    del members[f"arrays/{quantile_key(payload, 'income')}.npy"]
    with pytest.raises(ModelFormatError, match=f"{quantile_key(payload, 'income')}.*missing"):
        load(repack(tmp_path / "m.kiln", payload, members))
    with pytest.raises(ModelFormatError, match="model.json must hold a JSON object"):
        load(repack(tmp_path / "m.kiln", ["not", "an", "object"], members))


def test_a_directory_is_not_a_model_file(tmp_path):
    with pytest.raises(ModelFormatError, match="is a directory"):  # before: IsADirectoryError
        load(tmp_path)


def test_a_zip_bomb_is_refused_before_inflating(copula_file, tmp_path):
    import hashlib
    import tracemalloc

    manifest, payload, members = unpack(copula_file)
    bomb = tmp_path / "bomb.kiln"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        manifest["members"]["arrays/pad.npy"] = hashlib.sha256(bytes(96 << 20)).hexdigest()  # checksum right
        archive.writestr("manifest.json", json.dumps(manifest))
        for name, content in members.items():
            archive.writestr(name, content)
        with archive.open("arrays/pad.npy", "w", force_zip64=True) as stream:
            zeros = bytes(1 << 20)
            for _ in range(96):  # 96 MiB of zeros: about 100 kB compressed
                stream.write(zeros)
    assert bomb.stat().st_size < 400_000
    tracemalloc.start()
    try:
        with pytest.raises(ModelFormatError, match="pad.npy.*zip bomb"):
            load(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024 * 1024  # nothing was inflated


def test_declared_sizes_must_match(copula_file, tmp_path):
    manifest, payload, members = unpack(copula_file)
    path = repack(tmp_path / "m.kiln", payload, members)
    _, _, packed = unpack(path)
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    manifest["sizes"]["model.json"] -= 1
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("manifest.json", json.dumps(manifest))
        for name, content in packed.items():
            archive.writestr(name, content)
    with pytest.raises(ModelFormatError, match="'model.json' is .* bytes .* manifest says"):
        load(path)


class _Tripwire:
    """Unpickling this would create a file: proof that nothing in a model file is executed."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import pathlib

        return pathlib.Path.touch, (pathlib.Path(self.marker),)


def test_an_object_array_is_refused_without_executing_it(copula_file, tmp_path):
    marker = tmp_path / "executed"
    _, payload, members = unpack(copula_file)
    crafted = np.empty(1, dtype=object)
    crafted[0] = _Tripwire(str(marker))
    path = repack(tmp_path / "m.kiln", payload, members, {"c0.correlation": crafted})
    with zipfile.ZipFile(path) as archive:
        assert b"touch" in archive.read("arrays/c0.correlation.npy")  # a real pickle payload
    with pytest.raises(ModelFormatError, match="c0.correlation.*dtype object.*never Python objects"):
        load(path)
    assert not marker.exists()


def test_legitimate_edge_models_still_load(tmp_path):
    """Components where a column is all null keep placeholder quantiles (zeros): not a tampered file."""
    from datakiln.synth import GaussianCopula

    rng = np.random.default_rng(0)
    rows = 600
    grade = rng.choice(["a", "b", "c"], rows)
    start = rng.normal(50, 5, rows)
    table = pa.table({"grade": grade,
                      "age": pa.array(rng.integers(18, 80, rows), mask=grade == "c"),  # all null in 'c'
                      "start": start,
                      "end": pa.array(start + rng.uniform(1, 9, rows), mask=grade == "b"),
                      "score": rng.normal(size=rows)})
    model = GaussianCopula(by=["grade"], min_component_rows=20, grid=33,
                           constraints=["age >= 18", "start < end"]).fit(table)
    model.save(tmp_path / "m.kiln")
    again = load(tmp_path / "m.kiln")
    sample = again.sample(3000, seed=2)
    assert sample.equals(model.sample(3000, seed=2))
    assert pc.min(sample["age"]).as_py() >= 18


def test_unreadable_schema_bytes_are_refused(copula_file, tmp_path):
    _, payload, members = unpack(copula_file)
    garbage = np.frombuffer(b"\xff\xff\xff\xff" + bytes(range(60)), dtype=np.uint8).copy()
    with pytest.raises(ModelFormatError, match="__schema__.*not a readable Arrow schema"):
        load(repack(tmp_path / "m.kiln", payload, members, {"__schema__": garbage}))
    with pytest.raises(ModelFormatError, match="__schema__.*uint8"):
        load(repack(tmp_path / "m.kiln", payload, members, {"__schema__": garbage.astype(np.float64)}))


@pytest.mark.parametrize("text", [b"{\"state\": " + b"[" * 100_000 + b"]" * 100_000 + b"}",
                                  b"{\"rows\": " + b"9" * 5000 + b"}", b"\xff\xfe not utf-8", b"[1, 2"])
def test_unreadable_model_json_is_refused(copula_file, tmp_path, text):
    import hashlib

    manifest, _, members = unpack(copula_file)
    members["model.json"] = text
    manifest["members"]["model.json"] = hashlib.sha256(text).hexdigest()
    manifest.setdefault("sizes", {})["model.json"] = len(text)
    with zipfile.ZipFile(tmp_path / "m.kiln", "w") as archive:
        archive.writestr("manifest.json", json.dumps(manifest))
        for name, content in members.items():
            archive.writestr(name, content)
    with pytest.raises(ModelFormatError, match="model.json is not valid JSON"):
        load(tmp_path / "m.kiln")
