"""Judge ensembles: several judges' judgments of the same answers -> one judgment per answer, plus
where the judges disagree.

Why average: judges have their own biases (self-preference, length, leniency); the mean of several
judges is a cheaper way to damp them than trusting one. Why report disagreement next to it: a mean
hides that two judges may rank the answers of a category in opposite orders, and that is exactly
where a single judge's numbers should not be trusted.

Pure functions: no I/O. A dialogue is combined turn by turn as well (its per-turn scores are the judges'
means too). An ensemble judgment is ``ok`` only when **every** judge's judgment of that
answer is ok; its overall score is the mean of the judges' overall scores and each dimension the
mean over the judges that scored it. When any judge failed the answer the ensemble judgment fails
too (with every judge's status in ``detail``): averaging whichever judges happened to succeed would
silently turn the ensemble into a single judge on some answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np

from alignbench.stats import corr, undefined_reason
from alignbench.stats.agreement import agreement
from alignbench.stats.fmt import rnd as _r
from alignbench.types import Judgment, Status, Usage


def ensemble_name(judges: Sequence[str]) -> str:
    return "+".join(judges)


def combine(per_judge: Mapping[str, Sequence[Judgment]]) -> list[Judgment]:
    """One judgment per (question, model) judged by every judge, in the first judge's order."""
    names = list(per_judge)
    if len(names) < 2:
        raise ValueError("an ensemble needs at least two judges")
    index = {name: {(j.question_id, j.model): j for j in js} for name, js in per_judge.items()}
    out = []
    for first in per_judge[names[0]]:
        key = (first.question_id, first.model)
        members = [(name, index[name].get(key)) for name in names]
        missing = [name for name, j in members if j is None]
        if missing:
            raise ValueError(f"question {key[0]} of {key[1]} was not judged by {', '.join(missing)}")
        js: list[Judgment] = [j for _, j in members]  # type: ignore[misc]
        common = {
            "question_id": first.question_id, "model": first.model, "category": first.category,
            "subcategory": first.subcategory, "answer_type": first.answer_type, "judge": ensemble_name(names),
            "rubric": first.rubric, "prompt_hash": "+".join(j.prompt_hash for j in js),
            "usage": Usage(prompt_tokens=sum(j.usage.prompt_tokens for j in js),
                           completion_tokens=sum(j.usage.completion_tokens for j in js)),
            "attempts": sum(j.attempts for j in js), "truncated_answer": any(j.truncated_answer for j in js),
            "answer_chars": first.answer_chars, "cached": all(j.cached for j in js), "turn": first.turn,
        }
        if first.turns and all(len(j.turns) == len(first.turns) for j in js):
            # a dialogue: each judged turn is combined across the judges too, so per-turn scores survive
            common["turns"] = [combine({name: [j.turns[i]] for name, j in zip(names, js, strict=True)})[0]
                               for i in range(len(first.turns))]
        bad = [(name, j) for name, j in members if j is not None and j.status is not Status.OK]
        if bad:
            detail = "; ".join(f"{name}: {j.status.value}" + (f" ({j.detail})" if j.detail else "") for name, j in bad)
            out.append(Judgment(**common, status=bad[0][1].status, detail=detail))
            continue
        dims: dict[str, list[float]] = {}
        for j in js:
            for dim, value in j.scores.items():
                dims.setdefault(dim, []).append(value)
        partial = [d for d, v in dims.items() if len(v) < len(js)]
        detail = f"mean of {len(js)} judges" + (f"; {', '.join(partial)} scored by only some" if partial else "")
        out.append(Judgment(**common, status=Status.OK, scores={d: _r(np.mean(v)) for d, v in dims.items()},
                            overall=_r(np.mean([j.overall for j in js])), detail=detail))
    return out


def _pair_stats(a: list[float], b: list[float]) -> dict[str, Any]:
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    out: dict[str, Any] = {"n": len(x), "mad": _r(np.abs(x - y).mean()) if len(x) else None}
    reason = undefined_reason(x, y)
    if reason:
        reason = reason.replace("judge scores", "first judge's scores").replace("human scores", "second judge's scores")
    out["spearman"] = None if reason else _r(corr(x, y, "spearman"))
    out["undefined"] = reason
    return out


def _summarise(pairs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Mean of the per-pair figures (for two judges: that pair's figures)."""
    stats = list(pairs.values())
    mads = [s["mad"] for s in stats if s["mad"] is not None]
    rhos = [s["spearman"] for s in stats if s["spearman"] is not None]
    reasons = sorted({s["undefined"] for s in stats if s["undefined"]})
    out = {"n": stats[0]["n"] if stats else 0, "mad": _r(np.mean(mads)) if mads else None,
           "spearman": _r(np.mean(rhos)) if rhos else None,
           "undefined": "; ".join(reasons) if not rhos and reasons else None}
    if len(stats) > 1:
        out["pairs"] = pairs
    return out


def disagreement(per_judge: Mapping[str, Sequence[Judgment]], categories: Sequence[str], *,
                 n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """How much the judges disagree, on the answers every judge scored.

    Per category and overall: ``mad`` = mean absolute difference of two judges' overall scores of
    the same answer (1–10 points), ``spearman`` = rank correlation of their overall scores across
    the category's answers (None with ``undefined`` when a judge gave every answer the same score).
    With more than two judges both are averaged over judge pairs (``pairs`` has each one). Per
    dimension: ``mad`` over all answers where both judges scored that dimension.

    ``alpha`` (per category and overall): Krippendorff's α of the judges' overall scores, interval and
    ordinal, each with a bootstrap CI over answers (``stats.agreement``): one chance-corrected figure
    for any number of judges; an answer a judge failed counts with the judges that scored it.
    """
    names = list(per_judge)
    index = {name: {(j.question_id, j.model): j for j in js if j.status is Status.OK}
             for name, js in per_judge.items()}
    keys = [k for k in index[names[0]] if all(k in index[n] for n in names[1:])]
    category = {k: j.category for n in names for k, j in index[n].items()}
    every = list(category)  # answers at least one judge scored (α takes missing ratings)
    cats: dict[str, Any] = {}
    for cat in [*categories, None]:
        mine = [k for k in keys if cat is None or index[names[0]][k].category == cat]
        if cat is not None and not mine:
            continue
        pairs = {f"{a} vs {b}": _pair_stats([index[a][k].overall for k in mine], [index[b][k].overall for k in mine])
                 for a, b in combinations(names, 2)}
        rated = [k for k in every if cat is None or category[k] == cat]
        alpha = agreement(np.array([[index[n][k].overall if k in index[n] else np.nan for n in names] for k in rated],
                                   dtype=float).reshape(len(rated), len(names)), n_boot=n_boot, seed=seed)
        if cat is None:
            overall = {**_summarise(pairs), "alpha": alpha}
        else:
            cats[cat] = {**_summarise(pairs), "alpha": alpha}
    dims: dict[str, Any] = {}
    all_dims = dict.fromkeys(d for k in keys for n in names for d in index[n][k].scores)
    for dim in all_dims:
        diffs = [abs(index[a][k].scores[dim] - index[b][k].scores[dim]) for a, b in combinations(names, 2)
                 for k in keys if dim in index[a][k].scores and dim in index[b][k].scores]
        if diffs:
            dims[dim] = {"n": len(diffs), "mad": _r(np.mean(diffs))}
    n_total = len({(j.question_id, j.model) for j in per_judge[names[0]]})
    return {"judges": names, "method": "mean of the judges' scores per dimension and overall",
            "n_answers": n_total, "n_compared": len(keys), "overall": overall, "categories": cats,
            "dimensions": dims}
