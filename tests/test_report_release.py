"""A release-ready report (issue 24 part 4): every line of the Chinese report in Chinese, judge reasons
without score dicts or JSON, a compact runs table (file names, short hashes, no local paths), n counted
as the viewer counts it, and a word on why where a Δ's CI and its test disagree."""

from __future__ import annotations

import json
import re
from pathlib import Path

from test_report import QS, base_score, make_run

from alignbench.cost import spend_line
from alignbench.reporting.compare import Comparison, DeltaRow, PairedTest, analysis_text
from alignbench.reporting.markdown import _disagreements, write_report


def test_reasons_without_score_blocks() -> None:
    text = "分析：回答有误。\n{'事实正确性': 3, '综合得分': 3}"
    assert analysis_text(text) == "分析：回答有误。"
    fenced = "评价如下：条理清楚。\n```json\n{\"综合得分\": 7}\n```"
    assert analysis_text(fenced) == "评价如下：条理清楚。"
    structured = json.dumps({"dimensions": {"factuality": {"analysis": "事实无误。", "score": 8}},
                             "overall": {"analysis": "整体较好。", "score": 8}}, ensure_ascii=False)
    assert analysis_text(f"```json\n{structured}\n```") == "事实无误。 整体较好。"
    assert "score" not in analysis_text(structured) and "{" not in analysis_text(structured)


def test_zh_report_has_no_english_line(tmp_path: Path) -> None:
    qs_failed = {QS[0].id, QS[5].id}
    a = make_run(tmp_path / "runs" / "a", "model-a")
    b = make_run(tmp_path / "runs" / "b", "model-b",
                 overall=lambda q: None if q.id in qs_failed else base_score(q) - 1,
                 raw=lambda q: f"```json\n{{\"综合得分\": {base_score(q)}}}\n```\n回答一般。\n{{'综合得分': 5}}")
    out = tmp_path / "out" / "report.md"
    write_report([a, b], out, baseline_dir=a, lang="zh", charts=False, audit=False)
    text = out.read_text(encoding="utf-8")
    assert "2 道共同题目在其中一次运行中评审失败" in text
    for english in ("shared question", "failed to be judged", "price unknown", "cost "):
        assert english not in text
    # every prose line has Chinese (tables, headings with names and code-only lines aside)
    prose = [line for line in text.splitlines() if line.startswith(("- ", "> ")) and re.search(r"[A-Za-z]{5,}", line)]
    assert all(re.search(r"[\u4e00-\u9fff]", line) for line in prose), prose
    assert "```" not in text and "'综合得分'" not in text  # reasons without fences or score dicts
    runs = text.split("## 运行信息", 1)[1].split("##", 1)[0]
    assert str(tmp_path) not in runs and "/" not in runs.replace("1–10", "")  # file names, not paths
    assert not re.search(r"[0-9a-f]{13,}", runs)  # sha256 cut to 12 digits
    row_b = next(line for line in runs.splitlines() if line.startswith("| model-b"))
    assert f"| {len(QS) - 2} |" in row_b  # n = judgments counted in the means, as the leaderboard and viewer


def test_ci_and_p_disagreement_explained() -> None:
    def row(ci, p, holm=None, kind="overall"):
        return DeltaRow(key="k", kind=kind, name="数学计算", en="Mathematics",
                        test=PairedTest(n=6, base=5.0, new=6.0, delta=1.0, ci=ci, p_value=p, exact=True),
                        p_holm=holm, significant=(holm if holm is not None else p) < 0.05)

    cmp = Comparison("a", "b", comparable=True, settings={"alpha": 0.05},
                     rows=[row((0.2, 1.8), 0.08), row((0.1, 1.9), 0.01, holm=0.08, kind="category"),
                           row((-0.2, 1.8), 0.3)])
    zh, en = _disagreements(cmp, zh=True), _disagreements(cmp, zh=False)
    assert len(zh) == len(en) == 2  # the third row agrees (CI includes 0, not significant)
    assert "置换检验 p = 0.08" in zh[0] and "n = 6" in zh[0]
    assert "Holm" in en[1] and "p = 0.01" in en[1]


def test_spend_in_chinese() -> None:
    assert spend_line({"unpriced_tokens": 28982}, zh=True) == "费用 28,982 个 token 价格未知"
    assert spend_line({"unpriced_tokens": 28982}) == "cost price unknown for 28,982 tokens"
