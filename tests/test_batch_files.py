"""OpenAI Batch files for an engine of one's own (``--batch-file-out`` / ``--batch-file-in``, docs/batch.md).

The test plays the engine (vllm run-batch, Ray Data LLM, a LiteLLM proxy all read and write these formats):
it reads the input file ``score`` wrote, answers each line as an AlignBench judge would, drops a few lines
and turns one into an error line. The run must come out right (replies read and parsed, the error kept,
the dropped requests named and counted, nothing invented, nothing sent to the judge server), and reading
the same output file again must pay nothing and change nothing.
"""

from __future__ import annotations

import ast
import json
import sqlite3
from pathlib import Path

from conftest import ANSWERS_A, QUESTIONS, read_jsonl, run_cli, write_jsonl
from stub_server import alignbench_responder


def _engine(requests: list[dict]) -> list[dict]:
    """What vllm run-batch writes: one output line per request, custom_id kept, the chat completion as body."""
    out = []
    for i, line in enumerate(requests):
        text = alignbench_responder(line["body"])
        body = {"id": f"chatcmpl-{i}", "object": "chat.completion", "created": 0, "model": line["body"]["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150}}
        out.append({"id": f"vllm-{i}", "custom_id": line["custom_id"],
                    "response": {"status_code": 200, "request_id": f"vllm-batch-{i}", "body": body}, "error": None})
    return out


def _cached(cache: Path) -> int:
    with sqlite3.connect(cache) as db:
        return db.execute("select count(*) from replies").fetchone()[0]


def test_batch_files_round_trip(tmp_path: Path, stub, _isolated_cache: Path) -> None:
    out, requests, results = tmp_path / "run", tmp_path / "requests.jsonl", tmp_path / "results.jsonl"
    base = ["score", "-q", str(QUESTIONS), "-a", str(ANSWERS_A), "--judge", "openai:gpt-4o",
            "--judge-base-url", stub.url, "--out", str(out), "--max-failed", "50%"]

    # no judge server is needed to write the file (the engine runs elsewhere): a dead port here
    offline = [x if x != stub.url else "http://127.0.0.1:9/v1" for x in base]
    wrote = run_cli(*offline, "--batch-file-out", str(requests))
    assert wrote.returncode == 75, wrote.stderr
    assert not (out / "summary.json").exists()  # stopped before anything was written
    lines = read_jsonl(requests)
    n = len(read_jsonl(ANSWERS_A))
    assert len(lines) == n and len({x["custom_id"] for x in lines}) == n
    assert {x["url"] for x in lines} == {"/v1/chat/completions"} and all(x["method"] == "POST" for x in lines)

    replies = _engine(lines)
    dropped = [replies[i]["custom_id"] for i in (2, 5, 9)]
    bad = replies[0]["custom_id"]
    replies[0] = {"id": "vllm-0", "custom_id": bad, "response": {"status_code": 400, "request_id": "r0", "body": {
        "error": {"message": "prompt is longer than the model's context", "type": "BadRequestError"}}}, "error": None}
    write_jsonl(results, [r for r in replies if r["custom_id"] not in dropped])

    first = run_cli(*base, "--batch-file-in", str(results))
    assert first.returncode == 0, first.stderr
    assert stub.calls == 0  # nothing went online
    for key in dropped:
        assert key[:16] in first.stderr
    assert "3 request(s) missing from results.jsonl" in first.stderr
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["n"] == n and summary["n_failed"] == 4
    judgments = {j["question_id"]: j for j in read_jsonl(out / "judgments.jsonl")}
    expected = {}
    for r in replies[1:]:
        if r["custom_id"] in dropped:
            continue
        text = r["response"]["body"]["choices"][0]["message"]["content"]
        expected[r["custom_id"]] = ast.literal_eval(text.strip().splitlines()[-1])["综合得分"]
    ok = [j for j in judgments.values() if j["status"] == "ok"]
    assert sorted(j["overall"] for j in ok) == sorted(expected.values())  # the judge's verdicts, none invented
    errors = [j for j in judgments.values() if j["status"] != "ok"]
    assert sum("context" in (j.get("detail") or "") for j in errors) == 1  # the error line, kept
    assert sum("no line with custom_id" in (j.get("detail") or "") for j in errors) == 3
    cached = _cached(_isolated_cache)
    assert cached == n - 4

    again = run_cli(*base, "--batch-file-in", str(results))
    assert again.returncode == 0, again.stderr
    assert stub.calls == 0 and _cached(_isolated_cache) == cached
    assert {j["question_id"]: (j["status"], j["overall"], j["detail"]) for j in read_jsonl(out / "judgments.jsonl")} == \
        {q: (j["status"], j["overall"], j["detail"]) for q, j in judgments.items()}


def test_a_hostile_output_line_is_one_error_naming_file_and_line(tmp_path: Path, stub) -> None:
    """A 5,000-digit integer (Python's int parser refuses it) in the output file: one line naming the file and
    the line, read through the one bounded JSONL reader, never a traceback."""
    results = tmp_path / "results.jsonl"
    results.write_text('{"custom_id": "a", "response": null}\n{"custom_id": "b", "n": ' + "9" * 5000 + "}\n",
                       encoding="utf-8")
    proc = run_cli("score", "-q", str(QUESTIONS), "-a", str(ANSWERS_A), "--judge", "openai:gpt-4o",
                   "--judge-base-url", stub.url, "--out", str(tmp_path / "run"), "--batch-file-in", str(results))
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert f"--batch-file-in: {results}:2:" in proc.stderr and stub.calls == 0
