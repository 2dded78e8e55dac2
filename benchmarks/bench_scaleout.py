"""Scale-out over two OpenAI-compatible judge servers, measured in one run.

1. Two stub servers in their own processes (tests/stub_server.py ``spawn_stub``), 200 ms latency,
   ``--concurrency 32`` each: the 683 answers of the official set (one synthetic answer per question)
   judged through the real pipeline (``judge_items``: runner, pool, openai client, parse, SQLite
   cache). Ideal: ceil(683 / 64) x 0.2 s. Target: within 1.2x of it, every answer scored. A bare
   ``AsyncOpenAI`` loop over the same servers is timed first, in the same run: on a small machine
   the client SDK and the stub servers share the CPU, and that loop is the floor.
2. The same with one server returning HTTP 500 for the first seconds of the run, then healing (an
   in-process stub, since faults are injected through its Python API): every answer still scored,
   the broken server rested and probed instead of hammered.

Usage: python benchmarks/bench_scaleout.py [--questions ../shared/alignbench/data_v1.1_release.jsonl]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from stub_server import StubServer, alignbench_responder, spawn_stub  # noqa: E402

from alignbench.cache import ReplyStore  # noqa: E402
from alignbench.data import load_questions  # noqa: E402
from alignbench.judges import make_judge, resolve_model  # noqa: E402
from alignbench.rubrics import load_rubric  # noqa: E402
from alignbench.scoring import judge_items, plan  # noqa: E402
from alignbench.types import Answer, Status  # noqa: E402


async def run(urls: list[str], items, rubric, concurrency: int, cache: Path):
    config = resolve_model("openai:bench-judge", base_url=urls, concurrency=concurrency)
    judge = make_judge(config)
    start = time.perf_counter()
    judgments, runner = await judge_items(items, rubric, judge, ReplyStore(cache), config.name,
                                          concurrency=judge.capacity)
    elapsed = time.perf_counter() - start
    stats = judge.pool.stats()
    await judge.aclose()
    return elapsed, judgments, runner, stats


async def bare_loop(urls: list[str], items, concurrency: int) -> float:
    """The floor on this machine: the openai SDK alone sending the same requests, same spread and
    limits, nothing stored or parsed."""
    import openai

    clients = [openai.AsyncOpenAI(base_url=u, api_key="EMPTY", max_retries=0) for u in urls]
    limits = [asyncio.Semaphore(concurrency) for _ in urls]

    async def one(item) -> None:
        k = item.question.id % len(urls)
        async with limits[k]:
            await clients[k].chat.completions.create(model="bench-judge", messages=list(item.request.messages),
                                                     temperature=0.0, max_tokens=2048)

    start = time.perf_counter()
    await asyncio.gather(*(one(it) for it in items))
    elapsed = time.perf_counter() - start
    for client in clients:
        await client.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=Path,
                        default=ROOT.parent / "shared" / "alignbench" / "data_v1.1_release.jsonl")
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=32, help="per server")
    parser.add_argument("--fail-seconds", type=float, default=3.0, help="how long server B returns 500s")
    args = parser.parse_args()

    rubric = load_rubric("alignbench")
    config = resolve_model("openai:bench-judge")
    questions = load_questions(args.questions, rubric)
    pairs = [(q, Answer(question_id=q.id, model="bench", text=(q.reference or "我不知道。")[:400])) for q in questions]
    items = plan(pairs, rubric, config, 12000)
    n = len(items)
    ideal = math.ceil(n / (2 * args.concurrency)) * args.latency
    tmp = Path(tempfile.mkdtemp(prefix="bench-scaleout-"))

    procs = [spawn_stub(latency=args.latency) for _ in range(2)]
    try:
        urls = [url for _, url in procs]
        bare = asyncio.run(bare_loop(urls, items, args.concurrency))
        elapsed, judgments, runner, stats = asyncio.run(run(urls, items, rubric, args.concurrency,
                                                            tmp / "a.sqlite"))
    finally:
        for proc, _ in procs:
            proc.kill()
            proc.wait()
    ok = sum(j.status is Status.OK for j in judgments)
    ratio = elapsed / ideal
    print(f"{n} answers, 2 servers (own processes), {args.latency * 1000:.0f} ms latency, "
          f"{args.concurrency} in flight per server")
    print(f"  elapsed {elapsed:.2f} s, ideal ceil({n}/{2 * args.concurrency}) x {args.latency} = {ideal:.2f} s, "
          f"ratio {ratio:.2f}  target <= 1.20 -> {'PASS' if ratio <= 1.2 and ok == n else 'FAIL'}")
    print(f"  bare AsyncOpenAI loop, same servers and limits: {bare:.2f} s (ratio {bare / ideal:.2f}: what the "
          f"SDK and the servers' CPU allow here); alignbench / bare = {elapsed / bare:.2f}")
    for s in stats:
        print(f"    {s['url']}: served {s['served']}, failed {s['failed']}, max in flight {s['max_in_flight']}"
              f" (limit {s['limit']})")
    print(f"  scored {ok}/{n}, calls {runner.stats_for().calls}, retries {runner.stats_for().retries}")

    proc, url_a = spawn_stub(latency=args.latency)
    broken = StubServer(responder=alignbench_responder, latency=args.latency).start()
    broken.fail_always(500)
    timer = threading.Timer(args.fail_seconds, broken.heal)
    timer.start()
    try:
        elapsed, judgments, runner, stats = asyncio.run(run([url_a, broken.url], items, rubric,
                                                            args.concurrency, tmp / "b.sqlite"))
    finally:
        timer.cancel()
        proc.kill()
        proc.wait()
        broken.stop()
    ok = sum(j.status is Status.OK for j in judgments)
    print(f"server B returning 500 for the first {args.fail_seconds:.0f} s:")
    print(f"  elapsed {elapsed:.2f} s (one healthy server alone: ideal {math.ceil(n / args.concurrency) * args.latency:.2f} s)")
    for s in stats:
        print(f"    {s['url']}: served {s['served']}, failed {s['failed']}, max in flight {s['max_in_flight']}")
    print(f"  scored {ok}/{n}, calls {runner.stats_for().calls}, retries {runner.stats_for().retries}, "
          f"errors {runner.stats.errors}  -> {'PASS' if ok == n else 'FAIL'}")


if __name__ == "__main__":
    main()
