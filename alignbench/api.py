"""The Python API: every command of the CLI as a function returning typed results.

Why a library first: model teams call a scorer from notebooks, CI jobs and checkpoint sweeps, not
only from a shell. Each function here validates all its input before any model is called (errors
name file and line), opens its run folders (locked) before any call, runs the one engine, and returns
what it wrote. The CLI is a thin shell over these functions; nothing here prints.

Errors are exceptions the caller can catch: ``InputError`` (bad data), ``ModelConfigError`` (unknown
judge, missing key or package), ``RubricError``, ``RunError`` (run folder), ``ServerUnavailable``,
``FatalCallError`` (bad key, unknown model at the server).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from alignbench import safejson
from alignbench.batch import BatchOptions, Channel, channel_for, close_channel, estimate_for
from alignbench.cache import NullStore, ReplyStore
from alignbench.data import InputError, file_sha256, join, load_answers, load_questions, read_jsonl
from alignbench.engine import Engine, EventHandler, RetryPolicy, run_sync
from alignbench.exporting import export  # noqa: F401  (alignbench export; re-exported)
from alignbench.importing import import_judgments  # noqa: F401  (alignbench import; re-exported)
from alignbench.judges import ModelConfig, judge_config, make_client
from alignbench.rubrics import Rubric, RubricError, load_rubric
from alignbench.rundir import (
    PairwiseRun,
    Run,
    RunError,
    RunFolder,
    default_run_dir,
    folder_name,
    input_source,
    load_run,
)
from alignbench.scoring import (
    SAMPLES_FILE,
    Item,
    build_summary,
    judge_items,
    manifest,
    mean_of_samples,
    plan,
    sample_items,
    samples_section,
    usage_totals,
)
from alignbench.settings import JudgeSettings, bind, takes_settings
from alignbench.types import Answer, Judgment, Question

if TYPE_CHECKING:  # imported by the functions that use them: `import alignbench` stays cheap
    import pandas as pd

    from alignbench.answering import AnswerRun
    from alignbench.metaeval import MetaEvalResult, MetaPlan
    from alignbench.pairwise.compare import PairwiseSummary
    from alignbench.reporting.compare import Comparison
    from alignbench.trust import BridgeFit
    from alignbench.trust.runs import BiasAudit, CalibrationSet, RunTrust
    from alignbench.types import ModelRequest
    from alignbench.upstream import UpstreamProtocol

PathLike = str | Path
CacheArg = PathLike | ReplyStore | bool | None
P = ParamSpec("P")
T = TypeVar("T")


# -- shared pieces ------------------------------------------------------------------------------


def open_store(cache: CacheArg) -> tuple[ReplyStore, bool]:
    """(store, owned): ``None`` = the default cache file, ``False`` = no cache, a path, or a store the
    caller keeps (then it is not closed here)."""
    if isinstance(cache, ReplyStore):
        return cache, False
    if cache is False:
        return NullStore(), True
    return ReplyStore(None if cache in (None, True) else cache), True  # type: ignore[arg-type]


def _blocking(twin: Callable[P, Awaitable[T]]) -> Callable[P, T]:
    """The synchronous form of an ``*_async`` function, for scripts and CI: the same signature (so ``help()``
    and ``inspect.signature`` show every parameter, and a wrong keyword is a ``TypeError`` naming it) and the
    same docstring; inside a running event loop (Jupyter) it says to await the async form instead."""
    name, signature = twin.__name__.removesuffix("_async"), inspect.signature(twin)

    @functools.wraps(twin)
    def blocking(*args: P.args, **kwargs: P.kwargs) -> T:
        bind(signature, name, args, kwargs)  # a wrong keyword fails here, named, before any loop starts
        return run_sync(twin(*args, **kwargs))

    blocking.__name__, blocking.__qualname__ = name, twin.__qualname__.removesuffix("_async")
    blocking.__doc__ = (f"``{twin.__name__}`` for synchronous callers (scripts, CI); in Jupyter use "
                        f"``await {twin.__name__}(...)``.\n\n{twin.__doc__ or ''}")
    return blocking


def _judges(judge: str | Sequence[str]) -> list[str]:
    names = [j.strip() for j in (judge.split(",") if isinstance(judge, str) else judge) if j.strip()]
    if not names:
        raise InputError("--judge", None, "give at least one judge")
    if len(set(names)) != len(names):
        raise InputError("--judge", None, f"{', '.join(names)} names the same judge twice")
    return names


# -- score --------------------------------------------------------------------------------------


@dataclass
class ScorePlan:
    """Everything ``score`` will do, checked and rendered, before any call (``--dry-run`` prints it)."""

    config: ModelConfig
    rubric: Rubric
    questions: list[Question]
    items: list[Item]
    questions_record: dict[str, str]
    sources: dict[str, str]  # model -> answer file
    missing: dict[str, list[int]] = field(default_factory=dict)  # model -> unanswered question ids
    max_answer_chars: int | None = None
    samples: int = 1  # judgments asked per answer (see run_score_plan)
    upstream: UpstreamProtocol | None = None  # the protocol of an --upstream checkout (upstream.load_protocol)
    canary: list[Item] = field(default_factory=list)  # the judge canary's items (canary.py), judged fresh
    canary_note: str | None = None  # why the canary was asked for and cannot run

    @property
    def models(self) -> list[str]:
        return list(self.sources)

    @property
    def plans(self) -> list[ScorePlan]:
        """Each judge's plan: this one (an ``EnsemblePlan`` has one per judge)."""
        return [self]

    def requests(self) -> list[tuple[ModelConfig, list[ModelRequest]]]:
        """Every request per judge, for estimates (``--dry-run``) and ``--max-cost``: each of the K samples
        per answer is a request of its own (its own seed and cache entry), so it is priced too."""
        items = self.items if self.samples == 1 else sample_items(self.items, self.samples)
        return [(self.config, [it.request for it in items] + [it.request for it in self.canary])]

    def warnings(self) -> list[str]:
        """What the caller should hear before the run starts: answers that are missing (not judged, and
        listed in summary.json), and samples that may not differ (several at judge temperature 0)."""
        out = [f"{len(ids)} of {len(self.questions)} questions have no answer from {name}; they are not judged "
               "and are listed in summary.json" for name, ids in self.missing.items()]
        if self.canary_note:
            out.append(self.canary_note)
        if self.samples > 1 and self.config.decoding.temperature == 0:
            out.append(f"--samples {self.samples} at judge temperature 0: the samples differ only if the server's "
                       "sampling uses the seed; pass --temperature (e.g. 0.7) to measure the judge's spread")
        if self.upstream is not None and self.upstream.record().get("modified"):
            from alignbench.upstream import protocol_label

            out.append(protocol_label({"rubric": self.rubric.id, "upstream": self.upstream.record()}) + ": the "
                       "scores are labelled modified and do not stand next to the published leaderboard")
        return out + identical_answers(self.items)


def identical_answers(items: Sequence[Item], share: float = 0.5) -> list[str]:
    """A model whose answers to different questions are largely the same text (a placeholder, an error
    message, a generation run that failed the same way each time) gets judged like any other: say so
    before the judge is paid. Warned when one text answers at least ``share`` of a model's questions (3+)."""
    by_model: dict[str, Counter[str]] = {}
    for it in items:
        if it.turn in (None, 1):
            by_model.setdefault(it.answer.model, Counter())[it.answer.text.strip()] += 1
    out = []
    for model, texts in by_model.items():
        text, n = texts.most_common(1)[0]
        total = sum(texts.values())
        if n >= 3 and n >= share * total:
            shown = text[:40] + ("…" if len(text) > 40 else "")
            out.append(f"{n} of {total} answers of {model} are the same text ({shown!r}); check the answer file "
                       "(identical answers to different questions are rarely real)")
    return out


@dataclass
class EnsemblePlan:
    """``score`` with several judges (``judge="a,b"`` or a list): each judge's own ``ScorePlan``, every
    input checked and every prompt rendered before any call. Each judge scores on its own, then their
    judgments are averaged (``score_from_plan``)."""

    judges: list[str]  # as given: they name the ensemble and its per-judge folders
    plans: list[ScorePlan]

    @property
    def samples(self) -> int:
        return self.plans[0].samples

    def requests(self) -> list[tuple[ModelConfig, list[ModelRequest]]]:
        """Every request per judge, for estimates (``--dry-run``): one sample per answer."""
        return [req for p in self.plans for req in p.requests()]

    def warnings(self) -> list[str]:
        """The first judge's: every judge sees the same answers (the temperature is the first judge's)."""
        return self.plans[0].warnings()


def _load_questions(questions: PathLike | Sequence[Question], rubric: Rubric) -> tuple[list[Question], dict[str, str]]:
    if isinstance(questions, str | Path):
        return load_questions(questions, rubric), {**input_source(questions), "sha256": file_sha256(questions)}
    qs = list(questions)
    blob = json.dumps([q.model_dump(mode="json") for q in qs], ensure_ascii=False, sort_keys=True)
    return qs, {"path": "<memory>", "sha256": hashlib.sha256(blob.encode("utf-8")).hexdigest()}


def _upstream(questions: Any, judge: Any, settings: JudgeSettings) -> tuple[UpstreamProtocol | None, Any, Any,
                                                                            JudgeSettings]:
    """The protocol of the ``upstream`` checkout (read, parsed and hashed now, before any call), or None, with
    what it supplies when not given: its question file, its judge (and the model id its script asks for), and
    answers shown whole (the upstream scripts never clip). The one place score, compare and prompt read it."""
    if settings.upstream is None:
        if questions is None:
            raise InputError("--questions", None, "give the question file (or --upstream PATH: a THUDM/AlignBench "
                             "or FastChat clone, whose own question file is then used)")
        return None, questions, "critiquellm" if judge is None else judge, settings
    from alignbench.upstream import load_protocol

    if settings.rubric or settings.protocol:
        raise RubricError("--upstream sends the checkout's own prompts: --rubric and --protocol do not apply to it "
                          "(drop --rubric/--protocol)")
    proto = load_protocol(settings.upstream)
    questions = proto.default_questions if questions is None else questions
    if questions is None:
        raise InputError("--questions", None, f"the checkout at {settings.upstream} has no default question file; "
                         "give one")
    judge = proto.default_judge if judge is None else judge
    if settings.judge_model is None and judge == proto.default_judge and proto.default_judge_model:
        settings = settings.replace(judge_model=proto.default_judge_model)
    return proto, questions, judge, settings.replace(max_answer_chars=None)


def _judge_config(judge: str, settings: JudgeSettings, proto: UpstreamProtocol | None) -> ModelConfig:
    """``judge``'s config with the settings; under an upstream protocol, as its script calls the judge: chat
    messages (both scripts send them; a completion preset is switched to chat, an explicit --prompt-format
    completion refused) and the protocol's own decoding (``judge_config``)."""
    config = settings.config(judge)
    if proto is None:
        return config
    if settings.prompt_format == "completion":
        from alignbench.upstream import UpstreamError

        raise UpstreamError(f"the {proto.name} sends chat messages, as its own script does: drop --prompt-format "
                            "completion")
    return proto.judge_config(config.model_copy(update={"prompt_format": "chat"}), settings)


@takes_settings("judge")
def plan_score(questions: PathLike | Sequence[Question] | None,
               answers: PathLike | Sequence[PathLike] | Sequence[Answer], judge: str | Sequence[str] | None = None, *,
               model: str | None = None, allow_empty: bool = False, samples: int = 1,
               settings: JudgeSettings) -> ScorePlan | EnsemblePlan:
    """Check every input and render every prompt; call nothing. One judge gives a ``ScorePlan``, several
    (``"a,b"`` or a list) an ``EnsemblePlan``; either runs with ``score_from_plan``, and its ``warnings()``
    are what to tell the user first (the CLI prints them). ``samples`` K > 1 asks the judge K times per
    answer (see ``run_score_plan``). A plan reads the settings that make prompts; those of the run
    (attempts, cache, batch …) are ``score_from_plan``'s.

    ``upstream`` (a setting): the user's clone of THUDM/AlignBench (the official protocol of its ``judge.py``)
    or of FastChat (MT-Bench as its ``gen_judgment.py`` judges it); docs/protocols.md. ``questions`` None is
    then the clone's question file and ``judge`` None its judge (GPT-4); without it ``judge`` None is
    ``critiquellm``."""
    if samples < 1:
        raise InputError("--samples", None, f"must be at least 1, not {samples}")
    proto, questions, judge, settings = _upstream(questions, judge, settings)
    names = _judges(judge)
    if proto is not None and len(names) > 1:
        raise InputError("--judge", None, "--upstream runs one judge at a time")
    if len(names) > 1 and settings.canary is not False:  # the canary runs with one judge (docs/trust.md §7)
        settings = settings.replace(canary=False)
    plans = [_plan_one(questions, answers, n, model=model, allow_empty=allow_empty, samples=samples,
                       settings=settings, proto=proto) for n in names]
    return EnsemblePlan(judges=names, plans=plans) if len(names) > 1 else plans[0]


def _plan_one(questions: PathLike | Sequence[Question], answers: PathLike | Sequence[PathLike] | Sequence[Answer],
              judge: str, *, model: str | None, allow_empty: bool, samples: int, settings: JudgeSettings,
              proto: UpstreamProtocol | None = None) -> ScorePlan:
    config = _judge_config(judge, settings, proto)
    rub = proto.rubric() if proto is not None else load_rubric(config.rubric)
    if proto is not None and isinstance(questions, str | Path):
        qs, record = proto.load_questions(questions, rub), {"path": str(questions), "sha256": file_sha256(questions)}
    else:
        qs, record = _load_questions(questions, rub)
    files: list[tuple[str, list[Answer]]]
    if isinstance(answers, str | Path):
        answers = [answers]
    if answers and all(isinstance(a, Answer) for a in answers):
        files = [("<memory>", list(answers))]  # type: ignore[arg-type]
    else:
        files = [(str(p), load_answers(p, model=model, allow_empty=allow_empty)) for p in answers]  # type: ignore[arg-type]
    pairs, sources, missing = [], {}, {}
    for path, loaded in files:
        joined = join(qs, loaded, path)
        for name in sorted({a.model for a in loaded}):
            if name in sources:
                raise InputError(path, None, f"model {name!r} also appears in {sources[name]}; give each file its "
                                 "own --model")
            sources[name] = path
        pairs.extend(joined.pairs)
        missing.update(joined.missing)
    chars = settings.max_answer_chars
    from alignbench import canary

    canary_items, canary_note = canary.plan_items(config, rub, chars) if canary.wanted(settings.canary, config) \
        and proto is None else ([], None)
    items = proto.plan_single(pairs, rub, config) if proto is not None else plan(pairs, rub, config, chars)
    return ScorePlan(config=config, rubric=rub, questions=qs, items=items, questions_record=record, sources=sources,
                     missing=missing, max_answer_chars=chars, samples=samples, upstream=proto, canary=canary_items,
                     canary_note=canary_note)


def _score_dirs(p: ScorePlan, out: PathLike | None) -> dict[str, Path]:
    if out is not None and len(p.models) == 1:
        return {p.models[0]: Path(out)}
    if out is not None:
        return {m: Path(out) / folder_name(m) for m in p.models}
    return {m: default_run_dir(m, p.config.name, p.rubric.id) for m in p.models}


def keep_plan_inputs(folder: RunFolder, p: ScorePlan, name: str) -> dict[str, Any]:
    """Keep the questions and answers of ``name`` that the plan judges in its run folder (``keep_inputs``)."""
    mine = [it for it in p.items if it.answer.model == name]
    questions = list({it.question.id: it.question for it in mine}.values())
    answers = list({it.answer.question_id: it.answer for it in mine}.values())
    qpath, apath = p.questions_record.get("path"), p.sources.get(name)
    sources = {"questions": input_source(qpath) if qpath and qpath != "<memory>" else None,
               "answers": input_source(apath) if apath and apath != "<memory>" else None}
    return folder.keep_inputs(questions, answers, sources)


@takes_settings("call", omit=("batch", "max_cost"))
async def run_score_plan(p: ScorePlan, *, out: PathLike | None = None, force: bool = False, seed: int = 0,
                         on_event: EventHandler | None = None, extra_manifest: dict[str, Any] | None = None,
                         judge_name: str | None = None, samples: int | None = None, channel: Channel | None = None,
                         settings: JudgeSettings) -> dict[str, Run]:
    """Judge a checked plan of one judge and write one run folder per model; returns the runs by model
    (``score_from_plan`` is the synchronous, batch- and budget-aware way in; this is its engine room:
    ``channel`` is its batch API and budget, if any).

    ``samples`` K > 1 (default: the plan's) asks the judge K times per answer (distinct seeds, distinct
    cache entries): ``judgments.jsonl`` holds the per-answer means, ``samples.jsonl`` every sample, and
    the summary the judge's spread. K = 1 is a plain run."""
    samples = p.samples if samples is None else samples
    if samples < 1:
        raise InputError("--samples", None, f"must be at least 1, not {samples}")
    dirs = _score_dirs(p, out)
    store, owned = open_store(settings.cache)
    with ExitStack() as stack:
        if owned:
            stack.callback(store.close)
        judge = f"{p.config.backend}:{p.config.model}"  # another judge into the same folder needs force
        folders = {m: stack.enter_context(RunFolder(d, model=m, force=force, judge=judge)) for m, d in dirs.items()}
        client, source = channel.open(p.config, store) if channel else (make_client(p.config), None)
        try:
            items = p.items if samples == 1 else sample_items(p.items, samples)
            if channel:  # --max-cost: refuse before anything is sent when the upper bound is over it
                channel.check_start([(p.config, [it.request for it in items])], store)
            retries = settings.parse_retries if p.upstream is None or p.upstream.parse_retries is None \
                else p.upstream.parse_retries  # FastChat asks each prompt once
            judgments, engine = await judge_items(items, p.rubric, client, store, judge_name or p.config.name,
                                                  retry=settings.retry, parse_retries=retries,
                                                  on_event=on_event, serve_hint=p.config.serve_hint,
                                                  refresh_failed=settings.refresh_failed, source=source)
        finally:
            await client.aclose()
            await close_channel(channel)
        if channel:
            channel.settle()  # stopped at --max-cost: nothing is written, every reply is in the cache
        drawn = judgments
        if samples > 1:
            judgments = mean_of_samples(drawn, samples)
        runs = {}
        for name, folder in folders.items():
            mine = [j for j in judgments if j.model == name]
            folder.unfinish()  # the old summary goes before the inputs it names are replaced
            inputs = keep_plan_inputs(folder, p, name)
            upstream = {"upstream": p.upstream.record()} if p.upstream is not None else {}
            run = manifest(name, p.config.public(), p.rubric, p.questions_record, p.sources[name],
                           p.missing.get(name, []), p.max_answer_chars, **engine.record(store), **upstream,
                           **{"inputs": inputs, **(extra_manifest or {})})
            section, mine_drawn = None, mine
            if samples > 1:
                mine_drawn = [j for j in drawn if j.model == name]
                section = samples_section(mine_drawn, p.rubric, samples, p.config.decoding.temperature)
                folder.unfinish()  # the old summary goes before anything it summarised is replaced
                folder.write_jsonl(SAMPLES_FILE, [
                    {"sample": i % samples, "seed": it.request.decoding.seed, "judgment": j.model_dump(mode="json")}
                    for i, (it, j) in enumerate(zip(items, drawn, strict=True)) if j.model == name])
            usage = usage_totals(mine_drawn, engine, name)
            body = build_summary(mine, p.rubric, run, usage, seed=seed, samples=section, score_from=p.config.score_from)
            if p.upstream is not None:  # the protocol's own figures (MT-Bench: show_result.py's score)
                body = p.upstream.finish_summary(body, mine, p.rubric, seed)
            summary = folder.write_run(mine, body)
            runs[name] = Run(dir=folder.path, summary=summary, judgments=sorted(mine, key=lambda j: j.question_id),
                             label=name)
    return runs


@takes_settings()
async def score_async(questions: PathLike | Sequence[Question] | None,
                      answers: PathLike | Sequence[PathLike] | Sequence[Answer], judge: str | Sequence[str] | None = None,
                      *, model: str | None = None, out: PathLike | None = None, force: bool = False,
                      allow_empty: bool = False, samples: int = 1, seed: int = 0, on_event: EventHandler | None = None,
                      extra_manifest: dict[str, Any] | None = None, settings: JudgeSettings) -> dict[str, Run]:
    """Judge answers with a multi-dimension rubric; one finished ``Run`` per model.

    ``questions``: a path or ``Question`` records; ``answers``: a path, several paths (one model each,
    written to ``out/<model>``) or ``Answer`` records; ``model`` names the answers of a file without
    ``model_id``. Several judges (``"a,b"`` or a list) make an ensemble: each judge scores on its own
    (its own cache entries and run folders under ``<out>/judges/<judge>``), then their judgments are
    averaged. ``samples`` K > 1 asks each judge K times per answer and scores the mean (judge variance;
    see ``run_score_plan``). ``force`` replaces a run folder that holds another model's run; ``seed``
    seeds the bootstrap; ``extra_manifest`` adds entries to each run's manifest (one judge only).

    ``batch`` (True or ``alignbench.batch.BatchOptions``) sends the uncached requests through the
    provider's batch API (see docs/batch.md; ``BatchPending`` when ``wait=False`` leaves them running);
    ``max_cost`` refuses a run whose upper-bound cost exceeds it and stops sending once it is spent
    (``alignbench.cost.BudgetExceeded``). Re-running the same call reads every stored reply from the
    cache: nothing is paid twice."""
    p = plan_score(questions, answers, judge, model=model, allow_empty=allow_empty, samples=samples,
                   settings=settings)
    return await score_from_plan_async(p, out=out, force=force, seed=seed, on_event=on_event,
                                       extra_manifest=extra_manifest, settings=settings)


@takes_settings("call")
async def score_from_plan_async(p: ScorePlan | EnsemblePlan, *, out: PathLike | None = None, force: bool = False,
                                seed: int = 0, on_event: EventHandler | None = None,
                                extra_manifest: dict[str, Any] | None = None,
                                settings: JudgeSettings) -> dict[str, Run]:
    """Run a plan from ``plan_score``: the plan that was checked (and whose warnings were shown) is the one
    judged, nothing is loaded twice. Keywords as in ``score``; ``extra_manifest`` adds entries to each
    run's manifest (one judge only). Returns one finished ``Run`` per model."""
    if isinstance(p, EnsemblePlan):
        return await _ensemble(p, out=out, force=force, seed=seed, on_event=on_event, settings=settings)
    if p.canary:  # judged first, fresh: its result goes into every run's manifest (docs/trust.md §7)
        from alignbench.canary import run_canary

        dirs = [str(d) for d in _score_dirs(p, out).values()]
        extra_manifest = {**(extra_manifest or {}), "canary": await run_canary(p, p.canary, settings, dirs)}
    return await run_score_plan(p, out=out, force=force, seed=seed, on_event=on_event, extra_manifest=extra_manifest,
                                channel=channel_for(settings.batch, settings.max_cost, [p.config]), settings=settings)


score = _blocking(score_async)
score_from_plan = _blocking(score_from_plan_async)


async def _ensemble(ensemble: EnsemblePlan, *, out: PathLike | None, force: bool, seed: int,
                    on_event: EventHandler | None, settings: JudgeSettings) -> dict[str, Run]:
    from alignbench.ensemble import combine, disagreement, ensemble_name

    names, plans = ensemble.judges, ensemble.plans
    if len({tuple(p.rubric.category_names()) for p in plans}) > 1:
        raise RubricError(f"the judges' rubrics ({', '.join(p.rubric.id for p in plans)}) have different "
                          "categories; pass --rubric to give them one")
    name = ensemble_name(names)
    root = Path(out) if out is not None else Path("reports") / f"ensemble__{folder_name(name)}"
    store, owned = open_store(settings.cache)
    channel = channel_for(settings.batch, settings.max_cost, [p.config for p in plans])  # one budget for every judge
    try:
        if channel:
            channel.check_start([(p.config, [it.request for it in p.items]) for p in plans], store)
        per_judge = {n: await run_score_plan(p, out=root / "judges" / folder_name(n), force=force, seed=seed,
                                             on_event=on_event, channel=channel, settings=settings, cache=store)
                     for n, p in zip(names, plans, strict=True)}
    finally:
        if owned:
            store.close()
    rub = plans[0].rubric
    models = list(per_judge[names[0]])
    runs: dict[str, Run] = {}
    for m in models:
        judged = {n: per_judge[n][m].judgments for n in names}
        first = per_judge[names[0]][m].summary
        run = first.run.model_copy(update={
            "judge": {"name": name, "model": "+".join(p.config.model for p in plans),
                      "ensemble": [p.config.public() for p in plans]}, "rubric": rub.id})
        usage = first.usage.model_copy(update={
            k: sum(getattr(per_judge[n][m].summary.usage, k) for n in names) for k in type(first.usage).model_fields})
        section = {**disagreement(judged, rub.category_names(), seed=seed),
                   "rubrics": {n: p.config.rubric for n, p in zip(names, plans, strict=True)},
                   "runs": {n: str(per_judge[n][m].dir) for n in names},
                   "scores": {n: {"overall": per_judge[n][m].summary.overall,
                                  "categories": {c: v.score for c, v in per_judge[n][m].summary.categories.items()}}
                              for n in names}}
        combined = combine(judged)
        target = root / folder_name(m) if len(models) > 1 else root
        with RunFolder(target, model=m, force=force) as folder:
            folder.unfinish()
            run = run.model_copy(update={"inputs": keep_plan_inputs(folder, plans[0], m)})
            summary = folder.write_run(combined, build_summary(combined, rub, run, usage, seed=seed, ensemble=section))
        runs[m] = Run(dir=target, summary=summary, judgments=combined, label=m)
    return runs


# -- compare ------------------------------------------------------------------------------------


@dataclass
class ComparePlan:
    config: ModelConfig
    rubric: Rubric
    questions: list[Question]
    items: list[Any]  # PairItem
    baseline: str
    sources: dict[str, str]
    missing: dict[str, list[int]]
    baseline_missing: list[int]
    n_pairs: int
    questions_record: dict[str, str]
    baseline_path: str
    upstream: UpstreamProtocol | None = None  # the protocol of an --upstream checkout (upstream.load_protocol)

    def warnings(self) -> list[str]:
        out = []
        if self.baseline_missing:
            out.append(f"the baseline {self.baseline} has no answer to {len(self.baseline_missing)} of "
                       f"{len(self.questions)} questions; no model is compared there")
        for name, ids in self.missing.items():
            own = len([i for i in ids if i not in self.baseline_missing])
            if own:
                out.append(f"{own} of {len(self.questions)} questions have no answer from {name}; those pairs are "
                           "not compared and are listed in pairwise_summary.json")
        return out


def _file_model_name(path: Path) -> str | None:
    """None when every line names its model (``model_id``); otherwise the file's stem names it."""
    for _, obj in read_jsonl(path):
        if not isinstance(obj.get("model_id"), str) or not obj["model_id"]:
            return path.stem
    return None


@takes_settings("judge")
def plan_compare(questions: PathLike | None, answers: Sequence[PathLike], baseline: PathLike,
                 judge: str | None = None, *, allow_empty: bool = False, settings: JudgeSettings) -> ComparePlan:
    """Check every input and render both orders of every pair; call nothing. Like ``plan_score``, a plan
    reads the settings that make prompts; those of the run are ``compare``'s. ``upstream`` (a setting): a
    FastChat clone, to compare MT-Bench answers as its ``gen_judgment.py --mode pairwise-baseline`` does
    (``questions`` None: its MT-Bench questions; ``judge`` None: its GPT-4)."""
    from alignbench.pairwise.compare import match_pairs, plan_pairs

    proto, questions, judge, settings = _upstream(questions, judge, settings)
    config = _judge_config(judge, settings, proto)
    if proto is not None:
        rub = proto.rubric()
        qs = proto.load_questions(questions, rub)
    else:
        rub = load_rubric(config.rubric)
        if not rub.templates.pairwise_user:
            raise RubricError(f"rubric {rub.id} has no pairwise template; use --rubric alignbench or critiquellm")
        qs = load_questions(questions, rub)
    baseline, answers = Path(baseline), [Path(a) for a in answers]
    base = load_answers(baseline, model=_file_model_name(baseline), allow_empty=allow_empty)
    names = sorted({a.model for a in base})
    if len(names) != 1:
        raise InputError(baseline, None, f"the baseline file holds answers of {len(names)} models "
                         f"({', '.join(names)}); give the baseline its own file")
    join(qs, base, baseline)
    if len({p.resolve() for p in answers}) != len(answers):
        raise InputError(answers[0], None, "the same --answers file is given twice; give each model one answer file")
    by_model: dict[str, list[Answer]] = {}
    source: dict[str, str] = {}
    for path in answers:
        loaded = load_answers(path, model=_file_model_name(path), allow_empty=allow_empty)
        join(qs, loaded, path)
        for ans in loaded:
            if ans.model == names[0]:
                raise InputError(path, ans.meta.get("line"), f"model {ans.model!r} has the baseline's name; the "
                                 "baseline is compared with the other models, not with itself")
            if ans.model in source and source[ans.model] != str(path):
                raise InputError(path, ans.meta.get("line"), f"model {ans.model!r} also appears in "
                                 f"{source[ans.model]}; give each model one answer file")
            source[ans.model] = str(path)
            by_model.setdefault(ans.model, []).append(ans)
    matched = match_pairs(qs, by_model, base)
    if not matched.pairs:
        raise InputError(baseline, None, "no question has an answer from both a model and the baseline: nothing "
                         "to compare")
    items = proto.plan_pairs(matched.pairs, rub, config) if proto is not None else plan_pairs(
        matched.pairs, rub, config, settings.max_answer_chars)
    return ComparePlan(config=config, rubric=rub, questions=qs, items=items, baseline=names[0], upstream=proto,
                       sources=source, missing=matched.missing, baseline_missing=matched.baseline_missing,
                       n_pairs=len(matched.pairs), questions_record={"path": str(questions),
                                                                     "sha256": file_sha256(questions)},
                       baseline_path=str(baseline))


@takes_settings()
async def compare_async(questions: PathLike | None, answers: Sequence[PathLike], baseline: PathLike,
                        judge: str | None = None, *, out: PathLike | None = None, force: bool = False,
                        allow_empty: bool = False, length_unit: str = "words", seed: int = 0, bootstrap: int = 200,
                        on_event: EventHandler | None = None, settings: JudgeSettings) -> PairwiseRun:
    """Judge each model against a baseline, every pair in both orders; win rates, length-controlled
    win rates and position inconsistency in the returned (and written) pairwise summary. ``baseline`` is
    the baseline model's answer file; ``length_unit`` (words or chars) measures answers for the
    length-controlled fit, ``bootstrap`` resamples its standard errors (``seed``). ``force``, ``batch``
    and ``max_cost`` as in ``score``. ``upstream``: a FastChat clone (MT-Bench's pair-v2 prompts; the summary's
    ``fastchat`` holds show_result.py's counts)."""
    from alignbench.pairwise.compare import (
        PairwiseSummary,
        assemble,
        judge_pairs,
        run_metadata,
        summarize_compare,
        usage_totals,
        write_compare_run,
    )

    if length_unit not in ("words", "chars"):
        raise InputError("--length-unit", None, f"must be words or chars, not {length_unit!r}")
    p = plan_compare(questions, answers, baseline, judge, allow_empty=allow_empty, settings=settings)
    models = list(dict.fromkeys(p.sources))
    joined = "+".join(models)
    who = joined if len(joined) <= 60 else f"{len(models)}-models"
    run_dir = Path(out) if out is not None else default_run_dir(who, "vs", p.baseline, p.config.name, p.rubric.id)
    store, owned = open_store(settings.cache)
    with ExitStack() as stack:
        if owned:
            stack.callback(store.close)
        folder = stack.enter_context(RunFolder(run_dir))
        channel = channel_for(settings.batch, settings.max_cost, [p.config])
        client, source = channel.open(p.config, store) if channel else (make_client(p.config), None)
        try:
            if channel:
                channel.check_start([(p.config, [it.request for it in p.items])], store)
            retries = settings.parse_retries if p.upstream is None or p.upstream.parse_retries is None \
                else p.upstream.parse_retries  # FastChat asks each prompt once
            verdicts, engine = await judge_pairs(p.items, client, store, retry=settings.retry,
                                                 parse_retries=retries, on_event=on_event,
                                                 serve_hint=p.config.serve_hint,
                                                 refresh_failed=settings.refresh_failed, source=source)
        finally:
            await client.aclose()
            await close_channel(channel)
        if channel:
            channel.settle()
        judgments = assemble(p.items, verdicts, p.rubric, p.config.name)
        fields = {**summarize_compare(judgments, p.rubric, length_unit, n_boot=bootstrap, seed=seed),  # type: ignore[arg-type]
                  "judge": p.config.public(), "rubric": p.rubric.id,
                  "usage": usage_totals(judgments, engine).model_dump(),
                  "run": run_metadata(dir=str(run_dir), questions=p.questions_record, answers=p.sources,
                                      baseline_answers=p.baseline_path, n_questions=len(p.questions), missing=p.missing,
                                      baseline_missing=p.baseline_missing, max_answer_chars=settings.max_answer_chars),
                  "finished": True}
        if p.upstream is not None:  # the protocol's own counts (FastChat: show_result.py's) and its record
            fields = p.upstream.finish_pairwise(fields, judgments, seed)
        summary = PairwiseSummary(**fields)
        write_compare_run(folder, judgments, summary)
    return PairwiseRun(dir=run_dir, summary=summary, judgments=judgments)


compare = _blocking(compare_async)


# -- meta-eval ----------------------------------------------------------------------------------


@takes_settings("judge", omit=("protocol", "upstream"))
def plan_meta_eval(data: Sequence[PathLike], judges: str | Sequence[str] = "critiquellm",
                   protocols: str | Sequence[str] = "multi-dimension", *, category: str | None = None,
                   settings: JudgeSettings) -> MetaPlan:
    """Check the judges, protocols and human-labelled files of a meta-eval; call nothing. The plan's
    ``combos`` are the (judge, protocol, ModelConfig, Rubric) to run, ``requests()`` every request per
    judge (what ``--dry-run`` estimates) and ``warnings()`` what the CLI prints before it starts. The
    protocols are ``protocols`` (a comma list or a list), each judge judged under each."""
    from alignbench.metaeval import plan_meta_eval as plan_meta

    if settings.protocol is not None:
        raise InputError("protocol", None, "meta-eval takes its protocols as its third argument (protocols=), "
                         "each judge judged under each; leave JudgeSettings.protocol unset")
    return plan_meta([Path(d) for d in data], _judges(judges), _judges(protocols), category=category,
                     max_answer_chars=settings.max_answer_chars, **settings.config_overrides())


@takes_settings(omit=("protocol", "upstream"))
async def meta_eval_async(data: Sequence[PathLike], judges: str | Sequence[str] = "critiquellm",
                          protocols: str | Sequence[str] = "multi-dimension", *, category: str | None = None,
                          out: PathLike | None = None, bootstrap: int | None = None, seed: int = 0,
                          on_event: EventHandler | None = None, on_combo: Any = None,
                          settings: JudgeSettings) -> MetaEvalResult:
    """How well each judge × protocol agrees with human labels; returns (and with ``out`` writes) the
    figures as ``meta_eval.json`` holds them: a ``metaeval.MetaEvalResult`` (``.results``; ``failed``,
    ``total`` and ``by_status`` count the judgments that failed (what ``--max-failed`` decides on).
    ``data``: human-labelled files (see docs/meta-eval.md); ``category`` is given to rows without one;
    ``bootstrap`` resamples the 95% CIs (default 1000; ``seed``); ``on_combo(judge, protocol, rubric)``
    hears each combination begin. ``batch`` and ``max_cost`` as in ``score``."""
    from alignbench import metaeval as M

    p = plan_meta_eval(data, judges, protocols, category=category, settings=settings)
    store, owned = open_store(settings.cache)
    with ExitStack() as stack:
        if owned:
            stack.callback(store.close)
        folder = stack.enter_context(RunFolder(out)) if out is not None else None
        channel = channel_for(settings.batch, settings.max_cost, [config for _, _, config, _ in p.combos])
        try:
            if channel:
                channel.check_start(p.requests(), store)
            payload = await M.run_meta_eval(p, store, attempts=settings.attempts, parse_retries=settings.parse_retries,
                                            n_boot=M.N_BOOTSTRAP if bootstrap is None else bootstrap, seed=seed,
                                            folder=folder, on_event=on_event, on_combo=on_combo,
                                            refresh_failed=settings.refresh_failed,
                                            connect=(lambda c: channel.open(c, store)) if channel else None)
        finally:
            await close_channel(channel)
        if channel:
            channel.settle()
        if folder is not None:
            folder.write_json("meta_eval.json", payload)
    return payload


meta_eval = _blocking(meta_eval_async)


# -- winrate ------------------------------------------------------------------------------------

_PREFERENCE_COLUMNS = ["model", "baseline", "question_id", "preference", "len_model", "len_baseline", "category"]


class PreferenceError(InputError):
    """Win-rate input that is wrong as a whole rather than at one file's line (a model judged twice, a
    baseline not in the files, a model against two baselines): an ``InputError`` whose message stands
    alone. ``path`` names the file(s) when one is to blame."""

    def __init__(self, message: str, path: PathLike | None = None) -> None:
        ValueError.__init__(self, message)
        self.path, self.line = ("" if path is None else str(path)), None


def _choice(value: str | None, option: str, choices: tuple[str, ...]) -> None:
    if value is not None and value not in choices:
        raise InputError(option, None, f"must be {' or '.join(choices)}, not {value!r}")


def read_preferences(files: PathLike | Sequence[PathLike], *, length_unit: str | None = None,
                     name_by: str = "generator") -> tuple[pd.DataFrame, str]:
    """AlpacaEval annotation files (a JSON list) and our pairwise judgments (``pairwise_judgments.jsonl``
    or the ``compare`` folder holding it), told apart by content, as one preference table (the columns of
    ``pairwise.winrate``), plus the length unit(s) used: ``length_unit`` or by default chars for AlpacaEval
    files (as AlpacaEval) and words for ours. ``name_by="file"`` names AlpacaEval models by file stem.
    Every problem is an ``InputError`` naming the file (and line)."""
    import pandas as pd

    from alignbench.pairwise.alpaca import read_alpaca_annotations
    from alignbench.pairwise.compare import (
        JUDGMENTS_FILE,
        is_pairwise_judgments,
        preference_frame,
        read_pairwise_judgments,
    )

    _choice(length_unit, "--length-unit", ("words", "chars"))
    _choice(name_by, "--name-by", ("generator", "file"))
    paths = [Path(files)] if isinstance(files, str | Path) else [Path(f) for f in files]
    if not paths:
        raise PreferenceError("no file given: pass AlpacaEval annotation files, pairwise_judgments.jsonl files "
                              "or compare folders")
    frames, alpaca = [], []
    for path in paths:
        target = path / JUDGMENTS_FILE if path.is_dir() else path
        if not target.is_file():
            raise InputError(target, None, "file not found")
        with target.open("rb") as fh:
            head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
        if head.startswith(b"["):
            alpaca.append(target)
        elif is_pairwise_judgments(target):
            frames.append(preference_frame(read_pairwise_judgments(target), length_unit or "words"))  # type: ignore[arg-type]
        else:
            raise InputError(target, None, "neither an AlpacaEval annotation file (a JSON list with output_1, "
                             f"output_2, generator_1, generator_2, preference) nor a {JUDGMENTS_FILE} written by "
                             "`alignbench compare`")
    if alpaca:
        try:
            df = read_alpaca_annotations(alpaca, length_unit=length_unit or "chars",  # type: ignore[arg-type]
                                         model_name=name_by)  # type: ignore[arg-type]
        except ValueError as exc:  # the reader's messages name the file, except when no record was read
            named = any(str(p) in str(exc) for p in alpaca)
            where = ", ".join(map(str, alpaca))
            raise (PreferenceError(str(exc), where) if named else InputError(where, None, str(exc))) from None
        frames.append(df.assign(category=df["dataset"]).reindex(columns=_PREFERENCE_COLUMNS))
    table = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    ours = len(frames) > (1 if alpaca else 0)  # frames = one per judgments file, plus one for all AlpacaEval files
    unit = length_unit or ("chars (AlpacaEval files), words (pairwise judgments)" if alpaca and ours
                           else "chars" if alpaca else "words")
    dup = table.duplicated(["model", "baseline", "question_id"], keep=False)
    if dup.any():
        first = table[dup].iloc[0]
        raise PreferenceError(f"model {first['model']!r} is judged twice on the same question against "
                              f"{first['baseline']!r}; pass each file once")
    return table, unit


def winrate(files: PathLike | Sequence[PathLike], *, baseline: str | None = None, length_unit: str | None = None,
            name_by: str = "generator", seed: int = 0, bootstrap: int = 200) -> PairwiseSummary:
    """Plain and length-controlled win rates per model from existing pairwise judgments (AlpacaEval
    annotation files and/or our ``pairwise_judgments.jsonl`` or ``compare`` folders; ``read_preferences``);
    never calls a judge. Models are fitted jointly per baseline (one GLM over every model compared with
    the same baseline); ``baseline`` keeps only the comparisons against that one. Returns the summary
    ``alignbench winrate --format json`` prints: ``models`` (best LC win rate first; each with
    ``win_rate``, ``lc_win_rate``, their SEs, W/T/L counts, ``lc_warning``), ``glm`` per baseline,
    ``baseline`` (None when several), ``baselines``, ``files``, ``length_unit``."""
    import pandas as pd

    from alignbench.pairwise.compare import PairwiseSummary, summarize_preferences

    files = [files] if isinstance(files, str | Path) else list(files)
    table, units = read_preferences(files, length_unit=length_unit, name_by=name_by)
    baselines = sorted(pd.unique(table["baseline"]).astype(str))
    if baseline is not None:
        if baseline not in baselines:
            raise PreferenceError(f"no comparison against baseline {baseline!r}; the files hold {', '.join(baselines)}")
        table = table[table["baseline"] == baseline]
        baselines = [baseline]
    groups = {b: table[table["baseline"] == b] for b in baselines}
    seen: dict[str, str] = {}
    for b, g in groups.items():
        for m in pd.unique(g["model"]):
            if m in seen:
                raise PreferenceError(f"model {m!r} is compared with two baselines ({seen[m]}, {b}); pick one with "
                                      "--baseline")
            seen[str(m)] = b
    models: dict[str, Any] = {}
    glm: dict[str, Any] = {}
    for b, g in groups.items():
        part = summarize_preferences(g.reset_index(drop=True), n_boot=bootstrap, seed=seed)
        models.update(part["models"])
        glm[b] = part["glm"]
    # leaderboard order: best length-controlled win rate first
    models = dict(sorted(models.items(), key=lambda kv: -(kv[1]["lc_win_rate"] if kv[1]["lc_win_rate"] is not None
                                                          else -1)))
    return PairwiseSummary(baseline=baselines[0] if len(baselines) == 1 else None, baselines=baselines, models=models,
                           glm=glm, files=[str(f) for f in files], length_unit=units)


# -- answers ------------------------------------------------------------------------------------


async def answer_async(questions: PathLike, model_name: str, out: PathLike, *, base_url: str | None = None,
                       hf: str | None = None, model_id: str | None = None, api_key_env: str | None = None,
                       concurrency: int | None = None, system_prompt: str | None = None, max_tokens: int | None = None,
                       temperatures: PathLike | None = None, keep_think: bool = False, timeout: float = 300.0,
                       attempts: int = 6, rubric: str = "alignbench", cache: CacheArg = False,
                       options: dict[str, Any] | None = None, on_event: EventHandler | None = None,
                       before_start: Any = None, batch: bool | BatchOptions = False,
                       max_cost: float | None = None, dry_run: bool = False) -> Any:
    """Generate the model under test's missing answers into ``out`` (the file is the resume record);
    returns an ``AnswerRun`` with what was kept, written and failed. ``batch`` and ``max_cost`` as in
    ``score``; ``batch`` keeps its replies in the reply cache (the default file unless ``cache`` names
    one), since that is where a re-run finds them. ``dry_run`` sends nothing and returns the estimate
    (``alignbench.cost.Estimate``) of the questions not yet answered."""
    from alignbench.answering import (
        AnswerSettings,
        default_max_tokens,
        generate_answers,
        load_temperatures,
        model_config,
    )

    rub = load_rubric(rubric)
    qs = load_questions(questions, rub)
    backend, mid = ("hf", hf) if hf is not None else ("openai", model_id or model_name)
    settings = AnswerSettings(model_name=model_name, model_id=mid, backend=backend,
                              temperatures=load_temperatures(temperatures, rub),
                              max_tokens=max_tokens or default_max_tokens(), system_prompt=system_prompt or None,
                              keep_think=keep_think)
    config = model_config(base_url=base_url, hf=hf, model_id=mid, api_key_env=api_key_env, timeout=timeout,
                          concurrency=concurrency, options={k: v for k, v in (options or {}).items() if v is not None})
    if dry_run:
        store, owned = open_store(None if batch and cache is False else cache)
        try:
            done = _answered_ids(Path(out))
            return estimate_for(config, [settings.request(q) for q in qs if q.id not in done], store,
                                batch=bool(batch))
        finally:
            if owned:
                store.close()
    channel = channel_for(batch, max_cost, [config])
    store, owned = open_store(None if batch and cache is False else cache)
    client, source = channel.open(config, store) if channel else (make_client(config), None)
    try:
        if channel:
            done = _answered_ids(Path(out))
            channel.check_start([(config, [settings.request(q) for q in qs if q.id not in done])], store)
        result = await generate_answers(qs, client, settings, Path(out), store, retry=RetryPolicy(attempts=attempts),
                                        on_event=on_event, before_start=before_start, source=source)
        result.settings = settings
    finally:
        await client.aclose()
        await close_channel(channel)
        if owned:
            store.close()
    if channel:
        channel.settle()
    return result


def _answered_ids(path: Path) -> set[int]:
    """Question ids already answered in an answer file (for estimates; the file is read again properly)."""
    if not path.is_file():
        return set()
    ids = set()
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            ids.add(int(safejson.loads(line)["question_id"]))
        except (ValueError, KeyError, TypeError):
            continue
    return ids


answer = _blocking(answer_async)


# -- run: answer -> score -> report ----------------------------------------------------------------

RUN_PHASES = ("check", "answer", "score", "report")


async def _check_judge(config: ModelConfig) -> None:
    """A judge that is misconfigured (key, package) or whose server does not answer fails here, before
    the model under test is asked anything: answers cost money or GPU time, a dead judge costs nothing."""
    client = make_client(config)
    try:
        await Engine(client, NullStore(), serve_hint=config.serve_hint).check(uncached=1)
    finally:
        await client.aclose()


def _run_report(run_dir: Path, seed: int, warn: Callable[[str], None] | None) -> Path | None:
    """report.md in the run folder. The scores are already on disk when this runs, so a report that cannot
    be written is a warning, not a failed run (``report`` can write it later)."""
    try:
        return report([run_dir], run_dir / "report.md", seed=seed, warn=warn).path
    except (ValueError, OSError) as exc:  # RunError is a ValueError
        if warn is not None:
            warn(f"report.md not written: {exc}")
        return None


async def run_async(questions: PathLike, *, model_name: str, base_url: str | None = None, hf: str | None = None,
                    judge: str = "critiquellm", judge_model: str | None = None,
                    judge_base_url: Sequence[str] | str | None = None, rubric: str | None = None,
                    out: PathLike | None = None, model_id: str | None = None, api_key_env: str | None = None,
                    concurrency: int | None = None, system_prompt: str | None = None, max_tokens: int | None = None,
                    temperatures: PathLike | None = None, keep_think: bool = False, timeout: float = 300.0,
                    attempts: int = 6, options: dict[str, Any] | None = None, judge_concurrency: int | None = None,
                    judge_timeout: float = 120.0, judge_max_tokens: int | None = None, parse_retries: int = 1,
                    max_answer_chars: int | None = 12000, cache: CacheArg = None, seed: int = 0,
                    write_report: bool = True, on_event: EventHandler | None = None,
                    on_phase: Callable[[str, Path], None] | None = None,
                    before_start: Callable[[AnswerRun], None] | None = None,
                    on_answers: Callable[[AnswerRun], None] | None = None,
                    warn: Callable[[str], None] | None = None) -> Run:
    """Answer the questions with the model under test, judge the answers, write the report: one run
    folder (``out``, default ``reports/<model>__<judge>__<rubric>``) with ``answers.jsonl``, the
    judgments, ``summary.json`` (whose manifest records under ``generation`` how the answers were made:
    ``AnswerSettings.record()``) and ``report.md``. Returns the finished ``Run``, with ``answers`` (the
    ``AnswerRun``) and ``report`` (the report's path, None when it could not be written) filled in.

    The judge is checked first (its preset, key, package and server): a judge that cannot work fails
    before any answer is paid for. Calling again resumes: answers already in ``answers.jsonl`` are not
    asked again and judge replies come from the judge reply cache (``cache``, as in ``score``; answers
    themselves are samples and are not cached). When some questions get no answer, ``IncompleteAnswers``
    is raised before any judging (the answers received are kept in the file).

    The model under test is ``base_url`` (an OpenAI-compatible server; ``model_id`` is the id sent,
    default ``model_name``; ``api_key_env`` names the variable holding its key) or ``hf`` (a local
    transformers folder; ``options`` ``device``, ``batch_size``); ``concurrency``, ``timeout``,
    ``max_tokens``, ``temperatures``, ``system_prompt``, ``keep_think`` as in ``answer``. The judge is
    ``judge``, ``judge_model``, ``judge_base_url``, ``rubric``, ``judge_concurrency``, ``judge_timeout``,
    ``judge_max_tokens``, ``parse_retries``, ``max_answer_chars``; ``attempts`` is for both.

    Callbacks, all optional: ``on_event`` gets the progress events of the answering and of the judging;
    ``on_phase`` the name of each phase as it begins (``RUN_PHASES``: check, answer, score, report) and
    the run folder, so a caller knows which step an exception came from (one raised before the first
    call is about the judge's settings); ``before_start`` the ``AnswerRun`` before any
    question is asked (what is kept from an earlier call), ``on_answers`` the finished ``AnswerRun``
    before the judging starts; ``warn`` the report's warnings. ``write_report=False`` skips report.md."""
    judging = JudgeSettings.build(judge_model=judge_model, base_url=judge_base_url, rubric=rubric,
                                  concurrency=judge_concurrency, timeout=judge_timeout, max_tokens=judge_max_tokens,
                                  attempts=attempts, parse_retries=parse_retries, max_answer_chars=max_answer_chars,
                                  cache=cache)
    config = judging.config(judge)
    run_dir = Path(out) if out is not None else default_run_dir(model_name, config.name, config.rubric)
    answers_path = run_dir / "answers.jsonl"

    def step(name: str) -> None:
        if on_phase is not None:
            on_phase(name, run_dir)

    step("check")
    await _check_judge(config)
    step("answer")
    answered = await answer_async(questions, model_name, answers_path, base_url=base_url, hf=hf, model_id=model_id,
                                  api_key_env=api_key_env, concurrency=concurrency, system_prompt=system_prompt,
                                  max_tokens=max_tokens, temperatures=temperatures, keep_think=keep_think,
                                  timeout=timeout, attempts=attempts, options=options, on_event=on_event,
                                  before_start=before_start)
    if on_answers is not None:
        on_answers(answered)
    if not answered.complete:
        from alignbench.answering import IncompleteAnswers

        raise IncompleteAnswers(answered, answers_path)
    step("score")
    # Empty answers are the model's real output (kept after fresh samples): judge them as they are.
    runs = await score_async(questions, answers_path, judge, model=model_name, out=run_dir, allow_empty=True,
                             seed=seed, on_event=on_event, settings=judging,
                             extra_manifest={"generation": answered.settings.record()})  # type: ignore[union-attr]
    result = runs[model_name]
    result.answers = answered
    if write_report:
        step("report")
        result.report = _run_report(run_dir, seed, warn)
    return result


run = _blocking(run_async)


# -- show, prompt, judges: reading without calling any model ----------------------------------------


class NotFoundError(InputError):
    """Something asked for by id that the given file does not hold (a question id, an answer to that
    question): an ``InputError`` whose message stands alone; ``path`` names the file."""

    def __init__(self, message: str, path: PathLike) -> None:
        ValueError.__init__(self, message)
        self.path, self.line = str(path), None


@dataclass
class RunView:
    """What ``alignbench show`` shows of a finished run, computed once for any caller: the run and its
    rubric, the comparison with a baseline run (paired significance tests), and its trust section
    (human reviews, judge variance, bias audit). With ``question_id`` it is that question's judgments
    only (``judgments``), without comparison and trust, which are about the whole run."""

    run: Run
    rubric: Rubric
    baseline: Run | None = None
    comparison: Comparison | None = None
    trust: RunTrust | None = None
    question_id: int | None = None
    judgments: list[Judgment] = field(default_factory=list)  # the question's, with question_id
    question: Question | None = None  # with question_id: its text, from the run folder (or the recorded file)
    answer: Answer | None = None  # with question_id: the answer that was judged
    texts_note: str | None = None  # why the question or answer text is missing

    def as_json(self) -> dict[str, Any] | list[dict[str, Any]]:
        """What ``show --format json`` prints: the summary with ``comparison`` (with a baseline) and
        ``trust``; with ``question_id`` the list of that question's judgments."""
        if self.question_id is not None:
            return [j.model_dump(mode="json") for j in self.judgments]
        payload = self.run.summary.as_json()
        if self.comparison is not None:
            payload["comparison"] = self.comparison.as_dict()
        if self.trust is not None:
            payload["trust"] = self.trust.as_dict()
        return payload


def show(run_dir: PathLike, *, baseline_run: PathLike | None = None, question_id: int | None = None,
         compare_runs: Sequence[PathLike] = (), audit: bool = True, seed: int = 0) -> RunView:
    """A finished run as ``alignbench show`` shows it; never calls a judge. ``baseline_run``: an earlier
    run folder of the same judge and rubric, compared with paired significance tests (and audited
    together). ``compare_runs``: compare folders whose pairwise verdicts feed the position audit.
    ``audit=False`` leaves out the bias audit (it reads the answer files). ``question_id``: only that
    question's judgments (a ``RunError`` when the run has none). ``RunView.as_json()`` is what
    ``show --format json`` prints."""
    from alignbench.reporting.compare import compare_runs as compare_two
    from alignbench.rundir import load_answer_texts, unique_labels
    from alignbench.trust.runs import run_trust

    folder = Path(run_dir)
    loaded = load_run(folder, questions=baseline_run is not None or question_id is not None)
    base = load_run(baseline_run) if baseline_run is not None else None
    rub = load_rubric(loaded.rubric_id.split("@")[0])
    if question_id is not None:
        mine = [j for j in loaded.judgments if j.question_id == question_id]
        if not mine:
            raise RunError(f"{run_dir}: no judgment of question {question_id}")
        answers, note = load_answer_texts(loaded)
        return RunView(run=loaded, rubric=rub, baseline=base, question_id=question_id, judgments=mine,
                       question=(loaded.questions or {}).get(question_id), answer=answers.get(question_id),
                       texts_note="; ".join(n for n in (loaded.questions_note, note) if n) or None)
    comparison = None
    if base is not None:
        unique_labels([base, loaded])
        comparison = compare_two(base, loaded, rub, seed=seed)
    trust = run_trust(loaded, baseline=base, compare_dirs=[Path(d) for d in compare_runs], audit=audit, seed=seed)
    return RunView(run=loaded, rubric=rub, baseline=base, comparison=comparison, trust=trust)


@dataclass(frozen=True)
class JudgePrompt:
    """The exact judge request for one answer (``prompt``): its messages as sent, the rubric (with its
    version stamp) and the judge's decoding settings."""

    request: ModelRequest
    rubric: Rubric
    config: ModelConfig

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.request.messages)

    def as_dict(self) -> dict[str, Any]:
        """What ``prompt --format json`` prints: the messages, the rubric id and the decoding."""
        return {"messages": self.messages, "rubric": self.rubric.id, **self.config.decoding.model_dump()}


def prompt(questions: PathLike | None, question_id: int, *, answers: PathLike | None = None,
           model: str | None = None, judge: str | None = None, rubric: str | None = None, protocol: str | None = None,
           upstream: PathLike | None = None) -> JudgePrompt:
    """The judge prompt for one question exactly as ``score`` would send it; calls nothing. The answer is
    taken from ``answers`` (of ``model`` when the file holds several) or is the placeholder ``{answer}``.
    A question id the file lacks, or an answer file without that question, is a ``NotFoundError``.
    ``upstream``: as in ``score`` (the prompt that checkout's own script would send; for a dialogue, its
    first judged turn)."""
    from alignbench.prompts import build_request

    settings = JudgeSettings.build(rubric=rubric, protocol=protocol, upstream=upstream)
    proto, questions, judge, settings = _upstream(questions, judge, settings)
    config = _judge_config(judge, settings, proto)
    rub = proto.rubric() if proto is not None else load_rubric(config.rubric)
    qs = {q.id: q for q in (proto.load_questions(questions, rub) if proto is not None
                            else load_questions(questions, rub))}
    if question_id not in qs:
        raise NotFoundError(f"question_id {question_id} is not in {questions}", questions)
    question = qs[question_id]
    answer = Answer(question_id=question_id, model=model or "model", text="{answer}",
                    turns=("{answer}",) * question.model_turns if question.model_turns > 1 else ())
    if answers is not None:
        found = [a for a in load_answers(answers, model=model) if a.question_id == question_id]
        if not found:
            raise NotFoundError(f"{answers} has no answer to question {question_id}", answers)
        answer = found[0]
    if proto is not None:
        request = proto.plan_single([(question, answer)], rub, config)[0].request
    else:
        request, _ = build_request(rub, question, answer, config.decoding, system_role=config.system_role)
    return JudgePrompt(request=request, rubric=rub, config=config)


@dataclass(frozen=True)
class JudgeCatalog:
    """Every judge preset and whether this machine can use it (``judge_catalog``), plus each backend's
    default server (where a preset that names none sends its requests)."""

    presets: list[dict[str, Any]]  # one row per preset, by name
    default_urls: dict[str, str | None]  # backend -> default server URL

    def as_json(self) -> list[dict[str, Any]]:
        """What ``judges --format json`` prints: the preset rows."""
        return self.presets


def _key_status(spec: dict[str, Any]) -> str:
    """Whether a preset's key is present: by whether its variable is set; the value is never read out."""
    import os

    env = spec.get("api_key_env")
    if not env:
        return "not needed"
    if os.environ.get(env):
        return "set"
    return "optional" if spec.get("key_required", True) is False else "not set"


def judge_catalog() -> JudgeCatalog:
    """The judge presets with what each needs and has here: ``package`` ("ok" or "missing …", checked with
    ``importlib.util.find_spec``, nothing heavy is imported) and the ``install`` command when missing;
    ``key`` ("set", "not set", "optional", "not needed": whether ``key_env`` is set, never its value);
    ``backend``, ``model``, ``base_url`` (a list), ``rubric``, ``options``. No secret is in the result."""
    from alignbench.judges import backends, load_presets

    registry = backends()
    rows = []
    for name, spec in sorted(load_presets().items()):
        backend = spec["backend"]
        missing = registry[backend].missing_packages()
        urls = spec.get("base_url")
        urls = [u.strip() for u in urls.split(",")] if isinstance(urls, str) else list(urls or [])
        rows.append({
            "name": name, "backend": backend, "model": spec["model"],
            "base_url": urls, "rubric": spec.get("rubric", "alignbench"),
            "package": "ok" if not missing else f"missing {', '.join(missing)}",
            "install": None if not missing else (registry[backend].install or f"pip install {' '.join(missing)}"),
            "key_env": spec.get("api_key_env"),
            "key": _key_status(spec),
            "options": spec.get("options", {}),
        })
    return JudgeCatalog(presets=rows, default_urls={n: b.default_url for n, b in sorted(registry.items())})


# -- reports ------------------------------------------------------------------------------------


def report(run_dirs: Sequence[PathLike], out: PathLike | None = None, *, baseline_run: PathLike | None = None,
           lang: str = "zh", charts: bool = True, seed: int = 0, warn: Any = None, bridge: PathLike | None = None,
           labels: PathLike | None = None, label_scale: str | None = None,
           picked: Sequence[str] | None = ("sample",), compare_runs: Sequence[PathLike] = (),
           audit: bool = True) -> Any:
    """Write a Markdown report (with charts) from finished run folders; never calls a judge. A folder
    holding one run folder per model stands for all of them. Returns a ``ReportResult``.

    ``bridge``: a file from ``bridge(..., save=)``; runs of its old judge are shown on the new judge's
    scale, marked as bridged. ``labels`` (a labels JSONL or a run folder's reviews, see ``calibrate``)
    adds a calibrated column and section. ``compare_runs``: compare folders whose pairwise verdicts feed
    the position audit. ``audit=False`` leaves out the bias section (it reads every answer file)."""
    from alignbench.reporting.markdown import write_report
    from alignbench.trust.runs import load_labels, read_bridge

    if lang not in ("zh", "en"):
        raise InputError("--lang", None, f"must be zh or en, not {lang!r}")
    dirs = [Path(d) for d in run_dirs]
    target = Path(out) if out is not None else (dirs[0] / "report.md" if len(dirs) == 1 else Path("reports") / "report.md")
    if target.suffix.lower() != ".md":
        raise InputError(target, None, "expected a .md file name for the report")
    label_set = load_labels(labels, picked) if labels is not None else None  # bad lines fail before anything
    loaded_bridge = (read_bridge(bridge), str(bridge)) if bridge is not None else None
    return write_report(dirs, target, baseline_dir=Path(baseline_run) if baseline_run else None, lang=lang,
                        charts=charts, seed=seed, warn=warn, bridge=loaded_bridge, labels=label_set,
                        label_scale=label_scale, compare_dirs=[Path(d) for d in compare_runs], audit=audit)


# -- judge trust (issue 14) ------------------------------------------------------------------------


def calibrate(runs: PathLike | Sequence[PathLike], labels: PathLike, *, label_scale: str | None = None,
              lam: float | str = "auto", method: str = "analytic", min_labels: int = 10,
              picked: Sequence[str] | None = ("sample",), n_boot: int = 2000, seed: int = 0) -> CalibrationSet:
    """Human-scale scores of each run from its judge's scores plus human labels of some of its answers
    (prediction-powered inference, ``trust.calibrate``), with CIs that include the judge's error.

    ``labels``: a JSONL of ``question_id``, ``model``, ``score`` (on ``label_scale`` such as "1-5", else
    the rubric's scale), or a run folder whose ``reviews.jsonl`` holds the labels (``picked``: which
    reviews count, default those from the viewer's random-sample queue; None for all). One calibration
    per run folder (per model). Returns a ``trust.runs.CalibrationSet`` (``.runs[label]`` is a
    ``trust.Calibration``; ``.as_dict()`` is what ``calibrate --format json`` prints)."""
    from alignbench.trust.runs import calibrate_runs, load_labels, load_runs

    label_set = load_labels(labels, picked)  # bad lines fail before any run is read
    if method not in ("analytic", "bootstrap"):
        raise InputError("--ci", None, f"must be analytic or bootstrap, not {method!r}")
    if lam != "auto":
        try:
            lam = float(lam)
        except ValueError:
            raise InputError("--lam", None, f"must be auto or a number, not {lam!r}") from None
    loaded = load_runs([runs] if isinstance(runs, str | Path) else runs)
    return calibrate_runs(loaded, label_set, label_scale=label_scale, lam=lam, method=method,  # type: ignore[arg-type]
                          min_labels=min_labels, n_boot=n_boot, seed=seed)


def bridge(old: PathLike | Sequence[PathLike], new: PathLike | Sequence[PathLike], *, save: PathLike | None = None,
           n_boot: int = 500, seed: int = 0) -> BridgeFit:
    """Fit a monotone map from the old judge's scale to the new judge's on the same answers judged by
    both (``trust.fit_bridge``: isotonic, with a bootstrap band), with their agreement overall and per
    category and every score on both scales. ``save`` writes the bridge for ``report(..., bridge=FILE)``.
    Returns a ``trust.BridgeFit``."""
    from alignbench.trust.runs import fit_runs_bridge, load_runs

    as_list = (lambda x: [x] if isinstance(x, str | Path) else list(x))  # noqa: E731
    fit = fit_runs_bridge(load_runs(as_list(old)), load_runs(as_list(new)), n_boot=n_boot, seed=seed)
    if save is not None:
        target = Path(save)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(fit.bridge.as_dict(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return fit


def audit(runs: PathLike | Sequence[PathLike], *, compare_runs: Sequence[PathLike] = (), n_boot: int = 300,
          seed: int = 0) -> list[BiasAudit]:
    """Bias audits of finished runs (``trust.runs.audit_runs``): length (characters and jieba words,
    within each question when several runs answered it), Markdown format, position (from the pairwise
    verdicts of ``compare_runs``), judge/model families. One ``BiasAudit`` per judge."""
    from alignbench.trust.runs import audit_runs, load_runs

    loaded = load_runs([runs] if isinstance(runs, str | Path) else runs)
    return audit_runs(loaded, compare_dirs=[Path(d) for d in compare_runs], n_boot=n_boot, seed=seed)


# -- probes (docs/trust.md §6) ----------------------------------------------------------------------


@dataclass
class ProbePlan:
    """``probe``'s plan: the run probed and, per perturbation, the plan that judges its rewritten answers
    with the run's judge (every prompt rendered; ``--dry-run`` prints ``requests()``)."""

    run: Run
    plans: dict[str, ScorePlan]  # perturbation -> plan of its rewritten answers
    answers: dict[str, list[Answer]]  # perturbation -> the rewritten answers

    def requests(self) -> list[tuple[ModelConfig, list[ModelRequest]]]:
        """Every request, under the one judge (one estimate row)."""
        plans = list(self.plans.values())
        return [(plans[0].config, [it.request for p in plans for it in p.items])] if plans else []


@takes_settings("judge")
def plan_probe(run_dir: PathLike, perturb: str | Sequence[str] = ("markdown", "plain", "filler", "summary-pad"), *,
               settings: JudgeSettings) -> ProbePlan:
    """Rewrite each answer the run judged in style only (``probes.REWRITES``) and plan judging the rewrites
    with the run's judge, rebuilt from its manifest (model id, server, rubric, decoding); a setting given
    here (e.g. ``base_url``) goes over the manifest's. Calls nothing."""
    from alignbench.probes import REWRITES, check_perturbations, settings_from_manifest

    run = load_run(run_dir)
    try:
        names = check_perturbations(perturb.split(",") if isinstance(perturb, str) else perturb)
        recorded = settings_from_manifest(run.summary.run.judge, run.summary.run.max_answer_chars)
    except ValueError as exc:
        raise InputError("--perturb", None, str(exc)) from None
    defaults = JudgeSettings.model_fields
    given = {k for k in settings.model_fields_set if getattr(settings, k) != defaults[k].default}
    settings = settings.replace(**{k: v for k, v in recorded.items() if k not in given}, canary=False)
    from alignbench.rundir import find_recorded, load_answer_texts

    qpath = find_recorded(str(run.summary.run.questions.get("path", "")), run.dir)
    if qpath is None or run.questions is None:
        raise InputError(str(run.dir), None, f"cannot probe: {run.questions_note or 'no question file'}")
    questions = run.questions
    texts, problem = load_answer_texts(run)
    if problem:
        raise InputError(str(run.dir), None, f"cannot probe: {problem}")
    judge = run.summary.run.judge["name"]
    plans, answers = {}, {}
    for name in names:
        fn = REWRITES[name].fn
        rewritten = []
        for qid, a in sorted(texts.items()):
            q = questions.get(qid)
            qtext = q.question if q is not None else ""
            rewritten.append(a.model_copy(update={"text": fn(qtext, a.text),
                                                  "turns": tuple(fn(qtext, t) for t in a.turns)}))
        answers[name] = rewritten
        plans[name] = _plan_one(qpath, rewritten, judge, model=None, allow_empty=True, samples=1, settings=settings)
    return ProbePlan(run=run, plans=plans, answers=answers)


@takes_settings("call")
async def probe_async(p: ProbePlan, *, force: bool = True, n_boot: int = 1000, seed: int = 0,
                      on_event: EventHandler | None = None, settings: JudgeSettings) -> dict[str, Any]:
    """Judge a probe plan through the normal engine (cache, batch, ``max_cost``: one budget for every
    perturbation) into ``<run>/probes/<name>/`` and write ``<run>/probes.json``: per perturbation, the
    paired score change (rewrite − original) with its CI overall and per category, and the share of
    answers whose score moved (``probes.effects``). Returns what ``probes.json`` holds."""
    from alignbench.probes import PROBES_DIR, PROBES_FILE, REWRITES, effects

    run, plans = p.run, p.plans
    configs = [pl.config for pl in plans.values()]
    channel = channel_for(settings.batch, settings.max_cost, configs[:1])
    store, owned = open_store(settings.cache)
    try:
        if channel:
            channel.check_start(p.requests(), store)
        out: dict[str, Any] = {}
        cats = plans[next(iter(plans))].rubric.category_names() if plans else []
        for name, plan in plans.items():
            target = run.dir / PROBES_DIR / folder_name(name)
            runs = await run_score_plan(plan, out=target, force=force, seed=seed, on_event=on_event, channel=channel,
                                        settings=settings, cache=store, extra_manifest={"probe": name,
                                                                                         "probed_run": str(run.dir)})
            probed = next(iter(runs.values()))
            with RunFolder(target) as folder:
                folder.write_jsonl("answers.jsonl", [a.model_dump(mode="json") for a in p.answers[name]])
            rw = REWRITES[name]
            out[name] = {"changes": rw.changes, "keeps": rw.keeps, "dir": str(target),
                         **effects(run.judgments, probed.judgments, cats, n_boot=n_boot, seed=seed)}
    finally:
        if owned:
            store.close()
    payload = {"run": str(run.dir), "judge": run.summary.run.judge.get("name"),
               "bootstrap": {"resamples": n_boot, "seed": seed, "level": 0.95}, "probes": out}
    with RunFolder(run.dir) as folder:
        old = {}
        if (run.dir / PROBES_FILE).is_file():
            from alignbench import safejson

            saved = safejson.read_json(run.dir / PROBES_FILE)
            old = saved.get("probes", {}) if isinstance(saved, dict) else {}
        payload["probes"] = {**old, **out}
        folder.write_json(PROBES_FILE, payload)
    return payload


probe = _blocking(probe_async)


def canary_history(judge: str | None = None, *, cache: PathLike | None = None) -> list[dict[str, Any]]:
    """The judge canary's history (``canary.py``; beside the reply cache, or the file ``cache`` names),
    oldest first, of one judge name or of every judge: each record's time, judge identity (name, model id,
    hosts, served model ids), rubric, runs and per-item scores."""
    from alignbench.canary import history_path, read_history

    return read_history(history_path(cache), judge)


__all__ = ["RUN_PHASES", "ComparePlan", "EnsemblePlan", "JudgeCatalog", "JudgePrompt", "JudgeSettings", "NotFoundError",
           "PairwiseRun",
           "PreferenceError", "ProbePlan", "Run", "RunError", "RunView", "ScorePlan", "answer", "answer_async", "audit", "bridge",
           "calibrate", "compare", "compare_async", "judge_catalog", "judge_config", "load_run", "meta_eval",
           "meta_eval_async", "open_store", "plan_probe", "probe", "probe_async", "canary_history", "plan_compare", "plan_meta_eval", "plan_score", "prompt",
           "read_preferences", "report", "run", "run_async", "run_score_plan", "score", "score_async",
           "score_from_plan", "score_from_plan_async", "show", "winrate", "Judgment"]
