"""`alignbench report`, `show --baseline-run`, the paired statistics and the charts.

Run folders are written with the real ``RunFolder.write_run`` from synthetic judgments (known scores,
so expected deltas are exact); one end-to-end test scores data/zh through the stub judge over HTTP.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import QUESTIONS, ROOT, run_cli, write_jsonl
from markdown_it import MarkdownIt

from alignbench.data import file_sha256, load_questions
from alignbench.reporting.compare import (
    RunError,
    compare_runs,
    group_weights,
    holm,
    load_run,
    paired_bootstrap_ci,
    paired_test,
    question_weights,
    sign_flip_pvalue,
)
from alignbench.reporting.markdown import build_report, md_text, write_report
from alignbench.rubrics import load_rubric
from alignbench.rundir import RunFolder
from alignbench.scoring import build_summary, manifest
from alignbench.types import Judgment, Question, Status, UsageTotals

RUB = load_rubric("alignbench")
QS = load_questions(QUESTIONS, RUB)
JUDGE = {"name": "openai:gpt-4o", "backend": "openai", "model": "gpt-4o", "temperature": 0.0}
NASTY = "结论 | 不对\n```\nrm -rf / | cat\n```\n# 标题\n<b>粗体</b> <script>x()</script> [链接](http://x) *强调*"


def md() -> MarkdownIt:
    return MarkdownIt("commonmark").enable(["table", "strikethrough"])


def base_score(q: Question) -> float:
    return float(3 + q.id % 5)  # 3..7, varies inside every category


def make_run(path: Path, model: str, overall: Callable[[Question], float | None] = base_score,
             questions: list[Question] = QS, questions_path: Path = QUESTIONS, judge: dict | None = None,
             rubric_id: str | None = None, raw: Callable[[Question], str] | None = None) -> Path:
    """A finished run folder written by the real RunFolder.write_run; ``overall`` None = a parse failure."""
    judgments = []
    for q in questions:
        atype = RUB.answer_type(q.category, q.subcategory)
        score = overall(q)
        ok = score is not None
        text = raw(q) if raw else f"第{q.id}题分析：回答尚可。\n{{'综合得分': {score}}}"
        judgments.append(Judgment(
            question_id=q.id, model=model, category=q.category, subcategory=q.subcategory, answer_type=atype,
            status=Status.OK if ok else Status.PARSE_FAILED,
            scores={d: score for d in RUB.answer_types[atype].dimensions} if ok else {},
            overall=score, judge=(judge or JUDGE)["name"], rubric=rubric_id or RUB.id, prompt_hash="0" * 16,
            raw=text, detail=None if ok else "no score found"))
    run = manifest(model, judge or JUDGE, RUB, {"path": str(questions_path), "sha256": file_sha256(questions_path)},
                   f"answers/{model}.jsonl").model_copy(update={"rubric": rubric_id or RUB.id})
    with RunFolder(path) as folder:
        folder.write_run(judgments, build_summary(judgments, RUB, run, UsageTotals(), seed=0))
    return path


# ================================================================================================
# statistics, against hand-computed values
# ================================================================================================


def test_group_weights_are_alignbench_formula():
    group_of = {c.name: c.group for c in RUB.categories}
    w = group_weights(RUB.category_names(), group_of)
    assert w["数学计算"] == w["逻辑推理"] == pytest.approx(1 / 4)
    assert all(w[c] == pytest.approx(1 / 12) for c in RUB.category_names("language"))
    assert sum(w.values()) == pytest.approx(1.0)
    partial = group_weights(["数学计算", "基本任务", "中文理解"], group_of)
    assert partial == pytest.approx({"数学计算": 0.5, "基本任务": 0.25, "中文理解": 0.25})
    assert question_weights(["a", "a", "b"], {"a": 0.5, "b": 0.5}).tolist() == [0.25, 0.25, 0.5]


def test_sign_flip_exact_hand_computed():
    # diffs 1,2,3: only +++ and --- reach |mean| >= 2 -> 2 of 8 patterns
    assert sign_flip_pvalue([1, 2, 3]) == (0.25, True)
    assert sign_flip_pvalue([2, 2, 2, 2]) == (0.125, True)
    assert sign_flip_pvalue([1, -1]) == (1.0, True)  # observed 0: every pattern is as extreme
    # weighted: T = .75*1 + .25*3 = 1.5; patterns ++ 1.5, +- 0, -+ 0, -- -1.5
    assert sign_flip_pvalue([1, 3], [0.75, 0.25]) == (0.5, True)
    assert sign_flip_pvalue([]) == (1.0, True)


def test_sign_flip_monte_carlo_seeded_and_close_to_exact():
    rng = np.random.default_rng(1)
    d = rng.integers(-3, 4, size=12).astype(float)
    exact, is_exact = sign_flip_pvalue(d)
    mc, mc_exact = sign_flip_pvalue(d, n_perm=20000, seed=3, exact_max_n=0)
    assert is_exact and not mc_exact
    assert mc == pytest.approx(exact, abs=0.015)
    assert sign_flip_pvalue(d, n_perm=5000, seed=7, exact_max_n=0) == sign_flip_pvalue(d, n_perm=5000, seed=7,
                                                                                         exact_max_n=0)
    # all 40 differences positive: no random pattern is as extreme, p = 1/(n_perm+1), never 0
    assert sign_flip_pvalue(np.ones(40), n_perm=999) == (pytest.approx(1 / 1000), False)


def test_paired_bootstrap_ci_hand_computed():
    assert paired_bootstrap_ci([1, 1, 1]) == (1.0, 1.0)
    # two pairs with diffs 0 and 2: the resampled mean is 0 (1/4), 1 (1/2) or 2 (1/4)
    lo, hi = paired_bootstrap_ci([0, 2], n_boot=4000, seed=0)
    assert (lo, hi) == (0.0, 2.0)
    # strata constant inside: T = .5*1 + .5*5 = 3 in every resample
    assert paired_bootstrap_ci([1, 1, 5], ["a", "a", "b"], {"a": 0.5, "b": 0.5}) == (3.0, 3.0)
    with pytest.raises(ValueError):
        paired_bootstrap_ci([])


def test_holm_hand_computed():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == [1.0, 1.0]
    assert holm([]) == []


def test_paired_test_hand_computed():
    t = paired_test([5, 6, 7, 8], [6, 6, 8, 9])
    assert (t.n, t.base, t.new, t.delta) == (4, 6.5, 7.25, 0.75)
    assert t.exact and t.p_value == 0.25  # 3 nonzero +1 diffs: all-same-sign in 2*2 of 16 patterns
    assert t.ci[0] <= 0.75 <= t.ci[1]


def test_paired_overall_equals_summary_formula(tmp_path):
    """The weighted statistic reproduces aggregate.summarize's overall (AlignBench formula) exactly."""
    a = load_run(make_run(tmp_path / "a", "a"))
    b = load_run(make_run(tmp_path / "b", "b", overall=lambda q: float(2 + q.id % 7)))
    cmp = compare_runs(a, b, RUB)
    overall = cmp.rows[0]
    assert overall.key == "overall"
    assert overall.test.base == pytest.approx(a.summary.overall, abs=5e-5)
    assert overall.test.new == pytest.approx(b.summary.overall, abs=5e-5)
    groups = {r.key: r for r in cmp.rows if r.kind == "group"}
    assert groups["reasoning"].test.new == pytest.approx(b.summary.reasoning, abs=5e-5)
    assert groups["language"].test.base == pytest.approx(a.summary.language, abs=5e-5)


# ================================================================================================
# run vs baseline
# ================================================================================================


def test_compare_identical_runs(tmp_path):
    a = load_run(make_run(tmp_path / "a", "a"))
    b = load_run(make_run(tmp_path / "b", "b"))
    cmp = compare_runs(a, b, RUB)
    assert cmp.comparable and cmp.n_shared == 32 and not cmp.problems
    assert [r.kind for r in cmp.rows].count("category") == 8
    assert all(r.test.delta == 0 and r.test.p_value == 1.0 and not r.significant for r in cmp.rows)
    assert cmp.gains == [] and cmp.drops == []


def test_compare_uniform_gain_is_significant_overall_not_per_category(tmp_path):
    """+2 on every question: overall p ~ 1e-4; a category of 4 questions can never go below p = 2/16."""
    a = load_run(make_run(tmp_path / "a", "a"))
    b = load_run(make_run(tmp_path / "b", "b", overall=lambda q: base_score(q) + 2))
    cmp = compare_runs(a, b, RUB)
    rows = {r.key: r for r in cmp.rows}
    assert rows["overall"].test.delta == pytest.approx(2.0)
    assert rows["overall"].test.p_value == pytest.approx(1 / 10001)
    assert rows["overall"].significant
    cat = rows["数学计算"]
    assert cat.test.p_value == 0.125 and cat.test.exact and cat.p_holm == 1.0 and not cat.significant
    assert len(cmp.gains) == 3 and all(g.delta == 2 for g in cmp.gains)
    assert [g.question_id for g in cmp.gains] == [1, 2, 3]  # ties broken by question id


def test_compare_one_category_gain_hand_computed(tmp_path):
    a = load_run(make_run(tmp_path / "a", "a"))
    b = load_run(make_run(tmp_path / "b", "b",
                          overall=lambda q: base_score(q) + (4 if q.category == "数学计算" else 0)))
    cmp = compare_runs(a, b, RUB, n_perm=20000)
    rows = {r.key: r for r in cmp.rows}
    assert rows["数学计算"].test.delta == 4 and rows["数学计算"].test.p_value == 0.125
    assert rows["reasoning"].test.delta == pytest.approx(2.0)  # half of the group
    assert rows["overall"].test.delta == pytest.approx(1.0)  # weight 1/4
    assert rows["language"].test.delta == 0
    # only 4 of 32 differences are nonzero and equal: the exact p would be 2/16
    assert rows["overall"].test.p_value == pytest.approx(0.125, abs=0.01)
    assert cmp.drops == []


def test_failed_judgments_are_left_out_and_named(tmp_path):
    a = load_run(make_run(tmp_path / "a", "a", overall=lambda q: None if q.id == 5 else base_score(q)))
    b = load_run(make_run(tmp_path / "b", "b", overall=lambda q: None if q.id in (6, 7) else base_score(q)))
    cmp = compare_runs(a, b, RUB)
    assert cmp.n_shared == 29
    assert any("3 shared question(s) failed" in p and "5, 6, 7" in p for p in cmp.problems)


def test_other_rubric_or_judge_is_not_compared(tmp_path):
    a = load_run(make_run(tmp_path / "a", "a"))
    b = load_run(make_run(tmp_path / "b", "b", rubric_id="alignbench@0.9.0"))
    cmp = compare_runs(a, b, RUB)
    assert not cmp.comparable and cmp.rows == []
    assert "alignbench@0.9.0" in cmp.problems[0] and "nothing compared" in cmp.problems[0]
    c = load_run(make_run(tmp_path / "c", "c", judge={**JUDGE, "name": "zhipu:glm-4", "backend": "zhipu",
                                                        "model": "glm-4"}))
    cmp = compare_runs(a, c, RUB)
    assert not cmp.comparable and "zhipu:glm-4" in cmp.problems[0]


def _other_question_set(tmp_path: Path) -> Path:
    rows = [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines()]
    rows[2]["question"] += "（改）"  # question 3 changed
    return write_jsonl(tmp_path / "questions-v2.jsonl", rows[:-1])  # question 32 dropped


def test_other_question_set_compares_identical_questions_only(tmp_path):
    qpath = _other_question_set(tmp_path)
    qs2 = load_questions(qpath, RUB)
    a = load_run(make_run(tmp_path / "a", "a"))
    b = load_run(make_run(tmp_path / "b", "b", questions=qs2, questions_path=qpath))
    cmp = compare_runs(a, b, RUB)
    assert cmp.comparable and cmp.n_shared == 30
    assert any("question sets differ" in p and "skipped 2" in p and "3, 32" in p for p in cmp.problems)
    # without the question files nobody can tell which questions are the same: nothing compared
    qpath.unlink()
    b2 = load_run(tmp_path / "b")
    assert b2.questions is None and "not found" in b2.questions_note
    cmp = compare_runs(a, b2, RUB)
    assert not cmp.comparable and "nothing compared" in cmp.problems[-1]


def test_unfinished_and_broken_runs(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match="unfinished run .no summary.json"):
        load_run(tmp_path / "empty")
    run = make_run(tmp_path / "x", "x")
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    summary["finished"] = False
    (run / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    with pytest.raises(RunError, match="finished=False"):
        load_run(run)
    run = make_run(tmp_path / "y", "y")
    lines = (run / "judgments.jsonl").read_text(encoding="utf-8").splitlines()
    lines[4] = '{"question_id": 5}'
    (run / "judgments.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(RunError, match=r"judgments.jsonl:5: not a judgment record"):
        load_run(run)
    with pytest.raises(RunError, match="no such run folder"):
        load_run(tmp_path / "nope")


# ================================================================================================
# Markdown
# ================================================================================================


def test_md_text_escapes_everything_that_breaks_layout():
    out = md_text(NASTY)
    assert "\n" not in out
    assert "<" not in out and ">" not in out and "&lt;b&gt;" in out
    assert "|" not in out.replace("\\|", "")
    assert "`" not in out.replace("\\`", "")
    assert md_text("# x").startswith("\\#") and md_text("1. x").startswith("1\\.") and md_text("- x") == "\\- x"
    assert md_text("甲" * 50, 10) == "甲" * 9 + "…"
    html = md().render(f"- {out}\n")
    assert "<b>" not in html and "<script>" not in html and "<code>" not in html and "<h1>" not in html
    assert "&lt;b&gt;粗体&lt;/b&gt;" in html and "rm -rf / | cat" in html


def _plain(inline) -> str:
    """What a reader sees in an inline token (escapes and entities resolved, markup dropped)."""
    return "".join(c.content for c in inline.children or [] if c.type in ("text", "code_inline"))


def _tables(tokens) -> list[list[list[str]]]:
    """Every table as rows of the cell texts a reader sees (header first)."""
    tables, row, cur = [], None, None
    for i, tok in enumerate(tokens):
        if tok.type == "table_open":
            cur = []
        elif tok.type == "tr_open":
            row = []
        elif tok.type in ("th_open", "td_open"):
            row.append(_plain(tokens[i + 1]))
        elif tok.type == "tr_close":
            cur.append(row)
        elif tok.type == "table_close":
            tables.append(cur)
    return tables


def _nasty_runs(tmp_path: Path) -> tuple[Path, Path]:
    """Question 29 (|, backticks and <b> in the question) is the worst answer, judged with NASTY text."""
    def score(q: Question) -> float:
        return 1.0 if q.id == 29 else base_score(q)

    def raw(q: Question) -> str:
        return f"{NASTY}\n{{'综合得分': {score(q)}}}" if q.id == 29 else f"一般。\n{{'综合得分': {score(q)}}}"

    a = make_run(tmp_path / "runs" / "a", "model|a", overall=lambda q: base_score(q) + 1)
    b = make_run(tmp_path / "runs" / "b", "model`b`<i>", overall=score, raw=raw)
    return a, b


def test_report_is_valid_gfm_with_hostile_text(tmp_path):
    a, b = _nasty_runs(tmp_path)
    out = tmp_path / "out" / "report.md"
    result = write_report([a, b], out, baseline_dir=a, lang="zh", charts=False)
    text = out.read_text(encoding="utf-8")
    tokens = md().parse(text)
    assert not [t for t in tokens if t.type in ("html_block", "html_inline")]
    inline_html = [c for t in tokens if t.children for c in t.children if c.type == "html_inline"]
    assert inline_html == []
    tables = _tables(tokens)
    # runs, leaderboard, 2 dimension tables, 1 comparison
    assert len(tables) == 5
    for table in tables:
        assert len({len(r) for r in table}) == 1, table  # no row split by a stray |
    runs, board = tables[0], tables[1]
    assert [r[0] for r in runs[1:]] == ["model|a (基线)", "model`b`<i>"]
    assert board[0][:12] == ["模型", "总分", "中文推理", "数学计算", "逻辑推理", "中文语言", "基本任务", "中文理解",
                             "综合问答", "文本写作", "角色扮演", "专业能力"]
    # model a scores one point more on every question: every score cell of its row is bold
    html = md().render(text)
    board_html = html.split("<table>")[2].split("</table>")[0]
    a_row, b_row = [r for r in board_html.split("<tr>") if "model|a" in r or "model`b`" in r]
    assert a_row.count("<strong>") == 11 and b_row.count("<strong>") == 0
    assert "model`b`&lt;i&gt;" in b_row
    # Q29 in the weak spots: its question (| ` <b>) and the judge's hostile text stay literal
    assert "Q29 · 专业能力 / 计算机 · 1/10" in html
    assert "命令 `ls -l | grep '.txt'` 中的 `|` 起什么作用" in html.replace("&#x27;", "'")
    assert "所有的 &lt;b&gt; 标签替换成 &lt;strong&gt;" in html
    assert "&lt;script&gt;x()&lt;/script&gt;" in html and "rm -rf / | cat" in html
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert "标题" not in " ".join(headings)
    # only our own code spans (the two short sha256s): judge backticks made none
    codes = [c.content for t in tokens if t.children for c in t.children if c.type == "code_inline"]
    assert codes == [file_sha256(QUESTIONS)[:12]] * 2  # the runs table shows 12 digits
    # the comparison names the drop at Q29 and carries the judge's excerpt, escaped
    assert "退步最大的题目" in text and "Q29" in text.split("退步最大的题目")[1]
    assert result.comparisons[0].comparable


def test_report_sections_and_skipped_unfinished_run(tmp_path):
    a = make_run(tmp_path / "a", "model-a")
    b = make_run(tmp_path / "b", "model-b", overall=lambda q: None if q.id in (2, 3) else base_score(q) - 1)
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "judgments.jsonl").write_text("", encoding="utf-8")
    seen: list[str] = []
    out = tmp_path / "report.md"
    result = write_report([b, tmp_path / "half"], out, baseline_dir=a, lang="en", charts=False, warn=seen.append)
    text = out.read_text(encoding="utf-8")
    assert result.skipped and "half: unfinished run" in result.skipped[0]
    assert any("half: unfinished run" in s for s in seen)
    assert "half: unfinished run" in text  # named in the report, not silently dropped
    for heading in ("## Runs", "## Leaderboard", "## Charts", "## Category × dimension scores", "## Weak spots",
                    "## Against the baseline run", "### model-b vs baseline model-a", "#### Largest drops"):
        assert heading in text
    assert "model-b: 2 failed judgment(s) excluded from every mean (parse\\_failed 2)" in text
    assert "2 shared question(s) failed to be judged" in text
    assert "## Pairwise" not in text
    assert "Charts skipped: --no-charts" in text


def test_report_baseline_from_other_rubric_says_so(tmp_path):
    a = make_run(tmp_path / "a", "model-a", rubric_id="alignbench@0.9.0")
    b = make_run(tmp_path / "b", "model-b")
    out = tmp_path / "r.md"
    result = write_report([b], out, baseline_dir=a, charts=False)
    text = out.read_text(encoding="utf-8")
    assert "scores from different rubric versions are not comparable; nothing compared" in text
    assert any("rubric" in w for w in result.warnings)
    assert "进步最大的题目" not in text


def test_pairwise_section_is_tolerant(tmp_path):
    a = make_run(tmp_path / "a", "model-a")
    b = make_run(tmp_path / "b", "model-b")
    (a / "pairwise_summary.json").write_text(json.dumps({"baseline": "gpt-4o", "models": {
        "model-a": {"win_rate": 61.25, "win_rate_se": 2.5, "lc_win_rate": 57.0, "lc_win_rate_se": 1.75,
                    "n_wins": 20, "n_ties": 2, "n_losses": 10, "inconsistency": 0.125},
        "model|x": {"win_rate": 40.0}}}), encoding="utf-8")
    (b / "pairwise_summary.json").write_text("{not json", encoding="utf-8")
    text, _ = build_report([load_run(a), load_run(b)], charts=False)
    assert "## 成对比较" in text and "baseline gpt-4o" in text
    tables = _tables(md().parse(text))
    pw = next(t for t in tables if t[0][0] == "模型" and "胜率" in t[0])
    assert pw[1] == ["model-a", "61.2 ± 2.5", "57.0 ± 1.8", "20 / 2 / 10", "12.5%"]
    assert pw[2] == ["model|x", "40.0", "—", "— / — / —", "—"]
    assert "pairwise\\_summary.json: unreadable" in text


# ================================================================================================
# charts and CJK fonts
# ================================================================================================


def _render(text: str, font_path: str | None) -> np.ndarray:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties

    fig = Figure(figsize=(0.6, 0.6), dpi=50)
    canvas = FigureCanvasAgg(fig)
    fig.text(0.1, 0.2, text, fontproperties=FontProperties(fname=font_path) if font_path else None, fontsize=24)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def test_cjk_font_renders_real_glyphs_not_tofu():
    from matplotlib import font_manager

    from alignbench.reporting.charts import covers, find_cjk_font

    font = find_cjk_font()
    if font is None:
        pytest.skip("no CJK font here (install pylopdf-fonts-zh-cn or fonts-wqy-microhei)")
    assert covers(font.path, "数学计算逻辑推理事实正确性")
    dejavu = font_manager.findfont("DejaVu Sans")
    assert not covers(dejavu, "数")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DejaVu warns about the missing glyph: that is the point
        tofu_a, tofu_b = _render("数", dejavu), _render("学", dejavu)
    # the method works: without the glyph, two different characters draw the same empty box
    assert np.array_equal(tofu_a, tofu_b)
    real_a, real_b = _render("数", font.path), _render("学", font.path)
    assert not np.array_equal(real_a, real_b)
    assert not np.array_equal(real_a, tofu_a)
    assert (real_a < 128).any()  # something was drawn


def test_charts_with_chinese_labels(tmp_path):
    pytest.importorskip("matplotlib")
    from alignbench.reporting.charts import Series, find_cjk_font, render_charts

    if find_cjk_font() is None:
        pytest.skip("no CJK font here")
    series = [Series("模型甲", {c: 5.0 + i * 0.3 for i, c in enumerate(RUB.category_names())},
                     {d: 6.0 for d in RUB.all_dimensions()})]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = render_charts(series, RUB, tmp_path, "r", lang="zh")
    assert out.labels_lang == "zh" and out.warnings == []
    assert not [w for w in caught if "missing from font" in str(w.message)]
    for f in out.files:
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_charts_fall_back_to_english_without_cjk_font(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from matplotlib import font_manager

    from alignbench.reporting.charts import Series as S
    from alignbench.reporting.charts import find_cjk_font, render_charts

    monkeypatch.setenv("ALIGNBENCH_CJK_FONT", font_manager.findfont("DejaVu Sans"))  # a font without CJK
    assert find_cjk_font() is None
    monkeypatch.setenv("ALIGNBENCH_CJK_FONT", "none")
    assert find_cjk_font() is None
    series = [S("模型甲", {c: 6.0 for c in RUB.category_names()}, {d: 6.0 for d in RUB.all_dimensions()}),
              S("model-b", {c: 5.0 for c in RUB.category_names()}, {d: 5.0 for d in RUB.all_dimensions()})]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = render_charts(series, RUB, tmp_path, "r", lang="zh")
    assert out.labels_lang == "en" and out.font is None
    assert any("no font with Chinese glyphs" in w for w in out.warnings)
    assert any("run N" in w for w in out.warnings)  # the Chinese model name became "run 1"
    assert not [w for w in caught if "missing from font" in str(w.message)]
    assert [f.name for f in out.files] == ["r-radar.png", "r-dimensions.png"]


def test_report_without_matplotlib_is_still_written(tmp_path, monkeypatch):
    a = make_run(tmp_path / "a", "model-a")
    out = tmp_path / "rep" / "report.md"
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # Python's way to make a package unimportable
    proc = run_cli("report", str(a), "--out", str(out))  # in-process: the CLI sees no matplotlib
    assert proc.returncode == 0, proc.stderr
    assert "charts skipped" in proc.stderr and "alignbench[report]" in proc.stderr
    text = out.read_text(encoding="utf-8")
    assert "图表已跳过： matplotlib is not installed" in text
    assert not list(out.parent.glob("*.png"))


# ================================================================================================
# CLI, end to end through the stub judge
# ================================================================================================


@pytest.mark.slow
def test_cli_score_report_show_end_to_end(judged, tmp_path):
    runs = judged.root  # the session's `score` of model-a and model-b (openai:gpt-4o, the stub judge): read only
    assert all(proc.returncode == 0 for proc in judged.procs.values())
    calls = judged.stub.calls
    out = tmp_path / "rep" / "report.md"
    proc = run_cli("report", str(runs / "model-a"), str(runs / "model-b"), "--baseline-run", str(runs / "model-a"),
                   "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert judged.stub.calls == calls  # a report never calls the judge
    text = out.read_text(encoding="utf-8")
    assert "### model-b 对比基线 model-a" in text and "![radar: category scores](report-radar.png)" in text
    assert (out.parent / "report-radar.png").is_file() and (out.parent / "report-dimensions.png").is_file()
    assert "report written" in proc.stdout
    # the terminal view of the same comparison
    proc = run_cli("show", str(runs / "model-b"), "--baseline-run", str(runs / "model-a"))
    assert proc.returncode == 0, proc.stderr
    assert "model-b vs baseline model-a" in proc.stdout and "总分 Overall" in proc.stdout
    cmp = compare_runs(load_run(runs / "model-a"), load_run(runs / "model-b"), RUB)
    assert f"{cmp.rows[0].test.delta:+.2f}" in proc.stdout
    proc = run_cli("show", str(runs / "model-b"), "--baseline-run", str(runs / "model-a"), "--format", "json")
    data = json.loads(proc.stdout)
    assert data["comparison"]["rows"][0]["test"]["delta"] == pytest.approx(cmp.rows[0].test.delta)


@pytest.mark.slow
def test_cli_bad_input(tmp_path):
    a = make_run(tmp_path / "a", "model-a")
    (tmp_path / "half").mkdir()
    proc = run_cli("report", str(tmp_path / "half"), "--out", str(tmp_path / "r.md"))
    assert proc.returncode == 2
    assert "no finished run folder" in proc.stderr and "half: unfinished run" in proc.stderr
    proc = run_cli("report", str(a), "--baseline-run", str(tmp_path / "half"), "--out", str(tmp_path / "r.md"))
    assert proc.returncode == 2 and "half: unfinished run (no summary.json)" in proc.stderr
    proc = run_cli("report", str(a), "--lang", "fr")
    assert proc.returncode == 2 and "--lang must be zh or en" in proc.stderr
    proc = run_cli("show", str(a), "--baseline-run", str(tmp_path / "half"))
    assert proc.returncode == 2 and "unfinished run" in proc.stderr
    assert not (tmp_path / "r.md").exists()


def test_summary_helpers_unchanged_by_report(tmp_path):
    """The report reads run folders only: summary.json is byte-identical after a report."""
    a = make_run(tmp_path / "a", "model-a")
    before = (a / "summary.json").read_bytes()
    write_report([a], tmp_path / "r.md", charts=False)
    assert (a / "summary.json").read_bytes() == before


@pytest.mark.parametrize("name,lang", [("report.md", "zh"), ("report.en.md", "en")])
def test_committed_example_is_current(tmp_path, name, lang):
    """reports/examples/ is what the code writes today (regenerate: python scripts/example_report.py)."""
    example = ROOT / "reports" / "examples"
    runs = [example / "runs" / "model-a", example / "runs" / "model-b"]
    out = tmp_path / name
    write_report(runs, out, baseline_dir=runs[0], lang=lang, charts=False)

    def body(text: str) -> list[str]:  # without the date line and the charts section (font-dependent)
        lines = text.splitlines()[3:]
        start = next(i for i, line in enumerate(lines) if line in ("## 图表", "## Charts"))
        end = next(i for i, line in enumerate(lines) if i > start and line.startswith("## "))
        return lines[:start] + lines[end:]

    committed = (example / name).read_text(encoding="utf-8")
    assert body(out.read_text(encoding="utf-8")) == body(committed)
    tables = _tables(md().parse(committed))
    assert len(tables) == 5 and all(len({len(r) for r in t}) == 1 for t in tables)
    for link in ("-radar.png", "-dimensions.png"):
        assert (example / name.replace(".md", link)).is_file()
