"""``alignbench import``: judgment files the official tools wrote -> run folders every reading command opens.

Why: teams already hold judgments made by THUDM/AlignBench's ``judge.py`` (``data/judgment/<model>.jsonl``)
and by FastChat's ``gen_judgment.py`` (``model_judgment/<judge>_single.jsonl`` and ``<judge>_pair.jsonl``).
Re-judging them costs money and gives other texts; reading them as they are costs nothing. So this module
turns each file into run folders (``summary.json`` + ``judgments.jsonl``; a pair file into what ``compare``
writes) without building any client: nothing is re-judged.

The judge's *text* is what counts, not the number the original tool stored beside it. Their readers are
single regular expressions: ``judge.py`` takes the last brace block's ``'key': <integer>`` pairs (a decimal
``7.5`` is read as 7, an example dict after the real one wins, and ``-1`` marks a text it could not read);
FastChat takes the *first* ``[[N]]`` (or ``[N]``) of a single judgment and the first of ``[[A]]``, ``[[B]]``,
``[[C]]`` found *anywhere* in a pair judgment. Every text is read again by ``alignbench.parse`` (the same
rules as every run of ours), and every place where our reading and their stored value differ is a row of
the differences table (``Difference``; written to ``import_differences.jsonl`` in the run folder). Where
we cannot read a verdict the judgment is a counted failure with the judge's text kept, never their number.

The run is marked as imported in its manifest (``imported``: source path, SHA-256, format, the original
judge model and prompt name), and ``show``/``report`` say "imported from <file> (<format>), not re-judged".
Aggregation is ours: an AlignBench import like any AlignBench run (dimensions, categories, 推理/语言,
overall, CIs); a FastChat single import the MT-Bench score (mean over judged turns, as FastChat's
``show_result.py``, failures counted rather than dropped silently) with per-turn means; a pair import the
win rates ``compare`` computes.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from alignbench.data import InputError, file_sha256, read_jsonl
from alignbench.rubrics import Rubric, load_rubric
from alignbench.rundir import PairwiseRun, Run, RunFolder, default_run_dir, load_run
from alignbench.types import Judgment, Status, UsageTotals

Format = Literal["alignbench-judge", "fastchat-single", "fastchat-pair"]
FORMATS: tuple[Format, ...] = ("alignbench-judge", "fastchat-single", "fastchat-pair")
DIFFERENCES_FILE = "import_differences.jsonl"
QUESTIONS_FILE = "questions.jsonl"
ANSWERS_FILE = "answers.jsonl"

# The fields each tool writes on every line (what tells the formats apart); see the module docstring.
_FIELDS: dict[Format, frozenset[str]] = {
    "alignbench-judge": frozenset({"question_id", "category", "subcategory", "question", "answer", "judgment",
                                   "rating", "score"}),
    "fastchat-single": frozenset({"question_id", "model", "judge", "judgment", "score", "turn"}),
    "fastchat-pair": frozenset({"question_id", "model_1", "model_2", "g1_winner", "g2_winner", "judge",
                                "g1_judgment", "g2_judgment"}),
}
_RUBRIC: dict[Format, str] = {"alignbench-judge": "alignbench", "fastchat-single": "mtbench-fastchat",
                              "fastchat-pair": "mtbench-fastchat"}
_TOOL: dict[Format, str] = {"alignbench-judge": "judge.py", "fastchat-single": "fastchat",
                            "fastchat-pair": "fastchat"}
FASTCHAT_ERROR = "$ERROR$"  # what FastChat stores as the judgment when every API attempt failed
ALIGNBENCH_JUDGE_MODEL = "gpt-4"  # the model judge.py hard-codes (its files do not record it)


class ImportFormatError(InputError):
    """A file (or one of its lines) in none of the formats ``alignbench import`` reads: names file and line."""


@dataclass(frozen=True)
class Difference:
    """One place where our reading of a judge's text differs from what the original tool stored.

    ``kind``: ``their_failure`` (they stored -1 / "error", we read a verdict), ``misread`` (both read, the
    values differ: an example dict after the real one, a decimal cut to its integer part, the first
    ``[[N]]`` instead of the last …), ``our_failure`` (they stored a value, our parser found no verdict it
    trusts: the judgment is a counted failure here). ``theirs``/``ours`` are scores (pointwise) or the
    winning model ``model_1``/``model_2``/``tie`` (pair); ``order`` is FastChat's game (``g1``/``g2``)."""

    file: str
    line: int
    question_id: int
    model: str
    kind: Literal["their_failure", "misread", "our_failure"]
    theirs: float | str | None
    ours: float | str | None
    our_status: str
    detail: str
    turn: int | None = None
    order: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "question_id": self.question_id, "model": self.model,
                "turn": self.turn, "order": self.order, "kind": self.kind, "theirs": self.theirs, "ours": self.ours,
                "our_status": self.our_status, "detail": self.detail}


@dataclass
class ImportResult:
    """One imported file: its format and hash, the run folders written (``runs``: model -> Run for pointwise
    formats; ``pairwise``: the compare folder of a pair file), the differences table and notes."""

    source: Path
    format: Format
    sha256: str
    judge_model: str
    prompt_names: list[str]
    records: int
    differences: list[Difference]
    runs: dict[str, Run] = field(default_factory=dict)
    pairwise: PairwiseRun | None = None  # a pair file's compare folder
    notes: list[str] = field(default_factory=list)

    @property
    def dirs(self) -> list[Path]:
        """Every run folder this import wrote."""
        return [r.dir for r in self.runs.values()] + ([self.pairwise.dir] if self.pairwise is not None else [])

    @property
    def label(self) -> str:
        """What every view of an imported run says about where it came from."""
        return imported_label({"source": str(self.source), "format": self.format})


def imported_label(imported: dict[str, Any]) -> str:
    """``imported from <file> (<format>), not re-judged``: the line terminal, report and viewer show."""
    return f"imported from {imported.get('source', '?')} ({imported.get('format', '?')}), not re-judged"


# ================================================================================================
# Reading and telling the formats apart
# ================================================================================================


def detect_format(path: Path, records: Sequence[tuple[int, dict[str, Any]]]) -> Format:
    """The format every line of ``records`` is in (by the fields the tools write); one clear error naming the
    file and the first line that fits none, or that fits another format than the first line."""
    if not records:
        raise ImportFormatError(path, None, "no judgments in file")
    found: Format | None = None
    for lineno, obj in records:
        fits = [f for f in FORMATS if _FIELDS[f] <= obj.keys()]
        if not fits:
            near = min(FORMATS, key=lambda f: len(_FIELDS[f] - obj.keys()))
            raise ImportFormatError(path, lineno, (
                "not a judgment of AlignBench's judge.py nor of FastChat's gen_judgment.py (single or pair): "
                f"closest is {near}, which needs {', '.join(sorted(_FIELDS[near] - obj.keys()))}"))
        if found is None:
            found = fits[0]
        elif found not in fits:
            raise ImportFormatError(path, lineno, f"a {fits[0]} line in a {found} file; import each file on its own")
    assert found is not None
    return found


def last_of_each(records: Sequence[tuple[int, dict[str, Any]]], key: Any) -> tuple[list[tuple[int, dict[str, Any]]], int]:
    """The records with only the last line of each ``key(obj)``, in file order, and how many were dropped.

    Why the last: both tools append to their output file (``judge.py`` opens it with "a"; so does FastChat), so
    a run started again after a crash writes every judgment a second time, and the later line is the later
    judgment. The number dropped is reported, never silent."""
    last: dict[Any, int] = {}
    for i, (_, obj) in enumerate(records):
        last[key(obj)] = i
    keep = sorted(last.values())
    return [records[i] for i in keep], len(records) - len(keep)


def _one_judge(path: Path, records: Sequence[tuple[int, dict[str, Any]]]) -> None:
    """A FastChat file holds one judge's judgments (FastChat writes one file per judge model); two judges of one
    answer would be two readings of it, not one run."""
    judges: dict[str, int] = {}
    for lineno, obj in records:
        judges.setdefault(_fastchat_judge(obj)[0], lineno)
    if len(judges) > 1:
        first, second = list(judges.items())[:2]
        raise InputError(path, second[1], f"judge {second[0]!r} here, {first[0]!r} on line {first[1]}: a run holds one "
                         "judge's judgments; split the file by judge and import each")


def _score(value: Any) -> float | None:
    """Their stored score as a number (None for a non-number)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _id(obj: dict[str, Any], path: Path, lineno: int) -> int:
    qid = obj.get("question_id")
    if isinstance(qid, bool) or not isinstance(qid, int | str) or not str(qid).strip().lstrip("-").isdigit():
        raise InputError(path, lineno, f"question_id must be an integer, not {qid!r}")
    return int(qid)


def _prompt_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _same(a: float, b: float) -> bool:
    return abs(a - b) < 1e-9


# ================================================================================================
# AlignBench judge.py files
# ================================================================================================


def _alignbench_judgments(path: Path, records: Sequence[tuple[int, dict[str, Any]]], rubric: Rubric, judge: str,
                          rubric_id: str) -> tuple[dict[str, list[Judgment]], list[Difference], dict[str, Any]]:
    """Judgments by model, the differences, and the questions and answers (for the run folder's own files)."""
    from alignbench.parse import parse_scores, prompt_examples

    scale = (rubric.scale.min, rubric.scale.max)
    by_model: dict[str, list[Judgment]] = {}
    diffs: list[Difference] = []
    questions: dict[int, dict[str, Any]] = {}
    answers: dict[str, list[dict[str, Any]]] = {}
    for lineno, obj in records:
        qid = _id(obj, path, lineno)
        model = str(obj.get("model_id") or path.stem)
        cat = rubric.category(str(obj["category"]))
        category = cat.name if cat else str(obj["category"])
        subcategory = str(obj["subcategory"])
        dims = tuple(d for d in obj.get("dimensions") or () if isinstance(d, str)) \
            or _dims_or_empty(rubric, category, subcategory)
        atype = _answer_type(rubric, category, subcategory, dims)
        text = obj["judgment"] if isinstance(obj["judgment"], str) else None
        prompt = obj.get("judge_prompt") if isinstance(obj.get("judge_prompt"), str) else ""
        examples = prompt_examples(prompt, dims) if prompt else ()
        parsed = parse_scores(text, dims, rubric.overall_key, scale, "alignbench-dict", examples=examples)
        theirs = _score(obj["score"])
        rating = obj["rating"] if isinstance(obj["rating"], dict) else {}
        base = {"question_id": qid, "model": model, "category": category, "subcategory": subcategory,
                "answer_type": atype, "judge": judge, "rubric": rubric_id, "prompt_hash": _prompt_hash(prompt),
                "raw": text, "answer_chars": len(str(obj.get("answer") or ""))}
        stored = f"judge.py stored score {_show(theirs)}"
        if parsed.ok:
            j = Judgment(**base, status=Status.OK, scores=parsed.scores, overall=parsed.overall,
                         detail=f"{parsed.detail}; {stored}" if parsed.detail else stored)
        else:
            j = Judgment(**base, status=parsed.status, detail=f"{parsed.detail}; {stored}")
        by_model.setdefault(model, []).append(j)
        diff = _pointwise_difference(theirs, parsed.overall if parsed.ok else None, parsed.status, parsed.detail)
        if diff is None and parsed.ok and (dims_differ := _dims_differ(rating, parsed.scores)):
            diff = ("misread", f"dimensions differ: {dims_differ}")
        if diff is not None:
            diffs.append(Difference(str(path), lineno, qid, model, diff[0], theirs,
                                    parsed.overall if parsed.ok else None, parsed.status.value, diff[1]))
        questions.setdefault(qid, {"question_id": qid, "category": category, "subcategory": subcategory,
                                   "question": str(obj.get("question") or ""),
                                   "reference": str(obj.get("reference") or "")})
        answers.setdefault(model, []).append({"question_id": qid, "model_id": model,
                                              "answer": str(obj.get("answer") or "")})
    return by_model, diffs, {"questions": list(questions.values()), "answers": answers}


def _dims_or_empty(rubric: Rubric, category: str, subcategory: str) -> tuple[str, ...]:
    try:
        return rubric.dimensions_for(category, subcategory)
    except KeyError:
        return ()


def _answer_type(rubric: Rubric, category: str, subcategory: str, dims: tuple[str, ...]) -> str:
    """The rubric's answer type of the question; for a subcategory it does not know, the type whose dimensions
    judge.py used (its file records them)."""
    try:
        return rubric.answer_type(category, subcategory)
    except KeyError:
        return next((name for name, t in rubric.answer_types.items() if t.dimensions == dims), "unknown")


def _show(value: float | str | None) -> str:
    if value is None:
        return "nothing"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _pointwise_difference(theirs: float | None, ours: float | None, status: Status,
                          detail: str | None) -> tuple[Literal["their_failure", "misread", "our_failure"], str] | None:
    their_failed = theirs is None or theirs == -1
    if their_failed and ours is not None:
        return "their_failure", f"they stored {_show(theirs)}; we read {ours:g}"
    if not their_failed and ours is None:
        return "our_failure", f"they stored {_show(theirs)}; we read no verdict ({status.value}: {detail})"
    if not their_failed and ours is not None and not _same(theirs, ours):  # type: ignore[arg-type]
        return "misread", f"they stored {_show(theirs)}; we read {ours:g}"
    return None


def _dims_differ(rating: dict[str, Any], ours: dict[str, float]) -> str:
    """Dimensions whose stored rating differs from ours (a misread dict with the right overall)."""
    out = []
    for dim, value in ours.items():
        stored = _score(rating.get(dim))
        if stored is not None and not _same(stored, value):
            out.append(f"{dim} {stored:g} vs {value:g}")
    return ", ".join(out)


# ================================================================================================
# FastChat files
# ================================================================================================


def _fastchat_judge(obj: dict[str, Any]) -> tuple[str, str]:
    """(judge model, prompt name) from FastChat's ``judge`` field: a list as json.dumps writes its tuple."""
    judge = obj.get("judge")
    if isinstance(judge, list | tuple) and len(judge) >= 2:
        return str(judge[0]), str(judge[1])
    return str(judge), "?"


def _fastchat_questions(path: Path, questions: Path | None) -> tuple[dict[int, dict[str, Any]], Path]:
    """FastChat's question.jsonl (categories, turns): ``questions`` or where FastChat keeps it beside its
    ``model_judgment`` folder (``data/<bench>/question.jsonl``)."""
    candidates = [Path(questions)] if questions is not None else [path.parent.parent / "question.jsonl",
                                                                    path.parent / "question.jsonl"]
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        raise InputError(candidates[0], None, (
            "FastChat's question.jsonl not found (the judgment file does not record categories); pass "
            "--questions data/mt_bench/question.jsonl"))
    out: dict[int, dict[str, Any]] = {}
    for lineno, obj in read_jsonl(found):
        if not isinstance(obj.get("category"), str) or not isinstance(obj.get("turns"), list):
            raise InputError(found, lineno, "not a FastChat question (needs category and turns)")
        out[_id(obj, found, lineno)] = obj
    return out, found


def answers_folder(path: Path, answers: Path | None) -> Path:
    """FastChat's ``model_answer`` folder: the one given, else FastChat's own beside ``model_judgment``."""
    return Path(answers) if answers is not None else path.parent.parent / "model_answer"


def _fastchat_answers(path: Path, answers: Path | None, models: Sequence[str]) -> tuple[dict[str, dict[int, list[str]]], list[str]]:
    """Each model's replies by question from FastChat's ``model_answer/<model>.jsonl`` (``choices[0].turns``):
    the folder given, or FastChat's own beside ``model_judgment``. Missing files are notes, not errors: the
    judgments stand without them (only the answer-length figures need them)."""
    folder = answers_folder(path, answers)
    out: dict[str, dict[int, list[str]]] = {}
    notes = []
    for model in models:
        file = folder / f"{model}.jsonl"
        if not file.is_file():
            notes.append(f"no answer file {file}: answer lengths (length audit, LC win rate) are unavailable for "
                         f"{model}")
            continue
        mine: dict[int, list[str]] = {}
        for lineno, obj in read_jsonl(file):
            choices = obj.get("choices")
            turns = choices[0].get("turns") if isinstance(choices, list) and choices and isinstance(choices[0], dict) \
                else None
            if not isinstance(turns, list) or not all(isinstance(t, str) for t in turns):
                raise InputError(file, lineno, "not a FastChat answer (needs choices[0].turns, a list of strings)")
            mine[_id(obj, file, lineno)] = turns
        out[model] = mine
    return out, notes


def _category(rubric: Rubric, questions: dict[int, dict[str, Any]], qid: int, path: Path, lineno: int) -> str:
    q = questions.get(qid)
    if q is None:
        raise InputError(path, lineno, f"question {qid} is not in FastChat's question.jsonl")
    cat = rubric.category(q["category"])
    return cat.name if cat else str(q["category"])


def _fastchat_single(path: Path, records: Sequence[tuple[int, dict[str, Any]]], rubric: Rubric, rubric_id: str,
                     questions: dict[int, dict[str, Any]]) -> tuple[dict[str, list[Judgment]], list[Difference]]:
    """Dialogue judgments (one per question and model, its judged turns in ``turns``) by model."""
    from alignbench.parse import parse_scores, prompt_examples
    from alignbench.scoring import dialogue_judgment

    scale = (rubric.scale.min, rubric.scale.max)
    turns: dict[tuple[str, int], list[Judgment]] = {}
    diffs: list[Difference] = []
    for lineno, obj in records:
        qid = _id(obj, path, lineno)
        model = str(obj["model"])
        judge_model, _ = _fastchat_judge(obj)
        category = _category(rubric, questions, qid, path, lineno)
        turn = int(obj["turn"]) if isinstance(obj.get("turn"), int) else 1
        text = obj["judgment"] if isinstance(obj["judgment"], str) else None
        prompt = obj.get("user_prompt") if isinstance(obj.get("user_prompt"), str) else ""
        theirs = _score(obj["score"])
        base = {"question_id": qid, "model": model, "category": category, "subcategory": category,
                "answer_type": rubric.answer_type(category, category) if rubric.category(category) else "general",
                "judge": judge_model, "rubric": rubric_id, "prompt_hash": _prompt_hash(prompt), "raw": text,
                "turn": turn}
        stored = f"FastChat stored score {_show(theirs)}"
        if text is not None and text.strip() == FASTCHAT_ERROR:
            parsed_status, overall, detail = Status.JUDGE_ERROR, None, f"FastChat recorded {FASTCHAT_ERROR} (every " \
                                                                      "API attempt failed)"
            j = Judgment(**base, status=Status.JUDGE_ERROR, detail=f"{detail}; {stored}")
        else:
            examples = prompt_examples(prompt, (), rubric.overall_key, scale, "double-brackets") if prompt else ()
            parsed = parse_scores(text, (), rubric.overall_key, scale, "double-brackets", examples=examples)
            parsed_status, overall, detail = parsed.status, parsed.overall if parsed.ok else None, parsed.detail
            j = Judgment(**base, status=parsed.status, overall=overall,
                         detail=f"{detail}; {stored}" if detail else stored)
        turns.setdefault((model, qid), []).append(j)
        diff = _pointwise_difference(theirs, overall, parsed_status, detail)
        if diff is not None:
            diffs.append(Difference(str(path), lineno, qid, model, diff[0], theirs, overall, parsed_status.value,
                                    diff[1], turn=turn))
    by_model: dict[str, list[Judgment]] = {}
    for (model, _qid), mine in sorted(turns.items()):
        mine.sort(key=lambda t: t.turn or 0)
        by_model.setdefault(model, []).append(dialogue_judgment(mine))
    return by_model, diffs


def mtbench_figures(judgments: Sequence[Judgment], rubric: Rubric, seed: int = 0, n_boot: int = 2000,
                    level: float = 0.95) -> dict[str, Any]:
    """The MT-Bench score as FastChat's ``show_result.py`` computes it (the mean over judged turns; per turn the
    same) with our CIs (questions resampled, turns of a question kept together) and failure counts: a turn we
    could not read is counted in ``n_failed``, never averaged as -1 nor dropped unseen. Per category too."""
    rng = np.random.default_rng(seed)
    alpha = (1 - level) / 2
    turns = [t for j in judgments for t in (j.turns or [j])]

    def figure(selected: list[Judgment]) -> dict[str, Any]:
        by_q: dict[int, list[float]] = {}
        for t in selected:
            if t.status is Status.OK and t.overall is not None:
                by_q.setdefault(t.question_id, []).append(t.overall)
        ok = [v for vals in by_q.values() for v in vals]
        entry: dict[str, Any] = {"score": None, "ci": None, "n": len(ok), "n_failed": len(selected) - len(ok)}
        if ok:
            sums = np.array([sum(v) for v in by_q.values()])
            counts = np.array([len(v) for v in by_q.values()])
            idx = rng.integers(0, len(sums), size=(n_boot, len(sums)))
            boot = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
            lo, hi = np.quantile(boot, [alpha, 1 - alpha])
            entry.update(score=round(float(np.mean(ok)), 4), ci=[round(float(lo), 4), round(float(hi), 4)])
        return entry

    by_turn = {str(k): figure([t for t in turns if t.turn == k]) for k in sorted({t.turn or 1 for t in turns})}
    cats = {c: {**figure([t for t in turns if t.category == c]), "group": rubric.category(c).group,  # type: ignore[union-attr]
                "en": rubric.category(c).en}  # type: ignore[union-attr]
            for c in rubric.category_names() if any(t.category == c for t in turns)}
    return {**figure(turns), "turns": by_turn, "categories": cats, "n_turns": len(turns),
            "unit": "mean over judged turns (FastChat show_result.py); turns without a verdict counted in n_failed, "
                    "not averaged"}


def _pair_row(obj: dict[str, Any], path: Path, lineno: int, baseline: str) -> tuple[str, str, str] | None:
    """(model, order of game 1, order of game 2) for a row against ``baseline``; None when the baseline is not
    in it. In game 1 FastChat shows model_1 as A, in game 2 model_2."""
    m1, m2 = str(obj["model_1"]), str(obj["model_2"])
    if m2 == baseline and m1 != baseline:
        return m1, "model_first", "baseline_first"
    if m1 == baseline and m2 != baseline:
        return m2, "baseline_first", "model_first"
    return None


def _pair_baseline(records: Sequence[tuple[int, dict[str, Any]]], path: Path, baseline: str | None) -> str:
    """The baseline: as given, else the model in every row (FastChat's pairwise-baseline mode puts it second)."""
    if baseline is not None:
        return baseline
    common = set.intersection(*({str(o["model_1"]), str(o["model_2"])} for _, o in records))
    if len(common) == 1:
        return common.pop()
    seconds = {str(o["model_2"]) for _, o in records}
    if len(seconds) == 1:
        return seconds.pop()
    raise InputError(path, None, "no single model is in every pair (FastChat's pairwise-all mode); pass --baseline "
                     "MODEL to import the pairs against that model")


_WINNER_OF_POSITION = {"1": "A", "2": "B", "tie": "tie"}


def _fastchat_pairs(path: Path, records: Sequence[tuple[int, dict[str, Any]]], rubric: Rubric, rubric_id: str,
                    questions: dict[int, dict[str, Any]], baseline: str,
                    replies: dict[str, dict[int, list[str]]]) -> tuple[list[Any], list[Difference], int]:
    """PairJudgments (model vs baseline, both games, per turn), the differences, and rows skipped (no baseline)."""
    from alignbench.pairwise.compare import (
        OrderVerdict,
        PairJudgment,
        PairTurn,
        _lengths,
        _unswap,
        combine,
        combine_turns,
    )
    from alignbench.parse import parse_verdict

    grouped: dict[tuple[str, int], dict[int, tuple[OrderVerdict, OrderVerdict]]] = {}
    diffs: list[Difference] = []
    skipped = 0
    judge_of: dict[tuple[str, int], str] = {}
    for lineno, obj in records:
        qid = _id(obj, path, lineno)
        roles = _pair_row(obj, path, lineno, baseline)
        if roles is None:
            skipped += 1
            continue
        model, order1, order2 = roles
        turn = int(obj["turn"]) if isinstance(obj.get("turn"), int) else 1
        _category(rubric, questions, qid, path, lineno)
        verdicts = {}
        for game, order in (("g1", order1), ("g2", order2)):
            text = obj[f"{game}_judgment"] if isinstance(obj[f"{game}_judgment"], str) else None
            prompt = obj.get(f"{game}_user_prompt") if isinstance(obj.get(f"{game}_user_prompt"), str) else ""
            theirs = str(obj[f"{game}_winner"])
            base = {"order": order, "prompt_hash": _prompt_hash(prompt), "raw": text}
            # FastChat's game 1 shows model_1 as A; game 2 shows model_2 as A. Their winner names the model.
            first = str(obj["model_1"]) if game == "g1" else str(obj["model_2"])
            if text is not None and text.strip() == FASTCHAT_ERROR:
                v = OrderVerdict(**base, status=Status.JUDGE_ERROR, detail=f"FastChat recorded {FASTCHAT_ERROR}; "
                                 f"stored winner {theirs}")
                ours = None
            else:
                parsed = parse_verdict(text)
                detail = f"{parsed.detail}; FastChat stored winner {theirs}"
                if parsed.ok and parsed.winner is not None:
                    v = OrderVerdict(**base, status=Status.OK, position=parsed.winner,  # type: ignore[arg-type]
                                     winner=_unswap(order, parsed.winner), detail=detail)  # type: ignore[arg-type]
                    pos = _WINNER_OF_POSITION[parsed.winner]
                    ours = "tie" if pos == "tie" else ("model_1" if (pos == "A") == (first == str(obj["model_1"]))
                                                       else "model_2")
                else:
                    v = OrderVerdict(**base, status=parsed.status, detail=detail)
                    ours = None
            verdicts[order] = v
            kind = _pair_kind(theirs, ours)
            if kind is not None:
                diffs.append(Difference(str(path), lineno, qid, model, kind, theirs, ours, v.status.value,
                                        f"they stored {theirs}; we read {ours or 'no verdict'} ({v.detail})",
                                        turn=turn, order=game))
        grouped.setdefault((model, qid), {})[turn] = (verdicts["model_first"], verdicts["baseline_first"])
        judge_of[(model, qid)] = _fastchat_judge(obj)[0]
    out = []
    for (model, qid), by_turn in sorted(grouped.items()):
        q = questions[qid]
        category = _category(rubric, questions, qid, path, 0)
        m_rep, b_rep = replies.get(model, {}).get(qid, []), replies.get(baseline, {}).get(qid, [])
        ts = sorted(by_turn)
        per_turn = [PairTurn(turn=t, orders=by_turn[t], **combine(*by_turn[t]),
                             **_lengths(m_rep[t - 1:t], b_rep[t - 1:t])) for t in ts] if len(q["turns"]) > 1 else []
        verdict = combine_turns(per_turn) if per_turn else combine(*by_turn[ts[-1]])
        out.append(PairJudgment(question_id=qid, model=model, baseline=baseline, category=category,
                                subcategory=category, answer_type=rubric.answer_type(category, category),
                                orders=by_turn[ts[-1]], judge=judge_of[(model, qid)], rubric=rubric_id,
                                **_lengths(m_rep, b_rep), turn=ts[-1] if per_turn else None, turns=per_turn,
                                **verdict))
    return out, diffs, skipped


def _pair_kind(theirs: str, ours: str | None) -> Literal["their_failure", "misread", "our_failure"] | None:
    their_failed = theirs not in ("model_1", "model_2", "tie")
    if their_failed and ours is not None:
        return "their_failure"
    if not their_failed and ours is None:
        return "our_failure"
    if not their_failed and ours is not None and ours != theirs:
        return "misread"
    return None


# ================================================================================================
# Writing run folders
# ================================================================================================


def _jsonl(folder: RunFolder, name: str, rows: Sequence[Any]) -> str:
    folder.write_jsonl(name, rows)
    return str(folder.path / name)


def _imported_record(path: Path, fmt: Format, sha: str, judge_model: str, prompts: Sequence[str],
                     records: int) -> dict[str, Any]:
    return {"source": str(path), "sha256": sha, "format": fmt, "judge_model": judge_model,
            "prompt_names": list(prompts), "records": records, "re_judged": False}


def _write_pointwise(path: Path, fmt: Format, sha: str, model: str, judgments: list[Judgment], rubric: Rubric,
                     rubric_id: str, judge_model: str, prompts: Sequence[str], n_records: int, run_dir: Path,
                     diffs: Sequence[Difference], questions_rows: Sequence[dict[str, Any]] | None,
                     answer_rows: Sequence[dict[str, Any]] | None, questions_record: dict[str, Any],
                     force: bool, seed: int, notes: Sequence[str]) -> Run:
    from alignbench.scoring import build_summary, manifest

    imported = _imported_record(path, fmt, sha, judge_model, prompts, n_records)
    with RunFolder(run_dir, model=model, force=force) as folder:
        folder.unfinish()
        _jsonl(folder, DIFFERENCES_FILE, [d.as_dict() for d in diffs if d.model == model])
        qrec = dict(questions_record)
        if questions_rows is not None:
            qpath = _jsonl(folder, QUESTIONS_FILE, questions_rows)
            qrec = {"path": qpath, "sha256": folder.sha256[QUESTIONS_FILE]}
        answers_rec: Any = None
        if answer_rows is not None:
            answers_rec = _jsonl(folder, ANSWERS_FILE, answer_rows)
        judge = {"name": judge_model, "backend": "imported", "model": judge_model,
                 "prompt": ", ".join(prompts), "tool": _TOOL[fmt]}
        man = manifest(model, judge, rubric, qrec, answers_rec, imported=imported,
                       notes=[imported_label(imported), *notes]).model_copy(update={"rubric": rubric_id})
        summary = build_summary(judgments, rubric, man, UsageTotals(), seed=seed)
        if fmt == "fastchat-single":
            summary = _with_mtbench(summary, mtbench_figures(judgments, rubric, seed=seed))
        summary = summary.model_copy(update={"imported": imported, "differences": {
            "file": DIFFERENCES_FILE, "n": sum(d.model == model for d in diffs),
            "by_kind": _by_kind([d for d in diffs if d.model == model])}})
        folder.write_run(judgments, summary)
    return load_run(run_dir)


def _with_mtbench(summary: Any, figures: dict[str, Any]) -> Any:
    """The summary with the MT-Bench score as its overall (and its one group's), per category the turn means."""
    groups = {gid: g.model_copy(update={"score": figures["score"], "ci": figures["ci"]})
              for gid, g in summary.groups.items()}
    cats = {name: c.model_copy(update={"score": figures["categories"][name]["score"],
                                       "ci": figures["categories"][name]["ci"]})
            for name, c in summary.categories.items() if name in figures["categories"]}
    return summary.model_copy(update={"overall": figures["score"], "overall_ci": figures["ci"], "groups": groups,
                                      "categories": {**summary.categories, **cats}, "mtbench": figures})


def _by_kind(diffs: Sequence[Difference]) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in diffs:
        out[d.kind] = out.get(d.kind, 0) + 1
    return dict(sorted(out.items()))


def import_judgments(files: str | Path | Sequence[str | Path], *, out: str | Path | None = None,
                     format: str | None = None, questions: str | Path | None = None,
                     answers: str | Path | None = None, baseline: str | None = None,
                     judge_model: str | None = None, force: bool = False, seed: int = 0,
                     length_unit: str = "words", bootstrap: int = 200) -> list[ImportResult]:
    """Turn judgment files of AlignBench's ``judge.py`` and FastChat's ``gen_judgment.py`` into run folders.

    ``format``: ``alignbench-judge``, ``fastchat-single``, ``fastchat-pair`` or None (detected from the fields;
    every line must be in it). ``out``: the folder the run folders go in (default ``reports``), one per model
    (``<model>__<judge>__imported-<format>``) or per pair file. FastChat files: ``questions`` is FastChat's
    ``question.jsonl`` and ``answers`` its ``model_answer`` folder (default: FastChat's own places beside
    ``model_judgment``); ``baseline`` the model a pair file is compared against (default: the one in every
    row). ``judge_model``: the judge of an AlignBench file (judge.py records none; it calls ``gpt-4``).
    Nothing is ever sent to a judge. Returns one ``ImportResult`` per file, with its differences table."""
    paths = [Path(files)] if isinstance(files, str | Path) else [Path(f) for f in files]
    if format is not None and format not in FORMATS:
        raise InputError("--format", None, f"must be one of {', '.join(FORMATS)}, not {format!r}")
    root = Path(out) if out is not None else Path("reports")
    results = []
    loaded = [(p, list(read_jsonl(p))) for p in paths]  # every bad line fails before anything is written
    formats = []
    for p, records in loaded:
        found = detect_format(p, records)
        if format is not None and found != format:
            raise ImportFormatError(p, records[0][0], f"a {found} file, not {format}")
        formats.append(found)
    for (p, records), fmt in zip(loaded, formats, strict=True):
        results.append(_import_one(p, records, fmt, root, questions=questions, answers=answers, baseline=baseline,
                                   judge_model=judge_model, force=force, seed=seed, length_unit=length_unit,
                                   bootstrap=bootstrap))
    return results


def _import_one(path: Path, records: list[tuple[int, dict[str, Any]]], fmt: Format, root: Path, *,
                questions: str | Path | None, answers: str | Path | None, baseline: str | None,
                judge_model: str | None, force: bool, seed: int, length_unit: str, bootstrap: int) -> ImportResult:
    rubric = load_rubric(_RUBRIC[fmt])
    rubric_id = f"{rubric.name}@imported-{_TOOL[fmt]}"
    sha = file_sha256(path)
    n_lines = len(records)
    if fmt == "alignbench-judge":
        judge = judge_model or ALIGNBENCH_JUDGE_MODEL
        records, dropped = last_of_each(records, lambda o: (str(o.get("model_id") or path.stem), str(o["question_id"])))
        by_model, diffs, extra = _alignbench_judgments(path, records, rubric, judge, rubric_id)
        result = ImportResult(path, fmt, sha, judge, ["judge.py prompt_construct"], n_lines, diffs,
                              notes=_dropped_note(dropped))
        for model, judgments in by_model.items():
            result.runs[model] = _write_pointwise(
                path, fmt, sha, model, judgments, rubric, rubric_id, judge, result.prompt_names, n_lines,
                default_run_dir(model, judge, "imported-judge.py", root=root), diffs, extra["questions"],
                extra["answers"][model], {}, force, seed, result.notes)
        return result
    _one_judge(path, records)
    if fmt == "fastchat-pair":
        single = next((n for n, o in records if "m1_score" in o), None)
        if single is not None:
            raise ImportFormatError(path, single, "pairs judged by a single-answer judge (m1_score, m2_score): import "
                                    "FastChat's single-answer file of that judge instead")
        records, dropped = last_of_each(records, lambda o: (str(o["model_1"]), str(o["model_2"]), str(o["question_id"]),
                                                            o.get("turn")))
    else:
        records, dropped = last_of_each(records, lambda o: (str(o["model"]), str(o["question_id"]), o.get("turn")))
    judges = sorted({_fastchat_judge(o) for _, o in records})
    judge = judge_model or ", ".join(sorted({j for j, _ in judges}))
    prompts = sorted({p for _, p in judges})
    qs, qpath = _fastchat_questions(path, Path(questions) if questions is not None else None)
    qrows = [{"question_id": qid, "category": q["category"], "subcategory": q["category"],
              "turns": [str(t) for t in q["turns"]],
              **({"references": [str(r) for r in q["reference"]]} if isinstance(q.get("reference"), list) else {})}
             for qid, q in sorted(qs.items())]
    if fmt == "fastchat-single":
        by_model, diffs = _fastchat_single(path, records, rubric, rubric_id, qs)
        replies, notes = _fastchat_answers(path, Path(answers) if answers is not None else None, sorted(by_model))
        notes = _dropped_note(dropped) + notes
        result = ImportResult(path, fmt, sha, judge, prompts, n_lines, diffs, notes=notes)
        for model, judgments in by_model.items():
            arows = [{"question_id": qid, "model_id": model, "turns": t} for qid, t in sorted(replies[model].items())] \
                if model in replies else None
            result.runs[model] = _write_pointwise(
                path, fmt, sha, model, judgments, rubric, rubric_id, judge, prompts, n_lines,
                default_run_dir(model, judge, "imported-fastchat", root=root), diffs, qrows, arows,
                {"path": str(qpath), "sha256": file_sha256(qpath)}, force, seed, notes)
        return result
    return _import_pairs(path, records, rubric, rubric_id, sha, judge, prompts, qs, qpath, root, n_lines=n_lines,
                         dropped=dropped, answers=answers, baseline=baseline, seed=seed, length_unit=length_unit,
                         bootstrap=bootstrap)


def _dropped_note(dropped: int) -> list[str]:
    return [f"{dropped} line(s) judge an answer judged again further down the file (the tools append on a re-run): "
            "the last judgment of each is imported"] if dropped else []


def _import_pairs(path: Path, records: list[tuple[int, dict[str, Any]]], rubric: Rubric, rubric_id: str, sha: str,
                  judge: str, prompts: list[str], qs: dict[int, dict[str, Any]], qpath: Path, root: Path, *,
                  n_lines: int, dropped: int, answers: str | Path | None, baseline: str | None, seed: int, length_unit: str,
                  bootstrap: int) -> ImportResult:
    from alignbench.pairwise.compare import (
        PairwiseSummary,
        run_metadata,
        summarize_compare,
        write_compare_run,
    )

    if length_unit not in ("words", "chars"):
        raise InputError("--length-unit", None, f"must be words or chars, not {length_unit!r}")
    base = _pair_baseline(records, path, baseline)
    models = sorted({str(o[k]) for _, o in records for k in ("model_1", "model_2")})
    folder = answers_folder(path, Path(answers) if answers is not None else None)
    replies, notes = _fastchat_answers(path, folder, models)
    notes = _dropped_note(dropped) + notes
    judgments, diffs, skipped = _fastchat_pairs(path, records, rubric, rubric_id, qs, base, replies)
    if skipped:
        notes.append(f"{skipped} row(s) do not involve the baseline {base} and are not imported")
    if not judgments:
        raise InputError(path, None, f"no pair involves the baseline {base}")
    imported = _imported_record(path, "fastchat-pair", sha, judge, prompts, n_lines)
    result = ImportResult(path, "fastchat-pair", sha, judge, prompts, n_lines, diffs, notes=notes)
    compared = sorted({j.model for j in judgments})
    who = "+".join(compared) if len("+".join(compared)) <= 60 else f"{len(compared)}-models"
    run_dir = default_run_dir(who, "vs", base, judge, "imported-fastchat-pair", root=root)
    summary = PairwiseSummary(
        **summarize_compare(judgments, rubric, length_unit, n_boot=bootstrap, seed=seed),  # type: ignore[arg-type]
        judge={"name": judge, "backend": "imported", "model": judge, "prompt": ", ".join(prompts), "tool": "fastchat"},
        rubric=rubric_id, usage=UsageTotals().model_dump(),
        run=run_metadata(dir=str(run_dir), questions={"path": str(qpath), "sha256": file_sha256(qpath)},
                            answers={m: str(folder / f"{m}.jsonl") for m in compared if m in replies},
                            baseline_answers=str(folder / f"{base}.jsonl") if base in replies else None, n_questions=len(qs), missing={}, baseline_missing=[],
                            max_answer_chars=None, imported=imported, notes=[imported_label(imported), *notes]),
        imported=imported, differences={"file": DIFFERENCES_FILE, "n": len(diffs), "by_kind": _by_kind(diffs)},
        finished=True)
    with RunFolder(run_dir) as run_folder:
        _jsonl(run_folder, DIFFERENCES_FILE, [d.as_dict() for d in diffs])
        write_compare_run(run_folder, judgments, summary)
    result.pairwise = PairwiseRun(dir=run_dir, summary=summary, judgments=judgments)
    return result


__all__ = ["FORMATS", "Difference", "ImportFormatError", "ImportResult", "detect_format", "import_judgments",
           "imported_label", "mtbench_figures"]
