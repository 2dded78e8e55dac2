"""One handler for reasoning blocks, in judge replies and in answers alike.

Reasoning models write a scratchpad before their final text: ``<think>…</think>`` in the text itself, or,
behind a server with a reasoning parser, a separate ``reasoning_content`` field. Two rules follow for the
whole tool, which is why there is exactly one function for it:

* a judge's scratchpad is never read for scores (it tries out verdicts before settling on one), and
* a model's scratchpad is never shown to a judge as part of its answer (the judge grades the answer).

What counts as the scratchpad (``split_reasoning``):

1. A leading block: ``<think>`` (after whitespace) up to its matching ``</think>``. Tags nest: the block
   ends where the depth returns to zero; when it never does but some ``</think>`` follows (a model that
   mentions the tag inside its reasoning), the last ``</think>`` ends it. Several leading blocks in a row
   are all reasoning.
2. No leading ``<think>`` but a ``</think>`` with no ``<think>`` before it: the chat template opened the
   block in the prompt (DeepSeek-R1 distills served without a reasoning parser), so everything up to that
   tag is reasoning.
3. A ``<think>`` that is never closed: the model spent its whole budget thinking. The final text is empty
   and ``unclosed`` says so (a judge reply cut there is a truncated verdict, an answer cut there is empty).
4. Think tags anywhere else in the final text are *leaked* reasoning: the text is kept as it is (an answer
   may discuss the tag itself, so nothing is cut on a guess) and ``leaked`` is set, so reports can count
   such answers. A server that returned ``reasoning_content`` *and* left think tags in the content leaked
   too (its reasoning parser let them through); the leading block is still removed.

The final text is always a suffix of the input (``text[start:]``), so offsets found in it map back to
the input by adding ``start`` — the log-probability reader relies on that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

OPEN, CLOSE = "<think>", "</think>"
_TAG = re.compile(r"</?think>")
_LEADING_OPEN = re.compile(r"\s*<think>")


@dataclass(frozen=True)
class ReasoningSplit:
    """A text split into the reasoning and the final text (see the module docstring)."""

    text: str  # the final text, not stripped: ``original[start:]`` (empty when unclosed)
    start: int = 0
    reasoning: str | None = None  # None: there was no reasoning at all
    unclosed: bool = False
    leaked: bool = False

    @property
    def answer(self) -> str:
        """The final text without surrounding whitespace (what an answer file keeps)."""
        return self.text.strip()


def _block_end(text: str, open_end: int) -> int | None:
    """Where the block opened just before ``open_end`` closes (the offset just past its ``</think>``)."""
    depth, last_close = 1, None
    for m in _TAG.finditer(text, open_end):
        if m.group(0) == OPEN:
            depth += 1
            continue
        last_close = m.end()
        depth -= 1
        if depth == 0:
            return m.end()
    return last_close


def split_reasoning(text: str, reasoning_content: str | None = None) -> ReasoningSplit:
    """Separate reasoning from the final text of a judge reply or an answer (rules in the module docstring).

    ``reasoning_content`` is the separate field some servers return (vLLM and SGLang with a reasoning
    parser, DeepSeek's API, GLM's thinking models); it is reasoning whatever the text holds."""
    given = reasoning_content.strip() if isinstance(reasoning_content, str) and reasoning_content.strip() else None
    parts: list[str] = [given] if given else []
    start, unclosed = 0, False
    opening = _LEADING_OPEN.match(text)
    if opening:
        pos = opening.end()
        while True:
            end = _block_end(text, pos)
            if end is None:
                parts.append(text[pos:].strip())
                start, unclosed = len(text), True
                break
            parts.append(text[pos:end - len(CLOSE)].strip())
            start = end
            again = _LEADING_OPEN.match(text, start)
            if not again:
                break
            pos = again.end()
    else:
        close = text.find(CLOSE)
        if close >= 0 and OPEN not in text[:close]:
            parts.append(text[:close].strip())
            start = close + len(CLOSE)
    final = text[start:]
    in_text = start > 0 or unclosed
    leaked = bool(_TAG.search(final)) or (given is not None and in_text)
    reasoning = "\n\n".join(p for p in parts if p) if parts else None
    if reasoning is None and in_text:
        reasoning = ""  # an empty <think></think>: there was a block, with nothing in it
    return ReasoningSplit(text=final, start=start, reasoning=reasoning, unclosed=unclosed, leaked=leaked)


__all__ = ["CLOSE", "OPEN", "ReasoningSplit", "split_reasoning"]
