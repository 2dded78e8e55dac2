"""transformers judge on CPU: batched generation vs one prompt at a time, measured in one run.

A tiny random Llama (tests/tiny_model.py: 2 layers, hidden 64, the deepseek tokenizer's 129k vocab)
judges 64 real prompts (our data/zh set, models a and b, CritiqueLLM format) through the real
pipeline (``judge_items``: runner, micro-batcher, parse) twice: ``--batch-size 1`` and
``--batch-size 8``, greedy, same max_tokens. Both runs must give identical replies (greedy, left
padding done right). Target: speed-up >= 3x.

Usage: python benchmarks/bench_local_batch.py [--batch-size 8] [--max-tokens 32] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from tiny_model import build_tiny_llama  # noqa: E402

from alignbench.cache import NullStore  # noqa: E402
from alignbench.data import join, load_answers, load_questions  # noqa: E402
from alignbench.judges import make_judge, resolve_model  # noqa: E402
from alignbench.rubrics import load_rubric  # noqa: E402
from alignbench.scoring import judge_items, plan  # noqa: E402

ZH = ROOT / "data" / "zh"


async def timed(judge, items, rubric, name: str) -> tuple[float, list]:
    await judge.load()  # loading is not what is measured
    start = time.perf_counter()
    judgments, _ = await judge_items(items, rubric, judge, NullStore(), name, concurrency=judge.capacity,
                                     parse_retries=0)
    elapsed = time.perf_counter() - start
    await judge.aclose()
    return elapsed, judgments


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2, help="alternate solo/batched runs; best of each")
    parser.add_argument("--hidden", type=int, default=128, help="hidden size of the tiny model")
    parser.add_argument("--layers", type=int, default=2)
    args = parser.parse_args()

    folder = build_tiny_llama(Path(tempfile.mkdtemp(prefix="bench-tiny-")) / "model", context=2048,
                              hidden=args.hidden, layers=args.layers)
    config = resolve_model(f"hf:{folder}", rubric="critiquellm", system_role=False, max_tokens=args.max_tokens,
                           options={"device": "cpu"})
    rubric = load_rubric(config.rubric)
    questions = load_questions(ZH / "questions.jsonl", rubric)
    pairs = [p for name in ("model-a", "model-b")
             for p in join(questions, load_answers(ZH / "answers" / f"{name}.jsonl")).pairs]
    items = plan(pairs, rubric, config)
    judge = make_judge(config)

    solo_times, batch_times, solo_texts, batch_texts, batch_sizes, mean_prompt = [], [], None, None, [], 0.0
    for _ in range(args.rounds):  # alternate, so that a noisy neighbour hurts both sides alike
        judge.batch_size = 1
        elapsed, judgments = asyncio.run(timed(judge, items, rubric, config.name))
        solo_times.append(elapsed)
        solo_texts = [j.raw for j in judgments]
        mean_prompt = sum(j.usage.prompt_tokens for j in judgments) / len(judgments)
        judge.batch_size = args.batch_size
        calls_before = len(judge.stats.batch_sizes)
        elapsed, judgments = asyncio.run(timed(judge, items, rubric, config.name))
        batch_times.append(elapsed)
        batch_texts = [j.raw for j in judgments]
        batch_sizes = judge.stats.batch_sizes[calls_before:]
    solo, batched = min(solo_times), min(batch_times)
    same = solo_texts == batch_texts
    speedup = solo / batched
    import torch

    print(f"{len(items)} prompts (data/zh, CritiqueLLM format, {mean_prompt:.0f} prompt tokens on average), "
          f"tiny Llama (hidden {args.hidden}, {args.layers} layers) on CPU, greedy, max_tokens {args.max_tokens}, torch threads {torch.get_num_threads()}")
    print(f"  one at a time      {solo:7.2f} s   ({len(items) / solo:5.1f} prompts/s)   runs: "
          + ", ".join(f"{t:.2f}" for t in solo_times))
    print(f"  --batch-size {args.batch_size:<4}  {batched:7.2f} s   ({len(items) / batched:5.1f} prompts/s)   runs: "
          + ", ".join(f"{t:.2f}" for t in batch_times))
    print(f"  generate calls per batched run: {len(batch_sizes)} (sizes {batch_sizes})")
    print(f"  identical replies (greedy): {same}")
    print(f"  speed-up {speedup:.2f}x   target >= 3x -> {'PASS' if speedup >= 3 and same else 'FAIL'}")


if __name__ == "__main__":
    main()
