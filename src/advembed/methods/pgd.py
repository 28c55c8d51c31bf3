"""k-step PGD adversarial training (Madry et al. 2018; paper 000 §2)."""

from __future__ import annotations

from dataclasses import dataclass

from advembed.adversaries import PGD
from advembed.flags import ALPHA, EPSILON, NORM, STEPS
from advembed.methods.gradient import GradientAttackSettings, GradientAttackTraining
from advembed.settings import setting


@dataclass(frozen=True)
class PGDSettings(GradientAttackSettings):
    """ε and α from the search on ``mr`` dev (``docs/defaults.md``); k = 3."""

    owner = "method 'pgd'"
    epsilon: float = setting(0.1, EPSILON, paper="search on mr dev, docs/defaults.md")
    norm: str = setting("l2", NORM)
    steps: int = setting(3, STEPS, paper="paper 001 §4.5 (k = 3)")
    alpha: float = setting(0.05, ALPHA, paper="search on mr dev, docs/defaults.md",
                           exclusive_minimum=True)  # 0: no δ without a random start


class PGDTraining(GradientAttackTraining):
    name = "pgd"
    Settings = PGDSettings
    paper = "Madry et al. 2018; paper 000 §2"
    summary = "k projected ascent steps, then `L(x) + L(x + δ_k)`"

    @classmethod
    def ascent_steps(cls, settings: PGDSettings) -> int:
        return settings.steps

    @classmethod
    def make_adversary(cls, settings: PGDSettings) -> PGD:
        return PGD(epsilon=settings.epsilon, norm=settings.norm, steps=settings.steps,
                   alpha=settings.alpha, random_start=settings.random_start)
