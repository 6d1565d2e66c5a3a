"""A streaming AES-256-GCM envelope for any file (CSV, JSON Lines, model files, reports).

Why our own format: ``cryptography`` gives AES-GCM on one buffer, not on a stream, and
whole-file GCM (or Fernet) needs the file in memory and cannot detect a file cut at a
chunk boundary. The layout follows the STREAM construction (Hoang et al., 2015): fixed-size
chunks, each sealed with AES-256-GCM under a per-file random data key, with a nonce made
of a random per-file prefix, the chunk index and a final-chunk flag, and the same index and
flag authenticated again as associated data. So

* a flipped bit anywhere fails that chunk's tag (or the key unwrap, for the header);
* moving, duplicating or dropping a chunk changes its index → its tag fails;
* cutting the file at a chunk boundary leaves a last chunk not sealed as final → detected;
* the data key is wrapped by a key-encryption key (KEK: a key file, an environment key or
  a passphrase through scrypt), so :func:`rekey_file` rotates the KEK by re-wrapping 32
  bytes and copying the sealed chunks untouched.

File layout (big-endian)::

    fixed   magic "DKILNENC" | version u8 | chunk size u32 | nonce prefix (7 bytes)   20 B
    wrap    KEK kind u8 (0 key, 1 passphrase) | KEK id (8 bytes) | scrypt salt (16) |
            log2 n u8 | r u8 | p u8 | wrap nonce (12) | wrapped data key (32 + 16 tag)  89 B
    chunks  AES-GCM(data key, nonce = prefix | index u32 | final u8,
                    aad = fixed | index u64 | final u8) — chunk size bytes + 16 each;
            the last holds 0 … chunk size bytes and is the only one sealed as final.

The wrapped key is sealed with AES-GCM under HKDF(KEK, "envelope-wrap") with ``fixed`` and
the wrap section's fields before its nonce as associated data, so the header cannot be
altered either. Decryption writes to a temporary file that becomes the output only after
the final chunk verified; any failure raises :class:`~datakiln.errors.DecryptionError`
naming the file and what failed, and leaves no plaintext behind.

>>> from datakiln.privacy import encrypt_file, decrypt_file, rekey_file   # doctest: +SKIP
>>> encrypt_file("train.csv", "train.csv.dke", key_file="secret.key")      # doctest: +SKIP
"""

from __future__ import annotations

import io
import os
import secrets
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

try:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError:  # the privacy extra
    from datakiln._optional import import_optional

    import_optional("cryptography", extra="privacy", purpose="encryption")
    raise

from datakiln.errors import DecryptionError, InvalidArgumentError, SourceNotFoundError
from datakiln.privacy.keys import Key, derive, key_from_passphrase, resolve_key

__all__ = ["CHUNK_SIZE", "MAGIC", "EncryptingWriter", "EnvelopeHeader", "decrypt_bytes", "decrypt_file",
           "encrypt_file", "is_encrypted", "read_header", "rekey_file"]

MAGIC = b"DKILNENC"
VERSION = 1
#: default plaintext bytes per chunk (1 MiB)
CHUNK_SIZE = 1 << 20
TAG = 16
_FIXED = struct.Struct(">8sBI7s")  # magic, version, chunk size, nonce prefix
_WRAP = struct.Struct(">B8s16sBBB12s48s")  # kind, kek id, salt, log2 n, r, p, wrap nonce, wrapped
_WRAP_AAD = struct.Struct(">B8s16sBBB")  # the wrap section's fields before the nonce: authenticated
HEADER_SIZE = _FIXED.size + _WRAP.size
_KIND_KEY, _KIND_PASSPHRASE = 0, 1
_MIN_CHUNK, _MAX_CHUNK = 1 << 10, 1 << 26

Progress = Callable[[int], None]


@dataclass(frozen=True)
class EnvelopeHeader:
    """What an encrypted file's header says (nothing secret).

    Attributes
    ----------
    key_id : str
        Id of the key-encryption key the data key is wrapped with (16 hex digits).
    passphrase : bool
        Whether that KEK comes from a passphrase (through scrypt) rather than a key.
    chunk_size : int
        Plaintext bytes per chunk.
    version : int
        Format version.
    """

    key_id: str
    passphrase: bool
    chunk_size: int
    version: int
    fixed: bytes
    salt: bytes
    scrypt: tuple[int, int, int]
    wrap_nonce: bytes
    wrapped: bytes

    @property
    def nonce_prefix(self) -> bytes:
        return self.fixed[-7:]


def _kek(key: Key | None, passphrase: str | bytes | None, salt: bytes,
         scrypt: tuple[int, int, int]) -> Key:
    if passphrase is not None:
        n_log2, r, p = scrypt
        return key_from_passphrase(passphrase, salt, n=1 << n_log2, r=r, p=p)
    assert key is not None
    return key


def _choose_kek(key: object, key_file: object, key_env: str | None, passphrase: str | bytes | None,
                what: str) -> tuple[Key | None, str | bytes | None]:
    if passphrase is not None:
        if any(k is not None for k in (key, key_file, key_env)):
            raise InvalidArgumentError(f"{what}: give a key or a passphrase, not both")
        return None, passphrase
    return resolve_key(key, key_file=key_file, key_env=key_env, what=what), None  # type: ignore[arg-type]


def _wrap(kek: Key, fixed: bytes, data_key: bytes, kind: int, salt: bytes,
          scrypt: tuple[int, int, int]) -> bytes:
    kek_id = bytes.fromhex(kek.key_id)
    nonce = secrets.token_bytes(12)
    aad = fixed + _WRAP_AAD.pack(kind, kek_id, salt, *scrypt)
    wrapped = AESGCM(derive(kek, purpose="envelope-wrap")).encrypt(nonce, data_key, aad)
    return _WRAP.pack(kind, kek_id, salt, *scrypt, nonce, wrapped)


def _new_header(kek: Key | None, passphrase: str | bytes | None, chunk_size: int,
                data_key: bytes) -> bytes:
    fixed = _FIXED.pack(MAGIC, VERSION, chunk_size, secrets.token_bytes(7))
    return fixed + _wrap_for(kek, passphrase, fixed, data_key)


def _wrap_for(kek: Key | None, passphrase: str | bytes | None, fixed: bytes, data_key: bytes) -> bytes:
    if passphrase is not None:
        from datakiln.privacy.keys import SCRYPT_N, SCRYPT_P, SCRYPT_R

        salt, scrypt = secrets.token_bytes(16), (SCRYPT_N.bit_length() - 1, SCRYPT_R, SCRYPT_P)
        return _wrap(_kek(None, passphrase, salt, scrypt), fixed, data_key, _KIND_PASSPHRASE, salt, scrypt)
    assert kek is not None
    return _wrap(kek, fixed, data_key, _KIND_KEY, bytes(16), (0, 0, 0))


def _parse_header(raw: bytes, name: str) -> EnvelopeHeader:
    if len(raw) < _FIXED.size or not raw.startswith(MAGIC):
        raise DecryptionError(f"{name!r} is not a datakiln encrypted file (no DKILNENC header); "
                              "encrypt it with `kiln encrypt`, or read it as it is")
    magic, version, chunk_size, _prefix = _FIXED.unpack_from(raw)
    if version != VERSION:
        raise DecryptionError(f"{name!r} uses envelope format version {version}; this datakiln "
                              f"reads version {VERSION}: upgrade datakiln (or the header is damaged)")
    if len(raw) < HEADER_SIZE:
        raise DecryptionError(f"{name!r} is truncated inside its header ({len(raw)} of "
                              f"{HEADER_SIZE} bytes)")
    if not _MIN_CHUNK <= chunk_size <= _MAX_CHUNK:
        raise DecryptionError(f"{name!r}: the header's chunk size {chunk_size} is out of range; "
                              "the header was tampered with or damaged")
    kind, kek_id, salt, n_log2, r, p, nonce, wrapped = _WRAP.unpack_from(raw, _FIXED.size)
    if kind not in (_KIND_KEY, _KIND_PASSPHRASE):
        raise DecryptionError(f"{name!r}: unknown key kind {kind} in the header (tampered or damaged)")
    return EnvelopeHeader(kek_id.hex(), kind == _KIND_PASSPHRASE, chunk_size, version,
                          raw[:_FIXED.size], salt, (n_log2, r, p), nonce, wrapped)


def read_header(path: str | os.PathLike[str]) -> EnvelopeHeader:
    """The header of the encrypted file ``path`` (key id, chunk size ...); nothing is decrypted."""
    with _open_in(path) as stream:
        return _parse_header(stream.read(HEADER_SIZE), os.fspath(path))


def is_encrypted(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` starts with the datakiln envelope magic (unreadable files: False)."""
    try:
        with open(path, "rb") as stream:
            return stream.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def _open_in(path: str | os.PathLike[str]) -> BinaryIO:
    try:
        return open(path, "rb")  # noqa: SIM115 - the caller closes it
    except FileNotFoundError:
        raise SourceNotFoundError(f"{os.fspath(path)!r} does not exist") from None
    except IsADirectoryError:
        raise InvalidArgumentError(f"{os.fspath(path)!r} is a directory; name one file") from None


def _unwrap(header: EnvelopeHeader, key: Key | None, passphrase: str | bytes | None, name: str) -> bytes:
    if passphrase is None and not header.passphrase and key is not None and key.key_id != header.key_id:
        raise DecryptionError(f"wrong key for {name!r}: it was encrypted with key id {header.key_id}, "
                              f"the key given ({key.source or 'memory'}) has id {key.key_id}")
    if header.passphrase and passphrase is None:
        raise DecryptionError(f"{name!r} was encrypted with a passphrase; give the passphrase "
                              "(--passphrase-env / passphrase=), not a key file")
    if not header.passphrase and passphrase is not None:
        raise DecryptionError(f"{name!r} was encrypted with a key (id {header.key_id}); give that "
                              "key file (--key-file / key_file=), not a passphrase")
    n_log2, r, p = header.scrypt
    if header.passphrase and not (10 <= n_log2 <= 20 and 1 <= r and (1 << n_log2) * r <= 2**22
                                  and 1 <= p <= 16):  # a forged header must not cost gigabytes
        raise DecryptionError(f"{name!r}: the header's scrypt parameters {header.scrypt} are out of "
                              "range; the header was tampered with or damaged")
    kek = _kek(key, passphrase, header.salt, header.scrypt)
    aad = header.fixed + _WRAP_AAD.pack(_KIND_PASSPHRASE if header.passphrase else _KIND_KEY,
                                        bytes.fromhex(header.key_id), header.salt, *header.scrypt)
    try:
        return AESGCM(derive(kek, purpose="envelope-wrap")).decrypt(header.wrap_nonce, header.wrapped, aad)
    except InvalidTag:
        if header.passphrase:
            raise DecryptionError(f"cannot open {name!r}: wrong passphrase, or the header was "
                                  "tampered with") from None
        raise DecryptionError(f"cannot open {name!r}: the header failed authentication (tampered "
                              "or damaged), although the key id matches") from None


def _nonce(prefix: bytes, index: int, final: bool) -> bytes:
    return prefix + struct.pack(">IB", index, final)


def _aad(fixed: bytes, index: int, final: bool) -> bytes:
    return fixed + struct.pack(">QB", index, final)


class EncryptingWriter(io.RawIOBase):
    """A writable binary stream that seals everything written into the envelope format.

    The last chunk is held back until :meth:`close`, which seals it as final: a stream not
    closed (a crash) leaves a file that decrypts to an error, never to shortened data.
    Pass ``sink`` (a binary file opened for writing; closed with this writer).
    """

    def __init__(self, sink: BinaryIO, key: Key | None = None, *, passphrase: str | bytes | None = None,
                 chunk_size: int = CHUNK_SIZE) -> None:
        if not _MIN_CHUNK <= chunk_size <= _MAX_CHUNK:
            raise InvalidArgumentError(f"chunk_size must be {_MIN_CHUNK} … {_MAX_CHUNK} bytes, "
                                       f"got {chunk_size}")
        self._sink, self._chunk = sink, chunk_size
        data_key = secrets.token_bytes(32)
        header = _new_header(key, passphrase, chunk_size, data_key)
        self._fixed = header[:_FIXED.size]
        self._aead = AESGCM(data_key)
        self._buffer = bytearray()
        self._index = 0
        sink.write(header)

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        if self.closed:
            raise ValueError("write to a closed EncryptingWriter")
        self._buffer += data
        while len(self._buffer) > self._chunk:  # keep at least one chunk back: it may be final
            self._seal(bytes(self._buffer[:self._chunk]), final=False)
            del self._buffer[:self._chunk]
        return len(data)

    def _seal(self, plain: bytes, final: bool) -> None:
        if self._index >= 2**32:
            raise InvalidArgumentError("the file is too large for the envelope (2**32 chunks)")
        prefix = self._fixed[-7:]
        self._sink.write(self._aead.encrypt(_nonce(prefix, self._index, final), plain,
                                            _aad(self._fixed, self._index, final)))
        self._index += 1

    def write_chunks(self, stream: BinaryIO, on_progress: Progress | None = None) -> None:
        """Seal everything ``stream`` holds, reading one chunk ahead to know the final one
        (no buffering copies: the fast path of :func:`encrypt_file`)."""
        if self._buffer:
            raise ValueError("write_chunks must come before any write()")
        block = _read_exact(stream, self._chunk)
        while True:
            following = _read_exact(stream, self._chunk) if len(block) == self._chunk else b""
            if not following:
                self._buffer += block  # the final chunk, sealed by close()
                if on_progress is not None:
                    on_progress(len(block))
                return
            self._seal(block, final=False)
            if on_progress is not None:
                on_progress(len(block))
            block = following

    def close(self) -> None:
        if not self.closed:
            try:
                self._seal(bytes(self._buffer), final=True)
                self._buffer.clear()
                self._sink.close()
            finally:
                super().close()

    def abort(self) -> None:
        """Close without sealing the final chunk (the output will not decrypt)."""
        if not self.closed:
            self._sink.close()
            super().close()


def _write_atomic(target: str | os.PathLike[str], fill: Callable[[BinaryIO], None], *,
                  overwrite: bool, inputs: list[str], is_own: Callable[[Path], bool]) -> Path:
    from datakiln.io.write import write_file_atomic

    def write(temp: Path) -> None:
        os.chmod(temp, 0o600)  # plaintext or not, private until the user says otherwise
        with open(temp, "wb") as sink:
            fill(sink)
            sink.flush()
            os.fsync(sink.fileno())

    return write_file_atomic(target, write, is_own=is_own, overwrite=overwrite, inputs=inputs)


def encrypt_file(source: str | os.PathLike[str], output: str | os.PathLike[str], key: Key | bytes |
                 str | os.PathLike[str] | None = None, *, key_file: str | os.PathLike[str] | None = None,
                 key_env: str | None = None, passphrase: str | bytes | None = None,
                 chunk_size: int = CHUNK_SIZE, overwrite: bool = False,
                 on_progress: Progress | None = None) -> EnvelopeHeader:
    """Encrypt the file ``source`` into ``output`` (atomically); returns the new header.

    Exactly one of ``key`` (a :class:`~datakiln.privacy.Key`, bytes or a key file path),
    ``key_file``, ``key_env`` (an environment variable) or ``passphrase`` gives the KEK.
    ``chunk_size`` is the plaintext bytes per chunk (default 1 MiB; 1 KiB … 64 MiB).
    ``on_progress(n)`` is called with the plaintext bytes of each chunk read. ``output``
    follows datakiln's output rules: an existing file is replaced only if it is a datakiln
    encrypted file or with ``overwrite=True``, never when it is ``source``.
    """
    kek, phrase = _choose_kek(key, key_file, key_env, passphrase, "encryption")

    def fill(sink: BinaryIO) -> None:
        writer = EncryptingWriter(_Unclosable(sink), kek, passphrase=phrase, chunk_size=chunk_size)
        with _open_in(source) as stream:
            writer.write_chunks(stream, on_progress)
        writer.close()

    written = _write_atomic(output, fill, overwrite=overwrite, inputs=[os.fspath(source)],
                            is_own=is_encrypted)
    return read_header(written)


class _Unclosable(io.RawIOBase):
    """A view of ``sink`` whose ``close`` only flushes (the atomic writer closes the file)."""

    def __init__(self, sink: BinaryIO) -> None:
        self._sink = sink

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        return self._sink.write(data)

    def close(self) -> None:
        self._sink.flush()
        super().close()


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    parts, left = [], size
    while left:
        piece = stream.read(left)
        if not piece:
            break
        parts.append(piece)
        left -= len(piece)
    return b"".join(parts)


def _chunks(stream: BinaryIO, header: EnvelopeHeader, data_key: bytes, name: str):
    """Yield verified plaintext chunks; raise :class:`DecryptionError` on any failure."""
    aead, size = AESGCM(data_key), header.chunk_size + TAG
    index, sealed = 0, _read_exact(stream, size)
    while True:
        following = _read_exact(stream, size) if len(sealed) == size else b""
        final = not following
        if len(sealed) < TAG:
            raise DecryptionError(f"{name!r} is truncated: chunk {index} has {len(sealed)} bytes, "
                                  f"less than its {TAG}-byte tag (the end of the file is missing)")
        try:
            yield aead.decrypt(_nonce(header.nonce_prefix, index, final), sealed,
                               _aad(header.fixed, index, final))
        except InvalidTag:
            raise DecryptionError(_chunk_failure(aead, header, sealed, index, final, name)) from None
        if final:
            return
        index, sealed = index + 1, following


def _chunk_failure(aead: AESGCM, header: EnvelopeHeader, sealed: bytes, index: int, final: bool,
                   name: str) -> str:
    """Say why chunk ``index`` failed: truncated at a chunk boundary, data after the end, or
    a tampered / reordered / duplicated chunk."""
    try:
        aead.decrypt(_nonce(header.nonce_prefix, index, not final), sealed,
                     _aad(header.fixed, index, not final))
    except InvalidTag:
        where = "the last chunk" if final else "a chunk"
        return (f"{name!r}: chunk {index} ({where}) failed authentication: the file was tampered "
                "with, its chunks reordered or duplicated, or it was cut inside a chunk")
    if final:
        return (f"{name!r} is truncated: chunk {index} is the last one present but was not sealed "
                "as the final chunk (the end of the file is missing)")
    return (f"{name!r}: data follows the final chunk {index} (bytes were appended or chunks "
            "duplicated)")


def decrypt_file(source: str | os.PathLike[str], output: str | os.PathLike[str], key: Key | bytes |
                 str | os.PathLike[str] | None = None, *, key_file: str | os.PathLike[str] | None = None,
                 key_env: str | None = None, passphrase: str | bytes | None = None,
                 overwrite: bool = False, on_progress: Progress | None = None) -> EnvelopeHeader:
    """Decrypt ``source`` into ``output``; returns its header.

    The plaintext goes to a private temporary file (mode 0600) beside ``output`` that is
    renamed into place only after the final chunk verified; on any failure it is deleted and
    :class:`~datakiln.errors.DecryptionError` says what failed (wrong key, tampered chunk N,
    truncated). An existing ``output`` is replaced only with ``overwrite=True``.
    """
    kek, phrase = _choose_kek(key, key_file, key_env, passphrase, "decryption")
    name = os.fspath(source)

    def fill(sink: BinaryIO) -> None:
        with _open_in(source) as stream:
            header = _parse_header(_read_exact(stream, HEADER_SIZE), name)
            data_key = _unwrap(header, kek, phrase, name)
            for plain in _chunks(stream, header, data_key, name):
                sink.write(plain)
                if on_progress is not None:
                    on_progress(len(plain))

    _write_atomic(output, fill, overwrite=overwrite, inputs=[name], is_own=lambda _p: False)
    return read_header(source)


def decrypt_bytes(source: str | os.PathLike[str], key: Key | bytes | str | os.PathLike[str] | None = None,
                  *, key_file: str | os.PathLike[str] | None = None, key_env: str | None = None,
                  passphrase: str | bytes | None = None) -> bytes:
    """The whole verified plaintext of ``source`` in memory (for small files: model files,
    reports); raises :class:`DecryptionError` like :func:`decrypt_file`."""
    kek, phrase = _choose_kek(key, key_file, key_env, passphrase, "decryption")
    name = os.fspath(source)
    with _open_in(source) as stream:
        header = _parse_header(_read_exact(stream, HEADER_SIZE), name)
        return b"".join(_chunks(stream, header, _unwrap(header, kek, phrase, name), name))


def rekey_file(path: str | os.PathLike[str], *, old_key: Key | bytes | str | os.PathLike[str] | None = None,
               new_key: Key | bytes | str | os.PathLike[str] | None = None,
               old_passphrase: str | bytes | None = None,
               new_passphrase: str | bytes | None = None) -> EnvelopeHeader:
    """Re-wrap the data key of the encrypted file ``path`` from the old KEK to the new one.

    Only the 89-byte wrap section of the header changes; the sealed chunks are copied
    untouched (no data is re-encrypted), into a temporary file renamed over ``path``. After
    this the old key no longer opens the file. Returns the new header.
    """
    old_kek, old_phrase = _choose_kek(old_key, None, None, old_passphrase, "rekey (old key)")
    new_kek, new_phrase = _choose_kek(new_key, None, None, new_passphrase, "rekey (new key)")
    name = os.fspath(path)
    with _open_in(path) as stream:
        header = _parse_header(_read_exact(stream, HEADER_SIZE), name)
    data_key = _unwrap(header, old_kek, old_phrase, name)
    wrap = _wrap_for(new_kek, new_phrase, header.fixed, data_key)

    def fill(sink: BinaryIO) -> None:
        with _open_in(path) as stream:
            stream.seek(HEADER_SIZE)
            sink.write(header.fixed + wrap)
            while block := stream.read(CHUNK_SIZE * 4):
                sink.write(block)

    _write_atomic(path, fill, overwrite=False, inputs=[], is_own=is_encrypted)
    return read_header(path)
