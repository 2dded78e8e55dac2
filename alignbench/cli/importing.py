"""``alignbench import``: the official tools' judgment files as run folders (``alignbench.importing``).

Reads AlignBench ``judge.py`` files and FastChat's single and pair judgment files, re-reads every judge text
with our parser, writes run folders that ``show``, ``report``, ``view``, ``calibrate``, ``bridge``, ``audit``
(and ``winrate`` for pairs) open, and prints where our reading differs from the score the original tool
stored. Never calls a judge.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from alignbench.cli.app import app, console, guarded, warn
from alignbench.reporting.tables import FitTable as Table

_KIND = {"their_failure": "their -1 / error, we read", "misread": "read differently", "our_failure": "we read nothing"}


@app.command("import")
def import_(
    files: Annotated[list[Path], typer.Argument(help="Judgment files: AlignBench's data/judgment/<model>.jsonl, or "
                                                     "FastChat's model_judgment/<judge>_single.jsonl / _pair.jsonl.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder the run folders are written in (one per model; "
                                                          "one per pair file).")] = Path("reports"),
    fmt: Annotated[str, typer.Option(
        "--from", help="The files' format: auto (from the fields), alignbench-judge, fastchat-single or "
                       "fastchat-pair.")] = "auto",
    questions: Annotated[Path | None, typer.Option(
        "--questions", "-q", help="FastChat's question.jsonl (default: data/<bench>/question.jsonl beside "
                                  "model_judgment/).")] = None,
    answers: Annotated[Path | None, typer.Option(
        "--answers", help="FastChat's model_answer folder (default: beside model_judgment/); only answer lengths "
                          "need it.")] = None,
    baseline: Annotated[str | None, typer.Option(
        "--baseline", help="Pair files: the model the others are compared with (default: the one in every pair).")
    ] = None,
    judge_model: Annotated[str | None, typer.Option(
        "--judge-model", help="AlignBench files: the judge that wrote them (judge.py records none; it calls gpt-4).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a run folder that holds another model's run.")] = False,
    rows: Annotated[int, typer.Option("--rows", min=0, help="Differences shown per file (all are written to "
                                                                "import_differences.jsonl).")] = 30,
) -> None:
    """Turn judgment files of AlignBench's judge.py and FastChat's gen_judgment.py into run folders, re-reading
    every judge text with our parser; a table shows where our reading differs from the stored score (their -1
    rows, their regex misreads, texts we cannot read). Nothing is re-judged."""
    from alignbench import api

    with guarded():
        results = api.import_judgments(files, out=out, format=None if fmt == "auto" else fmt, questions=questions,
                                       answers=answers, baseline=baseline, judge_model=judge_model, force=force)
    for result in results:
        for message in result.notes:
            warn(message)
        diffs = result.differences
        if diffs:
            console.print(f"{result.source}: {len(diffs)} judgment(s) read differently from the stored score",
                          style="bold", markup=False, highlight=False, soft_wrap=True)
            table = Table(header_style="bold")
            for col in ("line", "question", "model", "turn/game", "difference", "theirs", "ours", "our status"):
                table.add_column(col, justify="right" if col in ("line", "question", "theirs", "ours") else "left")
            for d in diffs[:rows]:
                where = "/".join(str(x) for x in (d.turn, d.order) if x is not None)
                table.add_row(str(d.line), str(d.question_id), escape(d.model), where, _KIND[d.kind],
                              _cell(d.theirs), _cell(d.ours), d.our_status)
            if len(diffs) > rows:
                table.caption = f"{len(diffs) - rows} more in import_differences.jsonl"
            console.print(table)
        else:
            console.print(f"{result.source}: our reading agrees with every stored score", highlight=False,
                          markup=False, soft_wrap=True)
        for path in result.dirs:
            console.print(f"run folder: {path}", style="dim", markup=False, highlight=False)
        console.print(f"{result.label} · sha256 {result.sha256[:12]} · judge {result.judge_model} "
                      f"({', '.join(result.prompt_names)})", style="yellow", markup=False, highlight=False, soft_wrap=True)


def _cell(value: float | str | None) -> str:
    if value is None:
        return "—"
    return f"{value:g}" if isinstance(value, float) else escape(str(value))
