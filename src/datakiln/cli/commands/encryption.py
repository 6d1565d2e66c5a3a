"""``kiln key new``, ``kiln encrypt``, ``kiln decrypt`` and ``kiln rekey``: keys and the
AES-256-GCM envelope from the command line (see :mod:`datakiln.privacy.crypto`).

Keys come from a key file (``--key-file``, mode 0600), an environment variable holding hex
(``--key-env``), or a passphrase read from an environment variable (``--passphrase-env``) or
typed at a hidden prompt (``--passphrase``) — never from the command line itself, where
other users could see it in the process list.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from datakiln.cli._common import console, errors, esc, overwrite_option

key_app = typer.Typer(help="Make and inspect key files (32 random bytes, mode 0600).",
                      no_args_is_help=True)

KeyFileOption = typer.Option(None, "--key-file", "-k", help="Key file (mode 0600; make one with "
                             "`kiln key new PATH`).")
KeyEnvOption = typer.Option(None, "--key-env", help="Environment variable holding the key as hex "
                            "(64+ hex digits).")
PassEnvOption = typer.Option(None, "--passphrase-env", help="Environment variable holding a "
                             "passphrase (turned into a key with scrypt).")
PassPromptOption = typer.Option(False, "--passphrase", help="Type a passphrase at a hidden prompt.")


@key_app.command("new")
def key_new(path: str = typer.Argument(..., help="Where to write the new key file (must be new).")) -> None:
    """Write a new random 256-bit key file with mode 0600 and print its key id.

    Example:

      kiln key new ~/.keys/customers.key
    """
    from datakiln.privacy.keys import new_key_file

    key = new_key_file(path)
    console.print(f"wrote a new 256-bit key to {esc(path)} (mode 0600), key id {key.key_id}")
    console.print("keep it private and backed up: data encrypted with it cannot be read without it")


@key_app.command("id")
def key_show_id(path: str = typer.Argument(None, help="Key file."),
                key_env: str | None = KeyEnvOption) -> None:
    """Print the key id of a key file (or of --key-env), to match it with encrypted files."""
    from datakiln.privacy.keys import resolve_key

    console.print(resolve_key(key_file=path, key_env=key_env, what="kiln key id").key_id)


def _passphrase(env: str | None, prompt: bool, *, confirm: bool, what: str = "passphrase") -> str | None:
    from datakiln.errors import KeyFileError

    if env is not None and prompt:
        raise KeyFileError("give --passphrase-env or --passphrase, not both")
    if env is not None:
        value = os.environ.get(env)
        if not value:
            raise KeyFileError(f"the environment variable {env!r} holding the {what} is not set or empty")
        return value
    if prompt:
        return typer.prompt(what.capitalize(), hide_input=True, confirmation_prompt=confirm)
    return None


def _key_kwargs(key_file: str | None, key_env: str | None, passphrase: str | None) -> dict[str, Any]:
    return {"key_file": key_file, "key_env": key_env, "passphrase": passphrase}


@contextlib.contextmanager
def _bytes_bar(description: str, total: int) -> Iterator[Callable[[int], None]]:
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=errors, transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def encrypt_command(
    source: str = typer.Argument(..., help="File to encrypt (any file: CSV, JSON Lines, model, report)."),
    out: str = typer.Option(..., "--out", "-o", help="Encrypted file to write."),
    key_file: str | None = KeyFileOption, key_env: str | None = KeyEnvOption,
    passphrase_env: str | None = PassEnvOption, passphrase: bool = PassPromptOption,
    chunk_size: str = typer.Option("1MiB", "--chunk-size", help="Plaintext bytes per authenticated "
                                   "chunk (1KiB … 64MiB)."),
    overwrite: bool = overwrite_option("an output file", "an encrypted file it wrote"),
) -> None:
    """Encrypt a file with AES-256-GCM in authenticated chunks (streaming, any size).

    The data key is random per file and wrapped by your key; the header records the key id.
    Flipped bytes, truncation, reordered chunks and wrong keys are all detected on decrypt.

    Examples:

      kiln encrypt train.csv -o train.csv.dke --key-file secret.key

      DK_PASS=... kiln encrypt model.json -o model.json.dke --passphrase-env DK_PASS
    """
    from datakiln.privacy.crypto import encrypt_file
    from datakiln.units import parse_bytes

    phrase = _passphrase(passphrase_env, passphrase, confirm=True)
    size = parse_bytes(chunk_size, name="--chunk-size") or 0
    with _bytes_bar("encrypting", _size(source)) as advance:
        header = encrypt_file(source, out, chunk_size=size, overwrite=overwrite, on_progress=advance,
                              **_key_kwargs(key_file, key_env, phrase))
    console.print(f"encrypted {esc(source)} -> {esc(out)} ({_size(out):,} bytes, key id "
                  f"{header.key_id}, {header.chunk_size:,}-byte chunks)")


def decrypt_command(
    source: str = typer.Argument(..., help="File written by `kiln encrypt` (or an encrypted CSV / "
                                 "JSON Lines output)."),
    out: str = typer.Option(..., "--out", "-o", help="Plaintext file to write (mode 0600)."),
    key_file: str | None = KeyFileOption, key_env: str | None = KeyEnvOption,
    passphrase_env: str | None = PassEnvOption, passphrase: bool = PassPromptOption,
    overwrite: bool = overwrite_option("an existing output file", "nothing"),
) -> None:
    """Decrypt and verify a file; the output appears only once every chunk verified.

    A wrong key, a tampered or truncated file stops with an error naming what failed, and
    leaves no plaintext behind.

    Example:

      kiln decrypt train.csv.dke -o train.csv --key-file secret.key
    """
    from datakiln.privacy.crypto import decrypt_file

    phrase = _passphrase(passphrase_env, passphrase, confirm=False)
    with _bytes_bar("decrypting", _size(source)) as advance:
        header = decrypt_file(source, out, overwrite=overwrite, on_progress=advance,
                              **_key_kwargs(key_file, key_env, phrase))
    console.print(f"decrypted {esc(source)} -> {esc(out)} ({_size(out):,} bytes verified, key id "
                  f"{header.key_id})")


def rekey_command(
    path: str = typer.Argument(..., help="Encrypted file to re-wrap in place."),
    old_key_file: str | None = typer.Option(None, "--old-key-file", help="The key it is encrypted with."),
    new_key_file: str | None = typer.Option(None, "--new-key-file", help="The key to wrap it with."),
    old_key_env: str | None = typer.Option(None, "--old-key-env", help="Old key as hex in this variable."),
    new_key_env: str | None = typer.Option(None, "--new-key-env", help="New key as hex in this variable."),
    old_passphrase_env: str | None = typer.Option(None, "--old-passphrase-env",
                                                  help="Old passphrase in this variable."),
    new_passphrase_env: str | None = typer.Option(None, "--new-passphrase-env",
                                                  help="New passphrase in this variable."),
) -> None:
    """Rotate the outer key: re-wrap the file's data key, without re-encrypting the data.

    Only the header changes (atomically); afterwards the old key no longer opens the file.

    Example:

      kiln rekey train.csv.dke --old-key-file old.key --new-key-file new.key
    """
    from datakiln.privacy.crypto import read_header, rekey_file
    from datakiln.privacy.keys import resolve_key

    old_phrase = _passphrase(old_passphrase_env, False, confirm=False, what="old passphrase")
    new_phrase = _passphrase(new_passphrase_env, False, confirm=False, what="new passphrase")
    old = None if old_phrase is not None else resolve_key(key_file=old_key_file, key_env=old_key_env,
                                                          what="kiln rekey (old key)")
    new = None if new_phrase is not None else resolve_key(key_file=new_key_file, key_env=new_key_env,
                                                          what="kiln rekey (new key)")
    before = read_header(path).key_id
    header = rekey_file(path, old_key=old, new_key=new, old_passphrase=old_phrase,
                        new_passphrase=new_phrase)
    console.print(f"re-wrapped {esc(path)}: key id {before} -> {header.key_id} (data not re-encrypted)")
