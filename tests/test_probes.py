"""Counterfactual style probes (alignbench.probes, api.plan_probe/probe, `alignbench probe`): a loopback
judge with a planted Markdown bias and no other bias must show that bias, and only it, per category."""

from __future__ import annotations

import hashlib
import html
import json
import re
from pathlib import Path

import httpx
import pytest
from conftest import ANSWERS_B, QUESTIONS, read_jsonl, run_cli, write_jsonl
from stub_server import StubServer, _last_user_text

import alignbench
from alignbench.probes import REWRITES, filler, markdown, plain, summary_pad
from alignbench.trust import markdown_features

CATEGORY_BONUS = {"基本任务": 3, "数学计算": -1}  # the category-biased judge's Markdown bonus (else +1)


def _parts(prompt: str) -> tuple[str, str, str]:
    """(category, question, answer) as the alignbench rubric's prompt lays them out."""
    category = re.search(r"（([^（）/]+?) / ", prompt).group(1)
    question = prompt.split("用户的提问：", 1)[1].split("[参考答案开始]", 1)[0]
    answer = prompt.split("[助手的答案开始]", 1)[1].split("[助手的答案结束]", 1)[0]
    return category, question, answer


def biased_judge(body: dict) -> str:
    """A judge whose score is the question's worth (a hash of the question: unchanged by any rewrite) plus
    a Markdown bonus: +2 for openai:md (with ±1 noise from a hash of the whole prompt, so re-judging a
    rewrite is not an exact replay), or per category for openai:mdcat (no noise)."""
    category, question, answer = _parts(_last_user_text(body))
    base = 3 + hashlib.sha256(question.encode()).digest()[0] % 5
    has_md = any(markdown_features(answer).values())
    if body["model"] == "md":
        noise = (-1, 0, 0, 1)[hashlib.sha256(_last_user_text(body).encode()).digest()[0] % 4]
        score = base + 2 * has_md + noise
    else:
        score = base + CATEGORY_BONUS.get(category, 1) * has_md
    return f"分析从略。\n{{'综合得分': {score}}}"


def test_rewrites_change_style_only() -> None:
    q, a = "请介绍一下长城。", "## 长城\n\n长城是古代防御工程。\n\n- 它很长。\n- 它有**两千多年**历史。"
    p = plain(q, a)
    assert not any(markdown_features(p).values()) and "两千多年" in p and "长城是古代防御工程。" in p
    m = markdown(q, p)
    feats = markdown_features(m)
    assert feats["headings"] == 1 and feats["bold"] == 1 and feats["list_items"] == 3
    assert re.sub(r"[#*\-\s]|回答", "", m) == re.sub(r"\s", "", p)  # same words, same order
    assert a in filler(q, a) and "请介绍一下长城" in filler(q, a)
    padded = summary_pad(q, a)
    assert padded.startswith(a) and padded[len(a):].strip().startswith("总结一下：长城")
    code = "示例：\n```python\n# 注释\n- x = 1\n```"
    assert "```python\n# 注释\n- x = 1\n```" in plain(q, code) and "- x = 1" in markdown(q, code)
    assert all(r.changes and r.keeps for r in REWRITES.values())


@pytest.fixture
def plain_answers(tmp_path: Path) -> Path:
    """model-b's answers without the one that has Markdown: every original is plain."""
    rows = [r for r in read_jsonl(ANSWERS_B) if not any(markdown_features(r["answer"]).values())]
    assert len(rows) == 31
    return write_jsonl(tmp_path / "plain.jsonl", rows)


def test_a_planted_markdown_bias_is_found_and_nothing_else(tmp_path: Path, plain_answers: Path) -> None:
    with StubServer(responder=biased_judge) as stub:
        run = alignbench.score(QUESTIONS, plain_answers, "openai:md", base_url=stub.url, out=tmp_path / "run")
        before = stub.calls
        plan = alignbench.api.plan_probe(tmp_path / "run", "markdown,plain,filler,summary-pad")
        [(config, requests)] = plan.requests()
        assert list(config.base_url) == [stub.url] and config.model == "md" and len(requests) == 4 * 31
        result = alignbench.api.probe(plan, n_boot=1000, seed=0)
        assert stub.calls - before == 3 * 31  # plain leaves a plain answer as it was: its prompt is cached
        again = alignbench.api.probe(alignbench.api.plan_probe(tmp_path / "run", "markdown"))
        assert stub.calls - before == 3 * 31  # every rewrite's reply is in the cache
    probes = result["probes"]
    md = probes["markdown"]["overall"]
    assert md["n"] == 31 and md["ci"][0] <= 2 <= md["ci"][1] and md["ci"][0] > 0 and md["share_moved"] > 0.5
    for name in ("filler", "summary-pad", "plain"):
        e = probes[name]["overall"]
        assert e["ci"][0] <= 0 <= e["ci"][1] and abs(e["mean"]) < 0.5, (name, e)
    assert again["probes"]["markdown"] == probes["markdown"]  # seeded; the file keeps the other probes too
    saved = json.loads((tmp_path / "run" / "probes.json").read_text(encoding="utf-8"))
    assert set(saved["probes"]) == {"markdown", "plain", "filler", "summary-pad"}
    folder = tmp_path / "run" / "probes" / "markdown"
    rewritten = read_jsonl(folder / "answers.jsonl")
    assert [r["question_id"] for r in rewritten] == sorted(j.question_id for j in next(iter(run.values())).judgments)
    assert all(markdown_features(r["text"])["headings"] == 1 for r in rewritten)
    assert json.loads((folder / "summary.json").read_text(encoding="utf-8"))["run"]["probe"] == "markdown"
    # the viewer: each rewrite beside its original, both verdicts
    from alignbench.view.data import load_view
    from alignbench.view.server import Background, ServeConfig

    with Background(load_view([tmp_path / "run"]), ServeConfig(port=0)) as url, httpx.Client(base_url=url) as c:
        assert 'id="probes-link"' in c.get("/run/0").text
        page = c.get("/probe/0").text
    first = rewritten[0]
    assert 'id="probe-markdown"' in page and 'id="probe-summary-pad"' in page
    assert html.escape(first["text"], quote=False) in page  # the rewrite, escaped
    assert "综合得分" in page  # the verdicts' text


def test_per_category_effects_and_the_command(tmp_path: Path, plain_answers: Path) -> None:
    with StubServer(responder=biased_judge) as stub:
        alignbench.score(QUESTIONS, plain_answers, "openai:mdcat", base_url=stub.url, out=tmp_path / "run")
        dry = run_cli("probe", str(tmp_path / "run"), "--perturb", "markdown,filler", "--dry-run", "--format", "json")
        assert dry.returncode == 0, dry.stderr
        assert json.loads(dry.stdout)["estimates"][0]["requests"] == 2 * 31 and stub.calls == 31
        proc = run_cli("probe", str(tmp_path / "run"), "--perturb", "markdown,filler")
        assert proc.returncode == 0, proc.stderr
    assert "markdown" in proc.stdout and "filler" in proc.stdout
    saved = json.loads((tmp_path / "run" / "probes.json").read_text(encoding="utf-8"))["probes"]
    for cat, e in saved["markdown"]["categories"].items():
        assert e["mean"] == CATEGORY_BONUS.get(cat, 1) and e["ci"] == [e["mean"], e["mean"]], cat
    assert all(e["mean"] == 0 and e["share_moved"] == 0 for e in saved["filler"]["categories"].values())
    alignbench.api.report([tmp_path / "run"], tmp_path / "report.md", lang="en", charts=False, audit=False)
    text = (tmp_path / "report.md").read_text(encoding="utf-8")
    section = text.split("## Counterfactual style probes", 1)[1]
    assert "|  | 基本任务 | +3.00 | +3.00–+3.00 | 100% | 3 |" in section  # its Markdown answer was dropped
    assert "|  | 数学计算 | -1.00 | -1.00–-1.00 | 100% | 4 |" in section
    bad = run_cli("probe", str(tmp_path / "run"), "--perturb", "swap")
    assert bad.returncode == 2 and "pairwise" in bad.stderr
