"""A viewer page is its handler and its template (docs/architecture.md, "a viewer page"): a module-level
handler reads the runs from ``request.app.state`` and renders through ``view.server.render``, which gives
its template what every page has (links, settings, the navigation), behind the same guard as every route."""

from __future__ import annotations

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from alignbench.view.data import load_view
from alignbench.view.server import Background, ServeConfig, _data, render


async def runs_page(request: Request) -> Response:
    """A page of its own, on an existing template: what a new page's handler looks like."""
    runs = (await _data(request)).runs
    return render(request, "error.html", title="Runs", status=len(runs), message=" · ".join(rv.label for rv in runs))


def test_a_page_is_a_handler_over_app_state_and_a_template(judged) -> None:
    background = Background(load_view([judged.a, judged.b]), ServeConfig(port=0, read_only=True))
    background.app.router.routes.append(Route("/runs", runs_page))  # this app only: ROUTES stays as it is
    with background as url, httpx.Client(base_url=url) as client:
        page = client.get("/runs")
        missing = client.get("/nope")
        refused = client.get("/runs", headers={"Host": "evil.example"})
    assert page.status_code == 200 and "<title>Runs · alignbench view</title>" in page.text
    assert "<h1>2</h1>" in page.text and "model-a · model-b" in page.text
    assert 'href="/static/view.css"' in page.text and "Review queue" not in page.text  # read-only: no queue link
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert missing.status_code == 404 and "<h1>404</h1>" in missing.text
    assert refused.status_code == 421  # the guard stands in front of a new route too
