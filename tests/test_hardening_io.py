"""No crash after money is spent, nothing paid is lost, secrets in any form (issue 23, parts 3 and 4).

Hostile JSON (5,000-digit integers, 5,000 levels of nesting, lone surrogates, cut lines) in replies, provider
batch output and every input file; price files that would switch ``--max-cost`` off; a full disk under
``--out`` (a real tmpfs when this process may mount one, and everywhere a real file-size limit, RLIMIT_FSIZE,
in a subprocess); a server that echoes the key transformed; credential-carrying URLs. Real loopback servers,
the real CLI where the CLI is what is tested.
"""

from __future__ import annotations

import base64
import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from batch_server import BatchServer
from conftest import ANSWERS_A, QUESTIONS, ROOT, read_jsonl, run_cli, write_jsonl
from stub_server import StubServer, alignbench_responder

import alignbench
from alignbench import safejson
from alignbench.batch import BatchOptions
from alignbench.cost import BudgetExceeded, budget_for, load_prices
from alignbench.data import InputError
from alignbench.engine import ServerUnavailable
from alignbench.judges import ModelConfigError, resolve_model
from alignbench.redact import redact, redact_url, remember

DEEP = "[" * 5000 + "]" * 5000
HUGE = "9" * 5000


def few(tmp_path: Path, n: int = 3, **extra: object) -> Path:
    return write_jsonl(tmp_path / "few.jsonl", [{**r, **extra} for r in read_jsonl(ANSWERS_A)[:n]])


# -- the bounded reader -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text, words", [
    (DEEP, "nested more than"), ('{"a": ' + HUGE + "}", "5,000 digits"), ('{"m": "\\ud800"}', "surrogate"),
    ('{"a": [1, 2', "not valid JSON"),
])
def test_hostile_json_is_a_decode_error_never_a_crash(text: str, words: str) -> None:
    with pytest.raises(json.JSONDecodeError) as caught:
        safejson.loads(text)
    assert words in safejson.describe(caught.value)


def test_ordinary_json_reads_as_json_does() -> None:
    text = json.dumps({"q": "[[8]] {'综合得分': 9}", "n": [1, -2.5, 10**30], "emoji": "😀", "deep": [[[[1]]]]},
                      ensure_ascii=True)
    assert safejson.loads(text) == json.loads(text)
    assert safejson.loads(text.encode("utf-8")) == json.loads(text)


# -- input files: one line naming file and line, before any call ------------------------------------------


@pytest.mark.parametrize("field, raw, words", [
    ("extra", "[" * 100 + "]" * 100, None),  # deep, but within bounds: read, judged
    ("extra", DEEP, "nested more than"),
    ("extra", HUGE, "digits"),
    ("model_id", '"m\\udc80"', "surrogate"),
], ids=["deep-ok", "deep", "huge-int", "surrogate"])
def test_hostile_answer_lines_stop_before_any_call(field: str, raw: str, words: str | None, tmp_path: Path) -> None:
    rows = [json.dumps(r, ensure_ascii=False) for r in read_jsonl(ANSWERS_A)[:3]]
    rows[1] = rows[1][:-1] + f', "{field}": {raw}}}'
    answers = tmp_path / "hostile.jsonl"
    answers.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with StubServer(responder=alignbench_responder) as stub:
        if words is None:
            alignbench.score(QUESTIONS, answers, "openai:judge", base_url=stub.url, out=tmp_path / "run")
            assert stub.calls == 3
            return
        with pytest.raises(InputError) as caught:
            alignbench.score(QUESTIONS, answers, "openai:judge", base_url=stub.url, out=tmp_path / "run")
        assert stub.calls == 0
    assert str(caught.value).startswith(f"{answers}:2: ") and words in str(caught.value)


def test_hostile_questions_labels_and_winrate_files_name_file_and_line(tmp_path: Path) -> None:
    from alignbench.metaeval import load_meta_files
    from alignbench.pairwise.compare import read_pairwise_judgments
    from alignbench.rubrics import load_rubric

    lines = QUESTIONS.read_text(encoding="utf-8").splitlines()[:2]
    questions = tmp_path / "q.jsonl"
    questions.write_text(lines[0] + "\n" + lines[1][:-1] + ', "x": ' + DEEP + "}\n", encoding="utf-8")
    with pytest.raises(InputError, match=rf"^{questions}:2: .*nested"):
        alignbench.score(questions, ANSWERS_A, "openai:judge", base_url="http://127.0.0.1:9/v1", out=tmp_path / "r")
    labels = tmp_path / "labels.json"  # the JSON-list form of a meta-eval file (LLMBar)
    labels.write_text('[{"question": "q", "output_1": "a", "output_2": "b", "label": ' + HUGE + "}]",
                      encoding="utf-8")
    with pytest.raises(InputError, match="digits"):
        load_meta_files([labels], load_rubric("alignbench"))
    pairs = tmp_path / "pairwise_judgments.jsonl"
    pairs.write_text('{"model": "m", "x": "\\ud800"}\n', encoding="utf-8")
    with pytest.raises(InputError, match=rf"^{pairs}:1: .*surrogate"):
        read_pairwise_judgments(pairs)


def test_an_undecodable_model_name_is_refused_before_any_call(tmp_path: Path) -> None:
    with StubServer(responder=alignbench_responder) as stub:
        with pytest.raises(InputError, match="surrogate"):
            alignbench.score(QUESTIONS, few(tmp_path), "openai:judge", base_url=stub.url, model="m\udcff",
                             out=tmp_path / "r")
        assert stub.calls == 0


# -- replies: a counted failure with the text kept, and the same on every re-run --------------------------


@pytest.mark.parametrize("body", ['{"overall": {"score": ' + HUGE + "}}", '{"overall": ' + DEEP + "}"],
                         ids=["huge-int", "deep"])
def test_a_hostile_structured_reply_is_a_parse_failure_on_every_run(body: str, tmp_path: Path) -> None:
    answers = few(tmp_path, 2)
    with StubServer(responder=lambda _: body) as stub:
        for refresh in (False, True):
            run = alignbench.score(QUESTIONS, answers, "openai:judge", base_url=stub.url, out=tmp_path / "r",
                                   structured=True, refresh_failed=refresh, parse_retries=0)["model-a"]
            assert [j.status.value for j in run.judgments] == ["parse_failed"] * 2
            assert all(j.raw == body for j in run.judgments)
        assert stub.calls == 4  # asked again only under --refresh failed; the cached reply never crashed


def test_a_reply_with_a_lone_surrogate_is_stored_escaped(tmp_path: Path) -> None:
    with StubServer(responder=lambda _: "分析\ud800。\n{'综合得分': 6}") as stub:
        run = alignbench.score(QUESTIONS, few(tmp_path, 2), "openai:judge", base_url=stub.url,
                               out=tmp_path / "r")["model-a"]
        again = alignbench.score(QUESTIONS, few(tmp_path, 2), "openai:judge", base_url=stub.url,
                                 out=tmp_path / "r")["model-a"]
        assert stub.calls == 2
    assert [j.overall for j in run.judgments] == [6.0, 6.0] == [j.overall for j in again.judgments]
    assert "\ufffd" in run.judgments[0].raw


# -- provider batch output: a bad line costs that line only ------------------------------------------------


def test_cut_and_hostile_batch_lines_cost_those_lines_only(tmp_path: Path) -> None:
    def mangle(data: bytes) -> bytes:
        lines = data.split(b"\n")
        lines[2] = lines[2][: len(lines[2]) // 2]  # cut
        lines[4] = lines[4][:-1] + b', "x": ' + HUGE.encode() + b"}"
        lines[6] = lines[6][:-1] + b', "x": ' + DEEP.encode() + b"}"
        return b"\n".join(lines)

    with BatchServer(timing=(0.02, 0.1, 0.02)) as server:
        server.mangle = mangle
        run = alignbench.score(QUESTIONS, ANSWERS_A, "openai:gpt-4o", base_url=server.url, out=tmp_path / "b",
                               batch=BatchOptions(poll=(0.02, 0.1)))["model-a"]
        assert [u["n"] for u in server.uploads] == [32, 3], "only the three unreadable lines were asked again"
        assert run.summary.n_ok == 32
        again = alignbench.score(QUESTIONS, ANSWERS_A, "openai:gpt-4o", base_url=server.url, out=tmp_path / "b",
                                 batch=BatchOptions(poll=(0.02, 0.1)))["model-a"]
        assert len(server.uploads) == 2 and again.summary.usage.cached_replies == 32


# -- price files -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("entry, words", [
    ("{currency: USD, output: 1.0}", "missing field 'input'"),
    ("{currency: USD, input: .nan, output: 1.0}", "non-negative number"),
    ("{currency: USD, input: -1.0, output: 1.0}", "non-negative number"),
    ("[1, 2]", "expected a mapping"),
])
def test_a_bad_price_file_is_one_line_before_any_call(entry: str, words: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text(f"prices:\n  openai:judge: {entry}\n", encoding="utf-8")
    monkeypatch.setenv("ALIGNBENCH_PRICES", str(prices))
    with pytest.raises(InputError, match=words) as caught:
        load_prices()
    assert str(prices) in str(caught.value)
    with StubServer(responder=alignbench_responder) as stub:
        with pytest.raises(InputError):  # a plain online run, no --max-cost: still before any call
            alignbench.score(QUESTIONS, few(tmp_path), "openai:judge", base_url=stub.url, out=tmp_path / "r")
        assert stub.calls == 0


def test_max_cost_nan_is_refused() -> None:
    with pytest.raises(BudgetExceeded, match="non-negative"):
        budget_for(float("nan"), [resolve_model("openai:gpt-4o")])


# -- a full disk never deletes a finished run ------------------------------------------------------------


def _finished(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}


def _limit_file_size(limit: int):
    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return preexec


def test_a_file_size_limit_keeps_the_finished_run_and_ends_in_one_line(tmp_path: Path) -> None:
    answers = few(tmp_path, 4)
    with StubServer(responder=alignbench_responder) as stub:
        args = ["score", "-q", str(QUESTIONS), "-a", str(answers), "--judge", "openai:judge", "--judge-base-url",
                stub.url, "--out", str(tmp_path / "run")]
        alignbench.score(QUESTIONS, answers, "openai:judge", base_url=stub.url, out=tmp_path / "run")
        before = _finished(tmp_path / "run")
        size = len(before["judgments.jsonl"])
        env = {**os.environ, "COLUMNS": "120", "PYTHONIOENCODING": "utf-8"}
        # --no-cache: the limit applies to every file this process writes, and the reply cache (larger than
        # the limit) is not what is tested here; the judgments and summary files are
        proc = subprocess.run([sys.executable, "-m", "alignbench", *args, "--no-cache"], capture_output=True,
                              text=True, env=env, cwd=ROOT, timeout=120, preexec_fn=_limit_file_size(size // 2))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "cannot write" in proc.stderr and "cache" in proc.stderr
    assert _finished(tmp_path / "run") == before  # byte for byte: nothing deleted, nothing half-written
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")]
    assert alignbench.load_run(tmp_path / "run").summary.n_ok == 4


def test_a_full_tmpfs_keeps_the_finished_run(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)],
                                           capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root and mount rights)")
    try:
        with StubServer(responder=alignbench_responder) as stub:
            kw = {"base_url": stub.url, "out": disk / "run"}
            alignbench.score(QUESTIONS, few(tmp_path, 4), "openai:judge", **kw)
            before = _finished(disk / "run")
            filler = disk / "filler"
            with filler.open("wb", buffering=0) as fh:  # fill the disk, leaving less than a judgments file
                try:
                    while True:
                        fh.write(b"x" * 512)
                except OSError:
                    pass
            with pytest.raises(alignbench.RunError, match="No space left"):
                alignbench.score(QUESTIONS, few(tmp_path, 4), "openai:judge", **kw)
            assert _finished(disk / "run") == before
            assert alignbench.load_run(disk / "run").summary.n_ok == 4
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)  # lazy: even a file still open cannot keep it


# -- secrets in any form ---------------------------------------------------------------------------------

KEY = "sk-Hostile-0123456789abcdefXYZ"


def forms(key: str) -> dict[str, str]:
    """The transformed ways a server may echo a key."""
    raw = key.encode()
    return {"upper": key.upper(), "lower": key.lower(), "split": key[:9] + "\n  " + key[9:20] + " " + key[20:],
            "prefix": key[:24], "url": quote(key + "/+", safe=""),
            **{f"b64-{k}": base64.b64encode(b"#" * k + raw).decode() for k in range(3)},
            "b64-urlsafe": base64.urlsafe_b64encode(b"~" + raw).decode().rstrip("=")}


def test_redact_masks_every_transformed_form() -> None:
    remember(KEY)
    remember(KEY + "/+")
    for name, text in forms(KEY).items():
        shown = redact(f"before {text} after")
        assert shown.startswith("before ") and shown.endswith(" after"), name
        core = text.strip("=")[4:-4] if name.startswith("b64") else text
        assert core not in shown and KEY[:12].lower() not in shown.lower(), (name, shown)
    assert redact("a short sk-Host is fine") == "a short sk-Host is fine"


def test_a_server_echoing_the_key_transformed_leaks_nothing(tmp_path: Path) -> None:
    echoed = forms(KEY)

    def echo(_: dict) -> str:
        return "回显：" + " | ".join(echoed.values()) + "\n{'综合得分': 6}"

    with StubServer(responder=echo) as stub:
        out = tmp_path / "run"
        proc = run_cli("score", "-q", str(QUESTIONS), "-a", str(few(tmp_path, 1)), "--judge", "openai:judge",
                       "--judge-base-url", stub.url, "--api-key-env", "MY_KEY", "--out", str(out),
                       env={"MY_KEY": KEY})
        assert stub.headers[0]["authorization"] == f"Bearer {KEY}"
    assert proc.returncode == 0, proc.stderr
    stored = (out / "judgments.jsonl").read_text(encoding="utf-8") + proc.stdout + proc.stderr
    stored += (tmp_path / "cache.sqlite").read_bytes().decode("utf-8", "replace")
    assert "回显" in stored
    for name, text in echoed.items():
        assert text.strip("=")[4:-4] not in stored, name
    assert KEY[:12].lower() not in stored.lower()


URL_SECRETS = ("JSESS0123", "AUTHV0123", "PASSV0123", "ACCSV0123", "CODEV0123", "SIGNV0123", "USERPW0123")


def test_credential_url_parts_are_stripped_from_summary_and_messages(tmp_path: Path) -> None:
    url = ("http://u:USERPW0123@127.0.0.1:9/v1;jsessionid=JSESS0123?auth=AUTHV0123&pass=PASSV0123&access=ACCSV0123"
           "&code=CODEV0123&signature=SIGNV0123&model=keep")
    shown = redact_url(url)
    assert "model=keep" in shown and "127.0.0.1:9/v1" in shown
    assert not [s for s in URL_SECRETS if s in shown] and not [s for s in URL_SECRETS if s in redact(f"at {url}.")]
    assert resolve_model("openai:judge", base_url=url).public()["base_url"] == [shown]  # what summary.json holds
    with pytest.raises(ServerUnavailable) as caught:  # nothing listens there: the message names it
        alignbench.score(QUESTIONS, few(tmp_path, 1), "openai:judge", base_url=url, out=tmp_path / "r")
    assert "127.0.0.1:9/v1" in str(caught.value) and not [s for s in URL_SECRETS if s in str(caught.value)]


def test_a_url_that_does_not_parse_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ModelConfigError, match="does not parse") as caught:
        resolve_model("openai:judge", base_url="http://user:pa/ss@127.0.0.1:9/v1")
    assert "pa/ss" not in str(caught.value) and "user:" not in str(caught.value)
    proc = run_cli("score", "-q", str(QUESTIONS), "-a", str(ANSWERS_A), "--judge", "openai:judge",
                   "--judge-base-url", "http://user:pa/ss@127.0.0.1:9/v1", "--out", str(tmp_path / "r"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "does not parse" in proc.stderr
    assert "pa/ss" not in proc.stderr
