"""``alignbench answer`` (answers from the model under test) and ``alignbench run`` (answer -> score)."""

from __future__ import annotations

import asyncio
import importlib
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from alignbench.answering import (
    AnswerProgress,
    AnswerRun,
    AnswerSettings,
    ServerDown,
    default_max_tokens,
    generate_answers,
    load_temperatures,
    model_config,
)
from alignbench.cache import NullStore, ReplyStore
from alignbench.cli.app import app, console, err_console, fail, is_tty
from alignbench.cli.score import (
    FormatOpt,
    JudgeModelOpt,
    JudgeOpt,
    JudgeUrlOpt,
    QuestionsOpt,
    RubricOpt,
    _judge_config,
    _make_judge,
    _progress_display,
    _rubric,
    _run,
    run_guarded,
)
from alignbench.data import InputError, file_sha256, join, load_answers, load_questions
from alignbench.judges import JudgeConfigError, make_judge
from alignbench.report.terminal import print_summary
from alignbench.rubrics import Rubric
from alignbench.runner import FatalJudgeError, RetryPolicy
from alignbench.scoring import RunInfo, default_run_dir, plan, usage_totals, write_run
from alignbench.types import Question

ModelNameOpt = Annotated[str, typer.Option(
    "--model-name", "-m", help="Name the answers are filed under (model_id, answer_id, reports).")]
BaseUrlOpt = Annotated[str | None, typer.Option(
    "--base-url", help="OpenAI-compatible server of the model under test (vLLM, SGLang, llama.cpp, an API).")]
HfOpt = Annotated[str | None, typer.Option(
    "--hf", help="Local transformers model folder (instead of --base-url); needs the 'local' extra (torch, transformers).")]
ModelIdOpt = Annotated[str | None, typer.Option(
    "--model-id", help="Model id sent to the server (default: --model-name).")]
ApiKeyEnvOpt = Annotated[str | None, typer.Option(
    "--api-key-env", help="Environment variable holding the server's API key (default: none is sent).")]
ConcurrencyOpt = Annotated[int, typer.Option("--concurrency", "-c", min=1, help="Answer requests in flight.")]
SystemPromptOpt = Annotated[str | None, typer.Option(
    "--system-prompt", help="System message before every question (default: none, as upstream AlignBench).")]
MaxTokensOpt = Annotated[int | None, typer.Option(
    "--max-tokens", min=1, help="Answer token limit (default from generation.yaml: 2048; raise it for reasoning models).")]
TemperaturesOpt = Annotated[Path | None, typer.Option(
    "--temperatures", help="YAML/JSON mapping category -> temperature (overrides AlignBench's 0.1/0.7 defaults).")]
KeepThinkOpt = Annotated[bool, typer.Option(
    "--keep-think/--strip-think", help="Keep a leading <think>…</think> block in the answer (default: move it to 'reasoning').")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds per answer request.")]
AttemptsOpt = Annotated[int, typer.Option("--attempts", min=1, help="Calls per request on 429/5xx/timeouts, first included.")]
DeviceOpt = Annotated[str | None, typer.Option("--device", help="--hf models: auto, cpu or cuda.")]
BatchSizeOpt = Annotated[int | None, typer.Option("--batch-size", min=1, help="--hf models: prompts per generate call.")]


def _settings(rub: Rubric, model_name: str, model_id: str, backend: str, temperatures: Path | None,
              max_tokens: int | None, system_prompt: str | None, keep_think: bool) -> AnswerSettings:
    try:
        table = load_temperatures(temperatures, rub)
    except InputError as exc:
        raise fail(str(exc)) from None
    return AnswerSettings(model_name=model_name, model_id=model_id, backend=backend, temperatures=table,
                          max_tokens=max_tokens or default_max_tokens(), system_prompt=system_prompt or None,
                          keep_think=keep_think)


def _answer_phase(qs: list[Question], settings: AnswerSettings, out: Path, *, base_url: str | None, hf: str | None,
                  api_key_env: str | None, concurrency: int, timeout: float, attempts: int,
                  store: ReplyStore, options: dict[str, Any] | None = None) -> AnswerRun:
    """Generate the missing answers into ``out``; exits with one clear line on any fatal problem."""
    try:
        config = model_config(base_url=base_url, hf=hf, model_id=settings.model_id, api_key_env=api_key_env,
                              timeout=timeout, concurrency=concurrency,
                              options={k: v for k, v in (options or {}).items() if v is not None})
        client = make_judge(config)
    except JudgeConfigError as exc:
        raise fail(str(exc)) from None

    def announce(run: AnswerRun) -> None:
        if run.dropped_partial:
            err_console.print(f"[yellow]note:[/] removed a partial last line ({run.dropped_partial} bytes) "
                              f"left in {out} by an interrupted run; that question is asked again", highlight=False, soft_wrap=True)
        if run.kept == run.total:
            err_console.print(f"all {run.total} questions are already answered in {out}; nothing to ask",
                              highlight=False, soft_wrap=True)
        elif run.kept:
            err_console.print(f"resuming: {run.kept} of {run.total} questions already answered in {out}; "
                              f"asking the other {run.total - run.kept}", highlight=False, soft_wrap=True)
        if run.mismatched:
            err_console.print(f"[yellow]warning:[/] {run.mismatched} kept answers were generated with other "
                              "settings (model id, temperature, max tokens or system prompt) than this run; "
                              "delete them from the file to regenerate", highlight=False, soft_wrap=True)

    async def go() -> AnswerRun:
        try:
            with _progress_display(len(qs), is_tty(), label="answering") as update:
                return await generate_answers(qs, client, settings, out, store, concurrency=concurrency,
                                              retry=RetryPolicy(attempts=attempts),
                                              progress=AnswerProgress(on_update=update), before_start=announce)
        finally:
            await client.aclose()

    try:
        result = asyncio.run(go())
    except InputError as exc:
        raise fail(str(exc)) from None
    except ServerDown as exc:
        raise fail(str(exc)) from None
    except FatalJudgeError as exc:
        hint = " (is --model-id the id the server serves? GET /v1/models lists them)" if "404" in str(exc) else \
            " (pass --api-key-env VAR naming the variable that holds the key)" if str(exc)[:3] in ("401", "403") \
            else ""
        raise fail(f"the model under test refused the request: {exc}{hint}") from None
    except KeyboardInterrupt:
        err_console.print(f"[yellow]interrupted:[/] every answer received so far is in {out}; "
                          "run the same command again to answer the rest")
        raise typer.Exit(130) from None
    finally:
        store.close()
    _report_answers(result, out)
    if not result.complete:
        first = next(iter(result.failed.values()))
        raise fail(f"{len(result.failed)} of {result.total} questions got no answer (e.g. {first}); they are not "
                   f"in {out}: run the same command again to ask only those", code=1)
    return result


def _report_answers(run: AnswerRun, out: Path) -> None:
    parts = [f"{run.written} new", f"{run.kept} kept"]
    if run.failed:
        parts.append(f"[red]{len(run.failed)} failed[/]")
    line = (f"answers: {run.kept + run.written} of {run.total} in {out} ({', '.join(parts)}); "
            f"tokens in {run.prompt_tokens:,}, out {run.completion_tokens:,}; calls {run.calls}, retries {run.retries}")
    err_console.print(line, highlight=False, soft_wrap=True)
    if run.reasoning:
        err_console.print(f"{run.reasoning} answers began with a <think> block, moved to the 'reasoning' field "
                          "(--keep-think keeps it in the answer)", highlight=False, soft_wrap=True)
    if run.unclosed:
        err_console.print(f"[yellow]warning:[/] {run.unclosed} answers never closed <think> (the model ran out of "
                          "tokens while thinking); their answer is empty: raise --max-tokens", highlight=False, soft_wrap=True)
    if run.empty - run.unclosed > 0:
        err_console.print(f"[yellow]warning:[/] {run.empty - run.unclosed} answers are empty even after "
                          "fresh samples; they are kept and will be judged as they are", highlight=False, soft_wrap=True)


def _load_questions(path: Path, rub: Rubric) -> list[Question]:
    try:
        return load_questions(path, rub)
    except InputError as exc:
        message = str(exc)
        if "not valid JSON" in message and path.suffix.lower() not in (".jsonl", ".json", ".ndjson"):
            message += " — questions must be JSONL (one JSON object per line, AlignBench's format)"
        raise fail(message) from None


def _model_id(model_name: str, model_id: str | None, hf: str | None) -> tuple[str, str]:
    if hf is not None:
        return "hf", hf
    return "openai", model_id or model_name


def _store(use_cache: bool, cache: Path | None) -> ReplyStore:
    return ReplyStore(cache) if use_cache or cache else NullStore()


@app.command()
def answer(
    questions: QuestionsOpt,
    model_name: ModelNameOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="Answer file (JSONL); also the resume record.")],
    base_url: BaseUrlOpt = None,
    hf: HfOpt = None,
    model_id: ModelIdOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    concurrency: ConcurrencyOpt = 16,
    system_prompt: SystemPromptOpt = None,
    max_tokens: MaxTokensOpt = None,
    temperatures: TemperaturesOpt = None,
    keep_think: KeepThinkOpt = False,
    timeout: TimeoutOpt = 300.0,
    attempts: AttemptsOpt = 6,
    device: DeviceOpt = None,
    batch_size: BatchSizeOpt = None,
    rubric: Annotated[str, typer.Option("--rubric", help="Rubric set whose categories the questions use.")] = "alignbench",
    use_cache: Annotated[bool, typer.Option("--use-cache", help="Read/write answers in the SQLite reply cache (off: answers are samples).")] = False,
    cache: Annotated[Path | None, typer.Option("--cache", help="SQLite cache file (implies --use-cache).")] = None,
) -> None:
    """Generate one answer per question from the model under test, in AlignBench's answer format.

    Each answer is appended to --out as it arrives; re-running the same command skips the questions
    already answered, so a killed run loses only the answers in flight.
    """
    rub = _rubric(rubric)
    qs = _load_questions(questions, rub)
    backend, mid = _model_id(model_name, model_id, hf)
    settings = _settings(rub, model_name, mid, backend, temperatures, max_tokens, system_prompt, keep_think)
    _answer_phase(qs, settings, out, base_url=base_url, hf=hf, api_key_env=api_key_env, concurrency=concurrency,
                  timeout=timeout, attempts=attempts, store=_store(use_cache, cache),
                  options={"device": device, "batch_size": batch_size})


@app.command()
def run(
    questions: QuestionsOpt,
    model_name: ModelNameOpt,
    base_url: BaseUrlOpt = None,
    hf: HfOpt = None,
    judge: JudgeOpt = "critiquellm",
    judge_model: JudgeModelOpt = None,
    judge_base_url: JudgeUrlOpt = None,
    rubric: RubricOpt = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run folder (answers.jsonl, judgments, summary). Default: reports/<model>__<judge>__<rubric>.")] = None,
    model_id: ModelIdOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    concurrency: ConcurrencyOpt = 16,
    system_prompt: SystemPromptOpt = None,
    max_tokens: MaxTokensOpt = None,
    temperatures: TemperaturesOpt = None,
    keep_think: KeepThinkOpt = False,
    timeout: TimeoutOpt = 300.0,
    attempts: AttemptsOpt = 6,
    device: DeviceOpt = None,
    batch_size: BatchSizeOpt = None,
    judge_concurrency: Annotated[int, typer.Option("--judge-concurrency", min=1, help="Judge requests in flight (per judge server).")] = 16,
    judge_timeout: Annotated[float, typer.Option("--judge-timeout", help="Seconds per judge request.")] = 120.0,
    parse_retries: Annotated[int, typer.Option("--parse-retries", min=0, help="Fresh judge samples after an unparseable judgment.")] = 1,
    max_answer_chars: Annotated[int | None, typer.Option("--max-answer-chars", help="Clip longer answers in the judge prompt.")] = 12000,
    cache: Annotated[Path | None, typer.Option("--cache", help="SQLite judge reply cache (default $ALIGNBENCH_CACHE or ~/.cache/alignbench/replies.sqlite).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the judge reply cache.")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed for confidence intervals.")] = 0,
    fmt: FormatOpt = "table",
) -> None:
    """Answer the questions with the model under test, judge the answers, print the scores.

    Everything lands in one run folder. Re-running the same command resumes: answers already in
    answers.jsonl are not asked again and judge replies come from the cache.
    """
    config = _judge_config(judge, judge_model, judge_base_url, rubric, concurrency=judge_concurrency,
                           timeout=judge_timeout)
    rub = _rubric(config.rubric)
    qs = _load_questions(questions, rub)
    backend, mid = _model_id(model_name, model_id, hf)
    settings = _settings(rub, model_name, mid, backend, temperatures, max_tokens, system_prompt, keep_think)
    run_dir = out or default_run_dir(model_name, config.name, rub)
    answers_path = run_dir / "answers.jsonl"
    judge_impl = _make_judge(config)  # a judge misconfiguration fails before any answer is paid for
    _answer_phase(qs, settings, answers_path, base_url=base_url, hf=hf, api_key_env=api_key_env,
                  concurrency=concurrency, timeout=timeout, attempts=attempts, store=NullStore(),
                  options={"device": device, "batch_size": batch_size})

    try:  # the score pipeline, as `alignbench score` runs it
        # Empty answers are the model's real output (kept after fresh samples): judge them as they are.
        joined = join(qs, load_answers(answers_path, model=model_name, allow_empty=True), answers_path)
    except InputError as exc:
        raise fail(str(exc)) from None
    items = plan(joined.pairs, rub, config, max_answer_chars)
    store = NullStore() if no_cache else ReplyStore(cache)
    judgments, runner = run_guarded(_run(items, rub, judge_impl, store, config, attempts, parse_retries), store,
                                    saved="answers are in the run folder and judge replies in the cache")
    info = RunInfo(model=model_name, judge=config.public(), rubric=rub.id, questions_path=str(questions),
                   questions_sha256=file_sha256(questions), answers_path=str(answers_path),
                   missing_answers=joined.missing.get(model_name, []), max_answer_chars=max_answer_chars,
                   extra={"generation": _generation_record(settings)})
    summary = write_run(run_dir, judgments, rub, info, usage_totals(judgments, runner), seed=seed)
    summary["run"]["dir"] = str(run_dir)
    report = _write_report(run_dir, seed)
    if fmt == "json":
        print(json.dumps(summary, ensure_ascii=False, indent=2))
        return
    print_summary(summary, rub, console)
    console.print(f"[dim]run folder: {run_dir}[/]", highlight=False, soft_wrap=True)
    if report:
        console.print(f"[dim]report: {report}[/]", highlight=False, soft_wrap=True)


def _generation_record(settings: AnswerSettings) -> dict[str, Any]:
    """How the answers were produced, for summary.json (no URL, no key: only what shapes the answers)."""
    return {"backend": settings.backend, "model": settings.model_id, "max_tokens": settings.max_tokens,
            "temperatures": settings.temperatures.by_category, "default_temperature": settings.temperatures.default,
            "temperature_sources": list(settings.temperatures.sources), "system_prompt": settings.system_prompt,
            "keep_think": settings.keep_think}


def _write_report(run_dir: Path, seed: int) -> Path | None:
    """report.md in the run folder, when the Markdown report module is installed.

    The scores are already on disk when this runs, so a report that cannot be written is a warning,
    not a failed run (``alignbench report`` can write it later from the same folder).
    """
    try:
        module = importlib.import_module("alignbench.report.markdown")
    except ImportError:
        return None
    writer = getattr(module, "write_report", None)
    if writer is None:
        return None

    def warn(message: str) -> None:
        err_console.print(f"[yellow]report:[/] {message}", highlight=False, soft_wrap=True)

    try:
        result = writer([run_dir], run_dir / "report.md", seed=seed, warn=warn)
    except (ValueError, OSError) as exc:  # RunError is a ValueError
        warn(f"report.md not written: {exc}")
        return None
    return Path(getattr(result, "path", run_dir / "report.md"))
