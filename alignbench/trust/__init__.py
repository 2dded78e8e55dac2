"""Judge trust: calibrated scores from a few human labels (``calibration``), a bridge between judges
(``bridge``), bias audits (``audits``) and judge variance (``variance``); ``runs`` finds their inputs in run
folders. The statistics are pure: judgments in, no files, no network, no printing.

A judge's score is a measurement with two errors: sampling (which questions were asked) and the judge's
own error (how far it is from what a person would have said). ``aggregate.summarize`` gives CIs for the
first only; this package adds the second and the tools to see it. Every result is a frozen pydantic model
with ``as_dict()`` (JSON-ready: tuples become lists, NaN becomes None). Formulas, rules and the reasons for
each choice are in ``docs/trust.md``.
"""

from __future__ import annotations

# The public API by topic (docs/trust.md says how each piece is called and what it returns).
# isort: off
from alignbench.trust.audits import (  # noqa: F401
    FAMILIES, FORMAT_FEATURES, AdjustedRow, Association, FamilyReport, FamilyRow, FormatBias, LengthBias,
    PositionBias, PositionStats, SelfPreference, SelfPreferenceRow, answer_lengths, association, count_words,
    family_report, format_bias, length_bias, markdown_features, model_family, position_bias, self_preference)
from alignbench.trust.bridge import (  # noqa: F401
    BRIDGE_FORMAT, BRIDGE_VERSION, Agreement, BothScales, Bridge, BridgeFit, apply_bridge, fit_bridge, kendall_tau_b)
from alignbench.trust.calibration import (  # noqa: F401
    MIN_LABELS, TUNE_MIN_LABELS, CalibratedRow, Calibration, Estimate, HumanLabel, LabelAccounting, LabelScale,
    PPIMean, calibrate, calibrate_arrays, parse_label_scale, power_tuned_lambda, ppi_mean, satterthwaite)
from alignbench.trust.variance import AnswerSpread, JudgeVariance, VarianceRow, judge_variance  # noqa: F401
# isort: on
