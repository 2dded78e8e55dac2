"""Benchmark of the joint length-controlled GLM (issue 4 performance targets).

Targets on this machine (2 cores): joint fit + 200-resample bootstrap for 50 models x 683 questions
< 10 s; point estimate for 10 models x 805 questions < 1 s; peak memory < 1 GB. Data is synthetic
(``simulate_preferences``) so the benchmark runs anywhere. Exit status 1 if a target is missed.

Run: ``/work/venv/bin/python benchmarks/bench_glm.py``
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from lc_reference import simulate_preferences  # noqa: E402

from alignbench.pairwise.winrate import bootstrap_lc, fit_joint_glm  # noqa: E402


def _models(n: int, seed: int) -> tuple[dict[str, float], dict[str, float]]:
    """n models with strengths spread over [-2, 2]; every fifth writes 2-3x more, every seventh less."""
    rng = np.random.default_rng(seed)
    betas = {f"model_{i:02d}": float(b) for i, b in enumerate(np.linspace(-2.0, 2.0, n))}
    lengths = {}
    for i, name in enumerate(betas):
        if i % 5 == 0:
            lengths[name] = float(rng.uniform(2.0, 3.0))
        elif i % 7 == 0:
            lengths[name] = float(rng.uniform(0.3, 0.6))
    return betas, lengths


def main() -> int:
    ok = True

    betas, lengths = _models(50, seed=0)
    df50, _ = simulate_preferences(betas, n_questions=683, length_factor=lengths, outcome="ternary", seed=0)
    start = time.perf_counter()
    point = fit_joint_glm(df50)
    t_point50 = time.perf_counter() - start
    boot = bootstrap_lc(df50, n_boot=200, seed=0, point=point)
    t_total50 = time.perf_counter() - start
    se = np.array(list(boot.lc_standard_error.values()))
    hit = t_total50 < 10.0
    ok &= hit
    print(
        f"50 models x 683 questions ({len(df50)} rows): point {t_point50:.2f} s ({point.n_iter} iterations), "
        f"point + 200 bootstrap {t_total50:.2f} s [target < 10 s: {'ok' if hit else 'MISSED'}]; "
        f"LC SE median {np.median(se):.2f} pts"
    )

    betas, lengths = _models(10, seed=1)
    df10, _ = simulate_preferences(betas, n_questions=805, length_factor=lengths, outcome="soft", seed=1)
    fit_joint_glm(df10)  # first call pays one-off costs (threadpool discovery); time a repeat
    start = time.perf_counter()
    fit10 = fit_joint_glm(df10)
    t_point10 = time.perf_counter() - start
    hit = t_point10 < 1.0
    ok &= hit
    print(
        f"10 models x 805 questions ({len(df10)} rows): point {t_point10:.3f} s ({fit10.n_iter} iterations) "
        f"[target < 1 s: {'ok' if hit else 'MISSED'}]"
    )

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    hit = peak_mb < 1024
    ok &= hit
    print(f"peak RSS of the whole process {peak_mb:.0f} MB [target < 1024 MB: {'ok' if hit else 'MISSED'}]")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
