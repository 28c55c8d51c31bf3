"""FreeAT (Shafahi et al. 2019; paper 000 §2): minibatch replay with δ carried across replays."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from advembed.errors import AdvembedError
from advembed.flags import EPSILON, NORM
from advembed.methods.base import MethodSettings, TrainingMethod
from advembed.perturbation import direction, project
from advembed.settings import setting


@dataclass(frozen=True)
class FreeATSettings(MethodSettings):
    """ε from the search on ``mr`` dev (``docs/defaults.md``); m = 3 replays."""

    owner = "method 'freeat'"
    replays: int = setting(3, "--adv-replays", "FreeAT: replays m of each minibatch", minimum=1,
                           paper="Shafahi et al. 2019")
    epsilon: float = setting(0.001, EPSILON, paper="search on mr dev, docs/defaults.md",
                             exclusive_minimum=True)  # the step itself: 0 would be no δ
    norm: str = setting("linf", NORM)


class FreeAT(TrainingMethod):
    """FreeAT: replay each minibatch m times, δ carried across replays.

    Each replay: loss at ``x + δ`` back-propagated once (parameters and δ together), the caller
    steps the optimiser, and ``δ ← Π(δ + ε·dir(g))`` (L∞: ``clip(δ + ε·sign(g), -ε, ε)``, the
    paper's update).  δ restarts at zero with every new minibatch (texts differ in length, so δ
    cannot carry across batches as it does for fixed-size images).  Its ``step`` does one
    replay; the caller replays (``AdvTrainer`` repeats each batch ``replays`` times in its data
    loader, and ``advembed train`` divides the epochs by ``replays``, as Shafahi et al. do).
    """

    name = "freeat"
    Settings = FreeATSettings
    paper = "Shafahi et al. 2019; paper 000 §2"
    summary = ("each minibatch replayed m times, δ carried across replays, an optimiser step per "
               "replay; epochs ÷ m")
    takes_objective = False

    def __init__(self, model, settings=None, *, objective=None, **options) -> None:
        super().__init__(model, settings, objective=objective, **options)
        self.replays = self.settings.replays
        self.delta: torch.Tensor | None = None
        self.replay_index = 0
        self._batch_ids: torch.Tensor | None = None  # the minibatch δ belongs to

    def _same_batch(self, ids: torch.Tensor | None) -> bool:
        """Whether ``ids`` are the token ids of the minibatch δ was started on (unknown after
        a resume, or without ids: then only the shape is checked)."""
        if ids is None or self._batch_ids is None:
            return True
        return torch.equal(self._batch_ids.to(ids.device), ids)

    @classmethod
    def no_objective_reason(cls) -> str:
        return "its δ is carried across replays, which a per-step objective cannot follow"

    def state_dict(self):
        return super().state_dict() | {"delta": self.delta, "replay_index": self.replay_index}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.delta, self.replay_index = state["delta"], int(state["replay_index"])

    def in_warmup(self) -> bool:
        """Warm-up counts optimiser steps (one per replay), rounded up to whole minibatches
        (a multiple of m): a minibatch's replays are all plain or all adversarial, so δ's
        replay count stays aligned with the batches."""
        whole = -(-self.settings.warmup_steps // self.replays) * self.replays
        return self.steps_done < whole

    def _step(self, model, inputs, backward):
        s = self.settings
        outer = self._adapter_for(model)
        with torch.no_grad():
            like = self.adapter.embed(inputs)
        mask = self.adapter.mask(inputs, like)
        ids = inputs.get("input_ids")
        if self.replay_index % self.replays == 0 or self.delta is None:
            self.delta = torch.zeros_like(like)
            self._batch_ids = None if ids is None else ids.detach().clone()
        elif self.delta.shape != like.shape or not self._same_batch(ids):
            raise AdvembedError(
                "FreeAT replays must see the same minibatch; got another batch before its "
                f"{self.replays} replays were done (replay each batch `replays` times, or use "
                "AdvTrainer)"
            )
        # a resumed δ is loaded on the CPU; padding never carries δ
        self.delta = self.delta.to(like.device) * mask
        self.replay_index += 1
        delta = self.delta.detach().requires_grad_(True)
        loss = outer.forward(inputs, delta).loss
        backward(loss)
        grad = delta.grad.detach()
        self.delta = project(delta.detach() + s.epsilon * direction(grad, mask, s.norm),
                             mask, s.epsilon, s.norm)
        if not torch.isfinite(self.delta).all():  # an overflowed (fp16) gradient: the step is
            self.delta = torch.zeros_like(self.delta)  # skipped, δ must not carry its NaN on
        return loss.detach()
