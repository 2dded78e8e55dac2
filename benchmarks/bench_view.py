"""How fast `alignbench view` answers with 10 runs × 683 judgments, measured in one run.

Builds 10 real run folders (the official 683 questions, ten answer sets, each judged through
``alignbench.score`` against the stub server at zero latency; the first run is the baseline), then serves
them with the real Starlette/uvicorn server on a thread and times, from the moment the runs start loading:

  1. the leaderboard served, from start-up (reading the runs included).   Target: < 1 s.
  2. a question view (median of 20 questions, after the background indexing is done).   Target: < 100 ms.
  3. a filter over all 6,830 judgments (category + sort by score; failed only; sort by change against the
     baseline; full-text Chinese search over answers and judge texts), the slowest of them. Target: < 200 ms.

Interpreter start-up and imports are reported apart (they are the same for any Python web app).

Usage: python benchmarks/bench_view.py [--questions ../shared/alignbench/data_v1.1_release.jsonl] [--runs 10]
Skips (exit 0) when the question file is absent.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

T_IMPORT = time.perf_counter()
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import httpx  # noqa: E402
from bench_score import write_answers  # noqa: E402
from stub_server import spawn_stub  # noqa: E402

import alignbench  # noqa: E402
from alignbench.view.data import load_view  # noqa: E402
from alignbench.view.server import Background, ServeConfig  # noqa: E402

IMPORTS = time.perf_counter() - T_IMPORT
DEFAULT = ROOT.parent / "shared" / "alignbench" / "data_v1.1_release.jsonl"


def build_runs(questions: Path, n: int, work: Path) -> list[Path]:
    """``n`` answer sets (each question's reference cut at a different length, so scores and lengths differ),
    judged in one multi-model ``alignbench.score`` call: real run folders, as `score` writes them."""
    base = write_answers(questions, work / "base.jsonl")
    rows = [json.loads(line) for line in base.read_text(encoding="utf-8").splitlines()]
    files = []
    for i in range(n):
        path = work / f"answers-{i}.jsonl"
        path.write_text("".join(json.dumps({**r, "model_id": f"model-{i}", "answer": r["answer"][: 60 + 35 * i]},
                                           ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        files.append(path)
    proc, url = spawn_stub(latency=0.0)
    try:
        runs = alignbench.score(questions, files, "openai:bench-judge", base_url=url, out=work / "runs",
                                cache=work / "cache.sqlite", concurrency=64)
    finally:
        proc.kill()
    return [runs[f"model-{i}"].dir for i in range(n)]


def timed(client: httpx.Client, path: str) -> float:
    start = time.perf_counter()
    response = client.get(path)
    elapsed = time.perf_counter() - start
    assert response.status_code == 200, (path, response.status_code)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=Path, default=DEFAULT)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    if not args.questions.exists():
        print(f"skipped: {args.questions} is absent")
        return 0
    work = Path(tempfile.mkdtemp(prefix="bench_view_"))
    dirs = build_runs(args.questions, args.runs, work)
    n = sum(1 for d in dirs for _ in (d / "judgments.jsonl").open(encoding="utf-8"))
    ids = [json.loads(line)["question_id"] for line in (dirs[0] / "judgments.jsonl").open(encoding="utf-8")]

    start = time.perf_counter()
    data = load_view(dirs[1:], baseline=dirs[0], lazy=True)  # the command's own path: `view RUN… --baseline-run`
    loaded = time.perf_counter() - start
    with Background(data, ServeConfig(port=0)) as url, httpx.Client(base_url=url, timeout=30) as client:
        client.get("/")
        first = time.perf_counter() - start
        while not client.get("/api/ready").json()["ready"]:
            time.sleep(0.02)
        ready = time.perf_counter() - start
        client.get(f"/q/{ids[0]}")  # the first previous/next order of the default list
        questions = [timed(client, f"/q/{qid}") for qid in ids[1:21]]
        filters = {
            "category + sort by score": "/list?category=%E9%80%BB%E8%BE%91%E6%8E%A8%E7%90%86&sort=score",
            "failed only": "/list?status=failed",
            "largest change vs baseline": "/list?sort=delta",
            "search 回答 (Chinese, all texts)": "/list?q=%E5%9B%9E%E7%AD%94",
            "search, no hit": "/list?q=%E4%B8%8D%E5%AD%98%E5%9C%A8%E7%9A%84%E8%AF%8D",
            "review queue": "/queue",
        }
        filter_times = {label: min(timed(client, path) for _ in range(3)) for label, path in filters.items()}
    q_median = statistics.median(questions)
    slowest = max(filter_times.values())
    print(f"{len(dirs)} runs × {n // len(dirs)} judgments ({n:,} in all); imports {IMPORTS:.2f} s (not counted)")
    print(f"  runs read                     {loaded:6.2f} s")
    print(f"  leaderboard from start-up     {first:6.2f} s   target < 1 s -> {'PASS' if first < 1 else 'FAIL'}")
    print(f"  background indexing done      {ready:6.2f} s   (other pages wait for it; the leaderboard does not)")
    print(f"  question view, median of 20   {q_median * 1000:6.0f} ms  (max {max(questions) * 1000:.0f} ms) "
          f"target < 100 ms -> {'PASS' if q_median < 0.1 else 'FAIL'}")
    for label, t in filter_times.items():
        print(f"  filter: {label:<30} {t * 1000:6.0f} ms")
    print(f"  slowest filter                {slowest * 1000:6.0f} ms  target < 200 ms -> "
          f"{'PASS' if slowest < 0.2 else 'FAIL'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
