"""The official AlignBench protocol, read at run time from the user's clone of THUDM/AlignBench.

Why read ``judge.py`` instead of shipping its prompt: a score stands next to the published leaderboard only
when the judge was asked exactly as THUDM's ``judge.py`` asks it, and we may not ship THUDM's text. The user
already has a clone (the question file comes from there), so we read the prompt from it.

How, without executing the user's file: ``judge.py`` is parsed with :mod:`ast`. In ``prompt_construct`` we
take the prompt template (implicit string concatenation is one constant), the keywords of its
``.format(...)`` call (placeholder -> a ``Sample`` field or the dimension list), the dimension lookup
(``config.category2dimensions(sample.subcategory)``) and the per-dimension line, an f-string in the loop over
``enumerate(dimensions)`` whose expressions are evaluated only when recognised (the index plus a constant, the
dimension, ``config.dimension2def(dim)``). Anything else in that function is refused with the file and line
named, before any call. The dimension sets, definitions and subcategory map are read from the JSON files the
checkout's ``config/multi-dimension.json`` names (``Paths``, relative to the checkout's root, as ``judge.py``
resolves them when run from there), as ``judge.py``'s ``Config`` reads them: subcategory -> answer type ->
dimensions.

Python's own ``str.format`` and ``format()`` then build the prompt from the template, so every question gets
the string ``judge.py`` would build, byte for byte (tests/test_upstream_alignbench.py runs ``judge.py``'s own
function on all 683 questions to check it). It is sent as one user message, no system message, at
temperature 0, to the ``gpt-4`` preset by default; the verdict is read by our parser (``parse.py``), never
``judge.py``'s regex and its -1.

The checkout's files are hashed (SHA-256) and compared with the versions of THUDM/AlignBench @ 5b79d4a (only
the hashes are kept here): a checkout that differs but parses is labelled *modified*; one that does not parse
is one :class:`UpstreamError` naming the file.
"""

from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from pydantic import PrivateAttr

from alignbench import safejson
from alignbench.rubrics import AnswerType, Category, Dimension, Rubric, Templates, load_rubric
from alignbench.types import Question
from alignbench.upstream import Checkout, UpstreamError, sha256_file

NAME = "official AlignBench protocol"
KNOWN_VERSION = "THUDM/AlignBench@5b79d4a"
# SHA-256 of each file this protocol reads, as THUDM/AlignBench @ 5b79d4a (2024-06-17) has it, by role (a
# checkout may keep its configs elsewhere: multi-dimension.json's Paths say where). config/multi-dimension.json
# itself is not compared: users write their API key into it, and only its Paths are read.
KNOWN_SHA256: dict[str, str] = {
    "judge.py": "0f5ef4d0e5009cb991b1fb625384f7c163d64f7910da175da8909e9da4e25c96",
    "dimension_set": "1024f71c275855896c5980032df0e79a7709be3e10817a539c61f4eb57fd515b",
    "dimension_definition": "0a41c759fc9e55437476b38a9e3803425698693c736d74e318b4448616d80988",
    "subcategory_mapping": "429f97d7044a27f329bbdd02ee162b6b3010118389621f71c07bdaaa54f668d2",
}
QUESTIONS = "data/data_v1.1_release.jsonl"  # the question file score uses when none is given
# The judge when none is given: the gpt-4 preset, asked for the model id judge.py sends ("gpt-4", which OpenAI
# resolves to gpt-4-0613, the judge of the published leaderboard); --judge / --judge-model override either.
DEFAULT_JUDGE = "gpt-4"
DEFAULT_JUDGE_MODEL = "gpt-4"

# role -> (key in multi-dimension.json's Paths, the file judge.py's README ships)
_CONFIG_FILES: dict[str, tuple[str, str]] = {
    "dimension_set": ("dimension_set_filepath", "config/dimension_set.json"),
    "dimension_definition": ("dimension_def_filepath", "config/dimension_definition.json"),
    "subcategory_mapping": ("subcategory_mapping", "config/subcategory_question_mapping.json"),
}
_SAMPLE_FIELDS = ("question", "reference", "answer", "category", "subcategory")


# -- judge.py, read with ast --------------------------------------------------------------------

@dataclass(frozen=True)
class _Part:
    """One replacement field of the per-dimension f-string: what it shows (``index``: the loop index plus
    ``offset``; ``dim``; ``definition``), its conversion (``!r`` …) and format spec, applied by Python."""

    what: str
    offset: int = 0
    conversion: int = -1
    spec: str = ""

    def value(self, index: int, dim: str, definitions: dict[str, Any]) -> str:
        raw: Any = index + self.offset if self.what == "index" else dim if self.what == "dim" \
            else definitions.get(dim)  # judge.py's Config.dimension2def: None for an unknown dimension
        if self.conversion != -1:
            raw = {ord("s"): str, ord("r"): repr, ord("a"): ascii}[self.conversion](raw)
        return format(raw, self.spec)


@dataclass(frozen=True)
class PromptConstruct:
    """What ``prompt_construct`` in ``judge.py`` does, as data: the template, where each placeholder's value
    comes from (a ``Sample`` field, or ``None`` for the dimension list), which field picks the dimensions,
    and the per-dimension line (text and :class:`_Part` pieces) appended to ``start`` once per dimension."""

    template: str
    keywords: dict[str, str | None]
    dims_by: str
    start: str
    line: tuple[str | _Part, ...]
    enumerate_start: int = 0

    def dimension_list(self, dims: list[str], definitions: dict[str, Any]) -> str:
        out = self.start
        for index, dim in enumerate(dims, self.enumerate_start):
            out += "".join(p if isinstance(p, str) else p.value(index, dim, definitions) for p in self.line)
        return out


class _Reader:
    """Reads ``prompt_construct`` from a parsed ``judge.py``; every refusal names the file and the line."""

    def __init__(self, path: Path, fn: ast.FunctionDef) -> None:
        self.path, self.fn = path, fn
        args = [a.arg for a in fn.args.args]
        if len(args) < 2:
            self.fail(fn, "prompt_construct should take (sample, config)")
        self.sample, self.config = args[0], args[1]
        self.strings: dict[str, str] = {}  # local name -> its constant string
        self.dims_var: str | None = None
        self.dims_by: str | None = None
        self.acc: str | None = None  # the local the dimension lines are appended to
        self.line: tuple[str | _Part, ...] | None = None
        self.enumerate_start = 0
        self.format_call: tuple[str, dict[str, str | None], ast.AST] | None = None
        self.prompt_var: str | None = None  # the local the formatted prompt is assigned to
        self.returned = False

    def fail(self, node: ast.AST, why: str) -> NoReturn:
        where = f"{self.path} line {getattr(node, 'lineno', '?')}"
        raise UpstreamError(f"{where}: {why}. alignbench reads this function without running it and does not "
                            "recognise this; restore THUDM/AlignBench's prompt_construct or undo the change")

    def string(self, node: ast.AST) -> str | None:
        """A constant string: a literal (implicit concatenation is one), ``a + b`` of such, or a local name."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.string(node.left), self.string(node.right)
            return left + right if left is not None and right is not None else None
        if isinstance(node, ast.Name) and node.id in self.strings:
            return self.strings[node.id]
        return None

    def sample_field(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == self.sample \
                and node.attr in _SAMPLE_FIELDS:
            return node.attr
        return None

    def config_call(self, node: ast.AST, method: str) -> list[ast.expr] | None:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == method \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == self.config and not node.keywords:
            return node.args
        return None

    def read(self) -> PromptConstruct:
        for stmt in self.fn.body:
            self.statement(stmt)
        if self.format_call is None:
            self.fail(self.fn, "prompt_construct has no `prompt = TEMPLATE.format(...)`")
        if not self.returned:
            self.fail(self.fn, "prompt_construct does not return (dimensions, prompt)")
        template, keywords, node = self.format_call  # type: ignore[misc]
        if None in keywords.values() and (self.acc is None or self.line is None or self.dims_by is None):
            self.fail(node, "the dimension list passed to .format(...) is not built by a loop over "
                            "enumerate(config.category2dimensions(sample.subcategory))")
        probe = {k: "" for k in keywords}
        try:
            template.format(**probe)
        except (KeyError, IndexError, ValueError, AttributeError) as exc:
            self.fail(node, f"the prompt template does not format with the keywords given to .format(...) "
                            f"({type(exc).__name__}: {exc})")
        return PromptConstruct(template=template, keywords=keywords, dims_by=self.dims_by or "subcategory",
                               start=self.strings.get(self.acc or "", ""), line=self.line or (),
                               enumerate_start=self.enumerate_start)

    def statement(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):  # a docstring
            return
        if isinstance(stmt, ast.Return):  # run_sample reads `dimensions, prompt = prompt_construct(...)`
            value = stmt.value
            if not (isinstance(value, ast.Tuple) and len(value.elts) == 2 and isinstance(value.elts[1], ast.Name)
                    and self.prompt_var is not None and value.elts[1].id == self.prompt_var):
                self.fail(stmt, "prompt_construct returns something other than (dimensions, prompt), prompt being "
                                "the formatted template")
            self.returned = True
            return
        if self.returned:
            self.fail(stmt, "prompt_construct has statements after its return")
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            self.assign(stmt.targets[0].id, stmt.value, stmt)
            return
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
            self.assign(stmt.target.id, stmt.value, stmt)
            return
        if isinstance(stmt, ast.For):
            self.loop(stmt)
            return
        self.fail(stmt, f"prompt_construct has a statement alignbench does not read: {ast.unparse(stmt)[:80]!r}")

    def assign(self, name: str, value: ast.expr, stmt: ast.stmt) -> None:
        if self.format_call is not None or (name == self.acc and self.line is not None):
            self.fail(stmt, f"{name} is assigned after the {'prompt is formatted' if self.format_call else 'loop'}")
        text = self.string(value)
        if text is not None:
            self.strings[name] = text
            return
        args = self.config_call(value, "category2dimensions")
        if args is not None:
            by = self.sample_field(args[0]) if len(args) == 1 else None
            if by is None:
                self.fail(stmt, "config.category2dimensions(...) is called with something other than a sample field")
            self.dims_var, self.dims_by = name, by
            return
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "format":
            template = self.string(value.func.value)
            if template is None:
                self.fail(stmt, ".format(...) is called on something other than a constant string")
            if value.args:
                self.fail(stmt, ".format(...) takes positional arguments")
            keywords: dict[str, str | None] = {}
            for kw in value.keywords:
                if kw.arg is None:
                    self.fail(stmt, ".format(**...) is not read")
                by = self.sample_field(kw.value)
                if by is None and not (isinstance(kw.value, ast.Name) and kw.value.id == self.acc):
                    self.fail(stmt, f".format({kw.arg}=...) is given neither a sample field nor the dimension list")
                keywords[kw.arg] = by  # type: ignore[index]
            self.format_call = (template, keywords, stmt)  # type: ignore[assignment]
            self.prompt_var = name
            return
        self.fail(stmt, f"an assignment alignbench does not read: {ast.unparse(stmt)[:80]!r}")

    def loop(self, stmt: ast.For) -> None:
        it = stmt.iter
        ok = isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "enumerate" \
            and it.args and isinstance(it.args[0], ast.Name) and it.args[0].id == self.dims_var
        target = stmt.target
        if not ok or not (isinstance(target, ast.Tuple) and len(target.elts) == 2
                          and all(isinstance(e, ast.Name) for e in target.elts)) or stmt.orelse:
            self.fail(stmt, "the loop is not `for index, dim in enumerate(dimensions)` over "
                            "config.category2dimensions(...)")
        call: ast.Call = it  # type: ignore[assignment]
        starts = [*call.args[1:], *(k.value for k in call.keywords)]
        if len(starts) > 1 or any(k.arg != "start" for k in call.keywords) \
                or any(not (isinstance(s, ast.Constant) and type(s.value) is int) for s in starts):
            self.fail(stmt, "enumerate(...) takes something other than a constant start")
        self.enumerate_start = starts[0].value if starts else 0  # type: ignore[attr-defined]
        index, dim = (e.id for e in target.elts)  # type: ignore[attr-defined]
        if len(stmt.body) != 1 or not isinstance(stmt.body[0], ast.AugAssign) \
                or not isinstance(stmt.body[0].op, ast.Add) or not isinstance(stmt.body[0].target, ast.Name) \
                or stmt.body[0].target.id not in self.strings:
            self.fail(stmt, "the loop body is not one `dim_description += f\"...\"` onto a string started before it")
        aug: ast.AugAssign = stmt.body[0]  # type: ignore[assignment]
        self.acc = aug.target.id  # type: ignore[union-attr]
        self.line = self.fstring(aug.value, index, dim)

    def fstring(self, node: ast.expr, index: str, dim: str) -> tuple[str | _Part, ...]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return (node.value,)
        if not isinstance(node, ast.JoinedStr):
            self.fail(node, "the per-dimension line is not an f-string")
        parts: list[str | _Part] = []
        for piece in node.values:  # type: ignore[union-attr]
            if isinstance(piece, ast.Constant):
                parts.append(str(piece.value))
                continue
            if not isinstance(piece, ast.FormattedValue):
                self.fail(node, "the per-dimension line has a part alignbench does not read")
            spec = ""
            if piece.format_spec is not None:
                pieces = piece.format_spec.values  # type: ignore[attr-defined]
                if not all(isinstance(s, ast.Constant) for s in pieces):
                    self.fail(piece, "a format spec in the per-dimension line is not constant")
                spec = "".join(str(s.value) for s in pieces)  # type: ignore[attr-defined]
            parts.append(_Part(*self.expression(piece.value, index, dim), conversion=piece.conversion, spec=spec))
        return tuple(parts)

    def expression(self, node: ast.expr, index: str, dim: str) -> tuple[str, int]:
        """``index``, ``index + k`` (or ``k + index``), ``dim`` or ``config.dimension2def(dim)``; else refused."""
        if isinstance(node, ast.Name) and node.id in (index, dim):
            return ("index", 0) if node.id == index else ("dim", 0)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            for a, b in ((node.left, node.right), (node.right, node.left)):
                if isinstance(a, ast.Name) and a.id == index and isinstance(b, ast.Constant) and type(b.value) is int:
                    return "index", b.value
        args = self.config_call(node, "dimension2def")
        if args is not None and len(args) == 1 and isinstance(args[0], ast.Name) and args[0].id == dim:
            return "definition", 0
        self.fail(node, f"the per-dimension line shows {{{ast.unparse(node)}}}, which alignbench does not evaluate "
                        "(it knows the index plus a constant, the dimension and config.dimension2def(dim))")


def read_judge(path: Path) -> PromptConstruct:
    """``prompt_construct`` of the ``judge.py`` at ``path``, as data; an :class:`UpstreamError` naming the file
    (and the line) when it does not parse or does something this reader does not recognise."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        raise UpstreamError(f"{path}{f' line {line}' if line else ''}: does not parse as Python ({exc}); the "
                            "official AlignBench protocol is read from it") from None
    found = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "prompt_construct"]
    if not found:
        raise UpstreamError(f"{path}: has no top-level function prompt_construct; the official AlignBench protocol "
                            "builds its judge prompt the way that function does")
    return _Reader(path, found[-1]).read()  # the last definition is the one Python would call


# -- config/*.json ------------------------------------------------------------------------------

def _json(path: Path, shape: str, check: Callable[[Any], bool]) -> Any:
    try:
        data = safejson.read_json(path)  # bounded, as every file we did not write
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UpstreamError(f"{path}: not readable as JSON ({exc})") from None
    if not check(data):
        raise UpstreamError(f"{path}: expected {shape}")
    return data


def _strings(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())


def _config_paths(checkout: Checkout) -> dict[str, Path]:
    """Where the checkout's config files are: ``config/multi-dimension.json``'s Paths (relative to the
    checkout's root, where judge.py is run from), else the files THUDM/AlignBench ships."""
    paths: dict[str, Any] = {}
    main = checkout.root / "config" / "multi-dimension.json"
    if main.is_file():
        data = _json(main, "a JSON object", lambda d: isinstance(d, dict))
        paths = data.get("Paths") if isinstance(data.get("Paths"), dict) else {}
    out = {}
    for role, (key, default) in _CONFIG_FILES.items():
        given = paths.get(key)
        out[role] = checkout.root / (given if isinstance(given, str) and given else default)
        if not out[role].is_file():
            raise UpstreamError(f"{out[role]}: not found in the AlignBench checkout at {checkout.root} "
                                f"({'named by config/multi-dimension.json' if given else 'the default'} for {role})")
    return out


# -- the protocol ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class OfficialAlignBench:
    """The official AlignBench protocol of one checkout: its prompt construction and configs, the files' hashes,
    and whether they are the known upstream versions."""

    checkout: Checkout
    construct: PromptConstruct
    dimension_set: dict[str, list[str]]
    definitions: dict[str, Any]
    subcategory_types: dict[str, str]
    files: dict[str, dict[str, str]]  # role -> {path (relative to the checkout when inside it), sha256}
    differs: tuple[str, ...]  # the files whose hashes are not the known upstream versions'
    name: str = NAME
    default_judge: str = DEFAULT_JUDGE
    default_judge_model: str | None = DEFAULT_JUDGE_MODEL
    parse_retries: int | None = None  # judge.py's own loop retries; ours (--parse-retries) stand in for it
    _rubrics: dict[str, Rubric] = field(default_factory=dict, compare=False, repr=False)

    @property
    def modified(self) -> bool:
        return bool(self.differs)

    @property
    def default_questions(self) -> Path | None:
        """The checkout's v1.1 question file, when it has one."""
        path = self.checkout.root / QUESTIONS
        return path if path.is_file() else None

    def dimensions(self, subcategory: str) -> list[str] | None:
        """``Config.category2dimensions``: subcategory -> answer type -> dimensions (None where judge.py has none)."""
        atype = self.subcategory_types.get(subcategory)
        return self.dimension_set.get(atype) if atype is not None else None

    def prompt(self, question: Question, answer: str) -> str:
        """The prompt ``judge.py``'s ``prompt_construct`` builds for this question and answer."""
        if question.multi_turn:
            raise UpstreamError(f"question {question.id} is a dialogue; the official AlignBench protocol judges "
                                "single answers")
        values = {"question": question.question, "reference": question.reference, "answer": answer,
                  "category": question.category, "subcategory": question.subcategory}
        dims = self.dimensions(values[self.construct.dims_by])
        if dims is None:
            raise UpstreamError(f"question {question.id}: {self.construct.dims_by} {values[self.construct.dims_by]!r} "
                                f"has no dimensions in the checkout's config ({self.files['subcategory_mapping']['path']}"
                                f", {self.files['dimension_set']['path']}); judge.py would fail on it")
        listing = self.construct.dimension_list(dims, self.definitions)
        return self.construct.template.format(**{k: listing if by is None else values[by]
                                                 for k, by in self.construct.keywords.items()})

    def messages(self, question: Question, answer: str) -> list[dict[str, str]]:
        """As ``judge.py`` sends it: one user message, no system message."""
        return [{"role": "user", "content": self.prompt(question, answer)}]

    def record(self) -> dict[str, Any]:
        """What a run's manifest keeps (``summary.json`` → ``run.upstream``; read by ``upstream.protocol_label``)."""
        return {"protocol": self.name, "kind": self.checkout.kind, "root": str(self.checkout.root.resolve()),
                "file": "judge.py", "sha256": self.files["judge.py"]["sha256"], "known": KNOWN_VERSION,
                "modified": self.modified, "differs": [self.files[r]["path"] for r in self.differs],
                "files": {f["path"]: f["sha256"] for f in self.files.values()}}

    def rubric(self) -> Rubric:
        """The rubric-like object score plans with: our ``alignbench`` rubric's categories and groups (so
        推理/语言 aggregate as today), the checkout's dimensions and answer types, and its prompts built by
        :meth:`messages`. Its id (``alignbench@official-<judge.py hash>+<hash of every file read>``) is stamped
        on each judgment and enters every cache key, so an edited checkout never reuses another's replies."""
        if "rubric" not in self._rubrics:
            self._rubrics["rubric"] = _official_rubric(self)
        return self._rubrics["rubric"]

    def load_questions(self, path: str | Path, rubric: Rubric) -> list[Question]:
        """AlignBench's question file, read as any other (``data.load_questions``)."""
        from alignbench.data import load_questions

        return load_questions(path, rubric)

    def plan_single(self, pairs: Any, rubric: Rubric, config: Any) -> list[Any]:
        """``scoring.plan``: the rubric's ``upstream`` hook has each prompt built by :meth:`messages`, unclipped."""
        from alignbench.scoring import plan

        return plan(pairs, rubric, config, None)

    def finish_summary(self, summary: Any, judgments: Any, rubric: Rubric, seed: int) -> Any:
        """judge.py's figures are AlignBench's (the summary as built): nothing to add."""
        return summary

    def plan_pairs(self, pairs: Any, rubric: Rubric, config: Any) -> list[Any]:
        """judge.py grades single answers only: ``compare --upstream`` with this clone is refused, before any call."""
        raise UpstreamError(f"{self.checkout.root}: THUDM/AlignBench's judge.py has no pairwise mode; compare "
                            "--upstream takes a FastChat clone (MT-Bench's pair prompts)")

    def finish_pairwise(self, summary: dict[str, Any], judgments: Any, seed: int) -> dict[str, Any]:
        return summary

    def judge_config(self, config: Any, settings: Any = None) -> Any:
        """The judge's settings under this protocol: temperature 0 and the prompt unchanged (no structured-output
        note) are judge.py's; anything else is refused before any call."""
        if config.temperature != 0:
            raise UpstreamError(f"the {self.name} judges at temperature 0 (judge.py); drop --temperature "
                                f"{config.temperature:g}")
        if config.structured:
            raise UpstreamError(f"the {self.name} sends judge.py's prompt as it is; --structured would add to it "
                                "(use --no-structured)")
        return config.model_copy(update={"rubric": "alignbench"})


class _OfficialRubric(Rubric):
    """A rubric whose prompts are built from the checkout (``upstream``), never from templates of ours."""

    _protocol: OfficialAlignBench | None = PrivateAttr(default=None)

    @property
    def upstream(self) -> OfficialAlignBench | None:  # type: ignore[override]
        return self._protocol


def _official_rubric(protocol: OfficialAlignBench) -> Rubric:
    base = load_rubric("alignbench")
    known = {d for dims in protocol.dimension_set.values() for d in dims}
    dimensions = {d: Dimension(id=base.dimensions[d].id if d in base.dimensions else d,
                               short=base.dimensions[d].short if d in base.dimensions else "",
                               definition=str(protocol.definitions.get(d))) for d in sorted(known)}
    answer_types = {t: AnswerType(id=base.answer_types[t].id if t in base.answer_types else t, dimensions=tuple(dims))
                    for t, dims in protocol.dimension_set.items()}
    digest = hashlib.sha256("\n".join(f"{role}:{f['sha256']}" for role, f in sorted(protocol.files.items()))
                            .encode()).hexdigest()
    data = base.model_dump(exclude={"templates", "categories", "dimensions", "answer_types", "subcategory_types",
                                    "category_types", "bands", "rules", "reference_score", "version", "digest",
                                    "description", "reference_categories"})
    rubric = _OfficialRubric(
        **data, version=f"official-{protocol.files['judge.py']['sha256'][:8]}", digest=digest,
        description=f"{protocol.name}, read from {protocol.checkout.root}", templates=Templates(),
        # the question file's own category names: judge.py shows them as they are, so no alias is folded
        categories=tuple(Category(name=c.name, en=c.en, group=c.group) for c in base.categories),
        dimensions=dimensions, answer_types=answer_types,
        subcategory_types={s: t for s, t in protocol.subcategory_types.items() if t in answer_types})
    rubric._protocol = protocol
    return rubric


def load(checkout: Checkout) -> OfficialAlignBench:
    """The official AlignBench protocol of ``checkout``: every file read, parsed and hashed now, so a broken
    checkout fails before anything is judged."""
    judge = checkout.file("judge.py")
    construct = read_judge(judge)
    paths = _config_paths(checkout)
    dimension_set = _json(paths["dimension_set"], "an object of answer type -> list of dimension names",
                          lambda d: isinstance(d, dict) and all(isinstance(v, list) and all(isinstance(x, str) for x in v)
                                                                for v in d.values()))
    definitions = _json(paths["dimension_definition"], "an object of dimension name -> definition",
                        lambda d: isinstance(d, dict))
    mapping = _json(paths["subcategory_mapping"], "an object of subcategory -> answer type", _strings)

    def where(path: Path) -> str:
        try:
            return path.resolve().relative_to(checkout.root.resolve()).as_posix()
        except ValueError:
            return str(path)

    files = {"judge.py": {"path": "judge.py", "sha256": sha256_file(judge)},
             **{role: {"path": where(p), "sha256": sha256_file(p)} for role, p in paths.items()}}
    differs = tuple(role for role, f in files.items() if f["sha256"] != KNOWN_SHA256[role])
    return OfficialAlignBench(checkout=checkout, construct=construct, dimension_set=dimension_set,
                              definitions=definitions, subcategory_types=mapping, files=files, differs=differs)
