"""Wasted generations at default settings against a server that runs one request at a time and says
nothing about its slots (issue 23, part 6; llama-cpp-python serving a small model behaves so).

A request that waits in the server's queue past ``--timeout`` is abandoned by the client and asked again,
but the server still generates it: work thrown away. The loopback server here (``tests/stub_server.py``
with ``slots = 1`` and ``advertise_slots = False``) serializes requests and counts, per generation, whether
its client had already given up. Run twice through the real ``alignbench.score`` at the default
``--concurrency 16``: before (the engine's parallelism learning switched off: start at 16, halve on
timeouts) and after (slow start, limit learnt from how latency grows with requests in flight).

Usage: python benchmarks/bench_serial.py [--answers 16] [--latency 0.3] [--timeout 2]
Prints the wasted share of the server's generations and the wall time, before and after, and their ratios.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # this checkout's alignbench, not an installed one

from stub_server import StubServer, alignbench_responder  # noqa: E402

import alignbench  # noqa: E402
from alignbench.engine import AdaptiveLimit  # noqa: E402


def run(case: str, n: int, latency: float, timeout: float, tmp: Path) -> dict:
    rows = [json.loads(x) for x in (ROOT / "data/zh/answers/model-a.jsonl").read_text(encoding="utf-8").splitlines()]
    answers = tmp / f"{case}.jsonl"
    answers.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows[:n]), encoding="utf-8")
    AdaptiveLimit.learn = case == "after"
    try:
        stub = StubServer(responder=alignbench_responder, latency=latency)
        stub.slots, stub.advertise_slots = 1, False  # one at a time, and it does not say so
        with stub:
            start = time.perf_counter()
            runs = alignbench.score(ROOT / "data/zh/questions.jsonl", answers, "openai:judge", base_url=stub.url,
                                    out=tmp / case, cache=False, timeout=timeout)  # default --concurrency 16
            elapsed = time.perf_counter() - start
            time.sleep(latency * 2)  # let the server finish what is still queued, and count it
            generations, abandoned = stub.generations, stub.abandoned
    finally:
        AdaptiveLimit.learn = True
    summary = runs["model-a"].summary
    return {"case": case, "generations": generations, "abandoned": abandoned, "ok": summary.n_ok,
            "seconds": elapsed, "wasted": abandoned / max(1, generations)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--answers", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-serial-"))
    before, after = (run(case, args.answers, args.latency, args.timeout, tmp) for case in ("before", "after"))
    print(f"{args.answers} answers, a server running one request at a time ({args.latency:g} s each, slots not "
          f"advertised), --timeout {args.timeout:g}, default --concurrency 16")
    for r in (before, after):
        print(f"  {r['case']:<6} generations {r['generations']:3d}, wasted {r['abandoned']:3d} ({r['wasted']:.0%}), "
              f"judged {r['ok']}/{args.answers}, {r['seconds']:5.1f} s")
    print(f"  wasted share: before {before['wasted']:.2f}, after {after['wasted']:.2f}")
    print(f"  wall time, after / before: {after['seconds'] / before['seconds']:.2f}")


if __name__ == "__main__":
    main()
