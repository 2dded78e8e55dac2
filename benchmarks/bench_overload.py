"""Wasted judge work against a server that runs one request at a time (issue 11).

A llama.cpp server with one slot runs one request and queues the rest. When more requests are in flight
than it can finish within ``--timeout``, they time out, are retried, and the server still generates the
abandoned ones: paid (or GPU) work thrown away. This runs the real engine and CLI path
(``alignbench.score``) against a loopback server that enforces one slot, three ways:

1. fixed concurrency (the engine's back-off switched off: what alignbench did before),
2. adaptive concurrency (halve on timeouts/429/503, grow back on success),
3. the server advertises its slots (``GET /props`` -> ``total_slots``), as llama.cpp does.

It prints, for each, the requests the server ran, how many of them were wasted (ran but their reply was
not used), and the wall time. Ratios in one run; these machines are noisy.

Usage: python benchmarks/bench_overload.py [--answers 24] [--latency 0.3] [--timeout 2] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from stub_server import StubServer, alignbench_responder  # noqa: E402

import alignbench  # noqa: E402
from alignbench.engine import AdaptiveLimit  # noqa: E402


def run(case: str, n: int, latency: float, timeout: float, concurrency: int, tmp: Path) -> dict:
    rows = [json.loads(x) for x in (ROOT / "data/zh/answers/model-a.jsonl").read_text(encoding="utf-8").splitlines()]
    answers = tmp / f"{case}.jsonl"
    answers.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows[:n]), encoding="utf-8")
    saved = AdaptiveLimit.overloaded
    if case == "fixed":
        AdaptiveLimit.overloaded = lambda self: None  # the old behaviour: never send fewer
    try:
        with StubServer(responder=alignbench_responder, latency=latency) as stub:
            stub.slots, stub.advertise_slots = 1, case == "advertised"
            stub.stop()
            stub.start()
            start = time.perf_counter()
            runs = alignbench.score(ROOT / "data/zh/questions.jsonl", answers, "openai:judge", base_url=stub.url,
                                    out=tmp / case, cache=False, concurrency=concurrency, timeout=timeout)
            elapsed = time.perf_counter() - start
            ran = stub.calls
    finally:
        AdaptiveLimit.overloaded = saved
    summary = runs["model-a"].summary
    return {"case": case, "ran": ran, "used": summary.n_ok, "wasted": ran - summary.n_ok,
            "failed": summary.n_failed, "seconds": elapsed}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--answers", type=int, default=24)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-overload-"))
    results = [run(case, args.answers, args.latency, args.timeout, args.concurrency, tmp)
               for case in ("fixed", "adaptive", "advertised")]
    print(f"{args.answers} answers, one-slot server, {args.latency:.1f} s per reply, --timeout {args.timeout:g}, "
          f"--concurrency {args.concurrency}")
    for r in results:
        print(f"  {r['case']:<10} server ran {r['ran']:3d} requests, wasted {r['wasted']:3d} "
              f"({r['wasted'] / r['ran']:.0%}), judged {r['used']}/{args.answers}, {r['seconds']:5.1f} s")
    fixed, adaptive, advertised = results
    print(f"  wasted work, adaptive / fixed: {adaptive['wasted'] / max(1, fixed['wasted']):.2f}; "
          f"advertised slots / fixed: {advertised['wasted'] / max(1, fixed['wasted']):.2f}")
    print(f"  wall time, adaptive / fixed: {adaptive['seconds'] / fixed['seconds']:.2f}; "
          f"advertised / fixed: {advertised['seconds'] / fixed['seconds']:.2f}")


if __name__ == "__main__":
    main()
