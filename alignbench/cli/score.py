"""``alignbench score``, ``show``, ``prompt`` and ``cache``: the core pointwise workflow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from alignbench.cli.app import app, console, guarded, progress, warn
from alignbench.cli.options import (
    AllowEmptyOpt,
    BaselineRunOpt,
    CacheOpt,
    DryRunOpt,
    ForceOpt,
    FormatOpt,
    JudgeOrUpstreamOpt,
    MaxFailedOpt,
    ProtocolOpt,
    QuestionsOrUpstreamOpt,
    RubricOpt,
    SeedOpt,
    UpstreamOpt,
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
    answers: Annotated[list[Path], typer.Option("--answers", "-a", help="Answer file(s), JSONL; repeat for several models.")],
    questions: QuestionsOrUpstreamOpt = None,
    judge: JudgeOrUpstreamOpt = None,
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
    a killed run picks up where it stopped. `--judge a,b` averages an ensemble of judges. `--upstream
    PATH` (a THUDM/AlignBench clone) judges with the official AlignBench protocol read from it.
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
    from alignbench.canary import DRIFT_EXIT, drift_message

    for run in runs.values():
        for message in getattr(run.summary.run, "notes", None) or []:
            warn(message)
    drifts = list(dict.fromkeys(m for r in runs.values() if (m := drift_message(getattr(r.summary.run, "canary", None)))))
    if fmt == "json":
        payloads = {m: r.summary.as_json() for m, r in runs.items()}
        print_json(next(iter(payloads.values())) if len(payloads) == 1 else {"models": payloads})
        for message in drifts:
            warn(message)
        exit_on_run_failures(runs, max_failed)
        if drifts:
            raise typer.Exit(DRIFT_EXIT)
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
        canary = getattr(run.summary.run, "canary", None)
        if isinstance(canary, dict) and not canary.get("drift"):
            from alignbench.stats import fmt as f

            prev = (canary.get("compared_with") or {}).get("time")
            console.print(f"judge canary: {canary['items']} items" + (
                f", {f.signed(canary.get('shift'))} points vs {prev} (p {f.p_value(canary.get('p_value'))}), no drift"
                if prev else ", first record of this judge"), style="dim", markup=False, highlight=False)
        console.print(f"run folder: {run.dir}", style="dim", markup=False, highlight=False)
    for message in drifts:
        warn(message)
    exit_on_run_failures(runs, max_failed)
    if drifts:
        raise typer.Exit(DRIFT_EXIT)


def _print_dry_run(p) -> None:  # noqa: ANN001 - an api.ScorePlan
    if not p.items:
        return
    first = p.items[0]
    console.print(f"{len(p.items)} request(s) would go to {p.config.name} ({p.config.model})"
                  + (f" plus {len(p.canary)} judge canary request(s), never cached" if p.canary else "")
                  + f"; first: question {first.question.id}, model {first.answer.model}", style="bold", markup=False,
                  highlight=False)
    print_messages(first.request.messages)


@app.command()
def prompt(
    question_id: Annotated[int, typer.Option("--question-id", "-i", help="The question to render.")],
    questions: QuestionsOrUpstreamOpt = None,
    answers: Annotated[Path | None, typer.Option("--answers", "-a", help="Take the answer from this file.")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m")] = None,
    judge: JudgeOrUpstreamOpt = None,
    rubric: RubricOpt = None,
    protocol: ProtocolOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="text or json (the exact messages).")] = "text",
    upstream: UpstreamOpt = None,
) -> None:
    """Print the exact judge prompt for one question (with a placeholder answer unless --answers)."""
    from alignbench import api

    with guarded():
        built = api.prompt(questions, question_id, answers=answers, model=model, judge=judge, rubric=rubric,
                           protocol=protocol, upstream=upstream)
    if fmt == "json":
        print_json(built.as_dict())
    else:
        print_messages(built.messages)


@app.command()
def show(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `alignbench score`, or a folder of them "
                                                 "(a multi-model --out: each model's run in turn).")],
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
    from alignbench.rundir import expand_runs

    folders = expand_runs([run_dir])  # a multi-model --out: each model's run, as report and view take it
    with guarded():
        views = [api.show(folder, baseline_run=baseline_run, question_id=question_id, compare_runs=compare_run or [],
                          audit=audit, seed=seed) for folder in folders]
    if fmt == "json":
        print_json(views[0].as_json() if len(views) == 1 else [v.as_json() for v in views])
        return
    for view in views:
        if len(views) > 1:
            console.rule(escape(f"{view.run.label} ({view.run.dir})"), style="dim")
        if question_id is not None:
            for title, text in (("问题 question", view.question.question if view.question else None),
                                ("回答 answer", view.answer.text if view.answer else None)):
                if text is not None:
                    console.rule(title, style="cyan", align="left")
                    console.print(text, markup=False, highlight=False)
            if view.texts_note:
                console.print(f"[dim]{escape(view.texts_note)}[/]", highlight=False)
            print_judgments(view.judgments, console)
            continue
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

