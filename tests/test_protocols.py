"""Protocols (multi-dimension, general, reference-free, plan-execute) as rubric sets: the mapping,
their prompts, their parsers on realistic judge outputs, and `score --protocol` / `show --question-id`
end to end against the stub server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import ANSWERS_A, QUESTIONS, read_jsonl, run_cli
from scripted_judge import scripted_judge
from stub_server import StubServer

from alignbench.data import load_questions
from alignbench.pairwise.compare import build_pair_request
from alignbench.prompts import build_request
from alignbench.rubrics import PROTOCOLS, RubricError, load_rubric, rubric_for_protocol
from alignbench.scoring import Item, make_judgment
from alignbench.types import Answer, Decoding, ModelReply, Question, Status

CASES = yaml.safe_load((Path(__file__).parent / "cases" / "protocols.yaml").read_text(encoding="utf-8"))
AB = load_rubric("alignbench")
RUBRICS = {p: load_rubric(rubric_for_protocol(p)) for p in PROTOCOLS}


# -- the mapping ---------------------------------------------------------------------------------

def test_protocol_names_map_to_rubric_sets() -> None:
    assert {p: rubric_for_protocol(p) for p in PROTOCOLS} == {
        "multi-dimension": "alignbench", "general": "alignbench-general", "reference-free": "alignbench-reffree",
        "plan-execute": "alignbench-plan"}
    assert rubric_for_protocol("reference-free", base="critiquellm") == "critiquellm-reffree"
    assert rubric_for_protocol("multi-dimension", base="critiquellm") == "critiquellm"
    # a protocol variant given as the base means its base set
    assert rubric_for_protocol("plan-execute", base="alignbench-general") == "alignbench-plan"
    assert rubric_for_protocol("multi-dimension", base="alignbench-reffree") == "alignbench"
    for protocol, rubric in RUBRICS.items():
        assert rubric.protocol == protocol
    assert len({r.id for r in RUBRICS.values()}) == 4  # every protocol has its own cache keys


def test_unknown_or_missing_protocol_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RubricError, match="unknown protocol 'cot'; choose one of multi-dimension, general"):
        rubric_for_protocol("cot")
    with pytest.raises(RubricError, match="'critiquellm' has no general variant.*available for it: "
                                          "multi-dimension, reference-free"):
        rubric_for_protocol("general", base="critiquellm")
    # a rubric given as a folder finds its variants next to it
    import shutil
    shutil.copytree(AB.folder, tmp_path / "mine")
    shutil.copytree(RUBRICS["general"].folder, tmp_path / "mine-general")
    assert rubric_for_protocol("general", base=str(tmp_path / "mine")) == str(tmp_path / "mine-general")
    with pytest.raises(RubricError, match="no plan-execute variant"):
        rubric_for_protocol("plan-execute", base=str(tmp_path / "mine"))


# -- prompts -------------------------------------------------------------------------------------

def _question(category: str) -> Question:
    return next(q for q in load_questions(QUESTIONS, AB) if q.category == category)


def _messages(protocol: str, q: Question, text: str = "助手的回答正文") -> list[dict[str, str]]:
    req, _ = build_request(RUBRICS[protocol], q, Answer(question_id=q.id, model="m", text=text), Decoding())
    return list(req.messages)


def test_general_prompt_asks_for_one_overall_score_with_reference() -> None:
    q = _question("专业能力")
    rub = RUBRICS["general"]
    assert rub.dimensions_for(q.category, q.subcategory) == ()
    system, user = _messages("general", q)
    assert "{'综合得分': 5}" in system["content"] and "本题的评价维度" not in user["content"]
    assert "维度" not in system["content"] + user["content"]
    assert q.reference in user["content"] and "[参考答案开始]" in user["content"]
    assert "9–10 分" in system["content"] and "参考答案" in system["content"]
    assert user["content"].rstrip().endswith("助手的回答正文\n[助手的答案结束]")


def test_reference_free_prompt_never_shows_the_reference() -> None:
    q = _question("专业能力")
    assert q.reference
    system, user = _messages("reference-free", q)
    assert q.reference not in system["content"] + user["content"]
    assert "[参考答案开始]" not in user["content"] and "没有参考答案" in system["content"]
    for dim in AB.dimensions_for(q.category, q.subcategory):
        assert dim in user["content"]
    # bands no longer measure against a reference
    assert all("参考答案" not in band.text for band in RUBRICS["reference-free"].bands)
    assert RUBRICS["reference-free"].reference_score is None
    # CritiqueLLM's own reference-free format
    cq = load_rubric("critiquellm-reffree")
    req, _ = build_request(cq, q, Answer(question_id=q.id, model="m", text="答"), Decoding(), system_role=False)
    (msg,) = req.messages
    assert msg["content"] == f"[事实与解释型回答]\n用户的提问：{q.question}\n[助手的答案开始]\n答\n[助手的答案结束]"


def test_plan_execute_prompt_orders_plan_before_the_answer() -> None:
    q = _question("数学计算")
    system, user = _messages("plan-execute", q)
    sys_text, text = system["content"], user["content"]
    assert "【评估计划】" in sys_text and "【执行】" in sys_text and "先不要看助手的回答" in sys_text
    assert q.reference not in sys_text + text  # the plan's own solution replaces the reference
    assert text.index(q.question) < text.index("请先写【评估计划】") < text.index("[助手的答案开始]")
    assert [(s.id, s.title) for s in RUBRICS["plan-execute"].sections] == [("plan", "评估计划"), ("execution", "执行")]


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_every_protocol_keeps_the_prompt_prefix_shared(protocol: str) -> None:
    q = _question("文本写作")
    a, b = _messages(protocol, q, "答案甲"), _messages(protocol, q, "答案乙")
    assert a[0] == b[0]
    prefix = a[-1]["content"].split("[助手的答案开始]")[0]
    assert b[-1]["content"].startswith(prefix) and "答案甲" not in prefix


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_every_protocol_has_a_pairwise_prompt(protocol: str) -> None:
    q = _question("综合问答")
    rub = RUBRICS[protocol]
    req = build_pair_request(rub, q, "第一个回答", "第二个回答", Decoding())
    text = "\n".join(m["content"] for m in req.messages)
    assert "[[助手1]]" in text and "[[平局]]" in text
    assert text.index("[助手1的答案开始]\n第一个回答") < text.index("[助手2的答案开始]\n第二个回答")
    assert (q.reference in text) is rub.include_reference
    assert ("【评估计划】" in text) is (protocol == "plan-execute")


def test_missing_subcategory_falls_back_to_the_category_type() -> None:
    q = Question(id=1, category="文本写作", subcategory="", question="写一首诗")
    for rub in RUBRICS.values():
        assert rub.answer_type(q.category, q.subcategory) == "生成型回答"
    (_, user) = _messages("multi-dimension", q)
    assert user["content"].startswith("回答类型：生成型回答（文本写作）\n")
    # and a known subcategory still decides (AlignBench maps 翻译 under 基本任务 to 生成型回答)
    assert AB.answer_type("基本任务", "翻译") == "生成型回答"
    assert AB.answer_type("基本任务", "") == "事实与解释型回答"


# -- parsers on realistic outputs ----------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_protocol_output_parses(case: dict) -> None:
    rub = RUBRICS[case["protocol"]]
    q = Question(id=7, category=rub.category(case["category"]).name, subcategory=case["subcategory"],
                 question="问题", reference="参考")
    answer = Answer(question_id=7, model="m", text="回答")
    request, _ = build_request(rub, q, answer, Decoding())
    judgment = make_judgment(Item(q, answer, request, False), ModelReply(text=case["text"]), rub, "j")
    assert judgment.status is Status(case["status"]), judgment.detail
    assert judgment.raw == case["text"]
    if judgment.status is Status.OK:
        assert judgment.overall == pytest.approx(case["overall"])
        if "scores" in case:
            assert judgment.scores == pytest.approx(case["scores"])
        assert set(judgment.scores) <= set(rub.dimensions_for(q.category, q.subcategory))
    else:
        assert judgment.overall is None and judgment.scores == {}
    if "sections" in case:
        assert judgment.sections == case["sections"]
    elif case["protocol"] != "plan-execute":
        assert judgment.sections == {}
    if "detail_contains" in case:
        assert case["detail_contains"] in judgment.detail


# -- end to end ----------------------------------------------------------------------------------

def _score(stub: StubServer, out: Path, *extra: str):
    return run_cli("score", "-q", str(QUESTIONS), "-a", str(ANSWERS_A), "--judge", "openai:length",
                   "--judge-base-url", stub.url, "--out", str(out), *extra)


@pytest.mark.slow
def test_score_with_each_protocol_and_show_the_plan(tmp_path: Path) -> None:
    with StubServer(responder=scripted_judge) as stub:
        for protocol in PROTOCOLS:
            proc = _score(stub, tmp_path / protocol, "--protocol", protocol, "--format", "json")
            assert proc.returncode == 0, proc.stderr
            summary = json.loads(proc.stdout)
            assert summary["run"]["rubric"] == RUBRICS[protocol].id
            assert summary["n_ok"] == 32
            judgments = read_jsonl(tmp_path / protocol / "judgments.jsonl")
            if protocol == "general":
                assert summary["dimensions"] == {} and all(j["scores"] == {} for j in judgments)
            else:
                assert summary["dimensions"] and all(j["scores"] for j in judgments)
            has_plan = [bool(j["sections"]) for j in judgments]
            assert all(has_plan) if protocol == "plan-execute" else not any(has_plan)
        assert stub.calls == 4 * 32  # each protocol has its own prompts and cache keys
        sent = [r["messages"] for r in stub.requests]
        assert sum("【评估计划】" in m[0]["content"] for m in sent) == 32
        # --rubric plus --protocol: the protocol's variant of that rubric set
        proc = run_cli("score", "-q", str(QUESTIONS), "-a", str(ANSWERS_A), "--judge", "openai:length",
                       "--rubric", "critiquellm", "--protocol", "reference-free", "--dry-run")
        assert proc.returncode == 0 and "[参考答案开始]" not in proc.stdout and "[事实与解释型回答]" in proc.stdout
    _show_question(tmp_path / "plan-execute")


def test_score_protocol_errors_before_any_call(stub: StubServer, tmp_path: Path) -> None:
    proc = _score(stub, tmp_path / "r", "--protocol", "debate")
    assert proc.returncode == 2 and "unknown protocol 'debate'" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("score", "-q", str(QUESTIONS), "-a", str(ANSWERS_A), "--judge", "critiquellm",
                   "--judge-base-url", stub.url, "--protocol", "plan-execute", "--out", str(tmp_path / "r"))
    assert proc.returncode == 2 and "no plan-execute variant" in proc.stderr
    assert stub.calls == 0


def test_prompt_command_takes_a_protocol() -> None:
    proc = run_cli("prompt", "-q", str(QUESTIONS), "--question-id", "3", "--judge", "openai:x",
                   "--protocol", "plan-execute", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["rubric"] == RUBRICS["plan-execute"].id and "【评估计划】" in payload["messages"][0]["content"]


def _show_question(run_dir: Path) -> None:
    """`show RUN_DIR --question-id N` on a plan-execute run prints the plan and its execution."""
    proc = run_cli("show", str(run_dir), "--question-id", "5")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "question 5 · model-a" in out and "【评估计划】" in out and "【执行】" in out
    assert "回答应切题、准确、完整" in out and "综合得分" in out
    assert out.index("【评估计划】") < out.index("【执行】")
    proc = run_cli("show", str(run_dir), "--question-id", "5", "--format", "json")
    (judgment,) = json.loads(proc.stdout)
    assert judgment["sections"]["plan"].startswith("1. 回答应切题") and judgment["raw"].startswith("【评估计划】")
    proc = run_cli("show", str(run_dir), "--question-id", "999")
    assert proc.returncode == 2 and "no judgment of question 999" in proc.stderr
