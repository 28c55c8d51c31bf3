"""Training: the run's settings (:class:`TrainConfig`), the ``Trainer`` that runs a method
(:class:`AdvTrainer`), and the orchestration that writes a run (:func:`run_training`)."""

from __future__ import annotations

from advembed.training.config import TrainConfig
from advembed.training.replay import ReplayLoader
from advembed.training.run import build_method, run_training
from advembed.training.trainer import AdvTrainer, split_learning_rates

__all__ = ["AdvTrainer", "ReplayLoader", "TrainConfig", "build_method", "run_training",
           "split_learning_rates"]
