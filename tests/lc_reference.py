"""Reference fits used only by the tests and benchmarks: AlpacaEval's per-model length-controlled GLM
(to compare our joint fit with), its instruction-difficulty file, and a simulator of pairwise
preferences with known strengths. Kept out of the package: no command uses them."""

from __future__ import annotations

import math
import os
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit

from alignbench.pairwise.winrate import REQUIRED_COLUMNS, _failed_counts, _single_baseline, _spread, _validate  # noqa: F401

# --------------------------------------------------------------------------------------------------
# AlpacaEval-style per-model GLM (comparison only)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PerModelGLM:
    """One model's AlpacaEval-style fit: logit = θ·tanh(s) + γ·d_i + β.

    Sign convention is ours (s = model minus baseline, so θ > 0 when the judge likes length);
    AlpacaEval's published θ has the opposite sign. ``lc_standard_error`` follows AlpacaEval: the SEM
    of the per-question LC predictions (spread over questions, not fit uncertainty).
    """

    model: str
    baseline: str
    theta: float
    gamma: float
    beta: float
    lc_win_rate: float
    lc_standard_error: float
    n: int
    sigma: float


def fit_per_model_glm(
    df: pd.DataFrame, difficulty: Mapping[Hashable, float] | pd.Series, *, l2: float = 0.01
) -> dict[str, PerModelGLM]:
    """Fit AlpacaEval's ``length_controlled_v1`` form separately for each model (for comparison).

    Each model gets its own θ_m (on tanh of its Δlen divided by *its own* std), a multiplier γ_m on a
    fixed per-question difficulty d_i (``difficulty``, e.g. read from a file, keyed by question_id),
    and a bias β_m. Unlike AlpacaEval there are no gamed-baseline rows (we do not have them) and the
    L1 cross-validated penalty is replaced by a small fixed L2 on the summed loss, which only guards
    against separation. This exists to explain differences between our joint LC win rates and the
    leaderboard's, not as a recommended estimator: for very short or adversarial models θ_m and β_m
    are nearly collinear and the LC value is poorly determined.
    """
    _validate(df)
    diff = pd.Series(difficulty, dtype=float) if not isinstance(difficulty, pd.Series) else difficulty
    out: dict[str, PerModelGLM] = {}
    for model, g in df[df["preference"].notna()].groupby("model", sort=False):
        baseline = _single_baseline(g)
        d = g["question_id"].map(diff).to_numpy(dtype=float)
        if np.isnan(d).any():
            raise ValueError(f"{int(np.isnan(d).sum())} question(s) of {model!r} have no difficulty value")
        delta = g["len_model"].to_numpy(dtype=float) - g["len_baseline"].to_numpy(dtype=float)
        sigma = _spread(delta)
        t = np.tanh(delta / sigma)
        y = g["preference"].to_numpy(dtype=float)
        design = np.column_stack([t, d, np.ones_like(d)])

        def fun(w: np.ndarray, design: np.ndarray = design, y: np.ndarray = y) -> tuple[float, np.ndarray]:
            eta = design @ w
            loss = float((np.logaddexp(0.0, eta) - y * eta).sum()) + 0.5 * l2 * float(w @ w)
            return loss, design.T @ (expit(eta) - y) + l2 * w

        res = minimize(fun, np.zeros(3), jac=True, method="L-BFGS-B", options={"ftol": 1e-14, "gtol": 1e-9})
        theta, gamma, beta = (float(v) for v in res.x)
        pred = expit(gamma * d + beta)
        sem = float(pred.std(ddof=1)) / math.sqrt(pred.size) if pred.size > 1 else math.nan
        out[str(model)] = PerModelGLM(
            model=str(model),
            baseline=baseline,
            theta=theta,
            gamma=gamma,
            beta=beta,
            lc_win_rate=100.0 * float(pred.mean()),
            lc_standard_error=100.0 * sem,
            n=int(y.size),
            sigma=sigma,
        )
    return out


# --------------------------------------------------------------------------------------------------
# Synthetic data (tests and benchmarks)
# --------------------------------------------------------------------------------------------------


def simulate_preferences(
    betas: Mapping[str, float],
    *,
    n_questions: int = 683,
    theta: float = 1.0,
    difficulty_sd: float = 1.0,
    length_factor: Mapping[str, float] | None = None,
    length_noise: float = 0.4,
    outcome: Literal["prob", "soft", "binary", "ternary"] = "soft",
    baseline: str = "baseline",
    seed: int = 0,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Draw a preference table from the joint GLM itself, with known parameters.

    Baseline answers get log-normal lengths (median 300 words); model m writes ``length_factor[m]``
    times as much (times log-normal noise). Then, with σ computed from the simulated Δlen exactly as
    the fit computes it, P(win) = σ(θ·tanh(Δlen/σ) + d_i + β_m). ``outcome`` turns P into a
    preference: ``prob`` = P itself, ``soft`` = a Beta draw around P (a judge's soft verdict),
    ``binary`` = one Bernoulli verdict, ``ternary`` = mean of two Bernoulli verdicts (a pair judged
    in both orders: 0, 0.5 or 1). Returns the table and the truth, including the true LC win rates
    100·mean_i σ(d_i + β_m) — what a perfect estimator would report.
    """
    rng = np.random.default_rng(seed)
    models = list(betas)
    factors = {m: 1.0 for m in models} | dict(length_factor or {})
    d = rng.normal(0.0, difficulty_sd, n_questions)
    len_base = np.exp(rng.normal(math.log(300.0), 0.5, n_questions))
    m_idx = np.repeat(np.arange(len(models)), n_questions)
    q_idx = np.tile(np.arange(n_questions), len(models))
    f = np.array([factors[m] for m in models])[m_idx]
    len_model = len_base[q_idx] * f * np.exp(rng.normal(0.0, length_noise, m_idx.size))
    len_model = np.round(len_model)
    len_b = np.round(len_base[q_idx])
    sigma = _spread(len_model - len_b)
    beta = np.array([betas[m] for m in models])
    p = expit(theta * np.tanh((len_model - len_b) / sigma) + d[q_idx] + beta[m_idx])
    if outcome == "prob":
        y = p
    elif outcome == "soft":
        kappa = 20.0
        y = rng.beta(np.maximum(p * kappa, 1e-3), np.maximum((1 - p) * kappa, 1e-3))
    elif outcome == "binary":
        y = (rng.random(p.size) < p).astype(float)
    elif outcome == "ternary":
        y = ((rng.random(p.size) < p).astype(float) + (rng.random(p.size) < p).astype(float)) / 2.0
    else:
        raise ValueError(f"unknown outcome {outcome!r}")
    df = pd.DataFrame(
        {
            "model": np.array(models, dtype=object)[m_idx],
            "baseline": baseline,
            "question_id": q_idx,
            "preference": y,
            "len_model": len_model,
            "len_baseline": len_b,
        }
    )
    true_lc = {m: 100.0 * float(expit(d + betas[m]).mean()) for m in models}
    truth = {"theta": theta, "beta": dict(betas), "difficulty": d, "sigma": sigma, "lc_win_rate": true_lc}
    return df, truth


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------




def read_instruction_difficulty(path: str | os.PathLike[str]) -> pd.Series:
    """Read an AlpacaEval ``instruction_difficulty`` CSV (index = row position, one float per row)."""
    frame = pd.read_csv(path, index_col=0)
    if frame.shape[1] != 1:
        raise ValueError(f"{path}: expected one difficulty column, got {list(frame.columns)}")
    return frame.iloc[:, 0].astype(float)


def difficulty_by_question(
    df: pd.DataFrame, difficulty: Mapping[int, float] | pd.Series
) -> dict[Hashable, float]:
    """Re-key a position-indexed difficulty vector by the table's ``question_id`` (via ``position``)."""
    diff = pd.Series(difficulty, dtype=float) if not isinstance(difficulty, pd.Series) else difficulty
    pairs = df.drop_duplicates("question_id")[["question_id", "position"]]
    out: dict[Hashable, float] = {}
    for qid, pos in zip(pairs["question_id"], pairs["position"], strict=True):
        if pos in diff.index:
            out[qid] = float(diff[pos])
    return out
