"""``alignbench view ... --export DIR``: the viewer's pages as static files, for a release or a pull request.

Same templates as the live server, with flat relative links (``index.html``, ``q-17.html``,
``run-0.html``, ``list.html``) so the folder opens from disk or an attachment with no server. There
is no review form and no queue (nothing could receive a review); the list page filters its rows in
the browser. Reviews already in the run folders are shown as they are.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from alignbench.view.data import Query, ViewData
from alignbench.view.render import Pages, Settings

STATIC = Path(__file__).parent / "static"


def export_site(data: ViewData, out_dir: Path | str) -> list[Path]:
    """Write every page into ``out_dir`` (created; existing files of the same names replaced) and
    return the paths written, the leaderboard first."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pages = Pages(data, Settings(read_only=True, static=True))
    written: list[Path] = []

    def write(name: str, html: str) -> None:
        path = out / name
        path.write_text(html, encoding="utf-8")
        written.append(path)

    write("index.html", pages.leaderboard())
    write("list.html", pages.list_page(Query()))
    for rv in data.runs:
        write(f"run-{rv.key}.html", pages.run_page(rv))
    if data.pair_folders:
        write("pairwise.html", pages.pairwise_page())
    for qid in data.qids:
        html = pages.question_page(qid, Query())
        if html is not None:
            write(f"q-{qid}.html", html)
    assets = out / "static"
    assets.mkdir(exist_ok=True)
    for f in STATIC.iterdir():
        if f.is_file():
            shutil.copyfile(f, assets / f.name)
            written.append(assets / f.name)
    return written
