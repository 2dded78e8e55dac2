"""The official AlignBench protocol, read from a THUDM/AlignBench checkout (issue 22, part 1).

The reference is upstream's own code: ``../shared/upstream/AlignBench/judge.py`` is imported and its
``prompt_construct`` run (with its own ``Config`` pointed at the checkout's config files) for every question of
the v1.1 set and several answers; what alignbench plans to send must equal it byte for byte. A modified
checkout must work and say so; a broken one must fail naming the file before a real loopback judge server
sees a single request.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import uuid
from pathlib import Path
from types import ModuleType

import pytest
from conftest import SHARED, read_jsonl, run_cli, write_jsonl
from stub_server import StubServer, alignbench_responder

from alignbench import api
from alignbench.types import Question
from alignbench.upstream import UpstreamError, load_protocol, protocol_label, sha256_file
from alignbench.upstream.alignbench_official import KNOWN_SHA256

UPSTREAM = SHARED / "upstream" / "AlignBench"
pytestmark = pytest.mark.skipif(not (UPSTREAM / "judge.py").is_file(), reason="needs ../shared/upstream/AlignBench")
LABEL = "official AlignBench protocol (judge.py @ 0f5ef4d0)"
FIRST_LINE = "你是一个擅长评价文本质量的助手。"  # a phrase of the upstream template, edited in the "modified" checkout


def import_judge(path: Path) -> ModuleType:
    """Upstream's judge.py as a module of its own (it imports openai, requests, tqdm, tenacity at top level)."""
    spec = importlib.util.spec_from_file_location(f"upstream_judge_{uuid.uuid4().hex}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upstream_config(module: ModuleType, checkout: Path, tmp: Path) -> object:
    """judge.py's own ``Config``, reading the config files its checkout's multi-dimension.json names (made
    absolute: judge.py resolves them from the folder it is run in, the checkout's root)."""
    main = json.loads((checkout / "config" / "multi-dimension.json").read_text(encoding="utf-8"))
    paths = {k: str(checkout / v) for k, v in main["Paths"].items()}
    paths.update(model_answer_dir=str(tmp / "model_answer"), model_judgement_dir=str(tmp / "judgment"))
    config = tmp / "multi-dimension.json"
    config.write_text(json.dumps({"OpenAI": {"api_key": "", "api_url": ""}, "Paths": paths}), encoding="utf-8")
    return module.Config(str(config))


def upstream_prompt(module: ModuleType, config: object, doc: dict, answer: str) -> str:
    """What judge.py's run_sample builds for one answer line (its Sample from the doc's fields)."""
    sample = module.Sample(doc["question"], doc["reference"], answer, doc["category"], doc["subcategory"])
    return module.prompt_construct(sample, config)[1]


def answer_files(docs: list[dict], folder: Path) -> dict[str, Path]:
    """Three models' answers to every question: the reference itself; text full of braces and format fields
    (``{answer}``, ``{0}``, ``{{x}}``, a lone ``}``, a score dict) with Chinese and control characters; a think
    block before the answer (sent as it is: judge.py strips nothing) and, for question 1, an answer longer than
    our usual clipping limit (judge.py clips nothing)."""
    folder.mkdir(parents=True, exist_ok=True)
    sets = {
        "m-ref": lambda d: d["reference"],
        "m-braces": lambda d: (f"{{answer}} {{0}} {{{{x}}}} }} {{ 回答{d['question_id']}：{d['question'][:12]}"
                               "{'事实正确性': 10, '综合得分': 10}\n第二行\t「引号」%s $x \\n"),
        "m-think": lambda d: ("<think>先想一想 {category}</think>\n最终答案：" + d["reference"][::-1]
                              + ("长" * 13000 if d["question_id"] == 1 else "")),
    }
    return {m: write_jsonl(folder / f"{m}.jsonl", [{"question_id": d["question_id"], "model_id": m, "answer": f(d)}
                                                   for d in docs]) for m, f in sets.items()}


@pytest.fixture(scope="module")
def checkout_docs() -> list[dict]:
    return read_jsonl(UPSTREAM / "data" / "data_v1.1_release.jsonl")


def test_every_prompt_equals_judge_py_byte_for_byte(checkout_docs: list[dict], tmp_path: Path) -> None:
    assert len(checkout_docs) == 683
    module = import_judge(UPSTREAM / "judge.py")
    config = upstream_config(module, UPSTREAM, tmp_path)
    files = answer_files(checkout_docs, tmp_path / "answers")
    plan = api.plan_score(None, list(files.values()), upstream=UPSTREAM)  # questions: the checkout's v1.1 file
    assert plan.questions_record["path"] == str(UPSTREAM / "data" / "data_v1.1_release.jsonl")
    assert len(plan.items) == 3 * 683 and plan.config.model == "gpt-4" and plan.config.name == "gpt-4"
    docs = {d["question_id"]: d for d in checkout_docs}
    answers = {m: {r["question_id"]: r["answer"] for r in read_jsonl(p)} for m, p in files.items()}
    for item in plan.items:
        doc = docs[item.question.id]
        expected = upstream_prompt(module, config, doc, answers[item.answer.model][doc["question_id"]])
        assert item.request.messages == ({"role": "user", "content": expected},), (doc["question_id"], item.answer.model)
        assert item.request.decoding.temperature == 0 and item.request.response_schema is None
        assert item.truncated is False
    assert len({it.request.prompt_hash for it in plan.items}) == 3 * 683
    # the prompt command shows exactly what is sent, for the file's answer
    shown = api.prompt(None, 1, answers=files["m-think"], upstream=UPSTREAM)
    assert shown.messages == [{"role": "user", "content": upstream_prompt(module, config, docs[1],
                                                                           answers["m-think"][1])}]
    assert "<think>" in shown.messages[0]["content"] and "长" * 13000 in shown.messages[0]["content"]
    # the rubric stamped on every request (and in every cache key) names the protocol and the files' hashes
    assert re.fullmatch(r"alignbench@official-0f5ef4d0\+[0-9a-f]{8}", plan.rubric.id)
    assert plan.items[0].request.rubric == plan.rubric.id


def test_known_hashes_are_the_checkout_files() -> None:
    assert {
        "judge.py": sha256_file(UPSTREAM / "judge.py"),
        "dimension_set": sha256_file(UPSTREAM / "config" / "dimension_set.json"),
        "dimension_definition": sha256_file(UPSTREAM / "config" / "dimension_definition.json"),
        "subcategory_mapping": sha256_file(UPSTREAM / "config" / "subcategory_question_mapping.json")} == KNOWN_SHA256
    protocol = load_protocol(UPSTREAM)
    record = protocol.record()
    assert record["modified"] is False and record["differs"] == []
    assert record["files"]["judge.py"] == KNOWN_SHA256["judge.py"]
    assert protocol_label({"rubric": protocol.rubric().id, "upstream": record}) == LABEL
    assert "not comparable with the published AlignBench leaderboard" in protocol_label({"rubric": "alignbench@1.2.0"})
    assert "MT-Bench leaderboard" in protocol_label({"rubric": "mtbench-single@1.0.0"})
    edited = {**record, "sha256": "ab" * 32, "modified": True, "differs": ["judge.py"]}
    assert protocol_label({"upstream": edited}) == ("official AlignBench protocol (judge.py @ abababab), modified: "
                                                    "judge.py differs from THUDM/AlignBench@5b79d4a")


def copy_checkout(dest: Path, n_questions: int | None = None) -> Path:
    """A user's clone as a copy of the shared one (optionally with fewer questions in its data file)."""
    shutil.copytree(UPSTREAM, dest, ignore=shutil.ignore_patterns("__pycache__"))
    if n_questions is not None:
        data = dest / "data" / "data_v1.1_release.jsonl"
        docs = read_jsonl(data)
        picked = [d for cat in dict.fromkeys(d["category"] for d in docs)
                  for d in [x for x in docs if x["category"] == cat][:n_questions]]
        write_jsonl(data, picked)
    return dest


def test_modified_checkout_works_and_says_so(checkout_docs: list[dict], tmp_path: Path) -> None:
    clone = copy_checkout(tmp_path / "AlignBench")
    judge = clone / "judge.py"
    judge.write_text(judge.read_text(encoding="utf-8").replace(FIRST_LINE, "你是一个严格的中文评审助手。"),
                     encoding="utf-8")
    # the definitions moved to a file of the user's own, named in multi-dimension.json's Paths
    main = json.loads((clone / "config" / "multi-dimension.json").read_text(encoding="utf-8"))
    main["Paths"]["dimension_def_filepath"] = "config/my_definitions.json"
    defs = json.loads((clone / "config" / "dimension_definition.json").read_text(encoding="utf-8"))
    defs["清晰度"] = "表达是否清楚。"
    (clone / "config" / "my_definitions.json").write_text(json.dumps(defs, ensure_ascii=False), encoding="utf-8")
    (clone / "config" / "multi-dimension.json").write_text(json.dumps(main), encoding="utf-8")

    module = import_judge(judge)
    config = upstream_config(module, clone, tmp_path)
    files = answer_files(checkout_docs[:40], tmp_path / "answers")
    clone_questions = clone / "data" / "data_v1.1_release.jsonl"
    write_jsonl(clone_questions, checkout_docs[:40])  # the clone's own question file, answered in full
    plan = api.plan_score(None, [files["m-braces"]], upstream=clone)
    docs = {d["question_id"]: d for d in checkout_docs}
    answers = {r["question_id"]: r["answer"] for r in read_jsonl(files["m-braces"])}
    for item in plan.items:
        expected = upstream_prompt(module, config, docs[item.question.id], answers[item.question.id])
        assert item.request.messages == ({"role": "user", "content": expected},)
        assert FIRST_LINE not in expected and "你是一个严格的中文评审助手。" in expected
    assert any("3. 清晰度: 表达是否清楚。\n" in it.request.messages[0]["content"] for it in plan.items)
    record = load_protocol(clone).record()
    assert record["modified"] is True and record["differs"] == ["judge.py", "config/my_definitions.json"]
    assert record["files"]["judge.py"] == sha256_file(judge)
    label = protocol_label({"rubric": plan.rubric.id, "upstream": record})
    assert label.startswith(f"official AlignBench protocol (judge.py @ {sha256_file(judge)[:8]}), modified: ")
    assert "judge.py, config/my_definitions.json differ from THUDM/AlignBench@5b79d4a" in label
    assert plan.warnings() == [f"{label}: the scores are labelled modified and do not stand next to the published "
                               "leaderboard"]
    assert not [w for w in api.plan_score(None, [files["m-braces"]], upstream=UPSTREAM).warnings() if "modified" in w]
    # another version of the files is another rubric id, so no cached reply of the original is reused
    assert plan.rubric.id != load_protocol(UPSTREAM).rubric().id


@pytest.mark.parametrize(("edit", "names"), [
    (lambda s: s.replace("def prompt_construct(sample: Sample, config: Config):",
                         "def prompt_construct(sample: Sample, config: Config)"), "does not parse as Python"),
    (lambda s: s.replace("def prompt_construct(", "def build_prompt("), "has no top-level function prompt_construct"),
    (lambda s: s.replace("{config.dimension2def(dim)}", "{config.dimension2def(dim).upper()}"),
     "config.dimension2def(dim).upper()"),
    (lambda s: s.replace("answer=sample.answer)", "answer=sample.answer.strip())"), ".format(answer=...)"),
    (lambda s: s.replace("[助手的答案结束]\\n\"", "[助手的答案结束]{missing}\\n\""), "does not format"),
    (lambda s: s.replace("    return dimensions, prompt", "    return dimensions, prompt + '!'"),
     "returns something other than (dimensions, prompt)"),
    (lambda s: s.replace("    return dimensions, prompt", "    prompt = prompt.strip()\n    return dimensions, prompt"),
     "prompt is assigned after the prompt is formatted"),
])
def test_broken_checkout_fails_naming_the_file_before_any_call(tmp_path: Path, edit, names: str) -> None:  # noqa: ANN001
    clone = copy_checkout(tmp_path / "AlignBench", n_questions=2)
    judge = clone / "judge.py"
    original = judge.read_text(encoding="utf-8")
    judge.write_text(edit(original), encoding="utf-8")
    assert judge.read_text(encoding="utf-8") != original  # the edit applied
    with pytest.raises(UpstreamError, match=re.escape(str(judge))) as caught:
        load_protocol(clone)
    assert names in str(caught.value)
    docs = read_jsonl(clone / "data" / "data_v1.1_release.jsonl")
    answers = write_jsonl(tmp_path / "a.jsonl", [{"question_id": d["question_id"], "answer": "答"} for d in docs])
    with StubServer(responder=alignbench_responder) as stub:
        proc = run_cli("score", "--upstream", str(clone), "-a", str(answers), "--model", "m",
                       "--judge-base-url", stub.url, "--out", str(tmp_path / "run"))
        assert stub.calls == 0
    assert proc.returncode == 2 and str(judge) in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run" / "summary.json").exists()


def test_broken_config_fails_naming_the_file(tmp_path: Path) -> None:
    clone = copy_checkout(tmp_path / "AlignBench", n_questions=1)
    bad = clone / "config" / "dimension_set.json"
    good = bad.read_text(encoding="utf-8")
    bad.write_text("{'事实与解释型回答': [}", encoding="utf-8")
    with pytest.raises(UpstreamError, match=re.escape(f"{bad}: not readable as JSON")):
        load_protocol(clone)
    bad.write_text('{"x": ' + "9" * 5000 + "}", encoding="utf-8")  # Python's int parser refuses it: bounded read
    with pytest.raises(UpstreamError, match=re.escape(f"{bad}: not readable as JSON")):
        load_protocol(clone)
    bad.write_text(good, encoding="utf-8")
    mapping = clone / "config" / "subcategory_question_mapping.json"
    mapping.write_text("[]", encoding="utf-8")
    with pytest.raises(UpstreamError, match=re.escape(f"{mapping}: expected an object of subcategory")):
        load_protocol(clone)
    mapping.unlink()
    with pytest.raises(UpstreamError, match="subcategory_question_mapping.json: not found"):
        load_protocol(clone)


def test_protocol_refuses_what_judge_py_does_not_do(tmp_path: Path) -> None:
    answers = write_jsonl(tmp_path / "a.jsonl", [{"question_id": 1, "answer": "答"}])
    with pytest.raises(UpstreamError, match="temperature 0"):
        api.plan_score(None, answers, model="m", upstream=UPSTREAM, temperature=0.7)
    with pytest.raises(UpstreamError, match="--structured"):
        api.plan_score(None, answers, model="m", upstream=UPSTREAM, structured=True)
    with pytest.raises(ValueError, match="--rubric and --protocol do not apply"):
        api.plan_score(None, answers, model="m", upstream=UPSTREAM, rubric="alignbench")
    with pytest.raises(UpstreamError, match="not a checkout"):
        api.plan_score(None, answers, model="m", upstream=tmp_path)
    # judge.py sends chat messages: a completion preset is asked in chat form, an explicit completion refused
    plan = api.plan_score(None, answers, "critiquellm", model="m", upstream=UPSTREAM)
    assert plan.config.prompt_format == "chat" and not plan.items[0].request.completion
    with pytest.raises(UpstreamError, match="--prompt-format"):
        api.plan_score(None, answers, model="m", upstream=UPSTREAM, prompt_format="completion")
    # judge.py has no pairwise mode: compare --upstream with this clone stops before any call
    with pytest.raises(UpstreamError, match="no pairwise mode"):
        api.plan_compare(None, [answers], write_jsonl(tmp_path / "b.jsonl", [{"question_id": 1, "answer": "答"}]),
                         upstream=UPSTREAM)
    # a dialogue, or a subcategory the checkout's map lacks, is refused at plan time (judge.py would crash)
    protocol = load_protocol(UPSTREAM)
    with pytest.raises(UpstreamError, match="subcategory '新子类' has no dimensions"):
        protocol.prompt(Question(id=9, category="基本任务", subcategory="新子类", question="问", reference="答"), "x")


def test_score_end_to_end_official_labels_everywhere(tmp_path: Path) -> None:
    clone = copy_checkout(tmp_path / "AlignBench", n_questions=2)
    docs = read_jsonl(clone / "data" / "data_v1.1_release.jsonl")
    answers = write_jsonl(tmp_path / "answers.jsonl", [
        {"question_id": d["question_id"], "model_id": "my-model", "answer": f"我的回答 {{answer}} {d['reference'][:20]}"}
        for d in docs])
    module = import_judge(clone / "judge.py")
    config = upstream_config(module, clone, tmp_path)
    out = tmp_path / "run"
    with StubServer(responder=alignbench_responder) as stub:
        # the two commands of the README, against a loopback judge instead of OpenAI
        proc = run_cli("score", "--upstream", str(clone), "-a", str(answers), "--judge-base-url", stub.url,
                       "--out", str(out))
        assert proc.returncode == 0, proc.stderr
        bodies = list(stub.requests)
    assert len(bodies) == len(docs) == 16
    by_answer = {upstream_prompt(module, config, d, f"我的回答 {{answer}} {d['reference'][:20]}") for d in docs}
    assert {b["messages"][0]["content"] for b in bodies} == by_answer
    for body in bodies:
        assert len(body["messages"]) == 1 and body["messages"][0]["role"] == "user"
        assert body["temperature"] == 0 and body["model"] == "gpt-4"
        assert "response_format" not in body and "guided_json" not in body
    # the terminal footer, summary.json, the report and the viewer carry the label
    assert f"protocol: {LABEL}" in " ".join(proc.stdout.split())
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    run = summary["run"]
    assert run["protocol_label"] == LABEL
    assert run["upstream"]["files"] == {"judge.py": KNOWN_SHA256["judge.py"],
                                        "config/dimension_set.json": KNOWN_SHA256["dimension_set"],
                                        "config/dimension_definition.json": KNOWN_SHA256["dimension_definition"],
                                        "config/subcategory_question_mapping.json": KNOWN_SHA256["subcategory_mapping"]}
    assert run["upstream"]["modified"] is False and run["rubric"].startswith("alignbench@official-0f5ef4d0+")
    assert summary["n_ok"] == 16 and summary["n_failed"] == 0
    assert set(summary["groups"]) == {"reasoning", "language"} and summary["overall"] is not None
    judgments = read_jsonl(out / "judgments.jsonl")
    assert all(j["scores"] and j["rubric"] == run["rubric"] for j in judgments)
    shown = run_cli("show", str(out))
    assert shown.returncode == 0 and " ".join(shown.stdout.split()).count(LABEL) == 1  # printed once
    report = run_cli("report", str(out), "--out", str(tmp_path / "report.md"), "--no-charts")
    assert report.returncode == 0, report.stderr
    assert LABEL in (tmp_path / "report.md").read_text(encoding="utf-8")
    site = tmp_path / "site"
    view = run_cli("view", str(out), "--export", str(site))
    assert view.returncode == 0, view.stderr
    assert LABEL in (site / "index.html").read_text(encoding="utf-8")
    assert LABEL in (site / "run-0.html").read_text(encoding="utf-8")
    # the prompt command prints exactly what was sent
    first = docs[0]
    prompt = run_cli("prompt", "--upstream", str(clone), "-i", str(first["question_id"]), "-a", str(answers),
                     "--format", "json")
    assert prompt.returncode == 0, prompt.stderr
    sent = next(b["messages"] for b in bodies if f"[助手的答案开始]\n我的回答 {{answer}} {first['reference'][:20]}\n"
                in b["messages"][0]["content"] and first["question"] in b["messages"][0]["content"])
    assert json.loads(prompt.stdout)["messages"] == sent


def test_own_rubric_run_says_it_is_not_comparable(tmp_path: Path) -> None:
    from rich.console import Console

    from alignbench.reporting.terminal import print_summary
    from alignbench.rubrics import load_rubric

    clone = copy_checkout(tmp_path / "AlignBench", n_questions=1)
    questions = clone / "data" / "data_v1.1_release.jsonl"
    answers = write_jsonl(tmp_path / "answers.jsonl", [{"question_id": d["question_id"], "answer": "回答"}
                                                       for d in read_jsonl(questions)])
    with StubServer(responder=alignbench_responder) as stub:
        runs = api.score(questions, answers, "openai:stub", model="m", base_url=stub.url, out=tmp_path / "run")
        assert len(stub.requests[0]["messages"]) == 2  # our rubric: a system and a user message
    run = runs["m"]
    summary = json.loads((run.dir / "summary.json").read_text(encoding="utf-8"))
    label = summary["run"]["protocol_label"]
    assert "upstream" not in summary["run"]
    assert label.startswith("rubric alignbench@") and "not comparable with the published " \
        "AlignBench leaderboard" in label
    console = Console(record=True, width=300)
    print_summary(run.summary, load_rubric("alignbench"), console)
    assert f"protocol: {label}" in console.export_text()
    report = api.report([run.dir], tmp_path / "report.md", charts=False, audit=False, lang="en")
    assert label in Path(report.path).read_text(encoding="utf-8")
