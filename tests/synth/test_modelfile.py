import json
import zipfile

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

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
        assert all(b"pickle" not in archive.read(n) for n in names)
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
    with pytest.raises(ModelFormatError, match="checksum"):
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
