"""``alignbench score``, ``show``, ``prompt`` and ``cache``: the core pointwise workflow."""

from __future__ import annotations

import asyncio
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from alignbench.cache import NullStore, ReplyStore
from alignbench.cli.app import app, console, err_console, fail, is_tty
from alignbench.data import InputError, file_sha256, join, load_answers, load_questions
from alignbench.judges import JudgeConfig, JudgeConfigError, make_judge, resolve_judge
from alignbench.report.terminal import print_summary
from alignbench.rubrics import Rubric, RubricError, load_rubric
from alignbench.runner import FatalJudgeError, RetryPolicy
from alignbench.scoring import (
    Item,
    RunInfo,
    default_run_dir,
    judge_items,
    plan,
    read_run,
    usage_totals,
    write_run,
)
from alignbench.scoring import Progress as RunProgress

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

# Options shared by every command that calls a judge (score, compare, meta-eval, run).
ConcurrencyOpt = Annotated[int, typer.Option("--concurrency", "-c", min=1, help="Requests in flight (per judge server).")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds per judge request.")]
AttemptsOpt = Annotated[int, typer.Option("--attempts", min=1, help="Calls per request on 429/5xx/timeouts, first included.")]
TemperatureOpt = Annotated[float | None, typer.Option("--temperature", help="Judge temperature (default: the preset's, usually 0).")]
MaxTokensOpt = Annotated[int | None, typer.Option("--max-tokens", help="Judge output token limit.")]
CacheOpt = Annotated[Path | None, typer.Option("--cache", help="SQLite reply cache (default $ALIGNBENCH_CACHE or ~/.cache/alignbench/replies.sqlite).")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the reply cache.")]
AllowEmptyOpt = Annotated[bool, typer.Option("--allow-empty", help="Judge empty answers instead of rejecting the file.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print the first prompt and what would be sent; call nothing.")]


def _judge_config(judge: str, judge_model: str | None, judge_base_url: list[str] | None, rubric: str | None,
                  **extra: Any) -> JudgeConfig:
    urls = [u.strip() for raw in (judge_base_url or []) for u in raw.split(",") if u.strip()]
    try:
        return resolve_judge(judge, model=judge_model, base_url=urls or None, rubric=rubric, **extra)
    except JudgeConfigError as exc:
        raise fail(str(exc)) from None


def _with_protocol(config: JudgeConfig, protocol: str | None) -> JudgeConfig:
    """The judge config with its rubric switched to ``protocol``'s variant of it (see rubric_for_protocol)."""
    if not protocol:
        return config
    from alignbench.rubrics import rubric_for_protocol
    try:
        return config.model_copy(update={"rubric": rubric_for_protocol(protocol, base=config.rubric)})
    except RubricError as exc:
        raise fail(str(exc)) from None


def _rubric(name: str) -> Rubric:
    try:
        return load_rubric(name)
    except RubricError as exc:
        raise fail(str(exc)) from None


@contextmanager
def _progress_display(total: int, enabled: bool, label: str = "judging"):
    """A rich progress bar on a terminal (done/total, rate, failures, elapsed, ETA); nothing on a pipe."""
    if not enabled:
        yield None
        return
    columns = [TextColumn(label), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}/s"), TextColumn("[red]{task.fields[failed]} failed"),
               TextColumn("[dim]{task.fields[cached]} cached"), TimeElapsedColumn(), TextColumn("ETA"),
               TimeRemainingColumn()]
    with Progress(*columns, console=err_console, transient=False) as bar:
        task = bar.add_task(label, total=total, rate="0.0", failed=0, cached=0)

        def update(p: RunProgress) -> None:
            elapsed = bar.tasks[0].elapsed or 1e-9
            bar.update(task, total=p.total or total, completed=p.done, rate=f"{p.done / elapsed:.1f}",
                       failed=p.failed, cached=p.cached)

        yield update


@app.command()
def score(
    questions: QuestionsOpt,
    answers: Annotated[list[Path], typer.Option("--answers", "-a", help="Answer file(s), JSONL; repeat for several models.")],
    judge: JudgeOpt = "critiquellm",
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model name for answer files without model_id.")] = None,
    judge_model: JudgeModelOpt = None,
    judge_base_url: JudgeUrlOpt = None,
    rubric: RubricOpt = None,
    protocol: ProtocolOpt = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run folder (several models: one subfolder each). Default: reports/<model>__<judge>__<rubric>.")] = None,
    concurrency: ConcurrencyOpt = 16,
    timeout: TimeoutOpt = 120.0,
    attempts: AttemptsOpt = 6,
    parse_retries: Annotated[int, typer.Option("--parse-retries", min=0, help="Fresh samples asked after an unparseable judgment.")] = 1,
    max_answer_chars: Annotated[int | None, typer.Option("--max-answer-chars", help="Clip longer answers in the prompt (recorded in the judgment).")] = 12000,
    temperature: TemperatureOpt = None,
    max_tokens: MaxTokensOpt = None,
    cache: CacheOpt = None,
    no_cache: NoCacheOpt = False,
    allow_empty: AllowEmptyOpt = False,
    dry_run: DryRunOpt = False,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed for confidence intervals.")] = 0,
    fmt: FormatOpt = "table",
    device: Annotated[str | None, typer.Option("--device", help="hf judges: auto, cpu or cuda.")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", min=1, help="hf judges: prompts per generate call.")] = None,
) -> None:
    """Judge answers with a multi-dimension rubric and print per-category scores.

    Re-running the same command reads every stored reply from the cache: nothing is paid twice, and
    a killed run picks up where it stopped.
    """
    if "," in judge:  # an ensemble (--judge a,b): each judge scores on its own, then they are combined
        params = dict(locals())
        from alignbench.cli.metaeval import score_ensemble
        return score_ensemble(params)
    config = _judge_config(judge, judge_model, judge_base_url, rubric, concurrency=concurrency, timeout=timeout,
                           temperature=temperature, max_tokens=max_tokens,
                           options={"device": device, "batch_size": batch_size})
    config = _with_protocol(config, protocol)
    rub = _rubric(config.rubric)
    try:
        qs = load_questions(questions, rub)
        batches = []
        for path in answers:
            joined = join(qs, load_answers(path, model=model, allow_empty=allow_empty), path)
            batches.append((path, joined))
    except InputError as exc:
        raise fail(str(exc)) from None
    pairs = [p for _, joined in batches for p in joined.pairs]
    models = sorted({a.model for _, a in pairs})
    if len(models) != len({(str(path), m) for path, j in batches for m in {a.model for _, a in j.pairs}}):
        raise fail("the same model name appears in several answer files; give each file its own --model")
    for _, joined in batches:
        for name, ids in joined.missing.items():
            err_console.print(f"[yellow]warning:[/] {len(ids)} of {len(qs)} questions have no answer from {name}; "
                              "they are not judged and are listed in summary.json", highlight=False)
    items = plan(pairs, rub, config, max_answer_chars)
    store = NullStore() if no_cache or dry_run else ReplyStore(cache)
    if dry_run:
        _print_dry_run(items, config)
        return
    judge_impl = _make_judge(config)
    judgments, runner = run_guarded(_run(items, rub, judge_impl, store, config, attempts, parse_retries), store)
    summaries = {}
    for (path, joined), name in ((b, m) for b in batches for m in sorted({a.model for _, a in b[1].pairs})):
        mine = [j for j in judgments if j.model == name]
        run_dir = (out / _model_dir(name) if out and len(models) > 1 else out) or default_run_dir(name, config.name, rub)
        info = RunInfo(model=name, judge=config.public(), rubric=rub.id, questions_path=str(questions),
                       questions_sha256=file_sha256(questions), answers_path=str(path),
                       missing_answers=joined.missing.get(name, []), max_answer_chars=max_answer_chars)
        summary = write_run(run_dir, mine, rub, info, usage_totals(mine, runner), seed=seed)
        summary["run"]["dir"] = str(run_dir)
        summaries[name] = summary
        if fmt != "json":
            print_summary(summary, rub, console)
            console.print(f"[dim]run folder: {run_dir}[/]", highlight=False)
    if fmt == "json":
        payload = next(iter(summaries.values())) if len(summaries) == 1 else {"models": summaries}
        print(json.dumps(payload, ensure_ascii=False, indent=2))


def _model_dir(name: str) -> str:
    from alignbench.scoring import slug
    return slug(name)


class _ServerDown(RuntimeError):
    pass


def run_guarded(coro: Any, store: ReplyStore, saved: str = "every reply received so far is in the cache") -> Any:
    """Run a judging coroutine; turn Ctrl-C, a fatal judge error or a dead server into one clear line.

    Whatever happens the store is closed, and every reply already received stays in it.
    """
    try:
        return asyncio.run(coro)
    except KeyboardInterrupt:
        err_console.print(f"[yellow]interrupted:[/] {saved}; run the same command again to finish without paying twice")
        raise typer.Exit(130) from None
    except FatalJudgeError as exc:
        raise fail(f"{exc}. Check the judge model id and API key.") from None
    except _ServerDown as exc:
        raise fail(str(exc)) from None
    finally:
        store.close()


def _make_judge(config: JudgeConfig):
    try:
        return make_judge(config)
    except JudgeConfigError as exc:
        raise fail(str(exc)) from None


async def _run(items: list[Item], rub: Rubric, judge_impl, store, config: JudgeConfig, attempts: int,
               parse_retries: int):
    from alignbench.runner import Runner

    probe = Runner(judge_impl, store)
    probe.prefetch([it.request for it in items])
    uncached = sum(not probe.is_cached(it.request) for it in items)
    try:
        if uncached and hasattr(judge_impl, "check"):
            dead = await judge_impl.check()
            if dead and len(dead) == len(getattr(judge_impl, "urls", dead)):
                hint = f"; start one with: {config.serve_hint}" if config.serve_hint else ""
                raise _ServerDown(f"no judge server answers at {', '.join(dead)}{hint} "
                                  "(or pass --judge-base-url URL)")
        capacity = getattr(judge_impl, "capacity", config.concurrency)
        with _progress_display(len(items), is_tty()) as update:
            progress = RunProgress(on_update=update)
            return await judge_items(items, rub, judge_impl, store, config.name, concurrency=capacity,
                                     retry=RetryPolicy(attempts=attempts), parse_retries=parse_retries,
                                     progress=progress)
    finally:
        await judge_impl.aclose()


def _print_dry_run(items: list[Item], config: JudgeConfig) -> None:
    if not items:
        return
    first = items[0]
    console.print(f"[bold]{len(items)} request(s) would go to {config.name} ({config.model}); "
                  f"first: question {first.question.id}, model {first.answer.model}[/]", highlight=False)
    _print_messages(first.request.messages)


def _print_messages(messages) -> None:
    for message in messages:
        console.rule(f"[bold]{message['role']}")
        console.print(message["content"], markup=False, highlight=False)
    console.rule()


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
    config = _with_protocol(_judge_config(judge, None, None, rubric), protocol)
    rub = _rubric(config.rubric)
    from alignbench.prompts import build_request
    from alignbench.types import Answer

    try:
        qs = {q.id: q for q in load_questions(questions, rub)}
        if question_id not in qs:
            raise fail(f"question_id {question_id} is not in {questions}")
        answer = Answer(question_id=question_id, model=model or "model", text="{answer}")
        if answers is not None:
            found = [a for a in load_answers(answers, model=model) if a.question_id == question_id]
            if not found:
                raise fail(f"{answers} has no answer to question {question_id}")
            answer = found[0]
    except InputError as exc:
        raise fail(str(exc)) from None
    request, _ = build_request(rub, qs[question_id], answer, config.decoding, system_role=config.system_role)
    if fmt == "json":
        print(json.dumps({"messages": list(request.messages), "rubric": rub.id, **config.decoding.model_dump()},
                         ensure_ascii=False, indent=2))
    else:
        _print_messages(request.messages)


@app.command()
def show(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `alignbench score`.")],
    fmt: FormatOpt = "table",
    baseline_run: Annotated[Path | None, typer.Option(
        "--baseline-run", help="Compare with an earlier run folder (paired tests over shared questions).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the comparison's bootstrap and permutations.")] = 0,
    question_id: Annotated[int | None, typer.Option(
        "--question-id", "-i", help="Print the judgment(s) of one question: scores, detail, the plan and "
                                    "execution sections (plan-execute protocol) and the judge's text.")] = None,
) -> None:
    """Re-print a finished run without calling any judge (and its comparison with --baseline-run)."""
    if baseline_run is None:
        try:
            summary, judgments = read_run(run_dir)
        except FileNotFoundError as exc:
            raise fail(str(exc)) from None
        if question_id is not None:
            from alignbench.cli.metaeval import print_judgments
            print_judgments(run_dir, judgments, question_id, fmt)
            return
        if fmt == "json":
            print(json.dumps(summary, ensure_ascii=False, indent=2))
            return
        rub = _rubric(summary["run"]["rubric"].split("@")[0])
        print_summary(summary, rub, console)
        if summary.get("ensemble"):
            from alignbench.cli.metaeval import print_disagreement
            print_disagreement(summary["ensemble"])
        return
    from alignbench.report.compare import RunError, compare_runs, load_run, unique_labels
    from alignbench.report.terminal import print_comparison

    try:
        new, base = load_run(run_dir), load_run(baseline_run)
    except RunError as exc:
        raise fail(str(exc)) from None
    unique_labels([base, new])
    rub = _rubric(new.rubric_id.split("@")[0])
    cmp = compare_runs(base, new, rub, seed=seed)
    if fmt == "json":
        print(json.dumps({**new.summary, "comparison": cmp.as_dict()}, ensure_ascii=False, indent=2))
        return
    print_summary(new.summary, rub, console)
    print_comparison(cmp, console)


cache_app = typer.Typer(help="Inspect or clear the judge reply cache.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")


@cache_app.command("info")
def cache_info(cache: Annotated[Path | None, typer.Option("--cache")] = None) -> None:
    """Where the cache is, how many replies it holds per judge."""
    with ReplyStore(cache) as store:
        stats = store.stats()
    console.print_json(json.dumps(stats, ensure_ascii=False))


@cache_app.command("clear")
def cache_clear(
    cache: Annotated[Path | None, typer.Option("--cache")] = None,
    judge: Annotated[str | None, typer.Option("--judge-fingerprint", help="Only replies of this judge (e.g. openai:gpt-4o).")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
) -> None:
    """Delete cached replies (they cost money to get back)."""
    if not yes:
        typer.confirm("Delete cached judge replies?", abort=True)
    with ReplyStore(cache) as store:
        n = store.clear(judge)
    console.print(f"deleted {n} replies")
