"""FGSM adversarial training (Goodfellow et al. 2015; paper 000 §2): δ = ε·sign(∇ₓL)."""

from __future__ import annotations

from dataclasses import dataclass

from advembed.adversaries import FGSM
from advembed.errors import AdvembedError
from advembed.flags import EPSILON, NORM
from advembed.methods.gradient import GradientAttackSettings, GradientAttackTraining
from advembed.settings import setting


@dataclass(frozen=True)
class FGSMSettings(GradientAttackSettings):
    """ε from the search on ``mr`` dev (``docs/defaults.md``)."""

    owner = "method 'fgsm'"
    epsilon: float = setting(0.001, EPSILON, paper="search on mr dev, docs/defaults.md",
                             exclusive_minimum=True)  # the step itself: 0 would be no δ
    norm: str = setting("linf", NORM, paper="Goodfellow et al. 2015")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.norm != "linf":
            raise AdvembedError("FGSM is defined for --adv-norm linf; use fgm for l2")


class FGSMTraining(GradientAttackTraining):
    name = "fgsm"
    Settings = FGSMSettings
    paper = "Goodfellow et al. 2015; paper 000 §2"
    summary = "`L(x) + L(x + ε·sign(g))`"

    @classmethod
    def make_adversary(cls, settings: FGSMSettings) -> FGSM:
        return FGSM(epsilon=settings.epsilon, random_start=settings.random_start)
