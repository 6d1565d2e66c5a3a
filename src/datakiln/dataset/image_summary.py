"""What a folder (or shards) of images holds, in one streaming pass without decoding:
images per class, sizes, modes and formats seen, corrupt files, exact duplicates.

Sizes and modes come from each file's header (:func:`datakiln.io._image_probe.probe`);
duplicates from a 128-bit BLAKE2b hash of each file's bytes, so two files are duplicates
when their bytes are identical (re-encoded copies of one picture are not found). The hash
table holds 16 bytes per image plus the first path of each content (about 100 bytes per
image in all: 1 GB for 10 million images).
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from datakiln.dataset.dataset import Dataset
from datakiln.errors import ImageDecodeError, SchemaError
from datakiln.io._image_probe import DEFAULT_MAX_PIXELS, probe

__all__ = ["ImageSummary", "summarize_images"]


@dataclass
class ImageSummary:
    """Counts over a set of images; plain data (see :meth:`to_dict`).

    Attributes
    ----------
    images : int
        Readable images.
    classes : dict
        ``{class: images}`` in class order (empty without labels).
    sizes, modes, formats : Counter
        ``"W×H"``, ``"RGB"`` / ``"L"`` / ... (``"L;16"`` for 16 bits), ``"JPEG"`` / ... → images.
    corrupt : list of dict
        ``{"file", "error"}`` per unreadable file (at most ``keep`` listed);
        ``corrupt_count`` is exact.
    duplicates : list of list of str
        Groups of paths whose bytes are identical (at most ``keep`` groups listed);
        ``duplicate_files`` counts the files beyond the first of each group.
    """

    images: int = 0
    classes: dict[str, int] = field(default_factory=dict)
    sizes: Counter[str] = field(default_factory=Counter)
    modes: Counter[str] = field(default_factory=Counter)
    formats: Counter[str] = field(default_factory=Counter)
    corrupt_count: int = 0
    corrupt: list[dict[str, str]] = field(default_factory=list)
    duplicate_files: int = 0
    duplicate_groups: int = 0
    duplicates: list[list[str]] = field(default_factory=list)
    bytes: int = 0
    seconds: float = 0.0

    def to_dict(self, top: int = 10) -> dict[str, Any]:
        """JSON-ready form; ``sizes``, ``modes`` and ``formats`` keep their ``top`` counts."""
        return {"images": self.images, "classes": dict(self.classes),
                "sizes": dict(self.sizes.most_common(top)), "distinct_sizes": len(self.sizes),
                "modes": dict(self.modes.most_common(top)),
                "formats": dict(self.formats.most_common(top)), "bytes": self.bytes,
                "corrupt_count": self.corrupt_count, "corrupt": list(self.corrupt),
                "duplicate_files": self.duplicate_files, "duplicate_groups": self.duplicate_groups,
                "duplicates": [list(g) for g in self.duplicates], "seconds": self.seconds}


def _scan(table: pa.Table, image: str, path: str | None,
          max_pixels: int | None) -> list[tuple[str, str, bytes, str | None, Any]]:
    """Per row ``(where, size/mode/format or error, digest, label)`` (on a worker thread)."""
    images = table.column(image).to_pylist()
    paths = (table.column(path).to_pylist() if path else
             [f"row {i}" for i in range(len(images))])
    labels = (table.column("label").cast(pa.string()).to_pylist()
              if "label" in table.column_names else [None] * len(images))
    out = []
    for where, data, label in zip(paths, images, labels):
        digest = hashlib.blake2b(data or b"", digest_size=16).digest()
        try:
            info = probe(data or b"", where=where, max_pixels=max_pixels)
            found: Any = (f"{info.width}×{info.height}",
                          info.mode + (f";{info.bits}" if info.bits not in (1, 8) else ""),
                          info.format, len(data))
        except ImageDecodeError as exc:
            found = str(exc)
        out.append((where, found, digest, label))
    return out


def summarize_images(dataset: Dataset, *, keep: int = 20,
                     max_pixels: int | None = DEFAULT_MAX_PIXELS,
                     on_progress: Callable[[int], None] | None = None) -> ImageSummary:
    """Count images per class, sizes, modes, formats, corrupt files and exact duplicates.

    Parameters
    ----------
    dataset : Dataset
        Rows with an encoded ``image`` column (``datakiln.read_images``), read with
        ``on_error="skip"`` to list the files the reader skipped as corrupt too.
    keep : int
        Corrupt files and duplicate groups listed (counts are always exact; default 20).
    max_pixels : int or None
        Pixel limit: larger images count as corrupt (default 89,478,485).
    on_progress : callable, optional
        Called with the rows of each table as it is counted.
    """
    if "image" not in dataset.columns or dataset.schema["image"].kind != "image":
        raise SchemaError(f"summarize_images needs an encoded 'image' column; the columns of "
                          f"{dataset.source.name!r} are {dataset.columns}")
    if not pa.types.is_binary(dataset.arrow_schema.field("image").type):
        raise SchemaError("summarize_images counts encoded image files; this 'image' column "
                          f"holds {dataset.arrow_schema.field('image').type} (decoded pixels): "
                          "use ds.profile()")
    started = time.perf_counter()
    path = "path" if "path" in dataset.columns else None
    summary = ImageSummary()
    label_field = dataset.arrow_schema.field("label") if "label" in dataset.columns else None
    if label_field is not None and pa.types.is_dictionary(label_field.type):
        head = dataset.head(1).column("label")
        if head.num_chunks:
            summary.classes = {str(v): 0 for v in head.chunk(0).dictionary.to_pylist()}
    first: dict[bytes, str] = {}
    groups: dict[bytes, list[str]] = {}
    duplicated: set[bytes] = set()
    for rows in dataset._tables(lambda t: _scan(t, "image", path, max_pixels)):
        for where, found, digest, label in rows:
            if isinstance(found, str):
                summary.corrupt_count += 1
                if len(summary.corrupt) < keep:
                    summary.corrupt.append({"file": where, "error": found})
                continue
            summary.images += 1
            size, mode, fmt, nbytes = found
            summary.sizes[size] += 1
            summary.modes[mode] += 1
            summary.formats[fmt] += 1
            summary.bytes += nbytes
            if label is not None:
                summary.classes[label] = summary.classes.get(label, 0) + 1
            if digest in first:
                summary.duplicate_files += 1
                if digest not in duplicated:
                    duplicated.add(digest)
                    summary.duplicate_groups += 1
                    if len(groups) < keep:
                        groups[digest] = [first[digest]]
                if digest in groups:
                    groups[digest].append(where)
            else:
                first[digest] = where
        if on_progress is not None:
            on_progress(len(rows))
    skipped = dataset.stats
    summary.corrupt_count += int(skipped.get("bad_rows", 0))
    for example in skipped.get("examples", []):
        if len(summary.corrupt) < keep:
            summary.corrupt.append({"file": str(example["file"]), "error": str(example["text"])})
    summary.duplicates = list(groups.values())
    summary.seconds = time.perf_counter() - started
    return summary
