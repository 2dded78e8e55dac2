"""Rubric sets: versioned YAML data (taxonomy, dimensions, score bands) plus Jinja templates.

A rubric set is a folder under ``rubrics/`` (shipped inside the wheel as ``alignbench/_rubrics``).
Everything a judge is told lives there, as data; this module only loads and validates it, so that a
misspelled key or a dimension that does not exist fails at load time with the file named, not in
the middle of a paid run.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

if TYPE_CHECKING:
    from alignbench.upstream import UpstreamProtocol

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: 10x faster, same result


class RubricError(ValueError):
    """A rubric set is missing or invalid."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Scale(_Model):
    min: float = 1
    max: float = 10


class Group(_Model):
    name: str
    en: str


class Category(_Model):
    name: str
    en: str
    group: str
    aliases: tuple[str, ...] = ()


class Dimension(_Model):
    id: str
    short: str = ""  # two-character label for narrow table headers
    definition: str


class AnswerType(_Model):
    id: str
    dimensions: tuple[str, ...]


class Band(_Model):
    low: int
    high: int
    text: str


class Templates(_Model):
    system: str | None = None
    user: str | None = None  # a pairwise-only rubric (mtbench-pair) has none: it cannot score one answer
    # Pairwise mode (``alignbench compare``): both answers in one prompt, 助手1 then 助手2. Optional:
    # a rubric without them can only score answers one at a time.
    pairwise_system: str | None = None
    pairwise_user: str | None = None
    # Pairwise mode on multi-turn dialogues: each assistant's side of the dialogue up to the compared turn.
    # Optional: a rubric without them compares single answers only and refuses dialogues before any call.
    pairwise_dialogue_system: str | None = None
    pairwise_dialogue_user: str | None = None


class Section(_Model):
    """A marked part of the judge's text (e.g. 【评估计划】) kept in ``Judgment.sections[id]``."""

    id: str
    title: str


# What a judge asked for structured output is told, appended to the rubric's own prompt (a Jinja string; a
# rubric may override it). ``fields`` describes the JSON object the schema asks for, one line per field.
STRUCTURED_NOTE = """【输出格式】请忽略上文对输出格式的要求，只输出一个 JSON 对象，不要输出其他任何文字。字段如下：
{% for f in fields %}- {{ f }}
{% endfor %}每一项都先写分析，再给分；分数只能是 {{ scale.min|int }} 到 {{ scale.max|int }} 之间的整数。"""
STRUCTURED_PAIR_NOTE = """【输出格式】请忽略上文对输出格式的要求，只输出一个 JSON 对象，不要输出其他任何文字。字段如下：
- analysis：对两个回答的比较分析；
- verdict：最终判决，只能是 {{ choices|join('、') }} 之一（{{ meaning }}）。"""


class Rubric(_Model):
    name: str
    version: str
    language: str = "zh"
    description: str = ""
    protocol: str = "multi-dimension"  # how the judge is asked; see PROTOCOLS / rubric_for_protocol
    sections: tuple[Section, ...] = ()
    scale: Scale = Scale()
    overall_key: str = "综合得分"
    answer_type_by: Literal["subcategory", "category"] = "subcategory"
    include_reference: bool = True
    templates: Templates
    groups: dict[str, Group]
    categories: tuple[Category, ...]
    dimensions: dict[str, Dimension]
    answer_types: dict[str, AnswerType]
    subcategory_types: dict[str, str]
    category_types: dict[str, str] = {}
    bands: tuple[Band, ...] = ()
    reference_score: float | None = None
    rules: tuple[str, ...] = ()
    # -- judge protocols (docs/protocols.md) ----------------------------------------------------------
    # How the judge writes its verdict: a convention ``alignbench.parse`` reads (``CONVENTIONS`` and
    # ``PAIR_CONVENTIONS`` there), so a new output style is the parser plus this rubric data.
    verdict: str = "alignbench-dict"
    verdict_labels: tuple[str, ...] = ()  # labels a rating may follow (``评分：[[8]]``); empty: the convention's own
    pairwise_verdict: str = "final-verdict"
    reference_categories: tuple[str, ...] = ()  # show the reference only for these categories (empty: all)
    turns: Literal["each", "last"] | None = None  # a multi-turn rubric judges each model turn, or the last
    # ``compare`` on a dialogue: one verdict pair on the last model turn (MT-Bench's pairwise judge), or one per
    # model turn. Its own key, not ``turns``: that one switches a rubric's pointwise prompts to dialogue mode.
    pairwise_turns: Literal["each", "last"] = "last"
    structured_note: str = STRUCTURED_NOTE
    structured_pair_note: str = STRUCTURED_PAIR_NOTE
    folder: Path
    digest: str = ""  # of the YAML and templates as loaded: an edit without a version bump is still seen

    @model_validator(mode="after")
    def _consistent(self) -> Rubric:
        for cat in self.categories:
            if cat.group not in self.groups:
                raise ValueError(f"category {cat.name}: unknown group {cat.group!r}")
        for tname, atype in self.answer_types.items():
            for dim in atype.dimensions:
                if dim not in self.dimensions:
                    raise ValueError(f"answer type {tname}: unknown dimension {dim!r}")
        from alignbench.parse import CONVENTIONS, PAIR_CONVENTIONS

        if self.verdict not in CONVENTIONS:
            raise ValueError(f"verdict: unknown convention {self.verdict!r}; known: {', '.join(CONVENTIONS)}")
        if self.pairwise_verdict not in PAIR_CONVENTIONS:
            raise ValueError(f"pairwise_verdict: unknown convention {self.pairwise_verdict!r}; known: "
                             f"{', '.join(PAIR_CONVENTIONS)}")
        for name in self.reference_categories:
            if self.category(name) is None:
                raise ValueError(f"reference_categories: unknown category {name!r}")
        for where, mapping in (("subcategory_types", self.subcategory_types),
                               ("category_types", self.category_types)):
            for key, tname in mapping.items():
                if tname not in self.answer_types:
                    raise ValueError(f"{where}.{key}: unknown answer type {tname!r}")
        if self.answer_type_by == "category":
            missing = [c.name for c in self.categories if c.name not in self.category_types]
            if missing:
                raise ValueError(f"category_types lacks {missing}")
        tpl = self.templates
        for name in filter(None, (tpl.system, tpl.user, tpl.pairwise_system, tpl.pairwise_user,
                                  tpl.pairwise_dialogue_system, tpl.pairwise_dialogue_user)):
            if not (self.folder / name).is_file():
                raise ValueError(f"template {name} not found in {self.folder}")
        return self

    # -- lookups -------------------------------------------------------------------------
    @property
    def upstream(self) -> UpstreamProtocol | None:
        """The upstream tool's own prompt construction this rubric sends (``alignbench.upstream``: the official
        AlignBench protocol read from the user's checkout), or None: this rubric's templates build its prompts.
        Why a hook on the rubric: the rest of the flow (plan, engine, parser, aggregation) stays one path."""
        return None

    @property
    def id(self) -> str:
        """``name@version+digest``: stamped on judgments and part of every cache key, so a template
        edited without a version bump cannot pass as the old rubric."""
        return f"{self.name}@{self.version}" + (f"+{self.digest[:8]}" if self.digest else "")

    def shows_reference(self, category: str) -> bool:
        """Whether the judge sees the reference answer for a question of ``category`` (MT-Bench-style
        rubrics give it only where there is one right answer: 数学计算, 逻辑推理)."""
        if not self.include_reference:
            return False
        if not self.reference_categories:
            return True
        cat = self.category(category)
        return (cat.name if cat else category) in self.reference_categories

    def category(self, name: str) -> Category | None:
        for cat in self.categories:
            if name == cat.name or name in cat.aliases:
                return cat
        return None

    def canonical(self, name: str) -> str:
        """The category's own name for ``name`` (an alias resolves to it); ``name`` itself when unknown."""
        cat = self.category(name)
        return cat.name if cat else name

    def category_names(self, group: str | None = None) -> list[str]:
        return [c.name for c in self.categories if group is None or c.group == group]

    def answer_type(self, category: str, subcategory: str) -> str:
        """The answer type that decides which dimensions a question is judged on.

        A subcategory rubric falls back to ``category_types`` for a subcategory it does not know
        (human-labelled meta-eval samples carry only the top-level category).
        """
        if self.answer_type_by == "subcategory" and (subcategory in self.subcategory_types
                                                     or not self.category_types):
            return self.subcategory_types[subcategory]
        cat = self.category(category)
        return self.category_types[cat.name if cat else category]

    def dimensions_for(self, category: str, subcategory: str) -> tuple[str, ...]:
        return self.answer_types[self.answer_type(category, subcategory)].dimensions

    def all_dimensions(self) -> list[str]:
        """Every dimension used by some answer type, in first-use order."""
        seen: dict[str, None] = {}
        for atype in self.answer_types.values():
            seen.update(dict.fromkeys(atype.dimensions))
        return list(seen)


def rubrics_root() -> Path:
    """Where rubric folders live: inside the installed wheel, else the source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_rubrics", here.parent / "rubrics"):
        if candidate.is_dir():
            return candidate
    raise RubricError("no rubrics folder found next to the alignbench package")


def available() -> list[str]:
    return sorted(p.name for p in rubrics_root().iterdir() if (p / "rubric.yaml").is_file())


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
    except yaml.YAMLError as exc:
        raise RubricError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise RubricError(f"{path}: expected a mapping at the top level")
    return data


@cache
def load_rubric(name_or_path: str) -> Rubric:
    """Load a rubric set by name (a folder under ``rubrics/``) or by path to a folder.

    A set may name one ``base`` set whose top-level keys it inherits and overrides (one level only,
    so a rubric never becomes a chain of includes).
    """
    folder = Path(name_or_path)
    if not (folder / "rubric.yaml").is_file():
        folder = rubrics_root() / name_or_path
    path = folder / "rubric.yaml"
    if not path.is_file():
        raise RubricError(f"unknown rubric {name_or_path!r}; available: {', '.join(available())}")
    data = _read_yaml(path)
    base_name = data.pop("base", None)
    if base_name:
        base = _read_yaml(rubrics_root() / base_name / "rubric.yaml")
        base.pop("base", None)
        data = {**base, **data}
    files = [path, *(rubrics_root() / base_name / "rubric.yaml" for _ in [0] if base_name)]
    files += sorted(p for p in folder.iterdir() if p.suffix == ".j2")
    digest = hashlib.sha256(b"".join(f.name.encode() + b"\0" + f.read_bytes() for f in files)).hexdigest()
    try:
        return Rubric(**data, folder=folder, digest=digest)
    except ValidationError as exc:
        raise RubricError(f"{path}: invalid rubric:\n{exc}") from exc


# -- protocols ----------------------------------------------------------------------------------
# How the judge is asked. Each protocol of a base rubric set is its own folder (so its prompts are
# versioned data like any rubric): ``<base>`` for multi-dimension, ``<base>-general``, and so on.
PROTOCOLS: dict[str, str] = {
    "multi-dimension": "",  # per-answer-type dimensions, reference-guided (AlignBench)
    "general": "-general",  # one overall score, reference-guided, no dimensions
    "reference-free": "-reffree",  # dimensions, no reference answer shown
    "plan-execute": "-plan",  # EvalPlanner-style: plan from the question, then execute on the answer
}


def _protocol_root(base: str) -> str:
    """``alignbench-general`` -> ``alignbench``: a protocol variant given as base means its base."""
    for suffix in sorted(filter(None, PROTOCOLS.values()), key=len, reverse=True):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def rubric_for_protocol(protocol: str, base: str = "alignbench") -> str:
    """The rubric set (name, or path for a rubric given as a folder) asking ``base``'s way the
    ``protocol`` way. ``score --protocol`` and ``compare --protocol`` both resolve through here, so a
    protocol means the same prompts in both commands."""
    if protocol not in PROTOCOLS:
        raise RubricError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    as_path = Path(base)
    if (as_path / "rubric.yaml").is_file() and as_path.name not in available():
        root = as_path.parent / _protocol_root(as_path.name)
        found = [p for p, s in PROTOCOLS.items() if (root.parent / (root.name + s) / "rubric.yaml").is_file()]
        name = str(root.parent / (root.name + PROTOCOLS[protocol]))
    else:
        root_name = _protocol_root(base)
        found = [p for p, s in PROTOCOLS.items() if root_name + s in available()]
        name = root_name + PROTOCOLS[protocol]
    if protocol not in found:
        raise RubricError(f"rubric {base!r} has no {protocol} variant ({name}/rubric.yaml does not exist); "
                          f"protocols available for it: {', '.join(found) or 'none'}")
    declared = load_rubric(name).protocol
    if declared != protocol:
        raise RubricError(f"{name}/rubric.yaml declares protocol {declared!r}, expected {protocol!r}")
    return name
