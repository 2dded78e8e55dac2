"""``alignbench report``: a Markdown report (with charts) from finished run folders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from alignbench.cli.app import app, console, err_console, fail
from alignbench.report.compare import RunError


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
    if lang not in ("zh", "en"):
        raise fail(f"--lang must be zh or en, not {lang!r}")
    from alignbench.report.markdown import write_report

    target = out or (run_dirs[0] / "report.md" if len(run_dirs) == 1 else Path("reports") / "report.md")
    if target.suffix.lower() != ".md":
        raise fail(f"--out {target}: expected a .md file name")

    def warn(message: str) -> None:
        err_console.print(f"warning: {message}", style="yellow", highlight=False, markup=False, soft_wrap=True)

    try:
        result = write_report(run_dirs, target, baseline_dir=baseline_run, lang=lang, charts=charts, seed=seed,
                              warn=warn)
    except RunError as exc:
        raise fail(str(exc)) from None
    console.print(f"report written: {result.path}", highlight=False, markup=False)
    for chart in result.charts:
        console.print(f"chart: {chart}", highlight=False, markup=False)
