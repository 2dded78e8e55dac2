"""The statistics every module uses, written once: bootstrap resamples and percentile intervals
(AlignBench's stratified bootstrap included) and Pearson, Spearman and Kendall τ-b, each vectorised over
resamples, so a CI or a correlation means the same in ``summary.json``, meta-eval, comparisons and the
trust audits. ``draw`` is the one way to draw resample indices, so a seed gives the same resamples
wherever it is used. scipy has no row-vectorised τ-b and its ``pearsonr(axis=...)`` computes p-values we
do not need, so the kernels are here, tested against ``scipy.stats`` (tests/test_stats.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from alignbench.rubrics import Rubric

Kind = Literal["overall", "group", "category"]
METRICS = ("pearson", "spearman", "kendall")
_TABLE_CELLS = 4_000_000  # contingency-table cells per chunk of τ-b rows (~32 MB)


def group_weights(categories: Sequence[str], group_of: Mapping[str, str]) -> dict[str, float]:
    """AlignBench weights of the given categories: each group present weighs 1/(number of groups
    present), shared equally by its categories present. All 8 categories → 1/4 for each reasoning
    category, 1/12 for each language category (the official overall formula)."""
    groups = Counter(group_of[c] for c in categories)  # in order of first appearance
    return {c: 1.0 / len(groups) / n for g, n in groups.items() for c in categories if group_of[c] == g}


def question_weights(strata: Sequence[str], stratum_weights: Mapping[str, float]) -> np.ndarray:
    """Per-question coefficients a_i = W_c / n_c, so that Σ a_i d_i = Σ_c W_c · mean_c(d)."""
    counts = Counter(strata)
    return np.array([stratum_weights[s] / counts[s] for s in strata], dtype=float)


def score_units(rubric: Rubric, present: Sequence[str]) -> list[tuple[str, Kind, str, str, dict[str, float]]]:
    """(key, kind, name, en, weights over categories) of every AlignBench score of the categories
    present, in display order: overall, then each group followed by its categories."""
    units: list[tuple[str, Kind, str, str, dict[str, float]]] = []
    if present:
        units.append(("overall", "overall", "总分", "Overall",
                      group_weights(present, {c.name: c.group for c in rubric.categories})))
    for gid, group in rubric.groups.items():
        members = [c for c in rubric.category_names(gid) if c in present]
        if members:
            units.append((gid, "group", group.name, group.en, {c: 1.0 / len(members) for c in members}))
            units += [(c, "category", c, getattr(rubric.category(c), "en", c), {c: 1.0}) for c in members]
    return units


def draw(rng: np.random.Generator, n: int, n_boot: int | None = None) -> np.ndarray:
    """Indices of bootstrap resamples of ``n`` items: shape (n_boot, n), or one resample (n,) when
    ``n_boot`` is None (for loops that refit per resample; the generator's stream is the same)."""
    return rng.integers(0, n, size=n if n_boot is None else (n_boot, n))


def means(values: Any, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """The mean of each of ``n_boot`` resamples of ``values`` (rows of a 2-D array are resampled whole)."""
    v = np.asarray(values, dtype=float)
    picked = v[draw(rng, len(v), n_boot)]
    return picked.mean(axis=tuple(range(1, picked.ndim)))


def stratified_means(strata: Mapping[Any, Any], n_boot: int, rng: np.random.Generator) -> dict[Any, np.ndarray]:
    """Per stratum, the means of ``n_boot`` resamples drawn within it (strata in the mapping's order).
    Any weighting of strata (AlignBench's category and group weights) is then a sum of these arrays,
    so every resample goes through the same formula as the point estimate."""
    return {k: means(v, n_boot, rng) for k, v in strata.items()}


def percentile_ci(samples: Any, level: float = 0.95) -> tuple[float, float] | None:
    """Percentile interval of the defined (finite) resampled statistics; None when fewer than two, or
    fewer than half of them, are defined (then the interval would describe the few defined cases only)."""
    s = np.asarray(samples, dtype=float)
    good = s[np.isfinite(s)]
    if len(good) < 2 or len(good) < len(s) / 2:
        return None
    alpha = (1 - level) / 2
    lo, hi = np.quantile(good, [alpha, 1 - alpha])
    return float(lo), float(hi)


def undefined_reason(judge: Sequence[float], human: Sequence[float]) -> str | None:
    """Why a correlation cannot be computed on these paired scores, or None when it can."""
    if len(judge) < 2:
        return "fewer than 2 judged rows"
    if np.ptp(np.asarray(judge, dtype=float)) == 0:
        return "judge scores are constant"
    if np.ptp(np.asarray(human, dtype=float)) == 0:
        return "human scores are constant"
    return None


def _pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of each row pair of two (B, n) arrays; NaN where a row is (numerically) constant."""
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    den = np.sqrt((xc * xc).sum(axis=1) * (yc * yc).sum(axis=1))
    num = (xc * yc).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(den > 1e-12 * np.maximum(1.0, np.abs(num)), num / np.where(den == 0, 1, den), np.nan)
    return np.clip(r, -1.0, 1.0)


def _ranks(a: np.ndarray) -> np.ndarray:
    """Average ranks (ties share the mean of their positions, 1-based) within each row. One row (the
    loops of the audits call this thousands of times) by ``np.unique``, ~2× faster than scipy's
    ``rankdata``, which ranks the bootstrap's many rows (the same values: exact halves)."""
    if a.shape[0] == 1:
        _, inv, cnt = np.unique(a[0], return_inverse=True, return_counts=True)
        ends = np.cumsum(cnt)
        return ((ends - cnt + 1 + ends) / 2.0)[inv.reshape(-1)][None]
    from scipy.stats import rankdata  # imported here: scipy.stats costs ~1.5 s at CLI start-up

    return rankdata(a, axis=1)


def _kendall(cx: np.ndarray, cy: np.ndarray, k: int, m: int) -> np.ndarray:
    """τ-b of each row of integer codes (values 0..k-1 and 0..m-1) from its k × m contingency table:
    (P − Q)/sqrt((n0 − n1)(n0 − n2)), P/Q the concordant/discordant pairs, n1/n2 the pairs tied in x/y.
    Judge and human scores take few distinct values, so a table costs O(k·m), not O(n²) pairs."""
    b = cx.shape[0]
    codes = (cx * m + cy) + (np.arange(b) * k * m)[:, None]
    t = np.bincount(codes.ravel(), minlength=b * k * m).reshape(b, k, m).astype(float)
    ge = t[:, ::-1, ::-1].cumsum(axis=1).cumsum(axis=2)[:, ::-1, ::-1]  # Σ_{i' ≥ i, j' ≥ j}
    above = np.zeros_like(t)
    above[:, :-1, :-1] = ge[:, 1:, 1:]
    left = t[:, ::-1, :].cumsum(axis=1)[:, ::-1, :].cumsum(axis=2)  # Σ_{i' ≥ i, j' ≤ j}
    below = np.zeros_like(t)
    below[:, :-1, 1:] = left[:, 1:, :-1]
    p, q = (t * above).sum(axis=(1, 2)), (t * below).sum(axis=(1, 2))
    n = t.sum(axis=(1, 2))
    n0 = n * (n - 1) / 2
    tx, ty = t.sum(axis=2), t.sum(axis=1)
    den = np.sqrt((n0 - (tx * (tx - 1) / 2).sum(axis=1)) * (n0 - (ty * (ty - 1) / 2).sum(axis=1)))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.clip(np.where(den > 0, (p - q) / np.where(den > 0, den, 1.0), np.nan), -1.0, 1.0)


def _kendall_rows(x: np.ndarray, y: np.ndarray, idx: np.ndarray | None) -> np.ndarray:
    """τ-b per row, in chunks of rows whose tables fit ``_TABLE_CELLS``; rows of many distinct values
    (a table larger than that) go to scipy's O(n log n) ``kendalltau`` one by one."""
    ux, cx = np.unique(x, return_inverse=True)
    uy, cy = np.unique(y, return_inverse=True)
    cx, cy = cx.reshape(x.shape), cy.reshape(y.shape)
    if idx is not None:
        cx, cy = cx[idx], cy[idx]
    elif cx.ndim == 1:
        cx, cy = cx[None], cy[None]
    k, m = ux.size, uy.size
    if k * m > _TABLE_CELLS:
        from scipy.stats import kendalltau

        return np.array([kendalltau(a, b).statistic if np.ptp(a) and np.ptp(b) else np.nan
                         for a, b in zip(cx, cy, strict=True)])
    step = max(1, _TABLE_CELLS // (k * m))
    return np.concatenate([_kendall(cx[s:s + step], cy[s:s + step], k, m) for s in range(0, cx.shape[0], step)])


def corr_rows(x: Any, y: Any, metric: str, idx: np.ndarray | None = None) -> np.ndarray:
    """One correlation per row: of two (B, n) arrays, or of each resample ``x[idx[b]], y[idx[b]]`` of
    two samples when ``idx`` (B, n) is given (a 1-D sample without ``idx`` is one row). NaN where
    undefined. ``metric``: pearson, spearman (Pearson of average ranks) or kendall (τ-b, ties adjusted)."""
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if metric == "kendall":
        return _kendall_rows(xa, ya, idx)
    if idx is not None:
        xa, ya = xa[idx], ya[idx]
    elif xa.ndim == 1:
        xa, ya = xa[None], ya[None]
    if metric == "pearson":
        return _pearson(xa, ya)
    if metric == "spearman":
        return _pearson(_ranks(xa), _ranks(ya))
    raise ValueError(f"unknown metric {metric!r}")


def group_sums(groups: np.ndarray, n_groups: int, *values: np.ndarray) -> list[np.ndarray]:
    """Σ of each of ``values`` within each group (flat arrays; ``groups`` the group of each element)."""
    return [np.bincount(groups, weights=v, minlength=n_groups) for v in values]


def _ranks_within(v: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Average ranks (1-based, ties share the mean of their positions) of ``v`` within each group."""
    order = np.lexsort((v, groups))
    gs, vs = groups[order], v[order]
    starts = np.searchsorted(gs, np.arange(n_groups))
    new = np.ones(v.size, dtype=bool)
    new[1:] = (gs[1:] != gs[:-1]) | (vs[1:] != vs[:-1])
    run = np.cumsum(new) - 1
    first = np.flatnonzero(new)
    length = np.diff(np.append(first, v.size))
    avg = first - starts[gs[first]] + (length + 1) / 2.0
    out = np.empty(v.size)
    out[order] = avg[run]
    return out


def corr_groups(x: Any, y: Any, groups: Any, n_groups: int, metric: str = "spearman") -> np.ndarray:
    """One correlation per group of a flat sample whose groups differ in size: the resamples of a cluster
    bootstrap, where each resample is a different number of rows (questions kept whole). ``metric``: pearson
    or spearman (Pearson of average ranks within the group). NaN where a group has fewer than 3 rows or is
    (numerically) constant, as ``corr_rows`` on each group alone."""
    xa, ya, g = np.asarray(x, dtype=float), np.asarray(y, dtype=float), np.asarray(groups)
    if metric == "spearman":
        xa, ya = _ranks_within(xa, g, n_groups), _ranks_within(ya, g, n_groups)
    elif metric != "pearson":
        raise ValueError(f"corr_groups: metric {metric!r} is not pearson or spearman")
    n, sx, sy = group_sums(g, n_groups, np.ones(xa.size), xa, ya)
    safe = np.maximum(n, 1)
    xc, yc = xa - (sx / safe)[g], ya - (sy / safe)[g]
    sxx, syy, sxy = group_sums(g, n_groups, xc * xc, yc * yc, xc * yc)
    den = np.sqrt(sxx * syy)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where((den > 1e-12 * np.maximum(1.0, np.abs(sxy))) & (n >= 3), sxy / np.where(den == 0, 1, den),
                     np.nan)
    return np.clip(r, -1.0, 1.0)


def corr(x: Any, y: Any, metric: str) -> float:
    """One correlation of two samples (NaN where undefined)."""
    return float(corr_rows(x, y, metric)[0])
