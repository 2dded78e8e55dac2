"""Krippendorff's α between judges (or any raters) with a bootstrap CI over the rated units.

Why α and not only the ensemble's MAD and Spearman ρ: those are per judge pair and say nothing about
chance; α is one chance-corrected coefficient for any number of judges, tolerates a judge missing a
unit (a failed judgment), and is the figure reliability literature (and inspect_ai) reports. Two
metrics: ``interval`` (a 3-vs-5 disagreement weighs four times a 3-vs-4 one) and ``ordinal``
(differences weigh by how many pooled scores lie between them, so only the order of scores counts).

Computed from the coincidence matrix (Krippendorff, *Computing Krippendorff's alpha-reliability*,
2011): each unit with m ≥ 2 scores adds every ordered pair of its scores with weight 1/(m − 1);
α = 1 − (n − 1)·Σ o_ck δ²_ck / Σ n_c n_k δ²_ck. A bootstrap resample draws units with replacement
(``stats.draw``) and recomputes α from the resampled coincidences, so the ordinal metric's δ (which
depends on the pooled distribution) is recomputed per resample too. Checked against Krippendorff's
published worked example and the ``krippendorff`` package in tests/test_agreement.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from alignbench.stats import draw, percentile_ci
from alignbench.stats.fmt import rnd

Level = Literal["interval", "ordinal"]
LEVELS: tuple[Level, ...] = ("interval", "ordinal")
_CHUNK_CELLS = 2_000_000  # resamples × values² per chunk of the bootstrap (~16 MB)


def _coincidences(ratings: Any) -> tuple[np.ndarray, np.ndarray]:
    """(values, per-unit coincidence matrices flattened: units × values²) of the pairable units of a
    units × raters array (NaN = not rated)."""
    r = np.asarray(ratings, dtype=float)
    if r.ndim != 2:
        raise ValueError("ratings must be a units × raters array")
    r = r[np.isfinite(r).sum(axis=1) >= 2]
    values = np.unique(r[np.isfinite(r)])
    v = len(values)
    per_unit = np.zeros((len(r), v * v))
    for u, row in enumerate(r):
        codes = np.searchsorted(values, row[np.isfinite(row)])
        counts = np.bincount(codes, minlength=v).astype(float)
        o = np.outer(counts, counts)
        o[np.diag_indices(v)] -= counts  # ordered pairs of different raters only
        per_unit[u] = (o / (len(codes) - 1)).ravel()
    return values, per_unit


def _alpha_rows(o: np.ndarray, values: np.ndarray, level: Level) -> np.ndarray:
    """α of each row of coincidence matrices (rows × v × v); NaN where there is no expected disagreement."""
    nc = o.sum(axis=2)
    n = nc.sum(axis=1)
    if level == "interval":
        delta = np.broadcast_to((values[:, None] - values[None, :]) ** 2, o.shape)
    elif level == "ordinal":
        cum = np.cumsum(nc, axis=1)  # Σ_{g ≤ c} n_g
        # for c ≤ k: Σ_{g=c}^{k} n_g − (n_c + n_k)/2 = cum_k − cum_c + n_c/2 − n_k/2; symmetric
        d = cum[:, None, :] - cum[:, :, None] + nc[:, :, None] / 2 - nc[:, None, :] / 2
        delta = d ** 2
    else:
        raise ValueError(f"unknown level {level!r}")
    observed = (o * delta).sum(axis=(1, 2))
    expected = (nc[:, :, None] * nc[:, None, :] * delta).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(expected > 0, 1 - (n - 1) * observed / np.where(expected > 0, expected, 1), np.nan)


def alpha(ratings: Any, level: Level = "interval") -> float:
    """Krippendorff's α of a units × raters array (NaN where a rater did not rate a unit); NaN when
    undefined (fewer than two pairable units' worth of variation: every score the same)."""
    values, per_unit = _coincidences(ratings)
    if not len(per_unit):
        return float("nan")
    v = len(values)
    return float(_alpha_rows(per_unit.sum(axis=0).reshape(1, v, v), values, level)[0])


def alpha_samples(ratings: Any, level: Level, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """α of ``n_boot`` resamples of the pairable units (drawn with ``stats.draw``)."""
    values, per_unit = _coincidences(ratings)
    u, v = per_unit.shape[0], len(values)
    if u < 2 or n_boot < 1:
        return np.full(max(n_boot, 0), np.nan)
    idx = draw(rng, u, n_boot)
    step = max(1, _CHUNK_CELLS // max(1, v * v))
    out = []
    for s in range(0, n_boot, step):
        rows = idx[s:s + step]
        weights = np.zeros((len(rows), u))
        np.add.at(weights, (np.arange(len(rows))[:, None], rows), 1.0)
        out.append(_alpha_rows((weights @ per_unit).reshape(len(rows), v, v), values, level))
    return np.concatenate(out)


def agreement(ratings: Any, n_boot: int = 1000, seed: int = 0,
              levels: Sequence[Level] = LEVELS) -> dict[str, Any]:
    """α per level with its 95% percentile CI over resampled units, and how many units were pairable.
    ``None`` where undefined (said in ``undefined``)."""
    r = np.asarray(ratings, dtype=float)
    pairable = int((np.isfinite(r).sum(axis=1) >= 2).sum()) if r.ndim == 2 and r.size else 0
    out: dict[str, Any] = {"n_units": pairable}
    for level in levels:
        point = alpha(r, level) if pairable >= 2 else float("nan")
        if not np.isfinite(point):
            out[level] = {"alpha": None, "ci": None,
                          "undefined": "fewer than 2 units rated by 2 judges" if pairable < 2
                          else "every score is the same"}
            continue
        ci = percentile_ci(alpha_samples(r, level, n_boot, np.random.default_rng(seed)))
        out[level] = {"alpha": rnd(point, 4), "ci": [rnd(ci[0], 4), rnd(ci[1], 4)] if ci else None}
    return out
