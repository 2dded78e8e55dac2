"""Counterfactual style probes: rewrite each judged answer in style only, re-judge it with the same judge,
and measure how far the score moves.

Why: the format and length audits (``trust``) are correlations across answers, which cannot tell a judge
that rewards Markdown from answers that really are better when they are structured. Changing only the
style of the *same* answer and re-judging it is a controlled experiment: whatever the score does is the
judge's reaction to the style (RM-Bench's design, without a model: every rewrite here is a deterministic
text transformation, so a probe is reproducible and costs only the judge's calls).

Pure functions: the rewrites (``REWRITES``), the judge settings a run's manifest records
(``settings_from_manifest``) and the paired effects (``effects``). ``api.plan_probe``/``api.probe`` judge
the rewrites through the normal plan and engine (cache, ``--dry-run``, ``--max-cost``) and write
``<run>/probes/<name>/`` (a run folder of the rewrites) and ``<run>/probes.json``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from alignbench.stats import means, percentile_ci
from alignbench.stats.fmt import rnd
from alignbench.types import Judgment, Status

PROBES_FILE = "probes.json"
PROBES_DIR = "probes"

_SENTENCE = re.compile(r"[^。！？!?；;\n]+[。！？!?；;]*")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+", re.MULTILINE)
_BULLET = re.compile(r"^(\s*)(?:[-*+•]\s+|\d+[.)]\s+)", re.MULTILINE)
_BOLD = re.compile(r"\*\*([^*\n]+?)\*\*|__([^_\n]+?)__")
_FENCE = re.compile(r"^```.*?^```[^\n]*$", re.MULTILINE | re.DOTALL)


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.findall(text) if s.strip()]


def _outside_code(text: str, fn: Callable[[str], str]) -> str:
    """Apply ``fn`` to the text outside fenced code blocks (code is content, never restyled)."""
    out, last = [], 0
    for m in _FENCE.finditer(text):
        out += [fn(text[last:m.start()]), m.group(0)]
        last = m.end()
    return "".join([*out, fn(text[last:])])


def plain(question: str, answer: str) -> str:
    """Remove Markdown: heading marks, list markers and bold marks go; every word, line and code block stays."""
    def strip(t: str) -> str:
        t = _HEADING.sub("", t)
        t = _BULLET.sub(r"\1", t)
        return _BOLD.sub(lambda m: m.group(1) or m.group(2), t)
    return _outside_code(answer, strip)


def markdown(question: str, answer: str) -> str:
    """Add Markdown to the plain form of the answer: a heading, the first sentence in bold, each further
    line (or sentence, for a one-paragraph answer) as a bullet. The words and their order stay."""
    if _FENCE.search(answer):  # code: only a heading and bold, never bullets that would break the code
        return "## 回答\n\n" + answer
    text = plain(question, answer).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    parts = lines if len(lines) > 1 else _sentences(text)
    if not parts:
        return answer
    first, rest = parts[0], parts[1:]
    body = [f"**{first}**"] + [f"- {p}" for p in rest]
    return "## 回答\n\n" + "\n".join(body[:1] + ([""] if rest else []) + body[1:])


def _topic(question: str, limit: int = 30) -> str:
    first = (_sentences(question) or [question.strip()])[0]
    return first if len(first) <= limit else first[:limit] + "……"


def filler(question: str, answer: str) -> str:
    """Add polite filler and a restatement of the question around the answer, which stays unchanged."""
    return (f"您好！感谢您的提问。您问的是“{_topic(question)}”，这是一个很好的问题，下面我来为您详细解答。\n\n"
            f"{answer}\n\n希望以上回答对您有所帮助！如果您还有其他问题，欢迎随时提问。")


def summary_pad(question: str, answer: str) -> str:
    """Append a summary of the answer made of its own sentences (the first sentence of up to three
    paragraphs): longer, nothing new. The answer stays unchanged above it."""
    paragraphs = [p for p in re.split(r"\n\s*\n", plain(question, answer)) if p.strip()]
    picked = [s[0] for p in paragraphs[:3] if (s := _sentences(p))]
    if not picked:
        return answer
    return f"{answer}\n\n总结一下：" + "".join(s if s[-1] in "。！？!?" else s + "。" for s in picked)


@dataclass(frozen=True)
class Rewrite:
    name: str
    fn: Callable[[str, str], str]
    changes: str
    keeps: str


REWRITES: dict[str, Rewrite] = {r.name: r for r in (
    Rewrite("markdown", markdown, "adds a heading, bolds the first sentence, turns further lines or sentences into "
            "bullets (existing Markdown is first removed, so every answer ends up in the same style)",
            "every word and its order; fenced code (code answers get only the heading)"),
    Rewrite("plain", plain, "removes heading marks, list markers and bold marks",
            "every word, line break and code block"),
    Rewrite("filler", filler, "adds a polite opening that restates the question and a polite closing",
            "the answer itself, verbatim, between them"),
    Rewrite("summary-pad", summary_pad, "appends 总结一下： and the answer's own first sentences (up to three "
            "paragraphs)", "the answer verbatim above the summary; no new content"),
)}
PAIRWISE_ONLY = ("swap",)


def check_perturbations(names: Sequence[str]) -> list[str]:
    """The perturbations asked for, in order, each known; a ValueError naming the unknown ones."""
    names = [n.strip() for n in names if n.strip()]
    unknown = [n for n in names if n not in REWRITES]
    if unknown:
        hint = "; swap applies to pairwise runs, whose two orders `compare` already judges (its position " \
               "bias audit is the swap probe)" if any(n in PAIRWISE_ONLY for n in unknown) else ""
        raise ValueError(f"unknown perturbation(s) {', '.join(unknown)}: choose from {', '.join(REWRITES)}{hint}")
    if not names:
        raise ValueError("no perturbation given")
    return list(dict.fromkeys(names))


def settings_from_manifest(judge: Mapping[str, Any], max_answer_chars: int | None) -> dict[str, Any]:
    """The JudgeSettings fields that rebuild a run's judge from its manifest's ``judge`` record (what
    ``ModelConfig.public()`` wrote): model id, server, rubric, decoding and output options."""
    if judge.get("ensemble"):
        raise ValueError("an ensemble run: probe each judge's own run (under judges/<judge>/)")
    out: dict[str, Any] = {"judge_model": judge.get("model"), "rubric": judge.get("rubric"),
                           "temperature": judge.get("temperature"), "max_tokens": judge.get("max_tokens"),
                           "max_answer_chars": max_answer_chars}
    if judge.get("base_url"):
        out["base_url"] = list(judge["base_url"])
    if judge.get("structured"):
        out["structured"], out["structured_via"] = True, judge["structured"]
    for key in ("score_from", "prompt_format"):
        if judge.get(key):
            out[key] = judge[key]
    return {k: v for k, v in out.items() if v is not None}


def load_probe(folder: Path) -> tuple[dict[int, str], dict[int, Judgment]]:
    """A probe folder's rewritten answer texts and judgments, by question id (empty when absent)."""
    from alignbench import safejson

    texts: dict[int, str] = {}
    judged: dict[int, Judgment] = {}
    if (folder / "answers.jsonl").is_file():
        for line in (folder / "answers.jsonl").read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = safejson.loads(line)
                texts[int(row["question_id"])] = row["text"]
    if (folder / "judgments.jsonl").is_file():
        for line in (folder / "judgments.jsonl").read_text(encoding="utf-8").splitlines():
            if line.strip():
                j = Judgment.model_validate_json(line)
                judged[j.question_id] = j
    return texts, judged


def _effect(deltas: Sequence[float], n_boot: int, seed: int) -> dict[str, Any]:
    d = np.asarray(deltas, dtype=float)
    if not len(d):
        return {"n": 0, "mean": None, "ci": None, "share_moved": None}
    ci = percentile_ci(means(d, n_boot, np.random.default_rng(seed))) if len(d) > 1 else None
    return {"n": len(d), "mean": rnd(d.mean()), "ci": [rnd(ci[0]), rnd(ci[1])] if ci else None,
            "share_moved": rnd(float((d != 0).mean()))}


def effects(original: Sequence[Judgment], probed: Sequence[Judgment], categories: Sequence[str],
            n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Paired score changes (rewrite − original overall score) on the answers both judged OK: the mean
    with a bootstrap CI over answers, and the share of answers whose score moved at all; overall (mean
    over answers, not AlignBench's category weights: an effect, not a score) and per category."""
    orig = {j.question_id: j for j in original if j.status is Status.OK and j.overall is not None}
    pairs = [(orig[j.question_id], j) for j in probed
             if j.status is Status.OK and j.overall is not None and j.question_id in orig]
    deltas = {o.question_id: float(p.overall) - float(o.overall) for o, p in pairs}  # type: ignore[arg-type]
    cat = {o.question_id: o.category for o, _ in pairs}
    present = [c for c in categories if c in cat.values()] + sorted({c for c in cat.values() if c not in categories})
    return {"n_answers": len(probed), "n_compared": len(pairs),
            "n_failed": sum(j.status is not Status.OK for j in probed),
            "overall": _effect(list(deltas.values()), n_boot, seed),
            "categories": {c: _effect([d for q, d in deltas.items() if cat[q] == c], n_boot, seed) for c in present},
            "per_answer": {str(q): d for q, d in deltas.items()}}
