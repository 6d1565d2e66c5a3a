"""Arrow IPC / Feather files (memory-mapped where local) and in-memory tables."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.ipc as ipc

from datakiln.errors import ParseError, SchemaMismatchError
from datakiln.io._files import FileSet
from datakiln.io.base import ReadTask, SizeEstimate, Source, apply_pushdown

__all__ = ["ArrowFileSource", "TableSource"]


class ArrowFileSource(Source):
    """Arrow IPC files (``.arrow``, ``.feather`` v2, ``.ipc``), one read task per record batch."""

    def __init__(self, files: FileSet) -> None:
        super().__init__()
        self.files = files
        self.name = files.paths[0] if len(files.paths) == 1 else f"{len(files.paths)} Arrow files"
        self._readers = [self._open(path) for path in files.paths]
        first = self._readers[0].schema
        for path, reader in zip(files.paths[1:], self._readers[1:]):
            if not reader.schema.equals(first):
                raise SchemaMismatchError(
                    f"{path!r} has schema {reader.schema} but {files.paths[0]!r} has {first}; "
                    "files read together must share their schema")

    def _open(self, path: str) -> ipc.RecordBatchFileReader:
        try:
            if isinstance(self.files.filesystem, pafs.LocalFileSystem):
                return ipc.open_file(pa.memory_map(path, "r"))
            return ipc.open_file(self.files.filesystem.open_input_file(path))
        except (pa.ArrowInvalid, OSError) as exc:
            raise ParseError(f"{path!r} is not an Arrow IPC file ({exc}); convert it or pass "
                             "the right format=") from exc

    @property
    def schema(self) -> pa.Schema:
        return self._readers[0].schema

    def fingerprint(self) -> str:
        return f"arrow:{self.files.fingerprint()}"

    def count_rows(self) -> int:
        return sum(sum(r.get_batch(i).num_rows for i in range(r.num_record_batches))
                   for r in self._readers)

    def estimate_size(self) -> SizeEstimate:
        return SizeEstimate(self.count_rows(), self.files.total_bytes, exact=True)

    def read_tasks(self, columns: Sequence[str] | None = None,
                   filter: pc.Expression | None = None) -> Iterator[ReadTask]:
        for reader in self._readers:
            for index in range(reader.num_record_batches):
                yield lambda r=reader, i=index: apply_pushdown(
                    pa.Table.from_batches([r.get_batch(i)]), columns, filter)


class TableSource(Source):
    """An Arrow table already in memory, served in slices of ``batch_rows`` rows."""

    def __init__(self, table: pa.Table, *, name: str = "in-memory table",
                 batch_rows: int = 131_072) -> None:
        super().__init__()
        self.table = table
        self.name = name
        self.batch_rows = batch_rows

    @property
    def schema(self) -> pa.Schema:
        return self.table.schema

    def fingerprint(self) -> str:
        return f"table:{id(self.table)}:{self.table.num_rows}:{self.table.nbytes}"

    def count_rows(self) -> int:
        return self.table.num_rows

    def task_bytes(self) -> int:
        rows = max(self.table.num_rows, 1)
        return max(1024, self.table.nbytes * min(self.batch_rows, rows) // rows)

    def estimate_size(self) -> SizeEstimate:
        return SizeEstimate(self.table.num_rows, self.table.nbytes, exact=True)

    def read_tasks(self, columns: Sequence[str] | None = None,
                   filter: pc.Expression | None = None) -> Iterator[ReadTask]:
        for start in range(0, self.table.num_rows, self.batch_rows):
            yield lambda s=start: apply_pushdown(self.table.slice(s, self.batch_rows), columns,
                                                 filter)

    def read_all(self, columns: Sequence[str] | None = None,
                 filter: pc.Expression | None = None) -> pa.Table:
        return apply_pushdown(self.table, columns, filter)
