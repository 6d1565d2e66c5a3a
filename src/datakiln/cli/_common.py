"""What every command shares: read options, error printing, progress bars."""

from __future__ import annotations

import contextlib
import functools
import inspect
import re
import sys
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from datakiln.errors import DatakilnError
from datakiln.io._secrets import redact_text

console = Console(width=None if sys.stdout.isatty() else 160, soft_wrap=True)
errors = Console(stderr=True)

NamesOption = typer.Option(None, "--names", help="Comma-separated column names, e.g. "
                           "'age,workclass,income' (replaces a header row if there is one).")
HeaderOption = typer.Option(None, "--header/--no-header",
                            help="Whether the first CSV line holds column names (default: detect).")
DelimiterOption = typer.Option(None, "--delimiter", "-d",
                               help="CSV delimiter, one character (default: detect; use '\\t' for tabs).")
NaOption = typer.Option(None, "--na", help="A value to read as missing; repeat for more "
                        "(default: '', NA, N/A, NaN, null, None, ?).")
FormatOption = typer.Option(None, "--format", "-f",
                            help="Input format when the extension does not tell: csv, parquet, json, arrow.")
EncodingOption = typer.Option(None, "--encoding", help="Text encoding of CSV files (default utf-8).")
SkipBadOption = typer.Option(False, "--skip-bad-rows",
                             help="Skip and count malformed CSV rows instead of stopping.")
SchemaOption = typer.Option(None, "--schema", help="JSON/YAML file of column kind overrides.")
TableOption = typer.Option(None, "--table", help="With a database URL (postgresql://, mysql://, "
                           "sqlite:///...): the table to read, e.g. 'orders' or 'sales.orders'.")
QueryOption = typer.Option(None, "--query", help="With a database URL: one SQL statement to read, "
                           "e.g. 'SELECT * FROM orders WHERE year = 2024'.")
PolicyOption = typer.Option(None, "--policy", help="Access policy (YAML): read only what --role may "
                            "see, masked as it says; every read is appended to the policy's audit log.")
RoleOption = typer.Option(None, "--role", help="With --policy: the role to read as, e.g. analyst.")
BudgetOption = typer.Option("1GB", "--memory-budget",
                            help="Memory the streaming work may use, e.g. 512MB, 2GB.")


ToOption = typer.Option(None, "--to", help="Output format: parquet (zstd), csv, jsonl "
                        "(default: the ending of the output, else parquet).")


def overwrite_option(what: str = "an output file", own: str = "its own earlier output") -> Any:
    """``--overwrite``: replace ``what`` datakiln did not write; its own earlier output is
    replaced without it, and a directory holding other files or an input never is."""
    return typer.Option(False, "--overwrite",
                        help=f"Replace {what} datakiln did not write ({own} is replaced anyway; "
                             f"a directory holding other files, or an input, never is).")


def seed_option(help: str) -> Any:
    """``--seed``: a whole number 0 … 2**32 - 1 (what NumPy and imbalanced-learn all accept);
    anything else is a usage error (exit 2) before any work starts."""
    return typer.Option(0, "--seed", min=0, max=2**32 - 1, help=f"{help} A whole number 0..4294967295.")


_READ_OPTIONS = {  # name: (annotation, typer option) shared by every command that reads data
    "names": (str, NamesOption), "header": (bool, HeaderOption), "delimiter": (str, DelimiterOption),
    "na": (list[str], NaOption), "format": (str, FormatOption), "encoding": (str, EncodingOption),
    "skip_bad_rows": (bool, SkipBadOption), "schema": (str, SchemaOption),
    "table": (str, TableOption), "query": (str, QueryOption),
    "policy": (str, PolicyOption), "role": (str, RoleOption),
}


def with_read_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give ``command`` the shared read options (``--names``, ``--header`` ...); it receives
    them already turned into :func:`datakiln.read` keyword arguments as ``read_kwargs``."""
    own = [p for p in inspect.signature(command, eval_str=True).parameters.values()
           if p.name != "read_kwargs"]
    shared = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option,
                                annotation=annotation)
              for name, (annotation, option) in _READ_OPTIONS.items()]

    @functools.wraps(command)
    def run(**kwargs: Any) -> Any:
        chosen = {name: kwargs.pop(name) for name in _READ_OPTIONS}
        return command(**kwargs, read_kwargs=read_options(**chosen))

    run.__signature__ = inspect.Signature([*own, *shared])  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in [*own, *shared]}
    return run


def read_options(names: str | None, header: bool | None, delimiter: str | None,
                 na: list[str] | None, format: str | None, encoding: str | None,
                 skip_bad_rows: bool, schema: str | None, table: str | None = None,
                 query: str | None = None, policy: str | None = None,
                 role: str | None = None) -> dict[str, Any]:
    """Keyword arguments for :func:`datakiln.read` from the shared CLI options."""
    options: dict[str, Any] = {"format": format}
    if names:
        options["names"] = [n.strip() for n in names.split(",")]
    if header is not None:
        options["header"] = header
    if delimiter is not None:
        options["delimiter"] = "\t" if delimiter in ("\\t", "tab") else delimiter
    if na:
        options["na_values"] = list(na)
    if encoding:
        options["encoding"] = encoding
    if skip_bad_rows:
        options["on_bad_rows"] = "skip"
    if schema:
        options["schema"] = schema
    if table is not None:
        options["table"] = table
    if query is not None:
        options["query"] = query
    if policy is not None or role is not None:  # datakiln.read refuses one without the other
        options.update(policy=policy, role=role)
    return options


_TAG = re.compile(r"(\\*)(\[[a-z#/@][^[]*?])")
#: terminal control characters (ESC, BEL, C1 codes ...) but not tab and newline: a value or
#: column name holding "\x1b]0;title\x07" or "\x1b[2J" would retitle or clear the user's terminal
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def distinct_outputs(**outputs: str | None) -> None:
    """Refuse two outputs of one command at one path (``--report`` = ``-o``): the later
    write would replace the earlier one, with ``--overwrite`` even the data just written.

    Keyword names are the option names with ``_`` for ``-`` (``json=path``)."""
    import os

    from datakiln.errors import InvalidArgumentError

    seen: dict[str, str] = {}
    for option, path in outputs.items():
        if not path:
            continue
        where = os.path.realpath(os.path.expanduser(os.fspath(path)))
        name = "--" + option.rstrip("_").replace("_", "-")
        if where in seen:
            raise InvalidArgumentError(
                f"{seen[where]} and {name} both name {os.fspath(path)!r}; the second write would "
                "replace the first: give each output its own path")
        seen[where] = name


def esc(value: Any) -> str:
    """``value`` as text that rich prints literally (user paths, column names, data values).

    Rich reads ``[...]`` as markup: unescaped, ``['a', 'b']`` vanishes and ``[/old]`` raises.
    Unlike :func:`rich.markup.escape` a trailing backslash stays single (so never put a tag
    right after escaped text). Passwords and tokens in URLs are masked (``redact_text``), and
    terminal control characters are shown as ``\\x1b`` instead of being obeyed.
    """
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", redact_text(str(value)))
    return _TAG.sub(lambda m: m.group(1) * 2 + "\\" + m.group(2), text)


def one_line(text: str) -> str:
    """``text`` with its line breaks folded, so an error is one line however it was built."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


#: library keyword hints in error messages, and the command-line flag that does the same
_CLI_FLAGS = ((re.compile(r"\bon_bad_rows='skip'(?! \()"), "on_bad_rows='skip' (--skip-bad-rows)"),
              (re.compile(r"\bencoding='([^']+)'(?! \()"), r"encoding='\1' (--encoding \1)"))


def report_error(exc: BaseException, debug: bool = False) -> int:
    """Print ``exc`` as one line on standard error; returns the exit status for it.

    A :class:`DatakilnError` (bad input, a missing file ...) prints its message and gives 2;
    anything else is a bug in datakiln or a dependency: a one-line "internal error" with a
    hint to rerun with ``--debug``, status 1. With ``debug`` the traceback comes first.
    """
    if debug:
        errors.print(redact_text("".join(traceback.format_exception(exc))), markup=False, highlight=False,
                     soft_wrap=True, end="")
    if isinstance(exc, DatakilnError):
        message = one_line(str(exc))
        for pattern, flag in _CLI_FLAGS:  # the library's hints name keywords; say the flag too
            message = pattern.sub(flag, message)
        errors.print(f"[bold red]error:[/] {esc(type(exc).__name__)}: {esc(message)}",
                     highlight=False, soft_wrap=True)
        return 2
    hint = "this is a bug: please report it" if debug else (
        "this is a bug: rerun as `kiln --debug ...` to see the traceback, and please report it")
    errors.print(f"[bold red]internal error:[/] {esc(type(exc).__name__)}: {esc(one_line(str(exc)))} "
                 f"({hint})", highlight=False, soft_wrap=True)
    return 1


def fail(exc: BaseException) -> None:
    """Print a datakiln error as one clear message and exit with status 2."""
    raise typer.Exit(code=report_error(exc))


@contextlib.contextmanager
def friendly_errors() -> Iterator[None]:
    """Kept for the commands' ``with`` blocks: errors are now turned into messages once, for
    every command, by the boundary in :mod:`datakiln.cli.app` (which honours ``--debug``)."""
    yield


@contextlib.contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A rich progress bar over rows; yields the ``on_progress(rows)`` callback."""
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("rows"), TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=errors, transient=True,
                  disable=not sys.stderr.isatty()) as progress:
        task = progress.add_task(description, total=total)
        yield lambda rows: progress.advance(task, rows)
