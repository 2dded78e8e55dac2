"""``alignbench view``: browse run folders in a local web page, and review judgments."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer

from alignbench.cli.app import app, console, err_console, fail


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (some containers)
        return "reviewer"


@app.command()
def view(
    run_dirs: Annotated[list[Path], typer.Argument(
        help="Run folders written by `score` (a folder of run folders counts as all of them; a `compare` "
             "folder adds its pairwise verdicts).")],
    baseline_run: Annotated[Path | None, typer.Option(
        "--baseline-run", help="An earlier run folder: deltas with paired significance tests, per-question "
                               "changes, and the 'typical change' rule of the review queue.")] = None,
    compare_run: Annotated[list[Path] | None, typer.Option(
        "--compare-run", help="A `compare` folder (pairwise_judgments.jsonl): verdicts in both orders on "
                              "each question page, position flips in lists and the queue. Repeatable.")
    ] = None,
    port: Annotated[int, typer.Option("--port", help="Port to listen on; 0 picks a free one.")] = 8765,
    host: Annotated[str, typer.Option(
        "--host", help="Address to listen on. Anything but loopback needs the token printed at start-up "
                       "for every page and every review.")] = "127.0.0.1",
    reviewer: Annotated[str | None, typer.Option(
        "--reviewer", help="Name stamped on reviews (default: your login name).")] = None,
    queue: Annotated[bool, typer.Option(
        "--queue", help="Open on the review queue: the judgments where a human look helps most first.")
    ] = False,
    read_only: Annotated[bool, typer.Option(
        "--read-only", help="Browse only: no review form, writes refused.")] = False,
    export: Annotated[Path | None, typer.Option(
        "--export", help="Write the pages as static files into this folder (no review) and exit.")] = None,
    open_browser: Annotated[bool, typer.Option(
        "--open/--no-open", help="Open the page in a browser.")] = False,
    seed: Annotated[int, typer.Option(
        "--seed", help="Seed of the baseline tests and the queue's sample.")] = 0,
) -> None:
    """Start a local web viewer: leaderboard with CIs and deltas, every question with each model's answer,
    the judge's scores and full analysis, filters and Chinese full-text search, and a review form whose
    verdicts go to reviews.jsonl in the run folder (judgments.jsonl is never changed)."""
    from alignbench.view.data import ViewError, load_view

    try:
        data = load_view(run_dirs, baseline=baseline_run, compare_dirs=compare_run or [], seed=seed,
                         lazy=export is None)
    except ViewError as exc:
        raise fail(str(exc)) from None
    for note in data.notes:
        err_console.print(f"warning: {note}", style="yellow", highlight=False, markup=False, soft_wrap=True)

    if export is not None:
        from alignbench.view.export import export_site

        written = export_site(data, export)
        console.print(f"static copy written: {written[0]} ({len(written)} files)", highlight=False,
                      markup=False)
        return

    from alignbench.view.server import ServeConfig, serve

    config = ServeConfig(host=host, port=port, reviewer=reviewer or _login_name(), read_only=read_only)

    def ready(cfg: ServeConfig) -> None:
        url = cfg.url("/queue" if queue else "/")
        n = len(data.items)
        console.print(f"alignbench view: {len(data.runs)} run(s), {n} judgment(s) at {url}", highlight=False,
                      markup=False, soft_wrap=True)
        if cfg.token:
            err_console.print("not loopback: every page and review needs the token in this URL; share it "
                              "only with the people who may read these answers", style="yellow",
                              highlight=False, markup=False, soft_wrap=True)
        err_console.print("Ctrl-C to stop", style="dim", highlight=False, markup=False)
        if open_browser:
            import webbrowser

            webbrowser.open(url)

    try:
        serve(data, config, ready)
    except OSError as exc:
        raise fail(f"cannot listen on {host}:{port} ({exc.strerror or exc}); pass another --port "
                   "(or --port 0 for any free one)") from None
