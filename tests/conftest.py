"""Shared fixtures: a loopback OpenAI-compatible judge server, an isolated reply cache, paths, the CLI run
in-process (``run_cli``) or as a process (``run_cli_process``), and one judged run shared by the tests that
only read it (``judged``, ``judged_copy``)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from stub_server import StubServer, alignbench_responder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The real-model test (about a minute: transformers reads the GGUF file three times) goes first, then the
    other slow ones: on two workers it then runs beside the quick tests instead of alone at the end."""
    weight = {"test_real_smollm2_judges_end_to_end": 2}
    items.sort(key=lambda item: -(weight.get(item.originalname, 0) or item.get_closest_marker("slow") is not None))
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


def run_cli_process(*args: str, env: dict[str, str] | None = None, timeout: float = 120,
                    width: int = 120) -> subprocess.CompletedProcess:
    """Run ``alignbench`` as a real subprocess: for the few tests that need one (signals and kills, the
    environment at interpreter start, import cost). Everything else uses ``run_cli``, which is the same
    command in-process without the 0.65-1 s of interpreter start-up."""
    merged = {**os.environ, **(env or {}), "COLUMNS": str(width), "PYTHONIOENCODING": "utf-8"}
    full_env = {k: v for k, v in merged.items() if v is not None}  # None unsets, as with run_cli
    return subprocess.run([sys.executable, "-m", "alignbench", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, cwd=ROOT)


_CLI_WIDTH = 120
_IN_PROCESS = threading.Lock()  # one in-process command at a time: it swaps sys.stdout, os.environ, the cwd
_FRESH_INTERPRETER_WARNINGS = (  # CPython's default filters, in order (see ``warnings.filters`` at start-up)
    ("default", DeprecationWarning, "__main__"),
    ("ignore", DeprecationWarning, ""),
    ("ignore", PendingDeprecationWarning, ""),
    ("ignore", ImportWarning, ""),
    ("ignore", ResourceWarning, ""),
)


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120,
            width: int = _CLI_WIDTH) -> subprocess.CompletedProcess:
    """Run ``alignbench`` as a user would, in-process: the same typer app ``python -m alignbench`` runs,
    with what a fresh process would give it. Returns a ``CompletedProcess`` (``args``, ``returncode``,
    ``stdout``, ``stderr``), so callers cannot tell the difference.

    What a process would isolate is isolated here and restored afterwards: ``env`` overrides ``os.environ``
    (a ``None`` value unsets), the working directory is ROOT, the consoles are 120 columns wide and not a
    terminal, stdout and stderr are captured apart, Python warnings print to stderr as a fresh interpreter
    would print them, and the keys the command read for its clients (``redact``'s memory) are forgotten.
    An exception the command does not handle prints its traceback to stderr and exits 1, as Python does.
    ``timeout`` interrupts the command (Ctrl-C, as the command handles it) and raises ``TimeoutExpired``.
    Commands started while another runs in-process (``run_cli`` from several threads at once) run as real
    processes, side by side as a user's would. Use ``run_cli_process`` where only a real process will do.
    ``width``: the consoles' width and $COLUMNS (80: a narrow terminal, or what a pipe gets by default)."""
    if not _IN_PROCESS.acquire(blocking=False):
        return run_cli_process(*args, env=env, timeout=timeout, width=width)
    try:
        return _run_in_process(args, env, timeout, width)
    finally:
        _IN_PROCESS.release()


def _run_in_process(args: tuple[str, ...], env: dict[str, str] | None, timeout: float,
                    width: int = _CLI_WIDTH) -> subprocess.CompletedProcess:
    import _thread
    import traceback
    import warnings

    from typer.testing import CliRunner

    from alignbench import redact
    from alignbench.cli import app  # the Typer app; its consoles live in the module alignbench.cli.app

    consoles = [getattr(sys.modules["alignbench.cli.app"], name) for name in ("console", "err_console")]
    widths = [(c._width, c._height) for c in consoles]
    secrets = set(redact._IN_USE)
    cwd = os.getcwd()
    timer = None
    fired = threading.Event()
    if threading.current_thread() is threading.main_thread():
        def interrupt() -> None:
            fired.set()
            _thread.interrupt_main()

        timer = threading.Timer(timeout, interrupt)
        timer.daemon = True
    try:
        os.chdir(ROOT)
        for c in consoles:
            c._width = width
        with warnings.catch_warnings(record=True) as caught:
            warnings.resetwarnings()
            for action, category, module in _FRESH_INTERPRETER_WARNINGS:
                warnings.filterwarnings(action, category=category, module=module, append=True)
            if timer:
                timer.start()
            try:
                result = CliRunner().invoke(
                    app, list(args), env={**(env or {}), "COLUMNS": str(width), "PYTHONIOENCODING": "utf-8"},
                    prog_name="alignbench", catch_exceptions=True)
            except KeyboardInterrupt:
                if not fired.is_set():
                    raise
                raise subprocess.TimeoutExpired(["alignbench", *args], timeout) from None
            if timer:
                timer.cancel()
    finally:
        if timer:
            timer.cancel()
        os.chdir(cwd)
        for c, (w, h) in zip(consoles, widths, strict=True):
            c._width, c._height = w, h
        redact._IN_USE.clear()
        redact._IN_USE.update(secrets)
    if fired.is_set():
        raise subprocess.TimeoutExpired(["alignbench", *args], timeout, result.stdout, result.stderr)
    stderr = result.stderr
    stderr += "".join(warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line) for w in caught)
    if result.exception is not None and not isinstance(result.exception, SystemExit):  # uncaught: as Python prints it
        stderr += "".join(traceback.format_exception(*result.exc_info))
    return subprocess.CompletedProcess(["alignbench", *args], result.exit_code, result.stdout, stderr)


@dataclass(frozen=True)
class JudgedRuns:
    """data/zh's 32 answers of model-a and of model-b judged by ``openai:gpt-4o`` (the stub judge, AlignBench's
    format), each with its own ``alignbench score`` command, one reply cache for both."""

    root: Path  # holds model-a/ and model-b/, the run folders
    cache: Path  # the reply cache both commands filled (64 replies)
    stub: StubServer  # the judge that answered; it serves for the whole session (count its calls before/after)
    judge: str  # the --judge both runs used
    procs: dict[str, subprocess.CompletedProcess]  # model -> what its score command printed and returned

    @property
    def a(self) -> Path:
        return self.root / "model-a"

    @property
    def b(self) -> Path:
        return self.root / "model-b"


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


@pytest.fixture(scope="session")
def _judged_session(tmp_path_factory: pytest.TempPathFactory):
    """Judged once per session, for the tests that only read a judged run (they used to judge the same answers
    again each)."""
    root = tmp_path_factory.mktemp("judged")
    cache = root / "cache.sqlite"
    runs = root / "runs"
    clean = {var: None for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ZHIPUAI_API_KEY")}
    with StubServer(responder=alignbench_responder) as stub:
        procs = {}
        for model, answers in (("model-a", ANSWERS_A), ("model-b", ANSWERS_B)):
            procs[model] = run_cli("score", "-q", str(QUESTIONS), "-a", str(answers), "--judge", "openai:gpt-4o",
                                   "--judge-base-url", stub.url, "--out", str(runs / model), "--cache", str(cache),
                                   env={**clean, "ALIGNBENCH_CACHE": str(cache)})
            assert procs[model].returncode == 0, procs[model].stderr
        judged = JudgedRuns(root=runs, cache=cache, stub=stub, judge="openai:gpt-4o", procs=procs)
        yield judged, _digest(root)


@pytest.fixture
def judged(_judged_session) -> JudgedRuns:
    """The session's judged runs, to READ only (show, report, view, calibrate, load_run …). A test that
    writes into a run folder or the cache takes ``judged_copy`` instead; writing here fails the test."""
    runs, digest = _judged_session
    yield runs
    assert _digest(runs.root.parent) == digest, "a test wrote into the shared judged runs: use judged_copy"


@pytest.fixture
def judged_copy(_judged_session, tmp_path: Path, _isolated_cache: Path) -> JudgedRuns:
    """The session's judged runs copied into this test's tmp_path, their replies already in this test's own
    reply cache (``ALIGNBENCH_CACHE``): write, re-run, review at will."""
    runs, _ = _judged_session
    root = tmp_path / "judged"
    shutil.copytree(runs.root, root)
    shutil.copyfile(runs.cache, _isolated_cache)
    return replace(runs, root=root, cache=_isolated_cache)


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
