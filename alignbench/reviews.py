"""Human reviews of judgments: ``reviews.jsonl`` in a run folder, and how far the judge agrees with them.

Why a separate file: a review is a human's opinion *about* a judgment, not a judgment. Keeping it
beside ``judgments.jsonl`` (never inside it) means a re-score cannot erase the labels, the judge's
record stays exactly what the judge said, and ``summary.json``'s digest of the judgments stays valid.

Why record the judge's score and prompt hash at review time: the run may be re-scored later (another
rubric version, a changed answer file). A review whose judgment now has another ``prompt_hash`` was
about a different prompt, so it is *stale*: shown with a warning, left out of the agreement figures,
and back in the review queue.

Reading and the agreement figures are small functions with no state, so ``show``, ``report`` and
``meta-eval`` can call them: ``load_reviews(run_dir)``, ``current_reviews(judgments, reviews)``,
``review_agreement(judgments, reviews)``. ``append_review`` is the only writer: one JSON line per
call, under an exclusive lock, so two reviewers (two browser tabs, two servers) never interleave.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from alignbench.types import Judgment, Status

REVIEWS_FILE = "reviews.jsonl"
MAX_NOTE_CHARS = 4000


class ReviewError(ValueError):
    """``reviews.jsonl`` holds a line that is not a review (the message names file and line)."""


class Review(BaseModel):
    """One line of ``reviews.jsonl``: a reviewer's verdict on one judgment.

    ``score`` is the reviewer's overall score (1–10 scale of the rubric); for ``confirm`` it equals
    ``judge_score``. ``judge_score`` is None when the judgment had failed (then the review is a human
    label the judge never gave). ``picked`` says how the judgment was chosen: ``sample`` from the
    random-sample queue (labels a calibration may treat as a random sample), ``queue`` from the
    usefulness queue (chosen *because* something looked wrong), ``browse`` by the reviewer. Unknown
    keys are kept, so files from later versions still load.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    question_id: int
    model: str
    verdict: Literal["confirm", "override"]
    score: float
    judge_score: float | None = None
    judge_status: str = "ok"
    judge: str = ""
    rubric: str = ""
    prompt_hash: str
    note: str = ""
    reviewer: str
    time: str  # ISO 8601, UTC
    picked: Literal["sample", "queue", "browse"] = "browse"  # how the judgment came to be reviewed
    reasons: list[str] = []  # why the usefulness queue offered it (picked == "queue")
    source: str = "alignbench view"

    @property
    def key(self) -> tuple[int, str]:
        return self.question_id, self.model


def make_review(judgment: Judgment, verdict: Literal["confirm", "override"], score: float | None,
                reviewer: str, note: str = "", now: datetime | None = None,
                picked: Literal["sample", "queue", "browse"] = "browse",
                reasons: Sequence[str] = ()) -> Review:
    """A review of ``judgment`` stamped with what the judge said at this moment.

    ``confirm`` takes the judge's overall score (and needs one: a failed judgment can only be given a
    score). Raises ValueError with a sentence a reviewer can act on.
    """
    if verdict == "confirm":
        if judgment.status is not Status.OK or judgment.overall is None:
            raise ValueError("this judgment has no score to confirm (it failed); give a score instead")
        score = judgment.overall
    if score is None:
        raise ValueError("an override needs a score")
    if not reviewer.strip():
        raise ValueError("a review needs a reviewer name")
    if len(note) > MAX_NOTE_CHARS:
        raise ValueError(f"the note is longer than {MAX_NOTE_CHARS} characters")
    stamp = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).isoformat(timespec="seconds")
    return Review(question_id=judgment.question_id, model=judgment.model, verdict=verdict, score=float(score),
                  judge_score=judgment.overall if judgment.status is Status.OK else None,
                  judge_status=judgment.status.value, judge=judgment.judge, rubric=judgment.rubric,
                  prompt_hash=judgment.prompt_hash, note=note, reviewer=reviewer.strip(), time=stamp,
                  picked=picked, reasons=list(reasons))


# -- reading ------------------------------------------------------------------------------------


@dataclass
class ReviewFile:
    """Every review in a run folder, in file (= time) order, plus the lines that could not be read."""

    path: Path
    reviews: list[Review] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # "file:line: why", one per unreadable line


def read_reviews(run_dir: Path | str) -> ReviewFile:
    """Tolerant reading: a line that is not a review is reported in ``problems`` and skipped (a
    viewer should still open a run whose review file someone edited by hand). No file: no reviews."""
    path = Path(run_dir) / REVIEWS_FILE
    out = ReviewFile(path=path)
    if not path.is_file():
        return out
    with path.open(encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                out.reviews.append(Review.model_validate_json(line))
            except ValidationError as exc:
                first = exc.errors()[0]
                out.problems.append(f"{path}:{lineno}: not a review ({first.get('msg')} at "
                                    f"{first.get('loc')})")
    return out


def load_reviews(run_dir: Path | str) -> list[Review]:
    """The reviews of a run folder in file order; [] without ``reviews.jsonl``. Strict: a bad line
    raises ReviewError naming it, because a command that *counts* labels must not drop one silently."""
    book = read_reviews(run_dir)
    if book.problems:
        more = f" (+{len(book.problems) - 1} more)" if len(book.problems) > 1 else ""
        raise ReviewError(book.problems[0] + more)
    return book.reviews


# -- which review counts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewState:
    """The latest review of one judgment and whether it still applies to it."""

    review: Review
    judgment: Judgment
    stale: bool  # the judgment's prompt changed since the review (other rubric version, answer, question)
    n_reviews: int  # how many reviews this judgment has had (the latest counts)

    @property
    def judge_score(self) -> float | None:
        """The judge's *current* score (the review is compared with the judgment as it is now)."""
        return self.judgment.overall if self.judgment.status is Status.OK else None

    @property
    def difference(self) -> float | None:
        """reviewer − judge, None when the judge has no score or the review is stale."""
        if self.stale or self.judge_score is None:
            return None
        return self.review.score - self.judge_score


def current_reviews(judgments: Iterable[Judgment], reviews: Sequence[Review],
                    reviewer: str | None = None) -> dict[tuple[int, str], ReviewState]:
    """For each judgment that has a review, keyed by (question_id, model): its latest review (file
    order; with ``reviewer`` only that reviewer's), marked stale when the prompt hash differs."""
    latest: dict[tuple[int, str], Review] = {}
    counts: dict[tuple[int, str], int] = {}
    for r in reviews:
        if reviewer is not None and r.reviewer != reviewer:
            continue
        latest[r.key] = r
        counts[r.key] = counts.get(r.key, 0) + 1
    out: dict[tuple[int, str], ReviewState] = {}
    for j in judgments:
        key = (j.question_id, j.model)
        r = latest.get(key)
        if r is not None:
            out[key] = ReviewState(review=r, judgment=j, stale=r.prompt_hash != j.prompt_hash,
                                   n_reviews=counts[key])
    return out


@dataclass(frozen=True)
class Agreement:
    """How far the judge agrees with the reviewers, on the judgments reviewed.

    ``mad``: mean absolute difference of the judge's and the reviewer's overall scores (points on the
    1–10 scale); ``within_1``: share of those with a difference of at most 1 point; ``bias``: mean of
    reviewer − judge (positive: the judge is harsher than the reviewers). All three over
    ``n_compared`` judgments: reviewed, not stale, and scored by the judge.
    """

    n_reviews: int  # review lines read (all versions, all judgments)
    n_reviewed: int  # judgments whose latest review is current
    n_stale: int  # judgments whose latest review predates a change of their prompt
    n_compared: int
    n_confirmed: int
    n_overridden: int
    n_failed_labelled: int  # failed judgments a reviewer gave a score (labels the judge never gave)
    n_orphaned: int  # reviews of judgments not in this run
    mad: float | None
    within_1: float | None
    bias: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        """One sentence for ``show``/``report``."""
        if not self.n_reviewed and not self.n_stale:
            return "no judgment reviewed"
        text = f"{self.n_reviewed} judgment(s) reviewed"
        if self.n_compared:
            text += (f"; judge vs reviewer on {self.n_compared}: mean absolute difference {self.mad:.2f}, "
                     f"{100 * (self.within_1 or 0):.0f}% within 1 point")
        if self.n_stale:
            text += f"; {self.n_stale} review(s) stale (the judgment changed since)"
        return text


def review_agreement(judgments: Sequence[Judgment], reviews: Sequence[Review],
                     reviewer: str | None = None) -> Agreement:
    """Agreement of the judge with the latest current review of each judgment (see ``Agreement``)."""
    states = current_reviews(judgments, reviews, reviewer)
    known = {(j.question_id, j.model) for j in judgments}
    current = [s for s in states.values() if not s.stale]
    diffs = [d for s in current if (d := s.difference) is not None]
    n = len(diffs)
    return Agreement(
        n_reviews=sum(1 for r in reviews if reviewer is None or r.reviewer == reviewer),
        n_reviewed=len(current),
        n_stale=sum(1 for s in states.values() if s.stale),
        n_compared=n,
        n_confirmed=sum(1 for s in current if s.review.verdict == "confirm"),
        n_overridden=sum(1 for s in current if s.review.verdict == "override"),
        n_failed_labelled=sum(1 for s in current if s.judge_score is None),
        n_orphaned=len({r.key for r in reviews if r.key not in known
                        and (reviewer is None or r.reviewer == reviewer)}),
        mad=round(sum(abs(d) for d in diffs) / n, 4) if n else None,
        within_1=round(sum(1 for d in diffs if abs(d) <= 1 + 1e-9) / n, 4) if n else None,
        bias=round(sum(diffs) / n, 4) if n else None,
    )


def human_labels(judgments: Sequence[Judgment], reviews: Sequence[Review],
                 picked: Sequence[str] | None = None) -> list[tuple[Judgment, float]]:
    """(judgment, reviewer's overall score) for every judgment with a current review: the human labels
    ``meta-eval`` can measure a judge against. Stale reviews are left out. ``picked=("sample",)``
    keeps only labels from the random-sample queue: what a calibration that assumes randomly chosen
    labels (``trust.calibrate``) may use; labels chosen because the judge looked wrong would bias it."""
    states = current_reviews(judgments, reviews)
    return [(s.judgment, s.review.score) for s in states.values()
            if not s.stale and (picked is None or s.review.picked in picked)]


# -- writing --------------------------------------------------------------------------------------


def append_review(run_dir: Path | str, review: Review) -> Path:
    """Append one review as one JSON line to ``RUN_DIR/reviews.jsonl`` under an exclusive lock.

    The line is written with a single ``write`` on a file opened for appending, while holding an
    exclusive ``flock`` (a whole-file lock on Windows), then flushed to disk: two writers cannot
    interleave and a crash leaves at most one torn last line, which the next write starts after.
    ``judgments.jsonl`` is never opened."""
    path = Path(run_dir) / REVIEWS_FILE
    data = (review.model_dump_json() + "\n").encode("utf-8")
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
    try:
        _lock(fd)
        try:
            size = os.fstat(fd).st_size
            if size:
                os.lseek(fd, size - 1, os.SEEK_SET)  # writes still go to the end (O_APPEND)
                if os.read(fd, 1) != b"\n":  # someone's torn line: do not glue onto it
                    data = b"\n" + data
            os.write(fd, data)
            os.fsync(fd)
        finally:
            _unlock(fd)
    finally:
        os.close(fd)
    return path


def _lock(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_LOCK, 1)  # type: ignore[attr-defined]
        return
    fcntl.flock(fd, fcntl.LOCK_EX)


def _unlock(fd: int) -> None:
    try:
        import fcntl
    except ImportError:
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]
        return
    fcntl.flock(fd, fcntl.LOCK_UN)


def review_json(review: Review) -> dict[str, Any]:
    """The review as the JSON object stored in the file."""
    return json.loads(review.model_dump_json())
