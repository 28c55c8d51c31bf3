"""Evaluation of saved runs: reading a run's split and model, the evaluation loop, the
embedding attacks (PGD and drift, vulnerability), the word-substitution attacks, and RAR's
reconstruction.  Each attack's settings are one dataclass (:mod:`.settings`)."""

from __future__ import annotations

from advembed.evaluation.runs import (
    evaluate_run,
    load_run_model,
    run_split,
    run_task,
    sample_examples,
)
from advembed.evaluation.settings import (
    PGDAttackSettings,
    ReconstructSettings,
    VulnerabilitySettings,
)

__all__ = [
    "PGDAttackSettings",
    "ReconstructSettings",
    "VulnerabilitySettings",
    "evaluate_run",
    "load_run_model",
    "run_split",
    "run_task",
    "sample_examples",
]
