"""The HMAC-chained audit log: a clean chain verifies; an edited, removed, inserted, reordered
or truncated log, a forged checkpoint and a chain recomputed without the key are each caught at
the first bad line; appends from two processes at once leave one valid chain."""

from __future__ import annotations

import hashlib
import hmac
import json
import multiprocessing
from pathlib import Path

import pytest

from datakiln.errors import AuditVerificationError, InvalidArgumentError, KeyFileError
from datakiln.privacy.audit import AuditLog, verify_log
from datakiln.privacy.keys import Key, load_key, new_key_file


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    new_key_file(tmp_path / "audit.key")
    return tmp_path / "audit.key"


def _log(tmp_path: Path, key_path: Path, entries: int = 10) -> tuple[Path, Path]:
    log = AuditLog(tmp_path / "audit.jsonl", key=load_key(key_path), checkpoint=tmp_path / "audit.head")
    for i in range(entries):
        log.append({"event": "read", "role": "analyst", "columns": ["age"], "rows": 100 + i})
    return tmp_path / "audit.jsonl", tmp_path / "audit.head"


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def _bad_line(path: Path, key_path: Path, head: Path | None) -> tuple[int, str]:
    with pytest.raises(AuditVerificationError) as caught:
        verify_log(path, key_file=key_path, checkpoint=head)
    return caught.value.line, str(caught.value)


def test_a_clean_chain_verifies(tmp_path, key_path):
    log, head = _log(tmp_path, key_path)
    result = verify_log(log, key_file=key_path, checkpoint=head)
    assert result.entries == 10 and result.checkpoint_entries == 10 and result.after_checkpoint == 0
    entries = [json.loads(line) for line in _lines(log)]
    assert [e["seq"] for e in entries] == list(range(1, 11))
    assert entries[0]["prev"] == "0" * 64
    assert all(e["prev"] == p["mac"] for p, e in zip(entries, entries[1:]))
    assert {e["key_id"] for e in entries} == {load_key(key_path).key_id}
    assert entries[3]["rows"] == 103 and entries[3]["time"].endswith("Z")
    checkpoint = json.loads(head.read_text())
    assert checkpoint["entries"] == 10 and checkpoint["last_mac"] == entries[-1]["mac"]
    assert result.last_mac == entries[-1]["mac"]


def test_the_mac_is_hmac_sha256_over_the_canonical_entry_with_a_derived_key(tmp_path, key_path):
    log, _ = _log(tmp_path, key_path, entries=1)
    entry = json.loads(_lines(log)[0])
    body = {k: v for k, v in entry.items() if k != "mac"}
    derived = load_key(key_path).derive("audit", namespace="chain")
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert entry["mac"] == hmac.new(derived, b"datakiln-audit-v1\n" + text, hashlib.sha256).hexdigest()
    assert derived != load_key(key_path).material  # the key file itself never MACs


def test_an_edited_line_is_caught(tmp_path, key_path):
    log, head = _log(tmp_path, key_path)
    lines = _lines(log)
    lines[4] = lines[4].replace('"rows":104', '"rows":4')
    log.write_text("".join(lines))
    line, message = _bad_line(log, key_path, head)
    assert line == 5 and "edited" in message and "line 5" in message


def test_a_removed_middle_line_is_caught(tmp_path, key_path):
    log, head = _log(tmp_path, key_path)
    lines = _lines(log)
    log.write_text("".join(lines[:6] + lines[7:]))
    line, message = _bad_line(log, key_path, head)
    assert line == 7 and "removed" in message


def test_removed_last_lines_are_caught_against_the_checkpoint(tmp_path, key_path):
    log, head = _log(tmp_path, key_path)
    log.write_text("".join(_lines(log)[:7]))
    assert verify_log(log, key_file=key_path).entries == 7  # without the head it cannot tell
    line, message = _bad_line(log, key_path, head)
    assert line == 8 and "last 3 entries were removed" in message
    log.write_text("")  # the whole log removed
    line, _ = _bad_line(log, key_path, head)
    assert line == 1


def test_reordered_lines_are_caught(tmp_path, key_path):
    log, head = _log(tmp_path, key_path)
    lines = _lines(log)
    lines[2], lines[3] = lines[3], lines[2]
    log.write_text("".join(lines))
    line, message = _bad_line(log, key_path, head)
    assert line == 3 and "reordered" in message


def test_an_inserted_line_is_caught(tmp_path, key_path):
    log, head = _log(tmp_path, key_path)
    lines = _lines(log)
    log.write_text("".join(lines[:5] + [lines[4]] + lines[5:]))  # a replayed entry
    line, _ = _bad_line(log, key_path, head)
    assert line == 6


def test_a_chain_recomputed_without_the_key_is_caught(tmp_path, key_path):
    """Someone rewrites the log (and its checkpoint) consistently, but with their own key."""
    log, head = _log(tmp_path, key_path)
    forged_key = Key(b"\x07" * 32)
    forged = AuditLog(tmp_path / "forged.jsonl", key=forged_key, checkpoint=tmp_path / "forged.head")
    for entry in (json.loads(line) for line in _lines(log)):
        forged.append({k: v for k, v in entry.items() if k not in ("seq", "prev", "mac", "key_id", "time")}
                      | {"rows": 0})
    text = (tmp_path / "forged.jsonl").read_text().replace(forged_key.key_id, load_key(key_path).key_id)
    log.write_text(text)  # even claiming the real key id
    line, message = _bad_line(log, key_path, None)
    assert line == 1 and "without the audit key" in message
    line, message = _bad_line(tmp_path / "forged.jsonl", key_path, None)
    assert line == 1 and "not the key given" in message
    head.write_text((tmp_path / "forged.head").read_text())  # a forged checkpoint
    with pytest.raises(AuditVerificationError, match="checkpoint"):
        verify_log(tmp_path / "audit.jsonl", key_file=key_path, checkpoint=head)


def test_an_edited_checkpoint_is_caught(tmp_path, key_path):
    log, head = _log(tmp_path, key_path)
    data = json.loads(head.read_text())
    data["entries"] = 7
    head.write_text(json.dumps(data))
    with pytest.raises(AuditVerificationError, match="edited"):
        verify_log(log, key_file=key_path, checkpoint=head)


def test_a_stale_checkpoint_still_verifies_the_prefix(tmp_path, key_path):
    log, head = _log(tmp_path, key_path, entries=5)
    kept = tmp_path / "kept.head"
    kept.write_bytes(head.read_bytes())  # the copy the user keeps elsewhere
    AuditLog(log, key=load_key(key_path), checkpoint=head).append({"event": "read", "rows": 1})
    result = verify_log(log, key_file=key_path, checkpoint=kept)
    assert result.entries == 6 and result.after_checkpoint == 1
    lines = _lines(log)  # rewrite the 5th entry: the stale head no longer matches it
    log.write_text("".join(lines[:4]))
    line, _ = _bad_line(log, key_path, kept)
    assert line == 5


def test_a_cut_short_last_line_and_appending_to_a_damaged_log(tmp_path, key_path):
    log, head = _log(tmp_path, key_path, entries=3)
    text = log.read_text()
    log.write_text(text[:-20])
    line, message = _bad_line(log, key_path, head)
    assert line == 3 and "cut short" in message
    writer = AuditLog(log, key=load_key(key_path), checkpoint=head)
    with pytest.raises(AuditVerificationError, match="partial line"):
        writer.append({"event": "read"})
    log.write_text("".join(text.splitlines(keepends=True)[:2]))  # the last entry removed
    with pytest.raises(AuditVerificationError, match="removed"):
        writer.append({"event": "read"})
    lines = text.splitlines(keepends=True)
    log.write_text("".join(lines[:2] + [lines[2].replace('"rows":102', '"rows":1')]))
    with pytest.raises(AuditVerificationError, match="does not verify"):
        writer.append({"event": "read"})


def test_wrong_key_and_bad_arguments(tmp_path, key_path):
    log, head = _log(tmp_path, key_path, entries=2)
    new_key_file(tmp_path / "other.key")
    with pytest.raises(AuditVerificationError, match="made with key"):
        verify_log(log, key_file=tmp_path / "other.key", checkpoint=head)
    with pytest.raises(KeyFileError):
        verify_log(log)
    with pytest.raises(InvalidArgumentError, match="set by the log"):
        AuditLog(log, key=load_key(key_path)).append({"seq": 5})
    (tmp_path / "notes.txt").write_text("my notes\n")
    with pytest.raises(AuditVerificationError, match="not a datakiln audit"):
        AuditLog(tmp_path / "notes.txt", key=load_key(key_path)).append({"event": "read"})
    assert (tmp_path / "notes.txt").read_text() == "my notes\n"  # never written to


def test_a_foreign_checkpoint_file_is_never_replaced(tmp_path, key_path):
    (tmp_path / "head.json").write_text('{"mine": true}')
    log = AuditLog(tmp_path / "a.jsonl", key=load_key(key_path), checkpoint=tmp_path / "head.json")
    with pytest.raises(AuditVerificationError):
        log.append({"event": "read"})
    assert (tmp_path / "head.json").read_text() == '{"mine": true}'


def _append_many(path: str, head: str, key_file: str, worker: int, count: int) -> None:
    log = AuditLog(path, key=load_key(key_file), checkpoint=head)
    for i in range(count):
        log.append({"event": "read", "worker": worker, "i": i})


def test_concurrent_appends_from_two_processes_keep_one_chain(tmp_path, key_path):
    path, head = str(tmp_path / "audit.jsonl"), str(tmp_path / "audit.head")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(path, head, str(key_path), w, 200))
               for w in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    result = verify_log(path, key_file=key_path, checkpoint=head)
    assert result.entries == 400 and result.checkpoint_entries == 400
    entries = [json.loads(line) for line in _lines(Path(path))]
    for w in range(2):
        assert [e["i"] for e in entries if e["worker"] == w] == list(range(200))
    assert len({(e["worker"], e["i"]) for e in entries}) == 400


def test_concurrent_appends_from_threads_keep_one_chain(tmp_path, key_path):
    import threading

    key = load_key(key_path)

    def work(worker: int) -> None:
        log = AuditLog(tmp_path / "t.jsonl", key=key, checkpoint=tmp_path / "t.head")
        for i in range(50):
            log.append({"event": "read", "worker": worker, "i": i})

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = verify_log(tmp_path / "t.jsonl", key=key, checkpoint=tmp_path / "t.head")
    assert result.entries == result.checkpoint_entries == 200
