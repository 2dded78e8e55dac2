"""Judges speaking the protocols of docs/protocols.md, behind the loopback stub server (tests, benchmarks).

``ProtocolJudge(...)`` is a stub-server responder that answers like a real judge server would:

* in the rubric's text convention, read from the prompt (the closing AlignBench dict when the prompt lists
  dimensions, ``评分：[[N]]`` when it asks for ``[[N]]``), with ``noise`` of its replies unreadable in the
  ways real judges fail (a range, a missing dict, a reply cut off, a refusal);
* as schema-valid JSON when the request carries ``response_format`` JSON schema or vLLM's ``guided_json``:
  the server enforces the schema the way a constrained decoder does, so noise cannot break the JSON
  (``refuse_structured`` makes it answer 400 instead, like a server without structured output);
* with OpenAI-shaped ``logprobs`` when asked: every number token carries a distribution over its
  neighbours drawn from the prompt's hash, so the expected score is known exactly (``expected_for``);
* with a ``reasoning_content`` field when ``reasoning`` is set (a reasoning model behind a parser).

Scores come from a hash of the prompt, so replies are deterministic and differ between answers.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

from stub_server import ALIGNBENCH_DIMENSIONS, Refuse

_DIM_IDS = {"事实正确性": "correctness", "满足用户需求": "helpfulness", "清晰度": "clarity", "完备性": "completeness",
            "逻辑连贯性": "coherence", "创造性": "creativity", "丰富度": "richness", "公平与可负责程度": "responsibility",
            "上下文一致性": "consistency"}


def _prompt(body: dict) -> str:
    if "messages" not in body and isinstance(body.get("prompt"), str):  # a text completion (/v1/completions)
        return body["prompt"]
    return "\n".join(str(m.get("content", "")) for m in body.get("messages", []) if isinstance(m, dict))


def _digest(text: str, salt: str = "") -> bytes:
    return hashlib.sha256((salt + text).encode("utf-8")).digest()


def distribution(score: int, seed: bytes, lo: int = 1, hi: int = 10) -> dict[int, float]:
    """The synthetic probabilities a judge puts on the scores around the one it writes (most on it)."""
    main = 0.45 + 0.4 * seed[0] / 255
    down = (1 - main) * (0.1 + 0.8 * seed[1] / 255)  # never 0: every listed score has a probability
    probs = {score: main}
    if score - 1 >= lo:
        probs[score - 1] = down
    if score + 1 <= hi:
        probs[score + 1] = probs.get(score + 1, 0.0) + (1 - main - down)
    total = sum(probs.values())
    return {v: p / total for v, p in probs.items()}


def _tokens(text: str) -> list[str]:
    """Numbers as one token (as GPT-4o's tokenizer does up to 999), other text in runs of up to 3 characters."""
    out: list[str] = []
    for m in re.finditer(r"[0-9]+|[^0-9]{1,3}", text):
        out.append(m.group(0))
    return out


class ProtocolJudge:
    """A stub-server responder; see the module docstring. ``calls`` records what each request asked for."""

    def __init__(self, noise: float = 0.0, refuse_structured: bool = False, refuse_logprobs: bool = False,
                 reasoning: bool = False) -> None:
        self.noise = noise
        self.refuse_structured = refuse_structured
        self.refuse_logprobs = refuse_logprobs
        self.reasoning = reasoning
        self.calls: list[dict[str, Any]] = []
        self.seeds: dict[str, bytes] = {}  # content -> seed of its score distributions (for expected_for)

    def __call__(self, body: dict) -> dict[str, Any]:
        schema = _schema_of(body)
        asked = {"schema": schema is not None, "logprobs": bool(body.get("logprobs")),
                 "response_format": body.get("response_format"), "guided_json": "guided_json" in body}
        self.calls.append(asked)
        if schema is not None and self.refuse_structured:
            raise Refuse(400, "response_format / json_schema is not supported by this model")
        if body.get("logprobs") and self.refuse_logprobs:
            raise Refuse(400, "logprobs are not supported")
        prompt = _prompt(body)
        seed = _digest(prompt, str(body.get("seed")))
        content = _json_reply(schema, seed) if schema is not None else self._text_reply(prompt, seed)
        out: dict[str, Any] = {"content": content}
        if self.reasoning:
            out["reasoning_content"] = "先看回答是否正确。也许 {'综合得分': 2}？再想想。"
        if body.get("logprobs"):
            n = body.get("logprobs")  # a text completion asks for N alternatives here, a chat one says true
            k = body.get("top_logprobs") or (n if isinstance(n, int) and not isinstance(n, bool) else 5)
            out["logprobs"] = _logprobs(content, seed, int(k))
            self.seeds[content] = seed
        return out

    def _text_reply(self, prompt: str, seed: bytes) -> str:
        dims = [d for d in ALIGNBENCH_DIMENSIONS + ("上下文一致性",) if f"{d}：" in prompt]
        scores = {d: 3 + seed[2 + i] % 7 for i, d in enumerate(dims)}
        overall = round(sum(scores.values()) / len(scores)) if scores else 3 + seed[-1] % 7
        if seed[-2] / 255 < self.noise:  # the ways free-text judges fail
            return ["回答基本正确，但不够完整。综合得分：6-7分", "回答还可以。我认为质量中等，给一个中等的分数。",
                    "无法对此进行评价。", "逐项分析如下……\n{'事实正确性': 7, '满足用户需求'"][seed[-3] % 4]
        if "[[C]]" in prompt and "助手A" in prompt:  # our mtbench-pair prompt
            return f"两个回答逐点比较如下……\n[[{'ABC'[seed[3] % 3]}]]"
        if "最终判决" in prompt and "助手1" in prompt:  # our alignbench pairwise prompt
            return f"比较分析……\n最终判决：[[{('助手1', '助手2', '平局')[seed[3] % 3]}]]"
        if "[[N]]" in prompt:
            return f"回答切题，内容基本准确，表达清楚。\n评分：[[{overall}]]"
        lines = [f"{d}：分析……得分 {v}" for d, v in scores.items()]
        return "\n".join([*lines, repr({**scores, "综合得分": overall})])


def _schema_of(body: dict) -> dict | None:
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        return fmt["json_schema"]["schema"]
    if isinstance(body.get("guided_json"), dict):
        return body["guided_json"]
    if isinstance(fmt, dict) and fmt.get("type") == "json_object":  # GLM's JSON mode: the prompt says the fields
        return _schema_from_note(_prompt(body))
    return None


def _schema_from_note(prompt: str) -> dict:
    """What a JSON-mode judge makes of our structured note: the fields it lists (no schema is sent)."""
    scored = {"type": "object", "properties": {"analysis": {"type": "string"}, "score": {"enum": list(range(1, 11))}}}
    if "verdict：" in prompt:
        choices = re.search(r"只能是 (.+?) 之一", prompt)
        words = choices.group(1).split("、") if choices else ["A", "B", "C"]
        return {"type": "object", "properties": {"analysis": {"type": "string"}, "verdict": {"enum": words}}}
    ids = re.findall(r"- dimensions\.([a-z_]+)：", prompt)
    props: dict[str, Any] = {"dimensions": {"type": "object", "properties": {i: scored for i in ids}}} if ids else {}
    return {"type": "object", "properties": {**props, "overall": scored}}


def _json_reply(schema: dict, seed: bytes) -> str:
    """A reply that follows ``schema`` (objects in key order, enums by the seed, strings short Chinese)."""
    count = [0]

    def value(node: dict) -> Any:
        count[0] += 1
        if node.get("type") == "object":
            return {k: value(v) for k, v in node["properties"].items()}
        if "enum" in node:
            choices = node["enum"]
            return choices[min(len(choices) - 1, 2 + seed[count[0] % 32] % max(1, len(choices) - 3))]
        return "分析：回答在这一方面表现尚可。"

    return json.dumps(value(schema), ensure_ascii=False)


def _logprobs(content: str, seed: bytes, k: int) -> list[dict[str, Any]]:
    out = []
    for i, tok in enumerate(_tokens(content)):
        entry: dict[str, Any] = {"token": tok, "logprob": 0.0, "bytes": list(tok.encode("utf-8"))}
        if tok.isdigit() and 1 <= int(tok) <= 10:
            probs = distribution(int(tok), _digest(str(i), seed.hex()))
            top = sorted(probs.items(), key=lambda kv: -kv[1])[:k]
            entry["logprob"] = math.log(probs[int(tok)])
            entry["top_logprobs"] = [{"token": str(v), "logprob": math.log(p), "bytes": list(str(v).encode())}
                                     for v, p in top]
        else:
            entry["top_logprobs"] = [{"token": tok, "logprob": 0.0, "bytes": list(tok.encode("utf-8"))}]
        out.append(entry)
    return out


def expected_for(judge: ProtocolJudge, content: str, number_index: int) -> float:
    """The expected value the judge's distribution gives the ``number_index``-th number token of ``content``."""
    seed = judge.seeds[content]
    numbers = [(i, t) for i, t in enumerate(_tokens(content)) if t.isdigit() and 1 <= int(t) <= 10]
    i, tok = numbers[number_index]
    probs = distribution(int(tok), _digest(str(i), seed.hex()))
    return sum(v * p for v, p in probs.items())


__all__ = ["ProtocolJudge", "distribution", "expected_for"]
