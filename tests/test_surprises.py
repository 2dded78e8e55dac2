"""A new user's surprises and a real server used well (issue 23, parts 5 and 6): each case against real
loopback servers, in process where the library is what is tested."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from conftest import ANSWERS_A, QUESTIONS
from stub_server import StubServer, alignbench_responder

import alignbench
from alignbench.engine import ServerUnavailable


def test_a_judge_server_that_dies_mid_run_stops_the_run_within_seconds(tmp_path: Path) -> None:
    stub = StubServer(responder=alignbench_responder, latency=0.05).start()

    def kill_after_some_replies() -> None:
        while stub.calls < 4:
            time.sleep(0.01)
        stub.stop()

    threading.Thread(target=kill_after_some_replies, daemon=True).start()
    start = time.monotonic()
    with pytest.raises(ServerUnavailable, match="judge server gone at .*re-run to resume"):
        alignbench.score(QUESTIONS, ANSWERS_A, "openai:judge", base_url=stub.url, out=tmp_path / "r",
                         concurrency=2)
    assert time.monotonic() - start < 8  # not minutes of retries (6 attempts x 32 requests before)
