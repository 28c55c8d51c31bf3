"""Settings of the evaluation commands, each declared once (the perturbation flags are the
same as ``train``'s: :mod:`advembed.flags`; the old names stay as aliases)."""

from __future__ import annotations

from dataclasses import dataclass

from advembed.flags import ALPHA, ALPHA_RATIO, EPSILON, N_EXAMPLES, NORM, PROGRESS, SPLIT, STEPS
from advembed.settings import MAX_BATCH, MAX_SEED, Settings, setting


@dataclass(frozen=True)
class PGDAttackSettings(Settings):
    """White-box k-PGD on the word embeddings against the gold label (paper 001 §4.5)."""

    owner = "attack 'pgd'"
    epsilon: tuple[float, ...] = setting((0.02, 0.075, 0.1), EPSILON,
                                         "radii ε of the perturbation ball",
                                         aliases=("--epsilons",), paper="paper 001 Tables 4–5")
    steps: int = setting(3, STEPS, aliases=("--steps",))
    alpha: float | None = setting(None, ALPHA, "ascent step size α (default: --adv-alpha-ratio "
                                  "× ε)", aliases=("--alpha",))
    alpha_ratio: float = setting(0.5, ALPHA_RATIO, aliases=("--alpha-ratio",))
    norm: str = setting("l2", NORM, aliases=("--norm",))

    def step_size(self, epsilon: float) -> float:
        """α at radius ``epsilon``: ``--adv-alpha`` if given, else ``alpha_ratio · ε``."""
        return self.alpha if self.alpha is not None else self.alpha_ratio * epsilon


@dataclass(frozen=True)
class VulnerabilitySettings(Settings):
    """One FGSM step against the predicted label (paper 002, eq. 1–5)."""

    owner = "attack 'vulnerability'"
    epsilon: float = setting(0.02, EPSILON, "FGSM strength ε", aliases=("--epsilon",),
                             exclusive_minimum=True)
    norm: str = setting("l2", NORM, aliases=("--norm",))


@dataclass(frozen=True)
class ReconstructSettings(PGDAttackSettings):
    """The k-PGD whose adversarial token states RAR decodes (paper 001, Table 6)."""

    owner = "reconstruct"
    epsilon: float = setting(0.1, EPSILON, aliases=("--epsilon",))


@dataclass(frozen=True)
class SampleSettings(Settings):
    """Which examples an attack runs on, and how they are batched."""

    owner = "attack"
    split: str = setting("test", SPLIT)
    n_examples: int = setting(1000, N_EXAMPLES)
    seed: int = setting(0, "--seed", "seed of the sample", minimum=0, maximum=MAX_SEED)
    batch_size: int = setting(32, "--batch-size", "examples (embedding attacks) or queries (word "
                              "attacks) per forward pass", minimum=1, maximum=MAX_BATCH)
    progress: bool = setting(True, PROGRESS)
    resume: bool = setting(False, "--resume", "continue an interrupted attack of the same "
                           "settings: keep the examples already attacked")


@dataclass(frozen=True)
class ReconstructSampleSettings(SampleSettings):
    owner = "reconstruct"
    split: str = setting("dev", SPLIT)
    n_examples: int = setting(200, N_EXAMPLES)


@dataclass(frozen=True)
class EvalSettings(Settings):
    owner = "eval"
    split: str = setting("test", SPLIT)
    batch_size: int = setting(64, "--batch-size", "examples per forward pass", minimum=1,
                              maximum=MAX_BATCH)
