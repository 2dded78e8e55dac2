"""``alignbench calibrate`` and ``alignbench bridge``: judge trust from finished run folders (issue 14).

Both read run folders only and never call a judge. ``calibrate`` turns a judge's scores plus a few human
labels into human-scale scores whose CIs include the judge's error; ``bridge`` maps an old judge's
scale onto a new judge's so a release history survives a judge change (``report --bridge FILE``).
The statistics are ``alignbench.trust``'s, reached through ``alignbench.api``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from alignbench.cli.app import app, console, fail, guarded
from alignbench.cli.options import FormatOpt, SeedOpt, check_choice, print_json

PICKED = ("sample", "queue", "browse")


def _picked(text: str) -> tuple[str, ...] | None:
    """``--picked``: ``all``, or a comma list of how reviews were picked (sample, queue, browse)."""
    if text.strip() == "all":
        return None
    names = tuple(p.strip() for p in text.split(",") if p.strip())
    bad = [p for p in names if p not in PICKED]
    if not names or bad:
        raise fail(f"--picked must be all or a comma list of {', '.join(PICKED)}, not {text!r}")
    return names


@app.command()
def calibrate(
    run_dirs: Annotated[list[Path], typer.Argument(help="Finished run folders (one calibration per run, i.e. per "
                                                        "model; a folder of run folders counts as all of them).")],
    labels: Annotated[Path, typer.Option(
        "--labels", "-l", help="Human labels: a JSONL of question_id, model, score, or a run folder whose "
                               "reviews.jsonl (from `alignbench view`) holds them.")],
    label_scale: Annotated[str | None, typer.Option(
        "--label-scale", help="The labels' scale, e.g. 1-5, mapped linearly onto the rubric's 1-10 (labels file "
                              "only; default: labels are on the rubric's scale).")] = None,
    picked: Annotated[str, typer.Option(
        "--picked", help="Reviews as labels: which count, by how the reviewer got them: sample (the viewer's "
                         "random-sample queue, the default: calibration needs randomly chosen labels), queue, "
                         "browse, a comma list, or all.")] = "sample",
    lam: Annotated[str, typer.Option(
        "--lam", help="auto (power-tuned, PPI++) or a fixed λ: 1 = plain PPI, 0 = labels only.")] = "auto",
    ci: Annotated[str, typer.Option("--ci", help="analytic (t intervals) or bootstrap.")] = "analytic",
    min_labels: Annotated[int, typer.Option(
        "--min-labels", min=2, help="Flag a category with fewer labels than this.")] = 10,
    seed: SeedOpt = 0,
    fmt: FormatOpt = "table",
) -> None:
    """Human-scale scores from the judge's scores plus human labels of some answers: per category,
    推理/语言 and overall, the calibrated score (prediction-powered inference) beside the judge-only and
    labels-only estimates, each with its CI, and the effective number of labels gained. Never calls a
    judge. The labelled answers must be a random sample within each category."""
    from alignbench import api

    check_choice(fmt, "--format", "table", "json")
    with guarded():
        cset = api.calibrate(run_dirs, labels, label_scale=label_scale, lam=lam, method=ci, min_labels=min_labels,
                             picked=_picked(picked), seed=seed)
    if fmt == "json":
        print_json(cset.as_dict())
        return
    from alignbench.reporting.terminal import print_calibrations

    print_calibrations(cset, console)


@app.command()
def bridge(
    old_run: Annotated[Path, typer.Argument(help="Run folder(s) of the old judge (a folder of run folders counts "
                                                 "as all of them).")],
    new_run: Annotated[Path, typer.Argument(help="Run folder(s) of the new judge on the same answers.")],
    save: Annotated[Path | None, typer.Option(
        "--save", help="Write the bridge (JSON) for `alignbench report OLD_RUN... --bridge FILE`.")] = None,
    bootstrap: Annotated[int, typer.Option(
        "--bootstrap", min=0, help="Resamples for the map's band (agreement CIs use 200).")] = 500,
    seed: SeedOpt = 0,
    fmt: FormatOpt = "table",
) -> None:
    """Map an old judge's scale onto a new judge's from the same answers judged by both (isotonic
    regression with a bootstrap band): agreement (Spearman, Kendall, mean |diff|) overall and per
    category, and every category and overall score on both scales. Never calls a judge."""
    from alignbench import api

    check_choice(fmt, "--format", "table", "json")
    with guarded():
        fit = api.bridge(old_run, new_run, save=save, n_boot=bootstrap, seed=seed)
    if fmt == "json":
        print_json({**fit.as_dict(), "saved": str(save) if save else None})
        return
    from alignbench.reporting.terminal import print_bridge

    print_bridge(fit, console, saved=str(save) if save else None)
