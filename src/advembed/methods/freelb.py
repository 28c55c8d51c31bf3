"""FreeLB (Zhu et al. 2020; paper 000 §2, paper 001 Table 1)."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch

from advembed.flags import ALPHA, EPSILON, INIT, NORM, STEPS
from advembed.methods.base import MethodSettings, TrainingMethod, call_backward
from advembed.perturbation import direction, project, random_init
from advembed.settings import setting


@dataclass(frozen=True)
class FreeLBSettings(MethodSettings):
    """α from the search on ``mr`` dev (``docs/defaults.md``); K, γ and ε = 0 (unbounded)
    follow the official code."""

    owner = "method 'freelb'"
    steps: int = setting(3, STEPS, paper="FreeLB official code")
    alpha: float = setting(0.03, ALPHA, paper="search on mr dev, docs/defaults.md")
    epsilon: float = setting(0.0, EPSILON, paper="FreeLB official code")
    init_mag: float = setting(0.1, INIT, paper="FreeLB official code")
    norm: str = setting("l2", NORM)
    clean_pass: bool = setting(False, "--adv-clean-pass", "FreeLB: also back-propagate the "
                               "clean loss")
    same_dropout: bool = setting(False, "--freelb-same-dropout", "FreeLB: one dropout mask for "
                                 "all K passes (the paper's §3.3; default: fresh masks)",
                                 paper="Zhu et al. 2020 §3.3")


class FreeLB(TrainingMethod):
    """FreeLB: K ascent steps, parameter gradients of all K accumulated.

    Per step t: loss ``L(x + δ_{t-1}) / K`` is back-propagated (parameters and δ together), then
    ``δ_t = Π(δ_{t-1} + α·g/‖g‖)``; one optimiser step after the K steps.  δ₀ is ``U(-1, 1)`` on
    real tokens scaled by ``γ/sqrt(len·hidden)`` (``init_mag`` γ; 0 starts at zero); ε = 0 means
    unbounded (no projection), as in the official code.  ``clean_pass`` adds a back-propagated
    clean loss; ``warmup_steps`` plain steps come first (users report NaN without them).  An
    objective's term is computed on the last pass — at δ_{K−1}, the sample that pass reads
    (δ_K is found after it and never used) — with its full weight (not ÷ K).  With
    ``--adv-norm linf`` the step is ``α·sign(g)`` (every entry moves by α), where the official
    code takes ``α·g/‖g‖∞``; the L2 default is the paper's.  Dropout: each of the K passes
    draws fresh dropout masks by default, where the paper (§3.3, its Table 4) and its code keep
    one mask for all K, so that the K passes ascend one network; ``same_dropout`` does that (the
    K forward passes run from one random seed drawn per step, so their masks, and anything
    else drawn from the global generator inside them, are the same).  Every FreeLB figure in
    the README was measured with fresh masks.
    """

    name = "freelb"
    Settings = FreeLBSettings
    paper = "Zhu et al. 2020; paper 000 §2, paper 001 Table 1"
    summary = ("K ascent steps, each loss ÷ K, parameter gradients accumulated, one optimiser "
               "step")

    @classmethod
    def count_passes(cls, settings: FreeLBSettings, needs_clean: bool = False) -> float:
        return settings.steps + (1 if settings.clean_pass or needs_clean else 0)

    def _step(self, model, inputs, backward):
        s = self.settings
        outer, like, mask = self._prologue(model, inputs)
        total = torch.zeros((), device=like.device)
        clean = None
        if s.clean_pass:
            clean = outer.forward(inputs, output_hidden_states=self._needs_clean or None)
            call_backward(backward, clean.loss, retain=self._needs_clean)
            total = total + clean.loss.detach()
        elif self._needs_clean:
            clean = self._clean_for_objective(outer, inputs)
        delta = project(random_init(like, mask, s.init_mag, s.norm), mask, s.epsilon, s.norm)
        seed = int(torch.randint(2**62, ())) if s.same_dropout else None
        for t in range(s.steps):
            delta.requires_grad_(True)
            with seeded(seed, like.device):
                if t == s.steps - 1:  # the objective sees the final adversarial sample
                    _, loss = self._adversarial_loss(model, outer, inputs, delta, clean,
                                                     1.0 / s.steps)
                else:  # fresh embedding lookup on every pass
                    loss = outer.forward(inputs, delta).loss / s.steps
            backward(loss)
            total = total + loss.detach()
            if t == s.steps - 1:
                break
            grad = delta.grad.detach()
            delta = project(delta.detach() + s.alpha * direction(grad, mask, s.norm), mask,
                            s.epsilon, s.norm)
        return total


@contextmanager
def seeded(seed: int | None, device: torch.device):
    """Run the block from the random state ``seed`` gives (then restore the caller's), so two
    blocks of the same shapes draw the same dropout masks; ``None``: the caller's state."""
    if seed is None:
        yield
        return
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
