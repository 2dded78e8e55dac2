"""MT-Bench as FastChat runs it (`score`/`compare --upstream FASTCHAT`), checked against FastChat's own code.

The oracle is FastChat itself, from ../shared/upstream/FastChat: its ``gen_judgment.py`` runs as a script (its
``__main__``: the matches it makes, the prompts it picks per category and turn, the reference answers it
passes) with ``common.py``'s ``chat_completion_openai`` replaced by a recorder, so every request FastChat
would send is captured instead of sent; ``show_result.py``'s own functions then compute the MT-Bench score from
the judgment file FastChat wrote. ``common.py`` imports FastChat's model registry and the API SDKs at its top,
so the test (only the test) puts a minimal stand-in ``fastchat`` package in ``sys.modules``: the two model
lists and a conversation with the three methods ``common.py`` calls, turning it into OpenAI messages as
FastChat's ``Conversation.to_openai_api_messages`` does.

Our side runs the real CLI against the loopback stub judge; both sides get the same judge text for the same
messages (``verdict``: a rating from a hash of the prompt, or no verdict at all for some prompts), so the
same judgments are behind both scores.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import runpy
import shutil
import sys
import types
from collections import Counter
from pathlib import Path

import pytest
from conftest import SHARED, read_jsonl, run_cli, write_jsonl
from stub_server import StubServer

from alignbench import api
from alignbench.upstream import UpstreamError
from alignbench.upstream.fastchat_mtbench import KNOWN_SHA256, open_fastchat

FASTCHAT = SHARED / "upstream" / "FastChat"
LLM_JUDGE = FASTCHAT / "fastchat" / "llm_judge"
QUESTIONS = LLM_JUDGE / "data" / "mt_bench" / "question.jsonl"
MODELS = ("model-x", "model-y")
BASELINE = "base-z"

pytestmark = pytest.mark.skipif(not LLM_JUDGE.is_dir(), reason="no FastChat checkout in ../shared/upstream")


# -- made-up answers and a deterministic judge -----------------------------------------------------------


def answers(model: str) -> list[dict]:
    """Two-turn answers in FastChat's model_answer format, with braces and quotes (str.format must not touch
    them) and text that differs per model, question and turn."""
    return [{"question_id": q["question_id"], "answer_id": f"{model}-{q['question_id']}", "model_id": model,
             "choices": [{"index": 0, "turns": [f"{model} on {q['question_id']}: {{\"x\": 1}} and [1] first.",
                                                 f"{model} again, turn two of {q['question_id']}.\n- a list"]}],
             "tstamp": 0.0} for q in read_jsonl(QUESTIONS)]


def _digest(messages: list[dict]) -> int:
    return int(hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest(), 16)


def rating(messages: list[dict]) -> str:
    """A single-grading judge: ``Rating: [[N]]`` with N from the prompt, no verdict for about one prompt in 11."""
    h = _digest(messages)
    if h % 11 == 0:
        return "I am unable to rate this response."
    return f"The response is adequate in places.\n\nRating: [[{h % 10 + 1}]]"


def preference(messages: list[dict]) -> str:
    """A pairwise judge: [[A]], [[B]] or [[C]] from the prompt, no verdict for about one prompt in 13."""
    h = _digest(messages)
    if h % 13 == 0:
        return "Both responses have merits and flaws."
    return "After comparing both responses: " + ("[[A]]", "[[B]]", "[[C]]")[h % 3]


# -- FastChat as the oracle ------------------------------------------------------------------------------


class _Conversation:
    """FastChat's Conversation as common.py uses it (set_system_message, append_message, roles) and as
    fastchat/conversation.py turns it into OpenAI messages (system message unless empty, then user/assistant
    alternating, the empty assistant slot left out)."""

    roles = ("user", "assistant")

    def __init__(self) -> None:
        self.system_message = "You are a helpful assistant."
        self.messages: list[list] = []
        self.offset = 0

    def set_system_message(self, system_message: str) -> None:
        self.system_message = system_message

    def append_message(self, role: str, message: str | None) -> None:
        self.messages.append([role, message])

    def to_openai_api_messages(self) -> list[dict]:
        ret = [] if self.system_message == "" else [{"role": "system", "content": self.system_message}]
        for i, (_, msg) in enumerate(self.messages[self.offset:]):
            if i % 2 == 0:
                ret.append({"role": "user", "content": msg})
            elif msg is not None:
                ret.append({"role": "assistant", "content": msg})
        return ret


def _module(name: str, **attrs: object) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    return mod


@pytest.fixture(scope="module")
def common():
    """FastChat's common.py, imported as ``fastchat.llm_judge.common`` over the stand-in package."""
    stand_ins = {
        "fastchat": _module("fastchat", __path__=[]),
        "fastchat.model": _module("fastchat.model", __path__=[]),
        "fastchat.model.model_adapter": _module(
            "fastchat.model.model_adapter", get_conversation_template=lambda model: _Conversation(),
            OPENAI_MODEL_LIST=("gpt-3.5-turbo", "gpt-4", "gpt-4-turbo"), ANTHROPIC_MODEL_LIST=("claude-2",)),
        "fastchat.llm_judge": _module("fastchat.llm_judge", __path__=[]),
    }
    if importlib.util.find_spec("anthropic") is None:
        stand_ins["anthropic"] = _module("anthropic")
    saved = {name: sys.modules.get(name) for name in [*stand_ins, "fastchat.llm_judge.common"]}
    sys.modules.update(stand_ins)
    spec = importlib.util.spec_from_file_location("fastchat.llm_judge.common", LLM_JUDGE / "common.py")
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["fastchat.llm_judge.common"] = mod
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    yield mod
    for name, old in saved.items():
        if old is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = old


def run_gen_judgment(common, tmp: Path, monkeypatch: pytest.MonkeyPatch, judge, *argv: str) -> tuple[list[dict], Path]:
    """Run FastChat's gen_judgment.py as its README says (from llm_judge/, data/ beside it) on our answer
    files; returns every request it made (recorded, not sent) and the judgment file it wrote."""
    work = tmp / "llm_judge"
    bench = work / "data" / "mt_bench"
    (bench / "model_answer").mkdir(parents=True)
    shutil.copy(LLM_JUDGE / "data" / "judge_prompts.jsonl", work / "data")
    shutil.copy(QUESTIONS, bench)
    shutil.copytree(LLM_JUDGE / "data" / "mt_bench" / "reference_answer", bench / "reference_answer")
    for name in (*MODELS, BASELINE):
        write_jsonl(bench / "model_answer" / f"{name}.jsonl", answers(name))
    calls: list[dict] = []

    def chat_completion_openai(model, conv, temperature, max_tokens, api_dict=None):  # noqa: ANN001, ANN202
        messages = conv.to_openai_api_messages()
        calls.append({"model": model, "messages": messages, "temperature": temperature, "max_tokens": max_tokens})
        return judge(messages)

    monkeypatch.setattr(common, "chat_completion_openai", chat_completion_openai)
    monkeypatch.setattr("builtins.input", lambda *_: "")
    monkeypatch.chdir(work)
    monkeypatch.setattr(sys, "argv", ["gen_judgment.py", *argv])
    runpy.run_path(str(LLM_JUDGE / "gen_judgment.py"), run_name="__main__")
    mode = "single" if "single" in argv else "pair"
    return calls, bench / "model_judgment" / f"gpt-4_{mode}.jsonl"


def show_result(function: str, **args: object) -> list:
    """Call one of show_result.py's display functions and keep what it prints (its DataFrames)."""
    namespace = runpy.run_path(str(LLM_JUDGE / "show_result.py"), run_name="show_result")
    printed: list = []
    fn = namespace[function]
    fn.__globals__["print"] = lambda *values: printed.append(values[0] if len(values) == 1 else values)
    fn(argparse.Namespace(**{"bench_name": "mt_bench", "judge_model": "gpt-4", "model_list": None,
                             "baseline_model": None, **args}))
    return [p for p in printed if not isinstance(p, str)]


def _request(model: str, messages: list[dict], temperature: float, max_tokens: int) -> str:
    return json.dumps({"model": model, "messages": messages, "temperature": float(temperature),
                       "max_tokens": max_tokens}, sort_keys=True)


def sent(stub: StubServer) -> Counter:
    """What our run sent: model, messages, temperature (0 and 0.0 are the same JSON number) and max_tokens."""
    return Counter(_request(b["model"], b["messages"], b["temperature"], b["max_tokens"]) for b in stub.requests)


def recorded(calls: list[dict]) -> Counter:
    return Counter(_request(**c) for c in calls)


# -- single grading ------------------------------------------------------------------------------------


def test_score_sends_fastchats_requests_and_gets_show_results_score(common, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    calls, judgment_file = run_gen_judgment(common, tmp_path / "fastchat", monkeypatch, rating, "--mode", "single",
                                            "--model-list", *MODELS)
    assert len(calls) == 80 * 2 * 2  # 80 questions, two models, two turns each
    files = [tmp_path / f"{m}.jsonl" for m in MODELS]
    for m, f in zip(MODELS, files, strict=True):
        write_jsonl(f, answers(m))
    with StubServer(responder=lambda body: rating(body["messages"])) as stub:
        proc = run_cli("score", "--upstream", str(FASTCHAT), *[a for f in files for a in ("-a", str(f))],
                       "--judge-base-url", stub.url, "--out", str(tmp_path / "runs"), "--format", "json",
                       "--max-failed", "100%")
        assert proc.returncode == 0, proc.stderr
        # every request FastChat would send, and nothing else: same model, messages, temperature 0, 2048 tokens
        assert sent(stub) == recorded(calls)
    assert {c["temperature"] for c in calls} == {0} and {c["max_tokens"] for c in calls} == {2048}

    frames = show_result("display_result_single", input_file=str(judgment_file))
    first, second, average = (f.reset_index() for f in frames)
    rows = read_jsonl(judgment_file)
    payload = json.loads(proc.stdout)["models"]
    for m in MODELS:
        mt = payload[m]["mtbench"]
        assert mt["score"] == pytest.approx(float(average.set_index("model").loc[m, "score"]), abs=1e-4)
        for turn, frame in (("1", first), ("2", second)):
            assert mt["turns"][turn]["score"] == pytest.approx(float(frame.set_index("model").loc[m, "score"]),
                                                               abs=1e-4)
        # FastChat's -1 rows are our failed turns: counted, never averaged in
        minus_one = sum(1 for r in rows if r["model"] == m and r["score"] == -1)
        assert minus_one > 0 and mt["n_failed"] == minus_one and mt["n"] == 160 - minus_one
        assert payload[m]["overall"] == mt["score"] and mt["ci"][0] <= mt["score"] <= mt["ci"][1]
        record = payload[m]["run"]["upstream"]
        assert record["label"] == f"MT-Bench (FastChat llm_judge @ {KNOWN_SHA256['data/judge_prompts.jsonl'][:8]})"
        assert record["sha256"] == KNOWN_SHA256["data/judge_prompts.jsonl"] and record["modified"] is False
        assert record["need_ref_cats"] == list(common.NEED_REF_CATS)
        assert record["files"] == KNOWN_SHA256  # every file read (questions included) is the known upstream one

    table = run_cli("show", str(tmp_path / "runs" / MODELS[0]))
    assert table.returncode == 0, table.stderr
    flat = " ".join(table.stdout.split())
    assert flat.count("MT-Bench (FastChat llm_judge @") == 1  # the protocol line, printed once
    assert "judged turns the MT-Bench score averages" in flat  # mtbench.n, a registered figure
    report = api.report([tmp_path / "runs" / m for m in MODELS], tmp_path / "report.md", charts=False, audit=False)
    text = report.path.read_text(encoding="utf-8")
    assert "show_result.py" in text and "AlignBench 公式" not in text  # the overall is MT-Bench's, said so


# -- pairwise --------------------------------------------------------------------------------------------


def test_compare_sends_fastchats_pair_requests_and_counts_as_show_result(common, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    calls, judgment_file = run_gen_judgment(common, tmp_path / "fastchat", monkeypatch, preference, "--mode",
                                            "pairwise-baseline", "--baseline-model", BASELINE, "--model-list",
                                            MODELS[0])
    assert len(calls) == 80 * 2 * 2  # 80 questions, two turns, both orders (g1, g2)
    mine, base = write_jsonl(tmp_path / "a.jsonl", answers(MODELS[0])), write_jsonl(tmp_path / "b.jsonl",
                                                                                      answers(BASELINE))
    with StubServer(responder=lambda body: preference(body["messages"])) as stub:
        proc = run_cli("compare", "--upstream", str(FASTCHAT), "-a", str(mine), "-b", str(base),
                       "--judge-base-url", stub.url, "--out", str(tmp_path / "cmp"), "--format", "json",
                       "--max-failed", "100%", "--bootstrap", "0")
        assert proc.returncode == 0, proc.stderr
        assert sent(stub) == recorded(calls)
    ours = json.loads(proc.stdout)["fastchat"]["models"][MODELS[0]]
    (frame,) = show_result("display_result_pairwise", input_file=str(judgment_file), baseline_model=BASELINE)
    theirs = frame.loc[MODELS[0]]
    for key in ("win", "loss", "tie"):
        assert ours[key] == int(theirs[key])
    for key in ("win_rate", "loss_rate", "win_rate_adjusted"):
        assert ours[key] == pytest.approx(float(theirs[key]), abs=1e-4)
    errors = sum(1 for r in read_jsonl(judgment_file) if "error" in (r["g1_winner"], r["g2_winner"]))
    assert errors > 0 and ours["error"] == errors

    table = run_cli("compare", "--upstream", str(FASTCHAT), "-a", str(mine), "-b", str(base), "--judge-base-url",
                    "http://127.0.0.1:9/v1", "--out", str(tmp_path / "cmp2"), "--max-failed", "100%",
                    "--bootstrap", "0")  # every reply comes from the cache: no server needed
    assert table.returncode == 0, table.stderr
    assert "win_rate_adjusted" in table.stdout and "MT-Bench (FastChat llm_judge @" in table.stdout


# -- checkouts that differ -------------------------------------------------------------------------------


def _copy_checkout(tmp_path: Path) -> Path:
    root = tmp_path / "FastChat"
    shutil.copytree(FASTCHAT, root)
    return root


def test_a_modified_checkout_is_read_at_run_time_and_labelled(tmp_path: Path) -> None:
    root = _copy_checkout(tmp_path)
    prompts = root / "fastchat" / "llm_judge" / "data" / "judge_prompts.jsonl"
    lines = [json.loads(line) for line in prompts.read_text(encoding="utf-8").splitlines() if line.strip()]
    for line in lines:
        if line["name"] == "single-v1":
            line["system_prompt"] = "EDITED SYSTEM PROMPT"
    write_jsonl(prompts, lines)
    answer_file = write_jsonl(tmp_path / "x.jsonl", answers(MODELS[0]))
    plan = api.plan_score(None, answer_file, upstream=root / "fastchat" / "llm_judge")  # llm_judge/ itself works too
    fastchat = open_fastchat(root)
    assert fastchat.modified == ["data/judge_prompts.jsonl"]
    assert plan.upstream.label.startswith("MT-Bench (FastChat llm_judge @ ")
    assert ", modified: data/judge_prompts.jsonl differ" in plan.upstream.label
    assert plan.upstream.record()["modified"] is True and plan.upstream.record()["differs"] == fastchat.modified
    writing = [it for it in plan.items if it.question.category == "writing" and it.turn == 1]
    math = [it for it in plan.items if it.question.category == "math" and it.turn == 1]
    assert writing and all(it.request.messages[0]["content"] == "EDITED SYSTEM PROMPT" for it in writing)
    assert math and all(it.request.messages[0]["content"] != "EDITED SYSTEM PROMPT" for it in math)


@pytest.mark.parametrize(("path", "edit", "message"), [
    ("data/judge_prompts.jsonl", lambda t: "\n".join(ln for ln in t.splitlines() if '"single-v1"' not in ln),
     "no judge prompt named 'single-v1'"),
    ("data/judge_prompts.jsonl", lambda t: t + "\n{not json\n", "not valid JSON"),
    ("common.py", lambda t: t.replace("NEED_REF_CATS = ", "REF_CATS = "), "no NEED_REF_CATS"),
    ("data/mt_bench/reference_answer/gpt-4.jsonl", lambda t: "\n".join(t.splitlines()[1:]),
     "no reference answer"),
])
def test_a_checkout_that_does_not_parse_fails_naming_the_file_before_any_call(tmp_path: Path, path: str, edit,  # noqa: ANN001
                                                                               message: str) -> None:
    root = _copy_checkout(tmp_path)
    target = root / "fastchat" / "llm_judge" / path
    target.write_text(edit(target.read_text(encoding="utf-8")), encoding="utf-8")
    answer_file = write_jsonl(tmp_path / "x.jsonl", answers(MODELS[0]))
    with StubServer(responder=lambda body: rating(body["messages"])) as stub:
        with pytest.raises(UpstreamError, match=message) as info:
            api.score(None, answer_file, upstream=root, base_url=stub.url, out=tmp_path / "run")
        proc = run_cli("score", "--upstream", str(root), "-a", str(answer_file), "--judge-base-url", stub.url,
                       "--out", str(tmp_path / "run"))
        assert stub.calls == 0
    assert str(target) in str(info.value)
    assert proc.returncode == 2 and target.name in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()


def test_upstream_refuses_our_rubric_options(tmp_path: Path) -> None:
    answer_file = write_jsonl(tmp_path / "x.jsonl", answers(MODELS[0]))
    with pytest.raises(ValueError, match="drop --rubric/--protocol"):
        api.plan_score(None, answer_file, upstream=FASTCHAT, rubric="mtbench-single")
    with pytest.raises(ValueError, match="give the question file"):
        api.plan_score(None, answer_file)
