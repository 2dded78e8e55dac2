"""``alignbench batches``: the provider batches recorded in the reply cache (state, request counts, age),
and ``alignbench batches cancel ID``.

Every batch that ``--batch`` submits is recorded in the cache database before the command waits for it,
so this listing is where a user finds what is in flight after ``--no-wait``, a kill or a reboot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from alignbench.cli.app import app, console, guarded, note
from alignbench.cli.options import CacheOpt, FormatOpt, print_json
from alignbench.reporting.tables import FitTable as Table

batches_app = typer.Typer(help="Provider batches submitted by --batch: state, counts, age; cancel one.",
                          invoke_without_command=True)
app.add_typer(batches_app, name="batches")

_STATE_STYLE = {"completed": "green", "failed": "red", "expired": "red", "cancelled": "yellow",
                "cancelling": "yellow", "in_progress": "cyan", "finalizing": "cyan", "validating": "cyan"}


def _path(cache: Path | None) -> Path:
    from alignbench.cache import default_cache_path

    return cache or default_cache_path()


@batches_app.callback(invoke_without_command=True)
def batches(
    ctx: typer.Context,
    cache: CacheOpt = None,
    fmt: FormatOpt = "table",
    refresh: Annotated[bool, typer.Option("--refresh/--no-refresh", help="Ask the provider for the state of the "
                                                                         "unfinished batches.")] = True,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Newest batches shown.")] = 50,
) -> None:
    """List the batches recorded in the reply cache, newest first: state, requests done and failed, age,
    and whether their replies are in the cache yet ("collected")."""
    if ctx.invoked_subcommand is not None:
        return
    from alignbench.batch import list_batches
    from alignbench.engine import run_sync

    with guarded():
        rows = run_sync(list_batches(_path(cache), refresh=refresh, limit=limit))
    if fmt == "json":
        print_json(rows)
        return
    if not rows:
        note(f"no batches recorded in {_path(cache)}")
        return
    table = Table(title="batches", header_style="bold", title_style="bold", keep=("batch",),
                  drop=("collected", "provider"))
    for name, justify in (("batch", "left"), ("provider", "left"), ("judge", "left"), ("state", "left"),
                          ("requests", "right"), ("done", "right"), ("failed", "right"), ("age", "right"),
                          ("collected", "left")):
        table.add_column(name, justify=justify, no_wrap=name in ("batch", "state"))  # type: ignore[arg-type]
    for r in rows:
        state = r["state"]
        style = _STATE_STYLE.get(state, "white")
        table.add_row(escape(r["batch_id"] or f"({r['local_id']})"), r["provider"], escape(r["judge"]),
                      f"[{style}]{state}[/]", str(r["n"]), str(r["completed"]), str(r["failed"]), r["age"],
                      "yes" if r["collected"] else "no")
    console.print(table)
    stale = [r for r in rows if r.get("refresh_error")]
    if stale:
        note(f"{len(stale)} batch(es) show their recorded state (the provider could not be asked: "
             f"{stale[0]['refresh_error']})")
    if any(not r["collected"] and r["state"] in ("completed", "expired", "cancelled") for r in rows):
        note("finished batches whose replies are not collected yet: run the command that submitted them again")


@batches_app.command("cancel")
def cancel(
    ident: Annotated[str, typer.Argument(help="The batch id (as listed), or a unique prefix of it.")],
    cache: CacheOpt = None,
) -> None:
    """Ask the provider to cancel a batch. Requests it already finished are kept: run the command that
    submitted it again to collect them (the rest are submitted anew, or sent online with
    --batch-fallback online)."""
    from alignbench.batch import cancel_batch
    from alignbench.engine import run_sync

    with guarded():
        row = run_sync(cancel_batch(_path(cache), ident))
    console.print(f"batch {row['batch_id']}: {row['state']}", markup=False, highlight=False)
