"""Constrained generation for the transformers backend: the verdict JSON, token by token.

A general JSON-schema decoder (a grammar over the whole vocabulary) is heavy. Verdict schemas
(``alignbench.structured``) are of one fixed shape — objects with fixed keys in a fixed order, free-text
``analysis`` strings and integer scores from an ``enum`` — so they compile to a flat sequence of
segments, and one small state machine per batch row is enough:

* **literal** (``{"overall": {"analysis": "``): its tokens are forced, one per step;
* **string**: any token without a quote, backslash or control character (so the string is valid JSON
  whatever the model writes), until the model picks the first token of the literal that closes it; a
  budget shared out of ``max_new_tokens`` closes it for the model when it runs long, so the JSON always
  fits;
* **choice** (the score enum): only the token sequences of the allowed values (a trie: ``1`` may go on to
  ``10`` when a tokenizer splits it);
* then the end-of-sequence token.

The model still chooses every word of the analysis and which score to give; it only cannot leave the
shape. ``TopKRecorder`` keeps the most likely tokens at each step *after* the constraint, so at a score
position the recorded distribution is the model's own probabilities over the allowed scores.
A schema outside this shape raises ``UnsupportedSchema`` (the judge then answers as text and says so).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


class UnsupportedSchema(ValueError):
    """The schema is not of the fixed verdict shape this decoder handles."""


@dataclass(frozen=True)
class Segment:
    kind: str  # "literal", "string" or "choice"
    text: str = ""
    choices: tuple[str, ...] = ()


def compile_schema(schema: dict[str, Any]) -> list[Segment]:
    """The segments of the JSON text ``schema`` allows (see the module docstring)."""
    out: list[Segment] = []

    def literal(text: str) -> None:
        if out and out[-1].kind == "literal":
            out[-1] = Segment("literal", out[-1].text + text)
        else:
            out.append(Segment("literal", text))

    def value(node: Any) -> None:
        if not isinstance(node, dict):
            raise UnsupportedSchema(f"not a schema: {node!r}")
        if node.get("type") == "object":
            props = node.get("properties")
            if not isinstance(props, dict) or set(node.get("required", ())) != set(props):
                raise UnsupportedSchema("objects need fixed properties, all required")
            literal("{")
            for i, (key, sub) in enumerate(props.items()):
                literal(("" if i == 0 else ", ") + json.dumps(key, ensure_ascii=False) + ": ")
                value(sub)
            literal("}")
        elif "enum" in node:
            out.append(Segment("choice", choices=tuple(json.dumps(e, ensure_ascii=False) for e in node["enum"])))
        elif node.get("type") == "string":
            literal('"')
            out.append(Segment("string"))
            literal('"')
        else:
            raise UnsupportedSchema(f"unsupported schema node {node!r}")

    value(schema)
    return out


@dataclass
class _Trie:
    children: dict[int, _Trie] = field(default_factory=dict)
    terminal: bool = False


class Vocabulary:
    """What the machines need from a tokenizer, computed once per loaded model."""

    def __init__(self, tokenizer: Any) -> None:
        import torch

        self.tokenizer = tokenizer
        size = len(tokenizer)
        special = set(getattr(tokenizer, "all_special_ids", []) or [])
        texts = [tokenizer.decode([i]) for i in range(size)]
        ok = [i not in special and t != "" and '"' not in t and "\\" not in t and all(ord(c) >= 32 for c in t)
              for i, t in enumerate(texts)]
        self.string_ok = torch.tensor(ok, dtype=torch.bool)
        self.size = size

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))


class SchemaMachine:
    """Which tokens one batch row may generate next, for one compiled schema."""

    def __init__(self, vocab: Vocabulary, segments: list[Segment], budget: int, eos: list[int]) -> None:
        self.vocab = vocab
        self.eos = eos
        self.parts: list[tuple[str, Any]] = []
        fixed = 0
        for seg in segments:
            if seg.kind == "literal":
                ids = vocab.encode(seg.text)
                self.parts.append(("literal", ids))
                fixed += len(ids)
            elif seg.kind == "choice":
                root = _Trie()
                longest = 1
                for choice in seg.choices:
                    node = root
                    ids = vocab.encode(choice)
                    longest = max(longest, len(ids))
                    for t in ids:
                        node = node.children.setdefault(t, _Trie())
                    node.terminal = True
                self.parts.append(("choice", root))
                fixed += longest
            else:
                self.parts.append(("string", None))
        strings = sum(1 for kind, _ in self.parts if kind == "string")
        # what is left of max_new_tokens after the shape, shared by the free-text strings (at least 0)
        self.string_budget = max(0, (budget - fixed - 1) // max(1, strings))
        self.part = 0
        self.pos = 0  # position inside a literal, tokens written in a string
        self.node: _Trie | None = None
        self.done = False

    def _next_literal_first(self) -> int | None:
        for kind, data in self.parts[self.part + 1:]:
            return data[0] if kind == "literal" and data else None
        return None

    def allowed(self) -> tuple[list[int] | None, bool]:
        """(token ids allowed next, whether any string token is allowed too); None: only end of sequence."""
        if self.done or self.part >= len(self.parts):
            return None, False
        kind, data = self.parts[self.part]
        if kind == "literal":
            return [data[self.pos]], False
        if kind == "string":
            close = self._next_literal_first()
            return ([close] if close is not None else []), self.pos < self.string_budget
        node = self.node or data
        ids = list(node.children)
        if node.terminal:
            close = self._next_literal_first()
            ids += [close] if close is not None else []
        return ids, False

    def advance(self, token: int) -> None:
        """Move past ``token``, the one generated at the previous step."""
        if self.done or self.part >= len(self.parts):
            self.done = True
            return
        kind, data = self.parts[self.part]
        if kind == "literal":
            self.pos += 1
            if self.pos >= len(data):
                self._next_part()
        elif kind == "string":
            if token == self._next_literal_first():
                self._next_part()
                self._enter_literal_after_first()
            else:
                self.pos += 1
        else:
            node = self.node or data
            if token in node.children:
                self.node = node.children[token]
                if self.node.terminal and not self.node.children and self._next_literal_first() is None:
                    self._next_part()
            else:  # the first token of the following literal: the value ended
                self._next_part()
                self._enter_literal_after_first()

    def _next_part(self) -> None:
        self.part += 1
        self.pos = 0
        self.node = None

    def _enter_literal_after_first(self) -> None:
        """The token just taken was the first of this literal."""
        data = self.parts[self.part][1]
        self.pos = 1
        if self.pos >= len(data):
            self._next_part()


class ConstrainedProcessor:
    """A transformers logits processor applying one ``SchemaMachine`` per row (None: that row is free)."""

    def __init__(self, machines: list[SchemaMachine | None], prompt_width: int, eos: list[int]) -> None:
        self.machines = machines
        self.width = prompt_width
        self.eos = eos

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        generated = input_ids.shape[1] - self.width
        for row, machine in enumerate(self.machines):
            if machine is None:
                continue
            if generated > 0:
                machine.advance(int(input_ids[row, -1]))
            ids, strings = machine.allowed()
            mask = machine.vocab.string_ok.clone() if strings else torch.zeros(scores.shape[1], dtype=torch.bool)
            for t in (ids if ids is not None else self.eos):
                if 0 <= t < mask.shape[0]:
                    mask[t] = True
            if mask.shape[0] < scores.shape[1]:  # the model's vocabulary is padded beyond the tokenizer's
                mask = torch.cat([mask, torch.zeros(scores.shape[1] - mask.shape[0], dtype=torch.bool)])
            scores[row] = scores[row].masked_fill(~mask[: scores.shape[1]].to(scores.device), float("-inf"))
        return scores


class TopKRecorder:
    """Keeps the ``k`` most likely tokens (and their log-probabilities) at every step, after any constraint."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.steps: list[tuple[Any, Any]] = []

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        logp = torch.log_softmax(scores.float(), dim=-1)
        values, ids = torch.topk(logp, min(self.k, logp.shape[-1]), dim=-1)
        self.steps.append((ids.cpu(), values.cpu()))
        return scores


__all__ = ["ConstrainedProcessor", "SchemaMachine", "Segment", "TopKRecorder", "UnsupportedSchema", "Vocabulary",
           "compile_schema"]
