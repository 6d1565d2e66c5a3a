"""Image Datasets as arrays for training: decoded uint8 pixels, label codes and class names.

Image synthesizers and the image evaluation learn from whole arrays (a GAN epoch needs
every image); 10,000 images of 32 × 32 × 3 are 30 MB, so the images are decoded once, on
the calling thread, through :func:`datakiln.io.image_codec.decode_batch`. ``max_images``
bounds the memory: more images than that is a clear error, never a silent subsample.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from datakiln.errors import InvalidArgumentError, SchemaError

__all__ = ["ImageArrays", "images_to_arrays", "labels_table"]

#: images decoded into memory at most (200,000 at 32 × 32 × 3 are 600 MB)
MAX_IMAGES = 200_000


@dataclass
class ImageArrays:
    """Decoded images: ``pixels`` (N×H×W×C uint8), ``codes`` (N int64 label codes, -1 for
    none), ``classes`` (names, code i → ``classes[i]``) and the label's Arrow ``label_type``."""

    pixels: np.ndarray
    codes: np.ndarray
    classes: list[str]
    label_type: pa.DataType | None

    @property
    def mode(self) -> str:
        return "L" if self.pixels.shape[-1] == 1 else "RGB"


def _as_table(data: Any, columns: list[str]) -> pa.Table:
    from datakiln.dataset.dataset import Dataset

    if isinstance(data, Dataset):
        present = [c for c in columns if c in data.arrow_schema.names]
        return data.select(present).to_arrow() if present != data.arrow_schema.names else data.to_arrow()
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pa.Table):
        return data
    raise InvalidArgumentError(
        f"expected an image Dataset (datakiln.read_images(...)) or an Arrow table "
        f"with an 'image' column, got {type(data).__name__}"
    )


def _image_column(table: pa.Table, image: str) -> str:
    if image in table.column_names:
        return image
    raise SchemaError(
        f"no image column {image!r}; the columns are {table.column_names}. Read images with "
        "datakiln.read_images(folder) (ImageFolder) or datakiln.read('...idx3-ubyte.gz')"
    )


def _decode(column: pa.ChunkedArray, mode: str | None, size: tuple[int, int] | None) -> np.ndarray:
    from datakiln.io.image_codec import decode_batch

    if isinstance(column.type, pa.FixedShapeTensorType):
        pixels = (
            np.concatenate([chunk.to_numpy_ndarray() for chunk in column.chunks])
            if column.num_chunks
            else np.zeros((0, 1, 1, 1), np.uint8)
        )
        if pixels.ndim == 3:
            pixels = pixels[..., None]
        if pixels.dtype != np.uint8:
            raise SchemaError(f"image tensors must be uint8, got {pixels.dtype}")
        if mode == "RGB" and pixels.shape[-1] == 1:
            pixels = np.repeat(pixels, 3, axis=-1)
        if size is not None and pixels.shape[1:3] != size:
            from datakiln.io.image_codec import resize

            pixels = np.stack([resize(p, size) for p in pixels])
        return pixels
    items = column.to_pylist()
    if any(item is None for item in items):
        raise SchemaError(
            f"the image column holds {sum(i is None for i in items)} null value(s); drop them "
            "first (ds.filter(...)) or read with on_error='skip'"
        )
    chosen = mode or "RGB"
    decoded = decode_batch(items, mode=chosen, size=size)
    if isinstance(decoded, list):
        raise SchemaError(
            "the images have different sizes; give image_size=(height, width) (kiln: --image-size) "
            "to resize them"
        )
    if (
        mode is None
        and decoded.shape[-1] == 3
        and len(decoded)
        and np.array_equal(decoded[..., 0], decoded[..., 1])
        and np.array_equal(decoded[..., 1], decoded[..., 2])
    ):
        decoded = decoded[..., :1]  # every image grey: learn one channel
    return decoded


def images_to_arrays(
    data: Any,
    *,
    image: str = "image",
    label: str | None = "label",
    mode: str | None = None,
    size: int | tuple[int, int] | None = None,
    classes: list[str] | None = None,
    max_images: int = MAX_IMAGES,
) -> ImageArrays:
    """Decode an image Dataset (or Arrow table) into :class:`ImageArrays`.

    ``mode`` "L" or "RGB" (default: grey when every image is grey); ``size`` resizes
    (default: the images' own, which must agree). ``classes`` fixes the class order (codes of
    names not in it raise), e.g. the training classes when decoding a test folder.
    """
    table = _as_table(data, [image] + ([label] if label else []))
    column = _image_column(table, image)
    if table.num_rows > max_images:
        raise InvalidArgumentError(
            f"{table.num_rows:,} images are more than max_images={max_images:,} "
            "decoded in memory; sample them first (ds.sample(...)) or raise max_images"
        )
    if table.num_rows == 0:
        raise InvalidArgumentError("no images to learn from (0 rows)")
    target = (size, size) if isinstance(size, int) else (tuple(size) if size is not None else None)
    pixels = _decode(table.column(column), mode, target)  # type: ignore[arg-type]
    codes, names, label_type = np.full(len(pixels), -1, np.int64), [], None
    if label and label in table.column_names:
        codes, names, label_type = _codes(table.column(label), label, classes)
    elif classes is not None:
        names = list(classes)
    return ImageArrays(pixels, codes, names, label_type)


def _codes(
    column: pa.ChunkedArray, name: str, classes: list[str] | None
) -> tuple[np.ndarray, list[str], pa.DataType]:
    if column.null_count:
        raise SchemaError(
            f"the label column {name!r} has {column.null_count} missing value(s); every "
            "image needs a class to learn a class-conditional model"
        )
    kind = column.type
    if pa.types.is_dictionary(kind):
        values = [str(v) for v in column.cast(kind.value_type).to_pylist()]
    elif pa.types.is_integer(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind):
        values = [str(v) for v in column.to_pylist()]
    else:
        raise SchemaError(
            f"the label column {name!r} is {kind}; use class names (strings, categorical) or integer codes"
        )
    found = sorted(set(values), key=lambda v: (len(v), v) if pa.types.is_integer(kind) else (0, v))
    names = list(classes) if classes is not None else found
    index = {c: i for i, c in enumerate(names)}
    unknown = [v for v in found if v not in index]
    if unknown:
        raise SchemaError(f"label values {unknown[:5]} are not among the classes {names[:20]}")
    codes = np.fromiter((index[v] for v in values), np.int64, len(values))
    return codes, names, kind


def labels_table(
    pixels: np.ndarray,
    codes: np.ndarray,
    classes: list[str],
    label_type: pa.DataType | None,
    *,
    image: str = "image",
    label: str = "label",
) -> pa.Table:
    """An image table (PNG bytes in ``image``, the class in ``label`` with the training type)."""
    from datakiln.io.image_codec import encode_png
    from datakiln.io.images import image_field

    encoded = pa.array([encode_png(p, compress_level=1) for p in pixels], pa.binary())
    fields, arrays = [image_field(image)], [encoded]
    if label_type is not None:
        names = pa.array([classes[c] for c in codes], pa.string())
        if pa.types.is_dictionary(label_type):
            values = pa.DictionaryArray.from_arrays(
                pa.array(codes, pa.int32()), pa.array(classes, pa.string())
            )
            values = values.cast(label_type)
        elif pa.types.is_integer(label_type):
            values = names.cast(pa.int64()).cast(label_type)
        else:
            values = names.cast(label_type)
        fields.append(pa.field(label, label_type))
        arrays.append(values)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))
