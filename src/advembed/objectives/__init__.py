"""Objectives: what is learned from the adversarial sample, beyond its cross-entropy.

An objective adds a loss term computed from the clean and the adversarial forward passes of
any adversary (``advembed train --method freelb --objective carl``).  The training method calls
it once per step, on its final adversarial pass, through :class:`ObjectiveContext`.  One file
per objective, each with its settings dataclass; adding one is a file plus a line in
``REGISTRY``.

* :class:`CARL` (paper 001 §3.2): contrastive loss between clean and adversarial
  representations with two memory banks of negatives of other labels.
* :class:`RAR` (paper 001 §3.3): reconstruct the original tokens from the adversarial token
  states through a small head whose output layer *is* the input embedding matrix.
* :class:`ATCL` (paper 004 §3): FGM on one randomly chosen complete word per sentence, a down-
  weighted adversarial loss and a cosine contrastive loss against in-batch negatives.
"""

from __future__ import annotations

from typing import Any

import torch

from advembed.errors import AdvembedError
from advembed.objectives.atcl import ATCL, atcl_contrastive_loss
from advembed.objectives.base import (
    BuildContext,
    Objective,
    ObjectiveContext,
    Representation,
    first_token_representation,
)
from advembed.objectives.carl import (
    CARL,
    MemoryBank,
    carl_contrastive_loss,
    carl_nce_loss,
    estimate_log_z,
)
from advembed.objectives.rar import RAR, RECONSTRUCTOR_NAME, Reconstructor, real_token_mask
from advembed.settings import Settings
from advembed.words import complete_word_mask, word_flags

REGISTRY: dict[str, type[Objective]] = {cls.name: cls for cls in (CARL, RAR, ATCL)}
NO_OBJECTIVE = "ce"
OBJECTIVES = (NO_OBJECTIVE, *REGISTRY)
"""``ce`` is the method's adversarial cross-entropy alone (no objective)."""


def objective_class(name: str) -> type[Objective]:
    if name not in REGISTRY:
        raise AdvembedError(f"unknown objective '{name}'; choose one of {', '.join(OBJECTIVES)}")
    return REGISTRY[name]


def objective_settings(name: str, options: dict[str, Any] | None = None) -> Settings | None:
    """The effective settings of objective ``name``: its defaults with ``options`` applied
    (validated); ``None`` for ``ce``.  Runs record them in ``config.json``."""
    if name == NO_OBJECTIVE:
        if options:
            raise AdvembedError(f"option {next(iter(options))} needs an --objective")
        return None
    return objective_class(name).Settings.from_options(options)


def build_objective(
    name: str,
    model: torch.nn.Module,
    *,
    tokenizer=None,
    train_labels: list[int] | None = None,
    total_steps: int | None = None,
    seed: int = 0,
    representation: Representation | None = None,
    token_level: bool = False,
    cut_stream: bool = False,
    settings: Settings | None = None,
    **options: Any,
) -> Objective | None:
    """Build objective ``name`` (``ce`` = none: plain adversarial cross-entropy).

    ``options`` are settings by Python name (``tau=0.1``); ``representation`` maps model
    outputs to the representation the objective compares (the task's; default: the first
    token's final state); ``token_level``: the task's loss is per token (ATCL contrasts the
    perturbed token's own states); ``cut_stream``: the rows are blocks cut from a token stream,
    whose first and last pieces may belong to words that go on outside them.
    """
    if settings is None:
        settings = objective_settings(name, options)
    elif options:
        settings = type(settings).from_options(options, settings)
    if settings is None:
        return None
    context = BuildContext(model=model, tokenizer=tokenizer, train_labels=train_labels,
                           total_steps=total_steps, seed=seed, token_level=token_level,
                           cut_stream=cut_stream)
    objective = objective_class(name).build(settings, context)
    if representation is not None:
        objective.representation = representation
    return objective


def param_groups(
    model: torch.nn.Module, lr: float, objective: Objective | None = None
) -> list[dict[str, Any]]:
    """Optimiser groups for your own loop: every trainable parameter at ``lr``, except those the
    objective trains at their own rate (``torch.optim.AdamW(param_groups(model, 2e-5, rar))``).
    """
    special = objective.learning_rates() if objective is not None else []
    taken = {id(p) for params, _ in special for p in params}
    groups = [{"params": [p for p in model.parameters() if p.requires_grad and id(p) not in taken],
               "lr": lr}]
    groups += [{"params": params, "lr": rate} for params, rate in special]
    return groups


__all__ = [
    "ATCL",
    "CARL",
    "NO_OBJECTIVE",
    "OBJECTIVES",
    "RAR",
    "RECONSTRUCTOR_NAME",
    "REGISTRY",
    "BuildContext",
    "MemoryBank",
    "Objective",
    "ObjectiveContext",
    "Reconstructor",
    "atcl_contrastive_loss",
    "build_objective",
    "carl_contrastive_loss",
    "carl_nce_loss",
    "complete_word_mask",
    "estimate_log_z",
    "first_token_representation",
    "objective_class",
    "objective_settings",
    "param_groups",
    "real_token_mask",
    "word_flags",
]
