"""YOPO-m-n (Zhang et al. 2019; paper 000 §2): cheap δ updates through the first block only."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from advembed.adapter import capture_first_block, first_block_output
from advembed.flags import ALPHA, EPSILON, INIT, NORM
from advembed.methods.base import MethodSettings, TrainingMethod
from advembed.perturbation import direction, project, random_init
from advembed.settings import setting


@dataclass(frozen=True)
class YOPOSettings(MethodSettings):
    """ε and α from the search on ``mr`` dev (``docs/defaults.md``); m = 2, n = 3."""

    owner = "method 'yopo'"
    outer_steps: int = setting(2, "--adv-outer-steps", "YOPO: full passes m", minimum=1,
                               paper="Zhang et al. 2019 (YOPO-m-n)")
    inner_steps: int = setting(3, "--adv-inner-steps", "YOPO: cheap inner updates n per pass",
                               minimum=1)
    epsilon: float = setting(0.1, EPSILON, paper="search on mr dev, docs/defaults.md")
    alpha: float = setting(0.1 / 3, ALPHA, paper="search on mr dev, docs/defaults.md",
                           exclusive_minimum=True)  # 0: no δ without a random start
    norm: str = setting("l2", NORM)
    init_mag: float = setting(0.0, INIT)


class YOPO(TrainingMethod):
    """YOPO-m-n: m full passes, each followed by n cheap δ updates.

    Full pass j: loss ``L(x + δ)/m`` back-propagated into the parameters (accumulated over the m
    passes, one optimiser step), and the adjoint ``p = ∂L/∂h₀`` at the output h₀ of the first
    block (the embedding block) is kept.  Inner updates, with p fixed:
    ``δ ← Π(δ + α·dir(∇_δ ⟨p, f₀(x + δ)⟩))`` — only the embedding block runs (a hook stops the
    forward right after it).  Dropout in the block stays active in the inner updates (choice:
    the same mode as the full pass).  The last full pass has no inner updates after it (their δ
    would never be used).  An objective's term enters the last pass at its full weight.
    Models with no embedding block of their own (GPT-2, BART, Marian: the lookup is in the model's
    forward) take the identity as the first layer, h₀ = e + δ: the adjoint is then ∂L/∂(e + δ)
    and the n inner updates step along it (choice; documented, tested).  The inner updates move
    δ only: Zhang et al.'s code also updates the first layer's weights from them; here the
    parameters change once per step, from the m full passes.  δ starts at zero by default
    (``init_mag=0``; the paper starts uniformly in the ε-ball): the first full pass is then the
    clean loss, so with m = 2 half of each step's parameter gradient is clean.
    """

    name = "yopo"
    Settings = YOPOSettings
    paper = "Zhang et al. 2019; paper 000 §2"
    summary = ("m full passes; after each but the last, n δ-updates through the embedding "
               "block only, adjoint p fixed ((m − 1)·n in all)")

    def __init__(self, model, settings=None, *, objective=None, **options) -> None:
        super().__init__(model, settings, objective=objective, **options)
        self.adapter.embedding_block()  # fail early for models without one

    @classmethod
    def count_passes(cls, settings: YOPOSettings, needs_clean: bool = False) -> float:
        return float(settings.outer_steps) + (1 if needs_clean else 0)

    def _step(self, model, inputs, backward):
        s = self.settings
        outer, like, mask = self._prologue(model, inputs)
        delta = project(random_init(like, mask, s.init_mag, s.norm), mask, s.epsilon, s.norm)
        total = torch.zeros((), device=like.device)
        clean = self._clean_for_objective(outer, inputs)
        for j in range(s.outer_steps):
            # δ a leaf that wants its gradient: the first block's output then has one to keep
            # (the adjoint p) even where the embedding block has no trainable weight
            delta = delta.detach().requires_grad_(True)
            with capture_first_block(outer) as captured:
                if j == s.outer_steps - 1:
                    _, loss = self._adversarial_loss(model, outer, inputs, delta, clean,
                                                     1.0 / s.outer_steps)
                else:
                    loss = outer.forward(inputs, delta).loss / s.outer_steps
            block_output = captured[0]
            block_output.retain_grad()
            backward(loss)
            total = total + loss.detach()
            if j == s.outer_steps - 1:
                break  # inner updates after the last full pass would never be used
            adjoint = block_output.grad.detach()
            embeds = like.detach()
            for _ in range(s.inner_steps):
                delta = delta.detach().requires_grad_(True)
                h0 = first_block_output(self.adapter, inputs, embeds + delta)
                (grad,) = torch.autograd.grad((h0 * adjoint).sum(), delta)
                delta = project(delta.detach() + s.alpha * direction(grad, mask, s.norm),
                                mask, s.epsilon, s.norm)
        return total
