"""The typer application, and what every command shares: consoles, one-line errors, the guard that
turns library exceptions into exit codes, and the progress bar fed by engine events.

Each command lives in its own module (``score.py``, ``compare.py`` …) and registers itself on
``app``; command modules import only from here, ``options.py`` and the library. This module imports
neither (``options.py`` builds on it), so the two never form a cycle. Commands stay thin:
parse options, call ``alignbench.api``, hand the result to ``alignbench.reporting``. Library modules are
imported inside the commands, so ``alignbench --help`` (and each command) loads only what it uses.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from alignbench.engine import Event, EventHandler

app = typer.Typer(
    name="alignbench",
    help="Chinese-first multi-dimension LLM-as-judge scoring (AlignBench rubrics).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from alignbench import __version__

        print(f"alignbench {__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True, help="Print the version and exit.")] = False) -> None:
    """Options before any command (``alignbench --version``): what a bug report names first."""


# Tables and results go to stdout; progress, warnings and errors go to stderr so that
# `--format json` output stays machine-readable.
console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # messages stay one line, greppable


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one clear error line and return an Exit to raise."""
    err_console.print(f"[bold red]error:[/] {escape(_clean(message))}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def warn(message: str) -> None:
    err_console.print(f"[yellow]warning:[/] {escape(_clean(message))}", highlight=False, soft_wrap=True)


def note(message: str) -> None:
    err_console.print(escape(_clean(message)), highlight=False, soft_wrap=True)


def _clean(message: str) -> str:
    """No key value and no URL credentials in anything we print."""
    from alignbench.redact import redact

    return redact(message) or ""


def is_tty() -> bool:
    return sys.stderr.isatty()


@contextmanager
def guarded(saved: str = "every reply received so far is in the cache",
            fatal_hint: str = "Check the judge model id and API key.") -> Iterator[None]:
    """Library errors become one line and exit code 2; Ctrl-C exits 130 saying how to resume."""
    from alignbench.cache import CacheError
    from alignbench.data import InputError
    from alignbench.engine import FatalCallError, ServerUnavailable
    from alignbench.judges import ModelConfigError
    from alignbench.rubrics import RubricError
    from alignbench.rundir import RunError
    from alignbench.upstream import UpstreamError

    try:
        yield
    except KeyboardInterrupt:
        err_console.print(f"[yellow]interrupted:[/] {saved}; run the same command again to finish without paying "
                          "twice", highlight=False)
        raise typer.Exit(130) from None
    except FatalCallError as exc:
        raise fail(f"{exc}. {fatal_hint}") from None
    except (CacheError, InputError, ModelConfigError, RubricError, RunError, ServerUnavailable, UpstreamError) as exc:
        raise fail(str(exc)) from None


@contextmanager
def _progress_lines(every: float = 30.0) -> Iterator[EventHandler]:
    """On a pipe or in CI: one plain line at least every ``every`` seconds while work goes on (a long run,
    or a server that stalls, never looks like a hang), and none for work that finishes sooner."""
    import threading
    import time

    latest: list[Event] = []  # the last event only
    stop = threading.Event()
    start = time.monotonic()

    def tick() -> None:
        while not stop.wait(every):
            if latest:
                e = latest[-1]
                err_console.print(f"{e.label}: {e.done}/{e.total} done, {e.failed} failed, {e.cached} from the cache, "
                                  f"{time.monotonic() - start:.0f} s", markup=False, highlight=False, soft_wrap=True)

    def update(event: Event) -> None:
        latest[:] = [event]

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield update
    finally:
        stop.set()


@contextmanager
def progress(enabled: bool | None = None) -> Iterator[EventHandler | None]:
    """A rich progress bar (done/total, rate, failures, cached, elapsed, ETA) on a terminal, fed by
    engine events; nothing on a pipe. One bar per label (judging, comparing, answering)."""
    if not (is_tty() if enabled is None else enabled):
        with _progress_lines() as handler:
            yield handler
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}/s"), TextColumn("[red]{task.fields[failed]} failed"),
               TextColumn("[dim]{task.fields[cached]} cached"), TimeElapsedColumn(), TextColumn("ETA"),
               TimeRemainingColumn()]
    with Progress(*columns, console=err_console, transient=False) as bar:
        tasks: dict[str, int] = {}

        def update(event: Event) -> None:
            if event.label not in tasks or (event.done == 0 and bar.tasks[tasks[event.label]].completed):
                tasks[event.label] = bar.add_task(event.label, total=event.total, rate="0.0", failed=0, cached=0)
            task = tasks[event.label]
            elapsed = bar.tasks[task].elapsed or 1e-9
            bar.update(task, total=event.total, completed=event.done, rate=f"{event.done / elapsed:.1f}",
                       failed=event.failed, cached=event.cached)

        yield update
