"""Secret keys: loading, key ids, per-purpose derivation, new key files, passphrases.

datakiln never has a default key. A key comes from a key file the user made (``kiln key
new PATH`` writes 32 random bytes with mode 0600) or from an environment variable holding
hex or base64 text; a passphrase becomes a key through scrypt. Key files readable by the
group or by others, missing, or shorter than 32 bytes are refused with
:class:`~datakiln.errors.KeyFileError`.

Every key has a **key id**: the first 16 hex digits of SHA-256 over an id key derived
from the key by HKDF. The id names the key in file headers, reports and audit logs without
revealing anything about it. Keys for each use are derived with HKDF-SHA256 from the one
secret, separated by ``purpose`` (``"pseudonym"``, ``"envelope"`` ...), ``namespace``
(a table or column family) and ``version`` (bump it to rotate pseudonyms), so one key file
serves every use without two uses ever sharing key bytes.

>>> key = load_key("secret.key")                        # doctest: +SKIP
>>> key.key_id                                          # doctest: +SKIP
'3f1c0a9e5b7d2c41'
>>> derive(key, purpose="pseudonym", namespace="customers", version=2)   # doctest: +SKIP
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

try:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
except ImportError:  # the privacy extra
    from datakiln._optional import import_optional

    import_optional("cryptography", extra="privacy", purpose="keys")
    raise

from datakiln.errors import InvalidArgumentError, KeyFileError

__all__ = ["KEY_BYTES", "MIN_KEY_BYTES", "Key", "derive", "key_from_passphrase", "key_id",
           "load_key", "new_key_file", "resolve_key"]

#: bytes of a new key (256 bits)
KEY_BYTES = 32
#: the shortest key material accepted (256 bits)
MIN_KEY_BYTES = 32
#: the longest key file read: anything larger is not a key file (a data file named by mistake)
MAX_KEY_FILE_BYTES = 4096
#: scrypt cost defaults (2**15 · 8 · 128 B = 32 MiB of memory, ~0.1 s): OWASP's minimum or better
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1

_ID_INFO = b"datakiln/key-id/v1"
_SALT = b"datakiln-hkdf-v1"


@dataclass(frozen=True)
class Key:
    """Secret key material with its public id.

    Attributes
    ----------
    material : bytes
        The secret (at least 32 bytes). Never printed: ``repr`` shows only the id.
    key_id : str
        16 hex digits naming the key (see :func:`key_id`).
    source : str
        Where it came from, for messages: ``"file /path"``, ``"environment variable NAME"``
        or ``"passphrase"``.
    """

    material: bytes = field(repr=False)
    key_id: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        if len(self.material) < MIN_KEY_BYTES:
            raise KeyFileError(f"the key from {self.source or 'memory'} has {len(self.material)} "
                               f"bytes; at least {MIN_KEY_BYTES} are needed: make one with "
                               "`kiln key new PATH`")
        if not self.key_id:
            object.__setattr__(self, "key_id", key_id(self.material))

    def derive(self, purpose: str, namespace: str = "", version: int = 1, length: int = 32) -> bytes:
        """Shortcut for :func:`derive` on this key."""
        return derive(self, purpose=purpose, namespace=namespace, version=version, length=length)


def _material(key: Key | bytes) -> bytes:
    if isinstance(key, Key):
        return key.material
    if isinstance(key, (bytes, bytearray)):
        if len(key) < MIN_KEY_BYTES:
            raise KeyFileError(f"a key has {len(key)} bytes; at least {MIN_KEY_BYTES} are needed")
        return bytes(key)
    raise InvalidArgumentError(f"a key must be a datakiln Key or bytes, got {type(key).__name__}; "
                               "load one with datakiln.privacy.load_key(path)")


def _hkdf(material: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=_SALT, info=info).derive(material)


def key_id(key: Key | bytes) -> str:
    """The public id of ``key``: 16 hex digits (64 bits) of SHA-256 over an HKDF-derived id key.

    The id depends only on the key bytes, so the same key file gives the same id everywhere;
    it reveals nothing usable about the key (it is a hash of a one-way derivation).
    """
    return hashlib.sha256(_hkdf(_material(key), _ID_INFO, 32)).hexdigest()[:16]


def derive(key: Key | bytes, *, purpose: str, namespace: str = "", version: int = 1,
           length: int = 32) -> bytes:
    """Derive ``length`` bytes for one use of ``key`` with HKDF-SHA256.

    Parameters
    ----------
    key : Key or bytes
        The root secret (at least 32 bytes).
    purpose : str
        What the bytes are for, e.g. ``"pseudonym"``, ``"envelope"``, ``"audit"``; different
        purposes never share bytes.
    namespace : str, default ""
        A finer scope inside the purpose (a table, a column family); pseudonyms made in one
        namespace do not join with another.
    version : int, default 1
        The key version; increase it to rotate derived keys (old pseudonyms stop matching).
    length : int, default 32
        Bytes to return (1 … 8160).

    >>> len(derive(b"k" * 32, purpose="pseudonym", namespace="customers"))
    32
    """
    if not purpose or not isinstance(purpose, str):
        raise InvalidArgumentError("derive() needs a non-empty purpose, e.g. purpose='pseudonym'")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InvalidArgumentError(f"a key version is a whole number >= 1, got {version!r}")
    if not 1 <= length <= 255 * 32:
        raise InvalidArgumentError(f"derive() length must be 1 … 8160 bytes, got {length}")
    info = b"\0".join([b"datakiln/derive/v1", purpose.encode("utf-8"), namespace.encode("utf-8"),
                       str(version).encode("ascii")])
    return _hkdf(_material(key), info, length)


def load_key(path: str | os.PathLike[str] | None = None, *, env: str | None = None) -> Key:
    """Load a key from a key file (``path``) or from the environment variable ``env``.

    A key file holds raw key bytes (``kiln key new`` writes 32 random bytes). It must exist,
    be a regular file, be readable by its owner only (mode ``0600`` or ``0400``: no group or
    other permission bits) and hold 32 … 4096 bytes. An environment variable holds the key as
    hex (64+ hex digits) or base64 text decoding to at least 32 bytes.

    Raises
    ------
    KeyFileError
        The file is missing, unreadable, readable by others, too short or too long; the
        variable is unset, empty or not hex/base64 of at least 32 bytes.
    """
    if (path is None) == (env is None):
        raise InvalidArgumentError("give a key file or an environment variable name (exactly one): "
                                   "load_key('secret.key') or load_key(env='DATAKILN_KEY')")
    if env is not None:
        return _key_from_env(env)
    return _key_from_file(Path(os.fspath(path)).expanduser())


def _key_from_file(path: Path) -> Key:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise KeyFileError(f"the key file {str(path)!r} does not exist; make one with "
                           f"`kiln key new {path}`") from None
    except OSError as exc:
        raise KeyFileError(f"cannot read the key file {str(path)!r}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise KeyFileError(f"the key file {str(path)!r} is not a regular file; name a file made "
                           "with `kiln key new PATH`")
    if os.name == "posix" and info.st_mode & 0o077:
        raise KeyFileError(
            f"the key file {str(path)!r} is readable by other users (mode "
            f"{stat.S_IMODE(info.st_mode):04o}); a key file must be private: run "
            f"`chmod 600 {path}` (and consider the key exposed if others could read it)")
    if info.st_size > MAX_KEY_FILE_BYTES:
        raise KeyFileError(f"{str(path)!r} has {info.st_size:,} bytes, too many for a key file "
                           f"(at most {MAX_KEY_FILE_BYTES}); did you name a data file?")
    try:
        material = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read the key file {str(path)!r}: {exc.strerror or exc}") from None
    if len(material) < MIN_KEY_BYTES:
        raise KeyFileError(f"the key file {str(path)!r} holds {len(material)} bytes; a key needs "
                           f"at least {MIN_KEY_BYTES}: make a new one with `kiln key new PATH`")
    return Key(material, source=f"file {path}")


def _key_from_env(name: str) -> Key:
    text = os.environ.get(name)
    if not text or not text.strip():
        raise KeyFileError(f"the environment variable {name!r} is not set or empty; set it to a "
                           "key as hex, e.g. the output of `python -c \"import secrets; "
                           "print(secrets.token_hex(32))\"`")
    text = text.strip()
    material: bytes | None = None
    try:
        material = bytes.fromhex(text)
    except ValueError:
        try:
            material = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_" if
                                        ("-" in text or "_" in text) else None, validate=True)
        except (binascii.Error, ValueError):
            material = None
    if material is None:
        raise KeyFileError(f"the environment variable {name!r} is neither hex nor base64 text; "
                           "it must hold a key of at least 32 bytes in hex (64 hex digits)")
    if len(material) < MIN_KEY_BYTES:
        raise KeyFileError(f"the environment variable {name!r} decodes to {len(material)} bytes; a "
                           f"key needs at least {MIN_KEY_BYTES} (64 hex digits)")
    return Key(material, source=f"environment variable {name}")


def resolve_key(key: Key | bytes | str | os.PathLike[str] | None = None, *,
                key_file: str | os.PathLike[str] | None = None, key_env: str | None = None,
                what: str = "this operation") -> Key:
    """One :class:`Key` from whichever of ``key`` (a Key, bytes or a key file path),
    ``key_file`` or ``key_env`` was given; none or several is an error naming ``what``."""
    given = [k for k in (key, key_file, key_env) if k is not None]
    if len(given) != 1:
        raise KeyFileError(f"{what} needs exactly one key: a key file (--key-file / key_file=) or "
                           "an environment variable (--key-env / key_env=); datakiln has no default "
                           "key. Make one with `kiln key new PATH`")
    if isinstance(key, Key):
        return key
    if isinstance(key, (bytes, bytearray)):
        return Key(bytes(key), source="memory")
    if key_env is not None:
        return load_key(env=key_env)
    return load_key(key if key is not None else key_file)


def new_key_file(path: str | os.PathLike[str]) -> Key:
    """Write a new key (32 random bytes from the OS) to ``path`` with mode 0600; return it.

    The file is written under a temporary name in the same directory and linked into place,
    so ``path`` either does not exist or holds the whole key; an existing ``path`` is never
    replaced (:class:`~datakiln.errors.KeyFileError`: a lost key makes data unreadable).
    """
    target = Path(os.fspath(path)).expanduser()
    if target.exists() or target.is_symlink():
        raise KeyFileError(f"{str(target)!r} already exists; datakiln never replaces a key file "
                           "(data encrypted with it would become unreadable): choose a new name")
    material = secrets.token_bytes(KEY_BYTES)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(material)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temp, 0o600)  # whatever the umask did
            try:
                os.link(temp, target)  # fails if the target appeared meanwhile: never replaced
            except FileExistsError:
                raise KeyFileError(f"{str(target)!r} already exists; datakiln never replaces a key "
                                   "file: choose a new name") from None
        finally:
            temp.unlink(missing_ok=True)
    except KeyFileError:
        raise
    except OSError as exc:
        raise KeyFileError(f"cannot write the key file {str(target)!r}: {exc.strerror or exc}") from None
    return Key(material, source=f"file {target}")


def key_from_passphrase(passphrase: str | bytes, salt: bytes, *, n: int = SCRYPT_N, r: int = SCRYPT_R,
                        p: int = SCRYPT_P) -> Key:
    """A 32-byte key from ``passphrase`` through scrypt (``n``, ``r``, ``p`` as in RFC 7914).

    ``salt`` must be at least 16 random bytes kept with the data (the envelope header stores
    it). The defaults cost about 32 MiB of memory and a tenth of a second per derivation.
    """
    if isinstance(passphrase, str):
        passphrase = passphrase.encode("utf-8")
    if not passphrase:
        raise KeyFileError("the passphrase is empty; give a long passphrase or use a key file")
    if len(salt) < 16:
        raise InvalidArgumentError(f"a scrypt salt needs at least 16 bytes, got {len(salt)}")
    if n < 2 or n & (n - 1) or r < 1 or p < 1 or n * r > 2**24:
        raise InvalidArgumentError(f"scrypt parameters n={n} (a power of two >= 2), r={r}, p={p} "
                                   "(>= 1, n*r <= 2**24) are out of range")
    material = Scrypt(salt=salt, length=KEY_BYTES, n=n, r=r, p=p).derive(passphrase)
    return Key(material, source="passphrase")
