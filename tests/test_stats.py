"""The statistics layer (alignbench.stats): bootstrap determinism and coverage, the correlations against
scipy.stats, the formatting rules (missing values, negatives, halves), one figure registered once shown
by all three views, and a guard that no second copy of a bootstrap, a correlation or a formatter is left
in the package."""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT
from rich.console import Console
from scipy import stats as sp
from test_report import make_run

from alignbench import stats
from alignbench.reporting.markdown import STRINGS, _audit_block, build_report
from alignbench.reporting.terminal import print_audit, print_summary
from alignbench.rubrics import load_rubric
from alignbench.rundir import load_run
from alignbench.stats import fmt
from alignbench.trust import PositionBias, PositionStats
from alignbench.trust.runs import BiasAudit
from alignbench.view.data import load_view
from alignbench.view.render import Pages

PACKAGE = ROOT / "alignbench"

# ================================================================================================
# resampling
# ================================================================================================


def test_draw_is_seeded_uniform_and_one_resample_matches_the_stream():
    a = stats.draw(np.random.default_rng(7), 13, 400)
    assert a.shape == (400, 13) and a.min() == 0 and a.max() == 12
    assert np.array_equal(a, stats.draw(np.random.default_rng(7), 13, 400))
    assert not np.array_equal(a, stats.draw(np.random.default_rng(8), 13, 400))
    counts = np.bincount(a.ravel(), minlength=13) / a.size
    assert np.all(np.abs(counts - 1 / 13) < 0.02)
    rng = np.random.default_rng(3)  # the per-resample form used by loops that refit draws the same stream
    assert np.array_equal(stats.draw(rng, 9), np.random.default_rng(3).integers(0, 9, size=9))


def test_percentile_ci_covers_the_mean_at_its_level():
    rng = np.random.default_rng(0)
    truth, hits, runs = 2.0, 0, 300
    for _ in range(runs):
        x = rng.exponential(truth, size=60)  # skewed: the percentile interval still covers
        lo, hi = stats.percentile_ci(stats.means(x, 500, rng), 0.95)  # type: ignore[misc]
        hits += lo <= truth <= hi
    assert 0.88 <= hits / runs <= 0.98
    widths = [np.subtract(*stats.percentile_ci(stats.means(rng.normal(size=60), 500, rng), lv)[::-1])  # type: ignore[index]
              for lv in (0.5, 0.9, 0.99)]
    assert widths[0] < widths[1] < widths[2]


def test_percentile_ci_ignores_undefined_resamples_unless_half_or_more():
    s = np.array([1.0, 2.0, 3.0, 4.0, np.nan, np.nan])
    assert stats.percentile_ci(s, 0.5) == tuple(np.quantile([1, 2, 3, 4], [0.25, 0.75]))
    assert stats.percentile_ci(np.array([1.0, np.nan, np.nan, np.inf]), 0.9) is None  # 1 defined of 4
    assert stats.percentile_ci(np.array([5.0]), 0.9) is None and stats.percentile_ci(np.array([]), 0.9) is None


def test_means_resample_rows_whole_and_stratified_means_stay_in_their_stratum():
    pairs = np.array([[0.0, 1.0]] * 5 + [[1.0, 1.0]] * 5)
    m = stats.means(pairs, 200, np.random.default_rng(1))
    assert m.shape == (200,) and np.all((m >= 0.5) & (m <= 1.0))
    strata = {"a": np.arange(10.0), "b": 100 + np.arange(4.0)}
    boots = stats.stratified_means(strata, 300, np.random.default_rng(2))
    assert list(boots) == ["a", "b"]
    assert boots["a"].min() >= 0 and boots["a"].max() <= 9 and boots["b"].min() >= 100
    rng = np.random.default_rng(2)  # strata drawn in the mapping's order, from one generator
    assert np.array_equal(boots["a"], stats.means(strata["a"], 300, rng))
    assert np.array_equal(boots["b"], stats.means(strata["b"], 300, rng))
    assert abs(boots["a"].mean() - 4.5) < 0.3 and abs(boots["b"].mean() - 101.5) < 0.2


# ================================================================================================
# correlations
# ================================================================================================


def _scipy(metric: str, a: np.ndarray, b: np.ndarray) -> float:
    return {"pearson": sp.pearsonr, "spearman": sp.spearmanr, "kendall": sp.kendalltau}[metric](a, b).statistic


@pytest.mark.parametrize("metric", stats.METRICS)
def test_correlations_match_scipy_with_ties_rows_and_resamples(metric: str, monkeypatch: pytest.MonkeyPatch):
    rng = np.random.default_rng(4)
    x = rng.integers(1, 11, size=80).astype(float)  # judge scores: many ties
    y = np.clip(np.round(x / 2 + rng.normal(0, 1, 80)), 1, 5)  # human 1–5
    assert stats.corr(x, y, metric) == pytest.approx(_scipy(metric, x, y), abs=1e-12)
    idx = stats.draw(rng, 80, 25)
    want = [_scipy(metric, x[i], y[i]) for i in idx]
    assert np.allclose(stats.corr_rows(x, y, metric, idx), want, atol=1e-12)
    assert np.allclose(stats.corr_rows(x[idx], y[idx], metric), want, atol=1e-12)  # (B, n) rows
    c = rng.normal(size=(3, 40))  # continuous values; tiny tables force the chunked and the scipy paths
    d = c + rng.normal(size=(3, 40))
    for cells in (10**6, 2000, 100):
        monkeypatch.setattr(stats, "_TABLE_CELLS", cells)
        assert np.allclose(stats.corr_rows(c, d, metric), [_scipy(metric, a, b) for a, b in zip(c, d, strict=True)])


@pytest.mark.parametrize("metric", stats.METRICS)
def test_undefined_correlations_are_nan_with_a_reason(metric: str):
    assert math.isnan(stats.corr([3, 3, 3], [1, 2, 3], metric))
    assert math.isnan(stats.corr([1, 2, 3], [2, 2, 2], metric))
    assert math.isnan(stats.corr([1.0], [2.0], metric))
    rows = stats.corr_rows(np.array([[1, 2, 3], [4, 4, 4]]), np.array([[1, 2, 4], [1, 2, 3]]), metric)
    assert rows[0] == pytest.approx(_scipy(metric, np.array([1, 2, 3]), np.array([1, 2, 4]))) and math.isnan(rows[1])
    assert stats.undefined_reason([1], [2]) == "fewer than 2 judged rows"
    assert stats.undefined_reason([3, 3], [1, 2]) == "judge scores are constant"
    assert stats.undefined_reason([1, 2], [5, 5]) == "human scores are constant"
    assert stats.undefined_reason([1, 2], [1, 2]) is None
    with pytest.raises(ValueError, match="unknown metric"):
        stats.corr([1, 2], [1, 2], "tau")


# ================================================================================================
# rounding and formatting
# ================================================================================================


@pytest.mark.parametrize("metric", ["pearson", "spearman"])
def test_correlations_of_groups_of_different_sizes_match_scipy_on_each(metric: str):
    """corr_groups (a cluster bootstrap's resamples laid end to end) gives, per group, scipy's coefficient of
    that group alone, ties included; a group of fewer than 3 rows or a constant one is NaN."""
    rng = np.random.default_rng(7)
    sizes = [2, 3, 9, 25, 4, 12]
    groups = np.repeat(np.arange(len(sizes)), sizes)
    x = rng.integers(0, 4, groups.size).astype(float)  # few values: many ties
    y = x + rng.integers(0, 3, groups.size)
    x[groups == 4] = 1.0  # a constant group
    order = rng.permutation(groups.size)  # rows of a group need not be adjacent
    got = stats.corr_groups(x[order], y[order], groups[order], len(sizes), metric)
    ref = sp.pearsonr if metric == "pearson" else sp.spearmanr
    for k in range(len(sizes)):
        if sizes[k] < 3 or k == 4:
            assert math.isnan(got[k])
        else:
            assert got[k] == pytest.approx(ref(x[groups == k], y[groups == k]).statistic, abs=1e-12)


def test_missing_values_print_as_a_dash_never_nan():
    for bad in (None, math.nan, math.inf, -math.inf, np.float64("nan"), "7.5"):
        assert fmt.num(bad) == fmt.signed(bad) == fmt.pct(bad) == fmt.score(bad) == fmt.pm(bad) == "—"
        assert fmt.p_value(bad) == "—" and fmt.rnd(bad) is None
    assert fmt.num(None, 3, "undefined") == "undefined"
    assert fmt.ci(None) == fmt.ci([]) == "" and fmt.rnd_ci(None) is None
    assert fmt.pm(12.34, None) == "12.3" and fmt.pm(12.34, math.nan) == "12.3"


def test_negatives_and_negative_zero():
    assert fmt.num(-1.255) == "-1.25" and fmt.signed(-1.5) == "-1.50" and fmt.signed(0.25) == "+0.25"
    assert fmt.num(-0.001) == "0.00" and fmt.signed(-0.004) == "+0.00" and fmt.pct(-0.0001) == "0%"
    assert fmt.num(-0.0) == "0.00" and fmt.num(-0.006) == "-0.01"
    assert fmt.ci([-0.123, 0.456], sep="…", sign=True) == "-0.12…+0.46"
    assert fmt.ci((1.0, 2.5)) == "1.00–2.50" and fmt.ci([1, 2], 1, " … ") == "1.0 … 2.0"
    assert fmt.score(7.0) == "7" and fmt.score(6.5) == "6.5" and fmt.score(np.int64(3)) == "3"


def test_halves_round_like_the_json_figures():
    # exact binary halves go to even; decimal "halves" that are not exact go where their binary value lies
    assert fmt.num(0.125) == "0.12" and fmt.num(0.375) == "0.38" and fmt.num(2.5, 0) == "2"
    assert fmt.num(2.675) == "2.67"  # 2.675 is 2.67499999… in binary
    assert fmt.rnd(0.125, 2) == 0.12 and fmt.rnd(2.675, 2) == 2.67 and fmt.rnd(np.float32(0.5), 0) == 0.0
    rng = np.random.default_rng(0)
    for v in np.round(rng.uniform(-5, 5, 2000), 3).tolist() + [k / 8 for k in range(-40, 40)]:
        assert float(fmt.num(v)) == fmt.rnd(v, 2)  # the display and the JSON figure agree
    assert fmt.pct(0.125) == "12%" and fmt.pct(0.5, 1) == "50.0%" and fmt.pct(0.955) == format(0.955, ".0%")
    assert fmt.pm(12.34, 1.26) == "12.3 ± 1.3" and fmt.rnd_ci((0.123456, 0.98765)) == [0.1235, 0.9877]
    assert [fmt.p_value(p) for p in (0.0004, 0.001, 0.0456, 0.1, 0.5)] == ["<0.001", "0.001", "0.046", "0.10", "0.50"]


def test_a_figure_registered_once_is_shown_by_terminal_report_and_viewer(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch):
    path = make_run(tmp_path / "run", "model-a")
    extra = fmt.Figure("bootstrap.resamples", "自助重抽样次数", "bootstrap resamples", "count")
    monkeypatch.setattr(fmt, "FIGURES", (*fmt.FIGURES, extra))
    run = load_run(path)
    assert fmt.figures(run.summary.model_dump(mode="json")) == [("bootstrap resamples", "2000")]
    out = io.StringIO()
    print_summary(run.summary, load_rubric("alignbench"), Console(file=out, width=200, color_system=None))
    assert "bootstrap resamples: 2000" in out.getvalue()
    zh, _ = build_report([load_run(path)], lang="zh", charts=False, audit=False)
    en, _ = build_report([load_run(path)], lang="en", charts=False, audit=False)
    assert "自助重抽样次数 2000" in zh and "bootstrap resamples 2000" in en
    data = load_view([path])
    assert "<tr><th>bootstrap resamples</th><td>2000</td></tr>" in Pages(data).run_page(data.runs[0])
    monkeypatch.setattr(fmt, "FIGURES", ())
    assert "bootstrap resamples" not in Pages(data).run_page(data.runs[0])


def test_an_audit_figure_is_listed_by_terminal_and_report():
    stats_ = PositionStats(4, 8, 0.5, None, 0.25, None, 0.25, None)
    audit = BiasAudit(judge="openai:gpt-4o", runs=["model-a"], position=PositionBias(stats_, {}, n_failed=3))
    out = io.StringIO()
    print_audit(audit, Console(file=out, width=200, color_system=None))
    assert "pairs left out of the position audit (an order failed): 3" in out.getvalue()
    assert "position (4 pairs): first-position win rate 0.50, flip rate 25.0%" in out.getvalue()
    en, zh = _audit_block(audit, STRINGS["en"], False), _audit_block(audit, STRINGS["zh"], True)
    assert any("an order failed): 3" in line for line in en["lines"])
    assert any("位置审计略去的成对比较（某一顺序失败）：3" in line for line in zh["lines"])


# ================================================================================================
# one copy
# ================================================================================================

# What only alignbench/stats/ may do: percentile intervals, resample draws, correlations (anywhere in the
# package), and number formats in the three views (terminal, Markdown report, viewer).
FORBIDDEN = {
    "a percentile interval": re.compile(r"\b(?:np\.)?(?:percentile|quantile|nanquantile|nanpercentile)\("),
    "a resample draw": re.compile(r"\brng\.(?:integers|choice)\("),
    "a correlation": re.compile(r"\b(?:kendalltau|spearmanr|pearsonr|rankdata|corrcoef)\b"),
}
NUMBER_FORMAT = re.compile(r"\{[^{}:]+:\+?\.\d[f%]\}|def (?:_?fmt\w*|_num|_pct|_share|_pm|_ci\w*|f2|fci|fscore|pct|signed)\(")
VIEWS = ("reporting/terminal.py", "reporting/markdown.py", "view/")
ALLOWED = {  # (file, kind): why it stays
    ("reporting/compare.py", "a resample draw"): "random sign bits of the permutation test, not a resample",
    ("view/reviews.py", "a number format"): "the review summary line; reviews move out of view/ (issue 21 part 2)",
}


def test_no_second_copy_of_a_statistic_or_a_formatter_outside_stats():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("stats/"):
            continue
        text = path.read_text(encoding="utf-8")
        checks = dict(FORBIDDEN, **({"a number format": NUMBER_FORMAT} if rel.startswith(VIEWS) else {}))
        for kind, pattern in checks.items():
            if (rel, kind) not in ALLOWED:
                found += [f"{rel}:{text.count(chr(10), 0, m.start()) + 1}: {kind}: {m.group(0)}"
                          for m in pattern.finditer(text)]
    templates = sorted((PACKAGE / "view" / "templates").glob("*.html")) + [PACKAGE / "reporting/templates/report.md.j2"]
    for path in templates:
        found += [f"{path.name}: a number format in a template: {m.group(0)}"
                  for m in re.finditer(r"\|\s*format\b|%\.\d+f|\.format\(", path.read_text(encoding="utf-8"))]
    assert not found, "\n".join(found)
