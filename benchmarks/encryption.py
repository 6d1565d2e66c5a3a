"""Envelope encryption throughput: datakiln's encrypt_file / decrypt_file against a bare
``cryptography`` AESGCM loop over the same 1 MiB chunks, in one run.

``openssl enc`` has no GCM mode, so the peer is the least any AES-256-GCM file tool must do:
read a chunk, seal it with ``AESGCM.encrypt`` (one nonce per chunk), write it, fsync at the
end. datakiln adds the key file, header, key wrapping, per-chunk AAD, the atomic temporary
file and the verification order (nothing renamed before the final tag). Generates a random
file (default 200 MB) in a temporary folder; ``--repeats`` interleaved runs, medians.

    python benchmarks/encryption.py [--mb 200] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from datakiln.privacy import decrypt_file, encrypt_file, new_key_file

CHUNK = 1 << 20


def bare_encrypt(source: Path, target: Path, key: bytes) -> None:
    aead, prefix = AESGCM(key), secrets.token_bytes(8)
    with open(source, "rb") as src, open(target, "wb") as dst:
        index = 0
        while block := src.read(CHUNK):
            dst.write(aead.encrypt(prefix + index.to_bytes(4, "big"), block, None))
            index += 1
        dst.flush()
        os.fsync(dst.fileno())
    target.with_suffix(".prefix").write_bytes(prefix)


def bare_decrypt(source: Path, target: Path, key: bytes) -> None:
    aead, prefix = AESGCM(key), source.with_suffix(".prefix").read_bytes()
    with open(source, "rb") as src, open(target, "wb") as dst:
        index = 0
        while block := src.read(CHUNK + 16):
            dst.write(aead.decrypt(prefix + index.to_bytes(4, "big"), block, None))
            index += 1
        dst.flush()
        os.fsync(dst.fileno())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="kiln-bench-crypto-"))
    plain = folder / "plain.bin"
    with open(plain, "wb") as stream:
        for _ in range(args.mb):
            stream.write(os.urandom(1 << 20))
    size_mb = plain.stat().st_size / 1e6
    key = new_key_file(folder / "bench.key")
    import datakiln.io.write  # noqa: F401 - imported once up front, not inside the first timed run
    contestants = {
        "datakiln encrypt_file": lambda i: encrypt_file(plain, folder / f"dk{i}.dke", key),
        "bare AESGCM encrypt loop": lambda i: bare_encrypt(plain, folder / f"bare{i}.enc", key.material),
        "datakiln decrypt_file": lambda i: decrypt_file(folder / f"dk{i}.dke", folder / f"dk{i}.out", key),
        "bare AESGCM decrypt loop": lambda i: bare_decrypt(folder / f"bare{i}.enc", folder / f"bare{i}.out",
                                                           key.material),
    }
    runs: dict[str, list[float]] = {name: [] for name in contestants}
    for repeat in range(args.repeats):
        for name, run in contestants.items():
            os.sync()  # no dirty pages left by the previous contestant for this one's fsync to pay
            started = time.perf_counter()
            run(repeat)
            runs[name].append(time.perf_counter() - started)
        for leftover in folder.glob(f"*{repeat}.*"):  # keep the disk use bounded
            leftover.unlink()
    speeds = {name: size_mb / statistics.median(times) for name, times in runs.items()}
    print(f"{size_mb:,.0f} MB random file, {CHUNK // 1024} KiB chunks, median of {args.repeats} runs "
          f"(each includes read, seal/open, write, fsync)\n")
    print(f"| {'contestant':26} | median s | MB/s   |")
    print(f"|{'-' * 28}|----------|--------|")
    for name, times in runs.items():
        print(f"| {name:26} | {statistics.median(times):8.2f} | {speeds[name]:6.0f} |")
    enc = speeds["datakiln encrypt_file"] / speeds["bare AESGCM encrypt loop"]
    dec = speeds["datakiln decrypt_file"] / speeds["bare AESGCM decrypt loop"]
    for leftover in folder.iterdir():
        leftover.unlink()
    folder.rmdir()
    print(f"\ndatakiln vs bare cryptography AESGCM loop: encrypt {enc:.2f}x, decrypt {dec:.2f}x the "
          "peer's throughput")


if __name__ == "__main__":
    main()
