"""What the server says it serves is shown as the judge (issue 23, part 6): a llama.cpp or vLLM server answers
to any model id, so the name a run was started with may not be the model that wrote its verdicts. A loopback
judge that reports another model than the one asked for: its id lands in ``summary.json`` (``judge_served``) and
beside the requested name in score's title, the Markdown report (both languages), the viewer's pages, compare's
summary and table, and answer's output (for the model under test); one that reports the model asked for adds
nothing. The served id carries markup of every medium, so each view must print it literally."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ANSWERS_A, ANSWERS_B, QUESTIONS, read_jsonl, run_cli, write_jsonl
from stub_server import StubServer, alignbench_responder

from alignbench.api import report
from alignbench.view.data import load_view
from alignbench.view.render import Pages

SERVED = "qwen2.5-0.5b<i>[bold]"  # what a llama.cpp server loaded; markup for rich, Markdown and HTML alike
QIDS = {r["question_id"] for r in read_jsonl(QUESTIONS)[:3]}


def _judge(body: dict) -> str:
    """Pointwise prompts as AlignBench's judge answers them; a pairwise prompt gets a tie."""
    prompt = body["messages"][-1]["content"]
    return "两个回答相当。\n最终判决：[[平局]]" if "[助手1的答案开始]" in prompt else alignbench_responder(body)


def _files(tmp: Path) -> tuple[Path, Path, Path]:
    pick = lambda path: [r for r in read_jsonl(path) if r["question_id"] in QIDS]  # noqa: E731
    return (write_jsonl(tmp / "q.jsonl", pick(QUESTIONS)), write_jsonl(tmp / "a.jsonl", pick(ANSWERS_A)),
            write_jsonl(tmp / "b.jsonl", pick(ANSWERS_B)))


def _flat(text: str) -> str:
    return " ".join(text.split())  # a rich title wraps at the table's width


@pytest.mark.parametrize("served", [SERVED, None], ids=["another-model", "the-model-asked"])
def test_the_served_model_is_named_beside_the_requested_judge_everywhere(tmp_path: Path, served: str | None) -> None:
    questions, answers, baseline = _files(tmp_path)
    with StubServer(responder=_judge) as judge, StubServer(responder=lambda b: "这是回答。") as model:
        judge.reported_model = model.reported_model = served
        scored = run_cli("score", "-q", str(questions), "-a", str(answers), "--judge", "openai:stub-model",
                         "--judge-base-url", judge.url, "--out", str(tmp_path / "run"))
        compared = run_cli("compare", "-q", str(questions), "-a", str(answers), "-b", str(baseline), "--judge",
                           "openai:stub-model", "--judge-base-url", judge.url, "--out", str(tmp_path / "cmp"), "--length-unit", "chars",
                           "--bootstrap", "0")
        answered = run_cli("answer", "-q", str(questions), "--model-name", "tiny", "--model-id", "tiny-chat",
                           "--base-url", model.url, "--out", str(tmp_path / "answers.jsonl"))
    assert scored.returncode == 0 and compared.returncode == 0 and answered.returncode == 0, \
        scored.stderr + compared.stderr + answered.stderr
    manifest = json.loads((tmp_path / "run" / "summary.json").read_text(encoding="utf-8"))["run"]
    pairwise = json.loads((tmp_path / "cmp" / "pairwise_summary.json").read_text(encoding="utf-8"))
    zh = report([tmp_path / "run"], tmp_path / "zh.md", lang="zh", charts=False, audit=False)
    en = report([tmp_path / "run"], tmp_path / "en.md", lang="en", charts=False, audit=False)
    zh_md, en_md = (Path(r.path).read_text(encoding="utf-8") for r in (zh, en))
    data = load_view([tmp_path / "run"])
    pages = Pages(data)
    run_page, board = pages.run_page(data.runs[0]), pages.leaderboard()

    if served is None:  # the server served what was asked: nothing extra anywhere
        assert "judge_served" not in manifest and "judge_served" not in pairwise["run"]
        for text in (scored.stdout, compared.stdout, answered.stderr, en_md, run_page, board):
            assert "served as" not in text
        assert "服务端模型" not in zh_md
        assert "judge openai:stub-model (stub-model) ·" in _flat(scored.stdout)
        assert "pairwise vs " in _flat(compared.stdout) and "· judge openai:stub-model" in _flat(compared.stdout)
        return
    assert manifest["judge_served"] == [served] and manifest["judge"]["model"] == "stub-model"
    assert pairwise["run"]["judge_served"] == [served]
    # the terminal (rich markup printed literally): score's title, compare's table title, answer's summary
    assert f"judge openai:stub-model (stub-model, served as {served}) ·" in _flat(scored.stdout)
    assert f"· judge openai:stub-model (served as {served})" in _flat(compared.stdout)
    assert f"model: tiny-chat (served as {served})" in _flat(answered.stderr)
    # the Markdown report (Markdown- and HTML-escaped), in both languages
    escaped = "qwen2.5-0.5b&lt;i&gt;\\[bold\\]"
    assert f"openai · stub-model (served as {escaped})" in en_md
    assert f"openai · stub-model（服务端模型：{escaped}）" in zh_md
    # the viewer's run page and leaderboard (HTML-escaped)
    html = "qwen2.5-0.5b&lt;i&gt;[bold]"
    assert f'<td id="judge">openai:stub-model (stub-model, served as {html})</td>' in run_page
    assert f"openai:stub-model (served as {html})" in board
    assert "<i>[bold]" not in run_page + board
