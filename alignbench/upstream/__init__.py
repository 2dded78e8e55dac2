"""Upstream checkouts: the official tools' own files, read at run time from where the user keeps them.

Why: a score only stands next to a published leaderboard when the judge was asked exactly as the
leaderboard's own scripts ask it. We may not ship THUDM's, FastChat's or CritiqueLLM's prompt text, and we
do not need to: a user who runs AlignBench or MT-Bench already has a clone. ``--upstream PATH`` (API:
``upstream=``) points at that clone; :func:`open_checkout` recognises which tool it is from its layout, and
the protocol modules beside this one read their prompts and configs from it, never from our package.

A checkout whose files differ from the versions we know (by SHA-256, a fact, not their text) still works
when its structure parses, and is labelled *modified*; one that does not parse fails with one error naming
the file, before any call.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

Kind = Literal["alignbench", "fastchat", "critiquellm"]

# What marks each kind of checkout: files relative to the folder the user points at. A FastChat user may
# point at the repository root or at ``fastchat/llm_judge`` itself; both are accepted.
_MARKERS: dict[Kind, tuple[tuple[str, ...], ...]] = {
    "alignbench": (("judge.py", "config/dimension_set.json"),),
    "fastchat": (("fastchat/llm_judge/data/judge_prompts.jsonl",), ("data/judge_prompts.jsonl", "common.py")),
    "critiquellm": (("inference/prompts.py",), ("prompts.py", "inference.py")),
}
_ROOT_OFFSET: dict[Kind, tuple[str, ...]] = {
    "alignbench": ("",),
    "fastchat": ("fastchat/llm_judge", ""),
    "critiquellm": ("inference", ""),
}


class UpstreamError(ValueError):
    """A checkout is missing, of an unknown kind, or one of its files does not parse (the file is named)."""


@dataclass(frozen=True)
class Checkout:
    """A recognised clone: its kind, the folder the user gave, and the folder its protocol files live in
    (``fastchat/llm_judge`` for FastChat, ``inference`` for CritiqueLLM, the root for AlignBench)."""

    kind: Kind
    root: Path
    base: Path

    def file(self, relative: str) -> Path:
        """A file of the checkout, relative to :attr:`base`; a missing one is an :class:`UpstreamError`."""
        path = self.base / relative
        if not path.is_file():
            raise UpstreamError(f"{path}: not found in the {self.kind} checkout at {self.root}")
        return path


def open_checkout(path: str | Path, expect: Kind | None = None) -> Checkout:
    """Recognise the checkout at ``path`` (AlignBench, FastChat or CritiqueLLM) from its layout.

    ``expect`` names the kind a caller needs; another kind is then an error that says which it found.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise UpstreamError(f"{root}: no such folder (give the path of your clone of THUDM/AlignBench, "
                            "lm-sys/FastChat or thu-coai/CritiqueLLM)")
    for kind, alternatives in _MARKERS.items():
        for markers, offset in zip(alternatives, _ROOT_OFFSET[kind], strict=False):
            if all((root / m).is_file() for m in markers):
                found = Checkout(kind=kind, root=root, base=(root / offset) if offset else root)
                if expect is not None and kind != expect:
                    raise UpstreamError(f"{root}: a {kind} checkout, but a {expect} checkout is needed here")
                return found
    raise UpstreamError(f"{root}: not a checkout of THUDM/AlignBench (judge.py, config/), lm-sys/FastChat "
                        "(fastchat/llm_judge/) or thu-coai/CritiqueLLM (inference/prompts.py)")


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes: what a manifest records and what tells a modified checkout."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- protocols: kind -> the module that builds it -------------------------------------------------

class UpstreamProtocol(Protocol):
    """What ``score``, ``compare`` and ``prompt`` need of a checkout's protocol: ``alignbench_official.
    OfficialAlignBench`` (THUDM's ``judge.py``) and ``fastchat_mtbench.FastChat`` (FastChat's ``gen_judgment.py``).

    The ordinary plan → engine → parse → aggregate path runs with it: ``rubric()`` names categories and the
    verdict convention, ``load_questions`` reads the checkout's question format, ``plan_single`` (and, where the
    tool has a pairwise mode, ``plan_pairs``; otherwise it refuses with an UpstreamError) builds every request exactly as the tool's script does, ``finish_summary``
    adds the tool's own figures. ``record()`` goes into the run's manifest (``run.upstream``) and is what
    :func:`protocol_label` reads; ``judge_config`` applies the tool's decoding and refuses what it never sends."""

    name: str
    default_judge: str  # the judge preset when none is given
    default_judge_model: str | None  # and the model it is asked for (None: the preset's), unless --judge-model
    parse_retries: int | None  # fresh samples after an unparseable reply (None: the --parse-retries setting)

    @property
    def default_questions(self) -> Path | None: ...
    def record(self) -> dict[str, Any]: ...
    def rubric(self) -> Any: ...
    def judge_config(self, config: Any, settings: Any) -> Any: ...
    def load_questions(self, path: str | Path, rubric: Any) -> list[Any]: ...
    def plan_single(self, pairs: Any, rubric: Any, config: Any) -> list[Any]: ...
    def finish_summary(self, summary: Any, judgments: Any, rubric: Any, seed: int) -> Any: ...
    def plan_pairs(self, pairs: Any, rubric: Any, config: Any) -> list[Any]: ...
    def finish_pairwise(self, summary: dict[str, Any], judgments: Any, seed: int) -> dict[str, Any]: ...


# The one branch point on the checkout's kind: "module:function" taking a Checkout and returning an
# UpstreamProtocol. A kind not listed here is recognised by open_checkout but has no ``--upstream`` protocol yet.
PROTOCOL_BUILDERS: dict[str, str] = {
    "alignbench": "alignbench.upstream.alignbench_official:load",
    "fastchat": "alignbench.upstream.fastchat_mtbench:open_fastchat",
}


def load_protocol(path: str | Path) -> UpstreamProtocol:
    """The judge protocol of the checkout at ``path``, every file of it read, parsed and hashed now (before
    any call): THUDM/AlignBench's ``judge.py``, or whatever :data:`PROTOCOL_BUILDERS` has for its kind."""
    checkout = open_checkout(path)
    target = PROTOCOL_BUILDERS.get(checkout.kind)
    if target is None:
        raise UpstreamError(f"{checkout.root}: a {checkout.kind} checkout; alignbench does not score with its "
                            "protocol yet (a THUDM/AlignBench or FastChat clone is read)")
    module, function = target.split(":")
    return getattr(importlib.import_module(module), function)(checkout)


# -- the label of a run's numbers ------------------------------------------------------------------

_LEADERBOARDS = (("mtbench", "MT-Bench"),)  # our rubric's name prefix -> the leaderboard its numbers resemble


def protocol_label(manifest: Any) -> str:
    """What a run's numbers can stand next to, in one line: the one place this label is written (the terminal
    footer, ``summary.json``'s manifest, the Markdown report and the viewer all show this text).

    A run made with an upstream protocol (manifest ``upstream``: ``protocol``, ``file``, ``sha256``,
    ``modified``, ``differs``, ``known``) is "official AlignBench protocol (judge.py @ 0f5ef4d0)" or "MT-Bench
    (FastChat llm_judge @ fd283293)", plus what differs from the known upstream version when modified; a run
    made by ``alignbench import`` (manifest ``imported``) is "imported from <file> (<format>), not re-judged"; a run made with a rubric of ours says that its
    numbers are not comparable with the published leaderboard. ``manifest``: a ``Manifest`` or its dict."""
    get = manifest.get if isinstance(manifest, Mapping) else lambda k, d=None: getattr(manifest, k, d)
    imported = get("imported")
    if isinstance(imported, Mapping) and imported.get("source"):  # alignbench import: judged elsewhere, read here
        sha = f" (sha256 {str(imported['sha256'])[:12]})" if imported.get("sha256") else ""
        return f"imported from {imported['source']} ({imported.get('format', '?')}), not re-judged{sha}"
    record = get("upstream")
    if isinstance(record, Mapping) and record.get("protocol"):
        text = f"{record['protocol']} ({record.get('file', '?')} @ {str(record.get('sha256', ''))[:8] or '?'})"
        if record.get("modified"):
            files = list(record.get("differs") or [])
            verb = "differs" if len(files) == 1 else "differ"
            text += f", modified: {', '.join(files) or 'its files'} {verb} from {record.get('known', 'the known version')}"
        return text
    rubric = str(get("rubric") or "?")
    board = next((b for prefix, b in _LEADERBOARDS if rubric.startswith(prefix)), "AlignBench")
    return (f"rubric {rubric} (alignbench's rubric set, not the official protocol): its numbers are not "
            f"comparable with the published {board} leaderboard")
