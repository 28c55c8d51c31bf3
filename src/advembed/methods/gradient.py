"""The step FGSM, FGM and PGD share: ``clean_weight·L(x) + L(x + δ)``, δ from an adversary."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from advembed.adversaries import Adversary
from advembed.flags import CLEAN_WEIGHT, RANDOM_START
from advembed.methods.base import MethodSettings, TrainingMethod, call_backward
from advembed.settings import setting


@dataclass(frozen=True)
class GradientAttackSettings(MethodSettings):
    """Settings of the one-adversary methods beside their ball (ε, norm) and steps."""

    random_start: float = setting(0.0, RANDOM_START)
    clean_weight: float = setting(1.0, CLEAN_WEIGHT)


class GradientAttackTraining(TrainingMethod):
    """Adversarial training with one adversary: ``clean_weight·L(x) + L(x + δ)``.

    The clean pass's backward gives both the clean parameter gradient and ``∇_δ L`` at δ = 0,
    which is the first ascent direction when the adversary starts at zero (the usual
    implementation trick; saves a pass).  Intermediate PGD steps take gradients with respect to
    δ only, on the unwrapped model, so they never touch parameter gradients or DDP hooks.  The
    final adversarial loss is back-propagated into the parameters.  ``clean_weight = 0`` trains on
    the adversarial loss alone (Madry et al.'s formulation).
    """

    @classmethod
    def make_adversary(cls, settings) -> Adversary:
        raise NotImplementedError

    @classmethod
    def ascent_steps(cls, settings) -> int:
        return 1

    def __init__(self, model, settings=None, *, objective=None, **options) -> None:
        super().__init__(model, settings, objective=objective, **options)
        self.adversary = self.make_adversary(self.settings)

    @classmethod
    def count_passes(cls, settings, needs_clean: bool = False) -> float:
        """A clean pass (for the clean loss, or for the objective's R), the ascent steps —
        the first one free when the clean pass's gradient is it (no random start) — and the
        adversarial pass."""
        clean = settings.clean_weight > 0 or needs_clean
        reused = settings.clean_weight > 0 and settings.random_start <= 0
        return float(clean) + cls.ascent_steps(settings) - float(reused) + 1

    def _step(self, model, inputs, backward):
        clean_weight = self.settings.clean_weight
        outer = self._adapter_for(model)
        inner = self.adapter
        with torch.no_grad():
            embeds = inner.embed(inputs)
        mask = self._mask(inputs, embeds)

        def loss_at(delta: torch.Tensor) -> torch.Tensor:  # scaled as backward's (fp16)
            return inner.forward(inputs, delta).loss * self.inner_loss_scale

        first_grad = None
        clean = None
        total = torch.zeros((), device=embeds.device)
        if clean_weight > 0:
            zero_start = self.adversary.random_start <= 0
            delta0 = torch.zeros_like(embeds, requires_grad=zero_start)
            clean = outer.forward(inputs, delta0 if zero_start else None,
                                  output_hidden_states=self._needs_clean or None)
            # Keep the clean graph when the objective back-propagates through R (CARL, ATCL).
            call_backward(backward, clean_weight * clean.loss, retain=self._needs_clean)
            total = total + clean_weight * clean.loss.detach()
            if zero_start and delta0.grad is not None:
                first_grad = delta0.grad.detach() * mask
        elif self._needs_clean:
            clean = self._clean_for_objective(outer, inputs)
        delta = self.adversary.find(loss_at, embeds.detach(), mask, first_grad=first_grad)
        _, loss = self._adversarial_loss(model, outer, inputs, delta, clean)
        backward(loss)
        return total + loss.detach()
