"""Run folders: the one place that names, locks, writes and reads them.

Why each rule:

* **Names that stay inside ``--out`` and never collide.** A folder name comes from a model name
  the user typed (``..``, ``gpt/4``, ``GPT 4``, 300 characters of Chinese). Names that are already
  plain (lower-case letters, digits, ``.``, ``_``, ``-``, not starting with a dot, at most 60
  characters) are used as they are; any other name is slugged, shortened and suffixed with a hash
  of the real name, so ``gpt 4`` and ``gpt/4`` (and ``GPT4`` vs ``gpt4`` on a case-insensitive
  disk) get distinct, stable, short folders. The real name is kept in the manifest.
* **One writer per folder.** A lock file held for the whole command: a second process gets one line
  naming the process that holds it, before it calls any model.
* **Never half-written, never lost.** Every file is written under a per-process temporary name. A
  rewrite (``unfinish``) stages the new files beside the finished run and swaps them in only once all
  are complete: the old ``summary.json`` goes, the new files are renamed in, and the new
  ``summary.json`` (with the digest of the judgments it summarises) comes last. A full disk or an error
  while writing leaves the finished run untouched; a kill in the instant of the swap leaves a folder
  ``load_run`` calls unfinished (re-running rebuilds it from the cache). ``summary.json`` is the
  finished marker.
* **No silent overwrite.** Writing a different model's run over an existing one needs ``force``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from alignbench import safejson
from alignbench.types import Answer, Judgment, Question, Result, Status, Summary

SUMMARY = "summary.json"
JUDGMENTS = "judgments.jsonl"
LOCK = ".alignbench.lock"
_PLAIN = re.compile(r"[a-z0-9_][a-z0-9._-]{0,59}")


class RunError(ValueError):
    """A run folder that cannot be used as asked: the message names it and says what to do."""


def folder_name(name: str) -> str:
    """A folder name for ``name`` that cannot leave its parent and differs for every distinct name."""
    if _PLAIN.fullmatch(name) and name not in (".", ".."):
        return name
    slug = re.sub(r"[^\w.\-]+", "-", name, flags=re.UNICODE).strip("-.")
    slug = slug.encode("utf-8", "ignore")[:40].decode("utf-8", "ignore").strip("-.") or "run"  # short on disk
    return f"{slug}-{hashlib.sha256(name.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"


def default_run_dir(*parts: str, root: Path = Path("reports")) -> Path:
    """``reports/<model>__<judge>__<rubric>``, each part made safe by ``folder_name``."""
    return root / "__".join(folder_name(p) for p in parts)


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class RunFolder:
    """A run folder opened for writing: created, locked for this process, checked for its owner.

    Use as a context manager around the whole command, so the lock is taken before any model is
    called and released (with its file) at the end, whatever happens.
    """

    def __init__(self, path: Path | str, model: str | None = None, force: bool = False) -> None:
        self.path = Path(path)
        self.model = model
        self.force = force
        self._created = False
        self._lock: Any = None
        self._marker: str | None = None  # the finished marker of a staged rewrite (``unfinish``)
        self._staged: dict[str, Path] = {}
        self.sha256: dict[str, str] = {}  # of each file written, by name

    def __enter__(self) -> RunFolder:
        if self.path.exists() and not self.path.is_dir():
            raise RunError(f"{self.path} is a file, not a folder; choose another --out")
        try:
            self._created = not self.path.exists()
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock = (self.path / LOCK).open("a+")
        except OSError as exc:
            raise RunError(f"{self.path}: cannot write the run folder ({exc.strerror}); choose another --out") \
                from None
        try:
            import fcntl

            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # no fcntl (Windows): one writer per folder is then the user's job
            pass
        except OSError:
            self._lock.seek(0)
            holder = self._lock.read().strip() or "?"
            self._lock.close()
            self._lock = None
            raise RunError(f"{self.path} is being written by another alignbench process (pid {holder}); "
                           "wait for it to finish or choose another --out") from None
        try:
            self._lock.seek(0)
            self._lock.truncate()
            self._lock.write(str(os.getpid()))
            self._lock.flush()
        except OSError as exc:  # a full disk: the lock is held all the same, only its note is missing
            if exc.errno not in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
                self.__exit__()
                raise RunError(f"{self.path}: cannot write the run folder ({exc.strerror}); choose another --out") \
                    from None
        for stale in self.path.glob(".*.tmp"):  # staged by a writer that was killed (the lock is ours now)
            stale.unlink(missing_ok=True)
        self._check_owner()
        return self

    def __exit__(self, *exc: object) -> None:
        self._discard()  # a rewrite that never reached its marker: the finished run stays
        if self._lock is not None:
            (self.path / LOCK).unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # its pid note could not be flushed (a full disk): it is gone anyway
                self._lock.close()
            self._lock = None
            if self._created and not any(self.path.iterdir()):  # a command that failed before writing
                self.path.rmdir()

    def _check_owner(self) -> None:
        if self.model is None or self.force:
            return
        owner = None
        summary = self.path / SUMMARY
        if summary.is_file():
            try:
                owner = safejson.read_json(summary).get("model")
            except (ValueError, OSError):
                owner = None
        if owner is None and (self.path / JUDGMENTS).is_file():
            with (self.path / JUDGMENTS).open(encoding="utf-8") as fh:
                first = fh.readline()
            try:
                owner = safejson.loads(first).get("model") if first.strip() else None
            except ValueError:
                owner = None
        if owner is not None and owner != self.model:
            raise RunError(f"{self.path} holds the run of model {owner!r}, not {self.model!r}; "
                           "choose another --out, or pass --force to replace it")

    # -- writing ----------------------------------------------------------------------------------

    def _replace(self, name: str, data: bytes) -> Path:
        """Write ``name`` under a temporary name; rename it now, or, while a rewrite is staged (``unfinish``),
        when its finished marker is written. A write that fails (a full disk) removes every staged file and
        leaves the finished run as it was."""
        target = self.path / name
        tmp = self.path / f".{name}.{os.getpid()}.tmp"
        try:
            with tmp.open("wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            self.sha256[name] = hashlib.sha256(data).hexdigest()
            if self._marker is None:
                tmp.replace(target)
            elif name != self._marker:
                self._staged[name] = tmp
            else:
                self._swap(tmp)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            self._discard()
            raise RunError(f"{target}: cannot write ({exc.strerror or exc}); the finished run there (if any) is "
                           "unchanged, and every judge reply is in the cache, so the same command with space "
                           "freed or another --out costs nothing") from None
        return target

    def _swap(self, marker_tmp: Path) -> None:
        """Every staged file complete: out goes the old marker, in go the staged files, the marker last."""
        assert self._marker is not None
        (self.path / self._marker).unlink(missing_ok=True)
        for name, tmp in self._staged.items():
            tmp.replace(self.path / name)
        marker_tmp.replace(self.path / self._marker)
        self._staged, self._marker = {}, None

    def _discard(self) -> None:
        for tmp in self._staged.values():
            tmp.unlink(missing_ok=True)
        self._staged, self._marker = {}, None

    def write_json(self, name: str, obj: Any) -> Path:
        obj = obj.as_dict() if isinstance(obj, Result) else obj
        return self._replace(name, (json.dumps(obj, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))

    def write_jsonl(self, name: str, records: Iterable[Any]) -> Path:
        lines = [r.model_dump_json() if hasattr(r, "model_dump_json") else json.dumps(r, ensure_ascii=False)
                 for r in records]
        return self._replace(name, "".join(line + "\n" for line in lines).encode("utf-8"))

    def unfinish(self, name: str = SUMMARY) -> None:
        """Begin rewriting what the finished marker ``name`` summarises: every file written from now on is
        staged beside the old ones and swapped in only when ``name`` itself is written, so a failure (a full
        disk, an error, a kill before the swap) never deletes the finished run."""
        self._marker = name

    def write_run(self, judgments: Sequence[Judgment], summary: Summary) -> Summary:
        """``judgments.jsonl`` (by question) then ``summary.json`` (last: the finished marker), written aside
        and swapped in together."""
        self.unfinish()
        self.write_jsonl(JUDGMENTS, sorted(judgments, key=lambda j: (j.question_id, j.model)))
        run = summary.run.model_copy(update={"dir": str(self.path), "judgments_sha256": self.sha256[JUDGMENTS]})
        final = summary.model_copy(update={"run": run, "finished": True})
        self.write_json(SUMMARY, final.as_json())
        return final


# -- reading ------------------------------------------------------------------------------------


class FailureCounts:
    """``failed``, ``total`` and ``by_status`` over a result's ``judgments``: what ``--max-failed`` decides
    the exit code on. A score ``Run``, a compare ``PairwiseRun`` and a meta-eval ``MetaEvalResult`` answer
    the same three questions the same way, so a caller (the CLI, a CI script) reads them and never counts
    statuses itself."""

    judgments: Sequence[Any]  # anything with a ``status`` (Judgment, PairJudgment)

    def __init__(self, judgments: Sequence[Any]) -> None:  # results that are dataclasses have their own
        """Counts over bare judgments, for a caller that holds only those."""
        self.judgments = judgments

    @property
    def failures(self) -> list[Any]:
        """The judgments that gave no usable score or verdict, in order (the first is the one to look at)."""
        return [j for j in self.judgments if j.status != Status.OK]

    @property
    def failed(self) -> int:
        """How many judgments gave no usable score or verdict."""
        return len(self.failures)

    @property
    def total(self) -> int:
        """Every judgment asked for, judged and failed."""
        return len(self.judgments)

    @property
    def by_status(self) -> dict[str, int]:
        """The failed judgments by status (``parse_failed``, ``judge_error`` …), by status name."""
        counts: dict[str, int] = {}
        for j in self.failures:
            counts[Status(j.status).value] = counts.get(Status(j.status).value, 0) + 1
        return dict(sorted(counts.items()))

    def __repr__(self) -> str:
        """A line, not every judgment: ``asyncio.run`` formats the finished task's result (a dict of runs)
        while restoring the SIGINT handler, and a full dataclass repr of 683 judgments took 35 ms there."""
        return f"<{type(self).__name__} {getattr(self, 'label', '')!r} at {getattr(self, 'dir', None)}: " \
               f"{self.total} judgments, {self.failed} failed>"


@dataclass(repr=False)
class PairwiseRun(FailureCounts):
    """A finished ``compare`` folder (``api.compare``, or a pair file ``alignbench import`` read): the
    ``pairwise.compare.PairwiseSummary`` and every pair judged in both orders. ``failed``, ``total`` and
    ``by_status`` count the pairs that gave no verdict (either order failed), as ``--max-failed`` does."""

    dir: Path
    summary: Any  # PairwiseSummary
    judgments: list[Any]  # PairJudgment


@dataclass(repr=False)
class Run(FailureCounts):
    """One finished run folder: its summary, its judgments, and the question texts when the recorded
    question file is at hand (for reports and the viewer). ``failed``, ``total`` and ``by_status``
    count its failed judgments (``FailureCounts``).

    ``api.run`` (answer, then score, then report) also fills ``answers``, what the answering did (an
    ``answering.AnswerRun``), and ``report``, the report.md it wrote (None when it could not)."""

    dir: Path
    summary: Summary
    judgments: list[Judgment]
    questions: dict[int, Question] | None = None
    questions_note: str | None = None  # why question texts are unavailable
    label: str = ""
    answers: Any = None  # AnswerRun, from api.run
    report: Path | None = None  # report.md, from api.run

    @property
    def path(self) -> Path:
        return self.dir

    @property
    def manifest(self) -> Any:
        return self.summary.run

    @property
    def model(self) -> str:
        return self.summary.model or self.summary.run.model or self.dir.name

    @property
    def rubric_id(self) -> str:
        return self.summary.run.rubric or "?"

    @property
    def judge_id(self) -> str:
        judge = self.summary.run.judge
        return f"{judge.get('backend', '?')}:{judge.get('model', '?')}"

    @property
    def questions_sha(self) -> str:
        return str(self.summary.run.questions.get("sha256", ""))

    @property
    def pairwise_file(self) -> Path:
        return self.dir / "pairwise_summary.json"


def _bad_line(path: Path) -> str:
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                Judgment.model_validate_json(line)
            except ValidationError as exc:
                first = exc.errors()[0]
                return f"{path}:{lineno}: not a judgment record ({first.get('msg')} at {first.get('loc')})"
    return f"{path}: unreadable"


def run_folders(path: Path) -> list[Path]:
    """The finished run folders directly inside ``path`` (a multi-model ``score --out``)."""
    return sorted(p for p in path.iterdir() if p.is_dir() and (p / SUMMARY).is_file()) if path.is_dir() else []


def expand_runs(paths: Sequence[Path | str]) -> list[Path]:
    """Run folders, with a multi-model folder replaced by the model folders inside it."""
    out: list[Path] = []
    for p in map(Path, paths):
        inner = run_folders(p) if not (p / SUMMARY).is_file() else []
        out.extend(inner or [p])
    return out


def load_run(path: Path | str, questions: bool = True) -> Run:
    """Read a *finished* run folder; raise RunError naming the folder (or file:line) and what to do."""
    run_dir = Path(path)
    if not run_dir.is_dir():
        raise RunError(f"{run_dir}: no such run folder")
    summary_path = run_dir / SUMMARY
    if not summary_path.is_file():
        inner = run_folders(run_dir)
        if inner:
            raise RunError(f"{run_dir} holds one run folder per model; pass one of: "
                           + ", ".join(str(p) for p in inner))
        if (run_dir / "pairwise_summary.json").is_file():
            raise RunError(f"{run_dir} is a `compare` folder (pairwise verdicts): read it with "
                           f"`alignbench winrate {run_dir}`, or pass score run folders to report/show")
        raise RunError(f"{run_dir}: unfinished run (no {SUMMARY}); run the same command again to finish it")
    try:
        summary = Summary.model_validate(safejson.read_json(summary_path))
    except json.JSONDecodeError as exc:
        raise RunError(f"{summary_path}:{exc.lineno}: {safejson.describe(exc)}; run the same command again to "
                       "rewrite it") from None
    except ValidationError as exc:
        raise RunError(f"{summary_path}: not a finished summary ({exc.errors()[0].get('msg')}); run the same "
                       "command again to rewrite it") from None
    if summary.finished is not True:
        raise RunError(f"{run_dir}: unfinished run (summary.json has finished={summary.finished!r}); "
                       "run the same command again to finish it")
    jpath = run_dir / JUDGMENTS
    if not jpath.is_file() or not jpath.stat().st_size:
        raise RunError(f"{run_dir}: no {JUDGMENTS} (or it is empty)")
    try:
        with jpath.open(encoding="utf-8") as fh:
            judgments = [Judgment.model_validate_json(line) for line in fh if line.strip()]
    except ValidationError:
        raise RunError(_bad_line(jpath)) from None
    recorded = getattr(summary.run, "judgments_sha256", None)
    if recorded and recorded != _digest(jpath):
        raise RunError(f"{jpath} does not belong to {summary_path} (another process or an edit changed it); "
                       "run the same command again to rewrite both")
    run = Run(dir=run_dir, summary=summary, judgments=judgments, label=run_dir.name if not summary.model
              else summary.model)
    if questions:
        _attach_questions(run)
    return run


def find_recorded(recorded: str, run_dir: Path) -> Path | None:
    """A path recorded in a manifest: as given (relative to the working folder), else relative to any
    folder above the run (a run folder moved along with its repository still finds its inputs)."""
    p = Path(recorded)
    candidates = [p] if p.is_absolute() else [Path.cwd() / p, *(a / p for a in run_dir.resolve().parents)]
    return next((c for c in candidates if c.exists()), None)


def ensemble_members(run: Run) -> tuple[dict[str, Run], list[str]]:
    """Each judge's own run of an ensemble run (``score --judge a,b``): where the summary records it,
    else under ``RUN/judges/<judge>``. Returns the runs found by judge and the judges not found."""
    ens = run.summary.ensemble or {}
    found: dict[str, Run] = {}
    missing: list[str] = []
    for judge in ens.get("judges", []):
        recorded = (ens.get("runs") or {}).get(judge)
        where = find_recorded(recorded, run.dir) if recorded else None
        for cand in [p for p in (where, run.dir / "judges" / folder_name(judge)) if p is not None]:
            try:
                found[judge] = load_run(cand, questions=False)
                break
            except RunError:
                continue
        else:
            missing.append(judge)
    return found, missing


def _attach_questions(run: Run) -> None:
    from alignbench.data import InputError, file_sha256
    from alignbench.rubrics import RubricError

    recorded = run.summary.run.questions.get("path")
    if not recorded:
        run.questions_note = "the run records no question file"
        return
    path = find_recorded(recorded, run.dir)
    if path is None:
        run.questions_note = f"question file {recorded} not found"
        return
    if run.questions_sha and file_sha256(path) != run.questions_sha:
        run.questions_note = f"question file {path} has changed since the run (sha256 differs)"
        return
    try:
        run.questions = _questions_by_id(str(path.resolve()), run.questions_sha, run.rubric_id.split("@")[0])
    except (InputError, RubricError) as exc:
        run.questions_note = f"question file unreadable: {exc}"


@lru_cache(maxsize=16)
def _questions_by_id(path: str, sha256: str, rubric_name: str) -> dict[int, Question]:
    """Question file by id, read once per (file, content) even when ten runs share it."""
    from alignbench.data import load_questions
    from alignbench.rubrics import load_rubric

    return {q.id: q for q in load_questions(path, load_rubric(rubric_name))}


def unique_labels(runs: Sequence[Run]) -> None:
    """Label each run by its model name, adding the folder name where two runs share a model name."""
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.model] = counts.get(r.model, 0) + 1
    for r in runs:
        r.label = r.model if counts[r.model] == 1 else f"{r.model} ({r.dir.name})"


@lru_cache(maxsize=32)
def _answers_file(path: str, mtime_ns: int) -> tuple[list[Answer], str | None]:
    from alignbench.data import InputError, load_answers

    try:
        return load_answers(path, allow_empty=True), None
    except InputError as exc:
        if "no model name" in str(exc):
            return [], "unnamed"
        return [], str(exc)


def load_answer_texts(run: Run) -> tuple[dict[int, Answer], str | None]:
    """The answers this run judged, by question id, from the answer file its manifest records; with
    a note saying why they are missing or may differ from what was judged."""
    from alignbench.data import InputError, load_answers

    recorded = run.summary.run.answers
    if isinstance(recorded, dict):
        recorded = recorded.get("path")
    if isinstance(recorded, (list, tuple)):
        recorded = next((r for r in recorded if isinstance(r, str) and find_recorded(r, run.dir)), None)
    if not recorded or not isinstance(recorded, str):
        return {}, "answer file not at hand (the run records none)"
    path = find_recorded(recorded, run.dir)
    if path is None or not path.is_file():
        return {}, f"answer file not at hand ({recorded} not found)"
    answers, problem = _answers_file(str(path.resolve()), path.stat().st_mtime_ns)
    if problem == "unnamed":
        try:
            answers, problem = load_answers(path, model=run.model, allow_empty=True), None
        except InputError as exc:
            answers, problem = [], str(exc)
    if problem:
        return {}, f"answer file not readable: {problem}"
    mine = [a for a in answers if a.model == run.model]
    if not mine and len({a.model for a in answers}) == 1:  # the run named the model with --model
        mine = answers
    if not mine:
        return {}, f"answer file {recorded} has no answers of {run.model}"
    return {a.question_id: a for a in mine}, None
