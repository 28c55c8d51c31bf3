"""FGM adversarial training (Miyato et al. 2017; paper 000 §2): δ = ε·g/‖g‖₂ per example."""

from __future__ import annotations

from dataclasses import dataclass

from advembed.adversaries import FGM
from advembed.flags import EPSILON, NORM
from advembed.methods.gradient import GradientAttackSettings, GradientAttackTraining
from advembed.settings import setting


@dataclass(frozen=True)
class FGMSettings(GradientAttackSettings):
    """ε from the search on ``mr`` dev (``docs/defaults.md``)."""

    owner = "method 'fgm'"
    epsilon: float = setting(0.1, EPSILON, paper="search on mr dev, docs/defaults.md",
                             exclusive_minimum=True)  # the step itself: 0 would be no δ
    norm: str = setting("l2", NORM, paper="Miyato et al. 2017")


class FGMTraining(GradientAttackTraining):
    name = "fgm"
    Settings = FGMSettings
    paper = "Miyato et al. 2017; paper 000 §2"
    summary = "`L(x) + L(x + ε·g/‖g‖)`"

    @classmethod
    def make_adversary(cls, settings: FGMSettings) -> FGM:
        return FGM(epsilon=settings.epsilon, norm=settings.norm,
                   random_start=settings.random_start)
