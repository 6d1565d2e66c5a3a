"""``datakiln.read_images``: a folder, glob or list of image files (or tar shards) as a
lazy :class:`~datakiln.Dataset` of encoded images (see :mod:`datakiln.io.images`)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from datakiln.dataset.dataset import Dataset
from datakiln.io._files import resolve_files
from datakiln.io._image_probe import DEFAULT_MAX_PIXELS
from datakiln.io.images import ImageFolderSource, check_on_error, image_files
from datakiln.io.shards import SHARD_ENDINGS, ShardSource

__all__ = ["read_images"]

PathLike = str | os.PathLike[str]


def read_images(
    path_or_glob: PathLike | Sequence[PathLike],
    *,
    labels: str | os.PathLike[str] = "folder",
    extensions: Sequence[str] | None = None,
    on_error: str = "raise",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    memory_budget: int | str | None = None,
    num_threads: int | None = None,
) -> Dataset:
    """Open image files as a Dataset of ``image`` (encoded bytes), ``label``, ``path``.

    Nothing is decoded: each file is read and its header checked (format, size, truncation,
    pixel limit) in microseconds; decoding happens in the loader.

    Parameters
    ----------
    path_or_glob : str, path or list of them
        A folder (``root/<class>/<file>`` for class labels), a glob (``"data/**/*.png"``),
        a list of files, or WebDataset tar shards (``shards/`` written by
        ``kiln convert --format tar``, or ``"shards/*.tar"``).
    labels : {"folder", "none"} or path
        ``"folder"`` (default): the class folder's name, stored as a dictionary column
        whose codes follow the sorted class names; ``"none"``: no ``label`` column; a CSV
        path: a file of ``path,label`` rows (paths relative to the folder, or file names).
        Tar shards carry their own labels (``.cls`` members).
    extensions : list of str, optional
        File endings to read (default ``.jpg .jpeg .jpe .jfif .png .gif .bmp .dib .webp
        .tif .tiff``); other files in the folder are ignored.
    on_error : {"raise", "skip"}
        A corrupt, truncated, over-limit or non-image file raises
        :class:`~datakiln.errors.ImageDecodeError` naming it (default), or is skipped and
        counted in ``ds.stats`` with its path.
    max_pixels : int or None
        Refuse images over this many pixels (default 89,478,485, Pillow's limit; a guard
        against decompression bombs). ``None`` turns the check off.
    memory_budget : int or str, optional
        Default budget for streaming work on this dataset.
    num_threads : int, optional
        Reader threads (default: the usable CPU count).

    Returns
    -------
    Dataset

    Examples
    --------
    >>> ds = datakiln.read_images("cifar10/train")      # doctest: +SKIP
    >>> ds.count(), ds.schema["label"].kind             # doctest: +SKIP
    (10000, 'categorical')
    """
    check_on_error(on_error)
    files = resolve_files(path_or_glob)
    if all(p.lower().endswith(SHARD_ENDINGS) for p in files.paths):
        source = ShardSource(files, on_error=on_error, max_pixels=max_pixels)
    else:
        source = ImageFolderSource(image_files(path_or_glob, extensions, files=files), labels=labels,
                                   on_error=on_error, max_pixels=max_pixels)
    return Dataset(source, memory_budget=memory_budget, num_threads=num_threads)
