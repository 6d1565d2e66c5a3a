"""The datakiln error tree.

Every error datakiln raises on purpose derives from :class:`DatakilnError`; each leaf also
inherits the builtin exception users already catch, so ``except FileNotFoundError`` keeps
working::

    DatakilnError (Exception)
    ├── SourceError                      a source cannot be opened or read
    │   ├── SourceNotFoundError          (FileNotFoundError) missing path, empty glob
    │   ├── UnsupportedFormatError       (ValueError) unknown extension or format name
    │   ├── EmptySourceError             (ValueError) a file with no rows and no header
    │   ├── ParseError                   (ValueError) malformed CSV/JSON row, line shown
    │   ├── ImageDecodeError             (ValueError) a corrupt, truncated, oversized or
    │   │                                unsupported image file, named
    │   ├── EncodingError                (ValueError) bytes that are not valid in the encoding
    │   └── DatabaseError
    │       ├── ConnectionFailedError    (ConnectionError) unreachable server, bad credentials
    │       └── QueryError               (RuntimeError) the database rejected the SQL
    ├── SchemaError                      (ValueError) bad schema override, unknown column
    │   └── SchemaMismatchError          files of one dataset disagree on their columns
    ├── InvalidArgumentError             (ValueError) an option out of range or of a bad type
    ├── MemoryBudgetError                (MemoryError) work cannot fit its memory budget
    ├── WriteError                       (OSError) an output cannot be written
    │   └── OutputExistsError            (FileExistsError) the output holds files datakiln
    │                                    did not write, or is (or contains) an input
    ├── ConstraintError                  (ValueError) data breaks a declared constraint
    ├── ModelFormatError                 (ValueError) a model file is truncated, tampered,
    │                                    newer than this datakiln, or not a model file
    ├── MissingDependencyError           (ImportError) an optional extra is not installed
    ├── UnboundedStreamError             (TypeError) a stream was asked for what needs its end
    │                                    (count, to_arrow, split, a shuffled epoch)
    └── PrivacyError                     the privacy and security layer refused something
        ├── KeyFileError                 (PermissionError) a key missing, unreadable, too
        │                                short or readable by other users
        ├── DecryptionError              (ValueError) wrong key, tampered or truncated file
        ├── AccessDeniedError            (PermissionError) a role asked for what its policy
        │                                forbids
        ├── AuditVerificationError       (ValueError) an audit log was edited, reordered,
        │                                truncated or re-chained without the key
        └── PrivacyBudgetError           (ValueError) fitting would spend more epsilon/delta
                                         than the budget allows

Messages say what was wrong, the value received (file, row, column) and how to fix it.
"""

from __future__ import annotations

from datakiln._secrets import redact_text

__all__ = [
    "AccessDeniedError",
    "AuditVerificationError",
    "ConnectionFailedError",
    "ConstraintError",
    "DatabaseError",
    "DatakilnError",
    "DecryptionError",
    "EmptySourceError",
    "EncodingError",
    "ImageDecodeError",
    "InvalidArgumentError",
    "KeyFileError",
    "MemoryBudgetError",
    "MissingDependencyError",
    "ModelFormatError",
    "OutputExistsError",
    "ParseError",
    "PrivacyBudgetError",
    "PrivacyError",
    "QueryError",
    "SchemaError",
    "SchemaMismatchError",
    "SourceError",
    "SourceNotFoundError",
    "UnboundedStreamError",
    "UnsupportedFormatError",
    "WriteError",
]


class DatakilnError(Exception):
    """Root of every error datakiln raises on purpose.

    Its text never shows a password or token: URLs in the message are masked
    (:func:`datakiln._secrets.redact_text`), whoever built the message.
    """

    def __str__(self) -> str:
        return redact_text(super().__str__())


class SourceError(DatakilnError):
    """A source (file, URL, database) cannot be opened or read."""


class SourceNotFoundError(SourceError, FileNotFoundError):
    """A path, glob or URL matched nothing."""


class UnsupportedFormatError(SourceError, ValueError):
    """The file extension or ``format=`` name is not one datakiln reads or writes."""


class EmptySourceError(SourceError, ValueError):
    """The source holds no rows and no header to learn columns from."""


class ParseError(SourceError, ValueError):
    """A row could not be parsed; the message names the file, the line and its text."""


class ImageDecodeError(SourceError, ValueError):
    """An image file is corrupt, truncated, over the pixel limit or of an unsupported
    kind; the message names the file and what to do (``on_error="skip"`` skips it)."""


class EncodingError(SourceError, ValueError):
    """Bytes that are invalid in the declared text encoding."""


class DatabaseError(SourceError):
    """A database could not be reached or refused a query."""


class ConnectionFailedError(DatabaseError, ConnectionError):
    """The database server is unreachable or rejected the credentials."""


class QueryError(DatabaseError, RuntimeError):
    """The database rejected the SQL (syntax, missing table, permissions)."""


class SchemaError(DatakilnError, ValueError):
    """A schema override, column name or column type is invalid."""


class SchemaMismatchError(SchemaError):
    """Files that should form one dataset have different columns or types."""


class InvalidArgumentError(DatakilnError, ValueError):
    """An argument has a bad value or type."""


class MemoryBudgetError(DatakilnError, MemoryError):
    """The work cannot be done within the memory budget it was given."""


class WriteError(DatakilnError, OSError):
    """An output could not be written; nothing half-written is left behind."""


class OutputExistsError(WriteError, FileExistsError):
    """The output already holds files datakiln did not write, or is (or contains) an input."""


class ConstraintError(DatakilnError, ValueError):
    """Training data (or, never expected, a sample) breaks a declared constraint."""


class ModelFormatError(DatakilnError, ValueError):
    """A model file cannot be trusted or read: truncated, tampered, too new, or not a model."""


class MissingDependencyError(DatakilnError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


class UnboundedStreamError(DatakilnError, TypeError):
    """A stream (which never ends) was asked for something that needs the end of the data."""


class PrivacyError(DatakilnError):
    """The privacy and security layer (:mod:`datakiln.privacy`) refused something."""


class KeyFileError(PrivacyError, PermissionError):
    """A key file or key variable is missing, unreadable, too short, or readable by others."""


class DecryptionError(PrivacyError, ValueError):
    """A file cannot be decrypted: wrong key, or tampered, reordered or truncated content."""


class AccessDeniedError(PrivacyError, PermissionError):
    """A role asked for a column or rows its access policy does not allow."""


class AuditVerificationError(PrivacyError, ValueError):
    """An audit log does not verify: an entry edited, removed, reordered or re-chained."""


class PrivacyBudgetError(PrivacyError, ValueError):
    """Differentially private work would spend more than its epsilon/delta budget."""
