"""``alignbench compare`` (pairwise judging against a baseline) and ``alignbench winrate`` (win rates
and LC win rates from AlpacaEval annotation files or our own pairwise judgments)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from alignbench.cli.app import app, console, exit_on_failed, fail, guarded, progress, warn
from alignbench.cli.options import (
    AllowEmptyOpt,
    AttemptsOpt,
    BatchFallbackOpt,
    BatchOpt,
    CacheOpt,
    ConcurrencyOpt,
    DryRunOpt,
    ForceOpt,
    FormatOpt,
    JudgeKeyEnvOpt,
    JudgeModelOpt,
    JudgeOpt,
    JudgeUrlOpt,
    MaxAnswerCharsOpt,
    MaxCostOpt,
    MaxFailedOpt,
    MaxTokensOpt,
    NoCacheOpt,
    NoWaitOpt,
    ParseRetriesOpt,
    ProtocolOpt,
    QuestionsOpt,
    RubricOpt,
    StructuredOpt,
    TemperatureOpt,
    TimeoutOpt,
    allowed_failures,
    batch_arg,
    cache_arg,
    key_settings,
    paying,
    print_estimates,
    print_json,
    print_messages,
)

if TYPE_CHECKING:
    import pandas as pd

# The pairwise modules (pandas, scipy.optimize, jieba) are imported inside the commands: every
# `alignbench` command imports this module, and only these two need them.
JUDGMENTS_FILE = "pairwise_judgments.jsonl"

LengthOpt = Annotated[str, typer.Option("--length-unit", help="Answer length for the LC GLM: words (jieba) or chars.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the bootstrap over questions.")]
BootOpt = Annotated[int, typer.Option("--bootstrap", min=0, help="Bootstrap resamples for the LC standard error (0: none).")]


def _check_choice(value: str | None, option: str, choices: tuple[str, ...]) -> None:
    if value is not None and value not in choices:
        raise fail(f"{option} must be one of {', '.join(choices)}, not {value!r}")


@app.command()
def compare(
    questions: QuestionsOpt,
    answers: Annotated[list[Path], typer.Option("--answers", "-a", help="Answer file(s) of the model(s) to compare, JSONL; repeat for several.")],
    baseline: Annotated[Path, typer.Option("--baseline", "-b", help="Answer file of the baseline model, JSONL.")],
    judge: JudgeOpt = "critiquellm",
    judge_model: JudgeModelOpt = None,
    judge_base_url: JudgeUrlOpt = None,
    rubric: RubricOpt = None,
    protocol: ProtocolOpt = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run folder. Default: reports/<models>__vs__<baseline>__<judge>__<rubric>.")] = None,
    force: ForceOpt = False,
    length_unit: LengthOpt = "words",
    seed: SeedOpt = 0,
    bootstrap: BootOpt = 200,
    concurrency: ConcurrencyOpt = 16,
    timeout: TimeoutOpt = 120.0,
    attempts: AttemptsOpt = 6,
    parse_retries: ParseRetriesOpt = 1,
    max_answer_chars: MaxAnswerCharsOpt = 12000,
    temperature: TemperatureOpt = None,
    max_tokens: MaxTokensOpt = None,
    cache: CacheOpt = None,
    no_cache: NoCacheOpt = False,
    allow_empty: AllowEmptyOpt = False,
    dry_run: DryRunOpt = False,
    fmt: FormatOpt = "table",
    max_failed: MaxFailedOpt = "5%",
    api_key_env: JudgeKeyEnvOpt = None,
    batch: BatchOpt = False,
    no_wait: NoWaitOpt = False,
    batch_fallback: BatchFallbackOpt = "batch",
    max_cost: MaxCostOpt = None,
    structured: StructuredOpt = None,
) -> None:
    """Judge each model against a baseline, every pair in both orders, and print win rates,
    length-controlled win rates and position inconsistency.

    Re-running the same command reads every stored reply from the cache: nothing is paid twice, and
    a killed run picks up where it stopped.
    """
    _check_choice(length_unit, "--length-unit", ("words", "chars"))
    _check_choice(fmt, "--format", ("table", "json"))
    from alignbench import api

    allowed_failures(max_failed, 1)
    paid = batch_arg(batch, no_wait, batch_fallback)
    settings = dict(judge_model=judge_model, base_url=judge_base_url, rubric=rubric, protocol=protocol,
                    max_answer_chars=max_answer_chars, allow_empty=allow_empty)
    tuning = dict(concurrency=concurrency, timeout=timeout, temperature=temperature, max_tokens=max_tokens,
                  structured=structured, **key_settings(api_key_env))
    with guarded(), paying():
        plan = api.plan_compare(questions, answers, baseline, judge, **settings, **tuning)
        for message in plan.warnings():
            warn(message)
        if dry_run:
            first = plan.items[0]
            if fmt != "json":
                console.print(f"{len(plan.items)} request(s) ({plan.n_pairs} pairs × 2 orders) would go to "
                              f"{plan.config.name} ({plan.config.model}); first: question {first.question.id}, "
                              f"{first.model_answer.model} vs {plan.baseline}, {first.order}", style="bold",
                              markup=False, highlight=False)
                print_messages(first.request.messages)
            print_estimates([(plan.config, [it.request for it in plan.items])], cache_arg(cache, no_cache), batch, fmt)
            return
        with progress() as on_event:
            result = api.compare(questions, answers, baseline, judge, out=out, force=force, length_unit=length_unit,
                                 seed=seed, bootstrap=bootstrap, attempts=attempts, parse_retries=parse_retries,
                                 cache=cache_arg(cache, no_cache), on_event=on_event, batch=paid, max_cost=max_cost,
                                 **settings, **tuning)
    from alignbench.reporting.terminal import print_pairwise

    summary = result.summary
    if fmt == "json":
        _warn_lc(summary)  # the table prints the same warnings as notes
        print_json(summary)
    else:
        print_pairwise(summary, console)
        console.print(f"run folder: {result.dir}", style="dim", markup=False, highlight=False)
    exit_on_failed(result.judgments, max_failed,
                   lambda j: f"the {j.model} pair on question {j.question_id} in {result.dir}/{JUDGMENTS_FILE}")


def _warn_lc(summary: dict[str, Any]) -> None:
    for name, m in summary.get("models", {}).items():
        if m.get("lc_warning"):
            warn(f"{name}: {m['lc_warning']}")


# ------------------------------------------------------------------------------------------------
# alignbench winrate
# ------------------------------------------------------------------------------------------------

COLUMNS = ["model", "baseline", "question_id", "preference", "len_model", "len_baseline", "category"]


def _read_preferences(files: list[Path], length_unit: str | None, name_by: str) -> tuple[pd.DataFrame, str]:
    """AlpacaEval annotation files (a JSON list) and our pairwise judgments (JSONL, or a run folder),
    told apart by content, as one preference table; plus the length unit(s) used."""
    import pandas as pd

    from alignbench.data import InputError
    from alignbench.pairwise.alpaca import read_alpaca_annotations
    from alignbench.pairwise.compare import is_pairwise_judgments, preference_frame, read_pairwise_judgments

    frames, alpaca = [], []
    for path in files:
        target = path / JUDGMENTS_FILE if path.is_dir() else path
        if not target.is_file():
            raise fail(f"{target}: file not found")
        with target.open("rb") as fh:
            head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
        if head.startswith(b"["):
            alpaca.append(target)
        elif is_pairwise_judgments(target):
            try:
                judgments = read_pairwise_judgments(target)
            except InputError as exc:
                raise fail(str(exc)) from None
            frames.append(preference_frame(judgments, length_unit or "words"))  # type: ignore[arg-type]
        else:
            raise fail(f"{target}: neither an AlpacaEval annotation file (a JSON list with output_1, output_2, "
                       f"generator_1, generator_2, preference) nor a {JUDGMENTS_FILE} written by `alignbench compare`")
    if alpaca:
        try:
            df = read_alpaca_annotations(alpaca, length_unit=length_unit or "chars",  # type: ignore[arg-type]
                                         model_name=name_by)  # type: ignore[arg-type]
        except ValueError as exc:
            where = "" if any(str(p) in str(exc) for p in alpaca) else f"{', '.join(map(str, alpaca))}: "
            raise fail(f"{where}{exc}") from None
        frames.append(df.assign(category=df["dataset"]).reindex(columns=COLUMNS))
    table = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    ours = len(frames) > (1 if alpaca else 0)  # frames = one per judgments file, plus one for all AlpacaEval files
    unit = length_unit or ("chars (AlpacaEval files), words (pairwise judgments)" if alpaca and ours
                           else "chars" if alpaca else "words")
    dup = table.duplicated(["model", "baseline", "question_id"], keep=False)
    if dup.any():
        first = table[dup].iloc[0]
        raise fail(f"model {first['model']!r} is judged twice on the same question against {first['baseline']!r}; "
                   "pass each file once")
    return table, unit


@app.command()
def winrate(
    files: Annotated[list[Path], typer.Argument(help="AlpacaEval annotation files (JSON) and/or pairwise_judgments.jsonl files or compare run folders.")],
    baseline: Annotated[str | None, typer.Option("--baseline-model", help="Only comparisons against this baseline model (AlpacaEval's generator_1).")] = None,
    length_unit: Annotated[str | None, typer.Option("--length-unit", help="chars or words (default: chars for AlpacaEval files, as AlpacaEval; words for our judgments).")] = None,
    name_by: Annotated[str, typer.Option("--name-by", help="Name AlpacaEval models by generator_2 (generator) or by file stem (file).")] = "generator",
    seed: SeedOpt = 0,
    bootstrap: BootOpt = 200,
    fmt: FormatOpt = "table",
) -> None:
    """Plain and length-controlled win rates per generator from existing pairwise judgments.

    Reads AlpacaEval annotation files (preference in [1, 2]; 2 = the model, output_2, preferred) and
    our own pairwise_judgments.jsonl. Models are fitted jointly per baseline: one GLM over every
    model compared with the same baseline, difficulty shared per question.
    """
    _check_choice(length_unit, "--length-unit", ("words", "chars"))
    _check_choice(name_by, "--name-by", ("generator", "file"))
    _check_choice(fmt, "--format", ("table", "json"))
    import pandas as pd

    from alignbench.pairwise.compare import summarize_preferences
    from alignbench.reporting.terminal import print_pairwise

    table, units = _read_preferences(files, length_unit, name_by)
    baselines = sorted(pd.unique(table["baseline"]).astype(str))
    if baseline is not None:
        if baseline not in baselines:
            raise fail(f"no comparison against baseline {baseline!r}; the files hold {', '.join(baselines)}")
        table = table[table["baseline"] == baseline]
        baselines = [baseline]
    groups = {b: table[table["baseline"] == b] for b in baselines}
    seen: dict[str, str] = {}
    for b, g in groups.items():
        for m in pd.unique(g["model"]):
            if m in seen:
                raise fail(f"model {m!r} is compared with two baselines ({seen[m]}, {b}); pick one with --baseline")
            seen[str(m)] = b
    summary: dict[str, Any] = {"baseline": baselines[0] if len(baselines) == 1 else None, "baselines": baselines,
                               "models": {}, "glm": {}, "files": [str(f) for f in files]}
    for b, g in groups.items():
        part = summarize_preferences(g.reset_index(drop=True), n_boot=bootstrap, seed=seed)
        summary["models"].update(part["models"])
        summary["glm"][b] = part["glm"]
    # leaderboard order: best length-controlled win rate first
    summary["models"] = dict(sorted(summary["models"].items(),
                                    key=lambda kv: -(kv[1]["lc_win_rate"] if kv[1]["lc_win_rate"] is not None else -1)))
    summary["length_unit"] = units
    if fmt == "json":
        _warn_lc(summary)
        print_json(summary)
        return
    flat = {**summary, "glm": next(iter(summary["glm"].values())) if len(groups) == 1 else {}}
    print_pairwise(flat, console, categories=False)


__all__ = ["compare", "winrate"]
