"""Helpers for the model-file tests: a small copula table and deliberate edits of model files.

Kept out of the test modules so that importing them registers no test model twice.
"""

import hashlib
import io
import json
import zipfile

import numpy as np
import pyarrow as pa


def copula_table(rows: int = 400, seed: int = 0) -> pa.Table:
    """A small table for copula model files: integers and floats with nulls, categories, dates."""
    import datetime as dt

    rng = np.random.default_rng(seed)
    grade = rng.choice(["a", "b", "c"], rows, p=[0.5, 0.3, 0.2])
    age = rng.integers(18, 90, rows) + 5 * (grade == "c")
    return pa.table({
        "age": pa.array(age, mask=rng.random(rows) < 0.1),
        "income": np.round(rng.lognormal(10, 0.5, rows), 2),
        "city": pa.array(rng.choice(["Bern", "Paris", "Oslo", "Rome"], rows), mask=rng.random(rows) < 0.05),
        "grade": grade,
        "joined": pa.array([dt.date(2020, 1, 1) + dt.timedelta(days=int(d))
                            for d in rng.integers(0, 900, rows)], type=pa.date32()),
    })


def unpack(path):
    """(manifest, model.json payload, member bytes) of a model file."""
    with zipfile.ZipFile(path) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    return json.loads(members.pop("manifest.json")), json.loads(members["model.json"]), members


def repack(path, payload, members, arrays=None):
    """Write a model file with ``payload`` and ``arrays`` replaced, checksums and sizes recomputed
    (a deliberate edit, which checksums cannot catch)."""
    import io

    members = dict(members)
    members["model.json"] = json.dumps(payload).encode()
    for name, array in (arrays or {}).items():
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=array.dtype == object)
        members[f"arrays/{name}.npy"] = buffer.getvalue()
    manifest = {"format": "datakiln.model", "version": 1, "model": "GaussianCopula", "datakiln": "x",
                "members": {n: hashlib.sha256(b).hexdigest() for n, b in members.items()},
                "sizes": {n: len(b) for n, b in members.items()}}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(manifest))
        for name, content in members.items():
            archive.writestr(name, content)
    return path


def array_of(members, name):

    return np.load(io.BytesIO(members[f"arrays/{name}.npy"]))


def quantile_key(payload, column, component=0):
    return f"c{component}.q{payload['state']['components'][component]['columns'].index(column)}"
