"""The API shows itself: every synchronous function has the signature and docstring of its async twin,
``help()`` lists every parameter (the judge settings with what each means), a misspelt keyword is a
``TypeError`` naming it before anything is read or sent, and the judge settings score, compare and
meta-eval share are one object (``JudgeSettings``) that the CLI's options and the API's keywords build
alike."""

from __future__ import annotations

import asyncio
import inspect
import json
import pydoc
from pathlib import Path

import pytest
import typer
from conftest import ANSWERS_A, ANSWERS_B, QUESTIONS, read_jsonl, write_jsonl
from stub_server import StubServer, alignbench_responder

import alignbench
from alignbench import api
from alignbench.batch import BatchOptions
from alignbench.cli import app
from alignbench.cli.app import note
from alignbench.cli.options import JUDGE_OPTIONS, judge_settings
from alignbench.data import InputError
from alignbench.settings import JudgeSettings

TWINS = [(api.score, api.score_async), (api.compare, api.compare_async), (api.meta_eval, api.meta_eval_async),
         (api.answer, api.answer_async), (api.run, api.run_async), (api.score_from_plan, api.score_from_plan_async)]
SHARED = {"score": (api.score, ()), "compare": (api.compare, ()), "meta-eval": (api.meta_eval, ("protocol",))}
NOWHERE = "http://127.0.0.1:9/v1"  # nothing listens: a call that got this far would fail differently

# The keyword arguments each function took before the settings object (alignbench 815e5ff): all still work.
BEFORE = {
    api.score: "model base_url judge_model rubric protocol out force concurrency timeout attempts parse_retries "
               "max_answer_chars temperature max_tokens cache allow_empty seed options on_event extra_manifest "
               "samples refresh_failed batch max_cost api_key_env api_key_explicit structured score_from top_p "
               "structured_via",
    api.compare: "judge_model base_url rubric protocol out force length_unit seed bootstrap concurrency timeout "
                 "attempts parse_retries max_answer_chars temperature max_tokens cache allow_empty on_event batch "
                 "max_cost api_key_env structured",
    api.meta_eval: "judge_model base_url rubric category concurrency timeout attempts parse_retries max_answer_chars "
                   "temperature max_tokens cache bootstrap seed out on_event on_combo batch max_cost structured",
    api.score_from_plan: "out force attempts parse_retries cache seed on_event extra_manifest refresh_failed batch "
                         "max_cost",
    api.plan_score: "model judge_model base_url rubric protocol max_answer_chars allow_empty samples concurrency "
                    "timeout temperature max_tokens options",
    api.plan_compare: "judge_model base_url rubric protocol max_answer_chars allow_empty concurrency timeout "
                      "temperature max_tokens",
    api.plan_meta_eval: "judge_model base_url rubric category max_answer_chars concurrency timeout temperature "
                        "max_tokens structured",
}


# -- signatures and help ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("sync", "twin"), TWINS, ids=lambda f: getattr(f, "__name__", ""))
def test_sync_and_async_signatures_agree(sync, twin) -> None:  # noqa: ANN001
    ours, theirs = inspect.signature(sync), inspect.signature(twin)
    assert ours == theirs  # names, kinds, defaults, annotations and the return annotation
    assert not [p for p in ours.parameters.values() if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    assert sync.__name__ == twin.__name__.removesuffix("_async") and twin.__doc__ in sync.__doc__
    assert inspect.iscoroutinefunction(twin) and not inspect.iscoroutinefunction(sync)


@pytest.mark.parametrize("function", [*(s for s, _ in TWINS), api.plan_score, api.plan_compare, api.plan_meta_eval],
                         ids=lambda f: f.__name__)
def test_help_lists_every_parameter(function) -> None:  # noqa: ANN001
    text = pydoc.render_doc(function, renderer=pydoc.plaintext)
    head = text.split("\n")[2]  # the signature line
    params = inspect.signature(function).parameters
    for name, p in params.items():
        shown = f"{name}: " if p.default is p.empty else f"{name}: {p.annotation!r} = {p.default!r}"
        assert shown in head, shown
        if "settings" in params and name in JudgeSettings.model_fields:  # each setting is explained too
            assert f"    {name}: {JudgeSettings.model_fields[name].description}" in text


def test_the_shared_settings_are_every_judging_functions_keywords_with_the_same_defaults() -> None:
    call = set(JudgeSettings.part("call"))
    assert call and call < set(JudgeSettings.model_fields) and call == JudgeSettings.CALL
    engine_room = [n for n in JudgeSettings.part("call") if n not in ("batch", "max_cost")]  # its channel: both
    for function, names in ((api.score, JudgeSettings.part("all")), (api.compare, JudgeSettings.part("all")),
                            (api.plan_score, JudgeSettings.part("judge")), (api.plan_compare, JudgeSettings.part("judge")),
                            (api.score_from_plan, JudgeSettings.part("call")), (api.run_score_plan, engine_room)):
        params = inspect.signature(function).parameters
        assert [n for n in params if n in JudgeSettings.model_fields] == names, function
        for name in names:
            assert params[name].default == JudgeSettings.model_fields[name].default and \
                params[name].kind is params[name].KEYWORD_ONLY
    for function in (api.meta_eval, api.plan_meta_eval):  # its protocols are an argument of their own
        params = inspect.signature(function).parameters
        assert "protocol" not in params and "protocols" in params
    for function, names in BEFORE.items():
        missing = set(names.split()) - set(inspect.signature(function).parameters)
        assert not missing, f"{function.__name__} no longer takes {sorted(missing)}"


# -- wrong calls -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("function", "args"), [
    (alignbench.score, (QUESTIONS, ANSWERS_A)),
    (alignbench.compare, (QUESTIONS, [ANSWERS_A], ANSWERS_B)),
    (alignbench.meta_eval, (["labels.jsonl"],)),
    (api.plan_score, (QUESTIONS, ANSWERS_A)),
    (api.plan_compare, (QUESTIONS, [ANSWERS_A], ANSWERS_B)),
    (api.plan_meta_eval, (["labels.jsonl"],)),
], ids=lambda x: getattr(x, "__name__", ""))
def test_a_misspelt_keyword_is_a_type_error_naming_it(function, args) -> None:  # noqa: ANN001
    """The files named do not all exist: reading anything before checking the call would fail otherwise."""
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'judge_base_urll' \(did you mean 'base_url'\?\)"):
        function(*args, judge_base_urll=NOWHERE)
    with pytest.raises(TypeError, match=rf"^{function.__name__}\(\) got an unexpected keyword argument 'timout'"):
        function(*args, timout=5)


def test_wrong_calls_fail_before_anything_is_read_or_sent(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-questions.jsonl"  # were anything read first, this would be the error
    with pytest.raises(TypeError, match="'attempt'"):
        asyncio.run(alignbench.score_async(missing, ANSWERS_A, base_url=NOWHERE, attempt=3))
    with pytest.raises(TypeError, match="'judge_modle'"):
        alignbench.answer(missing, "m", tmp_path / "a.jsonl", base_url=NOWHERE, judge_modle="x")
    with pytest.raises(TypeError, match="'judge_base_urll'"):
        alignbench.run(missing, model_name="m", base_url=NOWHERE, judge_base_urll=NOWHERE)
    with pytest.raises(TypeError, match="'judge_model'"):  # a plan is judged with the settings of the run only
        alignbench.score_from_plan(api.plan_score(QUESTIONS, ANSWERS_A), judge_model="other")
    # a bad value of a setting: an InputError naming it, before the questions are read or the judge is called
    for given, name in (({"timeout": 0}, "timeout"), ({"concurrency": 0}, "concurrency"),
                        ({"score_from": "votes"}, "score_from"), ({"structured_via": "xml"}, "structured_via"),
                        ({"settings": JudgeSettings(attempts=2), "parse_retries": -1}, "parse_retries")):
        with pytest.raises(InputError, match=rf"^{name}: "):
            alignbench.score(missing, ANSWERS_A, base_url=NOWHERE, **given)
    with pytest.raises(InputError, match="protocols"):
        api.plan_meta_eval([missing], settings=JudgeSettings(protocol="general"))
    assert not missing.exists()


# -- one settings object -------------------------------------------------------------------------------------


def test_settings_given_by_object_or_by_name_are_the_same(tmp_path: Path) -> None:
    settings = JudgeSettings(base_url=[NOWHERE], concurrency=2, parse_retries=0)
    assert api.score.settings_of(QUESTIONS, ANSWERS_A, base_url=NOWHERE, concurrency=2, parse_retries=0) == settings
    assert api.score.settings_of(QUESTIONS, ANSWERS_A, settings=settings) == settings
    named = api.compare.settings_of(QUESTIONS, [ANSWERS_A], ANSWERS_B, settings=settings, concurrency=5)
    assert named.concurrency == 5 and named.replace(concurrency=2) == settings  # a name wins over settings=
    assert JudgeSettings(base_url=f"{NOWHERE}, http://127.0.0.1:10/v1") == JudgeSettings(
        base_url=[NOWHERE, "http://127.0.0.1:10/v1"])  # the same servers, however named, are the same settings
    answers = write_jsonl(tmp_path / "a.jsonl", read_jsonl(ANSWERS_A)[:6])
    with StubServer(responder=alignbench_responder) as stub:
        by_object = alignbench.score(QUESTIONS, answers, out=tmp_path / "object",
                                     settings=JudgeSettings(base_url=stub.url, parse_retries=0, max_tokens=300))
        calls = stub.calls
        by_name = alignbench.score(QUESTIONS, answers, out=tmp_path / "name", base_url=stub.url, parse_retries=0,
                                   max_tokens=300)
        assert calls == 6 and stub.calls == 6  # the second call read every reply the first one paid for
        assert {r["max_tokens"] for r in stub.requests} == {300}
    first, second = by_object["model-a"].summary, by_name["model-a"].summary
    assert second.usage.cached_replies == 6 and first.usage.calls == 6
    assert (first.overall, first.categories, first.run.judge) == (second.overall, second.categories, second.run.judge)


def _parsed(command: str, args: list[str]) -> JudgeSettings:
    """What the CLI command makes of ``args``: its options parsed by typer's own click command, the judge
    options among them turned into settings by ``judge_settings`` (as the command's wrapper does)."""
    click_command = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    required = {"score": ["-q", "q", "-a", "a"], "compare": ["-q", "q", "-a", "a", "-b", "b"],
                "meta-eval": ["-d", "d"]}[command]
    params = click_command.make_context(command, [*required, *args]).params
    skip = SHARED[command][1]
    return judge_settings({k: v for k, v in params.items() if k in JUDGE_OPTIONS and k not in skip})


@pytest.mark.parametrize("command", list(SHARED))
def test_the_cli_and_the_api_build_the_same_settings(command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    function, skip = SHARED[command]
    args = (QUESTIONS, [ANSWERS_A], ANSWERS_B) if command == "compare" else \
        (QUESTIONS, ANSWERS_A) if command == "score" else (["labels.jsonl"],)
    assert _parsed(command, []) == function.settings_of(*args) == JudgeSettings()
    monkeypatch.setenv("JUDGE_KEY", "sk-test")
    cli = ["--judge-model", "m", "--judge-base-url", "http://a/v1", "--judge-base-url", "http://b/v1",
           "--rubric", "alignbench", "-c", "3", "--timeout", "9.5", "--attempts", "2", "--parse-retries", "0",
           "--max-answer-chars", "500", "--temperature", "0.5", "--max-tokens", "100", "--cache", "x.sqlite",
           "--api-key-env", "JUDGE_KEY", "--refresh", "failed", "--structured", "--score-from", "logprobs",
           "--device", "cpu", "--batch-size", "4", "--max-cost", "1.5"]
    named = dict(judge_model="m", base_url="http://a/v1,http://b/v1", rubric="alignbench", concurrency=3,
                 timeout=9.5, attempts=2, parse_retries=0, max_answer_chars=500, temperature=0.5, max_tokens=100,
                 cache="x.sqlite", api_key_env="JUDGE_KEY", api_key_explicit=True, refresh_failed=True,
                 structured=True, score_from="logprobs", options={"device": "cpu", "batch_size": 4}, max_cost=1.5)
    if "protocol" not in skip:
        cli += ["--protocol", "general"]
        named["protocol"] = "general"
    parsed = _parsed(command, cli)
    assert parsed == function.settings_of(*args, **named) == JudgeSettings(**named)
    assert parsed.base_url == ("http://a/v1", "http://b/v1") and parsed.cache == Path("x.sqlite")
    batch = _parsed(command, ["--batch", "--no-wait", "--batch-fallback", "online", "--no-cache"])
    assert batch == function.settings_of(*args, batch=BatchOptions(wait=False, fallback="online", on_note=note),
                                         cache=False)
    assert batch.batch.on_note is note and batch.cache is False


def test_every_cli_judge_option_defaults_to_its_setting() -> None:
    for name, (_, default) in JUDGE_OPTIONS.items():
        if name in JudgeSettings.model_fields:
            assert default == JudgeSettings.model_fields[name].default, name
    covered = {"judge_base_url", "no_cache", "refresh", "device", "batch_size", "no_wait", "batch_fallback"}
    assert set(JUDGE_OPTIONS) - covered <= set(JudgeSettings.model_fields)  # the rest are fields by name


# -- settings every judging command now takes --------------------------------------------------------------


def test_compare_and_meta_eval_refresh_only_what_failed(tmp_path: Path) -> None:
    """--refresh failed (``refresh_failed=True``) asks the judge again where the cached reply gave no
    verdict, in compare and meta-eval as in score; without it those replies come from the cache."""
    unreadable = {"on": True}

    def judge(body: dict) -> str:
        text = body["messages"][-1]["content"]
        if unreadable["on"]:
            return "我觉得还行。"
        if "[助手1的答案开始]" in text:
            return "比较……\n最终判决：[[助手1]]"
        score = text.count("回答") + 2  # the labelled answers differ in length, so do their scores
        return f"分析……\n{{'事实正确性': {score}, '综合得分': {score}}}"

    model_a = write_jsonl(tmp_path / "a.jsonl", read_jsonl(ANSWERS_A)[:3])
    model_b = write_jsonl(tmp_path / "b.jsonl", read_jsonl(ANSWERS_B)[:3])
    points = write_jsonl(tmp_path / "points.jsonl", [
        {"id": i, "category": "综合问答", "question": f"问题{i}", "reference": "参考答案", "response": "回答" * (i + 1),
         "model": "m", "human_score": i + 1} for i in range(3)])
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [
        {"id": 0, "category": "综合问答", "question": "问题", "response_1": "甲", "response_2": "乙", "label": 1}])
    with StubServer(responder=judge) as stub:
        common = dict(base_url=stub.url, parse_retries=0)
        pair = lambda **kw: alignbench.compare(QUESTIONS, [model_a], model_b, "openai:judge",  # noqa: E731
                                               out=tmp_path / "c", force=True, bootstrap=0, **common, **kw)
        meta = lambda **kw: alignbench.meta_eval([points, pairs], "openai:judge", bootstrap=0,  # noqa: E731
                                                 **common, **kw)
        assert pair().failed == 3 and meta().failed == 4 and stub.calls == 6 + 5
        unreadable["on"] = False
        assert pair().failed == 3 and meta().failed == 4 and stub.calls == 11  # replayed from the cache
        fixed, measured = pair(refresh_failed=True), meta(refresh_failed=True)
        assert fixed.failed == 0 and measured.failed == 0 and stub.calls == 22
    counts = fixed.summary.models["model-a"]
    assert counts["n_wins"] + counts["n_ties"] + counts["n_losses"] == 3 and counts["n_failed"] == 0
    saved = json.loads((tmp_path / "c" / "pairwise_summary.json").read_text(encoding="utf-8"))
    assert saved["models"]["model-a"] == json.loads(json.dumps(counts))
