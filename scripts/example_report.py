"""Regenerate the committed example report in ``reports/examples/``.

    /work/venv/bin/python scripts/example_report.py

Starts the stub judge (tests/stub_server.py: a real OpenAI-compatible HTTP server on 127.0.0.1 whose
scores are a hash of the prompt, so the numbers are deterministic but carry no meaning), scores our
own data/zh answers of model-a and model-b with ``alignbench score`` (no reply cache, no API key sent),
then writes ``alignbench report`` in Chinese and in English with model-b compared against model-a.
Everything runs through the real CLI, as a user would run it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from stub_server import StubServer, alignbench_responder  # noqa: E402

OUT = Path("reports/examples")
RUNS = OUT / "runs"
SECRETS = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ZHIPUAI_API_KEY", "ZHIPUAI_BASE_URL")


def alignbench(*args: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in SECRETS}  # never send a real key to the stub
    env.update({"PYTHONIOENCODING": "utf-8", "COLUMNS": "120"})
    proc = subprocess.run([sys.executable, "-m", "alignbench", *args], cwd=ROOT, env=env, text=True,
                          capture_output=True)
    sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        sys.stdout.write(proc.stdout)
        raise SystemExit(f"alignbench {args[0]} failed with exit code {proc.returncode}")


def main() -> int:
    shutil.rmtree(ROOT / RUNS, ignore_errors=True)
    for old in (ROOT / OUT).glob("report*"):
        old.unlink()
    with StubServer(responder=alignbench_responder) as stub:
        alignbench("score", "-q", "data/zh/questions.jsonl", "-a", "data/zh/answers/model-a.jsonl",
                   "-a", "data/zh/answers/model-b.jsonl", "--judge", "openai:stub-judge",
                   "--judge-base-url", stub.url, "--no-cache", "--out", str(RUNS), "--format", "json")
        calls = stub.calls
    runs = [str(RUNS / "model-a"), str(RUNS / "model-b")]
    alignbench("report", *runs, "--baseline-run", runs[0], "--out", str(OUT / "report.md"), "--lang", "zh")
    alignbench("report", *runs, "--baseline-run", runs[0], "--out", str(OUT / "report.en.md"), "--lang", "en")
    written = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / OUT).rglob("*") if p.is_file()
                     and p.name != "README.md")
    print(f"{calls} stub judge calls; wrote:")
    for name in written:
        print(f"  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
