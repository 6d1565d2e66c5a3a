"""The streaming AES-256-GCM envelope (datakiln.privacy.crypto): round trips, tampering,
truncation, reordering, wrong keys, rekeying, and no plaintext left behind on failure."""

from __future__ import annotations

import os
import stat
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from datakiln.errors import DecryptionError, InvalidArgumentError, KeyFileError, OutputExistsError
from datakiln.privacy.crypto import (
    HEADER_SIZE,
    TAG,
    EncryptingWriter,
    decrypt_bytes,
    decrypt_file,
    encrypt_file,
    is_encrypted,
    read_header,
    rekey_file,
)
from datakiln.privacy.keys import Key, new_key_file

CHUNK = 1024  # small chunks so a few KB span many


@pytest.fixture
def keys(tmp_path):
    return new_key_file(tmp_path / "a.key"), new_key_file(tmp_path / "b.key")


@pytest.fixture
def plain(tmp_path):
    path = tmp_path / "plain.bin"
    path.write_bytes(os.urandom(5 * CHUNK + 321))  # 6 chunks, the last partial
    return path


def _encrypted(tmp_path, plain, key, chunk=CHUNK):
    out = tmp_path / "data.dke"
    encrypt_file(plain, out, key, chunk_size=chunk)
    return out


def _outputs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _chunk_offset(index: int, chunk=CHUNK) -> int:
    return HEADER_SIZE + index * (chunk + TAG)


def test_round_trip_adult_csv_and_header(tmp_path, adult_sample_path, keys):
    out = tmp_path / "adult.csv.dke"
    header = encrypt_file(adult_sample_path, out, key_file=tmp_path / "a.key")
    assert header.key_id == keys[0].key_id and header.chunk_size == 1 << 20 and not header.passphrase
    assert is_encrypted(out) and not is_encrypted(adult_sample_path)
    raw = out.read_bytes()
    assert b"Never-married" not in raw and len(raw) == HEADER_SIZE + adult_sample_path.stat().st_size + TAG
    decrypt_file(out, tmp_path / "back.csv", key_file=tmp_path / "a.key")
    assert (tmp_path / "back.csv").read_bytes() == adult_sample_path.read_bytes()
    assert stat.S_IMODE((tmp_path / "back.csv").stat().st_mode) == 0o600
    assert decrypt_bytes(out, keys[0]) == adult_sample_path.read_bytes()


def test_round_trip_full_adult(tmp_path, keys):
    from tests.conftest import shared_dataset

    source = shared_dataset("adult/adult-train.csv")
    out = tmp_path / "adult.dke"
    encrypt_file(source, out, keys[0], chunk_size=64 * 1024)
    decrypt_file(out, tmp_path / "back.csv", keys[0])
    assert (tmp_path / "back.csv").read_bytes() == source.read_bytes()


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK])
def test_round_trip_sizes(tmp_path, keys, size):
    source = tmp_path / "p"
    source.write_bytes(os.urandom(size))
    out = _encrypted(tmp_path, source, keys[0])
    chunks = max(1, -(-size // CHUNK))
    assert out.stat().st_size == HEADER_SIZE + size + TAG * chunks
    assert decrypt_bytes(out, keys[0]) == source.read_bytes()


@settings(max_examples=25, deadline=None)
@given(pieces=st.lists(st.binary(max_size=3000), max_size=6))
def test_streaming_writer_any_write_pattern(tmp_path_factory, pieces):
    folder = tmp_path_factory.mktemp("w")
    key = Key(b"k" * 32)
    path = folder / "s.dke"
    with open(path, "wb") as sink:
        writer = EncryptingWriter(sink, key, chunk_size=CHUNK)
        for piece in pieces:
            writer.write(piece)
        writer.close()
    assert decrypt_bytes(path, key) == b"".join(pieces)


def _assert_fails(tmp_path, source, key, match):
    before = _outputs(tmp_path)
    with pytest.raises(DecryptionError, match=match) as info:
        decrypt_file(source, tmp_path / "out.bin", key)
    assert str(source) in str(info.value)
    assert _outputs(tmp_path) == before  # no plaintext, no temporary left
    return info.value


@pytest.mark.parametrize("where,match", [
    (lambda n: 10, "header failed authentication|out of range"),            # chunk size field
    (lambda n: 15, "header failed authentication"),                          # nonce prefix
    (lambda n: 40, "header failed authentication"),                          # salt / wrap section
    (lambda n: HEADER_SIZE - 3, "header failed authentication"),             # wrapped key tag
    (lambda n: _chunk_offset(0) + 5, "chunk 0 .*failed authentication"),    # first chunk body
    (lambda n: _chunk_offset(2) + 500, "chunk 2 .*failed authentication"),  # a middle chunk
    (lambda n: _chunk_offset(3) - 1, "chunk 2 .*failed authentication"),    # chunk 2's tag
    (lambda n: n - 1, "chunk 5 .*last chunk.*failed authentication"),       # the final tag
])
def test_one_flipped_byte_detected(tmp_path, plain, keys, where, match):
    encrypted = _encrypted(tmp_path, plain, keys[0])
    data = bytearray(encrypted.read_bytes())
    data[where(len(data))] ^= 0x01
    encrypted.write_bytes(bytes(data))
    _assert_fails(tmp_path, encrypted, keys[0], match)


def test_flipped_key_id_says_wrong_key(tmp_path, plain, keys):
    encrypted = _encrypted(tmp_path, plain, keys[0])
    data = bytearray(encrypted.read_bytes())
    data[21] ^= 0x80  # inside the KEK id
    encrypted.write_bytes(bytes(data))
    _assert_fails(tmp_path, encrypted, keys[0], "wrong key")


def test_every_single_byte_flip_detected_small_file(tmp_path, keys):
    source = tmp_path / "p"
    source.write_bytes(os.urandom(CHUNK + 10))
    encrypted = _encrypted(tmp_path, source, keys[0])
    good = encrypted.read_bytes()
    for position in range(0, len(good), 7):
        data = bytearray(good)
        data[position] ^= 0x40
        encrypted.write_bytes(bytes(data))
        with pytest.raises(DecryptionError):
            decrypt_bytes(encrypted, keys[0])


def test_magic_and_version(tmp_path, plain, keys):
    encrypted = _encrypted(tmp_path, plain, keys[0])
    data = bytearray(encrypted.read_bytes())
    data[0] ^= 1
    encrypted.write_bytes(bytes(data))
    _assert_fails(tmp_path, encrypted, keys[0], "not a datakiln encrypted file")
    data[0] ^= 1
    data[8] = 9
    encrypted.write_bytes(bytes(data))
    _assert_fails(tmp_path, encrypted, keys[0], "version 9")
    _assert_fails(tmp_path, plain, keys[0], "not a datakiln encrypted file")


@pytest.mark.parametrize("cut,match", [
    (lambda n: _chunk_offset(5), "truncated: chunk 4 is the last one present but was not sealed"),
    (lambda n: _chunk_offset(1), "truncated: chunk 0 is the last"),
    (lambda n: _chunk_offset(3) + 100, "chunk 3 .*last chunk.*failed authentication"),
    (lambda n: n - 1, "chunk 5 .*failed authentication"),
    (lambda n: _chunk_offset(2) + 7, "truncated: chunk 2 has 7 bytes"),
    (lambda n: HEADER_SIZE - 10, "truncated inside its header"),
    (lambda n: HEADER_SIZE, "truncated: chunk 0 has 0 bytes"),
])
def test_truncation_detected(tmp_path, plain, keys, cut, match):
    encrypted = _encrypted(tmp_path, plain, keys[0])
    data = encrypted.read_bytes()
    encrypted.write_bytes(data[:cut(len(data))])
    _assert_fails(tmp_path, encrypted, keys[0], match)


def _split(data: bytes) -> tuple[bytes, list[bytes]]:
    body = data[HEADER_SIZE:]
    size = CHUNK + TAG
    return data[:HEADER_SIZE], [body[i:i + size] for i in range(0, len(body), size)]


@pytest.mark.parametrize("order,match", [
    ([0, 2, 1, 3, 4, 5], "chunk 1 .*failed authentication"),   # swapped
    ([0, 1, 1, 2, 3, 4, 5], "chunk 2 .*failed authentication"),  # duplicated
    ([0, 1, 3, 4, 5], "chunk 2 .*failed authentication"),      # dropped from the middle
    ([0, 1, 2, 3, 4, 5, 5], "chunk 5 .*failed authentication"),  # final duplicated at the end
    ([1, 0, 2, 3, 4, 5], "chunk 0 .*failed authentication"),
])
def test_reordered_duplicated_chunks_detected(tmp_path, plain, keys, order, match):
    encrypted = _encrypted(tmp_path, plain, keys[0])
    header, chunks = _split(encrypted.read_bytes())
    encrypted.write_bytes(header + b"".join(chunks[i] for i in order))
    _assert_fails(tmp_path, encrypted, keys[0], match)


def test_chunks_from_another_file_rejected(tmp_path, plain, keys):
    one = _encrypted(tmp_path, plain, keys[0])
    two = tmp_path / "two.dke"
    encrypt_file(plain, two, keys[0], chunk_size=CHUNK)  # same key, same plaintext
    header, _ = _split(one.read_bytes())
    _, chunks = _split(two.read_bytes())
    one.write_bytes(header + b"".join(chunks))
    _assert_fails(tmp_path, one, keys[0], "chunk 0 .*failed authentication")


def test_appended_bytes_detected(tmp_path, plain, keys):
    encrypted = _encrypted(tmp_path, plain, keys[0])
    with open(encrypted, "ab") as stream:
        stream.write(b"x" * 40)
    _assert_fails(tmp_path, encrypted, keys[0], "chunk 5|data follows")


def test_wrong_key_and_no_output(tmp_path, plain, keys):
    encrypted = _encrypted(tmp_path, plain, keys[0])
    error = _assert_fails(tmp_path, encrypted, keys[1], "wrong key")
    assert keys[0].key_id in str(error) and keys[1].key_id in str(error)
    assert keys[1].material.hex() not in str(error)


def test_wrong_key_same_id_fails_on_wrap(tmp_path, plain, keys):
    encrypted = _encrypted(tmp_path, plain, keys[0])
    impostor = Key(keys[1].material, key_id=keys[0].key_id)  # forged id: the unwrap still fails
    _assert_fails(tmp_path, encrypted, impostor, "header failed authentication")


def test_fresh_data_key_and_nonce_prefix_per_file(tmp_path, plain, keys):
    """Two encryptions of one plaintext under one key share neither the nonce prefix nor any
    ciphertext (a fresh data key and prefix per file), and the header records the chunk size."""
    files = []
    for i in range(3):
        encrypt_file(plain, tmp_path / f"n{i}.dke", keys[0], chunk_size=CHUNK)
        files.append((tmp_path / f"n{i}.dke").read_bytes())
    assert all(f[:8] == b"DKILNENC" and struct.unpack(">I", f[9:13])[0] == CHUNK for f in files)
    assert len({f[13:20] for f in files}) == 3
    assert len({f[HEADER_SIZE:HEADER_SIZE + 64] for f in files}) == 3


def test_chunk_layout_is_aes_gcm_with_index_and_final_flag(tmp_path, keys):
    """Chunk i is AES-GCM under the data key with nonce prefix|i|final and AAD fixed|i|final:
    checked by unwrapping the data key by hand and opening the chunks with cryptography."""
    from datakiln.privacy.crypto import _WRAP_AAD
    from datakiln.privacy.keys import derive

    source = tmp_path / "p"
    source.write_bytes(b"a" * CHUNK + b"tail")
    data = _encrypted(tmp_path, source, keys[0]).read_bytes()
    fixed, wrap = data[:20], data[20:HEADER_SIZE]
    aad = fixed + wrap[:_WRAP_AAD.size]
    data_key = AESGCM(derive(keys[0], purpose="envelope-wrap")).decrypt(wrap[-60:-48], wrap[-48:], aad)
    _, chunks = _split(data)
    first = AESGCM(data_key).decrypt(fixed[-7:] + struct.pack(">IB", 0, 0), chunks[0],
                                     fixed + struct.pack(">QB", 0, 0))
    last = AESGCM(data_key).decrypt(fixed[-7:] + struct.pack(">IB", 1, 1), chunks[1],
                                    fixed + struct.pack(">QB", 1, 1))
    assert first + last == source.read_bytes()


def test_decrypt_never_replaces_without_overwrite(tmp_path, plain, keys):
    encrypted = _encrypted(tmp_path, plain, keys[0])
    target = tmp_path / "exists.txt"
    target.write_text("mine")
    with pytest.raises(OutputExistsError):
        decrypt_file(encrypted, target, keys[0])
    assert target.read_text() == "mine"
    decrypt_file(encrypted, target, keys[0], overwrite=True)
    assert target.read_bytes() == plain.read_bytes()
    with pytest.raises(OutputExistsError):
        encrypt_file(plain, plain, keys[0])
    assert is_encrypted(encrypted)
    encrypt_file(plain, encrypted, keys[1])  # its own earlier output is replaced
    assert read_header(encrypted).key_id == keys[1].key_id


def test_rekey_then_new_key_works_old_fails(tmp_path, plain, keys):
    encrypted = _encrypted(tmp_path, plain, keys[0])
    before = encrypted.read_bytes()
    header = rekey_file(encrypted, old_key=keys[0], new_key=tmp_path / "b.key")
    after = encrypted.read_bytes()
    assert header.key_id == keys[1].key_id
    assert after[HEADER_SIZE:] == before[HEADER_SIZE:]  # chunks untouched: nothing re-encrypted
    assert after[:20] == before[:20]
    assert decrypt_bytes(encrypted, keys[1]) == plain.read_bytes()
    _assert_fails(tmp_path, encrypted, keys[0], "wrong key")
    with pytest.raises(DecryptionError, match="wrong key"):
        rekey_file(encrypted, old_key=keys[0], new_key=keys[1])
    assert encrypted.read_bytes() == after


def test_passphrase_envelope_and_rekey_to_key(tmp_path, plain, keys, monkeypatch):
    import datakiln.privacy.keys as keymod

    monkeypatch.setattr(keymod, "SCRYPT_N", 2**10)  # fast in tests; the header records n
    out = tmp_path / "p.dke"
    header = encrypt_file(plain, out, passphrase="correct horse battery staple", chunk_size=CHUNK)
    assert header.passphrase and header.scrypt == (10, 8, 1)
    assert decrypt_bytes(out, passphrase="correct horse battery staple") == plain.read_bytes()
    with pytest.raises(DecryptionError, match="wrong passphrase"):
        decrypt_bytes(out, passphrase="Correct horse battery staple")
    with pytest.raises(DecryptionError, match="encrypted with a passphrase"):
        decrypt_bytes(out, keys[0])
    rekey_file(out, old_passphrase="correct horse battery staple", new_key=keys[0])
    assert decrypt_bytes(out, keys[0]) == plain.read_bytes()
    with pytest.raises(DecryptionError, match="encrypted with a key"):
        decrypt_bytes(out, passphrase="correct horse battery staple")


def test_key_arguments(tmp_path, plain, keys):
    with pytest.raises(KeyFileError, match="no default key"):
        encrypt_file(plain, tmp_path / "x.dke")
    with pytest.raises(InvalidArgumentError, match="not both"):
        encrypt_file(plain, tmp_path / "x.dke", keys[0], passphrase="pw")
    with pytest.raises(InvalidArgumentError, match="chunk_size"):
        encrypt_file(plain, tmp_path / "x.dke", keys[0], chunk_size=10)
    os.chmod(tmp_path / "a.key", 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        encrypt_file(plain, tmp_path / "x.dke", key_file=tmp_path / "a.key")
    assert not (tmp_path / "x.dke").exists()


def test_progress_counts_plaintext(tmp_path, plain, keys):
    seen: list[int] = []
    encrypted = tmp_path / "x.dke"
    encrypt_file(plain, encrypted, keys[0], chunk_size=CHUNK, on_progress=seen.append)
    assert sum(seen) == plain.stat().st_size
    back: list[int] = []
    decrypt_file(encrypted, tmp_path / "y", keys[0], on_progress=back.append)
    assert sum(back) == plain.stat().st_size and len(back) == 6


def test_model_file_round_trip_exact(tmp_path, adult_sample, keys):
    """A fitted model file survives encrypt → decrypt byte for byte and samples the same rows."""
    from datakiln.synth import GaussianCopula, load

    model = GaussianCopula(seed=0).fit(adult_sample)
    path = tmp_path / "adult.kiln"
    model.save(path)
    encrypt_file(path, tmp_path / "adult.kiln.dke", keys[0], chunk_size=CHUNK)
    assert b"model.json" not in (tmp_path / "adult.kiln.dke").read_bytes()
    decrypt_file(tmp_path / "adult.kiln.dke", tmp_path / "back.kiln", keys[0])
    assert (tmp_path / "back.kiln").read_bytes() == path.read_bytes()
    assert load(tmp_path / "back.kiln").sample(200, seed=3).equals(model.sample(200, seed=3))


def test_model_save_encrypted_and_load(tmp_path, adult_sample, keys):
    """Synthesizer.save(encryption=) seals the model file as it is written (no plaintext model
    on disk); load(decryption=) opens it; a wrong key or no key fails clearly."""
    from datakiln.errors import ModelFormatError
    from datakiln.privacy import DecryptionConfig, EncryptionConfig
    from datakiln.synth import GaussianCopula, load

    model = GaussianCopula(seed=0).fit(adult_sample)
    path = tmp_path / "adult.kiln"
    model.save(path, encryption=EncryptionConfig(key=keys[0], chunk_size=CHUNK))
    assert is_encrypted(path) and read_header(path).key_id == keys[0].key_id
    back = load(path, decryption=DecryptionConfig(key=keys[0]))
    assert back.sample(300, seed=1).equals(model.sample(300, seed=1))
    with pytest.raises(DecryptionError, match="wrong key"):
        load(path, decryption=DecryptionConfig(key=keys[1]))
    with pytest.raises(ModelFormatError):
        load(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.key", "adult.kiln", "b.key"]


@settings(max_examples=60, deadline=None)
@given(body=st.binary(max_size=400), keep_magic=st.booleans())
def test_arbitrary_bytes_only_ever_raise_decryption_error(tmp_path_factory, body, keep_magic):
    """Whatever bytes a file holds (with or without a valid-looking start), opening it is a
    DecryptionError, never another exception from deep inside."""
    path = tmp_path_factory.mktemp("fuzz") / "f.dke"
    path.write_bytes((b"DKILNENC\x01" if keep_magic else b"") + body)
    with pytest.raises(DecryptionError):
        decrypt_bytes(path, Key(b"k" * 32))
