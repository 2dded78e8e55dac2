"""``alignbench compare`` (pairwise judging against a baseline) and ``alignbench winrate`` (win rates
and LC win rates from AlpacaEval annotation files or our own pairwise judgments)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from alignbench.cli.app import app, console, fail, guarded, progress, warn
from alignbench.cli.options import (
    AllowEmptyOpt,
    DryRunOpt,
    ForceOpt,
    FormatOpt,
    JudgeOrUpstreamOpt,
    MaxFailedOpt,
    QuestionsOrUpstreamOpt,
    allowed_failures,
    exit_on_failures,
    judge_options,
    paying,
    print_estimates,
    print_json,
    print_messages,
)

if TYPE_CHECKING:
    from alignbench.api import JudgeSettings

# The library is imported inside the commands: every `alignbench` command imports this module, and only
# these two need the pairwise modules (pandas, scipy.optimize, jieba) behind alignbench.api.compare/winrate.
JUDGMENTS_FILE = "pairwise_judgments.jsonl"

LengthOpt = Annotated[str, typer.Option("--length-unit", help="Answer length for the LC GLM: words (jieba) or chars.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the bootstrap over questions.")]
BootOpt = Annotated[int, typer.Option("--bootstrap", min=0, help="Bootstrap resamples for the LC standard error (0: none).")]


def _check_choice(value: str | None, option: str, choices: tuple[str, ...]) -> None:
    if value is not None and value not in choices:
        raise fail(f"{option} must be one of {', '.join(choices)}, not {value!r}")


@app.command()
@judge_options(skip=("canary",))  # the canary runs with score
def compare(
    answers: Annotated[list[Path], typer.Option("--answers", "-a", help="Answer file(s) of the model(s) to compare, JSONL; repeat for several.")],
    baselines: Annotated[list[Path], typer.Option("--baseline", "-b", help="Answer file of the baseline model, JSONL (one).")],
    questions: QuestionsOrUpstreamOpt = None,
    judge: JudgeOrUpstreamOpt = None,
    settings: JudgeSettings = None,  # type: ignore[assignment]  # the judge options (cli.options.JUDGE_OPTIONS)
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run folder. Default: a folder under reports/ named after the models, baseline, judge and rubric.")] = None,
    force: ForceOpt = False,
    length_unit: LengthOpt = "words",
    seed: SeedOpt = 0,
    bootstrap: BootOpt = 200,
    allow_empty: AllowEmptyOpt = False,
    dry_run: DryRunOpt = False,
    fmt: FormatOpt = "table",
    max_failed: MaxFailedOpt = "5%",
) -> None:
    """Judge each model against a baseline, every pair in both orders, and print win rates,
    length-controlled win rates and position inconsistency.

    Re-running the same command reads every stored reply from the cache: nothing is paid twice, and
    a killed run picks up where it stopped.
    """
    _check_choice(length_unit, "--length-unit", ("words", "chars"))
    _check_choice(fmt, "--format", ("table", "json"))
    if len(baselines) != 1:  # typer would keep the last one silently
        raise fail(f"--baseline/-b is given {len(baselines)} times ({', '.join(map(str, baselines))}); a comparison "
                   "has one baseline: run compare once per baseline")
    baseline = baselines[0]
    from alignbench import api

    allowed_failures(max_failed, 1)
    with guarded(), paying():
        plan = api.plan_compare(questions, answers, baseline, judge, allow_empty=allow_empty, settings=settings)
        for message in plan.warnings():
            warn(message)
        if dry_run:
            first = plan.items[0]
            if fmt != "json":
                console.print(f"{len(plan.items)} request(s) ({plan.n_pairs} pairs, {len(plan.items) // 2} compared turn(s) × 2 orders) would go to "
                              f"{plan.config.name} ({plan.config.model}); first: question {first.question.id}, "
                              f"{first.model_answer.model} vs {plan.baseline}, {first.order}", style="bold",
                              markup=False, highlight=False)
                print_messages(first.request.messages)
            print_estimates([(plan.config, [it.request for it in plan.items])], settings.cache,  # type: ignore[arg-type]
                            bool(settings.batch), fmt)
            return
        with progress() as on_event:
            result = api.compare(questions, answers, baseline, judge, out=out, force=force, allow_empty=allow_empty,
                                 length_unit=length_unit, seed=seed, bootstrap=bootstrap, on_event=on_event,
                                 settings=settings)
    from alignbench.reporting.terminal import print_pairwise

    summary = result.summary
    if fmt == "json":
        _warn_lc(summary)  # the table prints the same warnings as notes
        print_json(summary)
    else:
        print_pairwise(summary, console)
        if (summary.model_extra or {}).get("fastchat"):
            from alignbench.reporting.terminal import print_fastchat_pairwise

            print_fastchat_pairwise(summary, console)
        console.print(f"run folder: {result.dir}", style="dim", markup=False, highlight=False)
    first = result.failures[0] if result.failed else None
    exit_on_failures(result.failed, result.total, result.by_status, max_failed,
                     f"the {first.model} pair on question {first.question_id} in {result.dir}/{JUDGMENTS_FILE}"
                     if first else "")


def _warn_lc(summary: Any) -> None:
    """LC warnings of a ``PairwiseSummary`` on stderr."""
    for name, m in summary.models.items():
        if m.get("lc_warning"):
            warn(f"{name}: {m['lc_warning']}")


# ------------------------------------------------------------------------------------------------
# alignbench winrate
# ------------------------------------------------------------------------------------------------


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
    from alignbench import api
    from alignbench.data import InputError

    try:  # reads files only: no judge, no cache (so no guarded(): nothing to resume on Ctrl-C)
        summary = api.winrate(files, baseline=baseline, length_unit=length_unit, name_by=name_by, seed=seed,
                              bootstrap=bootstrap)
    except InputError as exc:
        raise fail(str(exc)) from None
    if fmt == "json":
        _warn_lc(summary)
        print_json(summary)
        return
    from alignbench.reporting.terminal import print_pairwise

    flat = summary.model_copy(update={"glm": next(iter(summary.glm.values())) if len(summary.baselines) == 1 else {}})
    print_pairwise(flat, console, categories=False)


__all__ = ["compare", "winrate"]
