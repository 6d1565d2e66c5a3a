"""IDX files (MNIST, Fashion-MNIST, EMNIST, KMNIST): images and labels as raw arrays.

An IDX file is a 4-byte magic (two zero bytes, a type code, the number of dimensions), one
big-endian uint32 per dimension, then the values in row-major order. Images (3 dimensions,
unsigned bytes) become the column ``image`` of Arrow's ``fixed_shape_tensor(uint8,
[H, W, 1])``, so every row is an ``H×W×1`` array and the shape travels with the column;
labels (1 dimension) become ``label`` (int64). Files are read (``.gz`` decompressed) once, when
opened, and kept in memory (MNIST's 60,000 images are 47 MB); the headers are checked then.

The header is checked against the file size: a file cut short, with bytes after its data,
or of another type is a :class:`~datakiln.errors.ParseError` naming the file and what it
holds, never a misshapen array.
"""

from __future__ import annotations

import gzip
import math
import os
import re
import threading
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datakiln.errors import ParseError, SchemaError
from datakiln.io._files import FileSet, resolve_files
from datakiln.io.base import ReadTask, SizeEstimate, Source, apply_pushdown

__all__ = ["IDX_NAME", "IdxSource", "looks_like_idx", "read_idx_array"]

#: file names that are IDX files: ``train-images-idx3-ubyte``, ``...-idx1-ubyte.gz``, ``x.idx``
IDX_NAME = re.compile(r"(idx\d+-ubyte|\.idx\d*)(\.gz)?$", re.IGNORECASE)
_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
          0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
ROWS_PER_TASK = 10_000


def looks_like_idx(path: str) -> bool:
    """True when ``path``'s name says IDX (``*-idx3-ubyte``, ``*-idx1-ubyte.gz``, ``*.idx``)."""
    return IDX_NAME.search(os.path.basename(path)) is not None


@dataclass(frozen=True)
class IdxHeader:
    """``dtype`` and ``shape`` of an IDX file, with where its data starts."""

    dtype: np.dtype
    shape: tuple[int, ...]
    offset: int


def _header(data: bytes | memoryview, path: str) -> IdxHeader:
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _TYPES:
        raise ParseError(
            f"{path!r} is not an IDX file (magic bytes {bytes(data[:4]).hex(' ') or 'none'}; "
            "expected 00 00 <type 08-0E> <dimensions>). MNIST-style files are named like "
            "'train-images-idx3-ubyte.gz'")
    dims = data[3]
    offset = 4 + 4 * dims
    if dims == 0 or len(data) < offset:
        raise ParseError(f"{path!r}: the IDX header announces {dims} dimensions but the file "
                         f"has only {len(data)} bytes; it is truncated or not an IDX file")
    shape = tuple(int.from_bytes(bytes(data[4 + 4 * i:8 + 4 * i]), "big") for i in range(dims))
    dtype = _TYPES[data[2]]
    expected = offset + math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    if expected != len(data):
        what = "is truncated" if expected > len(data) else "has extra bytes after its data"
        raise ParseError(
            f"{path!r}: the IDX header says {' × '.join(map(str, shape))} values of {dtype.name} "
            f"({expected:,} bytes with the header) but the file holds {len(data):,} bytes: it "
            f"{what}. Download it again")
    return IdxHeader(dtype, shape, offset)


def _load_bytes(files: FileSet, path: str) -> bytes | memoryview:
    try:
        with files.filesystem.open_input_file(path) as handle:  # no codec guessed from the name
            raw = handle.read()
        return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (OSError, EOFError, zlib.error) as exc:
        raise ParseError(f"{path!r} cannot be read as {'gzip ' if path.endswith('.gz') else ''}"
                         f"IDX data ({exc}); it is truncated or corrupt, download it again") from exc


def read_idx_array(path: str | os.PathLike[str]) -> np.ndarray:
    """One IDX file as a NumPy array of its declared type and shape (header checked)."""
    files = resolve_files(path)
    data = _load_bytes(files, files.paths[0])
    header = _header(data, files.paths[0])
    return np.frombuffer(data, header.dtype, offset=header.offset).reshape(header.shape).astype(
        header.dtype.newbyteorder("="))


class IdxSource(Source):
    """An IDX images file (``idx3``) with an optional labels file (``idx1``).

    Parameters
    ----------
    files : FileSet
        One IDX file: images (3 dimensions, ``uint8``) or, alone, labels (1 dimension).
    labels : str or path, optional
        The matching labels file; its count must equal the images'.
    """

    def __init__(self, files: FileSet, *, labels: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        if len(files.paths) != 1:
            raise SchemaError(
                f"read one IDX images file at a time (got {len(files.paths)} files); pass the "
                "labels file as labels='...-labels-idx1-ubyte.gz'")
        self.files = files
        self.path = files.paths[0]
        self.name = self.path
        self.labels_files = resolve_files(labels) if labels is not None else None
        self._lock = threading.Lock()
        self._arrays: tuple[np.ndarray, np.ndarray | None] | None = None
        self._shape, self._label_count = self._peek()

    def _peek(self) -> tuple[tuple[int, ...], int | None]:
        """Shapes from the headers; the files' sizes are checked when first read."""
        images = self._load()[0]
        count = None
        if self.labels_files is not None:
            labels = self._load()[1]
            assert labels is not None
            count = len(labels)
            if count != images.shape[0]:
                raise SchemaError(
                    f"{self.path!r} holds {images.shape[0]:,} images but the labels file "
                    f"{self.labels_files.paths[0]!r} holds {count:,} labels; pass the labels "
                    "file of the same split (train with train, t10k with t10k)")
        return images.shape, count

    def _load(self) -> tuple[np.ndarray, np.ndarray | None]:
        with self._lock:
            if self._arrays is None:
                data = _load_bytes(self.files, self.path)
                header = _header(data, self.path)
                if len(header.shape) not in (1, 3, 4) or (
                        len(header.shape) > 1 and header.dtype != np.dtype(">u1")):
                    raise ParseError(
                        f"{self.path!r} holds {' × '.join(map(str, header.shape))} values of "
                        f"{header.dtype.name}; datakiln reads IDX images (N × H × W [× C] of "
                        "unsigned bytes) and labels (N values)")
                images = np.frombuffer(data, header.dtype, offset=header.offset).reshape(header.shape)
                labels = None
                if self.labels_files is not None:
                    where = self.labels_files.paths[0]
                    raw = _load_bytes(self.labels_files, where)
                    lab = _header(raw, where)
                    if len(lab.shape) != 1:
                        raise ParseError(f"{where!r} holds {' × '.join(map(str, lab.shape))} "
                                         "values; a labels file holds one value per image")
                    labels = np.frombuffer(raw, lab.dtype, offset=lab.offset).astype(np.int64)
                self._arrays = (images, labels)
            return self._arrays

    @property
    def is_images(self) -> bool:
        return len(self._shape) > 1

    @property
    def schema(self) -> pa.Schema:
        if not self.is_images:
            return pa.schema([pa.field("label", pa.int64())])
        shape = list(self._shape[1:]) + ([1] if len(self._shape) == 3 else [])
        fields = [pa.field("image", pa.fixed_shape_tensor(pa.uint8(), shape))]
        if self.labels_files is not None:
            fields.append(pa.field("label", pa.int64()))
        return pa.schema(fields)

    def fingerprint(self) -> str:
        labels = self.labels_files.fingerprint() if self.labels_files is not None else ""
        return f"idx:{labels}:{self.files.fingerprint()}"

    def count_rows(self) -> int:
        return int(self._shape[0])

    def estimate_size(self) -> SizeEstimate:
        return SizeEstimate(self.count_rows(), self.files.total_bytes, exact=True)

    def task_bytes(self) -> int:
        return max(1024, ROWS_PER_TASK * int(np.prod(self._shape[1:], dtype=np.int64)))

    def read_tasks(self, columns: Sequence[str] | None = None,
                   filter: pc.Expression | None = None) -> Iterator[ReadTask]:
        for start in range(0, self.count_rows(), ROWS_PER_TASK):
            yield lambda s=start: apply_pushdown(self._slice(s, ROWS_PER_TASK), columns, filter)

    def _slice(self, start: int, rows: int) -> pa.Table:
        images, labels = self._load()
        if not self.is_images:
            return pa.table({"label": pa.array(images[start:start + rows].astype(np.int64))},
                            schema=self.schema)
        block = np.ascontiguousarray(images[start:start + rows], dtype=np.uint8)
        if block.ndim == 3:
            block = block[..., None]
        arrays = [pa.FixedShapeTensorArray.from_numpy_ndarray(block)]
        if labels is not None:
            arrays.append(pa.array(labels[start:start + rows], pa.int64()))
        return pa.Table.from_arrays(arrays, schema=self.schema)

