"""Judge-trust statistics: CI coverage by simulation, run time at AlignBench size, and the numbers on the
real CritiqueLLM human labels.

1. Coverage: a biased, noisy judge (bias differs by category) and humans scoring 1–5 with a known
   distribution per category, so the true human-scale AlignBench score is exact. For each design (labels
   per category, λ fixed at 1 or power-tuned, analytic or bootstrap CI) the share of seeded runs whose
   95% CI covers the truth, the mean CI width, and the mean effective number of labels.
2. Time: ``calibrate``, ``fit_bridge`` (500 band resamples, 200 agreement resamples) and ``length_bias``
   (1000 resamples) on 683 questions × 4 models.
3. Real labels (skipped without ../shared): the 100 human-scored CritiqueLLM answers (1–5) judged by
   the two scripted judges of tests/scripted_judge.py; half the labels used, the other half held out.

    /work/venv/bin/python benchmarks/bench_trust.py [--sims 1000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from alignbench.rubrics import load_rubric
from alignbench.trust import LabelScale, calibrate, calibrate_arrays, fit_bridge, length_bias
from alignbench.types import Judgment, Status

ROOT = Path(__file__).resolve().parents[1]
CQ = ROOT.parent / "shared" / "meta_eval" / "critiquellm_alignbench_zh" / "pointwise_alignbench_reference_based_sample.jsonl"
AB = load_rubric("alignbench")
COUNTS = {"数学计算": 112, "逻辑推理": 92, "基本任务": 68, "中文理解": 58, "综合问答": 38, "文本写作": 75,
          "角色扮演": 116, "专业能力": 124}
W = {c: (0.25 if c in ("数学计算", "逻辑推理") else 1 / 12) for c in COUNTS}
P_HUMAN = {c: np.random.default_rng(i).dirichlet(np.ones(5) * 2) for i, c in enumerate(COUNTS)}
BIAS = dict(zip(COUNTS, [1.5, 1.0, 0.3, -0.5, 0.8, 1.2, 0.0, -1.0], strict=True))
LEVELS = LabelScale(1, 5).to_rubric(np.arange(1, 6), AB)
TRUTH = sum(W[c] * float(P_HUMAN[c] @ LEVELS) for c in COUNTS)


def simulate(seed: int, n_labels: int, noise: float = 1.3) -> dict:
    rng = np.random.default_rng(seed)
    data = {}
    for c, n in COUNTS.items():
        h = LEVELS[rng.choice(5, size=n, p=P_HUMAN[c])]
        f = np.clip(np.round(0.8 * h + BIAS[c] + 1 + rng.normal(0, noise, n)), 1, 10)
        lab = rng.choice(n, size=n_labels, replace=False)
        data[c] = (f, f[lab], h[lab])
    return data


def coverage(sims: int) -> None:
    print(f"truth (AlignBench-weighted human-scale score) = {TRUTH:.3f}")
    print(f"{'noise':>5} {'labels/cat':>10} {'λ':>5} {'CI':>9} {'runs':>5} | {'calibrated':>10} "
          f"{'judge-only':>10} {'labels-only':>11} | {'width cal':>9} {'width lab':>9} {'eff. labels':>11}")
    designs = [(1.3, n, lam, m) for n in (10, 20, 30) for lam in ("auto", 1.0) for m in ("analytic", "bootstrap")]
    designs += [(3.0, n, lam, "analytic") for n in (10, 20) for lam in ("auto", 1.0)]
    for noise, n_labels, lam, method in designs:
        runs = sims if method == "analytic" else max(100, sims // 4)
        hit = {"c": 0, "j": 0, "l": 0}
        wc, wl, eff = [], [], []
        for seed in range(runs):
            o = calibrate_arrays(simulate(seed, n_labels, noise), AB, lam=lam, method=method,  # type: ignore[arg-type]
                                 n_boot=500, seed=seed).overall
            assert o is not None
            for k, est in (("c", o.calibrated), ("j", o.judge_only), ("l", o.labels_only)):
                hit[k] += est.ci is not None and est.ci[0] <= TRUTH <= est.ci[1]
            wc.append(o.calibrated.ci[1] - o.calibrated.ci[0])
            wl.append(o.labels_only.ci[1] - o.labels_only.ci[0])
            eff.append(o.effective_labels)
        print(f"{noise:>5} {n_labels:>10} {lam!s:>5} {method:>9} {runs:>5} | {hit['c'] / runs:>10.3f} "
              f"{hit['j'] / runs:>10.3f} {hit['l'] / runs:>11.3f} | {np.mean(wc):>9.3f} {np.mean(wl):>9.3f} "
              f"{np.mean(eff):>11.0f}")


def timing() -> None:
    rng = np.random.default_rng(0)
    cats = list(COUNTS)
    old, new, labels = [], [], {}
    for q in range(1, 684):
        for m in ("m1", "m2", "m3", "m4"):
            x = float(rng.integers(1, 11))
            kw = dict(question_id=q, model=m, category=cats[q % 8], subcategory="x", answer_type="t",
                      status=Status.OK, rubric="alignbench@1.1.0", prompt_hash="h")
            old.append(Judgment(**kw, overall=x, judge="openai:old", answer_chars=int(rng.integers(50, 900))))
            new.append(Judgment(**kw, overall=float(np.clip(round(x + rng.normal(-1, 1)), 1, 10)), judge="openai:new"))
            if rng.random() < 0.1:
                labels[(q, m)] = float(rng.integers(1, 6))
    for name, fn in (("calibrate (2732 answers, ~270 labels)", lambda: calibrate(old, labels, AB, label_scale="1-5")),
                     ("calibrate, bootstrap 2000", lambda: calibrate(old, labels, AB, label_scale="1-5",
                                                                     method="bootstrap")),
                     ("fit_bridge (2732 pairs)", lambda: fit_bridge(old, new, AB)),
                     ("length_bias chars (2732 answers)", lambda: length_bias(old, AB, units=("chars",)))):
        t = time.perf_counter()
        fn()
        print(f"{name:<40} {time.perf_counter() - t:6.2f} s")


def real_labels() -> None:
    if not CQ.is_file():
        print("../shared CritiqueLLM sample not present: skipped")
        return
    sys.path.insert(0, str(ROOT / "tests"))
    from scripted_judge import length_score, reference_length_score

    rows = [json.loads(line) for line in CQ.read_text(encoding="utf-8").splitlines() if line.strip()]
    qid: dict[str, int] = {}
    a, b, human = [], [], {}
    for r in rows:
        q = qid.setdefault(r["question"], len(qid) + 1)
        kw = dict(question_id=q, model=r["model"], category=r["category"], subcategory="x", answer_type="t",
                  status=Status.OK, rubric="alignbench@1.1.0", prompt_hash="h")
        a.append(Judgment(**kw, overall=float(length_score(r["response"])), judge="openai:length"))
        b.append(Judgment(**kw, overall=float(reference_length_score(r["response"], r["reference"])),
                          judge="openai:ref-length"))
        human[(q, r["model"])] = float(r["human_score"])
    keys = sorted(human)
    picked = np.random.default_rng(0).choice(len(keys), size=50, replace=False)
    for judge_name, run in (("length", a), ("ref-length", b)):
        cal = calibrate(run, {keys[i]: human[keys[i]] for i in picked}, AB, label_scale="1-5")
        full = calibrate(run, human, AB, label_scale="1-5", lam=1.0).overall
        o = cal.overall
        print(f"judge {judge_name}: judge-only {o.judge_only.score:.2f} {fmt(o.judge_only.ci)}; labels-only (50) "
              f"{o.labels_only.score:.2f} {fmt(o.labels_only.ci)}; calibrated {o.calibrated.score:.2f} "
              f"{fmt(o.calibrated.ci)}; effective labels {o.effective_labels:.1f}; all 100 labels: "
              f"{full.labels_only.score:.2f}")
    fit = fit_bridge(a, b, AB)
    ag = fit.agreement
    print(f"bridge length → ref-length: n {fit.n_matched}, Spearman {ag.spearman:.3f} {fmt(ag.spearman_ci)}, "
          f"Kendall τ-b {ag.kendall:.3f}, mean |diff| {ag.mean_abs_diff:.2f} raw, {ag.mean_abs_diff_bridged:.2f} "
          f"bridged; knots {[round(v, 2) for v in fit.bridge.knots_new]}")


def fmt(ci: tuple[float, float] | None) -> str:
    return "[—]" if ci is None else f"[{ci[0]:.2f}, {ci[1]:.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sims", type=int, default=1000)
    args = parser.parse_args()
    coverage(args.sims)
    print()
    timing()
    print()
    real_labels()


if __name__ == "__main__":
    main()
