"""The live viewer: a Starlette app over ``ViewData``, served by uvicorn.

Safety, and why:

* **Loopback by default.** Answers of unreleased models and judge texts are not for the network.
  On loopback the ``Host`` header must name the loopback address and port, which stops a web page
  from reading the viewer through DNS rebinding.
* **A token on any other host, for reads and writes.** Binding elsewhere (``--host 0.0.0.0``) is
  for sharing with colleagues; anyone else who can reach the port should not read unreleased
  answers either, so every page (not only the review form) needs the token printed at start-up. The
  printed URL carries it once; the server answers with an HttpOnly, SameSite=Strict cookie and a
  redirect that drops it from the address bar (and from any Referer).
* **No cross-site writes.** A POST whose ``Origin`` is not this server, or that a browser marks
  ``Sec-Fetch-Site: cross-site``, is refused: another tab cannot file reviews in your name. Bodies
  over 64 KiB are refused before they are read.
* **Text stays text.** Templates autoescape; the Content-Security-Policy allows only this server's
  own script and style files, so even a missed escape could not run an inline script or handler.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import secrets
import socket
import threading
import time
import unicodedata
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode

import anyio
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from alignbench import safejson
from alignbench.reviews import MAX_NOTE_CHARS, make_review, review_json
from alignbench.view.data import Query, RunView, ViewData, neighbours
from alignbench.view.render import Pages, Settings

# anyio imports its file API (used to serve static files) lazily, on first use. Doing that inside the
# server's thread while another thread compiles Python source trips a CPython 3.11 bug ("AST constructor
# recursion depth mismatch", gh-106905) and drops the response, so the import happens here, once.
_ = anyio.open_file

STATIC = Path(__file__).parent / "static"
COOKIE = "alignbench_view_token"
MAX_BODY = 64 * 1024
MAX_REVIEWER_CHARS = 80
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),  # with "no-referrer" our own forms would say "Origin: null"
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and ``localhost``: the hosts that only this machine can reach."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class ServeConfig:
    """How the server listens and who may do what. ``token`` is made at start-up for any host that
    is not loopback (pass one to fix it, e.g. in tests)."""

    host: str = "127.0.0.1"
    port: int = 8765
    reviewer: str = ""
    read_only: bool = False
    token: str | None = None
    max_body: int = MAX_BODY

    def __post_init__(self) -> None:
        if self.token is None and not is_loopback(self.host):
            self.token = secrets.token_urlsafe(18)

    def url(self, path: str = "/", with_token: bool = True) -> str:
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = socket.gethostname()
        elif ":" in host and not host.startswith("["):
            host = f"[{host}]"
        url = f"http://{host}:{self.port}{path}"
        if with_token and self.token:
            url += ("&" if "?" in path else "?") + urlencode({"token": self.token})
        return url


# ================================================================================================
# The guard: host, token, origin, size, headers
# ================================================================================================


class Guard:
    """Pure ASGI middleware applying the rules in the module docstring to every request."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], config: ServeConfig) -> None:
        self.app = app
        self.config = config

    def allowed_hosts(self) -> set[str] | None:
        """The Host headers accepted on a loopback bind (None: any, the token guards instead)."""
        if not is_loopback(self.config.host):
            return None
        port = self.config.port
        names = {"127.0.0.1", "localhost", "[::1]", self.config.host.lower()}
        if ":" in self.config.host and not self.config.host.startswith("["):
            names.add(f"[{self.config.host.lower()}]")
        return {f"{n}:{port}" for n in names} | ({*names} if port == 80 else set())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        path: str = scope.get("path", "/")
        method: str = scope.get("method", "GET")
        api = path.startswith("/api/")

        async def refuse(status: int, message: str) -> None:
            if api:
                response: Response = JSONResponse({"error": message}, status_code=status)
            else:
                response = HTMLResponse(_plain_page(status, message), status_code=status)
            await response(scope, receive, _secure(send))

        allowed = self.allowed_hosts()
        if allowed is not None and headers.get("host", "").lower() not in allowed:
            await refuse(421, "unexpected Host header: open the viewer at the address it printed")
            return
        token = self.config.token
        if token and not path.startswith("/static/"):
            query = QueryParams(scope.get("query_string", b""))
            given = headers.get("x-alignbench-token") or _cookie(headers, COOKIE) or ""
            if query.get("token") is not None and method == "GET" and _same(query["token"], token):
                rest = [(k, v) for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1"),
                                                     keep_blank_values=True) if k != "token"]
                target = path + ("?" + urlencode(rest) if rest else "")
                response = RedirectResponse(target, status_code=303)
                response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
                await response(scope, receive, _secure(send))
                return
            if not _same(given, token):
                await refuse(401, "this viewer needs its token: open the URL printed when it started "
                                  "(it ends in ?token=…)")
                return
        if method == "POST":
            if self.config.read_only:
                await refuse(403, "the viewer is read-only (started with --read-only)")
                return
            origin = headers.get("origin")
            own = f"{scope.get('scheme', 'http')}://{headers.get('host', '')}"
            if origin is not None and origin != own:
                await refuse(403, "cross-origin request refused")
                return
            if headers.get("sec-fetch-site") == "cross-site":
                await refuse(403, "cross-site request refused")
                return
            length = headers.get("content-length")
            if length is not None and (not length.isdigit() or int(length) > self.config.max_body):
                await refuse(413, f"request body over {self.config.max_body} bytes")
                return
        await self.app(scope, receive, _secure(send))


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _cookie(headers: Headers, name: str) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        k, _, v = part.strip().partition("=")
        if k == name:
            return v
    return None


def _secure(send: Send) -> Send:
    async def wrapped(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            hdrs = list(message.get("headers", []))
            names = {k.lower() for k, _ in hdrs}
            hdrs += [(k, v) for k, v in SECURITY_HEADERS if k not in names]
            if b"cache-control" not in names:
                hdrs.append((b"cache-control", b"no-store"))
            message["headers"] = hdrs
        await send(message)
    return wrapped


def _plain_page(status: int, message: str) -> str:
    from markupsafe import escape

    return (f"<!doctype html><meta charset=utf-8><title>{status}</title>"
            f"<h1>{status}</h1><p>{escape(message)}</p>")


# ================================================================================================
# The app: module-level handlers over ``request.app.state`` (data, pages, config, first_page)
# ================================================================================================


class BadRequest(HTTPException):
    """A request the viewer refuses with 400/404 and a sentence the user can act on (answered like
    any other HTTP error: JSON under /api/, the error page elsewhere)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(status, message)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) once it grows past ``limit`` bytes even without a length."""
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(f"request body over {limit} bytes", 413)
        chunks.append(chunk)
    return b"".join(chunks)


def _clean(text: str, limit: int, multiline: bool) -> str:
    """Printable text: control characters dropped (newlines and tabs kept in notes), length checked."""
    keep = "\n\t" if multiline else ""
    text = "".join(ch for ch in text.replace("\r\n", "\n")
                   if ch in keep or unicodedata.category(ch)[0] != "C").strip()
    if len(text) > limit:
        raise BadRequest(f"text longer than {limit} characters")
    return text


def _local(url: str | None, default: str) -> str:
    """Only a path on this server may be a redirect target (no open redirect)."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return default
    return url


async def _data(request: Request) -> ViewData:
    """The runs, once the second loading phase is done (waited for off the event loop): every page but
    the leaderboard needs it."""
    data: ViewData = request.app.state.data
    if not data.ready:
        await run_in_threadpool(data.warm)
    return data


def _pages(request: Request) -> Pages:
    return request.app.state.pages  # type: ignore[no-any-return]


def render(request: Request, template: str, **ctx: Any) -> HTMLResponse:
    """A page from its template, with what every page has (links, settings, data): a new page's handler
    builds its context and returns this, so the page is that handler and its template, nothing else."""
    return HTMLResponse(_pages(request)._render(template, **ctx))


def _found(page: str | None, message: str) -> HTMLResponse:
    """The page, or a 404 saying why there is none."""
    if page is None:
        raise BadRequest(message, 404)
    return HTMLResponse(page)


def _run(data: ViewData, key: str | None, message: str | None = None) -> RunView:
    rv = data.run_by_key(key or "")
    if rv is None:
        raise BadRequest(message or f"no run {key!r} in this viewer", 404)
    return rv


def _query(request: Request, sort: str | None = None) -> Query:
    """The list filters in the URL; ``sort`` replaces the URL's (routes that imply a sort)."""
    items = request.query_params.multi_items()
    if sort:
        items = [(k, v) for k, v in items if k != "sort"] + [("sort", sort)]
    return Query.parse(QueryParams(items))


# -- pages -------------------------------------------------------------------------------------------


async def leaderboard(request: Request) -> Response:
    response = HTMLResponse(_pages(request).leaderboard())
    request.app.state.first_page.set()
    return response


async def run_page(request: Request) -> Response:
    rv = _run(await _data(request), request.path_params["key"], "no such run")
    return HTMLResponse(_pages(request).run_page(rv))


async def probe_page(request: Request) -> Response:
    rv = (await _data(request)).run_by_key(request.path_params["key"])
    return _found(_pages(request).probe_page(rv) if rv else None, "no probes of this run (alignbench probe RUN)")


async def list_page(request: Request) -> Response:
    await _data(request)
    return HTMLResponse(_pages(request).list_page(_query(request)))


async def queue_page(request: Request) -> Response:
    await _data(request)
    sort = "sample" if request.query_params.get("sort") == "sample" else "queue"
    return HTMLResponse(_pages(request).list_page(_query(request, sort), queue=True))


async def question_page(request: Request) -> Response:
    await _data(request)
    qid, params = request.path_params["qid"], request.query_params
    page = _pages(request).question_page(qid, _query(request), at=params.get("at"), saved=params.get("saved"))
    return _found(page, f"no judgment of question {qid} in these runs")


async def pairwise_page(request: Request) -> Response:
    data = await _data(request)
    return _found(_pages(request).pairwise_page() if data.pair_folders else None, "no compare folder was given")


# -- reviews -----------------------------------------------------------------------------------------


def _submit(request: Request, fields: dict[str, Any]) -> tuple[RunView, Any]:
    """Check a review's fields (from the form or the JSON API) and append it to the run's reviews."""
    data: ViewData = request.app.state.data
    rv = _run(data, str(fields.get("run", "")))
    try:
        qid = int(str(fields.get("question_id", "")))
    except ValueError:
        raise BadRequest("question_id must be a number") from None
    j = rv.by_qid.get(qid)
    if j is None:
        raise BadRequest(f"{rv.label} has no judgment of question {qid}", 404)
    verdict = str(fields.get("verdict", ""))
    if verdict not in ("confirm", "override"):
        raise BadRequest("verdict must be confirm or override")
    score: float | None = None
    if verdict == "override":
        raw = fields.get("score")
        try:
            score = float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise BadRequest("give a score from the scale to override the judge") from None
        lo, hi = rv.scale
        if not math.isfinite(score) or not lo <= score <= hi:
            raise BadRequest(f"the score must lie between {lo:g} and {hi:g}")
        score = round(score, 2)
    reviewer = (_clean(str(fields.get("reviewer") or ""), MAX_REVIEWER_CHARS, False)
                or request.app.state.config.reviewer)
    note = _clean(str(fields.get("note") or ""), MAX_NOTE_CHARS, True)
    picked = fields.get("picked") if fields.get("picked") in ("sample", "queue") else "browse"
    item = next((it for it in data.by_q.get(qid, []) if it.run is rv), None)
    reasons = item.reasons if item is not None and picked == "queue" else ()
    try:
        review = make_review(j, verdict, score, reviewer, note, picked=picked,  # type: ignore[arg-type]
                             reasons=reasons)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    data.add_review(rv, review)
    return rv, review


async def _body(request: Request, ctype: str, asked: str) -> bytes:
    """The body of a POST, refused (415, saying what to send) unless its Content-Type is ``ctype``."""
    await _data(request)
    body = await read_body(request, request.app.state.config.max_body)
    if request.headers.get("content-type", "").split(";")[0].strip() != ctype:
        raise BadRequest(f"send {asked}", 415)
    return body


async def review_form(request: Request) -> Response:
    body = await _body(request, "application/x-www-form-urlencoded",
                       "the review form (application/x-www-form-urlencoded)")
    form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
    rv, review = _submit(request, form)
    target = _local(form.get("after"), _pages(request).links.question(review.question_id, at=rv.key))
    path, _, rest = target.partition("#")
    sep = "&" if "?" in path else "?"
    target = f"{path}{sep}saved={rv.key}:{review.question_id}" + (f"#{rest}" if rest else "")
    return RedirectResponse(target, status_code=303)


async def api_review(request: Request) -> Response:
    body = await _body(request, "application/json", "JSON (Content-Type: application/json)")
    try:
        fields = safejson.loads(body or b"{}")
    except ValueError:
        raise BadRequest("the body is not JSON") from None
    if not isinstance(fields, dict):
        raise BadRequest("send a JSON object")
    rv, review = _submit(request, fields)
    assert rv.reviews is not None
    return JSONResponse({"ok": True, "review": review_json(review), "file": str(rv.reviews.path)})


# -- API ---------------------------------------------------------------------------------------------


async def api_ready(request: Request) -> Response:
    return JSONResponse({"ready": request.app.state.data.ready})


async def api_runs(request: Request) -> Response:
    data = await _data(request)
    data.refresh_reviews()
    out = []
    for rv in data.runs:
        s = rv.summary
        out.append({
            "key": rv.key, "label": rv.label, "model": rv.model, "judge": rv.judge,
            "rubric": rv.run.rubric_id, "dir": str(rv.run.dir), "baseline": rv.is_baseline,
            **{k: s.get(k) for k in ("overall", "overall_ci", "reasoning", "reasoning_ci", "language",
                                     "language_ci", "n", "n_ok", "n_failed", "failed_by_status")},
            "categories": {c: {k: v.get(k) for k in ("score", "ci", "n", "n_failed")}
                           for c, v in (s.get("categories") or {}).items()},
            "agreement": rv.agreement().as_dict(),
            "comparison": _comparison_json(rv.comparison),
            "answers_note": rv.answers_note,
        })
    return JSONResponse({"runs": out, "notes": data.notes})


async def api_judgments(request: Request) -> Response:
    data = await _data(request)
    mode = request.query_params.get("queue")
    query = _query(request, "sample" if mode == "sample" else "queue" if mode in ("1", "true") else None)
    try:
        limit = max(1, min(1000, int(request.query_params.get("limit") or 100)))
    except ValueError:
        limit = 100
    started = time.perf_counter()
    items = data.select(query)
    elapsed = time.perf_counter() - started
    links = _pages(request).links
    rows = []
    for it in items[(query.page - 1) * limit: query.page * limit]:
        st = it.review()
        rows.append({"question_id": it.qid, "run": it.run.key, "model": it.j.model,
                     "category": it.j.category, "subcategory": it.j.subcategory,
                     "status": it.j.status.value, "overall": it.score, "delta": it.delta,
                     "spread": it.spread, "flip": it.flip, "inconsistent": it.inconsistent,
                     "attempts": it.j.attempts, "turns": it.n_turns,
                     "reviewed": None if st is None else ("stale" if st.stale else "yes"),
                     "review_score": st.review.score if st else None,
                     "priority": it.priority, "reasons": list(it.reasons),
                     "url": links.question(it.qid, query, it.run.key)})
    return JSONResponse({"total": len(items), "page": query.page, "limit": limit, "items": rows,
                         "seconds": round(elapsed, 4)})


async def api_question(request: Request) -> Response:
    data = await _data(request)
    qid = request.path_params["qid"]
    if qid not in data.by_q:
        raise BadRequest(f"no judgment of question {qid} in these runs", 404)
    data.refresh_reviews()
    q = data.question_of(qid)
    runs = []
    for rv in data.runs:
        j = rv.by_qid.get(qid)
        if j is None:
            continue
        assert rv.reviews is not None
        st = rv.reviews.state(j)
        ans = rv.answers.get(qid)
        runs.append({"key": rv.key, "label": rv.label, "baseline": rv.is_baseline,
                     "judgment": j.model_dump(mode="json"), "answer": ans.text if ans else None,
                     "answer_turns": list(ans.turns) if ans else None,  # a dialogue: one reply per turn
                     "answer_note": rv.answers_note if ans is None else None, "delta": rv.qdelta.get(qid),
                     "judges": {name: (m[qid].model_dump(mode="json") if qid in m else None)
                                for name, m in rv.members.items()},
                     "review": review_json(st.review) if st else None, "stale": st.stale if st else None})
    pairs = [p.model_dump(mode="json") | {"folder": str(f.path)} for f, p in data.pairs_by_q.get(qid, [])]
    return JSONResponse({"question": q.model_dump(mode="json") if q else None, "runs": runs, "pairs": pairs})


async def api_reviews(request: Request) -> Response:
    rv = _run(await _data(request), request.path_params["key"])
    assert rv.reviews is not None
    rv.reviews.refresh()
    return JSONResponse({"run": rv.key, "file": str(rv.reviews.path),
                         "reviews": [review_json(r) for r in rv.reviews.reviews],
                         "problems": rv.reviews.problems, "agreement": rv.agreement().as_dict()})


async def api_next(request: Request) -> Response:
    """The next queue stop after (run, question): what a reviewing tool opens next."""
    data = await _data(request)
    query = _query(request, "queue")
    try:
        qid = int(request.query_params.get("question_id") or -1)
    except ValueError:
        qid = -1
    _, nxt, _ = neighbours(data.sequence(query), qid, request.query_params.get("at"))
    if nxt is None:
        return JSONResponse({"next": None})
    return JSONResponse({"next": {"question_id": nxt.qid, "run": nxt.run,
                                  "url": _pages(request).links.question(nxt.qid, query, nxt.run)}})


def _comparison_json(cmp: Any) -> dict[str, Any] | None:
    if cmp is None:
        return None
    rows = []
    for row in cmp.rows:
        t = row.test
        rows.append({"key": row.key, "kind": row.kind, "name": row.name,
                     "base": t.base if t else None, "new": t.new if t else None,
                     "delta": t.delta if t else None, "ci": list(t.ci) if t else None,
                     "p": t.p_value if t else None, "p_holm": row.p_holm, "significant": row.significant,
                     "n": t.n if t else 0})
    return {"baseline": cmp.base_label, "comparable": cmp.comparable, "problems": cmp.problems,
            "n_shared": cmp.n_shared, "rows": rows}


async def http_error(request: Request, exc: Exception) -> Response:
    """Any refusal (``BadRequest`` included): JSON under /api/, the error page elsewhere."""
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
    return HTMLResponse(_pages(request).error_page(exc.status_code, str(exc.detail)), exc.status_code)


ROUTES = [
    Route("/", leaderboard),
    Route("/run/{key}", run_page),
    Route("/probe/{key}", probe_page),
    Route("/list", list_page),
    Route("/queue", queue_page),
    Route("/q/{qid:int}", question_page),
    Route("/pairwise", pairwise_page),
    Route("/review", review_form, methods=["POST"]),
    Route("/api/ready", api_ready),
    Route("/api/runs", api_runs),
    Route("/api/judgments", api_judgments),
    Route("/api/question/{qid:int}", api_question),
    Route("/api/reviews/{key}", api_reviews),
    Route("/api/review", api_review, methods=["POST"]),
    Route("/api/next", api_next),
    Mount("/static", app=StaticFiles(directory=str(STATIC)), name="static"),
]


def create_app(data: ViewData, config: ServeConfig) -> Starlette:
    """The viewer's ASGI app (wrapped in ``Guard``): ``ROUTES`` over this data and config, which the
    handlers read from ``app.state``. Handlers are async and run on one event loop, so the in-memory
    indexes are never touched by two requests at once."""
    app = Starlette(routes=ROUTES, exception_handlers={HTTPException: http_error})
    app.state.data, app.state.config, app.state.first_page = data, config, threading.Event()
    app.state.pages = Pages(data, Settings(read_only=config.read_only, reviewer=config.reviewer))
    app.state.pages.env.get_template("leaderboard.html")  # the first page anyone opens: compiled before serving
    app.add_middleware(Guard, config=config)
    return app


# ================================================================================================
# Serving
# ================================================================================================


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port); port 0 picks a free one. Raises OSError (e.g. in use)."""
    info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(info[0], socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(info[4])
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _warm_up(app: Starlette, data: ViewData) -> None:
    """The second loading phase and the template compilation, on a thread. It lets the first
    leaderboard go out first (or waits half a second at most): sharing the interpreter with it would
    only delay the page everybody opens first. A page that needs the rest waits for it anyway."""
    def work() -> None:
        app.state.first_page.wait(0.5)
        data.warm()
        app.state.pages.precompile()
    threading.Thread(target=work, name="alignbench-view-warm", daemon=True).start()


def serve(data: ViewData, config: ServeConfig, ready: Callable[[ServeConfig], None] | None = None) -> None:
    """Bind, call ``ready`` (which prints the URL), serve until Ctrl-C."""
    background = Background(data, config)  # its server, run here on the main thread (Ctrl-C stops it)
    _warm_up(background.app, data)
    if ready is not None:
        ready(config)
    background.server.run(sockets=[background.sock])


class Background:
    """The real server on a thread (tests, benchmarks, notebooks): ``with Background(data, cfg) as url``."""

    def __init__(self, data: ViewData, config: ServeConfig, bind_host: str | None = None) -> None:
        self.data = data
        self.config = config
        self.bind_host = bind_host or config.host
        self.sock = bind(self.bind_host, config.port)
        config.port = self.sock.getsockname()[1]
        self.app = create_app(data, config)
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(
            self.app, log_level="warning", access_log=False, proxy_headers=False, server_header=False,
            lifespan="off", h11_max_incomplete_event_size=32 * 1024, timeout_graceful_shutdown=2))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> str:
        _warm_up(self.app, self.data)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the viewer did not start")
            time.sleep(0.01)
        local = is_loopback(self.bind_host) or self.bind_host in ("0.0.0.0", "")
        host = "127.0.0.1" if local else self.bind_host
        return f"http://{host}:{self.config.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
