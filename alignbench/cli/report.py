"""``alignbench report``: a Markdown report (with charts) from finished run folders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from alignbench.cli.app import app, console, fail, guarded, warn


@app.command()
def report(
    run_dirs: Annotated[list[Path], typer.Argument(help="Finished run folders written by `alignbench score`.")],
    baseline_run: Annotated[Path | None, typer.Option(
        "--baseline-run", help="An earlier run folder: per-category deltas with paired significance tests.")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Markdown file to write; charts go beside it. Default: RUN_DIR/report.md for one "
                            "run, reports/report.md for several.")] = None,
    lang: Annotated[str, typer.Option("--lang", help="zh or en: headings, labels and chart text.")] = "zh",
    charts: Annotated[bool, typer.Option("--charts/--no-charts", help="Draw PNG charts (needs matplotlib).")] = True,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap and permutation tests.")] = 0,
) -> None:
    """Write a Markdown report: leaderboard with CIs, dimension tables, charts, weak spots, pairwise
    results when present, and the comparison with --baseline-run. Never calls a judge."""
    from alignbench import api

    if lang not in ("zh", "en"):
        raise fail(f"--lang must be zh or en, not {lang!r}")
    with guarded():
        result = api.report(run_dirs, out, baseline_run=baseline_run, lang=lang, charts=charts, seed=seed, warn=warn)
    console.print(f"report written: {result.path}", highlight=False, markup=False)
    for chart in result.charts:
        console.print(f"chart: {chart}", highlight=False, markup=False)
