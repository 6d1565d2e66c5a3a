"""Key files, key ids, HKDF derivation and passphrases (datakiln.privacy.keys)."""

from __future__ import annotations

import hashlib
import os
import stat
import threading

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from datakiln.errors import InvalidArgumentError, KeyFileError
from datakiln.privacy import keys
from datakiln.privacy.keys import (
    Key,
    derive,
    key_from_passphrase,
    key_id,
    load_key,
    new_key_file,
    resolve_key,
)


def test_new_key_file_is_private_random_and_loads(tmp_path):
    path = tmp_path / "k.key"
    made = new_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.stat().st_size == 32
    loaded = load_key(path)
    assert loaded.material == made.material == path.read_bytes()
    assert loaded.key_id == made.key_id and len(loaded.key_id) == 16
    int(loaded.key_id, 16)  # hex
    other = new_key_file(tmp_path / "k2.key")
    assert other.material != made.material and other.key_id != made.key_id
    assert [p.name for p in tmp_path.iterdir()] and not list(tmp_path.glob(".*tmp"))


def test_new_key_file_never_replaces(tmp_path):
    path = tmp_path / "k.key"
    path.write_bytes(b"precious" * 8)
    with pytest.raises(KeyFileError, match="already exists"):
        new_key_file(path)
    assert path.read_bytes() == b"precious" * 8


def test_new_key_file_mode_ignores_umask(tmp_path):
    old = os.umask(0)
    try:
        new_key_file(tmp_path / "k.key")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "k.key").stat().st_mode) == 0o600


def test_concurrent_new_key_file_one_wins(tmp_path):
    path = tmp_path / "k.key"
    results: list[object] = []

    def make():
        try:
            results.append(new_key_file(path))
        except KeyFileError as exc:
            results.append(exc)

    threads = [threading.Thread(target=make) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [r for r in results if isinstance(r, Key)]
    assert len(won) == 1 and load_key(path).material == won[0].material


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o606])
def test_key_file_readable_by_others_refused(tmp_path, mode):
    path = tmp_path / "k.key"
    new_key_file(path)
    os.chmod(path, mode)
    with pytest.raises(KeyFileError, match=r"readable by other users.*chmod 600") as info:
        load_key(path)
    assert f"{mode:04o}" in str(info.value) and str(path) in str(info.value)


def test_key_file_0400_accepted(tmp_path):
    path = tmp_path / "k.key"
    new_key_file(path)
    os.chmod(path, 0o400)
    assert len(load_key(path).material) == 32


def test_key_file_missing_short_long_directory(tmp_path):
    with pytest.raises(KeyFileError, match="does not exist.*kiln key new"):
        load_key(tmp_path / "nope.key")
    short = tmp_path / "short.key"
    short.write_bytes(b"x" * 31)
    os.chmod(short, 0o600)
    with pytest.raises(KeyFileError, match="31 bytes"):
        load_key(short)
    big = tmp_path / "big.key"
    big.write_bytes(b"x" * 5000)
    os.chmod(big, 0o600)
    with pytest.raises(KeyFileError, match="too many"):
        load_key(big)
    folder = tmp_path / "d"
    folder.mkdir(mode=0o700)
    with pytest.raises(KeyFileError, match="not a regular file"):
        load_key(folder)


def test_key_file_error_is_permission_error(tmp_path):
    with pytest.raises(PermissionError):
        load_key(tmp_path / "nope.key")


def test_env_key_hex_and_base64(monkeypatch):
    raw = bytes(range(32))
    monkeypatch.setenv("DK_HEX", raw.hex())
    monkeypatch.setenv("DK_B64", __import__("base64").b64encode(raw).decode())
    monkeypatch.setenv("DK_URL", __import__("base64").urlsafe_b64encode(raw + b"\xfb\xff").decode())
    assert load_key(env="DK_HEX").material == raw
    assert load_key(env="DK_B64").material == raw
    assert load_key(env="DK_URL").material == raw + b"\xfb\xff"
    assert load_key(env="DK_HEX").key_id == key_id(raw)
    assert "DK_HEX" in load_key(env="DK_HEX").source


@pytest.mark.parametrize("value,match", [("", "not set or empty"), ("abcd", "decodes to 2 bytes"),
                                         ("not a key!!", "neither hex nor base64")])
def test_env_key_bad(monkeypatch, value, match):
    monkeypatch.setenv("DK_BAD", value)
    with pytest.raises(KeyFileError, match=match):
        load_key(env="DK_BAD")


def test_env_key_unset(monkeypatch):
    monkeypatch.delenv("DK_UNSET", raising=False)
    with pytest.raises(KeyFileError, match="DK_UNSET"):
        load_key(env="DK_UNSET")


def test_no_default_key():
    with pytest.raises(InvalidArgumentError, match="exactly one"):
        load_key()
    with pytest.raises(KeyFileError, match="no default"):
        resolve_key(what="pseudonymize")


def test_resolve_key_forms(tmp_path, monkeypatch):
    made = new_key_file(tmp_path / "k.key")
    monkeypatch.setenv("DK_K", made.material.hex())
    assert resolve_key(made) is made
    assert resolve_key(made.material).key_id == made.key_id
    assert resolve_key(tmp_path / "k.key").key_id == made.key_id
    assert resolve_key(key_file=str(tmp_path / "k.key")).key_id == made.key_id
    assert resolve_key(key_env="DK_K").key_id == made.key_id
    with pytest.raises(KeyFileError, match="exactly one"):
        resolve_key(key_file=tmp_path / "k.key", key_env="DK_K")


def test_key_id_definition_and_no_leak():
    raw = b"\x01" * 32
    id_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"datakiln-hkdf-v1",
                  info=b"datakiln/key-id/v1").derive(raw)
    assert key_id(raw) == hashlib.sha256(id_key).hexdigest()[:16]
    assert key_id(raw) != hashlib.sha256(raw).hexdigest()[:16]
    assert raw.hex() not in repr(Key(raw)) and key_id(raw) in repr(Key(raw))


def test_derive_separates_purpose_namespace_version():
    raw = os.urandom(32)
    base = derive(raw, purpose="pseudonym", namespace="t", version=1)
    assert base == derive(raw, purpose="pseudonym", namespace="t", version=1)  # deterministic
    others = {derive(raw, purpose="pseudonym", namespace="t", version=2),
              derive(raw, purpose="pseudonym", namespace="u", version=1),
              derive(raw, purpose="envelope", namespace="t", version=1),
              derive(os.urandom(32), purpose="pseudonym", namespace="t", version=1)}
    assert base not in others and len(others) == 4
    assert len(derive(raw, purpose="x", length=64)) == 64
    assert Key(raw).derive("pseudonym", "t", 1) == base


def test_derive_matches_rfc5869_construction():
    raw = b"\x02" * 32
    expected = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"datakiln-hkdf-v1",
                    info=b"datakiln/derive/v1\0pseudonym\0people\x003").derive(raw)
    assert derive(raw, purpose="pseudonym", namespace="people", version=3) == expected


@pytest.mark.parametrize("kwargs", [{"purpose": ""}, {"purpose": "p", "version": 0},
                                    {"purpose": "p", "version": True}, {"purpose": "p", "length": 0},
                                    {"purpose": "p", "length": 9000}])
def test_derive_bad_arguments(kwargs):
    with pytest.raises(InvalidArgumentError):
        derive(b"k" * 32, **kwargs)


def test_short_material_refused():
    with pytest.raises(KeyFileError, match="at least 32"):
        derive(b"short", purpose="p")
    with pytest.raises(KeyFileError):
        Key(b"short")
    with pytest.raises(InvalidArgumentError):
        derive("a string key", purpose="p")  # type: ignore[arg-type]


def test_passphrase_scrypt(monkeypatch):
    salt = b"s" * 16
    a = key_from_passphrase("correct horse battery staple", salt, n=2**10)
    assert a.material == key_from_passphrase(b"correct horse battery staple", salt, n=2**10).material
    assert a.material != key_from_passphrase("correct horse battery staplE", salt, n=2**10).material
    assert a.material != key_from_passphrase("correct horse battery staple", b"t" * 16, n=2**10).material
    assert a.material == hashlib.scrypt(b"correct horse battery staple", salt=salt, n=2**10, r=8, p=1,
                                        dklen=32)
    assert keys.SCRYPT_N >= 2**15
    with pytest.raises(KeyFileError, match="empty"):
        key_from_passphrase("", salt)
    with pytest.raises(InvalidArgumentError, match="salt"):
        key_from_passphrase("pw", b"short")
    with pytest.raises(InvalidArgumentError, match="power of two"):
        key_from_passphrase("pw", salt, n=1000)
