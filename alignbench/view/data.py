"""Everything the viewer shows, loaded once: runs, answers, per-judge runs of ensembles, pairwise
verdicts, the comparison with a baseline run, reviews; and the one filter/sort used by every list.

Why load everything up front: a reviewer pages through hundreds of questions; each page must come
from memory (the issue asks for a question view under 100 ms with 10 runs × 683 judgments). What is
expensive and not needed for the first page (the normalised full-text index) is built on first use.

Nothing here writes, except ``ViewData.add_review`` through ``reviews.append_review``.
"""

from __future__ import annotations

import random
import re
import shlex
import threading
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from alignbench import safejson
from alignbench.data import InputError
from alignbench.reviews import (
    ReviewState,
    append_review,
    current_reviews,
    read_reviews,
    review_agreement,
)
from alignbench.rubrics import Rubric, RubricError, load_rubric
from alignbench.rundir import (
    Run,
    RunError,
    ensemble_members,
    load_answer_texts,
    load_run,
    run_folders,
    unique_labels,
)
from alignbench.stats import fmt
from alignbench.types import Answer, Judgment, Question, Status
from alignbench.view.queue import Facts, usefulness

PAIRWISE_JUDGMENTS = "pairwise_judgments.jsonl"
PAIRWISE_SUMMARY = "pairwise_summary.json"
FAILED = "failed"
SORTS = ("id", "score", "-score", "delta", "drop", "gain", "spread", "queue", "sample")
QUEUES = ("queue", "sample")  # the two review queues: most useful first, and a random sample
SCOPES = ("all", "question", "answer", "judge", "note")


class ViewError(ValueError):
    """The viewer cannot start with these folders (the message names the folder and what to do)."""


# ================================================================================================
# Records
# ================================================================================================


class ReviewBook:
    """The reviews of one run folder, re-read when ``reviews.jsonl`` changes on disk (another tab,
    another server, a hand edit), so the page never shows a review count older than the file."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.path = run.dir / "reviews.jsonl"
        self._sig: tuple[int, int] | None = None
        self.reviews: list = []
        self.problems: list[str] = []
        self.states: dict[tuple[int, str], ReviewState] = {}
        self.refresh()

    def refresh(self) -> None:
        try:
            st = self.path.stat()
            sig = (st.st_size, st.st_mtime_ns)
        except OSError:
            sig = (0, 0)
        if sig == self._sig:
            return
        book = read_reviews(self.run.dir)
        self.reviews, self.problems = book.reviews, book.problems
        self.states = current_reviews(self.run.judgments, self.reviews)
        self._sig = sig

    @property
    def signature(self) -> tuple[int, int] | None:
        return self._sig

    def state(self, judgment: Judgment) -> ReviewState | None:
        return self.states.get((judgment.question_id, judgment.model))

    def history(self, judgment: Judgment) -> list:
        key = (judgment.question_id, judgment.model)
        return [r for r in self.reviews if r.key == key]


@dataclass
class PairFolder:
    """A ``compare`` folder: pairwise verdicts in both orders and their summary."""

    path: Path
    label: str
    summary: Any  # alignbench.pairwise.compare.PairwiseSummary
    pairs: list[Any]  # alignbench.pairwise.compare.PairJudgment


@dataclass
class RunView:
    """One run folder as the viewer uses it."""

    key: str
    run: Run
    label: str
    is_baseline: bool
    summary: dict[str, Any]
    by_qid: dict[int, Judgment]
    answers: dict[int, Answer] = field(default_factory=dict)
    answers_note: str | None = None
    members: dict[str, dict[int, Judgment]] = field(default_factory=dict)  # ensemble: judge -> judgments
    members_note: str | None = None
    comparison: Any = None  # reporting.compare.Comparison against the baseline run
    qdelta: dict[int, float] = field(default_factory=dict)  # per question: this run − baseline
    reviews: ReviewBook | None = None
    colour: str = "#444"

    @property
    def model(self) -> str:
        return self.run.model

    @property
    def judge(self) -> str:
        """The judge as every view names it (``stats.fmt.judge_label``: with what its server says it serves)."""
        return fmt.judge_label(self._judged_by())

    @property
    def judge_detail(self) -> str:
        """The judge with the model id asked for too (the run page)."""
        return fmt.judge_label(self._judged_by(), model=True)

    def _judged_by(self) -> dict[str, Any]:
        run = self.summary.get("run", {})
        judge = run.get("judge", {})
        return {**run, "judge": {**judge, "name": judge.get("name") or self.run.judge_id}}

    @property
    def protocol(self) -> str:
        """What the run's numbers can stand next to (``upstream.protocol_label``: official protocol or our rubric)."""
        from alignbench.upstream import protocol_label

        return protocol_label(self.summary.get("run", {}))

    @property
    def n_judges(self) -> int:
        """Judges behind each judgment (an ensemble's attempts add up over its judges)."""
        return len((self.summary.get("ensemble") or {}).get("judges") or []) or 1

    @property
    def scale(self) -> tuple[float, float]:
        lo, hi = (self.summary.get("scale") or [1, 10])[:2]
        return float(lo), float(hi)

    @property
    def dialogues(self) -> dict[str, Any]:
        """The summary's ``dialogues`` section (per-turn scores of a run with multi-turn dialogues; empty
        otherwise). Read from the summary's extra keys, as the Markdown report does: ``Summary`` does not
        name the section, so the viewer must not depend on a field that runs without dialogues lack."""
        return (self.run.summary.model_extra or {}).get("dialogues") or {}

    def agreement(self) -> Any:
        assert self.reviews is not None
        self.reviews.refresh()
        return review_agreement(self.run.judgments, self.reviews.reviews)


@dataclass
class Item:
    """One judgment in the lists: a row, a queue entry, a stop of previous/next."""

    run: RunView
    j: Judgment
    delta: float | None = None
    spread: float | None = None  # ensemble: max − min of the judges' overall scores
    judge_failed: bool = False  # ensemble: some judge failed this answer
    flip: bool = False  # pairwise: won in one order, lost in the other
    inconsistent: bool = False  # pairwise: the verdict depends on the order
    priority: float = 0.0
    reasons: tuple[str, ...] = ()
    n_turns: int = 0  # a dialogue: its model turns (0: a single answer)

    @property
    def qid(self) -> int:
        return self.j.question_id

    @property
    def score(self) -> float | None:
        return self.j.overall if self.j.status is Status.OK else None

    @property
    def failed(self) -> bool:
        return self.j.status is not Status.OK

    def review(self) -> ReviewState | None:
        return self.run.reviews.state(self.j) if self.run.reviews else None


COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22")


# ================================================================================================
# Loading
# ================================================================================================


def _load_members(run: Run) -> tuple[dict[str, dict[int, Judgment]], str | None]:
    """Each judge's own run of an ensemble run, by question id."""
    found, missing = ensemble_members(run)
    out = {judge: {j.question_id: j for j in member.judgments if j.model == run.model}
           for judge, member in found.items()}
    return out, f"per-judge runs not found for {', '.join(missing)}" if missing else None


def _load_pairs(path: Path) -> PairFolder:

    from alignbench.pairwise.compare import PairwiseSummary, read_pairwise_judgments

    summary = PairwiseSummary()
    if (path / PAIRWISE_SUMMARY).is_file():
        try:
            summary = PairwiseSummary.model_validate(safejson.read_json(path / PAIRWISE_SUMMARY))
        except ValueError as exc:
            raise ViewError(f"{path / PAIRWISE_SUMMARY}: not a pairwise summary ({exc})") from None
    try:
        pairs = read_pairwise_judgments(path / PAIRWISE_JUDGMENTS)
    except InputError as exc:
        raise ViewError(str(exc)) from None
    return PairFolder(path=path, label=path.name, summary=summary, pairs=pairs)


def expand(paths: Iterable[Path]) -> tuple[list[Path], list[Path]]:
    """(run folders, compare folders) from the command line: a folder of run folders becomes the
    runs inside it, a folder with pairwise verdicts and no summary.json is a compare folder."""
    runs: list[Path] = []
    pairs: list[Path] = []
    for p in paths:
        if not p.is_dir():
            raise ViewError(f"{p}: no such folder")
        if (p / "summary.json").is_file():
            runs.append(p)
            if (p / PAIRWISE_JUDGMENTS).is_file():
                pairs.append(p)
        elif (p / PAIRWISE_JUDGMENTS).is_file():
            pairs.append(p)
        elif inner := run_folders(p):
            runs.extend(inner)
        else:
            raise ViewError(f"{p}: not a run folder (no summary.json) and holds none; is the run unfinished? "
                            "Run the same `alignbench score` command again to finish it")
    return runs, pairs


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def load_view(run_dirs: Sequence[Path | str], baseline: Path | str | None = None,
              compare_dirs: Sequence[Path | str] = (), seed: int = 0, comparisons: bool = True,
              lazy: bool = False) -> ViewData:
    """Read every folder (raising ViewError naming the first unusable one) and index it. With
    ``lazy`` only what the leaderboard needs is read now; ``ViewData.warm()`` does the rest."""
    run_paths, pair_paths = expand(Path(p) for p in run_dirs)
    pair_paths += [Path(p) for p in compare_dirs]
    base_path = Path(baseline) if baseline is not None else None
    if base_path is not None and not (base_path / "summary.json").is_file():
        raise ViewError(f"--baseline-run {base_path}: not a finished run folder (no summary.json)")
    if base_path is not None:
        run_paths = [p for p in run_paths if not _same(p, base_path)]
    if not run_paths and base_path is None:
        raise ViewError("no run folder given")
    loaded: list[tuple[Run, bool]] = []
    for path in ([base_path] if base_path is not None else []) + run_paths:
        try:
            loaded.append((load_run(path), path is base_path))
        except RunError as exc:
            raise ViewError(str(exc)) from None
    unique_labels([r for r, _ in loaded])
    for p in pair_paths:
        if not (p / PAIRWISE_JUDGMENTS).is_file():
            raise ViewError(f"--compare-run {p}: no {PAIRWISE_JUDGMENTS} (not a `compare` folder?)")
    seen: list[Path] = []
    folders = []
    for p in pair_paths:
        if not any(_same(p, s) for s in seen):
            seen.append(p)
            folders.append(_load_pairs(p))
    data = ViewData(loaded, folders, seed=seed, comparisons=comparisons)
    if not lazy:
        data.warm()
    return data


# ================================================================================================
# The index
# ================================================================================================


_WIDE = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}  # full-width ASCII, ideographic space
_NARROW = {v: k for k, v in _WIDE.items() if v != 0x20}


def norm(text: str) -> str:
    """The form of searched text: case-folded, whitespace runs as one space. Chinese is matched as
    a substring, with no word segmentation: a query matches wherever its characters appear in that
    order. (Width is handled on the query side, see ``terms``: folding 10 million characters of
    answers to NFKC would cost seconds, folding the query costs nothing.)"""
    return " ".join(text.casefold().split())


def terms(query: str) -> list[str]:
    """Space-separated terms (all must match); double quotes keep a phrase with spaces together."""
    try:
        parts = shlex.split(query)
    except ValueError:  # an unbalanced quote: search the words as they are
        parts = query.split()
    return [t for t in (norm(p) for p in parts) if t]


def variants(term: str) -> tuple[str, ...]:
    """A term as typed, in half-width and in full-width form: ``gpt4``, ``：`` and ``ＧＰＴ４`` each
    find the others' spelling (text written in one width throughout)."""
    out = dict.fromkeys([term, norm(unicodedata.normalize("NFKC", term)), term.translate(_WIDE),
                         term.translate(_NARROW)])
    return tuple(out)


class ViewData:
    """The loaded runs and everything derived from them.

    Two phases, so the leaderboard is up at once even for 10 runs × 683 judgments: the constructor
    reads what the leaderboard needs (summaries, judgments, question texts, reviews); ``warm()`` adds
    the rest (answer files, ensembles' per-judge runs, pairwise flags, the paired tests against the
    baseline, the queue order, the search index). The server runs ``warm()`` on a thread at start-up
    and every page other than the leaderboard waits for it; ``load_view`` runs it before returning
    unless asked not to.
    """

    def __init__(self, loaded: Sequence[tuple[Run, bool]], pair_folders: Sequence[PairFolder], seed: int = 0,
                 comparisons: bool = True) -> None:
        self.notes: list[str] = []
        self.seed = seed
        self.with_comparisons = comparisons
        self.pair_folders = list(pair_folders)
        self.runs: list[RunView] = []
        for i, (run, is_base) in enumerate(loaded):
            by_qid: dict[int, Judgment] = {}
            for j in run.judgments:
                by_qid.setdefault(j.question_id, j)
            if len({j.model for j in run.judgments}) > 1:
                self.notes.append(f"{run.dir}: judgments of several models; only {run.model}'s are shown")
                by_qid = {j.question_id: j for j in run.judgments if j.model == run.model} or by_qid
            rv = RunView(key=str(i), run=run, label=run.label, is_baseline=is_base,
                         summary=run.summary.as_json(), by_qid=by_qid, colour=COLOURS[i % len(COLOURS)])
            rv.reviews = ReviewBook(run)
            self.runs.append(rv)
        self.baseline = next((r for r in self.runs if r.is_baseline), None)
        self.rubric = self._rubric()
        self.questions: dict[int, Question] = {}
        for rv in self.runs:
            for qid, q in (rv.run.questions or {}).items():
                self.questions.setdefault(qid, q)
            if rv.run.questions is None and rv.run.questions_note:
                self.notes.append(f"{rv.label}: question texts not shown ({rv.run.questions_note})")
        shas = {rv.run.questions_sha for rv in self.runs if rv.run.questions_sha}
        if len(shas) > 1:
            self.notes.append("the runs used different question files: a question id may not mean the same "
                              "question in every run (texts are shown from the first run that has them)")
        self.qids = sorted({qid for rv in self.runs for qid in rv.by_qid})
        self.category_order = self._category_order()
        self.items: list[Item] = []
        self.by_q: dict[int, list[Item]] = {}
        for qid in self.qids:
            for rv in self.runs:
                j = rv.by_qid.get(qid)
                if j is not None:
                    item = Item(run=rv, j=j, n_turns=dialogue_turns(self.questions.get(qid), j))
                    self.items.append(item)
                    self.by_q.setdefault(qid, []).append(item)
        self.pairs_by_q: dict[int, list[tuple[PairFolder, Any]]] = {}
        self._plain_rank: dict[int, int] = {}
        self._sample_rank: dict[int, int] = {}
        self._hay: dict[int, tuple[str, str, str]] = {}  # id(item) -> (meta, answer, judge texts)
        self._qhay: dict[int, str] = {}
        self._seq: dict[Query, tuple[Any, list[Stop]]] = {}
        self._ready = threading.Event()
        self._lock = threading.Lock()

    # -- phase two -----------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def warm(self) -> None:
        """Load and compute everything beyond the leaderboard (idempotent, safe from any thread)."""
        if self._ready.is_set():
            return
        with self._lock:
            if self._ready.is_set():
                return
            for rv in self.runs:
                rv.answers, rv.answers_note = load_answer_texts(rv.run)
                rv.members, rv.members_note = _load_members(rv.run)
            pairs: dict[int, list[tuple[PairFolder, Any]]] = {}
            for folder in self.pair_folders:
                for p in folder.pairs:
                    pairs.setdefault(p.question_id, []).append((folder, p))
            self.pairs_by_q = pairs
            if self.baseline is not None and self.with_comparisons:
                self._compare(self.seed)
            for item in self.items:
                self._describe(item)
            self._rank_queue(self.seed)
            self._index()
            self._ready.set()

    # -- building ----------------------------------------------------------------------------------

    def _rubric(self) -> Rubric:
        for rv in self.runs:
            try:
                return load_rubric(rv.run.rubric_id.split("@")[0])
            except RubricError:
                continue
        return load_rubric("alignbench")

    def _category_order(self) -> list[str]:
        present = {j.category for rv in self.runs for j in rv.by_qid.values()}
        order = [c for c in self.rubric.category_names() if c in present]
        return order + sorted(present - set(order))

    def subcategories(self) -> list[tuple[str, str]]:
        present = {(j.category, j.subcategory) for rv in self.runs for j in rv.by_qid.values()}
        rank = {c: i for i, c in enumerate(self.category_order)}
        return sorted(present, key=lambda cs: (rank.get(cs[0], 99), cs[1]))

    def _compare(self, seed: int) -> None:
        from alignbench.reporting.compare import compare_runs

        base = self.baseline
        assert base is not None
        for rv in self.runs:
            if rv.is_baseline:
                continue
            cmp = compare_runs(base.run, rv.run, self.rubric, seed=seed)
            qdelta: dict[int, float] = {}
            if cmp.comparable:
                same_set = base.run.questions_sha and base.run.questions_sha == rv.run.questions_sha
                for qid, j in rv.by_qid.items():
                    b = base.by_qid.get(qid)
                    if b is None or j.status is not Status.OK or b.status is not Status.OK:
                        continue
                    if not same_set:
                        qa, qb = (rv.run.questions or {}).get(qid), (base.run.questions or {}).get(qid)
                        if qa is None or qb is None or qa.model_dump() != qb.model_dump():
                            continue
                    qdelta[qid] = float(j.overall) - float(b.overall)  # type: ignore[arg-type]
            rv.qdelta = qdelta
            rv.comparison = cmp

    def _describe(self, item: Item) -> None:
        rv, j = item.run, item.j
        item.delta = rv.qdelta.get(j.question_id)
        if rv.members:
            got = [m.get(j.question_id) for m in rv.members.values()]
            oks = [g.overall for g in got
                   if g is not None and g.status is Status.OK and g.overall is not None]
            item.judge_failed = any(g is not None and g.status is not Status.OK for g in got)
            item.spread = (max(oks) - min(oks)) if len(oks) >= 2 else None
        for _, p in self.pairs_by_q.get(j.question_id, []):
            if rv.model in (p.model, p.baseline):
                item.flip = item.flip or bool(p.flip)
                item.inconsistent = item.inconsistent or p.consistent is False

    def _index(self) -> None:
        """The search index: per question its text and reference, per judgment the answer and every
        text of the judge, all in ``norm`` form (about 0.2 s for 10 runs × 683 judgments)."""
        for qid in self.qids:
            q = self.questions.get(qid)
            self._qhay[qid] = norm("\n".join([q.question, q.reference, *(t.content for t in q.turns),
                                              *q.references])) if q else ""
        for it in self.items:
            ans = it.run.answers.get(it.qid)
            judge = "\n".join(text for j in (it.j, *it.j.turns)
                              for text in (j.raw or "", j.detail or "", j.reasoning or "", *j.sections.values()))
            meta = norm(f"{it.j.category} {it.j.subcategory} {it.j.model} {it.run.label} {it.j.answer_type}")
            self._hay[id(it)] = (meta, norm("\n".join(replies(ans))) if ans else "", norm(judge))

    def category_deltas(self, rv: RunView) -> dict[str, float]:
        """Mean per-question change of each category (this run − baseline)."""
        sums: dict[str, list[float]] = {}
        for qid, d in rv.qdelta.items():
            sums.setdefault(rv.by_qid[qid].category, []).append(d)
        return {c: sum(v) / len(v) for c, v in sums.items()}

    def _rank_queue(self, seed: int) -> None:
        """Usefulness of every judgment (``queue.usefulness``); a seeded order of the rest that takes
        the categories in turn (the tail of the queue); and a seeded random order of *all* judgments,
        categories in turn, for the random-sample queue (labels a calibration may use)."""
        cat_delta = {rv.key: self.category_deltas(rv) for rv in self.runs}
        for item in self.items:
            rv = item.run
            facts = Facts(ok=not item.failed, status=item.j.status.value, attempts=item.j.attempts,
                          n_judges=rv.n_judges, spread=item.spread, judge_failed=item.judge_failed,
                          flip=item.flip, inconsistent=item.inconsistent, delta=item.delta,
                          category_delta=cat_delta[rv.key].get(item.j.category), category=item.j.category)
            item.priority, reasons = usefulness(facts)
            item.reasons = tuple(reasons)
        self._plain_rank = self._round_robin([it for it in self.items if it.priority == 0], seed)
        self._sample_rank = self._round_robin(self.items, seed + 1)

    def _round_robin(self, items: Sequence[Item], seed: int) -> dict[int, int]:
        """A seeded random order that takes the categories in turn (rank by id(item))."""
        rng = random.Random(seed)
        by_cat: dict[str, list[Item]] = {}
        for it in items:
            by_cat.setdefault(it.j.category, []).append(it)
        for members in by_cat.values():
            rng.shuffle(members)
        ranks: dict[int, int] = {}
        cats = [c for c in self.category_order if c in by_cat]
        cats += [c for c in by_cat if c not in cats]
        while any(by_cat.values()):
            for c in cats:
                if by_cat[c]:
                    ranks[id(by_cat[c].pop())] = len(ranks)
        return ranks

    # -- lookup --------------------------------------------------------------------------------------

    def run_by_key(self, key: str) -> RunView | None:
        return next((rv for rv in self.runs if rv.key == key), None)

    def question_of(self, qid: int) -> Question | None:
        return self.questions.get(qid)

    def refresh_reviews(self) -> None:
        for rv in self.runs:
            assert rv.reviews is not None
            rv.reviews.refresh()

    def add_review(self, rv: RunView, review: Any) -> Path:
        path = append_review(rv.run.dir, review)
        assert rv.reviews is not None
        rv.reviews.refresh()
        return path

    # -- search --------------------------------------------------------------------------------------

    def matches(self, it: Item, words: Sequence[tuple[str, ...]], scope: str) -> bool:
        """Every term (in one of its width variants) occurs somewhere in the scope's texts."""
        meta, answer, judge = self._hay[id(it)]
        fields: list[str] = []
        if scope in ("all", "question"):
            fields.append(self._qhay.get(it.qid, ""))
        if scope == "all":
            fields += [meta, str(it.qid)]
        if scope in ("all", "answer"):
            fields.append(answer)
        if scope in ("all", "judge"):
            fields.append(judge)
        if scope in ("all", "note"):
            st = it.review()
            if st is not None:
                fields.append(norm(st.review.note))
        return all(any(v in f for v in forms for f in fields) for forms in words)

    # -- the one list ----------------------------------------------------------------------------------

    def select(self, query: Query, keep_reviewed: bool = False) -> list[Item]:
        """The items a list shows, filtered and sorted by ``query`` (also the previous/next order).
        The queue leaves out judgments with a current review unless ``keep_reviewed``."""
        self.warm()
        self.refresh_reviews()
        out = self.items
        if query.run:
            out = [it for it in out if it.run.key == query.run]
        if query.category:
            out = [it for it in out if it.j.category == query.category]
        if query.subcategory:
            out = [it for it in out if it.j.subcategory == query.subcategory]
        if query.status == FAILED:
            out = [it for it in out if it.failed]
        elif query.status:
            out = [it for it in out if it.j.status.value == query.status]
        if query.reviewed:
            def rstate(it: Item) -> str:
                st = it.review()
                return "no" if st is None else "stale" if st.stale else "yes"
            out = [it for it in out if rstate(it) == query.reviewed
                   or (query.reviewed == "no" and rstate(it) == "stale")]
        if query.flags:
            checks = {"flip": lambda it: it.flip, "inconsistent": lambda it: it.inconsistent,
                      "retry": lambda it: it.j.attempts > it.run.n_judges,
                      "disagree": lambda it: (it.spread or 0) >= 2 or it.judge_failed,
                      "changed": lambda it: it.delta is not None and it.delta != 0,
                      "truncated": lambda it: it.j.truncated_answer,
                      "injection": lambda it: bool(it.j.injection)}
            for flag in query.flags:
                if flag in checks:
                    out = [it for it in out if checks[flag](it)]
        if query.q:
            words = [variants(t) for t in terms(query.q)]
            if words:
                out = [it for it in out if self.matches(it, words, query.scope)]
        if query.sort in QUEUES and not keep_reviewed:
            out = [it for it in out if not _done(it)]
        return sort_items(out, query.sort, self._sample_rank if query.sort == "sample" else self._plain_rank)

    def sequence(self, query: Query) -> list[Stop]:
        """The stops of previous/next for a question page opened from a list. Without a run filter or
        the queue, each question is one stop (its page shows every run). In the queue, reviewed
        judgments stay in the sequence (so the page you came from is still found) marked done.
        Cached per query until a review file changes (paging through 683 questions re-sorts nothing)."""
        query = replace(query, page=1)
        self.refresh_reviews()
        version = tuple(rv.reviews.signature for rv in self.runs if rv.reviews is not None)
        hit = self._seq.get(query)
        if hit is not None and hit[0] == version:
            return hit[1]
        items = self.select(query, keep_reviewed=True)
        if query.run or query.sort in QUEUES:
            stops = [Stop(it.qid, it.run.key, query.sort in QUEUES and _done(it)) for it in items]
        else:
            seen: dict[int, None] = {}
            for it in items:
                seen.setdefault(it.qid, None)
            stops = [Stop(qid, None, False) for qid in seen]
        if len(self._seq) > 64:
            self._seq.clear()
        self._seq[query] = (version, stops)
        return stops


@dataclass(frozen=True)
class Stop:
    """One stop of previous/next: a question, the run in focus (None: all runs), already reviewed."""

    qid: int
    run: str | None
    done: bool = False


def neighbours(stops: Sequence[Stop], qid: int, run: str | None) -> tuple[Stop | None, Stop | None, int]:
    """(previous, next, 1-based position) of the stop (qid, run); next skips stops already done.
    A page that is not in the sequence (a filter no longer matches it) gets the first stop as next."""
    pos = next((i for i, s in enumerate(stops)
                if s.qid == qid and (run is None or s.run in (None, run))), None)
    if pos is None:
        return None, next((s for s in stops if not s.done), None), 0
    prev = stops[pos - 1] if pos > 0 else None
    nxt = next((s for s in stops[pos + 1:] if not s.done), None)
    return prev, nxt, pos + 1


def _done(it: Item) -> bool:
    st = it.review()
    return st is not None and not st.stale


def sort_items(items: Sequence[Item], sort: str, plain_rank: Mapping[int, int]) -> list[Item]:
    order = {rv_key: i for i, rv_key in enumerate(dict.fromkeys(it.run.key for it in items))}

    def base(it: Item) -> tuple[int, int]:
        return it.qid, order[it.run.key]

    if sort == "id":  # the items are built in (question, run) order and filters keep it
        return list(items)
    if sort == "score":
        return sorted(items, key=lambda it: (it.score is None, it.score or 0, *base(it)))
    if sort == "-score":
        return sorted(items, key=lambda it: (it.score is None, -(it.score or 0), *base(it)))
    if sort == "delta":
        return sorted(items, key=lambda it: (it.delta is None, -abs(it.delta or 0), *base(it)))
    if sort == "drop":
        return sorted(items, key=lambda it: (it.delta is None, it.delta or 0, *base(it)))
    if sort == "gain":
        return sorted(items, key=lambda it: (it.delta is None, -(it.delta or 0), *base(it)))
    if sort == "spread":
        return sorted(items, key=lambda it: (it.spread is None and not it.judge_failed, -(it.spread or 0),
                                             *base(it)))
    if sort == "queue":
        return sorted(items, key=lambda it: (-it.priority, plain_rank.get(id(it), 0), *base(it)))
    if sort == "sample":  # ``plain_rank`` is then the rank in the random sample
        return sorted(items, key=lambda it: plain_rank.get(id(it), 0))
    return sorted(items, key=base)


# ================================================================================================
# Query: the filters of a list, parsed from and written back to a URL
# ================================================================================================


@dataclass(frozen=True)
class Query:
    run: str = ""
    category: str = ""
    subcategory: str = ""
    status: str = ""  # "" | "failed" | a status value
    reviewed: str = ""  # "" | "yes" | "no" | "stale"
    flags: tuple[str, ...] = ()
    q: str = ""
    scope: str = "all"
    sort: str = "id"
    page: int = 1

    @classmethod
    def parse(cls, params: Mapping[str, str] | Any, default_sort: str = "id") -> Query:
        """From query parameters; a value the viewer does not know is ignored, never an error page."""
        get = params.get
        flags = params.getlist("flag") if hasattr(params, "getlist") else [f for f in [get("flag")] if f]
        status = get("status") or ""
        if status not in ("", FAILED, *(s.value for s in Status)):
            status = ""
        sort = get("sort") or default_sort
        try:
            page = max(1, int(get("page") or 1))
        except ValueError:
            page = 1
        reviewed = get("reviewed") if get("reviewed") in ("yes", "no", "stale") else ""
        return cls(run=get("run") or "", category=get("category") or "", subcategory=get("subcategory") or "",
                   status=status, reviewed=reviewed, flags=tuple(sorted({f for f in flags if f})),
                   q=(get("q") or "")[:200], scope=get("in") if get("in") in SCOPES else "all",
                   sort=sort if sort in SORTS else default_sort, page=page)

    def params(self, **changes: Any) -> list[tuple[str, str]]:
        """As query parameters, defaults left out (short, stable URLs)."""
        q = replace(self, **changes) if changes else self
        out: list[tuple[str, str]] = []
        for name, value, default in (("run", q.run, ""), ("category", q.category, ""),
                                     ("subcategory", q.subcategory, ""), ("status", q.status, ""),
                                     ("reviewed", q.reviewed, ""), ("q", q.q, ""), ("in", q.scope, "all"),
                                     ("sort", q.sort, "id")):
            if value != default:
                out.append((name, value))
        out += [("flag", f) for f in q.flags]
        if q.page != 1:
            out.append(("page", str(q.page)))
        return out

    def qs(self, **changes: Any) -> str:
        p = self.params(**changes)
        return ("?" + urlencode(p)) if p else ""

    @property
    def is_default(self) -> bool:
        return not self.params(page=1)


def dialogue_turns(question: Question | None, judgment: Judgment) -> int:
    """How many model turns the dialogue behind a judgment has (0: a single answer). From the question
    when it is at hand; else from the judged turns, whose last is the dialogue's last under either
    ``turns: each`` or ``turns: last``."""
    if question is not None and question.multi_turn:
        return question.model_turns
    return max((t.turn or 0 for t in judgment.turns), default=0)


def replies(answer: Answer) -> tuple[str, ...]:
    """Every reply of an answer: one per model turn of a dialogue, else the answer's one text."""
    return answer.turns or (answer.text,)


_SNIPPET_SPACE = re.compile(r"\s+")


def snippet(text: str, limit: int = 80) -> str:
    text = _SNIPPET_SPACE.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
