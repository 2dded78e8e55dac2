"""``alignbench score``, ``show``, ``prompt`` and ``cache``: the core pointwise workflow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from alignbench.cli.app import app, console, guarded, progress, warn
from alignbench.cli.options import (
    AllowEmptyOpt,
    BaselineRunOpt,
    CacheOpt,
    DryRunOpt,
    ForceOpt,
    FormatOpt,
    JudgeOpt,
    MaxFailedOpt,
    ProtocolOpt,
    QuestionsOpt,
    RubricOpt,
    SeedOpt,
    allowed_failures,
    exit_on_run_failures,
    judge_options,
    paying,
    print_estimates,
    print_json,
    print_messages,
)

if TYPE_CHECKING:
    from alignbench.api import JudgeSettings


@app.command()
@judge_options()
def score(
    questions: QuestionsOpt,
    answers: Annotated[list[Path], typer.Option("--answers", "-a", help="Answer file(s), JSONL; repeat for several models.")],
    judge: JudgeOpt = "critiquellm",
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model name for answer files without model_id.")] = None,
    settings: JudgeSettings = None,  # type: ignore[assignment]  # the judge options (cli.options.JUDGE_OPTIONS)
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run folder (several models: one subfolder each). Default: a folder under reports/ named after the model, judge and rubric.")] = None,
    force: ForceOpt = False,
    allow_empty: AllowEmptyOpt = False,
    dry_run: DryRunOpt = False,
    seed: SeedOpt = 0,
    fmt: FormatOpt = "table",
    samples: Annotated[int, typer.Option(
        "--samples", min=1, help="Ask the judge K times per answer (distinct seeds and cache entries) and score "
                                 "the mean; reports the judge's spread and how much it widens each CI.")] = 1,
    max_failed: MaxFailedOpt = "5%",
) -> None:
    """Judge answers with a multi-dimension rubric and print per-category scores.

    Re-running the same command reads every stored reply from the cache: nothing is paid twice, and
    a killed run picks up where it stopped. `--judge a,b` averages an ensemble of judges.
    """
    from alignbench import api

    allowed_failures(max_failed, 1)  # a bad value fails now, not after the judging
    with guarded(), paying():
        plan = api.plan_score(questions, answers, judge, model=model, allow_empty=allow_empty, samples=samples,
                              settings=settings)  # all input checked
        for message in plan.warnings():
            warn(message)
        if dry_run:
            if fmt != "json":
                for p in plan.plans:
                    _print_dry_run(p)
            print_estimates(plan.requests(), settings.cache, bool(settings.batch), fmt)  # type: ignore[arg-type]
            return
        with progress() as on_event:  # the plan checked above is the one run (nothing loaded or rendered twice)
            runs = api.score_from_plan(plan, out=out, force=force, seed=seed, on_event=on_event, settings=settings)
    for run in runs.values():
        for message in getattr(run.summary.run, "notes", None) or []:
            warn(message)
    if fmt == "json":
        payloads = {m: r.summary.as_json() for m, r in runs.items()}
        print_json(next(iter(payloads.values())) if len(payloads) == 1 else {"models": payloads})
        exit_on_run_failures(runs, max_failed)
        return
    from alignbench.reporting.terminal import print_disagreement, print_summary
    from alignbench.rubrics import load_rubric

    for run in runs.values():
        print_summary(run.summary, load_rubric(run.rubric_id.split("@")[0]), console)
        if run.summary.ensemble:
            print_disagreement(run.summary.ensemble, console)
        if samples > 1 and getattr(run.summary, "samples", None):
            from alignbench.reporting.terminal import print_samples

            print_samples(run.summary.samples, console)
        console.print(f"run folder: {run.dir}", style="dim", markup=False, highlight=False)
    exit_on_run_failures(runs, max_failed)


def _print_dry_run(p) -> None:  # noqa: ANN001 - an api.ScorePlan
    if not p.items:
        return
    first = p.items[0]
    console.print(f"{len(p.items)} request(s) would go to {p.config.name} ({p.config.model}); first: question "
                  f"{first.question.id}, model {first.answer.model}", style="bold", markup=False, highlight=False)
    print_messages(first.request.messages)


@app.command()
def prompt(
    questions: QuestionsOpt,
    question_id: Annotated[int, typer.Option("--question-id", "-i", help="The question to render.")],
    answers: Annotated[Path | None, typer.Option("--answers", "-a", help="Take the answer from this file.")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m")] = None,
    judge: JudgeOpt = "critiquellm",
    rubric: RubricOpt = None,
    protocol: ProtocolOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="text or json (the exact messages).")] = "text",
) -> None:
    """Print the exact judge prompt for one question (with a placeholder answer unless --answers)."""
    from alignbench import api

    with guarded():
        built = api.prompt(questions, question_id, answers=answers, model=model, judge=judge, rubric=rubric,
                           protocol=protocol)
    if fmt == "json":
        print_json(built.as_dict())
    else:
        print_messages(built.messages)


@app.command()
def show(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `alignbench score`.")],
    fmt: FormatOpt = "table",
    baseline_run: BaselineRunOpt = None,
    seed: SeedOpt = 0,
    question_id: Annotated[int | None, typer.Option(
        "--question-id", "-i", help="Print the judgment(s) of one question: scores, detail, the plan and "
                                    "execution sections (plan-execute protocol) and the judge's text.")] = None,
    compare_run: Annotated[list[Path] | None, typer.Option(
        "--compare-run", help="A `compare` folder: the judge's position bias from its pairwise verdicts.")] = None,
    audit: Annotated[bool, typer.Option(
        "--audit/--no-audit", help="Judge bias audit: length (characters, jieba words), Markdown format, "
                                   "model families (reads the run's answer file).")] = True,
) -> None:
    """Re-print a finished run without calling any judge (and its comparison with --baseline-run), with
    its human reviews, judge variance (score --samples) and a short judge bias audit."""
    from alignbench import api
    from alignbench.reporting.terminal import (
        print_comparison,
        print_disagreement,
        print_judgments,
        print_run_trust,
        print_summary,
    )

    with guarded():
        view = api.show(run_dir, baseline_run=baseline_run, question_id=question_id, compare_runs=compare_run or [],
                        audit=audit, seed=seed)
    if fmt == "json":
        print_json(view.as_json())
        return
    if question_id is not None:
        print_judgments(view.judgments, console)
        return
    print_summary(view.run.summary, view.rubric, console)
    if view.run.summary.ensemble:
        print_disagreement(view.run.summary.ensemble, console)
    if view.comparison is not None:
        print_comparison(view.comparison, console)
    print_run_trust(view.trust, console)


cache_app = typer.Typer(help="Inspect or clear the judge reply cache.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")


@cache_app.command("info")
def cache_info(cache: CacheOpt = None) -> None:
    """Where the cache is, how many replies it holds per judge."""
    from alignbench.cache import ReplyStore

    with guarded(), ReplyStore(cache) as store:
        stats = store.stats()
    console.print_json(json.dumps(stats, ensure_ascii=False))


@cache_app.command("clear")
def cache_clear(
    cache: CacheOpt = None,
    judge: Annotated[str | None, typer.Option("--judge-fingerprint", help="Only replies of this judge (e.g. openai:gpt-4o).")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
) -> None:
    """Delete cached replies (they cost money to get back)."""
    from alignbench.cache import ReplyStore

    if not yes:
        typer.confirm("Delete cached judge replies?", abort=True)
    with guarded(), ReplyStore(cache) as store:
        n = store.clear(judge)
    console.print(f"deleted {n} replies")

