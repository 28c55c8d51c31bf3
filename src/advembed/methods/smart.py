"""SMART-style smoothness-inducing adversarial regularisation (Jiang et al. 2020; paper 003)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from advembed.adversaries import gradient_at
from advembed.flags import EPSILON, NORM, STEPS
from advembed.losses import symmetric_kl, target_positions
from advembed.methods.base import MethodSettings, TrainingMethod
from advembed.perturbation import direction, max_normalized, project
from advembed.settings import setting


@dataclass(frozen=True)
class SMARTSettings(MethodSettings):
    """σ, η and one ascent step follow mt-dnn; λ = 1 (paper 003's baseline)."""

    owner = "method 'smart'"
    weight: float = setting(1.0, "--smart-weight", "SMART: weight λ of the smoothness term",
                            minimum=0, paper="paper 003 baseline")
    noise: float = setting(1e-5, "--smart-noise", "SMART: std σ of the initial noise", minimum=0,
                           paper="mt-dnn (SMART's code)")
    step_size: float = setting(1e-3, "--smart-step-size", "SMART: ascent step size η", minimum=0,
                               paper="mt-dnn (SMART's code)")
    steps: int = setting(1, STEPS, paper="mt-dnn (SMART's code)")
    epsilon: float = setting(0.0, EPSILON)
    norm: str = setting("linf", NORM, paper="SMART Algorithm 1; mt-dnn adv_p_norm='inf'",
                        legacy="l2")


class SMART(TrainingMethod):
    """``L(x) + λ·D_sKL(f(x), f(x + δ))``.

    δ starts as ``N(0, σ²)`` noise on real tokens and takes ``steps`` ascent steps
    ``δ ← δ + η·g/‖g‖∞`` on ``D_sKL(f(x + δ), stopgrad f(x))``, the L∞ norm per token (SMART's
    Algorithm 1 and mt-dnn's default; ε > 0 adds the L∞ projection, 0 = none).  ``--adv-norm
    l2`` steps by ``η·g/‖g‖₂`` per token instead (with an L2 projection): what every SMART
    run before 2026-12-07 did, which is how runs that record no norm are read — at η = 1e-3 and
    384 hidden units that step is about 6× shorter than the L∞ one.  Only the smoothness
    regulariser is implemented: SMART's Bregman proximal point optimisation (its momentum
    teacher) is left out, as paper 003 leaves it out of its SMART baseline. In the final
    regulariser each side is compared with the other's detached prediction (mt-dnn's
    ``stable_kl`` both ways), so gradients flow through both the clean and the perturbed pass;
    the two halves averaged, its value is λ·sKL but its gradient is half that of λ·sKL(f(x),
    f(x + δ)) with both sides differentiated — mt-dnn's convention, kept since SMART's λ was
    tuned under it. VDA's term is differentiated in full, so under ``--augment vda`` SMART's λ
    pulls half as hard as VDA's. Perturbed passes take ``inputs_embeds`` = word embeddings + δ:
    the model adds position and segment embeddings and LayerNorm once (mt-dnn's current code
    applies them twice).
    """

    name = "smart"
    Settings = SMARTSettings
    half_precision_note = (
        "SMART under fp16/bf16: its σ = 1e-5 start is below half precision's resolution, so "
        "most of the ascent's gradient is zero (a review measured all of it in fp16 and a "
        "third in bf16 on a tiny BERT) and δ stays near the noise; train SMART in fp32")
    paper = "Jiang et al. 2020; paper 003"
    summary = ("`L(x) + λ·sKL(f(x), f(x + δ))`, δ from N(0, σ²) noise + one per-token ascent "
               "step `η·g/‖g‖∞`; no Bregman proximal point (as in paper 003)")

    @classmethod
    def count_passes(cls, settings: SMARTSettings, needs_clean: bool = False) -> float:
        return 2.0 + settings.steps

    def _step(self, model, inputs, backward):
        s = self.settings
        outer = self._adapter_for(model)
        clean = outer.forward(inputs, output_hidden_states=self._needs_clean or None)
        clean_logits = clean.logits
        with torch.no_grad():
            like = self.adapter.embed(inputs)
        mask = self._mask(inputs, like)
        delta = torch.randn_like(like) * s.noise * mask
        target = clean_logits.detach()
        positions = target_positions(inputs, clean_logits)  # token-level: not the padding
        for _ in range(s.steps):
            grad = gradient_at(
                lambda d: symmetric_kl(self.adapter.forward(inputs, d).logits, target,
                                       positions) * self.inner_loss_scale, delta
            )
            step = (max_normalized(grad, mask) if s.norm == "linf"
                    else direction(grad, mask, "l2", "token"))
            delta = project(delta + s.step_size * step, mask, s.epsilon, s.norm,
                            "token").detach()
        perturbed = outer.forward(inputs, delta, output_hidden_states=self._hidden or None)
        extra = self._objective_term(model, inputs, perturbed, clean)
        perturbed_logits = perturbed.logits
        regulariser = 0.5 * (
            symmetric_kl(perturbed_logits, clean_logits.detach(), positions)
            + symmetric_kl(clean_logits, perturbed_logits.detach(), positions)
        )
        loss = clean.loss + s.weight * regulariser + extra
        backward(loss)
        return loss.detach()
