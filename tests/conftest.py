"""Shared fixtures: a loopback OpenAI-compatible judge server, an isolated reply cache, paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from stub_server import StubServer, alignbench_responder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
ZH = ROOT / "data" / "zh"
QUESTIONS = ZH / "questions.jsonl"
ANSWERS_A = ZH / "answers" / "model-a.jsonl"
ANSWERS_B = ZH / "answers" / "model-b.jsonl"
OFFICIAL = SHARED / "alignbench" / "data_v1.1_release.jsonl"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own reply cache and no real API keys."""
    path = tmp_path / "cache.sqlite"
    monkeypatch.setenv("ALIGNBENCH_CACHE", str(path))
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ZHIPUAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    return path


@pytest.fixture
def stub():
    """An OpenAI-compatible judge on 127.0.0.1 answering in AlignBench's format."""
    with StubServer(responder=alignbench_responder) as server:
        yield server


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``alignbench`` as a user would: a real subprocess, real stdout/stderr and exit code."""
    full_env = {**os.environ, **(env or {}), "COLUMNS": "120", "PYTHONIOENCODING": "utf-8"}
    return subprocess.run([sys.executable, "-m", "alignbench", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, cwd=ROOT)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def assert_golden(parsed, case: dict, key: str) -> None:  # noqa: ANN001 - a ParsedScores
    """What a golden parse case (tests/cases/*.yaml) names: its status, words of its detail, and when it parses,
    its scores and where the verdict's number starts (``spans``, for the log-probability reader)."""
    from alignbench.types import Status

    assert parsed.status is Status(case["status"]), parsed.detail
    if "detail_contains" in case:
        assert case["detail_contains"] in parsed.detail
    if parsed.ok:
        assert parsed.overall == pytest.approx(case["overall"])
        assert parsed.scores == pytest.approx(case.get("scores", {}))
        assert key in parsed.spans
