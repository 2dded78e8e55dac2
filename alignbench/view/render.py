"""HTML pages from ``ViewData``: the same templates serve the live server and the static export.

Every value from a run (answers, references, judge text, model names, notes) reaches the page only
through Jinja with autoescaping on, or through ``highlight`` below, which escapes each piece itself.
No template marks data ``|safe``; pages carry no inline script or style, so the Content-Security-
Policy the server sends can forbid them outright (a second wall should escaping ever be missed).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

from alignbench.rubrics import RubricError, load_rubric
from alignbench.stats import fmt
from alignbench.types import Question, Status, __version__
from alignbench.view.data import (
    FAILED,
    QUEUES,
    Item,
    Query,
    RunView,
    Stop,
    ViewData,
    neighbours,
    snippet,
    terms,
)

TEMPLATES = Path(__file__).parent / "templates"
PAGE_SIZE = 100


# ================================================================================================
# Links: server paths or static file names
# ================================================================================================


class Links:
    """Where a page lives. The server uses paths with query strings; the static export uses flat
    file names (so pages open from a file system or an attachment with relative links)."""

    def __init__(self, static: bool = False) -> None:
        self.static = static

    def home(self) -> str:
        return "index.html" if self.static else "/"

    def asset(self, name: str) -> str:
        return f"static/{name}" if self.static else f"/static/{name}"

    def run(self, key: str) -> str:
        return f"run-{key}.html" if self.static else f"/run/{key}"

    def list(self, query: Query | None = None, **changes: Any) -> str:
        if self.static:
            return "list.html"
        return "/list" + (query or Query()).qs(**changes)

    def queue(self, query: Query | None = None, **changes: Any) -> str:
        """``/queue`` is the list sorted by usefulness (``sort`` implied, left out) or, with
        ``sort=sample``, the random-sample queue."""
        params = [(k, v) for k, v in (query or Query()).params(**changes) if (k, v) != ("sort", "queue")]
        return "/queue" + ("?" + urlencode(params) if params else "")

    def pairwise(self) -> str:
        return "pairwise.html" if self.static else "/pairwise"

    def question(self, qid: int, query: Query | None = None, at: str | None = None) -> str:
        if self.static:
            return f"q-{qid}.html" + (f"#run-{at}" if at else "")
        params = (query or Query()).params(page=1)
        if at and not (query and query.run == at):
            params.append(("at", at))
        return f"/q/{qid}" + ("?" + urlencode(params) if params else "") + (f"#run-{at}" if at else "")

    def stop(self, stop: Stop | None, query: Query) -> str | None:
        return None if stop is None else self.question(stop.qid, query, stop.run)


# ================================================================================================
# Formatting (Jinja filters: numbers through alignbench.stats.fmt, as the terminal and the report)
# ================================================================================================


def highlight(text: str | None, words: Sequence[str]) -> Markup:
    """``text`` escaped, with case-insensitive occurrences of the search words wrapped in <mark>.
    Each piece is escaped on its own, so the marks are the only markup that can come out."""
    text = text or ""
    words = [w for w in words if w]
    if not words:
        return Markup(escape(text))
    pattern = re.compile("|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)), re.IGNORECASE)
    out: list[str] = []
    last = 0
    for m in pattern.finditer(text):
        out.append(str(escape(text[last:m.start()])))
        out.append(f"<mark>{escape(m.group(0))}</mark>")
        last = m.end()
    out.append(str(escape(text[last:])))
    return Markup("".join(out))


def make_env() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(f2=fmt.num, fscore=fmt.score, fci=fmt.ci, signed=fmt.signed, pct=fmt.pct, fp=fmt.p_value,
                       snippet=snippet)
    env.globals.update(version=__version__, FAILED=FAILED, highlight=highlight)
    return env


# ================================================================================================
# Page data
# ================================================================================================


@dataclass
class Cell:
    score: float | None
    ci: Sequence[float] | None = None
    n: int | None = None
    n_failed: int = 0
    delta: float | None = None
    delta_ci: Sequence[float] | None = None
    p: float | None = None
    significant: bool = False
    best: bool = False


@dataclass
class Settings:
    """How the pages behave: review forms shown, the default reviewer name, export or live."""

    read_only: bool = False
    reviewer: str = ""
    static: bool = False


class Pages:
    """Renders every page of the viewer from one ``ViewData``."""

    def __init__(self, data: ViewData, settings: Settings | None = None) -> None:
        self.data = data
        self.settings = settings or Settings()
        self.links = Links(static=self.settings.static)
        self.env = make_env()
        self._titles: dict[str, dict[str, str]] = {}

    def precompile(self) -> None:
        """Compile every template now (tens of milliseconds each) so no reader waits for it."""
        for name in self.env.list_templates():
            self.env.get_template(name)

    def _render(self, name: str, **ctx: Any) -> str:
        d = self.data
        ctx.setdefault("title", "")
        return self.env.get_template(name).render(
            links=self.links, settings=self.settings, data=d, has_pairs=bool(d.pair_folders),
            can_review=not (self.settings.read_only or self.settings.static), **ctx)

    # -- leaderboard -------------------------------------------------------------------------------

    def columns(self) -> list[tuple[str, str, str, str]]:
        """(key, Chinese label, English label, kind) of the leaderboard's score columns: overall, the
        groups, the categories."""
        cols = [("overall", "总分", "Overall", "overall")]
        for gid, group in self.data.rubric.groups.items():
            cols.append((gid, group.name.removeprefix("中文"), group.en, "group"))
        for cat in self.data.category_order:
            info = self.data.rubric.category(cat)
            cols.append((cat, cat, info.en if info else "", "category"))
        return cols

    def cells(self, rv: RunView) -> dict[str, Cell]:
        s = rv.summary
        out: dict[str, Cell] = {"overall": Cell(s.get("overall"), s.get("overall_ci"), s.get("n_ok"),
                                                s.get("n_failed", 0))}
        for gid, g in (s.get("groups") or {}).items():
            cats = s.get("categories") or {}
            members = [c for c in g.get("categories") or [] if c in cats]
            out[gid] = Cell(g.get("score"), g.get("ci"), sum(cats[c].get("n", 0) for c in members),
                            sum(cats[c].get("n_failed", 0) for c in members))
        for cat, c in (s.get("categories") or {}).items():
            out[cat] = Cell(c.get("score"), c.get("ci"), c.get("n"), c.get("n_failed", 0))
        cmp = rv.comparison
        if cmp is not None and cmp.comparable:
            for row in cmp.rows:
                cell = out.get(row.key)
                if cell is not None and row.test is not None:
                    cell.delta, cell.delta_ci = row.test.delta, row.test.ci
                    cell.p = row.p_holm if row.kind == "category" else row.test.p_value
                    cell.significant = row.significant
        return out

    def leaderboard(self) -> str:
        d = self.data
        d.refresh_reviews()
        runs = sorted(d.runs, key=lambda rv: (rv.summary.get("overall") is None,
                                              -(rv.summary.get("overall") or 0)))
        cells = {rv.key: self.cells(rv) for rv in runs}
        cols = self.columns()
        for key, *_ in cols:
            scores = [cells[rv.key][key].score for rv in runs if key in cells[rv.key]]
            scores = [x for x in scores if x is not None]
            if len(runs) > 1 and scores:
                top = max(scores)
                for rv in runs:
                    c = cells[rv.key].get(key)
                    if c is not None and c.score == top:
                        c.best = True
        return self._render("leaderboard.html", title="Leaderboard", runs=runs, cells=cells, cols=cols,
                            radar=self.radar(runs), agreements={rv.key: rv.agreement() for rv in runs},
                            pair_tables=self.pair_tables(), turns=self.turn_table(runs))

    def turn_table(self, runs: Sequence[RunView]) -> dict[str, Any] | None:
        """Per-turn scores of the runs with dialogues (``summary.json`` → ``dialogues.turns``): rows turn
        1, 2, …, a column group per such run; None when no run has dialogues. Why: a dialogue's score is
        the mean of its turns, so the leaderboard alone hides whether a model holds up as a dialogue goes
        on (the same table as ``alignbench report``'s)."""
        mine = [rv for rv in runs if rv.dialogues.get("turns")]
        if not mine:
            return None
        ks = sorted({k for rv in mine for k in rv.dialogues["turns"]}, key=int)
        rows = [(k, [rv.dialogues["turns"].get(k) for rv in mine]) for k in ks]
        return {"runs": mine, "rows": rows}

    def radar(self, runs: Sequence[RunView]) -> dict[str, Any] | None:
        """Coordinates of the category radar (an inline SVG, drawn by the template)."""
        cats = self.data.category_order
        if len(cats) < 3:
            return None
        cx, cy, radius = 260.0, 215.0, 150.0
        top = self.data.runs[0].scale[1] if self.data.runs else 10.0

        def point(i: int, value: float) -> tuple[float, float]:
            angle = -math.pi / 2 + 2 * math.pi * i / len(cats)
            r = radius * max(0.0, min(value, top)) / top
            return round(cx + r * math.cos(angle), 1), round(cy + r * math.sin(angle), 1)

        def polygon(values: Sequence[float]) -> str:
            return " ".join(f"{x},{y}" for x, y in (point(i, v) for i, v in enumerate(values)))

        rings = [{"value": v, "points": polygon([v] * len(cats))} for v in range(2, int(top) + 1, 2)]
        axes = []
        for i, cat in enumerate(cats):
            x, y = point(i, top)
            lx, ly = point(i, top * 1.13)
            anchor = "middle" if abs(lx - cx) < 20 else ("start" if lx > cx else "end")
            axes.append({"x": x, "y": y, "lx": lx, "ly": ly + 4, "label": cat, "anchor": anchor})
        series = []
        for rv in runs:
            cs = rv.summary.get("categories") or {}
            values = [(cs.get(c) or {}).get("score") or 0.0 for c in cats]
            series.append({"label": rv.label, "colour": rv.colour, "baseline": rv.is_baseline,
                           "points": polygon(values)})
        return {"cx": cx, "cy": cy, "rings": rings, "axes": axes, "series": series}

    def pair_tables(self) -> list[dict[str, Any]]:
        out = []
        for folder in self.data.pair_folders:
            s = folder.summary
            models = []
            for name, m in s.models.items():
                models.append({"name": name, **m})
            out.append({"label": folder.label, "path": str(folder.path), "baseline": s.baseline,
                        "models": models, "bias": s.position_bias or {}, "n_pairs": len(folder.pairs),
                        "length_unit": s.length_unit})
        return out

    # -- run page ------------------------------------------------------------------------------------

    def run_page(self, rv: RunView) -> str:
        d = self.data
        assert rv.reviews is not None
        rv.reviews.refresh()
        s = rv.summary
        cats = s.get("categories") or {}
        dims = [dim for dim in d.rubric.all_dimensions() if dim in (s.get("dimensions") or {})]
        dims += [dim for dim in (s.get("dimensions") or {}) if dim not in dims]
        recent = list(reversed(rv.reviews.reviews))[:50]
        return self._render("run.html", title=rv.label, rv=rv, s=s, cats=cats, dims=dims,
                            cells=self.cells(rv), cols=self.columns(), agreement=rv.agreement(),
                            recent=recent, problems=rv.reviews.problems, cmp=rv.comparison,
                            has_probes=(rv.run.dir / "probes.json").is_file() and not self.settings.static,
                            turns=self.turn_table([rv]), figures=fmt.figures(s),
                            subcats=sorted((s.get("subcategories") or {}).values(),
                                           key=lambda x: (x.get("score") is None, x.get("score") or 0)))

    # -- lists ---------------------------------------------------------------------------------------

    def list_page(self, query: Query, queue: bool = False) -> str:
        d = self.data
        items = d.select(query)
        total = len(items)
        pages = max(1, math.ceil(total / PAGE_SIZE))
        page = min(query.page, pages)
        shown = items[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
        if self.settings.static:
            shown, pages, page = items, 1, 1
        rows = [self.row(it) for it in shown]
        return self._render("list.html", title="Review queue" if queue else "Judgments", query=query,
                            queue=queue, rows=rows, total=total, page=page, pages=pages, words=terms(query.q),
                            statuses=[s.value for s in Status if s is not Status.OK],
                            subcats=d.subcategories(), has_delta=d.baseline is not None,
                            has_spread=any(rv.members for rv in d.runs))

    def row(self, it: Item) -> dict[str, Any]:
        q = self.data.question_of(it.qid)
        st = it.review()
        return {"it": it, "question": snippet(q.question) if q else "", "review": st}

    # -- question page -------------------------------------------------------------------------------

    def section_titles(self, rubric_id: str) -> dict[str, str]:
        if rubric_id not in self._titles:
            try:
                rubric = load_rubric(rubric_id.split("@")[0])
                self._titles[rubric_id] = {s.id: s.title for s in rubric.sections}
            except RubricError:
                self._titles[rubric_id] = {}
        return self._titles[rubric_id]

    def question_page(self, qid: int, query: Query, at: str | None = None,
                      saved: str | None = None) -> str | None:
        d = self.data
        items = d.by_q.get(qid)
        if not items:
            return None
        d.refresh_reviews()
        stops = d.sequence(query) if not self.settings.static else [Stop(q, None) for q in d.qids]
        focus = query.run or at
        prev, nxt, pos = neighbours(stops, qid, focus)
        question = d.question_of(qid)
        first = items[0].j
        runs = sorted(d.runs, key=lambda rv: not rv.is_baseline)
        cols = []
        for rv in runs:
            j = rv.by_qid.get(qid)
            item = next((it for it in items if it.run is rv), None)
            ans = rv.answers.get(qid)
            mismatch = bool(ans is not None and j is not None and j.answer_chars and not j.turns
                            and len(ans.text) != j.answer_chars)  # a dialogue's is checked per turn
            assert rv.reviews is not None
            titles = self.section_titles(j.rubric) if j is not None else {}
            members = [(judge, m.get(qid)) for judge, m in rv.members.items()]
            cols.append({
                "rv": rv, "j": j, "item": item, "answer": ans, "mismatch": mismatch,
                "answer_note": rv.answers_note if ans is None else None,
                "reasoning": _reasoning(ans),
                "sections": [(titles.get(k, k), v) for k, v in (j.sections.items() if j else [])],
                "members": members, "review": rv.reviews.state(j) if j else None,
                "history": rv.reviews.history(j) if j else [], "focus": focus == rv.key,
                "delta": rv.qdelta.get(qid), "saved": saved == f"{rv.key}:{qid}",
            })
        dims: list[str] = []
        for c in cols:
            if c["j"] is not None:
                dims += [k for k in c["j"].scores if k not in dims]
        order = {dim: i for i, dim in enumerate(d.rubric.all_dimensions())}
        dims.sort(key=lambda x: order.get(x, 99))
        dialogue = self.dialogue(question, cols)
        turn_scores = [(row["turn"], [cell["j"] for cell in row["cells"]])
                       for row in dialogue or [] if row["kind"] == "model"]
        pairs = [{"folder": f, "p": p} for f, p in d.pairs_by_q.get(qid, [])]
        saved_elsewhere = None  # the queue moved on after a review: say it was saved
        if saved and not any(c["saved"] for c in cols):
            key, _, sq = saved.partition(":")
            rv_saved = d.run_by_key(key)
            if rv_saved is not None and sq.isdigit():
                saved_elsewhere = f"review of Q{sq} ({rv_saved.label}) saved"
        return self._render("question.html", title=f"Q{qid}", qid=qid, question=question, first=first,
                            cols=cols, dims=dims, dialogue=dialogue, turn_scores=turn_scores, pairs=pairs,
                            n_turns=max((it.n_turns for it in items), default=0), query=query,
                            prev=self.links.stop(prev, query),
                            next=self.links.stop(nxt, query), pos=pos, total=len(stops), words=terms(query.q),
                            at=focus, back=self._back(query), next_stop=nxt, saved_elsewhere=saved_elsewhere)

    def dialogue(self, question: Question | None, cols: Sequence[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """The rows of a dialogue's page in reading order, or None for a single answer: user turns and
        fixed assistant turns once each, and per model turn every run's reply beside that turn's verdict
        (the judgment in the dialogue judgment's ``turns``).

        Why one row per model turn and not the whole dialogue in each run's column: a reviewer compares
        the runs' replies to the same user turn, which only lines up when they sit side by side. Without
        the question file the user turns are unknown; the model turns are then still listed, as many as
        the judgments and answers show."""
        judged = [c["j"] for c in cols if c["j"] is not None and c["j"].turns]
        source = question if question is not None and question.multi_turn else None
        if source is not None:
            messages = source.dialogue()
        elif judged:
            n = max([t.turn or 0 for j in judged for t in j.turns]
                    + [len(c["answer"].turns) for c in cols if c["answer"] is not None])
            messages = [("assistant", "", k) for k in range(1, n + 1)]
        else:
            return None
        rows: list[dict[str, Any]] = []
        for role, content, k in messages:
            if k is None:
                rows.append({"kind": role, "text": content})
                continue
            rows.append({"kind": "model", "turn": k, "reference": source.reference_for(k) if source else "",
                         "cells": [self._turn_cell(c, k) for c in cols]})
        return rows

    def _turn_cell(self, col: dict[str, Any], k: int) -> dict[str, Any]:
        """One run's reply to model turn ``k`` and the judgment of that turn (None where the run did not
        judge it: no judgment of the dialogue, or a rubric with ``turns: last``)."""
        j, ans = col["j"], col["answer"]
        tj = next((t for t in j.turns if t.turn == k), None) if j is not None else None
        reply = ans.turns[k - 1] if ans is not None and k - 1 < len(ans.turns) else None
        titles = self.section_titles(tj.rubric) if tj is not None else {}
        return {"rv": col["rv"], "j": tj, "judged": j is not None, "reply": reply, "focus": col["focus"],
                "answer_note": col["answer_note"],
                "mismatch": bool(tj is not None and reply is not None and tj.answer_chars
                                 and len(reply) != tj.answer_chars),
                "sections": [(titles.get(s, s), v) for s, v in (tj.sections.items() if tj else [])]}

    def _back(self, query: Query) -> str:
        if query.sort in QUEUES:
            return self.links.queue(query, page=1) if not self.settings.static else self.links.home()
        return self.links.list(query, page=1)

    # -- pairwise, errors -----------------------------------------------------------------------------

    def pairwise_page(self) -> str:
        flips = []
        for folder in self.data.pair_folders:
            for p in folder.pairs:
                if p.flip or p.consistent is False or p.status is not Status.OK:
                    flips.append({"folder": folder, "p": p})
        flips.sort(key=lambda x: (not x["p"].flip, x["p"].consistent is not False, x["p"].question_id))
        return self._render("pairwise.html", title="Pairwise", tables=self.pair_tables(), flips=flips)

    def probe_page(self, rv: RunView) -> str | None:
        """A run's style probes (``alignbench probe``): per rewrite, its effect and, answers that moved
        first, the original answer beside its rewrite with both verdicts (score and the judge's text)."""
        from alignbench.probes import PROBES_DIR, PROBES_FILE, load_probe

        path = rv.run.dir / PROBES_FILE
        if not path.is_file():
            return None
        from alignbench import safejson

        try:
            payload = safejson.read_json(path)
        except (OSError, ValueError):
            return None
        probes = []
        for name, eff in payload.get("probes", {}).items():
            rewritten, judged = load_probe(rv.run.dir / PROBES_DIR / name)
            rows = []
            for qid, a in sorted(rv.answers.items()):
                orig, new = rv.by_qid.get(qid), judged.get(qid)
                delta = eff.get("per_answer", {}).get(str(qid))
                rows.append({"qid": qid, "delta": delta, "answer": a.text, "rewrite": rewritten.get(qid),
                             "orig": orig, "new": new})
            rows.sort(key=lambda r: (-(abs(r["delta"]) if r["delta"] is not None else -1), r["qid"]))
            probes.append({"name": name, "effect": eff, "rows": rows})
        return self._render("probe.html", title=f"Probes · {rv.label}", rv=rv, probes=probes)

    def error_page(self, status: int, message: str) -> str:
        return self._render("error.html", title=f"{status}", status=status, message=message)


def _reasoning(answer: Any) -> str | None:
    """The model's thinking kept beside the answer (``answer`` moves <think> blocks there)."""
    value = answer.meta.get("reasoning") if answer is not None else None
    return value if isinstance(value, str) and value.strip() else None
