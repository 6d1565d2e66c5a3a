"""The ``kiln`` command: one sub-command per module in :mod:`datakiln.cli.commands`."""

from __future__ import annotations

import logging
from typing import Any

import typer
from typer.core import TyperGroup

try:  # typer 0.2x vendors click (typer._click) and roots its usage errors here
    from typer.exceptions import TyperException as _UsageError
except ImportError:  # older typer raises click's own
    from click import ClickException as _UsageError

from datakiln.cli._common import report_error, with_read_options
from datakiln.cli.commands.anonymize import anonymize_command
from datakiln.cli.commands.audit import audit_app
from datakiln.cli.commands.augment import augment_command
from datakiln.cli.commands.balance import balance_command
from datakiln.cli.commands.clean import clean
from datakiln.cli.commands.convert import convert
from datakiln.cli.commands.demo import demo
from datakiln.cli.commands.encryption import decrypt_command, encrypt_command, key_app, rekey_command
from datakiln.cli.commands.evaluate import evaluate_command
from datakiln.cli.commands.inspect import inspect
from datakiln.cli.commands.risk import risk_command
from datakiln.cli.commands.run import run_command
from datakiln.cli.commands.split import split_command
from datakiln.cli.commands.stream import app as stream_app
from datakiln.cli.commands.synth import app as synth_app


class _Boundary(TyperGroup):
    """The one place where errors become messages, for every command and sub-command.

    A :class:`~datakiln.errors.DatakilnError` prints its one-line message and exits 2; any
    other exception prints a one-line "internal error" and exits 1; the traceback is shown
    only under ``kiln --debug``. Usage errors, ``--help`` and deliberate exits pass through
    (typer prints usage errors itself, with status 2).
    """

    _PASS = (typer.Exit, typer.Abort, _UsageError, EOFError, BrokenPipeError)

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except self._PASS:
            raise
        except Exception as exc:  # the boundary: nothing below may end in a bare traceback
            raise typer.Exit(code=report_error(exc, debug=bool(ctx.params.get("debug")))) from None


app = typer.Typer(
    name="kiln",
    cls=_Boundary,
    help="datakiln: load, inspect, convert, clean, split, balance, synthesize and evaluate large "
         "datasets.\n\nExamples:\n\n  kiln demo\n\n"
         "  kiln inspect data.csv --json\n\n  kiln convert data.csv data/\n\n"
         "  kiln evaluate --real train.parquet --synthetic synth.parquet --html report.html",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("inspect")(inspect)
app.command("convert")(convert)
app.command("clean")(clean)
app.command("split")(split_command)
app.command("balance")(with_read_options(balance_command))
app.command("evaluate")(with_read_options(evaluate_command))
app.command("demo")(demo)
app.command("anonymize")(anonymize_command)
app.command("augment")(augment_command)
app.command("risk")(with_read_options(risk_command))
app.command("run")(run_command)
app.add_typer(synth_app, name="synth")
app.add_typer(stream_app, name="stream")
app.add_typer(key_app, name="key")
app.add_typer(audit_app, name="audit")
app.command("encrypt")(encrypt_command)
app.command("decrypt")(decrypt_command)
app.command("rekey")(rekey_command)


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log each stage (read, write, fit, "
                                       "sample, evaluate ...) on standard error."),
          debug: bool = typer.Option(False, "--debug", help="Show the full traceback of an error (for "
                                     "bug reports); exit codes stay 2 for bad input, 1 for bugs.")) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")


def main() -> None:
    """Console-script entry point."""
    app()
