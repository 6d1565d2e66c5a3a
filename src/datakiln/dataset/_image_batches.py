"""The loader's image path: encoded bytes → decoded, augmented ``N×H×W×C`` batches.

A batch is one task on a loader thread: its rows' encoded values are sliced out of the
column's Arrow buffers without copies (:class:`EncodedImages`), decoded with
:func:`datakiln.io.image_codec.decode_batch` (JPEGs straight into one preallocated batch
array; simplejpeg and Pillow release the GIL, so the loader's threads decode in parallel)
and, with a ``transform``, augmented as one :class:`~datakiln.augment.base.ImageBatch`
whose random draws are keyed by ``(loader seed, epoch, row id)``: the row ids are the
rows' numbers in the dataset, so a row looks the same whatever the batch size, thread
count, DataLoader worker or rank that loads it. Mixing ops (MixUp, CutMix) get each row's
partner from :func:`~datakiln.augment._random.partner_rows`, decoded alongside.

A batch is the unit of parallelism: the loader keeps ``prefetch + threads`` batches in
flight, one per thread, which keeps every core busy without splitting a batch (measured
on 2 cores: the first 256 px batch of 128 takes 145-185 ms, CIFAR's first batch 5-12 ms,
so splitting would only add hand-offs). The default is one thread per core: decoding
waits on no I/O, and a third thread lost 10-25 % to GIL hand-offs in the measurements.

The augmentation types live one layer up (``datakiln.augment``), so this module never
imports them: ``datakiln.augment`` registers them here when it is imported (a transform
can only exist once it has been).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datakiln.dataset._gather import Gather
from datakiln.errors import InvalidArgumentError, MemoryBudgetError
from datakiln.io.image_codec import MODES, _size, decode, decode_batch, from_pixels, is_jpeg, jpeg_header

__all__ = ["EncodedImages", "ImagePipeline", "channels_first", "find_image_columns",
           "register_augment"]

#: set by ``datakiln.augment`` on import: the batch type, the random-draw type, partner_rows
_AUGMENT: dict[str, Any] = {}


def register_augment(batch_type: type, random_type: type,
                     partner_rows: Callable[..., np.ndarray]) -> None:
    """Called by :mod:`datakiln.augment` so the loader can build its batches."""
    _AUGMENT.update(batch=batch_type, random=random_type, partners=partner_rows)


def _is_binary(kind: pa.DataType) -> bool:
    return pa.types.is_binary(kind) or pa.types.is_large_binary(kind)


def _image_type(kind: pa.DataType) -> bool:
    """Arrow types that can hold images: bytes, ``{bytes, path}`` structs, uint8 tensors."""
    if _is_binary(kind):
        return True
    if isinstance(kind, pa.FixedShapeTensorType):
        return kind.value_type == pa.uint8() and len(kind.shape) in (2, 3)
    if pa.types.is_struct(kind):
        names = {kind.field(i).name for i in range(kind.num_fields)}
        return "bytes" in names and _is_binary(kind.field("bytes").type)
    return False


def find_image_columns(table: pa.Table, kinds: dict[str, str]) -> list[str]:
    """Columns of kind ``image``, or of an image-holding Arrow type whose first value is an
    image (a tensor, or bytes Pillow or simplejpeg recognise by their magic number)."""
    found = []
    for field in table.schema:
        if kinds.get(field.name) == "image":
            found.append(field.name)
        elif _image_type(field.type) and _first_is_image(table.column(field.name)):
            found.append(field.name)
    return found


_MAGIC = (b"\x89PNG", b"GIF8", b"BM", b"II*\x00", b"MM\x00*")


def _first_is_image(column: pa.ChunkedArray) -> bool:
    if isinstance(column.type, pa.FixedShapeTensorType):
        return True
    value = None
    for chunk in column.chunks:  # the first non-null value, without copying the column
        valid = np.flatnonzero(chunk.is_valid().to_numpy(zero_copy_only=False)) if chunk.null_count else (
            np.arange(min(len(chunk), 1)))
        if valid.size:
            value = chunk[int(valid[0])].as_py()
            break
    if value is None:
        return False
    data = value.get("bytes") if isinstance(value, dict) else value
    if data is None:
        return isinstance(value, dict) and bool(value.get("path"))
    head = bytes(data[:12])
    return is_jpeg(head) or head.startswith(_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


class EncodedImages:
    """Zero-copy access to an image column's values by row number.

    Bytes come out as NumPy ``uint8`` views of the Arrow buffers (memory-mapped files
    stay on disk until read), structs as ``{"bytes", "path"}``, tensors as ``H×W(×C)``
    views.
    """

    def __init__(self, column: pa.ChunkedArray) -> None:
        self.type = column.type
        self.tensor = isinstance(column.type, pa.FixedShapeTensorType)
        self.struct = pa.types.is_struct(column.type)
        self.starts = np.cumsum([0, *[len(c) for c in column.chunks]])[:-1].astype(np.int64)
        self.chunks = [self._prepare(chunk) for chunk in column.chunks]

    def _prepare(self, chunk: pa.Array) -> Any:
        if self.tensor:
            return chunk.to_numpy_ndarray()
        paths = None
        if self.struct:
            children = dict(zip([f.name for f in self.type], chunk.flatten()))
            paths, chunk = children.get("path"), children["bytes"]
        buffers = chunk.buffers()
        wide = pa.types.is_large_binary(chunk.type)
        offsets = np.frombuffer(buffers[1], dtype=np.int64 if wide else np.int32)
        offsets = offsets[chunk.offset:chunk.offset + len(chunk) + 1]
        data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else np.zeros(0, np.uint8)
        nulls = chunk.is_null().to_numpy(zero_copy_only=False) if chunk.null_count else None
        return offsets, data, nulls, paths

    def pixels(self, rows: np.ndarray) -> np.ndarray:
        """Tensor columns: the rows' pixels as one ``N×H×W(×C)`` array (fancy indexing per chunk)."""
        chunk_of = np.searchsorted(self.starts, rows, side="right") - 1
        if len(self.chunks) == 1:
            return self.chunks[0][rows]
        out = np.empty((len(rows),) + self.chunks[0].shape[1:], dtype=np.uint8)
        for chunk in np.unique(chunk_of).tolist():
            places = np.flatnonzero(chunk_of == chunk)
            out[places] = self.chunks[chunk][rows[places] - self.starts[chunk]]
        return out

    def values(self, rows: np.ndarray) -> list[Any]:
        """The encoded value of each row (``None`` for a null)."""
        chunk_of = np.searchsorted(self.starts, rows, side="right") - 1
        local = rows - self.starts[chunk_of]
        if self.tensor:
            return list(self.pixels(rows))
        out: list[Any] = [None] * len(rows)
        for chunk in np.unique(chunk_of).tolist():
            places = np.flatnonzero(chunk_of == chunk)
            here = local[places]
            offsets, data, nulls, paths = self.chunks[chunk]
            starts, ends = offsets[here].tolist(), offsets[here + 1].tolist()
            for place, i, a, b in zip(places.tolist(), here.tolist(), starts, ends):
                if nulls is not None and nulls[i]:
                    path = None if paths is None else paths[i].as_py()
                    out[place] = {"bytes": None, "path": path} if path else None
                else:
                    out[place] = data[a:b]
        return out


class _Names(Sequence[str]):
    """Names of a batch's images for error messages, built only when one is needed."""

    def __init__(self, rows: np.ndarray, column: str, describe: Callable[[int], str | None]) -> None:
        self.rows, self.column, self.describe = rows, column, describe

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> str:  # type: ignore[override]
        row = int(self.rows[i])
        where = self.describe(row)
        if where:
            return f"{where} (row {row}, column {self.column!r})"
        return f"row {row} of column {self.column!r}"


class ImagePipeline:
    """Decodes (and augments) the image column of the rows the loader picked."""

    def __init__(self, table: pa.Table, column: str, *, label: str | None, num_classes: int | None,
                 transform: Any, size: Any, mode: str) -> None:
        if mode not in MODES:
            raise InvalidArgumentError(f"image_mode must be one of {sorted(MODES)}, got {mode!r}")
        if transform is not None and (not _AUGMENT or not callable(getattr(transform, "forward", None))):
            raise InvalidArgumentError(f"transform must be a datakiln.augment op (Compose([...]) of "
                                       f"RandomCrop, HorizontalFlip ...), got {transform!r}")
        self.column, self.label, self.num_classes = column, label, num_classes
        self.transform, self.size, self.mode = transform, _size(size), mode
        self.encoded = EncodedImages(table.column(column))
        self.rows = table.num_rows
        self.order = table.column_names
        self._paths = table.column("path") if "path" in table.column_names and column != "path" else None
        #: row numbers → int64 label codes, for mixing partners (set by the loader)
        self.label_codes: Callable[[np.ndarray], np.ndarray] | None = None

    def _describe(self, row: int) -> str | None:
        if self._paths is None:
            return None
        value = self._paths[row].as_py()
        return str(value) if value is not None else None

    def decode(self, rows: np.ndarray) -> np.ndarray | list[np.ndarray]:
        """The rows' images decoded (and resized to ``image_size``), before any transform."""
        if self.encoded.tensor and self.size is None:  # raw pixels (IDX): one vectorised gather
            return np.ascontiguousarray(from_pixels(self.encoded.pixels(rows), self.mode, batch=True))
        names = _Names(rows, self.column, self._describe)
        return decode_batch(self.encoded.values(rows), mode=self.mode, size=self.size, where=names)

    def assemble(self, rows: np.ndarray, arrays: dict[str, np.ndarray], *, seed: int,
                 epoch: int) -> tuple[dict[str, np.ndarray], dict[str, Any] | None]:
        """``arrays`` (the other columns) with the image column added; the recorded params."""
        images = self.decode(rows)
        record = None
        if self.transform is not None:
            batch = self._batch(images, rows, arrays)
            if self.transform.mixes:
                partners = _AUGMENT["partners"](rows, self.rows, seed=seed, epoch=epoch)
                batch.partners = self._batch(self.decode(partners), partners, self._labels_of(partners))
            random = _AUGMENT["random"](rows, seed=seed, epoch=epoch)
            batch, params = self.transform.forward(batch, random)
            images = batch.images
            if self.label is not None and batch.labels is not None:
                arrays[self.label] = batch.labels
            record = {"epoch": epoch, "row_ids": rows.copy(), "params": params}
        if not isinstance(images, np.ndarray):
            sizes = sorted({tuple(image.shape[:2]) for image in images})[:4]
            fix = ("end the transform with a crop or Resize to one size" if self.transform is not None
                   else "pass image_size=(height, width) to resize them, or a transform that crops")
            raise InvalidArgumentError(f"column {self.column!r}: the batch holds images of different "
                                       f"sizes (height, width) such as {sizes}; {fix}")
        arrays[self.column] = images
        return {name: arrays[name] for name in self.order if name in arrays}, record

    def _labels_of(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        if self.label is None or self.label_codes is None:
            return {}
        return {self.label: self.label_codes(rows)}

    def _batch(self, images: Any, rows: np.ndarray, arrays: dict[str, np.ndarray]) -> Any:
        labels = arrays.get(self.label) if self.label is not None else None
        return _AUGMENT["batch"](images=images, row_ids=rows,
                                 labels=None if labels is None else np.asarray(labels, dtype=np.int64),
                                 num_classes=self.num_classes)

    def batch_bytes(self, batch_size: int) -> int:
        """Memory of one assembled batch, estimated from the first rows' sizes (float32
        after a transform, as Normalize gives; partners double it when the transform mixes)."""
        sample = np.arange(min(8, self.rows), dtype=np.int64)
        pixels = []
        for value in self.encoded.values(sample):
            if self.size is not None:
                pixels.append(self.size[0] * self.size[1])
            elif isinstance(value, np.ndarray) and value.ndim >= 2:
                pixels.append(value.shape[0] * value.shape[1])
            elif value is not None and not isinstance(value, dict) and is_jpeg(value):
                height, width, _ = jpeg_header(value, None)
                pixels.append(height * width)
            elif value is not None:
                image = decode(value, mode="L", where=f"row {len(pixels)} of column {self.column!r}")
                pixels.append(image.shape[0] * image.shape[1])
        per_image = (max(pixels) if pixels else 1) * MODES[self.mode]
        factor = 1 if self.transform is None else 5 * (2 if self.transform.mixes else 1)
        return batch_size * per_image * factor

    def check_budget(self, batch_size: int, budget: int | None) -> int:
        """Bytes of one batch; a MemoryBudgetError when one batch exceeds half the budget."""
        need = self.batch_bytes(batch_size)
        if budget is not None and need > budget // 2:
            raise MemoryBudgetError(
                f"one batch of {batch_size} decoded images needs about {need / 2**20:.0f} MiB, more than "
                f"half the memory budget ({budget / 2**20:.0f} MiB); lower batch_size, set a smaller "
                "image_size, or raise memory_budget")
        return need


def image_pipeline(table: pa.Table, kinds: dict[str, str], categories: dict[str, list[Any]], *,
                   batch_size: int, budget: int | None, format: str, transform: Any, size: Any,
                   mode: str) -> ImagePipeline | None:
    """The loader's image path when ``table`` holds an image column, else None (and then
    ``transform`` / ``size`` are refused)."""
    found = find_image_columns(table, kinds)
    if not found:
        if transform is not None or size is not None:
            raise InvalidArgumentError(
                f"transform= and image_size= need an image column (encoded bytes, {{bytes, path}} "
                f"structs or uint8 tensors); the columns are {table.column_names}")
        return None
    if len(found) > 1:
        raise InvalidArgumentError(f"the loader decodes one image column, found {found}; "
                                   f"choose one with columns=[...]")
    if format not in ("numpy", "torch"):
        raise InvalidArgumentError(f"image batches come as format='numpy' or 'torch', got {format!r}")
    label = "label" if "label" in table.column_names else None
    classes = None if label is None else num_classes_of(table, label, categories)
    pipeline = ImagePipeline(table, found[0], label=label, num_classes=classes,
                             transform=transform, size=size, mode=mode)
    if label is not None:
        labels = Gather(table.select([label]), categories)
        pipeline.label_codes = lambda rows: labels.arrays(rows)[label].astype(np.int64)
    pipeline.check_budget(batch_size, budget)
    return pipeline


def num_classes_of(table: pa.Table, label: str, categories: dict[str, list[Any]]) -> int | None:
    """Classes of the label column: its categories, or ``max + 1`` of integer labels."""
    if label in categories:
        return len(categories[label])
    column = table.column(label)
    if pa.types.is_integer(column.type) and len(column):
        top = pc.max(column).as_py()
        return None if top is None else int(top) + 1
    return None


def channels_first(arrays: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """``arrays`` with each image column as contiguous ``N×C×H×W`` (torch's layout)."""
    out = dict(arrays)
    for name in names:
        values = out.get(name)
        if isinstance(values, np.ndarray) and values.ndim == 4:
            out[name] = np.ascontiguousarray(values.transpose(0, 3, 1, 2))
    return out
