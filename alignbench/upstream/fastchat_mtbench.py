"""MT-Bench as FastChat's ``llm_judge`` runs it, with the prompts of the user's own FastChat checkout.

Why: MT-Bench is the other score Chinese release notes quote, and a number stands next to the published ones
only when the judge was asked exactly as FastChat's ``gen_judgment.py`` asks it. So nothing here holds
FastChat's words: every prompt is read at run time from the checkout (``--upstream PATH``), and this module
only reproduces *how* ``common.py`` uses them:

* single grading (``run_judge_single``): a system message (the prompt's ``system_prompt``) and one user
  message (``prompt_template.format(...)``); turn 1 with ``single-v1``, turn 2 with ``single-v1-multi-turn``
  (both questions and both answers shown); questions whose category is in ``common.py``'s ``NEED_REF_CATS``
  (read from the checkout's ``common.py`` with ``ast``) use the ``single-math-v1`` family with the checkout's
  GPT-4 reference answers (``reference_answer/gpt-4.jsonl``: ``ref_answer_1``, and ``ref_answer_2`` on turn 2);
* pairwise (``run_judge_pair`` via ``play_a_match_pair``): ``pair-v2`` / ``pair-math-v1`` and their
  ``-multi-turn`` forms, each pair judged twice, the model as assistant A (FastChat's g1) and then as B (g2);
* decoding as ``chat_completion_openai`` is called: temperature 0, at most 2,048 tokens; GPT-4 (model id
  ``gpt-4``, FastChat's ``--judge-model`` default) unless another judge is named.

The verdict is read by our parser (``[[N]]``; ``[[A]]``/``[[B]]``/``[[C]]``), never FastChat's ``-1``: a
reply without a verdict is a counted failure with its text kept. Unparseable replies are not asked again
(FastChat asks once). The MT-Bench score is what ``show_result.py`` prints (the mean over judged turns, and
each turn's mean), with a bootstrap CI over questions and the failed turns counted (``mtbench_figures``, also what
``alignbench import`` computes for FastChat's judgment files); pairwise results are also counted FastChat's way (``fastchat_pair_section``).

A checkout whose files differ from the FastChat version we checked parity against (``KNOWN_SHA256``: hashes,
never text) still works when it parses, and its runs are labelled *modified*.
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from alignbench import stats
from alignbench.data import InputError, read_jsonl
from alignbench.types import Answer, ModelRequest, Question, Status, Summary
from alignbench.upstream import Checkout, UpstreamError, open_checkout, protocol_label, sha256_file

if TYPE_CHECKING:
    from alignbench.judges import ModelConfig
    from alignbench.pairwise.compare import PairItem, PairJudgment
    from alignbench.rubrics import Rubric
    from alignbench.scoring import Item
    from alignbench.types import Judgment

PROTOCOL = "MT-Bench"
SOURCE = "FastChat llm_judge"  # the label: "MT-Bench (FastChat llm_judge @ <judge_prompts.jsonl's hash>)"
KNOWN = "lm-sys/FastChat's fastchat/llm_judge (the version of ../shared/upstream/FastChat)"
RUBRIC = "mtbench-fastchat"  # rubrics/mtbench-fastchat: categories and verdict conventions, no prompt text
DEFAULT_JUDGE = "openai:gpt-4"  # gen_judgment.py --judge-model default
TEMPERATURE = 0.0  # run_judge_single / run_judge_pair: chat_completion_openai(..., temperature=0, max_tokens=2048)
MAX_TOKENS = 2048

PROMPTS_FILE = "data/judge_prompts.jsonl"
QUESTIONS_FILE = "data/mt_bench/question.jsonl"
REFERENCE_FILE = "data/mt_bench/reference_answer/gpt-4.jsonl"
COMMON_FILE = "common.py"

# SHA-256 of lm-sys/FastChat's fastchat/llm_judge files this protocol was checked against (the parity tests
# run the same files' own code). A checkout whose files differ is labelled modified; it still runs.
KNOWN_SHA256: dict[str, str] = {
    PROMPTS_FILE: "fd283293406d024f44c174b094ef48031d0687a4682fd3a56b29b138f80281b6",
    QUESTIONS_FILE: "119565adbab82227089cefdb44c8d7e2cf04dc0a0ec233634c82e7d4e2a944f7",
    REFERENCE_FILE: "f957a5bc977badb66885ec970e6cd08527845780313f0995764260e5777b9b3f",
    COMMON_FILE: "71c3b317322845cb05eb6d9b555b03e5084fa59085d24989ce521fcfa8bdc9a7",
}

# gen_judgment.py's make_judge_single / make_judge_pairwise: (needs a reference, turn 2) -> prompt name
SINGLE: dict[tuple[bool, bool], str] = {(False, False): "single-v1", (True, False): "single-math-v1",
                                        (False, True): "single-v1-multi-turn", (True, True): "single-math-v1-multi-turn"}
PAIR: dict[tuple[bool, bool], str] = {(False, False): "pair-v2", (True, False): "pair-math-v1",
                                      (False, True): "pair-v2-multi-turn", (True, True): "pair-math-v1-multi-turn"}
_FORMATS = {"single": "[[rating]]", "pairwise": "[[A]]"}  # the output formats run_judge_* can read


@dataclass(frozen=True)
class FastChat:
    """The MT-Bench protocol of one FastChat checkout: its judge prompts by name, ``NEED_REF_CATS``, the GPT-4
    reference answers by question id, and the hashes of the files read (for the manifest and the label)."""

    checkout: Checkout
    prompts: dict[str, dict[str, Any]]
    need_ref: tuple[str, ...]
    references: dict[int, tuple[str, ...]]
    files: dict[str, str]  # file relative to fastchat/llm_judge -> SHA-256
    name: str = PROTOCOL
    default_judge: str = DEFAULT_JUDGE
    default_judge_model: str | None = None  # the preset's (openai:gpt-4 asks for gpt-4, as gen_judgment.py does)
    parse_retries: int | None = 0  # FastChat asks each prompt once (a retry would be another request)

    @property
    def modified(self) -> list[str]:
        """The files read that differ from the FastChat version we know."""
        return [f for f, h in self.files.items() if f in KNOWN_SHA256 and KNOWN_SHA256[f] != h]

    @property
    def label(self) -> str:
        """What every view of a run made this way says (``upstream.protocol_label`` of :meth:`record`)."""
        return protocol_label({"upstream": self._record()})

    @property
    def default_questions(self) -> Path:
        return self.checkout.file(QUESTIONS_FILE)

    def rubric(self) -> Rubric:
        """``rubrics/mtbench-fastchat``: MT-Bench's categories and verdict conventions (no prompt text)."""
        from alignbench.rubrics import load_rubric

        return load_rubric(RUBRIC)

    def judge_config(self, config: ModelConfig, settings: Any) -> ModelConfig:
        """The judge as ``chat_completion_openai`` is called: temperature 0 and 2,048 tokens unless
        --temperature/--max-tokens say otherwise; the prompts are the checkout's (rubric ``mtbench-fastchat``)."""
        temperature = TEMPERATURE if settings.temperature is None else settings.temperature
        return config.model_copy(update={"rubric": RUBRIC, "temperature": temperature,
                                         "max_tokens": settings.max_tokens or MAX_TOKENS})

    def load_questions(self, path: str | Path | None, rubric: Rubric) -> list[Question]:
        """FastChat's question file (default: the checkout's MT-Bench one), with each reference-guided
        question's GPT-4 reference answers attached (the viewer shows what the judge was shown). A question of
        a NEED_REF_CATS category without a reference answer fails here, as FastChat's ``check_data`` does."""
        from alignbench.data import load_fastchat_questions

        path = Path(path) if path is not None else self.default_questions
        self.files[str(path.relative_to(self.checkout.base)) if path.is_relative_to(self.checkout.base)
                   else str(path)] = sha256_file(path)
        out = []
        for q in load_fastchat_questions(path, rubric):
            if self.needs_reference(q):
                refs = self.references.get(q.id)
                if refs is None or len(refs) < q.model_turns:
                    raise UpstreamError(f"{self.checkout.file(REFERENCE_FILE)}: no reference answer for all "
                                        f"{q.model_turns} turns of question {q.id} ({q.category} needs one)")
                q = q.model_copy(update={"reference": refs[0], "references": refs[:q.model_turns]})
            out.append(q)
        return out

    def needs_reference(self, question: Question) -> bool:
        return question.category in self.need_ref

    # -- requests ------------------------------------------------------------------------------
    def single_messages(self, question: Question, replies: Sequence[str], turn: int) -> list[dict[str, str]]:
        """``run_judge_single``'s messages for model turn ``turn`` (1 or 2) of one answer."""
        ref = self.needs_reference(question)
        prompt = self.prompts[SINGLE[(ref, turn == 2)]]
        asked = [t.content for t in question.turns]
        kwargs = self._reference_kwargs(question, turn) if ref else {}
        if turn == 2:
            fields = dict(question_1=asked[0], question_2=asked[1], answer_1=replies[0], answer_2=replies[1])
        else:
            fields = dict(question=asked[0], answer=replies[0])
        return self._messages(prompt, {**fields, **kwargs})

    def pair_messages(self, question: Question, replies_a: Sequence[str], replies_b: Sequence[str],
                      turn: int) -> list[dict[str, str]]:
        """``run_judge_pair``'s messages (an OpenAI judge) with ``replies_a`` as assistant A."""
        ref = self.needs_reference(question)
        prompt = self.prompts[PAIR[(ref, turn == 2)]]
        asked = [t.content for t in question.turns]
        kwargs = self._reference_kwargs(question, turn) if ref else {}
        if turn == 2:
            fields = dict(question_1=asked[0], question_2=asked[1], answer_a_1=replies_a[0], answer_b_1=replies_b[0],
                          answer_a_2=replies_a[1], answer_b_2=replies_b[1])
        else:
            fields = dict(question=asked[0], answer_a=replies_a[0], answer_b=replies_b[0])
        return self._messages(prompt, {**fields, **kwargs})

    def _reference_kwargs(self, question: Question, turn: int) -> dict[str, str]:
        refs = self.references[question.id]
        return {"ref_answer_1": refs[0], **({"ref_answer_2": refs[1]} if turn == 2 else {})}

    def _messages(self, prompt: dict[str, Any], fields: dict[str, str]) -> list[dict[str, str]]:
        try:
            user = prompt["prompt_template"].format(**fields)
        except (KeyError, IndexError, ValueError) as exc:
            raise UpstreamError(f"{self.checkout.file(PROMPTS_FILE)}: prompt {prompt['name']!r} does not format "
                                f"with FastChat's fields ({type(exc).__name__}: {exc})") from None
        # conv.set_system_message(system_prompt); conv.to_openai_api_messages(): the system message, then the user's
        return [{"role": "system", "content": prompt["system_prompt"]}, {"role": "user", "content": user}]

    def _request(self, messages: list[dict[str, str]], config: ModelConfig, rubric: Rubric,
                 question: Question) -> ModelRequest:
        return ModelRequest(messages=tuple(messages), decoding=config.decoding, rubric=rubric.id,
                            question_id=question.id)

    def plan_single(self, pairs: Sequence[tuple[Question, Answer]], rubric: Rubric, config: ModelConfig) -> list[Item]:
        """``scoring.plan`` for this protocol: one item per judged turn of every answer, consecutive per answer
        (``judge_items`` joins them into dialogues). Answers are shown as the model wrote them (FastChat
        neither clips them nor hides reasoning)."""
        from alignbench.scoring import Item

        items = []
        for question, answer in sorted(pairs, key=lambda p: (p[0].id, p[1].model)):
            replies = answer.turns or (answer.text,)
            for turn in judged_turns(question):
                request = self._request(self.single_messages(question, replies, turn), config, rubric, question)
                items.append(Item(question, answer, request, False, turn=turn))
        return items

    def plan_pairs(self, pairs: Sequence[tuple[Question, Answer, Answer]], rubric: Rubric,
                   config: ModelConfig) -> list[PairItem]:
        """``pairwise.compare.plan_pairs`` for this protocol: every judged turn in both orders, the model as A
        first (FastChat's g1, ``model_1`` = the model, ``model_2`` = the baseline) and then as B (g2)."""
        from alignbench.pairwise.compare import ORDERS, PairItem

        items = []
        for question, model_answer, base_answer in pairs:
            mine, base = model_answer.turns or (model_answer.text,), base_answer.turns or (base_answer.text,)
            for turn in judged_turns(question):
                for order in ORDERS:
                    a, b = (mine, base) if order == "model_first" else (base, mine)
                    request = self._request(self.pair_messages(question, a, b, turn), config, rubric, question)
                    items.append(PairItem(question, model_answer, base_answer, order, request, False, turn))
        items.sort(key=lambda it: (it.question.id, it.turn or 0, it.order != "model_first", it.model_answer.model))
        return items

    def finish_summary(self, summary: Summary, judgments: Sequence[Judgment], rubric: Rubric, seed: int) -> Summary:
        """The run's summary with the MT-Bench score as its overall (:func:`with_mtbench`)."""
        return with_mtbench(summary, mtbench_figures(judgments, rubric, seed=seed))

    def finish_pairwise(self, summary: dict[str, Any], judgments: Sequence[PairJudgment], seed: int) -> dict[str, Any]:
        """A compare summary with show_result.py's pairwise counts (``fastchat``) and this checkout's record."""
        return {**summary, "fastchat": fastchat_pair_section(judgments, seed=seed),
                "run": {**summary["run"], "upstream": self.record()}}

    def record(self) -> dict[str, Any]:
        """The manifest entry (``summary.json`` → ``run.upstream``): what reproduces and labels the run. The
        label is ``protocol (file @ sha256[:8])`` plus, when ``modified``, the files that ``differ``."""
        return {**self._record(), "label": self.label}

    def _record(self) -> dict[str, Any]:
        return {"protocol": PROTOCOL, "file": SOURCE, "sha256": self.files[PROMPTS_FILE], "modified": bool(self.modified),
                "differs": self.modified, "known": KNOWN, "kind": self.checkout.kind,
                "root": str(self.checkout.root.resolve()), "files": dict(sorted(self.files.items())),
                "need_ref_cats": list(self.need_ref), "temperature": TEMPERATURE, "max_tokens": MAX_TOKENS,
                "comparable": "with MT-Bench scores made by FastChat's gen_judgment.py and show_result.py with "
                              "the same judge model" + ("" if not self.modified else
                                                        "; the checkout's files differ from upstream FastChat")}


def judged_turns(question: Question) -> list[int]:
    """gen_judgment.py judges turn 1 of every question and turn 2 of those with exactly two turns."""
    return [1, 2] if question.model_turns == 2 else [1]


def _need_ref_cats(path: Path) -> tuple[str, ...]:
    """``NEED_REF_CATS`` of the checkout's ``common.py``, read with ``ast`` (the module itself imports
    FastChat's model code and API clients; nothing of it is run)."""
    try:
        with warnings.catch_warnings():  # its regexes are written with "\\[" in plain strings: not ours to warn about
            warnings.simplefilter("ignore")
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError) as exc:
        raise UpstreamError(f"{path}: does not parse as Python ({exc})") from None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "NEED_REF_CATS"
                                                for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                value = None
            if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
                return tuple(value)
            raise UpstreamError(f"{path}:{node.lineno}: NEED_REF_CATS is not a literal list of category names")
    raise UpstreamError(f"{path}: no NEED_REF_CATS assignment (the categories judged with reference answers)")


def _read_lines(path: Path) -> list[dict[str, Any]]:
    try:  # the one bounded JSONL reader (data.read_jsonl): every bad line is one error naming file and line
        return [obj for _, obj in read_jsonl(path)]
    except InputError as exc:
        raise UpstreamError(str(exc)) from None


def _prompts(path: Path) -> dict[str, dict[str, Any]]:
    """``load_judge_prompts``: name -> prompt record; the eight prompts MT-Bench uses must be there, each with
    a string system prompt and template and the output format ``run_judge_*`` reads."""
    prompts = {obj.get("name"): obj for obj in _read_lines(path)}
    for kind, names in (("single", SINGLE.values()), ("pairwise", PAIR.values())):
        for name in names:
            p = prompts.get(name)
            if p is None:
                raise UpstreamError(f"{path}: no judge prompt named {name!r}")
            if not isinstance(p.get("system_prompt"), str) or not isinstance(p.get("prompt_template"), str):
                raise UpstreamError(f"{path}: prompt {name!r} lacks a string system_prompt or prompt_template")
            if p.get("type") != kind or p.get("output_format") != _FORMATS[kind]:
                raise UpstreamError(f"{path}: prompt {name!r} is of type {p.get('type')!r} with output format "
                                    f"{p.get('output_format')!r}; MT-Bench's is {kind!r} with {_FORMATS[kind]!r}")
    return prompts


def _references(path: Path) -> dict[int, tuple[str, ...]]:
    """``load_model_answers`` on the reference folder, for the GPT-4 file: question id -> reference turns."""
    out: dict[int, tuple[str, ...]] = {}
    for obj in _read_lines(path):
        try:
            turns = obj["choices"][0]["turns"]
            qid = int(obj["question_id"])
        except (KeyError, IndexError, TypeError, ValueError):
            raise UpstreamError(f"{path}: a line without question_id and choices[0].turns") from None
        out[qid] = tuple(str(t) for t in turns)
    return out


def open_fastchat(path: str | Path | Checkout) -> FastChat:
    """Read the MT-Bench protocol from a FastChat checkout (the repository root or ``fastchat/llm_judge``).
    Everything is read and checked here, before any call; a file that does not parse is named."""
    checkout = path if isinstance(path, Checkout) else open_checkout(path, expect="fastchat")
    prompts_path, common_path = checkout.file(PROMPTS_FILE), checkout.file(COMMON_FILE)
    reference_path = checkout.file(REFERENCE_FILE)
    return FastChat(checkout=checkout, prompts=_prompts(prompts_path), need_ref=_need_ref_cats(common_path),
                    references=_references(reference_path),
                    files={PROMPTS_FILE: sha256_file(prompts_path), COMMON_FILE: sha256_file(common_path),
                           REFERENCE_FILE: sha256_file(reference_path)})


# -- scores as FastChat shows them ---------------------------------------------------------------


def mtbench_figures(judgments: Sequence[Judgment], rubric: Rubric, seed: int = 0, n_boot: int = 2000,
                    level: float = 0.95) -> dict[str, Any]:
    """The MT-Bench score as FastChat's ``show_result.py --mode single`` computes it: the mean over judged turns
    (its rows with ``score != -1``), and the same per turn and per category. Here a turn counts when our parser
    read a verdict; the others are counted in ``n_failed``, never averaged in as -1 nor dropped unseen. CIs
    (``alignbench.stats``): percentile bootstrap over questions, a question's turns resampled together, one
    seeded set of resamples for every figure. The one computation for ``score --upstream FASTCHAT`` and
    ``alignbench import`` of FastChat's single judgment files."""
    turns = [t for j in judgments for t in (j.turns or [j])]  # FastChat's file: one row per (question, turn)
    qids = sorted({t.question_id for t in turns})
    where = {q: i for i, q in enumerate(qids)}
    picks = stats.draw(np.random.default_rng(seed), len(qids), n_boot) if qids else None

    def figure(selected: list[Judgment]) -> dict[str, Any]:
        ok = [t for t in selected if t.status is Status.OK and t.overall is not None]
        entry: dict[str, Any] = {"score": None, "ci": None, "n": len(ok), "n_failed": len(selected) - len(ok)}
        if not ok:
            return entry
        sums, counts = np.zeros(len(qids)), np.zeros(len(qids))
        for t in ok:
            sums[where[t.question_id]] += t.overall  # type: ignore[operator]
            counts[where[t.question_id]] += 1
        entry["score"] = round(float(sums.sum() / counts.sum()), 4)
        with np.errstate(invalid="ignore", divide="ignore"):
            boot = sums[picks].sum(axis=1) / counts[picks].sum(axis=1)
        if (ci := stats.percentile_ci(boot, level)) is not None:
            entry["ci"] = [round(ci[0], 4), round(ci[1], 4)]
        return entry

    by_turn = {str(k): figure([t for t in turns if (t.turn or 1) == k]) for k in sorted({t.turn or 1 for t in turns})}
    cats = {c: {**figure([t for t in turns if t.category == c]), "group": rubric.category(c).group,  # type: ignore[union-attr]
                "en": rubric.category(c).en}  # type: ignore[union-attr]
            for c in rubric.category_names() if any(t.category == c for t in turns)}
    return {**figure(turns), "turns": by_turn, "categories": cats, "n_turns": len(turns),
            "unit": "mean over judged turns (FastChat show_result.py); turns without a verdict counted in n_failed, "
                    "not averaged; CI: bootstrap over questions",
            "bootstrap": {"resamples": n_boot, "seed": seed}}


def with_mtbench(summary: Summary, figures: dict[str, Any]) -> Summary:
    """The summary with the MT-Bench score as its overall (and its one group's), per category the turn means,
    and the figures themselves under ``mtbench``: the terminal, the report and the viewer read these."""
    groups = {gid: g.model_copy(update={"score": figures["score"], "ci": figures["ci"]})
              for gid, g in summary.groups.items()}
    cats = {name: c.model_copy(update={"score": figures["categories"][name]["score"],
                                       "ci": figures["categories"][name]["ci"]})
            for name, c in summary.categories.items() if name in figures["categories"]}
    return summary.model_copy(update={"overall": figures["score"], "overall_ci": figures["ci"], "groups": groups,
                                      "categories": {**summary.categories, **cats}, "mtbench": figures})


def _fastchat_winner(model_first: Any, baseline_first: Any) -> str:
    """One (question, turn) row of ``show_result.py --mode pairwise-*``: an order without a verdict makes the
    row an error (dropped there, counted here); a tie in g1 or two orders that disagree make a tie."""
    if model_first.status is not Status.OK or baseline_first.status is not Status.OK:
        return "error"
    g1, g2 = model_first.winner, baseline_first.winner
    if g1 == "tie" or g1 != g2:
        return "tie"
    return "win" if g1 == "model" else "loss"


def fastchat_pair_section(judgments: Sequence[PairJudgment], seed: int = 0, n_boot: int = 2000,
                          level: float = 0.95) -> dict[str, Any]:
    """Per model, against the baseline, what ``show_result.py`` prints for pairwise runs: wins, losses and ties
    over (question, turn) rows, ``win_rate``, ``loss_rate`` and ``win_rate_adjusted`` (a tie is half a win),
    with errors counted instead of silently dropped and a bootstrap CI over questions of the adjusted rate."""
    models: dict[str, dict[int, list[str]]] = {}
    for j in judgments:
        rows = [(t.orders) for t in j.turns] if j.turns else [j.orders]
        models.setdefault(j.model, {}).setdefault(j.question_id, []).extend(_fastchat_winner(*o) for o in rows)
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    for model, by_q in sorted(models.items()):
        flat = [r for rows in by_q.values() for r in rows]
        win, loss, tie = flat.count("win"), flat.count("loss"), flat.count("tie")
        n = win + loss + tie
        entry: dict[str, Any] = {"win": win, "loss": loss, "tie": tie, "error": flat.count("error"),
                                 "win_rate": round(win / n, 4) if n else None,
                                 "loss_rate": round(loss / n, 4) if n else None,
                                 "win_rate_adjusted": round((win + 0.5 * tie) / n, 4) if n else None,
                                 "win_rate_adjusted_ci": None}
        points = np.array([sum(1.0 if r == "win" else 0.5 if r == "tie" else 0.0 for r in rows) for rows in by_q.values()])
        counts = np.array([sum(r != "error" for r in rows) for rows in by_q.values()], dtype=float)
        if n and len(points) and n_boot:
            idx = stats.draw(rng, len(points), n_boot)
            with np.errstate(invalid="ignore", divide="ignore"):
                boot = points[idx].sum(axis=1) / counts[idx].sum(axis=1)
            if (ci := stats.percentile_ci(boot, level)) is not None:
                entry["win_rate_adjusted_ci"] = [round(ci[0], 4), round(ci[1], 4)]
        out[model] = entry
    return {"models": out, "baseline": judgments[0].baseline if judgments else None,
            "unit": "(question, turn) rows as show_result.py counts them; a tie in the first order "
                                    "or orders that disagree make a tie; errors counted, not scored"}

