"""``alignbench meta-eval``: how far each judge × protocol agrees with human labels."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from alignbench.cli.app import app, console, err_console, exit_on_failures, fail, guarded, progress, warn
from alignbench.cli.options import (
    AttemptsOpt,
    BatchFallbackOpt,
    BatchOpt,
    CacheOpt,
    ConcurrencyOpt,
    DryRunOpt,
    FormatOpt,
    JudgeModelOpt,
    JudgeUrlOpt,
    MaxAnswerCharsOpt,
    MaxCostOpt,
    MaxFailedOpt,
    MaxTokensOpt,
    NoCacheOpt,
    NoWaitOpt,
    ParseRetriesOpt,
    RubricOpt,
    StructuredOpt,
    TemperatureOpt,
    TimeoutOpt,
    allowed_failures,
    batch_arg,
    cache_arg,
    check_choice,
    paying,
    print_estimates,
    print_json,
    print_messages,
)


@app.command("meta-eval")
def meta_eval(
    data: Annotated[list[Path], typer.Option("--data", "-d", help="Human-labelled file (JSONL or a JSON list), or a run folder whose reviews.jsonl holds the labels; repeat for several. Pointwise: response + human_score; pairwise: response_1/response_2 + label (CritiqueLLM 0/1/2, LLMBar output_1/output_2 + 1/2).")],
    judge: Annotated[str, typer.Option("--judge", "-j", help="Judge preset(s) or BACKEND:MODEL, comma-separated.")] = "critiquellm",
    protocol: Annotated[str, typer.Option("--protocol", "-p", help="Protocol(s), comma-separated: multi-dimension, general, reference-free, plan-execute.")] = "multi-dimension",
    judge_model: JudgeModelOpt = None,
    judge_base_url: JudgeUrlOpt = None,
    rubric: RubricOpt = None,
    category: Annotated[str | None, typer.Option("--category", help="Category for rows without one (LLMBar has none; 基本任务 fits instruction following).")] = None,
    concurrency: ConcurrencyOpt = 16,
    timeout: TimeoutOpt = 120.0,
    attempts: AttemptsOpt = 6,
    parse_retries: ParseRetriesOpt = 1,
    max_answer_chars: MaxAnswerCharsOpt = 12000,
    temperature: TemperatureOpt = None,
    max_tokens: MaxTokensOpt = None,
    cache: CacheOpt = None,
    no_cache: NoCacheOpt = False,
    bootstrap: Annotated[int | None, typer.Option("--bootstrap", min=0, help="Bootstrap resamples for the 95% CIs (0: none; default 1000).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed.")] = 0,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Also write meta_eval.json and every judgment (per judge and protocol) here.")] = None,
    dry_run: DryRunOpt = False,
    fmt: FormatOpt = "table",
    max_failed: MaxFailedOpt = "5%",
    batch: BatchOpt = False,
    no_wait: NoWaitOpt = False,
    batch_fallback: BatchFallbackOpt = "batch",
    max_cost: MaxCostOpt = None,
    structured: StructuredOpt = None,
) -> None:
    """How well each judge × protocol agrees with human labels: correlations for scored answers,
    agreement and swap consistency for labelled pairs.

    Same cache as ``score``: a re-run (or a run killed half-way) pays only for what is missing.
    """
    from alignbench import api

    check_choice(fmt, "--format", "table", "json")
    allowed_failures(max_failed, 1)
    paid = batch_arg(batch, no_wait, batch_fallback)
    names = [j.strip() for j in judge.split(",") if j.strip()]
    protocols = [p.strip() for p in protocol.split(",") if p.strip()]
    for what, given, items in (("--judge", judge, names), ("--protocol", protocol, protocols)):
        if not items:
            raise fail(f"{what}: give at least one name")
        if len(set(items)) != len(items):
            raise fail(f"{what}: {given!r} names the same one twice")
    tuning = dict(concurrency=concurrency, timeout=timeout, temperature=temperature, max_tokens=max_tokens,
                  structured=structured)
    with guarded(), paying():
        plan = api.plan_meta_eval(data, names, protocols, judge_model=judge_model, base_url=judge_base_url,
                                  rubric=rubric, category=category, max_answer_chars=max_answer_chars, **tuning)
        for message in plan.warnings():
            warn(message)
        if dry_run:
            work = plan.requests()
            if fmt != "json":
                for (j, p, _, rub), (_, requests) in zip(plan.combos, work, strict=True):
                    console.print(f"{j} · {p} ({rub.id}): {len(requests)} request(s) — "
                                  f"{len(plan.data.points)} pointwise, {len(plan.data.pairs)} pairs × 2 orders",
                                  style="bold", markup=False, highlight=False)
                print_messages(work[0][1][0].messages)
            print_estimates(work, cache_arg(cache, no_cache), batch, fmt)  # type: ignore[arg-type]
            return

        def announce(j: str, p: str, rub: object) -> None:
            if fmt != "json":
                err_console.print(f"judging with {j} · {p} ({rub.id})", style="dim", markup=False,  # type: ignore[attr-defined]
                                  highlight=False)

        with progress() as on_event:
            payload = api.meta_eval(data, names, protocols, judge_model=judge_model, base_url=judge_base_url,
                                    rubric=rubric, category=category, attempts=attempts, parse_retries=parse_retries,
                                    max_answer_chars=max_answer_chars, cache=cache_arg(cache, no_cache),
                                    bootstrap=bootstrap, seed=seed, out=out, on_event=on_event, on_combo=announce,
                                    batch=paid, max_cost=max_cost, **tuning)
    if fmt == "json":
        print_json(payload)
    else:
        from alignbench.reporting.terminal import print_meta_bias, print_meta_eval

        print_meta_eval(payload, plan.combos[0][3], console)
        print_meta_bias(payload, console)
        if out is not None:
            console.print(f"written: {out / 'meta_eval.json'}", style="dim", markup=False, highlight=False)
    exit_on_failures(payload.failed, payload.total, payload.by_status, max_failed,
                     "--out DIR writes every judgment with its text")
