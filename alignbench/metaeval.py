"""Meta-evaluation: how far a judge (and a protocol) agrees with human labels.

Pure layer: reading human-labelled files and computing agreement metrics. Judging goes through the
same pieces as ``score`` and ``compare`` (``scoring.judge_items``, ``pairwise.compare.judge_pairs``:
cache first, bounded concurrency, retries), driven by ``alignbench.api.meta_eval``.

Pointwise files (one answer + a human score) give correlations between the judge's overall score
and the human score:

* **pooled**: over every successfully judged row;
* **sample level** (CritiqueLLM): within each question's block of answers, then averaged over the
  blocks; a block with fewer than two judged rows or with constant judge or human scores has no
  correlation and is skipped (and counted), as CritiqueLLM skips its NaN blocks;
* **per category**: pooled and sample level within the category;
* **system level**: per-model means (over the rows the judge scored) when rows name a ``model``.

Scales: the judge scores 1–10, CritiqueLLM's humans 1–5. No mapping is applied because none is
needed: Pearson's r is unchanged by any positive linear rescaling of either variable, Spearman's ρ
and Kendall's τ-b by any strictly increasing one. Kendall is τ-b (ties in either variable adjusted).

Undefined is a value, not a NaN: a correlation over fewer than two points, or over constant judge or
human scores, is ``None`` with a reason (``undefined``), and a table prints "undefined".

Pairwise files (two answers + a label) are judged in both orders (by the compare pipeline):

* ``consistency``: share of pairs whose two verdicts agree once the swap is undone (tie/tie counts);
* ``agreement`` (ties included, CritiqueLLM's definition): share of pairs whose two verdicts are
  consistent **and** equal the human label; a human tie is matched only by tie/tie; an inconsistent
  pair never agrees;
* ``agreement_excl_ties`` (MT-Bench's "without tie"): over pairs where neither the human nor the
  judge says tie (an inconsistent pair counts as a judge tie), share where the judge picks the
  human's answer;
* ``accuracy_per_order`` (ReIFE/LLMBar): share of the 2n single-order verdicts equal to the label;
* ``first_position_rate``: share of decisive single-order verdicts that chose 助手1 (0.5 = no
  position bias).

Confidence intervals are seeded percentile bootstraps: rows for pooled and category figures, question
blocks for sample level, rows within each model for system level, pairs for pairwise figures.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from alignbench import safejson
from alignbench.data import InputError
from alignbench.rubrics import Rubric
from alignbench.stats import METRICS, corr, corr_rows, draw, percentile_ci, undefined_reason
from alignbench.stats import means as boot_means
from alignbench.stats.fmt import rnd as _r
from alignbench.stats.fmt import rnd_ci
from alignbench.types import Question, Result

Label = Literal["1", "2", "tie"]
N_BOOTSTRAP = 1000
SCALE_NOTE = ("judge overall scores (1–10) are correlated with human scores as they are: Pearson is "
              "invariant to positive linear rescaling and Spearman/Kendall to any increasing one, so "
              "the 1–5 human scale needs no mapping")

# CritiqueLLM pairwise files: label 0 = response_1 better, 1 = response_2 better, 2 = tie.
_CRITIQUELLM_LABELS: dict[int, Label] = {0: "1", 1: "2", 2: "tie"}
# LLMBar files (input/output_1/output_2): label 1 or 2 names the better output.
_LLMBAR_LABELS: dict[int, Label] = {1: "1", 2: "2"}

_QUESTION_KEYS = ("question", "input", "instruction")
_RESPONSE_KEYS = ("response", "answer", "output")
_MODEL_KEYS = ("model", "model_id", "generator")


# ================================================================================================
# Data
# ================================================================================================


@dataclass(frozen=True)
class PointRow:
    """One human-scored answer. ``question.id`` numbers the question's block within its file."""

    file: str
    line: int
    question: Question
    response: str
    human: float
    model: str | None


@dataclass(frozen=True)
class PairRow:
    """One human-labelled pair. ``label``: which response is better ("1", "2") or "tie"."""

    file: str
    line: int
    question: Question
    response_1: str
    response_2: str
    label: Label


@dataclass
class MetaData:
    points: list[PointRow]
    pairs: list[PairRow]
    files: dict[str, dict[str, Any]]  # path -> {"kind", "n", "has_reference", "human_range"}


def _records(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, record) from JSONL, or (record number, record) from a JSON list (LLMBar)."""
    from alignbench.data import read_jsonl

    if not path.is_file():
        raise InputError(path, None, "file not found")
    with path.open("rb") as fh:  # the first bytes only: a huge file is refused by its size, not read first
        head = fh.read(4096).decode("utf-8-sig", errors="replace").lstrip()
    if not head.startswith("["):
        return list(read_jsonl(path))
    try:
        data = safejson.read_json(path)
    except json.JSONDecodeError as exc:
        raise InputError(path, exc.lineno if exc.doc else None, safejson.describe(exc)) from None
    out = []
    for i, obj in enumerate(data, start=1):
        if not isinstance(obj, dict):
            raise InputError(path, None, f"record {i}: expected a JSON object")
        out.append((i, obj))
    return out


def _text(obj: dict, keys: Sequence[str], what: str, path: Path, line: int, required: bool = True) -> str | None:
    for key in keys:
        value = obj.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise InputError(path, line, f"field {key!r} must be a string, got {type(value).__name__}")
        if required and not value.strip():
            raise InputError(path, line, f"empty field {key!r}")
        return value
    if required:
        raise InputError(path, line, f"missing {what} (one of {', '.join(repr(k) for k in keys)})")
    return None


def _number(value: Any, key: str, path: Path, line: int) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InputError(path, line, f"field {key!r} must be a number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise InputError(path, line, f"field {key!r} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise InputError(path, line, f"field {key!r} must be a finite number, got {value!r}")
    return number


def _label(obj: dict, llmbar: bool, path: Path, line: int) -> Label:
    raw = obj.get("label")
    table = _LLMBAR_LABELS if llmbar else _CRITIQUELLM_LABELS
    expected = ("1 (output_1 better) or 2 (output_2 better)" if llmbar else
                "0 (response_1 better), 1 (response_2 better) or 2 (tie)")
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise InputError(path, line, f"missing or invalid 'label'; expected {expected}")
    try:
        value = float(raw)
    except ValueError:
        raise InputError(path, line, f"label {raw!r} is not {expected}") from None
    if not value.is_integer() or int(value) not in table:
        raise InputError(path, line, f"label {raw!r} is not {expected}")
    return table[int(value)]


def review_points(run_dir: Path, rubric: Rubric) -> tuple[list[PointRow], dict[str, Any]]:
    """A run folder's reviews as pointwise human-labelled rows: for each judgment with a current review
    (``reviews.human_labels``; stale ones left out), its question and answer texts (from the files
    the run's manifest records) and the reviewer's overall score. Why: reviews collected in the viewer
    measure the judge exactly as a labelled data set does, and meta-eval can then compare judges and
    protocols on them. Every problem is an InputError naming the folder."""
    from alignbench.reviews import REVIEWS_FILE, ReviewError, human_labels, load_reviews
    from alignbench.rundir import RunError, expand_runs, load_answer_texts, load_run

    rows: list[PointRow] = []
    humans: list[float] = []
    missing = 0
    for d in expand_runs([run_dir]):
        try:
            run = load_run(d)
            reviews = load_reviews(run.dir)
        except (RunError, ReviewError) as exc:
            raise InputError(d, None, str(exc)) from None
        labels = human_labels(run.judgments, reviews)
        if not labels:
            continue
        if run.questions is None:
            raise InputError(d, None, f"the reviewed answers are judged again, which needs the question texts: "
                             f"{run.questions_note}")
        answers, note = load_answer_texts(run)
        if note:
            raise InputError(d, None, f"the reviewed answers are judged again, which needs their texts: {note}")
        number = {r.key: i for i, r in enumerate(reviews, start=1)}  # the latest review of each answer
        for j, score in labels:
            q, a = run.questions.get(j.question_id), answers.get(j.question_id)
            cat = rubric.category(j.category)
            if q is None or a is None or cat is None:
                missing += 1
                continue
            sub = q.subcategory if q.subcategory in rubric.subcategory_types else ""
            question = Question(id=q.id, category=cat.name, subcategory=sub, question=q.question,
                                reference=q.reference)
            rows.append(PointRow(str(run.dir / REVIEWS_FILE), number[j.question_id, j.model], question, a.text,
                                 float(score), j.model))
            humans.append(float(score))
    if not rows:
        raise InputError(run_dir, None, f"no current review in {REVIEWS_FILE}: review judgments with "
                         "`alignbench view` first" + (f" ({missing} reviewed answer(s) lack a question or answer "
                                                       "text)" if missing else ""))
    info = {"kind": "reviews", "n_pointwise": len(rows), "n_pairwise": 0,
            "n_with_reference": sum(bool(r.question.reference.strip()) for r in rows),
            "human_range": [min(humans), max(humans)], "n_without_text": missing}
    return rows, info


def load_meta_files(paths: Sequence[Path | str], rubric: Rubric, default_category: str | None = None) -> MetaData:
    """Read human-labelled files; every problem is an InputError naming file and line.

    Accepted layouts (detected per row, any mix per file):

    * pointwise: ``question`` (or ``input``/``instruction``), ``category``, optional ``reference``,
      ``response`` (or ``answer``/``output``), ``human_score``, optional ``model``; optional
      ``question_id`` groups rows of one question (else the question text does) — CritiqueLLM's
      ``id`` is a row number, not a question id, and is ignored;
    * pairwise, CritiqueLLM: ``response_1``, ``response_2``, ``label`` 0/1/2 (2 = tie);
    * pairwise, LLMBar (a JSON list): ``input``, ``output_1``, ``output_2``, ``label`` 1/2.

    ``category`` may be an alias (``基本能力``); rows without one take ``default_category`` (LLMBar
    has none), else the row is an error.

    A **run folder** (or a folder of run folders) stands for the reviews in its ``reviews.jsonl``: each
    reviewed answer becomes a pointwise row with the reviewer's score (1–10) as the human score
    (``review_points``).
    """
    if default_category is not None and rubric.category(default_category) is None:
        raise InputError("--category", None, f"unknown category {default_category!r}; expected one of "
                         f"{', '.join(rubric.category_names())}")
    points: list[PointRow] = []
    pairs: list[PairRow] = []
    files: dict[str, dict[str, Any]] = {}
    for raw_path in paths:
        path = Path(raw_path)
        if path.is_dir():
            reviewed, info = review_points(path, rubric)
            points.extend(reviewed)
            files[str(path)] = info
            continue
        blocks: dict[tuple[str, str], int] = {}
        n_point = n_pair = 0
        refs = 0
        humans: list[float] = []
        for line, obj in _records(path):
            question = _text(obj, _QUESTION_KEYS, "the question", path, line)
            cat_name = obj.get("category", default_category)
            if cat_name is None:
                raise InputError(path, line, "no 'category'; pass --category NAME to use one category for rows "
                                 f"without it (one of {', '.join(rubric.category_names())})")
            cat = rubric.category(cat_name) if isinstance(cat_name, str) else None
            if cat is None:
                raise InputError(path, line, f"unknown category {cat_name!r}; expected one of "
                                 f"{', '.join(rubric.category_names())}")
            subcategory = obj.get("subcategory") or ""
            if not isinstance(subcategory, str):
                raise InputError(path, line, "field 'subcategory' must be a string")
            if subcategory and subcategory not in rubric.subcategory_types:
                subcategory = ""  # unknown subcategory: the category decides the answer type
            reference = _text(obj, ("reference",), "reference", path, line, required=False) or ""
            refs += bool(reference.strip())
            group = str(obj["question_id"]) if obj.get("question_id") is not None else question
            block = blocks.setdefault((cat.name, group), len(blocks) + 1)
            q = Question(id=block, category=cat.name, subcategory=subcategory, question=question, reference=reference)
            is_pair = "label" in obj and any(k in obj for k in ("response_1", "output_1"))
            if is_pair:
                llmbar = "response_1" not in obj
                keys = ("output_1", "output_2") if llmbar else ("response_1", "response_2")
                r1 = _text(obj, keys[:1], keys[0], path, line)
                r2 = _text(obj, keys[1:], keys[1], path, line)
                pairs.append(PairRow(str(path), line, q, r1 or "", r2 or "", _label(obj, llmbar, path, line)))
                n_pair += 1
                continue
            if "human_score" not in obj:
                raise InputError(path, line, "neither a pointwise row (needs 'response' and 'human_score') nor a "
                                 "pairwise one (needs 'response_1', 'response_2' and 'label')")
            response = _text(obj, _RESPONSE_KEYS, "the response", path, line)
            human = _number(obj["human_score"], "human_score", path, line)
            model = _text(obj, _MODEL_KEYS, "model", path, line, required=False)
            points.append(PointRow(str(path), line, q, response or "", human, model))
            humans.append(human)
            n_point += 1
        if not n_point and not n_pair:
            raise InputError(path, None, "no rows in file")
        files[str(path)] = {"kind": "pointwise" if not n_pair else ("pairwise" if not n_point else "mixed"),
                            "n_pointwise": n_point, "n_pairwise": n_pair, "n_with_reference": refs,
                            "human_range": [min(humans), max(humans)] if humans else None}
    return MetaData(points=points, pairs=pairs, files=files)


# ================================================================================================
# Correlations (vectorised over bootstrap resamples: ``alignbench.stats``)
# ================================================================================================


def correlate(judge: Sequence[float], human: Sequence[float], n_boot: int = N_BOOTSTRAP,
              rng: np.random.Generator | None = None, level: float = 0.95) -> dict[str, Any]:
    """Pearson, Spearman and Kendall τ-b between paired scores, with row-bootstrap CIs."""
    x, y = np.asarray(judge, dtype=float), np.asarray(human, dtype=float)
    out: dict[str, Any] = {"n": len(x)}
    reason = undefined_reason(x, y)
    if reason:
        return {**out, **dict.fromkeys(METRICS), "ci": dict.fromkeys(METRICS), "undefined": reason}
    out.update({m: _r(corr(x, y, m)) for m in METRICS})
    cis: dict[str, Any] = dict.fromkeys(METRICS)
    if n_boot > 0:
        rng = rng or np.random.default_rng(0)
        idx = draw(rng, len(x), n_boot)
        cis = {m: rnd_ci(percentile_ci(corr_rows(x, y, m, idx), level)) for m in METRICS}
    return {**out, "ci": cis, "undefined": None}


def sample_level(judge: Sequence[float], human: Sequence[float], blocks: Sequence[Any], n_boot: int = N_BOOTSTRAP,
                 rng: np.random.Generator | None = None, level: float = 0.95) -> dict[str, Any]:
    """CritiqueLLM's sample-level correlation: per block (question), then the mean over the blocks
    where it is defined; CIs resample blocks."""
    x, y = np.asarray(judge, dtype=float), np.asarray(human, dtype=float)
    members: dict[Any, list[int]] = {}
    for i, b in enumerate(blocks):
        members.setdefault(b, []).append(i)
    per_block: dict[str, list[float]] = {m: [] for m in METRICS}
    skipped = {"fewer than 2 judged rows": 0, "judge scores are constant": 0, "human scores are constant": 0}
    sizes = []
    for rows in members.values():
        bx, by = x[rows], y[rows]
        reason = undefined_reason(bx, by)
        if reason:
            skipped[reason] += 1
            continue
        sizes.append(len(rows))
        for m in METRICS:
            per_block[m].append(corr(bx, by, m))
    n_blocks = len(sizes)
    out: dict[str, Any] = {"n_blocks": n_blocks, "n_rows": int(sum(sizes)),
                           "n_blocks_skipped": sum(skipped.values()),
                           "skipped": {k: v for k, v in skipped.items() if v},
                           "block_sizes": dict(sorted(_count(sizes).items()))}
    if not n_blocks:
        return {**out, **dict.fromkeys(METRICS), "ci": dict.fromkeys(METRICS),
                "undefined": "no question has 2 or more judged answers with varying judge and human scores"}
    out.update({m: _r(float(np.mean(per_block[m]))) for m in METRICS})
    cis: dict[str, Any] = dict.fromkeys(METRICS)
    if n_boot > 0 and n_blocks >= 2:
        rng = rng or np.random.default_rng(0)
        idx = draw(rng, n_blocks, n_boot)
        cis = {m: rnd_ci(percentile_ci(np.asarray(per_block[m])[idx].mean(axis=1), level)) for m in METRICS}
    return {**out, "ci": cis, "undefined": None}


def _count(values: Sequence[int]) -> dict[int, int]:
    out: dict[int, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def system_level(judge: Sequence[float], human: Sequence[float], systems: Sequence[str | None],
                 n_boot: int = N_BOOTSTRAP, rng: np.random.Generator | None = None,
                 level: float = 0.95) -> dict[str, Any]:
    """Correlation of per-model mean judge scores with per-model mean human scores (over the rows
    the judge scored); CIs resample rows within each model."""
    x, y = np.asarray(judge, dtype=float), np.asarray(human, dtype=float)
    members: dict[str, list[int]] = {}
    for i, s in enumerate(systems):
        if s is not None:
            members.setdefault(s, []).append(i)
    names = sorted(members)
    means = {s: {"judge": _r(float(x[members[s]].mean())), "human": _r(float(y[members[s]].mean())),
                 "n": len(members[s])} for s in names}
    out: dict[str, Any] = {"n_systems": len(names), "systems": means}
    if len(names) < 2:
        reason = "rows name no model" if not names else "fewer than 2 models"
        return {**out, **dict.fromkeys(METRICS), "ci": dict.fromkeys(METRICS), "undefined": reason}
    mx = np.array([x[members[s]].mean() for s in names])
    my = np.array([y[members[s]].mean() for s in names])
    reason = undefined_reason(mx, my)
    if reason:
        reason = reason.replace("scores", "model means")
        return {**out, **dict.fromkeys(METRICS), "ci": dict.fromkeys(METRICS), "undefined": reason}
    out.update({m: _r(corr(mx, my, m)) for m in METRICS})
    cis: dict[str, Any] = dict.fromkeys(METRICS)
    if n_boot > 0:
        rng = rng or np.random.default_rng(0)
        bx = np.empty((n_boot, len(names)))
        by = np.empty((n_boot, len(names)))
        for k, s in enumerate(names):
            rows = np.asarray(members[s])
            pick = rows[draw(rng, len(rows), n_boot)]
            bx[:, k], by[:, k] = x[pick].mean(axis=1), y[pick].mean(axis=1)
        cis = {m: rnd_ci(percentile_ci(corr_rows(bx, by, m), level)) for m in METRICS}
    return {**out, "ci": cis, "undefined": None}


def pointwise_metrics(rows: Sequence[PointRow], scores: Sequence[float | None], statuses: Sequence[str],
                      categories: Sequence[str], n_boot: int = N_BOOTSTRAP, seed: int = 0,
                      level: float = 0.95) -> dict[str, Any]:
    """Every pointwise figure for one (judge, protocol). ``scores[i]`` is the judge's overall score of
    ``rows[i]`` or None when that judgment failed (``statuses[i]`` says how); failed rows are left
    out of every correlation and counted."""
    rng = np.random.default_rng(seed)
    ok = [i for i, s in enumerate(scores) if s is not None]
    failed: dict[str, int] = {}
    for i, s in enumerate(scores):
        if s is None:
            failed[statuses[i]] = failed.get(statuses[i], 0) + 1
    x = [float(scores[i]) for i in ok]  # type: ignore[arg-type]
    y = [rows[i].human for i in ok]
    block = [(rows[i].file, rows[i].question.id) for i in ok]
    pooled = correlate(x, y, n_boot, rng, level)
    out: dict[str, Any] = {
        "n": len(ok), "n_failed": len(rows) - len(ok), "failed_by_status": dict(sorted(failed.items())),
        **{m: pooled[m] for m in METRICS}, "ci": pooled["ci"], "undefined": pooled["undefined"],
        "sample_level": sample_level(x, y, block, n_boot, rng, level),
        "system_level": system_level(x, y, [rows[i].model for i in ok], n_boot, rng, level),
    }
    cats: dict[str, Any] = {}
    for cat in categories:
        mine = [k for k, i in enumerate(ok) if rows[i].question.category == cat]
        n_all = sum(r.question.category == cat for r in rows)
        if not n_all:
            continue
        cx, cy = [x[k] for k in mine], [y[k] for k in mine]
        c = correlate(cx, cy, n_boot, rng, level)
        cats[cat] = {"n": len(mine), "n_failed": n_all - len(mine), **{m: c[m] for m in METRICS}, "ci": c["ci"],
                     "undefined": c["undefined"],
                     "sample_level": sample_level(cx, cy, [block[k] for k in mine], n_boot, rng, level)}
    out["categories"] = cats
    judged = [float(scores[i]) for i in ok]  # type: ignore[arg-type]
    humans = [r.human for r in rows]
    out["scales"] = {"judge_observed": [min(judged), max(judged)] if judged else None,
                     "human_observed": [min(humans), max(humans)] if humans else None, "note": SCALE_NOTE}
    return out


# ================================================================================================
# Pairwise agreement
# ================================================================================================


@dataclass(frozen=True)
class PairOutcome:
    """The un-swapped verdicts of one pair: ``first`` with response_1 shown as 助手1, ``second`` with
    response_2 shown as 助手1 (both already mapped back to "1"/"2"/"tie" = which response won);
    None when that order failed (``status`` then says how)."""

    label: Label
    first: Label | None
    second: Label | None
    status: str = "ok"  # the failing status when either order failed


def pairwise_metrics(outcomes: Sequence[PairOutcome], n_boot: int = N_BOOTSTRAP, seed: int = 0,
                     level: float = 0.95) -> dict[str, Any]:
    """Agreement and swap consistency of one (judge, protocol) over human-labelled pairs."""
    rng = np.random.default_rng(seed)
    scored = [o for o in outcomes if o.first is not None and o.second is not None]
    failed: dict[str, int] = {}
    for o in outcomes:
        if o.first is None or o.second is None:
            failed[o.status] = failed.get(o.status, 0) + 1
    n = len(scored)
    consistent = np.array([o.first == o.second for o in scored], dtype=float)
    agree = np.array([o.first == o.second == o.label for o in scored], dtype=float)
    decisive = [o for o in scored if o.label != "tie" and o.first == o.second and o.first != "tie"]
    agree_nt = np.array([o.first == o.label for o in decisive], dtype=float)
    per_order = np.array([[o.first == o.label, o.second == o.label] for o in scored], dtype=float).reshape(-1, 2)
    # positions: in the first order response_1 sat at 助手1, in the second response_2 did
    pos1 = [(o.first == "1") for o in scored if o.first != "tie"] + [(o.second == "2") for o in scored if o.second != "tie"]

    def mean(a: np.ndarray) -> float | None:
        return _r(float(a.mean())) if len(a) else None

    def boot(a: np.ndarray) -> list[float] | None:
        if n_boot <= 0 or len(a) < 2:
            return None
        return rnd_ci(percentile_ci(boot_means(a, n_boot, rng), level))

    labels = [o.label for o in outcomes]
    return {
        "n": n, "n_failed": len(outcomes) - n, "failed_by_status": dict(sorted(failed.items())),
        "agreement": mean(agree), "agreement_excl_ties": mean(agree_nt), "n_excl_ties": len(decisive),
        "consistency": mean(consistent), "accuracy_per_order": mean(per_order),
        "first_position_rate": _r(float(np.mean(pos1))) if pos1 else None, "n_decisive_verdicts": len(pos1),
        "ci": {"agreement": boot(agree), "agreement_excl_ties": boot(agree_nt), "consistency": boot(consistent),
               "accuracy_per_order": boot(per_order)},
        "human_labels": {k: labels.count(k) for k in ("1", "2", "tie")},
        "undefined": None if n else "no pair was judged successfully in both orders",
    }


# ================================================================================================
# Judging the labelled rows (through the one engine, as score and compare do)
# ================================================================================================

_WINNER = {"model": "1", "baseline": "2", "tie": "tie"}  # compare's un-swapped winner -> which response


@dataclass
class MetaPlan:
    """Every (judge, protocol) to run over the labelled rows, checked before any call."""

    data: MetaData
    judges: list[str]
    protocols: list[str]
    combos: list[tuple[str, str, Any, Rubric]]  # (judge, protocol, ModelConfig, Rubric)
    max_answer_chars: int | None

    def warnings(self) -> list[str]:
        out = []
        needing = sorted({p for _, p, _, r in self.combos if r.include_reference})
        for path, info in self.data.files.items():
            missing = info["n_pointwise"] + info["n_pairwise"] - info["n_with_reference"]
            if missing and needing:
                out.append(f"{missing} row(s) of {path} have no reference answer; protocol {', '.join(needing)} "
                           "judges them without one (use --protocol reference-free for reference-free data)")
        return out

    def point_items(self, config: Any, rub: Rubric) -> list[Any]:
        from alignbench.prompts import build_request
        from alignbench.scoring import Item
        from alignbench.types import Answer

        items = []
        for row in self.data.points:
            answer = Answer(question_id=row.question.id, model=row.model or "response", text=row.response)
            request, truncated = build_request(rub, row.question, answer, config.decoding, self.max_answer_chars,
                                               system_role=config.system_role, structured_output=config.structured,
                                               logprobs=config.logprobs, completion=config.completion)
            items.append(Item(row.question, answer, request, truncated))
        return items

    def requests(self) -> list[tuple[Any, list[Any]]]:
        """(ModelConfig, every request it would get) per combo: what ``--dry-run`` estimates and what
        ``--max-cost`` checks before anything is sent."""
        return [(config, [it.request for it in (self.point_items(config, rub) if self.data.points else [])
                          + (self.pair_items(config, rub) if self.data.pairs else [])])
                for _, _, config, rub in self.combos]

    def pair_items(self, config: Any, rub: Rubric) -> list[Any]:
        """Both orders of every pair through compare's planner: response_1 plays "model", response_2
        "baseline"; each pair gets its own question id so pairs on one question stay apart."""
        from alignbench.pairwise.compare import plan_pairs
        from alignbench.types import Answer

        triples = []
        for i, row in enumerate(self.data.pairs, start=1):
            q = row.question.model_copy(update={"id": i})
            triples.append((q, Answer(question_id=i, model="response_1", text=row.response_1),
                            Answer(question_id=i, model="response_2", text=row.response_2)))
        return plan_pairs(triples, rub, config, self.max_answer_chars)


def plan_meta_eval(data: Sequence[Path | str], judges: list[str], protocols: list[str], *, judge_model: str | None,
                   base_url: Any, rubric: str | None, category: str | None, max_answer_chars: int | None,
                   **overrides: Any) -> MetaPlan:
    """Check the protocols, judges and data files; render nothing yet (the prompts depend on the combo)."""
    from alignbench.judges import judge_config
    from alignbench.rubrics import PROTOCOLS, RubricError, load_rubric

    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown:
        raise RubricError(f"unknown protocol {unknown[0]!r}; choose from {', '.join(PROTOCOLS)}")
    combos = []
    for j in judges:
        for p in protocols:
            config = judge_config(j, judge_model=judge_model, base_url=base_url, rubric=rubric, protocol=p,
                                  **overrides)
            combos.append((j, p, config, load_rubric(config.rubric)))
    meta = load_meta_files(data, combos[0][3], default_category=category)
    if meta.pairs:
        lacking = sorted({r.id for *_, r in combos if not r.templates.pairwise_user})
        if lacking:
            raise RubricError(f"the data has pairwise rows but rubric {', '.join(lacking)} has no pairwise template "
                              "(templates.pairwise_user)")
    return MetaPlan(meta, judges, protocols, combos, max_answer_chars)


class MetaEvalResult(Result):
    """``meta_eval.json`` (``results[judge][protocol]``: each combo's figures), with the failed-judgment counts
    ``--max-failed`` decides on: a pointwise row or a labelled pair (failed if either order failed) counts once."""

    judges: list[str]
    protocols: list[str]
    data: Any
    scales: dict[str, Any]
    bootstrap: dict[str, Any]
    results: dict[str, dict[str, dict[str, Any]]]

    def _entries(self) -> list[dict[str, Any]]:
        return [m for per_protocol in self.results.values() for entry in per_protocol.values()
                for kind in ("pointwise", "pairwise") if (m := entry.get(kind))]

    @property
    def failed(self) -> int:
        """Judgments that gave no usable score or verdict, summed over every combo."""
        return sum(m["n_failed"] for m in self._entries())

    @property
    def total(self) -> int:
        """Every judgment asked for (judged and failed), summed over every combo."""
        return sum(m["n"] + m["n_failed"] for m in self._entries())

    @property
    def by_status(self) -> dict[str, int]:
        """The failed judgments by status (``parse_failed``, ``call_failed`` …)."""
        counts: dict[str, int] = {}
        for m in self._entries():
            for status, n in m["failed_by_status"].items():
                counts[status] = counts.get(status, 0) + n
        return counts


async def run_meta_eval(plan: MetaPlan, store: Any, *, attempts: int, parse_retries: int, n_boot: int, seed: int,
                        folder: Any = None, on_event: Any = None, on_combo: Any = None,
                        connect: Any = None, refresh_failed: bool = False) -> MetaEvalResult:
    """Judge every combo (cache first) and compute its agreement figures; ``meta_eval.json``'s content.
    ``connect(config)`` gives each judge's (client, reply source): ``api`` passes it for --batch and
    --max-cost; by default a plain client."""
    from alignbench.engine import RetryPolicy
    from alignbench.judges import make_client
    from alignbench.pairwise.compare import assemble, judge_pairs
    from alignbench.pairwise.compare import usage_totals as pair_usage_totals
    from alignbench.rundir import folder_name
    from alignbench.scoring import judge_items, usage_totals

    results: dict[str, dict[str, Any]] = {}
    retry = RetryPolicy(attempts=attempts)
    for j, p, config, rub in plan.combos:
        if on_combo is not None:
            on_combo(j, p, rub)
        judgments, pair_judgments, usage = [], [], {"calls": 0, "cached_replies": 0, "retries": 0, "call_errors": 0,
                                                    "cached_prompt_tokens": 0, "cost_usd": 0.0, "cost_cny": 0.0,
                                                    "unpriced_tokens": 0}
        connect = connect or (lambda c: (make_client(c), None))
        engines = []
        if plan.data.points:
            client, source = connect(config)
            try:
                judgments, engine = await judge_items(plan.point_items(config, rub), rub, client, store, config.name,
                                                      retry=retry, parse_retries=parse_retries, on_event=on_event,
                                                      serve_hint=config.serve_hint, refresh_failed=refresh_failed,
                                                      source=source)
            finally:
                await client.aclose()
            engines.append(usage_totals(judgments, engine))
        if plan.data.pairs:
            client, source = connect(config)
            items = plan.pair_items(config, rub)
            try:
                verdicts, engine = await judge_pairs(items, client, store, retry=retry, parse_retries=parse_retries,
                                                     on_event=on_event, serve_hint=config.serve_hint,
                                                     refresh_failed=refresh_failed, source=source)
            finally:
                await client.aclose()
            pair_judgments = assemble(items, verdicts, rub, config.name)
            engines.append(pair_usage_totals(pair_judgments, engine))
        for totals in engines:
            for key in usage:
                usage[key] += getattr(totals, key)
        entry = _combo_metrics(plan.data, rub, judgments, pair_judgments, n_boot, seed)
        results.setdefault(j, {})[p] = {"judge": config.public(), "rubric": rub.id, **entry, "usage": usage}
        if folder is not None:
            _write_combo(folder, f"{folder_name(j)}__{p}", plan.data, judgments, pair_judgments)
    humans = [r.human for r in plan.data.points]
    first_rub = plan.combos[0][3]
    return MetaEvalResult(
        judges=plan.judges, protocols=plan.protocols, data=plan.data.files,
        scales={"judge": [first_rub.scale.min, first_rub.scale.max],
                "human_observed": [min(humans), max(humans)] if humans else None, "note": SCALE_NOTE},
        bootstrap={"resamples": n_boot, "seed": seed, "level": 0.95}, results=results)


def _outcomes(data: MetaData, pair_judgments: list[Any]) -> list[PairOutcome]:
    from alignbench.types import Status

    out = []
    for row, pj in zip(data.pairs, pair_judgments, strict=True):
        first, second = pj.orders  # model_first = response_1 shown as 助手1
        failed = next((v.status.value for v in pj.orders if v.status is not Status.OK), "ok")
        out.append(PairOutcome(label=row.label, status=failed,
                               first=_WINNER[first.winner] if first.status is Status.OK and first.winner else None,
                               second=_WINNER[second.winner] if second.status is Status.OK and second.winner else None))
    return out


LENGTH_NOTE = ("slopes in score points per 100 characters or jieba words, each on its own scale (judge 1–10, "
               "humans as labelled); judge beyond humans: the judge's slope with the human score partialled out, "
               "i.e. what length buys from the judge that it does not buy from the humans; within-question when "
               "questions have several labelled answers, else across questions (confounded by difficulty, which "
               "the human score partly absorbs)")


def length_vs_humans(rows: Sequence[PointRow], scores: Sequence[float | None], n_boot: int = N_BOOTSTRAP,
                     seed: int = 0) -> dict[str, Any]:
    """Does the judge reward length more than the humans do? For characters and jieba words: the
    association of the judge's score with length, of the human score with length, and of the judge's
    score with length when the human score is held fixed (``trust.association`` with the human score as
    control). A judge that only tracks quality has no length slope beyond the humans'. Why here and not
    only in ``show``: human labels are the one place where "longer answers are better" can be told
    apart from "the judge likes long answers"."""
    from alignbench.trust import association, count_words

    ok = [i for i, s in enumerate(scores) if s is not None]
    if len(ok) < 3:
        return {"undefined": "fewer than 3 judged rows", "note": LENGTH_NOTE}
    judge = [float(scores[i]) for i in ok]  # type: ignore[arg-type]
    human = [rows[i].human for i in ok]
    blocks = [f"{rows[i].file}\x00{rows[i].question.id}" for i in ok]
    out: dict[str, Any] = {"undefined": None, "note": LENGTH_NOTE}
    for unit in ("chars", "words"):
        x = [float(len(rows[i].response) if unit == "chars" else count_words(rows[i].response)) for i in ok]
        common = dict(name=unit, per=100.0, n_boot=n_boot, seed=seed)
        out[unit] = {"judge": association(judge, x, blocks, **common).as_dict(),  # type: ignore[arg-type]
                     "human": association(human, x, blocks, **common).as_dict(),  # type: ignore[arg-type]
                     "judge_beyond_human": association(judge, x, blocks, control=human, control_name="human score",
                                                       **common).as_dict()}  # type: ignore[arg-type]
    return out


def _combo_metrics(meta: MetaData, rub: Rubric, judgments: list[Any], pair_judgments: list[Any], n_boot: int,
                   seed: int) -> dict[str, Any]:
    from alignbench.types import Status

    cats = rub.category_names()
    entry: dict[str, Any] = {"pointwise": None, "pairwise": None}
    if meta.points:
        scores = [j.overall if j.status is Status.OK else None for j in judgments]
        statuses = [j.status.value for j in judgments]

        def points_of(path: str | None) -> dict[str, Any]:
            keep = [i for i, r in enumerate(meta.points) if path is None or r.file == path]
            return pointwise_metrics([meta.points[i] for i in keep], [scores[i] for i in keep],
                                     [statuses[i] for i in keep], cats, n_boot, seed)

        entry["pointwise"] = points_of(None)
        entry["pointwise"]["length_bias"] = length_vs_humans(meta.points, scores, n_boot, seed)
        files = list(dict.fromkeys(r.file for r in meta.points))
        if len(files) > 1:
            entry["pointwise"]["files"] = {f: {k: v for k, v in points_of(f).items() if k not in ("categories", "scales")}
                                           for f in files}
    if meta.pairs:
        outcomes = _outcomes(meta, pair_judgments)
        entry["pairwise"] = pairwise_metrics(outcomes, n_boot, seed)
        from alignbench.trust import position_bias

        entry["pairwise"]["position_bias"] = position_bias(pair_judgments, rub, n_boot=n_boot, seed=seed).as_dict()
        files = list(dict.fromkeys(r.file for r in meta.pairs))
        if len(files) > 1:
            entry["pairwise"]["files"] = {
                f: pairwise_metrics([o for o, r in zip(outcomes, meta.pairs, strict=True) if r.file == f], n_boot, seed)
                for f in files}
    return entry


def _write_combo(folder: Any, name: str, meta: MetaData, judgments: list[Any], pair_judgments: list[Any]) -> None:
    """Every judgment of one combo beside its labelled row, under ``<out>/<judge>__<protocol>/``."""
    from alignbench.rundir import RunFolder

    with RunFolder(folder.path / name) as sub:
        if judgments:
            sub.write_jsonl("pointwise.jsonl", [
                {"file": row.file, "line": row.line, "human_score": row.human, "judgment": j.model_dump(mode="json")}
                for row, j in zip(meta.points, judgments, strict=True)])
        if pair_judgments:
            sub.write_jsonl("pairwise.jsonl", [
                {"file": row.file, "line": row.line, "label": row.label, "judgment": pj.model_dump(mode="json")}
                for row, pj in zip(meta.pairs, pair_judgments, strict=True)])
