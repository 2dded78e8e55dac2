"""``alignbench report``: a Markdown report (with charts) from finished run folders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from alignbench.cli.app import app, console, guarded, warn
from alignbench.cli.options import SeedOpt, check_choice


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
    seed: SeedOpt = 0,
    bridge: Annotated[Path | None, typer.Option(
        "--bridge", help="A bridge from `alignbench bridge --save`: runs of its old judge are put on the new "
                         "judge's scale, marked as bridged.")] = None,
    labels: Annotated[Path | None, typer.Option(
        "--labels", help="Human labels (a JSONL of question_id, model, score, or a run folder with reviews): adds "
                         "a calibrated column and section (see `alignbench calibrate`).")] = None,
    label_scale: Annotated[str | None, typer.Option(
        "--label-scale", help="The labels' scale, e.g. 1-5 (labels file only).")] = None,
    compare_run: Annotated[list[Path] | None, typer.Option(
        "--compare-run", help="A `compare` folder: the position audit from its pairwise verdicts. Repeatable.")
    ] = None,
    audit: Annotated[bool, typer.Option(
        "--audit/--no-audit", help="The judge bias section (length, format, position, model families).")] = True,
) -> None:
    """Write a Markdown report: leaderboard with CIs, dimension tables, charts, weak spots, pairwise
    results when present, the comparison with --baseline-run, human reviews, the judge bias audit, and
    with --labels a calibrated column. Never calls a judge."""
    from alignbench import api

    check_choice(lang, "--lang", "zh", "en")
    with guarded():
        result = api.report(run_dirs, out, baseline_run=baseline_run, lang=lang, charts=charts, seed=seed, warn=warn,
                            bridge=bridge, labels=labels, label_scale=label_scale, compare_runs=compare_run or [],
                            audit=audit)
    console.print(f"report written: {result.path}", highlight=False, markup=False)
    for chart in result.charts:
        console.print(f"chart: {chart}", highlight=False, markup=False)
