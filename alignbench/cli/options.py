"""Option types shared by the commands that call a judge (score, compare, meta-eval, run)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

QuestionsOpt = Annotated[Path, typer.Option("--questions", "-q", help="AlignBench question file (JSONL).")]
JudgeOpt = Annotated[str, typer.Option("--judge", "-j", help="Judge preset (see `alignbench judges`) or BACKEND:MODEL.")]
JudgeModelOpt = Annotated[str | None, typer.Option("--judge-model", help="Override the preset's model id.")]
JudgeUrlOpt = Annotated[list[str] | None, typer.Option(
    "--judge-base-url", help="OpenAI-compatible base URL of the judge; repeat for several servers.")]
RubricOpt = Annotated[str | None, typer.Option("--rubric", help="Rubric set (folder under rubrics/); default: the preset's.")]
FormatOpt = Annotated[str, typer.Option("--format", help="table or json (the summary JSON on stdout).")]
ProtocolOpt = Annotated[str | None, typer.Option(
    "--protocol", help="multi-dimension, general, reference-free or plan-execute: the variant of the rubric "
                       "set (--rubric or the preset's) to use. See docs/meta-eval.md.")]
ConcurrencyOpt = Annotated[int, typer.Option("--concurrency", "-c", min=1, help="Requests in flight (per judge server).")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds per judge request.")]
AttemptsOpt = Annotated[int, typer.Option("--attempts", min=1, help="Calls per request on 429/5xx/timeouts, first included.")]
ParseRetriesOpt = Annotated[int, typer.Option("--parse-retries", min=0, help="Fresh samples asked after an unparseable judgment.")]
MaxAnswerCharsOpt = Annotated[int | None, typer.Option("--max-answer-chars", help="Clip longer answers in the prompt (recorded in the judgment).")]
TemperatureOpt = Annotated[float | None, typer.Option("--temperature", help="Judge temperature (default: the preset's, usually 0).")]
MaxTokensOpt = Annotated[int | None, typer.Option("--max-tokens", help="Judge output token limit.")]
CacheOpt = Annotated[Path | None, typer.Option("--cache", help="SQLite reply cache (default $ALIGNBENCH_CACHE or ~/.cache/alignbench/replies.sqlite).")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the reply cache.")]
AllowEmptyOpt = Annotated[bool, typer.Option("--allow-empty", help="Judge empty answers instead of rejecting the file.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print the first prompt and what would be sent; call nothing.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace a run folder that holds another model's run.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the bootstrap (and permutation tests).")]
BaselineRunOpt = Annotated[Path | None, typer.Option(
    "--baseline-run", help="An earlier run folder of the same judge and rubric: deltas with paired significance tests.")]


def cache_arg(cache: Path | None, no_cache: bool) -> Path | bool | None:
    """The API's ``cache=`` from the two cache options."""
    return False if no_cache else cache


def print_messages(messages: object, console: object) -> None:
    """A prompt exactly as it is sent: each message under a rule with its role, never wrapped."""
    for message in messages:  # type: ignore[attr-defined]
        console.rule(f"[bold]{message['role']}")  # type: ignore[attr-defined]
        console.print(message["content"], markup=False, highlight=False, soft_wrap=True)  # type: ignore[attr-defined]
    console.rule()  # type: ignore[attr-defined]
