"""PNG charts for the Markdown report: a radar of the 8 categories and a per-dimension bar chart.

matplotlib is an optional extra (``pip install 'alignbench[report]'``); without it ``render_charts``
raises ``ChartsUnavailable`` and the report is written without charts, saying so.

Chinese labels need a font with CJK glyphs, and matplotlib's bundled DejaVu has none: every label
would become a row of empty boxes ("tofu"). ``find_cjk_font`` looks, in order, at the font named by
``$ALIGNBENCH_CJK_FONT`` (a file path; ``none`` turns CJK labels off), the fonts matplotlib knows
(Noto Sans CJK, Source Han Sans, WenQuanYi, SimHei, Microsoft YaHei, PingFang …), system font files
with those names (matplotlib's font cache can predate an ``apt install``), and fonts shipped in pip
packages (``pylopdf-fonts-zh-cn``: Noto Sans SC, 17 MB; ``mplfonts``). A candidate counts only if
it really maps every character of the labels to a glyph. If none does, the charts fall back to
English labels and the caller gets a warning.
"""

from __future__ import annotations

import importlib.util
import os
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from alignbench.rubrics import Rubric

FONT_ENV = "ALIGNBENCH_CJK_FONT"

# Family names as matplotlib reports them, best first (sans-serif Simplified Chinese first).
CJK_FAMILIES = (
    "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN", "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei", "Microsoft YaHei", "PingFang SC", "Hiragino Sans GB", "SimHei", "Heiti SC",
    "Sarasa Gothic SC", "Noto Sans CJK JP", "Noto Sans CJK TC", "Source Han Sans", "Droid Sans Fallback",
    "AR PL UMing CN", "AR PL UKai CN",
)
# Lower-case fragments of font *file* names worth probing when matplotlib's cache does not list them.
CJK_FILE_HINTS = ("notosanscjk", "notosanssc", "sourcehansans", "wqy-microhei", "wqy-zenhei", "simhei", "msyh",
                  "droidsansfallback", "pingfang", "uming", "ukai")
# Pip packages that ship a CJK font file.
FONT_PACKAGES = ("pylopdf_fonts_zh_cn", "mplfonts")

# Every character the charts print in Chinese mode (categories, dimensions, group names).
PROBE_TEXT = ("数学计算逻辑推理基本任务中文理解综合问答文本写作角色扮演专业能力事实正确性满足用户需求清晰度完备性"
              "连贯创造丰富度公平与可负责程维得分类别")


class ChartsUnavailable(RuntimeError):
    """Charts cannot be drawn here (matplotlib missing); the message says how to get them."""


@dataclass(frozen=True)
class CJKFont:
    path: str
    name: str
    source: str  # where it was found: env, matplotlib, system, package:<name>


def covers(path: str | os.PathLike[str], text: str) -> bool:
    """True if the font file maps every non-space character of ``text`` to a real glyph (not .notdef)."""
    from matplotlib.ft2font import FT2Font

    try:
        font = FT2Font(str(path))
    except (OSError, RuntimeError, ValueError):
        return False
    return all(font.get_char_index(ord(ch)) != 0 for ch in set(text) if not ch.isspace())


def _package_fonts() -> list[tuple[str, Path]]:
    found = []
    for pkg in FONT_PACKAGES:
        try:
            spec = importlib.util.find_spec(pkg)
        except (ImportError, ValueError):
            continue
        for root in (spec.submodule_search_locations or []) if spec else []:
            files = [p for ext in ("otf", "ttf", "ttc") for p in Path(root).rglob(f"*.{ext}")]
            # prefer sans-serif Simplified Chinese regular faces
            files.sort(key=lambda p: (("sans" not in p.name.lower()), ("sc" not in p.name.lower()
                                                                      and "cjk" not in p.name.lower()),
                                      ("regular" not in p.name.lower()), p.name))
            found.extend((f"package:{pkg}", p) for p in files)
    return found


@lru_cache(maxsize=8)
def _find(env_value: str | None, probe: str) -> CJKFont | None:
    from matplotlib import font_manager

    def make(path: str, source: str) -> CJKFont:
        return CJKFont(path=path, name=font_manager.FontProperties(fname=path).get_name(), source=source)

    if env_value:
        if env_value.strip().lower() in ("none", "off", "0", "false"):
            return None
        return make(env_value, "env") if Path(env_value).is_file() and covers(env_value, probe) else None
    rank = {name: i for i, name in enumerate(CJK_FAMILIES)}
    known = sorted((rank[f.name], f.fname) for f in font_manager.fontManager.ttflist if f.name in rank)
    for _, path in known:
        if covers(path, probe):
            return make(path, "matplotlib")
    system = sorted(p for p in font_manager.findSystemFonts()
                    if any(h in Path(p).name.lower().replace(" ", "") for h in CJK_FILE_HINTS))
    for path in system:
        if covers(path, probe):
            return make(path, "system")
    for source, path in _package_fonts():
        if covers(path, probe):
            return make(str(path), source)
    return None


def find_cjk_font(probe: str = PROBE_TEXT) -> CJKFont | None:
    """A font that renders every character of ``probe``, or None (see the module docstring)."""
    return _find(os.environ.get(FONT_ENV), probe)


def _register(font: CJKFont) -> None:
    from matplotlib import font_manager

    if not any(f.fname == font.path for f in font_manager.fontManager.ttflist):
        font_manager.fontManager.addfont(font.path)


@dataclass
class Series:
    """One run on the charts: its label and the scores to plot (None where the run has no score)."""

    label: str
    categories: dict[str, float | None]
    dimensions: dict[str, float | None]


@dataclass
class ChartOutput:
    files: list[Path] = field(default_factory=list)
    labels_lang: str = "zh"
    font: CJKFont | None = None
    warnings: list[str] = field(default_factory=list)


def _wrap(label: str, width: int) -> str:
    return "\n".join(textwrap.wrap(label, width)) if label.isascii() else label


def _ascii_safe(labels: Sequence[str]) -> list[str]:
    """Without a CJK font, run labels with non-Latin characters become ``run N`` (no tofu in legends)."""
    return [lab if lab.isascii() else f"run {i + 1}" for i, lab in enumerate(labels)]


def render_charts(series: Sequence[Series], rubric: Rubric, out_dir: Path, stem: str,
                  lang: str = "zh", dpi: int = 110) -> ChartOutput:
    """Draw ``<stem>-radar.png`` and ``<stem>-dimensions.png`` in ``out_dir``.

    ``lang='zh'`` labels axes in Chinese when a CJK font is found, otherwise in English with a warning.
    Raises ChartsUnavailable without matplotlib."""
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ChartsUnavailable(f"matplotlib is not installed ({exc}); install it with "
                                "pip install 'alignbench[report]'") from None
    out = ChartOutput(labels_lang=lang)
    font = None
    if lang == "zh":
        font = find_cjk_font()
        if font is None:
            out.labels_lang = "en"
            out.warnings.append("no font with Chinese glyphs found; chart labels are in English. Install one "
                                "(e.g. apt install fonts-wqy-microhei, or pip install pylopdf-fonts-zh-cn) or "
                                f"point ${FONT_ENV} at a .ttf/.otf/.ttc file")
        else:
            _register(font)
    out.font = font
    zh = out.labels_lang == "zh"
    cats = rubric.category_names()
    cat_labels = [c if zh else _wrap(rubric.category(c).en, 14) for c in cats]  # type: ignore[union-attr]
    dims = [d for d in rubric.all_dimensions() if any(s.dimensions.get(d) is not None for s in series)]
    dim_labels = [d if zh else rubric.dimensions[d].id for d in dims]
    run_labels = [s.label.replace("$", r"\$") for s in series]  # literal text, never matplotlib's $math$
    if not zh:
        safe = _ascii_safe(run_labels)
        if safe != run_labels:
            out.warnings.append("run names with non-Latin characters are shown as 'run N' in the charts")
        run_labels = safe
    rc = {"font.family": [font.name, "DejaVu Sans"] if font else ["DejaVu Sans"], "axes.unicode_minus": False,
          "svg.fonttype": "none"}
    import numpy as np

    with matplotlib.rc_context(rc):
        # Fixed layouts (no bbox_inches="tight", which draws every figure twice): room for the labels
        # around the plot and for a legend of ``rows`` lines under it, in inches.
        n = max(1, len(series))
        ncols = min(n, 4)
        rows = -(-n // ncols)
        legend_h = 0.25 * rows + 0.15

        # -- radar -----------------------------------------------------------------------------
        width_in, diam, top, bottom = 7.2, 4.3, 0.95, 0.75 + legend_h
        height_in = top + diam + bottom
        fig = Figure(figsize=(width_in, height_in), dpi=dpi)
        ax = fig.add_axes((((width_in - diam) / 2) / width_in, bottom / height_in, diam / width_in,
                           diam / height_in), projection="polar")
        ax.set_theta_offset(np.pi / 2)  # first category (数学计算) at the top, then clockwise
        ax.set_theta_direction(-1)
        angles = np.linspace(0, 2 * np.pi, len(cats), endpoint=False)
        closed = np.concatenate([angles, angles[:1]])
        for s, label in zip(series, run_labels, strict=True):
            values = np.array([np.nan if s.categories.get(c) is None else s.categories[c] for c in cats], float)
            ring = np.concatenate([values, values[:1]])
            ax.plot(closed, ring, linewidth=1.6, label=label)
            if not np.isnan(ring).any():
                ax.fill(closed, ring, alpha=min(0.08, 0.2 / n))
        ax.set_xticks(angles)
        ax.set_xticklabels(cat_labels, fontsize=9)
        ax.set_ylim(0, rubric.scale.max)
        ax.set_yticks(range(2, int(rubric.scale.max) + 1, 2))
        ax.tick_params(axis="y", labelsize=7)
        fig.suptitle("类别得分 (1–10)" if zh else "Category scores (1–10)", y=1 - 0.3 / height_in)
        fig.legend(loc="lower center", bbox_to_anchor=(0.5, 0.1 / height_in), fontsize=8, frameon=False,
                   ncols=ncols)
        radar = out_dir / f"{stem}-radar.png"
        fig.savefig(radar, format="png")
        out.files.append(radar)

        # -- per-dimension bars --------------------------------------------------------------------
        width_in = min(14.0, max(7.0, 1.0 + 0.9 * len(dims) * n ** 0.5))
        label_h = 0.45 if zh else 1.0
        height_in = 0.55 + 3.4 + label_h + legend_h
        fig = Figure(figsize=(width_in, height_in), dpi=dpi)
        ax = fig.add_axes((0.8 / width_in, (label_h + legend_h) / height_in, (width_in - 1.0) / width_in,
                           3.4 / height_in))
        width = 0.8 / n
        x = np.arange(len(dims))
        for i, (s, label) in enumerate(zip(series, run_labels, strict=True)):
            values = [np.nan if s.dimensions.get(d) is None else s.dimensions[d] for d in dims]
            ax.bar(x - 0.4 + width * (i + 0.5), values, width=width, label=label)
        ax.set_xticks(x)
        ax.set_xticklabels(dim_labels, fontsize=9, rotation=0 if zh else 20, ha="center" if zh else "right")
        ax.set_ylim(0, rubric.scale.max)
        ax.set_ylabel("平均分" if zh else "mean score")
        ax.set_title("维度得分" if zh else "Dimension means", pad=10)
        ax.grid(axis="y", alpha=0.3)
        fig.legend(loc="lower center", bbox_to_anchor=(0.5, 0.1 / height_in), fontsize=8, frameon=False,
                   ncols=ncols)
        bars = out_dir / f"{stem}-dimensions.png"
        fig.savefig(bars, format="png")
        out.files.append(bars)
    return out
