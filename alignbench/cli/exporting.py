"""``alignbench export``: a leaderboard and per-judgment rows for spreadsheets, scripts and the Hugging Face Hub."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from alignbench.cli.app import app, console, guarded
from alignbench.cli.options import check_choice


@app.command()
def export(
    run_dirs: Annotated[list[Path], typer.Argument(help="Finished run folders (or a folder of them).")],
    fmt: Annotated[str, typer.Option(
        "--format", "-f", help="csv (UTF-8 with BOM, opens in Excel), xlsx, json, or hf (Hugging Face "
                               ".eval_results YAML per model).")] = "csv",
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="File to write (csv: also OUT-judgments.csv); for hf a folder. Default: "
                            "alignbench-export.<format>, hf-eval-results/.")] = None,
    dataset: Annotated[str, typer.Option(
        "--hf-dataset", help="hf: the Hub dataset id the results name.")] = "THUDM/AlignBench",
) -> None:
    """Export the leaderboard (总分, 推理, 语言, each category, CIs, n, failures, judge, protocol) and every
    judgment (scores, question, answer, judge reply). Never calls a judge."""
    from alignbench import api

    check_choice(fmt, "--format", "csv", "xlsx", "json", "hf")
    with guarded():
        written = api.export(run_dirs, fmt, out, dataset=dataset)
    for path in written:
        console.print(f"written: {path}", highlight=False, markup=False, soft_wrap=True)
