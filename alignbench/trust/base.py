"""What the trust statistics share: the JSON-ready result base, the one-judgment-per-answer check and
AlignBench-weighted scores."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from alignbench import stats
from alignbench.rubrics import Rubric
from alignbench.stats.fmt import finite as _f
from alignbench.stats.fmt import rnd
from alignbench.types import Judgment, Result, Status

Key = tuple[int, str]  # (question_id, model): one answer
Kind = stats.Kind


def _clean(value: Any, digits: int | None) -> Any:
    """JSON-ready copy: tuples → lists, NaN/inf → None, floats rounded (``digits`` None: kept)."""
    if isinstance(value, dict):
        return {str(k): _clean(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v, digits) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _f(value) if digits is None else rnd(value, digits)
    return value


class _AsDict(Result):
    """The trust results: ``as_dict()`` is the ``--format json`` body (4 digits); positional arguments
    are taken in field order."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(**dict(zip(list(type(self).model_fields)[:len(args)], args, strict=True)), **kwargs)

    def as_dict(self) -> dict[str, Any]:
        return _clean(self.model_dump(), 4)


def _ok_overall(j: Judgment) -> bool:
    return j.status is Status.OK and j.overall is not None


def _one_per_answer(judgments: Iterable[Judgment], what: str) -> dict[Key, Judgment]:
    out: dict[Key, Judgment] = {}
    for j in judgments:
        key = (j.question_id, j.model)
        if key in out:
            raise ValueError(f"{what}: answer (question {key[0]}, model {key[1]}) is judged more than once; pass one "
                             "judgment per answer (average repeated samples first, see judge_variance)")
        out[key] = j
    return out


def _weighted_scores(keys: Sequence[Key], cat_of: Mapping[Key, str], values: Mapping[str, Mapping[Key, float]],
                     rubric: Rubric) -> list[tuple[str, Kind, str, int, dict[str, float | None]]]:
    """AlignBench-weighted score of each series in ``values`` for overall, groups and categories, using
    ``question_weights`` (a_i = W_c/n_c, so Σ a_i s_i = Σ_c W_c mean_c(s))."""
    present = [c for c in rubric.category_names() if any(cat_of[k] == c for k in keys)]
    out = []
    for key, kind, name, _en, weights in stats.score_units(rubric, present):
        mine = [k for k in keys if cat_of[k] in weights]
        a = stats.question_weights([cat_of[k] for k in mine], weights)
        out.append((key, kind, name, len(mine),
                    {s: float(a @ np.array([v[k] for k in mine])) if mine else None for s, v in values.items()}))
    return out
