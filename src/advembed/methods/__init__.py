"""Adversarial training methods: one optimisation step of forward/backward passes per batch.

One file per method, each with its settings dataclass (defaults, flags, ranges); adding a
method is a file plus a line in ``REGISTRY``.  Every method implements
``step(model, inputs, backward) -> loss``, so the same object serves three ways in:

* your own loop::

      method = advembed.build_training_method("freelb", model)
      loss = method.step(model, batch)          # instead of model(**batch).loss.backward()
      optimizer.step(); optimizer.zero_grad()

* ``advembed.AdvTrainer(..., method=method)``, a drop-in ``transformers.Trainer``;
* ``advembed train --method freelb``.

The loss is the model's own (``outputs.loss``, from ``labels`` in the batch), so the task's
head decides it.  Passes are counted in ``passes`` (forward+backward pairs) for the step-cost
benchmark.
"""

from __future__ import annotations

from typing import Any

import torch

from advembed.errors import AdvembedError
from advembed.methods.ascc import ASCCSettings, ASCCTraining
from advembed.methods.base import MethodSettings, NoSettings, TrainingMethod
from advembed.methods.fgm import FGMSettings, FGMTraining
from advembed.methods.fgsm import FGSMSettings, FGSMTraining
from advembed.methods.freeat import FreeAT, FreeATSettings
from advembed.methods.freelb import FreeLB, FreeLBSettings
from advembed.methods.gradient import GradientAttackTraining
from advembed.methods.none import PlainTraining
from advembed.methods.pgd import PGDSettings, PGDTraining
from advembed.methods.smart import SMART, SMARTSettings
from advembed.methods.vaa import VAASettings, VAATraining
from advembed.methods.vda import VDAMethodSettings, VDATraining
from advembed.methods.yopo import YOPO, YOPOSettings
from advembed.settings import Settings

REGISTRY: dict[str, type[TrainingMethod]] = {
    cls.name: cls
    for cls in (PlainTraining, FGSMTraining, FGMTraining, PGDTraining, FreeAT, YOPO, FreeLB,
                SMART, VAATraining, VDATraining, ASCCTraining)
}
METHODS = tuple(REGISTRY)
FLAG_OF = {item.name: item.flag.name for cls in REGISTRY.values()
           for item in cls.Settings.declared()}
"""Python name → flag of every method setting (to name a flag in error messages)."""


def method_class(name: str) -> type[TrainingMethod]:
    if name not in REGISTRY:
        raise AdvembedError(f"unknown method '{name}'; choose one of {', '.join(METHODS)}")
    return REGISTRY[name]


def method_settings(name: str, options: dict[str, Any] | None = None, *,
                    objective: Any = None) -> Settings:
    """The effective settings of method ``name``: its defaults, then the objective's overrides
    for it (ATCL: FGM's ε = 0.03), then ``options`` (Python names; ``None`` keeps the value)."""
    cls = method_class(name)
    base = cls.Settings()
    overrides = getattr(objective, "method_defaults", {}).get(name)
    if overrides:
        base = cls.Settings.from_options(overrides, base)
    given = {key: value for key, value in (options or {}).items() if value is not None}
    return cls.Settings.from_options(given, base, flag_of=FLAG_OF)


def build_training_method(
    name: str,
    model: torch.nn.Module,
    *,
    objective=None,
    settings: Settings | None = None,
    augment: Any = None,
    tokenizer: Any = None,
    synonyms: Any = None,
    **options: Any,
) -> TrainingMethod:
    """Build the training method ``name`` for ``model``; unset options take the defaults.

    ``objective`` (see :func:`advembed.objectives.build_objective`) adds its loss term to the
    method's final adversarial pass.  ``augment`` (:class:`advembed.vda.VDASettings` or a
    ready :class:`advembed.vda.VirtualAugmenter`) adds VDA's term to every step
    (``--augment vda``).  ``settings`` (from :func:`method_settings`) replaces the
    defaults; ``options`` are settings by Python name (``epsilon=0.05``).  ``tokenizer`` is
    handed to the methods that read words (``ascc``: each word's synonyms; ``synonyms``, a
    ready :class:`advembed.hull.SynonymTable`, replaces the one it would build).  Raises
    :class:`AdvembedError` for an unknown method or an option the method does not take.
    """
    cls = method_class(name)
    if settings is None:
        settings = method_settings(name, options, objective=objective)
    elif options:
        settings = cls.Settings.from_options(options, settings, flag_of=FLAG_OF)
    extra: dict[str, Any] = {}
    if augment is not None:
        extra["augment"] = augment
    if getattr(cls, "needs_tokenizer", False):
        extra |= {"tokenizer": tokenizer, "synonyms": synonyms}
    return cls(model, settings, objective=objective, **extra)


__all__ = [
    "ASCCSettings",
    "ASCCTraining",
    "FLAG_OF",
    "METHODS",
    "REGISTRY",
    "SMART",
    "YOPO",
    "FGMSettings",
    "FGMTraining",
    "FGSMSettings",
    "FGSMTraining",
    "FreeAT",
    "FreeATSettings",
    "FreeLB",
    "FreeLBSettings",
    "GradientAttackTraining",
    "MethodSettings",
    "NoSettings",
    "PGDSettings",
    "PGDTraining",
    "PlainTraining",
    "SMARTSettings",
    "TrainingMethod",
    "VAASettings",
    "VAATraining",
    "VDAMethodSettings",
    "VDATraining",
    "YOPOSettings",
    "build_training_method",
    "method_class",
    "method_settings",
]
