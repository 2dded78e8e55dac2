"""Judgments -> per-dimension, per-category, group and overall scores with bootstrap CIs.

AlignBench's convention: a category score is the mean overall score of its answers; each group
(reasoning = 数学计算 + 逻辑推理, language = the other six) is the mean of its category means; the
overall score is the mean of the two groups. So a reasoning category weighs 1/4 and a language
category 1/12 of the total. Only ``ok`` judgments count; the number excluded is always reported.
CIs resample answers within each category (a stratified bootstrap, seeded) and push every resample
through the same formula, so group and overall CIs respect the unequal weights.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from alignbench import stats
from alignbench.rubrics import Rubric
from alignbench.stats.fmt import rnd as _r
from alignbench.stats.fmt import rnd_ci
from alignbench.types import Judgment, Status

N_BOOTSTRAP = 2000


def expected_view(j: Judgment) -> Judgment:
    """The judgment scored by its expected scores (``--score-from logprobs``) where it has them; the verdict
    otherwise. Turns of a dialogue are viewed the same way."""
    if j.overall_expected is None and not j.scores_expected and not j.turns:
        return j
    update: dict[str, Any] = {"turns": [expected_view(t) for t in j.turns]}
    if j.overall_expected is not None:
        update["overall"] = j.overall_expected
    if j.scores_expected:
        update["scores"] = {**j.scores, **j.scores_expected}
    return j.model_copy(update=update)


def _protocol_sections(judgments: list[Judgment], view: list[Judgment], score_from: str, level: float,
                       n_boot: int, rng: np.random.Generator) -> dict[str, Any]:
    """Summary keys that exist only when a protocol feature was used (a plain run's summary is unchanged):
    how many scores came from log-probabilities, per-turn scores of dialogues, answers' reasoning, answers that
    carry a verdict of their own."""
    out: dict[str, Any] = {}
    if score_from == "logprobs":
        ok = [j for j in judgments if j.status is Status.OK]
        out["score_from"] = {"source": "logprobs", "n_expected": sum(j.overall_expected is not None for j in ok),
                             "n_verdict": sum(j.overall_expected is None for j in ok)}
    dialogues = [j for j in view if j.turns]
    if dialogues:
        turns: dict[str, Any] = {}
        for k in sorted({t.turn for j in dialogues for t in j.turns if t.turn is not None}):
            mine = [t for j in dialogues for t in j.turns if t.turn == k]
            good = np.array([t.overall for t in mine if t.status is Status.OK and t.overall is not None], dtype=float)
            entry: dict[str, Any] = {"score": None, "ci": None, "n": int(len(good)), "n_failed": len(mine) - len(good)}
            if len(good):
                entry.update(score=_r(good.mean()), ci=rnd_ci(stats.percentile_ci(stats.means(good, n_boot, rng), level)))
            turns[str(k)] = entry
        out["dialogues"] = {"n": len(dialogues), "judged_turns": sum(len(j.turns) for j in dialogues),
                            "turns": turns, "unit": "a dialogue scores the mean of its judged turns"}
    injected = [j.question_id for j in judgments if j.injection]
    if injected:  # answers that carry a verdict of their own (parse.py rule 8): a model trying to grade itself
        out["injection"] = {"n": len(injected), "question_ids": sorted(set(injected))[:50]}
    flags = Counter(j.answer_reasoning for j in judgments if j.answer_reasoning)
    if flags:
        out["answer_reasoning"] = {"removed": flags.get("removed", 0), "leaked": flags.get("leaked", 0)}
    return out


def summarize(judgments: list[Judgment], rubric: Rubric, seed: int = 0, n_boot: int = N_BOOTSTRAP,
              level: float = 0.95, score_from: str = "verdict") -> dict[str, Any]:
    """The score summary of one model's judgments (the body of ``summary.json``). ``score_from`` logprobs
    averages the expected scores where judgments have them (``expected_view``)."""
    original = judgments
    if score_from == "logprobs":
        judgments = [expected_view(j) for j in judgments]
    rng = np.random.default_rng(seed)
    ok = [j for j in judgments if j.status is Status.OK]
    failed = Counter(j.status.value for j in judgments if j.status is not Status.OK)

    def ci(samples: np.ndarray) -> list[float | None] | None:
        return rnd_ci(stats.percentile_ci(samples, level))

    categories: dict[str, Any] = {}
    dims_all = rubric.all_dimensions()
    by_category: dict[tuple[str, str], list[float]] = {}  # (category, dimension) -> scores, judgment order
    by_dimension: dict[str, list[float]] = {}
    for j in ok:
        for dim, value in j.scores.items():
            by_category.setdefault((j.category, dim), []).append(value)
            by_dimension.setdefault(dim, []).append(value)
    present_dims = [d for d in dims_all if d in by_dimension]
    ok_scores = {c.name: np.array([j.overall for j in ok if j.category == c.name], dtype=float) for c in rubric.categories}
    # the stratified bootstrap: answers resampled within each category, categories in rubric order
    boots = stats.stratified_means({c: v for c, v in ok_scores.items() if len(v)}, n_boot, rng)
    for cat in rubric.categories:
        mine = [j for j in judgments if j.category == cat.name]
        good = [j for j in mine if j.status is Status.OK]
        entry: dict[str, Any] = {"score": None, "ci": None, "n": len(good), "n_failed": len(mine) - len(good),
                                 "group": cat.group, "en": cat.en, "dimensions": {}}
        if good:
            scores = ok_scores[cat.name]
            entry["score"] = _r(scores.mean())
            entry["ci"] = ci(boots[cat.name])
            for dim in present_dims:
                if values := by_category.get((cat.name, dim)):
                    entry["dimensions"][dim] = {"mean": _r(np.mean(values)), "n": len(values)}
        if mine:
            categories[cat.name] = entry

    groups: dict[str, Any] = {}
    group_boots: dict[str, np.ndarray] = {}
    for gid, group in rubric.groups.items():
        names = [c for c in rubric.category_names(gid) if c in boots]
        if not names:
            groups[gid] = {"name": group.name, "en": group.en, "score": None, "ci": None, "categories": []}
            continue
        group_boots[gid] = np.mean([boots[c] for c in names], axis=0)
        score = float(np.mean([categories[c]["score"] for c in names]))
        groups[gid] = {"name": group.name, "en": group.en, "score": _r(score), "ci": ci(group_boots[gid]),
                       "categories": names,
                       "complete": len(names) == len(rubric.category_names(gid))}

    present = [g for g in groups.values() if g["score"] is not None]
    overall = _r(float(np.mean([g["score"] for g in present]))) if present else None
    overall_ci = ci(np.mean(list(group_boots.values()), axis=0)) if group_boots else None

    dimensions = {d: {"mean": _r(np.mean(by_dimension[d])), "n": len(by_dimension[d])} for d in present_dims}

    subcategories: dict[str, Any] = {}
    for key in sorted({(j.category, j.subcategory) for j in judgments}):
        good = [j.overall for j in ok if (j.category, j.subcategory) == key]
        subcategories[f"{key[0]}/{key[1]}"] = {"category": key[0], "subcategory": key[1], "n": len(good),
                                                "score": _r(float(np.mean(good))) if good else None}

    return {
        "scale": [rubric.scale.min, rubric.scale.max],
        "overall": overall,
        "overall_ci": overall_ci,
        "reasoning": groups.get("reasoning", {}).get("score"),
        "reasoning_ci": groups.get("reasoning", {}).get("ci"),
        "language": groups.get("language", {}).get("score"),
        "language_ci": groups.get("language", {}).get("ci"),
        "n": len(judgments),
        "n_ok": len(ok),
        "n_failed": sum(failed.values()),
        "failed_by_status": dict(sorted(failed.items())),
        "groups": groups,
        "categories": categories,
        "dimensions": dimensions,
        "subcategories": subcategories,
        "ci_level": level,
        "bootstrap": {"resamples": n_boot, "seed": seed, "unit": "answers within category"},
        **_protocol_sections(original, judgments, score_from, level, n_boot, rng),
    }
