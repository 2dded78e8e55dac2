"""Rubric x Question x Answer -> ModelRequest. Pure: no I/O beyond reading templates once.

The prompt is ordered for prefix caching: the system message (rules, bands, output format) is the
same for every request; the user message starts with what is shared by every answer to a question
(answer type, dimensions, question, reference) and ends with the answer. A vLLM server with prefix
caching then reuses all of it across models judged on the same question.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path

import jinja2
import jinja2.meta

from alignbench import structured
from alignbench.judges.base import merge_system
from alignbench.parse import prompt_examples
from alignbench.reasoning import split_reasoning
from alignbench.rubrics import Rubric, RubricError, available, load_rubric
from alignbench.types import Answer, Decoding, ModelRequest, Question, Turn

TRUNCATION_MARK = "\n……（回答过长，以下内容已截断）"


@cache
def _environment(folder: Path) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        autoescape=False,
    )


# What differs from answer to answer (or question to question) within one category; every other template
# variable is a function of the rubric and the category (``_variables``).
_PER_ANSWER = frozenset({"question", "reference", "answer", "answer_1", "answer_2", "dialogue", "dialogue_1",
                         "dialogue_2", "turn", "n_turns"})
_RENDERED: dict[tuple[str, str, str, str, str], str] = {}


@cache
def _per_category(folder: Path, name: str) -> bool:
    """Whether template ``name`` reads only what is the same for every answer of a category (a system prompt:
    rules, bands, scale), so one rendering per rubric and category serves them all. A template that includes
    or imports another is never assumed to: what that one reads is not checked."""
    env = _environment(folder)
    ast = env.parse(env.loader.get_source(env, name)[0])  # type: ignore[union-attr]
    includes = any(True for _ in jinja2.meta.find_referenced_templates(ast))
    return not includes and not jinja2.meta.find_undeclared_variables(ast) & _PER_ANSWER


def _render(rubric: Rubric, name: str, variables: dict) -> str:
    """Template ``name`` of ``rubric`` rendered with ``variables``; a per-category one (``_per_category``) is
    rendered once per category: it was most of the CPU spent rendering 683 prompts."""
    template = _environment(rubric.folder).get_template(name)
    if not _per_category(rubric.folder, name):
        return template.render(variables)
    key = (rubric.id, str(rubric.folder), name, variables["category"], variables["subcategory"])
    if key not in _RENDERED:
        _RENDERED[key] = template.render(variables)
    return _RENDERED[key]


def cap_answer(text: str, max_chars: int | None) -> tuple[str, bool]:
    """Clip very long answers (which would blow the judge's context) and say so in the prompt."""
    if max_chars is None or max_chars <= 0 or len(text) <= max_chars:
        return text, False
    return text[:max_chars] + TRUNCATION_MARK, True


def answer_view(text: str) -> tuple[str, str | None]:
    """What the judge is shown of an answer, and what happened to its reasoning: a ``<think>`` block (or a
    never-closed one) is removed — the judge grades the answer, not the scratchpad — and reported as
    "removed"; think tags left inside the final text are "leaked" (counted; the text is kept, since an
    answer may discuss the tag). An answer without think tags is shown exactly as it is."""
    split = split_reasoning(text)
    if split.start == 0 and not split.unclosed:
        return text, "leaked" if split.leaked else None
    return split.answer, "leaked" if split.leaked else "removed"


def _variables(rubric: Rubric, question: Question) -> dict:
    """Template variables shared by the pointwise and pairwise prompts of one question."""
    atype = rubric.answer_type(question.category, question.subcategory)
    return {
        "question": question.question,
        "reference": question.reference if rubric.shows_reference(question.category) else "",
        "category": question.category,
        "subcategory": question.subcategory,
        "answer_type": atype,
        "dimensions": [
            {"name": d, "definition": rubric.dimensions[d].definition}
            for d in rubric.answer_types[atype].dimensions
        ],
        "scale": rubric.scale,
        "overall_key": rubric.overall_key,
        "rules": rubric.rules,
        "bands": rubric.bands,
    }


def render(rubric: Rubric, question: Question, answer_text: str, *, turn: int | None = None,
           replies: tuple[str, ...] = ()) -> list[dict[str, str]]:
    """Render the chat messages for one answer. A multi-turn rubric (``turns`` set) also gets ``dialogue``:
    the messages up to model ``turn`` (each a dict of role, content and model turn; ``replies`` are the
    model's replies as shown, the judged one last) and ``turn``/``n_turns``; ``reference`` is that turn's."""
    if not rubric.templates.user:
        raise RubricError(f"rubric {rubric.id} has no pointwise template (templates.user in "
                          f"{rubric.folder / 'rubric.yaml'}): it only compares pairs")
    variables = {**_variables(rubric, question), "answer": answer_text}
    if rubric.turns is not None:
        k = turn or 1
        shown = (*replies[:k - 1], answer_text)
        variables.update(
            dialogue=[{"role": r, "content": c, "turn": t} for r, c, t in question.dialogue(shown, upto=k)],
            turn=k, n_turns=question.model_turns,
            reference=question.reference_for(k) if rubric.shows_reference(question.category) else "")
    messages = []
    if rubric.templates.system:
        messages.append({"role": "system", "content": _render(rubric, rubric.templates.system, variables)})
    messages.append({"role": "user", "content": _render(rubric, rubric.templates.user, variables)})
    return messages


def render_pairwise(rubric: Rubric, question: Question, first: str, second: str, *, turn: int | None = None,
                    replies_1: Sequence[str] = (), replies_2: Sequence[str] = ()) -> list[dict[str, str]]:
    """Render the chat messages comparing two answers: ``first`` is 助手1, ``second`` is 助手2.

    The answers come last, so everything before them (rules, dimensions, question, reference) is
    the same for every pair on a question, and with the baseline in first position so is the
    baseline's block: a prefix-caching server reuses all of that across models and orders.

    A dialogue (``question.multi_turn``) is compared at model turn ``turn`` (default: the last) with the
    rubric's dialogue templates: ``first``/``second`` are the two replies of that turn and ``replies_1``/
    ``replies_2`` each assistant's earlier replies as shown (the judged one may be included last: only the
    first ``turn - 1`` are read). The templates get ``dialogue_1``/``dialogue_2`` (each assistant's side of the
    dialogue up to that turn: user turns, fixed assistant turns, its own replies), ``turn``, ``n_turns`` and
    that turn's ``reference``. Each side is a block of its own, 助手1's first, so the baseline-first prompts of
    a dialogue still share everything up to the model's block.
    """
    if not rubric.templates.pairwise_user:
        raise RubricError(f"rubric {rubric.id} has no pairwise template "
                          f"(templates.pairwise_user in {rubric.folder / 'rubric.yaml'})")
    variables = {**_variables(rubric, question), "answer_1": first, "answer_2": second}
    system, user = rubric.templates.pairwise_system, rubric.templates.pairwise_user
    if question.multi_turn:
        if not rubric.templates.pairwise_dialogue_user:
            able = [n for n in available() if load_rubric(n).templates.pairwise_dialogue_user]
            raise RubricError(f"question {question.id} is a dialogue but rubric {rubric.id} compares single answers "
                              f"only (no templates.pairwise_dialogue_user in {rubric.folder / 'rubric.yaml'}): pass "
                              f"--rubric {' or '.join(able) or 'RUBRIC'} (rubrics with pairwise dialogue templates)")
        system, user = rubric.templates.pairwise_dialogue_system, rubric.templates.pairwise_dialogue_user
        k = turn or question.model_turns

        def side(replies: Sequence[str], judged: str) -> list[dict]:
            shown = (*replies[:k - 1], judged)
            return [{"role": r, "content": c, "turn": t} for r, c, t in question.dialogue(shown, upto=k)]

        variables.update(
            dialogue_1=side(replies_1, first), dialogue_2=side(replies_2, second), turn=k,
            n_turns=question.model_turns,
            reference=question.reference_for(k) if rubric.shows_reference(question.category) else "")
    messages = []
    if system:
        messages.append({"role": "system", "content": _render(rubric, system, variables)})
    messages.append({"role": "user", "content": _render(rubric, user, variables)})
    return messages


STAND_IN = "……"
"""What stands in for the question's own text (question, reference, dialogue, answer) when a prompt is
rendered only to read the examples it shows: an example is the rubric's words, never data."""

_EXAMPLES: dict[tuple[str, str, str], tuple[str, ...]] = {}  # (rubric id, folder, stand-in question) -> examples


def verdict_examples(rubric: Rubric, question: Question) -> tuple[str, ...]:
    """The example verdicts the rubric's pointwise prompt shows the judge for ``question`` (alignbench-general's
    ``{'综合得分': 5}``; none for a rubric whose examples are placeholders such as ``评分：[[N]]``), for
    ``parse_scores(..., examples=…)``: a judge that copies one after its own verdict is then not read as
    having given the example's score.

    Read from the prompt itself, rendered for the question's category and answer type (which decide the
    dimensions and may decide the wording), with ``STAND_IN`` for every text that comes from the data: the
    templates stay the one place examples are written, and a score dict inside a question or an answer never
    becomes an "example". Cached per rubric and question shape; a rubric without a pointwise prompt gives none."""
    if not rubric.templates.user:
        return ()
    blank = Question(id=question.id, category=question.category, subcategory=question.subcategory,
                     question=STAND_IN, reference=STAND_IN if question.reference else "",
                     turns=tuple(Turn(role=t.role, content=STAND_IN) for t in question.turns),
                     references=tuple(STAND_IN if r else "" for r in question.references))
    key = (rubric.id, str(rubric.folder), blank.model_dump_json(exclude={"id"}))
    if key not in _EXAMPLES:
        messages = render(rubric, blank, STAND_IN, turn=blank.model_turns if rubric.turns else None,
                          replies=(STAND_IN,) * blank.model_turns)
        dims = rubric.dimensions_for(question.category, question.subcategory)
        _EXAMPLES[key] = prompt_examples("\n".join(m["content"] for m in messages), dims, rubric.overall_key,
                                         (rubric.scale.min, rubric.scale.max), rubric.verdict, rubric.verdict_labels)
    return _EXAMPLES[key]


def build_request(
    rubric: Rubric,
    question: Question,
    answer: Answer,
    decoding: Decoding,
    max_answer_chars: int | None = None,
    system_role: bool = True,
    *,
    turn: int | None = None,
    structured_output: bool = False,
    logprobs: int | None = None,
    completion: bool = False,
) -> tuple[ModelRequest, bool]:
    """The judge request for one answer, and whether the answer had to be clipped.

    ``turn``: the model turn of a multi-turn answer to judge (its dialogue so far is shown).
    ``structured_output``: ask for the verdict as JSON (the schema rides on the request, the prompt says
    what the JSON holds); ``logprobs``: ask for that many alternatives per output token; ``completion``: send
    the prompt as one bare text completion, no chat template (``ModelRequest.completion``)."""
    if turn is None:
        text, truncated = cap_answer(answer_view(answer.text)[0], max_answer_chars)
        messages = render(rubric, question, text)
    else:
        replies = [cap_answer(answer_view(r)[0], max_answer_chars) for r in (answer.turns or (answer.text,))[:turn]]
        text, truncated = replies[-1]
        messages = render(rubric, question, text, turn=turn, replies=tuple(r for r, _ in replies))
    schema = None
    if structured_output:
        dims = rubric.dimensions_for(question.category, question.subcategory)
        schema = structured.verdict_schema(rubric, dims)
        messages = structured.with_note(messages, structured.note(rubric, dims))
    if not system_role:
        messages = merge_system(messages)
    request = ModelRequest(messages=tuple(messages), decoding=decoding, rubric=rubric.id,
                           question_id=question.id, response_schema=schema, logprobs=logprobs, completion=completion)
    return request, truncated


def retry_request(request: ModelRequest, attempt: int) -> ModelRequest:
    """A fresh sample of the same prompt after an unparseable reply.

    A greedy judge answers the same prompt the same way, so the retry changes the seed and, at
    temperature 0, raises the temperature a little; the retry is a different cache entry.
    """
    dec = request.decoding
    temperature = dec.temperature if dec.temperature > 0 else 0.3
    new = dec.model_copy(update={"seed": (dec.seed or 0) + attempt, "temperature": temperature})
    return request.model_copy(update={"decoding": new})
