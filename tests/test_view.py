"""`alignbench view`: the review file and its agreement figures, the queue rule, the list filters and
Chinese search, the HTTP routes of the real server (safety rules included), the static export and
the command itself. Browser tests are in test_view_browser.py.

Run folders come from test_view_runs.py (real summaries from ``aggregate.summarize``)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
from conftest import run_cli
from test_view_runs import HOSTILE_ANSWER, HOSTILE_JUDGE, QS, build_all, judgment, reviews_of, score_a

from alignbench.cli import view as _view  # noqa: F401  (registers `view` until cli/__init__ imports it)
from alignbench.reviews import (
    Review,
    ReviewError,
    append_review,
    current_reviews,
    human_labels,
    load_reviews,
    make_review,
    read_reviews,
    review_agreement,
)
from alignbench.rundir import load_run
from alignbench.types import Status
from alignbench.view.data import Query, load_view, terms, variants
from alignbench.view.queue import Facts, usefulness
from alignbench.view.server import Background, ServeConfig, is_loopback


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_all(tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def data(folders: dict[str, Path]):
    return load_view([folders["a"], folders["c"]], baseline=folders["b"], compare_dirs=[folders["cmp"]])


def q(qid: int):
    return next(x for x in QS if x.id == qid)


# ================================================================================================
# reviews.py: the file, staleness, agreement
# ================================================================================================


def test_review_agreement_hand_computed(tmp_path: Path) -> None:
    js = [judgment(q(i), "m", s) for i, s in ((1, 6.0), (2, 8.0), (3, 4.0), (4, 7.0))]
    js.append(judgment(q(5), "m", None))
    t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    reviews = [
        make_review(js[0], "override", 9, "ann", now=t),  # |Δ| 3 (superseded below)
        make_review(js[0], "override", 7, "ann", now=t),  # latest for Q1: |Δ| 1
        make_review(js[1], "confirm", None, "bob", now=t),  # 0
        make_review(js[2], "override", 6.5, "bob", now=t),  # +2.5
        make_review(js[4], "override", 2, "bob", now=t),  # failed judgment: a label, not compared
    ]
    stale = make_review(js[3], "override", 1, "ann", now=t).model_copy(update={"prompt_hash": "0" * 16})
    reviews.append(stale)  # reviewed on another prompt: stale, left out
    elsewhere = judgment(q(9), "other", 5.0)  # not in this run
    reviews.append(make_review(elsewhere, "confirm", None, "ann", now=t))
    a = review_agreement(js, reviews)
    assert (a.n_reviews, a.n_reviewed, a.n_stale, a.n_compared) == (7, 4, 1, 3)
    assert (a.n_confirmed, a.n_overridden, a.n_failed_labelled, a.n_orphaned) == (1, 3, 1, 1)
    assert a.mad == pytest.approx((1 + 0 + 2.5) / 3, abs=1e-4)
    assert a.within_1 == pytest.approx(2 / 3, abs=1e-4)
    assert a.bias == pytest.approx((1 + 0 + 2.5) / 3, abs=1e-4)
    assert "3 judgment(s)" not in a.line() and "4 judgment(s) reviewed" in a.line()
    only_bob = review_agreement(js, reviews, reviewer="bob")
    assert (only_bob.n_reviewed, only_bob.n_compared, only_bob.mad) == (3, 2, 1.25)
    sampled = make_review(js[3], "override", 6, "cy", now=t, picked="sample")
    only_sample = human_labels(js, [*reviews, sampled], picked=("sample",))
    assert [(j.question_id, s) for j, s in only_sample] == [(4, 6)]
    assert sorted(j.question_id for j, _ in human_labels(js, reviews)) == [1, 2, 3, 5]  # stale Q4 left out
    states = current_reviews(js, reviews)
    assert states[(4, "m")].stale and states[(1, "m")].review.score == 7 and states[(1, "m")].n_reviews == 2


def test_make_review_rules() -> None:
    ok, failed = judgment(q(1), "m", 6.0), judgment(q(2), "m", None)
    r = make_review(ok, "confirm", 2, "ann")  # confirm takes the judge's score, whatever was sent
    assert (r.score, r.judge_score, r.prompt_hash, r.judge_status) == (6.0, 6.0, ok.prompt_hash, "ok")
    with pytest.raises(ValueError, match="no score to confirm"):
        make_review(failed, "confirm", None, "ann")
    assert make_review(failed, "override", 3, "ann").judge_score is None
    with pytest.raises(ValueError, match="reviewer"):
        make_review(ok, "override", 5, "  ")


def test_append_is_one_line_per_write_under_concurrency(tmp_path: Path) -> None:
    """Eight threads and two processes append at once: every line is a whole review, none lost."""
    j = judgment(q(1), "m", 6.0)
    note = "很长的备注" * 800  # 4000 characters, 12 KB: larger than a pipe buffer's atomic write
    script = ("import sys\n"
              "from alignbench.types import Judgment\n"
              "from alignbench.reviews import append_review, make_review\n"
              f"j = Judgment.model_validate_json({j.model_dump_json()!r})\n"
              "print('ready', flush=True); sys.stdin.readline()\n"
              "for i in range(50):\n"
              f"    append_review({str(tmp_path)!r}, make_review(j, 'override', 5, 'proc', {note!r}))\n")
    procs = [subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True) for _ in range(2)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"  # type: ignore[union-attr]
    start = threading.Barrier(9)

    def work(n: int) -> None:
        start.wait()
        for _ in range(25):
            append_review(tmp_path, make_review(j, "override", 4, f"thread{n}", note))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for p in procs:
        p.stdin.write("go\n")  # type: ignore[union-attr]
        p.stdin.flush()  # type: ignore[union-attr]
    start.wait()
    for t in threads:
        t.join()
    for p in procs:
        assert p.wait(timeout=60) == 0
    lines = (tmp_path / "reviews.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 300
    assert all(Review.model_validate_json(line).note == note for line in lines)


def test_reading_bad_lines(tmp_path: Path) -> None:
    j = judgment(q(1), "m", 6.0)
    append_review(tmp_path, make_review(j, "confirm", None, "ann"))
    with (tmp_path / "reviews.jsonl").open("a", encoding="utf-8") as fh:
        fh.write('{"question_id": 1, "torn')  # a torn last line (crash mid-write)
    append_review(tmp_path, make_review(j, "override", 2, "ann"))  # starts on a fresh line
    book = read_reviews(tmp_path)
    assert [r.score for r in book.reviews] == [6.0, 2.0]
    assert len(book.problems) == 1 and "reviews.jsonl:2" in book.problems[0]
    with pytest.raises(ReviewError, match="reviews.jsonl:2"):
        load_reviews(tmp_path)
    assert load_reviews(tmp_path / "nowhere") == []


# ================================================================================================
# queue rule, filters, search
# ================================================================================================


def test_usefulness_rule() -> None:
    assert usefulness(Facts(ok=True)) == (0.0, [])
    assert usefulness(Facts(ok=True, flip=True, inconsistent=True))[0] == 4
    assert usefulness(Facts(ok=True, spread=7))[0] == 5  # capped
    assert usefulness(Facts(ok=True, spread=0.5))[0] == 0
    assert usefulness(Facts(ok=True, attempts=2, n_judges=2))[0] == 0  # two judges, one call each
    assert usefulness(Facts(ok=False, status="parse_failed", attempts=2)) == (4, ["parse retry",
                                                                                "failed (parse_failed)"])
    typical = usefulness(Facts(ok=True, delta=-1.0, category_delta=-0.8, category="逻辑推理"))
    assert typical[0] == pytest.approx(1.8) and "逻辑推理" in typical[1][0]
    assert usefulness(Facts(ok=True, delta=1.0, category_delta=-0.8))[0] == 0  # other direction
    assert usefulness(Facts(ok=True, delta=-3.0, category_delta=-0.8))[0] == 0  # an outlier
    assert usefulness(Facts(ok=True, delta=-0.2, category_delta=-0.1))[0] == 0  # the category did not move


def test_queue_order_and_flags(data) -> None:
    queue = data.select(Query(sort="queue"))
    top = [(it.qid, it.run.label) for it in queue[:5]]
    assert top[0] == (6, "model-a")  # order-dependent pair + typical of 中文理解's drop
    assert {(2, "model-a"), (2, "model-b"), (3, "model-c"), (4, "model-c")} <= set(top)
    assert len(queue) == len(data.items)  # nothing reviewed yet: everything is in the queue
    by = {(it.qid, it.run.label): it for it in data.items}
    assert by[(3, "model-c")].spread == 4 and by[(4, "model-c")].judge_failed
    assert by[(2, "model-a")].flip and not by[(6, "model-a")].flip and by[(6, "model-a")].inconsistent
    assert by[(7, "model-a")].reasons == ("parse retry",) or "parse retry" in by[(7, "model-a")].reasons
    assert [it.qid for it in data.select(Query(flags=("retry",)))] == [7]


def test_filters_and_sorts(data) -> None:
    failed = data.select(Query(status="failed"))
    assert {(it.qid, it.run.label) for it in failed} == {(5, "model-a"), (4, "model-c")}
    low = data.select(Query(run="1", sort="score"))  # model-a, lowest first, failed last
    assert [it.score for it in low[:3]] == [3.0, 3.0, 3.0] and low[-1].qid == 5
    cat = data.select(Query(category="逻辑推理", run="1"))
    assert [it.qid for it in cat] == [21, 22, 23, 24]
    drops = data.select(Query(run="1", sort="drop"))
    d0 = drops[0]
    assert d0.delta == min(score_a(x) - (4 + (7 * x.id) % 5) for x in QS if x.id not in (1, 5))
    assert all(it.delta is None for it in data.select(Query(run="2")))  # the ensemble is not comparable
    assert data.select(Query(subcategory="证明"))[0].qid == 24


def test_chinese_substring_search(data) -> None:
    """Substrings that are no word ("礼时一般不" inside 送礼时一般不送钟), several terms, quoted
    phrases, full-width letters, scopes."""
    assert {it.qid for it in data.select(Query(q="礼时一般不"))} == {6}
    assert {it.qid for it in data.select(Query(q="端午 龙舟"))} == {5}
    assert {it.qid for it in data.select(Query(q="端午 不存在的词"))} == set()
    wide = data.select(Query(q="ＭＯＤＥＬ－Ａ 对第３题", scope="answer"))
    assert {(it.qid, it.run.label) for it in wide} == {(3, "model-a")}
    assert {it.qid for it in data.select(Query(q='"judge-script"', scope="judge"))} == {1}
    assert data.select(Query(q="judge-script", scope="question")) == []
    assert terms('  "a  b"   c ') == ["a b", "c"]
    assert set(variants("gpt4")) >= {"gpt4", "ｇｐｔ４"}


# ================================================================================================
# the real server over HTTP
# ================================================================================================


@pytest.fixture
def fresh(tmp_path: Path) -> dict[str, Path]:
    return build_all(tmp_path)


def test_http_api_and_review_round_trip(fresh: dict[str, Path]) -> None:
    data = load_view([fresh["a"]], baseline=fresh["b"], compare_dirs=[fresh["cmp"]], lazy=True)
    before = (fresh["a"] / "judgments.jsonl").read_bytes()
    with Background(data, ServeConfig(port=0, reviewer="ann")) as url, httpx.Client(base_url=url) as c:
        runs = c.get("/api/runs").json()["runs"]
        summary = json.loads((fresh["a"] / "summary.json").read_text(encoding="utf-8"))
        a = next(r for r in runs if r["label"] == "model-a")
        assert (a["overall"], a["n_failed"], a["categories"]["逻辑推理"]["score"]) == \
            (summary["overall"], 1, summary["categories"]["逻辑推理"]["score"])
        assert a["comparison"]["comparable"] and a["comparison"]["rows"][0]["key"] == "overall"
        assert next(r for r in runs if r["baseline"])["label"] == "model-b"

        page = c.get("/api/judgments", params={"status": "failed"}).json()
        assert [(i["question_id"], i["status"]) for i in page["items"]] == [(5, "parse_failed")]
        found = c.get("/api/judgments", params={"q": "礼时一般不", "run": a["key"]}).json()
        assert [i["question_id"] for i in found["items"]] == [6] and found["seconds"] >= 0

        qv = c.get("/api/question/1").json()
        mine = next(r for r in qv["runs"] if r["label"] == "model-a")
        assert mine["answer"] == HOSTILE_ANSWER and mine["judgment"]["raw"] == HOSTILE_JUDGE
        assert next(r for r in qv["runs"] if r["label"] == "model-b")["answer"] is None
        assert {p["flip"] for p in c.get("/api/question/2").json()["pairs"]} == {True}
        assert c.get("/api/question/999").status_code == 404

        r = c.post("/api/review", json={"run": a["key"], "question_id": 3, "verdict": "override", "score": 9,
                                        "note": "参考答案<b>有误</b>"})
        assert r.status_code == 200, r.text
        r = c.post("/api/review", json={"run": a["key"], "question_id": 4, "verdict": "confirm"})
        assert r.status_code == 200
        bad = [({"run": a["key"], "question_id": 5, "verdict": "confirm"}, "no score to confirm"),
               ({"run": a["key"], "question_id": 3, "verdict": "override", "score": 11}, "between 1 and 10"),
               ({"run": a["key"], "question_id": 3, "verdict": "override", "score": "nan"}, "between"),
               ({"run": a["key"], "question_id": 3, "verdict": "maybe"}, "confirm or override"),
               ({"run": "9", "question_id": 3, "verdict": "confirm"}, "no run")]
        for body, message in bad:
            r = c.post("/api/review", json=body)
            assert r.status_code in (400, 404) and message in r.json()["error"], (body, r.text)

        lines = reviews_of(fresh["a"])
        assert [(x["question_id"], x["verdict"], x["score"], x["judge_score"]) for x in lines] == \
            [(3, "override", 9.0, score_a(q(3))), (4, "confirm", score_a(q(4)), score_a(q(4)))]
        judged = {j.question_id: j for j in load_run(fresh["a"]).judgments}
        assert all(x["reviewer"] == "ann" and x["model"] == "model-a" and x["prompt_hash"] ==
                   judged[x["question_id"]].prompt_hash and x["time"].endswith("+00:00") for x in lines)
        assert lines[0]["note"] == "参考答案<b>有误</b>"
        agreement = c.get(f"/api/reviews/{a['key']}").json()["agreement"]
        # |9 − 6| and 0
        assert (agreement["n_reviewed"], agreement["mad"], agreement["within_1"]) == (2, 1.5, 0.5)
        listed = c.get("/api/judgments", params={"reviewed": "yes"}).json()["items"]
        assert sorted(i["question_id"] for i in listed) == [3, 4]
        queue = c.get("/api/judgments", params={"queue": "1", "limit": 1000}).json()["items"]
        assert {3, 4}.isdisjoint(i["question_id"] for i in queue if i["run"] == a["key"])
    assert (fresh["a"] / "judgments.jsonl").read_bytes() == before  # never touched


def test_stale_review_after_rescore(fresh: dict[str, Path]) -> None:
    """A review made before the run was re-scored on another prompt is shown stale and re-queued."""
    j = judgment(q(8), "model-a", score_a(q(8)))
    before_rescore = j.model_copy(update={"prompt_hash": "f" * 16})
    append_review(fresh["a"], make_review(before_rescore, "override", 2, "ann"))
    data = load_view([fresh["a"]])
    with Background(data, ServeConfig(port=0)) as url, httpx.Client(base_url=url) as c:
        page = c.get("/q/8").text
        assert "stale review" in page and "f" * 16 in page
        assert c.get("/api/reviews/0").json()["agreement"]["n_stale"] == 1
        queue = c.get("/api/judgments", params={"queue": "1", "limit": 1000}).json()["items"]
        assert 8 in [i["question_id"] for i in queue]


def test_safety_rules(fresh: dict[str, Path]) -> None:
    data = load_view([fresh["a"]], lazy=True)
    form = {"run": "0", "question_id": "3", "verdict": "override", "score": "5", "reviewer": "x"}
    with Background(data, ServeConfig(port=0, max_body=2048)) as url, httpx.Client(base_url=url) as c:
        port = url.rsplit(":", 1)[1]
        assert c.get("/", headers={"Host": f"evil.example:{port}"}).status_code == 421  # DNS rebinding
        assert c.get("/", headers={"Host": f"localhost:{port}"}).status_code == 200
        r = c.post("/review", data=form, headers={"Origin": "http://evil.example"})
        assert r.status_code == 403 and "cross-origin" in r.text
        assert c.post("/review", data=form, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
        assert c.post("/review", data={**form, "note": "x" * 5000}).status_code == 413
        plain = c.post("/api/review", content=json.dumps(form), headers={"Content-Type": "text/plain"})
        assert plain.status_code == 415
        r = c.post("/review", data={**form, "after": "//evil.example/x"}, headers={"Origin": url})
        assert r.status_code == 303 and r.headers["location"].startswith("/q/3?")  # no open redirect
        page = c.get("/q/1")
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert page.headers["x-frame-options"] == "DENY" and page.headers["referrer-policy"] == "same-origin"
        assert HOSTILE_ANSWER not in page.text and "&lt;script&gt;window.__pwned" in page.text
        assert "<script>window" not in page.text
    assert len(reviews_of(fresh["a"])) == 1
    with Background(data, ServeConfig(port=0, read_only=True)) as url, httpx.Client(base_url=url) as c:
        assert c.post("/review", data=form).status_code == 403
        assert "<form class=\"review\"" not in c.get("/q/3").text


def test_token_for_other_hosts(fresh: dict[str, Path]) -> None:
    """--host 0.0.0.0 (served here on loopback): pages and writes need the token; ?token= sets a cookie."""
    assert is_loopback("127.0.0.2") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    assert ServeConfig(host="0.0.0.0").token and ServeConfig(host="127.0.0.1").token is None
    data = load_view([fresh["a"]], lazy=True)
    cfg = ServeConfig(host="0.0.0.0", port=0, token="sesame")
    with Background(data, cfg, bind_host="127.0.0.1") as url, httpx.Client(base_url=url) as c:
        assert cfg.url().endswith("/?token=sesame")
        assert c.get("/").status_code == 401 and c.get("/api/runs").status_code == 401
        assert c.get("/", params={"token": "wrong"}).status_code == 401
        assert c.get("/static/view.css").status_code == 200  # our own asset, nothing secret
        form = {"run": "0", "question_id": "3", "verdict": "confirm", "reviewer": "x"}
        assert c.post("/review", data=form).status_code == 401
        r = c.get("/q/3", params={"token": "sesame", "at": "0"})
        assert r.status_code == 303 and r.headers["location"] == "/q/3?at=0" and "httponly" in \
            r.headers["set-cookie"].lower() and "samesite=strict" in r.headers["set-cookie"].lower()
        assert c.get("/q/3").status_code == 200  # the cookie
        assert c.post("/review", data=form).status_code == 303
        with httpx.Client(base_url=url) as other:
            assert other.get("/api/runs", headers={"X-Alignbench-Token": "sesame"}).status_code == 200
    assert len(reviews_of(fresh["a"])) == 1


# ================================================================================================
# pages, export, command
# ================================================================================================


def test_pages_render_everything(folders: dict[str, Path], data) -> None:
    with Background(data, ServeConfig(port=0)) as url, httpx.Client(base_url=url) as c:
        home = c.get("/").text
        for run in ("model-a", "model-b", "model-c"):
            summary = json.loads((folders[run[-1]] / "summary.json").read_text(encoding="utf-8"))
            assert f"{summary['overall']:.2f}" in home
        assert "radar" in home and "Δ" in home and "scores from different judges are not comparable" in home
        q9 = c.get("/q/9").text
        assert "【plan】" in q9 and "计划：先列出应有的三点习俗" in q9 and "执行：第一点正确" in q9
        q3 = c.get("/q/3").text
        assert "openai:j1" in q3 and "openai:j2" in q3  # each judge of the ensemble
        q2 = c.get("/q/2").text
        assert "position flip" in q2 and "&lt;i&gt;不是斜体&lt;/i&gt;" in q2
        assert "answer file not at hand" in q2  # the baseline's answers are gone
        assert "逻辑推理" in c.get("/run/1").text and "vs-baseline" in c.get("/run/1").text
        assert "Pairs to look at" in c.get("/pairwise").text
        assert c.get("/q/12345").status_code == 404 and c.get("/run/77").status_code == 404
        assert c.get("/list", params={"sort": "nonsense", "status": "x", "page": "-3"}).status_code == 200


def _cli(*args: str, **kw) -> subprocess.Popen:
    code = ("import sys; from alignbench.cli import view; from alignbench.cli.app import app; "
            "sys.argv[0] = 'alignbench'; app()")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    return subprocess.Popen([sys.executable, "-c", code, "view", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kw)


def test_command_serves_and_prints_url(folders: dict[str, Path]) -> None:
    proc = _cli(str(folders["a"]), "--baseline-run", str(folders["b"]), "--port", "0", "--queue",
                "--reviewer", "zoe")
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        why = proc.stderr.read() if proc.poll() is not None else ""  # type: ignore[union-attr]
        assert "2 run(s)" in line and "http://127.0.0.1:" in line, (line, why)
        url = line.split(" at ")[1].strip()
        assert url.endswith("/queue")
        page = httpx.get(url, timeout=20)
        assert page.status_code == 200 and "Review queue" in page.text and 'value="zoe"' in httpx.get(
            url.replace("/queue", "/q/3"), timeout=20).text
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_command_errors_and_export(folders: dict[str, Path], tmp_path: Path) -> None:
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "judgments.jsonl").write_text("", encoding="utf-8")
    proc = run_cli("view", str(unfinished))  # in-process: each of these ends by itself, no server left serving
    assert proc.returncode == 2 and "unfinished" in proc.stderr and "Traceback" not in proc.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        proc = run_cli("view", str(folders["a"]), "--port", str(busy.getsockname()[1]))
    assert proc.returncode == 2 and "cannot listen" in proc.stderr and "--port 0" in proc.stderr
    out_dir = tmp_path / "site"
    proc = run_cli("view", str(folders["a"]), str(folders["cmp"]), "--baseline-run", str(folders["b"]),
                   "--export", str(out_dir))
    assert proc.returncode == 0, proc.stderr
    assert "static copy written" in proc.stdout
    assert {"index.html", "list.html", "q-1.html", "q-32.html", "run-0.html", "pairwise.html"} <= \
        {p.name for p in out_dir.iterdir()}
    q1 = (out_dir / "q-1.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;window.__pwned" in q1 and "<script>window" not in q1
    assert "<form class=\"review\"" not in q1 and 'href="q-2.html"' in q1 and 'href="static/view.css"' in q1
    index = (out_dir / "index.html").read_text(encoding="utf-8")
    assert 'href="run-1.html"' in index and 'id="pending"' not in index


def test_failed_status_values_are_listed(data) -> None:
    """Every failed status can be filtered on its own (the select offers them all): the list page offers an
    option for each, a URL naming one keeps it, and the filter keeps exactly the judgments with that status."""
    from alignbench.view.data import FAILED
    from alignbench.view.render import Pages

    everything = data.select(Query())
    page = Pages(data).list_page(Query())
    by_status = {}
    for status in Status:
        assert Query.parse({"status": status.value}).status == status.value
        assert f'<option value="{status.value}"' in page, status
        chosen = data.select(Query(status=status.value))
        assert [id(it) for it in chosen] == [id(it) for it in everything if it.j.status is status], status
        by_status[status] = chosen
    assert Query.parse({"status": "no-such-status"}).status == ""
    assert len(by_status[Status.PARSE_FAILED]) >= 1 and by_status[Status.OK]  # the fixture has both kinds
    failed = {id(it) for s, chosen in by_status.items() if s is not Status.OK for it in chosen}
    assert failed == {id(it) for it in data.select(Query(status=FAILED))}
    assert len(by_status[Status.OK]) + len(failed) == len(everything)
