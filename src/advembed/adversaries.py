"""Adversaries: how δ is found on the word-embedding outputs (the inner maximisation).

An adversary is a pure search: given ``loss_at(δ)`` (the model's loss on ``x + δ``), the clean
embeddings' shape and a padding mask, it returns δ.  It never touches model parameters or their
gradients, so the same classes serve training (:mod:`advembed.methods`) and evaluation attacks.

Equations (paper 000, section 2; Goodfellow et al. 2015; Miyato et al. 2017; Madry et al. 2018):

* FGSM: ``δ = ε · sign(∇ₓL)``
* FGM:  ``δ = ε · ∇ₓL / ‖∇ₓL‖₂`` (norm per example, over its real tokens)
* PGD:  ``δ_{t+1} = Π_{‖δ‖≤ε}(δ_t + α · g_t/‖g_t‖)`` for ``t = 0..k-1`` (L∞: ``α · sign(g_t)``)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from advembed.errors import AdvembedError
from advembed.perturbation import check_norm, direction, project, random_init

LossAt = Callable[[torch.Tensor], torch.Tensor]


def gradient_at(loss_at: LossAt, delta: torch.Tensor) -> torch.Tensor:
    """``∇_δ loss_at(δ)`` without accumulating any parameter gradient."""
    delta = delta.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss_at(delta), delta)
    return grad


@dataclass(kw_only=True)
class Adversary:
    """Base class: an ε-ball of a norm, and an optional random start.

    The sizes (ε, and α and k for PGD) have no defaults here: the training methods
    (:mod:`advembed.methods`) and the attacks (:mod:`advembed.evaluation`) declare theirs in
    their settings classes, each once.
    """

    epsilon: float
    norm: str = "l2"
    random_start: float = 0.0

    def __post_init__(self) -> None:
        check_norm(self.norm)

    @property
    def ascent_steps(self) -> int:
        return 1

    def start(self, embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """δ₀: zeros, or a random start of magnitude ``random_start`` (see ``random_init``)."""
        if self.random_start > 0:
            return project(random_init(embeds, mask, self.random_start, self.norm), mask,
                           self.epsilon, self.norm)
        return torch.zeros_like(embeds)

    def find(
        self,
        loss_at: LossAt,
        embeds: torch.Tensor,
        mask: torch.Tensor,
        *,
        first_grad: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Return δ (detached).  ``first_grad`` is ``∇_δ L`` at ``start()``'s δ₀ when the
        caller already has it (e.g. from the clean backward), saving one pass."""
        raise NotImplementedError


def _positive_epsilon(adversary: Adversary) -> None:
    """A one-step adversary's ε is its step: 0 is no δ, a negative one a descent step."""
    if not adversary.epsilon > 0:
        raise AdvembedError(f"{type(adversary).__name__}'s epsilon must be > 0, got "
                            f"{adversary.epsilon}")


@dataclass(kw_only=True)
class FGSM(Adversary):
    """Fast gradient sign method: one step of size ε along ``sign(g)`` (L∞ ball)."""

    norm: str = "linf"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.norm != "linf":
            raise AdvembedError(f"FGSM takes the sign of the gradient, an L-inf step: norm "
                                f"'{self.norm}' does not apply (FGM is the L2 one)")
        _positive_epsilon(self)

    def find(self, loss_at, embeds, mask, *, first_grad=None):
        delta0 = self.start(embeds, mask)
        grad = first_grad if first_grad is not None else gradient_at(loss_at, delta0)
        step = delta0 + self.epsilon * direction(grad, mask, "linf")
        return project(step, mask, self.epsilon, "linf").detach()


@dataclass(kw_only=True)
class FGM(Adversary):
    """Fast gradient method: ``δ = ε·g/‖g‖`` with the L2 norm per example."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive_epsilon(self)

    def find(self, loss_at, embeds, mask, *, first_grad=None):
        delta0 = self.start(embeds, mask)
        grad = first_grad if first_grad is not None else gradient_at(loss_at, delta0)
        step = delta0 + self.epsilon * direction(grad, mask, self.norm)
        return project(step, mask, self.epsilon, self.norm).detach()


@dataclass(kw_only=True)
class PGD(Adversary):
    """k-step projected gradient ascent (Madry et al.) with step size α.

    ``epsilon <= 0`` means unbounded (no projection).  δ is projected after *every* step.
    """

    steps: int
    alpha: float

    @property
    def ascent_steps(self) -> int:
        return self.steps

    def find(self, loss_at, embeds, mask, *, first_grad=None):
        delta = self.start(embeds, mask)
        for step in range(self.steps):
            grad = first_grad if (step == 0 and first_grad is not None) else gradient_at(
                loss_at, delta
            )
            delta = project(delta + self.alpha * direction(grad, mask, self.norm), mask,
                            self.epsilon, self.norm).detach()
        return delta
