"""Reading question and answer files, and joining answers to questions.

All input checking happens here, before any judge is called: a bad line stops the run with the
file, the line number and what is wrong, so nobody pays for half a run on broken data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alignbench import safejson
from alignbench.rubrics import Rubric
from alignbench.types import Answer, Question, Turn


class InputError(ValueError):
    """Bad input data. The message names file and line and says what to do."""

    def __init__(self, path: Path | str, line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")
        self.path, self.line = str(path), line


def read_jsonl(path: Path | str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for every non-blank line; raise InputError on the first bad one."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, None, "file not found")
    for lineno, raw in safejson.iter_lines(path):
        if raw is None:
            raise InputError(path, lineno, f"a line longer than {safejson.MAX_BYTES:,} bytes; is this a JSONL file?")
        try:
            text = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(path, lineno, f"not UTF-8 ({exc.reason} at byte {exc.start}); "
                             "re-save the file as UTF-8") from None
        if not text.strip():
            continue
        try:
            obj = safejson.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(path, lineno, safejson.describe(exc)) from None
        if not isinstance(obj, dict):
            raise InputError(path, lineno, "expected a JSON object per line")
        yield lineno, obj


def file_sha256(path: Path | str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _require(obj: dict, key: str, kind: type | tuple[type, ...], path: Path, lineno: int) -> Any:
    if key not in obj or obj[key] is None:
        raise InputError(path, lineno, f"missing field {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InputError(path, lineno, f"field {key!r} has type {type(value).__name__}")
    return value


def _question_id(value: Any, path: Path, lineno: int) -> int:
    if isinstance(value, bool):
        raise InputError(path, lineno, "question_id must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise InputError(path, lineno, f"question_id must be an integer, got {value!r}")


def _question_rows(path: Path) -> Iterator[tuple[int, dict[str, Any], int]]:
    """(line, object, question id) of every row of a question file, whatever its format: the id present, an
    integer, and not repeated; the one check both question readers share."""
    seen: dict[int, int] = {}
    for lineno, obj in read_jsonl(path):
        if "question_id" not in obj:
            raise InputError(path, lineno, "missing field 'question_id'")
        qid = _question_id(obj["question_id"], path, lineno)
        if qid in seen:
            raise InputError(path, lineno, f"duplicate question_id {qid} (first on line {seen[qid]})")
        seen[qid] = lineno
        yield lineno, obj, qid


def load_questions(path: Path | str, rubric: Rubric) -> list[Question]:
    """Load an AlignBench question file (official format; unknown keys are ignored)."""
    path = Path(path)
    questions: list[Question] = []
    for lineno, obj, qid in _question_rows(path):
        category = _require(obj, "category", str, path, lineno)
        subcategory = _require(obj, "subcategory", str, path, lineno)
        turns, references = _dialogue(obj, path, lineno) if "turns" in obj else ((), ())
        text = turns[0].content if turns else _require(obj, "question", str, path, lineno)
        reference = obj.get("reference") or (references[0] if references else "")
        if not isinstance(reference, str):
            raise InputError(path, lineno, "field 'reference' must be a string")
        cat = rubric.category(category)
        if cat is None:
            raise InputError(path, lineno, f"unknown category {category!r}; expected one of "
                             f"{', '.join(rubric.category_names())}")
        if rubric.answer_type_by == "subcategory" and subcategory not in rubric.subcategory_types:
            raise InputError(path, lineno, f"unknown subcategory {subcategory!r} (category {category}); "
                             f"add it to subcategory_types in {rubric.folder / 'rubric.yaml'}")
        if not text.strip():
            raise InputError(path, lineno, "empty question")
        evidences = obj.get("evidences") or []
        questions.append(Question(
            id=qid, category=cat.name, subcategory=subcategory, question=text, reference=reference,
            evidences=[e for e in evidences if isinstance(e, dict)] if isinstance(evidences, list) else [],
            turns=turns, references=references,
        ))
    if not questions:
        raise InputError(path, None, "no questions in file")
    return questions


def load_fastchat_questions(path: Path | str, rubric: Rubric) -> list[Question]:
    """Load FastChat's MT-Bench ``question.jsonl`` as it is: ``question_id``, ``category`` and ``turns`` (the
    user turns, strings). Why a reader of its own: those lines have no ``subcategory`` and may carry a
    ``reference`` list that FastChat's judge never reads (its references come from ``reference_answer/``), so
    the AlignBench reader would refuse them. The category is the subcategory (MT-Bench has one level)."""
    path = Path(path)
    questions: list[Question] = []
    for lineno, obj, qid in _question_rows(path):
        category = _require(obj, "category", str, path, lineno)
        cat = rubric.category(category)
        if cat is None:
            raise InputError(path, lineno, f"unknown category {category!r}; expected one of "
                             f"{', '.join(rubric.category_names())}")
        raw = obj.get("turns")
        if not isinstance(raw, list) or not raw or not all(isinstance(t, str) and t.strip() for t in raw):
            raise InputError(path, lineno, "field 'turns' must be a non-empty list of user turns (strings)")
        turns = tuple(Turn(role="user", content=t) for t in raw)
        questions.append(Question(id=qid, category=cat.name, subcategory=cat.name, question=raw[0], turns=turns))
    if not questions:
        raise InputError(path, None, "no questions in file")
    return questions


def _fastchat_replies(obj: dict, path: Path, lineno: int) -> tuple[str, ...]:
    """The replies of a FastChat answer line (``choices[0].turns``, as its ``gen_model_answer.py`` writes them)."""
    choices = obj["choices"]
    turns = choices[0].get("turns") if isinstance(choices, list) and choices and isinstance(choices[0], dict) \
        else None
    if not isinstance(turns, list) or not turns or not all(isinstance(r, str) for r in turns):
        raise InputError(path, lineno, "field 'choices' must be FastChat's [{\"turns\": [reply, ...]}]")
    return tuple(turns)


def _dialogue(obj: dict, path: Path, lineno: int) -> tuple[tuple[Turn, ...], tuple[str, ...]]:
    """The ``turns`` (and ``references``) of a multi-turn question line (format in data/zh/README.md): user
    turns as strings or ``{"role": "user", "content": …}``, fixed assistant turns as
    ``{"role": "assistant", "content": …}``; the model answers each user turn no fixed assistant turn follows."""
    raw = obj["turns"]
    if not isinstance(raw, list) or not raw:
        raise InputError(path, lineno, "field 'turns' must be a non-empty list of user turns (strings) and "
                         "{\"role\", \"content\"} messages")
    turns: list[Turn] = []
    for i, item in enumerate(raw, start=1):
        if isinstance(item, str):
            item = {"role": "user", "content": item}
        if not isinstance(item, dict) or item.get("role") not in ("user", "assistant") \
                or not isinstance(item.get("content"), str) or not item["content"].strip():
            raise InputError(path, lineno, f"turn {i}: expected a non-empty string or "
                             "{\"role\": \"user\"|\"assistant\", \"content\": \"…\"}")
        if turns and item["role"] == "assistant" == turns[-1].role:
            raise InputError(path, lineno, f"turn {i}: two assistant turns in a row")
        turns.append(Turn(role=item["role"], content=item["content"]))
    if turns[0].role != "user":
        raise InputError(path, lineno, "a dialogue starts with a user turn")
    if turns[-1].role != "user":
        raise InputError(path, lineno, "a dialogue ends with a user turn (the model answers it); a fixed "
                         "assistant turn at the end would be answered by nobody")
    n = sum(1 for i, t in enumerate(turns) if t.role == "user" and (i + 1 == len(turns) or turns[i + 1].role != "assistant"))
    refs = obj.get("references") or []
    if not isinstance(refs, list) or not all(r is None or isinstance(r, str) for r in refs) or len(refs) > n:
        raise InputError(path, lineno, f"field 'references' must be a list of at most {n} strings (one per model "
                         "turn; null for none)")
    return tuple(turns), tuple(r or "" for r in refs)


def load_answers(path: Path | str, model: str | None = None, allow_empty: bool = False) -> list[Answer]:
    """Load answers in AlignBench's format (``model_id``), the simple ``{question_id, answer}`` one, or FastChat's
    (``model_id``, ``choices[0].turns``: one reply per turn).

    ``model`` names the model when lines carry no ``model_id`` and overrides it when they do.
    Keys other than ``question_id``, ``model_id`` and ``answer`` are kept in ``Answer.meta``.
    """
    path = Path(path)
    if model is not None and safejson.lone_surrogate(model):
        raise InputError(path, None, f"the model name {model.encode('utf-8', 'backslashreplace').decode()!r} "
                         "holds a lone surrogate (undecodable bytes?), which cannot be stored; pass another --model")
    answers: list[Answer] = []
    seen: dict[tuple[str, int], int] = {}
    for lineno, obj in read_jsonl(path):
        if "question_id" not in obj:
            raise InputError(path, lineno, "missing field 'question_id'")
        qid = _question_id(obj["question_id"], path, lineno)
        name = model or obj.get("model_id")
        if not name or not isinstance(name, str):
            raise InputError(path, lineno, "no model name: the line has no 'model_id'; "
                             "pass --model NAME to name the model")
        replies: tuple[str, ...] = ()
        if "choices" in obj and "turns" not in obj and "answer" not in obj:  # FastChat's model_answer format
            replies = _fastchat_replies(obj, path, lineno)
            text = replies[-1]
        elif "turns" in obj:  # a multi-turn answer: one reply per model turn
            raw = obj["turns"]
            if not isinstance(raw, list) or not raw or not all(isinstance(r, str) for r in raw):
                raise InputError(path, lineno, "field 'turns' must be a non-empty list of replies (strings), one per "
                                 "model turn")
            replies = tuple(raw)
            text = replies[-1]
        else:
            text = _require(obj, "answer", str, path, lineno)
        if not all(r.strip() for r in replies or (text,)) and not allow_empty:
            raise InputError(path, lineno, f"empty answer to question {qid}; "
                             "pass --allow-empty to judge empty answers as they are")
        if (name, qid) in seen:
            raise InputError(path, lineno, f"duplicate answer to question {qid} from {name} "
                             f"(first on line {seen[(name, qid)]})")
        seen[(name, qid)] = lineno
        meta = {k: v for k, v in obj.items() if k not in ("question_id", "model_id", "answer", "turns", "choices")}
        meta["line"] = lineno
        answers.append(Answer(question_id=qid, model=name, text=text, meta=meta, turns=replies))
    if not answers:
        raise InputError(path, None, "no answers in file")
    return answers


def _check_turns(question: Question, answer: Answer, path: Path | str) -> None:
    """A multi-turn answer has one reply per model turn of its question (a dialogue with one model turn
    may give it as a plain ``answer``)."""
    n = question.model_turns
    got = len(answer.turns) if answer.turns else 1
    if not question.multi_turn:
        raise InputError(path, answer.meta.get("line"), f"answer to question {question.id} has 'turns' but the "
                         "question is single-turn; give it an 'answer'")
    if got != n:
        raise InputError(path, answer.meta.get("line"), f"answer to question {question.id} has {got} repl"
                         f"{'ies' if got != 1 else 'y'} but the dialogue has {n} model turns ('turns': one reply each)")


@dataclass
class Joined:
    """Answers matched to their questions, plus what could not be matched (always reported)."""

    pairs: list[tuple[Question, Answer]]
    missing: dict[str, list[int]] = field(default_factory=dict)  # model -> question ids without answer


def join(questions: list[Question], answers: list[Answer], answers_path: Path | str = "") -> Joined:
    """Match answers to questions by id.

    An answer to an unknown question is an error (it usually means the wrong question file);
    a question without an answer is a counted warning, listed in the summary.
    """
    by_id = {q.id: q for q in questions}
    pairs: list[tuple[Question, Answer]] = []
    answered: dict[str, set[int]] = {}
    for ans in answers:
        question = by_id.get(ans.question_id)
        if question is None:
            raise InputError(answers_path, ans.meta.get("line"),
                             f"answer to question_id {ans.question_id}, which is not in the question file; "
                             "check that --questions and --answers belong together")
        if question.multi_turn or ans.turns:
            _check_turns(question, ans, answers_path)
        pairs.append((question, ans))
        answered.setdefault(ans.model, set()).add(ans.question_id)
    missing = {m: sorted(set(by_id) - ids) for m, ids in answered.items()}
    return Joined(pairs=pairs, missing={m: ids for m, ids in missing.items() if ids})
