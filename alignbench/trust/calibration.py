"""``calibrate``: prediction-powered inference (PPI, power-tuned as in PPI++). The judge scores every
answer, people score a random subset; per category the human-scale mean is the judge's mean over every
answer plus the mean human−judge difference on the labelled answers (the *rectifier*). The CI carries both
errors. Categories are combined with the AlignBench weights (``stats.group_weights``), as ``aggregate``
combines category means."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import Field

from alignbench import stats
from alignbench.rubrics import Rubric
from alignbench.stats.fmt import finite as _f
from alignbench.trust.base import Key, Kind, _AsDict, _ok_overall, _one_per_answer
from alignbench.types import Judgment

MIN_LABELS = 10  # fewer labels than this in a category: flagged (estimates still given from 2 on)
TUNE_MIN_LABELS = 10  # λ is power-tuned only from this many labels; below, plain PPI (λ = 1)
N_BOOT = 2000


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


class LabelScale(_AsDict):
    """The scale human labels are given on, mapped linearly onto the rubric's scale (its ends onto the
    rubric's ends): 1–5 → 1–10 is x ↦ 1 + (x − 1)·9/4, so 1, 2, 3, 4, 5 → 1, 3.25, 5.5, 7.75, 10."""

    low: float
    high: float

    def model_post_init(self, context: Any, /) -> None:
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


class Estimate(_AsDict):
    """A score with its standard error, CI and (analytic method) degrees of freedom."""

    score: float | None
    se: float | None = None
    ci: tuple[float, float] | None = None
    df: float | None = None


NONE_ESTIMATE = Estimate(None)


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
    group_members: dict[str, tuple[str, ...]] = Field(default_factory=dict)  # group id -> categories present
    settings: dict[str, Any] = Field(default_factory=dict)

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
