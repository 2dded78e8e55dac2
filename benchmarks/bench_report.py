"""How long `alignbench report` takes over 10 runs × 683 judgments (the official question set), charts included.

Budget (issue 5): under 3 s. The run folders are synthesised with the real ``scoring.write_run`` from
random judgments (not timed); then the report is rendered in this process (first call: cold, includes
importing matplotlib and loading the CJK font) and again (warm), without and with ``--baseline-run``
(9 paired comparisons: bootstrap + permutation tests on 11 scores each), and once through the CLI in a
fresh process (includes Python start-up and imports).

    /work/venv/bin/python benchmarks/bench_report.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from alignbench.data import file_sha256, load_questions
from alignbench.reporting.markdown import write_report
from alignbench.rubrics import load_rubric
from alignbench.rundir import RunFolder
from alignbench.scoring import build_summary, manifest
from alignbench.types import Judgment, Status, UsageTotals

ROOT = Path(__file__).resolve().parents[1]
OFFICIAL = ROOT.parent / "shared" / "alignbench" / "data_v1.1_release.jsonl"
BUDGET_S = 3.0
N_RUNS = 10


def synthesise(root: Path) -> list[Path]:
    rubric = load_rubric("alignbench")
    questions = load_questions(OFFICIAL, rubric)
    rng = np.random.default_rng(0)
    sha = file_sha256(OFFICIAL)
    dirs = []
    for m in range(N_RUNS):
        model = f"model-{m:02d}"
        strength = 5.0 + 0.25 * m
        judgments = []
        for q in questions:
            atype = rubric.answer_type(q.category, q.subcategory)
            dims = rubric.answer_types[atype].dimensions
            failed = rng.random() < 0.01
            scores = {d: float(np.clip(round(rng.normal(strength, 1.8)), 1, 10)) for d in dims}
            overall = float(np.clip(round(np.mean(list(scores.values()))), 1, 10))
            raw = "评价如下：\n" + "\n".join(f"{d}：回答在该维度上的表现，给出{int(v)}分。理由若干。" for d, v in scores.items())
            judgments.append(Judgment(
                question_id=q.id, model=model, category=q.category, subcategory=q.subcategory, answer_type=atype,
                status=Status.PARSE_FAILED if failed else Status.OK, scores={} if failed else scores,
                overall=None if failed else overall, judge="openai:gpt-4o", rubric=rubric.id, prompt_hash="0" * 16,
                raw=raw + ("" if failed else f"\n{ {**scores, '综合得分': overall} }")))
        run = manifest(model, {"name": "openai:gpt-4o", "backend": "openai", "model": "gpt-4o"}, rubric,
                       {"path": str(OFFICIAL), "sha256": sha}, f"answers/{model}.jsonl")
        with RunFolder(root / model) as folder:
            folder.write_run(judgments, build_summary(judgments, rubric, run, UsageTotals()))
        dirs.append(root / model)
    return dirs


def timed(label: str, fn) -> float:
    """Wall time (what the budget is about) and CPU time of this process and its children (close to the
    wall time on an idle machine; much lower when other jobs compete for the 2 cores)."""
    def cpu_now() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    start, cpu = time.perf_counter(), cpu_now()
    fn()
    elapsed, cpu = time.perf_counter() - start, cpu_now() - cpu
    print(f"{label:<64} {elapsed:5.2f} s wall {cpu:5.2f} s cpu  {elapsed / BUDGET_S:5.2f} × budget")
    return elapsed


def main() -> int:
    if not OFFICIAL.is_file():
        print(f"official question set not found at {OFFICIAL}", file=sys.stderr)
        return 2
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        dirs = synthesise(root / "runs")
        print(f"synthesised {N_RUNS} runs × 683 judgments in {time.perf_counter() - t0:.1f} s (not timed below)")
        out = root / "report" / "report.md"
        results = [
            timed("report, 10 runs, charts (cold: imports matplotlib, font)",
                  lambda: write_report(dirs, out, charts=True)),
            timed("report, 10 runs, charts (warm)", lambda: write_report(dirs, out, charts=True)),
            timed("report, 10 runs, charts, --baseline-run (9 comparisons)",
                  lambda: write_report(dirs, out, baseline_dir=dirs[0], charts=True)),
        ]
        charts = sorted(p.name for p in out.parent.glob("*.png"))
        assert charts == ["report-dimensions.png", "report-radar.png"], charts
        env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
        cli = timed("CLI in a fresh process (start-up + imports + report + baseline)", lambda: subprocess.run(
            [sys.executable, "-m", "alignbench", "report", *map(str, dirs), "--baseline-run", str(dirs[0]),
             "--out", str(out)], check=True, capture_output=True, env=env, cwd=ROOT))
        size = out.stat().st_size
    worst = max(results)
    print(f"report size {size / 1024:.0f} KiB; slowest in-process render {worst:.2f} s = {worst / BUDGET_S:.2f} × the "
          f"{BUDGET_S:.0f} s budget; CLI end to end {cli:.2f} s")
    return 0 if worst < BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
