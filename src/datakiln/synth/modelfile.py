"""Model files that are data, never code: JSON plus NumPy arrays in one zip, checksummed.

Layout of a ``.kiln`` file (a zip archive):

- ``manifest.json``: ``{"format": "datakiln.model", "version", "model", "datakiln",
  "members": {name: sha256}}``;
- ``model.json``: the model's parameters and learned state (plain JSON);
- ``arrays/<name>.npy``: NumPy arrays in the ``.npy`` format, read with
  ``allow_pickle=False`` (torch weights are stored the same way, as CPU arrays, so a
  model trained on a GPU loads anywhere).

Reading verifies every member's SHA-256 and the format version: a truncated, altered or
newer file raises :class:`~datakiln.errors.ModelFormatError`. The checksums catch
corruption and accidental edits; they are not a signature against a deliberate forger, so
the content is checked too (:mod:`datakiln.synth._validate`): member sizes are capped
before anything is inflated (against the manifest's declared ``sizes``, a total of
:data:`MAX_TOTAL_BYTES` and a compression ratio of :data:`MAX_RATIO`) and read through a
bounded reader; every ``.npy`` header is parsed first (plain numeric dtypes only, the data
length matching the shape: never pickle, nothing executed); ``model.json`` must be plain
JSON with finite numbers; each model then validates its own fields when it is rebuilt.
Writes are atomic (temporary file, then rename) and replace only datakiln's own model file
(:func:`is_own_model`: a zip whose manifest says ``"format": "datakiln.model"``): any other
file at the path needs ``overwrite=True``, and an input of the fit is never replaced.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from datakiln.errors import ModelFormatError
from datakiln.io.write import write_file_atomic
from datakiln.synth._validate import (
    MAX_RATIO,
    MAX_TOTAL_BYTES,
    check_payload,
    check_schema,
    load_array,
    read_member,
)

__all__ = ["FORMAT_VERSION", "MAX_RATIO", "MAX_TOTAL_BYTES", "ModelData", "is_own_model", "read_model",
           "write_model"]

FORMAT_VERSION = 1
_MANIFEST_BYTES = 1024 * 1024  # a larger manifest is not read when asking whether a file is ours
_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


@dataclass
class ModelData:
    """What a model file holds: the ``model`` type name, JSON ``payload`` and ``arrays``."""

    model: str
    payload: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    version: int = FORMAT_VERSION
    datakiln: str = ""


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_own_model(path: Path) -> bool:
    """Whether ``path`` is a model file datakiln wrote (its manifest's format name); only the
    small manifest is read, never the arrays."""
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("manifest.json")
            if info.file_size > _MANIFEST_BYTES:
                return False
            manifest = json.loads(archive.read(info))
    except (OSError, KeyError, ValueError, RecursionError, zipfile.BadZipFile, EOFError, zlib.error,
            NotImplementedError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == "datakiln.model"


def write_model(path: str | os.PathLike[str], data: ModelData, *, overwrite: bool = False,
                inputs: Iterable[str | os.PathLike[str]] = (), encryption: Any = None) -> Path:
    """Write ``data`` to ``path`` atomically; returns the absolute path.

    An existing file at ``path`` is replaced only if it is a datakiln model file or with
    ``overwrite=True``; a directory there, or a path among ``inputs`` (the files the model
    learned from), raises :class:`~datakiln.errors.OutputExistsError`. ``encryption`` (a
    :class:`datakiln.privacy.EncryptionConfig`) seals the file in the AES-GCM envelope as it
    is written; read it with ``read_model(path, decryption=...)``.
    """
    from datakiln import __version__

    members: dict[str, bytes] = {"model.json": json.dumps(data.payload, indent=1, allow_nan=False,
                                                          ensure_ascii=False).encode("utf-8")}
    for name, array in data.arrays.items():
        if not _NAME.match(name):
            raise ValueError(f"array name {name!r} must be letters, digits, '_', '-' or '.'")
        if np.asarray(array).dtype == object:
            raise ValueError(f"array {name!r} holds Python objects; store them in the JSON payload")
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(array), allow_pickle=False)
        members[f"arrays/{name}.npy"] = buffer.getvalue()
    manifest = {"format": "datakiln.model", "version": FORMAT_VERSION, "model": data.model,
                "datakiln": __version__, "members": {n: _digest(b) for n, b in members.items()},
                "sizes": {n: len(b) for n, b in members.items()}}

    def write(temp: Path) -> None:
        sealed = None if encryption is None else encryption.wrap_stream(open(temp, "wb"))  # noqa: SIM115
        with zipfile.ZipFile(temp if sealed is None else sealed, "w",
                             compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("manifest.json", json.dumps(manifest, indent=1))
            for name, content in members.items():
                archive.writestr(name, content)
        if sealed is not None:
            sealed.close()  # seals the final chunk and closes the file

    return write_file_atomic(Path(path).expanduser(), write, is_own=is_own_model, overwrite=overwrite,
                             inputs=inputs)


def read_model(path: str | os.PathLike[str], *, decryption: Any = None) -> ModelData:
    """Read and verify a model file written by :func:`write_model` (``decryption``: a
    :class:`datakiln.privacy.DecryptionConfig` for one written with ``encryption=``)."""
    where = str(path)
    if Path(path).is_dir():
        raise ModelFormatError(f"{where!r} is a directory, not a model file; give the path of the .kiln "
                               "file that Synthesizer.save wrote")
    source: Any = path if decryption is None else io.BytesIO(decryption.decrypt_bytes(path))
    try:
        with zipfile.ZipFile(source) as archive:
            manifest = _manifest(archive, where)
            contents, total = {}, 0
            for name, expected in manifest["members"].items():
                try:
                    content = read_member(archive, name, manifest.get("sizes", {}).get(name), total, where)
                except KeyError as exc:
                    raise ModelFormatError(f"{where!r} lacks {name!r}: the file is incomplete") from exc
                total += len(content)
                if _digest(content) != expected:
                    raise ModelFormatError(f"{where!r}: {name!r} does not match its checksum; the "
                                           "file was altered or damaged")
                contents[name] = content
    except FileNotFoundError as exc:
        raise ModelFormatError(f"no model file at {where!r}") from exc
    except (zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError) as exc:
        raise ModelFormatError(f"{where!r} is not a complete datakiln model file ({exc}); it may be "
                               "truncated") from exc
    except OSError as exc:
        raise ModelFormatError(f"cannot read the model file {where!r}: {exc.strerror or exc}") from exc
    try:
        payload = json.loads(contents.pop("model.json").decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # bad JSON or UTF-8, a 5,000-digit number, deep nesting
        raise ModelFormatError(f"{where!r}: model.json is not valid JSON ({exc})") from exc
    check_payload(payload, where)
    arrays = {}
    for name, content in contents.items():
        if not (name.startswith("arrays/") and name.endswith(".npy")):
            raise ModelFormatError(f"{where!r}: unexpected member {name!r} (a model file holds "
                                   "manifest.json, model.json and arrays/*.npy)")
        arrays[name.removeprefix("arrays/").removesuffix(".npy")] = load_array(content, name, where)
    check_schema(arrays, where)
    return ModelData(manifest["model"], payload, arrays, manifest["version"],
                     str(manifest.get("datakiln", "")))


def _manifest(archive: zipfile.ZipFile, where: str) -> dict[str, Any]:
    try:
        manifest = json.loads(read_member(archive, "manifest.json", None, 0, where))
    except KeyError as exc:
        raise ModelFormatError(f"{where!r} is a zip file but not a datakiln model (no manifest)") from exc
    except (ValueError, RecursionError) as exc:
        raise ModelFormatError(f"{where!r}: the manifest is damaged ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != "datakiln.model":
        raise ModelFormatError(f"{where!r} is not a datakiln model file")
    version = manifest.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFormatError(f"{where!r}: manifest field 'version' must be a format number >= 1, got "
                               f"{version!r:.40}")
    if version > FORMAT_VERSION:
        raise ModelFormatError(f"{where!r} was written by a newer datakiln (model format {version}, "
                               f"this one reads up to {FORMAT_VERSION}); upgrade datakiln")
    members, sizes = manifest.get("members"), manifest.get("sizes", {})
    if not isinstance(members, dict) or not all(isinstance(n, str) and isinstance(d, str)
                                                for n, d in members.items()):
        raise ModelFormatError(f"{where!r}: manifest field 'members' must map member names to SHA-256 "
                               f"digests")
    if "model.json" not in members:
        raise ModelFormatError(f"{where!r}: the manifest lists no model.json")
    if not isinstance(sizes, dict) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                              for v in sizes.values()):
        raise ModelFormatError(f"{where!r}: manifest field 'sizes' must map member names to byte counts")
    if not isinstance(manifest.get("model"), str):
        raise ModelFormatError(f"{where!r}: manifest field 'model' must be a model type name")
    return manifest
