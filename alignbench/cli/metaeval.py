"""Trusting the judge: ``alignbench meta-eval`` (agreement with human labels, judges × protocols),
judge ensembles in ``score --judge a,b``, and the per-question view of ``show --question-id``.

Judging reuses the ``score`` and ``compare`` pipelines as they are (their ``_run`` helpers: server
check, progress bar, cache-first Runner with retries), so meta-eval has the same cache, resume and
concurrency behaviour; this module only maps human-labelled rows onto them and prints the figures.
"""

from __future__ import annotations

import asyncio
import io
import json
from contextlib import redirect_stdout
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from alignbench.cache import NullStore, ReplyStore
from alignbench.cli.app import app, console, err_console, fail
from alignbench.cli.score import (
    AttemptsOpt,
    CacheOpt,
    ConcurrencyOpt,
    FormatOpt,
    JudgeModelOpt,
    JudgeUrlOpt,
    MaxTokensOpt,
    NoCacheOpt,
    RubricOpt,
    TemperatureOpt,
    TimeoutOpt,
    _judge_config,
    _make_judge,
    _print_messages,
    _rubric,
    _ServerDown,
    _with_protocol,
)
from alignbench.data import InputError
from alignbench.ensemble import combine, disagreement, ensemble_name
from alignbench.judges import JudgeConfig
from alignbench.metaeval import (
    METRICS,
    N_BOOTSTRAP,
    SCALE_NOTE,
    MetaData,
    PairOutcome,
    load_meta_files,
    pairwise_metrics,
    pointwise_metrics,
)
from alignbench.prompts import build_request
from alignbench.rubrics import PROTOCOLS, Rubric
from alignbench.runner import FatalJudgeError
from alignbench.scoring import Item, RunInfo, read_run, slug, write_run
from alignbench.types import Answer, Judgment, Status

_WINNER = {"model": "1", "baseline": "2", "tie": "tie"}  # compare's un-swapped winner -> which response


# ================================================================================================
# alignbench meta-eval
# ================================================================================================


def _split(value: str, what: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise fail(f"{what}: give at least one name")
    if len(set(names)) != len(names):
        raise fail(f"{what}: {value!r} names the same one twice")
    return names


def _point_items(data: MetaData, rub: Rubric, config: JudgeConfig, max_answer_chars: int | None) -> list[Item]:
    items = []
    for row in data.points:
        answer = Answer(question_id=row.question.id, model=row.model or "response", text=row.response)
        request, truncated = build_request(rub, row.question, answer, config.decoding, max_answer_chars,
                                           system_role=config.system_role)
        items.append(Item(row.question, answer, request, truncated))
    return items


def _pair_items(data: MetaData, rub: Rubric, config: JudgeConfig, max_answer_chars: int | None):
    """Both orders of every pair through compare's planner: response_1 plays "model", response_2
    "baseline"; each pair gets its own question id so pairs on one question stay apart."""
    from alignbench.pairwise.compare import plan_pairs

    triples = []
    for i, row in enumerate(data.pairs, start=1):
        q = row.question.model_copy(update={"id": i})
        triples.append((q, Answer(question_id=i, model="response_1", text=row.response_1),
                        Answer(question_id=i, model="response_2", text=row.response_2)))
    return plan_pairs(triples, rub, config, max_answer_chars)


def _judge_combo(data: MetaData, rub: Rubric, config: JudgeConfig, store, attempts: int, parse_retries: int,
                 max_answer_chars: int | None) -> tuple[list[Judgment], list[Any], dict[str, Any]]:
    """Judge every pointwise row and both orders of every pair for one (judge, protocol)."""
    from alignbench.cli.score import _run as run_points

    judgments: list[Judgment] = []
    pair_judgments: list[Any] = []
    usage: dict[str, Any] = {"calls": 0, "cached_replies": 0, "retries": 0, "call_errors": 0}

    def add(runner) -> None:
        for key, value in (("calls", runner.stats.calls), ("cached_replies", runner.stats.cached),
                           ("retries", runner.stats.retries), ("call_errors", runner.stats.errors)):
            usage[key] += value

    if data.points:
        items = _point_items(data, rub, config, max_answer_chars)
        judgments, runner = asyncio.run(run_points(items, rub, _make_judge(config), store, config, attempts,
                                                   parse_retries))
        add(runner)
    if data.pairs:
        from alignbench.cli.compare import _run as run_pairs
        from alignbench.pairwise.compare import assemble

        pitems = _pair_items(data, rub, config, max_answer_chars)
        verdicts, runner = asyncio.run(run_pairs(pitems, _make_judge(config), store, config, attempts, parse_retries))
        add(runner)
        pair_judgments = assemble(pitems, verdicts, rub, config.name)  # sorted by pair index
    return judgments, pair_judgments, usage


def _outcomes(data: MetaData, pair_judgments: list[Any]) -> list[PairOutcome]:
    out = []
    for row, pj in zip(data.pairs, pair_judgments, strict=True):
        first, second = pj.orders  # model_first = response_1 shown as 助手1
        failed = next((v.status.value for v in pj.orders if v.status is not Status.OK), "ok")
        out.append(PairOutcome(label=row.label, status=failed,
                               first=_WINNER[first.winner] if first.status is Status.OK and first.winner else None,
                               second=_WINNER[second.winner] if second.status is Status.OK and second.winner else None))
    return out


@app.command("meta-eval")
def meta_eval(
    data: Annotated[list[Path], typer.Option("--data", "-d", help="Human-labelled file (JSONL or a JSON list); repeat for several. Pointwise: response + human_score; pairwise: response_1/response_2 + label (CritiqueLLM 0/1/2, LLMBar output_1/output_2 + 1/2).")],
    judge: Annotated[str, typer.Option("--judge", "-j", help="Judge preset(s) or BACKEND:MODEL, comma-separated.")] = "critiquellm",
    protocol: Annotated[str, typer.Option("--protocol", "-p", help=f"Protocol(s), comma-separated: {', '.join(PROTOCOLS)}.")] = "multi-dimension",
    judge_model: JudgeModelOpt = None,
    judge_base_url: JudgeUrlOpt = None,
    rubric: RubricOpt = None,
    category: Annotated[str | None, typer.Option("--category", help="Category for rows without one (LLMBar has none; 基本任务 fits instruction following).")] = None,
    concurrency: ConcurrencyOpt = 16,
    timeout: TimeoutOpt = 120.0,
    attempts: AttemptsOpt = 6,
    parse_retries: Annotated[int, typer.Option("--parse-retries", min=0, help="Fresh samples asked after an unparseable judgment.")] = 1,
    max_answer_chars: Annotated[int | None, typer.Option("--max-answer-chars", help="Clip longer answers in the prompt.")] = 12000,
    temperature: TemperatureOpt = None,
    max_tokens: MaxTokensOpt = None,
    cache: CacheOpt = None,
    no_cache: NoCacheOpt = False,
    bootstrap: Annotated[int, typer.Option("--bootstrap", min=0, help="Bootstrap resamples for the 95% CIs (0: none).")] = N_BOOTSTRAP,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed.")] = 0,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Also write meta_eval.json and every judgment (per judge and protocol) here.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would be sent and the first prompt; call nothing.")] = False,
    fmt: FormatOpt = "table",
) -> None:
    """How well each judge × protocol agrees with human labels: correlations for scored answers,
    agreement and swap consistency for labelled pairs.

    Same cache as ``score``: a re-run (or a run killed half-way) pays only for what is missing.
    """
    if fmt not in ("table", "json"):
        raise fail(f"--format must be table or json, not {fmt!r}")
    judges, protocols = _split(judge, "--judge"), _split(protocol, "--protocol")
    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown:
        raise fail(f"unknown protocol {unknown[0]!r}; choose from {', '.join(PROTOCOLS)}")
    combos: list[tuple[str, str, JudgeConfig, Rubric]] = []
    for j in judges:
        base = _judge_config(j, judge_model, judge_base_url, rubric, concurrency=concurrency, timeout=timeout,
                             temperature=temperature, max_tokens=max_tokens)
        for p in protocols:
            config = _with_protocol(base, p)
            combos.append((j, p, config, _rubric(config.rubric)))
    try:
        meta = load_meta_files(data, combos[0][3], default_category=category)
    except InputError as exc:
        raise fail(str(exc)) from None
    if meta.pairs:
        lacking = sorted({r.id for *_, r in combos if not r.templates.pairwise_user})
        if lacking:
            raise fail(f"the data has pairwise rows but rubric {', '.join(lacking)} has no pairwise template "
                       "(templates.pairwise_user)")
    for path, info in meta.files.items():
        missing = info["n_pointwise"] + info["n_pairwise"] - info["n_with_reference"]
        needing = sorted({p for _, p, _, r in combos if r.include_reference})
        if missing and needing:
            err_console.print(f"[yellow]warning:[/] {missing} row(s) of {escape(path)} have no reference answer; "
                              f"protocol {', '.join(needing)} judges them without one "
                              "(use --protocol reference-free for reference-free data)", highlight=False)
    if dry_run:
        _dry_run(meta, combos, max_answer_chars)
        return
    store = NullStore() if no_cache else ReplyStore(cache)
    results: dict[str, dict[str, Any]] = {}
    try:
        for j, p, config, rub in combos:
            if fmt != "json":
                err_console.print(f"[dim]judging with {escape(j)} · {p} ({rub.id})[/]", highlight=False)
            judgments, pair_judgments, usage = _judge_combo(meta, rub, config, store, attempts, parse_retries,
                                                            max_answer_chars)
            entry = _metrics(meta, rub, judgments, pair_judgments, bootstrap, seed)
            results.setdefault(j, {})[p] = {"judge": config.public(), "rubric": rub.id, **entry, "usage": usage}
            if out is not None:
                _write_combo(out / f"{slug(j)}__{p}", meta, judgments, pair_judgments)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted:[/] every reply received so far is in the cache; "
                          "run the same command again to finish without paying twice")
        raise typer.Exit(130) from None
    except FatalJudgeError as exc:
        raise fail(f"{exc}. Check the judge model id and API key.") from None
    except _ServerDown as exc:
        raise fail(str(exc)) from None
    finally:
        store.close()
    humans = [r.human for r in meta.points]
    payload = {
        "judges": judges, "protocols": protocols,
        "data": meta.files,
        "scales": {"judge": [combos[0][3].scale.min, combos[0][3].scale.max],
                   "human_observed": [min(humans), max(humans)] if humans else None, "note": SCALE_NOTE},
        "bootstrap": {"resamples": bootstrap, "seed": seed, "level": 0.95},
        "results": results,
    }
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "meta_eval.json").write_text(json.dumps(payload, ensure_ascii=False, indent=2), encoding="utf-8")
    if fmt == "json":
        print(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    print_meta_eval(payload, combos[0][3])
    if out is not None:
        console.print(f"[dim]written: {out / 'meta_eval.json'}[/]", highlight=False)


def _metrics(meta: MetaData, rub: Rubric, judgments: list[Judgment], pair_judgments: list[Any], n_boot: int,
             seed: int) -> dict[str, Any]:
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
        files = list(dict.fromkeys(r.file for r in meta.points))
        if len(files) > 1:
            entry["pointwise"]["files"] = {f: _brief(points_of(f)) for f in files}
    if meta.pairs:
        outcomes = _outcomes(meta, pair_judgments)
        entry["pairwise"] = pairwise_metrics(outcomes, n_boot, seed)
        files = list(dict.fromkeys(r.file for r in meta.pairs))
        if len(files) > 1:
            entry["pairwise"]["files"] = {
                f: pairwise_metrics([o for o, r in zip(outcomes, meta.pairs, strict=True) if r.file == f], n_boot, seed)
                for f in files}
    return entry


def _brief(m: dict[str, Any]) -> dict[str, Any]:
    """A file's pointwise figures without the per-category and per-system detail."""
    return {k: v for k, v in m.items() if k not in ("categories", "scales")}


def _write_combo(folder: Path, meta: MetaData, judgments: list[Judgment], pair_judgments: list[Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if judgments:
        with (folder / "pointwise.jsonl").open("w", encoding="utf-8") as fh:
            for row, j in zip(meta.points, judgments, strict=True):
                fh.write(json.dumps({"file": row.file, "line": row.line, "human_score": row.human,
                                     "judgment": j.model_dump(mode="json")}, ensure_ascii=False) + "\n")
    if pair_judgments:
        with (folder / "pairwise.jsonl").open("w", encoding="utf-8") as fh:
            for row, pj in zip(meta.pairs, pair_judgments, strict=True):
                fh.write(json.dumps({"file": row.file, "line": row.line, "label": row.label,
                                     "judgment": pj.model_dump(mode="json")}, ensure_ascii=False) + "\n")


def _dry_run(meta: MetaData, combos, max_answer_chars: int | None) -> None:
    for j, p, _, rub in combos:
        n = len(meta.points) + 2 * len(meta.pairs)
        console.print(f"[bold]{j} · {p} ({rub.id}): {n} request(s) — {len(meta.points)} pointwise, "
                      f"{len(meta.pairs)} pairs × 2 orders[/]", highlight=False)
    j, p, config, rub = combos[0]
    if meta.points:
        _print_messages(_point_items(meta, rub, config, max_answer_chars)[0].request.messages)
    elif meta.pairs:
        _print_messages(_pair_items(meta, rub, config, max_answer_chars)[0].request.messages)


# -- tables -----------------------------------------------------------------------------------------


def _num(value: float | None, undefined: str = "undefined", digits: int = 3) -> str:
    return undefined if value is None else f"{value:.{digits}f}"


def _with_ci(value: float | None, ci: list[float] | None) -> str:
    if value is None:
        return "undefined"
    return f"{value:.3f}" + (f" [dim][{ci[0]:.2f}, {ci[1]:.2f}][/]" if ci else "")


def _grid(payload: dict[str, Any], kind: str, metric: str, title: str) -> Table:
    """Protocols (rows) × judges (columns), one metric per cell (the ReIFE view)."""
    table = Table(title=title, header_style="bold", title_style="bold")
    table.add_column("protocol", no_wrap=True)
    for j in payload["judges"]:
        table.add_column(escape(j), justify="right")
    for p in payload["protocols"]:
        cells = []
        for j in payload["judges"]:
            m = payload["results"][j][p][kind]
            cells.append(_with_ci(m.get(metric), m.get("ci", {}).get(metric)))
        table.add_row(p, *cells)
    return table


def print_meta_eval(payload: dict[str, Any], rub: Rubric) -> None:
    """The meta-eval tables: a protocols × judges grid of the headline metric (with its CI), a detail
    row per (judge, protocol), per-category correlations, and notes on what is undefined or failed."""
    combos = [(j, p) for j in payload["judges"] for p in payload["protocols"]]
    first = payload["results"][combos[0][0]][combos[0][1]]
    notes: list[str] = []
    if first["pointwise"] is not None:
        console.print(_grid(payload, "pointwise", "spearman",
                            "pointwise · Spearman ρ with human scores (pooled, 95% CI) · protocols × judges"))
        table = Table(title="pointwise agreement with human scores", header_style="bold", title_style="bold",
                      caption="pooled over judged rows; sample ρ: within each question, averaged over questions "
                              "(CritiqueLLM), (n questions); system ρ: per-model means, (n models). "
                              + SCALE_NOTE + ".")
        for col in ("judge", "protocol", "n", "failed", "Pearson", "Spearman", "Kendall τ", "sample ρ",
                    "system ρ"):
            left = col in ("judge", "protocol")
            table.add_column(col, justify="left" if left else "right", no_wrap=left)
        for j, p in combos:
            m = payload["results"][j][p]["pointwise"]
            s, sy = m["sample_level"], m["system_level"]
            table.add_row(escape(j), p, str(m["n"]), _failed(m["n_failed"]), *[_num(m[k]) for k in METRICS],
                          f"{_num(s['spearman'])} ({s['n_blocks']})", f"{_num(sy['spearman'])} ({sy['n_systems']})")
            where = f"{j} · {p}"
            for what, fig in (("pooled", m), ("sample level", s), ("system level", sy)):
                if fig["undefined"]:
                    notes.append(f"{where}: {what} correlation undefined: {fig['undefined']}")
            if m["n_failed"]:
                notes.append(f"{where}: {m['n_failed']} pointwise judgment(s) failed and are excluded ("
                             + ", ".join(f"{k} {v}" for k, v in m["failed_by_status"].items()) + ")")
        console.print(table)
        cat_table = Table(title="pointwise · Spearman ρ per category (n)", header_style="bold", title_style="bold")
        cat_table.add_column("类别 category", no_wrap=True)
        for j, p in combos:
            cat_table.add_column(escape(f"{j} · {p}"), justify="right")
        for cat in rub.category_names():
            cells = []
            for j, p in combos:
                c = payload["results"][j][p]["pointwise"]["categories"].get(cat)
                cells.append("" if c is None else f"{_num(c['spearman'])} ({c['n']})")
            if any(cells):
                cat_table.add_row(cat, *cells)
        console.print(cat_table)
        _per_file(payload, combos, "pointwise", "spearman", "pointwise · Spearman ρ per file (n)")
    if first["pairwise"] is not None:
        console.print(_grid(payload, "pairwise", "agreement",
                            "pairwise · agreement with human labels (both orders, 95% CI) · protocols × judges"))
        table = Table(title="pairwise agreement with human labels", header_style="bold", title_style="bold",
                      caption="agreement: both orders agree and match the label (ties included); excl. ties: "
                              "pairs where neither the human nor the judge says tie (inconsistent = judge tie); "
                              "per order: each order's verdict alone; 助手1 rate: share of decisive verdicts for "
                              "the answer shown first (0.5 = no position bias)")
        for col in ("judge", "protocol", "n", "failed", "agreement", "excl. ties (n)", "consistency", "per order",
                    "助手1 rate"):
            left = col in ("judge", "protocol")
            table.add_column(col, justify="left" if left else "right", no_wrap=left)
        for j, p in combos:
            m = payload["results"][j][p]["pairwise"]
            table.add_row(escape(j), p, str(m["n"]), _failed(m["n_failed"]), _num(m["agreement"]),
                          f"{_num(m['agreement_excl_ties'], '—')} ({m['n_excl_ties']})", _num(m["consistency"]),
                          _num(m["accuracy_per_order"], "—"), _num(m["first_position_rate"], "—"))
            if m["n_failed"]:
                notes.append(f"{j} · {p}: {m['n_failed']} pair(s) without a verdict in both orders are excluded ("
                             + ", ".join(f"{k} {v}" for k, v in m["failed_by_status"].items()) + ")")
        console.print(table)
        _per_file(payload, combos, "pairwise", "agreement", "pairwise · agreement per file (n)")
    for note in notes:
        console.print(f"[yellow]•[/] {escape(note)}", highlight=False)


def _per_file(payload: dict[str, Any], combos: list[tuple[str, str]], kind: str, metric: str, title: str) -> None:
    """One row per data file, when several files hold rows of this kind (e.g. LLMBar's subsets)."""
    first = payload["results"][combos[0][0]][combos[0][1]][kind]
    if not first.get("files"):
        return
    table = Table(title=title, header_style="bold", title_style="bold")
    table.add_column("file", no_wrap=True)
    for j, p in combos:
        table.add_column(escape(f"{j} · {p}"), justify="right")
    for path in first["files"]:
        cells = [payload["results"][j][p][kind]["files"][path] for j, p in combos]
        table.add_row(escape(Path(path).name), *[f"{_num(f[metric])} ({f['n']})" for f in cells])
    console.print(table)


def _failed(n: int) -> str:
    return f"[red]{n}[/]" if n else "0"


# ================================================================================================
# score --judge a,b (ensembles)
# ================================================================================================


def score_ensemble(params: dict[str, Any]) -> None:
    """``score`` with several judges: each judge scores on its own (its own cache entries and run
    folder under ``<out>/judges/<judge>/``), then the judgments are averaged into the ensemble run
    folder ``<out>`` whose summary.json has an ``ensemble`` section with the judges' disagreement.

    Each judge goes through the unchanged ``score`` command (so data checks, cache, resume, retries
    and run folders are exactly those of a single-judge run); its JSON summary is captured.
    """
    from alignbench.cli.score import score as score_command

    judges = _split(params["judge"], "--judge")
    configs = [_with_protocol(_judge_config(j, params["judge_model"], params["judge_base_url"], params["rubric"]),
                              params.get("protocol")) for j in judges]
    rubs = [_rubric(c.rubric) for c in configs]
    if len({tuple(r.category_names()) for r in rubs}) > 1:
        raise fail(f"the judges' rubrics ({', '.join(r.id for r in rubs)}) have different categories; "
                   "pass --rubric to give them one")
    name = ensemble_name(judges)
    out: Path = params["out"] or Path("reports") / f"ensemble__{slug(name)}"
    if params["dry_run"]:
        for j in judges:
            score_command(**{**params, "judge": j, "out": out / "judges" / slug(j)})
        return
    per_judge: dict[str, dict[str, Any]] = {}
    for j in judges:
        captured = io.StringIO()
        with redirect_stdout(captured):
            score_command(**{**params, "judge": j, "out": out / "judges" / slug(j), "fmt": "json"})
        payload = json.loads(captured.getvalue())
        per_judge[j] = payload["models"] if "models" in payload else {payload["model"]: payload}
    models = list(per_judge[judges[0]])
    rub = rubs[0]
    summaries: dict[str, Any] = {}
    for model in models:
        runs = {j: Path(per_judge[j][model]["run"]["dir"]) for j in judges}
        judged = {j: read_run(runs[j])[1] for j in judges}
        first_run = per_judge[judges[0]][model]["run"]
        info = RunInfo(model=model, judge={"name": name, "model": "+".join(c.model for c in configs),
                                            "ensemble": [c.public() for c in configs]},
                       rubric=rub.id, questions_path=first_run["questions"]["path"],
                       questions_sha256=first_run["questions"]["sha256"], answers_path=first_run["answers"],
                       missing_answers=first_run["missing_answers"], max_answer_chars=first_run["max_answer_chars"])
        usage: dict[str, Any] = {}
        for j in judges:
            for key, value in per_judge[j][model].get("usage", {}).items():
                usage[key] = usage.get(key, 0) + value
        run_dir = out / slug(model) if len(models) > 1 else out
        summary = write_run(run_dir, combine(judged), rub, info, usage, seed=params["seed"])
        summary["ensemble"] = {
            **disagreement(judged, rub.category_names()),
            "rubrics": {j: c.rubric for j, c in zip(judges, configs, strict=True)},
            "runs": {j: str(runs[j]) for j in judges},
            "scores": {j: {"overall": per_judge[j][model]["overall"],
                           "categories": {c: v["score"] for c, v in per_judge[j][model]["categories"].items()}}
                       for j in judges},
        }
        tmp = run_dir / "summary.json.tmp"
        tmp.write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
        tmp.replace(run_dir / "summary.json")
        summary["run"]["dir"] = str(run_dir)
        summaries[model] = summary
        if params["fmt"] != "json":
            from alignbench.report.terminal import print_summary
            print_summary(summary, rub, console)
            print_disagreement(summary["ensemble"])
            console.print(f"[dim]run folder: {run_dir} (each judge's: {out / 'judges'})[/]", highlight=False)
    if params["fmt"] == "json":
        payload = next(iter(summaries.values())) if len(summaries) == 1 else {"models": summaries}
        print(json.dumps(payload, ensure_ascii=False, indent=2))


def print_disagreement(ensemble: dict[str, Any]) -> None:
    """Per category: each judge's score, their mean absolute difference and rank correlation."""
    judges = ensemble["judges"]
    table = Table(title=f"judge disagreement · {escape(' + '.join(judges))}", header_style="bold", title_style="bold",
                  caption="MAD = mean |difference| between judges' overall scores of the same answer (1–10 points); "
                          "ρ = Spearman rank correlation of those scores within the category (undefined when "
                          "a judge gave every answer there the same score); "
                          f"{ensemble['n_compared']} of {ensemble['n_answers']} answers scored by every judge")
    table.add_column("类别 category", no_wrap=True)
    scores = ensemble.get("scores", {})
    for j in judges:
        table.add_column(escape(j), justify="right")
    table.add_column("MAD", justify="right")
    table.add_column("ρ", justify="right")
    table.add_column("n", justify="right")
    for cat, d in ensemble["categories"].items():
        table.add_row(cat, *[_num(scores.get(j, {}).get("categories", {}).get(cat), "—", 2) for j in judges],
                      _num(d["mad"], "—", 2), _num(d["spearman"]), str(d["n"]))
    table.add_section()
    o = ensemble["overall"]
    table.add_row("[bold]全部 all[/]", *[_num(scores.get(j, {}).get("overall"), "—", 2) for j in judges],
                  _num(o["mad"], "—", 2), _num(o["spearman"]), str(o["n"]))
    console.print(table)
    if ensemble.get("dimensions"):
        console.print("[dim]per-dimension MAD: " + " · ".join(f"{d} {v['mad']:.2f}" for d, v in
                                                             ensemble["dimensions"].items()) + "[/]",
                      highlight=False)


# ================================================================================================
# show RUN_DIR --question-id N
# ================================================================================================


def print_judgments(run_dir: Path, judgments: list[Judgment], question_id: int, fmt: str) -> None:
    """Everything kept about one question's judgment(s): status, scores, detail, the plan and
    execution of a plan-execute judge, the judge's full text."""
    from alignbench.rubrics import RubricError, load_rubric

    mine = [j for j in judgments if j.question_id == question_id]
    if not mine:
        raise fail(f"{run_dir}: no judgment of question {question_id}")
    if fmt == "json":
        print(json.dumps([j.model_dump(mode="json") for j in mine], ensure_ascii=False, indent=2))
        return
    for j in mine:
        try:
            titles = {s.id: s.title for s in load_rubric(j.rubric.split("@")[0]).sections}
        except RubricError:
            titles = {}
        console.rule(f"[bold]question {j.question_id} · {escape(j.model)} · judge {escape(j.judge)} · {escape(j.rubric)}")
        status = "[green]ok[/]" if j.status is Status.OK else f"[red]{j.status.value}[/]"
        console.print(f"{status} · {j.category}{' / ' + j.subcategory if j.subcategory else ''} · {j.answer_type}"
                      f" · attempts {j.attempts}{' · cached' if j.cached else ''}", highlight=False)
        if j.status is Status.OK:
            scores = " · ".join(f"{d} {v:g}" for d, v in j.scores.items())
            console.print(f"[bold]综合得分 {j.overall:g}[/]" + (f"  ({scores})" if scores else ""), highlight=False)
        if j.detail:
            console.print(f"[dim]{escape(j.detail)}[/]", highlight=False)
        for sid, text in j.sections.items():
            console.rule(f"【{titles.get(sid, sid)}】", style="cyan", align="left")
            console.print(text, markup=False, highlight=False)
        if not j.sections:
            console.rule("judge's text", style="dim", align="left")
            console.print(j.raw or "(no text: the judge was not reached)", markup=False, highlight=False)
        else:
            console.print("[dim](the judge's full text: --format json)[/]", highlight=False)
