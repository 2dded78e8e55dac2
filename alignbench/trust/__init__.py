"""Judge trust: calibrated scores from a few human labels, a bridge between judges, bias audits and
judge variance. Pure statistics over judgments: no files, no network, no printing.

A judge's score is a measurement with two errors: sampling (which questions were asked) and the
judge's own error (how far it is from what a person would have said). ``aggregate.summarize`` gives
CIs for the first only. This module adds the second and the tools to see it:

1. ``calibrate``: prediction-powered inference (PPI, power-tuned as in PPI++). The judge scores every
   answer, people score a random subset; per category the human-scale mean is the judge's mean over
   every answer plus the mean human−judge difference on the labelled answers (the *rectifier*). The CI
   carries both errors. Categories are combined with the AlignBench weights
   (``stats.group_weights``), exactly as ``aggregate`` combines category means.
2. ``fit_bridge`` / ``apply_bridge``: a monotone (isotonic) map from one judge's scale to another's,
   fitted on the same answers judged by both, so runs scored by a retired judge can be put on the new
   judge's scale; ``Bridge`` round-trips through a versioned JSON dict.
3. Bias audits: ``length_bias`` and ``format_bias`` (within-question association of score with answer
   length / Markdown structure), ``position_bias`` (pairwise first-position win rate and flip rate),
   ``self_preference`` and ``family_report`` (judge and model from one family).
4. ``judge_variance``: repeated judgments of the same answers: the within-answer spread and how much
   of each CI it accounts for.

Every result is a frozen pydantic model with ``as_dict()`` (JSON-ready: tuples become lists, NaN becomes
None). Formulas, rules and the reasons for each choice are in ``docs/trust.md``.
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
