"""Stopping a run that collapsed to a trivial predictor."""

from __future__ import annotations

import warnings

from transformers import TrainerCallback


class CollapseGuard(TrainerCallback):
    """Stop training with a warning when the best metric on dev after the first evaluation is
    no better than the task's trivial predictor (classification: always the majority label).

    A too-large perturbation radius can collapse a model to predicting one class; finishing
    the run silently would waste the remaining epochs and hide the problem.  Active for
    adversarial methods only: plain fine-tuning is the reference and runs its full course.
    """

    def __init__(self, baseline: float | None, *, metric: str = "accuracy",
                 greater_is_better: bool = True, margin: float = 0.01,
                 active: bool = True) -> None:
        self.baseline, self.metric, self.greater_is_better = baseline, metric, greater_is_better
        self.margin = margin
        self.active = active and baseline is not None
        self.collapsed = False
        self._evaluations = 0

    def at_baseline(self, value: float) -> bool:
        if self.greater_is_better:
            return value <= self.baseline + self.margin
        return value >= self.baseline - self.margin

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        self._evaluations += 1
        value = (metrics or {}).get(f"eval_{self.metric}")
        if self.active and self._evaluations == 1 and value is not None:
            if self.at_baseline(value):
                self.collapsed = True
                control.should_training_stop = True
                warnings.warn(
                    f"training collapsed: dev {self.metric} {value:.4f} after the first epoch is "
                    f"at chance ({self.baseline:.4f}, a trivial predictor); stopping. Lower the "
                    "perturbation size (--adv-epsilon / --adv-alpha) or the learning rate.",
                    stacklevel=2,
                )
        return control
