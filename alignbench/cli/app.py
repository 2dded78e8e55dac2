"""The typer application shared by every command module in ``alignbench.cli``.

Each command lives in its own module (``score.py``, ``compare.py`` …) and registers itself on
``app``; ``alignbench.cli.__init__`` imports them all. Commands stay thin: parse options, call the
library, hand the result to ``alignbench.report``.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

app = typer.Typer(
    name="alignbench",
    help="Chinese-first multi-dimension LLM-as-judge scoring (AlignBench rubrics).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Tables and results go to stdout; progress, warnings and errors go to stderr so that
# `--format json` output stays machine-readable.
console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # messages stay one line, greppable


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one clear error line (plus an optional hint line) and return an Exit to raise."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def is_tty() -> bool:
    return sys.stderr.isatty()
