"""``datakiln.read_text``: plain-text files (a folder, glob or list) as a lazy
:class:`~datakiln.Dataset` of ``text``, ``label``, ``path`` (see :mod:`datakiln.io.text`)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from datakiln.dataset.dataset import Dataset
from datakiln.io._files import resolve_files
from datakiln.io.text import TextSource

__all__ = ["read_text"]

PathLike = str | os.PathLike[str]


def read_text(
    path_or_glob: PathLike | Sequence[PathLike],
    *,
    labels: str | None = "folder",
    mode: str = "file",
    encoding: str | None = None,
    on_binary: str = "skip",
    memory_budget: int | str | None = None,
) -> Dataset:
    """Open text files as a Dataset with columns ``text``, ``label``, ``path`` (+ ``line``).

    Parameters
    ----------
    path_or_glob : str, path or list of them
        A folder (every file below it, hidden ones excluded), a glob
        (``"docs/**/*.txt"``, ``**`` recursive) or a list of files.
    labels : {"folder", None}
        ``"folder"`` (default): ``label`` is the name of each file's folder
        (``root/<class>/<file>.txt``), a categorical column; ``None``: no label column.
    mode : {"file", "line"}
        One row per file (default), or one row per line with its 1-based ``line`` number.
    encoding : str, optional
        The files' encoding. ``None`` (default) detects it per file: byte-order mark
        (UTF-8/16/32), else strict UTF-8, else cp1252, else latin-1.
    on_binary : {"skip", "error"}
        A file with NUL bytes (and no UTF-16/32 mark) is binary: skipped with a warning and
        counted in ``ds.stats`` (default), or refused with a :class:`ParseError`.
    memory_budget : int or str, optional
        Default budget for streaming work on this dataset.

    Examples
    --------
    >>> ds = datakiln.read_text("reviews/**/*.txt")                 # doctest: +SKIP
    >>> ds.schema["text"].kind, ds.schema["label"].kind              # doctest: +SKIP
    ('text', 'categorical')
    """
    source = TextSource(resolve_files(path_or_glob), labels=labels, mode=mode,
                        encoding=encoding, on_binary=on_binary)
    kinds = {"text": "text", "path": "identifier"}
    if labels:
        kinds["label"] = "categorical"
    return Dataset(source, kinds=kinds, memory_budget=memory_budget)
