"""VAA's stage two (paper 002 §3.2): train model B, fed with frozen model A's vulnerability.

The adversary is paper 002's FGSM against A's predicted label (eq. 4–5), run inside the model
(:mod:`advembed.vaa`); what B learns is the plain cross-entropy, so a step is one forward and
backward of the two-stage model.  ``advembed train --method vaa --base-run RUN`` builds that
model from RUN's classifier (A, frozen) and a copy of it (B, trained).
"""

from __future__ import annotations

from dataclasses import dataclass

from advembed.errors import AdvembedError
from advembed.flags import EPSILON, NORM
from advembed.methods.base import TrainingMethod, plain_step, unwrap
from advembed.settings import Settings, setting

PLACEMENT_CHOICES = ("add", "position")


@dataclass(frozen=True)
class VAASettings(Settings):
    """Table 3 of paper 002 uses L2 FGSM with ε = 0.02 for every model and dataset."""

    owner = "method 'vaa'"
    base_run: str | None = setting(None, "--base-run", "VAA's model A: a finished run "
                                   "(classification) whose model is frozen and copied into B",
                                   paper="paper 002 §3.2")
    epsilon: float = setting(0.02, EPSILON, paper="paper 002 §4.3", exclusive_minimum=True)
    norm: str = setting("l2", NORM, paper="paper 002 §4.3")
    placement: str = setting("add", "--vaa-placement", "where A's vulnerability vector "
                             "enters B: add = added to every token's embedding; position = an "
                             "extra input position after the first token",
                             choices=PLACEMENT_CHOICES,
                             paper="the paper does not say; add was better on cr dev (seed 13: "
                             "0.8778 against 0.8722)")
    features: str = setting("hidden", "--vaa-features", "what A tells B: hidden = the output "
                            "of A without its classifier (A⁻, paper's V1, V2 in R^h); logits = "
                            "A's class logits (the form measured before session 40)",
                            choices=("hidden", "logits"), paper="paper 002 §3.2 (A⁻)")


class VAATraining(TrainingMethod):
    name = "vaa"
    Settings = VAASettings
    paper = "paper 002 (Zhang et al. 2022)"
    summary = "model B reads frozen A's `[V1; V2; V1−V2]` (FGSM on A's prediction)"
    takes_objective = False
    needs_base_run = True

    @classmethod
    def count_passes(cls, settings, needs_clean: bool = False) -> float:
        """One pass of B, plus A's two forwards and one backward to the embeddings (no weight
        gradients), about one more pass."""
        return 2.0

    @classmethod
    def no_objective_reason(cls) -> str:
        return "it trains model B with the plain cross-entropy (paper 002)"

    def __init__(self, model, settings=None, **kwargs) -> None:
        super().__init__(model, settings, **kwargs)
        if getattr(getattr(unwrap(model), "config", None), "model_type", None) != "advembed-vaa":
            raise AdvembedError(
                "method vaa trains model B, a VulnerabilityAwareModel (advembed.vaa.model."
                "VulnerabilityAwareModel.from_model_a(model_a)), not the model given; "
                "`advembed train --method vaa --base-run RUN` builds it")

    def _step(self, model, inputs, backward):
        return plain_step(model, inputs, backward)
