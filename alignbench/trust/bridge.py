"""``fit_bridge`` / ``apply_bridge``: a monotone (isotonic) map from one judge's scale to another's, fitted
on the same answers judged by both, so runs scored by a retired judge can be put on the new judge's scale;
``Bridge`` round-trips through a versioned JSON dict."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np

from alignbench import stats
from alignbench.rubrics import Rubric
from alignbench.stats.fmt import finite as _f
from alignbench.trust.base import Kind, _AsDict, _clean, _ok_overall, _one_per_answer, _weighted_scores
from alignbench.types import Judgment

BRIDGE_FORMAT = "alignbench-bridge"
BRIDGE_VERSION = 1


def _mostly(values: Iterable[str]) -> str:
    """The single value, or every distinct value joined (sorted) when there are several."""
    distinct = sorted(set(values))
    return distinct[0] if len(distinct) == 1 else ",".join(distinct)


class Bridge(_AsDict):
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
        try:  # pydantic converts each field; a malformed one is a ValidationError (a ValueError)
            old, new, knots, band = data["old"], data["new"], data["knots"], data["band"]
            bridge = cls(old_judge=old["judge"], new_judge=new["judge"], old_rubric=old["rubric"], new_rubric=new["rubric"],
                         old_scale=old["scale"], new_scale=new["scale"], knots_old=knots["old"], knots_new=knots["new"],
                         band_x=band["x"], band_lo=band["lo"], band_hi=band["hi"], level=band["level"],
                         n_boot=band["n_boot"], seed=band["seed"], n=data["n"], created=data["created"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"bridge is missing or has a malformed field: {exc}") from None
        ko, kn = bridge.knots_old, bridge.knots_new
        if not ko or len(ko) != len(kn) or np.any(np.diff(ko) < 0) or np.any(np.diff(kn) < -1e-12):
            raise ValueError("bridge knots must be non-empty, of equal length and non-decreasing")
        if not (len(bridge.band_x) == len(bridge.band_lo) == len(bridge.band_hi)):
            raise ValueError("bridge band arrays differ in length")
        return bridge


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
        out = _clean(self.model_dump(), 4)
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
