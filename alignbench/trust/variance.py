"""``judge_variance``: repeated judgments of the same answers: the within-answer spread and how much of
each CI it accounts for."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from alignbench import stats
from alignbench.rubrics import Rubric
from alignbench.stats.fmt import finite as _f
from alignbench.trust.base import Key, Kind, _AsDict, _ok_overall
from alignbench.types import Judgment


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


class AnswerSpread(_AsDict):
    """The samples of one answer: how many, their mean (the answer's score) and SD."""

    question_id: int
    model: str
    category: str
    k: int
    mean: float
    sd: float


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
