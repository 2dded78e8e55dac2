"""``alignbench report``: a Markdown page from finished run folders, ready to paste into release notes.

Reads only run folders (never calls a judge). The page: what was run (enough to reproduce it), a
leaderboard in AlignBench's column order with 95% CIs, per-turn scores when a run judged multi-turn
dialogues, per-category × dimension tables, charts,
pairwise win rates when a run folder holds them, weak spots with the judge's reasons, and the
comparison with a baseline run (paired tests, see ``compare.py``).

Everything that comes from data (model names, questions, judge text) passes through ``md_text``
before it reaches the template, so a ``|`` cannot split a table cell, a backtick cannot open a code
span, ``<b>`` stays text and a newline cannot end a list item. The template only does layout.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from alignbench import safejson
from alignbench.reporting.compare import Comparison, analysis_text, compare_runs, in_lang
from alignbench.rubrics import Rubric, RubricError, load_rubric
from alignbench.rundir import Run, RunError, expand_runs, load_run, unique_labels
from alignbench.stats import fmt
from alignbench.types import Status, Summary, __version__

TEMPLATES = Path(__file__).parent / "templates"
QUESTION_CHARS = 160
REASON_CHARS = 240

STRINGS: dict[str, dict[str, str]] = {
    "zh": {
        "title": "AlignBench 评测报告", "generated": "生成于", "scale_note": "1–10 分制",
        "runs": "运行信息", "leaderboard": "排行榜", "charts": "图表", "dimensions": "类别 × 维度得分",
        "pairwise": "成对比较", "weak": "薄弱环节", "comparison": "与基线运行的比较",
        "model": "模型", "judge": "评审模型", "rubric": "评分细则", "questions": "题目集", "answers": "回答文件",
        "date": "日期", "judged": "计入数 n", "excluded": "排除", "spend": "用量（输入+输出 tokens）· 费用", "baseline_mark": "基线",
        "overall": "总分", "category": "类别", "all": "全部",
        "leaderboard_note": "每格为均值及 95% 置信区间（按类别分层的 bootstrap）；每列最佳值加粗。总分 = (推理 + 语言) / 2，"
                            "推理、语言分别为其类别均分的平均（AlignBench 公式）。评审失败的回答不计入任何均值；n 为计入均值的评审数"
                            "（与查看器相同）。",
        "incomplete_note": "† 该组缺少部分类别，不能与完整的 AlignBench 分数相比。",
        "mtbench_note": "每格为均值及 95% 置信区间；每列最佳值加粗。总分为 MT-Bench 分数：按 FastChat 的 show_result.py，"
                        "对所有已评审的轮次取均值（置信区间对题目做 bootstrap）；类别分为各段对话（两轮均值）的平均。"
                        "评审失败的轮次不计入任何均值。",
        "weak_lowest": "得分最低的子类别：", "weak_examples": "示例（这些子类别中得分最低的题目）：",
        "question": "题目", "judge_reason": "评审理由", "judge_base": "基线评审", "judge_new": "本次评审",
        "none": "无。", "gains": "进步最大的题目", "drops": "退步最大的题目",
        "vs": "对比基线", "score": "分数", "base_col": "基线", "new_col": "本次", "delta": "Δ",
        "delta_ci": "Δ 的 95% CI", "p": "p", "p_holm": "p (Holm)", "n": "n", "sig": "显著",
        "yes": "是", "no": "否", "failures_none": "无", "no_answer": "无回答",
        "pw_model": "模型", "pw_wr": "胜率", "pw_lc": "LC 胜率", "pw_wtl": "胜 / 平 / 负", "pw_incons": "位置不一致",
        "charts_skipped": "图表已跳过：",
        "dialogues": "多轮对话：各轮得分", "turn": "轮次", "turn_k": "第{k}轮", "failed_col": "失败",
        "dialogues_note": "每格为该轮在各段对话中的均值及 95% 置信区间（对该轮的回答做 bootstrap）；评审失败的轮次不计入均值，"
                          "其所在的整段对话在其他表格中也记为失败。每段对话的得分为其所评各轮的均值。",
        "dialogues_run": "{label}：{n} 段对话，共评审 {judged} 个轮次",
    },
    "en": {
        "title": "AlignBench report", "generated": "Generated", "scale_note": "1–10 scale",
        "runs": "Runs", "leaderboard": "Leaderboard", "charts": "Charts", "dimensions": "Category × dimension scores",
        "pairwise": "Pairwise", "weak": "Weak spots", "comparison": "Against the baseline run",
        "model": "model", "judge": "judge", "rubric": "rubric", "questions": "question set", "answers": "answers",
        "date": "date", "judged": "n counted", "excluded": "excluded", "spend": "tokens (prompt+completion) · cost",
        "baseline_mark": "baseline",
        "overall": "Overall", "category": "category", "all": "all",
        "leaderboard_note": "Each cell: mean and 95% CI (bootstrap stratified by category); best value per column "
                            "in bold. Overall = (reasoning + language) / 2, each group the mean of its category "
                            "means (AlignBench's formula). Failed judgments are excluded from every mean; n counts the "
                            "judgments in the means (as the viewer does).",
        "incomplete_note": "† the group lacks some categories: not comparable with full AlignBench scores.",
        "mtbench_note": "Each cell: mean and 95% CI; best value per column in bold. Overall is the MT-Bench score as "
                        "FastChat's show_result.py computes it, the mean over all judged turns (CI: bootstrap over "
                        "questions); a category is the mean of its dialogues (each the mean of its two turns). "
                        "Failed turns are excluded from every mean.",
        "weak_lowest": "Lowest-scoring subcategories:", "weak_examples": "Examples (the lowest-scored questions in "
                                                                         "those subcategories):",
        "question": "question", "judge_reason": "judge", "judge_base": "judge (baseline)",
        "judge_new": "judge (this run)", "none": "None.", "gains": "Largest gains", "drops": "Largest drops",
        "vs": "vs baseline", "score": "score", "base_col": "baseline", "new_col": "this run", "delta": "Δ",
        "delta_ci": "95% CI of Δ", "p": "p", "p_holm": "p (Holm)", "n": "n", "sig": "significant",
        "yes": "yes", "no": "no", "failures_none": "none", "no_answer": "no answer",
        "pw_model": "model", "pw_wr": "win rate", "pw_lc": "LC win rate", "pw_wtl": "wins / ties / losses",
        "pw_incons": "position inconsistency", "charts_skipped": "Charts skipped:",
        "dialogues": "Multi-turn dialogues: score per turn", "turn": "turn", "turn_k": "turn {k}",
        "failed_col": "failed",
        "dialogues_note": "Each cell: the mean of that turn over the dialogues and its 95% CI (bootstrap over the "
                          "turn's answers); a failed turn is left out of the mean and fails its whole dialogue in "
                          "the other tables. A dialogue scores the mean of its judged turns.",
        "dialogues_run": "{label}: {n} dialogues, {judged} judged turns",
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


def _run_label(r: Run, t: dict[str, str], baseline: Run | None) -> str:
    """A run's name as every table shows it: escaped, and marked when it is the baseline."""
    return md_text(r.label) + (f" ({t['baseline_mark']})" if baseline is not None and r is baseline else "")


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
        cells = [_run_label(r, t, baseline)]
        for key, _ in cols:
            value, ci, complete = _score(r.summary, key)
            text = fmt.num(value)
            if key in best and value is not None and round(value, 2) == round(best[key], 2):
                text = f"**{text}**"
            mark = "" if complete else " †"
            incomplete |= not complete
            cells.append((f"{text}{mark} " + (f"({fmt.ci(ci)})" if ci else "")).strip())
        cells.append(str(r.summary.n_ok))
        rows.append(cells)
    header = [t["model"], *(h for _, h in cols), "n"]
    return {"header": header, "rows": rows, "align": ["l", *["r"] * (len(cols) + 1)], "incomplete": incomplete,
            "mtbench": any((r.summary.model_extra or {}).get("mtbench") for r in runs)}


def _failures(summary: Summary, t: dict[str, str]) -> str:
    parts = [f"{k} {v}" for k, v in sorted(summary.failed_by_status.items())]
    missing = summary.run.n_missing_answers
    if missing:
        parts.append(f"{t['no_answer']} {missing}")
    return ", ".join(parts) if parts else t["failures_none"]


def _runs_table(runs: Sequence[Run], t: dict[str, str], baseline: Run | None, zh: bool = False) -> dict[str, Any]:
    """One compact row per run: file names (never a local path), the questions' sha256 cut to 12 digits (as
    the terminal shows it), n = the judgments counted in the means (as in the leaderboard and the viewer)."""
    rows = []
    for r in runs:
        run = r.manifest
        judge = run.judge
        temp = judge.get("temperature")
        model = fmt.served_label(str(judge.get("model", "?")), fmt.judge_served(run), zh)  # what the server served
        judge_text = f"{judge.get('backend', '?')} · {model}" + (
            f" · T={temp}" if temp is not None else "")
        questions = run.questions
        sha = str(questions.get("sha256") or "")
        digest = f" `{sha[:12]}`" if re.fullmatch(r"[0-9a-f]{12,}", sha) else ""
        answers = run.answers if isinstance(run.answers, str) else "?"
        rows.append([_run_label(r, t, baseline), md_text(judge_text), md_text(run.rubric or "?"),
                     md_text(_file_name(questions.get("path", "?"))) + digest, md_text(_file_name(answers)),
                     md_text(str(run.created)[:10]), str(r.summary.n_ok), md_text(_failures(r.summary, t)),
                     md_text(_spend(r.summary, zh))])
    header = [t["model"], t["judge"], t["rubric"], t["questions"], t["answers"], t["date"], t["judged"],
              t["excluded"], t["spend"]]
    return {"header": header, "rows": rows, "align": ["l"] * 6 + ["r", "l", "l"]}


def _file_name(path: str) -> str:
    """A recorded input path as the report shows it: its file name (a run's folder keeps the full paths)."""
    return PurePath(path.replace("\\", "/")).name or path


def _spend(summary: Summary, zh: bool = False) -> str:
    """Provider-reported tokens of the run and their cost at the price table's prices (docs/batch.md)."""
    from alignbench.cost import spend_line

    u = summary.usage
    return f"{u.prompt_tokens:,}+{u.completion_tokens:,} · {spend_line(u, zh)}"


def _protocol_notes(r: Run, zh: bool) -> list[str]:
    """Judge-protocol facts of a run (docs/protocols.md): answers whose reasoning was hidden from the judge
    or leaked into the final text, and its figures (``stats.fmt.FIGURES``); per-turn scores: own table."""
    extra = r.summary.model_extra or {}
    out = []
    reasoning = extra.get("answer_reasoning") or {}
    if reasoning.get("removed") or reasoning.get("leaked"):
        out.append(md_text(
            f"{r.label}: {reasoning.get('removed', 0)} 个回答的思考过程未展示给评审；{reasoning.get('leaked', 0)} 个回答的"
            "思考内容泄漏到最终回答中" if zh else f"{r.label}: {reasoning.get('removed', 0)} answer(s) had their reasoning "
            f"hidden from the judge; {reasoning.get('leaked', 0)} had reasoning leaked into the final text"))
    if shown := fmt.figures(r.summary.model_dump(mode="json"), zh):
        out.append(md_text(f"{r.label}: " + ("；" if zh else "; ").join(f"{label} {text}" for label, text in shown)))
    if ids := (extra.get("injection") or {}).get("question_ids"):  # a model that tried to grade itself: where
        listed = ", ".join(str(i) for i in ids[:12]) + (" …" if len(ids) > 12 else "")
        out.append(md_text(f"{r.label}: 这些题目的回答自带评分（疑似注入），评审复述的评分未被采用：{listed}" if zh else
                           f"{r.label}: answers carrying a verdict of their own (injection attempts; the judge's copies "
                           f"of it were not read as its verdict) on questions {listed}"))
    return out


def _run_notes(runs: Sequence[Run], lang: str) -> list[str]:
    from alignbench.upstream import protocol_label

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
    # what each run's numbers can stand next to: the official protocol, or a rubric of ours (not the leaderboard's)
    by_label: dict[str, list[str]] = {}
    for r in runs:
        by_label.setdefault(protocol_label(r.manifest), []).append(r.label)
    notes += [md_text(f"{', '.join(names)}: {'评审协议' if zh else 'protocol'}: {label}") for label, names in by_label.items()]
    notes += [n for r in runs for n in _protocol_notes(r, zh)]
    for what, zh_what, values in (("rubric", "评分细则", {_as_judged(r, runs)[1] for r in runs}),
                                  ("judge", "评审模型", {_as_judged(r, runs)[0] for r in runs}),
                                  ("question set", "题目集", {r.questions_sha for r in runs})):
        if len(values) > 1:
            notes.append(md_text(f"运行之间的{zh_what}不同：排行榜上的行不能直接比较" if zh else
                                 f"the runs differ in {what}: leaderboard rows are not directly comparable"))
    return notes


def _turns(summary: Summary) -> dict[str, Any]:
    """Per-turn scores of a run's dialogues (``summary.json`` → ``dialogues.turns``, written by
    ``aggregate._protocol_sections``); empty for a run without dialogues."""
    extra = summary.model_extra or {}
    return (extra.get("dialogues") or {}).get("turns") or {}


def _dialogue_section(runs: Sequence[Run], t: dict[str, str], baseline: Run | None) -> dict[str, Any] | None:
    """The per-turn table, or None when no run has dialogues (a single-turn report stays as it was).

    Why a section: a dialogue's score is the mean of its turns, so the leaderboard hides whether a model
    holds up as the dialogue goes on; the rows here are turn 1, 2, … with each run's score, 95% CI, n and
    failures as a column group (runs without dialogues have no group). With one run in the report the
    columns are not prefixed with its name."""
    mine = [r for r in runs if _turns(r.summary)]
    if not mine:
        return None
    cols = [t["score"], "95% CI", "n", t["failed_col"]]
    header = [t["turn"], *(f"{_run_label(r, t, baseline)} · {c}" for r in mine for c in cols)] if len(runs) > 1 \
        else [t["turn"], *cols]
    rows = []
    for k in sorted({k for r in mine for k in _turns(r.summary)}, key=int):
        cells = [md_text(t["turn_k"].format(k=k))]
        for r in mine:
            v = _turns(r.summary).get(k) or {}  # a run whose dialogues are all shorter has no turn k
            ci = v.get("ci")
            cells += [fmt.num(v.get("score")), fmt.ci(ci) or "—", str(v.get("n", 0)),
                      str(v.get("n_failed", 0))]
        rows.append(cells)
    notes = [md_text(t["dialogues_note"])]
    for r in mine:
        d = (r.summary.model_extra or {})["dialogues"]
        notes.append(md_text(t["dialogues_run"].format(label=r.label, n=d.get("n", 0), judged=d.get("judged_turns", 0))))
    return {"header": header, "rows": rows, "align": ["l", *["r"] * (len(header) - 1)], "notes": notes}


def _dimension_table(r: Run, rubric: Rubric, t: dict[str, str], zh: bool) -> dict[str, Any]:
    dims = [d for d in rubric.all_dimensions() if d in r.summary.dimensions]
    cats = r.summary.categories
    rows = []
    for c in rubric.categories:
        if c.name not in cats:
            continue
        entry = cats[c.name]
        rows.append([c.name if zh else c.en, *(fmt.num(entry.dimensions[d].mean, 1) if d in entry.dimensions
                                                else "" for d in dims), fmt.num(entry.score), str(entry.n)])
    totals = r.summary.dimensions
    rows.append([f"**{t['all']}**", *(fmt.num(totals[d].mean, 1) for d in dims), fmt.num(r.summary.overall),
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
        head = f"Q{j.question_id} · {j.category} / {j.subcategory} · {fmt.num(j.overall, 0)}/10"
        out.append({"head": md_text(head), "question": md_text(q.question, QUESTION_CHARS) if q else "",
                    "reason": md_text(analysis_text(j.raw), REASON_CHARS) or "—"})
    lines = [md_text(f"{s.category} / {s.subcategory}: {fmt.num(s.score)} (n={s.n})") for s in worst]
    return {"label": md_text(r.label), "subcategories": lines, "examples": out}


def _pairwise(runs: Sequence[Run], t: dict[str, str], lang: str) -> list[dict[str, Any]]:
    """Tables from ``pairwise_summary.json`` files (written by the pairwise mode), read tolerantly:
    a file that is missing is no section; a file that is unreadable is a note; a missing field is —."""
    from alignbench.pairwise.compare import PairwiseSummary

    blocks, seen = [], set()
    for r in runs:
        path = r.pairwise_file
        if not path.is_file() or path.resolve() in seen:
            continue
        seen.add(path.resolve())
        notes: list[str] = []
        rows: list[list[str]] = []
        data: PairwiseSummary | None = None
        try:
            data = PairwiseSummary.model_validate(safejson.read_json(path))  # a ValidationError is a ValueError
            if "models" not in data.model_fields_set:
                raise ValueError("no 'models' mapping")
        except (OSError, ValueError) as exc:
            notes.append(md_text(f"{path}: unreadable ({exc})"))
        for name, m in (data.models if data is not None else {}).items():
            wtl = [m.get(k) for k in ("n_wins", "n_ties", "n_losses")]
            incons = m.get("inconsistency")
            rows.append([md_text(name), fmt.pm(m.get("win_rate"), m.get("win_rate_se")),
                         fmt.pm(m.get("lc_win_rate"), m.get("lc_win_rate_se")),
                         " / ".join(str(v) if isinstance(v, int) else "—" for v in wtl),
                         f"{fmt.pct(incons, 1)}" if isinstance(incons, (int, float)) and 0 <= incons <= 1 else
                         (f"{fmt.num(incons, 1)}%" if isinstance(incons, (int, float)) else "—")])
        base = data.baseline if data is not None else None
        title = md_text(f"{path.parent.name}/pairwise_summary.json" + (
            f" · baseline {base}" if isinstance(base, str) else ""))
        if rows:
            notes.append(md_text("胜率与 LC（长度控制）胜率为百分数 ± 标准误；位置不一致 = 交换顺序后判决改变的比例"
                                 if lang == "zh" else "Win rates in percent ± standard error; position "
                                 "inconsistency = share of pairs whose verdict changes when the order is swapped"))
        blocks.append({"title": title, "header": [t["pw_model"], t["pw_wr"], t["pw_lc"], t["pw_wtl"], t["pw_incons"]],
                       "rows": rows, "align": ["l", "r", "r", "r", "r"], "notes": notes})
    return blocks


def _disagreements(c: Comparison, zh: bool) -> list[str]:
    """Rows whose Δ CI and significance seem to disagree, with the reason in words: the CI is a paired
    percentile bootstrap, significance a sign-flip permutation test (Holm-adjusted for categories); they
    answer slightly different questions, and with few questions they part at the edge."""
    alpha = float(c.settings.get("alpha", 0.05))
    out = []
    for row in c.rows if c.comparable else []:
        x = row.test
        if x is None or x.ci is None or None in x.ci:
            continue
        excludes = x.ci[0] > 0 or x.ci[1] < 0
        if excludes == row.significant:
            continue
        name = row.name if zh else row.en
        p = fmt.p_value(x.p_value)
        if excludes and row.kind == "category" and x.p_value is not None and x.p_value < alpha:
            text = (f"{name}：Δ 的置信区间不含 0，单独检验 p = {p} < {alpha:g}，但经 Holm 校正（8 个类别同时检验）后 "
                    f"p = {fmt.p_value(row.p_holm)}，因此不算显著。" if zh else
                    f"{name}: the CI of Δ excludes 0 and its own test gives p = {p} < {alpha:g}, but after the Holm "
                    f"correction for testing 8 categories at once p = {fmt.p_value(row.p_holm)}: not significant.")
        elif excludes:
            text = (f"{name}：Δ 的置信区间（bootstrap）不含 0，但置换检验 p = {p} ≥ {alpha:g}。两者方法不同：bootstrap "
                    f"区间在题目少时（此处 n = {x.n}）偏窄，置换检验不依赖这一近似；显著与否以置换检验的 p 为准，"
                    "这个差异应视为边缘证据。" if zh else
                    f"{name}: the CI of Δ (bootstrap) excludes 0, yet the permutation test gives p = {p} ≥ {alpha:g}. "
                    f"They are different methods: a bootstrap interval runs narrow with few questions (n = {x.n} "
                    "here), the permutation test does not rely on that approximation; significance follows the "
                    "permutation p, so read this difference as borderline evidence.")
        else:
            text = (f"{name}：置换检验显著（p = {p}），但 Δ 的 bootstrap 置信区间含 0：两种方法在边缘处不一致，"
                    "应视为边缘证据。" if zh else
                    f"{name}: the permutation test is significant (p = {p}) while the bootstrap CI of Δ includes 0: "
                    "the two methods part at the edge; read it as borderline evidence.")
        out.append(md_text(text))
    return out


def _comparison_block(c: Comparison, t: dict[str, str], zh: bool) -> dict[str, Any]:
    rows = []
    for row in c.rows:
        name = row.name if zh else row.en
        name = f"**{name}**" if row.kind != "category" else name
        if row.test is None:
            rows.append([name, "—", "—", "—", "", "", "", "0", md_text(row.note)])
            continue
        x = row.test
        p_holm = fmt.p_value(row.p_holm) if row.kind == "category" else ""
        rows.append([name, fmt.num(x.base), fmt.num(x.new), fmt.signed(x.delta), fmt.ci(x.ci, sep=" … ", sign=True),
                     fmt.p_value(x.p_value), p_holm, str(x.n), f"**{t['yes']}**" if row.significant else t["no"]])
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
            head = (f"Q{m.question_id} · {m.category} / {m.subcategory} · {fmt.num(m.base, 0)} → {fmt.num(m.new, 0)} "
                    f"({fmt.signed(m.delta).replace('.00', '')})")
            out.append({"head": md_text(head), "question": md_text(m.question, QUESTION_CHARS) if m.question else "",
                        "base_reason": md_text(m.base_reason, REASON_CHARS) or "—",
                        "new_reason": md_text(m.new_reason, REASON_CHARS) or "—"})
        return out

    return {
        "title": md_text(f"{c.new_label} {t['vs']} {c.base_label}"),
        "problems": [md_text(in_lang(p, zh)) for p in c.problems],
        "why": _disagreements(c, zh),
        "header": ["", t["base_col"], t["new_col"], t["delta"], t["delta_ci"], t["p"], t["p_holm"], t["n"], t["sig"]],
        "rows": rows if c.comparable else [],
        "align": ["l", "r", "r", "r", "r", "r", "r", "r", "l"],
        "method": method,
        "moves": [{"title": t["gains"], "items": items(c.gains)}, {"title": t["drops"], "items": items(c.drops)}],
    }


# -- judge trust: bridged runs, reviews, calibration, bias audits (issue 14) ----------------------

TRUST_STRINGS: dict[str, dict[str, str]] = {
    "zh": {"bridged_mark": "（桥接）", "calibrated_col": "校准总分", "calibration": "校准分数（人类量表）",
           "audit": "评审偏差审查", "probes": "风格反事实探针", "cal_score": "分数", "cal_judge": "仅评审", "cal_ppi": "校准",
           "cal_labels": "仅人工标注", "cal_n": "标注 / 回答", "cal_eff": "等效标注数",
           "calibrated_note": "校准总分：评审分数加人工标注校正后的人类量表估计（预测驱动推断），其 95% CI 同时包含抽样误差与"
                              "评审误差；‡ 表示某些类别标注太少，见下文。"},
    "en": {"bridged_mark": " (bridged)", "calibrated_col": "calibrated", "calibration": "Calibrated scores (human scale)",
           "audit": "Judge bias audit", "probes": "Counterfactual style probes", "cal_score": "score", "cal_judge": "judge only", "cal_ppi": "calibrated",
           "cal_labels": "labels only", "cal_n": "labels / answers", "cal_eff": "effective labels",
           "calibrated_note": "Calibrated: the human-scale estimate from the judge's scores corrected by human labels "
                              "(prediction-powered inference); its 95% CI covers both the sampling error and the "
                              "judge's error. ‡: some categories have too few labels, see below."},
}


def _as_judged(r: Run, runs: Sequence[Run]) -> tuple[str, str]:
    """(judge, rubric) a run's scores are on: a bridged run is on the new judge's scale, named as a shown
    run of that judge names it (so a bridged history plus the new judge's runs is one comparable set)."""
    from alignbench.trust.runs import bridge_info, run_judge

    mark = bridge_info(r)
    if mark is None:
        return r.judge_id, r.rubric_id
    same = [x for x in runs if bridge_info(x) is None and run_judge(x) == mark["to"] and x.rubric_id == mark["to_rubric"]]
    return (same[0].judge_id, same[0].rubric_id) if same else (f"bridged:{mark['to']}", str(mark["to_rubric"]))


def _bridge_notes(runs: Sequence[Run], zh: bool) -> list[str]:
    from alignbench.trust.runs import bridge_info

    notes = []
    for r in runs:
        if (m := bridge_info(r)) is None:
            continue
        src = f"，{m['file']}" if zh and m.get("file") else f", {m['file']}" if m.get("file") else ""
        notes.append(md_text(
            f"{r.label}：评审 {m['from']} 的分数经桥接（单调映射，拟合于 {m['n']} 个两位评审都评过的回答{src}）换算到 "
            f"{m['to']} 的量表；维度分已去除。这不是 {m['to']} 给出的分数，与其运行的配对检验不进行" if zh else
            f"{r.label}: scores of judge {m['from']} put on {m['to']}'s scale through a bridge (a monotone map "
            f"fitted on {m['n']} answers both judged{src}); dimension scores dropped. Not scores {m['to']} gave; "
            "no paired test against its runs"))
    return notes


def _review_notes(runs: Sequence[Run], zh: bool) -> list[str]:
    """How many judgments of each run were reviewed and how far the judge agrees with the reviewers."""
    from alignbench.trust.runs import review_state

    notes = []
    for r in runs:
        agreement, problem = review_state(r)
        if problem:
            notes.append(md_text(f"{r.label}: reviews.jsonl {'无法读取' if zh else 'unreadable'}: {problem}"))
        if agreement is None or not (agreement.n_reviewed or agreement.n_stale):
            continue
        a = agreement
        if zh:
            text = f"{r.label}：人工复核了 {a.n_reviewed} 条评审"
            if a.n_compared:
                text += (f"；其中 {a.n_compared} 条与评审分数比较：平均绝对差 {fmt.num(a.mad)} 分，"
                         f"{fmt.num(100 * (a.within_1 or 0), 0)}% 相差不超过 1 分，复核者平均 {fmt.signed(a.bias)} 分")
            if a.n_stale:
                text += f"；{a.n_stale} 条复核已过期（评审已变）"
        else:
            text = f"{r.label}: {a.line()}" + (f"; reviewer − judge {fmt.signed(a.bias)} on average" if a.n_compared else "")
        notes.append(md_text(text))
    return notes


def _family_warnings(runs: Sequence[Run], zh: bool) -> list[str]:
    """The self-preference warning for the top of the report: a judge and a model of one family."""
    from alignbench.trust import family_report
    from alignbench.trust.runs import bridge_info, judge_names

    live = [r for r in runs if bridge_info(r) is None]
    fam = family_report(sorted({n for r in live for n in judge_names(r)}), sorted({r.model for r in live}))
    if fam.warning is None:
        return []
    if not zh:
        return [md_text(fam.warning)]
    pairs = "；".join(f"{j} 评 {m}（{f}）" for j, m, f in fam.shared)
    return [md_text(f"评审与被评模型属于同一家族：{pairs}。评审可能偏爱同族模型；建议换用跨家族的评审组合"
                    "（--judge a,b，不同家族）再评一次，或用多个评审检查自我偏好")]


def _est(e: Any) -> str:
    return "—" if e is None or e.score is None else (f"{fmt.num(e.score)} ({fmt.ci(e.ci)})" if e.ci else fmt.num(e.score))


def _calibrated_column(board: dict[str, Any], cal_of: Sequence[Any], t: dict[str, str]) -> None:
    """Insert the calibrated overall score (with its CI) after the overall column of the leaderboard;
    ``cal_of[i]`` is the calibration of row i's run (None: no labels of its model)."""
    for cal, row in zip(cal_of, board["rows"], strict=True):
        top = cal.overall if cal is not None else None
        row.insert(2, _est(top.calibrated) + (" ‡" if top is not None and top.flag else "") if top else "—")
    board["header"].insert(2, t["calibrated_col"])
    board["align"].insert(2, "r")


def _calibration_section(cals: Any, t: dict[str, str], zh: bool) -> dict[str, Any]:
    labels = cals.labels
    what = ("评审复核" if zh else "reviews") if labels.kind == "reviews" else ("标注文件" if zh else "labels file")
    head = (f"人工标注来自{what} {labels.source}（{len(labels.labels)} 条）。校准假定每个类别内被标注的回答是随机抽取的。" if zh
            else f"Human labels from the {what} {labels.source} ({len(labels.labels)}). Calibration assumes the "
                 "labelled answers are a random sample within each category.")
    tables = []
    for label, cal in cals.runs.items():
        rows = []
        for row in cal.rows():
            name = row.name if zh else row.en
            name = f"**{md_text(name)}**" if row.kind != "category" else md_text(name)
            rows.append([name, _est(row.judge_only), _est(row.calibrated) + (" ‡" if row.flag else ""),
                         _est(row.labels_only), f"{row.n_labels} / {row.n}", fmt.num(row.effective_labels, 1)])
        notes = [md_text(f"‡ {r.name if zh else r.en}: {r.flag}") for r in cal.rows() if r.flag and r.kind == "category"]
        notes += [md_text(w) for w in cal.warnings if not any(w.startswith(f"{r.key}:") for r in cal.categories)]
        if cal.label_scale:
            lo, hi = cal.label_scale
            notes.append(md_text(f"标注量表 {lo:g}–{hi:g} 线性映射到 {cal.scale[0]:g}–{cal.scale[1]:g}" if zh else
                                 f"labels on {lo:g}–{hi:g}, mapped linearly onto {cal.scale[0]:g}–{cal.scale[1]:g}"))
        tables.append({"label": md_text(label), "rows": rows, "align": ["l", "r", "r", "r", "r", "r"],
                       "header": [t["cal_score"], t["cal_judge"], t["cal_ppi"], t["cal_labels"], t["cal_n"],
                                  t["cal_eff"]], "notes": notes})
    notes = [md_text(w) for w in cals.warnings]
    return {"head": md_text(head), "tables": tables, "notes": notes}


def _direction(value: float | None, ci: Sequence[float] | None, what: tuple[str, str, str]) -> str:
    """'prefers more', 'prefers less' or 'none found' from a slope and its CI."""
    if value is None or not ci:
        return ""
    if ci[0] > 0:
        return what[0]
    if ci[1] < 0:
        return what[1]
    return what[2]


def _audit_block(a: Any, t: dict[str, str], zh: bool) -> dict[str, Any]:
    """One judge's audit as Markdown bullet lines (already escaped)."""
    unit_name = {"chars": ("字", "characters"), "words": ("词", "words")}
    lines: list[str] = []
    if a.length is not None:
        for unit, x in a.length.units.items():
            if x.slope is None:
                continue
            u = unit_name.get(unit, (unit, unit))[0 if zh else 1]
            verdict = _direction(x.slope, x.slope_ci, ("评审偏好更长的回答", "评审偏好更短的回答", "未发现长度偏好") if zh
                                 else ("the judge prefers longer answers", "the judge prefers shorter answers",
                                       "no length preference found"))
            if x.design != "within-question":  # across questions, difficulty can fake or hide a preference
                verdict = ("每道题只有一个回答，不能单独据此判断评审的偏好" if zh else
                           "one answer per question: not evidence of a preference on its own")
            design = (("同题比较" if zh else "within each question") if x.design == "within-question" else
                      ("跨题比较，受题目难度混淆" if zh else "across questions, confounded by question difficulty"))
            rho = fmt.num(x.spearman)
            lines.append(
                f"**长度（{u}{'，jieba 分词' if unit == 'words' else ''}）**：每多 100 {u}，分数 {fmt.signed(x.slope)}（95% CI {fmt.ci(x.slope_ci, sep='…', sign=True)}），"
                f"Spearman {rho}（{fmt.ci(x.spearman_ci, sep='…')}）；{design}，{x.n_answers} 个回答 / {x.n_questions} 道题。"
                f"{verdict}" if zh else
                f"**Length ({u}{', jieba' if unit == 'words' else ''})**: {fmt.signed(x.slope)} points per 100 {u} (95% CI {fmt.ci(x.slope_ci, sep='…', sign=True)}), Spearman {rho} "
                f"({fmt.ci(x.spearman_ci, sep='…')}); {design}, {x.n_answers} answers / {x.n_questions} questions. "
                f"{verdict.capitalize()}.")
        unit = a.length.adjust_unit
        cat_unit = unit or "chars"
        u = unit_name.get(cat_unit, (cat_unit, cat_unit))[0 if zh else 1]
        marked = [f"{c} {fmt.signed(x.slope)} ({fmt.ci(x.slope_ci, sep='…', sign=True)})"
                  for c, x in a.length.categories.get(cat_unit, {}).items()
                  if x.slope is not None and x.slope_ci and (x.slope_ci[0] > 0 or x.slope_ci[1] < 0)
                  and x.design == "within-question"]
        if marked:
            lines.append(f"CI 不含 0 的类别（每 100 {u}，未做多重比较校正，8 个类别中约有 0.4 个会偶然如此）："
                         + "；".join(marked) if zh else
                         f"Categories whose CI excludes 0 (per 100 {u}; not corrected for testing 8 categories, "
                         "where 0.4 are expected by chance): " + "; ".join(marked))
        if a.length.adjusted:
            u = unit_name.get(unit or "", (unit, unit))[0 if zh else 1]
            parts = []
            for model, rows in a.length.adjusted.items():
                top = next((r for r in rows if r.kind == "overall"), None)
                if top is not None and top.score is not None and top.at_equal_length is not None:
                    parts.append(f"{model} {fmt.num(top.score)} → {fmt.num(top.at_equal_length)}（{fmt.signed(top.delta)}）" if zh else
                                 f"{model} {fmt.num(top.score)} → {fmt.num(top.at_equal_length)} ({fmt.signed(top.delta)})")
            if parts:
                lines.append((f"**等长总分**（按{u}）：" if zh else f"**Overall at equal length** (in {u}): ")
                             + ("；" if zh else "; ").join(parts) + ("。线性、所有类别共用一个斜率，也去掉了长度应得的分：这是敏感性参考，不是修正后的分数"
                                                  if zh else ". Linear, one slope for all categories, and it removes what "
                                                  "length deserves too: a sensitivity figure, not a corrected score"))
    if a.format is not None:
        names = {"headings": ("标题", "headings"), "list_items": ("列表项", "list items"), "bold": ("加粗", "bold"),
                 "table_rows": ("表格行", "table rows")}
        for feat, x in a.format.features.items():
            ctl = a.format.controlling_length.get(feat)
            share = a.format.share_with_structure.get(feat, 0.0)
            n = names.get(feat, (feat, feat))[0 if zh else 1]
            if x.slope is None:
                continue
            c = f"{fmt.signed(ctl.slope)}（{fmt.ci(ctl.slope_ci, sep='…', sign=True)}）" if ctl is not None and ctl.slope is not None else "—"
            across = x.design != "within-question"
            lines.append(f"**格式（{n}）**：{fmt.pct(share)} 的回答使用；每个 {fmt.signed(x.slope)} 分（{fmt.ci(x.slope_ci, sep='…', sign=True)}），"
                         f"控制长度后 {c}" + ("；跨题比较，受题目难度混淆" if across else "") if zh else
                         f"**Format ({n})**: used by {fmt.pct(share)} of answers; {fmt.signed(x.slope)} points each "
                         f"({fmt.ci(x.slope_ci, sep='…', sign=True)}), {c.replace('（', ' (').replace('）', ')')} controlling for length"
                         + ("; across questions, confounded by difficulty" if across else ""))
    if a.position is not None:
        p = a.position.overall
        if p.n_pairs:
            rate = fmt.num(p.first_position_rate)
            lines.append(
                f"**位置**（成对比较 {p.n_pairs} 对）：助手1 胜出比例 {rate}（{fmt.ci(p.first_position_ci, sep='…')}；0.5 = 无偏），"
                f"翻转率 {fmt.pct(p.flip_rate, 1)}（{fmt.ci(p.flip_ci, sep='…')}），不一致率 {fmt.pct(p.inconsistency_rate, 1)}" if zh else
                f"**Position** ({p.n_pairs} pairs): first-position win rate {rate} ({fmt.ci(p.first_position_ci, sep='…')}; "
                f"0.5 = none), flip rate {fmt.pct(p.flip_rate, 1)} ({fmt.ci(p.flip_ci, sep='…')}), inconsistency "
                f"{fmt.pct(p.inconsistency_rate, 1)}")
            worst = sorted(((c, s) for c, s in a.position.categories.items() if s.flip_rate), key=lambda x: -x[1].flip_rate)
            if worst:
                lines.append(("翻转率最高的类别：" if zh else "Highest flip rates: ")
                             + ", ".join(f"{c} {fmt.pct(s.flip_rate)} (n={s.n_pairs})" for c, s in worst[:3]))
    if a.self_preference is not None:
        for row in a.self_preference.judges:
            if row.effect is not None:
                lines.append(f"**自我偏好**：{row.judge}（{row.family}）对同族模型比其他评审多给 {fmt.signed(row.effect)} 分"
                             f"（{fmt.ci(row.ci, sep='…', sign=True)}）" if zh else
                             f"**Self-preference**: {row.judge} ({row.family}) gives its own family {fmt.signed(row.effect)} "
                             f"points more than the other judges do ({fmt.ci(row.ci, sep='…', sign=True)})")
            else:
                lines.append(f"{'自我偏好' if zh else 'Self-preference'}: {row.judge}: {row.note}")
    if a.family is not None:
        fams = [f"{r.name} ({r.family})" for r in a.family.rows if r.role == "judge" and r.family]
        if fams:
            lines.append(("评审家族：" if zh else "Judge family: ") + ", ".join(fams))
    lines += [f"{label}{'：' if zh else ': '}{text}" for label, text in fmt.figures(a.as_dict(), zh, of="audit")]
    notes = list(a.notes)
    if a.length is not None:
        notes += list(a.length.warnings)
    if a.format is not None:
        notes += [w for w in a.format.warnings if not w.startswith("no answer has")]
    title = (f"{'评审' if zh else 'judge'} {a.judge} · " + ", ".join(a.runs)
             + (f" · {'成对比较' if zh else 'pairwise'}: {', '.join(Path(s).name for s in a.position_source)}"
                if a.position_source else ""))
    return {"title": md_text(title), "lines": [_bold_md(line) for line in lines], "notes": [md_text(n) for n in notes]}


def _bold_md(line: str) -> str:
    """Escape a bullet line whose only Markdown is a leading **bold** lead-in."""
    if line.startswith("**") and "**" in line[2:]:
        head, rest = line[2:].split("**", 1)
        return f"**{md_text(head)}**{' ' if rest[:1].isspace() else ''}{md_text(rest)}"
    return md_text(line)


def _canary_notes(runs: Sequence[Run], zh: bool) -> list[str]:
    """One line per run judged with the canary (docs/trust.md §7): drift (bold, naming the earlier run)
    or how it compared."""
    out = []
    for r in runs:
        c = getattr(r.summary.run, "canary", None)
        if not isinstance(c, dict):
            continue
        prev = c.get("compared_with") or {}
        if c.get("drift"):
            out.append("**" + md_text(f"{r.label or r.model}: " + (
                f"评审金丝雀漂移：与 {prev.get('time')}（运行 {', '.join(prev.get('run') or [])}）相比平均变化 "
                f"{fmt.signed(c.get('shift'))} 分，p {fmt.p_value(c.get('p_value'))}；评审可能已在同名下更换。" if zh else
                f"judge canary drift: {fmt.signed(c.get('shift'))} points vs {prev.get('time')} (run "
                f"{', '.join(prev.get('run') or [])}), p {fmt.p_value(c.get('p_value'))}; the judge may have "
                "changed behind the same name.")) + "**")
        elif prev:
            out.append(md_text(f"{r.label or r.model}: " + (
                f"评审金丝雀：与 {prev.get('time')} 相比平均变化 {fmt.signed(c.get('shift'))} 分，未见漂移。" if zh else
                f"judge canary: {fmt.signed(c.get('shift'))} points vs {prev.get('time')}, no drift.")))
        else:
            out.append(md_text(f"{r.label or r.model}: " + ("评审金丝雀：首次记录。" if zh else
                                                            "judge canary: first record of this judge.")))
    return out


def _probe_blocks(runs: Sequence[Run], zh: bool) -> list[dict[str, Any]]:
    """Per run with ``probes.json`` (``alignbench probe``): each rewrite's paired effect on the judge's score,
    overall then per category. A judge that ignores style shows about 0; a CI that excludes 0 is a bias
    in the judge, measured on the same answers (docs/trust.md §6)."""
    from alignbench.probes import PROBES_FILE

    blocks = []
    for r in runs:
        path = r.dir / PROBES_FILE
        if not path.is_file():
            continue
        try:
            data = safejson.read_json(path)
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict):
            continue
        rows = []
        for name, p in data.get("probes", {}).items():
            for cat, e in [("全部" if zh else "all", p["overall"]), *p.get("categories", {}).items()]:
                rows.append([md_text(name) if cat in ("全部", "all") else "", md_text(cat), fmt.signed(e.get("mean")),
                             fmt.ci(e.get("ci"), sign=True), fmt.pct(e.get("share_moved")), str(e.get("n", 0))])
        header = (["探针", "类别", "效应", "95% CI", "变动比例", "n"] if zh
                  else ["probe", "category", "effect", "95% CI", "moved", "n"])
        note = ("效应 = 改写后与原回答综合得分之差的均值（同一回答配对），只改风格不改内容；CI 不含 0 即评审对该风格有偏好。" if zh else
                "effect = mean paired change (rewrite − original overall score) on the same answers, style only; "
                "a CI that excludes 0 is the judge's preference for that style.")
        blocks.append({"title": md_text(f"{r.label or r.model} · {data.get('judge')}"), "note": note,
                       "header": header, "rows": rows, "align": ["l", "l", "r", "r", "r", "r"]})
    return blocks


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
                 skipped: Sequence[str] = (), labels: Any = None, label_scale: str | None = None,
                 audit: bool = True, compare_dirs: Sequence[Path] = ()) -> tuple[str, ReportResult]:
    """The report text for loaded runs (and, when ``out`` is given, the charts beside it).

    ``labels`` (a ``trust.runs.LabelSet``, on ``label_scale``): one calibration per run, shown as a
    calibrated column and a section. ``audit``: the bias section (``trust.runs.audit_runs`` over the runs
    not bridged, with ``compare_dirs`` for position). Runs made by ``trust.runs.bridged_run`` are
    marked as bridged."""
    from alignbench.trust.runs import audit_runs, bridge_info, calibrate_runs

    if lang not in STRINGS:
        raise ValueError(f"unknown language {lang!r}; use zh or en")
    t = {**STRINGS[lang], **TRUST_STRINGS[lang]}
    zh = lang == "zh"
    rubric = _rubric_for(runs)
    shown = list(runs) + ([baseline] if baseline is not None and all(baseline is not r for r in runs) else [])
    unique_labels(shown)
    cals = calibrate_runs(shown, labels, label_scale=label_scale, seed=seed) if labels is not None else None
    audits = (audit_runs([r for r in shown if bridge_info(r) is None], compare_dirs=compare_dirs, seed=seed)
              if audit and any(bridge_info(r) is None for r in shown) else [])
    cal_of = [cals.runs.get(r.label) for r in shown] if cals is not None else []
    for r in shown:
        if bridge_info(r) is not None:
            r.label += t["bridged_mark"]
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
    failed_all = [r for r in shown if r.summary.n_ok == 0]
    for r in failed_all:  # said in words at the top, not shown as an empty chart and bare headings
        by = ", ".join(f"{k} {v}" for k, v in sorted(r.summary.failed_by_status.items()))
        header_warnings.append(f"{r.label}: 所有 {r.summary.n_failed} 条评审均失败（{by}），没有得分；见 judgments.jsonl"
                               if zh else f"{r.label}: every judgment failed ({r.summary.n_failed}: {by}), so there "
                               "is no score; see judgments.jsonl")
    if len(failed_all) == len(shown):
        chart_notes.append(md_text("所有评审均失败：未绘制图表" if zh else "every judgment failed: no chart drawn"))
    elif charts and out is not None:
        from alignbench.reporting.charts import ChartsUnavailable, Series, render_charts

        series = [Series(r.label,
                         {c: (cat.score if (cat := r.summary.categories.get(c)) else None)
                          for c in rubric.category_names()},
                         {d: v.mean for d, v in r.summary.dimensions.items()}) for r in shown
                  if r.summary.n_ok > 0]
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

    board = _leaderboard(shown, rubric, t, zh, baseline)
    if cals is not None:
        _calibrated_column(board, cal_of, t)
    context = {
        "t": t,
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "version": __version__,
        "runs_table": _runs_table(shown, t, baseline, lang == "zh"),
        "run_notes": _run_notes(shown, lang) + _bridge_notes(shown, zh) + _review_notes(shown, zh)
                     + _canary_notes(shown, zh),
        "warnings": [md_text(w) for w in header_warnings],
        "top_warnings": _family_warnings(shown, zh),
        "leaderboard": board,
        "calibration": _calibration_section(cals, t, zh) if cals is not None else None,
        "charts": {"files": files, "notes": chart_notes},
        "dimension_tables": [_dimension_table(r, rubric, t, zh) for r in runs],
        "pairwise": _pairwise(shown, t, lang),
        "weak_spots": [_weak_spots(r, t) for r in runs],
        "comparisons": [_comparison_block(c, t, zh) for c in comparisons],
        "audits": [_audit_block(a, t, zh) for a in audits],
        "probes": _probe_blocks(shown, zh),
        "dialogues": _dialogue_section(shown, t, baseline),
    }
    return render_markdown(context), result


def write_report(run_dirs: Sequence[Path], out: Path, baseline_dir: Path | None = None, lang: str = "zh",
                 charts: bool = True, seed: int = 0, warn: Callable[[str], None] | None = None,
                 bridge: tuple[Any, str] | None = None, labels: Any = None, label_scale: str | None = None,
                 compare_dirs: Sequence[Path] = (), audit: bool = True) -> ReportResult:
    """Load the run folders, write ``out`` (and its charts) and return what happened.

    An unfinished or unreadable run in ``run_dirs`` is skipped and named (in the report and through
    ``warn``); an unusable baseline, or no usable run at all, raises RunError. ``bridge`` (a
    ``trust.Bridge`` and the file it came from): every run of its old judge and rubric is put on the
    new judge's scale and marked as bridged. ``labels``/``label_scale``/``compare_dirs``/``audit``: see
    ``build_report``."""
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
    if bridge is not None:
        from alignbench.trust.runs import bridged_run, bridges_run

        fit, source = bridge
        swap = {id(r): bridged_run(fit, r, source, seed=seed) for r in [*runs, baseline] if r is not None
                and bridges_run(fit, r)}
        if not swap:
            skipped.append(f"bridge {source}: no run was judged by its old judge {fit.old_judge} ({fit.old_rubric}); "
                           "nothing was bridged")
        runs = [swap.get(id(r), r) for r in runs]
        baseline = swap.get(id(baseline), baseline) if baseline is not None else None
    for s in skipped:
        warn(s)
    out.parent.mkdir(parents=True, exist_ok=True)
    text, result = build_report(runs, baseline, lang=lang, out=out, charts=charts, seed=seed, skipped=skipped,
                                labels=labels, label_scale=label_scale, audit=audit, compare_dirs=compare_dirs)
    for w in result.warnings:
        warn(w)
    out.write_text(text, encoding="utf-8")
    result.path = out
    return result
