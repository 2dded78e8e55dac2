"""The library core: the Python API gives the CLI's numbers, per-model usage adds up, the package has
no import cycle and no CLI module leans on another, and run folders are safe (odd names, two
writers, a kill in the middle of the final write)."""

from __future__ import annotations

import ast
import asyncio
import json
import multiprocessing
import os
import signal
from pathlib import Path

import pytest
from conftest import ANSWERS_A, ANSWERS_B, QUESTIONS, ROOT, read_jsonl, run_cli
from stub_server import alignbench_responder, prompt_chars

import alignbench
from alignbench.rundir import RunError, RunFolder, folder_name, load_run


def test_api_score_equals_cli_json(stub, tmp_path: Path) -> None:
    runs = alignbench.score(QUESTIONS, ANSWERS_A, "critiquellm", base_url=stub.url, out=tmp_path / "api")
    assert list(runs) == ["model-a"]
    run = runs["model-a"]
    assert run.dir == tmp_path / "api" and len(run.judgments) == 32 and run.summary.finished
    proc = run_cli("score", "-q", str(QUESTIONS), "-a", str(ANSWERS_A), "--judge-base-url", stub.url,
                   "--out", str(tmp_path / "cli"), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    cli = json.loads(proc.stdout)
    ours = run.summary.as_json()
    for key in ("overall", "overall_ci", "reasoning", "language", "categories", "dimensions", "n_ok"):
        assert ours[key] == cli[key], key
    assert cli["usage"]["cached_replies"] == 32 and cli["usage"]["calls"] == 0  # the CLI read the API's replies
    loaded = alignbench.load_run(tmp_path / "cli")
    assert loaded.summary.overall == run.summary.overall and loaded.summary.categories["数学计算"].n == 4


def test_score_async_inside_a_running_loop_and_events(stub, tmp_path: Path) -> None:
    events = []

    async def notebook() -> dict:
        return await alignbench.score_async(QUESTIONS, [ANSWERS_A], base_url=stub.url, out=tmp_path / "r",
                                            on_event=events.append)

    runs = asyncio.run(notebook())
    assert runs["model-a"].summary.n == 32
    assert events[0].done == 0 and events[-1].done == events[-1].total == 32 and events[-1].label == "judging"

    async def wrong() -> None:
        alignbench.score(QUESTIONS, ANSWERS_A, base_url=stub.url, out=tmp_path / "r")

    with pytest.raises(RuntimeError, match="score_async"):
        asyncio.run(wrong())


def test_two_models_report_their_own_calls_and_tokens(stub, tmp_path: Path) -> None:
    runs = alignbench.score(QUESTIONS, [ANSWERS_A, ANSWERS_B], base_url=stub.url, out=tmp_path / "two")
    a, b = runs["model-a"].summary.usage, runs["model-b"].summary.usage
    assert a.calls == b.calls == 32  # not the run's 64 each
    assert a.calls + b.calls == stub.calls
    sent = sum(prompt_chars(r) for r in stub.requests)  # the stub counts characters (of a bare prompt here)
    assert a.prompt_tokens + b.prompt_tokens == sent and a.prompt_tokens != b.prompt_tokens
    assert runs["model-a"].dir == tmp_path / "two" / "model-a"


def test_parse_retries_count_every_reply(tmp_path: Path) -> None:
    from stub_server import StubServer

    first, second = "我认为这个回答还可以。", "分析。\n{'综合得分': 6}"

    def first_unreadable(body: dict) -> str:
        return first if body.get("seed") is None else second

    with StubServer(responder=first_unreadable) as stub:
        run = alignbench.score(QUESTIONS, ANSWERS_A, base_url=stub.url, out=tmp_path / "r")["model-a"]
    assert all(j.status.value == "ok" and j.overall == 6 for j in run.judgments)
    assert all(j.attempts == 2 and j.usage.completion_tokens == len(first) + len(second) for j in run.judgments)
    assert run.summary.usage.calls == 64 == stub.calls
    assert run.summary.usage.completion_tokens == 32 * (len(first) + len(second))


# -- run, show, prompt, plans: the API gives what the CLI prints -----------------------------------------


QS_BY_TEXT = {r["question"]: r["question_id"] for r in read_jsonl(QUESTIONS)}


def model_responder(body: dict) -> str:
    """A model under test: a short answer naming the question it answers."""
    return f"这是对第{QS_BY_TEXT[body['messages'][-1]['content']]}题的回答。"


@pytest.fixture
def model():
    from stub_server import StubServer

    with StubServer(responder=model_responder) as server:
        yield server


def _run_args(model_url: str, judge_url: str, out: Path, *extra: str) -> tuple[str, ...]:
    return ("run", "-q", str(QUESTIONS), "--model-name", "tiny-chat", "--base-url", model_url, "--judge",
            "openai:judge-x", "--judge-base-url", judge_url, "--out", str(out), *extra)


def test_api_run_equals_cli_run_json(model, stub, tmp_path: Path) -> None:
    phases, answered = [], []
    result = alignbench.run(QUESTIONS, model_name="tiny-chat", base_url=model.url, judge="openai:judge-x",
                            judge_base_url=stub.url, out=tmp_path / "api", on_phase=lambda n, d: phases.append((n, d)),
                            on_answers=answered.append)
    assert phases == [(n, tmp_path / "api") for n in ("check", "answer", "score", "report")]
    assert model.calls == 32 and stub.calls == 32 and answered == [result.answers]
    assert result.answers.written == 32 and result.dir == tmp_path / "api" and len(result.judgments) == 32
    assert result.report == tmp_path / "api" / "report.md" and result.report.is_file()
    proc = run_cli(*_run_args(model.url, stub.url, tmp_path / "cli", "--format", "json"))
    assert proc.returncode == 0, proc.stderr
    assert model.calls == 64 and stub.calls == 32  # the CLI's answers are new, its judge replies the API's
    cli, ours = json.loads(proc.stdout), result.summary.as_json()
    for key in ("overall", "overall_ci", "reasoning", "language", "categories", "dimensions", "n_ok", "n_failed"):
        assert ours[key] == cli[key], key
    assert ours["run"]["generation"] == cli["run"]["generation"]
    assert cli["run"]["generation"] == {"backend": "openai", "model": "tiny-chat", "max_tokens": 2048,
                                        "temperatures": cli["run"]["generation"]["temperatures"],
                                        "default_temperature": 0.7, "temperature_sources": ["generation.yaml"],
                                        "system_prompt": None, "keep_think": False}
    assert cli["run"]["generation"]["temperatures"]["数学计算"] == 0.1
    again = alignbench.run(QUESTIONS, model_name="tiny-chat", base_url=model.url, judge="openai:judge-x",
                           judge_base_url=stub.url, out=tmp_path / "api", write_report=False)
    assert (again.answers.kept, again.answers.written, again.report) == (32, 0, None)  # resumed, for free
    assert model.calls == 64 and stub.calls == 32 and again.summary.overall == result.summary.overall


def test_api_run_checks_the_judge_before_any_answer(model, tmp_path: Path) -> None:
    from alignbench.engine import ServerUnavailable
    from alignbench.judges import ModelConfigError

    phases = []
    with pytest.raises(ServerUnavailable, match="no judge server answers at http://127.0.0.1:9/v1"):
        alignbench.run(QUESTIONS, model_name="tiny-chat", base_url=model.url, judge="openai:judge-x",
                       judge_base_url="http://127.0.0.1:9/v1", out=tmp_path / "r",
                       on_phase=lambda n, d: phases.append(n))
    assert phases == ["check"] and model.calls == 0 and not (tmp_path / "r").exists()
    with pytest.raises(ModelConfigError, match="unknown judge 'no-such-judge'"):
        alignbench.run(QUESTIONS, model_name="tiny-chat", base_url=model.url, judge="no-such-judge",
                       out=tmp_path / "r")
    assert model.calls == 0
    proc = run_cli(*_run_args(model.url, "http://127.0.0.1:9/v1", tmp_path / "r"))
    assert proc.returncode == 2 and "no judge server answers" in proc.stderr and model.calls == 0


def test_api_run_stops_before_judging_when_answers_are_missing(model, stub, tmp_path: Path) -> None:
    from alignbench.answering import IncompleteAnswers

    model.fail_next(2, status=500)
    with pytest.raises(IncompleteAnswers, match="2 of 32 questions got no answer") as info:
        alignbench.run(QUESTIONS, model_name="tiny-chat", base_url=model.url, judge="openai:judge-x",
                       judge_base_url=stub.url, out=tmp_path / "r", attempts=1, concurrency=1)
    assert len(info.value.answers.failed) == 2 and info.value.path == tmp_path / "r" / "answers.jsonl"
    assert stub.calls == 0 and len(read_jsonl(tmp_path / "r" / "answers.jsonl")) == 30


def test_run_failure_counts_decide_the_cli_exit_code(model, tmp_path: Path) -> None:
    from stub_server import StubServer

    from alignbench.cli.options import allowed_failures

    bad = '{"error": {"message": "bad request"}}'
    with StubServer(responder=alignbench_responder) as judge:
        judge.fail_next(3, status=400, body=bad)
        result = alignbench.run(QUESTIONS, model_name="tiny-chat", base_url=model.url, judge="openai:judge-x",
                                judge_base_url=judge.url, out=tmp_path / "r", judge_concurrency=1)
        assert (result.failed, result.total, result.by_status) == (3, 32, {"judge_error": 3})
        assert [j.question_id for j in result.failures] == sorted(j.question_id for j in result.failures)
        assert result.failed == result.summary.n_failed
        for max_failed in ("5%", "3", "10%", "0"):
            judge.fail_next(3, status=400, body=bad)  # failed replies are not cached: the same 3 are asked again
            proc = run_cli(*_run_args(model.url, judge.url, tmp_path / "r", "--judge-concurrency", "1",
                                      "--max-failed", max_failed, "--format", "json"))
            expected = 3 if result.failed > allowed_failures(max_failed, result.total) else 0
            assert proc.returncode == expected, (max_failed, proc.stderr)
            assert json.loads(proc.stdout)["n_failed"] == result.failed
            if expected:
                first = result.failures[0].question_id
                assert ("3 of 32 judgments failed (judge_error 3)" in proc.stderr
                        and f"--question-id {first}" in proc.stderr), proc.stderr
    assert model.calls == 32  # every CLI run resumed from the answer file


def test_pairwise_run_counts_its_failed_pairs(tmp_path: Path) -> None:
    from stub_server import StubServer

    with StubServer(responder=lambda body: "两个回答的比较分析……\n最终判决：[[平局]]") as judge:
        judge.fail_next(2, status=400, body='{"error": {"message": "bad request"}}')
        pair = alignbench.compare(QUESTIONS, [ANSWERS_A], ANSWERS_B, base_url=judge.url, out=tmp_path / "c",
                                  concurrency=1, bootstrap=20)
    statuses = [j.status.value for j in pair.judgments]
    assert pair.total == len(pair.judgments) == 32
    assert 1 <= pair.failed == sum(s != "ok" for s in statuses) <= 2
    assert pair.by_status == {"judge_error": pair.failed}


def test_api_show_equals_cli_show_json(judged) -> None:
    a, b = judged.a, judged.b  # the session's judged runs: read only

    def cli(*args: str):
        proc = run_cli("show", str(a), "--format", "json", *args)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    def as_printed(payload):
        return json.loads(json.dumps(payload, ensure_ascii=False))

    view = alignbench.show(a)
    assert as_printed(view.as_json()) == cli() and view.comparison is None and view.trust is not None
    view = alignbench.show(a, baseline_run=b, seed=1)
    shown = cli("--baseline-run", str(b), "--seed", "1")
    assert as_printed(view.as_json()) == shown and "comparison" in shown and "trust" in shown
    assert view.comparison.rows[0].kind == "overall"
    one = alignbench.show(a, question_id=3)
    assert as_printed(one.as_json()) == cli("-i", "3") and [j.question_id for j in one.judgments] == [3]
    assert as_printed(alignbench.show(a, audit=False).as_json()) == cli("--no-audit")
    with pytest.raises(RunError, match="no judgment of question 999"):
        alignbench.show(a, question_id=999)
    proc = run_cli("show", str(a), "-i", "999")
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: {a}: no judgment of question 999"


def test_api_prompt_equals_cli_prompt(tmp_path: Path) -> None:
    from alignbench.api import NotFoundError

    for args, kwargs in [((), {}), (("--judge", "gpt-4o"), {"judge": "gpt-4o"}),
                         (("-a", str(ANSWERS_A), "--protocol", "reference-free"),
                          {"answers": ANSWERS_A, "protocol": "reference-free"})]:
        built = alignbench.prompt(QUESTIONS, 3, **kwargs)
        proc = run_cli("prompt", "-q", str(QUESTIONS), "-i", "3", "--format", "json", *args)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout) == built.as_dict()
        text = run_cli("prompt", "-q", str(QUESTIONS), "-i", "3", *args)
        assert text.stdout == "".join(f"----- {m['role']} -----\n{m['content']}\n" for m in built.messages) + "-----\n"
    assert "{answer}" in alignbench.prompt(QUESTIONS, 3).messages[-1]["content"]
    with pytest.raises(NotFoundError, match=f"^question_id 999 is not in {QUESTIONS}$"):
        alignbench.prompt(QUESTIONS, 999)
    proc = run_cli("prompt", "-q", str(QUESTIONS), "-i", "999")
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: question_id 999 is not in {QUESTIONS}"


def test_score_plan_warns_about_samples_at_temperature_zero(tmp_path: Path) -> None:
    from alignbench.api import EnsemblePlan, ScorePlan

    warning = "--samples 2 at judge temperature 0"
    plan = alignbench.plan_score(QUESTIONS, ANSWERS_A, "openai:judge", samples=2)
    assert isinstance(plan, ScorePlan) and plan.samples == 2 and plan.plans == [plan]
    assert any(w.startswith(warning) for w in plan.warnings())
    assert not any("--samples" in w for w in alignbench.plan_score(QUESTIONS, ANSWERS_A, "openai:judge", samples=2,
                                                                   temperature=0.7).warnings())
    assert not alignbench.plan_score(QUESTIONS, ANSWERS_A, "openai:judge").warnings()
    ensemble = alignbench.plan_score(QUESTIONS, ANSWERS_A, "openai:a, openai:b", samples=2)
    assert isinstance(ensemble, EnsemblePlan) and ensemble.judges == ["openai:a", "openai:b"]
    # every sample is a request of its own (priced by --dry-run and --max-cost): 2 samples × 32 answers per judge
    assert [len(r) for _, r in ensemble.requests()] == [64, 64] and ensemble.warnings() == plan.warnings()
    proc = run_cli("score", "-q", str(QUESTIONS), "-a", str(ANSWERS_A), "--judge", "openai:judge",
                   "--judge-base-url", "http://127.0.0.1:9/v1", "--samples", "2", "--dry-run")
    assert proc.returncode == 0 and f"warning: {warning}" in proc.stderr


# -- structure --------------------------------------------------------------------------------------


def _imports(path: Path) -> set[str]:
    """Names ``path`` imports at any depth: each ``from`` module and each ``module.name`` it takes."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def _module(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


# The layers of docs/architecture.md, lowest first: a module imports only from its own layer or a lower one.
LAYERS: dict[str, tuple[str, ...]] = {
    "core": ("safejson", "types", "redact", "reasoning", "logprobs", "upstream", "stats", "stats.fmt",
             "stats.agreement", "stats.paired", "parse", "rubrics", "structured", "data", "prompts",
             "judges.base"),  # judges.base: the client protocol, pure
    "clients": ("judges", "judges.pool", "judges.constrained", "judges.local", "judges.openai_api",
                "judges.zhipuai_api", "cache"),
    "engine": ("engine",),
    "run folders": ("rundir", "reviews"),
    "features": ("aggregate", "cost", "batch", "scoring", "answering", "ensemble", "pairwise", "pairwise.compare",
                 "pairwise.winrate", "pairwise.alpaca", "metaeval", "importing", "exporting", "probes", "canary",
                 "upstream.alignbench_official", "upstream.fastchat_mtbench", "trust", "trust.base", "trust.calibration", "trust.bridge", "trust.audits", "trust.variance", "trust.runs"),
    "reporting": ("reporting", "reporting.charts", "reporting.compare", "reporting.markdown", "reporting.tables",
                  "reporting.terminal"),
    "api": ("settings", "api", ""),  # "": the package itself, which re-exports the API
    "view": ("view", "view.data", "view.queue", "view.render", "view.export", "view.server"),
    "cli": ("cli", "cli.app", "cli.options", *(f"cli.{c}" for c in ("answer", "batches", "compare", "importing",
            "judges", "metaeval", "report", "score", "trust", "view", "exporting", "probe", "canary")), "__main__"),
}


def _edges(files: dict[str, Path]) -> dict[str, set[str]]:
    """Every module each module imports, at any depth of its code (inside functions and ``TYPE_CHECKING``
    too), relative imports resolved; ``from package import name`` is the submodule when there is one."""
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, *([base] if base else [])])
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            else:
                continue
            for target in targets:
                while target not in files and "." in target:
                    target = target.rpartition(".")[0]
                if target in files and target != name:
                    found.add(target)
        graph[name] = found
    return graph


def test_imports_run_down_the_layers_with_no_cycle_and_cli_modules_stand_alone() -> None:
    files = {_module(p): p for p in (ROOT / "alignbench").rglob("*.py")}
    layer = {f"alignbench.{m}".rstrip("."): i for i, mods in enumerate(LAYERS.values()) for m in mods}
    names = list(LAYERS)
    assert set(files) == set(layer), f"modules without a layer (add them to LAYERS): {set(files) ^ set(layer)}"
    graph = _edges(files)
    upward = [f"{m} ({names[layer[m]]}) imports {d} ({names[layer[d]]})"
              for m, deps in graph.items() for d in deps if layer[d] > layer[m]]
    assert not upward, "imports that run upward:\n" + "\n".join(sorted(upward))
    for name, deps in graph.items():
        if name.startswith("alignbench.cli."):
            assert {d for d in deps if d.startswith("alignbench.cli")} <= {"alignbench.cli.app",
                                                                          "alignbench.cli.options"}, name
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in graph[node]:
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack, node, dep]))
            if not state.get(dep):
                visit(dep, [*stack, node])
        state[node] = 2

    for module in graph:
        if not state.get(module):
            visit(module, [])


def test_the_layer_guard_sees_function_level_imports() -> None:
    """The guard must catch what the old one missed: an import inside a function, a relative one."""
    files = {"alignbench.trust": ROOT / "alignbench" / "trust" / "__init__.py",
             "alignbench.scoring": ROOT / "alignbench" / "scoring.py", "alignbench.api": ROOT / "alignbench" / "api.py"}
    graph = _edges(files)
    assert "alignbench.trust" in graph["alignbench.scoring"]  # scoring imports judge_variance inside a function
    assert "alignbench.trust" in graph["alignbench.api"] and "alignbench.scoring" in graph["alignbench.api"]


# Commands that only parse options, call alignbench.api and render (alignbench.reporting): what they compute
# an API caller gets from the same function. The other command modules still reach further into the library.
THIN_COMMANDS = ("compare", "exporting", "judges", "metaeval", "report", "trust")


def test_thin_commands_reach_the_library_only_through_the_api() -> None:
    for name in THIN_COMMANDS:
        path = ROOT / "alignbench" / "cli" / f"{name}.py"
        library = {i for i in _imports(path) if i.startswith("alignbench.") and not i.startswith("alignbench.cli")}
        beyond = {i for i in library if not i.startswith(("alignbench.api", "alignbench.reporting"))
                  and i not in ("alignbench.data", "alignbench.data.InputError")}  # to catch the API's errors
        assert not beyond, f"alignbench/cli/{name}.py imports {sorted(beyond)}: reach them through alignbench.api"
        text = path.read_text(encoding="utf-8")
        for sign in ("open(", "read_text(", "read_bytes(", "json.load", "import pandas", "pd."):
            assert sign not in text, f"alignbench/cli/{name}.py reads data itself ({sign})"


# -- run folders ----------------------------------------------------------------------------------------


def test_folder_names_never_leave_the_parent_or_collide(tmp_path: Path) -> None:
    names = ["..", ".", "/", "gpt 4", "gpt/4", "GPT4", "gpt4", "模型" * 150, "a" * 300, "$\\frac{1}$", "x/../../y"]
    folders = [folder_name(n) for n in names]
    assert len(set(folders)) == len(names)
    assert len({f.lower() for f in folders}) == len(names)  # a case-insensitive disk too
    for f in folders:
        assert f not in (".", "..") and "/" not in f and len(f.encode()) < 100
        assert (tmp_path / f).resolve().parent == tmp_path.resolve()
    assert folder_name("qwen2.5-7b") == "qwen2.5-7b" and folder_name("gpt 4") == folder_name("gpt 4")


def test_odd_model_names_end_to_end(stub, tmp_path: Path) -> None:
    rows = read_jsonl(ANSWERS_A)
    paths = []
    for i, name in enumerate(["..", "gpt 4", "gpt/4"]):
        path = tmp_path / f"a{i}.jsonl"
        path.write_text("".join(json.dumps({**r, "model_id": name}, ensure_ascii=False) + "\n" for r in rows),
                        encoding="utf-8")
        paths.append(path)
    out = tmp_path / "out"
    runs = alignbench.score(QUESTIONS, paths, base_url=stub.url, out=out)
    assert len({r.dir for r in runs.values()}) == 3
    assert all(r.dir.parent == out for r in runs.values())
    assert not (tmp_path / "summary.json").exists()
    assert {load_run(r.dir).summary.run.model for r in runs.values()} == {"..", "gpt 4", "gpt/4"}
    report = alignbench.report([out], tmp_path / "report.md", charts=False)  # a multi-model folder: every model
    assert "gpt/4" in report.path.read_text(encoding="utf-8")


def test_another_model_needs_force(stub, tmp_path: Path) -> None:
    alignbench.score(QUESTIONS, ANSWERS_A, base_url=stub.url, out=tmp_path / "r")
    with pytest.raises(RunError, match="holds the run of model 'model-a'.*--force"):
        alignbench.score(QUESTIONS, ANSWERS_B, base_url=stub.url, out=tmp_path / "r")
    assert alignbench.score(QUESTIONS, ANSWERS_B, base_url=stub.url, out=tmp_path / "r", force=True)
    assert load_run(tmp_path / "r").model == "model-b"
    (tmp_path / "file").write_text("x")
    proc = run_cli("score", "-q", str(QUESTIONS), "-a", str(ANSWERS_A), "--judge-base-url", stub.url,
                   "--out", str(tmp_path / "file"))
    assert proc.returncode == 2 and "is a file, not a folder" in proc.stderr and stub.calls == 64


def _hold_lock(path: str, ready: multiprocessing.Event, release: multiprocessing.Event) -> None:
    with RunFolder(path, model="m"):
        ready.set()
        release.wait(30)


def test_a_second_writer_is_refused_naming_the_first(stub, tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(tmp_path / "r"), ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        proc = run_cli("score", "-q", str(QUESTIONS), "-a", str(ANSWERS_A), "--judge-base-url", stub.url,
                       "--out", str(tmp_path / "r"))
        assert proc.returncode == 2 and f"pid {holder.pid}" in proc.stderr, proc.stderr
        assert stub.calls == 0  # refused before any judge call
    finally:
        release.set()
        holder.join(30)
    with RunFolder(tmp_path / "r", model="m"):  # released: the next writer gets it
        pass


def test_a_kill_during_the_final_write_never_leaves_a_stale_summary(stub, tmp_path: Path) -> None:
    run = alignbench.score(QUESTIONS, ANSWERS_A, base_url=stub.url, out=tmp_path / "r")["model-a"]
    folder = RunFolder(tmp_path / "r", model="model-a")
    with folder:
        folder.unfinish()
        folder.write_jsonl("judgments.jsonl", run.judgments[:5])  # ... and the rewrite stops here
    assert len(load_run(tmp_path / "r").judgments) == 32  # staged aside: the finished run is untouched
    (tmp_path / "r" / "summary.json").unlink()  # a folder left by a kill in the instant of the swap
    with pytest.raises(RunError, match="unfinished run"):
        load_run(tmp_path / "r")
    (tmp_path / "r" / "summary.json").write_bytes(b"")  # a 0-byte summary (older versions could leave one)
    with pytest.raises(RunError, match="not valid JSON"):
        load_run(tmp_path / "r")
    alignbench.score(QUESTIONS, ANSWERS_A, base_url=stub.url, out=tmp_path / "r")  # the same command repairs it
    assert len(load_run(tmp_path / "r").judgments) == 32
    summary = json.loads((tmp_path / "r" / "summary.json").read_text(encoding="utf-8"))
    lines = (tmp_path / "r" / "judgments.jsonl").read_text(encoding="utf-8").splitlines()
    (tmp_path / "r" / "judgments.jsonl").write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    with pytest.raises(RunError, match="does not belong"):
        load_run(tmp_path / "r")
    assert summary["run"]["judgments_sha256"]


@pytest.mark.slow
def test_sigkill_between_judgments_and_summary(stub, tmp_path: Path) -> None:
    """A real process killed after writing judgments and before the summary: never a mixed folder."""
    script = (
        "import os, signal, sys\n"
        "import alignbench.rundir as R\n"
        "orig = R.RunFolder.write_json\n"
        "def die(self, name, obj):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "R.RunFolder.write_json = die\n"
        "import alignbench\n"
        f"alignbench.score({str(QUESTIONS)!r}, {str(ANSWERS_B)!r}, base_url={stub.url!r}, "
        f"out={str(tmp_path / 'r')!r}, force=True)\n"
    )
    alignbench.score(QUESTIONS, ANSWERS_A, base_url=stub.url, out=tmp_path / "r")
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", script], env={**os.environ}, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    kept = load_run(tmp_path / "r")  # model-a's finished run, untouched: never its summary beside model-b's judgments
    assert {j.model for j in kept.judgments} == {"model-a"} and kept.summary.model == "model-a"
    with RunFolder(tmp_path / "r", model="model-a"):  # the next writer clears what the killed one staged
        assert not list((tmp_path / "r").glob(".*.tmp"))


def test_docs_api_examples_run(stub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every Python block of docs/api.md runs as written, against the loopback judge."""
    import re
    import shutil

    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) >= 4
    shutil.copytree(ROOT / "data", tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    from stub_server import StubServer, fixed_responder

    with StubServer(responder=fixed_responder) as model:  # the model under test of `alignbench.run`
        for block in blocks:
            code = block.replace("http://127.0.0.1:8000/v1", stub.url).replace("http://127.0.0.1:8001/v1", model.url)
            exec(compile(code, "docs/api.md", "exec"), scope)
    assert (tmp_path / "reports" / "release.md").is_file() and scope["run"].summary.n == 32
    assert model.calls == 32 and scope["mine"].report.is_file()
