"""datakiln: load, clean, balance, synthesize and evaluate large ML datasets.

The public API is listed in ``__all__``; submodules load on first use so that
``import datakiln`` stays fast and never imports torch or ray.

>>> import datakiln
>>> ds = datakiln.read("data/*.parquet")          # doctest: +SKIP
>>> ds.schema.kinds; ds.profile().to_dict()       # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from datakiln.errors import (
    AccessDeniedError,
    AuditVerificationError,
    ConnectionFailedError,
    ConstraintError,
    DatabaseError,
    DatakilnError,
    DecryptionError,
    EmptySourceError,
    EncodingError,
    ImageDecodeError,
    InvalidArgumentError,
    KeyFileError,
    MemoryBudgetError,
    MissingDependencyError,
    ModelFormatError,
    OutputExistsError,
    ParseError,
    PrivacyBudgetError,
    PrivacyError,
    QueryError,
    SchemaError,
    SchemaMismatchError,
    SourceError,
    SourceNotFoundError,
    UnboundedStreamError,
    UnsupportedFormatError,
    WriteError,
)

__version__ = "0.1.0"

_LAZY = {
    "Dataset": "datakiln.dataset.dataset",
    "Profile": "datakiln.dataset.profile",
    "ColumnProfile": "datakiln.dataset.profile",
    "Schema": "datakiln.schema",
    "ColumnSchema": "datakiln.schema",
    "infer_schema": "datakiln.schema",
    "read": "datakiln.dataset.reading",
    "split": "datakiln.splits",
    "evaluate": "datakiln.evaluation.suite",
    "balance": "datakiln.balancing.balancer",
    "Balancer": "datakiln.balancing.balancer",
    "EvaluationReport": "datakiln.evaluation.suite",
    "SplitResult": "datakiln.splits",
    "read_sql": "datakiln.dataset.reading",
    "read_images": "datakiln.dataset.image_reading",
    "read_text": "datakiln.dataset.text_reading",
    "read_stream": "datakiln.dataset.streaming",
    "StreamDataset": "datakiln.dataset.streaming",
    "Pipeline": "datakiln.pipeline.run",
    "from_arrow": None,
    "engine": "datakiln.dataset.dataset",
    "from_ray": "datakiln.distributed.ray",
    "from_pandas": None,
}

__all__ = [
    "AccessDeniedError",
    "AuditVerificationError",
    "Balancer",
    "ColumnProfile",
    "ColumnSchema",
    "ConnectionFailedError",
    "ConstraintError",
    "DatabaseError",
    "DatakilnError",
    "Dataset",
    "DecryptionError",
    "EmptySourceError",
    "EncodingError",
    "EvaluationReport",
    "ImageDecodeError",
    "InvalidArgumentError",
    "KeyFileError",
    "MemoryBudgetError",
    "MissingDependencyError",
    "ModelFormatError",
    "OutputExistsError",
    "ParseError",
    "Pipeline",
    "PrivacyBudgetError",
    "PrivacyError",
    "Profile",
    "QueryError",
    "Schema",
    "SchemaError",
    "SchemaMismatchError",
    "SourceError",
    "SourceNotFoundError",
    "SplitResult",
    "StreamDataset",
    "UnboundedStreamError",
    "UnsupportedFormatError",
    "WriteError",
    "__version__",
    "balance",
    "engine",
    "evaluate",
    "from_arrow",
    "from_pandas",
    "from_ray",
    "infer_schema",
    "read",
    "read_images",
    "read_text",
    "read_sql",
    "read_stream",
    "split",
]

# subpackages reachable as attributes after `import datakiln` (loaded on first use, not in __all__
# so that `from datakiln import *` stays light)
_SUBPACKAGES = ("augment", "balancing", "clean", "dataset", "distributed", "evaluation", "integrations", "io",
                "pipeline", "privacy", "report", "synth", "transform")

if TYPE_CHECKING:
    from datakiln.dataset.dataset import Dataset, engine
    from datakiln.dataset.image_reading import read_images
    from datakiln.dataset.profile import ColumnProfile, Profile
    from datakiln.dataset.reading import read, read_sql
    from datakiln.dataset.streaming import StreamDataset, read_stream
    from datakiln.dataset.text_reading import read_text
    from datakiln.distributed.ray import from_ray
    from datakiln.pipeline.run import Pipeline
    from datakiln.schema import ColumnSchema, Schema, infer_schema
    from datakiln.splits import SplitResult, split


def from_arrow(table: Any, **kwargs: Any) -> Dataset:
    """A :class:`Dataset` over an Arrow table or record batch in memory."""
    from datakiln.dataset.dataset import Dataset

    return Dataset.from_arrow(table, **kwargs)


def from_pandas(frame: Any, **kwargs: Any) -> Dataset:
    """A :class:`Dataset` over a pandas DataFrame (converted to Arrow once)."""
    from datakiln.dataset.dataset import Dataset

    return Dataset.from_pandas(frame, **kwargs)


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:  # `datakiln.synth.GaussianCopula` works after `import datakiln`
        return importlib.import_module(f"datakiln.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'datakiln' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
