"""``alignbench answer`` (answers from the model under test) and ``alignbench run`` (answer -> score)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import Annotated, Any

import typer

from alignbench.cli.app import app, console, err_console, fail, guarded, progress, warn
from alignbench.cli.options import (
    AttemptsOpt,
    BatchFallbackOpt,
    BatchOpt,
    FormatOpt,
    JudgeModelOpt,
    JudgeOpt,
    JudgeUrlOpt,
    MaxCostOpt,
    MaxFailedOpt,
    NoWaitOpt,
    ParseRetriesOpt,
    QuestionsOpt,
    RubricOpt,
    allowed_failures,
    batch_arg,
    cache_arg,
    exit_on_run_failures,
    paying,
    print_json,
    show_estimates,
)

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
ConcurrencyOpt = Annotated[int | None, typer.Option(
    "--concurrency", "-c", min=1, show_default=False,
    help="Answer requests in flight [default: 16, lowered to what a server that does not say its parallelism runs "
         "at once]. A number given here is used as stated.")]
SystemPromptOpt = Annotated[str | None, typer.Option(
    "--system-prompt", help="System message before every question (default: none, as upstream AlignBench).")]
MaxTokensOpt = Annotated[int | None, typer.Option(
    "--max-tokens", min=1, help="Answer token limit (default from generation.yaml: 2048; raise it for reasoning models).")]
TemperaturesOpt = Annotated[Path | None, typer.Option(
    "--temperatures", help="YAML/JSON mapping category -> temperature (overrides AlignBench's 0.1/0.7 defaults).")]
KeepThinkOpt = Annotated[bool, typer.Option(
    "--keep-think/--strip-think", help="Keep a leading <think>…</think> block in the answer (default: move it to 'reasoning').")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", min=0.001, help="Seconds per answer request.")]
DeviceOpt = Annotated[str | None, typer.Option("--device", help="--hf models: auto, cpu or cuda.")]
BatchSizeOpt = Annotated[int | None, typer.Option("--batch-size", min=1, help="--hf models: prompts per generate call.")]


def _announce(out: Path) -> Callable[[Any], None]:
    """What an answer file already holds, said before any question is asked (``before_start``)."""

    def announce(run: Any) -> None:
        if run.dropped_partial:
            err_console.print(f"note: removed a partial last line ({run.dropped_partial} bytes) left in {out} by an "
                              "interrupted run; that question is asked again", markup=False, highlight=False)
        if run.kept == run.total:
            err_console.print(f"all {run.total} questions are already answered in {out}; nothing to ask",
                              markup=False, highlight=False)
        elif run.kept:
            err_console.print(f"resuming: {run.kept} of {run.total} questions already answered in {out}; "
                              f"asking the other {run.total - run.kept}", markup=False, highlight=False)
        if run.mismatched:
            err_console.print(f"warning: {run.mismatched} kept answers were generated with other settings (model id, "
                              "temperature, max tokens or system prompt) than this run; delete them from the file "
                              "to regenerate", style="yellow", markup=False, highlight=False)

    return announce


@contextmanager
def _answer_errors(questions: Path, out: Path) -> Iterator[None]:
    """Errors while answering, as one line each: a model server that refuses (with the likely fix), input
    that is not JSONL, then the common guard (saying the answers so far are kept) and the --batch ends."""
    from alignbench.data import InputError
    from alignbench.engine import FatalCallError

    with guarded(saved=f"every answer received so far is in {out}"), paying():
        try:
            yield
        except FatalCallError as exc:
            hint = " (is --model-id the id the server serves? GET /v1/models lists them)" if "404" in str(exc) \
                else " (pass --api-key-env VAR naming the variable that holds the key)" if str(exc)[:3] in (
                    "401", "403") else ""
            raise fail(f"the model under test refused the request: {exc}{hint}") from None
        except InputError as exc:
            message = str(exc)
            if "not valid JSON" in message and Path(questions).suffix.lower() not in (".jsonl", ".json", ".ndjson"):
                message += " — questions must be JSONL (one JSON object per line, AlignBench's format)"
            raise fail(message) from None


def _answer_phase(questions: Path, model_name: str, out: Path, **kwargs: Any) -> Any:
    """Generate the missing answers into ``out``; exits with one clear line on any fatal problem."""
    from alignbench import api

    with _answer_errors(questions, out), progress() as on_event:
        result = api.answer(questions, model_name, out, on_event=on_event, before_start=_announce(out), **kwargs)
    _report_answers(result, out)
    if not result.complete:
        raise _incomplete(result, out)
    return result


def _incomplete(run: Any, out: Path) -> typer.Exit:
    first = next(iter(run.failed.values()))
    return fail(f"{len(run.failed)} of {run.total} questions got no answer (e.g. {first}); they are not "
                f"in {out}: run the same command again to ask only those", code=1)


def _report_answers(run: Any, out: Path) -> None:
    parts = [f"{run.written} new", f"{run.kept} kept"]
    if run.failed:
        parts.append(f"[red]{len(run.failed)} failed[/]")
    line = (f"answers: {run.kept + run.written} of {run.total} in {out} ({', '.join(parts)}); "
            f"tokens in {run.prompt_tokens:,}, out {run.completion_tokens:,}; calls {run.calls}, retries {run.retries}")
    err_console.print(line, highlight=False, soft_wrap=True)
    if run.reasoning:
        err_console.print(f"{run.reasoning} answers began with a <think> block, moved to the 'reasoning' field "
                          "(--keep-think keeps it in the answer)", highlight=False, soft_wrap=True)
    if getattr(run, "leaked", 0):
        warn(f"{run.leaked} answers have reasoning leaked into their final text (think tags after the answer began, "
             "or beside a separate reasoning_content); marked reasoning_leaked")
    if getattr(run, "truncated", 0):
        warn(f"{run.truncated} answers were cut at --max-tokens (finish_reason length); marked truncated: raise "
             "--max-tokens to let them finish")
    if run.unclosed:
        warn(f"{run.unclosed} answers never closed <think> (the model ran out of tokens while thinking); their "
             "answer is empty: raise --max-tokens")
    if run.empty - run.unclosed > 0:
        warn(f"{run.empty - run.unclosed} answers are empty even after fresh samples; they are kept and will be "
             "judged as they are")


@app.command()
def answer(
    questions: QuestionsOpt,
    model_name: ModelNameOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="Answer file (JSONL); also the resume record.")],
    base_url: BaseUrlOpt = None,
    hf: HfOpt = None,
    model_id: ModelIdOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    concurrency: ConcurrencyOpt = None,
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
    batch: BatchOpt = False,
    no_wait: NoWaitOpt = False,
    batch_fallback: BatchFallbackOpt = "batch",
    max_cost: MaxCostOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would be sent and its estimated cost; call nothing.")] = False,
    fmt: Annotated[str, typer.Option("--format", help="table or json (--dry-run's estimate).")] = "table",
) -> None:
    """Generate one answer per question from the model under test, in AlignBench's answer format.

    Each answer is appended to --out as it arrives; re-running the same command skips the questions
    already answered, so a killed run loses only the answers in flight. With --batch the answers are
    asked through the provider's batch API (the replies wait in the reply cache).
    """
    paid = batch_arg(batch, no_wait, batch_fallback)
    settings = dict(base_url=base_url, hf=hf, model_id=model_id, api_key_env=api_key_env, concurrency=concurrency,
                    system_prompt=system_prompt, max_tokens=max_tokens, temperatures=temperatures,
                    keep_think=keep_think, timeout=timeout, attempts=attempts, rubric=rubric, cache=cache or use_cache,
                    options={"device": device, "batch_size": batch_size}, batch=paid, max_cost=max_cost)
    if dry_run:
        from alignbench import api

        with guarded(), paying():
            estimate = api.answer(questions, model_name, out, dry_run=True, **settings)
        show_estimates([estimate], fmt)
        return
    _answer_phase(questions, model_name, out, **settings)


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
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run folder (answers.jsonl, judgments, summary). Default: a folder under reports/ named after the model, judge and rubric.")] = None,
    model_id: ModelIdOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    concurrency: ConcurrencyOpt = None,
    system_prompt: SystemPromptOpt = None,
    max_tokens: MaxTokensOpt = None,
    temperatures: TemperaturesOpt = None,
    keep_think: KeepThinkOpt = False,
    timeout: TimeoutOpt = 300.0,
    attempts: AttemptsOpt = 6,
    device: DeviceOpt = None,
    batch_size: BatchSizeOpt = None,
    judge_concurrency: Annotated[int | None, typer.Option("--judge-concurrency", min=1, help="Judge requests in flight (per judge server) [default: 16, learnt as --concurrency].")] = None,
    judge_timeout: Annotated[float, typer.Option("--judge-timeout", min=0.001, help="Seconds per judge request.")] = 120.0,
    judge_max_tokens: Annotated[int | None, typer.Option("--judge-max-tokens", min=1, help="Judge output token limit (default: the preset's).")] = None,
    max_failed: MaxFailedOpt = "5%",
    parse_retries: ParseRetriesOpt = 1,
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
    from alignbench import api
    from alignbench.answering import IncompleteAnswers

    allowed_failures(max_failed, 1)  # a bad value fails now, not after the answering and the judging
    phases = _Phases(questions)
    try:
        result = api.run(questions, model_name=model_name, base_url=base_url, hf=hf, judge=judge,
                         judge_model=judge_model, judge_base_url=judge_base_url, rubric=rubric, out=out,
                         model_id=model_id, api_key_env=api_key_env, concurrency=concurrency,
                         system_prompt=system_prompt, max_tokens=max_tokens, temperatures=temperatures,
                         keep_think=keep_think, timeout=timeout, attempts=attempts,
                         options={"device": device, "batch_size": batch_size}, judge_concurrency=judge_concurrency,
                         judge_timeout=judge_timeout, judge_max_tokens=judge_max_tokens, parse_retries=parse_retries,
                         max_answer_chars=max_answer_chars, cache=cache_arg(cache, no_cache), seed=seed,
                         on_event=phases.on_event, on_phase=phases.begin, before_start=phases.announce,
                         on_answers=phases.answered, warn=_report_warning)
    except IncompleteAnswers as exc:
        phases.end()
        raise _incomplete(exc.answers, exc.path) from None
    except BaseException:
        phases.end()
        with phases.guard():
            raise
    phases.end()
    if fmt == "json":
        print_json(result.summary.as_json())
        exit_on_run_failures(result, max_failed)
        return
    from alignbench.reporting.terminal import print_summary
    from alignbench.rubrics import load_rubric

    print_summary(result.summary, load_rubric(result.summary.run.rubric.split("@")[0]), console)
    console.print(f"run folder: {result.dir}", style="dim", markup=False, highlight=False)
    if result.report:
        console.print(f"report: {result.report}", style="dim", markup=False, highlight=False)
    exit_on_run_failures(result, max_failed)


def _report_warning(message: str) -> None:
    err_console.print(f"report: {message}", style="yellow", markup=False, highlight=False)


class _Phases:
    """What ``run`` shows while ``api.run`` works, phase by phase (``api.RUN_PHASES``): a progress display
    for the answering and another for the judging, the answer file's state before and the answers' line
    after, and, for an error, the guard of the phase it came from (a model under test that refuses is not
    a judge that refuses; an interrupted answering keeps its answers in the file)."""

    def __init__(self, questions: Path) -> None:
        self.questions = questions
        self.name = "check"  # until api.run says otherwise: the judge's settings and server
        self.answers = Path()  # the run folder's answer file, once api.run has named the folder
        self._stack = ExitStack()
        self._handler: Any = None

    def begin(self, name: str, run_dir: Path) -> None:
        self.end()
        self.name, self.answers = name, run_dir / "answers.jsonl"
        if name in ("answer", "score"):
            self._handler = self._stack.enter_context(progress())

    def end(self) -> None:
        self._handler = None
        self._stack.close()

    def on_event(self, event: Any) -> None:
        if self._handler is not None:
            self._handler(event)

    def announce(self, answers: Any) -> None:
        _announce(self.answers)(answers)

    def answered(self, answers: Any) -> None:
        self.end()
        _report_answers(answers, self.answers)

    def guard(self) -> AbstractContextManager[None]:
        if self.name == "answer":
            return _answer_errors(self.questions, self.answers)
        if self.name == "score":
            return guarded(saved="answers are in the run folder and judge replies in the cache")
        if self.name == "report":
            return nullcontext()
        return guarded()
