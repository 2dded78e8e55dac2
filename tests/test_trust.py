"""Judge-trust statistics (alignbench.trust): every estimator against values worked out by hand on small
arrays (in the comments), simulations with a known truth (PPI coverage, isotonic recovery, planted
length bias), and smoke runs on the real CritiqueLLM human labels in ../shared (skipped when absent)."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import SHARED, read_jsonl
from scipy import stats
from scripted_judge import length_score, reference_length_score

from alignbench.aggregate import summarize
from alignbench.rubrics import load_rubric
from alignbench.trust import (
    Bridge,
    HumanLabel,
    LabelScale,
    apply_bridge,
    association,
    calibrate,
    calibrate_arrays,
    count_words,
    family_report,
    fit_bridge,
    format_bias,
    judge_variance,
    kendall_tau_b,
    length_bias,
    markdown_features,
    model_family,
    parse_label_scale,
    position_bias,
    power_tuned_lambda,
    ppi_mean,
    satterthwaite,
    self_preference,
)
from alignbench.types import Judgment, Status

AB = load_rubric("alignbench")
CATS = AB.category_names()  # 数学计算, 逻辑推理, then the six language categories
CQ_POINTWISE = SHARED / "meta_eval" / "critiquellm_alignbench_zh" / "pointwise_alignbench_reference_based_sample.jsonl"
# AlignBench v1.x question counts per category (683 in all)
COUNTS = {"数学计算": 112, "逻辑推理": 92, "基本任务": 68, "中文理解": 58, "综合问答": 38, "文本写作": 75,
          "角色扮演": 116, "专业能力": 124}
W = {c: (0.25 if c in ("数学计算", "逻辑推理") else 1 / 12) for c in COUNTS}


def J(qid: int, model: str, category: str, overall: float | None, *, judge: str = "openai:judge-a",
      status: Status = Status.OK, chars: int = 0, rubric: str = "alignbench@1.1.0") -> Judgment:
    return Judgment(question_id=qid, model=model, category=category, subcategory="x", answer_type="t",
                    status=status, overall=overall if status is Status.OK else None, judge=judge, rubric=rubric,
                    prompt_hash="h", answer_chars=chars)


def covers(ci: tuple[float, float] | None, value: float) -> bool:
    assert ci is not None
    return ci[0] <= value <= ci[1]


# ================================================================================================
# PPI on arrays, by hand
# ================================================================================================


def test_ppi_mean_by_hand_fixed_lambda():
    # N = 6 judge scores; the first 3 answers are labelled.
    # θ = mean(h) + λ(mean_N f − mean_n f) = 20/3 + (39/6 − 6) = 43/6
    # r = 1/2, g = h − λ(1−r)f = [3, 3, 5]: Var(g) = 4/3 → labelled part 4/9
    # unlabelled part λ²(N−n)Var(f)/N² = 3 · 3.5 / 36 = 7/24
    f_all = [4, 6, 8, 5, 7, 9]
    est = ppi_mean(f_all, [4, 6, 8], [5, 6, 9], lam=1.0)
    assert est.value == pytest.approx(43 / 6)
    assert est.var_labelled == pytest.approx(4 / 9)
    assert est.var_unlabelled == pytest.approx(7 / 24)
    assert est.variance == pytest.approx(4 / 9 + 7 / 24)
    assert est.df_labelled == 2
    # Satterthwaite: (v1+v2)² / (v1²/2 + v2²/5)
    v1, v2 = 4 / 9, 7 / 24
    assert est.df == pytest.approx((v1 + v2) ** 2 / (v1**2 / 2 + v2**2 / 5))


def test_ppi_mean_power_tuned_by_hand():
    # 10 labels f = 1..10, h = 2,2,3,3,4,4,5,5,6,6; 10 more answers all judged 5 (N = 20, r = 1/2)
    # λ = Σ(f−f̄)(h−h̄) / Σ(f−f̄)² = 40 / 82.5; θ = mean(h) + λ(mean_N f − mean_n f) = 4 + λ(5.25 − 5.5)
    # labelled part: Σ(g − ḡ)² with g = h − λf/2 is 20 − 40λ + 82.5λ²/4; a fitted λ costs a degree of
    # freedom, so divide by n − 2 = 8, then by n = 10
    f_lab = np.arange(1, 11, dtype=float)
    h = np.array([2, 2, 3, 3, 4, 4, 5, 5, 6, 6], dtype=float)
    lam = 40 / 82.5
    est = ppi_mean(np.concatenate([f_lab, np.full(10, 5.0)]), f_lab, h, lam="auto")
    assert est.lam == pytest.approx(lam)
    assert est.value == pytest.approx(4 - 0.25 * lam)
    assert est.var_labelled == pytest.approx((20 - 40 * lam + 82.5 * lam**2 / 4) / 8 / 10)
    assert est.var_unlabelled == pytest.approx(lam**2 * 10 * np.var(np.r_[f_lab, [5.0] * 10], ddof=1) / 400)
    assert est.df_labelled == 8
    # fewer than 10 labels: no tuning, plain PPI (λ = 1, n − 1 df), as in the fixed-λ example above
    small = ppi_mean([4, 6, 8, 5, 7, 9], [4, 6, 8], [5, 6, 9], lam="auto")
    assert small.lam == 1.0 and small.var_labelled == pytest.approx(4 / 9) and small.df_labelled == 2
    # λ is the slope clipped to [0, 1]
    assert power_tuned_lambda([1, 2, 3], [1, 2, 3]) == 1.0
    assert power_tuned_lambda([1, 2, 3], [2, 3, 4.5]) == 1.0  # slope 1.75, clipped
    assert power_tuned_lambda([1, 2, 3, 4], [2, 1, 2, 1]) == 0.0  # negative slope, clipped
    assert power_tuned_lambda([1, 2, 3, 4], [1, 1.5, 2, 2.5]) == pytest.approx(0.5)
    assert power_tuned_lambda([5, 5, 5], [1, 2, 3]) == 0.0  # constant judge: nothing to learn


def test_ppi_reduces_to_classical_and_plain_formula():
    rng = np.random.default_rng(3)
    h = rng.normal(5, 2, 40)
    f = h + rng.normal(1, 1, 40)
    # every answer labelled, λ = 1: the estimate is the labels' mean and its variance the classical one
    est = ppi_mean(f, f, h, lam=1.0)
    assert est.value == pytest.approx(h.mean())
    assert est.variance == pytest.approx(h.var(ddof=1) / 40)
    # λ = 0 is the classical estimator whatever N
    f_big = np.concatenate([f, rng.normal(6, 2, 400)])
    est0 = ppi_mean(f_big, f, h, lam=0.0)
    assert est0.value == pytest.approx(h.mean()) and est0.variance == pytest.approx(h.var(ddof=1) / 40)
    # n ≪ N: close to the textbook Var(f)/N + Var(h − f)/n (they differ only by the overlap term)
    f_huge = np.concatenate([f, rng.normal(6, 2, 100_000)])
    est1 = ppi_mean(f_huge, f, h, lam=1.0)
    textbook = f_huge.var(ddof=1) / f_huge.size + (h - f).var(ddof=1) / 40
    assert est1.variance == pytest.approx(textbook, rel=1e-3)
    with pytest.raises(ValueError):
        ppi_mean([1, 2, 3], [1], [2])


def test_satterthwaite():
    assert satterthwaite([(1.0, 9)]) == pytest.approx(9)
    assert satterthwaite([(1.0, 4), (1.0, 4)]) == pytest.approx(8)  # equal halves add their df
    assert satterthwaite([(0.0, 3)]) is None


def test_label_scale():
    scale = parse_label_scale("1-5")
    assert (scale.low, scale.high) == (1, 5)
    assert scale.to_rubric([1, 2, 3, 4, 5], AB).tolist() == [1, 3.25, 5.5, 7.75, 10]
    assert scale.from_rubric(5.5, AB) == pytest.approx(3)
    assert parse_label_scale("0–100") == LabelScale(0, 100)
    for bad in ("5-1", "abc", "3"):
        with pytest.raises(ValueError):
            parse_label_scale(bad)


# ================================================================================================
# calibrate on judgments
# ================================================================================================


def _run_and_labels() -> tuple[list[Judgment], list[HumanLabel]]:
    """Two categories (数学计算 = reasoning, 文本写作 = language), 12 answers each, 6 labelled each; plus a
    failed judgment with a label, an unmatched label, and a duplicate label."""
    js, labels = [], []
    f_math = [3, 5, 6, 4, 7, 8, 2, 6, 5, 7, 4, 6]
    h_math = [2, 4, 5, 4, 6, 7]
    f_write = [7, 8, 6, 9, 7, 8, 9, 6, 7, 8, 8, 7]
    h_write = [5, 7, 4, 8, 6, 6]
    for i, s in enumerate(f_math):
        js.append(J(100 + i, "m", "数学计算", s))
    for i, s in enumerate(f_write):
        js.append(J(200 + i, "m", "文本写作", s))
    labels += [HumanLabel(100 + i, "m", h) for i, h in enumerate(h_math)]
    labels += [HumanLabel(200 + i, "m", h) for i, h in enumerate(h_write)]
    js.append(J(300, "m", "文本写作", None, status=Status.PARSE_FAILED))
    labels.append(HumanLabel(300, "m", 9))  # on a failed judgment: reported, not used
    labels.append(HumanLabel(999, "m", 5))  # matches nothing
    return js, labels


def test_calibrate_combines_with_alignbench_weights():
    js, labels = _run_and_labels()
    cal = calibrate(js, labels, AB, lam=1.0, min_labels=5)
    by = {r.key: r for r in cal.rows()}
    assert [r.key for r in cal.rows()] == ["overall", "reasoning", "数学计算", "language", "文本写作"]
    f_m = np.array([3, 5, 6, 4, 7, 8, 2, 6, 5, 7, 4, 6.0])
    f_w = np.array([7, 8, 6, 9, 7, 8, 9, 6, 7, 8, 8, 7.0])
    e_m = ppi_mean(f_m, f_m[:6], [2, 4, 5, 4, 6, 7], 1.0)
    e_w = ppi_mean(f_w, f_w[:6], [5, 7, 4, 8, 6, 6], 1.0)
    assert by["数学计算"].calibrated.score == pytest.approx(e_m.value)
    assert by["reasoning"].calibrated.score == pytest.approx(e_m.value)  # its only category present
    # two groups present, one category each: overall = (reasoning + language) / 2
    assert by["overall"].calibrated.score == pytest.approx((e_m.value + e_w.value) / 2)
    assert by["overall"].calibrated.se == pytest.approx(math.sqrt((e_m.variance + e_w.variance) / 4))
    # judge-only and labels-only beside it
    assert by["overall"].judge_only.score == pytest.approx((f_m.mean() + f_w.mean()) / 2)
    assert by["数学计算"].labels_only.score == pytest.approx(np.mean([2, 4, 5, 4, 6, 7]))
    # effective labels: n × Var(labels only) / Var(calibrated)
    row = by["数学计算"]
    assert row.effective_labels == pytest.approx(6 * (np.var([2, 4, 5, 4, 6, 7], ddof=1) / 6) / e_m.variance)
    assert row.labels_gained == pytest.approx(row.effective_labels - 6)
    lo, hi = row.calibrated.ci
    assert (lo + hi) / 2 == pytest.approx(e_m.value)
    assert (hi - lo) / 2 == pytest.approx(stats.t.ppf(0.975, e_m.df) * math.sqrt(e_m.variance))
    # label accounting
    assert cal.labels.n_given == 14 and cal.labels.n_used == 12
    assert cal.labels.n_on_failed == 1 and cal.labels.on_failed_by_status == {"parse_failed": 1}
    assert cal.labels.n_unmatched == 1 and cal.labels.unmatched_examples == ((999, "m"),)
    assert any("failed judgments" in w for w in cal.warnings)
    json.dumps(cal.as_dict(), ensure_ascii=False)


def test_calibrate_judge_only_matches_aggregate():
    rng = np.random.default_rng(0)
    js = [J(i, "m", CATS[i % 8], float(rng.integers(1, 11))) for i in range(200)]
    labels = {(j.question_id, j.model): float(rng.integers(1, 11)) for j in js[:80]}
    cal = calibrate(js, labels, AB)
    summ = summarize(js, AB, n_boot=10)
    assert cal.overall.judge_only.score == pytest.approx(summ["overall"])
    for gid in ("reasoning", "language"):
        assert next(g for g in cal.groups if g.key == gid).judge_only.score == pytest.approx(summ[gid])
    for row in cal.categories:
        assert row.judge_only.score == pytest.approx(summ["categories"][row.key]["score"])


def test_calibrate_flags_and_label_rules():
    js = [J(i, "m", "数学计算", float(3 + i % 5)) for i in range(30)] + \
         [J(100 + i, "m", "逻辑推理", float(4 + i % 3)) for i in range(30)] + \
         [J(200 + i, "m", "专业能力", float(5 + i % 4)) for i in range(30)]
    labels = {(i, "m"): float(1 + i % 5) for i in range(12)}  # 12 varied: fine
    labels |= {(100 + i, "m"): 3.0 for i in range(12)}  # 12 labels, one distinct value: flagged
    labels |= {(200, "m"): 2.0}  # 1 label: no calibrated score
    cal = calibrate(js, labels, AB, label_scale="1-5")
    by = {r.key: r for r in cal.categories}
    assert by["数学计算"].flag is None
    assert "same human score" in by["逻辑推理"].flag
    assert by["专业能力"].calibrated.score is None and "1 label" in by["专业能力"].flag
    assert cal.overall.calibrated.score is None  # a category present without 2 labels
    assert cal.overall.judge_only.score is not None
    assert any("专业能力" in w and "2 labels" in w for w in cal.warnings)
    assert "逻辑推理" in next(g for g in cal.groups if g.key == "reasoning").flag
    # 1-5 labels land on the rubric scale: 3 → 5.5
    assert by["逻辑推理"].labels_only.score == pytest.approx(5.5)
    # several labels of one answer are averaged; out-of-scale labels are an error
    two = calibrate(js, [HumanLabel(0, "m", 1), HumanLabel(0, "m", 3)] + [HumanLabel(i, "m", 2) for i in (1, 2)],
                    AB, label_scale="1-5")
    assert two.labels.n_given == 4 and two.labels.n_answers == 3
    assert two.categories[0].labels_only.score == pytest.approx(np.mean([3.25, 3.25, 3.25]))
    with pytest.raises(ValueError, match="label_scale"):
        calibrate(js, {(0, "m"): 12.0}, AB)
    with pytest.raises(ValueError, match="more than once"):
        calibrate(js + js[:1], {}, AB)


def test_calibrate_bootstrap_agrees_with_analytic_on_a_large_sample():
    rng = np.random.default_rng(1)
    data = {}
    for c in CATS:
        h = rng.normal(6, 1.5, 300)
        f = h + 1 + rng.normal(0, 1, 300)
        data[c] = (f, f[:100], h[:100])
    a = calibrate_arrays(data, AB, lam=1.0)
    b = calibrate_arrays(data, AB, lam=1.0, method="bootstrap", n_boot=2000, seed=2)
    assert b.overall.calibrated.score == pytest.approx(a.overall.calibrated.score)
    assert b.overall.calibrated.se == pytest.approx(a.overall.calibrated.se, rel=0.1)
    for x, y in zip(a.overall.calibrated.ci, b.overall.calibrated.ci, strict=True):
        assert x == pytest.approx(y, abs=0.05)


# ================================================================================================
# PPI coverage by simulation
# ================================================================================================

# Humans score 1–5 with a known distribution per category (so the truth is exact); the judge sees the
# human-scale quality through category-specific bias and noise, rounded and clipped to 1–10.
P_HUMAN = {c: np.random.default_rng(i).dirichlet(np.ones(5) * 2) for i, c in enumerate(COUNTS)}
BIAS = dict(zip(COUNTS, [1.5, 1.0, 0.3, -0.5, 0.8, 1.2, 0.0, -1.0], strict=True))
LEVELS = LabelScale(1, 5).to_rubric(np.arange(1, 6), AB)
TRUTH_CAT = {c: float(P_HUMAN[c] @ LEVELS) for c in COUNTS}
TRUTH = sum(W[c] * TRUTH_CAT[c] for c in COUNTS)


def _simulate(seed: int, n_labels: int, judge_noise: float = 1.3, informative: bool = True) -> dict:
    rng = np.random.default_rng(seed)
    data = {}
    for c, n in COUNTS.items():
        h = LEVELS[rng.choice(5, size=n, p=P_HUMAN[c])]
        signal = h if informative else rng.permutation(h)
        f = np.clip(np.round(0.8 * signal + BIAS[c] + 1 + rng.normal(0, judge_noise, n)), 1, 10)
        lab = rng.choice(n, size=n_labels, replace=False)
        data[c] = (f, f[lab], h[lab])
    return data


def test_ppi_coverage_simulation():
    """300 seeded runs (683 answers, 20 labels per category, λ tuned): the calibrated 95% CI covers the
    true human-scale overall score in close to 95% of runs; the judge-only CI almost never does."""
    hits = {"calibrated": 0, "judge": 0, "labels": 0}
    cat_hits = 0
    width = {"calibrated": [], "labels": []}
    effective = []
    for seed in range(300):
        cal = calibrate_arrays(_simulate(seed, 20), AB)
        o = cal.overall
        hits["calibrated"] += covers(o.calibrated.ci, TRUTH)
        hits["judge"] += covers(o.judge_only.ci, TRUTH)
        hits["labels"] += covers(o.labels_only.ci, TRUTH)
        cat_hits += sum(covers(r.calibrated.ci, TRUTH_CAT[r.key]) for r in cal.categories)
        width["calibrated"].append(o.calibrated.ci[1] - o.calibrated.ci[0])
        width["labels"].append(o.labels_only.ci[1] - o.labels_only.ci[0])
        effective.append(o.effective_labels)
    rate = {k: v / 300 for k, v in hits.items()}
    print(f"\ncoverage over 300 runs: calibrated {rate['calibrated']:.3f}, judge-only {rate['judge']:.3f}, "
          f"labels-only {rate['labels']:.3f}, categories {cat_hits / 2400:.3f}; mean width calibrated "
          f"{np.mean(width['calibrated']):.3f} vs labels-only {np.mean(width['labels']):.3f}; "
          f"effective labels {np.mean(effective):.0f} from 160")
    assert 0.90 <= rate["calibrated"] <= 0.99
    assert 0.90 <= cat_hits / 2400 <= 0.99
    assert rate["judge"] < 0.2
    assert np.mean(width["calibrated"]) < 0.8 * np.mean(width["labels"])
    assert np.mean(effective) > 160


def test_ppi_with_a_useless_judge_is_no_worse_than_the_labels():
    """A judge unrelated to the humans: power tuning drives λ towards 0 and the CI stays honest and about
    as wide as the labels-only one (plain PPI, λ = 1, would be wider)."""
    hits = 0
    ratio, ratio_plain = [], []
    for seed in range(100):
        data = _simulate(seed, 30, informative=False)
        cal = calibrate_arrays(data, AB)
        plain = calibrate_arrays(data, AB, lam=1.0)
        hits += covers(cal.overall.calibrated.ci, TRUTH)
        ratio.append(cal.overall.calibrated.se / cal.overall.labels_only.se)
        ratio_plain.append(plain.overall.calibrated.se / plain.overall.labels_only.se)
    assert hits / 100 >= 0.88
    assert np.mean(ratio) < 1.1
    assert np.mean(ratio_plain) > np.mean(ratio)


# ================================================================================================
# Bridge
# ================================================================================================


def test_isotonic_bridge_by_hand():
    # old 1,2,3,4 → new 2,1,5,6: the first two violate monotonicity and pool to 1.5
    old = [J(i, "m", "数学计算", s, judge="openai:old") for i, s in enumerate([1, 2, 3, 4])]
    new = [J(i, "m", "数学计算", s, judge="openai:new") for i, s in enumerate([2, 1, 5, 6])]
    fit = fit_bridge(old, new, AB, n_boot=20, n_boot_agreement=0, created="2026-01-01T00:00:00+00:00")
    b = fit.bridge
    assert b.predict([1, 2, 3, 4]).tolist() == [1.5, 1.5, 5, 6]
    assert b.predict([0, 2.5, 3.5, 11]).tolist() == [1.5, 3.25, 5.5, 6]  # interpolated; clipped outside
    assert (b.old_judge, b.new_judge, b.n) == ("openai:old", "openai:new", 4)
    a = fit.agreement
    assert a.mean_abs_diff == pytest.approx(1.5)  # |1|, |−1|, |2|, |2|
    assert a.mean_diff == pytest.approx(1.0)
    assert a.mean_abs_diff_bridged == pytest.approx(0.25)  # |2−1.5|, |1−1.5|, 0, 0
    assert a.spearman == pytest.approx(stats.spearmanr([1, 2, 3, 4], [2, 1, 5, 6]).statistic)
    assert a.kendall == pytest.approx(stats.kendalltau([1, 2, 3, 4], [2, 1, 5, 6]).statistic)
    rows = {r.key: r for r in fit.scores["m"]}
    assert (rows["数学计算"].old, rows["数学计算"].new, rows["数学计算"].bridged) == (2.5, 3.5, 3.5)


def test_bridge_matches_sklearn_and_round_trips_json():
    from sklearn.isotonic import IsotonicRegression

    rng = np.random.default_rng(5)
    x = rng.integers(1, 11, 300).astype(float)
    y = np.clip(x + rng.normal(-1, 1.5, 300), 1, 10)
    old = [J(i, "m", CATS[i % 8], v, judge="openai:old") for i, v in enumerate(x)]
    new = [J(i, "m", CATS[i % 8], v, judge="openai:new") for i, v in enumerate(y)]
    fit = fit_bridge(old, new, AB, n_boot=50, n_boot_agreement=20)
    grid = np.linspace(-1, 12, 200)
    iso = IsotonicRegression(increasing=True, out_of_bounds="clip").fit(x, y)
    assert np.allclose(fit.bridge.predict(grid), iso.predict(grid))
    saved = json.loads(json.dumps(fit.bridge.as_dict()))
    assert saved["format"] == "alignbench-bridge" and saved["version"] == 1
    assert set(saved) >= {"old", "new", "knots", "n", "created", "band"}
    assert Bridge.from_dict(saved) == fit.bridge
    with pytest.raises(ValueError, match="version"):
        Bridge.from_dict({**saved, "version": 99})
    with pytest.raises(ValueError, match="not an alignbench bridge"):
        Bridge.from_dict({"knots": {}})
    with pytest.raises(ValueError, match="non-decreasing"):
        Bridge.from_dict({**saved, "knots": {"old": [3, 1], "new": [1, 2]}})
    # every category and overall on both scales; per-category agreement
    keys = [r.key for r in fit.scores["m"]]
    assert keys[0] == "overall" and set(CATS) <= set(keys) and set(fit.categories) == set(CATS)
    json.dumps(fit.as_dict(), ensure_ascii=False)


def test_kendall_tau_b_matches_scipy_and_meta_eval():
    from alignbench.metaeval import corr_rows

    rng = np.random.default_rng(8)
    x = rng.integers(1, 11, 120).astype(float)
    y = np.clip(x + rng.integers(-3, 4, 120), 1, 10).astype(float)
    assert kendall_tau_b(x, y)[0] == pytest.approx(stats.kendalltau(x, y).statistic)
    idx = rng.integers(0, 120, size=(30, 120))
    assert np.allclose(kendall_tau_b(x, y, idx), corr_rows(x[idx], y[idx], "kendall"))
    assert np.isnan(kendall_tau_b([3, 3, 3], [1, 2, 3])[0])  # constant: undefined


def test_bridge_warns_when_the_judges_disagree_on_order():
    old = [J(i, "m", "数学计算", s, judge="openai:old") for i, s in enumerate([1, 2, 3, 4, 5, 6])]
    new = [J(i, "m", "数学计算", s, judge="openai:new") for i, s in enumerate([6, 5, 4, 3, 2, 1])]
    fit = fit_bridge(old, new, AB, n_boot=10, n_boot_agreement=0)
    assert fit.bridge.knots_new == (3.5, 3.5) and any("flat" in w for w in fit.warnings)


def test_apply_bridge():
    old = [J(i, "m", "数学计算", s, judge="openai:old") for i, s in enumerate([1, 2, 3, 4])]
    new = [J(i, "m", "数学计算", s, judge="openai:new") for i, s in enumerate([2, 1, 5, 6])]
    bridge = fit_bridge(old, new, AB, n_boot=5, n_boot_agreement=0).bridge
    run = [J(10, "x", "逻辑推理", 2.5, judge="openai:old"),
           J(11, "x", "逻辑推理", None, judge="openai:old", status=Status.JUDGE_ERROR)]
    out = apply_bridge(bridge, run)
    assert out[0].overall == pytest.approx(3.25) and out[0].judge == "bridged:openai:old->openai:new"
    assert out[0].scores == {}
    assert out[1] == run[1]  # failed: unchanged
    with pytest.raises(ValueError, match="maps openai:old"):
        apply_bridge(bridge, [J(1, "x", "逻辑推理", 3, judge="openai:other")])
    assert apply_bridge(bridge, [J(1, "x", "逻辑推理", 3, judge="openai:other")], check=False)[0].overall == 5


def test_bridge_recovers_a_known_monotone_map():
    """New judge = g(old) + noise with g convex and increasing: the fitted map is within 0.35 of g on the
    score grid, and the bootstrap band covers g at most grid points."""
    rng = np.random.default_rng(11)

    def g(v: np.ndarray) -> np.ndarray:
        return 1 + 9 * ((v - 1) / 9) ** 1.6

    x = rng.integers(1, 11, 683 * 2).astype(float)
    y = g(x) + rng.normal(0, 0.8, x.size)
    old = [J(i // 2, f"m{i % 2}", CATS[(i // 2) % 8], v, judge="openai:old") for i, v in enumerate(x)]
    new = [J(i // 2, f"m{i % 2}", CATS[(i // 2) % 8], v, judge="openai:new") for i, v in enumerate(y)]
    fit = fit_bridge(old, new, AB, n_boot=100, n_boot_agreement=0)
    grid = np.arange(1, 11, dtype=float)
    assert np.max(np.abs(fit.bridge.predict(grid) - g(grid))) < 0.35
    lo, hi = fit.bridge.band(grid)
    assert np.mean((lo <= g(grid)) & (g(grid) <= hi)) >= 0.7
    assert np.all(np.diff(fit.bridge.knots_new) >= 0)
    assert set(fit.scores) == {"m0", "m1"}


# ================================================================================================
# Length and format bias
# ================================================================================================


def test_length_bias_by_hand():
    # q1: lengths 100/300, scores 5/7 → demeaned x ∓100, s ∓1; q2: 100/500, 6/6 → x ∓200, s 0
    # slope = Σx̃s̃ / Σx̃² = 200 / 100000 = 0.002 per char = 0.2 per 100 chars
    js = [J(1, "a", "文本写作", 5, chars=100), J(1, "b", "文本写作", 7, chars=300),
          J(2, "a", "文本写作", 6, chars=100), J(2, "b", "文本写作", 6, chars=500)]
    lb = length_bias(js, AB, units=("chars",), n_boot=50)
    a = lb.units["chars"]
    assert a.design == "within-question" and not a.confounded
    assert a.slope == pytest.approx(0.2) and a.per == 100
    assert a.spearman == pytest.approx(stats.spearmanr([-100, 100, -200, 200], [-1, 1, 0, 0]).statistic)
    # at equal length: a 5 − 0.002·(−100) = 5.2, 6 − 0.002·(−200) = 6.4 → 5.8; b 6.8, 5.6 → 6.2
    rows = {m: {r.key: r for r in lb.adjusted[m]} for m in lb.adjusted}
    assert rows["a"]["文本写作"].score == pytest.approx(5.5)
    assert rows["a"]["文本写作"].at_equal_length == pytest.approx(5.8)
    assert rows["b"]["文本写作"].at_equal_length == pytest.approx(6.2)
    assert rows["a"]["overall"].delta == pytest.approx(0.3)
    assert lb.warnings == ()
    # words need the texts; without them only characters are measured, and that is said
    both = length_bias(js, AB, n_boot=0)
    assert set(both.units) == {"chars"} and both.units["chars"].slope_ci is None
    assert both.warnings == ("word counts need the answer texts (texts=...): words skipped",)


def _length_run(seed: int, slope_per_100: float, n_q: int = 150, models: int = 4):
    rng = np.random.default_rng(seed)
    scores, lengths, qs = [], [], []
    effect = rng.normal(0, 0.5, models)
    for q in range(n_q):
        difficulty = rng.normal(6, 1.5)
        for m in range(models):
            length = float(np.exp(rng.normal(5.5, 0.5)))
            scores.append(difficulty + effect[m] + slope_per_100 * length / 100 + rng.normal(0, 1))
            lengths.append(length)
            qs.append(q)
    return scores, lengths, qs


def test_length_bias_detects_a_planted_slope():
    s, x, q = _length_run(0, 0.4)
    a = association(s, x, q, name="chars", per=100, n_boot=300)
    assert covers(a.slope_ci, 0.4) and a.slope_ci[0] > 0 and a.spearman_ci[0] > 0


def test_length_bias_finds_none_when_absent():
    # 40 seeded judges with no length preference: the 95% CI excludes 0 rarely (expected 2 of 40)
    false_alarms = 0
    for seed in range(40):
        s, x, q = _length_run(seed, 0.0, n_q=80)
        a = association(s, x, q, name="chars", per=100, n_boot=150, seed=seed)
        false_alarms += not covers(a.slope_ci, 0.0)
    assert false_alarms <= 6


def test_length_bias_question_difficulty_does_not_fake_it():
    # longer answers on easier questions, no length effect within a question: the within-question slope
    # finds nothing while the naive between-question association would
    rng = np.random.default_rng(4)
    s, x, q = [], [], []
    for qi in range(200):
        easy = rng.normal(0, 1)
        for _ in range(3):
            x.append(400 + 150 * easy + rng.normal(0, 50))
            s.append(6 + 1.5 * easy + rng.normal(0, 1))
            q.append(qi)
    within = association(s, x, q, per=100, n_boot=200)
    naive = stats.spearmanr(x, s).statistic
    assert covers(within.slope_ci, 0.0) and naive > 0.5


def test_length_bias_single_model_falls_back_to_between_question():
    rng = np.random.default_rng(2)
    js = [J(i, "solo", CATS[i % 8], float(rng.integers(1, 11)), chars=int(rng.integers(10, 900))) for i in range(60)]
    lb = length_bias(js, AB, units=("chars",), n_boot=50)
    a = lb.units["chars"]
    assert a.design == "between-question" and a.confounded and "confounded" in a.note
    assert lb.adjusted == {} and lb.adjust_unit is None
    assert any("no within-question comparison" in w for w in lb.warnings)


def test_length_in_jieba_words():
    assert count_words("我爱北京天安门") == 4  # 我 / 爱 / 北京 / 天安门
    assert count_words("  hello world \n") == 2  # whitespace tokens do not count
    texts = {(1, "a"): "我爱北京天安门", (1, "b"): "我爱北京", (2, "a"): "你好", (2, "b"): "你好世界和平"}
    js = [J(1, "a", "基本任务", 8), J(1, "b", "基本任务", 6), J(2, "a", "基本任务", 5), J(2, "b", "基本任务", 7)]
    lb = length_bias(js, AB, texts=texts, n_boot=20)
    assert lb.units["chars"].n_answers == 4 and lb.units["words"].slope > 0
    assert lb.adjust_unit == "words"
    json.dumps(lb.as_dict(), ensure_ascii=False)


def test_markdown_features_and_format_bias():
    text = "# 标题\n## 小节\n- 一\n- 二\n1. 甲\n2、乙\n（3）丙\n这是**重点**和__另一处__。\n| a | b |\n|---|---|\n"
    assert markdown_features(text) == {"headings": 2, "list_items": 5, "bold": 2, "table_rows": 2}
    assert markdown_features("没有格式的回答。#不是标题") == {"headings": 0, "list_items": 0, "bold": 0,
                                                            "table_rows": 0}
    # the judge adds a point per list item, whatever the length
    rng = np.random.default_rng(7)
    js, texts = [], {}
    for q in range(80):
        for m in ("a", "b", "c"):
            items = int(rng.integers(0, 5))
            texts[(q, m)] = "".join(f"- 第{i}点\n" for i in range(items)) + "字" * int(rng.integers(50, 400))
            js.append(J(q, m, "综合问答", float(5 + items + rng.normal(0, 0.5))))
    fb = format_bias(js, AB, texts, n_boot=100)
    assert fb.features["list_items"].slope == pytest.approx(1.0, abs=0.15)
    assert fb.controlling_length["list_items"].slope == pytest.approx(1.0, abs=0.15)
    assert fb.controlling_length["list_items"].controls == ("chars",)
    assert "headings" not in fb.features  # nobody used one
    json.dumps(fb.as_dict(), ensure_ascii=False)


# ================================================================================================
# Position bias
# ================================================================================================


def _pair(category: str, first: str | None, second: str | None):
    def verdict(order: str, position: str | None):
        return SimpleNamespace(order=order, status=Status.OK if position else Status.PARSE_FAILED, position=position)

    return SimpleNamespace(category=category, orders=(verdict("model_first", first), verdict("baseline_first", second)))


def test_position_bias_by_hand():
    pairs = [_pair("数学计算", "1", "2"),  # model wins both orders: consistent
             _pair("数学计算", "1", "1"),  # 助手1 wins both times: a flip
             _pair("文本写作", "tie", "2"),  # tie, then model: inconsistent, not a flip
             _pair("文本写作", "1", None)]  # an order failed: left out
    pb = position_bias(pairs, AB, n_boot=100)
    o = pb.overall
    # decisive verdicts 2 + 2 + 1 = 5, of which 助手1: 1 + 2 + 0 = 3
    assert (o.n_pairs, o.n_decisive_verdicts, pb.n_failed) == (3, 5, 1)
    assert o.first_position_rate == pytest.approx(0.6)
    assert o.flip_rate == pytest.approx(1 / 3) and o.inconsistency_rate == pytest.approx(2 / 3)
    assert pb.categories["数学计算"].flip_rate == 0.5 and pb.categories["文本写作"].first_position_rate == 0
    # a judge consistent on every pair sits at exactly 0.5
    assert position_bias([_pair("数学计算", "1", "2"), _pair("数学计算", "2", "1")], n_boot=0).overall \
        .first_position_rate == 0.5
    json.dumps(pb.as_dict(), ensure_ascii=False)


def test_position_bias_accepts_pair_judgments():
    compare = pytest.importorskip("alignbench.pairwise.compare")

    def v(order: str, position: str):
        return compare.OrderVerdict(order=order, status=Status.OK, position=position, prompt_hash="h")

    pj = compare.PairJudgment(question_id=1, model="m", baseline="b", category="数学计算", subcategory="x",
                              answer_type="t", status=Status.OK, preference=0.5, consistent=False, flip=True,
                              orders=(v("model_first", "1"), v("baseline_first", "1")), judge="j", rubric="r",
                              model_chars=1, baseline_chars=1, model_words=1, baseline_words=1)
    pb = position_bias([pj], AB, n_boot=0)
    assert pb.overall.flip_rate == 1.0 and pb.overall.first_position_rate == 1.0


# ================================================================================================
# Judge variance
# ================================================================================================


def test_judge_variance_by_hand():
    # answer a: 6, 7, 8 (mean 7, s² 1); answer b: 5, 5, 5 (mean 5, s² 0); one category, K = 3
    # Var(category mean) = Var([7, 5]) / 2 = 1; judge part Σ s²/K / N² = (1/3)/4 = 1/12
    # one sample per answer instead: judge part Σ s² / N² = 1/4, total 1 − 1/12 + 1/4 = 7/6 → share 3/14
    js = [J(1, "a", "数学计算", s) for s in (6, 7, 8)] + [J(2, "a", "数学计算", 5) for _ in range(3)]
    js.append(J(3, "a", "数学计算", 4))  # judged once: left out
    jv = judge_variance(js, AB)
    assert (jv.n_answers, jv.n_single, jv.samples_per_answer) == (2, 1, {1: 1, 3: 2})
    assert jv.mean_sd == pytest.approx(0.5) and jv.max_sd == pytest.approx(1.0)
    assert jv.share_answers_disagreeing == pytest.approx(0.5)
    # reliability: between = Var(means) − mean(s²/K) = 2 − 1/6 = 11/6; within = mean s² = 1/2
    assert jv.reliability == pytest.approx((11 / 6) / (11 / 6 + 1 / 2))
    row = next(r for r in jv.rows if r.key == "数学计算")
    assert row.sd_within == pytest.approx(math.sqrt(0.5))
    assert row.share_of_variance == pytest.approx(1 / 12)
    assert row.ci_narrower_without_noise == pytest.approx(1 - math.sqrt(11 / 12))
    assert row.share_of_variance_single == pytest.approx(3 / 14)
    assert [(a.question_id, a.k, a.mean, a.sd) for a in jv.answers] == [(1, 3, 7, 1), (2, 3, 5, 0)]
    overall = next(r for r in jv.rows if r.key == "overall")
    assert overall.share_of_variance == pytest.approx(1 / 12)  # one category: the same share
    json.dumps(jv.as_dict())


# ================================================================================================
# Families and self-preference
# ================================================================================================


@pytest.mark.parametrize(("name", "family"), [
    ("openai:gpt-4o", "GPT"), ("gpt-4-0613", "GPT"), ("GPT_4", "GPT"), ("o1-mini", "GPT"),
    ("zhipuai:glm-4", "GLM"), ("ChatGLM2_ToB_pro", "GLM"), ("thu-coai/CritiqueLLM-6B", "GLM"),
    ("qwen_plus_v1_search", "Qwen"), ("openai:qwen2.5-72b-instruct", "Qwen"), ("deepseek-chat", "DeepSeek"),
    ("claude-3-haiku", "Claude"), ("llama2_7b", "Llama"), ("internlm", "InternLM"), ("sparkdesk", "Spark"),
    ("yi-34b-chat", "Yi"), ("abab6.5", "MiniMax"), ("文心一言4.0", "ERNIE"), ("openai:stub-judge", None),
    ("model-a", None),
])
def test_model_family(name, family):
    assert model_family(name) == family


def test_family_report():
    rep = family_report(["zhipuai:glm-4"], ["chatglm3-6b", "qwen2-7b"])
    assert rep.shared == (("zhipuai:glm-4", "chatglm3-6b", "GLM"),)
    assert "same family" in rep.warning and "ensemble" in rep.warning
    assert family_report(["openai:gpt-4o"], ["qwen2-7b"]).warning is None


def test_self_preference_by_hand():
    # the GPT judge gives chatglm 6 and qwen 7; the GLM judge 8 and 7.5 → for the GLM judge
    # d(own) = 8 − 6 = 2, d(other) = 7.5 − 7 = 0.5 → effect 1.5
    js = []
    for q in range(1, 5):
        js += [J(q, "chatglm3", "基本任务", 6, judge="openai:gpt-4o"), J(q, "qwen2", "基本任务", 7, judge="openai:gpt-4o"),
               J(q, "chatglm3", "基本任务", 8, judge="zhipuai:glm-4"), J(q, "qwen2", "基本任务", 7.5, judge="zhipuai:glm-4")]
    sp = self_preference(js, n_boot=50)
    rows = {r.judge: r for r in sp.judges}
    glm = rows["zhipuai:glm-4"]
    assert glm.effect == pytest.approx(1.5) and (glm.n_own, glm.n_other) == (4, 4)
    assert glm.own_models == ("chatglm3",) and glm.ci == pytest.approx((1.5, 1.5))
    assert rows["openai:gpt-4o"].effect is None and "no model of the judge's family" in rows["openai:gpt-4o"].note
    assert sp.n_answers == 8
    single = self_preference([j for j in js if j.judge == "zhipuai:glm-4"], n_boot=0)
    assert single.judges[0].note == "needs a second judge"


# ================================================================================================
# Real human labels (CritiqueLLM, 1–5) with scripted judges
# ================================================================================================

needs_shared = pytest.mark.skipif(not CQ_POINTWISE.is_file(), reason="../shared CritiqueLLM sample not present")


def _critiquellm_runs():
    """100 human-scored answers as two runs: a 'length' judge and a 'reference length' judge (the
    scripted judges of tests/scripted_judge.py), plus the human 1–5 scores by answer."""
    rows = read_jsonl(CQ_POINTWISE)
    qid: dict[str, int] = {}
    a, b, human = [], [], {}
    for r in rows:
        q = qid.setdefault(r["question"], len(qid) + 1)
        a.append(J(q, r["model"], r["category"], float(length_score(r["response"])), judge="openai:length"))
        b.append(J(q, r["model"], r["category"], float(reference_length_score(r["response"], r["reference"])),
                   judge="openai:ref-length"))
        human[(q, r["model"])] = float(r["human_score"])
    return a, b, human


@needs_shared
def test_calibrate_on_critiquellm_labels():
    judge, _, human = _critiquellm_runs()
    keys = sorted(human)
    picked = np.random.default_rng(0).choice(len(keys), size=50, replace=False)
    labels = {keys[i]: human[keys[i]] for i in picked}
    cal = calibrate(judge, labels, AB, label_scale="1-5")
    assert len(cal.categories) == 8 and cal.overall.n == 100 and cal.overall.n_labels == 50
    assert cal.labels.n_used == 50
    assert all(r.flag for r in cal.categories if r.n_labels < 10) and any(r.flag for r in cal.categories)
    # the AlignBench-weighted human score of all 100 answers (what the labels estimate)
    full = calibrate(judge, human, AB, label_scale="1-5", lam=1.0)
    truth = full.overall.labels_only.score
    assert covers(cal.overall.calibrated.ci, truth)
    assert all(1 <= r.calibrated.ci[0] <= r.calibrated.ci[1] <= 10 for r in cal.rows())  # cut at the scale
    # everything labelled, λ = 1: calibrated is the labels' own estimate, CI and all
    assert full.overall.calibrated.score == pytest.approx(truth)
    assert full.overall.calibrated.ci == pytest.approx(full.overall.labels_only.ci)
    json.dumps(cal.as_dict(), ensure_ascii=False)


@needs_shared
def test_bridge_on_critiquellm_answers():
    old, new, _ = _critiquellm_runs()
    fit = fit_bridge(old, new, AB, n_boot=100, n_boot_agreement=50)
    x = [j.overall for j in old]
    y = [j.overall for j in new]
    assert fit.n_matched == 100
    assert fit.agreement.spearman == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-9)
    assert fit.agreement.kendall == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-9)
    assert np.all(np.diff(fit.bridge.knots_new) >= 0)
    assert fit.agreement.mean_abs_diff_bridged <= fit.agreement.mean_abs_diff
    bridged = apply_bridge(Bridge.from_dict(json.loads(json.dumps(fit.bridge.as_dict()))), old)
    assert [j.overall for j in bridged] == pytest.approx(fit.bridge.predict(x).tolist())
    assert len(fit.scores) == 8  # eight source models, each with its scores on both scales
