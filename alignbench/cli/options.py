"""Option types shared by several commands (most by those that call a judge: score, compare, meta-eval,
run), the checks that turn option values into API arguments, and what commands write plainly to stdout
(JSON, prompts, estimates).

The judge settings score, compare and meta-eval share are one table, ``JUDGE_OPTIONS``: ``judge_options``
adds them to a command, which receives them as one ``alignbench.JudgeSettings`` (``judge_settings``), the
object an API caller passes as ``settings=``. A new shared setting is a field of ``JudgeSettings`` and a
row here."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.markup import escape

from alignbench.cli.app import err_console, fail, note

if TYPE_CHECKING:
    from alignbench.settings import JudgeSettings

F = TypeVar("F", bound=Callable[..., Any])

QuestionsOpt = Annotated[Path, typer.Option("--questions", "-q", help="AlignBench question file (JSONL).")]
# score and compare: the question file may come from the --upstream checkout (FastChat's MT-Bench questions), and
# the judge's default depends on it (FastChat's is GPT-4)
QuestionsOrUpstreamOpt = Annotated[Path | None, typer.Option(
    "--questions", "-q", help="Question file (JSONL): AlignBench's, or FastChat's with --upstream (default there: "
                              "the checkout's data/mt_bench/question.jsonl).")]
UpstreamOpt = Annotated[Path | None, typer.Option(
    "--upstream", help="Your clone of lm-sys/FastChat: judge MT-Bench exactly as its gen_judgment.py does, with "
                       "its own prompts, reference answers and questions (docs/protocols.md).")]
JudgeOrUpstreamOpt = Annotated[str | None, typer.Option(
    "--judge", "-j", help="Judge preset (see `alignbench judges`) or BACKEND:MODEL. Default: critiquellm; "
                          "openai:gpt-4 with --upstream (FastChat's judge).")]
JudgeOpt = Annotated[str, typer.Option("--judge", "-j", help="Judge preset (see `alignbench judges`) or BACKEND:MODEL.")]
UpstreamOpt = Annotated[Path | None, typer.Option(
    "--upstream", help="Your clone of THUDM/AlignBench or lm-sys/FastChat: judge exactly as its own script does "
                       "(judge.py: its prompt and configs, one user message; gen_judgment.py: MT-Bench's prompts, "
                       "reference answers and questions), temperature 0, default judge GPT-4, default questions "
                       "the clone's. See docs/protocols.md.")]
# --questions and --judge where --upstream can supply them (score, prompt)
QuestionsOrUpstreamOpt = Annotated[Path | None, typer.Option(
    "--questions", "-q", help="Question file (JSONL); with --upstream: default the checkout's own (AlignBench "
                              "v1.1, or FastChat's data/mt_bench/question.jsonl).")]
JudgeOrUpstreamOpt = Annotated[str | None, typer.Option(
    "--judge", "-j", help="Judge preset (see `alignbench judges`) or BACKEND:MODEL. Default: critiquellm; "
                          "gpt-4 with --upstream.")]
JudgeModelOpt = Annotated[str | None, typer.Option("--judge-model", help="Override the preset's model id.")]
JudgeUrlOpt = Annotated[list[str] | None, typer.Option(
    "--judge-base-url", help="OpenAI-compatible base URL of the judge; repeat for several servers.")]
RubricOpt = Annotated[str | None, typer.Option("--rubric", help="Rubric set (folder under rubrics/); default: the preset's.")]
FormatOpt = Annotated[str, typer.Option("--format", help="table or json (the summary JSON on stdout).")]
ProtocolOpt = Annotated[str | None, typer.Option(
    "--protocol", help="multi-dimension, general, reference-free or plan-execute: the variant of the rubric "
                       "set (--rubric or the preset's) to use. See docs/meta-eval.md.")]
ConcurrencyOpt = Annotated[int | None, typer.Option(
    "--concurrency", "-c", min=1, show_default=False,
    help="Requests in flight per judge server [default: 16, lowered to what a server that does not say its "
         "parallelism runs at once]. A number given here is used as stated.")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", min=0.001, help="Seconds a judge request may take in all (queueing at the server included), per attempt.")]
MaxReplyBytesOpt = Annotated[int, typer.Option("--max-reply-bytes", min=1024, help="A judge reply is read up to this many bytes; a larger one fails that request (a server streaming garbage cannot exhaust memory).")]
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
JudgeKeyEnvOpt = Annotated[str | None, typer.Option(
    "--api-key-env", help="Environment variable holding the judge server's key. A provider's own key "
                          "(OPENAI_API_KEY, ZHIPUAI_API_KEY) is sent only to the provider's own https host.")]
RefreshOpt = Annotated[str | None, typer.Option(
    "--refresh", help="failed: ask the judge again wherever the cached reply gave no usable judgment "
                      "(otherwise such replies are read from the cache like any other).")]
MaxFailedOpt = Annotated[str, typer.Option(
    "--max-failed", help="Exit with code 3 when more judgments fail than this: a share (5%, 0.05) or a count (3). "
                         "The results are written either way.")]
BaselineRunOpt = Annotated[Path | None, typer.Option(
    "--baseline-run", help="An earlier run folder of the same judge and rubric: deltas with paired significance tests.")]


def allowed_failures(max_failed: str, total: int) -> int:
    """How many failed judgments ``--max-failed`` allows out of ``total``: ``5%`` or ``0.05`` is a share,
    ``3`` a count. A bad value is a typer error (exit 2) before anything runs."""
    text = max_failed.strip()
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        raise typer.BadParameter(f"{max_failed!r}: give a share (5%, 0.05) or a count (3)",
                                 param_hint="--max-failed") from None
    if value < 0 or (text.endswith("%") and value > 100):
        raise typer.BadParameter(f"{max_failed!r} must be between 0 and 100%, or a count", param_hint="--max-failed")
    if text.endswith("%"):
        return int(total * value / 100)
    return int(total * value) if value < 1 else int(value)


def exit_on_failures(failed: int, total: int, by_status: dict[str, int], max_failed: str, show: str) -> None:
    """Exit 3 (after the results are written and printed) when more judgments failed than
    ``--max-failed`` allows, so CI notices; one line names the statuses and how to look at one."""
    allowed = allowed_failures(max_failed, total)
    if failed > allowed:
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(by_status.items()))
        line = (f"{failed} of {total} judgments failed ({statuses}), more than --max-failed {max_failed} allows "
                f"({allowed}); see one with: {show}")
        err_console.print(f"[bold red]failed:[/] {escape(line)}", highlight=False, soft_wrap=True)
        raise typer.Exit(3)


def exit_on_run_failures(runs: Any, max_failed: str) -> None:
    """``exit_on_failures`` over score runs (a ``Run``, or a dict of them by model), from their own
    ``failed``, ``total`` and ``by_status``; the hint shows the first failed judgment."""
    import shlex

    listed = list(runs.values()) if isinstance(runs, Mapping) else [runs]
    by_status: dict[str, int] = {}
    for r in listed:
        for status, n in r.by_status.items():
            by_status[status] = by_status.get(status, 0) + n
    first = next(((r, j) for r in listed for j in r.failures), None)
    show = f"alignbench show {shlex.quote(str(first[0].dir))} --question-id {first[1].question_id}" if first else ""
    exit_on_failures(sum(r.failed for r in listed), sum(r.total for r in listed), by_status, max_failed, show)


def check_choice(value: str | None, option: str, *choices: str) -> None:
    """One error line (exit 2) when an option of fixed choices (``--format`` table or json …) is given
    anything else; None (not given) passes."""
    if value is not None and value not in choices:
        raise fail(f"{option} must be {' or '.join(choices)}, not {value!r}")


def key_settings(api_key_env: str | None) -> dict[str, object]:
    """``judge_config`` overrides for ``--api-key-env`` (the named key goes to the named server)."""
    import os

    if api_key_env and not os.environ.get(api_key_env):
        raise typer.BadParameter(f"environment variable {api_key_env} is not set", param_hint="--api-key-env")
    return {"api_key_env": api_key_env, "api_key_explicit": True} if api_key_env else {}


def cache_arg(cache: Path | None, no_cache: bool) -> Path | bool | None:
    """The API's ``cache=`` from the two cache options."""
    return False if no_cache else cache


def print_json(payload: Any) -> None:
    """``--format json``: the payload on stdout, indented, Chinese as is."""
    import json

    print(json.dumps(payload.as_dict() if hasattr(payload, "as_dict") else payload, ensure_ascii=False, indent=2))


def print_messages(messages: object) -> None:
    """The prompt exactly as it is sent: each message's content verbatim (never wrapped, never read as
    markup), under a plain line naming its role."""
    import sys

    for message in messages:  # type: ignore[attr-defined]
        sys.stdout.write(f"----- {message['role']} -----\n{message['content']}\n")
    sys.stdout.write("-----\n")
    sys.stdout.flush()


# -- batch APIs, estimates and budgets (docs/batch.md) ----------------------------------------------

BatchOpt = Annotated[bool, typer.Option(
    "--batch", help="Send the uncached requests through the provider's batch API (openai, zhipuai backends): about "
                    "half the price, replies within 24 h. Re-running the same command re-attaches to the batches "
                    "in flight and never submits twice.")]
NoWaitOpt = Annotated[bool, typer.Option(
    "--no-wait", help="With --batch: submit and exit (code 75) without waiting; run the same command again to "
                      "collect the replies.")]
BatchFallbackOpt = Annotated[str, typer.Option(
    "--batch-fallback", help="With --batch: where failed batch requests and parse retries go: batch (a follow-up "
                             "batch) or online.")]
MaxCostOpt = Annotated[float | None, typer.Option(
    "--max-cost", min=0, help="Budget in the price table's currency (USD for OpenAI, CNY for ZhipuAI): refuse to "
                              "start when the upper-bound cost exceeds it, stop sending once it is spent.")]
BatchFileOutOpt = Annotated[Path | None, typer.Option(
    "--batch-file-out", help="Write the requests left after the cache as an OpenAI Batch input file and exit (code "
                             "75), for vllm run-batch, Ray Data LLM or a LiteLLM batch proxy (docs/batch.md).")]
BatchFileInOpt = Annotated[Path | None, typer.Option(
    "--batch-file-in", help="Read the replies from an OpenAI Batch output file (matched by custom_id, cached); "
                            "requests without a line are named and counted as failed.")]
PENDING_EXIT = 75  # EX_TEMPFAIL: nothing failed, the replies are not there yet; run the same command later


def batch_arg(batch: bool, no_wait: bool, fallback: str, files: bool = False) -> object:
    """The API's ``batch=`` from the options: False, or BatchOptions printing its progress to stderr
    (``files``: --batch-file-out/--batch-file-in given, which JudgeSettings folds into it)."""
    if fallback not in ("batch", "online"):
        raise typer.BadParameter(f"{fallback!r}: give batch or online", param_hint="--batch-fallback")
    if no_wait and not batch:
        raise typer.BadParameter("needs --batch", param_hint="--no-wait")
    if batch and files:
        raise typer.BadParameter("--batch sends to the provider's batch API; batch files are for an engine of your "
                                 "own: give one or the other", param_hint="--batch-file-out/--batch-file-in")
    if files:
        from alignbench.batch import BatchOptions

        return BatchOptions(on_note=note)
    if not batch:
        return False
    from alignbench.batch import BatchOptions

    return BatchOptions(wait=not no_wait, fallback=fallback, on_note=note)


@contextmanager
def paying() -> Iterator[None]:
    """The ends of a --batch or --max-cost run that are not errors of the library's usual kinds: batches
    left running (--no-wait: exit 75 with what to run), a batch that expired or failed, a budget."""
    from alignbench.batch import BatchIncomplete, BatchPending
    from alignbench.cost import BudgetExceeded

    try:
        yield
    except BatchPending as exc:
        note(f"batch: {exc}")
        raise typer.Exit(PENDING_EXIT) from None
    except (BatchIncomplete, BudgetExceeded) as exc:
        raise fail(str(exc)) from None


def print_estimates(work: list[tuple[object, list[object]]], cache: Path | bool | None, batch: bool,
                    fmt: str) -> None:
    """``--dry-run``'s estimate: per judge, requests after the cache, tokens, expected completion and the
    cost online, with batch, and with cached prompts (``--format json``: the same numbers on stdout)."""
    from alignbench.api import open_store
    from alignbench.batch import estimate_for

    store, owned = open_store(cache)
    try:
        estimates = [estimate_for(config, requests, store, batch=batch) for config, requests in work]  # type: ignore[arg-type]
    finally:
        if owned:
            store.close()
    show_estimates(estimates, fmt)


def show_estimates(estimates: list[Any], fmt: str) -> None:
    """Estimates (``alignbench.cost.Estimate``) on stdout: their lines, or with ``--format json``
    ``{"dry_run": true, "estimates": [...]}``."""
    import sys

    if fmt == "json":
        print_json({"dry_run": True, "estimates": [e.as_dict() for e in estimates]})
        return
    for e in estimates:
        sys.stdout.write("\n".join(e.lines()) + "\n")
    sys.stdout.flush()


# -- judge protocols (docs/protocols.md) ---------------------------------------------------------------

StructuredOpt = Annotated[bool | None, typer.Option(
    "--structured/--no-structured", help="Ask for the verdict as JSON (per-dimension analysis and integer scores): "
                                         "OpenAI json_schema, vLLM guided_json, GLM JSON mode, constrained decoding "
                                         "for hf judges; a server that refuses falls back to text and says why. "
                                         "Default: the preset's (on for gpt-4o, gpt-4o-mini).")]
StructuredViaOpt = Annotated[str | None, typer.Option(
    "--structured-via", help="How --structured asks for JSON: json_schema (OpenAI), json_object (with the schema: "
                             "llama.cpp servers), guided_json (vLLM guided decoding). Default: the backend's.")]
ScoreFromOpt = Annotated[str | None, typer.Option(
    "--score-from", help="verdict (default) or logprobs: also ask for token log-probabilities and score summaries by "
                         "the expected score over the judge's score-token distribution (falls back to the verdict "
                         "where a judge gives none).")]
PromptFormatOpt = Annotated[str | None, typer.Option(
    "--prompt-format", help="completion: the bare prompt string through /v1/completions, no chat template (how "
                            "CritiqueLLM is run by its authors; the critiquellm presets' default); chat: messages "
                            "through the chat-completions endpoint. Default: the preset's.")]
CanaryOpt = Annotated[bool | None, typer.Option(
    "--canary/--no-canary", help="score: also judge the 16 fixed canary answers (fresh, uncached) and compare with "
                                 "this judge name's last canary; a drift beyond noise is reported and exits 4. "
                                 "Default: on for API judges whose model id ends in 'latest' (docs/trust.md).")]
JudgeDeviceOpt = Annotated[str | None, typer.Option("--device", help="hf judges: auto, cpu or cuda.")]
JudgeBatchSizeOpt = Annotated[int | None, typer.Option("--batch-size", min=1, help="hf judges: prompts per generate call.")]


# -- the judge settings score, compare and meta-eval share (alignbench.JudgeSettings) --------------------

# command parameter -> (its option, its default). A parameter named like a JudgeSettings field is that field
# (and has its default: a test checks); the others are read by `judge_settings`.
JUDGE_OPTIONS: dict[str, tuple[Any, Any]] = {
    "judge_model": (JudgeModelOpt, None),
    "judge_base_url": (JudgeUrlOpt, None),
    "rubric": (RubricOpt, None),
    "protocol": (ProtocolOpt, None),
    "concurrency": (ConcurrencyOpt, None),
    "timeout": (TimeoutOpt, 120.0),
    "max_reply_bytes": (MaxReplyBytesOpt, 8_000_000),
    "attempts": (AttemptsOpt, 6),
    "parse_retries": (ParseRetriesOpt, 1),
    "max_answer_chars": (MaxAnswerCharsOpt, 12000),
    "temperature": (TemperatureOpt, None),
    "max_tokens": (MaxTokensOpt, None),
    "cache": (CacheOpt, None),
    "no_cache": (NoCacheOpt, False),
    "api_key_env": (JudgeKeyEnvOpt, None),
    "refresh": (RefreshOpt, None),
    "structured": (StructuredOpt, None),
    "structured_via": (StructuredViaOpt, None),
    "score_from": (ScoreFromOpt, None),
    "prompt_format": (PromptFormatOpt, None),
    "canary": (CanaryOpt, None),
    "device": (JudgeDeviceOpt, None),
    "batch_size": (JudgeBatchSizeOpt, None),
    "batch": (BatchOpt, False),
    "no_wait": (NoWaitOpt, False),
    "batch_fallback": (BatchFallbackOpt, "batch"),
    "batch_file_out": (BatchFileOutOpt, None),
    "batch_file_in": (BatchFileInOpt, None),
    "max_cost": (MaxCostOpt, None),
    "upstream": (UpstreamOpt, None),
}


# --help groups the shared options in panels (typer's rich_help_panel), so a command's own options come first
# and each panel is narrow enough to read at 80 columns
PANELS = {
    "Judge": ("upstream", "judge_model", "judge_base_url", "rubric", "protocol", "api_key_env", "prompt_format",
              "structured", "structured_via", "score_from", "canary", "device", "batch_size"),
    "Requests": ("concurrency", "timeout", "max_reply_bytes", "attempts", "parse_retries", "max_answer_chars",
                 "temperature", "max_tokens"),
    "Cache": ("cache", "no_cache", "refresh"),
    "Batch and cost": ("batch", "no_wait", "batch_fallback", "batch_file_out", "batch_file_in", "max_cost"),
}


def _panelled(name: str, option: Any) -> Any:
    """``option`` (an ``Annotated[type, typer.Option(...)]``) with its help panel; the shared OptionInfo
    is the same object for every command, so setting it once sets it everywhere."""
    panel = next(p for p, names in PANELS.items() if name in names)
    for meta in getattr(option, "__metadata__", ()):
        if isinstance(meta, typer.models.OptionInfo):
            meta.rich_help_panel = panel
    return option


def judge_settings(values: Mapping[str, Any]) -> JudgeSettings:
    """The ``JudgeSettings`` of ``JUDGE_OPTIONS``' values (as a command receives them; an option a command
    skips is simply absent). A bad value is an error line (exit 2) before anything runs."""
    from alignbench.data import InputError
    from alignbench.settings import JudgeSettings

    given = dict(values)
    refresh = given.pop("refresh", None)
    if refresh not in (None, "failed"):
        raise fail(f"--refresh: only 'failed' is known, not {refresh!r}")
    check_choice(given.get("score_from"), "--score-from", "verdict", "logprobs")
    check_choice(given.get("prompt_format"), "--prompt-format", "chat", "completion")
    fields = dict(base_url=given.pop("judge_base_url", None),
                  cache=cache_arg(given.pop("cache", None), given.pop("no_cache", False)),
                  batch=batch_arg(given.pop("batch", False), given.pop("no_wait", False),
                                  given.pop("batch_fallback", "batch"),
                                  bool(given.get("batch_file_out") or given.get("batch_file_in"))),
                  options={k: given.pop(k, None) for k in ("device", "batch_size")},
                  refresh_failed=refresh == "failed", **key_settings(given.pop("api_key_env", None)), **given)
    try:
        return JudgeSettings.build(**fields)
    except InputError as exc:
        raise fail(str(exc)) from None


def judge_options(*, skip: Collection[str] = ()) -> Callable[[F], F]:
    """Give a command every option of ``JUDGE_OPTIONS`` but ``skip``, placed where its ``settings``
    parameter stands (a placeholder with a default, after the parameters without one). The command is
    called with ``settings``, the ``JudgeSettings`` they make (``judge_settings``), never with them one by
    one: typer reads the signature this builds."""

    def decorate(command: F) -> F:
        rows = {name: row for name, row in JUDGE_OPTIONS.items() if name not in skip}
        own = inspect.signature(command)
        if "settings" not in own.parameters:
            raise TypeError(f"{command.__name__} needs a `settings` parameter to take the judge options")
        params: list[inspect.Parameter] = []
        for p in own.parameters.values():
            if p.name == "settings":
                params.extend(inspect.Parameter(name, p.kind, default=default, annotation=_panelled(name, option))
                              for name, (option, default) in rows.items())
            else:  # the command's own, as typer would read them (annotations are strings in its module)
                annotation = p.annotation
                params.append(p.replace(annotation=eval(annotation, command.__globals__)  # noqa: S307
                                        if isinstance(annotation, str) else annotation))

        @functools.wraps(command)
        def with_settings(**values: Any) -> Any:
            shared = {name: values.pop(name) for name in rows}
            return command(**values, settings=judge_settings(shared))

        with_settings.__signature__ = own.replace(parameters=params, return_annotation=None)  # type: ignore[attr-defined]
        with_settings.__annotations__ = {p.name: p.annotation for p in params}
        return with_settings  # type: ignore[return-value]

    return decorate
