"""Loading questions and answers: the official format, our sample set, and every kind of bad input."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from conftest import ANSWERS_A, OFFICIAL, QUESTIONS, ZH, write_jsonl

from alignbench.data import InputError, join, load_answers, load_questions
from alignbench.rubrics import load_rubric

RUBRIC = load_rubric("alignbench")
Q = {"question_id": 1, "category": "数学计算", "subcategory": "初等数学", "question": "1+1=?", "reference": "2"}


def test_official_set_loads_with_the_official_mapping() -> None:
    if not OFFICIAL.exists():
        pytest.skip("../shared/alignbench not present")
    qs = load_questions(OFFICIAL, RUBRIC)
    assert len(qs) == 683
    assert Counter(q.category for q in qs) == {"专业能力": 124, "角色扮演": 116, "数学计算": 112, "逻辑推理": 92,
                                              "文本写作": 75, "基本任务": 68, "中文理解": 58, "综合问答": 38}
    types = Counter(RUBRIC.answer_type(q.category, q.subcategory) for q in qs)
    assert types == {"事实与解释型回答": 241, "逻辑推理型回答": 204, "生成型回答": 200, "建议型回答": 38}
    assert len({q.subcategory for q in qs}) == 36
    assert sum(bool(q.evidences) for q in qs) == 150


def test_v10_stray_keys_are_ignored() -> None:
    path = OFFICIAL.with_name("data_release.jsonl")
    if not path.exists():
        pytest.skip("../shared/alignbench not present")
    assert len(load_questions(path, RUBRIC)) == 683


def test_our_sample_set_covers_every_category_and_type() -> None:
    qs = load_questions(QUESTIONS, RUBRIC)
    per_cat = Counter(q.category for q in qs)
    assert set(per_cat) == set(RUBRIC.category_names()) and min(per_cat.values()) >= 3
    assert {RUBRIC.answer_type(q.category, q.subcategory) for q in qs} == set(RUBRIC.answer_types)
    assert all(q.reference.strip() for q in qs)


def test_answers_both_formats() -> None:
    full = load_answers(ANSWERS_A)
    assert {a.model for a in full} == {"model-a"}
    simple = load_answers(ZH / "answers" / "model-a-simple.jsonl", model="mine")
    assert {a.model for a in simple} == {"mine"} and len(simple) == 8
    with pytest.raises(InputError, match="--model"):
        load_answers(ZH / "answers" / "model-a-simple.jsonl")


def test_extra_answer_keys_are_kept(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [{"question_id": 1, "model_id": "m", "answer": "2", "answer_id": "1_m",
                                               "tokens": 3}])
    (ans,) = load_answers(path)
    assert ans.meta["answer_id"] == "1_m" and ans.meta["tokens"] == 3


@pytest.mark.parametrize(("content", "line", "message"), [
    ('{"question_id": 1, "category": "数学计算"\n', 1, "not valid JSON"),
    ('{"question_id": 1, "category": "数学计算", "subcategory": "初等数学", "question": "q"}\n'
     '{"question_id": 2, "category": "魔法", "subcategory": "初等数学", "question": "q"}\n', 2, "unknown category"),
    ('{"question_id": 1, "category": "数学计算", "subcategory": "炼金", "question": "q"}\n', 1, "unknown subcategory"),
    ('{"question_id": 1, "category": "数学计算", "subcategory": "初等数学"}\n', 1, "missing field 'question'"),
    ('{"category": "数学计算", "subcategory": "初等数学", "question": "q"}\n', 1, "missing field 'question_id'"),
    ('{"question_id": 1, "category": "数学计算", "subcategory": "初等数学", "question": "q"}\n'
     '{"question_id": 1, "category": "数学计算", "subcategory": "初等数学", "question": "q"}\n', 2, "duplicate question_id 1"),
    ('[1, 2]\n', 1, "JSON object"),
])
def test_bad_question_files_name_file_and_line(tmp_path: Path, content: str, line: int, message: str) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_questions(path, RUBRIC)
    assert f"{path}:{line}:" in str(info.value) and message in str(info.value)


def test_wrong_encoding_is_reported_with_line(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    good = '{"question_id": 1, "category": "数学计算", "subcategory": "初等数学", "question": "一加一"}\n'
    path.write_bytes(good.encode("utf-8") + good.replace('": 1', '": 2').encode("gbk"))
    with pytest.raises(InputError, match=r"q\.jsonl:2: not UTF-8"):
        load_questions(path, RUBRIC)


def test_bom_and_string_ids_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + '{"question_id": "7", "category": "基本能力", "subcategory": "翻译", "question": "q"}\n'
                     .encode())
    (q,) = load_questions(path, RUBRIC)
    assert q.id == 7 and q.category == "基本任务"  # CritiqueLLM's alias for the category


def test_answer_errors(tmp_path: Path) -> None:
    qs = load_questions(write_jsonl(tmp_path / "q.jsonl", [Q]), RUBRIC)
    empty = write_jsonl(tmp_path / "e.jsonl", [{"question_id": 1, "model_id": "m", "answer": "  "}])
    with pytest.raises(InputError, match=r"e\.jsonl:1: empty answer.*--allow-empty"):
        load_answers(empty)
    assert load_answers(empty, allow_empty=True)[0].text == "  "
    dup = write_jsonl(tmp_path / "d.jsonl", [{"question_id": 1, "model_id": "m", "answer": "2"}] * 2)
    with pytest.raises(InputError, match=r"d\.jsonl:2: duplicate answer to question 1"):
        load_answers(dup)
    unknown = write_jsonl(tmp_path / "u.jsonl", [{"question_id": 1, "model_id": "m", "answer": "2"},
                                                 {"question_id": 99, "model_id": "m", "answer": "2"}])
    with pytest.raises(InputError, match=r"u\.jsonl:2: answer to question_id 99"):
        join(qs, load_answers(unknown), unknown)
    missing_field = write_jsonl(tmp_path / "m.jsonl", [{"question_id": 1, "model_id": "m"}])
    with pytest.raises(InputError, match=r"m\.jsonl:1: missing field 'answer'"):
        load_answers(missing_field)


def test_questions_without_answers_are_counted(tmp_path: Path) -> None:
    qs = load_questions(write_jsonl(tmp_path / "q.jsonl", [Q, {**Q, "question_id": 2}]), RUBRIC)
    ans = load_answers(write_jsonl(tmp_path / "a.jsonl", [{"question_id": 2, "model_id": "m", "answer": "2"}]))
    joined = join(qs, ans)
    assert len(joined.pairs) == 1 and joined.missing == {"m": [1]}
