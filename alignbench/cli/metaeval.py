"""``alignbench meta-eval``: how far each judge × protocol agrees with human labels."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from alignbench.cli.app import app, console, err_console, fail, guarded, progress, warn
from alignbench.cli.options import (
    DryRunOpt,
    FormatOpt,
    MaxFailedOpt,
    allowed_failures,
    check_choice,
    exit_on_failures,
    judge_options,
    paying,
    print_estimates,
    print_json,
    print_messages,
)

if TYPE_CHECKING:
    from alignbench.api import JudgeSettings


@app.command("meta-eval")
@judge_options(skip=("protocol", "upstream", "canary"))  # its --protocol names several; no upstream protocol; the canary runs with score
def meta_eval(
    data: Annotated[list[Path], typer.Option("--data", "-d", help="Human-labelled file (JSONL or a JSON list), or a run folder whose reviews.jsonl holds the labels; repeat for several. Pointwise: response + human_score; pairwise: response_1/response_2 + label (CritiqueLLM 0/1/2, LLMBar output_1/output_2 + 1/2).")],
    judge: Annotated[str, typer.Option("--judge", "-j", help="Judge preset(s) or BACKEND:MODEL, comma-separated.")] = "critiquellm",
    protocol: Annotated[str, typer.Option("--protocol", "-p", help="Protocol(s), comma-separated: multi-dimension, general, reference-free, plan-execute.")] = "multi-dimension",
    settings: JudgeSettings = None,  # type: ignore[assignment]  # the judge options (cli.options.JUDGE_OPTIONS)
    category: Annotated[str | None, typer.Option("--category", help="Category for rows without one (LLMBar has none; 基本任务 fits instruction following).")] = None,
    bootstrap: Annotated[int | None, typer.Option("--bootstrap", min=0, help="Bootstrap resamples for the 95% CIs (0: none; default 1000).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed.")] = 0,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Also write meta_eval.json and every judgment (per judge and protocol) here.")] = None,
    dry_run: DryRunOpt = False,
    fmt: FormatOpt = "table",
    max_failed: MaxFailedOpt = "5%",
) -> None:
    """How well each judge × protocol agrees with human labels: correlations for scored answers,
    agreement and swap consistency for labelled pairs.

    Same cache as ``score``: a re-run (or a run killed half-way) pays only for what is missing.
    """
    from alignbench import api

    check_choice(fmt, "--format", "table", "json")
    allowed_failures(max_failed, 1)
    names = [j.strip() for j in judge.split(",") if j.strip()]
    protocols = [p.strip() for p in protocol.split(",") if p.strip()]
    for what, given, items in (("--judge", judge, names), ("--protocol", protocol, protocols)):
        if not items:
            raise fail(f"{what}: give at least one name")
        if len(set(items)) != len(items):
            raise fail(f"{what}: {given!r} names the same one twice")
    with guarded(), paying():
        plan = api.plan_meta_eval(data, names, protocols, category=category, settings=settings)
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
            print_estimates(work, settings.cache, bool(settings.batch), fmt)  # type: ignore[arg-type]
            return

        def announce(j: str, p: str, rub: object) -> None:
            if fmt != "json":
                err_console.print(f"judging with {j} · {p} ({rub.id})", style="dim", markup=False,  # type: ignore[attr-defined]
                                  highlight=False)

        with progress() as on_event:
            payload = api.meta_eval(data, names, protocols, category=category, bootstrap=bootstrap, seed=seed,
                                    out=out, on_event=on_event, on_combo=announce, settings=settings)
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
