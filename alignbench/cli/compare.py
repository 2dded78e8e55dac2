"""``alignbench compare`` (pairwise judging against a baseline) and ``alignbench winrate`` (win rates
and LC win rates from AlpacaEval annotation files or our own pairwise judgments)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from alignbench.cache import NullStore, ReplyStore
from alignbench.cli.app import app, console, err_console, fail, is_tty
from alignbench.cli.score import (
    AllowEmptyOpt,
    AttemptsOpt,
    CacheOpt,
    ConcurrencyOpt,
    DryRunOpt,
    FormatOpt,
    JudgeModelOpt,
    JudgeOpt,
    JudgeUrlOpt,
    MaxTokensOpt,
    NoCacheOpt,
    ProtocolOpt,
    QuestionsOpt,
    RubricOpt,
    TemperatureOpt,
    TimeoutOpt,
    _judge_config,
    _make_judge,
    _print_messages,
    _progress_display,
    _rubric,
    _ServerDown,
    _with_protocol,
    run_guarded,
)
from alignbench.data import InputError, file_sha256, join, load_answers, load_questions, read_jsonl
from alignbench.judges import JudgeConfig
from alignbench.report.terminal import print_pairwise
from alignbench.runner import RetryPolicy, Runner
from alignbench.scoring import Progress as RunProgress
from alignbench.scoring import slug
from alignbench.types import Answer

if TYPE_CHECKING:
    import pandas as pd

    from alignbench.pairwise.compare import PairItem

# The pairwise modules (pandas, scipy.optimize, jieba) are imported inside the commands: every
# `alignbench` command imports this module, and only these two need them.
JUDGMENTS_FILE = "pairwise_judgments.jsonl"

LengthOpt = Annotated[str, typer.Option("--length-unit", help="Answer length for the LC GLM: words (jieba) or chars.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the bootstrap over questions.")]
BootOpt = Annotated[int, typer.Option("--bootstrap", min=0, help="Bootstrap resamples for the LC standard error (0: none).")]


def _check_choice(value: str | None, option: str, choices: tuple[str, ...]) -> None:
    if value is not None and value not in choices:
        raise fail(f"{option} must be one of {', '.join(choices)}, not {value!r}")


def _file_model_name(path: Path) -> str | None:
    """None when every line names its model (``model_id``); otherwise the file's stem names it,
    as for answer files in the simple ``{question_id, answer}`` format."""
    for _, obj in read_jsonl(path):
        if not isinstance(obj.get("model_id"), str) or not obj["model_id"]:
            return path.stem
    return None


def _load_inputs(questions: Path, answers: list[Path], baseline: Path, rub, allow_empty: bool):
    """Every input checked (file:line errors) before any judge call."""
    qs = load_questions(questions, rub)
    base = load_answers(baseline, model=_file_model_name(baseline), allow_empty=allow_empty)
    names = sorted({a.model for a in base})
    if len(names) != 1:
        raise fail(f"{baseline}: the baseline file holds answers of {len(names)} models ({', '.join(names)}); "
                   "give the baseline its own file")
    join(qs, base, baseline)  # answers to unknown questions are an error
    by_model: dict[str, list[Answer]] = {}
    source: dict[str, Path] = {}
    if len({p.resolve() for p in answers}) != len(answers):
        raise fail("the same --answers file is given twice; give each model one answer file")
    for path in answers:
        loaded = load_answers(path, model=_file_model_name(path), allow_empty=allow_empty)
        join(qs, loaded, path)
        for ans in loaded:
            if ans.model == names[0]:
                raise fail(f"{path}: model {ans.model!r} has the baseline's name; the baseline is compared "
                           "with the other models, not with itself")
            if ans.model in source and source[ans.model] != path:
                raise fail(f"{path}: model {ans.model!r} also appears in {source[ans.model]}; "
                           "give each model one answer file")
            source[ans.model] = path
            by_model.setdefault(ans.model, []).append(ans)
    return qs, base, names[0], by_model, source


def _default_dir(models: list[str], baseline: str, config: JudgeConfig, rubric_id: str) -> Path:
    joined = "+".join(models)
    who = joined if len(joined) <= 60 else f"{len(models)}-models"
    return Path("reports") / f"{slug(who)}__vs__{slug(baseline)}__{slug(config.name)}__{slug(rubric_id)}"


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
    length_unit: LengthOpt = "words",
    seed: SeedOpt = 0,
    bootstrap: BootOpt = 200,
    concurrency: ConcurrencyOpt = 16,
    timeout: TimeoutOpt = 120.0,
    attempts: AttemptsOpt = 6,
    parse_retries: Annotated[int, typer.Option("--parse-retries", min=0, help="Fresh samples asked after an unparseable verdict.")] = 1,
    max_answer_chars: Annotated[int | None, typer.Option("--max-answer-chars", help="Clip longer answers in the prompt (recorded per pair).")] = 12000,
    temperature: TemperatureOpt = None,
    max_tokens: MaxTokensOpt = None,
    cache: CacheOpt = None,
    no_cache: NoCacheOpt = False,
    allow_empty: AllowEmptyOpt = False,
    dry_run: DryRunOpt = False,
    fmt: FormatOpt = "table",
) -> None:
    """Judge each model against a baseline, every pair in both orders, and print win rates,
    length-controlled win rates and position inconsistency.

    Re-running the same command reads every stored reply from the cache: nothing is paid twice, and
    a killed run picks up where it stopped.
    """
    _check_choice(length_unit, "--length-unit", ("words", "chars"))
    _check_choice(fmt, "--format", ("table", "json"))
    from alignbench.pairwise.compare import (
        assemble,
        match_pairs,
        plan_pairs,
        run_metadata,
        summarize_compare,
        usage_totals,
        write_compare_run,
    )

    config = _judge_config(judge, judge_model, judge_base_url, rubric, concurrency=concurrency, timeout=timeout,
                           temperature=temperature, max_tokens=max_tokens)
    config = _with_protocol(config, protocol)
    rub = _rubric(config.rubric)
    if not rub.templates.pairwise_user:
        raise fail(f"rubric {rub.id} has no pairwise template; use --rubric alignbench or critiquellm")
    try:
        qs, base, base_name, by_model, source = _load_inputs(questions, answers, baseline, rub, allow_empty)
    except InputError as exc:
        raise fail(str(exc)) from None
    matched = match_pairs(qs, by_model, base)
    if matched.baseline_missing:
        err_console.print(f"[yellow]warning:[/] the baseline {base_name} has no answer to "
                          f"{len(matched.baseline_missing)} of {len(qs)} questions; no model is compared there",
                          highlight=False)
    for name, ids in matched.missing.items():
        own = len([i for i in ids if i not in matched.baseline_missing])
        if own:
            err_console.print(f"[yellow]warning:[/] {own} of {len(qs)} questions have no answer from {name}; "
                              "those pairs are not compared and are listed in pairwise_summary.json",
                              highlight=False)
    if not matched.pairs:
        raise fail("no question has an answer from both a model and the baseline: nothing to compare")
    items = plan_pairs(matched.pairs, rub, config, max_answer_chars)
    if dry_run:
        first = items[0]
        console.print(f"[bold]{len(items)} request(s) ({len(matched.pairs)} pairs × 2 orders) would go to "
                      f"{config.name} ({config.model}); first: question {first.question.id}, "
                      f"{first.model_answer.model} vs {base_name}, {first.order}[/]", highlight=False)
        _print_messages(first.request.messages)
        return
    store = NullStore() if no_cache else ReplyStore(cache)
    judge_impl = _make_judge(config)
    verdicts, runner = run_guarded(_run(items, judge_impl, store, config, attempts, parse_retries), store)
    judgments = assemble(items, verdicts, rub, config.name)
    summary = summarize_compare(judgments, rub, length_unit, n_boot=bootstrap, seed=seed)  # type: ignore[arg-type]
    models = list(by_model)
    run_dir = out or _default_dir(models, base_name, config, rub.id)
    summary.update({
        "judge": config.public(), "rubric": rub.id, "usage": usage_totals(judgments, runner),
        "run": run_metadata(
            dir=str(run_dir), questions={"path": str(questions), "sha256": file_sha256(questions)},
            answers={m: str(source[m]) for m in models}, baseline_answers=str(baseline), n_questions=len(qs),
            missing=matched.missing, baseline_missing=matched.baseline_missing, max_answer_chars=max_answer_chars),
        "finished": True,
    })
    write_compare_run(run_dir, judgments, summary)
    if fmt == "json":
        _warn_lc(summary)  # the table prints the same warnings as notes
        print(json.dumps(summary, ensure_ascii=False, indent=2))
        return
    print_pairwise(summary, console)
    console.print(f"[dim]run folder: {run_dir}[/]", highlight=False)


def _warn_lc(summary: dict[str, Any]) -> None:
    for name, m in summary.get("models", {}).items():
        if m.get("lc_warning"):
            err_console.print(f"[yellow]warning:[/] {escape(name)}: {escape(m['lc_warning'])}", highlight=False)


async def _run(items: list[PairItem], judge_impl, store, config: JudgeConfig, attempts: int, parse_retries: int):
    from alignbench.pairwise.compare import judge_pairs

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
        with _progress_display(len(items), is_tty(), label="comparing") as update:
            progress = RunProgress(on_update=update)
            return await judge_pairs(items, judge_impl, store, concurrency=capacity,
                                     retry=RetryPolicy(attempts=attempts), parse_retries=parse_retries,
                                     progress=progress)
    finally:
        await judge_impl.aclose()


# ------------------------------------------------------------------------------------------------
# alignbench winrate
# ------------------------------------------------------------------------------------------------

COLUMNS = ["model", "baseline", "question_id", "preference", "len_model", "len_baseline", "category"]


def _read_preferences(files: list[Path], length_unit: str | None, name_by: str) -> tuple[pd.DataFrame, str]:
    """AlpacaEval annotation files (a JSON list) and our pairwise judgments (JSONL, or a run folder),
    told apart by content, as one preference table; plus the length unit(s) used."""
    import pandas as pd

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
    baseline: Annotated[str | None, typer.Option("--baseline", help="Only comparisons against this baseline (generator_1).")] = None,
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
        print(json.dumps(summary, ensure_ascii=False, indent=2))
        return
    flat = {**summary, "glm": next(iter(summary["glm"].values())) if len(groups) == 1 else {}}
    print_pairwise(flat, console, categories=False)


__all__ = ["compare", "winrate"]
