"""What every objective shares: the step context, the representation, the base class."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from advembed.settings import Settings

Representation = Callable[[Any, dict[str, Any]], torch.Tensor]


def input_token_states(outputs: Any) -> torch.Tensor:
    """``(batch, length, hidden)`` final states of the input's tokens — the tokens whose
    embeddings are perturbed: a decoder-only or encoder model's last hidden states, an
    encoder–decoder's *encoder* states (the perturbation is on the source)."""
    encoder = getattr(outputs, "encoder_last_hidden_state", None)
    return encoder if encoder is not None else outputs.hidden_states[-1]


def mean_token_representation(outputs: Any, inputs: dict[str, Any] | None = None
                              ) -> torch.Tensor:
    """Mean of :func:`input_token_states` over the real tokens (``attention_mask``): the
    representation of token-level tasks (language modelling, translation's source)."""
    states = input_token_states(outputs)
    if inputs is None or "attention_mask" not in inputs:
        return states.mean(1)
    mask = inputs["attention_mask"].unsqueeze(-1).to(states.dtype)
    return (states * mask).sum(1) / mask.sum(1).clamp(min=1)


def first_token_representation(outputs: Any, inputs: dict[str, Any] | None = None) -> torch.Tensor:
    """Final hidden state of the first token (``[CLS]``/``<s>``), as in papers 001 and 004."""
    return outputs.hidden_states[-1][:, 0]


def last_token_representation(outputs: Any, inputs: dict[str, Any] | None = None) -> torch.Tensor:
    """Final hidden state of the last position: a left-padded decoder classifier's (GPT-2,
    Llama) last real token, the one its head reads, as ``[CLS]`` is an encoder's."""
    return outputs.hidden_states[-1][:, -1]


@dataclass
class ObjectiveContext:
    """What an objective sees on a training step."""

    model: torch.nn.Module
    inputs: dict[str, Any]
    adversarial: Any  # model outputs on x + δ, with hidden_states
    clean: Any | None  # model outputs on x, with hidden_states (if ``needs_clean``)
    example_index: torch.Tensor | None
    step: int  # optimiser steps done (warm-ups count these)


@dataclass
class BuildContext:
    """What building an objective may need besides its settings (not all objectives do)."""

    model: torch.nn.Module
    tokenizer: Any = None
    train_labels: list[int] | None = None
    total_steps: int | None = None
    seed: int = 0
    representation: Representation = first_token_representation
    token_level: bool = False  # the task's loss is per token (ATCL then contrasts tokens)
    cut_stream: bool = False  # rows are blocks cut from a token stream (edges inside words)


class Objective:
    """Base class: what is learned from the adversarial sample beyond its cross-entropy.

    Subclasses set ``name``, ``Settings`` (defaults, flags and ranges), ``paper`` and
    ``summary`` (for the docs), implement ``loss`` and ``build``.  ``adversarial_weight``
    scales the adversarial cross-entropy; ``method_defaults`` overrides a method's defaults
    when the two are composed (ATCL runs FGM at its paper's ε = 0.03).  ``representation``
    maps model outputs to the ``(batch, hidden)`` representation the objective compares; the
    task sets it (the first token's final state for classification).
    """

    name: ClassVar[str] = "ce"
    Settings: ClassVar[type[Settings]] = Settings
    paper: ClassVar[str] = "—"
    summary: ClassVar[str] = ""
    needs_clean: ClassVar[bool] = False
    needs_example_index: ClassVar[bool] = False
    method_defaults: ClassVar[dict[str, dict[str, Any]]] = {}
    adversarial_weight: float = 1.0
    representation: Representation = staticmethod(first_token_representation)

    def schedule_warning(self, steps_per_epoch: int, total_steps: int) -> str | None:
        """A line for a run whose schedule leaves this objective with nothing to do (it
        would train as its method alone); ``None`` when it will act."""
        return None

    @classmethod
    def build(cls, settings: Settings, context: BuildContext) -> Objective:
        raise NotImplementedError

    def perturbation_mask(self, inputs: dict[str, Any], mask: torch.Tensor) -> torch.Tensor:
        """Where δ may be non-zero (default: every real token)."""
        return mask

    def loss(self, context: ObjectiveContext) -> torch.Tensor:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """The state a resumed run needs beyond the model's parameters (default: none)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""

    def attach(self, model: torch.nn.Module) -> None:
        """Register trainable parameters on ``model`` (so any optimiser picks them up)."""

    def local_parameters(self) -> list[torch.nn.Parameter]:
        """Trainable parameters used outside the model's forward, which DDP does not average
        (the trainer all-reduces their gradients before the optimiser step)."""
        return []

    def learning_rates(self) -> list[tuple[list[torch.nn.Parameter], float]]:
        """Parameters that train at their own learning rate: ``[(params, lr), ...]``.

        :class:`~advembed.training.AdvTrainer` moves them into their own optimiser groups (same
        schedule, same weight decay); in your own loop use :func:`advembed.objectives.param_groups`.
        """
        return []
