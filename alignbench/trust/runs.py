"""Judge trust over run folders: where ``alignbench.trust``'s statistics find their inputs.

The other ``alignbench.trust`` modules are pure: judgments in, frozen results out. The commands need more than that: human
labels from a labels file or from a run folder's reviews, one calibration per run, a bridge fitted on
two run folders and applied to older ones, bias audits over the runs a report shows (answer texts read
from the answer files their manifests record, pairwise verdicts from compare folders), and the review
line of ``show`` and ``report``. That plumbing lives here, once, so ``calibrate``, ``bridge``, ``show``,
``report`` and the Python API give the same numbers. Nothing here prints or computes a statistic of its
own; bad inputs raise ``InputError`` (a labels file: file and line, before any computation) or
``RunError`` (a run folder).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict

from alignbench import safejson
from alignbench.data import InputError, read_jsonl
from alignbench.rubrics import Rubric, RubricError, load_rubric
from alignbench.rundir import Run, RunError, expand_runs, load_run, unique_labels
from alignbench.trust import (
    Bridge,
    BridgeFit,
    Calibration,
    FamilyReport,
    FormatBias,
    HumanLabel,
    LabelScale,
    LengthBias,
    PositionBias,
    SelfPreference,
    answer_lengths,
    apply_bridge,
    calibrate,
    family_report,
    fit_bridge,
    format_bias,
    length_bias,
    parse_label_scale,
    position_bias,
    self_preference,
)
from alignbench.trust.base import _AsDict
from alignbench.types import Judgment, Summary

Key = tuple[int, str]
AUDIT_BOOT = 300  # bootstrap resamples of the audits in show/report: CIs to ±0.01 at a fraction of the cost
PICKED_DEFAULT = ("sample",)  # reviews a calibration may use: those from the random-sample queue


def rubric_of(run: Run) -> Rubric:
    """The rubric a run was judged with (by name; the version is in ``run.rubric_id``)."""
    try:
        return load_rubric(run.rubric_id.split("@")[0])
    except RubricError as exc:
        raise RunError(f"{run.dir}: {exc}") from None


def load_runs(paths: Sequence[Path | str], questions: bool = False) -> list[Run]:
    """Finished run folders (a folder of per-model run folders counts as all of them), labelled
    uniquely (model name, plus the folder where two runs share one)."""
    runs = [load_run(p, questions=questions) for p in expand_runs(paths)]
    unique_labels(runs)
    return runs


# ================================================================================================
# Human labels: a labels file or a run folder's reviews
# ================================================================================================


@dataclass
class LabelSet:
    """Human labels of judged answers, from one source. ``kind`` "file": a JSONL of question_id, model,
    score (on ``--label-scale`` or the rubric's scale); "reviews": reviewers' overall scores from
    ``reviews.jsonl`` (always on the rubric's scale). ``lines`` maps each label to its file line, so a
    label outside the scale is reported as file:line."""

    labels: list[HumanLabel]
    source: str
    kind: Literal["file", "reviews"]
    notes: list[str] = field(default_factory=list)
    lines: dict[Key, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "kind": self.kind, "n": len(self.labels),
                "n_answers": len({(lb.question_id, lb.model) for lb in self.labels}), "notes": list(self.notes)}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        x = float(value)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def read_labels_file(path: Path | str) -> LabelSet:
    """A labels file: one JSON object per line with ``question_id`` (integer), ``model`` (the model
    whose answer was labelled, as the run names it) and ``score`` (``human_score`` is accepted too).
    Every problem is an InputError naming file and line."""
    path = Path(path)
    labels, lines = [], {}
    for lineno, obj in read_jsonl(path):
        qid = obj.get("question_id")
        if isinstance(qid, str) and qid.strip().isdigit():
            qid = int(qid)
        if isinstance(qid, bool) or not isinstance(qid, int):
            raise InputError(path, lineno, f"question_id must be an integer, got {qid!r}")
        model = obj.get("model")
        if not isinstance(model, str) or not model.strip():
            raise InputError(path, lineno, "missing 'model' (the model whose answer was labelled, as the run "
                             "names it)")
        key = "score" if "score" in obj else "human_score" if "human_score" in obj else None
        if key is None:
            raise InputError(path, lineno, "missing 'score' (the human score of the answer)")
        score = _number(obj[key])
        if score is None:
            raise InputError(path, lineno, f"{key} must be a finite number, got {obj[key]!r}")
        labels.append(HumanLabel(qid, model.strip(), score))
        lines.setdefault((qid, model.strip()), lineno)
    if not labels:
        raise InputError(path, None, "no labels in file")
    return LabelSet(labels=labels, source=str(path), kind="file", lines=lines)


def labels_from_reviews(run_dir: Path | str, picked: Sequence[str] | None = PICKED_DEFAULT) -> LabelSet:
    """The reviewers' overall scores in a run folder's ``reviews.jsonl`` (a folder of run folders: all
    of them), through ``reviews.human_labels``: the latest current review of each judgment; stale
    ones are left out. ``picked`` keeps only reviews picked that way (default: the random-sample queue,
    the only labels a calibration may treat as a random sample); None keeps all."""
    from alignbench.reviews import (
        REVIEWS_FILE,
        ReviewError,
        human_labels,
        load_reviews,
        review_agreement,
    )

    labels: list[HumanLabel] = []
    notes: list[str] = []
    n_files = 0
    for d in expand_runs([run_dir]):
        run = load_run(d, questions=False)
        try:
            reviews = load_reviews(run.dir)
        except ReviewError as exc:
            raise RunError(str(exc)) from None
        if not reviews:
            continue
        n_files += 1
        kept = human_labels(run.judgments, reviews, picked=picked)
        labels.extend(HumanLabel(j.question_id, j.model, float(score)) for j, score in kept)
        if picked is not None:
            others = len(human_labels(run.judgments, reviews)) - len(kept)
            if others:
                notes.append(f"{run.dir / REVIEWS_FILE}: {others} review(s) not picked from "
                             f"{'/'.join(picked)} are left out (labels chosen because the judge looked wrong "
                             "would bias the calibration; --picked all uses them anyway)")
        stale = review_agreement(run.judgments, reviews).n_stale
        if stale:
            notes.append(f"{run.dir / REVIEWS_FILE}: {stale} stale review(s) (their judgment changed since) are "
                         "left out")
    if not n_files:
        raise InputError(run_dir, None, f"no {REVIEWS_FILE} here: review judgments with `alignbench view` first, "
                         "or give a labels file (JSONL of question_id, model, score)")
    if not labels:
        raise InputError(run_dir, None, "no usable review: " + ("; ".join(notes) if notes else "none is current"))
    return LabelSet(labels=labels, source=str(run_dir), kind="reviews", notes=notes)


def load_labels(source: Path | str, picked: Sequence[str] | None = PICKED_DEFAULT) -> LabelSet:
    """``--labels FILE|RUN_DIR``: a labels JSONL, or a run folder whose reviews are the labels."""
    p = Path(source)
    if p.is_dir():
        return labels_from_reviews(p, picked)
    if not p.is_file():
        raise InputError(p, None, "no such labels file or run folder")
    return read_labels_file(p)


def _label_scale(labels: LabelSet, label_scale: LabelScale | str | None) -> LabelScale | None:
    if label_scale is None or isinstance(label_scale, LabelScale):
        scale = label_scale
    else:
        try:
            scale = parse_label_scale(label_scale)
        except ValueError as exc:
            raise InputError("--label-scale", None, str(exc)) from None
    if scale is not None and labels.kind == "reviews":
        raise InputError("--label-scale", None, "reviews are scored on the rubric's scale already; "
                         "--label-scale applies to a labels file only")
    return scale


def check_label_range(labels: LabelSet, scale: LabelScale | None, rubric: Rubric) -> None:
    """Every label within the scale in use (``--label-scale``, else the rubric's); the first that is not
    is an InputError naming file and line, raised before any computation."""
    low, high = (scale.low, scale.high) if scale else (rubric.scale.min, rubric.scale.max)
    for lb in labels.labels:
        if not low - 1e-9 <= lb.score <= high + 1e-9:
            hint = "" if scale else " (labels on another scale? pass --label-scale LOW-HIGH, e.g. 1-5)"
            line = labels.lines.get((lb.question_id, lb.model))
            where = labels.source if labels.kind == "file" else f"{labels.source} (reviews)"
            raise InputError(where, line, f"score {lb.score:g} of question {lb.question_id}, model {lb.model} is "
                             f"outside the label scale {low:g}-{high:g}{hint}")


# ================================================================================================
# Calibration: one per run
# ================================================================================================


@dataclass
class CalibrationSet:
    """``calibrate`` over several runs: one ``Calibration`` per run (by run label), where each run is,
    the labels used, and warnings that concern all runs (labels of models in no run)."""

    runs: dict[str, Calibration]
    dirs: dict[str, Path]
    judges: dict[str, str]
    labels: LabelSet
    warnings: list[str] = field(default_factory=list)
    on_label_scale: dict[str, dict[str, Any]] = field(default_factory=dict)  # overall back on the labels' scale

    def as_dict(self) -> dict[str, Any]:
        return {"labels": self.labels.as_dict(), "warnings": list(self.warnings),
                "runs": {k: {"dir": str(self.dirs[k]), "judge": self.judges[k], **c.as_dict(),
                             "overall_on_label_scale": self.on_label_scale.get(k)} for k, c in self.runs.items()}}


def run_judge(run: Run) -> str:
    """The judge that gave a run's judgments, as the judgments name it (what a bridge records)."""
    names = Counter(j.judge for j in run.judgments)
    return names.most_common(1)[0][0] if names else "?"


def calibrate_runs(runs: Sequence[Run], labels: LabelSet, *, label_scale: LabelScale | str | None = None,
                   lam: float | Literal["auto"] = "auto", method: Literal["analytic", "bootstrap"] = "analytic",
                   min_labels: int = 10, n_boot: int = 2000, seed: int = 0) -> CalibrationSet:
    """One calibration per run (per model): the run's judgments with the labels of its model. Why per
    run: a calibrated score estimates one population, and a release compares models, so each model
    gets its own estimate and interval. Labels are checked against the scale before anything runs."""
    scale = _label_scale(labels, label_scale)
    rubrics = {id(r): rubric_of(r) for r in runs}
    for r in runs:
        check_label_range(labels, scale, rubrics[id(r)])
    out: dict[str, Calibration] = {}
    used_models = {r.model for r in runs}
    for r in runs:
        mine = [lb for lb in labels.labels if lb.model == r.model]
        try:
            out[r.label] = calibrate(r.judgments, mine, rubrics[id(r)], label_scale=scale, lam=lam, method=method,
                                     min_labels=min_labels, n_boot=n_boot, seed=seed)
        except ValueError as exc:
            raise RunError(f"{r.dir}: {exc}") from None
    warnings = list(labels.notes)
    stray = Counter(lb.model for lb in labels.labels if lb.model not in used_models)
    if stray:
        warnings.append(f"{sum(stray.values())} label(s) of model(s) in no given run are unused: "
                        + ", ".join(f"{m} ({n})" for m, n in sorted(stray.items())))
    back: dict[str, dict[str, Any]] = {}
    for r in runs:
        top = out[r.label].overall
        if scale is not None and top is not None and top.calibrated.score is not None:
            values = scale.from_rubric([top.calibrated.score, *(top.calibrated.ci or ())], rubrics[id(r)])
            back[r.label] = {"scale": [scale.low, scale.high], "score": round(float(values[0]), 4),
                             "ci": [round(float(v), 4) for v in values[1:]] or None}
    return CalibrationSet(runs=out, dirs={r.label: r.dir for r in runs}, judges={r.label: run_judge(r) for r in runs},
                          labels=labels, warnings=warnings, on_label_scale=back)


# ================================================================================================
# Bridge between judges
# ================================================================================================


def fit_runs_bridge(old: Sequence[Run], new: Sequence[Run], *, n_boot: int = 500, seed: int = 0) -> BridgeFit:
    """Fit the old judge → new judge map on the answers both sets of runs judged (every model of both)."""
    if not old or not new:
        raise RunError("bridge needs an old and a new run folder")
    try:
        return fit_bridge([j for r in old for j in r.judgments], [j for r in new for j in r.judgments],
                          rubric_of(old[0]), new_rubric=rubric_of(new[0]), n_boot=n_boot, seed=seed)
    except ValueError as exc:
        where = ", ".join(str(r.dir) for r in (*old, *new))
        raise RunError(f"{where}: {exc} (are these runs of the same answers by two judges?)") from None


def read_bridge(path: Path | str) -> Bridge:
    """A bridge saved by ``alignbench bridge --save``; InputError naming the file when it is not one."""
    import json

    p = Path(path)
    if not p.is_file():
        raise InputError(p, None, "no such bridge file (write one with `alignbench bridge OLD NEW --save FILE`)")
    try:
        return Bridge.from_dict(safejson.read_json(p))
    except json.JSONDecodeError as exc:
        raise InputError(p, exc.lineno if exc.doc else None, safejson.describe(exc)) from None
    except ValueError as exc:
        raise InputError(p, None, str(exc)) from None


def bridges_run(bridge: Bridge, run: Run) -> bool:
    """Whether ``run`` was judged by the bridge's old judge with its old rubric (so the bridge applies)."""
    return bool(run.judgments) and all(j.judge == bridge.old_judge and j.rubric == bridge.old_rubric
                                       for j in run.judgments)


def bridged_run(bridge: Bridge, run: Run, source: str = "", seed: int = 0) -> Run:
    """``run`` put on the new judge's scale: its overall scores through the bridge, scores re-aggregated
    with the same weighting, and the summary marked ``bridged`` (from, to, answers the map was fitted
    on, file), so no report can show it as a score the new judge gave."""
    from alignbench.aggregate import summarize

    judgments = apply_bridge(bridge, run.judgments)
    body = summarize(sorted(judgments, key=lambda j: j.question_id), rubric_of(run), seed=seed)
    mark = {"from": bridge.old_judge, "to": bridge.new_judge, "from_rubric": bridge.old_rubric,
            "to_rubric": bridge.new_rubric, "n": bridge.n, "file": source}
    summary = Summary.model_validate({**run.summary.as_json(), **body, "bridged": mark})
    return Run(dir=run.dir, summary=summary, judgments=judgments, questions=run.questions,
               questions_note=run.questions_note, label=run.label)


def bridge_info(run: Run) -> dict[str, Any] | None:
    """The ``bridged`` mark of a run made by ``bridged_run``, else None."""
    mark = getattr(run.summary, "bridged", None)
    return mark if isinstance(mark, dict) else None


# ================================================================================================
# Reviews
# ================================================================================================


def review_state(run: Run) -> tuple[Any, str | None]:
    """(``reviews.Agreement`` or None without ``reviews.jsonl``, a problem in words or None). A
    review file with an unreadable line is a problem to show, not an error: the scores still stand."""
    from alignbench.reviews import ReviewError, load_reviews, review_agreement

    if not (run.dir / "reviews.jsonl").is_file():
        return None, None
    try:
        reviews = load_reviews(run.dir)
    except ReviewError as exc:
        return None, str(exc)
    return review_agreement(run.judgments, reviews), None


# ================================================================================================
# Bias audits
# ================================================================================================


class BiasAudit(_AsDict):
    """The bias audits of one judge over a set of runs (and compare folders): length and format
    (within each question when two or more runs answered it), position (pairwise), the judge/model
    families and, for ensembles, self-preference. ``notes`` say what could not be audited and why."""

    judge: str
    runs: list[str]
    length: LengthBias | None = None
    format: FormatBias | None = None
    position: PositionBias | None = None
    position_source: list[str] = []
    family: FamilyReport | None = None
    self_preference: SelfPreference | None = None
    notes: list[str] = []
    model_config = ConfigDict(frozen=False)  # filled in as each audit is computed


def judge_names(run: Run) -> list[str]:
    """What names the judge(s) of a run for family matching, each member of an ensemble: the served model
    id when its family is known (``gpt-4o``), else the preset name (``critiquellm``, served as a local
    path), else the model id."""
    from alignbench.trust import model_family

    judge = run.summary.run.judge or {}
    members = judge.get("ensemble") or [judge]
    out = []
    for m in members:
        model, name = str(m.get("model") or ""), str(m.get("name") or "")
        out.append(model if model and model_family(model) else name if name and model_family(name) else
                   model or name or "?")
    return out


def answer_texts(run: Run) -> tuple[dict[int, str], str | None]:
    """The run's answer texts by question id from the answer file its manifest records, or a note."""
    from alignbench.rundir import load_answer_texts

    answers, note = load_answer_texts(run)
    return {q: a.text for q, a in answers.items()}, note


def _members(run: Run) -> list[Judgment]:
    """Every member judge's judgments of an ensemble run, each keeping its judge's name; [] for a
    single judge or when any member's run is not found."""
    from alignbench.rundir import ensemble_members

    found, missing = ensemble_members(run)
    if missing:
        return []
    return [j.model_copy(update={"judge": judge}) for judge, member in found.items()
            for j in member.judgments if j.model == run.model]


def audit_runs(runs: Sequence[Run], *, compare_dirs: Sequence[Path | str] = (), n_boot: int = AUDIT_BOOT,
               seed: int = 0, texts: bool = True) -> list[BiasAudit]:
    """Bias audits of ``runs`` (labels made unique first), one per judge among them.

    Runs of one judge are pooled, each answer keyed by (question, run label), so answers of several
    models to one question are compared within the question (question difficulty cannot fake a length
    preference). Lengths: characters and jieba words from the answer file each run records when it is
    at hand (``texts``), else characters from ``Judgment.answer_chars``. Position: from the pairwise
    verdicts of ``compare_dirs`` (folders written by ``alignbench compare``), pooled."""
    from alignbench.pairwise.compare import JUDGMENTS_FILE, read_pairwise_judgments

    if len({r.label for r in runs}) < len(runs) or not all(r.label for r in runs):
        unique_labels(list(runs))  # labels a report already made unique are kept as they are
    groups: dict[str, list[Run]] = {}
    for r in runs:
        groups.setdefault(run_judge(r), []).append(r)
    audits = []
    for judge, members in groups.items():
        rubric = rubric_of(members[0])
        audit = BiasAudit(judge=judge, runs=[r.label for r in members])
        judgments: list[Judgment] = []
        chars: dict[Key, float] = {}
        text_of: dict[Key, str] = {}
        for r in members:
            found, note = answer_texts(r) if texts else ({}, None)
            if texts and note:
                audit.notes.append(f"{r.label}: {note}; lengths in characters from the judgments, no words or "
                                   "format")
            for j in r.judgments:
                key = (j.question_id, r.label)
                judgments.append(j.model_copy(update={"model": r.label}))
                chars[key] = float(j.answer_chars)
                if j.question_id in found:
                    text_of[key] = found[j.question_id]
        lengths: dict[str, dict[Key, float]] = {"chars": chars}
        if text_of:
            counted = answer_lengths(text_of)
            lengths["chars"].update({k: float(v) for k, v in counted["chars"].items()})
            lengths["words"] = {k: float(v) for k, v in counted["words"].items()}
        if text_of or any(chars.values()):
            audit.length = length_bias(judgments, rubric, lengths=lengths, units=tuple(lengths), n_boot=n_boot,
                                       seed=seed)
        else:
            audit.notes.append("no answer lengths: the judgments record none (answer_chars 0) and no answer file "
                               "is at hand")
        if text_of:
            audit.format = format_bias(judgments, rubric, text_of, n_boot=n_boot, seed=seed)
        audit.family = family_report(sorted({n for r in members for n in judge_names(r)}),
                                     sorted({r.model for r in members}))
        ens = [j for r in members if r.summary.ensemble for j in _members(r)]
        if ens:
            try:
                audit.self_preference = self_preference(ens, n_boot=n_boot, seed=seed)
            except ValueError as exc:  # two runs of one model name: answers cannot be told apart
                audit.notes.append(f"self-preference not computed: {exc}")
        audits.append(audit)
    if compare_dirs and audits:
        pairs = []
        for d in compare_dirs:
            path = Path(d) / JUDGMENTS_FILE
            if not path.is_file():
                raise RunError(f"{d}: not a compare folder (no {JUDGMENTS_FILE}); write one with `alignbench compare`")
            pairs.extend(read_pairwise_judgments(path))
        first = audits[0]
        first.position = position_bias(pairs, rubric_of(runs[0]), n_boot=n_boot, seed=seed)
        first.position_source = [str(d) for d in compare_dirs]
        pair_judges = sorted({p.judge for p in pairs})
        if pair_judges != [first.judge]:
            first.notes.append(f"position figures are of the pairwise judge {', '.join(pair_judges)}")
    return audits


@dataclass
class RunTrust:
    """What ``show`` adds about trusting one run: its reviews (``reviews.Agreement``), its judge
    variance (``summary.samples`` of a ``score --samples K`` run) and a bias audit."""

    reviews: Any = None
    review_problem: str | None = None
    samples: dict[str, Any] | None = None
    audits: list[BiasAudit] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"reviews": self.reviews.as_dict() if self.reviews is not None else None,
                "review_problem": self.review_problem, "samples": self.samples,
                "audits": [a.as_dict() for a in self.audits]}


def run_trust(run: Run, *, baseline: Run | None = None, compare_dirs: Sequence[Path | str] = (), audit: bool = True,
              n_boot: int = AUDIT_BOOT, seed: int = 0) -> RunTrust:
    """Reviews, judge variance and (``audit``) the bias audit of one run; with ``baseline`` the two
    runs are audited together, so answers of both to one question are compared within the question."""
    out = RunTrust()
    out.reviews, out.review_problem = review_state(run)
    samples = getattr(run.summary, "samples", None)
    out.samples = samples if isinstance(samples, dict) else None
    if audit:
        runs = [run] + ([baseline] if baseline is not None and baseline.dir.resolve() != run.dir.resolve() else [])
        if len({r.label for r in runs}) < len(runs) or not all(r.label for r in runs):
            unique_labels(runs)
        out.audits = audit_runs(runs, compare_dirs=compare_dirs, n_boot=n_boot, seed=seed)
    return out


__all__ = ["AUDIT_BOOT", "PICKED_DEFAULT", "BiasAudit", "CalibrationSet", "LabelSet", "RunTrust", "run_trust",
           "answer_texts", "audit_runs",
           "bridge_info", "bridged_run", "bridges_run", "calibrate_runs", "check_label_range", "fit_runs_bridge",
           "judge_names", "labels_from_reviews", "load_labels", "load_runs", "read_bridge", "read_labels_file",
           "review_state", "rubric_of", "run_judge"]
