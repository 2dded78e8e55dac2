"""Krippendorff's α (alignbench.stats.agreement): Krippendorff's own worked example, the independent
``krippendorff`` package on random data with missing ratings, the bootstrap CI, and the α that an
ensemble run and a multi-judge meta-eval report beside their disagreement figures."""

from __future__ import annotations

import krippendorff
import numpy as np
import pytest

from alignbench.stats.agreement import agreement, alpha

NAN = np.nan
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers × 12 units,
# missing values allowed. Published: interval α = 0.849, ordinal α = 0.815.
WORKED = np.array([
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
]).T  # units × raters


def test_alpha_matches_krippendorffs_worked_example() -> None:
    assert alpha(WORKED, "interval") == pytest.approx(0.849, abs=5e-4)
    assert alpha(WORKED, "ordinal") == pytest.approx(0.815, abs=5e-4)


@pytest.mark.parametrize("level", ["interval", "ordinal"])
def test_alpha_matches_the_krippendorff_package(level: str) -> None:
    rng = np.random.default_rng(7)
    for _ in range(5):
        truth = rng.integers(1, 11, size=40).astype(float)
        r = np.clip(truth[:, None] + rng.integers(-2, 3, size=(40, 3)), 1, 10)
        r[rng.random(r.shape) < 0.15] = NAN
        expected = krippendorff.alpha(reliability_data=r.T, level_of_measurement=level)
        assert alpha(r, level) == pytest.approx(expected, abs=1e-9)


def test_agreement_ci_covers_the_estimate_and_says_when_undefined() -> None:
    rng = np.random.default_rng(3)
    truth = rng.integers(1, 11, size=60).astype(float)
    r = np.column_stack([truth, np.clip(truth + rng.integers(-1, 2, size=60), 1, 10)])
    out = agreement(r, n_boot=400, seed=1)
    assert out["n_units"] == 60
    for level in ("interval", "ordinal"):
        lo, hi = out[level]["ci"]
        assert lo < out[level]["alpha"] < hi and lo > 0.5 and hi <= 1
    assert agreement(r, n_boot=400, seed=1) == out  # seeded
    unbooted = agreement(r, n_boot=0)  # --bootstrap 0: the point estimate alone
    assert unbooted["interval"]["alpha"] == out["interval"]["alpha"] and unbooted["interval"]["ci"] is None
    same = agreement(np.full((5, 2), 4.0), n_boot=50)
    assert same["interval"]["alpha"] is None and same["interval"]["undefined"] == "every score is the same"
    one = agreement(np.array([[1.0, NAN], [2.0, 3.0]]), n_boot=50)
    assert one["n_units"] == 1 and one["ordinal"]["undefined"] == "fewer than 2 units rated by 2 judges"
