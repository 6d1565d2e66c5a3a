"""Write image tables as an ImageFolder tree: ``OUT/<class>/<NNNNNNNN>.<ext>``.

The encoded bytes are written as they are (PNG from the image synthesizers, JPEG stays
JPEG); the label column gives the folder (names made safe: no separators, no leading dot).
The tree is written under a temporary name with datakiln's manifest and swapped in
atomically (:mod:`datakiln.io._output`): a crash leaves the old output or none, and a
folder holding files datakiln did not write is never replaced.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa

from datakiln.errors import SchemaError, WriteError
from datakiln.io._image_probe import sniff_format

__all__ = ["write_image_folder", "write_images"]

_UNSAFE = re.compile(r"[\x00-\x1f/\\:*?\"<>|]")
_ENDING = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "BMP": "bmp", "WEBP": "webp", "TIFF": "tif"}


def _safe(name: Any) -> str:
    text = _UNSAFE.sub("_", str(name).strip()).lstrip(".").strip()
    return text[:120] or "unnamed"


def write_image_folder(
    tables: Iterable[pa.Table],
    path: str | os.PathLike[str],
    *,
    image: str = "image",
    label: str | None = "label",
    overwrite: bool = False,
    inputs: Iterable[str | os.PathLike[str]] = (),
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Write the encoded images of ``tables`` under ``path`` (one folder per ``label`` value;
    flat without a label). Returns ``{"path", "rows", "classes"}``; read it back with
    ``datakiln.read_images(path)``."""
    from datakiln.io._output import commit, write_manifest
    from datakiln.io.write import _prepare  # checks the target, tidies killed writes, opens the temp output

    target = Path(path).expanduser().absolute()
    temp = _prepare(target, directory=True, overwrite=overwrite, inputs=inputs)
    written: list[Path] = []
    classes: set[str] = set()
    try:
        for table in tables:
            if image not in table.column_names:
                raise SchemaError(f"no image column {image!r} to write; the columns are {table.column_names}")
            images = table.column(image).to_pylist()
            names = table.column(label).to_pylist() if label and label in table.column_names else None
            for i, data in enumerate(images):
                fmt = sniff_format(data or b"")
                if fmt is None:
                    raise SchemaError(f"row {len(written)} of column {image!r} is not an encoded image")
                folder = temp.path
                if names is not None:
                    classes.add(_safe(names[i]))
                    folder = temp.path / _safe(names[i])
                    folder.mkdir(exist_ok=True)
                file = folder / f"{len(written):08d}.{_ENDING.get(fmt, 'bin')}"
                file.write_bytes(data)
                written.append(file)
            if on_progress is not None:
                on_progress(len(images))
        write_manifest(temp.path, written, format="images", rows=len(written))
        commit(temp, directory=True, overwrite=overwrite)
    except BaseException as exc:
        temp.discard()
        if isinstance(exc, OSError) and not isinstance(exc, WriteError):
            raise WriteError(f"cannot write {str(target)!r}: {exc}") from exc
        raise
    return {"path": str(target), "rows": len(written), "classes": sorted(classes)}


def write_images(
    tables: Iterable[pa.Table],
    path: str | os.PathLike[str],
    *,
    format: str = "imagefolder",
    rows_per_file: int | None = None,
    on_progress: Callable[[int], None] | None = None,
    overwrite: bool = False,
    inputs: Iterable[str | os.PathLike[str]] = (),
) -> Any:
    """``Dataset.write(path, format="imagefolder"|"tar")``: an ImageFolder tree or tar shards;
    returns a :class:`~datakiln.io.write.WriteResult`."""
    from datakiln.io.write import WriteResult

    if format == "tar":
        from datakiln.io.shards import write_tar_shards

        done = write_tar_shards(
            tables,
            path,
            rows_per_file=rows_per_file or 10_000,
            overwrite=overwrite,
            inputs=inputs,
            on_progress=on_progress,
        )
        return WriteResult(str(done["path"]), rows=int(done["rows"]), bytes=int(done.get("bytes", 0)))
    done = write_image_folder(tables, path, overwrite=overwrite, inputs=inputs, on_progress=on_progress)
    root = Path(done["path"])
    files = [
        str(p.relative_to(root))
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "_datakiln.json"
    ]
    return WriteResult(
        done["path"], files=files, rows=done["rows"], bytes=sum((root / f).stat().st_size for f in files)
    )
