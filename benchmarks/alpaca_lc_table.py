"""Our win rates and LC win rates beside the AlpacaEval 2.0 leaderboard, for the 10 shared annotation files.

Columns (percent):
  WR lb / WR ours     plain win rate: leaderboard vs ours (must agree to 0.01)
  LC lb               leaderboard LC win rate (per-model GLM, official difficulties, gamed-baseline rows)
  LC pub.w            the published per-model weights applied to our *reconstructed* difficulty file:
                      isolates the error of that reconstruction
  LC per-model        our AlpacaEval-style per-model refit (reconstructed difficulties, no gamed rows)
  LC joint ± SE       our joint GLM (default: shared slope + shrunk per-model deviations) with bootstrap SE
  LC shared           our joint GLM with one slope for all models (theta_penalty=None)
  θ pub / θ m / θ j   length slopes: published (sign flipped to ours), per-model refit, joint (θ + δ_m)

Run: ``/work/venv/bin/python benchmarks/alpaca_lc_table.py [--alpaca-dir DIR] [--n-boot N]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from lc_reference import difficulty_by_question, fit_per_model_glm, read_instruction_difficulty  # noqa: E402

from alignbench.pairwise.alpaca import read_alpaca_annotations  # noqa: E402
from alignbench.pairwise.winrate import bootstrap_lc, fit_joint_glm, lc_disagreement_warning, plain_winrates  # noqa: E402

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "alpaca_eval"
WEIGHTS = "glm_weights_length_controlled_v1_baseline_gpt4_1106_preview.csv"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--alpaca-dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--n-boot", type=int, default=200)
    args = parser.parse_args(argv)
    base = args.alpaca_dir

    files = sorted((base / "annotations").glob("*.json"))
    if not files:
        print(f"no annotation files under {base / 'annotations'}", file=sys.stderr)
        return 2
    df = read_alpaca_annotations(files, model_name="file")  # NullModel's generator is "example"
    lb = pd.read_csv(base / "weighted_alpaca_eval_gpt4_turbo_leaderboard.csv", index_col=0)
    weights = pd.read_csv(base / WEIGHTS, index_col=0)
    d_pos = read_instruction_difficulty(base / "instruction_difficulty_reconstructed.csv")
    d_q = difficulty_by_question(df, d_pos)

    start = time.perf_counter()
    plain = plain_winrates(df)
    joint = fit_joint_glm(df)
    boot = bootstrap_lc(df, n_boot=args.n_boot, seed=0, point=joint)
    shared = fit_joint_glm(df, theta_penalty=None)
    per = fit_per_model_glm(df, d_q)
    elapsed = time.perf_counter() - start

    d_vec = d_pos.sort_index().to_numpy()
    header = (
        f"{'model':32s} {'len':>5s} {'WR lb':>6s} {'WR ours':>7s} {'LC lb':>6s} {'LC pub.w':>8s} "
        f"{'LC per-model':>12s} {'LC joint ± SE':>14s} {'LC shared':>9s} {'θ pub':>6s} {'θ m':>6s} {'θ j':>6s}"
    )
    print(header)
    print("-" * len(header))
    order = sorted(plain, key=lambda m: -lb.loc[m, "length_controlled_winrate"])
    warnings = []
    for m in order:
        row = lb.loc[m]
        theta_pub, gamma_pub, beta_pub = weights.loc[m].to_numpy(dtype=float)
        lc_pub = 100.0 * float(expit(gamma_pub * d_vec + beta_pub).mean())
        lc_j = joint.lc_win_rate[m]
        print(
            f"{m:32s} {int(plain[m].avg_length):5d} {row['win_rate']:6.2f} {plain[m].win_rate:7.2f} "
            f"{row['length_controlled_winrate']:6.2f} {lc_pub:8.2f} {per[m].lc_win_rate:12.2f} "
            f"{lc_j:7.2f} ± {boot.lc_standard_error[m]:4.2f} {shared.lc_win_rate[m]:9.2f} "
            f"{-theta_pub:6.2f} {per[m].theta:6.2f} {joint.theta_by_model[m]:6.2f}"
        )
        msg = lc_disagreement_warning(plain[m].win_rate, lc_j)
        if msg:
            warnings.append(f"{m}: {msg}")
    print()
    print(
        f"joint fit: shared θ = {joint.theta:.3f}, σ(Δlen) = {joint.sigma:.0f} chars, "
        f"difficulty sd = {np.std(list(joint.difficulty.values())):.2f}, penalties {joint.penalties}"
    )
    print(f"shared-slope fit: θ = {shared.theta:.3f}")
    print(f"all fits + {args.n_boot} bootstrap resamples: {elapsed:.1f} s")
    for w in warnings:
        print(f"warning: {w}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
