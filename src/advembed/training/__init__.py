"""Training: the run's settings (:class:`TrainConfig`), the ``Trainer`` that runs a method
(:class:`AdvTrainer`), and the orchestration that writes a run (:func:`run_training`).

The names are imported when first used (PEP 562), so that reading the settings
(``advembed.training.config``, which every command's ``--help`` needs) does not import
``transformers.trainer``, seconds of start-up."""

from __future__ import annotations

import importlib
from typing import Any

_HOME = {"AdvTrainer": "trainer", "ReplayLoader": "replay", "TrainConfig": "config",
         "build_method": "run", "run_training": "run", "split_learning_rates": "trainer"}

__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
