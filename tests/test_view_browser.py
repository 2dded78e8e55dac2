"""`alignbench view` in a real headless Chromium (the OS package, driven by Playwright; nothing is
downloaded): leaderboard numbers, question navigation with the keyboard, a review submitted through
the form and found again after a reload and in reviews.jsonl, hostile answers and judge texts shown as
text with nothing executed, Chinese substring search, the review queue, and the token on other hosts.

Needs /usr/bin/chromium (or $ALIGNBENCH_CHROMIUM): `apt-get install chromium` on Debian/Ubuntu; .ci/run
installs it. Without a browser these tests are skipped with that hint.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_view_runs import EXECUTION, HOSTILE_ANSWER, HOSTILE_JUDGE, PLAN, QS, build_all, reviews_of, score_a

from alignbench.view.data import load_view
from alignbench.view.server import Background, ServeConfig

CHROMIUM = os.environ.get("ALIGNBENCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="no chromium: apt-get install chromium (or set ALIGNBENCH_CHROMIUM)")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Path]]]:
    folders = build_all(tmp_path_factory.mktemp("runs"))
    data = load_view([folders["a"], folders["c"]], baseline=folders["b"], compare_dirs=[folders["cmp"]],
                     lazy=True)
    with Background(data, ServeConfig(port=0, reviewer="张三")) as url:
        yield url, folders


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(8000)
    pg = context.new_page()
    pg.errors = []  # type: ignore[attr-defined]
    pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))  # type: ignore[attr-defined]
    pg.on("dialog", lambda d: (pg.errors.append(f"dialog {d.message}"), d.dismiss()))  # type: ignore[attr-defined]
    yield pg
    context.close()


def cell(pg, run: str, column: int) -> str:
    return pg.locator(f"#leaderboard tr[data-run='{run}'] td").nth(column).locator(".score").inner_text()


def test_leaderboard_shows_summary_numbers(site, page) -> None:
    url, folders = site
    page.goto(url + "/")
    # the page reloads itself once the paired tests against the baseline are done
    page.wait_for_selector("#pending", state="detached", timeout=15000)
    for key, name in (("0", "b"), ("1", "a"), ("2", "c")):
        s = json.loads((folders[name] / "summary.json").read_text(encoding="utf-8"))
        assert cell(page, key, 0) == f"{s['overall']:.2f}"
        assert cell(page, key, 1) == f"{s['reasoning']:.2f}"
        assert cell(page, key, 2) == f"{s['language']:.2f}"
        assert cell(page, key, 3 + 1) == f"{s['categories']['逻辑推理']['score']:.2f}"
        ci = page.locator(f"#leaderboard tr[data-run='{key}'] td").nth(0).locator(".ci").inner_text()
        assert ci == f"{s['overall_ci'][0]:.2f}–{s['overall_ci'][1]:.2f}"
    assert "Δ" in page.locator("#leaderboard tr[data-run='1'] td").nth(0).inner_text()
    assert page.locator("figure.radar polygon.series").count() == 3
    assert page.errors == []  # type: ignore[attr-defined]


def test_question_view_keyboard_and_analysis(site, page) -> None:
    url, _ = site
    page.goto(url + "/list?category=中文理解&sort=id")
    page.locator("a.qlink").first.click()
    page.wait_for_url("**/q/5*")
    assert page.locator("#question-text").inner_text().startswith("为什么中国人过端午节要吃粽子")
    assert "无法评分" in page.locator("#run-1 .analysis").inner_text()  # model-a's failed judgment, full text
    page.keyboard.press("j")
    page.wait_for_url("**/q/6*")
    assert "category=" in page.url  # the list's filters travel along
    page.keyboard.press("ArrowRight")
    page.wait_for_url("**/q/7*")
    page.keyboard.press("k")
    page.wait_for_url("**/q/6*")
    page.goto(url + "/q/9")  # a deep link
    col = page.locator("#run-1")
    assert PLAN in col.locator(".section").first.inner_text()
    assert EXECUTION in col.locator(".section").nth(1).inner_text()
    assert "第9题：model-a 的回答基本正确" in col.locator(".analysis").inner_text()
    table = page.locator("#score-table").inner_text()
    assert "事实正确性" in table and f"{score_a_int(9)}" in table
    assert page.locator("#run-2 table").inner_text().count("openai:j") == 2  # each judge of the ensemble
    page.goto(url + "/q/2")
    pairs = page.locator(".pairs").inner_text()
    assert "position flip" in pairs and "model first" in pairs and "baseline first" in pairs


def score_a_int(qid: int) -> int:
    return int(3 + qid % 6)


def test_review_submit_reload_and_file(site, page) -> None:
    url, folders = site
    page.goto(url + "/q/11")
    form = page.locator("#run-1 form.review")
    form.locator("select[name=score]").select_option("9")
    form.locator("textarea[name=note]").fill("评审漏看了第二点 <b>不是粗体</b>")
    form.locator("button[value=override]").click()
    page.wait_for_selector("#run-1 .flash")
    page.reload()
    state = page.locator("#run-1 .review-state").inner_text()
    assert "reviewer 9" in state and "张三" in state and "评审漏看了第二点 <b>不是粗体</b>" in state
    page.locator("#run-0 form.review button[value=confirm]").click()  # the baseline's judgment, confirmed
    page.wait_for_selector("#run-0 .flash")
    a = reviews_of(folders["a"])
    assert [(r["question_id"], r["verdict"], r["score"], r["judge_score"], r["reviewer"]) for r in a] == \
        [(11, "override", 9.0, score_a(next(q for q in QS if q.id == 11)), "张三")]
    assert a[0]["note"] == "评审漏看了第二点 <b>不是粗体</b>" and a[0]["picked"] == "browse"
    assert len(a[0]["prompt_hash"]) == 16 and a[0]["model"] == "model-a"
    b = reviews_of(folders["b"])
    assert [(r["question_id"], r["verdict"]) for r in b] == [(11, "confirm")]
    page.goto(url + "/list?reviewed=yes")
    assert page.locator("#items tbody tr").count() == 2
    page.goto(url + "/run/1")
    assert "1 reviewed" in page.locator("#agreement").inner_text()


def test_hostile_text_is_shown_not_run(site, page) -> None:
    url, _ = site
    page.goto(url + "/q/1")
    page.wait_for_load_state("load")
    assert page.evaluate("window.__pwned") is None
    answer = page.locator("#run-1 .answer")
    assert answer.inner_text() == HOSTILE_ANSWER
    assert answer.locator("script, img, b").count() == 0
    analysis = page.locator("#run-1 .analysis")
    assert analysis.inner_text() == HOSTILE_JUDGE
    assert page.locator("main script, main img").count() == 0
    page.goto(url + "/list?q=" + "onerror")  # highlighted search results stay text too
    assert page.evaluate("window.__pwned") is None
    assert page.errors == []  # type: ignore[attr-defined]


def test_chinese_substring_search(site, page) -> None:
    url, _ = site
    page.goto(url + "/")
    page.keyboard.press("/")
    page.keyboard.type("礼时一般不")  # inside 送礼时一般不送钟: no word boundary anywhere
    page.keyboard.press("Enter")
    page.wait_for_url("**/list?q=*")
    rows = page.locator("#items tbody tr")
    assert rows.count() == 3 and set(rows.locator("a.qlink").all_inner_texts()) == {"6"}
    assert page.locator("#items mark").first.inner_text() == "礼时一般不"
    page.locator("#list-search").fill("端午 龙舟")
    page.locator("#filters button[type=submit]").click()
    page.wait_for_url("**q=*")
    assert set(page.locator("#items a.qlink").all_inner_texts()) == {"5"}


def test_review_queue_moves_on(site, page) -> None:
    url, folders = site
    page.goto(url + "/queue")
    first = page.locator("#items tbody tr").first
    assert "pairwise verdict depends on order" in first.inner_text()
    assert first.locator("a.qlink").inner_text() == "6"
    first.locator("a.qlink").click()
    page.wait_for_url("**/q/6*")
    assert page.locator("#run-1").get_attribute("class").split().count("focus") == 1
    page.locator("#run-1 form.review button[value=confirm]").click()
    page.wait_for_url("**/q/2*")  # the next entry of the queue
    assert page.locator("#saved-elsewhere").inner_text() == "review of Q6 (model-a) saved"
    assert page.locator(".col.focus").count() == 1
    q6 = next(r for r in reviews_of(folders["a"]) if r["question_id"] == 6)
    assert q6["verdict"] == "confirm" and q6["picked"] == "queue"
    assert "pairwise verdict depends on order" in q6["reasons"]
    page.goto(url + "/queue")
    assert page.locator("#items tbody tr").first.locator("a.qlink").inner_text() != "6"
    page.locator("nav.tabs a", has_text="random sample").click()  # the queue for calibration labels
    page.wait_for_url("**/queue?sort=sample")
    total = int(page.locator("#count b").inner_text())
    assert total == 96 - len(reviews_of(folders["a"])) - len(reviews_of(folders["b"]))
    page.locator("#items a.qlink").first.click()
    page.locator(".col.focus form.review button[value=override]").click()
    page.wait_for_selector("#saved-elsewhere")
    picked = [r["picked"] for d in (folders["a"], folders["b"], folders["c"]) for r in reviews_of(d)]
    assert picked.count("sample") == 1


def test_other_host_needs_the_token(browser, tmp_path: Path) -> None:
    folders = build_all(tmp_path)
    cfg = ServeConfig(host="0.0.0.0", port=0, token="open-sesame", reviewer="李四")
    with Background(load_view([folders["a"]], lazy=True), cfg, bind_host="127.0.0.1") as url:
        context = browser.new_context()
        context.set_default_timeout(8000)
        pg = context.new_page()
        response = pg.goto(url + "/q/3")
        assert response.status == 401 and "token" in pg.content()
        assert "model-a" not in pg.content()
        pg.goto(url + "/q/3?token=open-sesame")
        assert pg.url == url + "/q/3"  # the token left the address bar, a cookie carries it
        pg.locator("#run-0 form.review button[value=confirm]").click()
        pg.wait_for_selector("#run-0 .flash")
        assert [(r["question_id"], r["reviewer"]) for r in reviews_of(folders["a"])] == [(3, "李四")]
        fresh = browser.new_context()
        assert fresh.new_page().goto(url + "/").status == 401
        fresh.close()
        context.close()
