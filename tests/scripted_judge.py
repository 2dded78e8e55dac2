"""Deterministic scripted judges for meta-eval and ensemble tests, and for the docs' example run.

They are not judges: their behaviour is a simple, known function of the prompt, so every figure
computed from them can be predicted independently. Whatever protocol renders the prompt, they answer
in its format (the score dict with the dimensions the prompt lists, 【评估计划】/【执行】 sections when
asked for, ``最终判决：[[助手N]]`` for two answers).

* model name containing ``noise``: scores and verdicts from a hash of the answer(s) (uninformative),
  and when the two hashes tie it picks 助手1 (a position bias: those pairs flip with the order);
* any other model: **length** — the overall score grows with the answer's length
  (``length_score``), or, when the prompt shows a reference answer, with how close the answer's
  length is to the reference's (``reference_length_score``); of two answers the longer wins (same
  length: a tie).

Serve one on a port for the CLI (the docs do this)::

    python tests/scripted_judge.py --port 8123   # prints the base URL, serves until killed
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from stub_server import ALIGNBENCH_DIMENSIONS, StubServer  # noqa: E402

_ANSWER = re.compile(r"\[助手的答案开始\]\n(.*?)\n\[助手的答案结束\]", re.DOTALL)
_REFERENCE = re.compile(r"\[参考答案开始\]\n(.*?)\n\[参考答案结束\]", re.DOTALL)
_PAIR = re.compile(r"\[助手1的答案开始\]\n(.*?)\n\[助手1的答案结束\].*?\[助手2的答案开始\]\n(.*?)\n\[助手2的答案结束\]",
                   re.DOTALL)


def length_score(text: str) -> int:
    """The length judge's overall score: 1 + one point per 80 characters, capped at 10."""
    return min(10, 1 + len(text) // 80)


def reference_length_score(text: str, reference: str) -> int:
    """With a reference: 10 minus one point per 40 characters of length difference, at least 1."""
    return max(1, 10 - abs(len(text) - len(reference)) // 40)


def _hash(text: str) -> int:
    return hashlib.sha256(text.encode("utf-8")).digest()[0]


def _prompt(body: dict) -> tuple[str, str]:
    messages = [m for m in body.get("messages", []) if isinstance(m, dict)]
    system = "\n".join(str(m.get("content", "")) for m in messages if m.get("role") == "system")
    user = str(messages[-1].get("content", "")) if messages else ""
    return system, user


def scripted_judge(body: dict) -> str:
    """The reply of the scripted judge named by ``body["model"]`` (see the module docstring)."""
    system, user = _prompt(body)
    noise = "noise" in str(body.get("model", ""))
    plan = "【评估计划】" in system + user
    head = ""
    if plan:
        head = "【评估计划】\n1. 回答应切题、准确、完整。\n2. 篇幅能说明投入程度。\n【执行】\n"
    pair = _PAIR.search(user)
    if pair:
        first, second = pair.group(1), pair.group(2)
        if noise:
            a, b = _hash(first) % 3, _hash(second) % 3
        else:
            a, b = len(first), len(second)
        verdict = "助手1" if a > b or (noise and a == b) else "助手2" if b > a else "平局"
        return f"{head}两个回答的比较如下：助手1 {len(first)} 字，助手2 {len(second)} 字。\n最终判决：[[{verdict}]]"
    match = _ANSWER.search(user)
    answer = match.group(1) if match else user
    reference = _REFERENCE.search(user)
    if noise:
        score = 3 + _hash(answer) % 7
    else:
        score = reference_length_score(answer, reference.group(1)) if reference else length_score(answer)
    dims = [d for _, d in sorted((user.find(d), d) for d in ALIGNBENCH_DIMENSIONS if d in user)]
    parts = ", ".join([*(f"'{d}': {score}" for d in dims), f"'综合得分': {score}"])
    return f"{head}回答长度为 {len(answer)} 字。\n{{{parts}}}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server = StubServer(scripted_judge, port=args.port).start()
    print(server.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
