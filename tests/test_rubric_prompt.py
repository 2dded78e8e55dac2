"""Rubrics as data and the prompts they render."""

from __future__ import annotations

import pytest
from conftest import QUESTIONS

from alignbench.data import load_questions
from alignbench.prompts import build_request, cap_answer
from alignbench.rubrics import RubricError, load_rubric
from alignbench.types import Answer, Decoding

AB = load_rubric("alignbench")
CQ = load_rubric("critiquellm")


def test_taxonomy() -> None:
    assert AB.category_names("reasoning") == ["数学计算", "逻辑推理"]
    assert len(AB.category_names("language")) == 6
    assert len(AB.subcategory_types) == 36
    assert AB.dimensions_for("基本任务", "翻译") == ("事实正确性", "满足用户需求", "逻辑连贯性", "创造性", "丰富度")
    assert AB.dimensions_for("综合问答", "寻求建议")[2] == "公平与可负责程度"
    assert AB.id == f"alignbench@{AB.version}+{AB.digest[:8]}" and len(AB.digest) == 64
    # CritiqueLLM maps by category, as it was trained: 翻译 under 基本任务 is factual there.
    assert CQ.answer_type("基本任务", "翻译") == "事实与解释型回答"
    assert CQ.answer_type("基本能力", "翻译") == "事实与解释型回答"


def test_unknown_rubric_lists_the_available_ones() -> None:
    with pytest.raises(RubricError, match="available: .*alignbench"):
        load_rubric("nope")


def _first(category: str):
    return next(q for q in load_questions(QUESTIONS, AB) if q.category == category)


def test_multi_dimension_prompt_is_prefix_friendly() -> None:
    q = _first("专业能力")
    req_a, _ = build_request(AB, q, Answer(question_id=q.id, model="a", text="答案甲"), Decoding())
    req_b, _ = build_request(AB, q, Answer(question_id=q.id, model="b", text="答案乙"), Decoding())
    system, user = req_a.messages
    assert system["role"] == "system" and "综合得分" in system["content"] and "9–10 分" in system["content"]
    assert system == req_b.messages[0]  # identical for every request
    for dim in AB.dimensions_for(q.category, q.subcategory):
        assert dim in user["content"]
    assert q.question in user["content"] and q.reference in user["content"]
    # everything before the answer is shared by all answers to this question
    prefix = user["content"].split("[助手的答案开始]")[0]
    assert req_b.messages[1]["content"].startswith(prefix)
    assert user["content"].rstrip().endswith("答案甲\n[助手的答案结束]")
    assert req_a.cache_key("x") != req_b.cache_key("x")
    assert req_a.rubric == AB.id


def test_critiquellm_prompt_format() -> None:
    q = _first("角色扮演")
    req, _ = build_request(CQ, q, Answer(question_id=q.id, model="a", text="好的"), Decoding(), system_role=False)
    (msg,) = req.messages
    lines = msg["content"].split("\n")
    assert lines[0] == "[生成型回答]"
    assert lines[1] == f"用户的提问：{q.question}".split("\n")[0]
    assert "[参考答案开始]" in lines and "[助手的答案开始]" in lines and lines[-1] == "[助手的答案结束]"


def test_merged_system_message() -> None:
    q = _first("数学计算")
    req, _ = build_request(AB, q, Answer(question_id=q.id, model="a", text="x"), Decoding(), system_role=False)
    assert [m["role"] for m in req.messages] == ["user"]
    assert req.messages[0]["content"].startswith("你是一位公正")


def test_answer_cap_is_marked() -> None:
    text, clipped = cap_answer("长" * 100, 10)
    assert clipped and text.startswith("长" * 10) and "截断" in text
    assert cap_answer("短", 10) == ("短", False)
    q = _first("文本写作")
    _, truncated = build_request(AB, q, Answer(question_id=q.id, model="a", text="字" * 50), Decoding(), 20)
    assert truncated


def test_rubric_version_changes_the_cache_key(tmp_path) -> None:
    import shutil

    folder = tmp_path / "alignbench"
    shutil.copytree(AB.folder, folder)
    yaml_path = folder / "rubric.yaml"
    yaml_path.write_text(yaml_path.read_text(encoding="utf-8").replace(f'version: "{AB.version}"', 'version: "9.9.9"'),
                         encoding="utf-8")
    other = load_rubric(str(folder))
    q = _first("数学计算")
    ans = Answer(question_id=q.id, model="a", text="x")
    r1, _ = build_request(AB, q, ans, Decoding())
    r2, _ = build_request(other, q, ans, Decoding())
    assert r1.messages == r2.messages and r1.cache_key("j") != r2.cache_key("j")


def test_system_prompt_rendered_once_per_category_only_when_it_reads_nothing_per_answer(tmp_path) -> None:
    """The system prompt is rendered once per category (it reads rules, bands, scale); a system template
    that reads the question (directly, or through an include) is rendered for every answer."""
    import shutil

    from alignbench import prompts

    q1, q2 = [q for q in load_questions(QUESTIONS, AB) if q.category == "数学计算"][:2]
    a1, a2 = (Answer(question_id=q.id, model="a", text="x") for q in (q1, q2))
    shared = [build_request(AB, q, a, Decoding())[0].messages[0]["content"] for q, a in ((q1, a1), (q2, a2))]
    assert shared[0] == shared[1] and prompts._per_category(AB.folder, AB.templates.system)
    assert not prompts._per_category(AB.folder, AB.templates.user)  # it reads the question and the answer

    for case, text in (("direct", "题目：{{ question }}\n"), ("include", "{% include 'part.j2' %}\n")):
        folder = tmp_path / case
        shutil.copytree(AB.folder, folder)
        (folder / "part.j2").write_text("题目：{{ question }}\n", encoding="utf-8")
        system = folder / AB.templates.system
        system.write_text(text + system.read_text(encoding="utf-8"), encoding="utf-8")
        rubric = load_rubric(str(folder))
        got = [build_request(rubric, q, a, Decoding())[0].messages[0]["content"] for q, a in ((q1, a1), (q2, a2))]
        assert got[0].startswith(f"题目：{q1.question}") and got[1].startswith(f"题目：{q2.question}"), case
