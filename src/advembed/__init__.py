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
    "__version__",
    "build_training_method",
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
    "AdvTrainer": "advembed.trainer",
}

if TYPE_CHECKING:  # pragma: no cover
    from advembed.adversaries import FGM, FGSM, PGD
    from advembed.methods import METHODS, SMART, YOPO, FreeAT, FreeLB, build_training_method
    from advembed.trainer import AdvTrainer


def __getattr__(name: str) -> Any:
    """Import heavy modules (torch, transformers) only when their names are used."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'advembed' has no attribute {name!r}")
