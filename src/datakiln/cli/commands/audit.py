"""``kiln audit verify``: check an audit log written under an access policy (see
:mod:`datakiln.privacy.audit`); exit status 2 and the first bad line when it does not verify."""

from __future__ import annotations

import json

import typer

from datakiln.cli._common import console, esc

audit_app = typer.Typer(help="Check the tamper-evident audit logs of access policies.",
                        no_args_is_help=True)


@audit_app.command("verify")
def verify_command(
    log: str = typer.Argument(..., help="The audit log (JSON Lines) to check."),
    head: str | None = typer.Option(None, "--head", help="The checkpoint file holding the chain's "
                                    "head (entry count and last MAC); without it, entries removed "
                                    "at the end go unnoticed."),
    key_file: str | None = typer.Option(None, "--key-file", "-k", help="The audit key file (the "
                                        "policy's audit key_file)."),
    key_env: str | None = typer.Option(None, "--key-env", help="Environment variable holding the "
                                       "audit key as hex."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Verify every entry's HMAC, the chain, and the head against the checkpoint.

    Detects an edited, removed, inserted or reordered entry, entries removed at the end
    (with --head), and a chain recomputed without the key; prints the first bad line and
    exits with status 2. It protects a pipeline, not a file system: whoever holds the key
    and can write the log and the checkpoint can rewrite both.

    Example:

      kiln audit verify audit.jsonl --head /mnt/elsewhere/audit.head --key-file audit.key
    """
    from datakiln.privacy.audit import verify_log

    result = verify_log(log, key_file=key_file, key_env=key_env, checkpoint=head)
    if as_json:
        typer.echo(json.dumps({"log": log, "entries": result.entries,
                               "checkpoint_entries": result.checkpoint_entries,
                               "after_checkpoint": result.after_checkpoint,
                               "last_mac": result.last_mac, "verified": True}, indent=2))
        return
    text = f"[green]verified[/]: {esc(log)} holds {result.entries:,} chained entries"
    if result.checkpoint_entries is not None:
        text += (f"; the checkpoint vouches for {result.checkpoint_entries:,}"
                 + (f" ({result.after_checkpoint:,} appended since)" if result.after_checkpoint else ""))
    else:
        text += " (no --head given: entries removed at the end cannot be detected)"
    console.print(text)
