"""The ``kiln`` command: one sub-command per module in :mod:`datakiln.cli.commands`."""

from __future__ import annotations

import logging

import typer

from datakiln.cli._common import with_read_options
from datakiln.cli.commands.balance import balance_command
from datakiln.cli.commands.clean import clean
from datakiln.cli.commands.convert import convert
from datakiln.cli.commands.demo import demo
from datakiln.cli.commands.evaluate import evaluate_command
from datakiln.cli.commands.inspect import inspect
from datakiln.cli.commands.split import split_command
from datakiln.cli.commands.synth import app as synth_app

app = typer.Typer(
    name="kiln",
    help="datakiln: load, inspect, convert, clean, split and synthesize large datasets "
         "(evaluation reports come next).\n\nExamples:\n\n  kiln demo\n\n"
         "  kiln inspect data.csv --json\n\n  kiln convert data.csv data/",
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
app.add_typer(synth_app, name="synth")


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what happens.")) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING)


def main() -> None:
    """Console-script entry point."""
    app()
