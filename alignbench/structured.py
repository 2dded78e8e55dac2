"""Structured output: a rubric's verdict asked for as a JSON schema instead of free text.

Why: a judge that is free to write anything sometimes writes something no parser can read (a missing
dict, a range, a cut-off); a judge constrained to a schema cannot. The schema is built from the rubric
(the answer type's dimensions, the scale), travels on the request (``ModelRequest.response_schema``,
part of the cache key) and each backend asks for it its own way (docs/protocols.md): OpenAI's
``response_format`` JSON schema, vLLM's guided decoding, GLM's JSON mode, constrained generation in the
transformers backend. A backend that refuses falls back to text, and says why.

Shapes (all keys ASCII, so every provider accepts them; analysis before score, so a judge that writes in
order reasons before it scores)::

    pointwise: {"dimensions": {"<dimension id>": {"analysis": str, "score": int}, ...},   # if any
                "overall": {"analysis": str, "score": int}}
    pairwise:  {"analysis": str, "verdict": one of the rubric's verdict words}

Scores are integers listed as an ``enum`` of the scale (1..10): every backend's constrained decoder
supports ``enum``, while ``minimum``/``maximum`` are not honoured everywhere.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2

from alignbench.parse import PAIR_CONVENTIONS
from alignbench.rubrics import Rubric

# Words of a pairwise verdict, by the rubric's pairwise convention: first answer better, second, tie.
PAIR_CHOICES = PAIR_CONVENTIONS


def _scored(rubric: Rubric) -> dict[str, Any]:
    lo, hi = int(rubric.scale.min), int(rubric.scale.max)
    score = {"type": "integer", "enum": list(range(lo, hi + 1))}
    return {"type": "object", "properties": {"analysis": {"type": "string"}, "score": score},
            "required": ["analysis", "score"], "additionalProperties": False}


def verdict_schema(rubric: Rubric, dimensions: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """The JSON schema of a pointwise verdict on ``dimensions`` (names; keyed by their ids)."""
    item = _scored(rubric)
    props: dict[str, Any] = {}
    if dimensions:
        ids = [rubric.dimensions[d].id for d in dimensions]
        props["dimensions"] = {"type": "object", "properties": {i: item for i in ids}, "required": ids,
                               "additionalProperties": False}
    props["overall"] = item
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


def pair_schema(rubric: Rubric) -> dict[str, Any]:
    """The JSON schema of a pairwise verdict in the words of the rubric's pairwise convention."""
    return {"type": "object",
            "properties": {"analysis": {"type": "string"},
                           "verdict": {"type": "string", "enum": list(PAIR_CHOICES[rubric.pairwise_verdict])}},
            "required": ["analysis", "verdict"], "additionalProperties": False}


def dimension_pairs(rubric: Rubric, dimensions: tuple[str, ...] | list[str]) -> tuple[tuple[str, str], ...]:
    """(id, name) of each dimension, as ``parse.parse_structured_scores`` reads them."""
    return tuple((rubric.dimensions[d].id, d) for d in dimensions)


@cache
def _template(source: str) -> jinja2.Template:
    return jinja2.Environment(undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                              autoescape=False).from_string(source)


def note(rubric: Rubric, dimensions: tuple[str, ...] | list[str]) -> str:
    """What the judge is told about the JSON it must write (the rubric's ``structured_note``), appended to
    the prompt: a backend without a schema-enforcing decoder (GLM's JSON mode) follows it from the text."""
    fields = [f"dimensions.{rubric.dimensions[d].id}：维度「{d}」，含 analysis（该维度的分析）和 score（该维度的评分）"
              for d in dimensions]
    fields.append(f"overall：综合评价，含 analysis（综合分析）和 score（{rubric.overall_key}）")
    return _template(rubric.structured_note).render(fields=fields, scale=rubric.scale).strip()


def pair_note(rubric: Rubric) -> str:
    """The pairwise counterpart of ``note``."""
    first, second, tie = PAIR_CHOICES[rubric.pairwise_verdict]
    meaning = f"{first} 表示第一个回答更好，{second} 表示第二个回答更好，{tie} 表示两者质量相当"
    return _template(rubric.structured_pair_note).render(choices=(first, second, tie), meaning=meaning).strip()


def with_note(messages: list[dict[str, str]], text: str) -> list[dict[str, str]]:
    """The messages with ``text`` appended to the last user message (a blank line between): the rubric's
    own prompt stays a prefix, so a prefix-caching server still shares it with text-mode requests."""
    out = [dict(m) for m in messages]
    for m in reversed(out):
        if m["role"] == "user":
            m["content"] = m["content"].rstrip("\n") + "\n\n" + text
            break
    return out


__all__ = ["PAIR_CHOICES", "dimension_pairs", "note", "pair_note", "pair_schema", "verdict_schema", "with_note"]
