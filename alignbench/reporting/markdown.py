"""``alignbench report``: a Markdown page from finished run folders, ready to paste into release notes.

Reads only run folders (never calls a judge). The page: what was run (enough to reproduce it), a
leaderboard in AlignBench's column order with 95% CIs, per-category × dimension tables, charts,
pairwise win rates when a run folder holds them, weak spots with the judge's reasons, and the
comparison with a baseline run (paired tests, see ``compare.py``).

Everything that comes from data (model names, questions, judge text) passes through ``md_text``
before it reaches the template, so a ``|`` cannot split a table cell, a backtick cannot open a code
span, ``<b>`` stays text and a newline cannot end a list item. The template only does layout.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from alignbench import __version__
from alignbench.reporting.compare import Comparison, analysis_text, compare_runs, fmt_p
from alignbench.rubrics import Rubric, RubricError, load_rubric
from alignbench.rundir import Run, RunError, expand_runs, load_run, unique_labels
from alignbench.types import Status, Summary

TEMPLATES = Path(__file__).parent / "templates"
QUESTION_CHARS = 160
REASON_CHARS = 240

STRINGS: dict[str, dict[str, str]] = {
    "zh": {
        "title": "AlignBench 评测报告", "generated": "生成于", "scale_note": "1–10 分制",
        "runs": "运行信息", "leaderboard": "排行榜", "charts": "图表", "dimensions": "类别 × 维度得分",
        "pairwise": "成对比较", "weak": "薄弱环节", "comparison": "与基线运行的比较",
        "model": "模型", "judge": "评审模型", "rubric": "评分细则", "questions": "题目集", "answers": "回答文件",
        "date": "日期", "judged": "评审数", "excluded": "排除", "baseline_mark": "基线",
        "overall": "总分", "category": "类别", "all": "全部",
        "leaderboard_note": "每格为均值及 95% 置信区间（按类别分层的 bootstrap）；每列最佳值加粗。总分 = (推理 + 语言) / 2，"
                            "推理、语言分别为其类别均分的平均（AlignBench 公式）。评审失败的回答不计入任何均值。",
        "incomplete_note": "† 该组缺少部分类别，不能与完整的 AlignBench 分数相比。",
        "weak_lowest": "得分最低的子类别：", "weak_examples": "示例（这些子类别中得分最低的题目）：",
        "question": "题目", "judge_reason": "评审理由", "judge_base": "基线评审", "judge_new": "本次评审",
        "none": "无。", "gains": "进步最大的题目", "drops": "退步最大的题目",
        "vs": "对比基线", "score": "分数", "base_col": "基线", "new_col": "本次", "delta": "Δ",
        "delta_ci": "Δ 的 95% CI", "p": "p", "p_holm": "p (Holm)", "n": "n", "sig": "显著",
        "yes": "是", "no": "否", "failures_none": "无", "no_answer": "无回答",
        "pw_model": "模型", "pw_wr": "胜率", "pw_lc": "LC 胜率", "pw_wtl": "胜 / 平 / 负", "pw_incons": "位置不一致",
        "charts_skipped": "图表已跳过：",
    },
    "en": {
        "title": "AlignBench report", "generated": "Generated", "scale_note": "1–10 scale",
        "runs": "Runs", "leaderboard": "Leaderboard", "charts": "Charts", "dimensions": "Category × dimension scores",
        "pairwise": "Pairwise", "weak": "Weak spots", "comparison": "Against the baseline run",
        "model": "model", "judge": "judge", "rubric": "rubric", "questions": "question set", "answers": "answers",
        "date": "date", "judged": "judged", "excluded": "excluded", "baseline_mark": "baseline",
        "overall": "Overall", "category": "category", "all": "all",
        "leaderboard_note": "Each cell: mean and 95% CI (bootstrap stratified by category); best value per column "
                            "in bold. Overall = (reasoning + language) / 2, each group the mean of its category "
                            "means (AlignBench's formula). Failed judgments are excluded from every mean.",
        "incomplete_note": "† the group lacks some categories: not comparable with full AlignBench scores.",
        "weak_lowest": "Lowest-scoring subcategories:", "weak_examples": "Examples (the lowest-scored questions in "
                                                                         "those subcategories):",
        "question": "question", "judge_reason": "judge", "judge_base": "judge (baseline)",
        "judge_new": "judge (this run)", "none": "None.", "gains": "Largest gains", "drops": "Largest drops",
        "vs": "vs baseline", "score": "score", "base_col": "baseline", "new_col": "this run", "delta": "Δ",
        "delta_ci": "95% CI of Δ", "p": "p", "p_holm": "p (Holm)", "n": "n", "sig": "significant",
        "yes": "yes", "no": "no", "failures_none": "none", "no_answer": "no answer",
        "pw_model": "model", "pw_wr": "win rate", "pw_lc": "LC win rate", "pw_wtl": "wins / ties / losses",
        "pw_incons": "position inconsistency", "charts_skipped": "Charts skipped:",
    },
}

# -- escaping ------------------------------------------------------------------------------------

_WS = re.compile(r"\s+")
_INLINE_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_LINE_START = re.compile(r"^([#>+=-])|^(\d+)([.)])")


def clip(text: str, limit: int | None) -> str:
    """At most ``limit`` characters, with an ellipsis when cut."""
    if limit is None or len(text) <= limit:
        return text
    return text[: max(0, limit - 1)].rstrip() + "…"


def md_text(text: Any, limit: int | None = None) -> str:
    """Any text as one line of inline Markdown that renders literally, in a table cell or a list item.

    Whitespace (newlines included) collapses to single spaces, the text is clipped, then HTML
    metacharacters become entities and Markdown punctuation is backslash-escaped (``|`` included, so
    GFM does not split a table cell on it). A leading ``#``, ``>``, ``-`` or ``1.`` is escaped too."""
    s = clip(_WS.sub(" ", str(text)).strip(), limit)
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = _INLINE_SPECIAL.sub(r"\\\1", s)
    return _LINE_START.sub(lambda m: f"\\{m.group(1)}" if m.group(1) else f"{m.group(2)}\\{m.group(3)}", s)


def fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def fmt_ci(ci: Sequence[float] | None) -> str:
    return "" if not ci else f"({ci[0]:.2f}–{ci[1]:.2f})"


def fmt_delta(value: float) -> str:
    return f"{value:+.2f}"


# -- building blocks -----------------------------------------------------------------------------

@dataclass
class ReportResult:
    """Where the report went and what the user should be told."""

    path: Path
    charts: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)


def _score_columns(rubric: Rubric, t: dict[str, str], zh: bool) -> list[tuple[str, str]]:
    """(key, header) in AlignBench's leaderboard order: overall, then each group followed by its categories."""
    cols = [("overall", t["overall"])]
    for gid, group in rubric.groups.items():
        cols.append((f"group:{gid}", group.name if zh else group.en))
        cols.extend((f"cat:{c.name}", c.name if zh else c.en) for c in rubric.categories if c.group == gid)
    return cols


def _score(summary: Summary, key: str) -> tuple[float | None, list[float] | None, bool]:
    """(score, ci, complete) of one leaderboard column."""
    if key == "overall":
        return summary.overall, summary.overall_ci, True
    kind, name = key.split(":", 1)
    if kind == "group":
        g = summary.groups.get(name)
        return (g.score, g.ci, g.complete is not False or g.score is None) if g else (None, None, True)
    c = summary.categories.get(name)
    return (c.score, c.ci, True) if c else (None, None, True)


def _leaderboard(runs: Sequence[Run], rubric: Rubric, t: dict[str, str], zh: bool,
                 baseline: Run | None) -> dict[str, Any]:
    cols = _score_columns(rubric, t, zh)
    best: dict[str, float] = {}
    if len(runs) > 1:
        for key, _ in cols:
            values = [v for r in runs if (v := _score(r.summary, key)[0]) is not None]
            if values:
                best[key] = max(values)
    rows, incomplete = [], False
    for r in runs:
        label = md_text(r.label) + (f" ({t['baseline_mark']})" if baseline is not None and r is baseline else "")
        cells = [label]
        for key, _ in cols:
            value, ci, complete = _score(r.summary, key)
            text = fmt(value)
            if key in best and value is not None and round(value, 2) == round(best[key], 2):
                text = f"**{text}**"
            mark = "" if complete else " †"
            incomplete |= not complete
            cells.append(f"{text}{mark} {fmt_ci(ci)}".strip())
        cells.append(str(r.summary.n_ok))
        rows.append(cells)
    header = [t["model"], *(h for _, h in cols), "n"]
    return {"header": header, "rows": rows, "align": ["l", *["r"] * (len(cols) + 1)], "incomplete": incomplete}


def _failures(summary: Summary, t: dict[str, str]) -> str:
    parts = [f"{k} {v}" for k, v in sorted(summary.failed_by_status.items())]
    missing = summary.run.n_missing_answers
    if missing:
        parts.append(f"{t['no_answer']} {missing}")
    return ", ".join(parts) if parts else t["failures_none"]


def _runs_table(runs: Sequence[Run], t: dict[str, str], baseline: Run | None) -> dict[str, Any]:
    rows = []
    for r in runs:
        run = r.manifest
        judge = run.judge
        temp = judge.get("temperature")
        judge_text = f"{judge.get('backend', '?')} · {judge.get('model', '?')}" + (
            f" · T={temp}" if temp is not None else "")
        questions = run.questions
        created = str(run.created)[:10]
        label = md_text(r.label) + (f" ({t['baseline_mark']})" if baseline is not None and r is baseline else "")
        rows.append([label, md_text(judge_text), md_text(run.rubric or "?"), md_text(questions.get("path", "?")),
                     f"`{questions.get('sha256', '?')}`" if re.fullmatch(r"[0-9a-f]*", questions.get("sha256", "x"))
                     else md_text(questions.get("sha256")), md_text(run.answers if isinstance(run.answers, str) else "?"), md_text(created),
                     str(r.summary.n), md_text(_failures(r.summary, t))])
    header = [t["model"], t["judge"], t["rubric"], t["questions"], "sha256", t["answers"], t["date"], t["judged"],
              t["excluded"]]
    return {"header": header, "rows": rows, "align": ["l"] * 7 + ["r", "l"]}


def _run_notes(runs: Sequence[Run], lang: str) -> list[str]:
    notes = []
    zh = lang == "zh"
    for r in runs:
        n_failed = r.summary.n_failed
        missing = r.manifest.n_missing_answers
        if n_failed or missing:
            why = ", ".join(f"{k} {v}" for k, v in sorted(r.summary.failed_by_status.items()))
            detail = []
            if n_failed:
                detail.append(f"{n_failed} 条评审失败、已从均值中排除（{why}）" if zh
                              else f"{n_failed} failed judgment(s) excluded from every mean ({why})")
            if missing:
                detail.append(f"{missing} 道题没有回答、未评审" if zh else f"{missing} question(s) had no answer and "
                                                                      "were not judged")
            notes.append(f"{md_text(r.label)}: " + "; ".join(md_text(d) for d in detail))
        trunc = sum(j.truncated_answer for j in r.judgments)
        if trunc:
            limit = r.manifest.max_answer_chars
            notes.append(md_text(f"{r.label}: {trunc} 个回答超过 {limit} 字符，在提示中被截断" if zh else
                                 f"{r.label}: {trunc} answer(s) longer than {limit} characters were clipped in "
                                 "the judge prompt"))
    if not notes:
        notes.append("所有评审均成功，没有排除任何回答。" if zh else "Every judgment succeeded; nothing was excluded.")
    for what, zh_what, values in (("rubric", "评分细则", {r.rubric_id for r in runs}),
                                  ("judge", "评审模型", {r.judge_id for r in runs}),
                                  ("question set", "题目集", {r.questions_sha for r in runs})):
        if len(values) > 1:
            notes.append(md_text(f"运行之间的{zh_what}不同：排行榜上的行不能直接比较" if zh else
                                 f"the runs differ in {what}: leaderboard rows are not directly comparable"))
    return notes


def _dimension_table(r: Run, rubric: Rubric, t: dict[str, str], zh: bool) -> dict[str, Any]:
    dims = [d for d in rubric.all_dimensions() if d in r.summary.dimensions]
    cats = r.summary.categories
    rows = []
    for c in rubric.categories:
        if c.name not in cats:
            continue
        entry = cats[c.name]
        rows.append([c.name if zh else c.en, *(fmt(entry.dimensions[d].mean, 1) if d in entry.dimensions
                                                else "" for d in dims), fmt(entry.score), str(entry.n)])
    totals = r.summary.dimensions
    rows.append([f"**{t['all']}**", *(fmt(totals[d].mean, 1) for d in dims), fmt(r.summary.overall),
                 str(r.summary.n_ok)])
    header = [t["category"], *(d if zh else rubric.dimensions[d].id for d in dims), t["overall"], "n"]
    return {"label": md_text(r.label), "header": header, "rows": rows, "align": ["l", *["r"] * (len(dims) + 2)]}


def _weak_spots(r: Run, t: dict[str, str], lowest: int = 3, examples: int = 3) -> dict[str, Any]:
    subs = [s for s in r.summary.subcategories.values() if s.score is not None]
    subs.sort(key=lambda s: (s.score, -s.n, s.category, s.subcategory))
    worst = subs[:lowest]
    keys = {(s.category, s.subcategory) for s in worst}
    judged = [j for j in r.judgments if j.status is Status.OK and (j.category, j.subcategory) in keys]
    judged.sort(key=lambda j: (j.overall, j.question_id))
    out = []
    for j in judged[:examples]:
        q = r.questions.get(j.question_id) if r.questions else None
        head = f"Q{j.question_id} · {j.category} / {j.subcategory} · {fmt(j.overall, 0)}/10"
        out.append({"head": md_text(head), "question": md_text(q.question, QUESTION_CHARS) if q else "",
                    "reason": md_text(analysis_text(j.raw), REASON_CHARS) or "—"})
    lines = [md_text(f"{s.category} / {s.subcategory}: {fmt(s.score)} (n={s.n})") for s in worst]
    return {"label": md_text(r.label), "subcategories": lines, "examples": out}


def _pct(value: Any, se: Any = None) -> str:
    if not isinstance(value, (int, float)):
        return "—"
    text = f"{value:.1f}"
    return f"{text} ± {se:.1f}" if isinstance(se, (int, float)) else text


def _pairwise(runs: Sequence[Run], t: dict[str, str], lang: str) -> list[dict[str, Any]]:
    """Tables from ``pairwise_summary.json`` files (written by the pairwise mode), read tolerantly:
    a file that is missing is no section; a file that is unreadable is a note; a missing field is —."""
    blocks, seen = [], set()
    for r in runs:
        path = r.pairwise_file
        if not path.is_file() or path.resolve() in seen:
            continue
        seen.add(path.resolve())
        notes: list[str] = []
        rows: list[list[str]] = []
        data: Any = None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            models = data.get("models") if isinstance(data, dict) else None
            if not isinstance(models, dict):
                raise ValueError("no 'models' mapping")
        except (OSError, ValueError) as exc:
            notes.append(md_text(f"{path}: unreadable ({exc})"))
            models = {}
        for name, m in models.items():
            m = m if isinstance(m, dict) else {}
            wtl = [m.get(k) for k in ("n_wins", "n_ties", "n_losses")]
            incons = m.get("inconsistency")
            rows.append([md_text(name), _pct(m.get("win_rate"), m.get("win_rate_se")),
                         _pct(m.get("lc_win_rate"), m.get("lc_win_rate_se")),
                         " / ".join(str(v) if isinstance(v, int) else "—" for v in wtl),
                         f"{incons:.1%}" if isinstance(incons, (int, float)) and 0 <= incons <= 1 else
                         (f"{incons:.1f}%" if isinstance(incons, (int, float)) else "—")])
        base = data.get("baseline") if isinstance(data, dict) else None
        title = md_text(f"{path.parent.name}/pairwise_summary.json" + (
            f" · baseline {base}" if isinstance(base, str) else ""))
        if rows:
            notes.append(md_text("胜率与 LC（长度控制）胜率为百分数 ± 标准误；位置不一致 = 交换顺序后判决改变的比例"
                                 if lang == "zh" else "Win rates in percent ± standard error; position "
                                 "inconsistency = share of pairs whose verdict changes when the order is swapped"))
        blocks.append({"title": title, "header": [t["pw_model"], t["pw_wr"], t["pw_lc"], t["pw_wtl"], t["pw_incons"]],
                       "rows": rows, "align": ["l", "r", "r", "r", "r"], "notes": notes})
    return blocks


def _comparison_block(c: Comparison, t: dict[str, str], zh: bool) -> dict[str, Any]:
    rows = []
    for row in c.rows:
        name = row.name if zh else row.en
        name = f"**{name}**" if row.kind != "category" else name
        if row.test is None:
            rows.append([name, "—", "—", "—", "", "", "", "0", md_text(row.note)])
            continue
        x = row.test
        p_holm = fmt_p(row.p_holm) if row.kind == "category" else ""
        rows.append([name, fmt(x.base), fmt(x.new), fmt_delta(x.delta), f"{x.ci[0]:+.2f} … {x.ci[1]:+.2f}",
                     fmt_p(x.p_value), p_holm, str(x.n), f"**{t['yes']}**" if row.significant else t["no"]])
    s = c.settings
    method = (f"配对比较，基于两次运行都评审成功的 {c.n_shared} 道相同题目。Δ 的置信区间：配对 bootstrap（{s.get('bootstrap')} 次，"
              f"按类别分层，种子 {s.get('seed')}）；p 值：符号翻转置换检验（n ≤ {s.get('exact_max_n')} 时精确枚举，否则 "
              f"{s.get('permutations')} 次）；类别的 p 值经 Holm 校正（8 项检验）；显著 = p < {s.get('alpha')}。"
              if zh else
              f"Paired over the {c.n_shared} questions judged successfully in both runs. CI of Δ: paired bootstrap "
              f"({s.get('bootstrap')} resamples, stratified by category, seed {s.get('seed')}); p: sign-flip "
              f"permutation test (exact for n ≤ {s.get('exact_max_n')}, else {s.get('permutations')} seeded "
              f"permutations); category p-values Holm-adjusted over the 8 categories; significant = p < "
              f"{s.get('alpha')}.")

    def items(moves) -> list[dict[str, str]]:
        out = []
        for m in moves:
            head = (f"Q{m.question_id} · {m.category} / {m.subcategory} · {fmt(m.base, 0)} → {fmt(m.new, 0)} "
                    f"({fmt_delta(m.delta).replace('.00', '')})")
            out.append({"head": md_text(head), "question": md_text(m.question, QUESTION_CHARS) if m.question else "",
                        "base_reason": md_text(m.base_reason, REASON_CHARS) or "—",
                        "new_reason": md_text(m.new_reason, REASON_CHARS) or "—"})
        return out

    return {
        "title": md_text(f"{c.new_label} {t['vs']} {c.base_label}"),
        "problems": [md_text(p) for p in c.problems],
        "header": ["", t["base_col"], t["new_col"], t["delta"], t["delta_ci"], t["p"], t["p_holm"], t["n"], t["sig"]],
        "rows": rows if c.comparable else [],
        "align": ["l", "r", "r", "r", "r", "r", "r", "r", "l"],
        "method": method,
        "moves": [{"title": t["gains"], "items": items(c.gains)}, {"title": t["drops"], "items": items(c.drops)}],
    }


def render_markdown(context: dict[str, Any]) -> str:
    """Render the report template (StrictUndefined: a missing value is an error, never an empty cell)."""
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), undefined=StrictUndefined, autoescape=False,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    text = env.get_template("report.md.j2").render(**context)
    return re.sub(r"\n{3,}", "\n\n", text).rstrip() + "\n"


def _rubric_for(runs: Sequence[Run]) -> Rubric:
    name = runs[0].rubric_id.split("@")[0]
    try:
        return load_rubric(name)
    except RubricError as exc:
        raise RunError(f"{runs[0].path}: {exc}") from None


def build_report(runs: Sequence[Run], baseline: Run | None = None, lang: str = "zh",
                 out: Path | None = None, charts: bool = True, seed: int = 0,
                 skipped: Sequence[str] = ()) -> tuple[str, ReportResult]:
    """The report text for loaded runs (and, when ``out`` is given, the charts beside it)."""
    if lang not in STRINGS:
        raise ValueError(f"unknown language {lang!r}; use zh or en")
    t = STRINGS[lang]
    zh = lang == "zh"
    rubric = _rubric_for(runs)
    shown = list(runs) + ([baseline] if baseline is not None and all(baseline is not r for r in runs) else [])
    unique_labels(shown)
    result = ReportResult(path=out or Path("report.md"), skipped=list(skipped))
    header_warnings = list(skipped)
    comparisons = []
    if baseline is not None:
        for r in runs:
            if r is baseline:
                continue
            c = compare_runs(baseline, r, rubric, seed=seed)
            comparisons.append(c)
            for p in c.problems:
                note = f"{r.label} vs {baseline.label}: {p}"
                result.warnings.append(note)
                if not c.comparable:
                    header_warnings.append(note)
    result.comparisons = comparisons

    chart_notes: list[str] = []
    files: list[dict[str, str]] = []
    if charts and out is not None:
        from alignbench.reporting.charts import ChartsUnavailable, Series, render_charts

        series = [Series(r.label,
                         {c: (cat.score if (cat := r.summary.categories.get(c)) else None)
                          for c in rubric.category_names()},
                         {d: v.mean for d, v in r.summary.dimensions.items()}) for r in shown]
        try:
            drawn = render_charts(series, rubric, out.parent, out.stem, lang=lang)
        except ChartsUnavailable as exc:
            chart_notes.append(md_text(f"{t['charts_skipped']} {exc}"))
            result.warnings.append(f"charts skipped: {exc}")
        else:
            result.charts = drawn.files
            result.warnings.extend(drawn.warnings)
            chart_notes.extend(md_text(w) for w in drawn.warnings)
            alts = ["radar: category scores", "bar chart: dimension means"]
            files = [{"alt": alt, "href": quote(p.name)} for alt, p in zip(alts, drawn.files, strict=True)]
            if drawn.font is not None:
                chart_notes.append(md_text(f"{'字体' if zh else 'font'}: {drawn.font.name}"))
    else:
        chart_notes.append(md_text(f"{t['charts_skipped']} {'--no-charts' if not charts else 'no output file'}"))

    context = {
        "t": t,
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "version": __version__,
        "runs_table": _runs_table(shown, t, baseline),
        "run_notes": _run_notes(shown, lang),
        "warnings": [md_text(w) for w in header_warnings],
        "leaderboard": _leaderboard(shown, rubric, t, zh, baseline),
        "charts": {"files": files, "notes": chart_notes},
        "dimension_tables": [_dimension_table(r, rubric, t, zh) for r in runs],
        "pairwise": _pairwise(shown, t, lang),
        "weak_spots": [_weak_spots(r, t) for r in runs],
        "comparisons": [_comparison_block(c, t, zh) for c in comparisons],
    }
    return render_markdown(context), result


def write_report(run_dirs: Sequence[Path], out: Path, baseline_dir: Path | None = None, lang: str = "zh",
                 charts: bool = True, seed: int = 0, warn: Callable[[str], None] | None = None) -> ReportResult:
    """Load the run folders, write ``out`` (and its charts) and return what happened.

    An unfinished or unreadable run in ``run_dirs`` is skipped and named (in the report and through
    ``warn``); an unusable baseline, or no usable run at all, raises RunError."""
    warn = warn or (lambda _msg: None)
    baseline = load_run(baseline_dir) if baseline_dir is not None else None
    runs: list[Run] = []
    skipped: list[str] = []
    for d in expand_runs(run_dirs):
        if baseline is not None and Path(d).resolve() == baseline.path.resolve():
            runs.append(baseline)
            continue
        try:
            runs.append(load_run(d))
        except RunError as exc:
            skipped.append(f"skipped: {exc}")
    if not runs:
        raise RunError("no finished run folder to report on" + (f" ({'; '.join(skipped)})" if skipped else ""))
    for s in skipped:
        warn(s)
    out.parent.mkdir(parents=True, exist_ok=True)
    text, result = build_report(runs, baseline, lang=lang, out=out, charts=charts, seed=seed, skipped=skipped)
    for w in result.warnings:
        warn(w)
    out.write_text(text, encoding="utf-8")
    result.path = out
    return result
