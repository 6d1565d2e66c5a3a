"""Parquet modular encryption (datakiln.privacy.parquet_crypto), Dataset.write(encryption=)
and datakiln.read(decryption=), and the envelope for CSV / JSON Lines outputs."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pyarrow.parquet.encryption as pe
import pytest
from tests.conftest import ADULT_COLUMNS, every_kind_table, shared_dataset

import datakiln
from datakiln.errors import DecryptionError, InvalidArgumentError, KeyFileError, SchemaError
from datakiln.privacy import DecryptionConfig, EncryptionConfig, new_key_file
from datakiln.privacy.crypto import decrypt_bytes, is_encrypted
from datakiln.privacy.parquet_crypto import KeyFileKmsClient


@pytest.fixture
def key_paths(tmp_path):
    new_key_file(tmp_path / "a.key")
    new_key_file(tmp_path / "b.key")
    return tmp_path / "a.key", tmp_path / "b.key"


def _strings_in(path) -> bytes:
    return path.read_bytes()


def test_round_trip_adult_sample_exact(tmp_path, adult_sample, key_paths):
    out = tmp_path / "adult.parquet"
    datakiln.from_arrow(adult_sample).write(out, encryption=EncryptionConfig(key_file=key_paths[0]))
    assert out.read_bytes()[-4:] == b"PARE"  # Parquet's encrypted-footer magic
    assert b"Never-married" not in _strings_in(out) and b"Bachelors" not in _strings_in(out)
    back = datakiln.read(out, decryption=DecryptionConfig(key_file=key_paths[0])).to_arrow()
    assert back.equals(adult_sample)


def test_round_trip_full_adult_exact(tmp_path, key_paths):
    source = shared_dataset("adult/adult-train.csv")
    table = datakiln.read(source, names=ADULT_COLUMNS).to_arrow()
    out = tmp_path / "adult.parquet"
    datakiln.from_arrow(table).write(out, encryption=EncryptionConfig(key_file=key_paths[0]))
    back = datakiln.read(out, decryption=DecryptionConfig(key_file=key_paths[0])).to_arrow()
    assert back.num_rows == 32561 and back.equals(table)


def test_every_kind_round_trip_and_shards(tmp_path, key_paths):
    table = every_kind_table(400)
    out = tmp_path / "shards"
    result = datakiln.from_arrow(table).write(out, rows_per_file=150,
                                              encryption=EncryptionConfig(key_file=key_paths[0]))
    assert len(result.files) == 3
    back = datakiln.read(out, decryption=DecryptionConfig(key_file=key_paths[0])).to_arrow()
    assert back.equals(table)


def test_plain_pyarrow_reads_with_same_key_configuration(tmp_path, adult_sample, key_paths):
    """Standard Parquet modular encryption: pyarrow's own reader, given the same KMS client and
    key, decrypts the file, and its own writer's files are read by datakiln."""
    out = tmp_path / "adult.parquet"
    datakiln.from_arrow(adult_sample).write(out, encryption=EncryptionConfig(key_file=key_paths[0]))
    key = datakiln.privacy.load_key(key_paths[0])
    factory = pe.CryptoFactory(lambda _config: KeyFileKmsClient(key))
    properties = factory.file_decryption_properties(pe.KmsConnectionConfig(), pe.DecryptionConfiguration())
    plain = pq.read_table(out, decryption_properties=properties)
    assert plain.drop_columns([]).cast(adult_sample.schema).equals(adult_sample)
    assert pq.ParquetFile(out, decryption_properties=properties).metadata.num_rows == 600
    # and the other way round: pyarrow writes with the same configuration, datakiln reads
    config = pe.EncryptionConfiguration(footer_key="footer", column_keys={"pii": ["age", "sex"]},
                                        data_key_length_bits=256)
    theirs = tmp_path / "theirs.parquet"
    pq.write_table(adult_sample, theirs, encryption_properties=factory.file_encryption_properties(
        pe.KmsConnectionConfig(), config))
    assert datakiln.read(theirs, decryption=DecryptionConfig(key=key)).to_arrow().equals(adult_sample)
    # DecryptionConfig hands out pyarrow properties directly too
    assert pq.read_table(out, decryption_properties=DecryptionConfig(
        key_file=key_paths[0]).parquet_properties()).num_rows == 600


def test_without_key_and_wrong_key(tmp_path, adult_sample, key_paths):
    out = tmp_path / "adult.parquet"
    datakiln.from_arrow(adult_sample).write(out, encryption=EncryptionConfig(key_file=key_paths[0]))
    with pytest.raises(DecryptionError, match="encrypted Parquet file: pass decryption="):
        datakiln.read(out).to_arrow()
    with pytest.raises(DecryptionError, match=r"wrong key.*key id") as info:
        datakiln.read(out, decryption=DecryptionConfig(key_file=key_paths[1])).to_arrow()
    assert str(out) in str(info.value)
    with pytest.raises(Exception):  # noqa: B017 - pyarrow alone refuses too
        pq.read_table(out)


def test_plaintext_columns_and_footer(tmp_path, adult_sample, key_paths):
    out = tmp_path / "adult.parquet"
    config = EncryptionConfig(key_file=key_paths[0], plaintext_columns=["age", "income"],
                              plaintext_footer=True)
    datakiln.from_arrow(adult_sample).write(out, encryption=config)
    assert out.read_bytes()[-4:] == b"PAR1"  # plaintext (signed) footer
    # without the key: the schema and the plaintext columns are readable, nothing else
    schema = pq.read_schema(out)
    assert schema.names == adult_sample.column_names
    no_key = datakiln.read(out)
    assert no_key.select(["age", "income"]).to_arrow().equals(adult_sample.select(["age", "income"]))
    assert pq.read_table(out, columns=["age"])["age"].equals(adult_sample["age"])
    with pytest.raises(DecryptionError):
        no_key.select(["education"]).to_arrow()
    with pytest.raises(DecryptionError, match="wrong key"):
        datakiln.read(out, decryption=DecryptionConfig(key_file=key_paths[1])).select(
            ["education"]).to_arrow()
    full = datakiln.read(out, decryption=DecryptionConfig(key_file=key_paths[0])).to_arrow()
    assert full.equals(adult_sample)


def test_column_keys_separate_master_keys(tmp_path, adult_sample, key_paths):
    out = tmp_path / "adult.parquet"
    config = EncryptionConfig(key_file=key_paths[0], column_keys={"pii": ["sex", "race"],
                                                                  "rest": ["education"]},
                              plaintext_footer=True)
    datakiln.from_arrow(adult_sample).write(out, encryption=config)
    encrypted = {name for name in pq.read_schema(out).names if not _readable(out, name)}
    assert encrypted == {"sex", "race", "education"}
    back = datakiln.read(out, decryption=DecryptionConfig(key_file=key_paths[0])).to_arrow()
    assert back.equals(adult_sample)


def _readable(path, column) -> bool:
    try:
        pq.read_table(path, columns=[column])
        return True
    except OSError:
        return False


def test_kms_client_wraps_per_master_key_and_checks_id(key_paths):
    key = datakiln.privacy.load_key(key_paths[0])
    client = KeyFileKmsClient(key)
    data_key = os.urandom(32)
    wrapped = client.wrap_key(data_key, "footer")
    assert wrapped.startswith(f"dk1:{key.key_id}:") and data_key.hex() not in wrapped
    assert client.unwrap_key(wrapped, "footer") == data_key
    assert client.wrap_key(data_key, "footer") != wrapped  # fresh nonce
    with pytest.raises(DecryptionError, match="tampered"):
        client.unwrap_key(wrapped, "columns")  # another master key cannot open it
    with pytest.raises(DecryptionError, match="wrong key"):
        KeyFileKmsClient(datakiln.privacy.load_key(key_paths[1])).unwrap_key(wrapped, "footer")
    with pytest.raises(DecryptionError, match="not wrapped by datakiln"):
        client.unwrap_key("something-else", "footer")


def test_config_errors(tmp_path, adult_sample, key_paths):
    ds = datakiln.from_arrow(adult_sample)
    with pytest.raises(SchemaError, match="unknown columns"):
        ds.write(tmp_path / "x.parquet", encryption=EncryptionConfig(key_file=key_paths[0],
                                                                     plaintext_columns=["nope"]))
    with pytest.raises(SchemaError, match="more than one key"):
        ds.write(tmp_path / "x.parquet", encryption=EncryptionConfig(
            key_file=key_paths[0], column_keys={"a": ["age"], "b": ["age"]}))
    with pytest.raises(InvalidArgumentError, match="nothing would be encrypted"):
        ds.write(tmp_path / "x.parquet", encryption=EncryptionConfig(
            key_file=key_paths[0], plaintext_columns=adult_sample.column_names))
    with pytest.raises(KeyFileError, match="no default key"):
        ds.write(tmp_path / "x.parquet", encryption=EncryptionConfig())
    os.chmod(key_paths[0], 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        ds.write(tmp_path / "x.parquet", encryption=EncryptionConfig(key_file=key_paths[0]))
    assert not (tmp_path / "x.parquet").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".x.parquet")]


@pytest.mark.parametrize("ending", [".csv", ".jsonl"])
def test_csv_and_jsonl_outputs_go_through_the_envelope(tmp_path, adult_sample, key_paths, ending):
    ds = datakiln.from_arrow(adult_sample)
    sealed, plain = tmp_path / f"sealed{ending}", tmp_path / f"plain{ending}"
    ds.write(sealed, encryption=EncryptionConfig(key_file=key_paths[0], chunk_size=4096))
    ds.write(plain)
    assert is_encrypted(sealed) and b"Bachelors" not in sealed.read_bytes()
    assert decrypt_bytes(sealed, key_file=key_paths[0]) == plain.read_bytes()
    with pytest.raises(DecryptionError, match="wrong key"):
        decrypt_bytes(sealed, key_file=key_paths[1])


def test_env_key_for_parquet(tmp_path, adult_sample, key_paths, monkeypatch):
    monkeypatch.setenv("DK_TEST_KEY", key_paths[0].read_bytes().hex())
    out = tmp_path / "adult.parquet"
    datakiln.from_arrow(adult_sample).write(out, encryption=EncryptionConfig(key_env="DK_TEST_KEY"))
    back = datakiln.read(out, decryption=DecryptionConfig(key_file=key_paths[0])).to_arrow()
    assert back.equals(adult_sample)
    assert isinstance(back, pa.Table)
