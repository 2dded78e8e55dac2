"""``alignbench probe``: counterfactual style probes of a finished run's judge (docs/trust.md §6).

Rewrites each judged answer in style only, re-judges the rewrites with the run's judge through the
normal engine (cache, ``--dry-run``, ``--max-cost``) and prints each rewrite's paired effect.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from alignbench.cli.app import app, console, guarded, progress
from alignbench.cli.options import (
    DryRunOpt,
    FormatOpt,
    SeedOpt,
    judge_options,
    paying,
    print_estimates,
    print_json,
)

if TYPE_CHECKING:
    from alignbench.api import JudgeSettings


@app.command()
@judge_options(skip=("canary",))
def probe(
    run_dir: Annotated[Path, typer.Argument(help="A finished run folder (one model, one judge).")],
    perturb: Annotated[str, typer.Option(
        "--perturb", "-p", help="Comma list of rewrites: markdown, plain, filler, summary-pad (docs/trust.md).")]
        = "markdown,plain,filler,summary-pad",
    settings: JudgeSettings = None,  # type: ignore[assignment]  # the judge options: over the run's manifest
    bootstrap: Annotated[int, typer.Option("--bootstrap", min=100, help="Bootstrap resamples for the CIs.")] = 1000,
    dry_run: DryRunOpt = False,
    seed: SeedOpt = 0,
    fmt: FormatOpt = "table",
) -> None:
    """Re-judge style-only rewrites of a run's answers with the run's judge and show how far each moves
    the score (mean paired change with its 95% CI, per category, and the share of answers that moved).
    Results go to RUN/probes/<rewrite>/ and RUN/probes.json; `report` shows them."""
    from alignbench import api

    with guarded(), paying():
        plan = api.plan_probe(run_dir, perturb, settings=settings)
        if dry_run:
            print_estimates(plan.requests(), settings.cache, bool(settings.batch), fmt)  # type: ignore[arg-type]
            return
        with progress() as on_event:
            result = api.probe(plan, n_boot=bootstrap, seed=seed, on_event=on_event, settings=settings)
    if fmt == "json":
        print_json(result)
        return
    from alignbench.reporting.terminal import print_probes

    print_probes(result, console)
