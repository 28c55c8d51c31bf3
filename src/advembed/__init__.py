"""advembed: robust fine-tuning of NLP models by adversarial training in the embedding space.

    method = advembed.build_training_method("freelb", model)
    loss = method.step(model, batch)        # in your loop, instead of loss.backward()

or ``advembed.AdvTrainer(..., method=method)`` as a drop-in ``transformers.Trainer``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from advembed.errors import AdvembedError

__version__ = "0.1.0"

__all__ = [
    "FGM",
    "FGSM",
    "PGD",
    "SMART",
    "YOPO",
    "AdvTrainer",
    "AdvembedError",
    "FreeAT",
    "FreeLB",
    "METHODS",
    "TrainConfig",
    "__version__",
    "build_objective",
    "build_training_method",
    "run_training",
]

_LAZY = {
    "FGM": "advembed.adversaries",
    "FGSM": "advembed.adversaries",
    "PGD": "advembed.adversaries",
    "SMART": "advembed.methods",
    "YOPO": "advembed.methods",
    "FreeAT": "advembed.methods",
    "FreeLB": "advembed.methods",
    "METHODS": "advembed.methods",
    "build_training_method": "advembed.methods",
    "build_objective": "advembed.objectives",
    "AdvTrainer": "advembed.training.trainer",
    "TrainConfig": "advembed.training.config",
    "run_training": "advembed.training.run",
}

if TYPE_CHECKING:  # pragma: no cover
    from advembed.adversaries import FGM, FGSM, PGD
    from advembed.methods import METHODS, SMART, YOPO, FreeAT, FreeLB, build_training_method
    from advembed.objectives import build_objective
    from advembed.training.config import TrainConfig
    from advembed.training.run import run_training
    from advembed.training.trainer import AdvTrainer


def __getattr__(name: str) -> Any:
    """Import heavy modules (torch, transformers) only when their names are used."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'advembed' has no attribute {name!r}")
