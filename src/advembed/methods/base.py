"""What every training method shares: settings, the adapter, warm-up, objective plumbing.

A method implements ``_step(model, inputs, backward) -> loss``: it runs its passes, calls
``backward(loss)`` for each loss whose parameter gradient it wants accumulated and returns the
detached total loss.  It never steps the optimiser, so the same object serves three ways in
(your own loop, :class:`~advembed.training.AdvTrainer`, ``advembed train``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from advembed.adapter import EmbeddingAdapter
from advembed.errors import AdvembedError
from advembed.flags import WARMUP_STEPS
from advembed.objectives.base import Objective, ObjectiveContext
from advembed.settings import Settings, setting

Backward = Callable[[torch.Tensor], None]


@dataclass(frozen=True)
class NoSettings(Settings):
    """A method without hyper-parameters (plain fine-tuning)."""

    owner = "method 'none'"


@dataclass(frozen=True)
class MethodSettings(Settings):
    """Settings every adversarial method has."""

    warmup_steps: int = setting(0, WARMUP_STEPS)


def default_backward(loss: torch.Tensor, **kwargs: Any) -> None:
    loss.backward(**kwargs)


def call_backward(backward: Backward, loss: torch.Tensor, *, retain: bool) -> None:
    """Call ``backward``, asking it to keep the graph only when an objective still needs it
    (so user-supplied ``backward(loss)`` callables without keyword arguments keep working)."""
    if retain:
        backward(loss, retain_graph=True)
    else:
        backward(loss)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside DDP / accelerate wrappers (no gradient-sync hooks)."""
    while hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
        model = model.module
    return model


def make_augmenter(model: torch.nn.Module, augment: Any):
    """``augment``: None, VDA's settings (the MLM is loaded) or a ready ``VirtualAugmenter``."""
    if augment is None:
        return None
    from advembed.vda import VDASettings, VirtualAugmenter

    if isinstance(augment, VirtualAugmenter):
        return augment
    if isinstance(augment, VDASettings):
        return VirtualAugmenter(unwrap(model), augment)
    raise AdvembedError(f"unknown augmentation {augment!r}: pass VDASettings or a "
                        "VirtualAugmenter")


def plain_step(model: torch.nn.Module, inputs: dict[str, Any], backward: Backward) -> torch.Tensor:
    """One forward and backward of the clean loss."""
    loss = model(**inputs).loss
    backward(loss)
    return loss.detach()


class TrainingMethod:
    """Base class: settings, adapter construction, warm-up and pass counting, and the plumbing
    that hands the final adversarial pass to an objective.

    Subclasses set ``name``, ``Settings`` (a :class:`~advembed.settings.Settings` dataclass:
    the method's defaults, flags and ranges), ``paper`` and ``summary`` (for the docs), and
    implement ``_step`` and ``count_passes``.
    """

    name: ClassVar[str] = "base"
    Settings: ClassVar[type[Settings]] = NoSettings
    paper: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    takes_objective: ClassVar[bool] = True
    replays: int = 1

    def __init__(self, model: torch.nn.Module, settings: Settings | None = None, *,
                 objective: Objective | None = None, augment: Any = None,
                 **options: Any) -> None:
        if objective is not None and not self.takes_objective:
            raise AdvembedError(f"method '{self.name}' does not take an objective "
                                f"({objective.name}): {self.no_objective_reason()}")
        if settings is not None and not isinstance(settings, self.Settings):
            raise AdvembedError(f"method '{self.name}' takes {self.Settings.__name__}, not "
                                f"{type(settings).__name__}")
        self.settings = self.Settings.from_options(options, settings)
        self.adapter = EmbeddingAdapter(unwrap(model))
        self.objective = objective
        self.augment = make_augmenter(model, augment)
        self.steps_done = 0  # calls of step(): micro-batches
        self.micro_steps = 1  # micro-batches per optimiser step (AdvTrainer sets it)
        self.optimizer_step: int | None = None  # the Trainer's global step (AdvTrainer sets it)
        # Mixed precision's loss scale (AdvTrainer sets it each step): the inner gradients a
        # method takes itself (autograd.grad, not backward) are of the loss times it, so fp16
        # does not flush them to zero; every ascent direction is normalised, so the step is
        # the same.
        self.inner_loss_scale = 1.0
        # Rows cut from a token stream (language modelling: words may be cut at both ends;
        # the training run sets it from the task) for methods that pick whole words.
        self.cut_stream = False
        self._example_index: torch.Tensor | None = None

    @classmethod
    def no_objective_reason(cls) -> str:
        return "it has no adversarial pass"

    @classmethod
    def count_passes(cls, settings: Settings, needs_clean: bool = False) -> float:
        """Forward+backward passes per step (relative cost in the step-cost benchmark)."""
        return 1.0

    @property
    def passes(self) -> float:
        """Passes per step, ``--augment vda``'s clean and virtual passes included."""
        extra = 0.0 if self.augment is None else 1.0 + self.augment.settings.samples
        return self.count_passes(self.settings, self._needs_clean) + extra

    def step(self, model: torch.nn.Module, inputs: dict[str, Any],
             backward: Backward = default_backward) -> torch.Tensor:
        """One optimisation step's passes on ``inputs``; the caller steps the optimiser."""
        inputs = dict(inputs)
        self._example_index = inputs.pop("example_index", None)
        try:
            # The warm-up delays the adversary, not VDA (no adversary in it): its term is
            # added to the warm-up's plain steps as to the adversarial ones.
            loss = (plain_step(model, inputs, backward) if self.in_warmup()
                    else self._step(model, inputs, backward))
            if self.augment is not None:
                loss = loss + self._augment_step(model, inputs, backward)
            return loss
        except (TypeError, AttributeError) as exc:
            if inputs.get("labels") is None:  # the model returned no loss to train on
                raise AdvembedError(f"method {self.name} trains on the model's own loss: the "
                                    "batch needs 'labels' (it has none)") from exc
            raise
        finally:
            self.steps_done += 1

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint must hold to resume this method exactly (tensors and plain data):
        the step counter (warm-ups), the objective's state, and subclasses' own."""
        state: dict[str, Any] = {"steps_done": self.steps_done}
        if self.objective is not None:
            state["objective"] = self.objective.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps_done = int(state["steps_done"])
        if self.objective is not None and "objective" in state:
            self.objective.load_state_dict(state["objective"])

    def _augment_step(self, model, inputs, backward) -> torch.Tensor:
        """``--augment vda``: VDA's term ``λ/k·Σ sKL(f(E), f(Ê_j))`` on a clean pass of its
        own, added to the method's gradient (paper 003's X_VDA rows, which do not say how).
        Ours: the term is added once per step, at the clean E (Ê built from E, not E + δ_t),
        with its full weight λ, whatever the method; the authors' code adds it beside SMART's
        term and beside each of FreeLB's passes at E + δ_t instead."""
        outer = self._adapter_for(model)
        clean = outer.forward(inputs) if self.augment.settings.loss == "skl" else None
        term = self.augment.term(outer, inputs, None if clean is None else clean.logits)
        backward(term)
        return term.detach()

    @property
    def optimizer_steps_done(self) -> int:
        """Optimiser steps completed: the Trainer's global step where AdvTrainer gives it
        (an epoch's last accumulated step may have fewer micro-batches), else ``steps_done``
        (micro-batches) over ``micro_steps``.  Warm-ups are in these."""
        if self.optimizer_step is not None:
            return self.optimizer_step
        return self.steps_done // self.micro_steps

    def in_warmup(self) -> bool:
        return self.optimizer_steps_done < getattr(self.settings, "warmup_steps", 0)

    def _step(self, model, inputs, backward) -> torch.Tensor:
        raise NotImplementedError

    # --- objective plumbing -----------------------------------------------------------

    @property
    def _hidden(self) -> bool:
        return self.objective is not None

    @property
    def _needs_clean(self) -> bool:
        return self.objective is not None and self.objective.needs_clean

    def _prologue(self, model, inputs):
        """``(adapter for backward passes, clean embeddings (no graph), perturbation mask)``."""
        outer = self._adapter_for(model)
        with torch.no_grad():
            like = self.adapter.embed(inputs)
        return outer, like, self._mask(inputs, like)

    def _mask(self, inputs: dict[str, Any], like: torch.Tensor) -> torch.Tensor:
        """Where δ may be non-zero: real tokens, narrowed by the objective (ATCL: one word)."""
        mask = self.adapter.mask(inputs, like)
        if self.objective is not None:
            mask = self.objective.perturbation_mask(inputs, mask)
        return mask

    def _clean_for_objective(self, outer, inputs):
        """A clean pass with hidden states, kept in the graph for the objective (or None)."""
        return outer.forward(inputs, output_hidden_states=True) if self._needs_clean else None

    def _adversarial_loss(self, model, outer, inputs, delta, clean, scale: float = 1.0):
        """Loss of the final adversarial pass: its cross-entropy times ``scale`` (a multi-pass
        method's share, 1/K for FreeLB, 1/m for YOPO) plus the objective's term at full weight.

        Paper 001 eq. 6–7: the objective's term (``L_D``, ``w_r·L_R``) enters the loss once per
        optimiser step with its own weight, whatever the adversary; only the adversarial
        cross-entropy is shared out over the passes.  ``tests/test_equations.py`` pins it."""
        adversarial = outer.forward(inputs, delta, output_hidden_states=self._hidden or None)
        if self.objective is None:
            return adversarial, adversarial.loss * scale
        weighted = self.objective.adversarial_weight * adversarial.loss
        term = self._objective_term(model, inputs, adversarial, clean)
        return adversarial, weighted * scale + term

    def _objective_term(self, model, inputs, adversarial, clean) -> torch.Tensor:
        """The objective's own loss term for this step (0 without an objective)."""
        if self.objective is None:
            return torch.zeros((), device=adversarial.logits.device)
        context = ObjectiveContext(model=model, inputs=inputs, adversarial=adversarial,
                                   clean=clean, example_index=self._example_index,
                                   step=self.optimizer_steps_done)
        return self.objective.loss(context)

    def _adapter_for(self, model: torch.nn.Module) -> EmbeddingAdapter:
        """An adapter over ``model`` as given (DDP-wrapped for passes that call backward)."""
        if model is self.adapter.model:
            return self.adapter
        return _WrappedAdapter(model, self.adapter)


class _WrappedAdapter(EmbeddingAdapter):
    """Forward through a wrapper (DDP) while finding embeddings on the inner module."""

    def __init__(self, wrapped: torch.nn.Module, inner: EmbeddingAdapter) -> None:
        self.model = wrapped
        self._inner = inner
        self.not_passed = inner.not_passed

    @property
    def word_embeddings(self) -> torch.nn.Embedding:
        return self._inner.word_embeddings

    def embedding_block(self) -> torch.nn.Module | None:
        return self._inner.embedding_block()
