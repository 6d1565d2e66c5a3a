"""A tamper-evident audit log: JSON Lines chained with HMAC-SHA256, and a separate head.

Every read under an access policy (:mod:`datakiln.privacy.policy`) appends two entries.
A ``read`` entry is written when the read starts, before any row reaches the caller (if it
cannot be written, the read does not happen): the time, the role, the policy (file name
and the first 16 hex digits of its SHA-256), the source (passwords in URLs masked), the
columns returned, those masked, the role's row filter and the caller's own filter. A
``read-end`` entry follows when the read ends, because only then is the row count known:
``rows`` handed on, ``status`` ``complete``, ``stopped`` (the reader stopped early, as
``head()`` does; rows counted are those of the batches read) or ``failed`` (with the
error's type), and ``read``, the ``seq`` of its start entry. A read whose process is
killed leaves its ``read`` entry alone, so an unmatched start is itself evidence. A count
answered from file metadata writes one ``count`` entry.

Each line is a JSON object with ``seq`` (1, 2, 3 ...), ``prev`` (the MAC of the line
before; 64 zeros for the first) and ``mac``: HMAC-SHA256 over the rest of the line,
keyed by a key derived with HKDF (purpose ``"audit"``) from a key file
(:mod:`datakiln.privacy.keys`). Appends take an exclusive ``fcntl.flock`` on the log, so
processes and threads appending at once never interleave or fork the chain, and each line
is ``fsync``'d before the call returns. After each append the **head** (entry count and
last MAC, itself MAC'd) is written atomically to a checkpoint file, which the user can
keep elsewhere (another disk, another machine, a write-once store).

:func:`verify_log` (``kiln audit verify LOG --head CHECKPOINT --key-file K``) detects an
edited line, a removed, inserted or moved line, lines removed at the end (against the
checkpoint), and a chain recomputed by someone without the key, and names the first bad
line (:class:`~datakiln.errors.AuditVerificationError`, ``.line``).

What it does not do: it protects a *pipeline*, not a file system. Whoever holds the key
and can write both the log and the checkpoint can rewrite history undetectably; keep the
key away from the readers being audited, and a copy of the checkpoint where they cannot
write. A reader with plain write access but no key can delete the whole log, which the
checkpoint reveals, but cannot forge entries.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from datakiln.errors import AuditVerificationError, InvalidArgumentError, WriteError

__all__ = ["AuditLog", "AuditVerification", "verify_log"]

_DOMAIN = b"datakiln-audit-v1\n"
_HEAD_DOMAIN = b"datakiln-audit-head-v1\n"
_HEAD_FORMAT = "datakiln-audit-head"
_GENESIS = "0" * 64
_RESERVED = ("seq", "prev", "mac", "key_id", "time")


def _canonical(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def _mac_key(key: Any) -> tuple[bytes, str]:
    from datakiln.privacy.keys import derive, resolve_key

    key = resolve_key(key, what="the audit log")  # a Key, key bytes or a key file path
    return derive(key, purpose="audit", namespace="chain"), key.key_id


def _mac(mac_key: bytes, domain: bytes, body: Mapping[str, Any]) -> str:
    return hmac.new(mac_key, domain + _canonical(body), hashlib.sha256).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _last_line(fd: int, path: Path) -> bytes | None:
    """The last complete line of the file open at ``fd`` (None for an empty file)."""
    size = os.fstat(fd).st_size
    if size == 0:
        return None
    if os.pread(fd, 1, size - 1) != b"\n":
        raise AuditVerificationError(f"the audit log {str(path)!r} ends with a partial line (a write "
                                     f"cut short, or edited); run `kiln audit verify {path}` and keep "
                                     "the log for inspection; appending is refused until it is resolved")
    end, chunk, tail = size - 1, 4096, b""
    while end > 0:
        start = max(0, end - chunk)
        tail = os.pread(fd, end - start, start) + tail
        end = start
        if b"\n" in tail:
            break
    return tail.rsplit(b"\n", 1)[-1]


def _parse(raw: bytes | str, where: str) -> dict[str, Any]:
    try:
        entry = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        entry = None
    if not isinstance(entry, dict) or not all(k in entry for k in ("seq", "prev", "mac")) \
            or not isinstance(entry["seq"], int) or not isinstance(entry["mac"], str):
        raise AuditVerificationError(f"{where} is not a datakiln audit entry (not JSON with seq, prev "
                                     "and mac): the line was edited, or the file is not an audit log")
    return entry


def _write_head(path: Path, head: dict[str, Any]) -> None:
    """Replace the checkpoint atomically (temp file, fsync, rename, fsync of the folder);
    a file there that is not a datakiln checkpoint is never replaced."""
    if path.exists():
        try:
            current = json.loads(path.read_bytes())
            ours = isinstance(current, dict) and current.get("format") == _HEAD_FORMAT
        except (OSError, ValueError, UnicodeDecodeError):
            ours = False
        if not ours:
            raise WriteError(f"{str(path)!r} exists and is not a datakiln audit checkpoint; it is never "
                             "replaced: name another checkpoint file in the policy's audit section")
    temp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(json.dumps(head, indent=2).encode("utf-8") + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise WriteError(f"cannot write the audit checkpoint {str(path)!r}: {exc.strerror or exc}") from exc


def _read_head(path: Path, mac_key: bytes, key_id: str) -> dict[str, Any]:
    try:
        head = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise AuditVerificationError(f"the checkpoint {str(path)!r} does not exist") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise AuditVerificationError(f"the checkpoint {str(path)!r} cannot be read as JSON ({exc})") from None
    if not isinstance(head, dict) or head.get("format") != _HEAD_FORMAT:
        raise AuditVerificationError(f"{str(path)!r} is not a datakiln audit checkpoint")
    if head.get("key_id") != key_id:
        raise AuditVerificationError(f"the checkpoint {str(path)!r} was made with key "
                                     f"{head.get('key_id')!r}, not with the key given ({key_id}): "
                                     "use the log's audit key")
    body = {k: v for k, v in head.items() if k != "mac"}
    if not isinstance(head.get("mac"), str) or not hmac.compare_digest(
            head["mac"], _mac(mac_key, _HEAD_DOMAIN, body)):
        raise AuditVerificationError(f"the checkpoint {str(path)!r} does not verify: it was edited, or "
                                     "written without the audit key")
    if not isinstance(head.get("entries"), int) or head["entries"] < 0:
        raise AuditVerificationError(f"the checkpoint {str(path)!r} has no valid entry count")
    return head


class AuditLog:
    """An append-only, HMAC-chained JSON Lines log (see the module docstring).

    Parameters
    ----------
    path : str or path
        The log file (created with mode 0600 on the first append).
    key : Key, bytes or path
        The audit key (a :class:`~datakiln.privacy.keys.Key`, key bytes or a key file);
        entries are MAC'd with a key derived from it for the purpose ``"audit"``.
    checkpoint : str or path, optional
        Where the head (entry count, last MAC) is written after each append.

    >>> log = AuditLog("audit.jsonl", key=load_key("audit.key"), checkpoint="audit.head")  # doctest: +SKIP
    >>> log.append({"event": "read", "role": "analyst", "rows": 120})                     # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike[str], *, key: Any,
                 checkpoint: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(os.fspath(path)).expanduser()
        self.checkpoint = None if checkpoint is None else Path(os.fspath(checkpoint)).expanduser()
        self._mac_key, self.key_id = _mac_key(key)

    def append(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Append one entry (``event`` plus ``time``, ``seq``, ``prev``, ``key_id``, ``mac``)
        under an exclusive file lock, fsync it, update the checkpoint; return the entry.

        Raises :class:`AuditVerificationError` if the log's last line does not verify or the
        checkpoint records more entries than the log holds (appending would hide tampering).
        """
        reserved = sorted(set(event) & set(_RESERVED))
        if reserved:
            raise InvalidArgumentError(f"audit event fields {reserved} are set by the log itself")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            raise WriteError(f"cannot open the audit log {str(self.path)!r}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            seq, prev = self._tail(fd)
            body = {**event, "time": _now(), "seq": seq, "prev": prev, "key_id": self.key_id}
            entry = {**body, "mac": _mac(self._mac_key, _DOMAIN, body)}
            line = _canonical(entry) + b"\n"
            written = os.write(fd, line)
            if written != len(line):
                raise WriteError(f"the audit log {str(self.path)!r}: a short write ({written} of "
                                 f"{len(line)} bytes); the disk may be full")
            os.fsync(fd)
            if self.checkpoint is not None:
                self._write_checkpoint(seq, entry["mac"])
        except OSError as exc:
            raise WriteError(f"cannot append to the audit log {str(self.path)!r}: "
                             f"{exc.strerror or exc}") from exc
        finally:
            os.close(fd)  # also releases the lock
        return entry

    def _tail(self, fd: int) -> tuple[int, str]:
        """(next seq, MAC of the last entry), after checking the last entry and checkpoint."""
        raw = _last_line(fd, self.path)
        seq, prev = 1, _GENESIS
        if raw is not None:
            last = _parse(raw, f"the last line of the audit log {str(self.path)!r}")
            body = {k: v for k, v in last.items() if k != "mac"}
            if not hmac.compare_digest(last["mac"], _mac(self._mac_key, _DOMAIN, body)):
                raise AuditVerificationError(
                    f"the last entry of the audit log {str(self.path)!r} (seq {last['seq']}) does not "
                    "verify with the audit key (edited, or another key); appending is refused: run "
                    f"`kiln audit verify {self.path}`")
            seq, prev = last["seq"] + 1, last["mac"]
        if self.checkpoint is not None and self.checkpoint.exists():
            head = _read_head(self.checkpoint, self._mac_key, self.key_id)
            if head["entries"] > seq - 1 or (head["entries"] == seq - 1 and head.get("last_mac") != prev):
                raise AuditVerificationError(
                    f"the audit log {str(self.path)!r} holds {seq - 1} entries but its checkpoint "
                    f"{str(self.checkpoint)!r} records {head['entries']} ending in another MAC: entries "
                    "were removed; appending is refused")
        return seq, prev

    def _write_checkpoint(self, entries: int, last_mac: str) -> None:
        assert self.checkpoint is not None
        body = {"format": _HEAD_FORMAT, "version": 1, "log": self.path.name, "entries": entries,
                "last_mac": last_mac, "key_id": self.key_id, "time": _now()}
        _write_head(self.checkpoint, {**body, "mac": _mac(self._mac_key, _HEAD_DOMAIN, body)})


@dataclass(frozen=True)
class AuditVerification:
    """A log that verified: ``entries`` in it, ``checkpoint_entries`` the head vouched for
    (``None`` without a checkpoint), and ``last_mac``."""

    entries: int
    checkpoint_entries: int | None
    last_mac: str

    @property
    def after_checkpoint(self) -> int:
        """Entries appended after the checkpoint was taken (0 when it is current)."""
        return 0 if self.checkpoint_entries is None else self.entries - self.checkpoint_entries


def _fail(line: int, message: str) -> AuditVerificationError:
    error = AuditVerificationError(message)
    error.line = line  # type: ignore[attr-defined]
    return error


def verify_log(path: str | os.PathLike[str], *, key: Any = None,
               key_file: str | os.PathLike[str] | None = None, key_env: str | None = None,
               checkpoint: str | os.PathLike[str] | None = None) -> AuditVerification:
    """Check every entry of the audit log at ``path``; raise at the first bad line.

    Parameters
    ----------
    path : str or path
        The JSON Lines audit log.
    key, key_file, key_env :
        The audit key (a Key, bytes or key file path; a key file; an environment variable).
    checkpoint : str or path, optional
        The head file written by :class:`AuditLog`; without it, lines removed at the end
        cannot be detected.

    Raises
    ------
    AuditVerificationError
        With ``.line`` (1-based) set to the first bad line: an entry edited, removed,
        inserted or moved, a chain recomputed without the key, or lines missing at the end.
    """
    from datakiln.privacy.keys import resolve_key

    mac_key, key_id = _mac_key(resolve_key(key, key_file=key_file, key_env=key_env,
                                           what="verifying an audit log (--key-file)"))
    log = Path(os.fspath(path)).expanduser()
    head = None if checkpoint is None else _read_head(Path(os.fspath(checkpoint)).expanduser(),
                                                       mac_key, key_id)
    prev, count, checkpoint_mac = _GENESIS, 0, None
    try:
        handle = open(log, "rb")
    except OSError as exc:
        raise AuditVerificationError(f"cannot read the audit log {str(log)!r}: "
                                     f"{exc.strerror or exc}") from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            where = f"line {number} of {str(log)!r}"
            if not raw.endswith(b"\n"):
                raise _fail(number, f"{where} is cut short (no line end): the log was truncated mid-entry")
            entry = _parse(raw, where)
            body = {k: v for k, v in entry.items() if k != "mac"}
            if not hmac.compare_digest(entry["mac"], _mac(mac_key, _DOMAIN, body)):
                other = entry.get("key_id") not in (None, key_id)
                raise _fail(number, f"{where} does not verify: " + (
                    f"it names key {entry.get('key_id')!r}, not the key given ({key_id})" if other else
                    "the entry was edited, or the chain was recomputed without the audit key"))
            if entry["seq"] != number:
                raise _fail(number, f"{where} holds entry {entry['seq']} where entry {number} belongs: "
                            "entries were removed, inserted or reordered")
            if entry["prev"] != prev:
                raise _fail(number, f"{where} does not chain to line {number - 1}: entries were removed "
                            "or reordered")
            prev, count = entry["mac"], number
            if head is not None and number == head["entries"]:
                checkpoint_mac = entry["mac"]
    if head is not None:
        if count < head["entries"]:
            raise _fail(count + 1, f"{str(log)!r} ends after {count} entries but the checkpoint records "
                        f"{head['entries']}: the last {head['entries'] - count} entries were removed "
                        f"(first missing: line {count + 1})")
        if head["entries"] and checkpoint_mac != head.get("last_mac"):
            raise _fail(head["entries"], f"line {head['entries']} of {str(log)!r} is not the entry the "
                        "checkpoint records: the log was rewritten")
    return AuditVerification(count, None if head is None else head["entries"], prev)
