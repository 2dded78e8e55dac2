"""Comparing a run with a baseline run: paired statistics over the questions both runs share.

Why paired: two runs of the same question set judge the same questions, and most of the spread of a
score comes from the questions (some are hard for every model). Differencing per question removes
that shared part, so a paired test sees a real change that two independent CIs would hide.

The statistics (top half of this module) are pure functions on arrays, tested against hand-computed
values. Every score difference is a *linear* statistic of the per-question differences d_i:
T = Σ a_i d_i, where a_i = W_c / n_c for question i in category c. With W_c = 1 and one category,
T is the plain mean difference; with AlignBench's weights (each group half of the total, each
category an equal share of its group) T is the difference of the official overall score restricted
to the shared questions. That makes two tests exact and cheap:

* a sign-flip permutation test (under "no change", each d_i is as likely to be −d_i): exact
  enumeration for small n, seeded Monte Carlo otherwise;
* a paired bootstrap CI that resamples questions within each category (the same stratification
  as ``aggregate.summarize``), pushing every resample through the same weights.

The bottom half reads run folders (``rundir.load_run``) and decides what is comparable: a run from
another rubric version or another judge is not compared at all; a run over another question set is
compared only on the questions whose text is identical in both sets, and everything left out is named.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from itertools import product
from typing import Any

import numpy as np

from alignbench import stats
from alignbench.rubrics import Rubric
from alignbench.rundir import Run, RunError, load_run, unique_labels  # noqa: F401  (re-exported)
from alignbench.stats import group_weights, question_weights, score_units  # noqa: F401  (re-exported)
from alignbench.types import Status

ALPHA = 0.05
N_BOOT = 2000
N_PERM = 10000
EXACT_MAX_N = 14  # 2**14 = 16384 sign patterns: enumerate instead of sampling

# ================================================================================================
# Pure statistics
# ================================================================================================


def sign_flip_pvalue(diffs: Sequence[float], weights: Sequence[float] | None = None, n_perm: int = N_PERM,
                     seed: int = 0, exact_max_n: int = EXACT_MAX_N) -> tuple[float, bool]:
    """Two-sided paired permutation test of T = Σ a_i d_i against "no change".

    Returns (p-value, exact). Exact: the share of all 2^n sign patterns with |T*| ≥ |T|. Otherwise
    (1 + hits) / (1 + n_perm) over seeded random sign patterns, which never reports p = 0.
    """
    d = np.asarray(diffs, dtype=float)
    n = d.size
    if n == 0:
        return 1.0, True
    a = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, dtype=float)
    ad = a * d
    observed = abs(float(ad.sum()))
    tol = 1e-9 * max(1.0, observed)
    if n <= exact_max_n:
        signs = np.array(list(product((1.0, -1.0), repeat=n)))
        stats = np.abs(signs @ ad)
        return float(np.mean(stats >= observed - tol)), True
    rng = np.random.default_rng(seed)
    hits = 0
    done = 0
    total = float(ad.sum())
    # One random bit per sign, 8 signs per random byte: T* = Σ s_i a_i d_i = 2 Σ_{s_i=+1} a_i d_i − Σ a_i d_i.
    # The partial sum of each group of 8 questions is looked up by byte value (a 256 × m table), so a
    # permutation costs m = n/8 lookups instead of n multiply-adds.
    m = (n + 7) // 8
    padded = np.zeros(m * 8)
    padded[:n] = ad
    bit_of = (np.arange(256)[:, None] >> (7 - np.arange(8))[None, :]) & 1  # MSB first
    tables = bit_of.astype(np.float64) @ padded.reshape(m, 8).T  # (256, m)
    cols = np.arange(m)
    chunk = max(1, min(n_perm, 4_000_000 // m))
    while done < n_perm:
        k = min(chunk, n_perm - done)
        raw = rng.integers(0, 256, size=(k, m), dtype=np.uint8)
        stats = 2.0 * tables[raw, cols].sum(axis=1) - total
        hits += int(np.count_nonzero(np.abs(stats) >= observed - tol))
        done += k
    return (1 + hits) / (1 + n_perm), False


def paired_bootstrap_ci(diffs: Sequence[float], strata: Sequence[str] | None = None,
                        stratum_weights: Mapping[str, float] | None = None, n_boot: int = N_BOOT,
                        seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile CI of T = Σ_c W_c · mean_c(d) by resampling questions within each stratum (seeded).

    Without strata: the CI of the mean difference (questions resampled as pairs, never separately)."""
    d = np.asarray(diffs, dtype=float)
    if d.size == 0:
        raise ValueError("no paired differences")
    labels = np.asarray(list(strata) if strata is not None else ["all"] * d.size)
    weights = dict(stratum_weights) if stratum_weights is not None else {"all": 1.0}
    boots = stats.stratified_means({s: d[labels == s] for s in dict.fromkeys(labels.tolist())}, n_boot,
                                   np.random.default_rng(seed))
    total = np.zeros(n_boot)
    for s, b in boots.items():
        total += weights[s] * b
    ci = stats.percentile_ci(total, level)
    if ci is None:
        raise ValueError("a bootstrap CI needs n_boot >= 2 and finite differences")
    return ci


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (step-down, monotone, capped at 1), in the input order.

    Used across the 8 categories: with 8 tests at 5% each, one "significant" category by chance is
    likely; Holm keeps the chance of any false alarm at 5% without assuming independence."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


@dataclass(frozen=True)
class PairedTest:
    """A paired comparison of one score (a category, a group or the overall) over shared questions."""

    n: int
    base: float
    new: float
    delta: float
    ci: tuple[float, float]
    p_value: float
    exact: bool


def paired_test(base: Sequence[float], new: Sequence[float], strata: Sequence[str] | None = None,
                stratum_weights: Mapping[str, float] | None = None, seed: int = 0, n_boot: int = N_BOOT,
                n_perm: int = N_PERM, level: float = 0.95) -> PairedTest:
    """Score of each run on the shared questions, their difference, its bootstrap CI and p-value."""
    b = np.asarray(base, dtype=float)
    x = np.asarray(new, dtype=float)
    if b.shape != x.shape or b.size == 0:
        raise ValueError("paired_test needs two equally long, non-empty score lists")
    labels = list(strata) if strata is not None else ["all"] * b.size
    weights = dict(stratum_weights) if stratum_weights is not None else {"all": 1.0}
    a = question_weights(labels, weights)
    d = x - b
    p, exact = sign_flip_pvalue(d, a, n_perm=n_perm, seed=seed)
    ci = paired_bootstrap_ci(d, labels, weights, n_boot=n_boot, seed=seed, level=level)
    return PairedTest(n=int(b.size), base=float(a @ b), new=float(a @ x), delta=float(a @ d), ci=ci,
                      p_value=p, exact=exact)


# ================================================================================================
# Run folders
# ================================================================================================


_DICT_TAIL = re.compile(r"\{[^{}]*\}\s*$")
_SPACE = re.compile(r"\s+")
_FENCE = re.compile(r"```[a-zA-Z]*\s*(.*?)```", re.DOTALL)
_SCORE_DICT = re.compile(r"\{[^{}]*['\"][^'\"]+['\"]\s*:\s*-?\d+(?:\.\d+)?[^{}]*\}")


def _analyses(obj: Any) -> list[str]:
    """The ``analysis`` strings of a structured verdict (docs/protocols.md), dimensions first."""
    if isinstance(obj, dict):
        out = [obj["analysis"]] if isinstance(obj.get("analysis"), str) else []
        return out + [a for k, v in obj.items() if k != "analysis" for a in _analyses(v)]
    return []


def analysis_text(raw: str | None) -> str:
    """The judge's reasoning on one line (whitespace collapsed), without what a reader cannot use: the
    score dict (``{'事实正确性': 7, …}``), code fences, and for a structured verdict (JSON) its analyses
    instead of the JSON."""
    if not raw:
        return ""
    text = raw.strip()
    for candidate in [*(m.group(1) for m in _FENCE.finditer(text)), text]:
        try:
            found = _analyses(json.loads(candidate))
        except ValueError:
            continue
        if found:
            return _SPACE.sub(" ", " ".join(found)).strip()
    text = _FENCE.sub(lambda m: "" if m.group(1).lstrip().startswith(("{", "[")) else m.group(1), text)
    text = _SCORE_DICT.sub("", _DICT_TAIL.sub("", text.strip()))
    return _SPACE.sub(" ", text).strip()


class Bilingual(str):
    """A message in English (the string itself: terminal, JSON) that also knows its Chinese wording
    (``zh``), so the Chinese report never shows an English line."""

    zh: str

    def __new__(cls, en: str, zh: str | None = None) -> Bilingual:  # zh None: a copy, its state restored after
        obj = super().__new__(cls, en)
        obj.zh = en if zh is None else zh
        return obj


def in_lang(text: str, zh: bool) -> str:
    """``text`` in the report's language: a ``Bilingual``'s Chinese wording for zh, else the text."""
    return getattr(text, "zh", text) if zh else str(text)


# ================================================================================================
# Run vs baseline
# ================================================================================================


@dataclass
class DeltaRow:
    """One line of the comparison table: overall, a group or a category."""

    key: str
    kind: str  # "overall" | "group" | "category"
    name: str
    en: str
    test: PairedTest | None
    p_holm: float | None = None
    significant: bool = False
    note: str = ""


@dataclass
class QuestionDelta:
    """One shared question whose score moved, with what the judge said in each run."""

    question_id: int
    category: str
    subcategory: str
    base: float
    new: float
    delta: float
    base_reason: str
    new_reason: str
    question: str | None


@dataclass
class Comparison:
    """A run against a baseline run. ``comparable`` false means nothing was compared (see ``problems``)."""

    base_label: str
    new_label: str
    comparable: bool
    problems: list[str] = field(default_factory=list)
    rows: list[DeltaRow] = field(default_factory=list)
    n_shared: int = 0
    gains: list[QuestionDelta] = field(default_factory=list)
    drops: list[QuestionDelta] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _mismatch(base: Run, new: Run) -> str | None:
    if base.rubric_id != new.rubric_id:
        return Bilingual(f"rubric {new.rubric_id} vs baseline {base.rubric_id}: scores from different rubric "
                         "versions are not comparable; nothing compared",
                         f"评分细则 {new.rubric_id} 与基线的 {base.rubric_id} 不同：不同版本细则的分数不可比，未作比较")
    if base.judge_id != new.judge_id:
        return Bilingual(f"judge {new.judge_id} vs baseline {base.judge_id}: scores from different judges are not "
                         "comparable; nothing compared",
                         f"评审模型 {new.judge_id} 与基线的 {base.judge_id} 不同：不同评审的分数不可比，未作比较")
    return None


def _id_list(ids: Sequence[int], limit: int = 12) -> str:
    shown = ", ".join(str(i) for i in ids[:limit])
    return shown + (f" … (+{len(ids) - limit})" if len(ids) > limit else "")


def _comparable_ids(base: Run, new: Run, problems: list[str]) -> set[int] | None:
    """Question ids that mean the same question in both runs (None: cannot tell, compare nothing)."""
    base_ids = {j.question_id for j in base.judgments}
    new_ids = {j.question_id for j in new.judgments}
    if base.questions_sha and base.questions_sha == new.questions_sha:
        only = sorted(base_ids ^ new_ids)
        if only:
            problems.append(Bilingual(f"{len(only)} question(s) were judged in only one of the runs and are "
                                      f"skipped (ids {_id_list(only)})",
                                      f"{len(only)} 道题只在其中一次运行中评审，跳过（题号 {_id_list(only)}）"))
        return base_ids & new_ids
    if base.questions is None or new.questions is None:
        why = "; ".join(n for n in (base.questions_note, new.questions_note) if n)
        problems.append(Bilingual(f"question sets differ (sha256 {new.questions_sha[:12]}… vs baseline "
                                  f"{base.questions_sha[:12]}…) and the question files are not at hand to tell "
                                  f"which questions are the same ({why}); nothing compared",
                                  f"题目集不同（sha256 {new.questions_sha[:12]}… 与基线 {base.questions_sha[:12]}…），"
                                  f"且题目文件不在手边，无法判断哪些题目相同（{why}）；未作比较"))
        return None
    same = {qid for qid in base_ids & new_ids
            if qid in base.questions and qid in new.questions
            and base.questions[qid].model_dump(exclude={"evidences"})
            == new.questions[qid].model_dump(exclude={"evidences"})}
    skipped = sorted((base_ids | new_ids) - same)
    problems.append(Bilingual(
        f"question sets differ (sha256 {new.questions_sha[:12]}… vs baseline {base.questions_sha[:12]}…): compared "
        f"only the {len(same)} question(s) identical in both; skipped {len(skipped)} that differ or exist in one "
        f"set only (ids {_id_list(skipped)})",
        f"题目集不同（sha256 {new.questions_sha[:12]}… 与基线 {base.questions_sha[:12]}…）：只比较两边完全相同的 "
        f"{len(same)} 道题；跳过 {len(skipped)} 道不同或只在一边的题（题号 {_id_list(skipped)}）"))
    return same


def compare_runs(base: Run, new: Run, rubric: Rubric, seed: int = 0, n_boot: int = N_BOOT,
                 n_perm: int = N_PERM, alpha: float = ALPHA, top: int = 3, level: float = 0.95) -> Comparison:
    """Compare ``new`` with ``base`` on every score, over the questions both judged successfully.

    Categories are marked significant by Holm-adjusted p < alpha (8 tests); the overall score and the
    two groups by their own p < alpha (each a single, pre-specified test)."""
    settings = {"seed": seed, "bootstrap": n_boot, "permutations": n_perm, "alpha": alpha, "level": level,
                "exact_max_n": EXACT_MAX_N}
    cmp = Comparison(base_label=base.label, new_label=new.label, comparable=False, settings=settings)
    blocker = _mismatch(base, new)
    if blocker:
        cmp.problems.append(blocker)
        return cmp
    ids = _comparable_ids(base, new, cmp.problems)
    if ids is None:
        return cmp
    b_by = {j.question_id: j for j in base.judgments if j.question_id in ids}
    n_by = {j.question_id: j for j in new.judgments if j.question_id in ids}
    failed = sorted(q for q in ids if b_by[q].status is not Status.OK or n_by[q].status is not Status.OK)
    if failed:
        cmp.problems.append(Bilingual(
            f"{len(failed)} shared question(s) failed to be judged in one of the runs and are left out of the "
            f"paired comparison (ids {_id_list(failed)})",
            f"{len(failed)} 道共同题目在其中一次运行中评审失败，不计入配对比较（题号 {_id_list(failed)}）"))
    shared = sorted(q for q in ids if q not in set(failed))
    cmp.n_shared = len(shared)
    if not shared:
        cmp.problems.append(Bilingual("no question was judged successfully in both runs; nothing compared",
                                      "没有题目在两次运行中都评审成功，无法比较"))
        return cmp
    cmp.comparable = True
    group_of = {c.name: c.group for c in rubric.categories}
    cat_of = {q: rubric.canonical(b_by[q].category) for q in shared}
    unknown = sorted({c for c in cat_of.values() if c not in group_of})
    if unknown:
        cmp.problems.append(Bilingual(f"categories not in rubric {rubric.id} are left out: {', '.join(unknown)}",
                                      f"不在评分细则 {rubric.id} 中的类别不计入：{'、'.join(unknown)}"))
    shared = [q for q in shared if cat_of[q] in group_of]
    base_s = {q: float(b_by[q].overall) for q in shared}  # type: ignore[arg-type]
    new_s = {q: float(n_by[q].overall) for q in shared}  # type: ignore[arg-type]

    def test(qs: list[int], strata: list[str] | None, weights: dict[str, float] | None) -> PairedTest:
        return paired_test([base_s[q] for q in qs], [new_s[q] for q in qs], strata, weights, seed=seed,
                           n_boot=n_boot, n_perm=n_perm, level=level)

    present = [c for c in rubric.category_names() if any(cat_of[q] == c for q in shared)]
    rows: list[DeltaRow] = []
    for key, kind, name, en, weights in score_units(rubric, present):  # overall, each group and its categories
        qs = [q for q in shared if cat_of[q] in weights]
        rows.append(DeltaRow(key, kind, name, en, test(qs, [cat_of[q] for q in qs], weights)))
    cat_rows = [r for r in rows if r.kind == "category"]
    for row, adj in zip(cat_rows, holm([r.test.p_value for r in cat_rows if r.test]), strict=True):
        row.p_holm = adj
    for row in rows:
        p = row.p_holm if row.kind == "category" else (row.test.p_value if row.test else None)
        row.significant = p is not None and p < alpha
    missing = [c for c in rubric.category_names() if c not in present]
    for cat in missing:
        info = rubric.category(cat)
        rows.append(DeltaRow(cat, "category", cat, info.en if info else cat, None,
                             note="no shared question judged in both runs"))
    cmp.rows = rows

    moves = [QuestionDelta(q, b_by[q].category, b_by[q].subcategory, base_s[q], new_s[q], new_s[q] - base_s[q],
                           analysis_text(b_by[q].raw), analysis_text(n_by[q].raw), _question_text(new, base, q))
             for q in shared if new_s[q] != base_s[q]]
    cmp.gains = sorted((m for m in moves if m.delta > 0), key=lambda m: (-m.delta, m.question_id))[:top]
    cmp.drops = sorted((m for m in moves if m.delta < 0), key=lambda m: (m.delta, m.question_id))[:top]
    return cmp


def _question_text(new: Run, base: Run, qid: int) -> str | None:
    for run in (new, base):
        if run.questions and qid in run.questions:
            return run.questions[qid].question
    return None

