"""Presets: a method with settings chosen for a goal, sized to the model.

``robust`` is FreeLB++ (TextDefender, Li et al. 2021: the strongest embedding-space defence in
its benchmark) — 10 ascent steps, no norm bound, TextDefender's step size 0.03 and start 0.05 —
plus two choices of ours that TextDefender's trainer does not make: the clean loss kept (an
11th pass) and 50 plain steps before the adversarial ones.  Its step size and random start are
declared as multiples of the model's mean word-embedding norm, so another encoder gets a
comparable budget; the anchor is the default MiniLM (rows of norm 1.07, where they are
TextDefender's 0.03 and 0.05), not BERT-base, on which TextDefender tuned them.
These are TextDefender's sizes, not yet searched on our data: ``benchmarks/search_robust.py``
picks them by accuracy under PWWS on dev (issue 12).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from advembed.errors import AdvembedError


@dataclass(frozen=True)
class Preset:
    name: str
    method: str
    fixed: dict[str, Any]
    relative: dict[str, float] = field(default_factory=dict)
    """Settings given as multiples of the mean word-embedding norm."""
    source: str = ""


PRESETS: dict[str, Preset] = {
    "robust": Preset("robust", "freelb",
                     fixed={"steps": 10, "epsilon": 0.0, "clean_pass": True, "warmup_steps": 50},
                     relative={"alpha": 0.028, "init_mag": 0.047},
                     source="FreeLB++ (TextDefender, Li et al. 2021); sizes relative to the "
                            "embedding norm"),
}


def embedding_norm(model: torch.nn.Module) -> float:
    """The mean L2 norm of the rows of the model's input embedding matrix (summed in float64,
    so that the thread count does not round it differently: a resumed run compares the sizes
    it gives)."""
    inner = getattr(model, "module", model)
    weight = inner.get_input_embeddings().weight.detach().double()
    return float(weight.norm(dim=-1).mean())


def preset_options(name: str, model: torch.nn.Module) -> tuple[str, dict[str, Any], float]:
    """``(method, its settings by Python name, the embedding norm they were sized by)``."""
    if name not in PRESETS:
        raise AdvembedError(f"unknown preset '{name}'; choose one of {', '.join(PRESETS)}")
    preset = PRESETS[name]
    norm = embedding_norm(model)
    options = dict(preset.fixed) | {key: ratio * norm
                                    for key, ratio in preset.relative.items()}
    return preset.method, options, norm
