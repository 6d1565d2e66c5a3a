"""kiln key new / key id / encrypt / decrypt / rekey through the CLI boundary."""

from __future__ import annotations

import os
import stat

import pytest
from typer.testing import CliRunner

from datakiln.cli.app import app
from datakiln.privacy.crypto import HEADER_SIZE, read_header
from datakiln.privacy.keys import load_key

runner = CliRunner()


def _kiln(*args: object, env: dict[str, str] | None = None):
    return runner.invoke(app, [str(a) for a in args], env=env)


@pytest.fixture
def keys(tmp_path):
    for name in ("a.key", "b.key"):
        result = _kiln("key", "new", tmp_path / name)
        assert result.exit_code == 0, result.output
    return tmp_path / "a.key", tmp_path / "b.key"


def test_key_new_writes_private_key_and_prints_id(tmp_path, keys):
    assert stat.S_IMODE(keys[0].stat().st_mode) == 0o600 and keys[0].stat().st_size == 32
    result = _kiln("key", "id", keys[0])
    assert result.exit_code == 0 and result.output.strip() == load_key(keys[0]).key_id
    again = _kiln("key", "new", keys[0])
    assert again.exit_code == 2 and "already exists" in again.output
    assert load_key(keys[0]).key_id == result.output.strip()  # not replaced


def test_encrypt_decrypt_rekey_round_trip(tmp_path, keys, adult_sample_path):
    sealed, back = tmp_path / "adult.dke", tmp_path / "adult.csv"
    result = _kiln("encrypt", adult_sample_path, "-o", sealed, "--key-file", keys[0], "--chunk-size", "4KiB")
    assert result.exit_code == 0, result.output
    assert f"key id {load_key(keys[0]).key_id}" in result.output
    assert read_header(sealed).chunk_size == 4096
    result = _kiln("decrypt", sealed, "-o", back, "-k", keys[0])
    assert result.exit_code == 0, result.output
    assert back.read_bytes() == adult_sample_path.read_bytes()
    chunks_before = sealed.read_bytes()[HEADER_SIZE:]
    result = _kiln("rekey", sealed, "--old-key-file", keys[0], "--new-key-file", keys[1])
    assert result.exit_code == 0, result.output
    assert sealed.read_bytes()[HEADER_SIZE:] == chunks_before
    old = _kiln("decrypt", sealed, "-o", tmp_path / "old.csv", "-k", keys[0])
    assert old.exit_code == 2 and "wrong key" in old.output and not (tmp_path / "old.csv").exists()
    new = _kiln("decrypt", sealed, "-o", tmp_path / "new.csv", "-k", keys[1])
    assert new.exit_code == 0 and (tmp_path / "new.csv").read_bytes() == adult_sample_path.read_bytes()


def test_tampered_file_exit_2_and_no_output(tmp_path, keys, adult_sample_path):
    sealed = tmp_path / "adult.dke"
    made = _kiln("encrypt", adult_sample_path, "-o", sealed, "-k", keys[0], "--chunk-size", "4KiB")
    assert made.exit_code == 0
    data = bytearray(sealed.read_bytes())
    data[HEADER_SIZE + 3 * (4096 + 16) + 100] ^= 0x10
    sealed.write_bytes(bytes(data))
    result = _kiln("decrypt", sealed, "-o", tmp_path / "out.csv", "-k", keys[0])
    assert result.exit_code == 2
    assert "DecryptionError" in result.output and "chunk 3" in result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.key", "adult.dke", "b.key"]


def test_key_file_0644_refused(tmp_path, keys, adult_sample_path):
    os.chmod(keys[0], 0o644)
    result = _kiln("encrypt", adult_sample_path, "-o", tmp_path / "x.dke", "-k", keys[0])
    assert result.exit_code == 2 and "chmod 600" in result.output
    assert not (tmp_path / "x.dke").exists()


def test_no_key_is_an_error(tmp_path, adult_sample_path):
    result = _kiln("encrypt", adult_sample_path, "-o", tmp_path / "x.dke")
    assert result.exit_code == 2 and "no default key" in result.output


def test_env_key_and_passphrase_env(tmp_path, keys, adult_sample_path, monkeypatch):
    import datakiln.privacy.keys as keymod

    monkeypatch.setattr(keymod, "SCRYPT_N", 2**10)
    env = {"DK_KEY": keys[0].read_bytes().hex(), "DK_PASS": "a long passphrase for tests"}
    sealed = tmp_path / "env.dke"
    assert _kiln("encrypt", adult_sample_path, "-o", sealed, "--key-env", "DK_KEY", env=env).exit_code == 0
    assert _kiln("decrypt", sealed, "-o", tmp_path / "a.csv", "-k", keys[0]).exit_code == 0
    phrase = tmp_path / "pass.dke"
    result = _kiln("encrypt", adult_sample_path, "-o", phrase, "--passphrase-env", "DK_PASS", env=env)
    assert result.exit_code == 0, result.output
    assert read_header(phrase).passphrase
    wrong = _kiln("decrypt", phrase, "-o", tmp_path / "w.csv", "--passphrase-env", "DK_KEY", env=env)
    assert wrong.exit_code == 2 and "wrong passphrase" in wrong.output
    right = _kiln("decrypt", phrase, "-o", tmp_path / "p.csv", "--passphrase-env", "DK_PASS", env=env)
    assert right.exit_code == 0 and (tmp_path / "p.csv").read_bytes() == adult_sample_path.read_bytes()
    rekey = _kiln("rekey", phrase, "--old-passphrase-env", "DK_PASS", "--new-key-file", keys[1], env=env)
    assert rekey.exit_code == 0, rekey.output
    assert read_header(phrase).key_id == load_key(keys[1]).key_id


def test_decrypt_refuses_to_replace_a_file(tmp_path, keys, adult_sample_path):
    sealed, target = tmp_path / "x.dke", tmp_path / "keep.txt"
    target.write_text("keep me")
    assert _kiln("encrypt", adult_sample_path, "-o", sealed, "-k", keys[0]).exit_code == 0
    result = _kiln("decrypt", sealed, "-o", target, "-k", keys[0])
    assert result.exit_code == 2 and target.read_text() == "keep me"
    assert _kiln("decrypt", sealed, "-o", target, "-k", keys[0], "--overwrite").exit_code == 0
    assert target.read_bytes() == adult_sample_path.read_bytes()
