"""Judge trust: calibrated scores from a few human labels, a bridge between judges, bias audits and
judge variance. Pure statistics over judgments: no files, no network, no printing.

A judge's score is a measurement with two errors: sampling (which questions were asked) and the
judge's own error (how far it is from what a person would have said). ``aggregate.summarize`` gives
CIs for the first only. This module adds the second and the tools to see it:

1. ``calibrate``: prediction-powered inference (PPI, power-tuned as in PPI++). The judge scores every
   answer, people score a random subset; per category the human-scale mean is the judge's mean over
   every answer plus the mean human−judge difference on the labelled answers (the *rectifier*). The CI
   carries both errors. Categories are combined with the AlignBench weights
   (``stats.group_weights``), exactly as ``aggregate`` combines category means.
2. ``fit_bridge`` / ``apply_bridge``: a monotone (isotonic) map from one judge's scale to another's,
   fitted on the same answers judged by both, so runs scored by a retired judge can be put on the new
   judge's scale; ``Bridge`` round-trips through a versioned JSON dict.
3. Bias audits: ``length_bias`` and ``format_bias`` (within-question association of score with answer
   length / Markdown structure), ``position_bias`` (pairwise first-position win rate and flip rate),
   ``self_preference`` and ``family_report`` (judge and model from one family).
4. ``judge_variance``: repeated judgments of the same answers: the within-answer spread and how much
   of each CI it accounts for.

Every result is a frozen dataclass with ``as_dict()`` (JSON-ready: tuples become lists, NaN becomes
None). Formulas, rules and the reasons for each choice are in ``docs/trust.md``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from alignbench import stats
from alignbench.rubrics import Rubric
from alignbench.stats.fmt import finite as _f
from alignbench.stats.fmt import rnd
from alignbench.types import Judgment, Status

if TYPE_CHECKING:
    from alignbench.pairwise.compare import PairJudgment

Key = tuple[int, str]  # (question_id, model): one answer
Kind = stats.Kind

MIN_LABELS = 10  # fewer labels than this in a category: flagged (estimates still given from 2 on)
TUNE_MIN_LABELS = 10  # λ is power-tuned only from this many labels; below, plain PPI (λ = 1)
N_BOOT = 2000
BRIDGE_FORMAT = "alignbench-bridge"
BRIDGE_VERSION = 1


# ================================================================================================
# Shared helpers
# ================================================================================================


def _clean(value: Any, digits: int | None) -> Any:
    """JSON-ready copy: tuples → lists, NaN/inf → None, floats rounded (``digits`` None: kept)."""
    if isinstance(value, dict):
        return {str(k): _clean(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v, digits) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _f(value) if digits is None else rnd(value, digits)
    return value


class _AsDict:
    """``as_dict()`` for the frozen result dataclasses (the ``--format json`` body)."""

    def as_dict(self) -> dict[str, Any]:
        return _clean(asdict(self), 4)  # type: ignore[call-overload]


def _t_crit(level: float, df: float | None) -> float:
    """Two-sided critical value: Student t with ``df`` degrees of freedom (normal when df is huge)."""
    from scipy.special import ndtri, stdtrit  # the bare quantile functions: fast, and no scipy.stats import

    q = 1 - (1 - level) / 2
    if df is None or not math.isfinite(df) or df > 1e6:
        return float(ndtri(q))
    return float(stdtrit(max(df, 1.0), q))


def satterthwaite(parts: Sequence[tuple[float, float]]) -> float | None:
    """Welch–Satterthwaite degrees of freedom of a sum of independent variance estimates
    ``[(variance, df), ...]``: (Σv)² / Σ(v²/df). None when every part is zero."""
    total = sum(v for v, _ in parts)
    den = sum(v * v / d for v, d in parts if v > 0 and d > 0)
    if total <= 0 or den <= 0:
        return None
    return total * total / den


def _ok_overall(j: Judgment) -> bool:
    return j.status is Status.OK and j.overall is not None


def _one_per_answer(judgments: Iterable[Judgment], what: str) -> dict[Key, Judgment]:
    out: dict[Key, Judgment] = {}
    for j in judgments:
        key = (j.question_id, j.model)
        if key in out:
            raise ValueError(f"{what}: answer (question {key[0]}, model {key[1]}) is judged more than once; pass one "
                             "judgment per answer (average repeated samples first, see judge_variance)")
        out[key] = j
    return out


def _mostly(values: Iterable[str]) -> str:
    """The single value, or every distinct value joined (sorted) when there are several."""
    distinct = sorted(set(values))
    return distinct[0] if len(distinct) == 1 else ",".join(distinct)


# ================================================================================================
# 1. Calibration: prediction-powered inference
# ================================================================================================


@dataclass(frozen=True)
class LabelScale(_AsDict):
    """The scale human labels are given on, mapped linearly onto the rubric's scale (its ends onto the
    rubric's ends): 1–5 → 1–10 is x ↦ 1 + (x − 1)·9/4, so 1, 2, 3, 4, 5 → 1, 3.25, 5.5, 7.75, 10."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.high <= self.low:
            raise ValueError(f"label scale {self.low}-{self.high}: need low < high")

    def to_rubric(self, x: Any, rubric: Rubric) -> np.ndarray:
        lo, hi = rubric.scale.min, rubric.scale.max
        return lo + (np.asarray(x, dtype=float) - self.low) * (hi - lo) / (self.high - self.low)

    def from_rubric(self, x: Any, rubric: Rubric) -> np.ndarray:
        """The inverse map: a calibrated score (rubric scale) back on the labels' own scale."""
        lo, hi = rubric.scale.min, rubric.scale.max
        return self.low + (np.asarray(x, dtype=float) - lo) * (self.high - self.low) / (hi - lo)


def parse_label_scale(text: str) -> LabelScale:
    """``"1-5"`` (also ``1–5``, ``1:5``, ``1,5``) → LabelScale(1, 5); ValueError otherwise."""
    m = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*(?:-|–|:|,|to)\s*(-?\d+(?:\.\d+)?)\s*", text)
    if not m:
        raise ValueError(f"label scale {text!r}: expected LOW-HIGH, e.g. 1-5")
    return LabelScale(float(m.group(1)), float(m.group(2)))


@dataclass(frozen=True)
class HumanLabel:
    """One person's score of one judged answer (a labels-file row or a review)."""

    question_id: int
    model: str
    score: float


@dataclass(frozen=True)
class PPIMean(_AsDict):
    """PPI(++) estimate of one mean (one category), with its variance split in two parts:
    ``var_labelled`` (the rectifier's sampling error, ``df_labelled`` = n−1, or n−2 when λ was tuned) and
    ``var_unlabelled`` (the judge's mean over the answers nobody labelled, df N−1)."""

    value: float
    variance: float
    df: float | None
    lam: float
    n_labels: int
    n: int
    var_labelled: float
    var_unlabelled: float
    df_labelled: int


def power_tuned_lambda(judge_labelled: Any, human_labelled: Any) -> float:
    """λ minimising the PPI variance when the labelled answers are among the judged ones: the slope of
    human on judge scores, Cov(h, f)/Var(f), clipped to [0, 1] (0 = labels only, 1 = plain PPI). 0 when
    the judge gave every labelled answer the same score (nothing to learn the relation from)."""
    f = np.asarray(judge_labelled, dtype=float)
    h = np.asarray(human_labelled, dtype=float)
    if f.size < 2:
        return 0.0
    var_f = float(f.var(ddof=1))
    if var_f <= 0:
        return 0.0
    cov = float(((f - f.mean()) * (h - h.mean())).sum() / (f.size - 1))
    return float(np.clip(cov / var_f, 0.0, 1.0))


def ppi_mean(judge_all: Any, judge_labelled: Any, human_labelled: Any, lam: float | Literal["auto"] = "auto") -> PPIMean:
    """PPI(++) estimate of the human-scale mean of one category.

    ``judge_all``: the judge's scores of all N answers (the labelled ones included);
    ``judge_labelled``/``human_labelled``: judge and human scores of the n labelled answers (paired).
    θ̂ = mean_N(λf) + mean_n(h − λf) = mean_n(h) + λ(mean_N(f) − mean_n(f)).
    With r = n/N, θ̂ = (1−r)·λ·mean_U(f) + mean_n(h − λ(1−r)f) over the disjoint unlabelled (U) and
    labelled sets, so Var θ̂ = λ²(N−n)·Var(f)/N² + Var(h − λ(1−r)f)/n exactly; for n ≪ N this is the
    familiar Var(f)/N + Var(h − f)/n, and at n = N it is the classical Var(h)/n.
    ``lam="auto"``: λ = ``power_tuned_lambda`` when n ≥ TUNE_MIN_LABELS (a fitted slope costs a degree of
    freedom: the labelled variance is divided by n − 2), else plain PPI (λ = 1): a slope from a handful
    of labels is noise.
    """
    f = np.asarray(judge_all, dtype=float)
    fl = np.asarray(judge_labelled, dtype=float)
    h = np.asarray(human_labelled, dtype=float)
    n, big_n = h.size, f.size
    if fl.size != n:
        raise ValueError("judge_labelled and human_labelled must pair up (same length)")
    if n < 2:
        raise ValueError("PPI needs at least 2 labelled answers")
    if big_n < n:
        raise ValueError("judge_all must include the labelled answers (N >= n)")
    tuned = lam == "auto" and n >= TUNE_MIN_LABELS
    lam_v = power_tuned_lambda(fl, h) if tuned else 1.0 if lam == "auto" else float(lam)
    r = n / big_n
    value = float(h.mean() + lam_v * (f.mean() - fl.mean()))
    # A λ fitted on the labels spends one degree of freedom (it is a regression slope): divide by n − 2.
    ddof = 2 if tuned and n > 2 else 1
    g = h - lam_v * (1 - r) * fl
    v_lab = float(((g - g.mean()) ** 2).sum() / (n - ddof) / n)
    v_unl = float(lam_v**2 * (big_n - n) * f.var(ddof=1) / big_n**2) if big_n > 1 else 0.0
    df = satterthwaite([(v_lab, n - ddof), (v_unl, big_n - 1)])
    return PPIMean(value=value, variance=v_lab + v_unl, df=df, lam=lam_v, n_labels=n, n=big_n,
                   var_labelled=v_lab, var_unlabelled=v_unl, df_labelled=n - ddof)


@dataclass(frozen=True)
class Estimate(_AsDict):
    """A score with its standard error, CI and (analytic method) degrees of freedom."""

    score: float | None
    se: float | None = None
    ci: tuple[float, float] | None = None
    df: float | None = None


NONE_ESTIMATE = Estimate(None)


@dataclass(frozen=True)
class CalibratedRow(_AsDict):
    """One line of the calibration table: the overall score, a group or a category.

    ``calibrated``: the PPI estimate of the human-scale score (rubric scale); ``judge_only``: the judge's
    own score and CI (sampling error only); ``labels_only``: the mean of the human labels alone.
    ``effective_labels`` = n_labels × Var(labels only)/Var(calibrated): how many labels the labels-only
    estimate would need for the calibrated CI width; ``labels_gained`` = effective − n_labels."""

    key: str
    kind: Kind
    name: str
    en: str
    n: int  # ok judged answers
    n_labels: int  # labels used (on ok judgments)
    calibrated: Estimate
    judge_only: Estimate
    labels_only: Estimate
    effective_labels: float | None = None
    labels_gained: float | None = None
    lam: float | None = None  # category rows: the λ used
    flag: str | None = None  # why this row is not to be trusted (too few labels), in words


@dataclass(frozen=True)
class LabelAccounting(_AsDict):
    """What became of the labels given: used, on failed judgments (reported, never used), unmatched."""

    n_given: int
    n_answers: int  # distinct labelled answers (several labels of one answer are averaged)
    n_used: int
    n_on_failed: int
    on_failed_by_status: dict[str, int]
    n_unmatched: int
    unmatched_examples: tuple[tuple[int, str], ...]
    n_unknown_category: int


@dataclass(frozen=True)
class Calibration(_AsDict):
    """``calibrate``'s result. ``overall``/``groups``/``categories`` in rubric order; ``rows()`` gives the
    table order (overall, then each group followed by its categories)."""

    overall: CalibratedRow | None
    groups: tuple[CalibratedRow, ...]
    categories: tuple[CalibratedRow, ...]
    labels: LabelAccounting
    label_scale: tuple[float, float] | None  # None: labels given on the rubric scale
    scale: tuple[float, float]
    models: tuple[str, ...]
    method: str  # "analytic" | "bootstrap"
    lam: str  # "auto" or the fixed value
    level: float
    min_labels: int
    warnings: tuple[str, ...]
    group_members: dict[str, tuple[str, ...]] = field(default_factory=dict)  # group id -> categories present
    settings: dict[str, Any] = field(default_factory=dict)

    def rows(self) -> list[CalibratedRow]:
        out: list[CalibratedRow] = [self.overall] if self.overall else []
        by_cat = {r.key: r for r in self.categories}
        for g in self.groups:
            out.append(g)
            out.extend(by_cat[c] for c in self.group_members.get(g.key, ()) if c in by_cat)
        return out


def _labels_by_answer(labels: Iterable[HumanLabel] | Mapping[Key, float]) -> tuple[dict[Key, list[float]], int]:
    out: dict[Key, list[float]] = {}
    n = 0
    items: Iterable[tuple[Key, float]]
    if isinstance(labels, Mapping):
        items = ((tuple(k), v) for k, v in labels.items())  # type: ignore[misc]
    else:
        items = (((lab.question_id, lab.model), lab.score) for lab in labels)
    for key, score in items:
        value = float(score)
        if not math.isfinite(value):
            raise ValueError(f"label of (question {key[0]}, model {key[1]}) is not a finite number: {score!r}")
        out.setdefault((int(key[0]), str(key[1])), []).append(value)
        n += 1
    return out, n


@dataclass
class _Cat:
    """One category's data and its three estimators (analytic parts, or bootstrap resamples)."""

    name: str
    f_all: np.ndarray
    f_lab: np.ndarray
    h_lab: np.ndarray
    ppi: PPIMean | None = None
    boot: dict[str, np.ndarray] = field(default_factory=dict)


def _combine_analytic(cats: Mapping[str, _Cat], weights: Mapping[str, float], which: str,
                      level: float) -> tuple[Estimate, float | None]:
    """Σ W_c θ̂_c, its variance Σ W_c² Var θ̂_c (categories are independent samples) and a t interval with
    Satterthwaite df. Returns the estimate and its variance."""
    value = 0.0
    parts: list[tuple[float, float]] = []
    for c, w in weights.items():
        cat = cats[c]
        n, big_n = cat.h_lab.size, cat.f_all.size
        if which == "judge":
            if big_n < 2:  # one answer: a score, no variance
                return Estimate(float(sum(weights[k] * cats[k].f_all.mean() for k in weights))), None
            value += w * cat.f_all.mean()
            parts.append((w * w * cat.f_all.var(ddof=1) / big_n, big_n - 1))
        elif which == "labels":
            if n < 2:
                return NONE_ESTIMATE, None
            value += w * cat.h_lab.mean()
            parts.append((w * w * cat.h_lab.var(ddof=1) / n, n - 1))
        else:
            if cat.ppi is None:
                return NONE_ESTIMATE, None
            value += w * cat.ppi.value
            parts.append((w * w * cat.ppi.var_labelled, cat.ppi.df_labelled))
            parts.append((w * w * cat.ppi.var_unlabelled, big_n - 1))
    var = sum(v for v, _ in parts)
    df = satterthwaite(parts)
    se = math.sqrt(var)
    half = _t_crit(level, df) * se
    return Estimate(float(value), se, (float(value - half), float(value + half)), df), var


def _boot_category(cat: _Cat, lam: float | Literal["auto"], n_boot: int, rng: np.random.Generator) -> None:
    """Resample labelled and unlabelled answers separately (keeps n and N) and recompute all three."""
    n, big_n = cat.h_lab.size, cat.f_all.size
    f_unl = cat.f_all[n:]  # f_all is stored labelled-first (see calibrate)
    i = stats.draw(rng, n, n_boot) if n else np.zeros((n_boot, 0), dtype=int)
    fb_lab, hb_lab = cat.f_lab[i], cat.h_lab[i]
    fb_all = np.concatenate([fb_lab, f_unl[stats.draw(rng, big_n - n, n_boot)]], axis=1) \
        if big_n > n else fb_lab
    if big_n:
        cat.boot["judge"] = fb_all.mean(axis=1)
    if n >= 2:
        cat.boot["labels"] = hb_lab.mean(axis=1)
        if lam == "auto" and n >= TUNE_MIN_LABELS:
            fc = fb_lab - fb_lab.mean(axis=1, keepdims=True)
            hc = hb_lab - hb_lab.mean(axis=1, keepdims=True)
            vf = (fc * fc).sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                lam_b = np.where(vf > 0, (fc * hc).sum(axis=1) / np.where(vf > 0, vf, 1.0), 0.0)
            lam_b = np.clip(lam_b, 0.0, 1.0)
        else:
            lam_b = np.full(n_boot, 1.0 if lam == "auto" else float(lam))
        cat.boot["ppi"] = hb_lab.mean(axis=1) + lam_b * (fb_all.mean(axis=1) - fb_lab.mean(axis=1))


def _combine_boot(cats: Mapping[str, _Cat], weights: Mapping[str, float], which: str,
                  level: float) -> tuple[Estimate, float | None]:
    point = 0.0
    total: np.ndarray | None = None
    for c, w in weights.items():
        cat = cats[c]
        if which not in cat.boot:
            return NONE_ESTIMATE, None
        point += w * {"judge": cat.f_all.mean(), "labels": cat.h_lab.mean() if cat.h_lab.size else math.nan,
                      "ppi": cat.ppi.value if cat.ppi else math.nan}[which]
        total = w * cat.boot[which] if total is None else total + w * cat.boot[which]
    if total is None:
        return NONE_ESTIMATE, None
    var = float(total.var(ddof=1))
    return Estimate(float(point), math.sqrt(var), stats.percentile_ci(total, level)), var


def calibrate(judgments: Sequence[Judgment], labels: Iterable[HumanLabel] | Mapping[Key, float], rubric: Rubric, *,
              label_scale: LabelScale | str | None = None, lam: float | Literal["auto"] = "auto",
              method: Literal["analytic", "bootstrap"] = "analytic", level: float = 0.95,
              min_labels: int = MIN_LABELS, n_boot: int = N_BOOT, seed: int = 0) -> Calibration:
    """Human-scale overall, group and category scores of one run from the judge's scores of every answer
    plus human labels of a random subset (prediction-powered inference, AlignBench weighting).

    Why: the judge-only CI covers sampling error but not the judge's error; the labels alone are few and
    give wide CIs. PPI uses the judge where it is informative and the labels to remove its bias, with a
    CI valid whatever the judge's quality (a bad judge only costs width, never coverage).

    ``judgments``: one per answer (a run; several models are allowed and pooled into one population);
    only ``ok`` judgments count. ``labels``: ``HumanLabel`` records or a ``{(question_id, model): score}``
    mapping; several labels of one answer are averaged; labels of failed judgments are counted and
    reported, never used; labels matching no judgment are reported. ``label_scale``: the labels' scale
    ("1-5" or LabelScale), mapped linearly onto the rubric's; None = labels already on the rubric scale.
    ``lam``: "auto" (power tuning, PPI++) or a fixed λ (1 = plain PPI). ``method``: "analytic" (t
    intervals, Satterthwaite df) or "bootstrap" (percentile; labelled and unlabelled answers resampled
    separately within each category). The labelled answers must be a random sample within each category
    (any rate per category): labels picked because the judge looked wrong bias every figure.
    """
    if isinstance(label_scale, str):
        label_scale = parse_label_scale(label_scale)
    lo, hi = rubric.scale.min, rubric.scale.max
    by_key = _one_per_answer(judgments, "calibrate")
    raw_labels, n_given = _labels_by_answer(labels)

    def to_scale(values: list[float], key: Key) -> float:
        low, high = (label_scale.low, label_scale.high) if label_scale else (lo, hi)
        bad = [v for v in values if v < low - 1e-9 or v > high + 1e-9]
        if bad:
            hint = "" if label_scale else " (labels on another scale? pass label_scale, e.g. '1-5')"
            raise ValueError(f"label {bad[0]} of (question {key[0]}, model {key[1]}) is outside the label scale "
                             f"{low:g}-{high:g}{hint}")
        mean = float(np.mean(values))
        return float(label_scale.to_rubric(mean, rubric)) if label_scale else mean

    used: dict[Key, float] = {}
    on_failed: Counter[str] = Counter()
    unmatched: list[Key] = []
    for key, values in raw_labels.items():
        j = by_key.get(key)
        if j is None:
            unmatched.append(key)
        elif not _ok_overall(j):
            on_failed[j.status.value] += 1
        else:
            used[key] = to_scale(values, key)

    data: dict[str, tuple[list[float], list[float], list[float]]] = {}
    unknown: Counter[str] = Counter()
    n_unknown_labels = 0
    for key, j in by_key.items():
        if not _ok_overall(j):
            continue
        info = rubric.category(j.category)
        if info is None:
            unknown[j.category] += 1
            n_unknown_labels += key in used
            continue
        f_all, f_lab, h_lab = data.setdefault(info.name, ([], [], []))
        f_all.append(float(j.overall))  # type: ignore[arg-type]
        if key in used:
            f_lab.append(float(j.overall))  # type: ignore[arg-type]
            h_lab.append(used[key])

    warnings: list[str] = []
    if unmatched:
        warnings.append(f"{len(unmatched)} labelled answer(s) match no judgment (question_id, model) and are unused")
    if on_failed:
        warnings.append(f"{sum(on_failed.values())} label(s) are on failed judgments and are unused "
                        f"({', '.join(f'{k} {v}' for k, v in sorted(on_failed.items()))})")
    if unknown:
        warnings.append(f"categories not in rubric {rubric.id} are left out: {', '.join(sorted(unknown))}")
    accounting = LabelAccounting(n_given=n_given, n_answers=len(raw_labels), n_used=len(used) - n_unknown_labels,
                                 n_on_failed=sum(on_failed.values()), on_failed_by_status=dict(sorted(on_failed.items())),
                                 n_unmatched=len(unmatched), unmatched_examples=tuple(sorted(unmatched)[:10]),
                                 n_unknown_category=n_unknown_labels)
    return calibrate_arrays(data, rubric, lam=lam, method=method, level=level, min_labels=min_labels, n_boot=n_boot,
                            seed=seed, label_scale=label_scale, accounting=accounting, warnings=warnings,
                            models=sorted({j.model for j in by_key.values()}))


def calibrate_arrays(data: Mapping[str, tuple[Any, Any, Any]], rubric: Rubric, *, lam: float | Literal["auto"] = "auto",
                     method: Literal["analytic", "bootstrap"] = "analytic", level: float = 0.95,
                     min_labels: int = MIN_LABELS, n_boot: int = N_BOOT, seed: int = 0,
                     label_scale: LabelScale | None = None, accounting: LabelAccounting | None = None,
                     warnings: Sequence[str] = (), models: Sequence[str] = ()) -> Calibration:
    """``calibrate`` on arrays: ``data[category] = (judge scores of all ok answers, judge scores of the
    labelled ones, their human scores already on the rubric scale)``. ``calibrate`` matches judgments and
    labels and calls this; simulations and callers holding arrays call it directly."""
    if method not in ("analytic", "bootstrap"):
        raise ValueError(f"unknown method {method!r} (analytic or bootstrap)")
    cats: dict[str, _Cat] = {}
    for name, (f_all, f_lab, h_lab) in data.items():
        if rubric.category(name) is None:
            raise ValueError(f"unknown category {name!r} for rubric {rubric.id}")
        c = rubric.canonical(name)
        fl, hl = np.asarray(f_lab, dtype=float), np.asarray(h_lab, dtype=float)
        fa = np.asarray(f_all, dtype=float)
        if fl.size != hl.size or fa.size < fl.size:
            raise ValueError(f"{c}: labelled judge and human scores must pair up and be among all judge scores")
        # labelled first, then the rest: the bootstrap resamples the two parts separately
        rest = Counter(fa.tolist())
        rest.subtract(fl.tolist())
        if any(v < 0 for v in rest.values()):
            raise ValueError(f"{c}: a labelled judge score is not among the category's judge scores")
        unl = np.array([v for v, k in rest.items() for _ in range(k)], dtype=float)
        cat = _Cat(c, np.concatenate([fl, unl]), fl, hl)
        if hl.size >= 2:
            cat.ppi = ppi_mean(cat.f_all, fl, hl, lam)
        cats[c] = cat

    rng = np.random.default_rng(seed)
    if method == "bootstrap":
        for c in rubric.category_names():
            if c in cats:
                _boot_category(cats[c], lam, n_boot, rng)
    combine = _combine_boot if method == "bootstrap" else _combine_analytic

    present = [c for c in rubric.category_names() if c in cats]
    notes: list[str] = []
    flags: dict[str, str] = {}
    for c in present:
        n = cats[c].h_lab.size
        distinct = len(set(cats[c].h_lab.tolist()))
        if n < 2:
            flags[c] = f"{n} label(s): no calibrated score (needs at least 2)"
        elif n < min_labels or distinct < 2:
            why = f"{n} label(s)" + (f" (< {min_labels})" if n < min_labels else "")
            if distinct < 2:
                why += ", all with the same human score"
            flags[c] = why + ": too few to say much; the CI may be too optimistic"
    notes.extend(f"{c}: {why}" for c, why in flags.items())
    missing = [c for c in present if cats[c].ppi is None]
    if missing:
        notes.append(f"no calibrated overall/group score: {', '.join(missing)} lack(s) the 2 labels needed")

    def clip(est: Estimate) -> Estimate:
        """A mean lies on the scale, so an interval reaching past its ends can be cut there (tiny label
        counts give t intervals wider than the scale); coverage is unchanged."""
        if est.ci is None:
            return est
        lo, hi = rubric.scale.min, rubric.scale.max
        return Estimate(est.score, est.se, (max(lo, est.ci[0]), min(hi, est.ci[1])), est.df)

    rows: dict[str, CalibratedRow] = {}
    group_members: dict[str, tuple[str, ...]] = {}
    for key, kind, name, en, weights in stats.score_units(rubric, present):
        if kind == "group":
            group_members[key] = tuple(weights)
        judge_est, _ = combine(cats, weights, "judge", level)
        lab_est, var_lab = combine(cats, weights, "labels", level)
        ppi_est, var_ppi = combine(cats, weights, "ppi", level)
        judge_est, lab_est, ppi_est = clip(judge_est), clip(lab_est), clip(ppi_est)
        n_lab = int(sum(cats[c].h_lab.size for c in weights))
        eff = gained = None
        if var_lab is not None and var_ppi:
            eff = n_lab * var_lab / var_ppi
            gained = eff - n_lab
        members_flagged = [c for c in weights if c in flags]
        flag = flags.get(key) if kind == "category" else (
            f"includes flagged categories: {', '.join(members_flagged)}" if members_flagged else None)
        ppi = cats[key].ppi if kind == "category" else None
        rows[key] = CalibratedRow(key=key, kind=kind, name=name, en=en,
                                  n=int(sum(cats[c].f_all.size for c in weights)), n_labels=n_lab,
                                  calibrated=ppi_est, judge_only=judge_est, labels_only=lab_est,
                                  effective_labels=_f(eff), labels_gained=_f(gained),
                                  lam=ppi.lam if ppi else None, flag=flag)
    top = rows.get("overall")
    if top is not None and top.labels_gained is not None and top.labels_gained < 0:
        notes.append(f"the judge does not help here: the calibrated overall score is worth {top.effective_labels:.0f} "
                     f"labels, fewer than the {top.n_labels} given (the judge's errors are larger than its "
                     "signal); the labels-only figure is the better estimate")
    n_used = int(sum(c.h_lab.size for c in cats.values()))
    accounting = accounting or LabelAccounting(n_given=n_used, n_answers=n_used, n_used=n_used, n_on_failed=0,
                                               on_failed_by_status={}, n_unmatched=0, unmatched_examples=(),
                                               n_unknown_category=0)
    return Calibration(
        overall=rows.get("overall"),
        groups=tuple(rows[g] for g in rubric.groups if g in rows),
        categories=tuple(rows[c] for c in present),
        labels=accounting,
        label_scale=(label_scale.low, label_scale.high) if label_scale else None,
        scale=(rubric.scale.min, rubric.scale.max), models=tuple(models),
        method=method, lam=str(lam), level=level, min_labels=min_labels, warnings=tuple([*warnings, *notes]),
        group_members=group_members, settings={"seed": seed, "n_boot": n_boot if method == "bootstrap" else 0})


# ================================================================================================
# 2. Bridge between judges
# ================================================================================================


@dataclass(frozen=True)
class Bridge:
    """A monotone map from an old judge's overall scores to a new judge's, fitted on the same answers.

    ``predict`` interpolates linearly between the isotonic knots and holds the end values outside them
    (scikit-learn's ``IsotonicRegression(out_of_bounds="clip")`` predicts exactly this). ``band_*`` is
    the pointwise bootstrap band of the map on ``band_x``. Serialise with ``as_dict``/``from_dict``.
    """

    old_judge: str
    new_judge: str
    old_rubric: str
    new_rubric: str
    old_scale: tuple[float, float]
    new_scale: tuple[float, float]
    knots_old: tuple[float, ...]
    knots_new: tuple[float, ...]
    band_x: tuple[float, ...]
    band_lo: tuple[float, ...]
    band_hi: tuple[float, ...]
    level: float
    n_boot: int
    seed: int
    n: int
    created: str

    def predict(self, old_scores: Any) -> np.ndarray:
        """New-judge-scale values of old-judge scores (array in, array out)."""
        return np.interp(np.asarray(old_scores, dtype=float), self.knots_old, self.knots_new)

    def band(self, old_scores: Any) -> tuple[np.ndarray, np.ndarray]:
        """The bootstrap band (lo, hi) at old-judge scores, interpolated between the band's grid points."""
        x = np.asarray(old_scores, dtype=float)
        if not self.band_x:
            p = self.predict(x)
            return p, p
        return np.interp(x, self.band_x, self.band_lo), np.interp(x, self.band_x, self.band_hi)

    def as_dict(self) -> dict[str, Any]:
        """The versioned JSON form (``bridge --save``): knots at full precision."""
        return _clean({
            "format": BRIDGE_FORMAT, "version": BRIDGE_VERSION, "created": self.created, "n": self.n,
            "old": {"judge": self.old_judge, "rubric": self.old_rubric, "scale": list(self.old_scale)},
            "new": {"judge": self.new_judge, "rubric": self.new_rubric, "scale": list(self.new_scale)},
            "knots": {"old": list(self.knots_old), "new": list(self.knots_new)},
            "band": {"x": list(self.band_x), "lo": list(self.band_lo), "hi": list(self.band_hi),
                     "level": self.level, "n_boot": self.n_boot, "seed": self.seed},
        }, None)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Bridge:
        """Load ``as_dict``'s output; ValueError naming what is wrong (another format, a newer version,
        a missing key, knots that are not increasing)."""
        if not isinstance(data, Mapping) or data.get("format") != BRIDGE_FORMAT:
            raise ValueError(f"not an alignbench bridge (expected format {BRIDGE_FORMAT!r})")
        version = data.get("version")
        if version != BRIDGE_VERSION:
            raise ValueError(f"bridge format version {version!r} is not supported (this alignbench reads "
                             f"version {BRIDGE_VERSION})")
        try:
            old, new, knots, band = data["old"], data["new"], data["knots"], data["band"]
            ko = tuple(float(v) for v in knots["old"])
            kn = tuple(float(v) for v in knots["new"])
            bridge = cls(old_judge=str(old["judge"]), new_judge=str(new["judge"]), old_rubric=str(old["rubric"]),
                         new_rubric=str(new["rubric"]), old_scale=tuple(old["scale"]),  # type: ignore[arg-type]
                         new_scale=tuple(new["scale"]), knots_old=ko, knots_new=kn,  # type: ignore[arg-type]
                         band_x=tuple(float(v) for v in band["x"]), band_lo=tuple(float(v) for v in band["lo"]),
                         band_hi=tuple(float(v) for v in band["hi"]), level=float(band["level"]),
                         n_boot=int(band["n_boot"]), seed=int(band["seed"]), n=int(data["n"]),
                         created=str(data["created"]))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"bridge is missing or has a malformed field: {exc}") from None
        if not ko or len(ko) != len(kn) or np.any(np.diff(ko) < 0) or np.any(np.diff(kn) < -1e-12):
            raise ValueError("bridge knots must be non-empty, of equal length and non-decreasing")
        if not (len(bridge.band_x) == len(bridge.band_lo) == len(bridge.band_hi)):
            raise ValueError("bridge band arrays differ in length")
        return bridge


@dataclass(frozen=True)
class Agreement(_AsDict):
    """How far two judges agree on the same answers. ``mean_abs_diff``: mean |new − old| on the raw
    scales; ``mean_diff``: mean (new − old); ``mean_abs_diff_bridged``: mean |new − bridge(old)| (in
    sample: what is left after the map)."""

    n: int
    spearman: float | None
    spearman_ci: tuple[float, float] | None
    kendall: float | None
    kendall_ci: tuple[float, float] | None
    pearson: float | None
    mean_abs_diff: float | None
    mean_diff: float | None
    mean_abs_diff_bridged: float | None
    undefined: str | None = None


@dataclass(frozen=True)
class BothScales(_AsDict):
    """One score (overall, group or category) of one model on both judges' scales."""

    key: str
    kind: Kind
    name: str
    n: int
    old: float | None
    new: float | None
    bridged: float | None  # old judge's scores put through the bridge
    ci_old: tuple[float, float] | None = None
    ci_new: tuple[float, float] | None = None


@dataclass(frozen=True)
class BridgeFit(_AsDict):
    """``fit_bridge``'s result: the bridge (save ``bridge.as_dict()``), agreement overall and per
    category, and every score of every model on both scales."""

    bridge: Bridge
    agreement: Agreement
    categories: dict[str, Agreement]
    scores: dict[str, tuple[BothScales, ...]]  # model -> rows (overall, groups, categories)
    n_matched: int
    n_failed: int  # answers judged by both where either judgment failed
    n_only_old: int
    n_only_new: int
    warnings: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        out = _clean(asdict(self), 4)
        out["bridge"] = self.bridge.as_dict()  # the saved form, knots at full precision
        return out


def _isotonic(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.isotonic import IsotonicRegression  # lazy: sklearn is slow to import

    iso = IsotonicRegression(increasing=True, out_of_bounds="clip").fit(x, y)
    return np.asarray(iso.X_thresholds_, dtype=float), np.asarray(iso.y_thresholds_, dtype=float)


def kendall_tau_b(x: Any, y: Any, idx: np.ndarray | None = None) -> np.ndarray:
    """τ-b of (x, y), or of each resample ``x[idx[b]], y[idx[b]]`` (``stats.corr_rows``, from tables)."""
    return stats.corr_rows(x, y, "kendall", idx)


def _agreement(old: np.ndarray, new: np.ndarray, bridged: np.ndarray, n_boot: int, seed: int,
               level: float) -> Agreement:
    """Point correlations on all answers; CIs from ``n_boot`` answer resamples (``stats.corr_rows``, as
    meta-eval computes them)."""
    if old.size == 0:
        return Agreement(0, None, None, None, None, None, None, None, None, "no answer judged by both")
    diffs = dict(mean_abs_diff=float(np.abs(new - old).mean()), mean_diff=float((new - old).mean()),
                 mean_abs_diff_bridged=float(np.abs(new - bridged).mean()))
    reason = stats.undefined_reason(old, new)
    if reason:
        return Agreement(int(old.size), None, None, None, None, None, **diffs, undefined=reason)
    point = {m: _f(stats.corr(old, new, m)) for m in ("spearman", "pearson", "kendall")}
    cis: dict[str, tuple[float, float] | None] = {"spearman": None, "kendall": None}
    if n_boot >= 2:
        idx = stats.draw(np.random.default_rng(seed), old.size, n_boot)
        cis = {m: stats.percentile_ci(stats.corr_rows(old, new, m, idx), level) for m in cis}
    return Agreement(n=int(old.size), spearman=point["spearman"], spearman_ci=cis["spearman"],
                     kendall=point["kendall"], kendall_ci=cis["kendall"], pearson=point["pearson"], **diffs)


def _weighted_scores(keys: Sequence[Key], cat_of: Mapping[Key, str], values: Mapping[str, Mapping[Key, float]],
                     rubric: Rubric) -> list[tuple[str, Kind, str, int, dict[str, float | None]]]:
    """AlignBench-weighted score of each series in ``values`` for overall, groups and categories, using
    ``question_weights`` (a_i = W_c/n_c, so Σ a_i s_i = Σ_c W_c mean_c(s))."""
    present = [c for c in rubric.category_names() if any(cat_of[k] == c for k in keys)]
    out = []
    for key, kind, name, _en, weights in stats.score_units(rubric, present):
        mine = [k for k in keys if cat_of[k] in weights]
        a = stats.question_weights([cat_of[k] for k in mine], weights)
        out.append((key, kind, name, len(mine),
                    {s: float(a @ np.array([v[k] for k in mine])) if mine else None for s, v in values.items()}))
    return out


def fit_bridge(old: Sequence[Judgment], new: Sequence[Judgment], rubric: Rubric, *, new_rubric: Rubric | None = None,
               n_boot: int = 500, n_boot_agreement: int = 200, seed: int = 0, level: float = 0.95,
               created: str | None = None) -> BridgeFit:
    """Fit the old judge → new judge map on the answers both judged successfully, matched by
    (question_id, model).

    Why isotonic: two judges' scales differ by more than a shift (one may crowd scores at 8, another
    spread them), and all that can be assumed is that a better score on one is not a worse score on the
    other; isotonic regression fits the best non-decreasing map without choosing a shape. The band
    resamples answers (B = ``n_boot``, seeded) and refits, so it shows where the map is pinned down by
    many answers and where by a handful. Agreement CIs use ``n_boot_agreement`` resamples (Kendall's τ-b
is cheap for judge scores, but the band's refits are not). ``created`` (ISO time) defaults to now (UTC).
    """
    olds = _one_per_answer(old, "fit_bridge (old run)")
    news = _one_per_answer(new, "fit_bridge (new run)")
    shared = sorted(set(olds) & set(news))
    ok = [k for k in shared if _ok_overall(olds[k]) and _ok_overall(news[k])]
    warnings: list[str] = []
    n_failed = len(shared) - len(ok)
    if n_failed:
        warnings.append(f"{n_failed} answer(s) failed to be judged by one of the judges and are left out")
    only_old, only_new = len(set(olds) - set(news)), len(set(news) - set(olds))
    if only_old or only_new:
        warnings.append(f"{only_old} answer(s) judged only by the old judge and {only_new} only by the new one "
                        "are left out")
    if len(ok) < 2:
        raise ValueError(f"fit_bridge needs at least 2 answers judged successfully by both judges; found {len(ok)}")
    cat_of = {k: rubric.canonical(olds[k].category) for k in ok}
    unknown = sorted({c for c in cat_of.values() if rubric.category(c) is None})
    if unknown:
        warnings.append(f"categories not in rubric {rubric.id} count in the map but in no score: {', '.join(unknown)}")
    x = np.array([olds[k].overall for k in ok], dtype=float)
    y = np.array([news[k].overall for k in ok], dtype=float)
    kx, ky = _isotonic(x, y)
    grid = np.unique(np.concatenate([x, np.arange(math.ceil(x.min()), math.floor(x.max()) + 1, dtype=float)]))
    rng = np.random.default_rng(seed)
    curves = np.empty((n_boot, grid.size))
    for b in range(n_boot):
        idx = stats.draw(rng, x.size)
        bx, by = _isotonic(x[idx], y[idx])
        curves[b] = np.interp(grid, bx, by)
    if n_boot >= 2:
        band_lo, band_hi = np.array([stats.percentile_ci(col, level) for col in curves.T]).T  # pointwise
    else:
        band_lo = band_hi = np.interp(grid, kx, ky)
    nr = new_rubric or rubric
    bridge = Bridge(old_judge=_mostly(olds[k].judge for k in ok), new_judge=_mostly(news[k].judge for k in ok),
                    old_rubric=_mostly(olds[k].rubric for k in ok), new_rubric=_mostly(news[k].rubric for k in ok),
                    old_scale=(rubric.scale.min, rubric.scale.max), new_scale=(nr.scale.min, nr.scale.max),
                    knots_old=tuple(float(v) for v in kx), knots_new=tuple(float(v) for v in ky),
                    band_x=tuple(float(v) for v in grid), band_lo=tuple(float(v) for v in band_lo),
                    band_hi=tuple(float(v) for v in band_hi), level=level, n_boot=n_boot, seed=seed, n=len(ok),
                    created=created or datetime.now(timezone.utc).isoformat(timespec="seconds"))
    mapped = bridge.predict(x)
    agreement = _agreement(x, y, mapped, n_boot_agreement, seed, level)
    if len(set(ky.tolist())) < 2:
        warnings.append("the map is flat: every old score maps to the same new score (the judges do not order the "
                        "answers alike); bridged scores would carry no information from the old judge")
    elif agreement.spearman is not None and agreement.spearman < 0.5:
        warnings.append(f"weak agreement (Spearman {agreement.spearman:.2f}): the bridge puts old scores on the new "
                        "judge's level, but the old judge's ranking of answers is not the new judge's")
    per_cat: dict[str, Agreement] = {}
    cats = np.array([cat_of[k] for k in ok])
    for c in rubric.category_names():
        m = cats == c
        if m.any():
            per_cat[c] = _agreement(x[m], y[m], mapped[m], n_boot_agreement, seed, level)
    scores: dict[str, tuple[BothScales, ...]] = {}
    series = {"old": dict(zip(ok, x.tolist(), strict=True)), "new": dict(zip(ok, y.tolist(), strict=True)),
              "bridged": dict(zip(ok, mapped.tolist(), strict=True))}
    known = [k for k in ok if rubric.category(cat_of[k]) is not None]
    for model in sorted({k[1] for k in known}):
        keys = [k for k in known if k[1] == model]
        scores[model] = tuple(BothScales(key=key, kind=kind, name=name, n=n, old=v["old"], new=v["new"],
                                         bridged=v["bridged"])
                              for key, kind, name, n, v in _weighted_scores(keys, cat_of, series, rubric))
    return BridgeFit(bridge=bridge, agreement=agreement, categories=per_cat, scores=scores, n_matched=len(ok),
                     n_failed=n_failed, n_only_old=only_old, n_only_new=only_new, warnings=tuple(warnings))


def apply_bridge(bridge: Bridge, judgments: Sequence[Judgment], *, check: bool = True,
                 keep_dimensions: bool = False) -> list[Judgment]:
    """Put an old run on the new judge's scale: every ok judgment's overall score goes through the map
    and its ``judge`` becomes ``bridged:<old judge>-><new judge>`` (so nothing mistakes it for a score
    the new judge gave). Failed judgments pass unchanged. Dimension scores stay on the old judge's scale
    and are dropped unless ``keep_dimensions`` (the bridge maps the overall score only). ``check``:
    refuse judgments from another judge or rubric than the bridge's old side (ValueError)."""
    if check:
        wrong = sorted({(j.judge, j.rubric) for j in judgments
                        if j.judge != bridge.old_judge or j.rubric != bridge.old_rubric})
        if wrong:
            judge, rub = wrong[0]
            raise ValueError(f"the bridge maps {bridge.old_judge} ({bridge.old_rubric}) to {bridge.new_judge}; these "
                             f"judgments come from {judge} ({rub})" + (f" and {len(wrong) - 1} other(s)" if len(wrong) > 1 else ""))
    mark = f"bridged:{bridge.old_judge}->{bridge.new_judge}"
    out = []
    for j in judgments:
        if not _ok_overall(j):
            out.append(j)
            continue
        update: dict[str, Any] = {"overall": float(bridge.predict([j.overall])[0]), "judge": mark}
        if not keep_dimensions:
            update["scores"] = {}
        out.append(j.model_copy(update=update))
    return out


# ================================================================================================
# 3a. Length and format: within-question association with the score
# ================================================================================================


@dataclass(frozen=True)
class Association(_AsDict):
    """Association of the score with one answer feature (length, a Markdown count).

    ``design`` "within-question": both are demeaned within each question (only questions with ≥ 2
    answers count), so question difficulty cannot fake an association; the slope is the pooled
    fixed-effects slope (score points per unit of the feature) and ``spearman`` the rank correlation of
    the demeaned values. "between-question" (one answer per question, e.g. a single model): plain
    association across answers, ``confounded`` (hard questions may get both longer answers and lower
    scores). ``controls``: features partialled out of both (format features control for length). CIs
    resample questions."""

    feature: str
    design: Literal["within-question", "between-question"]
    confounded: bool
    n_answers: int
    n_questions: int
    slope: float | None
    slope_ci: tuple[float, float] | None
    spearman: float | None
    spearman_ci: tuple[float, float] | None
    controls: tuple[str, ...] = ()
    per: float = 1.0  # slope unit: score points per ``per`` units of the feature
    note: str = ""


def _padded(groups: list[np.ndarray], width: int) -> np.ndarray:
    out = np.full((len(groups), width), -1, dtype=int)
    for i, g in enumerate(groups):
        out[i, :g.size] = g
    return out


def _demean(v: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    sums = np.bincount(groups, weights=v, minlength=n_groups)
    counts = np.bincount(groups, minlength=n_groups)
    return v - (sums / np.maximum(counts, 1))[groups]


def _fit(x: np.ndarray, y: np.ndarray, z: np.ndarray | None) -> tuple[float, np.ndarray, np.ndarray]:
    """Slope of y on x (both already demeaned), controlling for z if given; the residualised x and y."""
    if z is None:
        sxx = float(x @ x)
        return (float(x @ y) / sxx if sxx > 0 else math.nan), x, y
    szz = float(z @ z)
    if szz <= 0:
        return _fit(x, y, None)
    xr = x - z * float(z @ x) / szz
    yr = y - z * float(z @ y) / szz
    sxx = float(xr @ xr)
    return (float(xr @ yr) / sxx if sxx > 0 else math.nan), xr, yr


def association(scores: Sequence[float], feature: Sequence[float], questions: Sequence[Any], *, name: str = "x",
                control: Sequence[float] | None = None, control_name: str = "", per: float = 1.0,
                n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> Association:
    """Within-question association of ``scores`` with ``feature`` (one value per answer; ``questions``
    names each answer's question), falling back to the between-question design when no question has
    two answers. ``control``: a covariate partialled out of both (within the same design).

    Within: s̃ = s − mean_q(s), x̃ = x − mean_q(x); slope = Σx̃s̃ / Σx̃² (with a control: the coefficient
    of x̃ in the regression of s̃ on x̃ and z̃). The bootstrap resamples questions, keeping each
    question's answers together."""
    y_all = np.asarray(scores, dtype=float)
    x_all = np.asarray(feature, dtype=float)
    z_all = None if control is None else np.asarray(control, dtype=float)
    _, q_idx, counts = np.unique(np.asarray([str(q) for q in questions]), return_inverse=True, return_counts=True)
    within = bool((counts >= 2).any())
    keep = counts[q_idx] >= 2 if within else np.ones(q_idx.size, dtype=bool)
    y, x = y_all[keep], x_all[keep]
    z = None if z_all is None else z_all[keep]
    _, g = np.unique(q_idx[keep], return_inverse=True)
    n_q = int(g.max()) + 1 if g.size else 0
    design: Literal["within-question", "between-question"] = "within-question" if within else "between-question"
    note = ("score and feature demeaned within each question with ≥ 2 answers" if within else
            "one answer per question: no within-question variation; this is the association ACROSS questions "
            "and is confounded by question difficulty (hard questions can draw longer answers and lower scores)")
    if within and (counts < 2).any():
        note += f"; {int((counts < 2).sum())} question(s) with a single answer left out"
    controls = (control_name or "control",) if z is not None else ()
    if y.size < 3:
        return Association(name, design, not within, int(y.size), n_q, None, None, None, None, controls, per,
                           note + "; fewer than 3 answers")

    def estimate(rows: np.ndarray, groups: np.ndarray, n_groups: int) -> tuple[float, float]:
        if within:
            ys, xs = _demean(y[rows], groups, n_groups), _demean(x[rows], groups, n_groups)
            zs = None if z is None else _demean(z[rows], groups, n_groups)
        else:
            ys, xs = y[rows] - y[rows].mean(), x[rows] - x[rows].mean()
            zs = None if z is None else z[rows] - z[rows].mean()
        slope, xr, yr = _fit(xs, ys, zs)
        return slope * per, math.nan if xr.size < 3 else stats.corr(xr, yr, "spearman")

    all_rows = np.arange(y.size)
    slope, rho = estimate(all_rows, g, n_q)
    slope_ci = rho_ci = None
    if n_boot >= 2 and n_q >= 2:
        rng = np.random.default_rng(seed)
        members = [np.flatnonzero(g == q) for q in range(n_q)]
        table = _padded(members, max(m.size for m in members))
        b_slope = np.empty(n_boot)
        b_rho = np.empty(n_boot)
        for b in range(n_boot):
            pick = table[stats.draw(rng, n_q)]
            groups = np.repeat(np.arange(n_q), (pick >= 0).sum(axis=1))
            rows = pick[pick >= 0]
            b_slope[b], b_rho[b] = estimate(rows, groups, n_q)
        slope_ci, rho_ci = stats.percentile_ci(b_slope, level), stats.percentile_ci(b_rho, level)
    return Association(name, design, not within, int(y.size), n_q, _f(slope), slope_ci, _f(rho), rho_ci, controls,
                       per, note)


def count_words(text: str) -> int:
    """jieba words: the tokens of ``jieba.lcut`` that are not pure whitespace. A Chinese word is ~1.5
    characters and an English one ~5, so words compare answers mixing the two better than characters."""
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    return sum(1 for tok in jieba.lcut(text) if tok.strip())


@dataclass(frozen=True)
class AdjustedRow(_AsDict):
    """One score of one model as judged and at equal length (see ``length_bias``)."""

    key: str
    kind: Kind
    name: str
    n: int
    score: float | None
    at_equal_length: float | None
    delta: float | None


@dataclass(frozen=True)
class LengthBias(_AsDict):
    """``length_bias``'s result: the association overall and per category for each unit (chars, words),
    and (within-question design only) every model's scores at equal length in ``adjust_unit``."""

    units: dict[str, Association]
    categories: dict[str, dict[str, Association]]  # unit -> category -> association
    adjusted: dict[str, tuple[AdjustedRow, ...]]  # model -> rows; empty without within-question variation
    adjust_unit: str | None
    models: tuple[str, ...]
    warnings: tuple[str, ...]
    method_note: str


def answer_lengths(texts: Mapping[Key, str], units: Sequence[str] = ("chars", "words")) -> dict[str, dict[Key, int]]:
    """Length of each answer text in characters and/or jieba words: {unit: {(question_id, model): n}}."""
    out: dict[str, dict[Key, int]] = {}
    for unit in units:
        if unit == "chars":
            out[unit] = {k: len(t) for k, t in texts.items()}
        elif unit == "words":
            out[unit] = {k: count_words(t) for k, t in texts.items()}
        else:
            raise ValueError(f"unknown length unit {unit!r} (chars or words)")
    return out


def _ok_rows(judgments: Sequence[Judgment], rubric: Rubric) -> tuple[list[Key], dict[Key, Judgment], dict[Key, str]]:
    by_key = _one_per_answer([j for j in judgments if _ok_overall(j)], "audit")
    cat_of = {k: rubric.canonical(j.category) for k, j in by_key.items()}
    return sorted(by_key), by_key, cat_of


def length_bias(judgments: Sequence[Judgment], rubric: Rubric, *, texts: Mapping[Key, str] | None = None,
                lengths: Mapping[str, Mapping[Key, float]] | None = None, units: Sequence[str] = ("chars", "words"),
                adjust_unit: str | None = None, n_boot: int = 1000, seed: int = 0,
                level: float = 0.95) -> LengthBias:
    """Does the judge reward length? Within-question association of the overall score with answer length,
    and each model's category/group/overall scores at equal length.

    Lengths come from ``lengths`` ({unit: {(question_id, model): length}}), else from ``texts`` (chars =
    ``len``, words = jieba), else characters from ``Judgment.answer_chars`` (words then unavailable).
    Equal length: each score is moved by −slope × (length − the question's mean length over the
    models), with the pooled within-question slope of ``adjust_unit`` (default: words when available,
    else chars). The adjustments of one question sum to zero, so the average over models stays put and
    only the split between long- and short-answering models moves. Limits (docs/trust.md): linear;
    one slope for all categories; removes whatever length buys, deserved or not; depends on which models
    are compared (the question mean moves with them)."""
    keys, by_key, cat_of = _ok_rows(judgments, rubric)
    warnings: list[str] = []
    table: dict[str, dict[Key, float]] = {}
    if lengths is not None:
        table = {u: dict(v) for u, v in lengths.items() if u in units}
    elif texts is not None:
        table = {u: {k: float(v) for k, v in d.items()} for u, d in answer_lengths(texts, units).items()}
    else:
        if "chars" in units:
            table["chars"] = {k: float(by_key[k].answer_chars) for k in keys}
        if "words" in units:
            warnings.append("word counts need the answer texts (texts=...): words skipped")
    assoc: dict[str, Association] = {}
    per_cat: dict[str, dict[str, Association]] = {}
    for unit in units:
        lens = table.get(unit)
        if lens is None:
            continue
        have = [k for k in keys if k in lens]
        if len(have) < len(keys):
            warnings.append(f"{len(keys) - len(have)} judged answer(s) have no {unit} length and are left out")
        if unit == "chars" and texts is None and lengths is None and all(lens[k] == 0 for k in have):
            warnings.append("no answer lengths recorded in the judgments (answer_chars is 0): pass texts")
            continue
        s = [float(by_key[k].overall) for k in have]  # type: ignore[arg-type]
        x = [lens[k] for k in have]
        assoc[unit] = association(s, x, [k[0] for k in have], name=unit, per=100.0, n_boot=n_boot, seed=seed,
                                  level=level)
        per_cat[unit] = {}
        for c in rubric.category_names():
            mine = [i for i, k in enumerate(have) if cat_of[k] == c]
            if mine:
                per_cat[unit][c] = association([s[i] for i in mine], [x[i] for i in mine],
                                               [have[i][0] for i in mine], name=unit, per=100.0, n_boot=n_boot,
                                               seed=seed, level=level)
    models = tuple(sorted({k[1] for k in keys}))
    unit = adjust_unit or ("words" if "words" in assoc else "chars" if "chars" in assoc else None)
    adjusted: dict[str, tuple[AdjustedRow, ...]] = {}
    if unit is not None and unit in assoc and assoc[unit].design == "within-question" and assoc[unit].slope is not None:
        slope = assoc[unit].slope / assoc[unit].per
        lens = table[unit]
        have = [k for k in keys if k in lens]
        by_q: dict[int, list[Key]] = {}
        for k in have:
            by_q.setdefault(k[0], []).append(k)
        qmean = {q: float(np.mean([lens[k] for k in ks])) for q, ks in by_q.items()}
        series = {"score": {k: float(by_key[k].overall) for k in have},  # type: ignore[arg-type]
                  "adjusted": {k: float(by_key[k].overall) - slope * (lens[k] - qmean[k[0]]) for k in have}}  # type: ignore[arg-type]
        known = [k for k in have if rubric.category(cat_of[k]) is not None]
        for model in models:
            mk = [k for k in known if k[1] == model]
            rows = []
            for key, kind, name, n, v in _weighted_scores(mk, cat_of, series, rubric):
                d = None if v["score"] is None or v["adjusted"] is None else v["adjusted"] - v["score"]
                rows.append(AdjustedRow(key, kind, name, n, v["score"], v["adjusted"], d))
            adjusted[model] = tuple(rows)
    elif unit is not None and unit in assoc:
        warnings.append("no question has answers from two or more models: no within-question comparison, so no "
                        "scores at equal length (the association shown is between questions and confounded)")
    method = ("within-question fixed-effects slope (score points per 100 units of length) and Spearman of the "
              "within-question demeaned values; CIs resample questions")
    return LengthBias(units=assoc, categories=per_cat, adjusted=adjusted, adjust_unit=unit if adjusted else None,
                      models=models, warnings=tuple(warnings), method_note=method)


_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+\S", re.MULTILINE)
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]\s+|\d+[.)]\s+|\d+、\s*|[（(]\d+[）)]\s*)\S", re.MULTILINE)
_BOLD = re.compile(r"\*\*[^*\n]+?\*\*|__[^_\n]+?__")
_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$", re.MULTILINE)
FORMAT_FEATURES = ("headings", "list_items", "bold", "table_rows")


def markdown_features(text: str) -> dict[str, int]:
    """Counts of Markdown structure in an answer: headings (#…), list items (-, *, +, •, 1. 1) 1、 (1)),
    bold spans (**…**, __…__) and table rows (|…|)."""
    return {"headings": len(_HEADING.findall(text)), "list_items": len(_LIST_ITEM.findall(text)),
            "bold": len(_BOLD.findall(text)), "table_rows": len(_TABLE_ROW.findall(text))}


@dataclass(frozen=True)
class FormatBias(_AsDict):
    """``format_bias``'s result: per Markdown feature, the within-question association with the score,
    raw and controlling for length in characters (structure and length go together)."""

    features: dict[str, Association]
    controlling_length: dict[str, Association]
    share_with_structure: dict[str, float]  # feature -> share of answers with at least one
    warnings: tuple[str, ...]


def format_bias(judgments: Sequence[Judgment], rubric: Rubric, texts: Mapping[Key, str], *, n_boot: int = 1000,
                seed: int = 0, level: float = 0.95) -> FormatBias:
    """Score vs Markdown structure (headings, list items, bold, table rows) within a question, raw and
    with answer length (characters) partialled out. A feature no answer uses is skipped."""
    keys, by_key, _ = _ok_rows(judgments, rubric)
    have = [k for k in keys if k in texts]
    warnings = [f"{len(keys) - len(have)} judged answer(s) have no text and are left out"] if len(have) < len(keys) else []
    feats = {k: markdown_features(texts[k]) for k in have}
    s = [float(by_key[k].overall) for k in have]  # type: ignore[arg-type]
    q = [k[0] for k in have]
    chars = [float(len(texts[k])) for k in have]
    raw: dict[str, Association] = {}
    ctl: dict[str, Association] = {}
    share: dict[str, float] = {}
    for name in FORMAT_FEATURES:
        x = [float(feats[k][name]) for k in have]
        share[name] = float(np.mean([v > 0 for v in x])) if x else 0.0
        if not any(x):
            warnings.append(f"no answer has {name.replace('_', ' ')}: skipped")
            continue
        raw[name] = association(s, x, q, name=name, n_boot=n_boot, seed=seed, level=level)
        ctl[name] = association(s, x, q, name=name, control=chars, control_name="chars", n_boot=n_boot, seed=seed,
                                level=level)
    return FormatBias(features=raw, controlling_length=ctl, share_with_structure=share, warnings=tuple(warnings))


# ================================================================================================
# 3b. Position bias (pairwise)
# ================================================================================================


@dataclass(frozen=True)
class PositionStats(_AsDict):
    """Position figures over the pairs judged successfully in both orders.

    ``first_position_rate``: share of decisive single-order verdicts (not ties) that chose 助手1. A judge
    consistent on every pair scores exactly 0.5 (each pair shows each answer first once), so any
    departure comes from inconsistent pairs. ``flip_rate``: share of pairs won by the model in one order
    and by the baseline in the other (the verdict followed the position). ``inconsistency_rate``: share
    whose two un-swapped verdicts differ at all (win/tie included). CIs resample pairs."""

    n_pairs: int
    n_decisive_verdicts: int
    first_position_rate: float | None
    first_position_ci: tuple[float, float] | None
    flip_rate: float | None
    flip_ci: tuple[float, float] | None
    inconsistency_rate: float | None
    inconsistency_ci: tuple[float, float] | None


@dataclass(frozen=True)
class PositionBias(_AsDict):
    overall: PositionStats
    categories: dict[str, PositionStats]
    n_failed: int  # pairs with a failed order, left out


def _pair_outcome(p: Any) -> tuple[str, str, str, str] | None:
    """(position model-first, position baseline-first, winner model-first, winner baseline-first), or
    None when either order has no verdict."""
    orders = {getattr(v, "order", None): v for v in p.orders}
    first, second = orders.get("model_first"), orders.get("baseline_first")
    if first is None or second is None:
        first, second = p.orders[0], p.orders[1]
    out = []
    for v in (first, second):
        status = getattr(v.status, "value", v.status)
        if status != "ok" or v.position not in ("1", "2", "tie"):
            return None
        out.append(v.position)
    win = {"1": "model", "2": "baseline", "tie": "tie"}
    win_b = {"1": "baseline", "2": "model", "tie": "tie"}
    return out[0], out[1], win[out[0]], win_b[out[1]]


def _position_stats(outcomes: list[tuple[str, str, str, str]], n_boot: int, rng: np.random.Generator,
                    level: float) -> PositionStats:
    n = len(outcomes)
    if not n:
        return PositionStats(0, 0, None, None, None, None, None, None)
    ones = np.array([(a == "1") + (b == "1") for a, b, _, _ in outcomes], dtype=float)
    decisive = np.array([(a != "tie") + (b != "tie") for a, b, _, _ in outcomes], dtype=float)
    flips = np.array([{wa, wb} == {"model", "baseline"} for _, _, wa, wb in outcomes], dtype=float)
    incons = np.array([wa != wb for _, _, wa, wb in outcomes], dtype=float)
    n_dec = int(decisive.sum())

    def boot(num: np.ndarray, den: np.ndarray | None) -> tuple[float, float] | None:
        if n_boot < 2 or n < 2:
            return None
        idx = stats.draw(rng, n, n_boot)
        if den is None:
            return stats.percentile_ci(num[idx].mean(axis=1), level)
        d = den[idx].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return stats.percentile_ci(np.where(d > 0, num[idx].sum(axis=1) / np.where(d > 0, d, 1), np.nan), level)

    return PositionStats(n_pairs=n, n_decisive_verdicts=n_dec,
                         first_position_rate=float(ones.sum() / n_dec) if n_dec else None,
                         first_position_ci=boot(ones, decisive) if n_dec else None,
                         flip_rate=float(flips.mean()), flip_ci=boot(flips, None),
                         inconsistency_rate=float(incons.mean()), inconsistency_ci=boot(incons, None))


def position_bias(pairs: Sequence[PairJudgment], rubric: Rubric | None = None, *, n_boot: int = 1000, seed: int = 0,
                  level: float = 0.95) -> PositionBias:
    """First-position win rate and flip rate, pooled over every model (position bias is a property of
    the judge) and per category, from pairwise judgments (``alignbench compare``'s ``PairJudgment``:
    ``orders`` = (model_first, baseline_first), each with ``status`` and ``position`` "1"/"2"/"tie")."""
    rng = np.random.default_rng(seed)
    done: list[tuple[Any, tuple[str, str, str, str]]] = []
    failed = 0
    for p in pairs:
        o = _pair_outcome(p)
        if o is None:
            failed += 1
        else:
            done.append((p, o))

    def cat_name(p: Any) -> str:
        return (rubric.canonical(p.category)) if rubric else p.category

    names = rubric.category_names() if rubric else sorted({cat_name(p) for p, _ in done})
    cats = {}
    for c in names:
        mine = [o for p, o in done if cat_name(p) == c]
        if mine:
            cats[c] = _position_stats(mine, n_boot, rng, level)
    return PositionBias(overall=_position_stats([o for _, o in done], n_boot, rng, level), categories=cats,
                        n_failed=failed)


# ================================================================================================
# 3c. Judge variance
# ================================================================================================


@dataclass(frozen=True)
class VarianceRow(_AsDict):
    """Judge noise in one score (overall, group or category).

    ``sd_within``: pooled within-answer SD, sqrt(mean of per-answer variances). ``share_of_variance``:
    the part of the score's sampling variance due to the judge's noise, with the K samples averaged
    as given; ``ci_narrower_without_noise`` = 1 − sqrt(1 − share): how much narrower the CI would be
    with a noiseless judge. The ``*_single`` figures are the same for a run judged once per answer."""

    key: str
    kind: Kind
    name: str
    n_answers: int
    sd_within: float | None
    share_of_variance: float | None
    ci_narrower_without_noise: float | None
    share_of_variance_single: float | None
    ci_narrower_without_noise_single: float | None


@dataclass(frozen=True)
class AnswerSpread(_AsDict):
    """The samples of one answer: how many, their mean (the answer's score) and SD."""

    question_id: int
    model: str
    category: str
    k: int
    mean: float
    sd: float


@dataclass(frozen=True)
class JudgeVariance(_AsDict):
    """``judge_variance``'s result. ``samples_per_answer``: {K: number of answers judged K times};
    ``answers``: every answer with ≥ 2 samples, largest SD first."""

    n_answers: int
    n_single: int  # answers with fewer than 2 ok samples: left out
    samples_per_answer: dict[int, int]
    mean_sd: float | None  # mean of per-answer SDs
    max_sd: float | None
    share_answers_disagreeing: float | None  # answers whose samples are not all equal
    reliability: float | None  # between-answer share of a single judgment's variance (ICC(1))
    rows: tuple[VarianceRow, ...]
    answers: tuple[AnswerSpread, ...] = ()


def judge_variance(judgments: Sequence[Judgment], rubric: Rubric) -> JudgeVariance:
    """Spread of repeated judgments of the same answers (``--samples K``, or several runs at different
    seeds/temperatures concatenated): judgments sharing (question_id, model) are samples of one answer.

    Per category c with N_c answers, per-answer means m_i of K_i samples and sample variances s²_i:
    Var(category mean) ≈ Var(m)/N_c (the usual CI), of which the judge's noise is Σ s²_i/K_i / N_c².
    A single-sample run has noise Σ s²_i / N_c² instead. Groups and overall combine with the AlignBench
    weights (Σ W_c² · …)."""
    samples: dict[Key, list[float]] = {}
    cat_of: dict[Key, str] = {}
    for j in judgments:
        if _ok_overall(j):
            key = (j.question_id, j.model)
            samples.setdefault(key, []).append(float(j.overall))  # type: ignore[arg-type]
            cat_of[key] = rubric.canonical(j.category)
    multi = {k: np.asarray(v) for k, v in samples.items() if len(v) >= 2}
    n_single = len(samples) - len(multi)
    if not multi:
        return JudgeVariance(0, n_single, dict(Counter(len(v) for v in samples.values())), None, None, None, None, ())
    sds = {k: float(v.std(ddof=1)) for k, v in multi.items()}
    means = {k: float(v.mean()) for k, v in multi.items()}
    ks = {k: v.size for k, v in multi.items()}
    s2 = np.array([sds[k] ** 2 for k in multi])
    m = np.array([means[k] for k in multi])
    k_arr = np.array([ks[k] for k in multi], dtype=float)
    between = max(0.0, float(m.var(ddof=1) - np.mean(s2 / k_arr))) if len(m) >= 2 else math.nan
    within = float(s2.mean())
    reliability = between / (between + within) if math.isfinite(between) and between + within > 0 else None

    per_cat: dict[str, tuple[float, float, float, float, int]] = {}
    for c in rubric.category_names():
        mine = [k for k in multi if cat_of[k] == c]
        if not mine:
            continue
        n = len(mine)
        cm = np.array([means[k] for k in mine])
        cs2 = np.array([sds[k] ** 2 for k in mine])
        ck = np.array([ks[k] for k in mine], dtype=float)
        total = float(cm.var(ddof=1) / n) if n >= 2 else math.nan
        noise_k = float((cs2 / ck).sum() / n**2)
        noise_1 = float(cs2.sum() / n**2)
        per_cat[c] = (total, noise_k, noise_1, float(cs2.mean()), n)

    rows = []
    present = list(per_cat)
    for key, kind, name, _en, weights in stats.score_units(rubric, present):
        total = sum(w * w * per_cat[c][0] for c, w in weights.items())
        noise_k = sum(w * w * per_cat[c][1] for c, w in weights.items())
        noise_1 = sum(w * w * per_cat[c][2] for c, w in weights.items())
        total_1 = total - noise_k + noise_1
        n = sum(per_cat[c][4] for c in weights)
        pooled = math.sqrt(sum(per_cat[c][3] * per_cat[c][4] for c in weights) / n)

        def share(noise: float, tot: float) -> float | None:
            return float(min(1.0, noise / tot)) if math.isfinite(tot) and tot > 0 else None

        sh_k, sh_1 = share(noise_k, total), share(noise_1, total_1)
        rows.append(VarianceRow(key, kind, name, n, pooled, sh_k,
                                None if sh_k is None else 1 - math.sqrt(1 - sh_k), sh_1,
                                None if sh_1 is None else 1 - math.sqrt(1 - sh_1)))
    sd_list = list(sds.values())
    spreads = tuple(sorted((AnswerSpread(k[0], k[1], cat_of[k], ks[k], means[k], sds[k]) for k in multi),
                           key=lambda a: (-a.sd, a.question_id, a.model)))
    return JudgeVariance(n_answers=len(multi), n_single=n_single,
                         samples_per_answer=dict(sorted(Counter(len(v) for v in samples.values()).items())),
                         mean_sd=float(np.mean(sd_list)), max_sd=float(np.max(sd_list)),
                         share_answers_disagreeing=float(np.mean([s > 0 for s in sd_list])),
                         reliability=_f(reliability), rows=tuple(rows), answers=spreads)


# ================================================================================================
# 3d. Model families and self-preference
# ================================================================================================

# (family, pattern over the lower-cased name). First match wins, so fine-tuned judges named after their
# base come before the broad patterns: CritiqueLLM is a ChatGLM fine-tune, CompassJudger a Qwen one.
FAMILIES: tuple[tuple[str, str], ...] = (
    ("GLM", r"critiquellm|chatglm|\bglm|glm-|zhipu|智谱|codegeex|cogvlm"),
    ("Qwen", r"compassjudger|qwen|qwq|通义|tongyi"),
    ("DeepSeek", r"deepseek|深度求索"),
    ("GPT", r"gpt|openai|davinci|(?:^|[^a-z0-9])o[134](?:-|$|[^a-z0-9])"),
    ("Claude", r"claude|anthropic"),
    ("Gemini", r"gemini|gemma|bard|palm"),
    ("Llama", r"llama|auto-j"),
    ("Mistral", r"mistral|mixtral|codestral|ministral"),
    ("Baichuan", r"baichuan|百川"),
    ("InternLM", r"internlm|书生"),
    ("Yi", r"(?:^|[^a-z])yi-|零一万物|01-ai"),
    ("ERNIE", r"ernie|文心|wenxin"),
    ("Moonshot", r"moonshot|kimi"),
    ("Spark", r"sparkdesk|spark|星火|讯飞"),
    ("MiniMax", r"minimax|abab"),
    ("Hunyuan", r"hunyuan|混元"),
    ("Doubao", r"doubao|豆包|skylark"),
    ("SenseChat", r"sensechat|sensenova|商汤"),
)
_BACKENDS = ("openai", "zhipuai", "hf", "local", "vllm", "bridged")


def model_family(name: str) -> str | None:
    """The model family a judge or model name belongs to (``FAMILIES``), or None when unknown. A
    backend prefix (``openai:``) is ignored: it names the API, not the model."""
    text = name.strip().lower()
    while ":" in text and text.split(":", 1)[0] in _BACKENDS:
        text = text.split(":", 1)[1]
    for family, pattern in FAMILIES:
        if re.search(pattern, text):
            return family
    return None


@dataclass(frozen=True)
class FamilyRow(_AsDict):
    name: str
    role: Literal["judge", "model"]
    family: str | None
    shares_family_with: tuple[str, ...]  # judges (for a model) or models (for a judge) of its family


@dataclass(frozen=True)
class FamilyReport(_AsDict):
    """Judges and models by family; ``warning`` (for the top of a report) when any pair shares one."""

    rows: tuple[FamilyRow, ...]
    shared: tuple[tuple[str, str, str], ...]  # (judge, model, family)
    warning: str | None


def family_report(judges: Sequence[str], models: Sequence[str]) -> FamilyReport:
    """Which judges and models share a family: such a judge may favour its own (self-preference)."""
    jf = {j: model_family(j) for j in judges}
    mf = {m: model_family(m) for m in models}
    shared = tuple((j, m, jf[j]) for j in judges for m in models if jf[j] is not None and jf[j] == mf[m])
    rows = [FamilyRow(j, "judge", jf[j], tuple(m for jj, m, _ in shared if jj == j)) for j in judges]
    rows += [FamilyRow(m, "model", mf[m], tuple(j for j, mm, _ in shared if mm == m)) for m in models]
    warning = None
    if shared:
        pairs = "; ".join(f"{j} judges {m} ({fam})" for j, m, fam in shared)
        warning = (f"judge and model from the same family: {pairs}. A judge may favour its own family; "
                   "score with a cross-family ensemble (e.g. --judge a,b from different families) or check "
                   "with self_preference over several judges")
    return FamilyReport(rows=tuple(rows), shared=shared, warning=warning)


@dataclass(frozen=True)
class SelfPreferenceRow(_AsDict):
    """One judge's preference for its own family: ``effect`` = mean(d | own family) − mean(d | others),
    where d = this judge's score − the other judges' mean score of the same answer. Positive: the judge
    is kinder to its own family than the other judges are (in score points)."""

    judge: str
    family: str | None
    n_own: int
    n_other: int
    effect: float | None
    ci: tuple[float, float] | None
    own_models: tuple[str, ...]
    note: str = ""


@dataclass(frozen=True)
class SelfPreference(_AsDict):
    judges: tuple[SelfPreferenceRow, ...]
    n_answers: int  # answers judged ok by every judge


def self_preference(judgments: Sequence[Judgment], *, n_boot: int = 1000, seed: int = 0,
                    level: float = 0.95) -> SelfPreference:
    """Self-preference from several judges' scores of the same answers (judgments of all judges in one
    list, told apart by ``Judgment.judge``). A difference in differences: a judge's harshness or
    leniency cancels (it shifts own and other families alike); what remains is the extra it gives its
    own family. Needs ≥ 2 judges and models of the judge's family and of others. CIs resample questions."""
    by_judge: dict[str, dict[Key, float]] = {}
    for j in judgments:
        if _ok_overall(j):
            seen = by_judge.setdefault(j.judge, {})
            key = (j.question_id, j.model)
            if key in seen:
                raise ValueError(f"self_preference: judge {j.judge} judged (question {key[0]}, model {key[1]}) twice")
            seen[key] = float(j.overall)  # type: ignore[arg-type]
    judges = sorted(by_judge)
    common = sorted(set.intersection(*(set(v) for v in by_judge.values()))) if judges else []
    rows = []
    rng = np.random.default_rng(seed)
    for judge in judges:
        fam = model_family(judge)
        own_models = tuple(sorted({k[1] for k in common if fam is not None and model_family(k[1]) == fam}))
        if len(judges) < 2:
            rows.append(SelfPreferenceRow(judge, fam, 0, 0, None, None, own_models, "needs a second judge"))
            continue
        if fam is None:
            rows.append(SelfPreferenceRow(judge, fam, 0, 0, None, None, own_models, "judge family unknown"))
            continue
        others = [o for o in judges if o != judge]
        d = np.array([by_judge[judge][k] - np.mean([by_judge[o][k] for o in others]) for k in common])
        own = np.array([k[1] in own_models for k in common])
        n_own, n_other = int(own.sum()), int((~own).sum())
        if not n_own or not n_other:
            rows.append(SelfPreferenceRow(judge, fam, n_own, n_other, None, None, own_models,
                                          "no model of the judge's family" if not n_own else "no model of another family"))
            continue
        effect = float(d[own].mean() - d[~own].mean())
        ci = None
        qs = np.array([k[0] for k in common])
        uq, g = np.unique(qs, return_inverse=True)
        if n_boot >= 2 and uq.size >= 2:
            w_own = np.bincount(g, weights=own.astype(float), minlength=uq.size)
            w_oth = np.bincount(g, weights=(~own).astype(float), minlength=uq.size)
            s_own = np.bincount(g, weights=np.where(own, d, 0.0), minlength=uq.size)
            s_oth = np.bincount(g, weights=np.where(own, 0.0, d), minlength=uq.size)
            idx = stats.draw(rng, uq.size, n_boot)
            with np.errstate(invalid="ignore", divide="ignore"):
                b = s_own[idx].sum(1) / w_own[idx].sum(1) - s_oth[idx].sum(1) / w_oth[idx].sum(1)
            ci = stats.percentile_ci(b, level)
        rows.append(SelfPreferenceRow(judge, fam, n_own, n_other, effect, ci, own_models))
    return SelfPreference(judges=tuple(rows), n_answers=len(common))


# The public API; docs/trust.md says how each piece is called and what it returns.
__all__ = [
    "BRIDGE_FORMAT", "BRIDGE_VERSION", "FAMILIES", "FORMAT_FEATURES", "MIN_LABELS", "TUNE_MIN_LABELS",
    "AdjustedRow", "Agreement", "AnswerSpread", "Association", "BothScales", "Bridge", "BridgeFit", "CalibratedRow", "Calibration",
    "Estimate", "FamilyReport", "FamilyRow", "FormatBias", "HumanLabel", "JudgeVariance", "LabelAccounting",
    "LabelScale", "LengthBias", "PPIMean", "PositionBias", "PositionStats", "SelfPreference", "SelfPreferenceRow",
    "VarianceRow", "answer_lengths", "apply_bridge", "association", "calibrate", "calibrate_arrays", "count_words",
    "family_report", "fit_bridge", "format_bias", "judge_variance", "kendall_tau_b", "length_bias",
    "markdown_features", "model_family", "parse_label_scale", "position_bias", "power_tuned_lambda", "ppi_mean",
    "satterthwaite", "self_preference",
]
