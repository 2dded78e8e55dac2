"""A judge model run in this process with transformers (CritiqueLLM-6B or any local chat model).

The runner calls ``complete`` once per request, concurrently. This backend turns those calls into
batched ``generate`` calls with a micro-batcher: requests wait in a queue; a single worker takes the
oldest waiting request plus the waiting requests closest to it in length (up to ``batch_size``, same
decoding settings), left-pads them, runs one ``generate`` in a thread (always the same one) so the event loop stays free,
and resolves each request's future with its own continuation. ``capacity`` is twice the batch size
so that the next batch is already queued while one runs.

Why the details:

* Greedy by default (temperature 0 -> ``do_sample=False``): a judge should give the same verdict to
  the same prompt. Sampled retries (after an unparseable judgment) seed torch from the request.
* A request marked ``completion`` (``prompt_format: completion``, the ``critiquellm-hf`` preset) is the bare
  string tokenized as CritiqueLLM's own ``inference.py`` tokenizes it (``tokenizer(text)``, special tokens
  added, no chat template). Any other prompt goes through the tokenizer's chat template when it has one
  (``chat_template: off`` skips it); otherwise the messages' text is used as is.
* Decoded text is only what the model generated (the prompt is sliced off by token position).
* A prompt that does not fit the model's context (with a little room to answer) is refused with
  ``too_long`` before any compute; the run goes on.
* The model loads on the first uncached request, so a fully cached re-run never imports torch.
* ``torch``/``transformers`` are optional (``pip install 'alignbench[local]'``) and imported lazily.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import itertools
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alignbench.judges.base import ModelCallError, completion_prompt, merge_system
from alignbench.types import ModelReply, ModelRequest, TokenProbs, Usage

INSTALL_HINT = "pip install 'alignbench[local]'"
REQUIRED_PACKAGES = ("torch", "transformers")
MIN_ROOM = 64  # tokens a prompt must leave free for the verdict (or max_tokens, if smaller)
OPTIONS = {"device", "dtype", "batch_size", "trust_remote_code", "chat_template", "max_context", "revision"}
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth", ".model")
_SAMPLE = 1 << 20  # bytes hashed from each end of a big weight file


class LocalJudgeError(ValueError):
    """The local model cannot be used as asked (missing path, bad option, packages absent)."""


def missing_packages() -> list[str]:
    """The heavy packages this backend needs that are not installed (checked without importing)."""
    return [name for name in REQUIRED_PACKAGES if importlib.util.find_spec(name) is None]


# -- where the model comes from ------------------------------------------------------------------

@dataclass(frozen=True)
class ModelSource:
    """A model resolved to a local folder (or a .gguf file in one) and a content revision."""

    spec: str  # the hub id as given, or the absolute path
    folder: Path
    gguf_file: str | None
    revision: str  # hub commit hash, or a digest of the folder's files

    @property
    def fingerprint(self) -> str:
        return f"hf:{self.spec}@{self.revision[:16]}"


def _looks_like_path(spec: str) -> bool:
    return spec.startswith(("/", ".", "~")) or spec.count("/") > 1 or spec.endswith(".gguf") or "\\" in spec


def _file_digest(path: Path, h: Any) -> None:
    size = path.stat().st_size
    h.update(f"{path.name}\0{size}\0".encode())
    with path.open("rb") as fh:
        if size <= 4 * _SAMPLE:
            h.update(fh.read())
        else:  # big weights: both ends (the header and the last tensors) identify them cheaply
            h.update(fh.read(_SAMPLE))
            fh.seek(size - _SAMPLE)
            h.update(fh.read(_SAMPLE))


def folder_digest(folder: Path, only: str | None = None) -> str:
    """A content digest of a model folder: configs and tokenizer files in full, weights sampled.

    It changes when the weights, the config, the tokenizer or the chat template change, so cached
    replies of an older checkpoint in the same folder are never reused; hashing only the ends of
    multi-GB weight files keeps it fast.
    """
    h = hashlib.sha256()
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    for path in files:
        if path.suffix == ".gguf" and only is not None and path.name != only:
            continue
        if path.suffix in _WEIGHT_SUFFIXES or path.suffix in (".json", ".jinja", ".py", ".txt", ".tiktoken"):
            _file_digest(path, h)
    return h.hexdigest()


def resolve_source(spec: str, revision: str | None = None) -> ModelSource:
    """Turn ``PATH_OR_ID`` into a local folder; never downloads unless it is a hub id not yet cached
    and the hub is reachable (exactly what ``from_pretrained`` would do)."""
    path = Path(spec).expanduser()
    if path.exists():
        path = path.resolve()
        if path.is_file():
            if path.suffix != ".gguf":
                raise LocalJudgeError(f"hf model {spec} is a file but not a .gguf; give the model folder")
            return ModelSource(str(path), path.parent, path.name, folder_digest(path.parent, only=path.name))
        if not (path / "config.json").is_file():
            ggufs = sorted(path.glob("*.gguf"))
            if len(ggufs) == 1:
                return ModelSource(str(path), path, ggufs[0].name, folder_digest(path, only=ggufs[0].name))
            raise LocalJudgeError(f"hf model folder {spec} has no config.json (not a transformers model folder)")
        return ModelSource(str(path), path, None, folder_digest(path))
    if _looks_like_path(spec):
        raise LocalJudgeError(f"hf model path {spec} does not exist")
    try:
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(spec, revision=revision))
    except Exception as exc:  # offline and not cached, unknown repo, no network …
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise LocalJudgeError(
            f"hf model {spec}: no such folder, and not available from the Hugging Face hub ({reason}); "
            f"download it first (huggingface-cli download {spec}) or pass a local folder") from None
    return ModelSource(spec, folder, None, folder.name)


# -- the judge -----------------------------------------------------------------------------------

@dataclass
class BatchStats:
    """What the micro-batcher did (for tests, benchmarks and diagnostics)."""

    generate_calls: int = 0
    batch_sizes: list[int] = field(default_factory=list)
    prompt_tokens: int = 0
    padding_tokens: int = 0
    completion_tokens: int = 0
    generate_seconds: float = 0.0
    load_seconds: float = 0.0


@dataclass
class _Pending:
    seq: int
    request: ModelRequest
    ids: list[int]
    future: asyncio.Future


class LocalModel:
    """A transformers causal LM as a judge, batched behind the one-request-at-a-time protocol."""

    backend = "hf"

    def __init__(self, name: str, source: ModelSource, *, device: str = "auto", dtype: str = "auto",
                 batch_size: int = 8, trust_remote_code: bool = False, chat_template: str = "auto",
                 max_context: int | None = None) -> None:
        if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
            raise LocalJudgeError(f"--device must be auto, cpu or cuda (got {device!r})")
        if dtype not in ("auto", "float32", "float16", "bfloat16"):
            raise LocalJudgeError(f"dtype must be auto, float32, float16 or bfloat16 (got {dtype!r})")
        if chat_template not in ("auto", "off"):
            raise LocalJudgeError(f"chat_template must be auto or off (got {chat_template!r})")
        if int(batch_size) < 1:
            raise LocalJudgeError(f"--batch-size must be at least 1 (got {batch_size})")
        self.name = name
        self.source = source
        self.device_option = device
        self.dtype_option = dtype
        self.batch_size = int(batch_size)
        self.trust_remote_code = bool(trust_remote_code)
        self.chat_template = chat_template
        self.max_context = max_context
        self.stats = BatchStats()
        self.model: Any = None
        self.tokenizer: Any = None
        self.device: str | None = None
        self.context: int | None = None
        self._eos: list[int] = []
        self._vocab: Any = None  # constrained.Vocabulary, built the first time structured output is asked for
        self._queue: list[_Pending] = []
        self._seq = itertools.count()
        self._arriving = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self._load_lock: asyncio.Lock | None = None
        self._load_error: ModelCallError | None = None
        # Every torch call runs on this one thread: OpenMP keeps one team of workers per calling
        # thread, and teams left spinning on other threads would halve the speed of a small machine.
        self._torch_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alignbench-torch")

    @classmethod
    def from_options(cls, name: str, model: str, options: dict[str, Any]) -> LocalModel:
        """Build from a preset/CLI ``options`` dict (unknown keys are an error, not ignored)."""
        unknown = set(options) - OPTIONS
        if unknown:
            raise LocalJudgeError(f"judge {name}: unknown hf option(s) {', '.join(sorted(unknown))}; "
                                  f"known: {', '.join(sorted(OPTIONS))}")
        missing = missing_packages()
        if missing:
            raise LocalJudgeError(f"judge {name} runs the model in this process and needs "
                                  f"{' and '.join(missing)}: {INSTALL_HINT}")
        opts = dict(options)
        source = resolve_source(model, revision=opts.pop("revision", None))
        return cls(name, source, **opts)

    @property
    def fingerprint(self) -> str:
        return self.source.fingerprint

    @property
    def capacity(self) -> int:
        return 2 * self.batch_size

    @property
    def urls(self) -> list[str]:
        return []

    async def check(self) -> list[str]:
        return []  # in this process: nothing to reach

    # -- loading ---------------------------------------------------------------------------------

    def _load(self) -> None:
        """Load tokenizer and model (blocking; runs in a thread)."""
        started = time.perf_counter()
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        if not sys.stderr.isatty():  # no tqdm bars in logs and pipes (alignbench shows its own progress)
            hf_logging.disable_progress_bar()
        device = self.device_option
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise LocalJudgeError("--device cuda was asked but torch sees no CUDA device")
        if self.dtype_option != "auto":
            dtype = getattr(torch, self.dtype_option)
        elif device.startswith("cuda"):
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        else:
            dtype = torch.float32
        common: dict[str, Any] = {"trust_remote_code": self.trust_remote_code}
        if self.source.gguf_file:
            common["gguf_file"] = self.source.gguf_file
        tokenizer = AutoTokenizer.from_pretrained(self.source.folder, **common)
        # transformers renamed ``torch_dtype`` to ``dtype`` in 4.56; the extra allows older releases
        dtype_key = "dtype" if _version_tuple(transformers.__version__) >= (4, 56) else "torch_dtype"
        kwargs: dict[str, Any] = {**common, dtype_key: dtype}
        if device.startswith("cuda"):
            kwargs["device_map"] = device
        model = AutoModelForCausalLM.from_pretrained(self.source.folder, **kwargs)
        if not device.startswith("cuda"):
            model = model.to(device)
        model.eval()
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            if tokenizer.eos_token_id is None:
                raise LocalJudgeError(f"tokenizer of {self.source.spec} has neither a pad nor an eos token")
            tokenizer.pad_token = tokenizer.eos_token
        eos = model.generation_config.eos_token_id
        eos = list(eos) if isinstance(eos, (list, tuple)) else ([eos] if eos is not None else [])
        if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos:
            eos.append(tokenizer.eos_token_id)
        self.context = self.max_context or _context_length(model.config, tokenizer)
        self._eos = eos
        self.tokenizer, self.model, self.device = tokenizer, model, device
        self.stats.load_seconds = time.perf_counter() - started

    async def load(self) -> None:
        """Load the model once (later calls return at once)."""
        self._ensure_runtime()
        assert self._load_lock is not None
        async with self._load_lock:
            if self.model is not None:
                return
            if self._load_error is not None:  # every waiting request gets the same error, one load only
                raise self._load_error
            try:
                await self._in_torch_thread(self._load)
            except Exception as exc:
                message = str(exc) if isinstance(exc, LocalJudgeError) else \
                    f"cannot load hf model {self.source.spec}: {type(exc).__name__}: {exc}"
                self._load_error = ModelCallError(message, retryable=False, fatal=True)
                raise self._load_error from None

    async def _in_torch_thread(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._torch_thread, fn, *args)

    # -- prompts ---------------------------------------------------------------------------------

    def encode(self, request: ModelRequest) -> list[int]:
        """Token ids of the prompt: a text completion's bare string as is; else the chat template if the
        tokenizer has one (and ``chat_template`` is not off), else the raw text."""
        messages = [dict(m) for m in request.messages]
        tok = self.tokenizer
        if not request.completion and self.chat_template == "auto" and getattr(tok, "chat_template", None):
            try:
                text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            except Exception:  # e.g. a template that rejects the system role: fold it into the user turn
                text = tok.apply_chat_template(merge_system(messages), tokenize=False,
                                               add_generation_prompt=True)
            return list(tok(text, add_special_tokens=False)["input_ids"])
        return list(tok(completion_prompt(messages), add_special_tokens=True)["input_ids"])

    # -- the micro-batcher -----------------------------------------------------------------------

    def _ensure_runtime(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop (another asyncio.run): fresh primitives
            self._loop = loop
            self._wake = asyncio.Event()
            self._load_lock = asyncio.Lock()
            self._worker = None
            self._queue = []
            self._arriving = 0

    async def complete(self, request: ModelRequest) -> ModelReply:
        self._ensure_runtime()
        assert self._loop is not None and self._wake is not None
        self._arriving += 1  # the worker holds a part-full batch while requests are still on their way
        try:
            await self.load()
            ids = self.encode(request)
            assert self.context is not None
            room = min(request.decoding.max_tokens, MIN_ROOM)
            if len(ids) + room > self.context:
                raise ModelCallError(f"prompt too long for the judge: {len(ids)} tokens + {room} to answer "
                                     f"> context {self.context}", retryable=False, too_long=True,
                                     endpoint=f"local:{self.device}")
            future = self._loop.create_future()
            self._queue.append(_Pending(next(self._seq), request, ids, future))
            if self._worker is None or self._worker.done():
                self._worker = self._loop.create_task(self._work())
        finally:
            self._arriving -= 1
            self._wake.set()
        return await future

    def _take_batch(self) -> list[_Pending]:
        """The oldest waiting request (so none starves) and the waiting ones nearest to it in length."""
        self._queue = [p for p in self._queue if not p.future.done()]
        if not self._queue:
            return []
        anchor = self._queue[0]
        same = [p for p in self._queue if p.request.decoding == anchor.request.decoding]
        same.sort(key=lambda p: (abs(len(p.ids) - len(anchor.ids)), p.seq))
        batch = same[:self.batch_size]
        taken = {id(p) for p in batch}
        self._queue = [p for p in self._queue if id(p) not in taken]
        batch.sort(key=lambda p: -len(p.ids))
        return batch

    async def _work(self) -> None:
        assert self._wake is not None
        while True:
            if not self._queue or (self._arriving and len(self._queue) < self.batch_size):
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = self._take_batch()
            if not batch:
                continue
            try:
                replies = await self._in_torch_thread(self._generate, batch)
            except Exception as exc:  # one bad batch (e.g. out of memory) fails its requests, not the run
                error = ModelCallError(f"generate failed on a batch of {len(batch)}: {type(exc).__name__}: {exc}",
                                       retryable=False, endpoint=f"local:{self.device}")
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(error)
                continue
            for p, reply in zip(batch, replies, strict=True):
                if not p.future.done():
                    p.future.set_result(reply)

    def _generate(self, batch: list[_Pending]) -> list[ModelReply]:
        """One left-padded ``generate`` for the batch (blocking; runs in a thread)."""
        import torch
        from transformers import GenerationConfig, LogitsProcessorList

        from alignbench.judges.constrained import ConstrainedProcessor, TopKRecorder

        started = time.perf_counter()
        tok, model = self.tokenizer, self.model
        padded = tok.pad({"input_ids": [p.ids for p in batch]}, padding=True, return_tensors="pt")
        inputs = {k: v.to(model.device) for k, v in padded.items()}
        width = inputs["input_ids"].shape[1]
        dec = batch[0].request.decoding
        assert self.context is not None
        max_new = max(1, min(dec.max_tokens, self.context - width))
        settings: dict[str, Any] = {"max_new_tokens": max_new, "pad_token_id": tok.pad_token_id,
                                    "eos_token_id": self._eos or None, "bos_token_id": tok.bos_token_id}
        if dec.temperature > 0:
            settings.update(do_sample=True, temperature=dec.temperature, top_p=dec.top_p or 1.0, top_k=0)
            torch.manual_seed(dec.seed or 0)
        else:
            settings.update(do_sample=False)
        machines, refused = self._machines(batch, max_new)
        processors: list[Any] = []
        if any(m is not None for m in machines):
            processors.append(ConstrainedProcessor(machines, width, self._eos))
        k = max((p.request.logprobs or 0) for p in batch)
        recorder = TopKRecorder(k) if k else None
        if recorder is not None:
            processors.append(recorder)
        extra = {"logits_processor": LogitsProcessorList(processors)} if processors else {}
        with torch.inference_mode():
            out = model.generate(**inputs, generation_config=GenerationConfig(**settings), **extra)
        replies = []
        eos = set(self._eos)
        for r, (p, row) in enumerate(zip(batch, out[:, width:].tolist(), strict=True)):
            cut = next((i + 1 for i, t in enumerate(row) if t in eos), len(row))
            full = tok.decode(row[:cut], skip_special_tokens=True)
            text = full.strip()
            ended = any(t in eos for t in row[:cut])  # no end token: generation stopped at max_new_tokens
            tokens = None
            if recorder is not None and p.request.logprobs:
                tokens = self._token_probs(recorder, r, row[:cut], len(full) - len(full.lstrip()), p.request.logprobs)
            structured = fallback = None
            if p.request.response_schema is not None:
                structured, fallback = ("constrained", None) if machines[r] is not None else (None, refused[r])
            replies.append(ModelReply(text=text, usage=Usage(prompt_tokens=len(p.ids), completion_tokens=cut),
                                      model=self.source.spec, endpoint=f"local:{self.device}",
                                      finish_reason="stop" if ended else "length", logprobs=tokens,
                                      structured=structured, structured_fallback=fallback))
            self.stats.prompt_tokens += len(p.ids)
            self.stats.padding_tokens += width - len(p.ids)
            self.stats.completion_tokens += cut
        self.stats.generate_calls += 1
        self.stats.batch_sizes.append(len(batch))
        self.stats.generate_seconds += time.perf_counter() - started
        return replies

    def _machines(self, batch: list[_Pending], max_new: int) -> tuple[list[Any], list[str | None]]:
        """One schema machine per row that asks for structured output (None for the others), and why a row
        that asked could not have one (a schema outside the verdict shape)."""
        from alignbench.judges.constrained import SchemaMachine, UnsupportedSchema, Vocabulary, compile_schema

        machines: list[Any] = []
        refused: list[str | None] = []
        for p in batch:
            schema = p.request.response_schema
            if schema is None:
                machines.append(None)
                refused.append(None)
                continue
            try:
                segments = compile_schema(schema)
            except UnsupportedSchema as exc:
                machines.append(None)
                refused.append(f"the transformers backend constrains only verdict-shaped schemas ({exc})")
                continue
            if self._vocab is None:
                self._vocab = Vocabulary(self.tokenizer)
            machines.append(SchemaMachine(self._vocab, segments, max_new, self._eos))
            refused.append(None)
        return machines, refused

    def _token_probs(self, recorder: Any, row: int, ids: list[int], lead: int, k: int) -> tuple[TokenProbs, ...] | None:
        """The recorded alternatives at the positions that can hold a score, with offsets into the reply
        text (``lead``: whitespace stripped from its start). Offsets come from decoding the prefix, not from
        adding up token texts: a character split over two byte tokens is one character of the reply."""
        from alignbench.logprobs import score_positions

        tok = self.tokenizer
        texts = [tok.decode([t], skip_special_tokens=True) for t in ids]
        out = []
        for i in score_positions(texts):
            offset = len(tok.decode(ids[:i], skip_special_tokens=True)) - lead
            top_ids, top_lp = recorder.steps[i][0][row].tolist(), recorder.steps[i][1][row].tolist()
            top = tuple((tok.decode([a]), b) for a, b in zip(top_ids[:k], top_lp[:k], strict=True) if b > float("-inf"))
            # not among the k kept (sampled): a floor, not -inf, so the record stays plain JSON
            chosen = next((b for a, b in zip(top_ids, top_lp, strict=True) if a == ids[i]), -100.0)
            if offset >= 0:
                out.append(TokenProbs(offset=offset, token=texts[i], logprob=chosen, top=top))
        return tuple(out) or None

    async def aclose(self) -> None:
        """Stop the worker; the model stays loaded for reuse by the same object."""
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        self._worker = None
        for p in self._queue:
            if not p.future.done():
                p.future.cancel()
        self._queue = []


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:3]:
        digits = "".join(itertools.takewhile(str.isdigit, piece))
        parts.append(int(digits or 0))
    return tuple(parts)


def _context_length(config: Any, tokenizer: Any) -> int:
    """The model's context window from its config (names differ by architecture)."""
    for attr in ("max_position_embeddings", "seq_length", "n_positions", "max_sequence_length", "n_ctx"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    value = getattr(tokenizer, "model_max_length", None)
    if isinstance(value, int) and 0 < value < 10_000_000:
        return value
    return 2048


__all__ = ["BatchStats", "LocalModel", "LocalJudgeError", "ModelSource", "folder_digest", "missing_packages",
           "resolve_source"]


def build(config, api_key: str | None) -> LocalModel:  # noqa: ANN001 - a ModelConfig
    """The registry's factory (see ``judges/presets.yaml``); no key: the model runs here."""
    try:
        return LocalModel.from_options(config.name, config.model, config.options)
    except LocalJudgeError as exc:
        from alignbench.judges import ModelConfigError

        raise ModelConfigError(str(exc)) from None
