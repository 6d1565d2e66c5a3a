"""Parquet modular encryption through :mod:`pyarrow.parquet.encryption`, keys from a key file.

Parquet encrypts each column chunk and the footer with its own data key (AES-GCM); pyarrow
wraps those data keys with *master keys* it asks a KMS client for. :class:`KeyFileKmsClient`
is that client for a local key file: each master key name (``"footer"``, ``"columns"``,
``"pii"`` ...) gets its own key-encryption key derived from the key file with HKDF, and each
wrapped key records the key file's id, so a wrong key is named as such. The files are
standard Parquet modular encryption: plain pyarrow reads them given the same client and key
(see :meth:`DecryptionConfig.crypto_factory`).

>>> from datakiln.privacy import EncryptionConfig, DecryptionConfig          # doctest: +SKIP
>>> ds.write("adult.parquet", encryption=EncryptionConfig(key_file="secret.key",
...          plaintext_columns=["age"], plaintext_footer=True))              # doctest: +SKIP
>>> datakiln.read("adult.parquet", decryption=DecryptionConfig(key_file="secret.key"))  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import io
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet.encryption as pe

try:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError:  # the privacy extra
    from datakiln._optional import import_optional

    import_optional("cryptography", extra="privacy", purpose="Parquet encryption")
    raise

from datakiln.errors import DecryptionError, InvalidArgumentError, SchemaError
from datakiln.privacy.keys import Key, derive, resolve_key

__all__ = ["DecryptionConfig", "EncryptionConfig", "KeyFileKmsClient"]

_PREFIX = "dk1"
_PURPOSE = "parquet-master-key"
#: data keys unwrapped once stay in pyarrow's cache this long (then the KMS client is asked again)
_CACHE = dt.timedelta(minutes=10)


class KeyFileKmsClient(pe.KmsClient):
    """A pyarrow KMS client whose master keys are derived from one local key.

    ``wrap_key`` seals a Parquet data key with AES-256-GCM under
    ``HKDF(key, "parquet-master-key", master_key_identifier)`` and returns
    ``"dk1:<key id>:<base64(nonce | sealed)>"``; ``unwrap_key`` checks the key id first, so a
    wrong key says so instead of failing somewhere inside Parquet.
    """

    def __init__(self, key: Key) -> None:
        super().__init__()
        self._key = key

    def _kek(self, master_key_identifier: str) -> AESGCM:
        return AESGCM(derive(self._key, purpose=_PURPOSE, namespace=master_key_identifier))

    def wrap_key(self, key_bytes: bytes, master_key_identifier: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._kek(master_key_identifier).encrypt(nonce, bytes(key_bytes),
                                                          master_key_identifier.encode("utf-8"))
        return f"{_PREFIX}:{self._key.key_id}:{base64.b64encode(nonce + sealed).decode('ascii')}"

    def unwrap_key(self, wrapped_key: str, master_key_identifier: str) -> bytes:
        parts = str(wrapped_key).split(":")
        if len(parts) != 3 or parts[0] != _PREFIX:
            raise DecryptionError("the Parquet file's keys were not wrapped by datakiln's key-file KMS "
                                  f"(master key {master_key_identifier!r}); read it with the KMS that "
                                  "wrote it")
        if parts[1] != self._key.key_id:
            raise DecryptionError(f"wrong key: the Parquet file was encrypted with key id {parts[1]}, "
                                  f"the key given ({self._key.source or 'memory'}) has id "
                                  f"{self._key.key_id}")
        try:
            raw = base64.b64decode(parts[2], validate=True)
            return self._kek(master_key_identifier).decrypt(raw[:12], raw[12:],
                                                            master_key_identifier.encode("utf-8"))
        except (InvalidTag, binascii.Error, ValueError):
            raise DecryptionError(f"the wrapped key for master key {master_key_identifier!r} failed "
                                  "authentication: the file's key material was tampered with") from None


@dataclass
class _KeyedConfig:
    key: Key | bytes | str | os.PathLike[str] | None = None
    key_file: str | os.PathLike[str] | None = None
    key_env: str | None = None

    def resolved_key(self) -> Key:
        """The :class:`~datakiln.privacy.Key` this configuration names (read now)."""
        return resolve_key(self.key, key_file=self.key_file, key_env=self.key_env,
                           what=f"{type(self).__name__}")

    def crypto_factory(self) -> pe.CryptoFactory:
        """A pyarrow ``CryptoFactory`` whose KMS client is :class:`KeyFileKmsClient` on this key."""
        key = self.resolved_key()
        return pe.CryptoFactory(lambda _config: KeyFileKmsClient(key))


@dataclass
class EncryptionConfig(_KeyedConfig):
    """How to encrypt what :meth:`Dataset.write` writes.

    Parameters
    ----------
    key, key_file, key_env
        The key (exactly one): a :class:`~datakiln.privacy.Key`, bytes or key file path; a
        key file (mode 0600); or an environment variable holding hex.
    plaintext_columns : sequence of str, default ()
        Parquet columns left unencrypted (readable without the key when
        ``plaintext_footer=True``).
    column_keys : mapping of str to list of str, optional
        Parquet master key name → the columns it protects, e.g. ``{"pii": ["email"],
        "rest": ["age", "income"]}``. Default: every column not in ``plaintext_columns``
        under the master key ``"columns"``.
    footer_key : str, default "footer"
        Master key name for the Parquet footer (schema and statistics).
    plaintext_footer : bool, default False
        Leave the footer readable (signed, not encrypted): tools without the key see the
        schema and read the plaintext columns.
    chunk_size : int, default 1 MiB
        For CSV / JSON Lines outputs, which go through the AES-GCM envelope
        (:mod:`datakiln.privacy.crypto`) as a whole.
    """

    plaintext_columns: Sequence[str] = ()
    column_keys: Mapping[str, Sequence[str]] | None = None
    footer_key: str = "footer"
    plaintext_footer: bool = False
    chunk_size: int = 1 << 20
    _cached_key: Key | None = field(default=None, init=False, repr=False, compare=False)

    def _key(self) -> Key:
        if self._cached_key is None:
            self._cached_key = self.resolved_key()
        return self._cached_key

    def crypto_factory(self) -> pe.CryptoFactory:
        key = self._key()
        return pe.CryptoFactory(lambda _config: KeyFileKmsClient(key))

    def column_plan(self, schema: pa.Schema) -> dict[str, list[str]]:
        """Master key name → columns, for ``schema`` (checked against its column names)."""
        names = list(schema.names)
        plain = list(self.plaintext_columns)
        unknown = [c for c in plain if c not in names]
        if unknown:
            raise SchemaError(f"plaintext_columns names unknown columns {unknown}; the columns are "
                              f"{names}")
        if self.column_keys is None:
            encrypted = [n for n in names if n not in plain]
            return {"columns": encrypted} if encrypted else {}
        plan = {str(k): list(v) for k, v in self.column_keys.items()}
        listed = [c for cols in plan.values() for c in cols]
        problems = sorted({c for c in listed if c not in names})
        if problems:
            raise SchemaError(f"column_keys names unknown columns {problems}; the columns are {names}")
        twice = sorted({c for c in listed if listed.count(c) > 1} | (set(listed) & set(plain)))
        if twice:
            raise SchemaError(f"columns {twice} are given more than one key (or are also in "
                              "plaintext_columns); give each column one key")
        return plan

    def parquet_properties(self, schema: pa.Schema) -> Any:
        """pyarrow ``FileEncryptionProperties`` for a Parquet file with ``schema``."""
        plan = self.column_plan(schema)
        if not plan and not self.plaintext_footer:
            raise InvalidArgumentError("every column is in plaintext_columns: nothing would be "
                                       "encrypted but the footer; drop encryption= or keep a column")
        options: dict[str, Any] = {}
        if not plan:
            options["uniform_encryption"] = True
        config = pe.EncryptionConfiguration(
            footer_key=self.footer_key, column_keys=plan, plaintext_footer=self.plaintext_footer,
            data_key_length_bits=256, double_wrapping=False, internal_key_material=True,
            cache_lifetime=_CACHE, **options)
        return self.crypto_factory().file_encryption_properties(pe.KmsConnectionConfig(), config)

    def wrap_stream(self, sink: BinaryIO) -> io.RawIOBase:
        """A writable stream sealing what is written to ``sink`` in the AES-GCM envelope."""
        from datakiln.privacy.crypto import EncryptingWriter

        return EncryptingWriter(sink, self._key(), chunk_size=self.chunk_size)


@dataclass
class DecryptionConfig(_KeyedConfig):
    """The key to read what was written with :class:`EncryptionConfig`: Parquet files
    (``datakiln.read(path, decryption=...)``) and model files (``datakiln.synth.load``).

    Parameters
    ----------
    key, key_file, key_env
        The key (exactly one), as in :class:`EncryptionConfig`.
    """

    def parquet_properties(self) -> Any:
        """pyarrow ``FileDecryptionProperties`` (for ``pq.read_table(...,
        decryption_properties=...)``)."""
        return self.crypto_factory().file_decryption_properties(
            pe.KmsConnectionConfig(), pe.DecryptionConfiguration(cache_lifetime=_CACHE))

    def decrypt_bytes(self, path: str | os.PathLike[str]) -> bytes:
        """The verified plaintext of an envelope-encrypted file (a model file, a report), in
        memory; :class:`~datakiln.errors.DecryptionError` on any failure."""
        from datakiln.privacy.crypto import decrypt_bytes

        return decrypt_bytes(path, self.resolved_key())

    def parquet_file_format(self) -> pads.ParquetFileFormat:
        """A ``pyarrow.dataset.ParquetFileFormat`` that decrypts with this key."""
        options = pads.ParquetFragmentScanOptions(decryption_config=pads.ParquetDecryptionConfig(
            self.crypto_factory(), pe.KmsConnectionConfig(),
            pe.DecryptionConfiguration(cache_lifetime=_CACHE)))
        return pads.ParquetFileFormat(default_fragment_scan_options=options)
