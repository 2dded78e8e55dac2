"""Pairwise mode: model-vs-baseline preferences, plain win rates and length-controlled win rates."""
