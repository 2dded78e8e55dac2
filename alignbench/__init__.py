"""alignbench: Chinese-first, multi-dimension LLM-as-judge scoring (AlignBench rubrics).

Data flows one way: load -> prompt -> judge -> parse -> aggregate -> report. The public surface is
the core records in ``alignbench.types`` and the pipeline steps re-exported here.
"""

from __future__ import annotations

__version__ = "0.1.0"

from alignbench.types import Answer, JudgeReply, JudgeRequest, Judgment, Question, Status  # noqa: E402

__all__ = ["Answer", "JudgeReply", "JudgeRequest", "Judgment", "Question", "Status", "__version__"]
